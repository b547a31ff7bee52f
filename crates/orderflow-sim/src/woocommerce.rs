//! WooCommerce: `order.*` webhooks (the REST v3 order, signed with base64 HMAC-SHA256, never
//! re-sent), the unsigned `webhook_id=<n>` ping sent when a webhook is saved, and the REST
//! `GET /wp-json/wc/v3/orders` a reconciliation pull reads (PLATFORMS.md §2).
//!
//! Not simulated: taxes, coupons, fees and refunds (sent empty), `include`/`exclude`/`search`,
//! and the `_links`/`_embed` hypermedia.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orderflow_connectors::signature::base64_hmac_sha256;
use time::{OffsetDateTime, UtcOffset};

use crate::order::{SimOrder, SimStatus, fnv1a};
use crate::send::{self, Delivery, RetryPolicy, SendReport, header};
use crate::serve::{self, Shop, SimServer, basic_auth, decode_query, param};
use crate::shopify::title;
use crate::text::{Json, decimal, php_number, zoneless_t};

pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_UPDATED: &str = "order.updated";
pub const ORDER_DELETED: &str = "order.deleted";

/// The site's zone: WooCommerce writes the plain `date_*` fields in it, without an offset,
/// beside the `*_gmt` ones in UTC.
pub fn default_site_offset() -> UtcOffset {
    UtcOffset::from_hms(-3, 0, 0).unwrap_or(UtcOffset::UTC)
}

pub(crate) fn status_word(status: SimStatus) -> &'static str {
    match status {
        SimStatus::Pending => "pending",
        SimStatus::Paid => "processing",
        SimStatus::Fulfilled => "completed",
        SimStatus::Cancelled => "cancelled",
        SimStatus::Refunded => "refunded",
    }
}

/// The webhook body for `order`, local times in the site's zone `site`.
pub fn order_body(order: &SimOrder, site: UtcOffset) -> Vec<u8> {
    order_json(order, site).to_bytes()
}

/// The order as `GET /wp-json/wc/v3/orders/{id}` returns it, which is the webhook body.
pub(crate) fn order_json(order: &SimOrder, site: UtcOffset) -> Json {
    let e = order.currency.exponent();
    let money = |minor: i64| Json::from(decimal(minor, e));
    let local = |at: OffsetDateTime| Json::from(zoneless_t(at, site));
    let gmt = |at: OffsetDateTime| Json::from(zoneless_t(at, UtcOffset::UTC));
    let paid = order.paid_at();
    let completed = (order.status == SimStatus::Fulfilled).then_some(order.updated_at);
    let contact = |billing: bool| {
        let address = &order.address;
        let mut fields = vec![
            ("first_name", Json::from(&order.customer.first_name)),
            ("last_name", Json::from(&order.customer.last_name)),
            ("company", "".into()),
            ("address_1", address.line1().into()),
            (
                "address_2",
                address.line2.clone().unwrap_or_default().into(),
            ),
            ("city", Json::from(&address.city)),
            ("state", Json::from(&address.region_code)),
            ("postcode", Json::from(&address.postal_code)),
            ("country", Json::from(&address.country)),
        ];
        if billing {
            fields.push(("email", Json::from(&order.customer.email)));
        }
        fields.push(("phone", Json::from(&order.customer.phone)));
        Json::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    };
    let line_items = order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            Json::object([
                (
                    "id",
                    (fnv1a(format!("{}:{index}", order.id).as_bytes()) % 1_000_000).into(),
                ),
                ("name", Json::from(&line.name)),
                ("product_id", line.product_id.into()),
                ("variation_id", line.variant_id.into()),
                ("quantity", line.quantity.into()),
                ("tax_class", "".into()),
                ("subtotal", money(line.total_minor())),
                ("subtotal_tax", money(0)),
                ("total", money(line.total_minor())),
                ("total_tax", money(0)),
                ("taxes", Json::Array(Vec::new())),
                ("meta_data", Json::Array(Vec::new())),
                ("sku", Json::from(&line.sku)),
                // The one amount WooCommerce writes as a JSON number.
                ("price", php_number(line.unit_price_minor, e)),
            ])
        })
        .collect();
    Json::object([
        ("id", order.id.into()),
        ("parent_id", 0u64.into()),
        // WooCommerce numbers orders by their id unless a plugin says otherwise.
        ("number", order.id.to_string().into()),
        (
            "order_key",
            format!("wc_order_{:013x}", fnv1a(&order.id.to_be_bytes()) >> 12).into(),
        ),
        ("created_via", "checkout".into()),
        ("version", "8.5.1".into()),
        ("status", status_word(order.status).into()),
        ("currency", order.currency.as_str().into()),
        ("date_created", local(order.created_at)),
        ("date_created_gmt", gmt(order.created_at)),
        ("date_modified", local(order.updated_at)),
        ("date_modified_gmt", gmt(order.updated_at)),
        ("discount_total", money(0)),
        ("discount_tax", money(0)),
        ("shipping_total", money(order.shipping_minor)),
        ("shipping_tax", money(0)),
        ("cart_tax", money(0)),
        ("total", money(order.total_minor())),
        ("total_tax", money(0)),
        ("prices_include_tax", false.into()),
        ("customer_id", order.customer.id.into()),
        ("customer_ip_address", "".into()),
        ("customer_user_agent", "".into()),
        ("customer_note", "".into()),
        ("billing", contact(true)),
        ("shipping", contact(false)),
        ("payment_method", "bacs".into()),
        ("payment_method_title", "Direct bank transfer".into()),
        ("transaction_id", "".into()),
        ("date_paid", paid.map(|at| zoneless_t(at, site)).into()),
        (
            "date_paid_gmt",
            paid.map(|at| zoneless_t(at, UtcOffset::UTC)).into(),
        ),
        (
            "date_completed",
            completed.map(|at| zoneless_t(at, site)).into(),
        ),
        (
            "date_completed_gmt",
            completed.map(|at| zoneless_t(at, UtcOffset::UTC)).into(),
        ),
        ("cart_hash", "".into()),
        ("meta_data", Json::Array(Vec::new())),
        ("line_items", Json::Array(line_items)),
        ("tax_lines", Json::Array(Vec::new())),
        (
            "shipping_lines",
            Json::Array(vec![Json::object([
                ("id", (order.id % 1_000_000 + 1).into()),
                ("method_title", title(&order.shipping_method).into()),
                ("method_id", Json::from(&order.shipping_method)),
                ("instance_id", "1".into()),
                ("total", money(order.shipping_minor)),
                ("total_tax", money(0)),
                ("taxes", Json::Array(Vec::new())),
                ("meta_data", Json::Array(Vec::new())),
            ])]),
        ),
        ("fee_lines", Json::Array(Vec::new())),
        ("coupon_lines", Json::Array(Vec::new())),
        ("refunds", Json::Array(Vec::new())),
    ])
}

