//! Jumpseller: a webhook body is `{"order":{…}}`, the same object as `GET /orders/{id}.json`
//! and each element of `GET /orders/status/{status}.json`. Money is JSON numbers in the
//! order's `currency`, read as written; times are `2023-02-10 13:56:35 UTC`.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use serde::Deserialize;

use super::fields::{
    AddressPaths, amount, first_of, numeric_id, optional_amount, quantity, refuse_array,
    required_currency, required_list, sourced_customer, validated_address,
};
use super::{Exact, ParseError, from_json, full_name, non_empty};
use crate::incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
use crate::platform::Platform;
use crate::timestamp;

#[derive(Deserialize)]
struct Body {
    order: Option<Order>,
}

// Every field is optional to serde so that what is missing is reported by its path, in the
// order the fields matter, rather than as serde's first "missing field".
#[derive(Deserialize)]
struct Order {
    id: Option<Exact>,
    status: Option<String>,
    status_enum: Option<String>,
    created_at: Option<String>,
    completed_at: Option<String>,
    updated_at: Option<String>,
    currency: Option<String>,
    subtotal: Option<Exact>,
    tax: Option<Exact>,
    shipping_tax: Option<Exact>,
    shipping: Option<Exact>,
    discount: Option<Exact>,
    shipping_discount: Option<Exact>,
    total: Option<Exact>,
    shipping_method_id: Option<Exact>,
    shipping_method_name: Option<String>,
    fulfillment_status: Option<String>,
    shipment_status: Option<String>,
    shipment_status_enum: Option<String>,
    customer: Option<Buyer>,
    shipping_address: Option<Place>,
    products: Option<Vec<Product>>,
}

#[derive(Deserialize)]
struct Buyer {
    email: Option<String>,
    phone: Option<String>,
    fullname: Option<String>,
}

#[derive(Deserialize)]
struct Place {
    name: Option<String>,
    surname: Option<String>,
    address: Option<String>,
    street_number: Option<String>,
    complement: Option<String>,
    city: Option<String>,
    municipality: Option<String>,
    postal: Option<String>,
    region_code: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
struct Product {
    id: Option<Exact>,
    variant_id: Option<Exact>,
    sku: Option<String>,
    name: Option<String>,
    qty: Option<Exact>,
    price: Option<Exact>,
}

/// Reads a body on its own: it must carry `created_at`, as every order Jumpseller serves
/// does.
pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    parse_delivery(body, None)
}

/// Reads a webhook delivery with its `Jumpseller-Triggered-At` header, which says when the
/// event fired: the change the body describes happened by then, so it bounds `updated_at`
/// from below, and it stands in for `created_at` in a body without one (the order existed
/// before its event fired) — Jumpseller's own shortened webhook example has none.
pub fn parse_delivery(
    body: &[u8],
    triggered_at: Option<&str>,
) -> Result<IncomingOrder, ParseError> {
    let triggered_at = triggered_at
        .map(|text| timestamp::parse("Jumpseller-Triggered-At", text))
        .transpose()?;
    refuse_array(body)?;
    let Body { order } = from_json(body)?;
    let order = order.ok_or_else(|| ParseError::missing("order"))?;

    let external_id = numeric_id(order.id.as_ref(), "order.id")?;
    let products = required_list(order.products.as_deref(), "order.products")?;
    let currency = required_currency("order.currency", order.currency.as_deref())?;
    let lines = products
        .iter()
        .enumerate()
        .map(|(index, product)| line(product, &format!("order.products[{index}]"), currency))
        .collect::<Result<Vec<_>, _>>()?;

    let created_at = match (order.created_at.as_deref(), triggered_at) {
        (Some(text), _) => timestamp::parse("order.created_at", text)?,
        (None, Some(triggered_at)) => triggered_at,
        (None, None) => return Err(ParseError::missing("order.created_at")),
    };
    // Jumpseller's order has no modification time of its own (an `updated_at` is taken if
    // one ever appears): the latest instant the body or the delivery vouches for is the best
    // bound there is for discarding stale updates.
    let mut updated_at = created_at;
    for (field, text) in [
        ("order.completed_at", order.completed_at.as_deref()),
        ("order.updated_at", order.updated_at.as_deref()),
    ] {
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            updated_at = updated_at.max(timestamp::parse(field, text)?);
        }
    }
    if let Some(triggered_at) = triggered_at {
        updated_at = updated_at.max(triggered_at);
    }

    let status = non_empty(order.status_enum.as_deref())
        .or_else(|| non_empty(order.status.as_deref()).map(|status| enum_word(&status)))
        .ok_or_else(|| ParseError::missing("order.status_enum"))?;
    let shipment = non_empty(order.shipment_status_enum.as_deref())
        .or_else(|| non_empty(order.shipment_status.as_deref()).map(|status| enum_word(&status)));
    let state = state(
        &status,
        shipment.as_deref(),
        order.fulfillment_status.as_deref(),
    );
    let platform_status = match &shipment {
        Some(shipment) => format!("{status}/{shipment}"),
        None => status,
    };

    let totals = Totals {
        items_minor: amount(order.subtotal.as_ref(), "order.subtotal", currency)?,
        shipping_minor: optional_amount(order.shipping.as_ref(), "order.shipping", currency)?,
        // The order's tax is what it carries on the products plus on the shipping.
        tax_minor: sum(
            "order.shipping_tax",
            [
                optional_amount(order.tax.as_ref(), "order.tax", currency)?,
                optional_amount(order.shipping_tax.as_ref(), "order.shipping_tax", currency)?,
            ],
        )?,
        discount_minor: sum(
            "order.shipping_discount",
            [
                optional_amount(order.discount.as_ref(), "order.discount", currency)?,
                optional_amount(
                    order.shipping_discount.as_ref(),
                    "order.shipping_discount",
                    currency,
                )?,
            ],
        )?,
        total_minor: amount(order.total.as_ref(), "order.total", currency)?,
    };

    // The method's name is what the shop's rules and its operators know it by; the numeric
    // id only when there is no name.
    let shipping_method = non_empty(order.shipping_method_name.as_deref()).or_else(|| {
        order
            .shipping_method_id
            .as_ref()
            .and_then(|id| id.id("order.shipping_method_id").ok())
    });

    Ok(IncomingOrder {
        platform: Platform::Jumpseller,
        // Jumpseller shows the order's id as its number ("Order #1026").
        number: Some(external_id.clone()),
        external_id,
        state,
        platform_status,
        customer: customer(order.customer.as_ref(), order.shipping_address.as_ref())?,
        shipping_address: shipping_address(order.shipping_address.as_ref())?,
        lines,
        shipping_method,
        currency,
        totals,
        created_at,
        updated_at,
    })
}

