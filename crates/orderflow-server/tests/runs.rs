//! The runs API over real HTTP: the workflows with their DAG, and an operator's retry, skip
//! and cancel of a run of the order pipeline, with their refusals (unknown run, a finished
//! step or run, another tenant's run).

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{ADMIN, Backend, Reply, TestApp, on_both_backends};

const CUSTOMER: &str = "ana@example.com";

async fn place(app: &TestApp, product_id: &str, count: i64) -> String {
    let body = json!({
        "products": [{"product_id": product_id, "item_count": count}],
        "allow_partial": true,
        "payment_method": "pm_card_visa",
        "customer": {"name": "Ana Rojas", "email": CUSTOMER},
        "shipping_address": {
            "name": "Ana Rojas", "line1": "Av. Providencia 1208", "city": "Santiago",
            "region": "RM", "postal_code": "7500000", "country": "CL"
        }
    });
    let reply = app.post("/orders", ADMIN, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["order_id"]
        .as_str()
        .expect("order id")
        .to_owned()
}

/// The id of the order's run, once it is running.
async fn running_run(app: &TestApp, order_id: &str) -> String {
    let page = app
        .eventually(&format!("/runs?order_id={order_id}"), |page| {
            page["runs"][0]["status"] == "running"
        })
        .await;
    page["runs"][0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned()
}

async fn finished(app: &TestApp, run_id: &str) -> Value {
    app.eventually(&format!("/runs/{run_id}"), |run| {
        run["finished_at"].is_string()
    })
    .await
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

async fn act(app: &TestApp, token: &str, path: &str) -> Reply {
    app.post(path, token, json!({})).await
}

#[tokio::test]
async fn the_workflows_endpoint_shows_the_order_pipeline_as_a_dag_of_upstream_steps() {
    let Some(app) = TestApp::spawn_with_pipeline(Backend::Sqlite).await else {
        return;
    };
    let reply = app.get("/workflows", ADMIN).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let order = reply
        .body
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "order"))
        .unwrap_or_else(|| panic!("no order workflow in {}", reply.body));
    let upstream = |name: &str| step(order, name)["upstream"].clone();
    let names: Vec<&str> = order["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "validate",
            "apply_rules",
            "reserve_stock",
            "authorize_payment",
            "packing_slip",
            "confirmation_email",
            "forward_to_courier",
            "create_shipment",
            "shipped_email",
            "compensate"
        ]
    );
    assert_eq!(upstream("validate"), json!([]));
    assert_eq!(upstream("reserve_stock"), json!(["apply_rules"]));
    assert_eq!(
        upstream("create_shipment"),
        json!(["packing_slip", "confirmation_email"])
    );
    assert_eq!(upstream("forward_to_courier"), json!(["authorize_payment"]));
    assert_eq!(step(order, "compensate")["trigger"], "one_failed");
    assert_eq!(
        upstream("compensate").as_array().map(Vec::len),
        Some(9),
        "compensation watches every main step"
    );
    assert!(
        step(order, "reserve_stock")["poke_every_ms"].is_u64(),
        "reserve_stock is a sensor"
    );
    assert_eq!(step(order, "authorize_payment")["concurrency"], 32);

    app.send("GET", "/workflows", None, None, &[])
        .await
        .assert_problem(401, "unauthorized");
    app.shutdown().await;
}