/// Posts WooCommerce webhooks to `{orderflow}/webhooks/woocommerce/{store_id}`.
#[derive(Debug, Clone)]
pub struct WooSender {
    http: reqwest::Client,
    url: String,
    secret: String,
    source: String,
    webhook_id: u64,
    site: UtcOffset,
    policy: RetryPolicy,
}

impl WooSender {
    pub fn new(orderflow: &str, store_id: &str, secret: &str) -> Self {
        Self {
            http: send::client(),
            url: send::webhook_url(orderflow, "woocommerce", store_id),
            secret: secret.to_owned(),
            source: format!("https://{store_id}.example/"),
            webhook_id: 12,
            site: default_site_offset(),
            policy: RetryPolicy::woocommerce(),
        }
    }

    /// The shop's `home_url('/')`, sent as `X-WC-Webhook-Source`.
    pub fn source(mut self, url: &str) -> Self {
        self.source = url.to_owned();
        self
    }

    /// The webhook configuration's id, sent as `X-WC-Webhook-ID`.
    pub fn webhook_id(mut self, id: u64) -> Self {
        self.webhook_id = id;
        self
    }

    /// How long to wait for an answer (WooCommerce: a minute). WooCommerce never re-sends,
    /// whatever the policy's delays say, so only the time limit is taken.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.policy = RetryPolicy::none(timeout);
        self
    }

    fn signed(&self, topic: &str, body: Vec<u8>) -> Delivery {
        let event = topic.split_once('.').map_or(topic, |(_, event)| event);
        Delivery {
            url: self.url.clone(),
            headers: vec![
                header("Content-Type", "application/json"),
                header("User-Agent", "WooCommerce/8.5.1 Hookshot (WordPress/6.4.2)"),
                header("X-WC-Webhook-Source", self.source.as_str()),
                header("X-WC-Webhook-Topic", topic),
                header("X-WC-Webhook-Resource", "order"),
                header("X-WC-Webhook-Event", event),
                header(
                    "X-WC-Webhook-Signature",
                    base64_hmac_sha256(self.secret.as_bytes(), &body),
                ),
                header("X-WC-Webhook-ID", self.webhook_id.to_string()),
                // `wp_hash(webhook_id . time())`: new for every delivery.
                header(
                    "X-WC-Webhook-Delivery-ID",
                    format!("{:032x}", rand::random::<u128>()),
                ),
            ],
            body,
        }
    }

    /// The request for `order` on `topic` (`order.created`, `order.updated`).
    pub fn delivery(&self, topic: &str, order: &SimOrder) -> Delivery {
        self.signed(topic, order_json(order, self.site).to_bytes())
    }

    /// Sends once: WooCommerce logs a failure and never re-sends.
    pub async fn send(&self, topic: &str, order: &SimOrder) -> SendReport {
        let delivery = self.delivery(topic, order);
        self.post(delivery, |status| (200..303).contains(&status))
            .await
    }

    /// `order.deleted`, whose body is only `{"id":…}`.
    pub async fn send_deleted(&self, order: &SimOrder) -> SendReport {
        let body = Json::object([("id", order.id.into())]).to_bytes();
        let delivery = self.signed(ORDER_DELETED, body);
        self.post(delivery, |status| (200..303).contains(&status))
            .await
    }

    /// The check WooCommerce makes when the webhook is saved: an unsigned form post that
    /// must be answered with exactly 200, or the webhook is not saved.
    pub async fn ping(&self) -> SendReport {
        let delivery = Delivery {
            url: self.url.clone(),
            headers: vec![header("Content-Type", "application/x-www-form-urlencoded")],
            body: format!("webhook_id={}", self.webhook_id).into_bytes(),
        };
        self.post(delivery, |status| status == 200).await
    }

    async fn post(&self, delivery: Delivery, succeeded: fn(u16) -> bool) -> SendReport {
        send::deliver(&self.http, &self.policy, succeeded, |_| delivery.clone()).await
    }
}

