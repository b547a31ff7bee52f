//! The sandbox platforms (`orderflow-sim`) against the real server on 127.0.0.1: each
//! platform's sender is accepted and makes one order; a Shopify webhook re-sent after a 5xx
//! or a late answer still makes one order; orders Shopify never delivered are reconciled by
//! the pull; a VTEX hook is completed from the OMS; the server pulls on its own schedule; and
//! a tick of the scheduled `storefront_pulls` workflow starts one run that pulls.

mod support;

use std::time::Duration;

use orderflow_domain::StoreId;
use orderflow_intake::pull::{PullConfig, Puller};
use orderflow_sim::custom::CustomSender;
use orderflow_sim::jumpseller::JumpsellerSender;
use orderflow_sim::proxy::Proxy;
use orderflow_sim::shopify::ShopifySender;
use orderflow_sim::vtex::VtexHookSender;
use orderflow_sim::woocommerce::WooSender;
use orderflow_sim::{Generator, Outcome, RetryPolicy, Shop, SimOrder, SimStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

const SECRET: &str = "shop-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A courier's client store: orders are recorded at the platform's prices, no catalogue.
async fn client_store(
    app: &TestApp,
    store_id: &str,
    platform: &str,
    secret: Option<&str>,
    api: Value,
) {
    app.create_store(json!({
        "store_id": store_id,
        "name": format!("{platform} client"),
        "platform": platform,
        "webhook_secret": secret,
        "manage_stock": false,
        "api": api,
    }))
    .await;
}

async fn orders(app: &TestApp, store_id: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/orders?store_id={store_id}&limit=100"), ADMIN)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["orders"].as_array().cloned().unwrap_or_default()
}

/// The store's inbox once no delivery waits for the worker.
async fn settled_inbox(app: &TestApp, store_id: &str, count: usize) -> Vec<Value> {
    let page = app
        .eventually(&format!("/inbox?store_id={store_id}"), |page| {
            page["items"].as_array().is_some_and(|items| {
                items.len() == count && items.iter().all(|d| d["status"] != "received")
            })
        })
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

fn statuses(inbox: &[Value]) -> Vec<String> {
    let mut statuses: Vec<String> = inbox
        .iter()
        .filter_map(|d| d["status"].as_str().map(str::to_owned))
        .collect();
    statuses.sort();
    statuses
}

/// Shopify's schedule a hundred thousand times faster: the eight waits take about 150 ms.
fn fast_shopify(timeout: Duration) -> RetryPolicy {
    RetryPolicy::shopify()
        .compressed(100_000)
        .with_timeout(timeout)
}

async fn every_platforms_sender_is_accepted_and_makes_one_order(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let mut generator = Generator::new(71).first_id(500);
    let mut order = || {
        let mut order = generator.order();
        order.status = SimStatus::Paid;
        order
    };
    let oms = orderflow_sim::vtex::serve_oms(Shop::new(), "appkey", "apptoken")
        .await
        .expect("the OMS sandbox serves");
    client_store(&app, "shopify1", "shopify", Some(SECRET), Value::Null).await;
    client_store(&app, "woo1", "woocommerce", Some(SECRET), Value::Null).await;
    client_store(&app, "jump1", "jumpseller", Some(SECRET), Value::Null).await;
    client_store(&app, "home1", "custom", Some(WHSEC), Value::Null).await;
    client_store(
        &app,
        "lux1",
        "vtex",
        Some(SECRET),
        json!({"base_url": oms.url(), "key": "appkey", "token": "apptoken"}),
    )
    .await;
    let vtex_order = order();
    oms.shop().put(vtex_order.clone());

    let woo = WooSender::new(&app.base, "woo1", SECRET);
    assert!(woo.ping().await.delivered, "the webhook can be saved");
    let vtex = VtexHookSender::new(&app.base, "lux1", SECRET);
    assert!(vtex.ping().await.delivered, "the hook can be configured");
    let sent: Vec<(&str, String, bool)> = vec![
        {
            let o = order();
            let report = ShopifySender::new(&app.base, "shopify1", SECRET)
                .send("orders/create", &o)
                .await;
            ("shopify1", o.id.to_string(), report.delivered)
        },
        {
            let o = order();
            (
                "woo1",
                o.id.to_string(),
                woo.send("order.created", &o).await.delivered,
            )
        },
        {
            let o = order();
            let report = JumpsellerSender::new(&app.base, "jump1", SECRET)
                .send("order_paid", &o)
                .await;
            ("jump1", o.id.to_string(), report.delivered)
        },
        {
            let o = order();
            let report = CustomSender::new(&app.base, "home1", WHSEC)
                .expect("a secret")
                .send("order.created", &o)
                .await
                .expect("renders");
            ("home1", o.id.to_string(), report.delivered)
        },
        (
            "lux1",
            format!("{}-01", vtex_order.id),
            vtex.send(&vtex_order).await.delivered,
        ),
    ];

    for (store_id, external_id, delivered) in sent {
        assert!(delivered, "{store_id}: the platform counts it delivered");
        let inbox = settled_inbox(&app, store_id, 1).await;
        assert_eq!(statuses(&inbox), ["accepted"], "{store_id}: {inbox:?}");
        let placed = orders(&app, store_id).await;
        assert_eq!(placed.len(), 1, "{store_id}");
        assert_eq!(placed[0]["external_id"], external_id.as_str(), "{store_id}");
    }
    app.shutdown().await;
}

on_both_backends!(every_platforms_sender_is_accepted_and_makes_one_order);

async fn a_shopify_webhook_resent_after_5xx_answers_makes_one_order(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    client_store(&app, "client", "shopify", Some(SECRET), Value::Null).await;
    let proxy = Proxy::start(&app.base).await.expect("a proxy");
    let sender = ShopifySender::new(proxy.url(), "client", SECRET)
        .retry(fast_shopify(Duration::from_secs(3)));
    let order = Generator::new(72).order();

    proxy.faults().fail_next(2, 503);
    let report = sender.send("orders/create", &order).await;

    assert!(report.delivered);
    assert_eq!(report.statuses(), [Some(503), Some(503), Some(200)]);
    let inbox = settled_inbox(&app, "client", 1).await;
    assert_eq!(statuses(&inbox), ["accepted"]);
    let placed = orders(&app, "client").await;
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0]["external_id"], order.id.to_string());
    app.shutdown().await;
}

