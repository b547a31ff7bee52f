//! PrestaShop webservice (PLATFORMS.md §4). An order names its address, customer, country,
//! state, currency and carrier by id only, so the pull connector fetches those and hands
//! [`parse`] one envelope.
//!
//! # The envelope (the contract with the pull connector)
//!
//! A JSON object:
//!
//! ```json
//! {
//!   "order": "<the order's XML document, as a string>",
//!   "address": "<the delivery address's XML document (GET /api/addresses/{id_address_delivery})>",
//!   "customer": "<the customer's XML document (GET /api/customers/{id_customer})>" | null,
//!   "country_iso": "FR",
//!   "state_iso": "CA" | null,
//!   "currency_iso": "EUR",
//!   "carrier": "<the carrier's name>" | null
//! }
//! ```
//!
//! - `order` is `GET /api/orders/{id}` (`<prestashop><order>…`), or a `display=full` listing
//!   holding exactly that one order (`<prestashop><orders><order>…`).
//! - `country_iso` is the `iso_code` of `/api/countries/{address.id_country}` (ISO 3166-1
//!   alpha-2), `state_iso` that of `/api/states/{address.id_state}`, null when `id_state` is 0,
//!   `currency_iso` that of `/api/currencies/{order.id_currency}`, `carrier` the `name` of
//!   `/api/carriers/{order.id_carrier}`, null when the carrier is 0 or unknown.
//! - `customer` is null when the customer could not be fetched (deleted); the name then comes
//!   from the address.
//! - Keys not listed are ignored.
//!
//! The connector can also skip the envelope and call [`parse_parts`] with a [`Related`] built
//! from [`address_fields`], [`customer_fields`] and [`resource_field`]; [`order_refs`] reads the
//! ids it has to fetch, and [`order_ids_and_dates`] reads a listing.
//!
//! # Mapping decisions
//!
//! - Money is six-place decimal text, rounded half away from zero to the currency's minor unit.
//! - Items are `total_products_wt` and line prices `unit_price_tax_incl`: tax included, as the
//!   customer paid them. Tax is `total_paid_tax_incl − total_paid_tax_excl`, the tax contained in
//!   the total (already inside items and shipping, not on top of them). Shipping is
//!   `total_shipping` (tax included), discounts `total_discounts` (positive in PrestaShop),
//!   the total `total_paid`.
//! - A line's SKU is `product_reference`; its item id is `product_id`, or
//!   `product_id:product_attribute_id` for a combination (size, colour), which alone tells the
//!   variant apart.
//! - `current_state` is an id into `order_states`; the ids of a default install are mapped, and
//!   the platform status is `state <id>`.
//! - Times are shop-local without a zone and read as UTC; `0000-00-00 00:00:00` means none.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use roxmltree::{Document, Node};
use serde::Deserialize;

use super::{ParseError, currency, from_json, full_name, non_empty};
use crate::incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
use crate::platform::Platform;
use crate::timestamp;

/// What the order refers to by id, fetched by the pull connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// The delivery address (`id_address_delivery`).
    pub address: AddressFields,
    pub customer: Option<CustomerFields>,
    /// ISO 3166-1 alpha-2 of the address's country.
    pub country_iso: String,
    /// The `iso_code` of the address's state, when it has one.
    pub state_iso: Option<String>,
    /// ISO 4217 of the order's currency.
    pub currency_iso: String,
    /// The carrier's name.
    pub carrier: Option<String>,
}

/// The fields of `/api/addresses/{id}` an order needs. Ids of 0 (none) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressFields {
    pub id: Option<String>,
    pub id_customer: Option<String>,
    pub id_country: Option<String>,
    pub id_state: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub company: Option<String>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub phone: Option<String>,
    pub phone_mobile: Option<String>,
}

/// The fields of `/api/customers/{id}` an order needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFields {
    pub id: Option<String>,
    pub email: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
}

/// The ids an order refers to, for the pull connector to fetch. Ids of 0 (none) are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRefs {
    pub id: String,
    pub address_delivery: Option<String>,
    pub customer: Option<String>,
    pub currency: Option<String>,
    pub carrier: Option<String>,
}

/// One row of `GET /api/orders?display=[id,date_upd]` (or `display=full`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOrder {
    pub id: String,
    /// As sent (shop-local, no zone): the next `filter[date_upd]` bound is written the same way.
    pub date_upd: String,
}

#[derive(Deserialize)]
struct Envelope {
    order: Option<String>,
    address: Option<String>,
    customer: Option<String>,
    country_iso: Option<String>,
    state_iso: Option<String>,
    currency_iso: Option<String>,
    carrier: Option<String>,
}

