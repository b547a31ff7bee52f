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
mod runs;
pub mod scratch;
pub mod sqlite;
mod wake;

use async_trait::async_trait;
use orderflow_domain::{OrderId, ProductId, StoreId};
use time::OffsetDateTime;

pub use error::{Error, Result};
pub use model::*;
pub use runs::*;

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

/// What the store announces when it commits some, each kind to its own workers
/// ([`Store::work_signal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    /// Workflow steps to claim: a run started, a step made ready or due now.
    Steps,
    /// Inbox deliveries to process: a webhook or a pull stored one.
    Deliveries,
    /// Forwards due now: queued, or replayed by an operator.
    Forwards,
}

impl Work {
    pub const ALL: [Work; 3] = [Work::Steps, Work::Deliveries, Work::Forwards];
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the database answers and every embedded migration has been applied.
    async fn readiness(&self) -> Result<Readiness>;

    async fn create_store(&self, store: NewStore) -> Result<StoreRecord>;
    async fn get_store(&self, store_id: &StoreId) -> Result<StoreRecord>;
    /// Replaces a store's name, platform and settings.
    async fn update_store(&self, store: StoreRecord) -> Result<StoreRecord>;

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
    /// Moves an order one step along the fulfilment path (paid, fulfilling, shipped): status,
    /// version and a timeline entry with the note. Shipping turns the order's reservation into
    /// stock that left (`on_hand` and `reserved` both drop by each line). An order already at
    /// or past the point is returned unchanged, so a retried step is harmless; one that cannot
    /// get there is refused with [`Error::NotAdvanceable`].
    async fn advance_order(&self, advance: AdvanceOrder) -> Result<Order>;
    /// Reserves the units a backordered order waits for if the stock allows it, first come,
    /// first served: of each product, the order may take only what is left after every order
    /// that started waiting for it earlier got its share. All or nothing; when filled, its
    /// lines grow by what was reserved and it is confirmed.
    async fn fill_backorder(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
    ) -> Result<BackorderFill>;

