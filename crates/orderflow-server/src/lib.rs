//! The HTTP edge of orderflow: the orders, products, stores and keys API with problem+json
//! errors, the OpenAPI document and its docs page, probes and Prometheus metrics.
//!
//! Handlers are thin: extract, call the store, map the result. Business rules live in
//! `orderflow-domain`, SQL in `orderflow-store`.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post, put};
use orderflow_store::Store;
use tokio::net::TcpListener;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::error::ApiError;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// SHA-256 (hex) of `ORDERFLOW_ADMIN_TOKEN`, when one is configured.
    pub admin_token_hash: Option<String>,
    pub keys: auth::KeyCache,
    pub metrics: metrics::Metrics,
    pub stores: api::intake::StoreCache,
    /// Reads stored deliveries into orders as the intake worker does (VTEX's fetched from
    /// the OMS), for the rule preview.
    pub readings: orderflow_intake::reading::Reader,
    /// The workflow engine's controls, when this node runs workflows; every order placed here
    /// then starts a run of the order pipeline.
    pub workflows: Option<orderflow_workflow::Control>,
}

/// What every handler shares: cheap to clone.
impl Services {
    /// A run of the order pipeline for an order placed at `now`, when this node runs
    /// workflows: the store starts it in the transaction that creates the order. `forward`
    /// is the clean order intake made of a storefront order, for the run to forward as is.
    pub fn order_run(
        &self,
        payment_method: Option<&str>,
        forward: Option<&serde_json::Value>,
        now: time::OffsetDateTime,
    ) -> Option<orderflow_store::NewRun> {
        self.workflows.as_ref()?.registry().new_run(
            orderflow_pipeline::ORDER_WORKFLOW,
            &orderflow_pipeline::run_input(payment_method, forward),
            now,
        )
    }
}

