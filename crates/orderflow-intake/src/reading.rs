//! The order a stored delivery carries, read the one way the intake worker and the rule
//! preview share: a VTEX hook only names its order, which is fetched from the OMS API; a
//! Jumpseller body is dated by its `Jumpseller-Triggered-At` header; a deletion notice
//! (WooCommerce's `order.deleted`, Shopify's `orders/delete`) names an order and nothing else;
//! every other platform's body is the order itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use orderflow_connectors::{IncomingOrder, Platform, parse_order};
use orderflow_store::{Delivery, StoreRecord};
use tokio::sync::Semaphore;

/// How many OMS fetches one [`Reader::read_all`] has in flight at once: enough to preview
/// a few hundred hooks in seconds, few enough not to be throttled by VTEX.
const FETCHES_AT_ONCE: usize = 8;

/// What a delivery turned out to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Order(Box<IncomingOrder>),
    /// The platform deleted its order `external_id`: the notice carries nothing else, so no
    /// rule applies; the worker cancels the order held for that id.
    Deleted {
        platform: Platform,
        external_id: String,
    },
    /// No order can be read from it, and why (a parse error, a refused OMS fetch).
    Unreadable(String),
}

/// The VTEX OMS could not be reached or asked to be asked later (a timeout, `429`, a `5xx`):
/// unlike a refusal, worth another try, which the worker makes and the preview does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(String);

/// What the OMS gave for one order.
#[derive(Debug, Clone)]
enum Fetched {
    Body(Vec<u8>),
    /// A permanent refusal: no credentials, not an order id, `404`.
    Refused(String),
    Unavailable(Unavailable),
}

/// Reads deliveries into orders, fetching VTEX's from the OMS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reader {
    http: reqwest::Client,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Reader {
    /// `timeout` bounds each OMS request.
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
        }
    }

    /// The order one delivery of `store` carries, as the worker reads it before deciding
    /// its fate. `Err` is a passing failure of the OMS: the delivery should be tried again.
    pub async fn read(
        &self,
        store: &StoreRecord,
        delivery: &Delivery,
    ) -> Result<Reading, Unavailable> {
        let deliveries = std::slice::from_ref(delivery);
        let fetched = self
            .fetch_vtex_orders(store, vtex_order_ids(deliveries))
            .await;
        read_fetched(delivery, &fetched)
    }

    /// The orders `deliveries` (all of `store`) carry, in their order. Each VTEX order is
    /// fetched once however many hooks name it, and as it is now: the OMS keeps no history,
    /// so an old hook is judged by its order's current version, as a worker redoing it would.
    /// An OMS that is unavailable leaves its hooks unreadable: a preview does not wait.
    pub async fn read_all(&self, store: &StoreRecord, deliveries: &[Delivery]) -> Vec<Reading> {
        let fetched = self
            .fetch_vtex_orders(store, vtex_order_ids(deliveries))
            .await;
        deliveries
            .iter()
            .map(|delivery| {
                read_fetched(delivery, &fetched)
                    .unwrap_or_else(|unavailable| Reading::Unreadable(unavailable.0))
            })
            .collect()
    }

    async fn fetch_vtex_orders(
        &self,
        store: &StoreRecord,
        order_ids: BTreeSet<String>,
    ) -> BTreeMap<String, Fetched> {
        let mut fetched = BTreeMap::new();
        if order_ids.is_empty() {
            return fetched;
        }
        let Some(api) = store.settings.api.clone() else {
            for order_id in order_ids {
                fetched.insert(
                    order_id,
                    Fetched::Refused(
                        "the store has no VTEX API credentials to fetch the order".into(),
                    ),
                );
            }
            return fetched;
        };
        let api = Arc::new(api);
        let permits = Arc::new(Semaphore::new(FETCHES_AT_ONCE));
        let mut fetching = tokio::task::JoinSet::new();
        for order_id in order_ids {
            let (http, api, permits) = (self.http.clone(), api.clone(), permits.clone());
            fetching.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let body = fetch_vtex_order(&http, &api, &order_id).await;
                (order_id, body)
            });
        }
        while let Some(done) = fetching.join_next().await {
            if let Ok((order_id, body)) = done {
                fetched.insert(order_id, body);
            }
        }
        fetched
    }
}

/// The order ids the VTEX hooks among `deliveries` name.
fn vtex_order_ids(deliveries: &[Delivery]) -> BTreeSet<String> {
    deliveries
        .iter()
        .filter(|d| d.platform == Platform::Vtex.as_str())
        .filter_map(|d| orderflow_connectors::parse::vtex::parse_hook(&d.body).ok())
        .map(|hook| hook.order_id)
        .collect()
}