on_both_backends!(
    an_operator_retries_a_shipped_message_that_failed_for_good_and_the_run_succeeds,
    multi_thread
);
async fn an_operator_retries_a_shipped_message_that_failed_for_good_and_the_run_succeeds(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    let providers = app.providers.as_ref().expect("pipeline providers");
    // The shipment is held long enough for the test to turn the mail server against the
    // shipped message only, after the confirmation went through.
    providers
        .carrier
        .faults()
        .on("POST /v2/shipments")
        .slow(1, Duration::from_millis(1_500));
    app.put_product("mug", 5).await;
    let order_id = place(&app, "mug", 1).await;
    let run_id = running_run(&app, &order_id).await;
    app.eventually(&format!("/runs/{run_id}"), |run| {
        step(run, "confirmation_email")["status"] == "succeeded"
    })
    .await;
    providers.mail.faults().fail_next(1, 554);

    let failed = finished(&app, &run_id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(step(&failed, "shipped_email")["status"], "failed");
    assert_eq!(
        step(&failed, "shipped_email")["attempts"],
        1,
        "a refusal is not retried"
    );
    assert_eq!(
        step(&failed, "compensate")["output"]["compensated"],
        false,
        "a shipped order is not undone"
    );

    let retried = act(
        &app,
        ADMIN,
        &format!("/runs/{run_id}/steps/shipped_email/retry"),
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_ne!(step(&retried.body, "shipped_email")["status"], "failed");
    let run = app
        .eventually(&format!("/runs/{run_id}"), |run| {
            run["status"] == "succeeded" && run["finished_at"].is_string()
        })
        .await;
    assert_eq!(step(&run, "shipped_email")["status"], "succeeded");
    let shipped: Vec<_> = providers
        .mail
        .messages()
        .into_iter()
        .filter(|m| m.subject.as_deref() == Some(&format!("Order {order_id} shipped")))
        .collect();
    assert_eq!(shipped.len(), 1, "the retry sent the shipped message once");

    act(
        &app,
        ADMIN,
        &format!("/runs/{run_id}/steps/shipped_email/retry"),
    )
    .await
    .assert_problem(409, "conflict");
    act(&app, ADMIN, &format!("/runs/{run_id}/steps/validate/skip"))
        .await
        .assert_problem(409, "conflict");
    act(&app, ADMIN, &format!("/runs/{run_id}/cancel"))
        .await
        .assert_problem(409, "conflict");
    app.shutdown().await;
}

on_both_backends!(
    an_operator_skips_the_confirmation_of_a_waiting_order_and_it_ships_without_it,
    multi_thread
);
async fn an_operator_skips_the_confirmation_of_a_waiting_order_and_it_ships_without_it(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("lamp", 0).await;
    let order_id = place(&app, "lamp", 1).await;
    let run_id = running_run(&app, &order_id).await;

    let skipped = act(
        &app,
        ADMIN,
        &format!("/runs/{run_id}/steps/confirmation_email/skip"),
    )
    .await;
    assert_eq!(skipped.status, StatusCode::OK, "{}", skipped.body);
    assert_eq!(
        step(&skipped.body, "confirmation_email")["status"],
        "skipped"
    );
    act(
        &app,
        ADMIN,
        &format!("/runs/{run_id}/steps/confirmation_email/skip"),
    )
    .await
    .assert_problem(409, "conflict");

    let restocked = app
        .post("/products/lamp/stock", ADMIN, json!({"delta": 1}))
        .await;
    assert_eq!(restocked.status, StatusCode::OK, "{}", restocked.body);
    let run = finished(&app, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await.body;
    assert_eq!(order["order_status"], "shipped");
    let providers = app.providers.as_ref().expect("pipeline providers");
    let subjects: Vec<String> = providers
        .mail
        .wait_for(1, Duration::from_secs(10))
        .await
        .into_iter()
        .filter_map(|m| m.subject)
        .collect();
    assert_eq!(
        subjects,
        [format!("Order {order_id} shipped")],
        "no confirmation"
    );
    app.shutdown().await;
}

on_both_backends!(
    cancelling_a_run_cancels_what_has_not_started_and_compensates_once,
    multi_thread
);
async fn cancelling_a_run_cancels_what_has_not_started_and_compensates_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("lamp", 0).await;
    let order_id = place(&app, "lamp", 1).await;
    let run_id = running_run(&app, &order_id).await;

    let cancelled = act(&app, ADMIN, &format!("/runs/{run_id}/cancel")).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let run = finished(&app, &run_id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(step(&run, "authorize_payment")["status"], "cancelled");
    assert_eq!(step(&run, "create_shipment")["status"], "cancelled");
    assert_eq!(step(&run, "compensate")["status"], "succeeded");
    let order = app.get(&format!("/orders/{order_id}"), ADMIN).await.body;
    assert_eq!(
        order["order_status"], "cancelled",
        "the compensation cancelled the order"
    );

    let again = act(&app, ADMIN, &format!("/runs/{run_id}/cancel")).await;
    assert_eq!(again.status, StatusCode::OK, "cancelling twice is harmless");
    assert_eq!(again.body["status"], "cancelled");
    let compensations = step(&again.body, "compensate")["attempts"].clone();
    assert_eq!(compensations, 1, "the compensation ran once");
    act(
        &app,
        ADMIN,
        &format!("/runs/{run_id}/steps/authorize_payment/skip"),
    )
    .await
    .assert_problem(409, "conflict");
    app.shutdown().await;
}

on_both_backends!(
    unknown_runs_unknown_steps_and_another_tenants_runs_are_not_found,
    multi_thread
);
async fn unknown_runs_unknown_steps_and_another_tenants_runs_are_not_found(backend: Backend) {
    let Some(app) = TestApp::spawn_with_pipeline(backend).await else {
        return;
    };
    app.put_product("lamp", 0).await;
    let order_id = place(&app, "lamp", 1).await;
    let run_id = running_run(&app, &order_id).await;
    app.create_store(json!({"store_id": "other", "name": "Other"}))
        .await;
    let other = app.key(json!({"role": "store", "store_id": "other"})).await;

    for path in [
        "/runs/run_0000000000000000000000000/cancel".to_owned(),
        "/runs/run_0000000000000000000000000/steps/validate/retry".to_owned(),
        "/runs/run_0000000000000000000000000/steps/validate/skip".to_owned(),
        format!("/runs/{run_id}/steps/no_such_step/retry"),
        format!("/runs/{run_id}/steps/no_such_step/skip"),
    ] {
        act(&app, ADMIN, &path)
            .await
            .assert_problem(404, "not-found");
    }
    app.get(&format!("/runs/{run_id}"), &other)
        .await
        .assert_problem(404, "not-found");
    for path in [
        format!("/runs/{run_id}/cancel"),
        format!("/runs/{run_id}/steps/confirmation_email/skip"),
        format!("/runs/{run_id}/steps/reserve_stock/retry"),
    ] {
        act(&app, &other, &path)
            .await
            .assert_problem(404, "not-found");
    }
    let untouched = app.get(&format!("/runs/{run_id}"), ADMIN).await.body;
    assert_eq!(untouched["status"], "running", "{untouched}");
    assert_eq!(step(&untouched, "confirmation_email")["status"], "waiting");
    app.shutdown().await;
}
