//! Shopify: the `orders/*` webhook body is a bare Order object, and the REST Admin API's
//! `GET orders/{id}.json` wraps the same object as `{"order":{…}}`; both read the same.
//!
//! Ids are int64 and exceed 2^53 (`820982911946154508`), so they are read as the digits
//! written; money is decimal strings in the shop's `currency`.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::fields::{
    AddressPaths, amount, created_and_updated, first_of, numeric_id, optional_amount, quantity,
    refuse_array, required_currency, required_list, sourced_customer, validated_address,
};
use super::{Exact, ParseError, from_json, full_name, joined, non_empty};
use crate::incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
use crate::platform::Platform;

/// Whether the body is the REST wrapper: an Order has no field of its own named `order`.
#[derive(Deserialize)]
struct Probe {
    order: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Wrapped {
    order: Order,
}

// Every field is optional to serde so that what is missing is reported by its path, in the
// order the fields matter, rather than as serde's first "missing field".
#[derive(Deserialize)]
struct Order {
    id: Option<Exact>,
    name: Option<String>,
    order_number: Option<Exact>,
    email: Option<String>,
    contact_email: Option<String>,
    phone: Option<String>,
    currency: Option<String>,
    financial_status: Option<String>,
    fulfillment_status: Option<String>,
    cancelled_at: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    total_line_items_price: Option<Exact>,
    subtotal_price: Option<Exact>,
    total_tax: Option<Exact>,
    total_discounts: Option<Exact>,
    total_price: Option<Exact>,
    customer: Option<Buyer>,
    shipping_address: Option<Place>,
    line_items: Option<Vec<LineItem>>,
    shipping_lines: Option<Vec<ShippingLine>>,
}

#[derive(Deserialize)]
struct Buyer {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
struct Place {
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    province_code: Option<String>,
    zip: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
struct LineItem {
    sku: Option<String>,
    variant_id: Option<Exact>,
    product_id: Option<Exact>,
    name: Option<String>,
    title: Option<String>,
    quantity: Option<Exact>,
    price: Option<Exact>,
}

#[derive(Deserialize)]
struct ShippingLine {
    code: Option<String>,
    title: Option<String>,
    price: Option<Exact>,
}

pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    refuse_array(body)?;
    let probe: Probe = from_json(body)?;
    if probe.order.is_some() {
        let wrapped: Wrapped = from_json(body)?;
        normalise(wrapped.order).map_err(|error| prefixed(error, "order."))
    } else {
        normalise(from_json(body)?)
    }
}

/// Reads an order, naming its fields as in a bare webhook body; [`parse`] puts a wrapped
/// order's under `order.`.
fn normalise(order: Order) -> Result<IncomingOrder, ParseError> {
    let external_id = numeric_id(order.id.as_ref(), "id")?;
    // `orders/delete` sends the id alone: an order has at least its currency, lines and
    // times, so a body with none of them is a deletion, not a broken order.
    if order.currency.is_none()
        && order.line_items.is_none()
        && order.created_at.is_none()
        && order.updated_at.is_none()
    {
        return Err(ParseError::Deleted {
            platform: Platform::Shopify,
            external_id,
        });
    }
    let currency = required_currency("currency", order.currency.as_deref())?;

    let items = required_list(order.line_items.as_deref(), "line_items")?;
    let lines = items
        .iter()
        .enumerate()
        .map(|(index, item)| line(item, &format!("line_items[{index}]"), currency))
        .collect::<Result<Vec<_>, _>>()?;

    // Every webhook carries `updated_at`.
    let (created_at, updated_at) = created_and_updated(
        ("created_at", order.created_at.as_deref()),
        ("updated_at", order.updated_at.as_deref()),
    )?;

    let shipping_lines = order.shipping_lines.as_deref().unwrap_or_default();
    let mut shipping_minor: i64 = 0;
    for (index, shipping) in shipping_lines.iter().enumerate() {
        let field = format!("shipping_lines[{index}].price");
        let price = optional_amount(shipping.price.as_ref(), &field, currency)?;
        shipping_minor = shipping_minor
            .checked_add(price)
            .ok_or_else(|| ParseError::invalid(field, "the shipping total is too large"))?;
    }
    let shipping_method = shipping_lines.iter().find_map(|line| {
        non_empty(line.code.as_deref()).or_else(|| non_empty(line.title.as_deref()))
    });

    let totals = Totals {
        items_minor: items_total(&order, currency)?,
        shipping_minor,
        tax_minor: optional_amount(order.total_tax.as_ref(), "total_tax", currency)?,
        discount_minor: optional_amount(
            order.total_discounts.as_ref(),
            "total_discounts",
            currency,
        )?,
        total_minor: amount(order.total_price.as_ref(), "total_price", currency)?,
    };

    Ok(IncomingOrder {
        platform: Platform::Shopify,
        external_id,
        number: non_empty(order.name.as_deref()).or_else(|| {
            order
                .order_number
                .as_ref()
                .and_then(|number| number.id("order_number").ok())
        }),
        state: state(&order),
        platform_status: platform_status(&order),
        customer: customer(&order)?,
        shipping_address: shipping_address(order.shipping_address.as_ref())?,
        lines,
        shipping_method,
        currency,
        totals,
        created_at,
        updated_at,
    })
}

/// The error with its field put under `prefix`.
fn prefixed(error: ParseError, prefix: &str) -> ParseError {
    match error {
        ParseError::Missing(field) => ParseError::Missing(format!("{prefix}{field}")),
        ParseError::Invalid { field, reason } => ParseError::Invalid {
            field: format!("{prefix}{field}"),
            reason,
        },
        other => other,
    }
}

/// Items before discounts, so that items + shipping + tax − discounts = total holds as it
/// does for the other platforms: `subtotal_price` is already net of `total_discounts` and
/// would count them twice. It is the fallback for payloads that omit the gross figure.
fn items_total(order: &Order, currency: Currency) -> Result<i64, ParseError> {
    match (&order.total_line_items_price, &order.subtotal_price) {
        (Some(gross), _) => amount(Some(gross), "total_line_items_price", currency),
        (None, Some(net)) => amount(Some(net), "subtotal_price", currency),
        (None, None) => Err(ParseError::missing("total_line_items_price")),
    }
}

fn line(item: &LineItem, path: &str, currency: Currency) -> Result<IncomingLine, ParseError> {
    // Custom line items (no catalogue product) have neither id: such a line is known by its
    // SKU alone, or by nothing, which intake reports.
    let item_id = match (&item.variant_id, &item.product_id) {
        (Some(variant), _) => Some(numeric_id(Some(variant), &format!("{path}.variant_id"))?),
        (None, Some(product)) => Some(numeric_id(Some(product), &format!("{path}.product_id"))?),
        (None, None) => None,
    };
    Ok(IncomingLine {
        sku: non_empty(item.sku.as_deref()),
        item_id,
        name: non_empty(item.name.as_deref()).or_else(|| non_empty(item.title.as_deref())),
        quantity: quantity(item.quantity.as_ref(), &format!("{path}.quantity"))?,
        unit_price_minor: amount(item.price.as_ref(), &format!("{path}.price"), currency)?,
    })
}

fn state(order: &Order) -> PlatformState {
    if non_empty(order.cancelled_at.as_deref()).is_some() {
        return PlatformState::Cancelled;
    }
    match order.financial_status.as_deref() {
        Some("refunded") => return PlatformState::Refunded,
        // A voided authorisation means no money was ever captured, so nothing went back to
        // the buyer: calling it Refunded would tell finance a refund happened. Both states
        // end the order on our side alike.
        Some("voided") => return PlatformState::Cancelled,
        _ => {}
    }
    if order.fulfillment_status.as_deref() == Some("fulfilled") {
        return PlatformState::Fulfilled;
    }
    match order.financial_status.as_deref() {
        // An authorisation is a promise to pay that the shop captures when it ships; intake
        // treats the order as ready to fulfil, as Shopify's own fulfilment flow does.
        Some("paid" | "partially_paid" | "authorized" | "partially_refunded") => {
            PlatformState::Paid
        }
        _ => PlatformState::Pending,
    }
}

fn platform_status(order: &Order) -> String {
    joined(
        [
            order.financial_status.as_deref(),
            order.fulfillment_status.as_deref(),
        ],
        "/",
    )
    .unwrap_or_else(|| "unknown".to_owned())
}

fn customer(order: &Order) -> Result<Customer, ParseError> {
    let buyer = order.customer.as_ref();
    let place = order.shipping_address.as_ref();
    let name = first_of([
        (
            "customer.first_name",
            buyer.and_then(|b| full_name(b.first_name.as_deref(), b.last_name.as_deref())),
        ),
        ("shipping_address.name", place.and_then(place_name)),
    ]);
    let email = first_of([
        ("email", non_empty(order.email.as_deref())),
        ("contact_email", non_empty(order.contact_email.as_deref())),
        (
            "customer.email",
            buyer.and_then(|b| non_empty(b.email.as_deref())),
        ),
    ]);
    // The ship-to phone is what a courier calls, so it stands in for a buyer without one.
    let phone = first_of([
        ("phone", non_empty(order.phone.as_deref())),
        (
            "customer.phone",
            buyer.and_then(|b| non_empty(b.phone.as_deref())),
        ),
        (
            "shipping_address.phone",
            place.and_then(|p| non_empty(p.phone.as_deref())),
        ),
    ]);
    sourced_customer(name, email, phone, "customer")
}

fn place_name(place: &Place) -> Option<String> {
    non_empty(place.name.as_deref())
        .or_else(|| full_name(place.first_name.as_deref(), place.last_name.as_deref()))
}

const ADDRESS_PATHS: AddressPaths = AddressPaths {
    whole: "shipping_address",
    name: "shipping_address.name",
    line1: "shipping_address.address1",
    line2: "shipping_address.address2",
    city: "shipping_address.city",
    region: "shipping_address.province_code",
    postal_code: "shipping_address.zip",
    country: "shipping_address.country_code",
};

fn shipping_address(place: Option<&Place>) -> Result<Option<Address>, ParseError> {
    let Some(place) = place else {
        return Ok(None);
    };
    let address = Address {
        name: place_name(place).or_else(|| non_empty(place.company.as_deref())),
        line1: non_empty(place.address1.as_deref()),
        line2: non_empty(place.address2.as_deref()),
        city: non_empty(place.city.as_deref()),
        region: non_empty(place.province_code.as_deref()),
        postal_code: non_empty(place.zip.as_deref()),
        country: non_empty(place.country_code.as_deref()).map(|code| code.to_ascii_uppercase()),
    };
    validated_address(address, &ADDRESS_PATHS)
}
