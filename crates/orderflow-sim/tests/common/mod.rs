//! What the sandbox tests share: the fields every platform's body must give back.
#![allow(dead_code, reason = "each test file uses a different part")]

use orderflow_connectors::{IncomingOrder, Platform, PlatformState};
use orderflow_sim::{SimOrder, SimStatus};
use time::OffsetDateTime;

pub fn second(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).expect("zero is a nanosecond")
}

/// What the platform's state words come back as; the platforms without a refund state
/// (Jumpseller, VTEX) send a refunded order as cancelled.
pub fn state(platform: Platform, status: SimStatus) -> PlatformState {
    match (platform, status) {
        (Platform::Jumpseller | Platform::Vtex, SimStatus::Refunded) => PlatformState::Cancelled,
        (_, SimStatus::Pending) => PlatformState::Pending,
        (_, SimStatus::Paid) => PlatformState::Paid,
        (_, SimStatus::Fulfilled) => PlatformState::Fulfilled,
        (_, SimStatus::Cancelled) => PlatformState::Cancelled,
        (_, SimStatus::Refunded) => PlatformState::Refunded,
    }
}

/// The fields every platform carries, compared with the order the body was made from.
pub fn assert_same_order(platform: Platform, order: &SimOrder, parsed: &IncomingOrder) {
    let context = format!("{platform} order {}", order.id);
    assert_eq!(parsed.platform, platform, "{context}");
    assert_eq!(parsed.state, state(platform, order.status), "{context}");
    assert_eq!(parsed.currency, order.currency, "{context}");
    assert_eq!(
        parsed.customer.name.as_deref(),
        Some(order.customer.full_name().as_str()),
        "{context}"
    );
    assert_eq!(
        parsed.customer.email.as_deref(),
        Some(order.customer.email.as_str()),
        "{context}"
    );
    assert_eq!(
        parsed.customer.phone.as_deref(),
        Some(order.customer.phone.as_str()),
        "{context}"
    );
    let address = parsed.shipping_address.as_ref().expect("an address");
    assert_eq!(
        address.line1.as_deref(),
        Some(order.address.line1().as_str()),
        "{context}"
    );
    assert_eq!(address.line2, order.address.line2, "{context}");
    assert_eq!(
        address.city.as_deref(),
        Some(order.address.city.as_str()),
        "{context}"
    );
    assert_eq!(
        address.region.as_deref(),
        Some(order.address.region_code.as_str()),
        "{context}"
    );
    assert_eq!(
        address.postal_code.as_deref(),
        Some(order.address.postal_code.as_str()),
        "{context}"
    );
    assert_eq!(
        address.country.as_deref(),
        Some(order.address.country.as_str()),
        "{context}"
    );
    let lines: Vec<(Option<&str>, u32, i64)> = parsed
        .lines
        .iter()
        .map(|l| (l.sku.as_deref(), l.quantity, l.unit_price_minor))
        .collect();
    let expected: Vec<(Option<&str>, u32, i64)> = order
        .lines
        .iter()
        .map(|l| (Some(l.sku.as_str()), l.quantity, l.unit_price_minor))
        .collect();
    assert_eq!(lines, expected, "{context}");
    assert_eq!(
        parsed.shipping_method.as_deref(),
        Some(order.shipping_method.as_str()),
        "{context}"
    );
    assert_eq!(parsed.totals.items_minor, order.items_minor(), "{context}");
    assert_eq!(
        parsed.totals.shipping_minor, order.shipping_minor,
        "{context}"
    );
    assert_eq!(parsed.totals.tax_minor, 0, "{context}");
    assert_eq!(parsed.totals.discount_minor, 0, "{context}");
    assert_eq!(parsed.totals.total_minor, order.total_minor(), "{context}");
}
