//! The pure order model of orderflow: ids, money, customers and addresses, the order status
//! machine and the stock arithmetic behind reservations.
//!
//! Nothing here performs I/O, awaits, reads the clock or draws random numbers: the current time
//! and fresh randomness are passed in, so every rule can be tested as a plain function.

pub mod id;
pub mod money;
pub mod order;
pub mod party;
pub mod status;
pub mod stock;

pub use id::{CustomerId, IdError, OrderId, ProductId, StoreId};
pub use money::{Currency, Money, MoneyError};
pub use order::{LineError, OrderLine, OrderLines, TimelineEntry};
pub use party::{Address, Customer, PartyError};
pub use status::{Cancellation, OrderStatus, Transition};
pub use stock::{
    EditPlan, Quantity, QuantityError, Refusal, ReservationPlan, Shortfall, StockError, StockLevel,
    plan_edit, plan_reservation,
};
