//! Senders re-send as their platforms do: Shopify until a 2xx within its time limit, with the
//! same event and a new webhook id each time; WooCommerce never. The receiver here is a
//! scripted recorder on 127.0.0.1, and the proxy stands between a sender and it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use orderflow_sim::custom::CustomSender;
use orderflow_sim::jumpseller::JumpsellerSender;
use orderflow_sim::proxy::Proxy;
use orderflow_sim::shopify::ShopifySender;
use orderflow_sim::woocommerce::WooSender;
use orderflow_sim::{Generator, Outcome, RetryPolicy};

/// What a request got: a status, after a delay.
type Step = (u16, Duration);

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Answers each request with the next step of its script (the last one repeats) and keeps
/// what it received.
struct Recorder {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    async fn start(script: Vec<Step>) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let log = received.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let (log, script) = (log.clone(), script.clone());
                async move {
                    log.lock().expect("log").push(Received {
                        path: uri.path().to_owned(),
                        headers,
                        body: body.to_vec(),
                    });
                    let (status, delay) = {
                        let mut script = script.lock().expect("script");
                        if script.len() > 1 {
                            script.remove(0)
                        } else {
                            script[0]
                        }
                    };
                    tokio::time::sleep(delay).await;
                    let mut response = axum::response::Response::new(axum::body::Body::empty());
                    *response.status_mut() = StatusCode::from_u16(status).expect("a status");
                    if status == 302 {
                        response
                            .headers_mut()
                            .insert("location", "/elsewhere".parse().expect("a value"));
                    }
                    response
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }
}

fn header(received: &Received, name: &str) -> String {
    received
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

const AT_ONCE: Duration = Duration::ZERO;

/// Shopify's schedule a million times faster: the 8 re-sends take about 15 ms.
fn fast_shopify() -> RetryPolicy {
    RetryPolicy::shopify()
        .compressed(1_000_000)
        .with_timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn shopify_resends_the_same_event_with_a_new_webhook_id_until_a_2xx() {
    let receiver = Recorder::start(vec![(500, AT_ONCE), (503, AT_ONCE), (200, AT_ONCE)]).await;
    let sender = ShopifySender::new(&receiver.url, "shop", "secret").retry(fast_shopify());
    let order = Generator::new(1).order();

    let report = sender.send("orders/create", &order).await;

    assert!(report.delivered);
    assert_eq!(report.statuses(), [Some(500), Some(503), Some(200)]);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.path == "/webhooks/shopify/shop"));
    let events: Vec<String> = received
        .iter()
        .map(|r| header(r, "x-shopify-event-id"))
        .collect();
    assert!(!events[0].is_empty() && events.iter().all(|e| *e == events[0]));
    let mut webhooks: Vec<String> = received
        .iter()
        .map(|r| header(r, "x-shopify-webhook-id"))
        .collect();
    webhooks.dedup();
    assert_eq!(webhooks.len(), 3, "a new webhook id per attempt");
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "the original payload"
    );
}

#[tokio::test]
async fn shopify_gives_up_after_eight_resends() {
    let receiver = Recorder::start(vec![(500, AT_ONCE)]).await;
    let sender = ShopifySender::new(&receiver.url, "shop", "secret").retry(fast_shopify());

    let report = sender
        .send("orders/create", &Generator::new(2).order())
        .await;

    assert!(!report.delivered);
    assert_eq!(report.attempts.len(), 9);
    assert_eq!(receiver.received().len(), 9);
}

#[tokio::test]
async fn shopify_counts_a_slow_answer_or_a_redirect_as_a_failure() {
    let receiver = Recorder::start(vec![
        (200, Duration::from_millis(600)),
        (302, AT_ONCE),
        (204, AT_ONCE),
    ])
    .await;
    let sender = ShopifySender::new(&receiver.url, "shop", "secret").retry(fast_shopify());

    let report = sender.send("orders/paid", &Generator::new(3).order()).await;

    assert!(report.delivered);
    let outcomes: Vec<Outcome> = report.attempts.iter().map(|a| a.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::TimedOut,
            Outcome::Answered(302),
            Outcome::Answered(204)
        ]
    );
    assert!(
        !receiver.received().iter().any(|r| r.path == "/elsewhere"),
        "the redirect is not followed"
    );
}

