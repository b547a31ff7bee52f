//! VTEX: the OMS order, the order group, the hook notification and the Feed v3 batch.

mod common;

use common::fixture;
use orderflow_connectors::parse::vtex;
use orderflow_connectors::{IncomingOrder, ParseError, PlatformState};
use serde_json::Value;
use serde_json::value::RawValue;
use time::macros::datetime;

const ORDER: &[u8] = fixture!("vtex/get_order_1172452900788-01.json").as_bytes();
const GROUP: &[u8] = fixture!("vtex/order_group_v71425090str.json").as_bytes();
const HOOK_OPENAPI: &[u8] = fixture!("vtex/hook_notification_openapi_example.json").as_bytes();
const HOOK_DOC: &[u8] = fixture!("vtex/hook_notification_doc_example.json").as_bytes();
const FEED: &[u8] = fixture!("vtex/feed_v3_items.json").as_bytes();

fn order() -> IncomingOrder {
    vtex::parse(ORDER).expect("the get-order fixture parses")
}

/// The orders of the order-group fixture, each as its own body, bytes untouched.
fn group() -> Vec<Box<RawValue>> {
    serde_json::from_slice(GROUP).expect("the order-group fixture is a JSON array")
}

/// The get-order fixture with one field changed, for the cases the samples do not show.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    common::edited(common::json(ORDER), edit)
}

#[test]
fn the_get_order_fixture_parses() {
    insta::assert_json_snapshot!("get_order_1172452900788-01", order());
}

#[test]
fn each_order_of_an_order_group_parses_on_its_own() {
    let orders = group();
    assert_eq!(orders.len(), 2);
    for raw in orders {
        let order = vtex::parse(raw.get().as_bytes()).expect("an order of the group parses");
        insta::assert_json_snapshot!(format!("order_group_{}", order.external_id), order);
    }
}

#[test]
fn a_vtex_alpha3_country_becomes_alpha2() {
    let address = order().shipping_address.expect("an address");
    assert_eq!(address.country.as_deref(), Some("BR"));
}

#[test]
fn an_unknown_alpha3_country_is_refused_naming_the_field() {
    let body = edited(|o| o["shippingData"]["address"]["country"] = "XYZ".into());
    assert!(matches!(
        vtex::parse(&body),
        Err(ParseError::Invalid { field, .. }) if field == "shippingData.address.country"
    ));
}

#[test]
fn street_and_number_make_line1_and_the_complement_line2() {
    let address = order().shipping_address.expect("an address");
    assert_eq!(address.line1.as_deref(), Some("Avenida Lúcio Costa 126"));
    assert_eq!(address.line2.as_deref(), Some("10"));
    assert_eq!(address.region.as_deref(), Some("RJ"));
}

#[test]
fn vtex_cents_are_kept_as_they_are() {
    let order = order();
    assert_eq!(order.currency.as_str(), "BRL");
    assert_eq!(order.totals.total_minor, 1160);
    assert_eq!(order.totals.shipping_minor, 300);
    assert_eq!(order.lines[0].unit_price_minor, 990);
}

#[test]
fn a_fractional_vtex_amount_is_refused_not_rounded() {
    let body = edited(|o| o["value"] = serde_json::json!(11.6));
    assert!(matches!(
        vtex::parse(&body),
        Err(ParseError::Invalid { field, .. }) if field == "value"
    ));
}

#[test]
fn a_store_counting_other_decimals_than_iso_is_refused() {
    let body = edited(|o| {
        o["storePreferencesData"]["currencyFormatInfo"]["CurrencyDecimalDigits"] = 3.into();
    });
    assert!(matches!(
        vtex::parse(&body),
        Err(ParseError::Invalid { field, .. })
            if field == "storePreferencesData.currencyFormatInfo.CurrencyDecimalDigits"
    ));
}

#[test]
fn a_zero_decimal_currency_agreeing_with_the_store_is_taken_as_is() {
    let body = edited(|o| {
        o["storePreferencesData"]["currencyCode"] = "CLP".into();
        o["storePreferencesData"]["currencyFormatInfo"]["CurrencyDecimalDigits"] = 0.into();
    });
    let order = vtex::parse(&body).expect("parses");
    assert_eq!(order.currency.as_str(), "CLP");
    assert_eq!(order.totals.total_minor, 1160);
}

