//! WooCommerce: an `order.created`/`order.updated` webhook body is the REST v3 order,
//! exactly as `GET /wp-json/wc/v3/orders/{id}` returns it.
//!
//! The `order.deleted` body is only `{"id":…}`: it is refused here as having no
//! `line_items`, and the caller, which knows the topic, handles it.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use serde::Deserialize;

use super::fields::{
    AddressPaths, amount, created_and_updated, first_of, numeric_id, optional_amount, quantity,
    refuse_array, required_currency, required_list, sourced_customer, validated_address,
};
use super::{Exact, ParseError, from_json, full_name, non_empty};
use crate::incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
use crate::platform::Platform;

// Every field is optional to serde so that what is missing is reported by its path, in the
// order the fields matter: a deletion body lacks `line_items` before anything else.
#[derive(Deserialize)]
struct Order {
    id: Option<Exact>,
    number: Option<String>,
    status: Option<String>,
    currency: Option<String>,
    date_created_gmt: Option<String>,
    date_modified_gmt: Option<String>,
    discount_total: Option<Exact>,
    shipping_total: Option<Exact>,
    total_tax: Option<Exact>,
    total: Option<Exact>,
    billing: Option<Contact>,
    shipping: Option<Contact>,
    line_items: Option<Vec<LineItem>>,
    shipping_lines: Option<Vec<ShippingLine>>,
}

/// `billing` and `shipping` share one shape; only billing has `email`, and `phone` reached
/// shipping in WooCommerce 5.6.
#[derive(Deserialize)]
struct Contact {
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    address_1: Option<String>,
    address_2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
struct LineItem {
    name: Option<String>,
    product_id: Option<Exact>,
    variation_id: Option<Exact>,
    quantity: Option<Exact>,
    sku: Option<String>,
    /// A JSON number (`12`, or PHP's `8.333333333333334` for a discounted line), unlike
    /// every other amount.
    price: Option<Exact>,
    /// Before discounts, as a decimal string.
    subtotal: Option<Exact>,
}

#[derive(Deserialize)]
struct ShippingLine {
    method_id: Option<String>,
    method_title: Option<String>,
}

pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    refuse_array(body)?;
    let order: Order = from_json(body)?;

    let external_id = numeric_id(order.id.as_ref(), "id")?;
    let items = required_list(order.line_items.as_deref(), "line_items")?;
    let currency = required_currency("currency", order.currency.as_deref())?;
    let status = non_empty(order.status.as_deref()).ok_or_else(|| ParseError::missing("status"))?;

    let mut lines = Vec::with_capacity(items.len());
    let mut items_minor: i64 = 0;
    for (index, item) in items.iter().enumerate() {
        let path = format!("line_items[{index}]");
        lines.push(line(item, &path, currency)?);
        let field = format!("{path}.subtotal");
        items_minor = items_minor
            .checked_add(amount(item.subtotal.as_ref(), &field, currency)?)
            .ok_or_else(|| ParseError::invalid(field, "the items total is too large"))?;
    }

    // The `*_gmt` twins are UTC; the plain ones are in the site's zone, which the payload
    // does not name, so they are never used.
    let (created_at, updated_at) = created_and_updated(
        ("date_created_gmt", order.date_created_gmt.as_deref()),
        ("date_modified_gmt", order.date_modified_gmt.as_deref()),
    )?;

    let shipping_method = order
        .shipping_lines
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|line| {
            non_empty(line.method_id.as_deref())
                .or_else(|| non_empty(line.method_title.as_deref()).map(|t| decode_entities(&t)))
        });

    let totals = Totals {
        items_minor,
        shipping_minor: optional_amount(order.shipping_total.as_ref(), "shipping_total", currency)?,
        tax_minor: optional_amount(order.total_tax.as_ref(), "total_tax", currency)?,
        discount_minor: optional_amount(order.discount_total.as_ref(), "discount_total", currency)?,
        total_minor: amount(order.total.as_ref(), "total", currency)?,
    };

    Ok(IncomingOrder {
        platform: Platform::Woocommerce,
        external_id,
        number: non_empty(order.number.as_deref()),
        state: state(&status),
        platform_status: status,
        customer: customer(order.billing.as_ref(), order.shipping.as_ref())?,
        shipping_address: shipping_address(order.shipping.as_ref())?,
        lines,
        shipping_method,
        currency,
        totals,
        created_at,
        updated_at,
    })
}

fn state(status: &str) -> PlatformState {
    match status {
        "processing" => PlatformState::Paid,
        "completed" => PlatformState::Fulfilled,
        // A failed payment is final in WooCommerce (the buyer starts a new order), and a
        // trashed order is one the shop threw away: neither should keep stock reserved.
        "cancelled" | "failed" | "trash" => PlatformState::Cancelled,
        "refunded" => PlatformState::Refunded,
        // pending, on-hold, checkout-draft and statuses that plugins add.
        _ => PlatformState::Pending,
    }
}