/// `Pending Payment` → `pending_payment`, for a body without the `*_enum` fields. The
/// display words may be translated (the docs' example has `"shipment_status": "No
/// Procesado"`), which is why the enums come first.
fn enum_word(display: &str) -> String {
    display.trim().to_lowercase().replace(' ', "_")
}

fn state(status: &str, shipment: Option<&str>, fulfillment: Option<&str>) -> PlatformState {
    match status {
        // An abandoned checkout never becomes an order that anyone pays for: stock held for
        // it goes back.
        "canceled" | "cancelled" | "abandoned" => return PlatformState::Cancelled,
        "refunded" => return PlatformState::Refunded,
        _ => {}
    }
    if matches!(shipment, Some("shipped" | "delivered")) || fulfillment == Some("fulfilled") {
        return PlatformState::Fulfilled;
    }
    match status {
        "paid" => PlatformState::Paid,
        // pending_payment and statuses Jumpseller may add.
        _ => PlatformState::Pending,
    }
}

fn line(product: &Product, path: &str, currency: Currency) -> Result<IncomingLine, ParseError> {
    let item_id = match (&product.variant_id, &product.id) {
        (Some(variant), _) => Some(numeric_id(Some(variant), &format!("{path}.variant_id"))?),
        (None, Some(id)) => Some(numeric_id(Some(id), &format!("{path}.id"))?),
        (None, None) => None,
    };
    Ok(IncomingLine {
        sku: non_empty(product.sku.as_deref()),
        item_id,
        name: non_empty(product.name.as_deref()),
        quantity: quantity(product.qty.as_ref(), &format!("{path}.qty"))?,
        unit_price_minor: amount(product.price.as_ref(), &format!("{path}.price"), currency)?,
    })
}

fn customer(buyer: Option<&Buyer>, place: Option<&Place>) -> Result<Customer, ParseError> {
    let name = first_of([
        (
            "order.customer.fullname",
            buyer.and_then(|b| non_empty(b.fullname.as_deref())),
        ),
        ("order.shipping_address.name", place.and_then(place_name)),
    ]);
    let email = first_of([(
        "order.customer.email",
        buyer.and_then(|b| non_empty(b.email.as_deref())),
    )]);
    let phone = first_of([
        (
            "order.customer.phone",
            buyer.and_then(|b| non_empty(b.phone.as_deref())),
        ),
        (
            "order.shipping_address.phone",
            place.and_then(|p| non_empty(p.phone.as_deref())),
        ),
    ]);
    sourced_customer(name, email, phone, "order.customer")
}

fn place_name(place: &Place) -> Option<String> {
    full_name(place.name.as_deref(), place.surname.as_deref())
}

const ADDRESS_PATHS: AddressPaths = AddressPaths {
    whole: "order.shipping_address",
    name: "order.shipping_address.name",
    line1: "order.shipping_address.address",
    line2: "order.shipping_address.complement",
    city: "order.shipping_address.city",
    region: "order.shipping_address.region_code",
    postal_code: "order.shipping_address.postal",
    country: "order.shipping_address.country_code",
};

fn shipping_address(place: Option<&Place>) -> Result<Option<Address>, ParseError> {
    let Some(place) = place else {
        return Ok(None);
    };
    let address = Address {
        name: place_name(place),
        line1: street_line(place.address.as_deref(), place.street_number.as_deref()),
        line2: non_empty(place.complement.as_deref()),
        // Chilean stores fill the comuna in `municipality` and may leave `city` empty.
        city: non_empty(place.city.as_deref()).or_else(|| non_empty(place.municipality.as_deref())),
        // `region` is a display name ("New York"); orderflow's region is a code.
        region: non_empty(place.region_code.as_deref()),
        postal_code: non_empty(place.postal.as_deref()),
        country: non_empty(place.country_code.as_deref()).map(|code| code.to_ascii_uppercase()),
    };
    validated_address(address, &ADDRESS_PATHS)
}

/// `address` and `street_number` as one line, `Av. Providencia 1234`, without repeating a
/// number the buyer already typed into the street.
fn street_line(street: Option<&str>, number: Option<&str>) -> Option<String> {
    let street = non_empty(street);
    let number = non_empty(number);
    match (street, number) {
        (Some(street), Some(number)) => {
            if street
                .split_whitespace()
                .any(|word| word.trim_matches(',') == number)
            {
                Some(street)
            } else {
                Some(format!("{street} {number}"))
            }
        }
        (street, number) => street.or(number),
    }
}

fn sum<const N: usize>(field: &str, amounts: [i64; N]) -> Result<i64, ParseError> {
    amounts
        .into_iter()
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| ParseError::invalid(field, "the sum is too large"))
}
