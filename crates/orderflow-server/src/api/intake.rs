//! Storefront intake at the edge: `POST /webhooks/{platform}/{store_id}` verifies and stores a
//! delivery and answers at once; `/inbox` shows every delivery's fate; `/forwards` shows and
//! replays what was handed to courier systems.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use base64::Engine;
use orderflow_connectors::Platform;
use orderflow_connectors::webhook::{self, Verdict};
use orderflow_domain::StoreId;
use orderflow_domain::id::time_ordered_id;
use orderflow_intake::reading::Reading;
use orderflow_intake::rules::{self, Decision, Package};
use orderflow_store::{
    Delivery, DeliveryStatus, Forward, ForwardStatus, InboxFilter, NewDelivery, Store, StoreRecord,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem, not_found_as};
use crate::extract::{ApiJson, ApiQuery};

/// Headers kept with a delivery: what identifies and signs it. Configured secrets sent as
/// headers (VTEX) and anything named a token are not kept.
fn kept_header(name: &str) -> bool {
    name != webhook::VTEX_SECRET_HEADER
        && !name.contains("token")
        && (name.starts_with("x-shopify-")
            // Shopify's "events" webhooks spell their headers without the `x-`.
            || name.starts_with("shopify-")
            || name.starts_with("x-wc-webhook-")
            || name.starts_with("jumpseller-")
            || name.starts_with("webhook-")
            || name == "content-type"
            || name == "user-agent")
}

/// Stores as webhooks need them (platform and secrets), kept briefly so that a burst of
/// deliveries does not read the same row thousands of times a second. A change made through
/// this node is seen at once; one made through another node within [`StoreCache::TTL`].
#[derive(Debug, Default)]
pub struct StoreCache {
    entries: RwLock<HashMap<StoreId, (Arc<StoreRecord>, Instant)>>,
}

impl StoreCache {
    const TTL: Duration = Duration::from_secs(2);

    pub async fn get(&self, store: &dyn Store, store_id: &StoreId) -> ApiResult<Arc<StoreRecord>> {
        if let Ok(entries) = self.entries.read()
            && let Some((record, at)) = entries.get(store_id)
            && at.elapsed() < Self::TTL
        {
            return Ok(record.clone());
        }
        let record = Arc::new(
            store
                .get_store(store_id)
                .await
                .map_err(not_found_as("store"))?,
        );
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= 10_000 {
                entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            }
            entries.insert(store_id.clone(), (record.clone(), Instant::now()));
        }
        Ok(record)
    }

    pub fn forget(&self, store_id: &StoreId) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(store_id);
        }
    }
}

struct RequestHeaders<'a>(&'a HeaderMap);

impl webhook::Headers for RequestHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceivedBody {
    pub delivery_id: Option<String>,
    /// `received`, `duplicate`, or `ping` for a platform checking the endpoint.
    pub status: String,
}

