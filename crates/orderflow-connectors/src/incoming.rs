//! The canonical order a storefront payload normalises into (PRODUCT.md §10).

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::platform::Platform;

/// An order as a storefront platform reported it, in orderflow's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingOrder {
    pub platform: Platform,
    /// The platform's own id of the order: the decimal digits of a numeric id (Shopify's exceed
    /// 2^53, so they never pass through a float), or the platform's string (VTEX `…-01`).
    pub external_id: String,
    /// The number the shop and its customer see: `#1001`, `IMCVKMUCP`, `000000003`.
    pub number: Option<String>,
    pub state: PlatformState,
    /// The platform's status word as sent, kept for the operator.
    pub platform_status: String,
    pub customer: Customer,
    pub shipping_address: Option<Address>,
    pub lines: Vec<IncomingLine>,
    /// The shipping method's code or title as the platform names it.
    pub shipping_method: Option<String>,
    pub currency: Currency,
    pub totals: Totals,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the platform last changed the order: an update older than what is held is stale.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingLine {
    /// The SKU, when the platform has a non-empty one.
    pub sku: Option<String>,
    /// The platform's id of the product or variant, for lines without a SKU.
    pub item_id: Option<String>,
    pub name: Option<String>,
    pub quantity: u32,
    pub unit_price_minor: i64,
}

impl IncomingLine {
    /// What the line is known by in orderflow: its SKU, else the platform's item id.
    pub fn product_key(&self) -> Option<&str> {
        self.sku.as_deref().or(self.item_id.as_deref())
    }
}

/// Amounts in minor units of the order's currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub items_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
}

/// Where the platform says the order stands, reduced to what intake acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformState {
    /// Placed, not paid yet (or payment pending / on hold).
    Pending,
    /// Paid or payment authorised: ready to fulfil.
    Paid,
    /// Fulfilled, shipped or completed on the platform's side.
    Fulfilled,
    /// Cancelled before fulfilment: intake cancels the order and releases its stock.
    Cancelled,
    /// Refunded: treated as a cancellation for an order not shipped yet.
    Refunded,
}

impl PlatformState {
    /// Whether this state ends the order on our side.
    pub fn cancels(self) -> bool {
        matches!(self, PlatformState::Cancelled | PlatformState::Refunded)
    }
}
