//! Jumpseller: order webhooks, `{"order":{…}}` with JSON-number money, signed with the store's
//! hooks token, and the admin REST API the orders can be read back from (PLATFORMS.md §6).
//!
//! Jumpseller's documented order states are pending_payment, paid, canceled and abandoned:
//! a refunded sandbox order is sent as `canceled`. Its orders carry no modification time;
//! `completed_at` (the payment) is the latest one a body holds.
//!
//! The API ([`serve_api`]) takes the store's login and auth token as HTTP Basic credentials
//! (Jumpseller's recommended way) or as the deprecated `login`/`authtoken` query parameters.
//! It lists orders page by page (`page` from 1, `limit` 50 by default and at most 100), with
//! no filter on when an order changed, for Jumpseller documents none: `GET /v1/orders.json`
//! lists every order and `GET /v1/orders/after/{id}.json` those after an id ("after 5000
//! returns 5001, 5002, 5003…"), both in id order here (Jumpseller does not say how
//! `/orders.json` is sorted). Each element is `{"order":{…}}`, the webhook's body. Not
//! simulated: the other resources, `/orders/search.json`, OAuth, and the rate limit's
//! headers.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orderflow_connectors::signature::base64_hmac_sha256;
use time::OffsetDateTime;

use crate::order::{SimOrder, SimStatus};
use crate::send::{self, Delivery, RetryPolicy, SendReport, header};
use crate::serve::{self, Shop, SimServer, basic_auth, decode_query, param};
use crate::shopify::title;
use crate::text::{Json, jumpseller_time, jumpseller_triggered_at, ruby_number};

pub const ORDER_CREATED: &str = "order_created";
pub const ORDER_PAID: &str = "order_paid";
pub const ORDER_UPDATED: &str = "order_updated";
pub const ORDER_SHIPPED: &str = "order_shipped";
pub const ORDER_CANCELED: &str = "order_canceled";

/// The webhook body for `order`.
pub fn order_body(order: &SimOrder) -> Vec<u8> {
    order_json(order).to_bytes()
}

