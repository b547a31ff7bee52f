//! The order pipeline end to end, over real HTTP and SMTP: orders placed through the API or
//! taken in from a storefront run through stock, payment, documents, shipment, messages and
//! the forward to the store's courier system on their own.

mod support;

use std::time::Duration;

use orderflow_connectors::signature::{base64_hmac_sha256, standard};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{ADMIN, Answer, Backend, Sink, TestApp, on_both_backends};

const CUSTOMER: &str = "ana@example.com";

fn order_body(lines: &[(&str, i64)], payment_method: &str) -> Value {
    let products: Vec<Value> = lines
        .iter()
        .map(|(p, n)| json!({"product_id": p, "item_count": n}))
        .collect();
    json!({
        "products": products,
        "allow_partial": true,
        "payment_method": payment_method,
        "customer": {"name": "Ana Rojas", "email": CUSTOMER},
        "shipping_address": {
            "name": "Ana Rojas", "line1": "Av. Providencia 1208", "city": "Santiago",
            "region": "RM", "postal_code": "7500000", "country": "CL"
        }
    })
}

async fn place(app: &TestApp, lines: &[(&str, i64)], payment_method: &str) -> String {
    let reply = app
        .post("/orders", ADMIN, order_body(lines, payment_method))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["order_id"]
        .as_str()
        .expect("order id")
        .to_owned()
}

async fn run_of(app: &TestApp, order_id: &str) -> Value {
    let runs = app.get(&format!("/runs?order_id={order_id}"), ADMIN).await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.body);
    let run_id = runs.body["runs"][0]["run_id"]
        .as_str()
        .expect("the order has a run");
    app.get(&format!("/runs/{run_id}"), ADMIN).await.body
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

async fn document(app: &TestApp, order_id: &str, kind: &str) -> (String, Vec<u8>) {
    let response = app
        .client
        .get(format!("{}/orders/{order_id}/documents/{kind}", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("document request");
    assert_eq!(response.status(), StatusCode::OK, "{kind}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, response.bytes().await.expect("body").to_vec())
}

on_both_backends!(
    an_api_order_reaches_shipped_with_label_slip_and_two_emails,
    multi_thread
);
async fn an_api_order_reaches_shipped_with_label_slip_and_two_emails(backend: Backend) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("mug", 10).await;
    app.put_product("tee", 10).await;
    let order_id = place(&app, &[("mug", 2), ("tee", 1)], "pm_card_visa").await;

    let order = app
        .eventually(&format!("/orders/{order_id}"), |o| {
            o["order_status"] == "shipped"
        })
        .await;
    let timeline: Vec<&str> = order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        timeline,
        ["pending", "confirmed", "paid", "fulfilling", "shipped"]
    );
    // Shipped units left the warehouse: no longer reserved, no longer on hand.
    assert_eq!(app.stock("mug").await, (8, 0));

    let (kind, slip) = document(&app, &order_id, "packing_slip").await;
    assert_eq!(kind, "application/pdf");
    assert!(slip.starts_with(b"%PDF-"));
    let (_, label) = document(&app, &order_id, "label").await;
    assert!(label.starts_with(b"%PDF-"));
    let (_, zpl) = document(&app, &order_id, "label_zpl").await;
    let zpl = String::from_utf8(zpl).expect("ZPL is text");
    assert!(
        zpl.starts_with("^XA") && zpl.trim_end().ends_with("^XZ"),
        "{zpl}"
    );

    let providers = app.providers.as_ref().expect("pipeline providers");
    let mails = providers.mail.wait_for(2, Duration::from_secs(10)).await;
    let mut subjects: Vec<String> = mails.iter().filter_map(|m| m.subject.clone()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            format!("Order {order_id} confirmed"),
            format!("Order {order_id} shipped")
        ]
    );
    assert!(mails.iter().all(|m| m.rcpt_to == [CUSTOMER]));

    let run = app
        .eventually(&format!("/runs?order_id={order_id}"), |page| {
            page["runs"][0]["status"] == "succeeded"
        })
        .await;
    assert_eq!(run["runs"][0]["workflow"], "order");
    let run = run_of(&app, &order_id).await;
    let tracking = step(&run, "create_shipment")["output"]["tracking_code"]
        .as_str()
        .expect("a tracking code");
    assert!(
        zpl.contains(tracking),
        "the label carries the tracking code"
    );
    assert_eq!(step(&run, "compensate")["status"], "skipped");
    assert_eq!(
        step(&run, "forward_to_courier")["output"]["forwarded"],
        false,
        "the default store has no courier to forward to"
    );
    assert!(
        providers
            .payments
            .effects()
            .values()
            .all(|&acted| acted == 1),
        "each payment key acted once: {:?}",
        providers.payments.effects()
    );
    app.shutdown().await;
}

