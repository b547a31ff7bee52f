//! Magento 2 REST (PLATFORMS.md §5): `GET /rest[/{store}]/V1/orders` with `searchCriteria`
//! and `GET /rest[/{store}]/V1/orders/{entity_id}`, for `Authorization: Bearer <token>`.
//!
//! `searchCriteria`: filters in one `filter_groups[i]` are OR, groups are AND; conditions
//! `eq` (the default), `neq`, `gt`, `gteq`, `lt`, `lteq`, `from`, `to`, `in`, `nin`, `like`,
//! `null`, `notnull` on `entity_id`, `increment_id`, `created_at`, `updated_at`, `state`,
//! `status`, `customer_email`; `sortOrders[i][field|direction]` (ASC by default); `pageSize`
//! and `currentPage` (1 by default). Times are UTC, `YYYY-MM-DD HH:MM:SS`.
//! A `currentPage` past the last page answers no items (some Magento versions repeat the last
//! page instead). Not simulated: the `fields` parameter, taxes, discounts, invoices.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::order::{SimOrder, SimStatus, sub_id};
use crate::serve::{self, Shop, SimServer, decode_query};
use crate::shopify::title;
use crate::text::{Json, php_number, spaced};

/// `(state, status)`: the machine state and the default status label of it.
pub fn state(status: SimStatus) -> (&'static str, &'static str) {
    match status {
        SimStatus::Pending => ("new", "pending"),
        SimStatus::Paid => ("processing", "processing"),
        SimStatus::Fulfilled => ("complete", "complete"),
        SimStatus::Cancelled => ("canceled", "canceled"),
        SimStatus::Refunded => ("closed", "closed"),
    }
}

/// `increment_id`, the customer-facing number: nine digits.
pub fn increment_id(order: &SimOrder) -> String {
    format!("{:09}", order.number)
}

fn address_json(order: &SimOrder, kind: &str, entity_id: u64) -> Json {
    let address = &order.address;
    let mut street = vec![Json::from(address.line1())];
    if let Some(line2) = &address.line2 {
        street.push(line2.into());
    }
    Json::object([
        ("address_type", kind.into()),
        ("city", Json::from(&address.city)),
        ("country_id", Json::from(&address.country)),
        ("email", Json::from(&order.customer.email)),
        ("entity_id", entity_id.into()),
        ("firstname", Json::from(&order.customer.first_name)),
        ("lastname", Json::from(&order.customer.last_name)),
        ("parent_id", order.id.into()),
        ("postcode", Json::from(&address.postal_code)),
        ("region", Json::from(&address.region_name)),
        ("region_code", Json::from(&address.region_code)),
        ("street", Json::Array(street)),
        ("telephone", Json::from(&order.customer.phone)),
    ])
}

/// `GET /V1/orders/{id}`'s body for `order`.
pub fn order_body(order: &SimOrder) -> Vec<u8> {
    order_json(order).to_bytes()
}

