//! PrestaShop's webservice (PLATFORMS.md §4), in XML: `/api/orders` (listing and single
//! order) and the resources an order refers to by id, `/api/addresses`, `/api/customers`,
//! `/api/countries`, `/api/states`, `/api/currencies` and `/api/carriers`.
//!
//! Authentication is the webservice key as HTTP Basic user with any password (or `ws_key=`).
//!
//! Listing parameters, as PrestaShop reads them (`classes/webservice/WebserviceRequest.php`):
//! - `display`: absent (ids and links), `full`, or `[field,…]` of the order's fields;
//! - `filter[field]`: `[a,b]` an inclusive interval, `[a|b]` any of, `[a]` equal, and `[a]%`,
//!   `%[a]`, `%[a]%` for text; on `id`, `reference`, `current_state`, `id_customer`, and on
//!   `date_add`/`date_upd` only with `date=1`, as PrestaShop refuses a date filter without it
//!   (400, error 32; sorting by a date without it is error 38). A bound with a date and no time
//!   is midnight, so an interval ending on a bare date leaves that day out, as PrestaShop's
//!   SQL does (issue #10822);
//! - `sort=[field_ASC|DESC,…]` on `id`, `reference`, `date_add`, `date_upd`; `id_ASC` by
//!   default;
//! - `limit=count` or `limit=offset,count`.
//!
//! Times are written as the shop's local time without a zone; the sandbox shop is on UTC.
//! Resource ids: an order's delivery and invoice address has the order's id, its customer the
//! customer's id; countries, states, currencies and carriers have ids derived from their codes.
//! Not simulated: `output_format=JSON` (XML is always sent), writes, other resources, and
//! multi-shop.

use std::cmp::Ordering;
use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::order::{COUNTRIES, Generator, SimOrder, SimStatus, country, fnv1a, sub_id};
use crate::serve::{self, Shop, SimServer, basic_auth, decode_query, param};
use crate::text::{cdata, decimal_places, spaced, xml_escape};

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<prestashop xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n";
const TAIL: &str = "</prestashop>\n";

/// The id PrestaShop would have given a country, state, currency or carrier: stable, derived
/// from its code, so that a listing and a later fetch agree.
pub fn resource_id(kind: &str, code: &str) -> u64 {
    1 + fnv1a(format!("{kind}:{code}").as_bytes()) % 99_999
}

fn state_key(order: &SimOrder) -> String {
    format!("{}-{}", order.address.country, order.address.region_code)
}

/// `current_state`, an id into a default install's `order_states`.
pub fn state_id(status: SimStatus) -> u32 {
    match status {
        // Awaiting bank wire payment.
        SimStatus::Pending => 10,
        SimStatus::Paid => 2,
        // Shipped.
        SimStatus::Fulfilled => 4,
        SimStatus::Cancelled => 6,
        SimStatus::Refunded => 7,
    }
}

fn element(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", cdata(text))
}

fn linked(url: &str, name: &str, resource: &str, id: u64) -> String {
    if id == 0 {
        return element(name, "0");
    }
    format!(
        "<{name} xlink:href=\"{}/api/{resource}/{id}\">{}</{name}>",
        xml_escape(url),
        cdata(&id.to_string())
    )
}

