//! The Shopify parser against the official REST fixtures, targeted cases that read as its
//! specification, and fuzz properties (arbitrary and mutated bodies never panic).

mod common;

use common::{fixture, rfc3339};
use orderflow_connectors::parse::shopify::parse;
use orderflow_connectors::{IncomingOrder, ParseError, Platform, PlatformState};
use serde_json::{Value, json};

const ORDER_450789469: &[u8] = fixture!("shopify/order_450789469_rest_fixture.json").as_bytes();
const ORDER_WITH_PROPERTIES: &[u8] =
    fixture!("shopify/order_with_properties_rest_fixture.json").as_bytes();

/// The webhook-shaped (bare) order of the first fixture, for editing.
fn bare_order() -> Value {
    common::json(ORDER_450789469)["order"].clone()
}

/// The first fixture as written, for edits that a `Value` could not carry (its numbers
/// cannot exceed u64, nor keep their spelling); the first occurrence of a field is the
/// order's own or its first line's.
fn fixture_text() -> String {
    String::from_utf8(ORDER_450789469.to_vec()).expect("the fixture is UTF-8")
}

fn parse_value(order: &Value) -> Result<IncomingOrder, ParseError> {
    parse(&common::body(order))
}

/// The fixture order with `edit` applied, parsed as a webhook body.
fn parse_edited(edit: impl FnOnce(&mut Value)) -> Result<IncomingOrder, ParseError> {
    parse(&common::edited(bare_order(), edit))
}

fn parsed_edited(edit: impl FnOnce(&mut Value)) -> IncomingOrder {
    parse_edited(edit).expect("the edited fixture parses")
}

#[test]
fn the_rest_fixture_of_order_450789469_normalises_as_snapshotted() {
    let order = parse(ORDER_450789469).expect("the fixture parses");
    insta::assert_json_snapshot!("order_450789469", order);
}

#[test]
fn the_fixture_with_line_properties_normalises_as_snapshotted() {
    let order = parse(ORDER_WITH_PROPERTIES).expect("the fixture parses");
    insta::assert_json_snapshot!("order_with_properties", order);
}

#[test]
fn a_bare_webhook_body_reads_the_same_as_the_rest_wrapper() {
    let wrapped = parse(ORDER_450789469).expect("the wrapped fixture parses");
    let bare = parse_value(&bare_order()).expect("the bare order parses");
    assert_eq!(bare, wrapped);
}

#[test]
fn a_shopify_id_beyond_2_pow_53_survives_exactly() {
    // 2^53 + 1 has no f64 of its own: a float on the way would turn it into …992.
    let body = fixture_text()
        .replacen("\"id\": 450789469", "\"id\":820982911946154508", 1)
        .replacen(
            "\"variant_id\": 39072856",
            "\"variant_id\":9007199254740993",
            1,
        );
    assert!(body.contains("820982911946154508") && body.contains("9007199254740993"));
    let order = parse(body.as_bytes()).expect("parses");
    assert_eq!(order.external_id, "820982911946154508");
    assert_eq!(order.lines[0].item_id.as_deref(), Some("9007199254740993"));
}

#[test]
fn an_id_beyond_u64_is_still_kept_as_its_digits() {
    let body = fixture_text().replacen(
        "\"id\": 450789469",
        "\"id\":123456789012345678901234567890",
        1,
    );
    let order = parse(body.as_bytes()).expect("parses");
    assert_eq!(order.external_id, "123456789012345678901234567890");
}

#[test]
fn an_id_that_is_not_a_number_is_refused_by_its_path() {
    let error = parse_edited(|order| order["id"] = json!(true)).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "id"),
        "{error:?}"
    );
    let wrapped = json!({ "order": { "id": "12a", "line_items": [] } });
    let error = parse_value(&wrapped).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "order.id"),
        "{error:?}"
    );
}

#[test]
fn decimal_string_prices_become_minor_units_of_the_order_currency() {
    let order = parsed_edited(|order| {
        order["line_items"][0]["price"] = json!("19.99");
        order["line_items"][1]["price"] = json!("0.1");
        order["line_items"][2]["price"] = json!("7");
    });
    let prices: Vec<i64> = order.lines.iter().map(|l| l.unit_price_minor).collect();
    assert_eq!(prices, [1999, 10, 700]);

    let yen = parsed_edited(|order| {
        order["currency"] = json!("JPY");
        order["line_items"][0]["price"] = json!("1990");
        order["total_price"] = json!("1990.00");
    });
    assert_eq!(yen.lines[0].unit_price_minor, 1990);
    assert_eq!(yen.totals.total_minor, 1990);
}

