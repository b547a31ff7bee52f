//! The records the store takes and returns. They are plain data: validation happened when the
//! domain types inside them were built.

use orderflow_domain::status::Progress;
use orderflow_domain::{
    Address, Currency, Customer, CustomerId, OrderId, OrderLines, OrderStatus, ProductId, Quantity,
    Shortfall, StoreId, TimelineEntry,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub applied_migration: Option<i64>,
    pub latest_migration: i64,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.applied_migration == Some(self.latest_migration)
    }
}

#[derive(Debug, Clone)]
pub struct NewStore {
    pub store_id: StoreId,
    pub name: String,
    pub platform: Option<String>,
    pub settings: StoreSettings,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRecord {
    pub store_id: StoreId,
    pub name: String,
    pub platform: Option<String>,
    pub settings: StoreSettings,
    pub created_at: OffsetDateTime,
}

/// How a store is connected to its storefront platform and to its courier system. Secrets are
/// kept as they are, because checking a platform's HMAC needs them; the API shows them masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    /// The secret the platform signs webhooks with (VTEX: the value of its configured header).
    pub webhook_secret: Option<String>,
    /// The secret being rotated out, still accepted until it is removed.
    pub previous_webhook_secret: Option<String>,
    /// Credentials for pulling orders from the platform's API.
    pub api: Option<ApiCredentials>,
    /// False for a courier's client stores: their orders are recorded and forwarded without
    /// reserving stock in orderflow's catalogue.
    pub manage_stock: bool,
    /// The store's intake rules, in order, as JSON (validated by the intake crate).
    pub rules: serde_json::Value,
    /// Where clean orders are forwarded (the courier system).
    pub destination: Option<Destination>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            webhook_secret: None,
            previous_webhook_secret: None,
            api: None,
            manage_stock: true,
            rules: serde_json::Value::Array(Vec::new()),
            destination: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiCredentials {
    /// The shop's API root, e.g. `https://shop.example/api` or VTEX's account URL.
    pub base_url: String,
    /// API key, app key, consumer key or webservice key, as the platform names it.
    #[serde(default)]
    pub key: Option<String>,
    /// The matching secret or token.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub url: String,
    /// Standard Webhooks signing secret (`whsec_…`).
    pub secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Store,
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Store => "store",
            Self::Customer => "customer",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [Self::Admin, Self::Store, Self::Customer]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key_id: String,
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    pub role: Role,
    pub store_id: Option<StoreId>,
    pub customer_id: Option<CustomerId>,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key_id: String,
    pub role: Role,
    pub store_id: Option<StoreId>,
    pub customer_id: Option<CustomerId>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInput {
    pub product_id: ProductId,
    pub name: String,
    pub category: Option<String>,
    pub price_minor: i64,
    pub currency: Currency,
    pub on_hand: i64,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub store_id: StoreId,
    pub product_id: ProductId,
    pub name: String,
    pub category: Option<String>,
    pub price_minor: i64,
    pub currency: Currency,
    pub on_hand: i64,
    pub reserved: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Product {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// Whose data a request may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An administrator: every store.
    Everything,
    /// One store's data.
    Store(StoreId),
    /// One customer's own orders in one store.
    Customer(StoreId, CustomerId),
}

impl Scope {
    pub fn admits(&self, store_id: &StoreId, customer_id: Option<&CustomerId>) -> bool {
        match self {
            Self::Everything => true,
            Self::Store(own) => own == store_id,
            Self::Customer(own, customer) => own == store_id && customer_id == Some(customer),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    /// Hex SHA-256 of the canonical request, to tell a retry from a reused key.
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub lines: OrderLines,
    pub allow_partial: bool,
    pub customer: Option<Customer>,
    pub shipping_address: Option<Address>,
    pub idempotency: Option<Idempotency>,
    /// Set when the order comes from a storefront rather than the API.
    pub source: Option<OrderSource>,
    /// The workflow run that carries the order on, started in the same transaction.
    pub run: Option<crate::runs::NewRun>,
    pub now: OffsetDateTime,
}

/// Where a storefront order came from, for the second level of de-duplication: one order per
/// store and platform order id, and no update older than the one held.
#[derive(Debug, Clone)]
pub struct OrderSource {
    pub external_id: String,
    /// When the platform last changed the order.
    pub updated_at: OffsetDateTime,
    /// The normalised order as received, as JSON.
    pub document: String,
    /// The first timeline note: where the order came from and what the store's rules did.
    pub note: String,
    /// `Some` for a store that does not manage stock here: the lines at the platform's prices,
    /// recorded without reserving anything.
    pub unmanaged_lines: Option<Vec<PricedLine>>,
}

/// What the client was told when the order was placed; kept with the idempotency key so a
/// retry gets exactly the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub order_id: OrderId,
    pub order_status: OrderStatus,
    pub products: Vec<orderflow_domain::OrderLine>,
    pub unavailable: Vec<Shortfall>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub receipt: Receipt,
    /// True when an earlier request with the same idempotency key placed the order, or, for
    /// a storefront order, an earlier placement of the same external id.
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub unit_price_minor: i64,
    pub currency: Currency,
}

impl PricedLine {
    pub fn as_order_line(&self) -> orderflow_domain::OrderLine {
        orderflow_domain::OrderLine {
            product_id: self.product_id.clone(),
            quantity: self.quantity,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackorderLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub external_id: Option<String>,
    pub status: OrderStatus,
    pub lines: Vec<PricedLine>,
    pub backorder: Vec<BackorderLine>,
    pub customer: Option<Customer>,
    pub shipping_address: Option<Address>,
    pub currency: Option<Currency>,
    pub total_minor: i64,
    pub timeline: Vec<TimelineEntry>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// For a storefront order, where it came from and what intake decided, as JSON.
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EditOrder {
    pub order_id: OrderId,
    /// `If-Match`: the version the client last saw.
    pub expected_version: Option<i64>,
    pub lines: Option<OrderLines>,
    pub shipping_address: Option<Address>,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct CancelOrder {
    pub order_id: OrderId,
    pub reason: Option<String>,
    pub now: OffsetDateTime,
    /// `Some` to cancel the order's running workflow runs in the same transaction, so that no
    /// step ever finds the order cancelled while its run goes on.
    pub runs: Option<std::sync::Arc<dyn crate::runs::RunPlanner>>,
}

/// The fulfilment pipeline moving an order on. Not scoped: the system acts, not a caller.
#[derive(Debug, Clone)]
pub struct AdvanceOrder {
    pub order_id: OrderId,
    pub to: Progress,
    /// The timeline note of the change (the payment's reference, the carrier's tracking code).
    pub note: Option<String>,
    pub now: OffsetDateTime,
}

/// What trying to reserve a backordered order's missing units came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one answer per call, never held in bulk: boxing the order would buy nothing"
)]
pub enum BackorderFill {
    /// Everything it waited for is reserved now; the order is confirmed.
    Filled(Order),
    /// Not yet: per product, how many more units must arrive before this order's turn can be
    /// served (orders that have waited longer are served first). Nothing changed.
    Waiting { missing: Vec<BackorderLine> },
    /// The order waits for nothing (any more): its status.
    NotBackordered(OrderStatus),
}

/// A file the pipeline produced for an order (packing slip, shipping label), one per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub kind: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// When this version was written; rewriting a document replaces it.
    pub created_at: OffsetDateTime,
}

/// A document without its body, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub kind: String,
    pub content_type: String,
    /// Bytes in the body.
    pub size: u64,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    pub limit: u32,
    /// Continue after this key (exclusive).
    pub after: Option<C>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// True when more items follow the last one returned.
    pub has_more: bool,
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub store_id: Option<StoreId>,
    pub customer_id: Option<CustomerId>,
    pub external_id: Option<String>,
    pub limit: u32,
    /// Newest first: continue with orders older than this one.
    pub before: Option<OrderId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationAudit {
    pub product_id: ProductId,
    pub on_hand: i64,
    pub reserved: i64,
    /// Sum of the lines of orders whose status holds a reservation.
    pub reserved_by_live_orders: i64,
}

/// A webhook delivery or pulled document, as it is written to the inbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub store_id: StoreId,
    pub platform: String,
    /// The platform's event identity: deliveries with the same key are duplicates.
    pub event_key: String,
    pub topic: Option<String>,
    /// The headers that matter (signature, event id, topic), as received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub delivery_id: String,
    /// The delivery that first carried this event, when this one is a duplicate.
    pub duplicate_of: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored, waiting for the intake worker.
    Received,
    Accepted,
    Duplicate,
    /// Older than what is held for the order; recorded and ignored.
    Stale,
    /// Refused by a store rule or because it cannot become an order here.
    Rejected,
    /// Signed but unparseable, or failed while processing.
    Failed,
    /// Accepted and delivered to the store's destination.
    Forwarded,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 7] = [
        Self::Received,
        Self::Accepted,
        Self::Duplicate,
        Self::Stale,
        Self::Rejected,
        Self::Failed,
        Self::Forwarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Forwarded => "forwarded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: String,
    pub store_id: StoreId,
    pub platform: String,
    pub event_key: String,
    pub topic: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub order_id: Option<OrderId>,
    pub duplicate_of: Option<String>,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    pub received_at: OffsetDateTime,
    pub processed_at: Option<OffsetDateTime>,
}

impl Delivery {
    /// A kept header's value; names are stored lower-case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(kept, _)| kept.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What the intake worker decided about a delivery.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub order_id: Option<OrderId>,
    /// Queued in the same transaction, once per order.
    pub forward: Option<NewForward>,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub store_id: Option<StoreId>,
    pub platform: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub received_after: Option<OffsetDateTime>,
    pub received_before: Option<OffsetDateTime>,
    pub limit: u32,
    /// Newest first: continue with deliveries older than this one.
    pub before: Option<String>,
}

/// How an update from the platform applied to the order already held for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUpdate {
    /// Newer than what was held: recorded.
    Applied { order_id: OrderId },
    /// Not newer than what was held: ignored.
    Stale { order_id: OrderId },
}

#[derive(Debug, Clone)]
pub struct NewForward {
    pub forward_id: String,
    pub store_id: StoreId,
    pub order_id: OrderId,
    pub delivery_id: Option<String>,
    pub url: String,
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardStatus {
    Pending,
    Delivered,
    /// Every try failed; waits for a replay.
    Dead,
}

impl ForwardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub forward_id: String,
    pub store_id: StoreId,
    pub order_id: OrderId,
    pub delivery_id: Option<String>,
    pub url: String,
    pub payload: String,
    pub status: ForwardStatus,
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
}

/// The result of one attempt to deliver a forward.
#[derive(Debug, Clone)]
pub enum ForwardOutcome {
    Delivered,
    RetryAt { at: OffsetDateTime, error: String },
    Dead { error: String },
}
