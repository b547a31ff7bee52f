//! Every body a sender writes is one orderflow's own parsers read back into the order it was
//! made from, and every signature is one orderflow's verifier accepts: ids beyond 2^53,
//! amounts in minor units in currencies of 0 and 2 decimals, region codes, SKUs, quantities.

use std::collections::HashMap;

use orderflow_connectors::webhook::{self, Verdict};
use orderflow_connectors::{Platform, parse_order};
use orderflow_sim::custom::CustomSender;
use orderflow_sim::jumpseller::JumpsellerSender;
use orderflow_sim::shopify::ShopifySender;
use orderflow_sim::vtex::VtexHookSender;
use orderflow_sim::woocommerce::WooSender;
use orderflow_sim::{Delivery, Generator, SimOrder, SimStatus};
use time::OffsetDateTime;

mod common;
use common::{assert_same_order, second};

const ORDERFLOW: &str = "http://127.0.0.1:9";
const SECRET: &str = "shop-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Orders in every country, currency and status the sandbox has.
fn orders() -> Vec<SimOrder> {
    let mut generator = Generator::new(42);
    let statuses = [
        SimStatus::Pending,
        SimStatus::Paid,
        SimStatus::Fulfilled,
        SimStatus::Cancelled,
        SimStatus::Refunded,
    ];
    (0..60)
        .map(|n| {
            let mut order = generator.order();
            order.status = statuses[n % statuses.len()];
            order
        })
        .collect()
}

struct Headers(HashMap<String, String>);

impl webhook::Headers for Headers {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn headers(delivery: &Delivery) -> Headers {
    Headers(
        delivery
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect(),
    )
}

fn accepted(platform: Platform, secret: &str, delivery: &Delivery) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match webhook::verify(platform, &[secret], &headers(delivery), &delivery.body, now) {
        Verdict::Accept { event_key, .. } => event_key,
        other => panic!("{platform} delivery not accepted: {other:?}"),
    }
}

#[test]
fn the_orders_cover_large_ids_and_currencies_with_and_without_decimals() {
    let orders = orders();
    assert!(orders.iter().all(|o| o.id > 1 << 53));
    assert!(orders.iter().any(|o| o.currency.exponent() == 0));
    assert!(orders.iter().any(|o| o.currency.exponent() == 2));
}

#[test]
fn shopify_bodies_parse_back_and_are_signed_per_event() {
    let sender = ShopifySender::new(ORDERFLOW, "shop", SECRET);
    for order in orders() {
        let event = sender.event("orders/updated", &order);
        let first = sender.delivery(&event);
        let again = sender.delivery(&event);
        assert_eq!(
            accepted(Platform::Shopify, SECRET, &first),
            format!("event:{}", event.event_id)
        );
        assert_eq!(
            first.header("X-Shopify-Event-Id"),
            again.header("X-Shopify-Event-Id")
        );
        assert_ne!(
            first.header("X-Shopify-Webhook-Id"),
            again.header("X-Shopify-Webhook-Id"),
            "each attempt has its own webhook id"
        );
        assert_eq!(first.body, again.body);
        assert_eq!(first.header("X-Shopify-Topic"), Some("orders/updated"));
        assert_eq!(first.header("X-Shopify-API-Version"), Some("2024-01"));
        assert_eq!(
            first.header("X-Shopify-Shop-Domain"),
            Some("shop.myshopify.com")
        );
        assert!(first.header("X-Shopify-Triggered-At").is_some());
        let text = String::from_utf8(first.body.clone()).expect("UTF-8");
        assert!(
            text.contains(&format!("\"id\":{},", order.id)),
            "the id is a JSON integer"
        );

        let parsed = parse_order(Platform::Shopify, &first.body).expect("Shopify parses it");
        assert_eq!(parsed.external_id, order.id.to_string());
        assert_eq!(parsed.number, Some(format!("#{}", order.number)));
        assert_eq!(parsed.created_at, second(order.created_at));
        assert_eq!(parsed.updated_at, second(order.updated_at));
        assert_same_order(Platform::Shopify, &order, &parsed);
    }
}

#[test]
fn woocommerce_bodies_parse_back_with_a_number_price_and_gmt_times() {
    let sender = WooSender::new(ORDERFLOW, "shop", SECRET);
    for order in orders() {
        let delivery = sender.delivery("order.updated", &order);
        let parsed =
            parse_order(Platform::Woocommerce, &delivery.body).expect("WooCommerce parses it");
        let gmt =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let modified = order.updated_at.format(gmt).expect("formattable");
        assert_eq!(
            accepted(Platform::Woocommerce, SECRET, &delivery),
            format!("12:order.updated:{}:{modified}", order.id)
        );
        assert_eq!(delivery.header("X-WC-Webhook-Resource"), Some("order"));
        assert_eq!(delivery.header("X-WC-Webhook-Event"), Some("updated"));
        assert_eq!(
            delivery.header("X-WC-Webhook-Source"),
            Some("https://shop.example/")
        );
        let json: serde_json::Value = serde_json::from_slice(&delivery.body).expect("JSON");
        assert!(json["line_items"][0]["price"].is_number());
        assert!(json["total"].is_string());
        assert!(
            !json["date_modified_gmt"]
                .as_str()
                .expect("a time")
                .ends_with('Z')
        );
        assert_ne!(json["date_modified"], json["date_modified_gmt"]);

        assert_eq!(parsed.external_id, order.id.to_string());
        assert_eq!(parsed.number, Some(order.id.to_string()));
        assert_eq!(parsed.created_at, second(order.created_at));
        assert_eq!(parsed.updated_at, second(order.updated_at));
        assert_same_order(Platform::Woocommerce, &order, &parsed);
    }
}

