//! Magento 2: one order as `GET /V1/orders/{entity_id}` returns it (PLATFORMS.md §5). A search
//! response (`{"items":[…]}`) is split by the pull connector; this parser takes one order.
//!
//! Mapping decisions:
//! - Lines are the items WITHOUT a `parent_item_id`: the product the customer bought, with the
//!   price and quantity they bought it at, so the lines add up to `subtotal`. Bundle children
//!   are left out (the bundle line carries their price). A configurable product's parent row
//!   already carries the chosen simple product's SKU; its only child is that simple product,
//!   whose SKU, product id and name (`Hoodie-S-Gray`) name the variant, so those come from the
//!   child while price and quantity stay the parent's. A child whose parent is not in the list
//!   is kept as a line of its own, so that nothing sold is lost.
//! - A unit price is `price`: before tax and discount, like `subtotal`.
//! - `discount_amount` is negative in Magento; `discount_minor` is the positive amount.
//! - `state` decides (the machine state); `status` is a shop-configurable label, kept as the
//!   platform status for the operator.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use serde::Deserialize;

use super::fields::{
    created_and_updated, numeric_id, optional_id, optional_signed_amount, quantity,
    required_currency, signed_amount,
};
use super::{Exact, ParseError, from_json, full_name, non_empty};
use crate::incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
use crate::platform::Platform;

#[derive(Deserialize)]
struct Order {
    entity_id: Option<Exact>,
    increment_id: Option<Exact>,
    state: Option<String>,
    status: Option<String>,
    order_currency_code: Option<String>,
    subtotal: Option<Exact>,
    shipping_amount: Option<Exact>,
    tax_amount: Option<Exact>,
    discount_amount: Option<Exact>,
    grand_total: Option<Exact>,
    created_at: Option<String>,
    updated_at: Option<String>,
    customer_firstname: Option<String>,
    customer_lastname: Option<String>,
    customer_email: Option<String>,
    shipping_description: Option<String>,
    items: Option<Vec<Item>>,
    billing_address: Option<MagentoAddress>,
    extension_attributes: Option<ExtensionAttributes>,
}

#[derive(Deserialize)]
struct Item {
    item_id: Option<Exact>,
    parent_item_id: Option<Exact>,
    product_id: Option<Exact>,
    product_type: Option<String>,
    sku: Option<String>,
    name: Option<String>,
    qty_ordered: Option<Exact>,
    price: Option<Exact>,
}

#[derive(Deserialize)]
struct ExtensionAttributes {
    shipping_assignments: Option<Vec<ShippingAssignment>>,
}

#[derive(Deserialize)]
struct ShippingAssignment {
    shipping: Option<Shipping>,
}

#[derive(Deserialize)]
struct Shipping {
    address: Option<MagentoAddress>,
    method: Option<String>,
}

#[derive(Deserialize)]
struct MagentoAddress {
    firstname: Option<String>,
    lastname: Option<String>,
    street: Option<Vec<Option<String>>>,
    city: Option<String>,
    region_code: Option<String>,
    postcode: Option<String>,
    country_id: Option<String>,
    telephone: Option<String>,
}

const SHIPPING: &str = "extension_attributes.shipping_assignments[0].shipping";

pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    let order: Order = from_json(body)?;
    let external_id = numeric_id(order.entity_id.as_ref(), "entity_id")?;
    let number = optional_id(order.increment_id.as_ref(), "increment_id")?;
    let currency = required_currency(
        "order_currency_code",
        order.order_currency_code.as_deref().map(str::trim),
    )?;
    let (state, platform_status) = platform_state(order.state.as_deref(), order.status.as_deref())?;
    let (created_at, updated_at) = created_and_updated(
        ("created_at", order.created_at.as_deref()),
        ("updated_at", order.updated_at.as_deref()),
    )?;
    let shipping = order
        .extension_attributes
        .as_ref()
        .and_then(|e| e.shipping_assignments.as_ref())
        .and_then(|assignments| assignments.first())
        .and_then(|assignment| assignment.shipping.as_ref());
    // A virtual order (downloads only) has nothing to ship and no shipping address.
    let shipping_raw = shipping.and_then(|s| s.address.as_ref());
    let shipping_address = match shipping_raw {
        Some(address) => Some(address_of(address)?),
        None => None,
    };
    let customer = customer(&order, shipping_raw)?;
    let shipping_method = shipping
        .and_then(|s| non_empty(s.method.as_deref()))
        .or_else(|| non_empty(order.shipping_description.as_deref()));
    Ok(IncomingOrder {
        platform: Platform::Magento,
        external_id,
        number,
        state,
        platform_status,
        customer,
        shipping_address,
        lines: lines(order.items.as_deref(), currency)?,
        shipping_method,
        currency,
        totals: totals(&order, currency)?,
        created_at,
        updated_at,
    })
}

