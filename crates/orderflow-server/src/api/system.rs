//! Probes, metrics and the problem-type pages that error bodies link to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, PROBLEMS};

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "The process serves requests", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadinessBody {
    pub ready: bool,
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_migration: Option<i64>,
    pub latest_migration: i64,
}

#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "Database reachable and every migration applied", body = ReadinessBody),
    (status = 503, description = "Not ready", body = ReadinessBody),
))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.readiness().await {
        Ok(readiness) => {
            let ready = readiness.is_ready();
            let body = ReadinessBody {
                ready,
                database: "reachable".into(),
                applied_migration: readiness.applied_migration,
                latest_migration: readiness.latest_migration,
            };
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, Json(body)).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            let body = ReadinessBody {
                ready: false,
                database: "unreachable".into(),
                applied_migration: None,
                latest_migration: 0,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[utoipa::path(get, path = "/problems/{slug}", tag = "system", params(("slug" = String, Path)),
    responses((status = 200, description = "What a problem type means and what to do", content_type = "text/html", body = String)))]
pub async fn problem_page(Path(slug): Path<String>) -> Result<Html<String>, ApiError> {
    let (slug, title, text) = PROBLEMS
        .iter()
        .find(|p| p.0 == slug)
        .ok_or(ApiError::NotFound("problem type"))?;
    Ok(Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — orderflow</title></head>\
         <body><h1>{title}</h1><p><code>type: /problems/{slug}</code></p><p>{}</p>\
         <p><a href=\"/docs\">API reference</a></p></body></html>",
        escape(text)
    )))
}
