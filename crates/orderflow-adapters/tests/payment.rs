//! The payment gateways over real HTTP: the Stripe client against the Stripe-style sandbox
//! (authorise, decline, server errors, replays under one key, lost answers, void), and cash on
//! delivery.

use std::time::Duration;

use orderflow_adapters::{
    AdapterError, CashOnDelivery, PaymentGateway, PaymentRequest, StripePayments,
};
use orderflow_sim::StripeSandbox;

const SECRET: &str = "sk_test_sandbox";

fn request(payment_method: &str) -> PaymentRequest {
    PaymentRequest {
        order_id: "ord_1".into(),
        amount_minor: 4_250,
        currency: "EUR".into(),
        customer_email: Some("ada@example.com".into()),
        payment_method: Some(payment_method.into()),
    }
}

async fn sandbox() -> (StripeSandbox, StripePayments) {
    let sandbox = StripeSandbox::start(SECRET)
        .await
        .expect("the sandbox starts");
    let stripe = StripePayments::new(sandbox.url(), SECRET)
        .expect("a client")
        .with_timeout(Duration::from_millis(500))
        .expect("a client");
    (sandbox, stripe)
}

fn assert_each_key_acted_at_most_once(sandbox: &StripeSandbox) {
    for (key, count) in sandbox.effects() {
        assert!(count <= 1, "the key {key} acted {count} times");
    }
}

#[tokio::test]
async fn an_authorisation_holds_the_amount_until_captured() {
    let (sandbox, stripe) = sandbox().await;

    let authorization = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("authorised");

    assert!(authorization.id.starts_with("pi_"), "{authorization:?}");
    assert_eq!(authorization.amount_minor, 4_250);
    assert_eq!(authorization.status, "requires_capture");
    let intent = sandbox.intent(&authorization.id).expect("the intent");
    assert_eq!(intent["currency"], "eur");
    assert_eq!(intent["capture_method"], "manual");
    assert_eq!(intent["metadata"]["order_id"], "ord_1");
    assert_eq!(sandbox.effects().get("ord_1/authorize"), Some(&1));
}

