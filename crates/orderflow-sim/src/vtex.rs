//! VTEX: the thin order hook (`{Domain, OrderId, State, …}`, authenticated only by a header
//! the hook is configured with), the OMS `GET /api/oms/pvt/orders/{orderId}` the hook's
//! receiver fetches the order from, and the OMS list `GET /api/oms/pvt/orders` that
//! reconciliation pages through (PLATFORMS.md §3).
//!
//! The list follows VTEX's Orders API reference: `f_creationDate=creationDate:[A TO B]`
//! (both ends inclusive), `f_status`, `orderBy={creationDate|orderId|totalValue},{asc|desc}`
//! (default `creationDate,desc`), `page` (1 to 30: VTEX lists at most 30 pages) and
//! `per_page` (default 15, at most 100), answering `{list, facets, paging}`. Each listed order
//! is a summary with its `orderId`, `status`, `creationDate` and `lastChange`; the full order
//! is fetched by id. There is no filter on `lastChange`: VTEX documents none.
//!
//! VTEX order ids are the sandbox order's id with the seller suffix: `{id}-01`. Not simulated:
//! the Feed v3 queue, the list's other filters, its `stats`, and the minutes VTEX takes to
//! index a change into the list (here the list is current at once), payments and invoices
//! (sent empty), and countries the generator does not know (their alpha-2 code is sent where
//! VTEX has alpha-3).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orderflow_connectors::webhook::VTEX_SECRET_HEADER;
use time::OffsetDateTime;

use crate::order::{SimOrder, SimStatus, country, fnv1a};
use crate::send::{self, Delivery, RetryPolicy, SendReport, header};
use crate::serve::{self, Shop, SimServer, decode_query, param};
use crate::text::{Json, vtex_time};

/// The VTEX id of a sandbox order.
pub fn order_id(order: &SimOrder) -> String {
    format!("{}-01", order.id)
}

/// `(state, the state before it, description)`.
fn states(status: SimStatus) -> (&'static str, &'static str, &'static str) {
    match status {
        SimStatus::Pending => ("payment-pending", "order-created", "Pagamento Pendente"),
        SimStatus::Paid => (
            "ready-for-handling",
            "payment-approved",
            "Pronto para o manuseio",
        ),
        SimStatus::Fulfilled => ("invoiced", "invoice", "Faturado"),
        // VTEX's workflow has no refund state; a refunded order is a cancelled one there.
        SimStatus::Cancelled | SimStatus::Refunded => ("canceled", "cancel", "Cancelado"),
    }
}

fn alpha3(alpha2: &str) -> String {
    country(alpha2).map_or_else(|| alpha2.to_owned(), |c| c.alpha3.to_owned())
}

fn locale(alpha2: &str) -> &'static str {
    match alpha2 {
        "BR" => "pt-BR",
        "CL" => "es-CL",
        "ES" => "es-ES",
        _ => "en-US",
    }
}

/// `GET /api/oms/pvt/orders/{orderId}`'s body for `order`.
pub fn order_body(order: &SimOrder) -> Vec<u8> {
    order_json(order).to_bytes()
}

/// The hook notification for `order`'s current state, from `account` and its app key.
pub fn hook_body(order: &SimOrder, account: &str, app_key: &str) -> Vec<u8> {
    hook_json(order, account, app_key).to_bytes()
}

