//! Storage for orderflow: the [`Store`] trait, shaped by use case (one method, one
//! transaction), and its two implementations, [`sqlite`] and [`postgres`].
//!
//! Only this crate knows SQL; driver errors never leave it. Business refusals (not enough
//! stock, a stale version, an order too late to cancel) come back as [`Error`] variants after
//! the transaction was rolled back, so a refused request never changes anything.

mod common;
mod error;
mod model;
pub mod postgres;
pub mod scratch;
pub mod sqlite;

use async_trait::async_trait;
use orderflow_domain::{OrderId, ProductId, StoreId};

pub use error::{Error, Result};
pub use model::*;

/// Opens the backend named by a `sqlite://path` or `postgres://…` URL and brings its schema up
/// to date.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            postgres::PostgresStore::connect(url).await?,
        ))
    } else {
        Err(Error::Config(format!(
            "database URL must start with sqlite:// or postgres://, got {:?}",
            url.split("://").next().unwrap_or_default()
        )))
    }
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the database answers and every embedded migration has been applied.
    async fn readiness(&self) -> Result<Readiness>;

    async fn create_store(&self, store: NewStore) -> Result<StoreRecord>;
    async fn get_store(&self, store_id: &StoreId) -> Result<StoreRecord>;

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    /// The key whose token hashes to `token_hash`, if any.
    async fn find_api_key(&self, token_hash: &str) -> Result<Option<ApiKey>>;

    /// Creates or updates a product. Setting `on_hand` below what open orders reserve fails
    /// with [`Error::Stock`].
    async fn put_product(&self, store_id: &StoreId, product: ProductInput) -> Result<Product>;
    /// Creates or updates many products in one transaction; returns how many were written.
    async fn import_products(
        &self,
        store_id: &StoreId,
        products: Vec<ProductInput>,
    ) -> Result<usize>;
    async fn get_product(&self, store_id: &StoreId, product_id: &ProductId) -> Result<Product>;
    async fn list_products(
        &self,
        store_id: &StoreId,
        page: PageRequest<ProductId>,
    ) -> Result<Page<Product>>;
    async fn adjust_stock(
        &self,
        store_id: &StoreId,
        product_id: &ProductId,
        delta: i64,
    ) -> Result<Product>;

    /// Places an order: replays or refuses a reused idempotency key, reserves every line (or
    /// the available part of each with `allow_partial`), inserts the order with its timeline
    /// and records the key, all in one transaction.
    async fn place_order(&self, order: PlaceOrder) -> Result<Placement>;
    async fn get_order(&self, scope: &Scope, order_id: &OrderId) -> Result<Order>;
    /// Replaces lines and/or address; re-reserves atomically.
    async fn edit_order(&self, scope: &Scope, edit: EditOrder) -> Result<Order>;
    /// Cancels and releases the reservation exactly once; cancelling again returns the
    /// cancelled order unchanged.
    async fn cancel_order(&self, scope: &Scope, cancel: CancelOrder) -> Result<Order>;
    async fn list_orders(&self, scope: &Scope, filter: OrderFilter) -> Result<Page<Order>>;

    /// Per product of a store: units reserved by live orders according to their lines, and the
    /// `reserved` column. Used by tests and checks to prove the books balance.
    async fn audit_reservations(&self, store_id: &StoreId) -> Result<Vec<ReservationAudit>>;
}
