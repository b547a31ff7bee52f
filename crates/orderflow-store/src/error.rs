//! The store's error type: business refusals, conflicts and backend failures.

use orderflow_domain::{OrderStatus, Refusal, StockError};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("order cannot be placed or changed as asked")]
    Refused(Refusal),
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error("the order is at version {current}, not the version the change was based on")]
    VersionMismatch { current: i64 },
    #[error("an order that is {0} can no longer be changed")]
    NotEditable(OrderStatus),
    #[error(
        "the order's lines belong to a store that manages stock on its own platform; change them there"
    )]
    LinesManagedElsewhere,
    #[error("an order that is {0} can no longer be cancelled")]
    TooLateToCancel(OrderStatus),
    #[error("an order that is {0} cannot be moved along the fulfilment path as asked")]
    NotAdvanceable(OrderStatus),
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("lines are priced in more than one currency")]
    MixedCurrencies,
    #[error("the step's lease was taken over or the step was finished by someone else")]
    LeaseLost,
    #[error("{0}")]
    InvalidAction(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("migration failed")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(source.into())
    }
}