on_both_backends!(a_shopify_webhook_resent_after_5xx_answers_makes_one_order);

async fn a_shopify_webhook_answered_too_late_is_resent_and_makes_one_order(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    client_store(&app, "client", "shopify", Some(SECRET), Value::Null).await;
    let proxy = Proxy::start(&app.base).await.expect("a proxy");
    let sender = ShopifySender::new(proxy.url(), "client", SECRET)
        .retry(fast_shopify(Duration::from_millis(800)));
    let order = Generator::new(73).order();

    // orderflow stores the first attempt, but its answer reaches Shopify too late.
    proxy.faults().slow_next(1, Duration::from_millis(1_500));
    let report = sender.send("orders/create", &order).await;

    assert!(report.delivered);
    assert_eq!(report.attempts[0].outcome, Outcome::TimedOut);
    assert_eq!(report.attempts.len(), 2);
    let inbox = settled_inbox(&app, "client", 2).await;
    assert_eq!(statuses(&inbox), ["accepted", "duplicate"]);
    assert_eq!(inbox[0]["event_key"], inbox[1]["event_key"], "one event");
    assert_eq!(orders(&app, "client").await.len(), 1);
    app.shutdown().await;
}

on_both_backends!(a_shopify_webhook_answered_too_late_is_resent_and_makes_one_order);