#[test]
fn jumpseller_bodies_parse_back_with_number_money() {
    let sender = JumpsellerSender::new(ORDERFLOW, "tienda", SECRET);
    for order in orders() {
        let event = sender.event("order_updated", &order);
        let delivery = sender.delivery(&event);
        accepted(Platform::Jumpseller, SECRET, &delivery);
        assert_eq!(delivery.header("Jumpseller-Store-Code"), Some("tienda"));
        assert_eq!(delivery.header("Jumpseller-Event"), Some("order_updated"));
        let triggered = delivery
            .header("Jumpseller-Triggered-At")
            .expect("a trigger time");
        assert!(
            triggered.ends_with(" UTC") && triggered.contains('.'),
            "{triggered}"
        );
        let json: serde_json::Value = serde_json::from_slice(&delivery.body).expect("JSON");
        assert!(json["order"]["total"].is_number());

        let parsed =
            parse_order(Platform::Jumpseller, &delivery.body).expect("Jumpseller parses it");
        assert_eq!(parsed.external_id, order.id.to_string());
        assert_eq!(parsed.created_at, second(order.created_at));
        // Jumpseller's order has no modification time: its payment time is the latest.
        let latest = order.paid_at().unwrap_or(order.created_at);
        assert_eq!(parsed.updated_at, second(latest));
        assert_same_order(Platform::Jumpseller, &order, &parsed);
    }
}

#[test]
fn custom_bodies_are_the_canonical_order_in_a_standard_webhooks_envelope() {
    let sender = CustomSender::new(ORDERFLOW, "home", WHSEC).expect("a whsec_ secret");
    for order in orders() {
        let event = sender.event("order.created", &order).expect("renders");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let first = sender.delivery(&event, now);
        let retry = sender.delivery(&event, now + 5);
        assert_eq!(
            accepted(Platform::Custom, WHSEC, &first),
            format!("webhook-id:{}", event.message_id)
        );
        assert_eq!(first.header("webhook-id"), retry.header("webhook-id"));
        assert_ne!(
            first.header("webhook-signature"),
            retry.header("webhook-signature"),
            "each attempt signs its own timestamp"
        );
        let json: serde_json::Value = serde_json::from_slice(&first.body).expect("JSON");
        assert_eq!(json["type"], "order.created");
        assert!(json["data"].get("platform").is_none());

        let parsed = parse_order(Platform::Custom, &first.body).expect("custom parses it");
        assert_eq!(parsed.external_id, order.id.to_string());
        assert_eq!(parsed.created_at, order.created_at);
        assert_eq!(parsed.updated_at, order.updated_at);
        assert_same_order(Platform::Custom, &order, &parsed);
    }
}

#[test]
fn a_vtex_hook_names_the_order_and_carries_the_configured_secret() {
    let sender = VtexHookSender::new(ORDERFLOW, "luxstore", SECRET);
    for order in orders() {
        let delivery = sender.delivery(&order);
        let key = accepted(Platform::Vtex, SECRET, &delivery);
        let hook = orderflow_connectors::parse::vtex::parse_hook(&delivery.body).expect("a hook");
        assert_eq!(hook.order_id, format!("{}-01", order.id));
        assert_eq!(hook.origin_account, "luxstore");
        assert!(key.starts_with(&format!("{}-01:{}:", order.id, hook.state)));
        assert!(matches!(
            webhook::verify(
                Platform::Vtex,
                &["another secret"],
                &headers(&delivery),
                &delivery.body,
                0
            ),
            Verdict::Unauthorized(_)
        ));
    }
}

#[test]
fn a_vtex_order_body_parses_back_with_integer_cents_and_alpha3_countries() {
    for order in orders() {
        let body = orderflow_sim::vtex::order_body(&order);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(json["value"], order.total_minor());
        assert_eq!(
            json["shippingData"]["address"]["country"]
                .as_str()
                .map(str::len),
            Some(3)
        );
        let parsed = parse_order(Platform::Vtex, &body).expect("VTEX parses it");
        assert_eq!(parsed.external_id, format!("{}-01", order.id));
        assert_eq!(parsed.number, Some(order.number.to_string()));
        assert_eq!(parsed.created_at, order.created_at);
        assert_eq!(parsed.updated_at, order.updated_at);
        assert_same_order(Platform::Vtex, &order, &parsed);
    }
}

#[test]
fn a_magento_order_body_parses_back() {
    for order in orders() {
        let parsed = parse_order(
            Platform::Magento,
            &orderflow_sim::magento::order_body(&order),
        )
        .expect("Magento parses it");
        assert_eq!(parsed.external_id, order.id.to_string());
        assert_eq!(parsed.number, Some(format!("{:09}", order.number)));
        assert_eq!(parsed.updated_at, second(order.updated_at));
        assert_same_order(Platform::Magento, &order, &parsed);
    }
}

#[test]
fn a_tampered_body_is_refused_by_every_signed_platform() {
    let order = Generator::new(1).order();
    let shopify = ShopifySender::new(ORDERFLOW, "shop", SECRET);
    let mut delivery = shopify.delivery(&shopify.event("orders/create", &order));
    delivery.body.push(b' ');
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for (platform, delivery) in [
        (Platform::Shopify, delivery),
        (Platform::Woocommerce, {
            let mut d = WooSender::new(ORDERFLOW, "shop", SECRET).delivery("order.created", &order);
            d.body.push(b' ');
            d
        }),
    ] {
        assert!(matches!(
            webhook::verify(
                platform,
                &[SECRET],
                &headers(&delivery),
                &delivery.body,
                now
            ),
            Verdict::Unauthorized(_)
        ));
    }
}
