//! The WooCommerce parser against the REST v3 documentation's orders, targeted cases that
//! read as its specification, and fuzz properties (arbitrary and mutated bodies never panic).

mod common;

use common::{fixture, rfc3339};
use orderflow_connectors::parse::woocommerce::parse;
use orderflow_connectors::{IncomingOrder, ParseError, PlatformState};
use proptest::prelude::*;
use serde_json::{Value, json};

const ORDER_727: &[u8] = fixture!("woocommerce/order_727_retrieve.json").as_bytes();
const ORDER_727_COMPLETED: &[u8] =
    fixture!("woocommerce/order_727_update_completed.json").as_bytes();
const ORDERS_727_723: &[u8] = fixture!("woocommerce/orders_list_727_723.json").as_bytes();

fn parse_value(order: &Value) -> Result<IncomingOrder, ParseError> {
    parse(&common::body(order))
}

/// Order 727 with `edit` applied.
fn parse_edited(edit: impl FnOnce(&mut Value)) -> Result<IncomingOrder, ParseError> {
    parse(&common::edited(common::json(ORDER_727), edit))
}

fn parsed_edited(edit: impl FnOnce(&mut Value)) -> IncomingOrder {
    parse_edited(edit).expect("the edited fixture parses")
}

fn fixture_text() -> String {
    String::from_utf8(ORDER_727.to_vec()).expect("the fixture is UTF-8")
}

#[test]
fn order_727_normalises_as_snapshotted() {
    let order = parse(ORDER_727).expect("the fixture parses");
    insta::assert_json_snapshot!("order_727", order);
}

#[test]
fn order_727_after_its_completion_normalises_as_snapshotted() {
    let order = parse(ORDER_727_COMPLETED).expect("the fixture parses");
    insta::assert_json_snapshot!("order_727_completed", order);
}

#[test]
fn each_order_of_the_list_normalises_as_snapshotted() {
    let list: Vec<Value> = serde_json::from_slice(ORDERS_727_723).expect("the fixture is JSON");
    assert_eq!(list.len(), 2);
    for element in &list {
        let order = parse_value(element).expect("each element parses");
        insta::assert_json_snapshot!(format!("orders_list_{}", order.external_id), order);
    }
}

#[test]
fn the_list_itself_is_not_an_order() {
    let error = parse(ORDERS_727_723).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "."),
        "{error:?}"
    );
}

#[test]
fn the_completion_of_order_727_is_a_newer_update_of_the_same_order() {
    let before = parse(ORDER_727).expect("parses");
    let after = parse(ORDER_727_COMPLETED).expect("parses");
    assert_eq!(after.external_id, before.external_id);
    assert_eq!(
        (before.state, after.state),
        (PlatformState::Paid, PlatformState::Fulfilled)
    );
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.created_at, before.created_at);
}

#[test]
fn the_gmt_dates_are_read_as_utc_and_the_site_dates_are_ignored() {
    let order = parsed_edited(|order| order["date_created"] = json!("not a date"));
    assert_eq!(rfc3339(order.created_at), "2017-03-22T19:28:02Z");
    assert_eq!(rfc3339(order.updated_at), "2017-03-22T19:28:08Z");
}

#[test]
fn a_line_price_written_as_a_json_number_is_read_exactly() {
    // As a float 2.675 is 2.67499999…, which would round down to 267.
    let body = fixture_text()
        .replacen("\"price\": 3", "\"price\": 2.675", 1)
        .replacen("\"price\": 12", "\"price\": 8.333333333333334", 1);
    let order = parse(body.as_bytes()).expect("parses");
    let prices: Vec<i64> = order.lines.iter().map(|l| l.unit_price_minor).collect();
    assert_eq!(prices, [268, 833]);
}

#[test]
fn totals_are_decimal_strings_and_items_are_the_lines_before_discounts() {
    let order = parsed_edited(|order| {
        order["line_items"][0]["subtotal"] = json!("6.10");
        order["discount_total"] = json!("1.05");
        order["total"] = json!("29.40");
    });
    assert_eq!(order.totals.items_minor, 610 + 1200);
    assert_eq!(order.totals.discount_minor, 105);
    assert_eq!(order.totals.shipping_minor, 1000);
    assert_eq!(order.totals.tax_minor, 135);
    assert_eq!(order.totals.total_minor, 2940);
}

#[test]
fn each_status_maps_to_a_state() {
    for (status, state) in [
        ("pending", PlatformState::Pending),
        ("on-hold", PlatformState::Pending),
        ("checkout-draft", PlatformState::Pending),
        ("processing", PlatformState::Paid),
        ("completed", PlatformState::Fulfilled),
        ("cancelled", PlatformState::Cancelled),
        ("failed", PlatformState::Cancelled),
        ("trash", PlatformState::Cancelled),
        ("refunded", PlatformState::Refunded),
        ("some-plugin-status", PlatformState::Pending),
    ] {
        let order = parsed_edited(|order| order["status"] = json!(status));
        assert_eq!(order.state, state, "{status}");
        assert_eq!(order.platform_status, status);
    }
}

