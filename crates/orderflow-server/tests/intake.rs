//! Storefront intake over real HTTP: signed webhooks in, the inbox, orders made exactly once,
//! rules, and forwards to a courier system (a sink this test runs on 127.0.0.1).

mod support;

use std::time::Duration;

use orderflow_connectors::signature::{base64_hmac_sha256, standard};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

const SHOPIFY_SECRET: &str = "shpss_0123456789abcdef";
const DESTINATION_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../orderflow-connectors/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A courier's client store on Shopify: orders are recorded, not reserved, and forwarded.
async fn courier_store(app: &TestApp, store_id: &str, sink: &Sink, rules: Value) {
    app.create_store(json!({
        "store_id": store_id,
        "name": "Client shop",
        "platform": "shopify",
        "webhook_secret": SHOPIFY_SECRET,
        "manage_stock": false,
        "rules": rules,
        "destination": {"url": sink.url, "secret": DESTINATION_SECRET},
    }))
    .await;
}

fn shopify_headers(body: &[u8], event_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        (
            "x-shopify-hmac-sha256",
            base64_hmac_sha256(SHOPIFY_SECRET.as_bytes(), body),
        ),
        ("x-shopify-topic", "orders/create".into()),
        ("x-shopify-shop-domain", "client.myshopify.com".into()),
        ("x-shopify-api-version", "2024-01".into()),
        (
            "x-shopify-webhook-id",
            format!("wh-{}", rand::random::<u32>()),
        ),
        ("x-shopify-event-id", event_id.into()),
    ]
}

async fn send_shopify(app: &TestApp, store_id: &str, body: &[u8], event_id: &str) -> Reply {
    app.post_raw(
        &format!("/webhooks/shopify/{store_id}"),
        &shopify_headers(body, event_id),
        body.to_vec(),
    )
    .await
}

fn settled(delivery: &Value) -> bool {
    !matches!(delivery["status"].as_str(), Some("received") | None)
}

async fn signed_shopify_order_becomes_one_order_forwarded_signed(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(&app, "client", &sink, json!([])).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");

    let reply = send_shopify(&app, "client", &body, "evt-450789469").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "received");
    let delivery_id = reply.body["delivery_id"]
        .as_str()
        .expect("a delivery id")
        .to_owned();

    let delivery = app
        .eventually(&format!("/inbox/{delivery_id}"), |d| {
            d["status"] == "forwarded"
        })
        .await;
    let order_id = delivery["order_id"].as_str().expect("an order").to_owned();
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.body);
    assert_eq!(order.body["order_status"], "confirmed");
    assert_eq!(
        order.body["products"].as_array().map(|lines| lines
            .iter()
            .map(|l| l["product_id"].clone())
            .collect::<Vec<_>>()),
        Some(vec![
            json!("IPOD2008GREEN"),
            json!("IPOD2008RED"),
            json!("IPOD2008BLACK")
        ])
    );

    let requests = sink.requests();
    assert_eq!(requests.len(), 1);
    let forwarded = &requests[0];
    let secret = standard::Secret::parse(DESTINATION_SECRET).expect("secret");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    standard::verify(
        &[secret],
        standard::Headers {
            id: forwarded.header("webhook-id"),
            timestamp: forwarded.header("webhook-timestamp"),
            signature: forwarded.header("webhook-signature"),
        },
        &forwarded.body,
        now,
    )
    .expect("the forward is signed per Standard Webhooks");
    let payload: Value = serde_json::from_slice(&forwarded.body).expect("JSON");
    assert_eq!(payload["type"], "order.created");
    assert_eq!(payload["data"]["order_id"], order_id.as_str());
    assert_eq!(payload["data"]["external_id"], "450789469");
    assert_eq!(payload["data"]["shipping_address"]["region"], "KY");
    assert_eq!(order.body["source"]["platform"], "shopify");
    assert_eq!(order.body["source"]["external_id"], "450789469");
    assert_eq!(order.body["source"]["delivery_id"], delivery_id.as_str());
    app.shutdown().await;
}

on_both_backends!(signed_shopify_order_becomes_one_order_forwarded_signed);

