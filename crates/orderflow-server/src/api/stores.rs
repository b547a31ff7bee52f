//! `/stores` and `/api-keys`: tenants and the tokens that act for them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_domain::{CustomerId, StoreId};
use orderflow_store::{NewStore, Role, StoreRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, issue_key};
use crate::error::{ApiError, ApiResult, Problem, not_found_as};
use crate::extract::ApiJson;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStoreBody {
    pub store_id: String,
    pub name: String,
    /// `shopify`, `woocommerce`, `vtex`, `prestashop`, `magento`, `jumpseller` or `custom`.
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreBody {
    pub store_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
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

fn store_body(store: StoreRecord) -> StoreBody {
    StoreBody {
        store_id: store.store_id.to_string(),
        name: store.name,
        platform: store.platform,
        created_at: store.created_at.format(&Rfc3339).unwrap_or_default(),
    }
}

#[utoipa::path(
    post, path = "/stores", tag = "stores",
    request_body = NewStoreBody,
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
    ApiJson(body): ApiJson<NewStoreBody>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let store_id: StoreId = body
        .store_id
        .parse()
        .map_err(|e| ApiError::InvalidBody(format!("store_id: {e}")))?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::InvalidBody(
            "name must be 1 to 200 characters".into(),
        ));
    }
    if let Some(platform) = &body.platform
        && !PLATFORMS.contains(&platform.as_str())
    {
        return Err(ApiError::InvalidBody(format!(
            "platform must be one of {}",
            PLATFORMS.join(", ")
        )));
    }
    let store = state
        .store
        .create_store(NewStore {
            store_id,
            name,
            platform: body.platform,
            settings: orderflow_store::StoreSettings::default(),
            now: OffsetDateTime::now_utc(),
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
