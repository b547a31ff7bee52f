//! Shopify: the `orders/*` webhook (a bare Order, signed with base64 HMAC-SHA256, re-sent with
//! the same event id and a new webhook id for 4 hours) and the Admin REST
//! `GET /admin/api/{version}/orders.json` a reconciliation pull reads (PLATFORMS.md §1).
//!
//! Not simulated: GraphQL, the `fields` parameter (every field is sent), `closed` orders
//! (the sandbox never archives one), fulfillments and refunds (sent empty).

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderflow_connectors::signature::base64_hmac_sha256;
use time::{OffsetDateTime, UtcOffset};

use crate::order::{SimOrder, SimStatus, fnv1a};
use crate::send::{self, Delivery, RetryPolicy, SendReport, header};
use crate::serve::{self, Shop, SimServer, decode_query, param};
use crate::text::{Json, decimal, rfc3339, shopify_time, uuid_like};

pub const ORDERS_CREATE: &str = "orders/create";
pub const ORDERS_UPDATED: &str = "orders/updated";
pub const ORDERS_PAID: &str = "orders/paid";
pub const ORDERS_CANCELLED: &str = "orders/cancelled";

/// The API version the sandbox serialises as; the pull connector asks for the same.
pub const API_VERSION: &str = "2024-01";