#[tokio::test]
async fn woocommerce_never_resends_and_takes_a_redirect_as_delivered() {
    let receiver = Recorder::start(vec![(500, AT_ONCE), (302, AT_ONCE)]).await;
    let sender = WooSender::new(&receiver.url, "shop", "secret");
    let order = Generator::new(4).first_id(700).order();

    let failed = sender.send("order.created", &order).await;
    assert!(!failed.delivered);
    assert_eq!(failed.attempts.len(), 1);
    let redirected = sender.send("order.updated", &order).await;
    assert!(
        redirected.delivered,
        "WooCommerce counts 200–302 as delivered"
    );
    assert_eq!(receiver.received().len(), 2);
    let delivery_ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| header(r, "x-wc-webhook-delivery-id"))
        .collect();
    assert_ne!(delivery_ids[0], delivery_ids[1]);
}

#[tokio::test]
async fn the_woocommerce_ping_is_an_unsigned_form_that_needs_exactly_200() {
    let receiver = Recorder::start(vec![(204, AT_ONCE), (200, AT_ONCE)]).await;
    let sender = WooSender::new(&receiver.url, "shop", "secret").webhook_id(31);

    assert!(!sender.ping().await.delivered);
    assert!(sender.ping().await.delivered);
    let received = receiver.received();
    assert_eq!(received[1].body, b"webhook_id=31");
    assert!(received[1].headers.get("x-wc-webhook-signature").is_none());
}

#[tokio::test]
async fn jumpseller_and_custom_resends_keep_their_event_identity() {
    let receiver = Recorder::start(vec![(500, AT_ONCE), (200, AT_ONCE)]).await;
    let order = Generator::new(5).order();
    let quick = RetryPolicy::exponential(3, Duration::from_millis(5), Duration::from_secs(2));

    let jumpseller = JumpsellerSender::new(&receiver.url, "tienda", "hooks")
        .retry(quick.clone())
        .send("order_paid", &order)
        .await;
    assert!(jumpseller.delivered);
    let received = receiver.received();
    assert_eq!(
        header(&received[0], "jumpseller-triggered-at"),
        header(&received[1], "jumpseller-triggered-at")
    );

    let receiver = Recorder::start(vec![(500, Duration::from_millis(1_100)), (200, AT_ONCE)]).await;
    let custom = CustomSender::new(
        &receiver.url,
        "home",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .expect("a secret")
    .retry(quick)
    .send("order.created", &order)
    .await
    .expect("renders");
    assert!(custom.delivered);
    let received = receiver.received();
    assert_eq!(
        header(&received[0], "webhook-id"),
        header(&received[1], "webhook-id")
    );
    assert_ne!(
        header(&received[0], "webhook-timestamp"),
        header(&received[1], "webhook-timestamp"),
        "each attempt is signed at its own time"
    );
}

#[tokio::test]
async fn the_proxy_fails_without_forwarding_or_forwards_and_answers_late() {
    let receiver = Recorder::start(vec![(200, AT_ONCE)]).await;
    let proxy = Proxy::start(&receiver.url).await.expect("a proxy");
    let sender = ShopifySender::new(proxy.url(), "shop", "secret").retry(fast_shopify());
    let order = Generator::new(6).order();

    proxy.faults().fail_next(2, 502);
    let report = sender.send("orders/create", &order).await;
    assert_eq!(report.statuses(), [Some(502), Some(502), Some(200)]);
    assert_eq!(
        receiver.received().len(),
        1,
        "failed requests never reach the receiver"
    );

    proxy.faults().slow_next(1, Duration::from_millis(600));
    let report = sender.send("orders/updated", &order).await;
    assert_eq!(report.attempts[0].outcome, Outcome::TimedOut);
    assert!(report.delivered);
    assert_eq!(
        receiver.received().len(),
        3,
        "the slow request reached the receiver, and so did the re-send"
    );
}
