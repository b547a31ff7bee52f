//! `TestApp`: the real server on 127.0.0.1 with its own fresh database, and a client for it.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the support module"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use orderflow_intake::forward::ForwardPolicy;
use orderflow_intake::worker::WorkerConfig;
use orderflow_server::{AppState, Background, PullTimer};
use orderflow_store::Store;
use orderflow_store::scratch::ScratchDatabase;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const ADMIN: &str = "test-admin-token";

/// Runs `async fn $name(backend: Backend)` as two tests, `$name::sqlite` and `$name::postgres`
/// (which says it was skipped when `ORDERFLOW_TEST_POSTGRES` is not set). `multi_thread` runs
/// them on a multi-threaded runtime, for cases about concurrency.
#[allow(
    unused_macros,
    reason = "not every test file runs cases on both backends"
)]
macro_rules! on_both_backends {
    ($name:ident) => {
        on_both_backends!(@expand $name, tokio::test);
    };
    ($name:ident, multi_thread) => {
        on_both_backends!(@expand $name, tokio::test(flavor = "multi_thread", worker_threads = 4));
    };
    (@expand $name:ident, $test:meta) => {
        mod $name {
            #[$test]
            async fn sqlite() {
                super::$name(crate::support::Backend::Sqlite).await;
            }

            #[$test]
            async fn postgres() {
                super::$name(crate::support::Backend::Postgres).await;
            }
        }
    };
}

#[allow(
    unused_imports,
    reason = "not every test file runs cases on both backends"
)]
pub(crate) use on_both_backends;

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
    /// With [`TestApp::spawn_with_pipeline`]: the providers the order pipeline talks to.
    pub providers: Option<Providers>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    background: Option<Background>,
    _dir: tempfile::TempDir,
    scratch: Option<ScratchDatabase>,
}

