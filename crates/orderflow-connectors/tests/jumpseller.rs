//! The Jumpseller parser against the official documentation's examples, targeted cases that
//! read as its specification, and fuzz properties (arbitrary and mutated bodies never panic).

mod common;

use common::{fixture, rfc3339};
use orderflow_connectors::parse::jumpseller::{parse, parse_delivery};
use orderflow_connectors::{IncomingOrder, ParseError, PlatformState};
use proptest::prelude::*;
use serde_json::{Value, json};

const PAID_LIST: &[u8] = fixture!("jumpseller/orders_status_paid_list_doc_example.json").as_bytes();
const WEBHOOK_ORDER_PAID: &[u8] =
    fixture!("jumpseller/webhook_order_paid_body_doc_example.json").as_bytes();
/// The `Jumpseller-Triggered-At` header shown with the webhook example in the same document.
const WEBHOOK_TRIGGERED_AT: &str = "2025-01-01 10:18:51.829 UTC";

/// The body of order 5001, the single element of the paid-orders list.
fn order_5001() -> Value {
    let list: Vec<Value> = serde_json::from_slice(PAID_LIST).expect("the fixture is JSON");
    list.into_iter().next().expect("one order")
}

fn parse_value(body: &Value) -> Result<IncomingOrder, ParseError> {
    parse(&common::body(body))
}

/// Order 5001 with `edit` applied to its inner `order` object.
fn parse_edited(edit: impl FnOnce(&mut Value)) -> Result<IncomingOrder, ParseError> {
    parse(&common::edited(order_5001(), |body| {
        edit(&mut body["order"])
    }))
}

fn parsed_edited(edit: impl FnOnce(&mut Value)) -> IncomingOrder {
    parse_edited(edit).expect("the edited fixture parses")
}

#[test]
fn each_order_of_the_paid_list_normalises_as_snapshotted() {
    let list: Vec<Value> = serde_json::from_slice(PAID_LIST).expect("the fixture is JSON");
    assert_eq!(list.len(), 1);
    for element in &list {
        let order = parse_value(element).expect("each element parses");
        insta::assert_json_snapshot!(format!("orders_status_paid_{}", order.external_id), order);
    }
}

#[test]
fn the_webhook_example_with_its_triggered_at_header_normalises_as_snapshotted() {
    let order = parse_delivery(WEBHOOK_ORDER_PAID, Some(WEBHOOK_TRIGGERED_AT))
        .expect("the fixture parses with its header");
    insta::assert_json_snapshot!("webhook_order_paid", order);
}

#[test]
fn the_shortened_webhook_example_alone_lacks_a_creation_time() {
    // The documentation cut the body down to a few fields; a served order has `created_at`.
    assert_eq!(
        parse(WEBHOOK_ORDER_PAID),
        Err(ParseError::missing("order.created_at"))
    );
}

#[test]
fn the_list_itself_is_not_an_order() {
    let error = parse(PAID_LIST).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "."),
        "{error:?}"
    );
}

#[test]
fn money_written_as_json_numbers_is_read_exactly() {
    let body = String::from_utf8(PAID_LIST.to_vec())
        .expect("UTF-8")
        .replacen("\"price\": 29.99", "\"price\": 1.005", 1)
        .replacen("\"total\": 64.98", "\"total\": 0.30000000000000004", 1);
    let list: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(&body).expect("the edited list is JSON");
    let order = parse(list[0].get().as_bytes()).expect("parses");
    assert_eq!(order.lines[0].unit_price_minor, 101);
    assert_eq!(order.totals.total_minor, 30);
}

#[test]
fn a_zero_decimal_currency_has_no_minor_digits() {
    let order = parsed_edited(|order| {
        order["currency"] = json!("CLP");
        order["products"][0]["price"] = json!(14990);
        order["subtotal"] = json!(29980);
        order["shipping"] = json!(3990.0);
        order["total"] = json!(33970);
    });
    assert_eq!(order.lines[0].unit_price_minor, 14990);
    assert_eq!(order.totals.shipping_minor, 3990);
    assert_eq!(order.totals.total_minor, 33970);
}