/// The shop's zone: Shopify writes times in it, with its offset. The docs' sample shop is in
/// Ottawa.
pub fn default_offset() -> UtcOffset {
    UtcOffset::from_hms(-5, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// The webhook body for `order`: the bare Order, times in the shop's zone `offset`.
pub fn order_body(order: &SimOrder, offset: UtcOffset) -> Vec<u8> {
    order_json(order, offset).to_bytes()
}

/// The Order object, as the webhook body and as each element of `orders.json`.
pub(crate) fn order_json(order: &SimOrder, offset: UtcOffset) -> Json {
    let e = order.currency.exponent();
    let money = |minor: i64| Json::from(decimal(minor, e));
    let currency = order.currency.as_str();
    let time = |at: OffsetDateTime| Json::from(shopify_time(at, offset));
    let (financial, fulfillment) = match order.status {
        SimStatus::Pending => ("pending", None),
        SimStatus::Paid => ("paid", None),
        SimStatus::Fulfilled => ("paid", Some("fulfilled")),
        SimStatus::Cancelled => ("voided", None),
        SimStatus::Refunded => ("refunded", None),
    };
    let cancelled = order.status == SimStatus::Cancelled;
    let money_set = |minor: i64| {
        let amount = Json::object([("amount", money(minor)), ("currency_code", currency.into())]);
        Json::object([
            ("shop_money", amount.clone()),
            ("presentment_money", amount),
        ])
    };
    let place = place(order);
    let line_items: Vec<Json> = order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let id = fnv1a(format!("{}:{index}", order.id).as_bytes()) % 10_000_000_000_000_000;
            Json::object([
                ("id", id.into()),
                (
                    "admin_graphql_api_id",
                    format!("gid://shopify/LineItem/{id}").into(),
                ),
                ("fulfillable_quantity", line.quantity.into()),
                ("fulfillment_service", "manual".into()),
                ("fulfillment_status", fulfillment.into()),
                ("gift_card", false.into()),
                ("grams", 200u32.into()),
                ("name", line.name.as_str().into()),
                ("price", money(line.unit_price_minor)),
                ("price_set", money_set(line.unit_price_minor)),
                ("product_exists", true.into()),
                ("product_id", line.product_id.into()),
                ("properties", Json::Array(Vec::new())),
                ("quantity", line.quantity.into()),
                ("requires_shipping", true.into()),
                ("sku", line.sku.as_str().into()),
                ("taxable", true.into()),
                ("title", line.name.as_str().into()),
                ("total_discount", money(0)),
                ("variant_id", line.variant_id.into()),
                ("variant_title", "".into()),
                ("vendor", "Sandbox".into()),
                ("tax_lines", Json::Array(Vec::new())),
            ])
        })
        .collect();
    Json::object([
        ("id", order.id.into()),
        (
            "admin_graphql_api_id",
            format!("gid://shopify/Order/{}", order.id).into(),
        ),
        ("browser_ip", Json::Null),
        ("buyer_accepts_marketing", false.into()),
        ("cancel_reason", cancelled.then_some("customer").into()),
        (
            "cancelled_at",
            if cancelled {
                time(order.updated_at)
            } else {
                Json::Null
            },
        ),
        ("closed_at", Json::Null),
        ("confirmed", true.into()),
        ("contact_email", order.customer.email.as_str().into()),
        ("created_at", time(order.created_at)),
        ("currency", currency.into()),
        ("current_subtotal_price", money(order.items_minor())),
        ("current_total_price", money(order.total_minor())),
        ("email", order.customer.email.as_str().into()),
        ("financial_status", financial.into()),
        ("fulfillment_status", fulfillment.into()),
        ("name", format!("#{}", order.number).into()),
        ("number", order.number.saturating_sub(1000).into()),
        ("order_number", order.number.into()),
        ("phone", order.customer.phone.as_str().into()),
        ("presentment_currency", currency.into()),
        ("processed_at", time(order.created_at)),
        ("source_name", "web".into()),
        ("subtotal_price", money(order.items_minor())),
        ("tags", "".into()),
        ("test", false.into()),
        ("total_discounts", money(0)),
        ("total_line_items_price", money(order.items_minor())),
        ("total_price", money(order.total_minor())),
        ("total_shipping_price_set", money_set(order.shipping_minor)),
        ("total_tax", money(0)),
        ("updated_at", time(order.updated_at)),
        (
            "customer",
            Json::object([
                ("id", order.customer.id.into()),
                ("email", order.customer.email.as_str().into()),
                ("first_name", order.customer.first_name.as_str().into()),
                ("last_name", order.customer.last_name.as_str().into()),
                ("phone", order.customer.phone.as_str().into()),
                ("currency", currency.into()),
            ]),
        ),
        ("billing_address", place.clone()),
        ("shipping_address", place),
        ("line_items", Json::Array(line_items)),
        (
            "shipping_lines",
            Json::Array(vec![Json::object([
                ("id", (order.id % 1_000_000_000_000).into()),
                ("carrier_identifier", Json::Null),
                ("code", order.shipping_method.as_str().into()),
                ("discounted_price", money(order.shipping_minor)),
                ("price", money(order.shipping_minor)),
                ("source", "shopify".into()),
                ("title", title(&order.shipping_method).into()),
                ("tax_lines", Json::Array(Vec::new())),
            ])]),
        ),
        ("fulfillments", Json::Array(Vec::new())),
        ("refunds", Json::Array(Vec::new())),
    ])
}

fn place(order: &SimOrder) -> Json {
    let address = &order.address;
    let country_name = crate::order::country(&address.country).map_or("", |c| c.name);
    Json::object([
        ("first_name", order.customer.first_name.as_str().into()),
        ("address1", address.line1().into()),
        ("phone", order.customer.phone.as_str().into()),
        ("city", address.city.as_str().into()),
        ("zip", address.postal_code.as_str().into()),
        ("province", address.region_name.as_str().into()),
        ("country", country_name.into()),
        ("last_name", order.customer.last_name.as_str().into()),
        ("address2", address.line2.as_deref().into()),
        ("company", Json::Null),
        ("latitude", Json::Null),
        ("longitude", Json::Null),
        ("name", order.customer.full_name().into()),
        ("country_code", address.country.as_str().into()),
        ("province_code", address.region_code.as_str().into()),
    ])
}

