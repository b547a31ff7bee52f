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
//! - [`proxy::Proxy`], to make a receiver look slow or failing to a sender.
//!
//! Nothing here imitates orderflow: the bodies are built from the platforms' documentation
//! and fixtures, and orderflow's own parsers are the test that they are right.

pub mod custom;
pub mod jumpseller;
pub mod magento;
pub mod order;
pub mod prestashop;
pub mod proxy;
pub mod send;
pub mod serve;
pub mod shopify;
mod text;
pub mod vtex;
pub mod woocommerce;

pub use order::{Generator, SimAddress, SimCustomer, SimLine, SimOrder, SimStatus};
pub use send::{Attempt, Delivery, Outcome, RetryPolicy, SendReport};
pub use serve::{Fault, Faults, Seen, Shop, SimServer};

/// The largest body the proxy forwards.
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("the signing secret is not usable: {0}")]
    Secret(String),
    #[error("the order could not be written: {0}")]
    Render(String),
}