    /// Stores an order's document of `kind`, replacing the one written before (a retried step
    /// rewrites its document). [`Error::NotFound`] when there is no such order.
    async fn put_document(
        &self,
        order_id: &OrderId,
        kind: &str,
        content_type: &str,
        body: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// An order's document, if `scope` may see the order.
    async fn get_document(&self, scope: &Scope, order_id: &OrderId, kind: &str)
    -> Result<Document>;
    /// An order's documents by kind, without bodies; [`Error::NotFound`] when `scope` may not
    /// see the order.
    async fn list_documents(&self, scope: &Scope, order_id: &OrderId) -> Result<Vec<DocumentInfo>>;

    /// Per product of a store: units reserved by live orders according to their lines, and the
    /// `reserved` column. Used by tests and checks to prove the books balance.
    async fn audit_reservations(&self, store_id: &StoreId) -> Result<Vec<ReservationAudit>>;

    /// Writes a delivery durably before it is acknowledged. A delivery whose event key the
    /// store has seen is written too, as a duplicate of the first (a unique key decides, so
    /// racing re-sends cannot both win).
    async fn receive_delivery(&self, delivery: NewDelivery) -> Result<Received>;
    /// Leases up to `limit` received deliveries, oldest first, until `lease_until`; a delivery
    /// whose lease ran out (its worker died) is claimed again.
    async fn claim_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Delivery>>;
    /// Records a delivery's fate and queues its forward, in one transaction.
    async fn settle_delivery(&self, settlement: Settlement) -> Result<()>;
    /// Queues a forward due now, unless its order already has one (one forward per order, a
    /// unique column); returns whether this call queued it. The order pipeline forwards this
    /// way, so a retried step finds the forward already there.
    async fn queue_forward(&self, forward: NewForward, now: OffsetDateTime) -> Result<bool>;
    async fn get_delivery(&self, scope: &Scope, delivery_id: &str) -> Result<Delivery>;
    /// Newest first, without bodies.
    async fn list_deliveries(&self, scope: &Scope, filter: InboxFilter) -> Result<Page<Delivery>>;
    /// The latest `limit` deliveries of a store that carried an order (for rule previews).
    async fn recent_order_deliveries(
        &self,
        store_id: &StoreId,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Records a newer platform version of the order held for `external_id`, or reports it
    /// stale; [`Error::NotFound`] when no order is held for it.
    async fn update_order_source(
        &self,
        store_id: &StoreId,
        external_id: &str,
        updated_at: OffsetDateTime,
        document: String,
        now: OffsetDateTime,
    ) -> Result<SourceUpdate>;

    /// Where the store's last pull from its platform got to, if it ever pulled.
    async fn pull_cursor(&self, store_id: &StoreId) -> Result<Option<String>>;
    async fn set_pull_cursor(
        &self,
        store_id: &StoreId,
        cursor: &str,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Stores whose settings carry API credentials, for the scheduled pulls.
    async fn stores_with_api(&self) -> Result<Vec<StoreRecord>>;

    /// Leases up to `limit` pending forwards that are due, until `lease_until`.
    async fn claim_due_forwards(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Forward>>;
    /// Records an attempt; a delivered forward marks its inbox delivery `forwarded`.
    async fn record_forward_attempt(
        &self,
        forward_id: &str,
        outcome: ForwardOutcome,
        now: OffsetDateTime,
    ) -> Result<()>;
    async fn get_forward(&self, scope: &Scope, forward_id: &str) -> Result<Forward>;
    async fn list_forwards(
        &self,
        scope: &Scope,
        status: Option<ForwardStatus>,
        limit: u32,
    ) -> Result<Vec<Forward>>;
    /// Makes a forward that is not delivered due now, with its tries counted afresh.
    async fn retry_forward(
        &self,
        scope: &Scope,
        forward_id: &str,
        now: OffsetDateTime,
    ) -> Result<Forward>;
    /// Makes every dead forward the scope sees due now; returns how many.
    async fn retry_dead_forwards(&self, scope: &Scope, now: OffsetDateTime) -> Result<u64>;

    /// Creates a run with its steps, or finds the run already started with its dedupe key.
    async fn start_run(&self, start: StartRun) -> Result<RunStarted>;
    /// Leases up to `claim.limit` due steps: ready ones whose time has come, oldest first, and
    /// running ones whose lease expired (their worker died); each lease starts an attempt.
    async fn claim_steps(&self, claim: Claim) -> Result<Vec<ClaimedStep>>;
    /// Extends a lease the worker still holds; [`Error::LeaseLost`] when it does not.
    async fn heartbeat(
        &self,
        run_id: &str,
        step: &str,
        attempt: u32,
        worker: &str,
        lease_until: OffsetDateTime,
    ) -> Result<()>;
    /// Records how an attempt ended and lets `planner` decide what follows, in one transaction
    /// with the run locked. [`Error::LeaseLost`] when the worker no longer holds the step.
    async fn finish_step(
        &self,
        finish: FinishStep,
        planner: std::sync::Arc<dyn RunPlanner>,
    ) -> Result<Finished>;
    /// Cancels a run: steps not yet started are cancelled, running ones finish, and whatever
    /// the planner then makes ready (compensation) still runs.
    async fn cancel_run(
        &self,
        scope: &Scope,
        run_id: &str,
        now: OffsetDateTime,
        planner: std::sync::Arc<dyn RunPlanner>,
    ) -> Result<Run>;
    /// An operator's retry or skip of one step.
    async fn act_on_step(
        &self,
        scope: &Scope,
        run_id: &str,
        step: &str,
        action: StepAction,
        now: OffsetDateTime,
        planner: std::sync::Arc<dyn RunPlanner>,
    ) -> Result<Run>;
    /// A run with its steps and every attempt.
    async fn get_run(&self, scope: &Scope, run_id: &str) -> Result<Run>;
    /// Newest first, without steps.
    async fn list_runs(&self, scope: &Scope, filter: RunFilter) -> Result<Page<Run>>;
    /// When the earliest ready step falls due or the earliest lease runs out, so that an idle
    /// worker sleeps exactly as long as it may.
    async fn next_step_due(&self) -> Result<Option<OffsetDateTime>>;
    /// Fires whenever new `work` of that kind may be claimable, on this node (SQLite: this
    /// store handle) and, on PostgreSQL, on every node: announced after the commit that made
    /// it, so whoever wakes finds it. Polling stays the fallback for a lost announcement.
    fn work_signal(&self, work: Work) -> std::sync::Arc<tokio::sync::Notify>;

    /// Tries to become the one node that does `role`; `None` while another node holds it.
    async fn try_lead(&self, role: &str) -> Result<Option<Box<dyn Leadership>>>;

    /// Leases up to `limit` alerts that are due to be sent.
    async fn claim_alerts(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Alert>>;
    async fn record_alert(
        &self,
        alert_id: &str,
        outcome: AlertOutcome,
        now: OffsetDateTime,
    ) -> Result<()>;
}
