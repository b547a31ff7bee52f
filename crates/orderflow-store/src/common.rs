//! What both backends do the same way around their SQL: pricing lines, totals, idempotent
//! replays, shipping and filling backorders, and (de)serialising the JSON columns.

use orderflow_domain::status;
use orderflow_domain::{
    Currency, OrderLine, OrderStatus, ProductId, Quantity, ReservationPlan, Shortfall, StockLevel,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::model::{
    BackorderLine, Idempotency, InboxFilter, Order, OrderFilter, PlaceOrder, Placement, PricedLine,
    Receipt, Scope, StoreSettings,
};

pub(crate) fn latest_version(migrations: &[refinery::Migration]) -> i64 {
    migrations
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// `'pending', 'confirmed', …`: the statuses whose lines hold a reservation, for SQL `IN`.
pub(crate) fn live_statuses_sql() -> String {
    OrderStatus::ALL
        .into_iter()
        .filter(|s| s.holds_reservation())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn live_statuses() -> Vec<String> {
    OrderStatus::ALL
        .into_iter()
        .filter(|s| s.holds_reservation())
        .map(|s| s.as_str().to_owned())
        .collect()
}

/// The answer to a request whose idempotency key was seen before.
pub(crate) fn replay(stored_hash: &str, receipt: &str, request: &Idempotency) -> Result<Placement> {
    if stored_hash != request.request_hash {
        return Err(Error::IdempotencyKeyReused);
    }
    let receipt: Receipt =
        serde_json::from_str(receipt).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(Placement {
        receipt,
        replayed: true,
    })
}

/// The receipt of an order already held, for a placement that finds its storefront order
/// placed before (by its external id): what it reserved, and what it still waits for.
pub(crate) fn receipt_of(order: &Order) -> Receipt {
    Receipt {
        order_id: order.order_id.clone(),
        order_status: order.status,
        products: order
            .lines
            .iter()
            .map(|line| OrderLine {
                product_id: line.product_id.clone(),
                quantity: line.quantity,
            })
            .collect(),
        unavailable: order
            .backorder
            .iter()
            .map(|waiting| {
                let reserved = order
                    .lines
                    .iter()
                    .find(|line| line.product_id == waiting.product_id)
                    .map_or(0, |line| line.quantity.get());
                Shortfall {
                    product_id: waiting.product_id.clone(),
                    requested: reserved.saturating_add(waiting.quantity.get()),
                    available: i64::from(reserved),
                }
            })
            .collect(),
    }
}

/// Attaches each product's current price; `price_of` must know every line's product.
pub(crate) fn price(
    lines: &[OrderLine],
    price_of: impl Fn(&ProductId) -> Option<(i64, Currency)>,
) -> Vec<PricedLine> {
    lines
        .iter()
        .filter_map(|line| {
            let (unit_price_minor, currency) = price_of(&line.product_id)?;
            Some(PricedLine {
                product_id: line.product_id.clone(),
                quantity: line.quantity,
                unit_price_minor,
                currency,
            })
        })
        .collect()
}

/// The order's currency and total; an order with no reserved line has neither.
pub(crate) fn total(lines: &[PricedLine]) -> Result<(Option<Currency>, i64)> {
    let Some(first) = lines.first() else {
        return Ok((None, 0));
    };
    let mut total: i64 = 0;
    for line in lines {
        if line.currency != first.currency {
            return Err(Error::MixedCurrencies);
        }
        let amount = line
            .unit_price_minor
            .checked_mul(i64::from(line.quantity.get()))
            .ok_or_else(|| Error::Corrupt("order total overflows".into()))?;
        total = total
            .checked_add(amount)
            .ok_or_else(|| Error::Corrupt("order total overflows".into()))?;
    }
    Ok((Some(first.currency), total))
}

/// Each product's level once the order's `lines` left the warehouse: the units come off
/// `reserved` and `on_hand` alike. `level_of` must know every line's product.
pub(crate) fn shipped_levels(
    lines: &[PricedLine],
    level_of: impl Fn(&ProductId) -> Option<StockLevel>,
) -> Result<Vec<(&ProductId, StockLevel)>> {
    lines
        .iter()
        .map(|line| {
            let shipped = level_of(&line.product_id)
                .and_then(|level| level.ship(i64::from(line.quantity.get())))
                .ok_or_else(|| {
                    Error::Corrupt(format!(
                        "product {} does not hold the units an order ships",
                        line.product_id
                    ))
                })?;
            Ok((&line.product_id, shipped))
        })
        .collect()
}

/// One product a backordered order waits for, and its place in that product's queue.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) product_id: ProductId,
    pub(crate) quantity: i64,
    /// Units of the product that live orders which started waiting earlier still wait for.
    pub(crate) ahead: i64,
}

/// What a backordered order still misses, per product, before it may take everything it waits
/// for: first come, first served, so the orders ahead of it get their share of what is
/// available first. Empty when its turn has come for every product.
pub(crate) fn still_missing(
    waiting: &[Waiting],
    level_of: impl Fn(&ProductId) -> Option<StockLevel>,
) -> Result<Vec<BackorderLine>> {
    let mut missing = Vec::new();
    for product in waiting {
        let level = level_of(&product.product_id).ok_or_else(|| {
            Error::Corrupt(format!(
                "backordered product {} does not exist",
                product.product_id
            ))
        })?;
        let left_for_it = (level.available() - product.ahead).max(0);
        if left_for_it < product.quantity {
            missing.push(BackorderLine {
                product_id: product.product_id.clone(),
                quantity: quantity(product.quantity - left_for_it)?,
            });
        }
    }
    Ok(missing)
}

/// The order's lines once its backorder is filled: a partly reserved line grows by the units
/// it waited for; a product it had none of yet gets a new line, at its current price, after
/// the others. `price_of` must know every waiting product.
pub(crate) fn filled_lines(
    mut lines: Vec<PricedLine>,
    filled: &[Waiting],
    price_of: impl Fn(&ProductId) -> Option<(i64, Currency)>,
) -> Result<Vec<PricedLine>> {
    for product in filled {
        match lines
            .iter_mut()
            .find(|line| line.product_id == product.product_id)
        {
            Some(line) => {
                line.quantity = quantity(i64::from(line.quantity.get()) + product.quantity)?;
            }
            None => {
                let (unit_price_minor, currency) =
                    price_of(&product.product_id).ok_or_else(|| {
                        Error::Corrupt(format!(
                            "backordered product {} does not exist",
                            product.product_id
                        ))
                    })?;
                lines.push(PricedLine {
                    product_id: product.product_id.clone(),
                    quantity: quantity(product.quantity)?,
                    unit_price_minor,
                    currency,
                });
            }
        }
    }
    Ok(lines)
}

/// The timeline note of a filled backorder.
pub(crate) const BACKORDER_FILLED: &str = "backorder filled";

pub(crate) fn placement_note(plan: &ReservationPlan) -> Option<&'static str> {
    if plan.backorder.is_empty() {
        Some("all units reserved")
    } else {
        Some("waiting for stock")
    }
}

pub(crate) fn quantity(value: i64) -> Result<Quantity> {
    u64::try_from(value)
        .ok()
        .and_then(|v| Quantity::try_from(v).ok())
        .ok_or_else(|| Error::Corrupt(format!("quantity {value}")))
}

pub(crate) fn to_json<T: Serialize>(value: &Option<T>) -> Result<Option<String>> {
    value
        .as_ref()
        .map(|v| serde_json::to_string(v).map_err(|e| Error::Corrupt(e.to_string())))
        .transpose()
}

pub(crate) fn from_json<T: DeserializeOwned>(text: Option<&str>) -> Result<Option<T>> {
    text.map(|t| serde_json::from_str(t).map_err(|e| Error::Corrupt(e.to_string())))
        .transpose()
}

/// Timestamps travel to and from both databases as Unix microseconds.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(value: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000)
        .map_err(|_| Error::Corrupt(format!("timestamp {value} out of range")))
}