/// The body of a Jumpseller order webhook, as `GET /v1/orders/{id}.json` returns the order.
pub(crate) fn order_json(order: &SimOrder) -> Json {
    let e = order.currency.exponent();
    let money = |minor: i64| ruby_number(minor, e);
    let (status, status_enum) = match order.status {
        SimStatus::Pending => ("Pending Payment", "pending_payment"),
        SimStatus::Paid | SimStatus::Fulfilled => ("Paid", "paid"),
        SimStatus::Cancelled | SimStatus::Refunded => ("Canceled", "canceled"),
    };
    let shipped = order.status == SimStatus::Fulfilled;
    let address = &order.address;
    let country_name = crate::order::country(&address.country).map_or("", |c| c.name);
    let place = |billing: bool| {
        let mut fields = vec![
            ("name", Json::from(&order.customer.first_name)),
            ("surname", Json::from(&order.customer.last_name)),
            ("address", Json::from(&address.street)),
            ("street_number", Json::from(&address.number)),
            ("city", Json::from(&address.city)),
            ("postal", Json::from(&address.postal_code)),
            ("region", Json::from(&address.region_name)),
            ("region_code", Json::from(&address.region_code)),
            ("country", country_name.into()),
            ("country_code", Json::from(&address.country)),
            ("complement", address.line2.as_deref().into()),
            ("municipality", Json::from(&address.city)),
            ("latitude", Json::Null),
            ("longitude", Json::Null),
        ];
        if billing {
            fields.push(("taxid", Json::Null));
        }
        Json::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    };
    let products = order
        .lines
        .iter()
        .map(|line| {
            Json::object([
                ("id", line.product_id.into()),
                ("variant_id", line.variant_id.into()),
                ("sku", Json::from(&line.sku)),
                ("name", Json::from(&line.name)),
                ("qty", line.quantity.into()),
                ("price", money(line.unit_price_minor)),
                ("tax", money(0)),
                ("discount", money(0)),
                ("weight", Json::number("0.2")),
                ("type", "physical".into()),
            ])
        })
        .collect();
    Json::object([(
        "order",
        Json::object([
            ("id", order.id.into()),
            ("created_at", jumpseller_time(order.created_at).into()),
            ("completed_at", order.paid_at().map(jumpseller_time).into()),
            ("status", status.into()),
            ("status_enum", status_enum.into()),
            ("currency", order.currency.as_str().into()),
            ("subtotal", money(order.items_minor())),
            ("tax", money(0)),
            ("shipping_tax", money(0)),
            ("shipping", money(order.shipping_minor)),
            ("discount", money(0)),
            ("shipping_discount", money(0)),
            ("total", money(order.total_minor())),
            ("shipping_method_id", (order.id % 1000 + 1).into()),
            ("shipping_method_name", Json::from(&order.shipping_method)),
            (
                "shipping_method_title",
                title(&order.shipping_method).into(),
            ),
            ("payment_method_name", "Transferencia bancaria".into()),
            ("payment_method_type", "manual".into()),
            (
                "fulfillment_status",
                if shipped { "fulfilled" } else { "unfulfilled" }.into(),
            ),
            (
                "shipment_status",
                if shipped { "Shipped" } else { "Not Shipped" }.into(),
            ),
            (
                "shipment_status_enum",
                if shipped { "shipped" } else { "not_shipped" }.into(),
            ),
            ("tracking_number", Json::Null),
            ("tracking_company", Json::Null),
            (
                "customer",
                Json::object([
                    ("id", order.customer.id.into()),
                    ("email", Json::from(&order.customer.email)),
                    ("phone", Json::from(&order.customer.phone)),
                    ("fullname", order.customer.full_name().into()),
                ]),
            ),
            ("shipping_address", place(false)),
            ("billing_address", place(true)),
            ("products", Json::Array(products)),
            ("coupons", Json::Array(Vec::new())),
            ("promotions", Json::Array(Vec::new())),
        ]),
    )])
}

/// One event; a re-send carries the same body and trigger time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpsellerEvent {
    pub event: String,
    pub triggered_at: OffsetDateTime,
    pub body: Vec<u8>,
}

/// Posts Jumpseller webhooks to `{orderflow}/webhooks/jumpseller/{store_id}`.
#[derive(Debug, Clone)]
pub struct JumpsellerSender {
    http: reqwest::Client,
    url: String,
    hooks_token: String,
    store_code: String,
    policy: RetryPolicy,
}

impl JumpsellerSender {
    /// `hooks_token` is the store's hooks token (not its API token).
    pub fn new(orderflow: &str, store_id: &str, hooks_token: &str) -> Self {
        Self {
            http: send::client(),
            url: send::webhook_url(orderflow, "jumpseller", store_id),
            hooks_token: hooks_token.to_owned(),
            store_code: store_id.to_owned(),
            policy: RetryPolicy::jumpseller(),
        }
    }