/// The intake worker's and forwarder's poll on the worker node below: far longer than the
/// test waits, so a delivery taken in and forwarded was announced.
const LONG_POLL: Duration = Duration::from_secs(30);

async fn a_webhook_received_by_an_api_node_is_taken_in_and_forwarded_by_a_worker_node_at_once(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_api_and_worker(backend, LONG_POLL).await else {
        return;
    };
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(&app, "client", &sink, json!([])).await;
    // The worker node's listener connects in the background; a first delivery may be found
    // by the catch-up its connection wakes rather than by its announcement, so it is not
    // the one measured.
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let reply = send_shopify(&app, "client", &body, "evt-warm-up").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.requests().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first delivery was never forwarded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Another order, so that it is forwarded too.
    let mut other: Value = serde_json::from_slice(&body).expect("the fixture is JSON");
    other["order"]["id"] = json!(450789470_u64);
    let other = serde_json::to_vec(&other).expect("JSON");
    let sent = tokio::time::Instant::now();
    let reply = send_shopify(&app, "client", &other, "evt-measured").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    while sink.requests().len() < 2 {
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "the worker node took the delivery in and forwarded it only at its poll: {}",
            app.get("/inbox?store_id=client", ADMIN).await.body
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = sent.elapsed();
    assert!(
        took < Duration::from_millis(1_000),
        "taken in and forwarded {took:?} after the webhook, with the worker polling every {LONG_POLL:?}"
    );
    app.shutdown().await;
}

on_both_backends!(
    a_webhook_received_by_an_api_node_is_taken_in_and_forwarded_by_a_worker_node_at_once,
    multi_thread
);

async fn ten_concurrent_resends_make_one_order_and_one_forward(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(&app, "client", &sink, json!([])).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let app = std::sync::Arc::new(app);
    let sends: Vec<_> = (0..10)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { send_shopify(&app, "client", &body, "evt-same").await })
        })
        .collect();
    let mut statuses = Vec::new();
    for send in sends {
        let reply = send.await.expect("task");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        statuses.push(reply.body["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "received").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| *s == "duplicate").count(), 9);

    let inbox = app
        .eventually("/inbox?store_id=client", |page| {
            page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|d| d["status"] == "forwarded"))
        })
        .await;
    let items = inbox["items"].as_array().expect("items");
    assert_eq!(items.len(), 10);
    assert_eq!(
        items.iter().filter(|d| d["status"] == "duplicate").count(),
        9
    );
    let orders = app.get("/orders?store_id=client", ADMIN).await;
    assert_eq!(
        orders.body["orders"].as_array().map(Vec::len),
        Some(1),
        "{}",
        orders.body
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sink.requests().len(), 1, "one forward");
    if let Ok(app) = std::sync::Arc::try_unwrap(app) {
        app.shutdown().await;
    }
}

on_both_backends!(ten_concurrent_resends_make_one_order_and_one_forward);

#[tokio::test]
async fn forged_missing_or_wrong_secret_signatures_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(&app, "client", &sink, json!([])).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");

    let mut forged = shopify_headers(&body, "evt-1");
    forged[1].1 = base64_hmac_sha256(b"not the secret", &body);
    app.post_raw("/webhooks/shopify/client", &forged, body.clone())
        .await
        .assert_problem(401, "bad-signature");

    let mut tampered = body.clone();
    tampered[10] ^= 1;
    app.post_raw(
        "/webhooks/shopify/client",
        &shopify_headers(&body, "evt-2"),
        tampered,
    )
    .await
    .assert_problem(401, "bad-signature");

    let unsigned: Vec<_> = shopify_headers(&body, "evt-3")
        .into_iter()
        .filter(|(name, _)| *name != "x-shopify-hmac-sha256")
        .collect();
    app.post_raw("/webhooks/shopify/client", &unsigned, body.clone())
        .await
        .assert_problem(401, "bad-signature");

    app.post_raw(
        "/webhooks/shopify/nobody",
        &shopify_headers(&body, "evt-4"),
        body.clone(),
    )
    .await
    .assert_problem(404, "not-found");
    app.post_raw(
        "/webhooks/woocommerce/client",
        &shopify_headers(&body, "evt-5"),
        body.clone(),
    )
    .await
    .assert_problem(404, "not-found");

    let huge = vec![b' '; 2 * 1024 * 1024];
    app.post_raw(
        "/webhooks/shopify/client",
        &shopify_headers(&huge, "evt-6"),
        huge,
    )
    .await
    .assert_problem(413, "payload-too-large");

    let inbox = app.get("/inbox", ADMIN).await;
    assert_eq!(inbox.body["items"], json!([]), "nothing stored");
    app.shutdown().await;
}

