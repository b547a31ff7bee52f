//! `TestApp`: the real server on 127.0.0.1 with its own fresh database, and a client for it.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the support module"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use orderflow_server::AppState;
use orderflow_store::Store;
use orderflow_store::scratch::ScratchDatabase;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const ADMIN: &str = "test-admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json body of the given status and type slug.
    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("/problems/{slug}"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(self.body["documentation"], format!("/problems/{slug}"));
        assert_eq!(self.body["detail"], self.body["error"]);
    }
}

#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    scratch: Option<ScratchDatabase>,
}

impl TestApp {
    /// A server on SQLite, always available.
    pub async fn spawn() -> Self {
        Self::spawn_on(Backend::Sqlite)
            .await
            .expect("SQLite is always available")
    }

    /// A server on the given backend; `None` (after saying so) when PostgreSQL is not
    /// configured through `ORDERFLOW_TEST_POSTGRES`.
    pub async fn spawn_on(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, scratch) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("test.db").display()),
                None,
            ),
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("ORDERFLOW_TEST_POSTGRES") else {
                    eprintln!(
                        "skipped: ORDERFLOW_TEST_POSTGRES is not set, so this PostgreSQL test did not run"
                    );
                    return None;
                };
                let db = ScratchDatabase::create(&admin_url, "orderflow_test", rand::random())
                    .await
                    .expect("create a scratch database");
                (db.url().to_owned(), Some(db))
            }
        };
        let store = orderflow_store::open(&url).await.expect("open the store");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state = AppState::new(store.clone(), Some(ADMIN));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(orderflow_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Some(Self {
            base,
            client: reqwest::Client::new(),
            store,
            stop: Some(stop),
            _dir: dir,
            scratch,
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(db) = self.scratch.take() {
            // The pool still holds connections: WITH (FORCE) closes them.
            db.drop().await.expect("drop the scratch database");
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send("POST", path, Some(token), Some(body), &[]).await
    }

    pub async fn put_product(&self, product_id: &str, on_hand: i64) -> Reply {
        let body = json!({"name": format!("Product {product_id}"), "category": "test", "price": 1250, "currency": "EUR", "on_hand": on_hand});
        let reply = self
            .send(
                "PUT",
                &format!("/products/{product_id}"),
                Some(ADMIN),
                Some(body),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
    }

    pub async fn place(&self, token: &str, lines: &[(&str, i64)]) -> Reply {
        let products: Vec<Value> = lines
            .iter()
            .map(|(p, n)| json!({"product_id": p, "item_count": n}))
            .collect();
        self.post("/orders", token, json!({"products": products}))
            .await
    }

    /// `(on_hand, reserved)` of a product in the default store, as the API reports it.
    pub async fn stock(&self, product_id: &str) -> (i64, i64) {
        let reply = self.get(&format!("/products/{product_id}"), ADMIN).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        (
            reply.body["on_hand"].as_i64().expect("on_hand"),
            reply.body["reserved"].as_i64().expect("reserved"),
        )
    }

    pub async fn order_count(&self) -> usize {
        let reply = self.get("/orders?limit=200", ADMIN).await;
        reply.body["orders"].as_array().map_or(0, Vec::len)
    }

    /// Makes a key and returns its token.
    pub async fn key(&self, body: Value) -> String {
        let reply = self.post("/api-keys", ADMIN, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().expect("token").to_owned()
    }
}
