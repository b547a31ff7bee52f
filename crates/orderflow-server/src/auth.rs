//! Bearer-token authentication: random tokens shown once and stored as SHA-256 hashes, the
//! bootstrap admin token, and what each role may see.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use orderflow_domain::{CustomerId, StoreId};
use orderflow_store::{ApiKey, NewApiKey, Role, Scope, Store};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;

/// Who is calling, resolved from the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Store(StoreId),
    Customer(StoreId, CustomerId),
}

impl Caller {
    /// `None` for a stored key whose role lacks the store or customer it needs.
    fn from_key(key: &ApiKey) -> Option<Self> {
        match (key.role, &key.store_id, &key.customer_id) {
            (Role::Admin, _, _) => Some(Self::Admin),
            (Role::Store, Some(store), _) => Some(Self::Store(store.clone())),
            (Role::Customer, Some(store), Some(customer)) => {
                Some(Self::Customer(store.clone(), customer.clone()))
            }
            _ => None,
        }
    }

    /// What this caller may read among orders.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Admin => Scope::Everything,
            Self::Store(store) => Scope::Store(store.clone()),
            Self::Customer(store, customer) => Scope::Customer(store.clone(), customer.clone()),
        }
    }

    /// The store a request acts on: an admin's named store or `default`; anyone else's own.
    /// Naming another store is answered as if it did not exist.
    pub fn acting_store(&self, named: Option<StoreId>) -> Result<StoreId, ApiError> {
        match (self, named) {
            (Self::Admin, named) => Ok(named.unwrap_or_else(StoreId::default_store)),
            (Self::Store(own) | Self::Customer(own, _), None) => Ok(own.clone()),
            (Self::Store(own) | Self::Customer(own, _), Some(named)) if *own == named => Ok(named),
            _ => Err(ApiError::NotFound("store")),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            _ => Err(ApiError::Forbidden("this action needs an admin token")),
        }
    }

    /// Admins and store tokens manage catalogues and stock; customers only read them.
    pub fn require_merchant(&self) -> Result<(), ApiError> {
        match self {
            Self::Customer(..) => Err(ApiError::Forbidden(
                "customer tokens cannot change products or stock",
            )),
            _ => Ok(()),
        }
    }
}

pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// A new token (`of_` and 256 random bits in hex) and its key id.
pub fn new_token() -> (String, String) {
    let secret: [u8; 32] = rand::random();
    let id: [u8; 8] = rand::random();
    (format!("key_{}", hex(&id)), format!("of_{}", hex(&secret)))
}

/// Makes a key for `role` in `store_id` (required unless admin; the store must exist) and
/// returns it with its token, which is shown only now: only its hash is kept.
pub async fn issue_key(
    store: &dyn Store,
    role: Role,
    store_id: Option<StoreId>,
    customer_id: Option<CustomerId>,
) -> Result<(ApiKey, String), ApiError> {
    let (store_id, customer_id) = match (role, store_id, customer_id) {
        (Role::Admin, _, _) => (None, None),
        (Role::Store, Some(store_id), _) => (Some(store_id), None),
        (Role::Customer, Some(store_id), Some(customer_id)) => (Some(store_id), Some(customer_id)),
        (Role::Customer, _, None) => {
            return Err(ApiError::InvalidBody(
                "customer_id is required for a customer key".into(),
            ));
        }
        (_, None, _) => {
            return Err(ApiError::InvalidBody(
                "store_id is required for this role".into(),
            ));
        }
    };
    if let Some(store_id) = &store_id {
        store
            .get_store(store_id)
            .await
            .map_err(crate::error::not_found_as("store"))?;
    }
    let (key_id, token) = new_token();
    let key = store
        .create_api_key(NewApiKey {
            key_id,
            token_hash: hash_token(&token),
            role,
            store_id,
            customer_id,
            now: OffsetDateTime::now_utc(),
        })
        .await?;
    Ok((key, token))
}

/// Resolved keys, kept briefly so that a hot client does not cost a database read per request.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, (Caller, Instant)>>,
}

impl KeyCache {
    const TTL: Duration = Duration::from_secs(30);
    const MAX_ENTRIES: usize = 10_000;

    fn get(&self, hash: &str) -> Option<Caller> {
        let entries = self.entries.read().ok()?;
        let (caller, at) = entries.get(hash)?;
        (at.elapsed() < Self::TTL).then(|| caller.clone())
    }

    fn put(&self, hash: String, caller: Caller) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            }
            entries.insert(hash, (caller, Instant::now()));
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing Authorization: Bearer <token> header",
            ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized(
                "Authorization header must be 'Bearer <token>'",
            ))?;
        let hash = hash_token(token);
        if state.admin_token_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Caller::Admin);
        }
        if let Some(caller) = state.keys.get(&hash) {
            return Ok(caller);
        }
        let key = state
            .store
            .find_api_key(&hash)
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked token"))?;
        let caller = Caller::from_key(&key)
            .ok_or(ApiError::Unauthorized("token has no valid role binding"))?;
        state.keys.put(hash, caller.clone());
        Ok(caller)
    }
}