#[tokio::test]
async fn woocommerce_webhook_creation_ping_is_answered_without_a_signature() {
    let app = TestApp::spawn().await;
    app.create_store(json!({"store_id": "woo", "name": "Woo", "platform": "woocommerce", "webhook_secret": "wc_secret_1234"})).await;
    let ping = app
        .post_raw(
            "/webhooks/woocommerce/woo",
            &[("content-type", "application/x-www-form-urlencoded".into())],
            b"webhook_id=17".to_vec(),
        )
        .await;
    assert_eq!(ping.status, StatusCode::OK, "{}", ping.body);
    assert_eq!(ping.body["status"], "ping");
    app.shutdown().await;
}

#[tokio::test]
async fn a_failing_destination_is_retried_through_errors_throttling_and_timeouts_then_dead_lettered_and_replayed_once()
 {
    let app = TestApp::spawn().await;
    let sink = Sink::start(vec![
        Answer::Status(503),
        Answer::RetryAfter(429, "0"),
        Answer::Stall,
        Answer::Status(500),
    ])
    .await;
    courier_store(&app, "client", &sink, json!([])).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let reply = send_shopify(&app, "client", &body, "evt-retry").await;
    assert_eq!(reply.status, StatusCode::OK);

    let dead = app
        .eventually("/forwards?status=dead", |list| {
            list.as_array().is_some_and(|l| l.len() == 1)
        })
        .await;
    assert_eq!(dead[0]["attempts"], 4);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{dead}"
    );
    assert_eq!(sink.requests().len(), 4, "tried exactly max_attempts times");
    let webhook_ids: std::collections::HashSet<_> = sink
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(
        webhook_ids.len(),
        1,
        "every try carries the same webhook-id"
    );

    sink.answer(200);
    let retried = app
        .post("/forwards/retry?status=dead", ADMIN, json!(null))
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["retried"], 1);
    app.eventually("/forwards?status=delivered", |list| {
        list.as_array().is_some_and(|l| l.len() == 1)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let delivered = sink.requests().iter().filter(|r| r.answered == 200).count();
    assert_eq!(delivered, 1, "the replay delivered it once");
    app.shutdown().await;
}

#[tokio::test]
async fn a_rule_rejection_is_recorded_with_its_reason_and_previewed() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(
        &app,
        "client",
        &sink,
        json!([{"kind": "exclude_regions", "regions": ["KY"]}]),
    )
    .await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let reply = send_shopify(&app, "client", &body, "evt-rule").await;
    let delivery_id = reply.body["delivery_id"].as_str().expect("id").to_owned();
    let delivery = app
        .eventually(&format!("/inbox/{delivery_id}"), settled)
        .await;
    assert_eq!(delivery["status"], "rejected");
    assert_eq!(
        delivery["reason"],
        "exclude_regions: shipping region KY is excluded"
    );
    assert_eq!(app.order_count().await, 0);

    let preview = app
        .post(
            "/stores/client/rules/preview",
            ADMIN,
            json!({"rules": [{"kind": "split_packages", "max_items": 2}], "last": 10}),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["split"], 1, "{}", preview.body);
    assert_eq!(preview.body["rejected"], 0);
    let kept = app
        .post("/stores/client/rules/preview", ADMIN, json!({}))
        .await;
    assert_eq!(kept.body["rejected"], 1, "the store's own rules by default");

    let invalid = app
        .post(
            "/stores/client/rules/preview",
            ADMIN,
            json!({"rules": [{"kind": "split_packages", "max_items": 0}]}),
        )
        .await;
    invalid.assert_problem(400, "invalid-body");
    app.shutdown().await;
}

