//! The one place where failures become HTTP responses: RFC 9457 problem+json bodies that also
//! carry `error` (a sentence for humans) and `documentation` (the problem's docs page).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_domain::{ProductId, Refusal, Shortfall, StockError};
use serde::Serialize;
use utoipa::ToSchema;

/// Every problem the API can answer with; `slug` names its stable `type` and docs page.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("not enough stock for {} product(s)", .0.len())]
    InsufficientStock(Vec<Shortfall>),
    #[error("unknown product(s): {}", join(.0))]
    UnknownProducts(Vec<ProductId>),
    #[error("{0}")]
    Conflict(String),
    #[error("the order changed since you read it: it is now at version {current}")]
    PreconditionFailed { current: i64 },
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    #[error("the database is unavailable; try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

fn join(ids: &[ProductId]) -> String {
    ids.iter()
        .map(ProductId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidBody(_) | Self::InvalidQuery(_) | Self::UnknownProducts(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) | Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InsufficientStock(_) | Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn slug(&self) -> &'static str {
        match self {
            Self::InvalidBody(_) => "invalid-body",
            Self::InvalidQuery(_) => "invalid-query",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::Unauthorized(_) => "unauthorized",
            Self::BadSignature(_) => "bad-signature",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) | Self::NoRoute => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::InsufficientStock(_) => "insufficient-stock",
            Self::UnknownProducts(_) => "unknown-product",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed { .. } => "precondition-failed",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// The catalogue of problem types, for the docs pages at `/problems/{slug}`.
pub const PROBLEMS: &[(&str, &str, &str)] = &[
    (
        "invalid-body",
        "Invalid request body",
        "The body is not well-formed JSON, has a field of the wrong type or an unknown field, or a value out of range. `detail` names the field. Nothing was changed.",
    ),
    (
        "invalid-query",
        "Invalid query string",
        "A query parameter is malformed or out of range (for example `limit` above 200 or an unknown `status`).",
    ),
    (
        "unsupported-media-type",
        "Unsupported media type",
        "Send JSON bodies with `Content-Type: application/json`.",
    ),
    (
        "payload-too-large",
        "Payload too large",
        "The body exceeds the server's limit (1 MiB by default). Nothing was read or changed.",
    ),
    (
        "unauthorized",
        "Unauthorized",
        "Send `Authorization: Bearer <token>` with a token made by `POST /api-keys` or the bootstrap `ORDERFLOW_ADMIN_TOKEN`.",
    ),
    (
        "bad-signature",
        "Webhook signature does not verify",
        "The delivery is not signed with the store's webhook secret as its platform signs (Shopify `X-Shopify-Hmac-Sha256`, WooCommerce `X-WC-Webhook-Signature`, Jumpseller `Jumpseller-Hmac-Sha256`, Standard Webhooks for `custom`, the configured header for VTEX). `detail` says what was wrong. Nothing was stored.",
    ),
    (
        "forbidden",
        "Forbidden",
        "The token's role may not perform this action (for example a customer token editing products).",
    ),
    (
        "not-found",
        "Not found",
        "No such resource is visible to this token. Another tenant's orders and products are reported as not found, never as forbidden.",
    ),
    (
        "method-not-allowed",
        "Method not allowed",
        "The route exists but not with this HTTP method.",
    ),
    (
        "insufficient-stock",
        "Insufficient stock",
        "At least one line asks for more units than are available. `shortfalls` lists every short product with the requested and available counts. Nothing was reserved; retry with fewer units or with `allow_partial: true` to backorder the rest.",
    ),
    (
        "unknown-product",
        "Unknown product",
        "A line names a product the store does not have. `products` lists them.",
    ),
    (
        "conflict",
        "Conflict",
        "The request conflicts with the resource's state, for example editing or cancelling an order that has shipped, creating a store that exists, or lowering stock below what open orders reserve.",
    ),
    (
        "precondition-failed",
        "Precondition failed",
        "`If-Match` named a version of the order that is no longer current. Read the order again (its `ETag`) and retry.",
    ),
    (
        "idempotency-key-reused",
        "Idempotency key reused",
        "The `Idempotency-Key` was already used with a different request body. Use a new key for a new request.",
    ),
    (
        "unavailable",
        "Service unavailable",
        "The database could not be reached or did not answer in time. The request may be retried.",
    ),
    (
        "internal",
        "Internal error",
        "Something failed inside the server. The cause was logged with the request id.",
    ),
];

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI reference naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The same message as `detail`, for clients written against the seed API.
    pub error: String,
    /// The docs page of this problem type.
    pub documentation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfalls: Option<Vec<ShortfallBody>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ShortfallBody {
    pub product_id: String,
    pub requested: u32,
    pub available: i64,
}

impl From<&Shortfall> for ShortfallBody {
    fn from(s: &Shortfall) -> Self {
        Self {
            product_id: s.product_id.to_string(),
            requested: s.requested,
            available: s.available.max(0),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let slug = self.slug();
        let title = PROBLEMS
            .iter()
            .find(|p| p.0 == slug)
            .map_or("Error", |p| p.1);
        let detail = self.to_string();
        let body = Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            error: detail.clone(),
            detail,
            documentation: format!("/problems/{slug}"),
            shortfalls: match &self {
                Self::InsufficientStock(s) => Some(s.iter().map(ShortfallBody::from).collect()),
                _ => None,
            },
            products: match &self {
                Self::UnknownProducts(ids) => Some(ids.iter().map(ToString::to_string).collect()),
                _ => None,
            },
            current_version: match &self {
                Self::PreconditionFailed { current } => Some(*current),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<orderflow_store::Error> for ApiError {
    fn from(error: orderflow_store::Error) -> Self {
        use orderflow_store::Error as E;
        match error {
            E::NotFound => Self::NotFound("resource"),
            E::AlreadyExists(what) => Self::Conflict(format!("{what} already exists")),
            E::Refused(Refusal::Short(shortfalls)) => Self::InsufficientStock(shortfalls),
            E::Refused(Refusal::UnknownProducts(ids)) => Self::UnknownProducts(ids),
            E::Stock(StockError::Overflow) => Self::InvalidBody("stock level out of range".into()),
            E::Stock(stock) => Self::Conflict(stock.to_string()),
            E::VersionMismatch { current } => Self::PreconditionFailed { current },
            E::NotEditable(status) => Self::Conflict(format!(
                "an order that is {status} can no longer be changed"
            )),
            E::TooLateToCancel(status) => Self::Conflict(format!(
                "an order that is {status} can no longer be cancelled"
            )),
            E::LinesManagedElsewhere => Self::Conflict(E::LinesManagedElsewhere.to_string()),
            E::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            E::InvalidAction(reason) => Self::Conflict(reason),
            E::NotAdvanceable(status) => Self::Conflict(format!(
                "an order that is {status} cannot move on in the pipeline"
            )),
            E::MixedCurrencies => {
                Self::InvalidBody("all lines of an order must be priced in one currency".into())
            }
            E::Unavailable(source) => {
                tracing::error!(error = %source, "database unavailable");
                Self::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::Internal
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Maps the store's `NotFound` to a 404 naming `what`; everything else as usual.
pub fn not_found_as(what: &'static str) -> impl Fn(orderflow_store::Error) -> ApiError {
    move |error| match error {
        orderflow_store::Error::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}
