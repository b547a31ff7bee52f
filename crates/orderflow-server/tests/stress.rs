//! Concurrency over real HTTP: 32 clients place, edit and cancel multi-line orders against
//! scarce stock. Afterwards every product's `reserved` equals the units of its live orders and
//! never exceeds `on_hand`, and no request got a 5xx. Runs on SQLite and, when configured, on
//! PostgreSQL.

mod support;

use std::sync::Arc;

use orderflow_domain::StoreId;
use reqwest::StatusCode;
use serde_json::json;
use support::{ADMIN, Backend, TestApp, on_both_backends};

const CLIENTS: u64 = 32;
const ROUNDS: u64 = 25;
const PRODUCTS: u64 = 6;

async fn clients_racing_for_scarce_stock_never_oversell(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let app = Arc::new(app);
    for p in 0..PRODUCTS {
        app.put_product(&format!("p{p}"), 15).await;
    }

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut mine: Vec<String> = Vec::new();
                for round in 0..ROUNDS {
                    let seed = client * 7919 + round * 104_729;
                    let product = |k: u64| format!("p{}", (seed / (k + 1) + k) % PRODUCTS);
                    match seed % 5 {
                        0..=2 => {
                            let mut lines = vec![(product(0), 1 + (seed % 3) as i64), (product(1), 1)];
                            lines.dedup_by(|a, b| a.0 == b.0);
                            let body = json!({
                                "products": lines.iter().map(|(p, n)| json!({"product_id": p, "item_count": n})).collect::<Vec<_>>(),
                                "allow_partial": seed % 7 == 0,
                            });
                            let reply = app.post("/orders", ADMIN, body).await;
                            if reply.status == StatusCode::CREATED {
                                mine.push(reply.body["order_id"].as_str().expect("id").to_owned());
                            }
                            statuses.push(reply.status);
                        }
                        3 if !mine.is_empty() => {
                            let order = &mine[(seed as usize) % mine.len()];
                            let body = json!({"products": [{"product_id": product(2), "item_count": 1 + (seed % 2) as i64}]});
                            let reply = app.send("PATCH", &format!("/orders/{order}"), Some(ADMIN), Some(body), &[]).await;
                            statuses.push(reply.status);
                        }
                        _ if !mine.is_empty() => {
                            let order = mine.swap_remove((seed as usize) % mine.len());
                            let reply = app.send("DELETE", &format!("/orders/{order}"), Some(ADMIN), None, &[]).await;
                            statuses.push(reply.status);
                        }
                        _ => {}
                    }
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for client in clients {
        statuses.extend(client.await.expect("client task"));
    }

    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "a request failed with 5xx: {statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::CREATED),
        "no order was placed at all"
    );
    assert!(
        statuses.contains(&StatusCode::CONFLICT),
        "stock was never scarce: the test proves nothing"
    );
    let audit = app
        .store
        .audit_reservations(&StoreId::default_store())
        .await
        .expect("audit");
    assert_eq!(audit.len() as u64, PRODUCTS);
    for product in &audit {
        assert_eq!(
            product.reserved, product.reserved_by_live_orders,
            "{product:?}"
        );
        assert!(
            0 <= product.reserved && product.reserved <= product.on_hand,
            "{product:?}"
        );
    }
    if let Ok(app) = Arc::try_unwrap(app) {
        app.shutdown().await;
    }
}

on_both_backends!(clients_racing_for_scarce_stock_never_oversell, multi_thread);