/// Parses the envelope described in the module documentation.
pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    let envelope: Envelope = from_json(body)?;
    let order = envelope.order.ok_or_else(|| ParseError::missing("order"))?;
    let address = envelope
        .address
        .ok_or_else(|| ParseError::missing("address"))?;
    let related = Related {
        address: address_fields(&address)?,
        customer: match envelope.customer.as_deref() {
            Some(xml) => Some(customer_fields(xml)?),
            None => None,
        },
        country_iso: envelope
            .country_iso
            .ok_or_else(|| ParseError::missing("country_iso"))?,
        state_iso: envelope.state_iso,
        currency_iso: envelope
            .currency_iso
            .ok_or_else(|| ParseError::missing("currency_iso"))?,
        carrier: envelope.carrier,
    };
    parse_parts(&order, &related)
}

/// Parses one order document with what it refers to.
pub fn parse_parts(order_xml: &str, related: &Related) -> Result<IncomingOrder, ParseError> {
    let document = document("order", order_xml)?;
    let order = single_order(&document)?;
    let external_id =
        id(order, "id", "order.id")?.ok_or_else(|| ParseError::missing("order.id"))?;
    let currency = currency("currency_iso", related.currency_iso.trim())?;
    let state_id = id(order, "current_state", "order.current_state")?
        .ok_or_else(|| ParseError::missing("order.current_state"))?;
    let created_at = timestamp::parse_optional(
        "order.date_add",
        &field(order, "date_add").unwrap_or_default(),
    )?
    .ok_or_else(|| ParseError::missing("order.date_add"))?;
    let updated_at = timestamp::parse_optional(
        "order.date_upd",
        &field(order, "date_upd").unwrap_or_default(),
    )?
    .unwrap_or(created_at);
    let paid_incl = money(order, "total_paid_tax_incl", currency)?;
    let paid_excl = money(order, "total_paid_tax_excl", currency)?;
    let totals = Totals {
        items_minor: money(order, "total_products_wt", currency)?,
        shipping_minor: money(order, "total_shipping", currency)?,
        tax_minor: paid_incl.checked_sub(paid_excl).ok_or_else(|| {
            ParseError::invalid("order.total_paid_tax_excl", "too large an amount")
        })?,
        discount_minor: money(order, "total_discounts", currency)?,
        total_minor: money(order, "total_paid", currency)?,
    };
    Ok(IncomingOrder {
        platform: Platform::Prestashop,
        external_id,
        number: field(order, "reference"),
        state: state(&state_id),
        platform_status: format!("state {state_id}"),
        customer: customer(related)?,
        shipping_address: Some(address(related)?),
        lines: lines(order, currency)?,
        shipping_method: non_empty(related.carrier.as_deref()),
        currency,
        totals,
        created_at,
        updated_at,
    })
}

/// The ids an order document refers to.
pub fn order_refs(order_xml: &str) -> Result<OrderRefs, ParseError> {
    let document = document("order", order_xml)?;
    let order = single_order(&document)?;
    Ok(OrderRefs {
        id: id(order, "id", "order.id")?.ok_or_else(|| ParseError::missing("order.id"))?,
        address_delivery: id(order, "id_address_delivery", "order.id_address_delivery")?,
        customer: id(order, "id_customer", "order.id_customer")?,
        currency: id(order, "id_currency", "order.id_currency")?,
        carrier: id(order, "id_carrier", "order.id_carrier")?,
    })
}

/// The ids and last-update times of an order listing, in the listing's order. An empty
/// listing (`<orders/>`) is an empty list.
pub fn order_ids_and_dates(list_xml: &str) -> Result<Vec<ListedOrder>, ParseError> {
    let document = document("orders", list_xml)?;
    let orders = child(root(&document)?, "orders").ok_or_else(|| ParseError::missing("orders"))?;
    elements(orders, "order")
        .enumerate()
        .map(|(index, order)| {
            let at = |name: &str| format!("orders.order[{index}].{name}");
            // The element when `display` lists it, the attribute of a bare listing otherwise.
            let id = match id(order, "id", &at("id"))? {
                Some(id) => id,
                None => order
                    .attribute("id")
                    .map(str::trim)
                    .filter(|id| is_id(id))
                    .map(str::to_owned)
                    .ok_or_else(|| ParseError::missing(at("id")))?,
            };
            let date_upd =
                field(order, "date_upd").ok_or_else(|| ParseError::missing(at("date_upd")))?;
            timestamp::parse_optional("date_upd", &date_upd).map_err(|_| {
                ParseError::invalid(at("date_upd"), format!("{date_upd:?} is not a timestamp"))
            })?;
            Ok(ListedOrder { id, date_upd })
        })
        .collect()
}