/// The full order as the OMS API returns it: money in integer minor units.
pub(crate) fn order_json(order: &SimOrder) -> Json {
    let (state, _, description) = states(order.status);
    let address = &order.address;
    let items = order
        .lines
        .iter()
        .map(|line| {
            Json::object([
                (
                    "uniqueId",
                    format!(
                        "{:032X}",
                        u128::from(fnv1a(line.sku.as_bytes())) << 64 | u128::from(order.id)
                    )
                    .into(),
                ),
                ("id", line.variant_id.to_string().into()),
                ("productId", line.product_id.to_string().into()),
                ("ean", Json::Null),
                ("lockId", Json::Null),
                ("quantity", line.quantity.into()),
                ("seller", "1".into()),
                ("name", Json::from(&line.name)),
                ("refId", Json::from(&line.sku)),
                ("price", line.unit_price_minor.into()),
                ("listPrice", line.unit_price_minor.into()),
                ("sellingPrice", line.unit_price_minor.into()),
                ("measurementUnit", "un".into()),
                ("unitMultiplier", Json::number("1.0")),
                ("isGift", false.into()),
            ])
        })
        .collect();
    // VTEX splits the freight over the items; the sandbox puts all of it on the first.
    let logistics = (0..order.lines.len())
        .map(|index| {
            let price = if index == 0 { order.shipping_minor } else { 0 };
            Json::object([
                ("itemIndex", index.into()),
                ("selectedSla", Json::from(&order.shipping_method)),
                ("lockTTL", "10d".into()),
                ("price", price.into()),
                ("listPrice", price.into()),
                ("sellingPrice", price.into()),
                ("deliveryCompany", "Transportadora".into()),
                ("shippingEstimate", "5bd".into()),
                ("deliveryChannel", "delivery".into()),
            ])
        })
        .collect();
    let total = |id: &str, name: &str, value: i64| {
        Json::object([
            ("id", id.into()),
            ("name", name.into()),
            ("value", value.into()),
        ])
    };
    Json::object([
        ("orderId", order_id(order).into()),
        ("sequence", order.number.to_string().into()),
        ("marketplaceOrderId", "".into()),
        ("marketplaceServicesEndpoint", Json::Null),
        ("sellerOrderId", format!("00-{}", order_id(order)).into()),
        ("origin", "Marketplace".into()),
        ("affiliateId", "".into()),
        ("salesChannel", "1".into()),
        ("merchantName", Json::Null),
        ("status", state.into()),
        ("statusDescription", description.into()),
        ("value", order.total_minor().into()),
        ("creationDate", vtex_time(order.created_at).into()),
        ("lastChange", vtex_time(order.updated_at).into()),
        ("orderGroup", order.id.to_string().into()),
        (
            "totals",
            Json::Array(vec![
                total("Items", "Total dos Itens", order.items_minor()),
                total("Discounts", "Total dos Descontos", 0),
                total("Shipping", "Total do Frete", order.shipping_minor),
                total("Tax", "Total da Taxa", 0),
            ]),
        ),
        ("items", Json::Array(items)),
        (
            "clientProfileData",
            Json::object([
                ("id", "clientProfileData".into()),
                ("email", Json::from(&order.customer.email)),
                ("firstName", Json::from(&order.customer.first_name)),
                ("lastName", Json::from(&order.customer.last_name)),
                ("documentType", "cpf".into()),
                ("document", "".into()),
                ("phone", Json::from(&order.customer.phone)),
                ("corporateName", Json::Null),
                ("isCorporate", false.into()),
                ("userProfileId", order.customer.id.to_string().into()),
            ]),
        ),
        (
            "clientPreferencesData",
            Json::object([
                ("locale", locale(&address.country).into()),
                ("optinNewsLetter", false.into()),
            ]),
        ),
        (
            "shippingData",
            Json::object([
                ("id", "shippingData".into()),
                (
                    "address",
                    Json::object([
                        ("addressType", "residential".into()),
                        ("receiverName", order.customer.full_name().into()),
                        ("addressId", order.customer.id.to_string().into()),
                        ("postalCode", Json::from(&address.postal_code)),
                        ("city", Json::from(&address.city)),
                        ("state", Json::from(&address.region_code)),
                        ("country", alpha3(&address.country).into()),
                        ("street", Json::from(&address.street)),
                        ("number", Json::from(&address.number)),
                        ("neighborhood", "".into()),
                        ("complement", address.line2.as_deref().into()),
                        ("reference", Json::Null),
                        ("geoCoordinates", Json::Array(Vec::new())),
                    ]),
                ),
                ("logisticsInfo", Json::Array(logistics)),
            ]),
        ),
        (
            "paymentData",
            Json::object([("transactions", Json::Array(Vec::new()))]),
        ),
        (
            "packageAttachment",
            Json::object([("packages", Json::Array(Vec::new()))]),
        ),
        (
            "storePreferencesData",
            Json::object([
                ("countryCode", alpha3(&address.country).into()),
                ("currencyCode", order.currency.as_str().into()),
                (
                    "currencyFormatInfo",
                    Json::object([
                        ("CurrencyDecimalDigits", order.currency.exponent().into()),
                        ("CurrencyDecimalSeparator", ",".into()),
                        ("CurrencyGroupSeparator", ".".into()),
                        ("CurrencyGroupSize", 3u32.into()),
                        ("StartsWithCurrencySymbol", true.into()),
                    ]),
                ),
                ("currencyLocale", 1046u32.into()),
                ("currencySymbol", order.currency.as_str().into()),
                ("timeZone", "E. South America Standard Time".into()),
            ]),
        ),
        ("isCompleted", true.into()),
        ("allowCancellation", true.into()),
    ])
}

/// The hook notification for the order's current state.
pub(crate) fn hook_json(order: &SimOrder, account: &str, app_key: &str) -> Json {
    let (state, last_state, _) = states(order.status);
    Json::object([
        ("Domain", "Marketplace".into()),
        ("OrderId", order_id(order).into()),
        ("State", state.into()),
        ("LastState", last_state.into()),
        ("LastChange", vtex_time(order.created_at).into()),
        ("CurrentChange", vtex_time(order.updated_at).into()),
        (
            "Origin",
            Json::object([("Account", account.into()), ("Key", app_key.into())]),
        ),
    ])
}

