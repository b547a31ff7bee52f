//! Deciding, on the request path and before anything is stored, whether a webhook delivery is
//! authentic and which platform event it carries (its de-duplication key).
//!
//! Only what the decision needs is read from the body (an id and a modification time at most);
//! parsing the order happens later, in the intake worker.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::platform::Platform;
use crate::signature::{self, standard};

/// A delivery's headers, looked up case-insensitively by the caller.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authentic: store it under this event key.
    Accept {
        event_key: String,
        topic: Option<String>,
    },
    /// The platform checking the endpoint when a webhook is configured (WooCommerce's unsigned
    /// `webhook_id=…` form post, VTEX's `{"hookConfig":"ping"}`): answer 200, store nothing.
    Ping,
    /// Not signed by the store's secret: answer 401, store nothing.
    Unauthorized(String),
}

/// The header VTEX hooks are configured to send with the store's secret as its value.
pub const VTEX_SECRET_HEADER: &str = "x-orderflow-secret";

/// Checks a delivery against the store's secrets (current first, then the one being rotated
/// out). `now` is Unix seconds, for Standard Webhooks' replay window.
pub fn verify(
    platform: Platform,
    secrets: &[&str],
    headers: &dyn Headers,
    body: &[u8],
    now: i64,
) -> Verdict {
    if secrets.is_empty() {
        return Verdict::Unauthorized("the store has no webhook secret configured".into());
    }
    let check = |header: &str, value: &str| {
        let keys = secrets.iter().map(|s| s.as_bytes());
        if signature::verify_base64_hmac_sha256(keys, body, value) {
            Ok(())
        } else {
            Err(Verdict::Unauthorized(format!(
                "{header} does not match the body signed with the store's secret"
            )))
        }
    };
    let shop_hmac = |header: &str| match headers.get(header) {
        None => Err(Verdict::Unauthorized(format!(
            "the {header} header is missing"
        ))),
        Some(value) => check(header, value),
    };
    let outcome = match platform {
        Platform::Shopify => match shopify_header(headers, "hmac-sha256") {
            None => Err(Verdict::Unauthorized(
                "the X-Shopify-Hmac-Sha256 (or shopify-hmac-sha256) header is missing".into(),
            )),
            Some((header, value)) => check(header, value),
        }
        .map(|()| Verdict::Accept {
            event_key: shopify_event_key(headers, body),
            topic: shopify_header(headers, "topic").map(|(_, topic)| topic.to_owned()),
        }),
        Platform::Woocommerce => {
            if headers.get("x-wc-webhook-signature").is_none() && is_woocommerce_ping(body) {
                return Verdict::Ping;
            }
            shop_hmac("x-wc-webhook-signature").map(|()| Verdict::Accept {
                event_key: woocommerce_event_key(headers, body),
                topic: headers.get("x-wc-webhook-topic").map(str::to_owned),
            })
        }
        Platform::Jumpseller => shop_hmac("jumpseller-hmac-sha256").map(|()| Verdict::Accept {
            event_key: format!(
                "{}:{}:{}",
                headers.get("jumpseller-event").unwrap_or("order"),
                headers.get("jumpseller-triggered-at").unwrap_or(""),
                digest(body)
            ),
            topic: headers.get("jumpseller-event").map(str::to_owned),
        }),
        Platform::Vtex => match headers.get(VTEX_SECRET_HEADER) {
            Some(value)
                if secrets
                    .iter()
                    .any(|s| signature::constant_time_eq(s.as_bytes(), value.as_bytes())) =>
            {
                if crate::parse::vtex::is_ping(body) {
                    return Verdict::Ping;
                }
                Ok(Verdict::Accept {
                    event_key: vtex_event_key(body),
                    topic: Some("order-status".into()),
                })
            }
            Some(_) => Err(Verdict::Unauthorized(format!(
                "{VTEX_SECRET_HEADER} does not match the store's secret"
            ))),
            None => Err(Verdict::Unauthorized(format!(
                "the {VTEX_SECRET_HEADER} header is missing"
            ))),
        },
        Platform::Custom => {
            let keys: Result<Vec<_>, _> =
                secrets.iter().map(|s| standard::Secret::parse(s)).collect();
            let keys = match keys {
                Ok(keys) => keys,
                Err(error) => return Verdict::Unauthorized(format!("store secret: {error}")),
            };
            let received = standard::Headers {
                id: headers.get("webhook-id"),
                timestamp: headers.get("webhook-timestamp"),
                signature: headers.get("webhook-signature"),
            };
            standard::verify(&keys, received, body, now)
                .map(|()| Verdict::Accept {
                    event_key: format!("webhook-id:{}", received.id.unwrap_or_default()),
                    topic: None,
                })
                .map_err(|error| Verdict::Unauthorized(error.to_string()))
        }
        Platform::Prestashop | Platform::Magento => Err(Verdict::Unauthorized(format!(
            "{platform} has no webhooks; its orders are pulled"
        ))),
    };
    outcome.unwrap_or_else(|refusal| refusal)
}