fn line(item: &LineItem, path: &str, currency: Currency) -> Result<IncomingLine, ParseError> {
    // WooCommerce writes 0 for "no variation", and for the product of a line whose product
    // was deleted since.
    let variation = known_id(item.variation_id.as_ref(), &format!("{path}.variation_id"))?;
    let item_id = match variation {
        Some(id) => Some(id),
        None => known_id(item.product_id.as_ref(), &format!("{path}.product_id"))?,
    };
    Ok(IncomingLine {
        sku: non_empty(item.sku.as_deref()),
        item_id,
        // Variation names are built by WooCommerce with `&ndash;` between product and
        // attributes.
        name: non_empty(item.name.as_deref()).map(|name| decode_entities(&name)),
        quantity: quantity(item.quantity.as_ref(), &format!("{path}.quantity"))?,
        unit_price_minor: amount(item.price.as_ref(), &format!("{path}.price"), currency)?,
    })
}

fn known_id(id: Option<&Exact>, field: &str) -> Result<Option<String>, ParseError> {
    match id {
        Some(id) if id.text().is_some() => {
            let digits = numeric_id(Some(id), field)?;
            Ok((digits.bytes().any(|b| b != b'0')).then_some(digits))
        }
        _ => Ok(None),
    }
}

fn customer(billing: Option<&Contact>, shipping: Option<&Contact>) -> Result<Customer, ParseError> {
    let name = first_of([
        ("billing.first_name", billing.and_then(contact_name)),
        ("shipping.first_name", shipping.and_then(contact_name)),
    ]);
    let email = first_of([(
        "billing.email",
        billing.and_then(|c| non_empty(c.email.as_deref())),
    )]);
    let phone = first_of([
        (
            "billing.phone",
            billing.and_then(|c| non_empty(c.phone.as_deref())),
        ),
        (
            "shipping.phone",
            shipping.and_then(|c| non_empty(c.phone.as_deref())),
        ),
    ]);
    sourced_customer(name, email, phone, "billing")
}

fn contact_name(contact: &Contact) -> Option<String> {
    full_name(contact.first_name.as_deref(), contact.last_name.as_deref())
}

const ADDRESS_PATHS: AddressPaths = AddressPaths {
    whole: "shipping",
    name: "shipping.first_name",
    line1: "shipping.address_1",
    line2: "shipping.address_2",
    city: "shipping.city",
    region: "shipping.state",
    postal_code: "shipping.postcode",
    country: "shipping.country",
};

fn shipping_address(shipping: Option<&Contact>) -> Result<Option<Address>, ParseError> {
    let Some(shipping) = shipping else {
        return Ok(None);
    };
    let address = Address {
        name: contact_name(shipping).or_else(|| non_empty(shipping.company.as_deref())),
        line1: non_empty(shipping.address_1.as_deref()),
        line2: non_empty(shipping.address_2.as_deref()),
        city: non_empty(shipping.city.as_deref()),
        // `state` is "ISO code or name"; orderflow's region is a code, and a name such as
        // "Bavaria" would be compared with codes by the region rules and never match.
        region: non_empty(shipping.state.as_deref()).filter(|state| looks_like_code(state)),
        postal_code: non_empty(shipping.postcode.as_deref()),
        country: non_empty(shipping.country.as_deref()).map(|code| code.to_ascii_uppercase()),
    };
    // A virtual order ships nowhere and WooCommerce sends every shipping field empty.
    validated_address(address, &ADDRESS_PATHS)
}

/// WooCommerce's state codes are upper-case letters and digits (`CA`, `RJ`, `JP13`), at
/// most the ten characters an orderflow region holds.
fn looks_like_code(state: &str) -> bool {
    state.len() <= 10
        && state
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// Decodes the HTML character references WordPress leaves in product and method names:
/// the common named ones and every numeric one. Anything else is kept as written.
fn decode_entities(text: &str) -> String {
    // The longest reference decoded, `&#x10FFFF;`, keeps the search for `;` short, so that
    // a long name full of `&` stays linear.
    const LONGEST: usize = 10;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('&') {
        out.push_str(before);
        let decoded = after
            .char_indices()
            .take(LONGEST)
            .find(|&(_, c)| c == ';')
            .and_then(|(end, _)| {
                let (name, tail) = after.split_at_checked(end)?;
                Some((reference(name)?, tail.get(1..)?))
            });
        match decoded {
            Some((character, tail)) => {
                out.push(character);
                rest = tail;
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        // NUL is refused by every text field downstream.
        return char::from_u32(code).filter(|&c| c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "times" => '×',
        "divide" => '÷',
        "minus" => '−',
        "plusmn" => '±',
        "deg" => '°',
        "prime" => '′',
        "Prime" => '″',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        "sup2" => '²',
        "sup3" => '³',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        _ => return None,
    })
}