#[tokio::test]
async fn a_declined_card_is_rejected_with_its_decline_code() {
    let (sandbox, stripe) = sandbox().await;

    let error = stripe
        .authorize(&request("pm_card_chargeDeclined"), "ord_1/authorize")
        .await
        .expect_err("declined");

    match error {
        AdapterError::Rejected(message) => {
            assert!(message.contains("generic_decline"), "{message}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    let retried = stripe
        .authorize(&request("pm_card_chargeDeclined"), "ord_1/authorize")
        .await;
    assert!(
        matches!(retried, Err(AdapterError::Rejected(_))),
        "{retried:?}"
    );
    assert_eq!(sandbox.intents().len(), 1, "the retry replays the decline");
    assert_each_key_acted_at_most_once(&sandbox);
}

#[tokio::test]
async fn server_errors_are_transient_and_the_retry_acts_once() {
    let (sandbox, stripe) = sandbox().await;
    sandbox.faults().on("POST /v1/payment_intents").fail(2, 500);

    for _ in 0..2 {
        let error = stripe
            .authorize(&request("pm_card_visa"), "ord_1/authorize")
            .await
            .expect_err("a simulated failure");
        assert!(error.is_transient(), "{error:?}");
    }
    let authorization = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("authorised on the third try");

    assert_eq!(sandbox.intents().len(), 1);
    assert_eq!(
        sandbox
            .intent(&authorization.id)
            .map(|i| i["status"].clone()),
        Some("requires_capture".into())
    );
    assert_eq!(sandbox.effects().get("ord_1/authorize"), Some(&1));
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_same_authorisation() {
    let (sandbox, stripe) = sandbox().await;

    let first = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("authorised");
    let second = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("replayed");

    assert_eq!(first, second);
    assert_eq!(sandbox.intents().len(), 1);
    assert_eq!(sandbox.requests().len(), 2);
    assert_eq!(sandbox.effects().get("ord_1/authorize"), Some(&1));
}

#[tokio::test]
async fn a_lost_answer_is_recovered_by_retrying_with_the_same_key() {
    let (sandbox, stripe) = sandbox().await;
    sandbox
        .faults()
        .on("POST /v1/payment_intents")
        .lose_answer(1);

    let error = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect_err("the answer never came");
    assert!(error.is_transient(), "{error:?}");
    let authorization = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("the retry gets the first answer");

    let intents = sandbox.intents();
    assert_eq!(intents.len(), 1, "one payment, not two");
    assert_eq!(intents[0]["id"], authorization.id.as_str());
    assert_eq!(sandbox.effects().get("ord_1/authorize"), Some(&1));
}

#[tokio::test]
async fn the_same_key_for_another_amount_is_rejected() {
    let (sandbox, stripe) = sandbox().await;
    stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("authorised");

    let mut other = request("pm_card_visa");
    other.amount_minor = 1;
    let error = stripe
        .authorize(&other, "ord_1/authorize")
        .await
        .expect_err("a reused key");

    match error {
        AdapterError::Rejected(message) => {
            assert!(message.contains("idempotency_error"), "{message}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(sandbox.intents().len(), 1);
}

#[tokio::test]
async fn voiding_cancels_the_intent_and_voiding_again_holds() {
    let (sandbox, stripe) = sandbox().await;
    let authorization = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect("authorised");

    stripe
        .void(&authorization.id, "ord_1/void")
        .await
        .expect("voided");
    stripe
        .void(&authorization.id, "ord_1/void")
        .await
        .expect("replayed");
    stripe
        .void(&authorization.id, "ord_1/void-again")
        .await
        .expect("already void is void");

    let intent = sandbox.intent(&authorization.id).expect("the intent");
    assert_eq!(intent["status"], "canceled");
    assert_eq!(sandbox.effects().get("ord_1/void"), Some(&1));
    assert_eq!(sandbox.effects().get("ord_1/void-again"), None);
    let unknown = stripe.void("pi_unknown", "ord_2/void").await;
    assert!(
        matches!(unknown, Err(AdapterError::Rejected(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_transient_and_carries_retry_after() {
    let (sandbox, stripe) = sandbox().await;
    sandbox
        .faults()
        .on("*")
        .rate_limit(1, Duration::from_secs(2));

    let error = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect_err("rate limited");

    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    assert!(sandbox.effects().is_empty());
}

#[tokio::test]
async fn a_stalled_request_times_out_as_transient_and_does_nothing() {
    let (sandbox, stripe) = sandbox().await;
    sandbox.faults().on("POST /v1/payment_intents").stall(1);

    let error = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect_err("timed out");

    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(sandbox.intents().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_key_is_rejected() {
    let (sandbox, _) = sandbox().await;
    let stripe = StripePayments::new(sandbox.url(), "sk_test_wrong").expect("a client");

    let error = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect_err("unauthorised");

    assert!(matches!(error, AdapterError::Rejected(_)), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_gateway_is_transient() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("an address")
    };
    let stripe = StripePayments::new(&format!("http://{closed}"), SECRET).expect("a client");

    let error = stripe
        .authorize(&request("pm_card_visa"), "ord_1/authorize")
        .await
        .expect_err("nobody listens");

    assert!(error.is_transient(), "{error:?}");
}

#[tokio::test]
async fn a_card_payment_without_a_payment_method_is_rejected_before_any_call() {
    let (sandbox, stripe) = sandbox().await;
    let mut without = request("pm_card_visa");
    without.payment_method = None;

    let error = stripe
        .authorize(&without, "ord_1/authorize")
        .await
        .expect_err("nothing to charge");

    assert!(matches!(error, AdapterError::Rejected(_)), "{error:?}");
    assert!(sandbox.requests().is_empty());
}

#[tokio::test]
async fn cash_on_delivery_authorises_with_an_id_from_the_key() {
    let cash = CashOnDelivery;

    let first = cash
        .authorize(&request("ignored"), "ord_1/authorize")
        .await
        .expect("authorised");
    let second = cash
        .authorize(&request("ignored"), "ord_1/authorize")
        .await
        .expect("authorised");

    assert_eq!(first, second);
    assert_eq!(first.id, "cod_ord_1/authorize");
    assert_eq!(first.amount_minor, 4_250);
    assert_eq!(cash.name(), "cash_on_delivery");
    cash.void(&first.id, "ord_1/void").await.expect("voided");
}