#[derive(Debug, Clone)]
struct Rest {
    shop: Shop,
    key: String,
    secret: String,
    site: UtcOffset,
}

/// The REST API's `GET /wp-json/wc/v3/orders` and `/orders/{id}` over `shop`, for the
/// consumer key and secret as HTTP Basic credentials (or the `consumer_key` and
/// `consumer_secret` parameters).
///
/// Supports `modified_after`/`modified_before`/`after`/`before` (exclusive, in the site's zone
/// unless `dates_are_gmt=true`), `status` (`any` by default, or a comma list), `orderby`
/// (`date` by default, `modified`, `id`), `order` (`desc` by default), `per_page` (10 by
/// default, 1 to 100, otherwise 400) and `page`, with `X-WP-Total`/`X-WP-TotalPages`.
pub async fn serve(
    shop: Shop,
    consumer_key: &str,
    consumer_secret: &str,
) -> std::io::Result<SimServer> {
    let (listener, url) = serve::bind().await?;
    let state = Rest {
        shop: shop.clone(),
        key: consumer_key.to_owned(),
        secret: consumer_secret.to_owned(),
        site: default_site_offset(),
    };
    let router = Router::new()
        .route("/wp-json/wc/v3/orders", get(list_orders))
        .route("/wp-json/wc/v3/orders/{id}", get(get_order))
        .with_state(state);
    Ok(serve::sim_server(serve::serve(listener, url, router), shop))
}

fn wp_error(status: StatusCode, code: &str, message: &str, params: Option<Json>) -> Response {
    let mut data = vec![("status".to_owned(), Json::from(u64::from(status.as_u16())))];
    if let Some(params) = params {
        data.push(("params".to_owned(), params));
    }
    let body = Json::object([
        ("code", code.into()),
        ("message", message.into()),
        ("data", Json::Object(data)),
    ])
    .to_bytes();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn invalid_param(name: &str, reason: &str) -> Response {
    wp_error(
        StatusCode::BAD_REQUEST,
        "rest_invalid_param",
        &format!("Invalid parameter(s): {name}"),
        Some(Json::object([(name, reason.into())])),
    )
}

impl Rest {
    fn authorised(&self, headers: &HeaderMap, query: &[(String, String)]) -> bool {
        let given = basic_auth(headers).or_else(|| {
            Some((
                param(query, "consumer_key")?.to_owned(),
                param(query, "consumer_secret")?.to_owned(),
            ))
        });
        given.is_some_and(|(key, secret)| key == self.key && secret == self.secret)
    }
}

async fn get_order(
    State(rest): State<Rest>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = decode_query(raw.as_deref().unwrap_or(""));
    if !rest.authorised(&headers, &query) {
        return wp_error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot view this resource.",
            None,
        );
    }
    match id.parse::<u64>().ok().and_then(|id| rest.shop.get(id)) {
        Some(order) => json_response(order_json(&order, rest.site).to_bytes(), &[]),
        None => wp_error(
            StatusCode::NOT_FOUND,
            "woocommerce_rest_shop_order_invalid_id",
            "Invalid ID.",
            None,
        ),
    }
}

