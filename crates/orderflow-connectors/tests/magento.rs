//! Magento 2: `GET /V1/orders/{id}`.

mod common;

use common::fixture;
use orderflow_connectors::parse::magento;
use orderflow_connectors::{IncomingOrder, ParseError, PlatformState};
use serde_json::Value;
use time::macros::datetime;

const ORDER: &[u8] = fixture!("magento/order_3_get_v1_orders.json").as_bytes();

fn order() -> IncomingOrder {
    magento::parse(ORDER).expect("the order fixture parses")
}

/// The fixture with one field changed, for the cases the sample does not show.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    common::edited(common::json(ORDER), edit)
}

#[test]
fn the_order_fixture_parses() {
    insta::assert_json_snapshot!("order_3_get_v1_orders", order());
}

#[test]
fn magento_bundle_children_are_not_counted_twice() {
    let order = order();
    // Nine items: four sold products, four bundle children and one configurable child.
    let skus: Vec<_> = order.lines.iter().map(|l| l.sku.as_deref()).collect();
    assert_eq!(
        skus,
        [
            Some("WS12-M-Orange"),
            Some("240-LV08"),
            Some("24-WG080-24-WG084-24-WG088-24-WG082-blue-24-WG086"),
            Some("MH01-S-Gray"),
        ]
    );
    let sum: i64 = order
        .lines
        .iter()
        .map(|l| l.unit_price_minor * i64::from(l.quantity))
        .sum();
    assert_eq!(sum, order.totals.items_minor);
    assert_eq!(order.totals.items_minor, 16000);
}

#[test]
fn a_configurable_line_is_named_by_its_simple_child_and_priced_by_its_parent() {
    let order = order();
    let hoodie = order.lines.last().expect("four lines");
    assert_eq!(hoodie.sku.as_deref(), Some("MH01-S-Gray"));
    assert_eq!(hoodie.item_id.as_deref(), Some("56"));
    assert_eq!(hoodie.name.as_deref(), Some("Chaz Kangeroo Hoodie-S-Gray"));
    // The child row carries price 0; the parent carries what was paid.
    assert_eq!(hoodie.unit_price_minor, 5200);
}

#[test]
fn a_bundle_line_keeps_the_bundle_product() {
    let order = order();
    let kit = &order.lines[2];
    assert_eq!(kit.item_id.as_deref(), Some("51"));
    assert_eq!(kit.name.as_deref(), Some("Sprite Yoga Companion Kit"));
    assert_eq!(kit.unit_price_minor, 6800);
}

#[test]
fn a_child_whose_parent_is_missing_is_kept() {
    let body = edited(|o| {
        let items = o["items"].as_array_mut().expect("items");
        items.retain(|item| item["item_id"] != 5);
    });
    let order = magento::parse(&body).expect("parses");
    assert_eq!(order.lines.len(), 7);
}

#[test]
fn magento_whole_quantities_written_with_decimals_are_read() {
    let body = edited(|o| {
        o["items"][0]["qty_ordered"] = serde_json::json!(2.0);
        o["items"][1]["qty_ordered"] = "1.0000".into();
    });
    let order = magento::parse(&body).expect("parses");
    assert_eq!(order.lines[0].quantity, 2);
    assert_eq!(order.lines[1].quantity, 1);
    let body = edited(|o| o["items"][0]["qty_ordered"] = serde_json::json!(1.5));
    assert!(matches!(
        magento::parse(&body),
        Err(ParseError::Invalid { field, .. }) if field == "items[0].qty_ordered"
    ));
}

#[test]
fn magento_json_numbers_become_exact_minor_units() {
    let body = edited(|o| {
        o["grand_total"] = serde_json::json!(165.1);
        o["subtotal"] = "160.005".into();
        o["tax_amount"] = serde_json::json!(13.2);
    });
    let totals = magento::parse(&body).expect("parses").totals;
    assert_eq!(totals.total_minor, 16510);
    assert_eq!(totals.items_minor, 16001);
    assert_eq!(totals.tax_minor, 1320);
}

