//! Durability: a `201` means the order survives `kill -9`. Orders are placed against a real
//! `orderflow serve` process, which is killed mid-load and restarted on the same database;
//! every acknowledged order must be there with its reservation, and every acknowledged
//! storefront delivery must become exactly one order.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderflow_store::scratch::ScratchDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "durability-admin-token";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("address").port()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(database_url: &str) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
                // Orders stay as placed, so that their reservations can be checked.
                "--no-pipeline",
            ])
            .env("ORDERFLOW_ADMIN_TOKEN", TOKEN)
            .env("ORDERFLOW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start orderflow serve");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = client.get(format!("{}/readyz", server.base)).send().await
                && reply.status() == StatusCode::OK
            {
                return server;
            }
            assert!(Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown hook, no flush, no goodbye.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

async fn acknowledged_orders_survive_kill_9(database_url: &str) {
    let server = Server::start(database_url).await;
    let client = reqwest::Client::new();
    for product in ["mug", "tea"] {
        let body = json!({"name": product, "price": 100, "currency": "EUR", "on_hand": 1_000_000});
        let reply = client
            .put(format!("{}/products/{product}", server.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("put");
        assert_eq!(reply.status(), StatusCode::OK);
    }

    let acknowledged: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let loaders: Vec<_> = (0..16)
        .map(|client_no| {
            let (client, base, acknowledged) = (client.clone(), server.base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in 0..10_000i64 {
                    let count = 1 + (n + client_no) % 3;
                    let body = json!({"products": [{"product_id": "mug", "item_count": count}, {"product_id": "tea", "item_count": 1}]});
                    let Ok(reply) = client.post(format!("{base}/orders")).bearer_auth(TOKEN).json(&body).send().await else {
                        return;
                    };
                    if reply.status() != StatusCode::CREATED {
                        return;
                    }
                    let Ok(receipt) = reply.json::<Value>().await else { return };
                    let id = receipt["order_id"].as_str().expect("order_id").to_owned();
                    acknowledged.lock().expect("lock").push((id, count));
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().expect("lock").len() < 500 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill_9();
    for loader in loaders {
        loader.await.expect("loader");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 100,
        "too few orders before the kill to prove anything"
    );

    let server = Server::start(database_url).await;
    let mut acknowledged_mugs = 0;
    for (order_id, count) in &acknowledged {
        let reply = client
            .get(format!("{}/orders/{order_id}", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get");
        assert_eq!(
            reply.status(),
            StatusCode::OK,
            "acknowledged order {order_id} was lost"
        );
        let order: Value = reply.json().await.expect("order");
        assert_eq!(order["order_status"], "confirmed");
        assert_eq!(order["products"][0]["item_count"], *count, "{order}");
        acknowledged_mugs += count;
    }
    let mug: Value = client
        .get(format!("{}/products/mug", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let listed: Value = client
        .get(format!("{}/orders?limit=200", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(listed["orders"].as_array().is_some_and(|o| !o.is_empty()));
    // Orders committed after their answer was lost in the kill may exist too, never fewer.
    let reserved = mug["reserved"].as_i64().expect("reserved");
    assert!(
        reserved >= acknowledged_mugs,
        "reserved {reserved} < acknowledged {acknowledged_mugs}"
    );
    server.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_orders_survive_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    acknowledged_orders_survive_kill_9(&format!(
        "sqlite://{}",
        dir.path().join("durable.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_orders_survive_kill_9_on_postgres() {
    let Ok(admin_url) = std::env::var("ORDERFLOW_TEST_POSTGRES") else {
        eprintln!(
            "skipped: ORDERFLOW_TEST_POSTGRES is not set, so this PostgreSQL test did not run"
        );
        return;
    };
    let db = ScratchDatabase::create(&admin_url, "orderflow_test", rand::random())
        .await
        .expect("scratch database");
    acknowledged_orders_survive_kill_9(db.url()).await;
    db.drop().await.expect("drop scratch database");
}

const SHOPIFY_SECRET: &str = "shpss_durability_secret";

/// A small Shopify order, as its webhook body.
fn shopify_order(id: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "name": format!("#{id}"),
        "email": "ana@example.com",
        "currency": "EUR",
        "financial_status": "paid",
        "created_at": "2026-11-20T10:00:00+01:00",
        "updated_at": "2026-11-20T10:00:00+01:00",
        "subtotal_price": "20.00",
        "total_price": "20.00",
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "shipping_address": {"name": "Ana", "address1": "Alameda 1", "city": "Santiago",
                             "province_code": "RM", "zip": "8320000", "country_code": "CL"},
        "line_items": [{"id": 1, "variant_id": 11, "sku": "MUG", "name": "Mug", "quantity": 2, "price": "10.00"}],
        "shipping_lines": [{"code": "express", "title": "Express", "price": "0.00"}]
    }))
    .expect("JSON")
}

async fn acknowledged_deliveries_survive_kill_9_and_become_orders_once(database_url: &str) {
    let server = Server::start(database_url).await;
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/stores", server.base))
        .bearer_auth(TOKEN)
        .json(
            &json!({"store_id": "client", "name": "Client", "platform": "shopify",
                      "webhook_secret": SHOPIFY_SECRET, "manage_stock": false}),
        )
        .send()
        .await
        .expect("create the store");
    assert_eq!(created.status(), StatusCode::CREATED);

    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::default();
    let senders: Vec<_> = (0..4u64)
        .map(|sender| {
            let (client, base, acknowledged) =
                (client.clone(), server.base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in 0..500u64 {
                    let id = 9_000_000_000_000_000 + sender * 1_000 + n;
                    let body = shopify_order(id);
                    let signature = orderflow_connectors::signature::base64_hmac_sha256(
                        SHOPIFY_SECRET.as_bytes(),
                        &body,
                    );
                    let sent = client
                        .post(format!("{base}/webhooks/shopify/client"))
                        .header("x-shopify-hmac-sha256", signature)
                        .header("x-shopify-topic", "orders/create")
                        .header("x-shopify-event-id", format!("evt-{id}"))
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(reply) if reply.status() == StatusCode::OK => {
                            acknowledged.lock().expect("lock").push(id);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().expect("lock").len() < 600 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill_9();
    for sender in senders {
        sender.await.expect("sender");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 100,
        "too few deliveries before the kill"
    );

    let server = Server::start(database_url).await;
    let get = |path: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("get")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = get(format!("{}/inbox?status=received&limit=1", server.base)).await;
        if waiting["items"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "the inbox never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &acknowledged {
        let orders = get(format!(
            "{}/orders?store_id=client&external_id={id}",
            server.base
        ))
        .await;
        assert_eq!(
            orders["orders"].as_array().map(Vec::len),
            Some(1),
            "acknowledged delivery of order {id} did not become exactly one order: {orders}"
        );
    }
    server.kill_9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_kill_9_and_become_orders_once_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    acknowledged_deliveries_survive_kill_9_and_become_orders_once(&format!(
        "sqlite://{}",
        dir.path().join("intake.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_kill_9_and_become_orders_once_on_postgres() {
    let Ok(admin_url) = std::env::var("ORDERFLOW_TEST_POSTGRES") else {
        eprintln!(
            "skipped: ORDERFLOW_TEST_POSTGRES is not set, so this PostgreSQL test did not run"
        );
        return;
    };
    let db = ScratchDatabase::create(&admin_url, "orderflow_test", rand::random())
        .await
        .expect("scratch database");
    acknowledged_deliveries_survive_kill_9_and_become_orders_once(db.url()).await;
    db.drop().await.expect("drop scratch database");
}