fn digest(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Shopify header in either of the spellings PLATFORMS.md §1 documents: `X-Shopify-…` on
/// classic webhooks (`ShopifyHeader` in Shopify's SDK), unprefixed `shopify-…` on the newer
/// "events" webhooks (`ShopifyEventsHeader`). `name` is the lower-case rest, `topic`; the
/// spelling found comes back with the value, for messages.
pub fn shopify_header<'h>(headers: &'h dyn Headers, name: &str) -> Option<(&'static str, &'h str)> {
    const SPELLINGS: [(&str, &str, &str); 5] = [
        (
            "hmac-sha256",
            "x-shopify-hmac-sha256",
            "shopify-hmac-sha256",
        ),
        ("topic", "x-shopify-topic", "shopify-topic"),
        ("event-id", "x-shopify-event-id", "shopify-event-id"),
        (
            "triggered-at",
            "x-shopify-triggered-at",
            "shopify-triggered-at",
        ),
        (
            "shop-domain",
            "x-shopify-shop-domain",
            "shopify-shop-domain",
        ),
    ];
    let (_, classic, events) = SPELLINGS.iter().find(|(known, ..)| *known == name)?;
    [*classic, *events]
        .into_iter()
        .find_map(|header| Some((header, headers.get(header)?)))
}

/// The event id (`X-Shopify-Event-Id`, or `shopify-event-id` on events webhooks) is the same
/// on every re-send of an event; without it (older deliveries), the per-delivery webhook id
/// is the best there is.
fn shopify_event_key(headers: &dyn Headers, body: &[u8]) -> String {
    match (
        shopify_header(headers, "event-id").map(|(_, id)| id),
        headers.get("x-shopify-webhook-id"),
    ) {
        (Some(event), _) => format!("event:{event}"),
        (None, Some(webhook)) => format!("webhook:{webhook}"),
        (None, None) => format!("body:{}", digest(body)),
    }
}

/// WooCommerce has no event id and fires several hooks for one save, so the key is the
/// webhook, topic, order id and modification time; an unreadable body keys by its digest.
fn woocommerce_event_key(headers: &dyn Headers, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Identity {
        id: serde_json::Value,
        date_modified_gmt: Option<String>,
    }
    let webhook = headers.get("x-wc-webhook-id").unwrap_or("");
    let topic = headers.get("x-wc-webhook-topic").unwrap_or("");
    match serde_json::from_slice::<Identity>(body) {
        Ok(identity) => format!(
            "{webhook}:{topic}:{}:{}",
            identity.id,
            identity.date_modified_gmt.unwrap_or_default()
        ),
        Err(_) => format!("{webhook}:{topic}:body:{}", digest(body)),
    }
}

fn vtex_event_key(body: &[u8]) -> String {
    match crate::parse::vtex::parse_hook(body) {
        Ok(hook) => format!(
            "{}:{}:{}",
            hook.order_id,
            hook.state,
            hook.current_change.or(hook.last_change).unwrap_or_default()
        ),
        Err(_) => format!("body:{}", digest(body)),
    }
}