#[test]
fn a_cancelled_order_maps_to_cancelled() {
    let order = parsed_edited(|order| order["status"] = json!("cancelled"));
    assert_eq!(order.state, PlatformState::Cancelled);
    assert!(order.state.cancels());
}

#[test]
fn an_empty_sku_falls_back_to_the_variation_then_the_product() {
    let order = parse(ORDER_727).expect("parses");
    // Line 315 is a simple product (variation 0, sku ""); line 316 is variation 23 of 22.
    assert_eq!(order.lines[0].sku, None);
    assert_eq!(order.lines[0].product_key(), Some("93"));
    assert_eq!(order.lines[1].sku.as_deref(), Some("Bar3"));
    assert_eq!(order.lines[1].item_id.as_deref(), Some("23"));
    let order = parsed_edited(|order| {
        order["line_items"][0]["product_id"] = json!(0);
    });
    assert_eq!(order.lines[0].product_key(), None);
}

#[test]
fn html_entities_in_line_names_are_decoded() {
    let order = parse(ORDER_727).expect("parses");
    assert_eq!(
        order.lines[1].name.as_deref(),
        Some("Ship Your Idea – Color: Black, Size: M Test")
    );
    let order = parsed_edited(|order| {
        order["line_items"][0]["name"] =
            json!("Tom &amp; Jerry&#039;s &#8220;mug&#x201D; &foo; & co &#0; &");
    });
    assert_eq!(
        order.lines[0].name.as_deref(),
        Some("Tom & Jerry's “mug” &foo; & co &#0; &")
    );
}

#[test]
fn a_state_code_is_kept_and_a_state_name_is_not() {
    let order = parse(ORDER_727).expect("parses");
    assert_eq!(
        order
            .shipping_address
            .expect("an address")
            .region
            .as_deref(),
        Some("CA")
    );
    for name in ["Bavaria", "Rio de Janeiro", "ca", "ABCDEFGHIJK"] {
        let order = parsed_edited(|order| order["shipping"]["state"] = json!(name));
        let address = order.shipping_address.expect("an address");
        assert_eq!(address.region, None, "{name}");
        assert_eq!(address.city.as_deref(), Some("San Francisco"));
    }
}

#[test]
fn a_three_letter_country_is_refused_naming_the_field() {
    let error =
        parse_edited(|order| order["shipping"]["country"] = json!("USA")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "shipping.country"),
        "{error:?}"
    );
}

#[test]
fn a_bad_billing_email_is_refused_naming_the_field() {
    let error =
        parse_edited(|order| order["billing"]["email"] = json!("john.doe")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "billing.email"),
        "{error:?}"
    );
}

#[test]
fn a_virtual_order_with_empty_shipping_fields_has_no_address() {
    let order = parsed_edited(|order| {
        order["shipping"] = json!({
            "first_name": "", "last_name": "", "company": "", "address_1": "", "address_2": "",
            "city": "", "state": "", "postcode": "", "country": ""
        });
        order["shipping_lines"] = json!([]);
        order["shipping_total"] = json!("0.00");
    });
    assert_eq!(order.shipping_address, None);
    assert_eq!(order.shipping_method, None);
    assert_eq!(order.customer.name.as_deref(), Some("John Doe"));
}

#[test]
fn the_shipping_method_is_the_first_method_id() {
    let order = parse(ORDER_727).expect("parses");
    assert_eq!(order.shipping_method.as_deref(), Some("flat_rate"));
    let order = parsed_edited(|order| {
        order["shipping_lines"] = json!([{ "method_id": "", "method_title": "Local &amp; fast" }]);
    });
    assert_eq!(order.shipping_method.as_deref(), Some("Local & fast"));
}

#[test]
fn a_deletion_body_has_no_line_items() {
    assert_eq!(
        parse(br#"{"id":727}"#),
        Err(ParseError::missing("line_items"))
    );
    let error = parse_edited(|order| order["line_items"] = json!([])).expect_err("refused");
    assert_eq!(error, ParseError::missing("line_items"));
}

#[test]
fn a_negative_line_price_is_refused_by_its_path() {
    let error =
        parse_edited(|order| order["line_items"][1]["price"] = json!(-12)).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "line_items[1].price"),
        "{error:?}"
    );
}

#[test]
fn a_forged_body_that_is_not_json_gives_a_json_error_with_a_path() {
    // The ping WooCommerce sends on creating a webhook is a form body, not an order.
    let error = parse(b"webhook_id=12").expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "."),
        "{error:?}"
    );
    let error = parse_edited(|order| order["line_items"][0]["quantity"] = json!("two"))
        .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "line_items[0].quantity"),
        "{error:?}"
    );
    let error = parse_edited(|order| order["billing"]["email"] = json!(5)).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "billing.email"),
        "{error:?}"
    );
}

// ---- fuzz properties ----

common::never_panics! {
    cases: 512,
    exercise: |bytes: &[u8]| {
        let _ = parse(bytes);
    },
    fixtures: [ORDER_727_COMPLETED, ORDER_727],
    documents: vec![common::json(ORDER_727)],
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_in_a_line_name_decodes_without_panicking(name in ".{0,64}") {
        let name = name.replace('#', "&#").replace(';', ";&");
        let _ = parse_edited(|order| order["line_items"][0]["name"] = json!(name));
    }
}