#[utoipa::path(
    post, path = "/webhooks/{platform}/{store_id}", tag = "intake",
    params(("platform" = String, Path, description = "shopify, woocommerce, jumpseller, vtex or custom"), ("store_id" = String, Path)),
    request_body(content = String, description = "The platform's payload, exactly as it sends it"),
    responses(
        (status = 200, description = "Stored durably (or a duplicate, or a ping); processed in the background", body = ReceivedBody),
        (status = 401, description = "The signature does not verify; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such store, or it is not on this platform", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    Path((platform, store_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ReceivedBody>> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge {
            limit: crate::BODY_LIMIT,
        },
        other => ApiError::InvalidBody(other.body_text()),
    })?;
    let platform: Platform = platform
        .parse()
        .map_err(|_| ApiError::NotFound("platform"))?;
    let store_id: StoreId = store_id.parse().map_err(|_| ApiError::NotFound("store"))?;
    let store = state.stores.get(state.store.as_ref(), &store_id).await?;
    if store.platform.as_deref() != Some(platform.as_str()) {
        return Err(ApiError::NotFound("store"));
    }
    let secrets: Vec<&str> = [
        store.settings.webhook_secret.as_deref(),
        store.settings.previous_webhook_secret.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let now = OffsetDateTime::now_utc();
    let verdict = webhook::verify(
        platform,
        &secrets,
        &RequestHeaders(&headers),
        &body,
        now.unix_timestamp(),
    );
    let (event_key, topic) = match verdict {
        Verdict::Accept { event_key, topic } => (event_key, topic),
        Verdict::Ping => {
            return Ok(Json(ReceivedBody {
                delivery_id: None,
                status: "ping".into(),
            }));
        }
        Verdict::Unauthorized(reason) => return Err(ApiError::BadSignature(reason)),
    };
    let kept = headers
        .iter()
        .filter(|(name, _)| kept_header(name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let received = state
        .store
        .receive_delivery(NewDelivery {
            delivery_id: time_ordered_id("dlv_", unix_millis(now), rand::random()),
            store_id,
            platform: platform.as_str().to_owned(),
            event_key,
            topic,
            headers: kept,
            body: body.to_vec(),
            now,
        })
        .await?;
    // The store announced a new delivery to the intake workers of every node.
    let status = if received.duplicate_of.is_some() {
        "duplicate"
    } else {
        "received"
    };
    Ok(Json(ReceivedBody {
        delivery_id: Some(received.delivery_id),
        status: status.into(),
    }))
}

fn unix_millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryBody {
    pub delivery_id: String,
    pub store_id: String,
    pub platform: String,
    pub event_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// accepted, duplicate, stale, rejected, failed, forwarded, or received while waiting.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    pub attempts: u32,
    pub received_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// Only on `GET /inbox/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<(String, String)>>,
    /// The payload as received, when it is UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The payload as received, base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

fn delivery_body(delivery: Delivery, full: bool) -> DeliveryBody {
    let (body, body_base64) = if full {
        match String::from_utf8(delivery.body) {
            Ok(text) => (Some(text), None),
            Err(bytes) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes.into_bytes())),
            ),
        }
    } else {
        (None, None)
    };
    DeliveryBody {
        delivery_id: delivery.delivery_id,
        store_id: delivery.store_id.to_string(),
        platform: delivery.platform,
        event_key: delivery.event_key,
        topic: delivery.topic,
        status: delivery.status.as_str().to_owned(),
        reason: delivery.reason,
        order_id: delivery.order_id.map(|id| id.to_string()),
        duplicate_of: delivery.duplicate_of,
        attempts: delivery.attempts,
        received_at: rfc3339(delivery.received_at),
        processed_at: delivery.processed_at.map(rfc3339),
        headers: full.then_some(delivery.headers),
        body,
        body_base64,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    pub store_id: Option<String>,
    pub platform: Option<String>,
    pub status: Option<String>,
    /// RFC 3339.
    pub received_after: Option<String>,
    /// RFC 3339.
    pub received_before: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<DeliveryBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn instant(field: &str, text: Option<String>) -> ApiResult<Option<OffsetDateTime>> {
    text.map(|t| {
        OffsetDateTime::parse(&t, &Rfc3339)
            .map_err(|_| ApiError::InvalidQuery(format!("{field} must be an RFC 3339 timestamp")))
    })
    .transpose()
}

#[utoipa::path(
    get, path = "/inbox", tag = "intake",
    params(InboxQuery),
    responses(
        (status = 200, description = "Newest first", body = InboxPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InboxQuery>,
) -> ApiResult<Json<InboxPage>> {
    caller.require_merchant()?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 200".into()));
    }
    let status = query
        .status
        .map(|s| {
            DeliveryStatus::parse(&s).ok_or_else(|| {
                ApiError::InvalidQuery(
                    "status must be received, accepted, duplicate, stale, rejected, failed or forwarded".into(),
                )
            })
        })
        .transpose()?;
    let store_id = query
        .store_id
        .map(|s| s.parse::<StoreId>())
        .transpose()
        .map_err(|e| ApiError::InvalidQuery(format!("store_id: {e}")))?;
    let page = state
        .store
        .list_deliveries(
            &caller.scope(),
            InboxFilter {
                store_id,
                platform: query.platform,
                status,
                received_after: instant("received_after", query.received_after)?,
                received_before: instant("received_before", query.received_before)?,
                limit,
                before: query.cursor,
            },
        )
        .await?;
    let next_cursor = page
        .has_more
        .then(|| page.items.last().map(|d| d.delivery_id.clone()))
        .flatten();
    Ok(Json(InboxPage {
        items: page
            .items
            .into_iter()
            .map(|d| delivery_body(d, false))
            .collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/inbox/{delivery_id}", tag = "intake",
    params(("delivery_id" = String, Path)),
    responses(
        (status = 200, description = "With the headers and payload as received", body = DeliveryBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(delivery_id): Path<String>,
) -> ApiResult<Json<DeliveryBody>> {
    caller.require_merchant()?;
    let delivery = state
        .store
        .get_delivery(&caller.scope(), &delivery_id)
        .await
        .map_err(not_found_as("delivery"))?;
    Ok(Json(delivery_body(delivery, true)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ForwardBody {
    pub forward_id: String,
    pub store_id: String,
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    pub url: String,
    /// pending, delivered or dead.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

fn forward_body(forward: Forward) -> ForwardBody {
    ForwardBody {
        forward_id: forward.forward_id,
        store_id: forward.store_id.to_string(),
        order_id: forward.order_id.to_string(),
        delivery_id: forward.delivery_id,
        url: forward.url,
        status: forward.status.as_str().to_owned(),
        attempts: forward.attempts,
        next_attempt_at: rfc3339(forward.next_attempt_at),
        last_error: forward.last_error,
        created_at: rfc3339(forward.created_at),
        delivered_at: forward.delivered_at.map(rfc3339),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ForwardQuery {
    /// pending, delivered or dead.
    pub status: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

fn forward_status(text: Option<String>) -> ApiResult<Option<ForwardStatus>> {
    text.map(|s| {
        ForwardStatus::parse(&s).ok_or_else(|| {
            ApiError::InvalidQuery("status must be pending, delivered or dead".into())
        })
    })
    .transpose()
}

#[utoipa::path(
    get, path = "/forwards", tag = "intake",
    params(ForwardQuery),
    responses(
        (status = 200, description = "Newest first", body = [ForwardBody]),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_forwards(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ForwardQuery>,
) -> ApiResult<Json<Vec<ForwardBody>>> {
    caller.require_merchant()?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 200".into()));
    }
    let forwards = state
        .store
        .list_forwards(&caller.scope(), forward_status(query.status)?, limit)
        .await?;
    Ok(Json(forwards.into_iter().map(forward_body).collect()))
}

#[utoipa::path(
    post, path = "/forwards/{forward_id}/retry", tag = "intake",
    params(("forward_id" = String, Path)),
    responses(
        (status = 200, description = "Due now, its tries counted afresh", body = ForwardBody),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already delivered", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn retry_forward(
    State(state): State<AppState>,
    caller: Caller,
    Path(forward_id): Path<String>,
) -> ApiResult<Json<ForwardBody>> {
    caller.require_merchant()?;
    let forward = state
        .store
        .retry_forward(&caller.scope(), &forward_id, OffsetDateTime::now_utc())
        .await
        .map_err(not_found_as("forward"))?;
    Ok(Json(forward_body(forward)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RetryQuery {
    /// Only `dead` can be replayed in bulk.
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetriedBody {
    pub retried: u64,
}

#[utoipa::path(
    post, path = "/forwards/retry", tag = "intake",
    params(RetryQuery),
    responses(
        (status = 200, description = "How many dead forwards are due again", body = RetriedBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn retry_forwards(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RetryQuery>,
) -> ApiResult<Json<RetriedBody>> {
    caller.require_merchant()?;
    if query.status != "dead" {
        return Err(ApiError::InvalidQuery(
            "status must be dead: only dead forwards are replayed in bulk".into(),
        ));
    }
    let retried = state
        .store
        .retry_dead_forwards(&caller.scope(), OffsetDateTime::now_utc())
        .await?;
    Ok(Json(RetriedBody { retried }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The rules to try; the store's own when absent.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub rules: Option<serde_json::Value>,
    /// How many of the latest deliveries to run them on (1 to 500, default 50).
    #[serde(default)]
    pub last: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOutcome {
    pub delivery_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// accept, reject, split, or unreadable.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub packages: Vec<Package>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewBody {
    pub accepted: usize,
    pub rejected: usize,
    pub split: usize,
    pub unreadable: usize,
    pub deliveries: Vec<PreviewOutcome>,
}

#[utoipa::path(
    post, path = "/stores/{store_id}/rules/preview", tag = "stores",
    params(("store_id" = String, Path)),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "What the rules would decide for the latest deliveries; nothing is changed", body = PreviewBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn preview_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path(store_id): Path<String>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> ApiResult<Json<PreviewBody>> {
    caller.require_merchant()?;
    let store_id: StoreId = store_id.parse().map_err(|_| ApiError::NotFound("store"))?;
    let store_id = caller.acting_store(Some(store_id))?;
    let store = state
        .store
        .get_store(&store_id)
        .await
        .map_err(not_found_as("store"))?;
    let rules_json = request
        .rules
        .unwrap_or_else(|| store.settings.rules.clone());
    let rules = rules::parse_rules(&rules_json)
        .map_err(|e| ApiError::InvalidBody(format!("rules: {e}")))?;
    let last = request.last.unwrap_or(50);
    if !(1..=500).contains(&last) {
        return Err(ApiError::InvalidBody("last must be 1 to 500".into()));
    }
    let deliveries = state.store.recent_order_deliveries(&store_id, last).await?;
    let mut body = PreviewBody {
        accepted: 0,
        rejected: 0,
        split: 0,
        unreadable: 0,
        deliveries: Vec::new(),
    };
    // The order each delivery carries as the worker reads it: a VTEX hook's from the OMS, a
    // Jumpseller body dated by its header.
    let readings = state.readings.read_all(&store, &deliveries).await;
    for (delivery, reading) in deliveries.into_iter().zip(readings) {
        let outcome = match reading {
            // A deletion notice names an order and nothing else: no rule can judge it.
            Reading::Deleted {
                platform,
                external_id,
            } => {
                body.unreadable += 1;
                PreviewOutcome {
                    delivery_id: delivery.delivery_id,
                    reason: Some(format!(
                        "{platform} deleted order {external_id}: the notice cancels the order, no rule applies"
                    )),
                    external_id: Some(external_id),
                    decision: "unreadable",
                    packages: Vec::new(),
                }
            }
            Reading::Unreadable(reason) => {
                body.unreadable += 1;
                PreviewOutcome {
                    delivery_id: delivery.delivery_id,
                    external_id: None,
                    decision: "unreadable",
                    reason: Some(reason),
                    packages: Vec::new(),
                }
            }
            Reading::Order(order) => match rules::apply(&rules, &order) {
                Decision::Reject { rule, reason } => {
                    body.rejected += 1;
                    PreviewOutcome {
                        delivery_id: delivery.delivery_id,
                        external_id: Some(order.external_id.clone()),
                        decision: "reject",
                        reason: Some(format!("{rule}: {reason}")),
                        packages: Vec::new(),
                    }
                }
                Decision::Accept {
                    packages, notes, ..
                } => {
                    let split = packages.len() > 1;
                    if split {
                        body.split += 1;
                    } else {
                        body.accepted += 1;
                    }
                    PreviewOutcome {
                        delivery_id: delivery.delivery_id,
                        external_id: Some(order.external_id.clone()),
                        decision: if split { "split" } else { "accept" },
                        reason: (!notes.is_empty()).then(|| notes.join("; ")),
                        packages,
                    }
                }
            },
        };
        body.deliveries.push(outcome);
    }
    Ok(Json(body))
}
