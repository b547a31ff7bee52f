//! The order a stored delivery carries, read the way the intake worker reads it: a VTEX hook
//! only names its order, which is fetched from the OMS API; a Jumpseller body is dated by its
//! `Jumpseller-Triggered-At` header; every other platform's body is the order itself. The
//! rule preview uses this so that it judges the same order the worker did.

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
    /// No order can be read from it, and why (a parse error, a failed OMS fetch, a deletion).
    Unreadable(String),
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

    /// The orders `deliveries` (all of `store`) carry, in their order. Each VTEX order is
    /// fetched once however many hooks name it, and as it is now: the OMS keeps no history,
    /// so an old hook is judged by its order's current version, as a worker redoing it would.
    pub async fn read_all(&self, store: &StoreRecord, deliveries: &[Delivery]) -> Vec<Reading> {
        let wanted: BTreeSet<String> = deliveries
            .iter()
            .filter(|d| d.platform == Platform::Vtex.as_str())
            .filter_map(|d| orderflow_connectors::parse::vtex::parse_hook(&d.body).ok())
            .map(|hook| hook.order_id)
            .collect();
        let fetched = self.fetch_vtex_orders(store, wanted).await;
        deliveries
            .iter()
            .map(|delivery| read_fetched(delivery, &fetched))
            .collect()
    }

    async fn fetch_vtex_orders(
        &self,
        store: &StoreRecord,
        order_ids: BTreeSet<String>,
    ) -> BTreeMap<String, Result<Vec<u8>, String>> {
        let mut fetched = BTreeMap::new();
        if order_ids.is_empty() {
            return fetched;
        }
        let Some(api) = store.settings.api.clone() else {
            for order_id in order_ids {
                fetched.insert(
                    order_id,
                    Err("the store has no VTEX API credentials to fetch the order".into()),
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

/// A delivery's order given the VTEX orders already fetched (by order id).
fn read_fetched(
    delivery: &Delivery,
    fetched: &BTreeMap<String, Result<Vec<u8>, String>>,
) -> Reading {
    let Ok(platform) = delivery.platform.parse::<Platform>() else {
        return Reading::Unreadable(format!("unknown platform {}", delivery.platform));
    };
    if platform == Platform::Woocommerce && delivery.topic.as_deref() == Some("order.deleted") {
        return Reading::Unreadable(
            "order.deleted carries only the order id: it cancels the order, no rule applies".into(),
        );
    }
    let fetched_body;
    let body = if platform == Platform::Vtex {
        let hook = match orderflow_connectors::parse::vtex::parse_hook(&delivery.body) {
            Ok(hook) => hook,
            Err(error) => return Reading::Unreadable(error.to_string()),
        };
        fetched_body = match fetched.get(&hook.order_id) {
            Some(Ok(body)) => body,
            Some(Err(reason)) => return Reading::Unreadable(reason.clone()),
            None => {
                return Reading::Unreadable(format!(
                    "VTEX order {} was not fetched",
                    hook.order_id
                ));
            }
        };
        fetched_body.as_slice()
    } else {
        delivery.body.as_slice()
    };
    match parse(platform, delivery, body) {
        Ok(order) => Reading::Order(Box::new(order)),
        Err(error) => Reading::Unreadable(error.to_string()),
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

/// `GET /api/oms/pvt/orders/{orderId}` with the store's app key and token, as the worker
/// fetches it; `Err` says why there is no order.
async fn fetch_vtex_order(
    http: &reqwest::Client,
    api: &orderflow_store::ApiCredentials,
    order_id: &str,
) -> Result<Vec<u8>, String> {
    // The id comes from a signed hook, but it still goes into a URL path.
    if order_id.is_empty()
        || !order_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("{order_id:?} is not a VTEX order id"));
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
        .await
        .map_err(|error| format!("VTEX OMS: {}", error.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("VTEX OMS answered {status} for order {order_id}"));
    }
    response
        .bytes()
        .await
        .map(|body| body.to_vec())
        .map_err(|error| format!("VTEX OMS: {}", error.without_url()))
}
