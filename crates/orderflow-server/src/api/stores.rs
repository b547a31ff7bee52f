//! `/stores` and `/api-keys`: tenants and the tokens that act for them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_domain::{CustomerId, StoreId};
use orderflow_store::{ApiCredentials, Destination, NewStore, Role, StoreRecord, StoreSettings};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, issue_key};
use crate::error::{ApiError, ApiResult, Problem, not_found_as};
use crate::extract::ApiJson;

/// A store and its integration settings. `POST /stores` needs `store_id` and `name`; in a
/// `PATCH`, a field left out is kept and `null` clears it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorePatch {
    /// Only when creating: the store's id, which never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `shopify`, `woocommerce`, `vtex`, `prestashop`, `magento`, `jumpseller` or `custom`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub platform: Option<Option<String>>,
    /// The secret the platform signs webhooks with (VTEX: the value of the
    /// `X-Orderflow-Secret` header its hook is configured to send). Setting a new one keeps the
    /// old one as `previous_webhook_secret` unless that is given too.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub webhook_secret: Option<Option<String>>,
    /// Still accepted while platforms move to the new secret; `null` ends the rotation.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub previous_webhook_secret: Option<Option<String>>,
    /// `{"base_url","key","token"}` for pulling orders from the platform's API.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub api: Option<Option<ApiCredentials>>,
    /// False for a courier's client stores: their orders do not reserve stock here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_stock: Option<bool>,
    /// The ordered list of intake rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub rules: Option<serde_json::Value>,
    /// `{"url","secret"}`: where clean orders are forwarded, signed with `secret` (`whsec_…`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub destination: Option<Option<Destination>>,
}

/// Tells a field sent as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreBody {
    pub store_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Secrets are shown masked, never in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_webhook_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub api: Option<ApiCredentials>,
    pub manage_stock: bool,
    #[schema(value_type = Vec<Object>)]
    pub rules: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub destination: Option<Destination>,
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    pub role: RoleBody,
    /// Required for `store` and `customer` keys (default `default`).
    #[serde(default)]
    pub store_id: Option<String>,
    /// Required for `customer` keys.
    #[serde(default)]
    pub customer_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyBody {
    pub key_id: String,
    /// Shown only now; only its hash is stored.
    pub token: String,
    pub role: RoleBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

/// The role of a key, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleBody {
    Admin,
    Store,
    Customer,
}

impl From<RoleBody> for Role {
    fn from(role: RoleBody) -> Self {
        match role {
            RoleBody::Admin => Role::Admin,
            RoleBody::Store => Role::Store,
            RoleBody::Customer => Role::Customer,
        }
    }
}

impl From<Role> for RoleBody {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleBody::Admin,
            Role::Store => RoleBody::Store,
            Role::Customer => RoleBody::Customer,
        }
    }
}

const PLATFORMS: &[&str] = &[
    "shopify",
    "woocommerce",
    "vtex",
    "prestashop",
    "magento",
    "jumpseller",
    "custom",
];

/// The last four characters, enough to tell secrets apart, never enough to use one.
fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("…{tail}")
}

fn store_body(store: StoreRecord) -> StoreBody {
    let settings = store.settings;
    StoreBody {
        store_id: store.store_id.to_string(),
        name: store.name,
        platform: store.platform,
        webhook_secret: settings.webhook_secret.as_deref().map(mask),
        previous_webhook_secret: settings.previous_webhook_secret.as_deref().map(mask),
        api: settings.api.map(|api| ApiCredentials {
            token: api.token.as_deref().map(mask),
            ..api
        }),
        manage_stock: settings.manage_stock,
        rules: settings.rules,
        destination: settings.destination.map(|d| Destination {
            secret: mask(&d.secret),
            ..d
        }),
        created_at: store.created_at.format(&Rfc3339).unwrap_or_default(),
    }
}