/// Parses a column into its domain type; a failure means the stored data is damaged.
pub(crate) fn parse<T: std::str::FromStr>(column: &str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|_| Error::Corrupt(format!("{column} holds {text:?}")))
}

/// The conditions of an order listing, as `(column and operator, value)` pairs for each
/// backend to join with its own placeholders: what the caller may see, then what it asked for.
pub(crate) fn order_conditions(scope: &Scope, filter: &OrderFilter) -> Vec<(&'static str, String)> {
    let mut conditions = Vec::new();
    match scope {
        Scope::Everything => {}
        Scope::Store(store_id) => conditions.push(("store_id =", store_id.to_string())),
        Scope::Customer(store_id, customer_id) => {
            conditions.push(("store_id =", store_id.to_string()));
            conditions.push(("customer_id =", customer_id.to_string()));
        }
    }
    if let Some(store_id) = &filter.store_id {
        conditions.push(("store_id =", store_id.to_string()));
    }
    if let Some(status) = filter.status {
        conditions.push(("status =", status.to_string()));
    }
    if let Some(customer_id) = &filter.customer_id {
        conditions.push(("customer_id =", customer_id.to_string()));
    }
    if let Some(external_id) = &filter.external_id {
        conditions.push(("external_id =", external_id.clone()));
    }
    // Order ids are "ord_" and upper-case base 32, which every collation sorts bytewise, so
    // this comparison and the ORDER BY can use the indexes.
    if let Some(before) = &filter.before {
        conditions.push(("order_id <", before.to_string()));
    }
    conditions
}

