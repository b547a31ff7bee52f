//! The `custom` parser: a home-made shop's canonical order in a Standard Webhooks envelope,
//! targeted cases that read as its specification, and the fuzz properties every parser has.

mod common;

use orderflow_connectors::parse::custom::parse;
use orderflow_connectors::{ParseError, Platform, PlatformState};
use serde_json::{Value, json};

/// What a custom shop posts: the canonical order as `data`, without its `platform`. Written
/// for these tests (there is no outside sample: the format is ours).
fn envelope() -> Value {
    json!({
        "type": "order.created",
        "timestamp": "2026-11-27T09:00:00Z",
        "data": {
            "external_id": "10042",
            "number": "SO-10042",
            "state": "paid",
            "platform_status": "paid",
            "customer": {"name": "Ana Rojas", "email": "ana@example.cl", "phone": "+56 9 1234 5678"},
            "shipping_address": {
                "name": "Ana Rojas",
                "line1": "Av. Providencia 1234",
                "city": "Santiago",
                "region": "RM",
                "postal_code": "7500000",
                "country": "CL"
            },
            "lines": [
                {"sku": "TEA-1", "item_id": "501", "name": "Green tea", "quantity": 2, "unit_price_minor": 4990},
                {"sku": "MUG-2", "name": "Mug", "quantity": 1, "unit_price_minor": 7990}
            ],
            "shipping_method": "express",
            "currency": "CLP",
            "totals": {
                "items_minor": 17970,
                "shipping_minor": 3000,
                "tax_minor": 0,
                "discount_minor": 0,
                "total_minor": 20970
            },
            "created_at": "2026-11-27T08:59:00Z",
            "updated_at": "2026-11-27T09:00:00Z"
        }
    })
}

fn edited(
    edit: impl FnOnce(&mut Value),
) -> Result<orderflow_connectors::IncomingOrder, ParseError> {
    parse(&common::edited(envelope(), edit))
}

#[test]
fn a_canonical_order_in_its_envelope_is_taken_as_written() {
    let order = parse(&common::body(&envelope())).expect("parses");
    assert_eq!(order.platform, Platform::Custom);
    assert_eq!(order.external_id, "10042");
    assert_eq!(order.number.as_deref(), Some("SO-10042"));
    assert_eq!(order.state, PlatformState::Paid);
    assert_eq!(order.currency.as_str(), "CLP");
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[0].product_key(), Some("TEA-1"));
    assert_eq!(order.lines[0].quantity, 2);
    assert_eq!(order.lines[0].unit_price_minor, 4990);
    assert_eq!(order.lines[1].item_id, None);
    assert_eq!(order.totals.total_minor, 20970);
    assert_eq!(
        order.shipping_address.and_then(|a| a.region).as_deref(),
        Some("RM")
    );
    assert_eq!(common::rfc3339(order.updated_at), "2026-11-27T09:00:00Z");
}

#[test]
fn the_platform_is_custom_whatever_the_data_claims() {
    let order = edited(|e| e["data"]["platform"] = json!("shopify")).expect("parses");
    assert_eq!(order.platform, Platform::Custom);
}

#[test]
fn an_event_that_is_not_about_an_order_is_refused_naming_its_type() {
    let error = edited(|e| e["type"] = json!("customer.created")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "type"),
        "{error:?}"
    );
}

#[test]
fn a_price_written_as_a_decimal_is_refused_rather_than_rounded() {
    // Minor units are whole numbers; 49.90 would have to pass through a float to be read.
    let error =
        edited(|e| e["data"]["lines"][0]["unit_price_minor"] = json!(49.9)).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "data.lines[0].unit_price_minor"),
        "{error:?}"
    );
}

#[test]
fn a_wrong_type_is_refused_with_the_path_of_the_field_in_the_delivery() {
    let error = edited(|e| e["data"]["lines"][1]["quantity"] = json!("1")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "data.lines[1].quantity"),
        "{error:?}"
    );
    let error = edited(|e| e["data"]["currency"] = json!("pesos")).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "data.currency"),
        "{error:?}"
    );
    let error = edited(|e| e["data"] = json!([1, 2])).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { path, .. } if path == "data"),
        "{error:?}"
    );
}

#[test]
fn a_line_of_zero_units_is_refused_like_on_every_other_platform() {
    let error = edited(|e| e["data"]["lines"][0]["quantity"] = json!(0)).expect_err("refused");
    assert!(
        matches!(&error, ParseError::Invalid { field, .. } if field == "data.lines[0].quantity"),
        "{error:?}"
    );
}

#[test]
fn missing_required_fields_are_named() {
    for field in ["external_id", "customer", "currency", "updated_at"] {
        let error = edited(|e| {
            e["data"].as_object_mut().expect("an object").remove(field);
        })
        .expect_err("refused");
        assert!(
            matches!(&error, ParseError::Json { message, .. } if message.contains(field)),
            "{field}: {error:?}"
        );
    }
    let error = edited(|e| {
        e.as_object_mut().expect("an object").remove("data");
    })
    .expect_err("refused");
    assert!(
        matches!(&error, ParseError::Json { message, .. } if message.contains("data")),
        "{error:?}"
    );
}

#[test]
fn an_order_without_lines_is_refused() {
    assert_eq!(
        edited(|e| e["data"]["lines"] = json!([])),
        Err(ParseError::missing("data.lines"))
    );
}

#[test]
fn optional_parts_may_be_left_out() {
    let order = edited(|e| {
        let data = e["data"].as_object_mut().expect("an object");
        for field in ["number", "shipping_address", "shipping_method"] {
            data.remove(field);
        }
    })
    .expect("parses");
    assert_eq!(order.number, None);
    assert_eq!(order.shipping_address, None);
    assert_eq!(order.shipping_method, None);
}

// ---- fuzz properties ----

common::never_panics! {
    cases: 512,
    exercise: |bytes: &[u8]| {
        let _ = parse(bytes);
    },
    fixtures: [&common::body(&envelope())],
    documents: vec![envelope()],
}