on_both_backends!(
    a_backordered_order_waits_for_stock_then_completes,
    multi_thread
);
async fn a_backordered_order_waits_for_stock_then_completes(backend: Backend) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("lamp", 1).await;
    let order_id = place(&app, &[("lamp", 3)], "pm_card_visa").await;
    let run = app
        .eventually(&format!("/runs?order_id={order_id}"), |page| {
            page["runs"][0]["status"] == "running"
        })
        .await;
    let run_id = run["runs"][0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = app.get(&format!("/runs/{run_id}"), ADMIN).await.body;
    assert_ne!(step(&waiting, "reserve_stock")["status"], "succeeded");
    assert_eq!(step(&waiting, "authorize_payment")["status"], "waiting");
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await.body;
    assert_eq!(order["order_status"], "backordered");

    let restocked = app
        .post("/products/lamp/stock", ADMIN, json!({"delta": 5}))
        .await;
    assert_eq!(restocked.status, StatusCode::OK, "{}", restocked.body);
    app.eventually(&format!("/orders/{order_id}"), |o| {
        o["order_status"] == "shipped"
    })
    .await;
    assert_eq!(app.stock("lamp").await, (3, 0));
    app.shutdown().await;
}

/// The backorder sensor's poke interval (and the worker's poll) in the test below: far longer
/// than the test waits, so an order that ships was woken by its restock.
const LONG_POKE: Duration = Duration::from_secs(30);