/// The order's fields in PrestaShop's order, each as its element.
fn order_fields(order: &SimOrder, url: &str) -> Vec<(&'static str, String)> {
    let e = order.currency.exponent();
    let money = |minor: i64| decimal_places(minor, e, 6);
    let paid = order.paid_at();
    let state = state_id(order.status);
    let items = money(order.items_minor());
    let shipping = money(order.shipping_minor);
    let total = money(order.total_minor());
    let zero = money(0);
    let mut fields: Vec<(&'static str, String)> = vec![
        ("id", element("id", &order.id.to_string())),
        (
            "id_address_delivery",
            linked(url, "id_address_delivery", "addresses", order.id),
        ),
        (
            "id_address_invoice",
            linked(url, "id_address_invoice", "addresses", order.id),
        ),
        (
            "id_cart",
            linked(url, "id_cart", "carts", sub_id(order.id, 1, 7)),
        ),
        (
            "id_currency",
            linked(
                url,
                "id_currency",
                "currencies",
                resource_id("currency", order.currency.as_str()),
            ),
        ),
        ("id_lang", linked(url, "id_lang", "languages", 1)),
        (
            "id_customer",
            linked(url, "id_customer", "customers", order.customer.id),
        ),
        (
            "id_carrier",
            linked(
                url,
                "id_carrier",
                "carriers",
                resource_id("carrier", &order.shipping_method),
            ),
        ),
        (
            "current_state",
            linked(url, "current_state", "order_states", u64::from(state)),
        ),
        ("module", element("module", "ps_wirepayment")),
        (
            "invoice_number",
            element("invoice_number", if paid.is_some() { "1" } else { "0" }),
        ),
        (
            "invoice_date",
            element(
                "invoice_date",
                &paid.map_or_else(|| "0000-00-00 00:00:00".to_owned(), spaced),
            ),
        ),
        ("delivery_number", element("delivery_number", "0")),
        (
            "delivery_date",
            element("delivery_date", "0000-00-00 00:00:00"),
        ),
        (
            "valid",
            element("valid", if paid.is_some() { "1" } else { "0" }),
        ),
        ("date_add", element("date_add", &spaced(order.created_at))),
        ("date_upd", element("date_upd", &spaced(order.updated_at))),
        (
            "shipping_number",
            "<shipping_number notFilterable=\"true\"></shipping_number>".to_owned(),
        ),
        ("id_shop_group", element("id_shop_group", "1")),
        ("id_shop", element("id_shop", "1")),
        (
            "secure_key",
            element(
                "secure_key",
                &format!("{:032x}", u128::from(fnv1a(&order.id.to_le_bytes()))),
            ),
        ),
        ("payment", element("payment", "Bank transfer")),
        ("recyclable", element("recyclable", "0")),
        ("gift", element("gift", "0")),
        ("gift_message", "<gift_message></gift_message>".to_owned()),
        ("mobile_theme", element("mobile_theme", "0")),
    ];
    for (name, value) in [
        ("total_discounts", &zero),
        ("total_discounts_tax_incl", &zero),
        ("total_discounts_tax_excl", &zero),
        ("total_paid", &total),
        ("total_paid_tax_incl", &total),
        ("total_paid_tax_excl", &total),
        (
            "total_paid_real",
            if paid.is_some() { &total } else { &zero },
        ),
        ("total_products", &items),
        ("total_products_wt", &items),
        ("total_shipping", &shipping),
        ("total_shipping_tax_incl", &shipping),
        ("total_shipping_tax_excl", &shipping),
    ] {
        fields.push((name, element(name, value)));
    }
    fields.push(("carrier_tax_rate", element("carrier_tax_rate", "0.000")));
    for name in [
        "total_wrapping",
        "total_wrapping_tax_incl",
        "total_wrapping_tax_excl",
    ] {
        fields.push((name, element(name, &zero)));
    }
    fields.push(("round_mode", element("round_mode", "2")));
    fields.push(("round_type", element("round_type", "2")));
    fields.push(("conversion_rate", element("conversion_rate", "1.000000")));
    fields.push(("reference", element("reference", &order.reference)));
    let mut rows = String::from(
        "<associations>\n<order_rows nodeType=\"order_row\" virtualEntity=\"true\">\n",
    );
    for (index, line) in order.lines.iter().enumerate() {
        let price = money(line.unit_price_minor);
        let _ = write!(
            rows,
            "<order_row>\n{}\n{}\n{}\n{}\n{}\n{}\n<product_ean13></product_ean13>\n{}\n{}\n{}\n</order_row>\n",
            element("id", &sub_id(order.id, 10, index).to_string()),
            element("product_id", &line.product_id.to_string()),
            element("product_attribute_id", "0"),
            element("product_quantity", &line.quantity.to_string()),
            element("product_name", &line.name),
            element("product_reference", &line.sku),
            element("product_price", &price),
            element("unit_price_tax_incl", &price),
            element("unit_price_tax_excl", &price),
        );
    }
    rows.push_str("</order_rows>\n</associations>");
    fields.push(("associations", rows));
    fields
}

/// `GET /api/orders/{id}`, with links under the shop's base URL `url`.
pub fn order_xml(order: &SimOrder, url: &str) -> String {
    let body: Vec<String> = order_fields(order, url)
        .into_iter()
        .map(|(_, element)| element)
        .collect();
    format!("{HEAD}<order>\n{}\n</order>\n{TAIL}", body.join("\n"))
}