#[test]
fn negative_vtex_discounts_are_stored_as_the_positive_amount_taken_off() {
    let first = group().into_iter().next().expect("two orders");
    let order = vtex::parse(first.get().as_bytes()).expect("parses");
    assert_eq!(order.totals.discount_minor, 1750);
    assert_eq!(order.totals.items_minor, 6999);
    // Items − discounts + shipping is what the customer pays.
    assert_eq!(6999 - 1750 + 209, order.totals.total_minor);
}

#[test]
fn a_positive_discount_total_is_refused_rather_than_guessed() {
    let body = edited(|o| o["totals"][1]["value"] = 100.into());
    assert!(matches!(
        vtex::parse(&body),
        Err(ParseError::Invalid { field, .. }) if field == "totals[1].value"
    ));
}

#[test]
fn the_sku_is_the_ref_id_else_the_seller_sku_and_the_item_id_the_sku_id() {
    let line = &order().lines[0];
    assert_eq!(line.sku.as_deref(), Some("BIGBML"));
    assert_eq!(line.item_id.as_deref(), Some("18"));
    let body = edited(|o| o["items"][0]["refId"] = "".into());
    let order = vtex::parse(&body).expect("parses");
    assert_eq!(order.lines[0].sku.as_deref(), Some("18"));
    let body = edited(|o| {
        o["items"][0]["refId"] = Value::Null;
        o["items"][0]["sellerSku"] = " ".into();
    });
    let order = vtex::parse(&body).expect("parses");
    assert_eq!(order.lines[0].sku, None);
    assert_eq!(order.lines[0].product_key(), Some("18"));
}

#[test]
fn the_unit_price_is_the_selling_price_else_the_price() {
    let first = group().into_iter().next().expect("two orders");
    let order = vtex::parse(first.get().as_bytes()).expect("parses");
    assert_eq!(order.lines[0].unit_price_minor, 5249);
    let body = edited(|o| o["items"][0]["sellingPrice"] = Value::Null);
    assert_eq!(
        vtex::parse(&body).expect("parses").lines[0].unit_price_minor,
        990
    );
}

#[test]
fn an_order_without_items_is_refused() {
    let body = edited(|o| o["items"] = serde_json::json!([]));
    assert_eq!(vtex::parse(&body), Err(ParseError::missing("items")));
}

#[test]
fn the_sequence_is_the_number_and_the_order_id_the_external_id() {
    let order = order();
    assert_eq!(order.external_id, "1172452900788-01");
    assert_eq!(order.number.as_deref(), Some("502556"));
    let body = edited(|o| o["sequence"] = Value::Null);
    assert_eq!(
        vtex::parse(&body).expect("parses").number.as_deref(),
        Some("1172452900788-01")
    );
}

#[test]
fn seven_digit_fractions_are_kept_to_the_tenth_of_a_microsecond() {
    let order = order();
    assert_eq!(order.created_at, datetime!(2024-02-04 20:09:43.899958 UTC));
    assert_eq!(order.updated_at, datetime!(2024-02-06 20:46:11.7010747 UTC));
}

#[test]
fn vtex_workflow_states_map_to_what_intake_acts_on() {
    for (status, expected) in [
        ("order-created", PlatformState::Pending),
        ("payment-pending", PlatformState::Pending),
        ("window-to-cancel", PlatformState::Pending),
        ("on-order-completed", PlatformState::Pending),
        ("cancellation-requested", PlatformState::Pending),
        ("", PlatformState::Pending),
        ("payment-approved", PlatformState::Paid),
        ("waiting-for-seller-decision", PlatformState::Paid),
        ("ready-for-handling", PlatformState::Paid),
        ("start-handling", PlatformState::Paid),
        ("handling", PlatformState::Paid),
        ("invoiced", PlatformState::Fulfilled),
        ("cancel", PlatformState::Cancelled),
        ("canceled", PlatformState::Cancelled),
    ] {
        let body = edited(|o| o["status"] = status.into());
        let order = vtex::parse(&body).expect("parses");
        assert_eq!(order.state, expected, "{status:?}");
        assert_eq!(order.platform_status, status);
    }
}