fn check_platform(platform: Option<&str>) -> ApiResult<()> {
    match platform {
        Some(platform) if platform.parse::<orderflow_connectors::Platform>().is_err() => Err(
            ApiError::InvalidBody(format!("platform must be one of {}", PLATFORMS.join(", "))),
        ),
        _ => Ok(()),
    }
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::InvalidBody(
            "name must be 1 to 200 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Applies a patch to a store, checking every value before anything changes.
fn apply_patch(store: &mut StoreRecord, patch: StorePatch) -> ApiResult<()> {
    if patch.store_id.is_some() {
        return Err(ApiError::InvalidBody("store_id cannot be changed".into()));
    }
    if let Some(name) = patch.name {
        store.name = check_name(&name)?;
    }
    if let Some(platform) = patch.platform {
        check_platform(platform.as_deref())?;
        store.platform = platform;
    }
    let settings = &mut store.settings;
    if let Some(secret) = patch.webhook_secret {
        if secret
            .as_deref()
            .is_some_and(|s| s.len() < 8 || s.len() > 512)
        {
            return Err(ApiError::InvalidBody(
                "webhook_secret must be 8 to 512 characters".into(),
            ));
        }
        if patch.previous_webhook_secret.is_none() && secret != settings.webhook_secret {
            settings.previous_webhook_secret = settings.webhook_secret.take();
        }
        settings.webhook_secret = secret;
    }
    if let Some(previous) = patch.previous_webhook_secret {
        settings.previous_webhook_secret = previous;
    }
    if let Some(api) = patch.api {
        if let Some(api) = &api {
            check_url("api.base_url", &api.base_url)?;
        }
        settings.api = api;
    }
    if let Some(manage_stock) = patch.manage_stock {
        settings.manage_stock = manage_stock;
    }
    if let Some(rules) = patch.rules {
        orderflow_intake::rules::parse_rules(&rules)
            .map_err(|e| ApiError::InvalidBody(format!("rules: {e}")))?;
        settings.rules = rules;
    }
    if let Some(destination) = patch.destination {
        if let Some(destination) = &destination {
            check_url("destination.url", &destination.url)?;
            orderflow_connectors::signature::standard::Secret::parse(&destination.secret)
                .map_err(|e| ApiError::InvalidBody(format!("destination.secret: {e}")))?;
        }
        settings.destination = destination;
    }
    Ok(())
}

fn check_url(field: &str, url: &str) -> ApiResult<()> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err(ApiError::InvalidBody(format!(
            "{field} must be an http(s) URL"
        )));
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/stores", tag = "stores",
    request_body = StorePatch,
    responses(
        (status = 201, body = StoreBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The store exists", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut body): ApiJson<StorePatch>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let store_id: StoreId = body
        .store_id
        .take()
        .ok_or_else(|| ApiError::InvalidBody("store_id is required".into()))?
        .parse()
        .map_err(|e| ApiError::InvalidBody(format!("store_id: {e}")))?;
    if body.name.is_none() {
        return Err(ApiError::InvalidBody("name is required".into()));
    }
    let now = OffsetDateTime::now_utc();
    let mut record = StoreRecord {
        store_id,
        name: String::new(),
        platform: None,
        settings: StoreSettings::default(),
        created_at: now,
    };
    apply_patch(&mut record, body)?;
    let store = state
        .store
        .create_store(NewStore {
            store_id: record.store_id,
            name: record.name,
            platform: record.platform,
            settings: record.settings,
            now,
        })
        .await?;
    let location = HeaderValue::from_str(&format!("/stores/{}", store.store_id))
        .map_err(|_| ApiError::Internal)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(store_body(store)),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/stores/{store_id}", tag = "stores",
    params(("store_id" = String, Path)),
    responses(
        (status = 200, body = StoreBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(store_id): Path<String>,
) -> ApiResult<Json<StoreBody>> {
    let store_id: StoreId = store_id.parse().map_err(|_| ApiError::NotFound("store"))?;
    let store_id = caller.acting_store(Some(store_id))?;
    let store = state
        .store
        .get_store(&store_id)
        .await
        .map_err(not_found_as("store"))?;
    Ok(Json(store_body(store)))
}

#[utoipa::path(
    patch, path = "/stores/{store_id}", tag = "stores",
    params(("store_id" = String, Path)),
    request_body = StorePatch,
    responses(
        (status = 200, body = StoreBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(store_id): Path<String>,
    ApiJson(patch): ApiJson<StorePatch>,
) -> ApiResult<Json<StoreBody>> {
    caller.require_merchant()?;
    let store_id: StoreId = store_id.parse().map_err(|_| ApiError::NotFound("store"))?;
    let store_id = caller.acting_store(Some(store_id))?;
    let mut store = state
        .store
        .get_store(&store_id)
        .await
        .map_err(not_found_as("store"))?;
    apply_patch(&mut store, patch)?;
    let updated = state
        .store
        .update_store(store)
        .await
        .map_err(not_found_as("store"))?;
    state.stores.forget(&updated.store_id);
    Ok(Json(store_body(updated)))
}

#[utoipa::path(
    post, path = "/api-keys", tag = "auth",
    request_body = NewApiKeyBody,
    responses(
        (status = 201, description = "The token is shown once", body = ApiKeyBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only admins make admin and store keys; store keys make their own customers' keys", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such store", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewApiKeyBody>,
) -> ApiResult<Response> {
    let invalid =
        |field: &str, e: &dyn std::fmt::Display| ApiError::InvalidBody(format!("{field}: {e}"));
    let named_store: Option<StoreId> = body
        .store_id
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| invalid("store_id", &e))?;
    let customer_id: Option<CustomerId> = body
        .customer_id
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| invalid("customer_id", &e))?;
    let role = Role::from(body.role);
    match (&caller, role) {
        (Caller::Admin, _) | (Caller::Store(_), Role::Customer) => {}
        _ => {
            return Err(ApiError::Forbidden(
                "this token may not make keys of that role",
            ));
        }
    }
    let store_id = match role {
        Role::Admin => None,
        Role::Store | Role::Customer => Some(caller.acting_store(named_store)?),
    };
    let (key, token) = issue_key(state.store.as_ref(), role, store_id, customer_id).await?;
    let body = ApiKeyBody {
        key_id: key.key_id,
        token,
        role: key.role.into(),
        store_id: key.store_id.map(|s| s.to_string()),
        customer_id: key.customer_id.map(|c| c.to_string()),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