fn address_xml(order: &SimOrder, url: &str) -> String {
    let address = &order.address;
    let fields = [
        element("id", &order.id.to_string()),
        linked(url, "id_customer", "customers", order.customer.id),
        element("id_manufacturer", "0"),
        element("id_supplier", "0"),
        element("id_warehouse", "0"),
        linked(
            url,
            "id_country",
            "countries",
            resource_id("country", &address.country),
        ),
        linked(
            url,
            "id_state",
            "states",
            resource_id("state", &state_key(order)),
        ),
        element("alias", "My address"),
        "<company></company>".to_owned(),
        element("lastname", &order.customer.last_name),
        element("firstname", &order.customer.first_name),
        "<vat_number></vat_number>".to_owned(),
        element("address1", &address.line1()),
        element("address2", address.line2.as_deref().unwrap_or("")),
        element("postcode", &address.postal_code),
        element("city", &address.city),
        "<other></other>".to_owned(),
        "<phone></phone>".to_owned(),
        element("phone_mobile", &order.customer.phone),
        "<dni></dni>".to_owned(),
        element("deleted", "0"),
        element("date_add", &spaced(order.created_at)),
        element("date_upd", &spaced(order.created_at)),
    ];
    format!("{HEAD}<address>\n{}\n</address>\n{TAIL}", fields.join("\n"))
}

fn customer_xml(order: &SimOrder) -> String {
    let customer = &order.customer;
    let fields = [
        element("id", &customer.id.to_string()),
        element("id_default_group", "3"),
        element("id_lang", "1"),
        element(
            "passwd",
            "$2y$10$sandboxsandboxsandboxsandboxsandboxsandboxsandboxsa",
        ),
        element("lastname", &customer.last_name),
        element("firstname", &customer.first_name),
        element("email", &customer.email),
        element("active", "1"),
        element("is_guest", "0"),
        element("id_shop", "1"),
        element("id_shop_group", "1"),
        element("date_add", &spaced(order.created_at)),
        element("date_upd", &spaced(order.created_at)),
    ];
    format!(
        "{HEAD}<customer>\n{}\n</customer>\n{TAIL}",
        fields.join("\n")
    )
}

fn multilingual(url: &str, name: &str, text: &str) -> String {
    format!(
        "<{name}><language id=\"1\" xlink:href=\"{}/api/languages/1\">{}</language></{name}>",
        xml_escape(url),
        cdata(text)
    )
}

#[derive(Debug, Clone)]
struct Webservice {
    shop: Shop,
    key: String,
    url: String,
}

/// The webservice over `shop`, for the webservice key `key`.
pub async fn serve(shop: Shop, key: &str) -> std::io::Result<SimServer> {
    let (listener, url) = serve::bind().await?;
    let state = Webservice {
        shop: shop.clone(),
        key: key.to_owned(),
        url: url.clone(),
    };
    let router = Router::new()
        .route("/api/orders", get(list_orders))
        .route("/api/{resource}/{id}", get(get_resource))
        .with_state(state);
    Ok(serve::sim_server(serve::serve(listener, url, router), shop))
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml;charset=utf-8"),
            (header::HeaderName::from_static("psws-version"), "8.1.0"),
        ],
        body,
    )
        .into_response()
}

