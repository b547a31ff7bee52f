//! The records the store takes and returns. They are plain data: validation happened when the
//! domain types inside them were built.

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
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRecord {
    pub store_id: StoreId,
    pub name: String,
    pub platform: Option<String>,
    pub created_at: OffsetDateTime,
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
    pub now: OffsetDateTime,
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
    /// True when an earlier request with the same idempotency key placed the order.
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