#[test]
fn taxes_and_discounts_include_their_shipping_parts() {
    let order = parsed_edited(|order| {
        order["tax"] = json!(9.5);
        order["shipping_tax"] = json!(0.95);
        order["discount"] = json!(5);
        order["shipping_discount"] = json!(1.25);
    });
    assert_eq!(order.totals.tax_minor, 1045);
    assert_eq!(order.totals.discount_minor, 625);
}

#[test]
fn each_status_maps_to_a_state() {
    for (status_enum, shipment_enum, state, platform_status) in [
        (
            "paid",
            "unfulfilled",
            PlatformState::Paid,
            "paid/unfulfilled",
        ),
        (
            "pending_payment",
            "unfulfilled",
            PlatformState::Pending,
            "pending_payment/unfulfilled",
        ),
        (
            "canceled",
            "unfulfilled",
            PlatformState::Cancelled,
            "canceled/unfulfilled",
        ),
        (
            "abandoned",
            "unfulfilled",
            PlatformState::Cancelled,
            "abandoned/unfulfilled",
        ),
        ("paid", "shipped", PlatformState::Fulfilled, "paid/shipped"),
        (
            "paid",
            "delivered",
            PlatformState::Fulfilled,
            "paid/delivered",
        ),
        (
            "canceled",
            "shipped",
            PlatformState::Cancelled,
            "canceled/shipped",
        ),
    ] {
        let order = parsed_edited(|order| {
            order["status_enum"] = json!(status_enum);
            order["shipment_status_enum"] = json!(shipment_enum);
        });
        assert_eq!(order.state, state, "{status_enum} {shipment_enum}");
        assert_eq!(order.platform_status, platform_status);
    }
}

#[test]
fn a_cancelled_order_maps_to_cancelled() {
    let order = parsed_edited(|order| {
        order["status"] = json!("Canceled");
        order["status_enum"] = json!("canceled");
    });
    assert_eq!(order.state, PlatformState::Cancelled);
    assert!(order.state.cancels());
}

#[test]
fn without_the_enums_the_display_words_are_read() {
    let order = parsed_edited(|order| {
        let order = order.as_object_mut().expect("an object");
        order.remove("status_enum");
        order.remove("shipment_status_enum");
        order.insert("status".into(), json!("Pending Payment"));
    });
    assert_eq!(order.state, PlatformState::Pending);
    // "No Procesado" is a translated display word, kept as the operator saw it.
    assert_eq!(order.platform_status, "pending_payment/no_procesado");
}

#[test]
fn the_street_number_joins_the_street_once() {
    let order = parsed_edited(|order| {
        order["shipping_address"]["address"] = json!("Av. Providencia");
        order["shipping_address"]["street_number"] = json!("1234");
        order["shipping_address"]["complement"] = json!("Depto 56");
    });
    let address = order.shipping_address.expect("an address");
    assert_eq!(address.line1.as_deref(), Some("Av. Providencia 1234"));
    assert_eq!(address.line2.as_deref(), Some("Depto 56"));
    let order = parsed_edited(|order| order["shipping_address"]["street_number"] = json!("123"));
    let address = order.shipping_address.expect("an address");
    assert_eq!(address.line1.as_deref(), Some("123 Main St"));
}

#[test]
fn the_region_is_the_region_code_never_the_region_name() {
    let order = parse_value(&order_5001()).expect("parses");
    assert_eq!(order.shipping_address.expect("an address").region, None);
    let order = parsed_edited(|order| order["shipping_address"]["region_code"] = json!("RM"));
    assert_eq!(
        order
            .shipping_address
            .expect("an address")
            .region
            .as_deref(),
        Some("RM")
    );
}