/// Shipping, tax and discount may be absent on orders without them; amounts are read signed,
/// as the discount is negative.
fn totals(order: &Order, currency: Currency) -> Result<Totals, ParseError> {
    let discount =
        optional_signed_amount(order.discount_amount.as_ref(), "discount_amount", currency)?;
    if discount > 0 {
        return Err(ParseError::invalid(
            "discount_amount",
            format!("a Magento discount is negative or zero, not {discount} minor units"),
        ));
    }
    Ok(Totals {
        items_minor: signed_amount(order.subtotal.as_ref(), "subtotal", currency)?,
        shipping_minor: optional_signed_amount(
            order.shipping_amount.as_ref(),
            "shipping_amount",
            currency,
        )?,
        tax_minor: optional_signed_amount(order.tax_amount.as_ref(), "tax_amount", currency)?,
        discount_minor: discount
            .checked_neg()
            .ok_or_else(|| ParseError::invalid("discount_amount", "too large an amount"))?,
        total_minor: signed_amount(order.grand_total.as_ref(), "grand_total", currency)?,
    })
}

fn lines(items: Option<&[Item]>, currency: Currency) -> Result<Vec<IncomingLine>, ParseError> {
    let items = items.unwrap_or_default();
    let item_ids: Vec<Option<&str>> = items
        .iter()
        .map(|item| item.item_id.as_ref().and_then(Exact::text))
        .collect();
    let mut lines = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if parent_of(item, &item_ids).is_some() {
            continue;
        }
        let at = |field: &str| format!("items[{index}].{field}");
        let own_id = item.item_id.as_ref().and_then(Exact::text);
        let variant = match (item.product_type.as_deref(), own_id) {
            (Some("configurable"), Some(own_id)) => {
                let mut children = items
                    .iter()
                    .enumerate()
                    .filter(|(_, child)| parent_of(child, &item_ids) == Some(own_id));
                match (children.next(), children.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
            _ => None,
        };
        let (variant_index, variant) = variant.unwrap_or((index, item));
        let product_id = optional_id(
            variant.product_id.as_ref(),
            &format!("items[{variant_index}].product_id"),
        )?;
        let unit_price_minor = signed_amount(item.price.as_ref(), &at("price"), currency)?;
        if unit_price_minor < 0 {
            return Err(ParseError::invalid(
                at("price"),
                "a unit price is not negative",
            ));
        }
        lines.push(IncomingLine {
            sku: non_empty(variant.sku.as_deref()).or_else(|| non_empty(item.sku.as_deref())),
            item_id: product_id,
            name: non_empty(variant.name.as_deref()).or_else(|| non_empty(item.name.as_deref())),
            quantity: quantity(item.qty_ordered.as_ref(), &at("qty_ordered"))?,
            unit_price_minor,
        });
    }
    if lines.is_empty() {
        return Err(ParseError::missing("items"));
    }
    Ok(lines)
}

/// The parent's item id, when the parent is in the order.
fn parent_of<'i>(item: &'i Item, item_ids: &[Option<&str>]) -> Option<&'i str> {
    item.parent_item_id
        .as_ref()
        .and_then(Exact::text)
        .filter(|parent| item_ids.contains(&Some(*parent)))
}

fn address_of(address: &MagentoAddress) -> Result<Address, ParseError> {
    let mut street = address
        .street
        .iter()
        .flatten()
        .filter_map(|line| non_empty(line.as_deref()));
    let line1 = street.next();
    let rest: Vec<String> = street.collect();
    let address = Address {
        name: full_name(address.firstname.as_deref(), address.lastname.as_deref()),
        line1,
        line2: (!rest.is_empty()).then(|| rest.join(", ")),
        city: non_empty(address.city.as_deref()),
        region: non_empty(address.region_code.as_deref()),
        postal_code: non_empty(address.postcode.as_deref()),
        country: non_empty(address.country_id.as_deref()),
    };
    address
        .validate()
        .map_err(|error| ParseError::invalid(format!("{SHIPPING}.address"), error.to_string()))?;
    Ok(address)
}

fn customer(order: &Order, shipping: Option<&MagentoAddress>) -> Result<Customer, ParseError> {
    let billing = order.billing_address.as_ref();
    let addresses = || shipping.into_iter().chain(billing);
    // Guest orders may leave customer_firstname/lastname empty; the addresses still name them.
    let name = full_name(
        order.customer_firstname.as_deref(),
        order.customer_lastname.as_deref(),
    )
    .or_else(|| addresses().find_map(|a| full_name(a.firstname.as_deref(), a.lastname.as_deref())));
    let customer = Customer {
        customer_id: None,
        name,
        email: non_empty(order.customer_email.as_deref()),
        phone: addresses().find_map(|a| non_empty(a.telephone.as_deref())),
        locale: None,
    };
    customer
        .validate()
        .map_err(|error| ParseError::invalid("customer", error.to_string()))?;
    Ok(customer)
}

/// Reads the machine `state`, or the `status` label when a state is not sent, and returns the
/// label as the platform status since that is what the shop's staff see.
fn platform_state(
    state: Option<&str>,
    status: Option<&str>,
) -> Result<(PlatformState, String), ParseError> {
    let state = non_empty(state);
    let status = non_empty(status);
    let word = state
        .as_deref()
        .or(status.as_deref())
        .ok_or_else(|| ParseError::missing("state"))?;
    let mapped = match word {
        "processing" => PlatformState::Paid,
        "complete" => PlatformState::Fulfilled,
        "canceled" => PlatformState::Cancelled,
        "closed" => PlatformState::Refunded,
        // new, pending, pending_payment, payment_review, holded, and custom states.
        _ => PlatformState::Pending,
    };
    let shown = status.or(state).unwrap_or_default();
    Ok((mapped, shown))
}
