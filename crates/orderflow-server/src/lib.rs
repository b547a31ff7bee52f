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
}

/// What every handler shares: cheap to clone.
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
        Self(Arc::new(Services {
            store,
            admin_token_hash: admin_token.map(auth::hash_token),
            keys: auth::KeyCache::default(),
            metrics: metrics::Metrics::default(),
        }))
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "orderflow", description = "Order operations engine: orders, stock, stores and keys."),
    paths(
        api::orders::place, api::orders::get, api::orders::edit, api::orders::cancel, api::orders::list,
        api::products::put, api::products::get, api::products::adjust_stock, api::products::list,
        api::stores::create, api::stores::get, api::stores::create_key,
        api::system::healthz, api::system::readyz, api::system::metrics, api::system::problem_page,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "orders", description = "Place, read, edit and cancel orders; stock is reserved atomically"),
        (name = "products", description = "Catalogue and stock"),
        (name = "stores", description = "Tenants"),
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
        .route("/stores/{store_id}", get(api::stores::get))
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