/// Waits until the order's `reserve_stock` sensor has poked once and sleeps until its next.
async fn waiting_for_stock(app: &TestApp, order_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let runs = app.get(&format!("/runs?order_id={order_id}"), ADMIN).await;
        if runs.body["runs"][0]["run_id"].is_string() {
            let run = run_of(app, order_id).await;
            let sensor = step(&run, "reserve_stock");
            if sensor["status"] == "ready" && sensor["attempts"].as_u64() >= Some(1) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {order_id} never waited for stock"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How long the order took to ship after `since`, failing past ten seconds (a third of the
/// sensor's poke interval).
async fn shipped_within(app: &TestApp, order_id: &str, since: tokio::time::Instant) -> Duration {
    app.eventually(&format!("/orders/{order_id}"), |o| {
        o["order_status"] == "shipped"
    })
    .await;
    since.elapsed()
}

on_both_backends!(
    a_restock_wakes_backordered_orders_first_come_first_served_without_waiting_for_the_next_poke,
    multi_thread
);
async fn a_restock_wakes_backordered_orders_first_come_first_served_without_waiting_for_the_next_poke(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_idle_pipeline(backend, LONG_POKE).await else {
        return;
    };
    app.put_product("lamp", 0).await;
    app.put_product("desk", 0).await;
    let older = place(&app, &[("lamp", 2)], "pm_card_visa").await;
    waiting_for_stock(&app, &older).await;
    let younger = place(&app, &[("lamp", 1)], "pm_card_visa").await;
    waiting_for_stock(&app, &younger).await;
    let desk = place(&app, &[("desk", 1)], "pm_card_visa").await;
    waiting_for_stock(&app, &desk).await;

    // POST /products/{id}/stock: both lamp sensors poke now; the two lamps are the older
    // order's, whichever pokes first.
    let restocked = app
        .post("/products/lamp/stock", ADMIN, json!({"delta": 2}))
        .await;
    assert_eq!(restocked.status, StatusCode::OK, "{}", restocked.body);
    let took = shipped_within(&app, &older, tokio::time::Instant::now()).await;
    assert!(
        took < LONG_POKE / 3,
        "the older order shipped after {took:?}"
    );
    let younger_now = app.get(&format!("/orders/{younger}"), ADMIN).await.body;
    assert_eq!(
        younger_now["order_status"], "backordered",
        "first come, first served: the younger order waits for the next lamp"
    );

    // PUT /products/{id} raising on_hand: the younger order's sensor pokes now.
    let since = tokio::time::Instant::now();
    app.put_product("lamp", 1).await;
    let took = shipped_within(&app, &younger, since).await;
    assert!(
        took < LONG_POKE / 3,
        "the younger order shipped after {took:?}"
    );

    // A product import raising on_hand, as `orderflow import products` makes it.
    let desk_now = app.get("/products/desk", ADMIN).await.body;
    let store_id: orderflow_domain::StoreId = desk_now["store_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the product's store");
    let since = tokio::time::Instant::now();
    app.store
        .import_products(
            &store_id,
            vec![orderflow_store::ProductInput {
                product_id: "desk".parse().expect("a product id"),
                name: "Desk".into(),
                category: None,
                price_minor: 1250,
                currency: "EUR".parse().expect("a currency"),
                on_hand: 1,
                now: time::OffsetDateTime::now_utc(),
            }],
        )
        .await
        .expect("imported");
    let took = shipped_within(&app, &desk, since).await;
    assert!(
        took < LONG_POKE / 3,
        "the desk order shipped after {took:?}"
    );
    assert_eq!(app.stock("lamp").await, (0, 0));
    app.shutdown().await;
}

on_both_backends!(
    a_cancelled_order_hands_its_units_to_a_waiting_order_without_waiting_for_the_next_poke,
    multi_thread
);
async fn a_cancelled_order_hands_its_units_to_a_waiting_order_without_waiting_for_the_next_poke(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_idle_pipeline(backend, LONG_POKE).await else {
        return;
    };
    app.put_product("lamp", 1).await;
    // The older order holds the one lamp and waits for a second; the younger waits for one.
    let older = place(&app, &[("lamp", 2)], "pm_card_visa").await;
    waiting_for_stock(&app, &older).await;
    let younger = place(&app, &[("lamp", 1)], "pm_card_visa").await;
    waiting_for_stock(&app, &younger).await;
    assert_eq!(app.stock("lamp").await, (1, 1));

    let since = tokio::time::Instant::now();
    let cancelled = app
        .send(
            "DELETE",
            &format!("/orders/{older}"),
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let took = shipped_within(&app, &younger, since).await;
    assert!(
        took < LONG_POKE / 3,
        "the younger order shipped {took:?} after the older one was cancelled"
    );
    assert_eq!(app.stock("lamp").await, (0, 0));
    app.shutdown().await;
}

on_both_backends!(
    an_edit_that_gives_units_back_hands_them_to_a_waiting_order_at_once,
    multi_thread
);
async fn an_edit_that_gives_units_back_hands_them_to_a_waiting_order_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with_idle_pipeline(backend, LONG_POKE).await else {
        return;
    };
    app.put_product("lamp", 2).await;
    // The older order holds both lamps and waits for a third; the younger waits for one.
    let older = place(&app, &[("lamp", 3)], "pm_card_visa").await;
    waiting_for_stock(&app, &older).await;
    let younger = place(&app, &[("lamp", 1)], "pm_card_visa").await;
    waiting_for_stock(&app, &younger).await;
    assert_eq!(app.stock("lamp").await, (2, 2));

    let since = tokio::time::Instant::now();
    let edited = app
        .send(
            "PATCH",
            &format!("/orders/{older}"),
            Some(ADMIN),
            Some(json!({"products": [{"product_id": "lamp", "item_count": 1}]})),
            &[],
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let took = shipped_within(&app, &younger, since).await;
    assert!(
        took < LONG_POKE / 3,
        "the younger order shipped {took:?} after the older one gave a lamp back"
    );
    shipped_within(&app, &older, since).await;
    assert_eq!(app.stock("lamp").await, (0, 0));
    app.shutdown().await;
}

on_both_backends!(
    a_declined_payment_releases_the_stock_and_tells_the_customer,
    multi_thread
);
async fn a_declined_payment_releases_the_stock_and_tells_the_customer(backend: Backend) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("mug", 5).await;
    let order_id = place(&app, &[("mug", 2)], "pm_card_chargeDeclined").await;

    app.eventually(&format!("/orders/{order_id}"), |o| {
        o["order_status"] == "cancelled"
    })
    .await;
    assert_eq!(
        app.stock("mug").await,
        (5, 0),
        "the reservation was released"
    );
    let run = app
        .eventually(&format!("/runs?order_id={order_id}"), |page| {
            page["runs"][0]["status"] == "failed"
        })
        .await;
    assert_eq!(run["runs"][0]["status"], "failed");
    let run = run_of(&app, &order_id).await;
    assert_eq!(step(&run, "authorize_payment")["status"], "failed");
    assert_eq!(
        step(&run, "authorize_payment")["attempts"],
        1,
        "a decline is not retried"
    );
    assert_eq!(step(&run, "create_shipment")["status"], "upstream_failed");
    assert_eq!(step(&run, "compensate")["status"], "succeeded");

    let providers = app.providers.as_ref().expect("pipeline providers");
    let mails = providers.mail.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "only the cancellation, no confirmation");
    assert_eq!(
        mails[0].subject.as_deref(),
        Some(format!("Order {order_id} cancelled").as_str())
    );
    let alerts = providers.slack.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        alerts.iter().any(|a| a["text"]
            .as_str()
            .unwrap_or_default()
            .contains("authorize_payment")),
        "operations were alerted: {alerts:?}"
    );
    app.shutdown().await;
}