#[test]
fn a_negative_magento_discount_is_stored_as_the_positive_amount_taken_off() {
    let body = edited(|o| o["discount_amount"] = serde_json::json!(-12.5));
    assert_eq!(
        magento::parse(&body).expect("parses").totals.discount_minor,
        1250
    );
    let body = edited(|o| o["discount_amount"] = serde_json::json!(3));
    assert!(matches!(
        magento::parse(&body),
        Err(ParseError::Invalid { field, .. }) if field == "discount_amount"
    ));
}

#[test]
fn the_address_comes_from_the_first_shipping_assignment() {
    let address = order().shipping_address.expect("an address");
    assert_eq!(address.name.as_deref(), Some("Jane Doe"));
    assert_eq!(address.line1.as_deref(), Some("123 Oak Ave"));
    assert_eq!(address.line2, None);
    assert_eq!(address.region.as_deref(), Some("NY"));
    assert_eq!(address.country.as_deref(), Some("US"));
}

#[test]
fn further_street_lines_become_line2() {
    let body = edited(|o| {
        o["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]["street"] =
            serde_json::json!(["123 Oak Ave", "Suite 4", "", "Building B"]);
    });
    let address = magento::parse(&body)
        .expect("parses")
        .shipping_address
        .expect("an address");
    assert_eq!(address.line2.as_deref(), Some("Suite 4, Building B"));
}

#[test]
fn a_country_that_is_not_alpha2_is_refused_naming_the_address() {
    let body = edited(|o| {
        o["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]["country_id"] =
            "USA".into();
    });
    assert!(matches!(
        magento::parse(&body),
        Err(ParseError::Invalid { field, .. })
            if field == "extension_attributes.shipping_assignments[0].shipping.address"
    ));
}

#[test]
fn a_virtual_order_has_no_shipping_address() {
    let body = edited(|o| o["extension_attributes"] = Value::Null);
    let order = magento::parse(&body).expect("parses");
    assert_eq!(order.shipping_address, None);
    assert_eq!(
        order.shipping_method.as_deref(),
        Some("Best Way - Table Rate")
    );
    // The phone falls back to the billing address.
    assert_eq!(order.customer.phone.as_deref(), Some("512-555-1111"));
}

#[test]
fn a_guest_without_a_customer_name_is_named_by_the_address() {
    let body = edited(|o| {
        o["customer_firstname"] = Value::Null;
        o["customer_lastname"] = Value::Null;
    });
    let customer = magento::parse(&body).expect("parses").customer;
    assert_eq!(customer.name.as_deref(), Some("Jane Doe"));
}

#[test]
fn magento_states_map_to_what_intake_acts_on() {
    for (state, expected) in [
        ("new", PlatformState::Pending),
        ("pending_payment", PlatformState::Pending),
        ("holded", PlatformState::Pending),
        ("payment_review", PlatformState::Pending),
        ("processing", PlatformState::Paid),
        ("complete", PlatformState::Fulfilled),
        ("canceled", PlatformState::Cancelled),
        ("closed", PlatformState::Refunded),
    ] {
        let body = edited(|o| o["state"] = state.into());
        let order = magento::parse(&body).expect("parses");
        assert_eq!(order.state, expected, "{state}");
        // The label stays what the shop calls it.
        assert_eq!(order.platform_status, "pending");
    }
}

#[test]
fn magento_times_are_utc_without_a_zone() {
    let order = order();
    assert_eq!(order.created_at, datetime!(2017-08-21 22:22:19 UTC));
    assert_eq!(order.updated_at, datetime!(2017-08-21 22:22:20 UTC));
}

#[test]
fn an_order_without_items_is_refused() {
    let body = edited(|o| o["items"] = serde_json::json!([]));
    assert_eq!(magento::parse(&body), Err(ParseError::missing("items")));
}

#[test]
fn a_non_numeric_entity_id_is_refused() {
    let body = edited(|o| o["entity_id"] = "3a".into());
    assert!(matches!(
        magento::parse(&body),
        Err(ParseError::Invalid { field, .. }) if field == "entity_id"
    ));
}

common::never_panics! {
    cases: 1000,
    exercise: |bytes: &[u8]| {
        let _ = magento::parse(bytes);
    },
    fixtures: [ORDER],
    documents: vec![common::json(ORDER)],
}