#[tokio::test]
async fn a_store_shows_its_secrets_masked_and_rotation_keeps_the_previous_secret() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(&app, "client", &sink, json!([])).await;
    let shown = app.get("/stores/client", ADMIN).await;
    assert_eq!(shown.body["webhook_secret"], "…cdef");
    assert_eq!(shown.body["destination"]["secret"], "…LaSw");
    assert!(!shown.body.to_string().contains(SHOPIFY_SECRET));

    let rotated = app
        .send(
            "PATCH",
            "/stores/client",
            Some(ADMIN),
            Some(json!({"webhook_secret": "shpss_fedcba9876543210"})),
            &[],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.body["previous_webhook_secret"], "…cdef");
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let old_signature = send_shopify(&app, "client", &body, "evt-old").await;
    assert_eq!(
        old_signature.status,
        StatusCode::OK,
        "the previous secret still verifies"
    );

    let ended = app
        .send(
            "PATCH",
            "/stores/client",
            Some(ADMIN),
            Some(json!({"previous_webhook_secret": null})),
            &[],
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    send_shopify(&app, "client", &body, "evt-after")
        .await
        .assert_problem(401, "bad-signature");

    let bad = app
        .send(
            "PATCH",
            "/stores/client",
            Some(ADMIN),
            Some(json!({"rules": [{"kind": "allow_regions", "regions": []}]})),
            &[],
        )
        .await;
    bad.assert_problem(400, "invalid-body");
    app.shutdown().await;
}

const WOO_SECRET: &str = "wc_secret_0123456789";

async fn send_woo(app: &TestApp, body: &[u8], topic: &str) -> Value {
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        (
            "x-wc-webhook-signature",
            base64_hmac_sha256(WOO_SECRET.as_bytes(), body),
        ),
        ("x-wc-webhook-topic", topic.to_owned()),
        ("x-wc-webhook-id", "31".to_owned()),
        ("x-wc-webhook-source", "https://shop.example/".to_owned()),
        (
            "x-wc-webhook-delivery-id",
            format!("{:x}", rand::random::<u64>()),
        ),
    ];
    let reply = app
        .post_raw("/webhooks/woocommerce/woo", &headers, body.to_vec())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let delivery_id = reply.body["delivery_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.eventually(&format!("/inbox/{delivery_id}"), settled)
        .await
}