/// A delivery's order given the VTEX orders already fetched (by order id).
fn read_fetched(
    delivery: &Delivery,
    fetched: &BTreeMap<String, Fetched>,
) -> Result<Reading, Unavailable> {
    let Ok(platform) = delivery.platform.parse::<Platform>() else {
        return Ok(Reading::Unreadable(format!(
            "unknown platform {}",
            delivery.platform
        )));
    };
    if platform == Platform::Woocommerce && delivery.topic.as_deref() == Some("order.deleted") {
        return Ok(woocommerce_deletion(&delivery.body));
    }
    let body = if platform == Platform::Vtex {
        let hook = match orderflow_connectors::parse::vtex::parse_hook(&delivery.body) {
            Ok(hook) => hook,
            Err(error) => return Ok(Reading::Unreadable(error.to_string())),
        };
        match fetched.get(&hook.order_id) {
            Some(Fetched::Body(body)) => body.as_slice(),
            Some(Fetched::Refused(reason)) => return Ok(Reading::Unreadable(reason.clone())),
            Some(Fetched::Unavailable(unavailable)) => return Err(unavailable.clone()),
            None => {
                return Ok(Reading::Unreadable(format!(
                    "VTEX order {} was not fetched",
                    hook.order_id
                )));
            }
        }
    } else {
        delivery.body.as_slice()
    };
    Ok(match parse(platform, delivery, body) {
        Ok(order) => Reading::Order(Box::new(order)),
        // Only on the platform's word that the order is gone: the same id-only body under
        // another topic is a broken delivery, and must not cancel anything.
        Err(orderflow_connectors::ParseError::Deleted {
            platform,
            external_id,
        }) if delivery.topic.as_deref() == Some("orders/delete") => Reading::Deleted {
            platform,
            external_id,
        },
        Err(error) => Reading::Unreadable(error.to_string()),
    })
}

/// WooCommerce's `order.deleted` body is `{"id":…}` alone, which its order parser refuses as
/// having no lines; the topic says what it is.
fn woocommerce_deletion(body: &[u8]) -> Reading {
    #[derive(serde::Deserialize)]
    struct Deleted {
        id: u64,
    }
    match serde_json::from_slice::<Deleted>(body) {
        Ok(deleted) => Reading::Deleted {
            platform: Platform::Woocommerce,
            external_id: deleted.id.to_string(),
        },
        Err(_) => Reading::Unreadable("order.deleted without an order id".into()),
    }
}

/// Parses `body` (the delivery's own, or the order fetched for it) as the worker does.
pub fn parse(
    platform: Platform,
    delivery: &Delivery,
    body: &[u8],
) -> Result<IncomingOrder, orderflow_connectors::ParseError> {
    match platform {
        // A Jumpseller order has no modification time of its own; the header saying when the
        // event fired is what orders its versions.
        Platform::Jumpseller => orderflow_connectors::parse::jumpseller::parse_delivery(
            body,
            delivery.header("jumpseller-triggered-at"),
        ),
        _ => parse_order(platform, body),
    }
}

/// `GET /api/oms/pvt/orders/{orderId}` with the store's app key and token.
async fn fetch_vtex_order(
    http: &reqwest::Client,
    api: &orderflow_store::ApiCredentials,
    order_id: &str,
) -> Fetched {
    // The id comes from a signed hook, but it still goes into a URL path.
    if order_id.is_empty()
        || !order_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Fetched::Refused(format!("{order_id:?} is not a VTEX order id"));
    }
    let url = format!(
        "{}/api/oms/pvt/orders/{order_id}",
        api.base_url.trim_end_matches('/')
    );
    let response = http
        .get(&url)
        .header("X-VTEX-API-AppKey", api.key.as_deref().unwrap_or_default())
        .header(
            "X-VTEX-API-AppToken",
            api.token.as_deref().unwrap_or_default(),
        )
        .header("Accept", "application/json")
        .send()
        .await;
    let unavailable = |error: reqwest::Error| {
        Fetched::Unavailable(Unavailable(format!("VTEX OMS: {}", error.without_url())))
    };
    let response = match response {
        Ok(response) => response,
        Err(error) => return unavailable(error),
    };
    let status = response.status();
    let answered = format!("VTEX OMS answered {status} for order {order_id}");
    if status.as_u16() == 429 || status.is_server_error() {
        return Fetched::Unavailable(Unavailable(answered));
    }
    if !status.is_success() {
        return Fetched::Refused(answered);
    }
    match response.bytes().await {
        Ok(body) => Fetched::Body(body.to_vec()),
        Err(error) => unavailable(error),
    }
}
