//! Sandbox storefronts: stand-ins for the platforms outside orderflow, speaking their
//! documented formats over real HTTP on 127.0.0.1, for the demo, tests and the bench.
//!
//! - [`order`]: a platform-neutral [`SimOrder`] and a seeded [`Generator`] of them.
//! - Senders, which post each platform's webhook, signed and re-sent as the platform does:
//!   [`shopify::ShopifySender`], [`woocommerce::WooSender`], [`jumpseller::JumpsellerSender`],
//!   [`custom::CustomSender`], [`vtex::VtexHookSender`].
//! - Servers, each on its own port over a [`Shop`] of orders that can change while it runs,
//!   with [`Faults`] to inject: [`vtex::serve_oms`], [`prestashop::serve`], [`magento::serve`],
//!   [`shopify::serve_admin`], [`woocommerce::serve`].
//!   Also [`jumpseller::serve_api`], Jumpseller's admin API, which lists orders by id.
//! - [`proxy::Proxy`], to make a receiver look slow or failing to a sender.
//! - [`payments::StripeSandbox`]: Stripe-style PaymentIntents (create and confirm, capture,
//!   cancel) honouring `Idempotency-Key`, with test cards that authorise or are declined, and
//!   a count of how many times each key acted.
//! - [`carrier::EasyPostSandbox`]: EasyPost-style shipments, rates, label purchase and
//!   trackers, with the same per-key replay and count.
//! - [`smtp::SmtpSink`]: a real SMTP server that keeps what it is sent and refuses the next
//!   transactions on demand (451, 554).
//! - [`slack::SlackSink`]: a Slack incoming webhook that keeps the messages it takes.
//! - Faults for the requests matching a method and path pattern, not only the next ones:
//!   [`Faults::on`] (`faults.on("POST /v1/payment_intents").fail(2, 500)`,
//!   `faults.on("*/buy").stall(1)`, `faults.on("*").slow_every(ms)`).
//!
//! Nothing here imitates orderflow: the bodies are built from the platforms' documentation
//! and fixtures, and orderflow's own parsers are the test that they are right.

pub mod carrier;
pub mod custom;
pub mod jumpseller;
pub mod magento;
pub mod order;
pub mod payments;
pub mod prestashop;
pub mod proxy;
pub mod send;
pub mod serve;
pub mod shopify;
pub mod slack;
pub mod smtp;
mod text;
pub mod vtex;
pub mod woocommerce;

pub use carrier::EasyPostSandbox;
pub use order::{Generator, SimAddress, SimCustomer, SimLine, SimOrder, SimStatus};
pub use payments::StripeSandbox;
pub use send::{Attempt, Delivery, Outcome, RetryPolicy, SendReport};
pub use serve::{Fault, Faults, Seen, Shop, SimServer};
pub use serve::{Matching, Misbehaviour};
pub use slack::SlackSink;
pub use smtp::{ReceivedMail, SmtpSink};

/// The largest body the proxy forwards.
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("the signing secret is not usable: {0}")]
    Secret(String),
    #[error("the order could not be written: {0}")]
    Render(String),
}