    pub fn store_code(mut self, code: &str) -> Self {
        self.store_code = code.to_owned();
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn event(&self, event: &str, order: &SimOrder) -> JumpsellerEvent {
        JumpsellerEvent {
            event: event.to_owned(),
            triggered_at: OffsetDateTime::now_utc(),
            body: order_json(order).to_bytes(),
        }
    }

    pub fn delivery(&self, event: &JumpsellerEvent) -> Delivery {
        Delivery {
            url: self.url.clone(),
            headers: vec![
                header("Content-Type", "application/json"),
                header("Jumpseller-Store-Code", self.store_code.as_str()),
                header("Jumpseller-Event", event.event.as_str()),
                header(
                    "Jumpseller-Hmac-Sha256",
                    base64_hmac_sha256(self.hooks_token.as_bytes(), &event.body),
                ),
                header(
                    "Jumpseller-Triggered-At",
                    jumpseller_triggered_at(event.triggered_at),
                ),
            ],
            body: event.body.clone(),
        }
    }

    pub async fn send(&self, event: &str, order: &SimOrder) -> SendReport {
        let event = self.event(event, order);
        send::deliver(&self.http, &self.policy, send::is_2xx, |_| {
            self.delivery(&event)
        })
        .await
    }
}

#[derive(Debug, Clone)]
struct Api {
    shop: Shop,
    login: String,
    auth_token: String,
}

/// Jumpseller's admin API over `shop` for this login and auth token: `GET /v1/orders.json`,
/// `/v1/orders/after/{id}.json`, `/v1/orders/{id}.json` and `/v1/orders/count.json`. 401
/// for other credentials, 404 for an unknown order, 400 for a page or limit that is not a
/// positive number; a limit over 100 is taken as 100.
pub async fn serve_api(shop: Shop, login: &str, auth_token: &str) -> std::io::Result<SimServer> {
    let (listener, url) = serve::bind().await?;
    let state = Api {
        shop: shop.clone(),
        login: login.to_owned(),
        auth_token: auth_token.to_owned(),
    };
    let router = Router::new()
        .route("/v1/orders.json", get(list_orders))
        .route("/v1/orders/count.json", get(count_orders))
        .route("/v1/orders/after/{file}", get(orders_after))
        .route("/v1/orders/{file}", get(get_order))
        .with_state(state);
    Ok(serve::sim_server(serve::serve(listener, url, router), shop))
}

impl Api {
    fn authorised(&self, headers: &HeaderMap, query: &[(String, String)]) -> bool {
        let given = basic_auth(headers).or_else(|| {
            Some((
                param(query, "login")?.to_owned(),
                param(query, "authtoken")?.to_owned(),
            ))
        });
        given.is_some_and(|(login, token)| login == self.login && token == self.auth_token)
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    json(status, Json::object([("message", text.into())]).to_bytes())
}

/// `{id}.json` → the id.
fn json_id(file: &str) -> Option<u64> {
    file.strip_suffix(".json")?.parse().ok()
}

/// Authenticates, then answers one page of the shop's orders in id order that `keep`.
fn page_of(
    api: &Api,
    headers: &HeaderMap,
    raw: Option<&str>,
    keep: impl Fn(&SimOrder) -> bool,
) -> Response {
    let query = decode_query(raw.unwrap_or(""));
    if !api.authorised(headers, &query) {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let number = |name: &str, default: usize| match param(&query, name) {
        None => Some(default),
        Some(text) => text.trim().parse::<usize>().ok().filter(|n| *n >= 1),
    };
    let (Some(page), Some(limit)) = (number("page", 1), number("limit", 50)) else {
        return message(
            StatusCode::BAD_REQUEST,
            "page and limit must be positive numbers",
        );
    };
    let limit = limit.min(100);
    let mut orders: Vec<SimOrder> = api.shop.orders().into_iter().filter(keep).collect();
    orders.sort_by_key(|order| order.id);
    let items = orders
        .iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .map(order_json)
        .collect();
    json(StatusCode::OK, Json::Array(items).to_bytes())
}

async fn list_orders(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    page_of(&api, &headers, raw.as_deref(), |_| true)
}

async fn orders_after(
    State(api): State<Api>,
    Path(file): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(after) = json_id(&file) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    page_of(&api, &headers, raw.as_deref(), |order| order.id > after)
}

async fn count_orders(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = decode_query(raw.as_deref().unwrap_or(""));
    if !api.authorised(&headers, &query) {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let count = api.shop.orders().len();
    json(
        StatusCode::OK,
        Json::object([("count", count.into())]).to_bytes(),
    )
}

async fn get_order(
    State(api): State<Api>,
    Path(file): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = decode_query(raw.as_deref().unwrap_or(""));
    if !api.authorised(&headers, &query) {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    match json_id(&file).and_then(|id| api.shop.get(id)) {
        Some(order) => json(StatusCode::OK, order_body(&order)),
        None => message(StatusCode::NOT_FOUND, "Order not found."),
    }
}