/// Reads `/api/addresses/{id}`.
pub fn address_fields(address_xml: &str) -> Result<AddressFields, ParseError> {
    let document = document("address", address_xml)?;
    let address =
        child(root(&document)?, "address").ok_or_else(|| ParseError::missing("address"))?;
    Ok(AddressFields {
        id: id(address, "id", "address.id")?,
        id_customer: id(address, "id_customer", "address.id_customer")?,
        id_country: id(address, "id_country", "address.id_country")?,
        id_state: id(address, "id_state", "address.id_state")?,
        firstname: field(address, "firstname"),
        lastname: field(address, "lastname"),
        company: field(address, "company"),
        address1: field(address, "address1"),
        address2: field(address, "address2"),
        postcode: field(address, "postcode"),
        city: field(address, "city"),
        phone: field(address, "phone"),
        phone_mobile: field(address, "phone_mobile"),
    })
}

/// Reads `/api/customers/{id}`.
pub fn customer_fields(customer_xml: &str) -> Result<CustomerFields, ParseError> {
    let document = document("customer", customer_xml)?;
    let customer =
        child(root(&document)?, "customer").ok_or_else(|| ParseError::missing("customer"))?;
    Ok(CustomerFields {
        id: id(customer, "id", "customer.id")?,
        email: field(customer, "email"),
        firstname: field(customer, "firstname"),
        lastname: field(customer, "lastname"),
    })
}

/// One field of a single resource, trimmed, `None` when empty: `iso_code` of a country, state
/// or currency, `name` of a carrier. A multilingual field gives its first language's text.
pub fn resource_field(xml: &str, name: &str) -> Result<Option<String>, ParseError> {
    let document = document("resource", xml)?;
    let resource = root(&document)?
        .children()
        .find(Node::is_element)
        .ok_or_else(|| ParseError::missing("prestashop.*"))?;
    Ok(field(resource, name))
}

fn document<'x>(what: &str, xml: &'x str) -> Result<Document<'x>, ParseError> {
    Document::parse(xml).map_err(|error| ParseError::Xml(format!("{what}: {error}")))
}

fn root<'a, 'x>(document: &'a Document<'x>) -> Result<Node<'a, 'x>, ParseError> {
    let root = document.root_element();
    if root.tag_name().name() != "prestashop" {
        return Err(ParseError::invalid(
            "prestashop",
            format!(
                "the document is <{}>, not <prestashop>",
                root.tag_name().name()
            ),
        ));
    }
    Ok(root)
}

/// The one order of `<prestashop><order>` or of a `display=full` listing.
fn single_order<'a, 'x>(document: &'a Document<'x>) -> Result<Node<'a, 'x>, ParseError> {
    let root = root(document)?;
    if let Some(order) = child(root, "order") {
        return Ok(order);
    }
    let orders = child(root, "orders").ok_or_else(|| ParseError::missing("order"))?;
    let mut all = elements(orders, "order");
    match (all.next(), all.next()) {
        (Some(order), None) => Ok(order),
        (None, _) => Err(ParseError::missing("orders.order")),
        (Some(_), Some(_)) => Err(ParseError::invalid(
            "orders",
            "the listing holds more than one order; pass them one at a time",
        )),
    }
}

fn elements<'a, 'x: 'a>(
    node: Node<'a, 'x>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'x>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'x: 'a>(node: Node<'a, 'x>, name: &str) -> Option<Node<'a, 'x>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of an element: CDATA and text alike, and PrestaShop's pretty-printed
/// listings wrap values in newlines and tabs. A multilingual element (`<language id="1">`)
/// gives its first language's text.
fn text(node: Node) -> Option<String> {
    // One level only: recursing into nested elements would let a hostile document exhaust
    // the stack.
    own_text(node).or_else(|| child(node, "language").and_then(own_text))
}

fn own_text(node: Node) -> Option<String> {
    let own: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|c| c.text())
        .collect();
    non_empty(Some(own.as_str()))
}

fn field(node: Node, name: &str) -> Option<String> {
    child(node, name).and_then(text)
}