/// `next_day` → `Next day`: the title a shop shows for a method code.
pub(crate) fn title(code: &str) -> String {
    let spaced = code.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One event: the same body, event id and trigger time on every re-send of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyEvent {
    pub topic: String,
    pub event_id: String,
    pub triggered_at: OffsetDateTime,
    pub body: Vec<u8>,
}

/// Posts Shopify webhooks to `{orderflow}/webhooks/shopify/{store_id}`.
#[derive(Debug, Clone)]
pub struct ShopifySender {
    http: reqwest::Client,
    url: String,
    secret: String,
    shop_domain: String,
    offset: UtcOffset,
    policy: RetryPolicy,
}

impl ShopifySender {
    /// `secret` is the app's client secret the store is configured with.
    pub fn new(orderflow: &str, store_id: &str, secret: &str) -> Self {
        Self {
            http: send::client(),
            url: send::webhook_url(orderflow, "shopify", store_id),
            secret: secret.to_owned(),
            shop_domain: format!("{store_id}.myshopify.com"),
            offset: default_offset(),
            policy: RetryPolicy::shopify(),
        }
    }

    pub fn shop_domain(mut self, domain: &str) -> Self {
        self.shop_domain = domain.to_owned();
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The shop's zone, in which times are written.
    pub fn offset(mut self, offset: UtcOffset) -> Self {
        self.offset = offset;
        self
    }

    /// A new event about `order` on `topic` (`orders/create`, …).
    pub fn event(&self, topic: &str, order: &SimOrder) -> ShopifyEvent {
        ShopifyEvent {
            topic: topic.to_owned(),
            event_id: uuid_like(rand::random()),
            triggered_at: OffsetDateTime::now_utc(),
            body: order_json(order, self.offset).to_bytes(),
        }
    }

    /// One attempt at delivering `event`: a webhook id of its own, everything else the
    /// event's.
    pub fn delivery(&self, event: &ShopifyEvent) -> Delivery {
        Delivery {
            url: self.url.clone(),
            headers: vec![
                header("Content-Type", "application/json"),
                header("User-Agent", "Shopify-Captain-Hook"),
                header("X-Shopify-Topic", event.topic.as_str()),
                header(
                    "X-Shopify-Hmac-Sha256",
                    base64_hmac_sha256(self.secret.as_bytes(), &event.body),
                ),
                header("X-Shopify-Shop-Domain", self.shop_domain.as_str()),
                header("X-Shopify-API-Version", API_VERSION),
                header("X-Shopify-Webhook-Id", uuid_like(rand::random())),
                header("X-Shopify-Event-Id", event.event_id.as_str()),
                header("X-Shopify-Triggered-At", rfc3339(event.triggered_at)),
            ],
            body: event.body.clone(),
        }
    }

    /// Sends a new event about `order` until a 2xx answer or the policy gives up.
    pub async fn send(&self, topic: &str, order: &SimOrder) -> SendReport {
        self.send_event(&self.event(topic, order)).await
    }

    /// Sends `event` (again, if it was sent before: Shopify re-sends the original payload).
    pub async fn send_event(&self, event: &ShopifyEvent) -> SendReport {
        // Only 2xx counts; Shopify takes a redirect as a failure.
        send::deliver(&self.http, &self.policy, send::is_2xx, |_| {
            self.delivery(event)
        })
        .await
    }
}

#[derive(Debug, Clone)]
struct Admin {
    shop: Shop,
    token: String,
    url: String,
    offset: UtcOffset,
}

/// The Admin REST API's `GET /admin/api/{version}/orders.json` over `shop`, for
/// `X-Shopify-Access-Token: access_token`.
///
/// Supports `status` (`open` by default, `any`, `cancelled`, `closed`), `updated_at_min/max`,
/// `created_at_min/max` (inclusive), `since_id`, `ids`, `order` (`updated_at|created_at|id`
/// `asc|desc`, default `created_at desc`), `limit` (default 50, at most 250) and cursor
/// pagination through the `Link` header's `page_info`, which (as at Shopify) allows no other
/// filter beside it.
pub async fn serve_admin(shop: Shop, access_token: &str) -> std::io::Result<SimServer> {
    let (listener, url) = serve::bind().await?;
    let state = Admin {
        shop: shop.clone(),
        token: access_token.to_owned(),
        url: url.clone(),
        offset: default_offset(),
    };
    let router = Router::new()
        .route("/admin/api/{version}/orders.json", get(list_orders))
        .with_state(state);
    Ok(serve::sim_server(serve::serve(listener, url, router), shop))
}

fn shopify_error(status: StatusCode, errors: Json) -> Response {
    let body = Json::object([("errors", errors)]).to_bytes();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    UpdatedAt,
    CreatedAt,
    Id,
}

/// Where a page ends, for the next one to start after: the sort value and the id.
type Position = (i128, u64);

fn sort_value(order: &SimOrder, field: SortField) -> Position {
    let value = match field {
        SortField::UpdatedAt => order.updated_at.unix_timestamp_nanos(),
        SortField::CreatedAt => order.created_at.unix_timestamp_nanos(),
        SortField::Id => i128::from(order.id),
    };
    (value, order.id)
}

async fn list_orders(
    State(admin): State<Admin>,
    axum::extract::Path(version): axum::extract::Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(admin.token.as_str()) {
        return shopify_error(
            StatusCode::UNAUTHORIZED,
            "[API] Invalid API key or access token (unrecognized login or wrong password)".into(),
        );
    }
    let query = decode_query(raw.as_deref().unwrap_or(""));
    let limit = match param(&query, "limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(limit)) if limit >= 1 => limit.min(250),
        Some(_) => return bad_param("limit", "must be a number from 1 to 250"),
    };
    // A page_info carries the first page's filters; Shopify refuses others beside it.
    let (filters, after) = match param(&query, "page_info") {
        Some(page_info) => {
            if query
                .iter()
                .any(|(name, _)| !matches!(name.as_str(), "page_info" | "limit" | "fields"))
            {
                return bad_param(
                    "page_info",
                    "only limit and fields may be given with page_info",
                );
            }
            match decode_page_info(page_info) {
                Some(decoded) => decoded,
                None => return bad_param("page_info", "Invalid value."),
            }
        }
        None => (
            query
                .iter()
                .filter(|(name, _)| name != "limit")
                .cloned()
                .collect(),
            None,
        ),
    };
    let selection = match Selection::read(&filters) {
        Ok(selection) => selection,
        Err(response) => return *response,
    };
    let mut orders: Vec<SimOrder> = admin
        .shop
        .orders()
        .into_iter()
        .filter(|order| selection.admits(order))
        .collect();
    orders.sort_by_key(|order| sort_value(order, selection.sort));
    if selection.descending {
        orders.reverse();
    }
    if let Some(after) = after {
        orders.retain(|order| {
            let position = sort_value(order, selection.sort);
            if selection.descending {
                position < after
            } else {
                position > after
            }
        });
    }
    let more = orders.len() > limit;
    orders.truncate(limit);
    let body = Json::object([(
        "orders",
        Json::Array(
            orders
                .iter()
                .map(|order| order_json(order, admin.offset))
                .collect(),
        ),
    )])
    .to_bytes();
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    if let (true, Some(last)) = (more, orders.last()) {
        let page_info = encode_page_info(&filters, sort_value(last, selection.sort));
        let link = format!(
            "<{}/admin/api/{version}/orders.json?limit={limit}&page_info={page_info}>; rel=\"next\"",
            admin.url
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

fn bad_param(name: &str, message: &str) -> Response {
    shopify_error(
        StatusCode::BAD_REQUEST,
        Json::object([(name, Json::from(message))]),
    )
}

/// The first page's filters and the last position, in an opaque URL-safe token.
fn encode_page_info(filters: &[(String, String)], after: Position) -> String {
    let mut text = format!("{}:{}", after.0, after.1);
    for (name, value) in filters {
        text.push('\n');
        text.push_str(name);
        text.push('=');
        text.push_str(value);
    }
    URL_SAFE_NO_PAD.encode(text)
}

type Decoded = (Vec<(String, String)>, Option<Position>);

fn decode_page_info(token: &str) -> Option<Decoded> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut lines = text.split('\n');
    let (value, id) = lines.next()?.split_once(':')?;
    let after = (value.parse().ok()?, id.parse().ok()?);
    let filters = lines
        .map(|line| {
            let (name, value) = line.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((filters, Some(after)))
}

struct Selection {
    status: String,
    updated_min: Option<OffsetDateTime>,
    updated_max: Option<OffsetDateTime>,
    created_min: Option<OffsetDateTime>,
    created_max: Option<OffsetDateTime>,
    since_id: Option<u64>,
    ids: Option<Vec<u64>>,
    sort: SortField,
    descending: bool,
}

impl Selection {
    fn read(query: &[(String, String)]) -> Result<Self, Box<Response>> {
        let instant = |name: &str| -> Result<Option<OffsetDateTime>, Box<Response>> {
            match param(query, name) {
                None => Ok(None),
                Some(text) => orderflow_connectors::timestamp::parse("time", text)
                    .map(Some)
                    .map_err(|_| Box::new(bad_param(name, "must be an ISO 8601 time"))),
            }
        };
        let status = param(query, "status").unwrap_or("open").to_owned();
        if !matches!(status.as_str(), "open" | "closed" | "cancelled" | "any") {
            return Err(Box::new(bad_param(
                "status",
                "must be open, closed, cancelled or any",
            )));
        }
        let (sort, descending) = match param(query, "order").map(str::trim) {
            None => (SortField::CreatedAt, true),
            Some(order) => {
                let (field, direction) = order.split_once(' ').unwrap_or((order, "asc"));
                let field = match field {
                    "updated_at" => SortField::UpdatedAt,
                    "created_at" => SortField::CreatedAt,
                    "id" => SortField::Id,
                    _ => return Err(Box::new(bad_param("order", "unknown field"))),
                };
                match direction.trim().to_ascii_lowercase().as_str() {
                    "asc" => (field, false),
                    "desc" => (field, true),
                    _ => {
                        return Err(Box::new(bad_param(
                            "order",
                            "direction must be asc or desc",
                        )));
                    }
                }
            }
        };
        let since_id = match param(query, "since_id") {
            None => None,
            Some(text) => Some(
                text.parse()
                    .map_err(|_| Box::new(bad_param("since_id", "must be an id")))?,
            ),
        };
        let ids = match param(query, "ids") {
            None => None,
            Some(text) => Some(
                text.split(',')
                    .map(|id| id.trim().parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| Box::new(bad_param("ids", "must be ids separated by commas")))?,
            ),
        };
        Ok(Self {
            status,
            updated_min: instant("updated_at_min")?,
            updated_max: instant("updated_at_max")?,
            created_min: instant("created_at_min")?,
            created_max: instant("created_at_max")?,
            since_id,
            ids,
            sort,
            descending,
        })
    }

    fn admits(&self, order: &SimOrder) -> bool {
        // Times are compared at the second, as they are written.
        let updated = truncate(order.updated_at);
        let created = truncate(order.created_at);
        let cancelled = order.status == SimStatus::Cancelled;
        let status = match self.status.as_str() {
            "open" => !cancelled,
            "cancelled" => cancelled,
            "closed" => false,
            _ => true,
        };
        status
            && self.updated_min.is_none_or(|min| updated >= min)
            && self.updated_max.is_none_or(|max| updated <= max)
            && self.created_min.is_none_or(|min| created >= min)
            && self.created_max.is_none_or(|max| created <= max)
            && self.since_id.is_none_or(|since| order.id > since)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&order.id))
    }
}

fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}