on_both_backends!(
    cancelling_a_waiting_order_cancels_its_run_and_compensates,
    multi_thread
);
async fn cancelling_a_waiting_order_cancels_its_run_and_compensates(backend: Backend) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("lamp", 0).await;
    let order_id = place(&app, &[("lamp", 1)], "pm_card_visa").await;
    app.eventually(&format!("/runs?order_id={order_id}"), |page| {
        page["runs"][0]["status"] == "running"
    })
    .await;
    let cancelled = app
        .send(
            "DELETE",
            &format!("/orders/{order_id}"),
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let run = app
        .eventually(&format!("/runs?order_id={order_id}"), |page| {
            page["runs"][0]["status"] == "cancelled" && page["runs"][0]["finished_at"].is_string()
        })
        .await;
    let run_id = run["runs"][0]["run_id"].as_str().expect("run id");
    let run = app.get(&format!("/runs/{run_id}"), ADMIN).await.body;
    assert_eq!(step(&run, "authorize_payment")["status"], "cancelled");
    assert_eq!(step(&run, "compensate")["status"], "succeeded");
    let again = app
        .post(
            &format!("/runs/{run_id}/steps/authorize_payment/retry"),
            ADMIN,
            json!({}),
        )
        .await;
    again.assert_problem(409, "conflict");
    app.shutdown().await;
}