#[test]
fn a_price_written_as_a_json_number_is_read_exactly() {
    // 0.1 + 0.2 in floats is 0.30000000000000004; the digits as written are 0.30.
    let body = fixture_text().replacen("\"price\": \"199.00\"", "\"price\":0.30", 1);
    let order = parse(body.as_bytes()).expect("parses");
    assert_eq!(order.lines[0].unit_price_minor, 30);
}

#[test]
fn a_negative_or_overflowing_amount_is_refused_by_its_path() {
    let error = parse_edited(|order| order["line_items"][1]["price"] = json!("-1.00"))
        .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "line_items[1].price"),
        "{error:?}"
    );
    let error = parse_edited(|order| order["total_price"] = json!("99999999999999999999.00"))
        .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "total_price"),
        "{error:?}"
    );
    let error = parse_edited(|order| {
        order["shipping_lines"] = json!([
            { "code": "a", "price": "92233720368547758.07" },
            { "code": "b", "price": "0.01" }
        ]);
    })
    .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "shipping_lines[1].price"),
        "{error:?}"
    );
}

#[test]
fn an_empty_sku_falls_back_to_the_variant_id() {
    let order = parse(ORDER_WITH_PROPERTIES).expect("parses");
    let keys: Vec<_> = order.lines.iter().map(|l| l.product_key()).collect();
    assert_eq!(keys, [Some("39072856"), Some("4107806867497")]);
    assert!(order.lines.iter().all(|l| l.sku.is_none()));
}

#[test]
fn a_line_without_a_variant_is_known_by_its_product_and_a_custom_line_by_nothing() {
    let order = parsed_edited(|order| {
        order["line_items"][0]["variant_id"] = Value::Null;
        order["line_items"][0]["sku"] = json!("");
        order["line_items"][1]["variant_id"] = Value::Null;
        order["line_items"][1]["product_id"] = Value::Null;
        order["line_items"][1]["sku"] = json!("  ");
    });
    assert_eq!(order.lines[0].item_id.as_deref(), Some("632910392"));
    assert_eq!(order.lines[1].product_key(), None);
}

#[test]
fn the_state_follows_cancellation_then_refund_then_fulfilment_then_payment() {
    let cases = [
        (
            Value::Null,
            "paid",
            Value::Null,
            PlatformState::Paid,
            "paid",
        ),
        (
            Value::Null,
            "authorized",
            Value::Null,
            PlatformState::Paid,
            "authorized",
        ),
        (
            Value::Null,
            "partially_paid",
            Value::Null,
            PlatformState::Paid,
            "partially_paid",
        ),
        (
            Value::Null,
            "partially_refunded",
            Value::Null,
            PlatformState::Paid,
            "partially_refunded",
        ),
        (
            Value::Null,
            "pending",
            Value::Null,
            PlatformState::Pending,
            "pending",
        ),
        (
            Value::Null,
            "expired",
            Value::Null,
            PlatformState::Pending,
            "expired",
        ),
        (
            Value::Null,
            "paid",
            json!("fulfilled"),
            PlatformState::Fulfilled,
            "paid/fulfilled",
        ),
        (
            Value::Null,
            "paid",
            json!("partial"),
            PlatformState::Paid,
            "paid/partial",
        ),
        (
            Value::Null,
            "refunded",
            Value::Null,
            PlatformState::Refunded,
            "refunded",
        ),
        (
            Value::Null,
            "refunded",
            json!("fulfilled"),
            PlatformState::Refunded,
            "refunded/fulfilled",
        ),
        (
            Value::Null,
            "voided",
            Value::Null,
            PlatformState::Cancelled,
            "voided",
        ),
        (
            json!("2008-01-10T12:00:00-05:00"),
            "paid",
            json!("fulfilled"),
            PlatformState::Cancelled,
            "paid/fulfilled",
        ),
    ];
    for (cancelled_at, financial, fulfillment, state, status) in cases {
        let order = parsed_edited(|order| {
            order["cancelled_at"] = cancelled_at.clone();
            order["financial_status"] = json!(financial);
            order["fulfillment_status"] = fulfillment.clone();
        });
        assert_eq!(
            order.state, state,
            "{cancelled_at} {financial} {fulfillment}"
        );
        assert_eq!(order.platform_status, status);
    }
}

#[test]
fn a_cancelled_order_maps_to_cancelled() {
    let order = parsed_edited(|order| {
        order["cancelled_at"] = json!("2008-01-10T12:00:00-05:00");
        order["cancel_reason"] = json!("customer");
    });
    assert_eq!(order.state, PlatformState::Cancelled);
    assert!(order.state.cancels());
}

