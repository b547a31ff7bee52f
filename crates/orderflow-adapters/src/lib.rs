//! The outside world's services behind traits, each with a client for a real provider's API:
//! payments ([`PaymentGateway`]: [`CashOnDelivery`], [`StripePayments`]), carriers
//! ([`Carrier`]: [`EasyPostCarrier`]), mail ([`Mailer`]: [`SmtpMailer`]) and alerts
//! ([`Alerter`]: [`SlackWebhook`], [`EmailAlerter`], [`Alerters`]).
//!
//! Every call that changes something outside takes an idempotency key from the caller and
//! hands it to the provider, so that a retried step never pays, ships or mails twice. Every
//! failure is one of two kinds, and the caller's retry policy needs nothing else:
//! [`AdapterError::Transient`] (try again later, with the same key) and
//! [`AdapterError::Rejected`] (a definitive no).
//!
//! The sandboxes of `orderflow-sim` speak the same formats on 127.0.0.1; the tests run each
//! client against its sandbox over real sockets.

use std::time::Duration;

pub mod alert;
pub mod carrier;
mod http;
pub mod mail;
pub mod payment;

pub use alert::{Alert, Alerter, Alerters, EmailAlerter, SlackWebhook};
pub use carrier::{Carrier, EasyPostCarrier, Shipment, ShipmentRequest};
pub use http::{DEFAULT_TIMEOUT, http_client};
pub use mail::{Email, Mailer, SmtpMailer};
pub use payment::{Authorization, CashOnDelivery, PaymentGateway, PaymentRequest, StripePayments};

/// Why a call to an outside service did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// Worth retrying with the same idempotency key: the service could not be reached, timed
    /// out, failed (5xx), was busy (429) or answered 4xx SMTP. `retry_after` is the service's
    /// own `Retry-After`, when it gave one.
    #[error("{message} (worth retrying)")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// A definitive no: a declined card, an address the carrier cannot ship to, a refused
    /// mailbox, a 4xx that retrying will not change.
    #[error("{0}")]
    Rejected(String),
}

impl AdapterError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Self::Rejected(message.into())
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// How long the service asked to be left alone, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            Self::Rejected(_) => None,
        }
    }
}