/// One order as `GET /V1/orders/{id}` returns it, and as each of a search's `items`.
pub(crate) fn order_json(order: &SimOrder) -> Json {
    let e = order.currency.exponent();
    let money = |minor: i64| php_number(minor, e);
    let (state, status) = state(order.status);
    let currency = order.currency.as_str();
    let created = spaced(order.created_at);
    let updated = spaced(order.updated_at);
    let items: Vec<Json> = order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            Json::object([
                ("amount_refunded", money(0)),
                ("base_discount_amount", money(0)),
                ("base_original_price", money(line.unit_price_minor)),
                ("base_price", money(line.unit_price_minor)),
                ("base_row_total", money(line.total_minor())),
                ("base_tax_amount", money(0)),
                ("created_at", created.as_str().into()),
                ("discount_amount", money(0)),
                ("is_virtual", 0u32.into()),
                ("item_id", sub_id(order.id, 10, index).into()),
                ("name", Json::from(&line.name)),
                ("order_id", order.id.into()),
                ("original_price", money(line.unit_price_minor)),
                ("price", money(line.unit_price_minor)),
                ("price_incl_tax", money(line.unit_price_minor)),
                ("product_id", line.product_id.into()),
                ("product_type", "simple".into()),
                ("qty_canceled", 0u32.into()),
                ("qty_invoiced", 0u32.into()),
                ("qty_ordered", line.quantity.into()),
                ("qty_shipped", 0u32.into()),
                ("row_total", money(line.total_minor())),
                ("row_total_incl_tax", money(line.total_minor())),
                ("sku", Json::from(&line.sku)),
                ("store_id", 1u32.into()),
                ("tax_amount", money(0)),
                ("updated_at", updated.as_str().into()),
                ("weight", 1u32.into()),
            ])
        })
        .collect();
    let quantity: u64 = order.lines.iter().map(|l| u64::from(l.quantity)).sum();
    Json::object([
        ("base_currency_code", currency.into()),
        ("base_discount_amount", money(0)),
        ("base_grand_total", money(order.total_minor())),
        ("base_shipping_amount", money(order.shipping_minor)),
        ("base_subtotal", money(order.items_minor())),
        ("base_tax_amount", money(0)),
        ("billing_address_id", sub_id(order.id, 2, 0).into()),
        ("created_at", created.as_str().into()),
        ("customer_email", Json::from(&order.customer.email)),
        ("customer_firstname", Json::from(&order.customer.first_name)),
        ("customer_group_id", 1u32.into()),
        ("customer_id", order.customer.id.into()),
        ("customer_is_guest", 0u32.into()),
        ("customer_lastname", Json::from(&order.customer.last_name)),
        ("discount_amount", money(0)),
        ("entity_id", order.id.into()),
        ("global_currency_code", currency.into()),
        ("grand_total", money(order.total_minor())),
        ("increment_id", increment_id(order).into()),
        ("is_virtual", 0u32.into()),
        ("order_currency_code", currency.into()),
        ("quote_id", sub_id(order.id, 1, 1).into()),
        ("shipping_amount", money(order.shipping_minor)),
        (
            "shipping_description",
            format!(
                "{} - {}",
                title(&order.shipping_method),
                order.shipping_method
            )
            .into(),
        ),
        ("state", state.into()),
        ("status", status.into()),
        ("store_currency_code", currency.into()),
        ("store_id", 1u32.into()),
        (
            "store_name",
            "Main Website\nMain Website Store\nDefault Store View".into(),
        ),
        ("subtotal", money(order.items_minor())),
        ("subtotal_incl_tax", money(order.items_minor())),
        ("tax_amount", money(0)),
        ("total_due", money(order.total_minor())),
        ("total_item_count", order.lines.len().into()),
        ("total_qty_ordered", quantity.into()),
        ("updated_at", updated.as_str().into()),
        ("weight", quantity.into()),
        ("items", Json::Array(items.clone())),
        (
            "billing_address",
            address_json(order, "billing", sub_id(order.id, 2, 0)),
        ),
        (
            "payment",
            Json::object([
                ("amount_ordered", money(order.total_minor())),
                ("entity_id", order.id.into()),
                ("method", "banktransfer".into()),
                ("parent_id", order.id.into()),
                ("shipping_amount", money(order.shipping_minor)),
            ]),
        ),
        ("status_histories", Json::Array(Vec::new())),
        (
            "extension_attributes",
            Json::object([(
                "shipping_assignments",
                Json::Array(vec![Json::object([
                    (
                        "shipping",
                        Json::object([
                            (
                                "address",
                                address_json(order, "shipping", sub_id(order.id, 2, 1)),
                            ),
                            ("method", Json::from(&order.shipping_method)),
                            (
                                "total",
                                Json::object([
                                    ("shipping_amount", money(order.shipping_minor)),
                                    ("shipping_incl_tax", money(order.shipping_minor)),
                                    ("shipping_tax_amount", money(0)),
                                ]),
                            ),
                        ]),
                    ),
                    ("items", Json::Array(items)),
                ])]),
            )]),
        ),
    ])
}

#[derive(Debug, Clone)]
struct Rest {
    shop: Shop,
    token: String,
}

/// The REST API over `shop`, for `Authorization: Bearer <token>`.
pub async fn serve(shop: Shop, token: &str) -> std::io::Result<SimServer> {
    let (listener, url) = serve::bind().await?;
    let state = Rest {
        shop: shop.clone(),
        token: token.to_owned(),
    };
    let router = Router::new()
        .route("/rest/V1/orders", get(search))
        .route("/rest/{store}/V1/orders", get(search_in_store))
        .route("/rest/V1/orders/{id}", get(get_order))
        .route("/rest/{store}/V1/orders/{id}", get(get_order_in_store))
        .with_state(state);
    Ok(serve::sim_server(serve::serve(listener, url, router), shop))
}