fn is_id(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A numeric id; `0`, PrestaShop's "none", and an absent field are `None`.
fn id(node: Node, name: &str, path: &str) -> Result<Option<String>, ParseError> {
    match field(node, name) {
        Some(text) if !is_id(&text) => Err(ParseError::invalid(
            path,
            format!("{text:?} is not a numeric id"),
        )),
        Some(text) if text.bytes().all(|b| b == b'0') => Ok(None),
        other => Ok(other),
    }
}

fn money(order: Node, name: &str, currency: Currency) -> Result<i64, ParseError> {
    let path = format!("order.{name}");
    let text = field(order, name).ok_or_else(|| ParseError::missing(&path))?;
    currency
        .parse_decimal(&text)
        .map_err(|error| ParseError::invalid(path, error.to_string()))
}

fn lines(order: Node, currency: Currency) -> Result<Vec<IncomingLine>, ParseError> {
    const ROWS: &str = "order.associations.order_rows.order_row";
    let rows = child(order, "associations")
        .and_then(|a| child(a, "order_rows"))
        .map(|rows| elements(rows, "order_row").collect::<Vec<_>>())
        .unwrap_or_default();
    if rows.is_empty() {
        return Err(ParseError::missing(ROWS));
    }
    rows.into_iter()
        .enumerate()
        .map(|(index, row)| {
            let at = |name: &str| format!("{ROWS}[{index}].{name}");
            let product = id(row, "product_id", &at("product_id"))?;
            let combination = id(row, "product_attribute_id", &at("product_attribute_id"))?;
            let item_id = match (product, combination) {
                (Some(product), Some(combination)) => Some(format!("{product}:{combination}")),
                (product, _) => product,
            };
            let quantity_text = field(row, "product_quantity")
                .ok_or_else(|| ParseError::missing(at("product_quantity")))?;
            let quantity = quantity_text
                .parse::<u32>()
                .ok()
                .filter(|q| *q > 0 && is_id(&quantity_text))
                .ok_or_else(|| {
                    ParseError::invalid(
                        at("product_quantity"),
                        format!("{quantity_text:?} is not a quantity of at least 1"),
                    )
                })?;
            let price_text = field(row, "unit_price_tax_incl")
                .ok_or_else(|| ParseError::missing(at("unit_price_tax_incl")))?;
            let unit_price_minor = currency.parse_decimal(&price_text).map_err(|error| {
                ParseError::invalid(at("unit_price_tax_incl"), error.to_string())
            })?;
            if unit_price_minor < 0 {
                return Err(ParseError::invalid(
                    at("unit_price_tax_incl"),
                    "a unit price is not negative",
                ));
            }
            Ok(IncomingLine {
                sku: field(row, "product_reference"),
                item_id,
                name: field(row, "product_name"),
                quantity,
                unit_price_minor,
            })
        })
        .collect()
}

fn customer(related: &Related) -> Result<Customer, ParseError> {
    let fetched = related.customer.as_ref();
    let address = &related.address;
    let customer = Customer {
        customer_id: None,
        name: fetched
            .and_then(|c| full_name(c.firstname.as_deref(), c.lastname.as_deref()))
            .or_else(|| full_name(address.firstname.as_deref(), address.lastname.as_deref())),
        email: fetched.and_then(|c| c.email.clone()),
        phone: address
            .phone_mobile
            .clone()
            .or_else(|| address.phone.clone()),
        locale: None,
    };
    customer
        .validate()
        .map_err(|error| ParseError::invalid("customer", error.to_string()))?;
    Ok(customer)
}

fn address(related: &Related) -> Result<Address, ParseError> {
    let fields = &related.address;
    let address = Address {
        name: full_name(fields.firstname.as_deref(), fields.lastname.as_deref()),
        line1: fields.address1.clone(),
        line2: fields.address2.clone(),
        city: fields.city.clone(),
        region: non_empty(related.state_iso.as_deref()),
        postal_code: fields.postcode.clone(),
        country: non_empty(Some(related.country_iso.as_str())),
    };
    address.validate().map_err(|error| {
        let field = match error {
            orderflow_domain::party::PartyError::Country => "country_iso",
            _ => "address",
        };
        ParseError::invalid(field, error.to_string())
    })?;
    Ok(address)
}

/// The order states of a default PrestaShop install. A shop can add its own states, whose ids
/// mean nothing here: they stay `Pending` until someone maps them.
fn state(id: &str) -> PlatformState {
    match id {
        // Payment accepted, processing in progress, on backorder (paid), remote payment accepted.
        "2" | "3" | "9" | "11" => PlatformState::Paid,
        // Shipped, delivered.
        "4" | "5" => PlatformState::Fulfilled,
        // Canceled, payment error.
        "6" | "8" => PlatformState::Cancelled,
        "7" => PlatformState::Refunded,
        // Awaiting check/bank wire/COD, on backorder (not paid), and shop-defined states.
        _ => PlatformState::Pending,
    }
}