async fn orders_shopify_never_delivered_are_reconciled_by_the_pull(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let placed: Vec<SimOrder> = Generator::new(74)
        .starting_at(time::OffsetDateTime::now_utc() - time::Duration::hours(3))
        .orders(3);
    let admin = orderflow_sim::shopify::serve_admin(Shop::with_orders(placed.clone()), "shpat")
        .await
        .expect("the Shopify sandbox serves");
    client_store(
        &app,
        "client",
        "shopify",
        Some(SECRET),
        json!({"base_url": admin.url(), "token": "shpat"}),
    )
    .await;
    // The shop is down for the third order's webhook, past all of Shopify's re-sends.
    let sender = ShopifySender::new(&app.base, "client", SECRET);
    for order in &placed[..2] {
        assert!(sender.send("orders/create", order).await.delivered);
    }
    settled_inbox(&app, "client", 2).await;

    let record = app
        .store
        .get_store(&"client".parse::<StoreId>().expect("a store id"))
        .await
        .expect("the store");
    let puller = Puller::new(app.store.clone(), PullConfig::default());
    let report = puller.pull_store(&record).await.expect("the pull succeeds");

    assert_eq!(report.stored, 3);
    let inbox = settled_inbox(&app, "client", 5).await;
    let pulled: Vec<Value> = inbox
        .iter()
        .filter(|d| d["topic"] == "pull")
        .cloned()
        .collect();
    assert_eq!(
        statuses(&pulled),
        ["accepted", "stale", "stale"],
        "the two already taken in by webhook are not newer"
    );
    let mut external: Vec<String> = orders(&app, "client")
        .await
        .iter()
        .filter_map(|o| o["external_id"].as_str().map(str::to_owned))
        .collect();
    external.sort();
    let mut expected: Vec<String> = placed.iter().map(|o| o.id.to_string()).collect();
    expected.sort();
    assert_eq!(external, expected);
    app.shutdown().await;
}

on_both_backends!(orders_shopify_never_delivered_are_reconciled_by_the_pull);

async fn a_vtex_cancellation_hook_cancels_the_order_fetched_from_the_oms(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let mut order = Generator::new(75).order();
    order.status = SimStatus::Paid;
    let oms =
        orderflow_sim::vtex::serve_oms(Shop::with_orders([order.clone()]), "appkey", "apptoken")
            .await
            .expect("the OMS sandbox serves");
    client_store(
        &app,
        "lux",
        "vtex",
        Some(SECRET),
        json!({"base_url": oms.url(), "key": "appkey", "token": "apptoken"}),
    )
    .await;
    let hooks = VtexHookSender::new(&app.base, "lux", SECRET);
    assert!(hooks.send(&order).await.delivered);
    settled_inbox(&app, "lux", 1).await;

    oms.shop().update(order.id, |o| {
        o.change(SimStatus::Cancelled, time::OffsetDateTime::now_utc());
    });
    let cancelled = oms.shop().get(order.id).expect("the order");
    assert!(hooks.send(&cancelled).await.delivered);
    let inbox = settled_inbox(&app, "lux", 2).await;

    assert_eq!(statuses(&inbox), ["accepted", "accepted"]);
    let placed = orders(&app, "lux").await;
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0]["order_status"], "cancelled");
    let fetched = oms
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/api/oms/pvt/orders/"))
        .count();
    assert_eq!(fetched, 2, "each hook was completed from the OMS");
    app.shutdown().await;
}

on_both_backends!(a_vtex_cancellation_hook_cancels_the_order_fetched_from_the_oms);