fn json_response(body: Vec<u8>, extra: &[(&'static str, String)]) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response();
    for (name, value) in extra {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

async fn list_orders(
    State(rest): State<Rest>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = decode_query(raw.as_deref().unwrap_or(""));
    if !rest.authorised(&headers, &query) {
        return wp_error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
            None,
        );
    }
    let number = |name: &str, default: usize| match param(&query, name) {
        None => Ok(default),
        Some(text) => text.parse::<usize>().map_err(|_| name.to_owned()),
    };
    let per_page = match number("per_page", 10) {
        Ok(n) if (1..=100).contains(&n) => n,
        _ => {
            return invalid_param(
                "per_page",
                "per_page must be between 1 (inclusive) and 100 (inclusive)",
            );
        }
    };
    let page = match number("page", 1) {
        Ok(n) if n >= 1 => n,
        _ => return invalid_param("page", "page must be greater than or equal to 1"),
    };
    let gmt = matches!(param(&query, "dates_are_gmt"), Some("true" | "1"));
    // A zoneless date is the site's local time unless the caller says it is GMT.
    let instant = |name: &str| -> Result<Option<OffsetDateTime>, Box<Response>> {
        let Some(text) = param(&query, name) else {
            return Ok(None);
        };
        let read = orderflow_connectors::timestamp::parse("date", text)
            .map_err(|_| Box::new(invalid_param(name, "Invalid date.")))?;
        let has_zone =
            text.ends_with('Z') || text.get(19..).is_some_and(|t| t.contains(['+', '-']));
        Ok(Some(if gmt || has_zone {
            read
        } else {
            read.replace_offset(rest.site)
        }))
    };
    let bounds = (|| {
        Ok::<_, Box<Response>>([
            instant("modified_after")?,
            instant("modified_before")?,
            instant("after")?,
            instant("before")?,
        ])
    })();
    let [modified_after, modified_before, after, before] = match bounds {
        Ok(bounds) => bounds,
        Err(response) => return *response,
    };
    let statuses: Option<Vec<String>> = match param(&query, "status") {
        None | Some("any") => None,
        Some(list) => Some(list.split(',').map(|s| s.trim().to_owned()).collect()),
    };
    let orderby = param(&query, "orderby").unwrap_or("date");
    if !matches!(orderby, "date" | "modified" | "id") {
        return invalid_param("orderby", "orderby is not one of date, modified, id.");
    }
    let descending = match param(&query, "order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        _ => return invalid_param("order", "order is not one of asc, desc."),
    };
    // WordPress stores times to the second.
    let second = |at: OffsetDateTime| at.replace_nanosecond(0).unwrap_or(at);
    let mut orders: Vec<SimOrder> = rest
        .shop
        .orders()
        .into_iter()
        .filter(|order| {
            let modified = second(order.updated_at);
            let created = second(order.created_at);
            modified_after.is_none_or(|t| modified > t)
                && modified_before.is_none_or(|t| modified < t)
                && after.is_none_or(|t| created > t)
                && before.is_none_or(|t| created < t)
                && statuses
                    .as_ref()
                    .is_none_or(|list| list.iter().any(|s| s == status_word(order.status)))
        })
        .collect();
    orders.sort_by_key(|order| match orderby {
        "modified" => (second(order.updated_at).unix_timestamp(), order.id),
        "id" => (0, order.id),
        _ => (second(order.created_at).unix_timestamp(), order.id),
    });
    if descending {
        orders.reverse();
    }
    let total = orders.len();
    let pages = total.div_ceil(per_page);
    let items: Vec<Json> = orders
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|order| order_json(order, rest.site))
        .collect();
    json_response(
        Json::Array(items).to_bytes(),
        &[
            ("x-wp-total", total.to_string()),
            ("x-wp-totalpages", pages.to_string()),
        ],
    )
}