const SHOPIFY_SECRET: &str = "shpss_0123456789abcdef";
const DESTINATION_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../orderflow-connectors/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A Shopify store; `manage_stock` false is a courier's client store, whose orders reserve
/// nothing here.
async fn shopify_store(app: &TestApp, store_id: &str, manage_stock: bool, sink: Option<&Sink>) {
    let mut body = json!({
        "store_id": store_id,
        "name": "Shopify shop",
        "platform": "shopify",
        "webhook_secret": SHOPIFY_SECRET,
        "manage_stock": manage_stock,
    });
    if let Some(sink) = sink {
        body["destination"] = json!({"url": sink.url, "secret": DESTINATION_SECRET});
    }
    let reply = app.post("/stores", ADMIN, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

/// Sends a signed Shopify webhook and returns the delivery once the intake worker settled it.
async fn send_shopify(app: &TestApp, store_id: &str, body: &[u8], topic: &str) -> Value {
    let headers = vec![
        ("content-type", "application/json".to_owned()),
        (
            "x-shopify-hmac-sha256",
            base64_hmac_sha256(SHOPIFY_SECRET.as_bytes(), body),
        ),
        ("x-shopify-topic", topic.to_owned()),
        ("x-shopify-shop-domain", "shop.myshopify.com".to_owned()),
        ("x-shopify-api-version", "2024-01".to_owned()),
        (
            "x-shopify-event-id",
            format!("evt-{}", rand::random::<u64>()),
        ),
    ];
    let reply = app
        .post_raw(
            &format!("/webhooks/shopify/{store_id}"),
            &headers,
            body.to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let delivery_id = reply.body["delivery_id"].as_str().expect("a delivery id");
    app.eventually(&format!("/inbox/{delivery_id}"), |d| {
        !matches!(d["status"].as_str(), Some("received") | None)
    })
    .await
}

async fn finished_run(app: &TestApp, order_id: &str) -> Value {
    app.eventually(&format!("/runs?order_id={order_id}"), |page| {
        page["runs"][0]["finished_at"].is_string()
    })
    .await;
    run_of(app, order_id).await
}

fn verify_signed(forwarded: &support::SinkRequest) -> Value {
    let secret = standard::Secret::parse(DESTINATION_SECRET).expect("secret");
    standard::verify(
        &[secret],
        standard::Headers {
            id: forwarded.header("webhook-id"),
            timestamp: forwarded.header("webhook-timestamp"),
            signature: forwarded.header("webhook-signature"),
        },
        &forwarded.body,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
    .expect("the forward is signed per Standard Webhooks");
    serde_json::from_slice(&forwarded.body).expect("JSON")
}

on_both_backends!(
    an_api_order_in_a_store_with_a_destination_is_forwarded_to_its_courier_once,
    multi_thread
);
async fn an_api_order_in_a_store_with_a_destination_is_forwarded_to_its_courier_once(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    app.create_store(json!({"store_id": "courier", "name": "Courier client",
                   "destination": {"url": sink.url, "secret": DESTINATION_SECRET}}))
        .await;
    let product = json!({"name": "Mug", "category": "kitchen", "price": 1250, "currency": "EUR", "on_hand": 5});
    app.put_product_in("courier", "mug", product).await;
    let mut body = order_body(&[("mug", 2)], "pm_card_visa");
    body["store_id"] = json!("courier");
    let reply = app.post("/orders", ADMIN, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let order_id = reply.body["order_id"]
        .as_str()
        .expect("order id")
        .to_owned();

    let run = finished_run(&app, &order_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let forward = step(&run, "forward_to_courier");
    assert_eq!(forward["status"], "succeeded");
    assert_eq!(forward["output"]["forwarded"], true);
    assert_eq!(forward["output"]["queued"], true);
    app.eventually("/forwards", |f| f[0]["status"] == "delivered")
        .await;

    let requests = sink.requests();
    assert_eq!(requests.len(), 1, "the courier got the order once");
    let payload = verify_signed(&requests[0]);
    assert_eq!(payload["type"], "order.created");
    assert_eq!(payload["data"]["order_id"], order_id.as_str());
    assert_eq!(payload["data"]["store_id"], "courier");
    assert_eq!(
        payload["data"]["lines"],
        json!([{"sku": "mug", "quantity": 2, "unit_price_minor": 1250}])
    );
    assert_eq!(payload["data"]["shipping_address"]["city"], "Santiago");
    assert_eq!(payload["data"]["customer"]["email"], CUSTOMER);
    let forwards = app.get("/forwards", ADMIN).await;
    assert_eq!(
        forwards.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        forwards.body
    );
    app.shutdown().await;
}

on_both_backends!(
    a_storefront_order_on_a_pipeline_node_is_forwarded_once_by_its_run_as_intake_cleaned_it,
    multi_thread
);
async fn a_storefront_order_on_a_pipeline_node_is_forwarded_once_by_its_run_as_intake_cleaned_it(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    let sink = Sink::start(vec![Answer::Status(200)]).await;
    shopify_store(&app, "client", false, Some(&sink)).await;
    let body = fixture("shopify/order_450789469_rest_fixture.json");
    let delivery = send_shopify(&app, "client", &body, "orders/create").await;
    // The run may have forwarded it before the test looks.
    assert!(
        matches!(delivery["status"].as_str(), Some("accepted" | "forwarded")),
        "{delivery}"
    );
    let order_id = delivery["order_id"].as_str().expect("an order").to_owned();

    let run = finished_run(&app, &order_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let forward = step(&run, "forward_to_courier");
    assert_eq!(forward["status"], "succeeded");
    assert_eq!(
        forward["output"]["queued"], true,
        "the run queued the forward, not the intake worker before it"
    );
    let delivery_id = delivery["delivery_id"].as_str().expect("delivery id");
    app.eventually(&format!("/inbox/{delivery_id}"), |d| {
        d["status"] == "forwarded"
    })
    .await;

    let requests = sink.requests();
    assert_eq!(requests.len(), 1, "the courier got the order once");
    let payload = verify_signed(&requests[0]);
    assert_eq!(payload["type"], "order.created");
    assert_eq!(payload["data"]["order_id"], order_id.as_str());
    assert_eq!(payload["data"]["external_id"], "450789469");
    assert_eq!(payload["data"]["shipping_address"]["region"], "KY");
    let forwards = app.get("/forwards", ADMIN).await;
    assert_eq!(
        forwards.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        forwards.body
    );
    app.shutdown().await;
}

on_both_backends!(
    a_platform_cancellation_cancels_the_orders_run_and_compensates_without_an_alert,
    multi_thread
);
async fn a_platform_cancellation_cancels_the_orders_run_and_compensates_without_an_alert(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    shopify_store(&app, "shop", true, None).await;
    for sku in ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"] {
        let product = json!({"name": sku, "category": "audio", "price": 19900, "currency": "USD", "on_hand": 0});
        app.put_product_in("shop", sku, product).await;
    }
    let created = fixture("shopify/order_450789469_rest_fixture.json");
    let delivery = send_shopify(&app, "shop", &created, "orders/create").await;
    assert_eq!(delivery["status"], "accepted", "{delivery}");
    let order_id = delivery["order_id"].as_str().expect("an order").to_owned();
    // Out of stock: the run waits in reserve_stock, so the cancellation finds it running.
    app.eventually(&format!("/orders/{order_id}"), |o| {
        o["order_status"] == "backordered"
    })
    .await;
    app.eventually(&format!("/runs?order_id={order_id}"), |page| {
        page["runs"][0]["status"] == "running"
    })
    .await;

    let mut cancelled: Value = serde_json::from_slice(&created).expect("JSON");
    cancelled["order"]["cancelled_at"] = json!("2008-01-10T12:00:00-05:00");
    cancelled["order"]["updated_at"] = json!("2008-01-10T12:00:00-05:00");
    let cancelled = serde_json::to_vec(&cancelled).expect("JSON");
    let cancellation = send_shopify(&app, "shop", &cancelled, "orders/cancelled").await;
    assert_eq!(cancellation["status"], "accepted", "{cancellation}");
    assert!(
        cancellation["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("cancelled: ")),
        "{cancellation}"
    );

    let run = finished_run(&app, &order_id).await;
    assert_eq!(run["status"], "cancelled", "not failed: {run}");
    assert_eq!(step(&run, "authorize_payment")["status"], "cancelled");
    assert_eq!(step(&run, "compensate")["status"], "succeeded");
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await.body;
    assert_eq!(order["order_status"], "cancelled");

    let providers = app.providers.as_ref().expect("pipeline providers");
    let mails = providers.mail.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        mails
            .iter()
            .filter_map(|m| m.subject.clone())
            .collect::<Vec<_>>(),
        [format!("Order {order_id} cancelled")],
        "the compensation told the customer"
    );
    // The dispatcher looks for alerts every 50 ms: a failed step would have been sent by now.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        providers.slack.messages().is_empty(),
        "a cancellation is not an incident: {:?}",
        providers.slack.messages()
    );
    app.shutdown().await;
}
