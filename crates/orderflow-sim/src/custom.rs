//! `custom`: a home-made shop posting orderflow's canonical order in a Standard Webhooks
//! envelope, `{"type":"order.created","timestamp":…,"data":{…}}`, signed per the
//! specification (PLATFORMS.md §7): the message id is the same on every re-send, the timestamp
//! is each attempt's own.

use orderflow_connectors::signature::standard::Secret;
use orderflow_connectors::{IncomingLine, IncomingOrder, Platform, PlatformState, Totals};
use orderflow_domain::party::{Address, Customer};
use time::OffsetDateTime;

use crate::SimError;
use crate::order::{SimOrder, SimStatus};
use crate::send::{self, Delivery, RetryPolicy, SendReport, header};
use crate::text::rfc3339;

pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_UPDATED: &str = "order.updated";

/// The order in orderflow's own terms, as a custom shop would build it.
pub fn canonical(order: &SimOrder) -> IncomingOrder {
    let (state, word) = match order.status {
        SimStatus::Pending => (PlatformState::Pending, "pending"),
        SimStatus::Paid => (PlatformState::Paid, "paid"),
        SimStatus::Fulfilled => (PlatformState::Fulfilled, "shipped"),
        SimStatus::Cancelled => (PlatformState::Cancelled, "cancelled"),
        SimStatus::Refunded => (PlatformState::Refunded, "refunded"),
    };
    let address = &order.address;
    IncomingOrder {
        platform: Platform::Custom,
        external_id: order.id.to_string(),
        number: Some(order.number.to_string()),
        state,
        platform_status: word.to_owned(),
        customer: Customer {
            customer_id: None,
            name: Some(order.customer.full_name()),
            email: Some(order.customer.email.clone()),
            phone: Some(order.customer.phone.clone()),
            locale: None,
        },
        shipping_address: Some(Address {
            name: Some(order.customer.full_name()),
            line1: Some(address.line1()),
            line2: address.line2.clone(),
            city: Some(address.city.clone()),
            region: Some(address.region_code.clone()),
            postal_code: Some(address.postal_code.clone()),
            country: Some(address.country.clone()),
        }),
        lines: order
            .lines
            .iter()
            .map(|line| IncomingLine {
                sku: Some(line.sku.clone()),
                item_id: Some(line.variant_id.to_string()),
                name: Some(line.name.clone()),
                quantity: line.quantity,
                unit_price_minor: line.unit_price_minor,
            })
            .collect(),
        shipping_method: Some(order.shipping_method.clone()),
        currency: order.currency,
        totals: Totals {
            items_minor: order.items_minor(),
            shipping_minor: order.shipping_minor,
            tax_minor: 0,
            discount_minor: 0,
            total_minor: order.total_minor(),
        },
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

/// The envelope's bytes: `data` is the canonical order without its `platform`, which the
/// receiving endpoint already names.
pub fn body(kind: &str, order: &SimOrder, at: OffsetDateTime) -> Result<Vec<u8>, SimError> {
    let mut data = match serde_json::to_value(canonical(order)) {
        Ok(serde_json::Value::Object(data)) => data,
        Ok(_) => {
            return Err(SimError::Render(
                "the canonical order is not an object".into(),
            ));
        }
        Err(error) => return Err(SimError::Render(error.to_string())),
    };
    data.remove("platform");
    let envelope = serde_json::json!({
        "type": kind,
        "timestamp": rfc3339(at),
        "data": data,
    });
    serde_json::to_vec(&envelope).map_err(|error| SimError::Render(error.to_string()))
}

/// One message: the same id and body on every re-send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomEvent {
    pub message_id: String,
    pub body: Vec<u8>,
}

/// Posts Standard Webhooks to `{orderflow}/webhooks/custom/{store_id}`.
#[derive(Debug, Clone)]
pub struct CustomSender {
    http: reqwest::Client,
    url: String,
    secret: Secret,
    policy: RetryPolicy,
}

impl CustomSender {
    /// `secret` is the store's `whsec_…` signing secret.
    pub fn new(orderflow: &str, store_id: &str, secret: &str) -> Result<Self, SimError> {
        let secret = Secret::parse(secret).map_err(|error| SimError::Secret(error.to_string()))?;
        Ok(Self {
            http: send::client(),
            url: send::webhook_url(orderflow, "custom", store_id),
            secret,
            policy: RetryPolicy::standard_webhooks(),
        })
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn event(&self, kind: &str, order: &SimOrder) -> Result<CustomEvent, SimError> {
        Ok(CustomEvent {
            message_id: format!("msg_{:026x}", rand::random::<u128>() >> 24),
            body: body(kind, order, OffsetDateTime::now_utc())?,
        })
    }

    /// One attempt, signed at `timestamp` (Unix seconds).
    pub fn delivery(&self, event: &CustomEvent, timestamp: i64) -> Delivery {
        Delivery {
            url: self.url.clone(),
            headers: vec![
                header("Content-Type", "application/json"),
                header("webhook-id", event.message_id.as_str()),
                header("webhook-timestamp", timestamp.to_string()),
                header(
                    "webhook-signature",
                    self.secret.sign(&event.message_id, timestamp, &event.body),
                ),
            ],
            body: event.body.clone(),
        }
    }

    pub async fn send(&self, kind: &str, order: &SimOrder) -> Result<SendReport, SimError> {
        let event = self.event(kind, order)?;
        Ok(send::deliver(&self.http, &self.policy, send::is_2xx, |_| {
            self.delivery(&event, OffsetDateTime::now_utc().unix_timestamp())
        })
        .await)
    }
}