/// Posts VTEX hook notifications to `{orderflow}/webhooks/vtex/{store_id}`.
#[derive(Debug, Clone)]
pub struct VtexHookSender {
    http: reqwest::Client,
    url: String,
    secret: String,
    account: String,
    app_key: String,
    policy: RetryPolicy,
}

impl VtexHookSender {
    /// `secret` is the value the hook is configured to send in `X-Orderflow-Secret`.
    pub fn new(orderflow: &str, store_id: &str, secret: &str) -> Self {
        Self {
            http: send::client(),
            url: send::webhook_url(orderflow, "vtex", store_id),
            secret: secret.to_owned(),
            account: store_id.to_owned(),
            app_key: "vtexappkey-sandbox-ABCDEF".to_owned(),
            policy: RetryPolicy::vtex(),
        }
    }

    pub fn account(mut self, account: &str) -> Self {
        self.account = account.to_owned();
        self
    }

    pub fn app_key(mut self, key: &str) -> Self {
        self.app_key = key.to_owned();
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    fn with_headers(&self, body: Vec<u8>) -> Delivery {
        Delivery {
            url: self.url.clone(),
            headers: vec![
                header("Content-Type", "application/json"),
                header(VTEX_SECRET_HEADER, self.secret.as_str()),
            ],
            body,
        }
    }

    pub fn delivery(&self, order: &SimOrder) -> Delivery {
        self.with_headers(hook_json(order, &self.account, &self.app_key).to_bytes())
    }

    /// Notifies the order's current state; VTEX counts only a 200 as received.
    pub async fn send(&self, order: &SimOrder) -> SendReport {
        let delivery = self.delivery(order);
        send::deliver(&self.http, &self.policy, |s| s == 200, |_| delivery.clone()).await
    }

    /// `{"hookConfig":"ping"}`, sent when the hook is configured; anything but 200 and VTEX
    /// refuses to save the configuration.
    pub async fn ping(&self) -> SendReport {
        let delivery = self.with_headers(br#"{"hookConfig":"ping"}"#.to_vec());
        let once = RetryPolicy::none(self.policy.timeout);
        send::deliver(&self.http, &once, |s| s == 200, |_| delivery.clone()).await
    }
}

#[derive(Debug, Clone)]
struct Oms {
    shop: Shop,
    app_key: String,
    app_token: String,
}

/// The OMS `GET /api/oms/pvt/orders/{orderId}` and `GET /api/oms/pvt/orders` (the list) over
/// `shop`, for these app key and token (`X-VTEX-API-AppKey`, `X-VTEX-API-AppToken`; 401
/// otherwise, 404 for an unknown order, 400 for a filter or page it cannot take).
pub async fn serve_oms(shop: Shop, app_key: &str, app_token: &str) -> std::io::Result<SimServer> {
    let (listener, url) = serve::bind().await?;
    let state = Oms {
        shop: shop.clone(),
        app_key: app_key.to_owned(),
        app_token: app_token.to_owned(),
    };
    let router = Router::new()
        .route("/api/oms/pvt/orders", get(list_orders))
        .route("/api/oms/pvt/orders/{order_id}", get(get_order))
        .with_state(state);
    Ok(serve::sim_server(serve::serve(listener, url, router), shop))
}

fn vtex_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = Json::object([(
        "error",
        Json::object([
            ("code", code.into()),
            ("message", message.into()),
            ("exception", Json::Null),
        ]),
    )])
    .to_bytes();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

impl Oms {
    fn authorised(&self, headers: &HeaderMap) -> bool {
        let given = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        given("x-vtex-api-appkey") == Some(self.app_key.as_str())
            && given("x-vtex-api-apptoken") == Some(self.app_token.as_str())
    }
}

async fn get_order(
    State(oms): State<Oms>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !oms.authorised(&headers) {
        return vtex_error(StatusCode::UNAUTHORIZED, "1", "Unauthorized");
    }
    let found = order_id
        .strip_suffix("-01")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| oms.shop.get(id));
    match found {
        Some(order) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            order_json(&order).to_bytes(),
        )
            .into_response(),
        None => vtex_error(StatusCode::NOT_FOUND, "OMS001", "Order Not Found"),
    }
}