#[tokio::test]
async fn a_stale_update_changes_nothing_and_a_platform_cancellation_cancels_the_order() {
    let app = TestApp::spawn().await;
    app.create_store(
        json!({"store_id": "woo", "name": "Woo", "platform": "woocommerce",
                   "webhook_secret": WOO_SECRET, "manage_stock": false}),
    )
    .await;
    let processing = fixture("woocommerce/order_727_retrieve.json");
    let completed = fixture("woocommerce/order_727_update_completed.json");

    let created = send_woo(&app, &processing, "order.created").await;
    assert_eq!(created["status"], "accepted", "{created}");
    let order_id = created["order_id"].as_str().expect("an order").to_owned();

    let updated = send_woo(&app, &completed, "order.updated").await;
    assert_eq!(updated["status"], "accepted", "{updated}");
    assert_eq!(updated["order_id"], order_id.as_str());
    assert_eq!(updated["reason"], "updated to completed on woocommerce");

    let late = send_woo(&app, &processing, "order.updated").await;
    assert_eq!(late["status"], "stale", "{late}");

    let mut cancelled: Value = serde_json::from_slice(&completed).expect("JSON");
    cancelled["status"] = json!("cancelled");
    cancelled["date_modified_gmt"] = json!("2030-01-01T00:00:00");
    let cancelled = serde_json::to_vec(&cancelled).expect("JSON");
    let cancellation = send_woo(&app, &cancelled, "order.updated").await;
    assert_eq!(cancellation["status"], "accepted", "{cancellation}");
    assert_eq!(
        cancellation["reason"],
        "cancelled: updated to cancelled on woocommerce"
    );
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await;
    assert_eq!(order.body["order_status"], "cancelled", "{}", order.body);
    assert_eq!(app.order_count().await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_signed_payload_that_cannot_be_parsed_is_kept_and_marked_failed() {
    let app = TestApp::spawn().await;
    app.create_store(json!({"store_id": "woo", "name": "Woo", "platform": "woocommerce", "webhook_secret": WOO_SECRET})).await;
    let delivery = send_woo(
        &app,
        br#"{"id": 1, "line_items": "not a list"}"#,
        "order.created",
    )
    .await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert!(
        delivery["reason"]
            .as_str()
            .is_some_and(|r| r.contains("line_items")),
        "{delivery}"
    );
    assert_eq!(delivery["body"], r#"{"id": 1, "line_items": "not a list"}"#);
    app.shutdown().await;
}

#[tokio::test]
async fn a_jumpseller_cancellation_after_payment_is_ordered_by_when_it_fired() {
    const SECRET: &str = "jumpseller_hooks_token";
    let app = TestApp::spawn().await;
    app.create_store(
        json!({"store_id": "js", "name": "Tienda", "platform": "jumpseller",
                   "webhook_secret": SECRET, "manage_stock": false}),
    )
    .await;
    let paid = fixture("jumpseller/webhook_order_paid_body_doc_example.json");
    let send = |body: Vec<u8>, event: &'static str, fired: &'static str| {
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            (
                "jumpseller-hmac-sha256",
                base64_hmac_sha256(SECRET.as_bytes(), &body),
            ),
            ("jumpseller-event", event.to_owned()),
            ("jumpseller-store-code", "tienda".to_owned()),
            ("jumpseller-triggered-at", fired.to_owned()),
        ];
        let app = &app;
        async move {
            let reply = app
                .post_raw("/webhooks/jumpseller/js", &headers, body)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let id = reply.body["delivery_id"]
                .as_str()
                .expect("an id")
                .to_owned();
            app.eventually(&format!("/inbox/{id}"), settled).await
        }
    };
    let accepted = send(paid.clone(), "order_paid", "2025-01-01 10:18:51.829 UTC").await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("an order").to_owned();

    let mut cancelled: Value = serde_json::from_slice(&paid).expect("JSON");
    cancelled["order"]["status"] = json!("Canceled");
    cancelled["order"]["status_enum"] = json!("canceled");
    let cancelled = serde_json::to_vec(&cancelled).expect("JSON");
    let cancellation = send(cancelled, "order_canceled", "2025-01-02 09:00:00.000 UTC").await;
    assert_eq!(cancellation["status"], "accepted", "{cancellation}");
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await;
    assert_eq!(order.body["order_status"], "cancelled", "{}", order.body);
    app.shutdown().await;
}

/// The store's inbox once `count` deliveries are in and none waits for the worker.
async fn settled_inbox(app: &TestApp, store_id: &str, count: usize) -> Vec<Value> {
    let page = app
        .eventually(&format!("/inbox?store_id={store_id}"), |page| {
            page["items"]
                .as_array()
                .is_some_and(|items| items.len() == count && items.iter().all(settled))
        })
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_preview_judges_a_vtex_hook_by_the_order_fetched_from_the_oms() {
    use orderflow_sim::{Generator, Shop, SimStatus};
    const SECRET: &str = "vtex-hook-secret";
    let app = TestApp::spawn().await;
    let mut order = Generator::new(31).order();
    order.status = SimStatus::Paid;
    let region = order.address.region_code.clone();
    let oms =
        orderflow_sim::vtex::serve_oms(Shop::with_orders([order.clone()]), "appkey", "apptoken")
            .await
            .expect("the OMS sandbox serves");
    app.create_store(json!({"store_id": "lux", "name": "Lux", "platform": "vtex",
                   "webhook_secret": SECRET, "manage_stock": false,
                   "api": {"base_url": oms.url(), "key": "appkey", "token": "apptoken"}}))
        .await;
    let hooks = orderflow_sim::vtex::VtexHookSender::new(&app.base, "lux", SECRET);
    assert!(hooks.send(&order).await.delivered);
    let inbox = settled_inbox(&app, "lux", 1).await;
    assert_eq!(inbox[0]["status"], "accepted", "{}", inbox[0]);
    let fetches = || {
        oms.requests()
            .iter()
            .filter(|r| r.path().starts_with("/api/oms/pvt/orders/"))
            .count()
    };
    assert_eq!(fetches(), 1, "the worker fetched the order");

    // The stored body is only the hook; the rule can only be judged on the order it names.
    let preview = app
        .post(
            "/stores/lux/rules/preview",
            ADMIN,
            json!({"rules": [{"kind": "exclude_regions", "regions": [region]}]}),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["unreadable"], 0, "{}", preview.body);
    assert_eq!(preview.body["rejected"], 1, "{}", preview.body);
    let judged = &preview.body["deliveries"][0];
    assert_eq!(judged["decision"], "reject");
    assert_eq!(
        judged["external_id"],
        orderflow_sim::vtex::order_id(&order),
        "{judged}"
    );
    assert_eq!(
        judged["reason"],
        format!("exclude_regions: shipping region {region} is excluded")
    );
    assert_eq!(fetches(), 2, "the preview fetched it like the worker");
    app.shutdown().await;
}

#[tokio::test]
async fn the_preview_reads_a_jumpseller_body_with_its_triggered_at_header() {
    const SECRET: &str = "jumpseller_hooks_token";
    let app = TestApp::spawn().await;
    app.create_store(
        json!({"store_id": "js", "name": "Tienda", "platform": "jumpseller",
                   "webhook_secret": SECRET, "manage_stock": false}),
    )
    .await;
    // The documented body has no creation time; the header says when the event fired.
    let body = fixture("jumpseller/webhook_order_paid_body_doc_example.json");
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        (
            "jumpseller-hmac-sha256",
            base64_hmac_sha256(SECRET.as_bytes(), &body),
        ),
        ("jumpseller-event", "order_paid".to_owned()),
        ("jumpseller-store-code", "tienda".to_owned()),
        (
            "jumpseller-triggered-at",
            "2025-01-01 10:18:51.829 UTC".to_owned(),
        ),
    ];
    let reply = app
        .post_raw("/webhooks/jumpseller/js", &headers, body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let inbox = settled_inbox(&app, "js", 1).await;
    assert_eq!(inbox[0]["status"], "accepted", "{}", inbox[0]);

    let preview = app
        .post("/stores/js/rules/preview", ADMIN, json!({"rules": []}))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["unreadable"], 0, "{}", preview.body);
    assert_eq!(preview.body["accepted"], 1, "{}", preview.body);
    app.shutdown().await;
}

/// Accepted, and perhaps forwarded already (the sink answers at once).
fn taken_in(delivery: &Value) -> bool {
    matches!(delivery["status"].as_str(), Some("accepted" | "forwarded"))
}

/// A Shopify store with an `orders/create` already taken in as an order; returns its id.
async fn shopify_order_taken_in(app: &TestApp, sink: &Sink) -> String {
    courier_store(app, "client", sink, json!([])).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let reply = send_shopify(app, "client", &body, "evt-create").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = reply.body["delivery_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let delivery = app.eventually(&format!("/inbox/{id}"), settled).await;
    assert!(taken_in(&delivery), "{delivery}");
    delivery["order_id"].as_str().expect("an order").to_owned()
}

/// Sends `body` as Shopify `topic` and waits for its fate.
async fn shopify_topic(app: &TestApp, body: &[u8], topic: &str, event_id: &str) -> Value {
    let headers: Vec<(&'static str, String)> = shopify_headers(body, event_id)
        .into_iter()
        .map(|(name, value)| match name {
            "x-shopify-topic" => (name, topic.to_owned()),
            _ => (name, value),
        })
        .collect();
    let reply = app
        .post_raw("/webhooks/shopify/client", &headers, body.to_vec())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = reply.body["delivery_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.eventually(&format!("/inbox/{id}"), settled).await
}

#[tokio::test]
async fn a_shopify_orders_cancelled_webhook_cancels_the_order() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    let order_id = shopify_order_taken_in(&app, &sink).await;

    let mut cancelled: Value =
        serde_json::from_slice(&fixture("shopify/order_450789469_rest_fixture.json"))
            .expect("JSON");
    cancelled["order"]["cancelled_at"] = json!("2030-01-01T10:00:00-05:00");
    cancelled["order"]["cancel_reason"] = json!("customer");
    cancelled["order"]["updated_at"] = json!("2030-01-01T10:00:00-05:00");
    let cancelled = serde_json::to_vec(&cancelled).expect("JSON");
    let delivery = shopify_topic(&app, &cancelled, "orders/cancelled", "evt-cancel").await;
    assert_eq!(delivery["status"], "accepted", "{delivery}");
    assert_eq!(delivery["order_id"], order_id.as_str());
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await;
    assert_eq!(order.body["order_status"], "cancelled", "{}", order.body);
    app.shutdown().await;
}

async fn a_shopify_orders_delete_webhook_cancels_the_order_and_releases_its_stock(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.create_store(
        json!({"store_id": "client", "name": "Own shop", "platform": "shopify",
                   "webhook_secret": SHOPIFY_SECRET, "manage_stock": true}),
    )
    .await;
    const SKUS: [&str; 3] = ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"];
    for sku in SKUS {
        let product = json!({"name": sku, "category": "audio", "price": 19900, "currency": "USD", "on_hand": 5});
        app.put_product_in("client", sku, product).await;
    }
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let created = shopify_topic(&app, &body, "orders/create", "evt-create").await;
    assert_eq!(created["status"], "accepted", "{created}");
    let order_id = created["order_id"].as_str().expect("an order").to_owned();
    let stock = async || {
        let mut levels = Vec::new();
        for sku in SKUS {
            levels.push(app.stock_in("client", sku).await);
        }
        levels
    };
    assert_eq!(stock().await, [(5, 1); 3], "one of each reserved");

    let deleted = shopify_topic(&app, br#"{"id":450789469}"#, "orders/delete", "evt-del").await;
    assert_eq!(deleted["status"], "accepted", "{deleted}");
    assert_eq!(deleted["reason"], "cancelled: deleted on shopify");
    assert_eq!(deleted["order_id"], order_id.as_str());
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await;
    assert_eq!(order.body["order_status"], "cancelled", "{}", order.body);
    assert_eq!(stock().await, [(5, 0); 3], "all released");

    // Deleted on Shopify before we ever held it: recorded as nothing to do, not a failure.
    let unknown = shopify_topic(&app, br#"{"id":999000111}"#, "orders/delete", "evt-del-2").await;
    assert_eq!(unknown["status"], "rejected", "{unknown}");
    assert_eq!(unknown["reason"], "deleted on shopify before intake");
    assert!(unknown["order_id"].is_null(), "{unknown}");
    assert_eq!(app.order_count().await, 1, "the deletion created nothing");
    app.shutdown().await;
}

on_both_backends!(a_shopify_orders_delete_webhook_cancels_the_order_and_releases_its_stock);

#[tokio::test]
async fn a_shopify_events_webhook_with_unprefixed_headers_is_taken_in() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    courier_store(&app, "client", &sink, json!([])).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        (
            "shopify-hmac-sha256",
            base64_hmac_sha256(SHOPIFY_SECRET.as_bytes(), &body),
        ),
        ("shopify-topic", "orders/create".to_owned()),
        ("shopify-shop-domain", "client.myshopify.com".to_owned()),
        ("shopify-event-id", "evt-events-1".to_owned()),
        ("shopify-triggered-at", "2024-01-01T10:00:00Z".to_owned()),
    ];
    let first = app
        .post_raw("/webhooks/shopify/client", &headers, body.clone())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["status"], "received");
    let again = app
        .post_raw("/webhooks/shopify/client", &headers, body)
        .await;
    assert_eq!(
        again.body["status"], "duplicate",
        "keyed by shopify-event-id"
    );
    let id = first.body["delivery_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let delivery = app.eventually(&format!("/inbox/{id}"), settled).await;
    assert!(taken_in(&delivery), "{delivery}");
    assert_eq!(delivery["topic"], "orders/create");
    assert_eq!(delivery["event_key"], "event:evt-events-1");
    let kept = delivery["headers"].to_string();
    assert!(kept.contains("shopify-event-id"), "{kept}");
    app.shutdown().await;
}