/// Intake as in production, but with waits short enough for a test to watch retries.
pub fn fast_forwarding() -> ForwardPolicy {
    ForwardPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(200),
        timeout: Duration::from_millis(1_500),
        poll: Duration::from_millis(20),
    }
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
        // Tests pull by hand (`Puller::pull_store`); no schedule gets in their way.
        Self::spawn_pulling(backend, Duration::ZERO).await
    }

    /// Like [`TestApp::spawn_on`], pulling every store with API credentials every
    /// `pull_every`.
    pub async fn spawn_pulling(backend: Backend, pull_every: Duration) -> Option<Self> {
        Self::spawn_with(backend, pull_every, None).await
    }

    /// A server whose orders run through the order pipeline, with a workflow worker and
    /// sandboxes for the payment provider, the carrier, the SMTP server and Slack.
    pub async fn spawn_with_pipeline(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, Duration::ZERO, Some(Engine::default())).await
    }

    /// Like [`TestApp::spawn_with_pipeline`], but the backorder sensor pokes and the workflow
    /// worker polls only every `idle`: whatever happens sooner was announced.
    pub async fn spawn_with_idle_pipeline(backend: Backend, idle: Duration) -> Option<Self> {
        let engine = Engine {
            idle,
            ..Engine::default()
        };
        Self::spawn_with(backend, Duration::ZERO, Some(engine)).await
    }

    /// Like [`TestApp::spawn_with_pipeline`], with the `storefront_pulls` workflow on `cron`
    /// (the node runs no scheduler: a test fires the ticks it wants with
    /// `orderflow_workflow::schedule::start_tick` and the registry in `providers`).
    pub async fn spawn_with_scheduled_pulls(
        backend: Backend,
        cron: orderflow_workflow::Cron,
    ) -> Option<Self> {
        let engine = Engine {
            pulls: Some(cron),
            ..Engine::default()
        };
        Self::spawn_with(backend, Duration::ZERO, Some(engine)).await
    }

    /// Two nodes on one database, as `--role api` and `--role worker` run: the server on one
    /// store handle without intake, and the intake worker and forwarder on a second handle
    /// (on SQLite, whose announcements stay in the process, the same one), polling only every
    /// `idle`: whatever they do sooner was announced by the other node.
    pub async fn spawn_api_and_worker(backend: Backend, idle: Duration) -> Option<Self> {
        let mut app = Self::spawn_with_nodes(backend, Duration::ZERO, None, None).await?;
        let worker_store = match &app.scratch {
            Some(db) => orderflow_store::open(db.url())
                .await
                .expect("open a second store handle"),
            None => app.store.clone(),
        };
        let state = AppState::new(worker_store, Some(ADMIN));
        let worker = WorkerConfig {
            poll: idle,
            ..WorkerConfig::default()
        };
        let forwarding = ForwardPolicy {
            poll: idle,
            ..fast_forwarding()
        };
        app.background = Some(Background::start(
            &state,
            worker,
            forwarding,
            PullTimer::Off,
        ));
        Some(app)
    }

    /// `pipeline`: run the workflow engine, as `Engine` says.
    async fn spawn_with(
        backend: Backend,
        pull_every: Duration,
        pipeline: Option<Engine>,
    ) -> Option<Self> {
        let worker = WorkerConfig {
            poll: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        Self::spawn_with_nodes(backend, pull_every, pipeline, Some(worker)).await
    }

    /// `intake`: the intake worker beside the server, with this configuration.
    async fn spawn_with_nodes(
        backend: Backend,
        pull_every: Duration,
        pipeline: Option<Engine>,
        intake: Option<WorkerConfig>,
    ) -> Option<Self> {
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
        let (providers, control) = match pipeline {
            Some(engine) => {
                let (providers, control) = Providers::start(store.clone(), engine).await;
                (Some(providers), Some(control))
            }
            None => (None, None),
        };
        let state = AppState::with_workflows(store.clone(), Some(ADMIN), control);
        let background = intake.map(|worker| {
            Background::start(
                &state,
                worker,
                fast_forwarding(),
                PullTimer::Every(pull_every),
            )
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(orderflow_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Some(Self {
            base,
            client: reqwest::Client::new(),
            store,
            providers,
            stop: Some(stop),
            background,
            _dir: dir,
            scratch,
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(background) = self.background.take() {
            background.stop().await;
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

    /// Posts `body` exactly as given, with `headers`, and no token.
    pub async fn post_raw(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
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

    /// Polls `GET path` until `done` holds for the reply, for at most ten seconds.
    pub async fn eventually(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self.get(path, ADMIN).await;
            if done(&reply.body) {
                return reply.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never got there; last: {}",
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send("POST", path, Some(token), Some(body), &[]).await
    }

    /// Creates a store (`POST /stores`) as the admin, asserting it was created.
    pub async fn create_store(&self, store: Value) -> Reply {
        let reply = self.post("/stores", ADMIN, store).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply
    }

    pub async fn put_product(&self, product_id: &str, on_hand: i64) -> Reply {
        let body = json!({"name": format!("Product {product_id}"), "category": "test", "price": 1250, "currency": "EUR", "on_hand": on_hand});
        self.put_product_at(&format!("/products/{product_id}"), body)
            .await
    }

    /// Puts `product` (the `PUT /products/{id}` body) in `store_id`'s catalogue.
    pub async fn put_product_in(&self, store_id: &str, product_id: &str, product: Value) -> Reply {
        self.put_product_at(
            &format!("/products/{product_id}?store_id={store_id}"),
            product,
        )
        .await
    }

    async fn put_product_at(&self, path: &str, product: Value) -> Reply {
        let reply = self
            .send("PUT", path, Some(ADMIN), Some(product), &[])
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
        self.stock_at(&format!("/products/{product_id}")).await
    }

    /// `(on_hand, reserved)` of a product of `store_id`.
    pub async fn stock_in(&self, store_id: &str, product_id: &str) -> (i64, i64) {
        self.stock_at(&format!("/products/{product_id}?store_id={store_id}"))
            .await
    }

    async fn stock_at(&self, path: &str) -> (i64, i64) {
        let reply = self.get(path, ADMIN).await;
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

/// One scripted answer of a [`Sink`].
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// The status with a `Retry-After` of so many seconds.
    RetryAfter(u16, &'static str),
    /// `200`, but only after longer than the test forwarder waits (logged as answered `0`).
    Stall,
}

/// A courier system for forwards to reach: records every request and answers each with the
/// next status of its script (the last one repeats).
#[derive(Debug, Clone)]
pub struct Sink {
    pub url: String,
    pub received: Arc<std::sync::Mutex<Vec<SinkRequest>>>,
    script: Arc<std::sync::Mutex<Vec<Answer>>>,
}

#[derive(Debug, Clone)]
pub struct SinkRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub answered: u16,
}

impl SinkRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Sink {
    /// `script`: statuses with an optional `Retry-After`, one per request.
    pub async fn start(script: Vec<Answer>) -> Self {
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let script = Arc::new(std::sync::Mutex::new(script));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the sink");
        let url = format!("http://{}/orders", listener.local_addr().expect("address"));
        let (log, plan) = (received.clone(), script.clone());
        let app = axum::Router::new().route(
            "/orders",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (log, plan) = (log.clone(), plan.clone());
                    async move {
                        let answer = {
                            let mut plan = plan.lock().expect("script");
                            if plan.len() > 1 {
                                plan.remove(0)
                            } else {
                                plan[0]
                            }
                        };
                        let (status, retry_after) = match answer {
                            Answer::Status(status) => (status, None),
                            Answer::RetryAfter(status, seconds) => (status, Some(seconds)),
                            Answer::Stall => (200, None),
                        };
                        log.lock().expect("log").push(SinkRequest {
                            headers: headers
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
                                .collect(),
                            body: body.to_vec(),
                            answered: if matches!(answer, Answer::Stall) {
                                0
                            } else {
                                status
                            },
                        });
                        if matches!(answer, Answer::Stall) {
                            tokio::time::sleep(fast_forwarding().timeout * 2).await;
                        }
                        let mut response = axum::response::Response::new(axum::body::Body::empty());
                        *response.status_mut() =
                            axum::http::StatusCode::from_u16(status).expect("a status");
                        if let Some(seconds) = retry_after {
                            response.headers_mut().insert(
                                "retry-after",
                                axum::http::HeaderValue::from_static(seconds),
                            );
                        }
                        response
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            received,
            script,
        }
    }

    /// From now on, answer every request with `status`.
    pub fn answer(&self, status: u16) {
        *self.script.lock().expect("script") = vec![Answer::Status(status)];
    }

    pub fn requests(&self) -> Vec<SinkRequest> {
        self.received.lock().expect("log").clone()
    }
}

/// The outside world of the order pipeline, each a sandbox speaking the provider's format over
/// a real socket, and the engine's worker and alert dispatcher running against them.
#[derive(Debug)]
pub struct Providers {
    pub payments: orderflow_sim::StripeSandbox,
    pub carrier: orderflow_sim::EasyPostSandbox,
    pub mail: orderflow_sim::SmtpSink,
    pub slack: orderflow_sim::SlackSink,
    /// The workflows the node runs: the order pipeline and the storefront pulls.
    pub registry: Arc<orderflow_workflow::Registry>,
    _worker: orderflow_workflow::WorkerHandle,
    _alerts: orderflow_workflow::AlertDispatcher,
}

/// How a test node runs the workflow engine.
#[derive(Debug, Clone)]
pub struct Engine {
    /// How often the backorder sensor pokes and the worker looks for due steps.
    pub idle: Duration,
    /// The `storefront_pulls` workflow's schedule, if any.
    pub pulls: Option<orderflow_workflow::Cron>,
}

impl Default for Engine {
    fn default() -> Self {
        Self {
            idle: Duration::from_millis(50),
            pulls: None,
        }
    }
}

impl Providers {
    async fn start(store: Arc<dyn Store>, engine: Engine) -> (Self, orderflow_workflow::Control) {
        let Engine { idle, pulls } = engine;
        use orderflow_adapters::{EasyPostCarrier, SlackWebhook, SmtpMailer, StripePayments};
        let payments = orderflow_sim::StripeSandbox::start("sk_test_pipeline")
            .await
            .expect("payments sandbox");
        let carrier = orderflow_sim::EasyPostSandbox::start("EZTK_pipeline")
            .await
            .expect("carrier sandbox");
        let mail = orderflow_sim::SmtpSink::start().await.expect("SMTP sink");
        let slack = orderflow_sim::SlackSink::start().await.expect("Slack sink");
        let services = orderflow_pipeline::Services {
            store: store.clone(),
            payments: Arc::new(
                StripePayments::new(payments.url(), "sk_test_pipeline").expect("payments client"),
            ),
            carrier: Arc::new(
                EasyPostCarrier::new(carrier.url(), "EZTK_pipeline").expect("carrier client"),
            ),
            mailer: Arc::new(SmtpMailer::new(&mail.url()).expect("SMTP client")),
            sender: "shop@orderflow.test".into(),
            warehouse: serde_json::from_value(json!({
                "name": "Warehouse", "line1": "417 Montgomery Street", "city": "San Francisco",
                "region": "CA", "postal_code": "94104", "country": "US"
            }))
            .expect("an address"),
        };
        let timing = orderflow_pipeline::Timing {
            backorder_poke: idle,
            ..orderflow_pipeline::Timing::default()
        };
        let pulls = orderflow_pipeline::Pulls {
            puller: orderflow_intake::pull::Puller::new(
                store.clone(),
                orderflow_intake::pull::PullConfig::default(),
            ),
            schedule: pulls,
        };
        let registry = Arc::new(
            orderflow_pipeline::registry(services, timing, pulls).expect("the pipeline registers"),
        );
        let worker = orderflow_workflow::Worker::start(
            store.clone(),
            registry.clone(),
            orderflow_workflow::WorkerConfig {
                poll_every: idle,
                ..orderflow_workflow::WorkerConfig::named("test-worker")
            },
        );
        let alerter = SlackWebhook::new(slack.webhook_url()).expect("Slack client");
        let alerts = orderflow_workflow::AlertDispatcher::start(
            store.clone(),
            Arc::new(orderflow_pipeline::OperationsAlerts(Arc::new(alerter))),
            Duration::from_millis(50),
        );
        let control = orderflow_workflow::Control::new(store, registry.clone());
        let providers = Self {
            payments,
            carrier,
            mail,
            slack,
            registry,
            _worker: worker,
            _alerts: alerts,
        };
        (providers, control)
    }
}