/// One order of the list: a summary, as `GET /api/oms/pvt/orders` lists it.
fn summary_json(order: &SimOrder) -> Json {
    let (state, _, description) = states(order.status);
    let paid = order.paid_at().map(vtex_time);
    let items: u64 = order
        .lines
        .iter()
        .map(|line| u64::from(line.quantity))
        .sum();
    Json::object([
        ("orderId", order_id(order).into()),
        ("creationDate", vtex_time(order.created_at).into()),
        ("clientName", order.customer.full_name().into()),
        ("items", Json::Null),
        ("totalValue", order.total_minor().into()),
        ("paymentNames", "".into()),
        ("status", state.into()),
        ("statusDescription", description.into()),
        ("marketPlaceOrderId", Json::Null),
        ("sequence", order.number.to_string().into()),
        ("salesChannel", "1".into()),
        ("affiliateId", "".into()),
        ("origin", "Marketplace".into()),
        ("workflowInErrorState", false.into()),
        ("workflowInRetry", false.into()),
        ("lastMessageUnread", Json::Null),
        ("ShippingEstimatedDate", Json::Null),
        ("orderIsComplete", true.into()),
        ("listId", Json::Null),
        ("listType", Json::Null),
        ("authorizedDate", paid.clone().into()),
        ("callCenterOperatorName", Json::Null),
        ("totalItems", items.into()),
        ("currencyCode", order.currency.as_str().into()),
        ("lastChange", vtex_time(order.updated_at).into()),
        ("paymentApprovedDate", paid.into()),
    ])
}

/// `creationDate:[2022-01-01T02:00:00.000Z TO 2022-01-02T01:59:59.999Z]`, both ends
/// inclusive.
fn creation_range(text: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let range = text
        .trim()
        .strip_prefix("creationDate:[")?
        .strip_suffix(']')?;
    let (from, to) = range.split_once(" TO ")?;
    let read = |t: &str| orderflow_connectors::timestamp::parse("f_creationDate", t.trim()).ok();
    Some((read(from)?, read(to)?))
}

async fn list_orders(
    State(oms): State<Oms>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !oms.authorised(&headers) {
        return vtex_error(StatusCode::UNAUTHORIZED, "1", "Unauthorized");
    }
    let query = decode_query(raw.as_deref().unwrap_or(""));
    let bad = |message: &str| vtex_error(StatusCode::BAD_REQUEST, "1", message);
    let range = match param(&query, "f_creationDate") {
        None => None,
        Some(text) => match creation_range(text) {
            Some(range) => Some(range),
            None => return bad("f_creationDate must be creationDate:[{from} TO {to}]"),
        },
    };
    let statuses: Option<Vec<&str>> =
        param(&query, "f_status").map(|list| list.split(',').map(str::trim).collect());
    let number = |name: &str, default: usize| match param(&query, name) {
        None => Some(default),
        Some(text) => text.trim().parse::<usize>().ok(),
    };
    let Some(per_page) = number("per_page", 15).filter(|n| (1..=100).contains(n)) else {
        return bad("per_page must be between 1 and 100");
    };
    let Some(page) = number("page", 1).filter(|n| (1..=30).contains(n)) else {
        return bad("page must be between 1 and 30: refine the filters to see further");
    };
    let order_by = param(&query, "orderBy").unwrap_or("creationDate,desc");
    let Some((field, direction)) = order_by.split_once(',') else {
        return bad("orderBy must be {field},{asc|desc}");
    };
    if !matches!(field, "creationDate" | "orderId" | "totalValue") {
        return bad("orderBy takes creationDate, orderId or totalValue here");
    }
    let descending = match direction {
        "desc" => true,
        "asc" => false,
        _ => return bad("orderBy must end in asc or desc"),
    };

    let mut orders: Vec<SimOrder> = oms
        .shop
        .orders()
        .into_iter()
        .filter(|order| {
            range.is_none_or(|(from, to)| from <= order.created_at && order.created_at <= to)
                && statuses
                    .as_ref()
                    .is_none_or(|list| list.contains(&states(order.status).0))
        })
        .collect();
    orders.sort_by_key(|order| match field {
        "orderId" => (0, order.id),
        "totalValue" => (order.total_minor(), order.id),
        _ => (
            i64::try_from(order.created_at.unix_timestamp_nanos() / 100).unwrap_or(i64::MAX),
            order.id,
        ),
    });
    if descending {
        orders.reverse();
    }
    let total = orders.len();
    let list: Vec<Json> = orders
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(summary_json)
        .collect();
    let body = Json::object([
        ("list", Json::Array(list)),
        ("facets", Json::Array(Vec::new())),
        (
            "paging",
            Json::object([
                ("total", total.into()),
                ("pages", total.div_ceil(per_page).into()),
                ("currentPage", page.into()),
                ("perPage", per_page.into()),
            ]),
        ),
    ]);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_bytes(),
    )
        .into_response()
}