async fn the_server_pulls_a_prestashop_store_on_its_own_schedule(backend: Backend) {
    let Some(app) = TestApp::spawn_pulling(backend, Duration::from_millis(200)).await else {
        return;
    };
    let placed = Generator::new(76)
        .first_id(40)
        .starting_at(time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .orders(3);
    let shop = orderflow_sim::prestashop::serve(Shop::with_orders(placed), "WSKEY")
        .await
        .expect("the PrestaShop sandbox serves");
    client_store(
        &app,
        "presta",
        "prestashop",
        None,
        json!({"base_url": shop.url(), "key": "WSKEY"}),
    )
    .await;

    let inbox = settled_inbox(&app, "presta", 3).await;

    assert_eq!(statuses(&inbox), ["accepted", "accepted", "accepted"]);
    assert_eq!(orders(&app, "presta").await.len(), 3);
    app.shutdown().await;
}

on_both_backends!(the_server_pulls_a_prestashop_store_on_its_own_schedule);

async fn a_scheduled_tick_starts_one_pull_run_that_pulls_a_prestashop_store(backend: Backend) {
    let cron = orderflow_workflow::Cron::parse(orderflow_pipeline::pulls::DEFAULT_PULL_CRON)
        .expect("the default cron parses");
    let Some(app) = TestApp::spawn_with_scheduled_pulls(backend, cron).await else {
        return;
    };
    let workflows = app.get("/workflows", ADMIN).await;
    let pulls = workflows.body.as_array().and_then(|all| {
        all.iter()
            .find(|w| w["name"] == orderflow_pipeline::pulls::PULLS_WORKFLOW)
    });
    let pulls = pulls.expect("the pulls workflow is registered");
    assert_eq!(
        pulls["schedule"],
        orderflow_pipeline::pulls::DEFAULT_PULL_CRON
    );
    assert_eq!(
        pulls["steps"][0]["name"],
        orderflow_pipeline::pulls::PULL_STEP
    );
    assert_eq!(pulls["steps"][0]["concurrency"], 1);

    let placed = Generator::new(77)
        .first_id(60)
        .starting_at(time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .orders(3);
    let shop = orderflow_sim::prestashop::serve(Shop::with_orders(placed.clone()), "WSKEY")
        .await
        .expect("the PrestaShop sandbox serves");
    client_store(
        &app,
        "presta",
        "prestashop",
        None,
        json!({"base_url": shop.url(), "key": "WSKEY"}),
    )
    .await;

    // Two nodes firing the same tick, as two schedulers that both believe they lead would.
    let providers = app.providers.as_ref().expect("the pipeline runs");
    let tick = time::macros::datetime!(2026-11-23 02:35 UTC);
    let mut started = Vec::new();
    for _ in 0..2 {
        let run = orderflow_workflow::schedule::start_tick(
            app.store.as_ref(),
            &providers.registry,
            orderflow_pipeline::pulls::PULLS_WORKFLOW,
            tick,
        )
        .await
        .expect("the tick's run starts")
        .expect("the workflow is registered");
        started.push(run);
    }
    assert!(started[0].created && !started[1].created);
    assert_eq!(started[0].run_id, started[1].run_id);

    let run = app
        .eventually(&format!("/runs/{}", started[0].run_id), |run| {
            run["status"] == "succeeded"
        })
        .await;
    assert_eq!(run["steps"][0]["output"]["stores"]["presta"]["stored"], 3);
    let inbox = settled_inbox(&app, "presta", 3).await;
    assert_eq!(statuses(&inbox), ["accepted", "accepted", "accepted"]);
    let mut external: Vec<String> = orders(&app, "presta")
        .await
        .iter()
        .filter_map(|o| o["external_id"].as_str().map(str::to_owned))
        .collect();
    external.sort();
    let mut expected: Vec<String> = placed.iter().map(|o| o.id.to_string()).collect();
    expected.sort();
    assert_eq!(external, expected, "each pulled order is taken in once");
    let runs = app
        .get(
            &format!(
                "/runs?workflow={}",
                orderflow_pipeline::pulls::PULLS_WORKFLOW
            ),
            ADMIN,
        )
        .await;
    assert_eq!(
        runs.body["runs"].as_array().map(Vec::len),
        Some(1),
        "{}",
        runs.body
    );
    app.shutdown().await;
}

on_both_backends!(a_scheduled_tick_starts_one_pull_run_that_pulls_a_prestashop_store);