fn ps_error(status: StatusCode, code: u32, message: &str) -> Response {
    let mut response = xml(
        status,
        format!(
            "{HEAD}<errors>\n<error>\n<code>{}</code>\n<message>{}</message>\n</error>\n</errors>\n{TAIL}",
            cdata(&code.to_string()),
            cdata(message)
        ),
    );
    if status == StatusCode::UNAUTHORIZED
        && let Ok(value) = "Basic realm=\"Welcome to PrestaShop Webservice, please enter the authentication key as the login. No password required.\"".parse()
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl Webservice {
    fn authenticate(
        &self,
        headers: &HeaderMap,
        query: &[(String, String)],
    ) -> Result<(), Box<Response>> {
        let given = basic_auth(headers)
            .map(|(user, _)| user)
            .or_else(|| param(query, "ws_key").map(str::to_owned));
        match given {
            None => Err(Box::new(ps_error(
                StatusCode::UNAUTHORIZED,
                17,
                "Authentication key is empty",
            ))),
            Some(key) if key == self.key => Ok(()),
            Some(_) => Err(Box::new(ps_error(
                StatusCode::UNAUTHORIZED,
                18,
                "Invalid authentication key",
            ))),
        }
    }
}

async fn get_resource(
    State(ws): State<Webservice>,
    Path((resource, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = decode_query(raw.as_deref().unwrap_or(""));
    if let Err(refused) = ws.authenticate(&headers, &query) {
        return *refused;
    }
    let Ok(id) = id.parse::<u64>() else {
        return ps_error(StatusCode::BAD_REQUEST, 26, "The id is not valid");
    };
    let orders = ws.shop.orders();
    let url = ws.url.as_str();
    let found = match resource.as_str() {
        "orders" => orders
            .iter()
            .find(|o| o.id == id)
            .map(|o| order_xml(o, url)),
        "addresses" => orders
            .iter()
            .find(|o| o.id == id)
            .map(|o| address_xml(o, url)),
        "customers" => orders
            .iter()
            .find(|o| o.customer.id == id)
            .map(customer_xml),
        "countries" => country_xml(&orders, id, url),
        "states" => orders
            .iter()
            .find(|o| resource_id("state", &state_key(o)) == id)
            .map(|o| state_xml(o, id, url)),
        "currencies" => orders
            .iter()
            .find(|o| resource_id("currency", o.currency.as_str()) == id)
            .map(|o| currency_xml(o, id, url)),
        "carriers" => orders
            .iter()
            .find(|o| resource_id("carrier", &o.shipping_method) == id)
            .map(|o| carrier_xml(o, id, url)),
        _ => {
            return ps_error(
                StatusCode::BAD_REQUEST,
                22,
                &format!("Resource of type \"{resource}\" does not exists"),
            );
        }
    };
    match found {
        Some(body) => xml(StatusCode::OK, body),
        // PrestaShop answers an unknown id with a bare 404.
        None => xml(StatusCode::NOT_FOUND, String::new()),
    }
}

fn country_xml(orders: &[SimOrder], id: u64, url: &str) -> Option<String> {
    let alpha2 = COUNTRIES
        .iter()
        .map(|c| c.alpha2.to_owned())
        .chain(orders.iter().map(|o| o.address.country.clone()))
        .find(|code| resource_id("country", code) == id)?;
    let name = country(&alpha2).map_or(alpha2.as_str(), |c| c.name);
    let fields = [
        element("id", &id.to_string()),
        element("id_zone", "1"),
        element("id_currency", "0"),
        element("call_prefix", "0"),
        element("iso_code", &alpha2),
        element("active", "1"),
        element("contains_states", "1"),
        element("need_identification_number", "0"),
        element("need_zip_code", "1"),
        "<zip_code_format></zip_code_format>".to_owned(),
        element("display_tax_label", "1"),
        multilingual(url, "name", name),
    ];
    Some(format!(
        "{HEAD}<country>\n{}\n</country>\n{TAIL}",
        fields.join("\n")
    ))
}

fn state_xml(order: &SimOrder, id: u64, url: &str) -> String {
    let address = &order.address;
    let fields = [
        element("id", &id.to_string()),
        element("id_zone", "1"),
        linked(
            url,
            "id_country",
            "countries",
            resource_id("country", &address.country),
        ),
        element("iso_code", &address.region_code),
        element("name", &address.region_name),
        element("active", "1"),
    ];
    format!("{HEAD}<state>\n{}\n</state>\n{TAIL}", fields.join("\n"))
}

fn currency_xml(order: &SimOrder, id: u64, url: &str) -> String {
    let code = order.currency.as_str();
    let fields = [
        element("id", &id.to_string()),
        multilingual(url, "names", code),
        element("name", code),
        multilingual(url, "symbol", code),
        element("iso_code", code),
        element("precision", &order.currency.exponent().to_string()),
        element("conversion_rate", "1.000000"),
        element("deleted", "0"),
        element("active", "1"),
    ];
    format!(
        "{HEAD}<currency>\n{}\n</currency>\n{TAIL}",
        fields.join("\n")
    )
}

fn carrier_xml(order: &SimOrder, id: u64, url: &str) -> String {
    let fields = [
        element("id", &id.to_string()),
        element("deleted", "0"),
        element("is_module", "0"),
        element("id_tax_rules_group", "1"),
        element("id_reference", &id.to_string()),
        element("name", &order.shipping_method),
        element("active", "1"),
        element("is_free", "0"),
        "<url></url>".to_owned(),
        element("shipping_handling", "1"),
        element("shipping_external", "0"),
        element("range_behavior", "0"),
        element("shipping_method", "1"),
        element("grade", "0"),
        multilingual(url, "delay", "Delivery in 2-4 days"),
    ];
    format!("{HEAD}<carrier>\n{}\n</carrier>\n{TAIL}", fields.join("\n"))
}

const FILTERABLE: [&str; 6] = [
    "id",
    "reference",
    "current_state",
    "id_customer",
    "date_add",
    "date_upd",
];
const SORTABLE: [&str; 4] = ["id", "reference", "date_add", "date_upd"];

fn is_date(field: &str) -> bool {
    matches!(field, "date_add" | "date_upd")
}

/// A value of an order's field, typed for comparing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Number(u64),
    Time(OffsetDateTime),
    Text(String),
}

fn value_of(order: &SimOrder, field: &str) -> Value {
    // PrestaShop stores times to the second.
    let second = |at: OffsetDateTime| Value::Time(at.replace_nanosecond(0).unwrap_or(at));
    match field {
        "id" => Value::Number(order.id),
        "current_state" => Value::Number(u64::from(state_id(order.status))),
        "id_customer" => Value::Number(order.customer.id),
        "date_add" => second(order.created_at),
        "date_upd" => second(order.updated_at),
        _ => Value::Text(order.reference.clone()),
    }
}

/// A filter's operand, read as the field's type; a date without a time is midnight.
fn operand(field: &str, text: &str) -> Option<Value> {
    let text = text.trim();
    match field {
        "id" | "current_state" | "id_customer" => text.parse().ok().map(Value::Number),
        "date_add" | "date_upd" => orderflow_connectors::timestamp::parse("date", text)
            .or_else(|_| {
                orderflow_connectors::timestamp::parse("date", &format!("{text} 00:00:00"))
            })
            .ok()
            .map(Value::Time),
        _ => Some(Value::Text(text.to_owned())),
    }
}

enum Filter {
    Between(Value, Value),
    AnyOf(Vec<Value>),
    Text {
        prefix: bool,
        suffix: bool,
        text: String,
    },
}

impl Filter {
    fn read(field: &str, text: &str) -> Option<Self> {
        let starts = text.starts_with('%');
        let ends = text.ends_with('%');
        let inner = text.trim_start_matches('%').trim_end_matches('%');
        let inner = inner
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(inner);
        if starts || ends {
            // `[a]%` begins with a; `%[a]` ends with a; `%[a]%` contains a.
            return Some(Filter::Text {
                prefix: ends && !starts,
                suffix: starts && !ends,
                text: inner.to_owned(),
            });
        }
        if let Some((low, high)) = inner.split_once(',') {
            return Some(Filter::Between(operand(field, low)?, operand(field, high)?));
        }
        inner
            .split('|')
            .map(|option| operand(field, option))
            .collect::<Option<Vec<_>>>()
            .map(Filter::AnyOf)
    }

    fn admits(&self, value: &Value) -> bool {
        match self {
            Filter::Between(low, high) => low <= value && value <= high,
            Filter::AnyOf(options) => options.contains(value),
            Filter::Text {
                prefix,
                suffix,
                text,
            } => {
                let Value::Text(value) = value else {
                    return false;
                };
                match (prefix, suffix) {
                    (true, _) => value.starts_with(text.as_str()),
                    (_, true) => value.ends_with(text.as_str()),
                    _ => value.contains(text.as_str()),
                }
            }
        }
    }
}

async fn list_orders(
    State(ws): State<Webservice>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = decode_query(raw.as_deref().unwrap_or(""));
    if let Err(refused) = ws.authenticate(&headers, &query) {
        return *refused;
    }
    let dates = param(&query, "date").is_some_and(|d| !d.is_empty() && d != "0");
    let available: Vec<&str> = FILTERABLE
        .iter()
        .copied()
        .filter(|field| dates || !is_date(field))
        .collect();

    let mut filters = Vec::new();
    for (name, text) in &query {
        let Some(field) = name
            .strip_prefix("filter[")
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            continue;
        };
        if !available.contains(&field) {
            return ps_error(
                StatusCode::BAD_REQUEST,
                32,
                &format!(
                    "This filter does not exist. Did you mean: \"{field}\"? The full list is: \"{}\"",
                    available.join("\", \"")
                ),
            );
        }
        match Filter::read(field, text) {
            Some(filter) if !text.is_empty() => filters.push((field, filter)),
            _ => {
                return ps_error(
                    StatusCode::BAD_REQUEST,
                    33,
                    &format!("The filter \"{field}\" is malformed."),
                );
            }
        }
    }

    let mut sorts = Vec::new();
    if let Some(sort) = param(&query, "sort") {
        let list = sort
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(sort);
        for item in list.split(',') {
            let Some((field, direction)) = item.rsplit_once('_') else {
                return ps_error(
                    StatusCode::BAD_REQUEST,
                    37,
                    "The \"sort\" value has to be formed as this example: \"field_ASC\" or '[field_1_DESC,field_2_ASC,field_3_ASC,...]' (\"field\" has to be an available field)",
                );
            };
            let descending = match direction.to_ascii_uppercase().as_str() {
                "ASC" => false,
                "DESC" => true,
                _ => {
                    return ps_error(
                        StatusCode::BAD_REQUEST,
                        37,
                        "The \"sort\" value has to be formed as this example: \"field_ASC\" or '[field_1_DESC,field_2_ASC,field_3_ASC,...]' (\"field\" has to be an available field)",
                    );
                }
            };
            if !SORTABLE.contains(&field) || (is_date(field) && !dates) {
                return ps_error(
                    StatusCode::BAD_REQUEST,
                    38,
                    &format!(
                        "Unable to filter by this field. However, these are available: {}",
                        available.join(", ")
                    ),
                );
            }
            sorts.push((field.to_owned(), descending));
        }
    }

    let (offset, count) = match param(&query, "limit") {
        None => (0, usize::MAX),
        Some(limit) => {
            let parts: Vec<&str> = limit.split(',').map(str::trim).collect();
            let number = |text: &str| text.parse::<usize>().ok();
            match parts.as_slice() {
                [count] => (0, number(count).unwrap_or(0)),
                [offset, count] => (number(offset).unwrap_or(0), number(count).unwrap_or(0)),
                _ => {
                    return ps_error(
                        StatusCode::BAD_REQUEST,
                        39,
                        "The \"limit\" value has to be formed as this example: \"5,25\" or \"10\"",
                    );
                }
            }
        }
    };

    let display = param(&query, "display");
    // The field names do not depend on the order; any order lists them.
    let all_fields: Vec<&str> = order_fields(&Generator::new(0).order(), &ws.url)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let wanted: Option<Vec<String>> = match display {
        None => None,
        Some("full") => Some(Vec::new()),
        Some(list) => {
            let Some(inner) = list.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
                return ps_error(
                    StatusCode::BAD_REQUEST,
                    36,
                    "The 'display' syntax is wrong. You can set 'full' or '[field_1,field_2,field_3,...]'.",
                );
            };
            let names: Vec<String> = inner.split(',').map(|n| n.trim().to_owned()).collect();
            if let Some(unknown) = names.iter().find(|n| !all_fields.contains(&n.as_str())) {
                return ps_error(
                    StatusCode::BAD_REQUEST,
                    35,
                    &format!("Unable to display this field \"{unknown}\"."),
                );
            }
            Some(names)
        }
    };

    let mut orders: Vec<SimOrder> = ws
        .shop
        .orders()
        .into_iter()
        .filter(|order| {
            filters
                .iter()
                .all(|(field, filter)| filter.admits(&value_of(order, field)))
        })
        .collect();
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
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or_else(|| a.id.cmp(&b.id))
    });

    let mut body = format!("{HEAD}<orders>\n");
    for order in orders.iter().skip(offset).take(count) {
        match &wanted {
            None => {
                let _ = writeln!(
                    body,
                    "<order id=\"{}\" xlink:href=\"{}/api/orders/{}\"/>",
                    order.id,
                    xml_escape(&ws.url),
                    order.id
                );
            }
            Some(names) => {
                body.push_str("<order>\n");
                for (name, element) in order_fields(order, &ws.url) {
                    if names.is_empty() || names.iter().any(|n| n == name) {
                        body.push_str(&element);
                        body.push('\n');
                    }
                }
                body.push_str("</order>\n");
            }
        }
    }
    body.push_str("</orders>\n");
    body.push_str(TAIL);
    xml(StatusCode::OK, body)
}