/// WooCommerce's check when a webhook is saved: a form body `webhook_id=<n>`, unsigned.
fn is_woocommerce_ping(body: &[u8]) -> bool {
    body.strip_prefix(b"webhook_id=")
        .is_some_and(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, String>);

    impl Headers for Map {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> Map {
        Map(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    const BODY: &[u8] = br#"{"id":820982911946154508,"date_modified_gmt":"2017-03-22T16:28:08"}"#;

    #[test]
    fn a_shopify_delivery_signed_with_the_current_or_previous_secret_is_keyed_by_its_event() {
        let signed = signature::base64_hmac_sha256(b"old", BODY);
        let received = headers(&[
            ("x-shopify-hmac-sha256", &signed),
            ("x-shopify-event-id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
            ("x-shopify-topic", "orders/create"),
        ]);
        assert_eq!(
            verify(Platform::Shopify, &["new", "old"], &received, BODY, 0),
            Verdict::Accept {
                event_key: "event:98880550-7158-44d4-b7cd-2c97c8a091b5".into(),
                topic: Some("orders/create".into()),
            }
        );
        assert!(matches!(
            verify(Platform::Shopify, &["new"], &received, BODY, 0),
            Verdict::Unauthorized(_)
        ));
    }

    #[test]
    fn a_shopify_events_webhook_with_unprefixed_headers_is_verified_and_keyed_the_same_way() {
        let signed = signature::base64_hmac_sha256(b"new", BODY);
        let received = headers(&[
            ("shopify-hmac-sha256", &signed),
            ("shopify-event-id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
            ("shopify-topic", "orders/updated"),
            ("shopify-shop-domain", "client.myshopify.com"),
        ]);
        assert_eq!(
            verify(Platform::Shopify, &["new"], &received, BODY, 0),
            Verdict::Accept {
                event_key: "event:98880550-7158-44d4-b7cd-2c97c8a091b5".into(),
                topic: Some("orders/updated".into()),
            }
        );
        let forged = headers(&[
            ("shopify-hmac-sha256", "AAAA"),
            ("shopify-topic", "orders/create"),
        ]);
        assert!(matches!(
            verify(Platform::Shopify, &["new"], &forged, BODY, 0),
            Verdict::Unauthorized(reason) if reason.contains("shopify-hmac-sha256")
        ));
        assert!(matches!(
            verify(Platform::Shopify, &["new"], &headers(&[]), BODY, 0),
            Verdict::Unauthorized(reason) if reason.contains("missing")
        ));
    }

    #[test]
    fn woocommerce_keys_by_order_and_modification_time_and_answers_its_unsigned_ping() {
        let signed = signature::base64_hmac_sha256(b"wc", BODY);
        let received = headers(&[
            ("x-wc-webhook-signature", &signed),
            ("x-wc-webhook-id", "12"),
            ("x-wc-webhook-topic", "order.updated"),
        ]);
        assert_eq!(
            verify(Platform::Woocommerce, &["wc"], &received, BODY, 0),
            Verdict::Accept {
                event_key: "12:order.updated:820982911946154508:2017-03-22T16:28:08".into(),
                topic: Some("order.updated".into()),
            }
        );
        assert_eq!(
            verify(
                Platform::Woocommerce,
                &["wc"],
                &headers(&[]),
                b"webhook_id=12",
                0
            ),
            Verdict::Ping
        );
        assert!(matches!(
            verify(Platform::Woocommerce, &["wc"], &headers(&[]), BODY, 0),
            Verdict::Unauthorized(_)
        ));
    }

    #[test]
    fn a_store_without_a_secret_accepts_nothing() {
        assert!(matches!(
            verify(Platform::Shopify, &[], &headers(&[]), BODY, 0),
            Verdict::Unauthorized(_)
        ));
    }
}