#[test]
fn the_customer_comes_from_the_client_profile() {
    let customer = order().customer;
    assert_eq!(customer.name.as_deref(), Some("Rodrigo Smith"));
    assert_eq!(customer.email.as_deref(), Some("rodrigo.smith@email.com"));
    assert_eq!(customer.phone.as_deref(), Some("+5561992227222"));
    assert_eq!(customer.locale.as_deref(), Some("en-US"));
}

#[test]
fn the_openapi_hook_notification_parses_with_every_field() {
    let hook = vtex::parse_hook(HOOK_OPENAPI).expect("parses");
    assert_eq!(
        hook,
        vtex::VtexHook {
            domain: Some("Fulfillment".into()),
            order_id: "v52277740atmc-01".into(),
            state: "ready-for-handling".into(),
            last_state: Some("window-to-cancel".into()),
            last_change: Some("2019-08-14T17:11:39.2550122Z".into()),
            current_change: Some("2019-08-14T17:12:48.0965893Z".into()),
            origin_account: "automacaoqa".into(),
            origin_key: "vtexappkey-appvtex".into(),
        }
    );
}

#[test]
fn the_guide_hook_notification_parses_without_last_state_or_current_change() {
    let hook = vtex::parse_hook(HOOK_DOC).expect("parses");
    assert_eq!(hook.order_id, "v40484048naf-01");
    assert_eq!(hook.state, "payment-approved");
    assert_eq!(hook.domain.as_deref(), Some("Marketplace"));
    assert_eq!(hook.last_state, None);
    assert_eq!(
        hook.last_change.as_deref(),
        Some("2019-07-29T23:17:30.0617185Z")
    );
    assert_eq!(hook.current_change, None);
    assert_eq!(hook.origin_account, "accountABC");
    assert_eq!(hook.origin_key, "vtexappkey-keyEDF");
}

#[test]
fn a_hook_without_origin_is_refused() {
    let body = br#"{"OrderId":"v1-01","State":"invoiced"}"#;
    assert_eq!(
        vtex::parse_hook(body),
        Err(ParseError::missing("Origin.Account"))
    );
}

#[test]
fn the_configuration_ping_is_recognised_and_nothing_else_is() {
    assert!(vtex::is_ping(br#"{"hookConfig":"ping"}"#));
    assert!(vtex::is_ping(br#" { "hookConfig" : "ping" } "#));
    assert!(!vtex::is_ping(br#"{"hookConfig":"pong"}"#));
    assert!(!vtex::is_ping(HOOK_OPENAPI));
    assert!(!vtex::is_ping(b"ping"));
    assert!(vtex::parse_hook(br#"{"hookConfig":"ping"}"#).is_err());
}

#[test]
fn the_feed_v3_batch_parses() {
    let events = vtex::parse_feed(FEED).expect("parses");
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.event_id, "ED423DDED4C1AE580CADAC1A4D02DA3F");
    assert!(event.handle.starts_with("eyJhbGciOiJIUzI1NiIs"));
    assert_eq!(event.domain.as_deref(), Some("Fulfillment"));
    assert_eq!(event.order_id, "953712004126-01");
    assert_eq!(event.state, "ready-for-handling");
    assert_eq!(event.last_state.as_deref(), Some("window-to-cancel"));
    assert_eq!(
        event.last_change.as_deref(),
        Some("2019-08-12T20:54:01.134057Z")
    );
    assert_eq!(
        event.current_change.as_deref(),
        Some("2019-08-12T20:54:23.7153839Z")
    );
}

fn exercise(bytes: &[u8]) {
    let _ = vtex::parse(bytes);
    let _ = vtex::parse_hook(bytes);
    let _ = vtex::parse_feed(bytes);
    let _ = vtex::is_ping(bytes);
}

const FIXTURES: [&[u8]; 5] = [ORDER, GROUP, HOOK_OPENAPI, HOOK_DOC, FEED];

/// The fixtures as documents, the order group's first order alone, so that edits reach a
/// parsed order's fields.
fn documents() -> Vec<Value> {
    FIXTURES
        .iter()
        .map(|fixture| {
            let document = common::json(fixture);
            let first = match &document {
                Value::Array(orders) => orders.first().filter(|o| o.get("orderId").is_some()),
                _ => None,
            };
            first.cloned().unwrap_or(document)
        })
        .collect()
}

common::never_panics! {
    cases: 1000,
    exercise: exercise,
    fixtures: FIXTURES,
    documents: documents(),
}