/// Whether an order at `status` and `version` may be edited by a request based on
/// `expected_version` (its `If-Match`): the same refusals, in the same order, on both backends.
pub(crate) fn check_editable(
    status: OrderStatus,
    version: i64,
    expected_version: Option<i64>,
) -> Result<()> {
    if expected_version.is_some_and(|expected| expected != version) {
        return Err(Error::VersionMismatch { current: version });
    }
    if !status::editable(status) {
        return Err(Error::NotEditable(status));
    }
    Ok(())
}

/// The plan and lines of a storefront order for a store that does not manage stock here:
/// every line as the platform priced it, nothing reserved, nothing waiting.
pub(crate) fn unmanaged_lines(order: &PlaceOrder) -> Option<(ReservationPlan, Vec<PricedLine>)> {
    let lines = order.source.as_ref()?.unmanaged_lines.clone()?;
    let plan = ReservationPlan {
        reserve: lines.iter().map(PricedLine::as_order_line).collect(),
        backorder: Vec::new(),
    };
    Some((plan, lines))
}

pub(crate) fn settings_json(settings: &StoreSettings) -> Result<String> {
    serde_json::to_string(settings).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(crate) fn settings_from_json(text: &str) -> Result<StoreSettings> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("store settings: {e}")))
}

pub(crate) fn headers_json(headers: &[(String, String)]) -> Result<String> {
    serde_json::to_string(headers).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(crate) fn headers_from_json(text: &str) -> Result<Vec<(String, String)>> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("inbox headers: {e}")))
}

/// The one store a scope is limited to, if any (a customer sees no deliveries or forwards
/// but their store's, and the HTTP layer lets only merchants ask).
pub(crate) fn scope_store(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::Everything => None,
        Scope::Store(store_id) | Scope::Customer(store_id, _) => Some(store_id.as_str()),
    }
}

/// The conditions of an inbox listing, as `(column and operator, value)` pairs.
pub(crate) fn inbox_conditions(scope: &Scope, filter: &InboxFilter) -> Vec<(&'static str, String)> {
    let mut conditions = Vec::new();
    if let Some(store_id) = scope_store(scope) {
        conditions.push(("store_id =", store_id.to_owned()));
    }
    if let Some(store_id) = &filter.store_id {
        conditions.push(("store_id =", store_id.to_string()));
    }
    if let Some(platform) = &filter.platform {
        conditions.push(("platform =", platform.clone()));
    }
    if let Some(status) = filter.status {
        conditions.push(("status =", status.as_str().to_owned()));
    }
    // Delivery ids are time-ordered ("dlv_" and a Crockford base-32 ULID), so a time window
    // and the cursor are both ranges over the primary key.
    let at = |instant: OffsetDateTime, random| {
        let millis = u64::try_from(instant.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        orderflow_domain::id::time_ordered_id("dlv_", millis, random)
    };
    if let Some(after) = filter.received_after {
        conditions.push(("delivery_id >=", at(after, 0)));
    }
    if let Some(before) = filter.received_before {
        conditions.push(("delivery_id <", at(before, 0)));
    }
    if let Some(before) = &filter.before {
        conditions.push(("delivery_id <", before.clone()));
    }
    conditions
}

/// Runs belong to a store; a customer's token sees none.
pub(crate) fn run_visible(scope: &Scope, store_id: &orderflow_domain::StoreId) -> bool {
    match scope {
        Scope::Everything => true,
        Scope::Store(own) => own == store_id,
        Scope::Customer(..) => false,
    }
}