#[test]
fn an_orders_delete_body_with_only_the_id_is_a_deletion_not_a_missing_field() {
    // `orders/delete` names the order and nothing else; the id beyond 2^53 stays exact.
    for body in [
        json!({"id": 820982911946154508u64}),
        json!({"id": 820982911946154508u64, "admin_graphql_api_id": "gid://shopify/Order/820982911946154508"}),
    ] {
        assert_eq!(
            parse_value(&body),
            Err(ParseError::Deleted {
                platform: Platform::Shopify,
                external_id: "820982911946154508".into(),
            })
        );
    }
    let error = parse_value(&json!({"id": 1})).expect_err("refused");
    assert!(
        error.to_string().contains("deleted order 1"),
        "the reason says what happened: {error}"
    );
    // An order missing only some of those fields is still a broken order, named by its field.
    let error = parse_edited(|order| {
        let order = order.as_object_mut().expect("an object");
        order.remove("currency");
    })
    .expect_err("refused");
    assert!(!matches!(error, ParseError::Deleted { .. }), "{error:?}");
}

#[test]
fn timestamps_with_an_offset_are_read_as_utc_instants() {
    let order = parsed_edited(|order| order["updated_at"] = json!("2008-01-11T09:30:15+02:00"));
    assert_eq!(rfc3339(order.created_at), "2008-01-10T16:00:00Z");
    assert_eq!(rfc3339(order.updated_at), "2008-01-11T07:30:15Z");
}

#[test]
fn a_timestamp_that_is_not_one_is_refused_by_its_path() {
    let error =
        parse_edited(|order| order["updated_at"] = json!("yesterday")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "updated_at"),
        "{error:?}"
    );
}

#[test]
fn a_null_province_code_leaves_the_region_empty() {
    // Shopify's Ukrainian sample address has `"province_code": null`.
    let order = parsed_edited(|order| {
        order["shipping_address"]["province_code"] = Value::Null;
        order["shipping_address"]["country_code"] = json!("UA");
    });
    let address = order.shipping_address.expect("an address");
    assert_eq!(address.region, None);
    assert_eq!(address.country.as_deref(), Some("UA"));
}

#[test]
fn a_three_letter_country_is_refused_naming_the_field() {
    let error = parse_edited(|order| order["shipping_address"]["country_code"] = json!("USA"))
        .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "shipping_address.country_code"),
        "{error:?}"
    );
}

#[test]
fn an_order_without_a_shipping_address_has_none() {
    let order = parsed_edited(|order| {
        order
            .as_object_mut()
            .expect("an object")
            .remove("shipping_address");
    });
    assert_eq!(order.shipping_address, None);
    assert_eq!(order.customer.name.as_deref(), Some("Bob Norman"));
}

#[test]
fn the_customer_email_falls_back_to_contact_email_then_the_customer() {
    let order = parsed_edited(|order| {
        order["email"] = json!("");
        order["contact_email"] = json!("contact@example.com");
    });
    assert_eq!(order.customer.email.as_deref(), Some("contact@example.com"));
    let order = parsed_edited(|order| order["email"] = Value::Null);
    assert_eq!(
        order.customer.email.as_deref(),
        Some("bob.norman@hostmail.com")
    );
    let error = parse_edited(|order| order["email"] = json!("bob.norman")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "email"),
        "{error:?}"
    );
}

#[test]
fn shipping_is_the_sum_of_the_shipping_lines_and_the_method_is_the_first_code() {
    let order = parsed_edited(|order| {
        order["shipping_lines"] = json!([
            { "code": "", "title": "Standard", "price": "4.50" },
            { "code": "EXPRESS", "title": "Express", "price": "10.05" }
        ]);
    });
    assert_eq!(order.totals.shipping_minor, 1455);
    assert_eq!(order.shipping_method.as_deref(), Some("Standard"));
}

#[test]
fn an_order_with_no_line_items_is_refused() {
    let error = parse_edited(|order| order["line_items"] = json!([])).expect_err("refused");
    assert_eq!(error, ParseError::missing("line_items"));
    let error = parse(br#"{"order":{"id":450789469,"currency":"USD"}}"#).expect_err("refused");
    assert_eq!(error, ParseError::missing("order.line_items"));
}

#[test]
fn a_forged_body_that_is_not_json_gives_a_json_error_with_a_path() {
    let error = parse(b"id=450789469&total=1").expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "."),
        "{error:?}"
    );
    let error = parse(br#"{"order":{"id":1,"line_items":[{"sku":5}]}}"#).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "order.line_items[0].sku"),
        "{error:?}"
    );
}

// ---- fuzz properties ----

common::never_panics! {
    cases: 512,
    exercise: |bytes: &[u8]| {
        let _ = parse(bytes);
    },
    fixtures: [ORDER_450789469, ORDER_WITH_PROPERTIES],
    documents: vec![common::json(ORDER_WITH_PROPERTIES)],
}