#[test]
fn a_three_letter_country_is_refused_naming_the_field() {
    let error = parse_edited(|order| order["shipping_address"]["country_code"] = json!("USA"))
        .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "order.shipping_address.country_code"),
        "{error:?}"
    );
}

#[test]
fn a_line_without_a_variant_is_known_by_its_product_and_an_empty_sku_is_none() {
    let order = parsed_edited(|order| {
        order["products"] = json!([
            { "id": 1001, "variant_id": 77, "sku": "", "name": "A", "qty": 1, "price": 1 },
            { "id": 1002, "variant_id": null, "sku": null, "name": "B", "qty": 3, "price": 2.5 }
        ]);
    });
    let keys: Vec<_> = order.lines.iter().map(|l| l.product_key()).collect();
    assert_eq!(keys, [Some("77"), Some("1002")]);
    assert_eq!(order.lines[1].quantity, 3);
    assert_eq!(order.lines[1].unit_price_minor, 250);
}

#[test]
fn updated_at_is_the_latest_instant_the_body_or_the_delivery_vouches_for() {
    let order = parse_value(&order_5001()).expect("parses");
    assert_eq!(rfc3339(order.updated_at), "2026-05-01T10:30:00Z");
    let order = parsed_edited(|order| order["completed_at"] = json!("2026-05-02 08:00:00 UTC"));
    assert_eq!(rfc3339(order.created_at), "2026-05-01T10:30:00Z");
    assert_eq!(rfc3339(order.updated_at), "2026-05-02T08:00:00Z");
    let order = parsed_edited(|order| order["updated_at"] = json!("2026-05-03 09:00:00 UTC"));
    assert_eq!(rfc3339(order.updated_at), "2026-05-03T09:00:00Z");

    let body = serde_json::to_vec(&order_5001()).expect("serialises");
    let order = parse_delivery(&body, Some("2026-05-04 10:18:51.829 UTC")).expect("parses");
    assert_eq!(rfc3339(order.updated_at), "2026-05-04T10:18:51.829Z");
    // A late retry's header cannot move the order back in time.
    let order = parse_delivery(&body, Some("2020-01-01 00:00:00 UTC")).expect("parses");
    assert_eq!(rfc3339(order.updated_at), "2026-05-01T10:30:00Z");
    assert_eq!(
        parse_delivery(&body, Some("yesterday")).map(|o| o.external_id),
        Err(ParseError::invalid(
            "Jumpseller-Triggered-At",
            "\"yesterday\" is not a timestamp"
        ))
    );
}

#[test]
fn an_order_with_no_products_is_refused() {
    let error = parse_edited(|order| order["products"] = json!([])).expect_err("refused");
    assert_eq!(error, ParseError::missing("order.products"));
    assert_eq!(parse(br#"{"id":5001}"#), Err(ParseError::missing("order")));
}

#[test]
fn a_forged_body_that_is_not_json_gives_a_json_error_with_a_path() {
    let error = parse(b"<order/>").expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "."),
        "{error:?}"
    );
    let error = parse_edited(|order| order["products"][0]["sku"] = json!(["TSH-001"]))
        .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "order.products[0].sku"),
        "{error:?}"
    );
    let error = parse_edited(|order| order["products"][0]["qty"] = json!(0)).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "order.products[0].qty"),
        "{error:?}"
    );
}

// ---- fuzz properties ----

common::never_panics! {
    cases: 512,
    exercise: |bytes: &[u8]| {
        let _ = parse(bytes);
        let _ = parse_delivery(bytes, Some(WEBHOOK_TRIGGERED_AT));
    },
    fixtures: [WEBHOOK_ORDER_PAID, &common::body(&order_5001())],
    documents: vec![order_5001()],
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_triggered_at_headers_never_panic(header in ".{0,40}") {
        let _ = parse_delivery(WEBHOOK_ORDER_PAID, Some(&header));
    }
}