fn magento_error(status: StatusCode, message: &str, parameters: Json) -> Response {
    let body = Json::object([("message", message.into()), ("parameters", parameters)]).to_bytes();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_ok(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

impl Rest {
    fn authorise(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer == Some(self.token.as_str()) {
            Ok(())
        } else {
            Err(Box::new(magento_error(
                StatusCode::UNAUTHORIZED,
                "The consumer isn't authorized to access %resources.",
                Json::object([("resources", "Magento_Sales::actions_view".into())]),
            )))
        }
    }
}

async fn get_order(
    State(rest): State<Rest>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = rest.authorise(&headers) {
        return *refused;
    }
    match id.parse::<u64>().ok().and_then(|id| rest.shop.get(id)) {
        Some(order) => json_ok(order_json(&order).to_bytes()),
        None => magento_error(
            StatusCode::NOT_FOUND,
            "The entity that was requested doesn't exist. Verify the entity and try again.",
            Json::Array(Vec::new()),
        ),
    }
}

async fn get_order_in_store(
    State(rest): State<Rest>,
    Path((_store, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    get_order(State(rest), Path(id), headers).await
}

async fn search_in_store(
    State(rest): State<Rest>,
    Path(_store): Path<String>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    search(State(rest), headers, query).await
}

#[derive(Debug, Clone, Default)]
struct Criterion {
    field: Option<String>,
    value: Option<String>,
    condition: Option<String>,
}

#[derive(Debug, Default)]
struct SearchCriteria {
    groups: BTreeMap<usize, BTreeMap<usize, Criterion>>,
    sorts: BTreeMap<usize, (Option<String>, Option<String>)>,
    page_size: Option<usize>,
    current_page: Option<usize>,
}

/// `searchCriteria[a][0][b]` → `["a", "0", "b"]`.
fn segments(name: &str) -> Option<Vec<&str>> {
    let rest = name.strip_prefix("searchCriteria")?;
    let mut parts = Vec::new();
    let mut rest = rest;
    while let Some(open) = rest.strip_prefix('[') {
        let (part, after) = open.split_once(']')?;
        parts.push(part);
        rest = after;
    }
    rest.is_empty().then_some(parts)
}

impl SearchCriteria {
    fn read(query: &[(String, String)]) -> Result<Self, String> {
        let mut criteria = SearchCriteria::default();
        let index = |text: &str| {
            text.parse::<usize>()
                .map_err(|_| format!("{text:?} is not an index"))
        };
        for (name, value) in query {
            let Some(parts) = segments(name) else {
                continue;
            };
            match parts.as_slice() {
                ["filter_groups", group, "filters", filter, key] => {
                    let criterion = criteria
                        .groups
                        .entry(index(group)?)
                        .or_default()
                        .entry(index(filter)?)
                        .or_default();
                    match *key {
                        "field" => criterion.field = Some(value.clone()),
                        "value" => criterion.value = Some(value.clone()),
                        "condition_type" | "conditionType" => {
                            criterion.condition = Some(value.clone());
                        }
                        _ => {}
                    }
                }
                ["sortOrders" | "sort_orders", at, key] => {
                    let sort = criteria.sorts.entry(index(at)?).or_default();
                    match *key {
                        "field" => sort.0 = Some(value.clone()),
                        "direction" => sort.1 = Some(value.clone()),
                        _ => {}
                    }
                }
                ["pageSize" | "page_size"] => {
                    criteria.page_size = Some(index(value)?);
                }
                ["currentPage" | "current_page"] => {
                    criteria.current_page = Some(index(value)?);
                }
                _ => {}
            }
        }
        Ok(criteria)
    }

    fn echo(&self) -> Json {
        let groups = self
            .groups
            .values()
            .map(|filters| {
                Json::object([(
                    "filters",
                    Json::Array(
                        filters
                            .values()
                            .map(|c| {
                                Json::object([
                                    ("field", c.field.clone().into()),
                                    ("value", c.value.clone().into()),
                                    (
                                        "condition_type",
                                        c.condition.clone().unwrap_or_else(|| "eq".into()).into(),
                                    ),
                                ])
                            })
                            .collect(),
                    ),
                )])
            })
            .collect();
        let mut fields = vec![("filter_groups".to_owned(), Json::Array(groups))];
        if !self.sorts.is_empty() {
            fields.push((
                "sort_orders".to_owned(),
                Json::Array(
                    self.sorts
                        .values()
                        .map(|(field, direction)| {
                            Json::object([
                                ("field", field.clone().into()),
                                (
                                    "direction",
                                    direction.clone().unwrap_or_else(|| "ASC".into()).into(),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ));
        }
        if let Some(size) = self.page_size {
            fields.push(("page_size".to_owned(), size.into()));
        }
        if let Some(page) = self.current_page {
            fields.push(("current_page".to_owned(), page.into()));
        }
        Json::Object(fields)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Number(u64),
    Time(OffsetDateTime),
    Text(String),
}

const SEARCHABLE: [&str; 7] = [
    "entity_id",
    "increment_id",
    "created_at",
    "updated_at",
    "state",
    "status",
    "customer_email",
];

fn value_of(order: &SimOrder, field: &str) -> Option<Value> {
    // Magento stores times to the second.
    let second = |at: OffsetDateTime| Value::Time(at.replace_nanosecond(0).unwrap_or(at));
    Some(match field {
        "entity_id" => Value::Number(order.id),
        "increment_id" => Value::Text(increment_id(order)),
        "created_at" => second(order.created_at),
        "updated_at" => second(order.updated_at),
        "state" => Value::Text(state(order.status).0.to_owned()),
        "status" => Value::Text(state(order.status).1.to_owned()),
        "customer_email" => Value::Text(order.customer.email.clone()),
        _ => return None,
    })
}

fn operand(field: &str, text: &str) -> Option<Value> {
    match field {
        "entity_id" => text.trim().parse().ok().map(Value::Number),
        "created_at" | "updated_at" => orderflow_connectors::timestamp::parse("value", text.trim())
            .ok()
            .map(Value::Time),
        _ => Some(Value::Text(text.to_owned())),
    }
}

/// SQL `LIKE` with `%` for any run of characters, as Magento passes it through.
fn like(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('%').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

fn admits(criterion: &Criterion, order: &SimOrder) -> Result<bool, String> {
    let field = criterion.field.as_deref().ok_or("a filter has no field")?;
    let value = value_of(order, field).ok_or_else(|| format!("\"{field}\" cannot be searched"))?;
    let condition = criterion.condition.as_deref().unwrap_or("eq");
    let text = criterion.value.as_deref().unwrap_or("");
    let single =
        || operand(field, text).ok_or_else(|| format!("{text:?} is not a value of {field}"));
    let list = || {
        text.split(',')
            .map(|item| {
                operand(field, item).ok_or_else(|| format!("{item:?} is not a value of {field}"))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match condition {
        "eq" => value == single()?,
        "neq" => value != single()?,
        "gt" => value > single()?,
        "gteq" | "from" | "moreq" => value >= single()?,
        "lt" => value < single()?,
        "lteq" | "to" => value <= single()?,
        "in" => list()?.contains(&value),
        "nin" => !list()?.contains(&value),
        "like" => match &value {
            Value::Text(value) => like(text, value),
            _ => return Err(format!("\"like\" does not apply to {field}")),
        },
        // Every field the sandbox searches is always set.
        "null" => false,
        "notnull" => true,
        other => return Err(format!("\"{other}\" is not a condition type")),
    })
}

async fn search(State(rest): State<Rest>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(refused) = rest.authorise(&headers) {
        return *refused;
    }
    let query = decode_query(raw.as_deref().unwrap_or(""));
    let bad =
        |message: String| magento_error(StatusCode::BAD_REQUEST, &message, Json::Array(Vec::new()));
    let criteria = match SearchCriteria::read(&query) {
        Ok(criteria) => criteria,
        Err(message) => return bad(message),
    };
    let mut orders = Vec::new();
    for order in rest.shop.orders() {
        let mut every_group = true;
        for filters in criteria.groups.values() {
            let mut any = false;
            for criterion in filters.values() {
                match admits(criterion, &order) {
                    Ok(true) => any = true,
                    Ok(false) => {}
                    Err(message) => return bad(message),
                }
            }
            every_group &= any || filters.is_empty();
        }
        if every_group {
            orders.push(order);
        }
    }
    let mut sorts = Vec::new();
    for (field, direction) in criteria.sorts.values() {
        let field = field.clone().unwrap_or_default();
        if !SEARCHABLE.contains(&field.as_str()) {
            return bad(format!("\"{field}\" cannot be sorted by"));
        }
        let descending = match direction
            .as_deref()
            .unwrap_or("ASC")
            .to_ascii_uppercase()
            .as_str()
        {
            "ASC" => false,
            "DESC" => true,
            other => return bad(format!("\"{other}\" is not a sort direction")),
        };
        sorts.push((field, descending));
    }
    orders.sort_by(|a, b| {
        sorts
            .iter()
            .map(|(field, descending)| {
                let ordering = value_of(a, field).cmp(&value_of(b, field));
                if *descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.id.cmp(&b.id))
    });
    let total = orders.len();
    let page: Vec<&SimOrder> = match criteria.page_size {
        Some(size) => {
            let current = criteria.current_page.unwrap_or(1).max(1);
            orders
                .iter()
                .skip((current - 1).saturating_mul(size))
                .take(size)
                .collect()
        }
        None => orders.iter().collect(),
    };
    let body = Json::object([
        (
            "items",
            Json::Array(page.into_iter().map(order_json).collect()),
        ),
        ("search_criteria", criteria.echo()),
        ("total_count", total.into()),
    ]);
    json_ok(body.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("%@example.com", "ana@example.com"));
        assert!(like("ana%", "ana@example.com"));
        assert!(like("a%e%m", "ana@example.com"));
        assert!(!like("b%", "ana@example.com"));
        assert!(like("exact", "exact"));
        assert!(!like("exact", "exactly"));
    }
}
