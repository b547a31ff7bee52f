//! The EasyPost client against the EasyPost-style sandbox over real HTTP: a shipment created
//! and its label bought, the cheapest rate or the one asked for, refused addresses, and
//! stalls, lost answers and server errors retried without a second label.

use std::time::{Duration, Instant};

use orderflow_adapters::{AdapterError, Carrier, EasyPostCarrier, ShipmentRequest};
use orderflow_domain::Address;
use orderflow_sim::EasyPostSandbox;

const API_KEY: &str = "EZTK_sandbox";

fn address(name: &str, line1: &str, city: &str, region: &str, zip: &str) -> Address {
    Address {
        name: Some(name.into()),
        line1: Some(line1.into()),
        line2: None,
        city: Some(city.into()),
        region: Some(region.into()),
        postal_code: Some(zip.into()),
        country: Some("US".into()),
    }
}

fn request(order_id: &str) -> ShipmentRequest {
    ShipmentRequest {
        order_id: order_id.into(),
        from: address(
            "Warehouse",
            "417 Montgomery St",
            "San Francisco",
            "CA",
            "94104",
        ),
        to: address(
            "Ada Lovelace",
            "179 N Harbor Dr",
            "Redondo Beach",
            "CA",
            "90277",
        ),
        weight_grams: 1_200,
        service: None,
    }
}

async fn sandbox() -> (EasyPostSandbox, EasyPostCarrier) {
    let sandbox = EasyPostSandbox::start(API_KEY)
        .await
        .expect("the sandbox starts");
    let carrier = EasyPostCarrier::new(sandbox.url(), API_KEY)
        .expect("a client")
        .with_timeout(Duration::from_millis(500))
        .expect("a client");
    (sandbox, carrier)
}

fn assert_each_key_acted_at_most_once(sandbox: &EasyPostSandbox) {
    for (key, count) in sandbox.effects() {
        assert!(count <= 1, "the key {key} acted {count} times");
    }
}

#[tokio::test]
async fn a_shipment_is_created_and_its_cheapest_label_bought() {
    let (sandbox, carrier) = sandbox().await;

    let shipment = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect("shipped");

    assert!(shipment.shipment_id.starts_with("shp_"), "{shipment:?}");
    assert!(shipment.tracking_code.starts_with("EZ"), "{shipment:?}");
    assert_eq!(
        (shipment.carrier.as_str(), shipment.service.as_str()),
        ("USPS", "GroundAdvantage")
    );
    assert!(
        shipment
            .label_url
            .as_deref()
            .is_some_and(|url| url.ends_with(".png"))
    );
    let stored = sandbox
        .shipment(&shipment.shipment_id)
        .expect("the shipment");
    assert_eq!(stored["reference"], "ord_1");
    assert_eq!(stored["to_address"]["street1"], "179 N Harbor Dr");
    assert_eq!(stored["parcel"]["weight"], 42.4);
    assert_eq!(stored["tracking_code"], shipment.tracking_code.as_str());
    assert_eq!(sandbox.effects().get("ord_1/ship/create"), Some(&1));
    assert_eq!(sandbox.effects().get("ord_1/ship/buy"), Some(&1));

    let tracker_id = shipment.tracker_id.expect("a tracker");
    let tracker: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v2/trackers/{tracker_id}", sandbox.url()))
        .basic_auth(API_KEY, Some(""))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(tracker["tracking_code"], shipment.tracking_code.as_str());
    assert_eq!(tracker["status"], "pre_transit");
}

#[tokio::test]
async fn the_service_asked_for_is_bought() {
    let (_sandbox, carrier) = sandbox().await;
    let mut priority = request("ord_1");
    priority.service = Some("priority".into());

    let shipment = carrier
        .create_shipment(&priority, "ord_1/ship")
        .await
        .expect("shipped");

    assert_eq!(shipment.service, "Priority");
    let mut unknown = request("ord_2");
    unknown.service = Some("Teleport".into());
    let error = carrier.create_shipment(&unknown, "ord_2/ship").await;
    assert!(matches!(error, Err(AdapterError::Rejected(_))), "{error:?}");
}

#[tokio::test]
async fn tracking_codes_are_unique() {
    let (sandbox, carrier) = sandbox().await;

    let mut codes = Vec::new();
    for n in 0..5 {
        let order = format!("ord_{n}");
        let shipment = carrier
            .create_shipment(&request(&order), &format!("{order}/ship"))
            .await
            .expect("shipped");
        codes.push(shipment.tracking_code);
    }

    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), codes.len(), "{codes:?}");
    assert_eq!(sandbox.shipments().len(), 5);
}

#[tokio::test]
async fn an_address_without_a_street_is_rejected() {
    let (sandbox, carrier) = sandbox().await;
    let mut nowhere = request("ord_1");
    nowhere.to.line1 = None;

    let error = carrier
        .create_shipment(&nowhere, "ord_1/ship")
        .await
        .expect_err("no street");

    match error {
        AdapterError::Rejected(message) => {
            assert!(message.contains("to_address.street1"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(sandbox.shipments().is_empty());
}

#[tokio::test]
async fn a_stalled_purchase_is_retried_without_a_second_label() {
    let (sandbox, carrier) = sandbox().await;
    sandbox.faults().on("POST */buy").stall(1);

    let error = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect_err("the purchase timed out");
    assert!(error.is_transient(), "{error:?}");
    let shipment = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect("shipped on the retry");

    assert_eq!(sandbox.shipments().len(), 1);
    assert_eq!(sandbox.shipments()[0]["id"], shipment.shipment_id.as_str());
    assert_each_key_acted_at_most_once(&sandbox);
}

#[tokio::test]
async fn a_lost_purchase_answer_is_recovered_from_the_replay() {
    let (sandbox, carrier) = sandbox().await;
    sandbox
        .faults()
        .on("POST /v2/shipments/*/buy")
        .lose_answer(1);

    let error = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect_err("the answer never came");
    assert!(error.is_transient(), "{error:?}");
    let bought = sandbox.shipments()[0]["tracking_code"].clone();
    assert!(bought.is_string(), "the label was bought: {bought}");

    let shipment = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect("the retry gets the purchase");

    assert_eq!(bought, shipment.tracking_code.as_str());
    assert_eq!(sandbox.effects().get("ord_1/ship/buy"), Some(&1));
    assert_each_key_acted_at_most_once(&sandbox);
}

#[tokio::test]
async fn a_failing_create_is_transient_and_the_retry_ships_once() {
    let (sandbox, carrier) = sandbox().await;
    sandbox.faults().on("POST /v2/shipments").fail(1, 503);

    let error = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect_err("a simulated failure");
    assert!(error.is_transient(), "{error:?}");
    carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect("shipped on the retry");

    assert_eq!(sandbox.shipments().len(), 1);
    assert_each_key_acted_at_most_once(&sandbox);
}

#[tokio::test]
async fn a_slow_carrier_is_slow_on_every_call() {
    let (sandbox, carrier) = sandbox().await;
    sandbox
        .faults()
        .on("*")
        .slow_every(Duration::from_millis(50));

    let started = Instant::now();
    carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect("shipped");

    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sandbox.requests().len(), 2);
}

#[tokio::test]
async fn a_wrong_api_key_is_rejected() {
    let (sandbox, _) = sandbox().await;
    let carrier = EasyPostCarrier::new(sandbox.url(), "EZTK_wrong").expect("a client");

    let error = carrier
        .create_shipment(&request("ord_1"), "ord_1/ship")
        .await
        .expect_err("unauthorised");

    assert!(matches!(error, AdapterError::Rejected(_)), "{error:?}");
}