#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, admin_token: Option<&str>) -> Self {
        Self::with_workflows(store, admin_token, None)
    }

    pub fn with_workflows(
        store: Arc<dyn Store>,
        admin_token: Option<&str>,
        workflows: Option<orderflow_workflow::Control>,
    ) -> Self {
        Self(Arc::new(Services {
            workflows,
            store,
            admin_token_hash: admin_token.map(auth::hash_token),
            keys: auth::KeyCache::default(),
            metrics: metrics::Metrics::default(),
            stores: api::intake::StoreCache::default(),
            readings: orderflow_intake::reading::Reader::default(),
        }))
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "orderflow", description = "Order operations engine: orders, stock, stores, keys and storefront intake."),
    paths(
        api::orders::place, api::orders::get, api::orders::edit, api::orders::cancel, api::orders::list,
        api::products::put, api::products::get, api::products::adjust_stock, api::products::list,
        api::stores::create, api::stores::get, api::stores::update, api::stores::create_key,
        api::intake::receive, api::intake::list, api::intake::get, api::intake::list_forwards,
        api::intake::retry_forward, api::intake::retry_forwards, api::intake::preview_rules,
        api::runs::list_workflows, api::runs::list_runs, api::runs::get_run, api::runs::retry_step,
        api::runs::skip_step, api::runs::cancel_run, api::runs::get_document,
        api::system::healthz, api::system::readyz, api::system::metrics, api::system::problem_page,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "orders", description = "Place, read, edit and cancel orders; stock is reserved atomically"),
        (name = "products", description = "Catalogue and stock"),
        (name = "stores", description = "Tenants and their storefront integrations"),
        (name = "intake", description = "Storefront webhooks, the inbox of deliveries and forwards to courier systems"),
        (name = "workflows", description = "Workflow definitions, runs with their steps and attempts, retry, skip and cancel"),
        (name = "auth", description = "API keys"),
        (name = "system", description = "Probes, metrics and problem types"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Request ids: a per-process random prefix and a counter, cheap and unique enough to find one
/// request's lines in the logs.
#[derive(Debug, Clone)]
struct SequentialRequestId {
    prefix: u32,
    next: Arc<AtomicU64>,
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.prefix)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let make_id = SequentialRequestId {
        prefix: rand::random(),
        next: Arc::new(AtomicU64::new(1)),
    };
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", request.id = %id, http.method = %request.method(), http.path = %request.uri().path())
    });
    Router::new()
        .route("/orders", post(api::orders::place).get(api::orders::list))
        .route(
            "/orders/{order_id}",
            get(api::orders::get)
                .patch(api::orders::edit)
                .delete(api::orders::cancel),
        )
        .route(
            "/orders/{order_id}/documents/{kind}",
            get(api::runs::get_document),
        )
        .route("/workflows", get(api::runs::list_workflows))
        .route("/runs", get(api::runs::list_runs))
        .route("/runs/{run_id}", get(api::runs::get_run))
        .route("/runs/{run_id}/cancel", post(api::runs::cancel_run))
        .route(
            "/runs/{run_id}/steps/{step}/retry",
            post(api::runs::retry_step),
        )
        .route(
            "/runs/{run_id}/steps/{step}/skip",
            post(api::runs::skip_step),
        )
        .route("/products", get(api::products::list))
        .route(
            "/products/{product_id}",
            put(api::products::put).get(api::products::get),
        )
        .route(
            "/products/{product_id}/stock",
            post(api::products::adjust_stock),
        )
        .route("/stores", post(api::stores::create))
        .route(
            "/stores/{store_id}",
            get(api::stores::get).patch(api::stores::update),
        )
        .route(
            "/stores/{store_id}/rules/preview",
            post(api::intake::preview_rules),
        )
        .route(
            "/webhooks/{platform}/{store_id}",
            post(api::intake::receive),
        )
        .route("/inbox", get(api::intake::list))
        .route("/inbox/{delivery_id}", get(api::intake::get))
        .route("/forwards", get(api::intake::list_forwards))
        .route("/forwards/retry", post(api::intake::retry_forwards))
        .route(
            "/forwards/{forward_id}/retry",
            post(api::intake::retry_forward),
        )
        .route("/api-keys", post(api::stores::create_key))
        .route("/healthz", get(api::system::healthz))
        .route("/readyz", get(api::system::readyz))
        .route("/metrics", get(api::system::metrics))
        .route("/problems/{slug}", get(api::system::problem_page))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, make_id))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(listen = ?address, "serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// When a node's [`Background`] pulls every store with API credentials itself.
#[derive(Debug, Clone)]
pub enum PullTimer {
    /// Never: the engine's `storefront_pulls` workflow pulls (one run per tick over all
    /// nodes), or the caller pulls by hand.
    Off,
    /// At once, then every so often (zero: never): tests, and `bench` runs without the engine.
    Every(std::time::Duration),
    /// On each tick of `cron`, on this node: for nodes without the workflow engine, which
    /// have no scheduler to elect a leader with.
    Cron(orderflow_workflow::Cron),
}

/// The work a node does besides answering requests: the intake worker, the forwarder and,
/// on a node without the workflow engine, the timed pulls from platforms' APIs.
#[derive(Debug)]
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Starts them on the state's store, woken by its announcements of new deliveries and due
    /// forwards (from this node or, on PostgreSQL, any node); every store with API credentials
    /// is pulled on `pulls`.
    pub fn start(
        state: &AppState,
        worker: orderflow_intake::worker::WorkerConfig,
        forwarding: orderflow_intake::forward::ForwardPolicy,
        pulls: PullTimer,
    ) -> Self {
        let mut worker = worker;
        // A node started with `--no-pipeline` has no workflows: its intake worker places
        // orders without runs and forwards them itself.
        if worker.pipeline.is_none()
            && let Some(control) = &state.workflows
        {
            let runs: Arc<dyn orderflow_store::RunPlanner> = control.registry().clone();
            let state = state.clone();
            worker.pipeline = Some(orderflow_intake::worker::Pipeline {
                order_run: Arc::new(move |now, forward| {
                    state.order_run(Some(orderflow_pipeline::PAID_AT_PLATFORM), forward, now)
                }),
                runs,
            });
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let deliveries = state.store.work_signal(orderflow_store::Work::Deliveries);
        let intake = orderflow_intake::worker::Worker::new(state.store.clone(), deliveries, worker);
        let forwarder = orderflow_intake::forward::Forwarder::new(
            state.store.clone(),
            state.store.work_signal(orderflow_store::Work::Forwards),
            forwarding,
        );
        let puller = orderflow_intake::pull::Puller::new(
            state.store.clone(),
            orderflow_intake::pull::PullConfig::default(),
        );
        let mut tasks = vec![
            tokio::spawn(intake.run(until_stopped(stopped.clone()))),
            tokio::spawn(forwarder.run(until_stopped(stopped.clone()))),
        ];
        match pulls {
            PullTimer::Off => {}
            PullTimer::Every(every) => {
                tasks.push(tokio::spawn(puller.run(every, until_stopped(stopped))));
            }
            PullTimer::Cron(cron) => {
                tasks.push(tokio::spawn(pull_on_ticks(
                    puller,
                    cron,
                    until_stopped(stopped),
                )));
            }
        }
        Self { stop, tasks }
    }

    /// Stops taking new work and waits for the work in hand.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Pulls every store on each tick of `cron` until `shutdown`. A round that outlasts a tick
/// skips it rather than starting again at once.
async fn pull_on_ticks(
    puller: orderflow_intake::pull::Puller,
    cron: orderflow_workflow::Cron,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last = time::OffsetDateTime::now_utc();
    while let Some(at) = cron.next_after(last) {
        let wait = std::time::Duration::try_from(at - time::OffsetDateTime::now_utc())
            .unwrap_or(std::time::Duration::ZERO);
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
        // A round cut short loses nothing: the cursor only moves after a stored page.
        tokio::select! {
            () = &mut shutdown => return,
            _ = puller.pull_all() => {}
        }
        last = time::OffsetDateTime::now_utc().max(at);
    }
    shutdown.await;
}
