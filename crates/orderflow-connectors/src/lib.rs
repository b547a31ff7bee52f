//! The outside world's order formats, without I/O: how each storefront platform signs its
//! webhooks, how its payloads look, and how they become one canonical [`IncomingOrder`].
//!
//! Everything here is a pure function of bytes, so that the HTTP edge can verify a delivery
//! before storing it and the intake worker can parse it later, and so that every parser can be
//! fuzzed with arbitrary input.

pub mod incoming;
pub mod parse;
pub mod platform;
pub mod retry_after;
pub mod signature;
pub mod timestamp;
pub mod webhook;

pub use incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
pub use parse::{ParseError, parse_order};
pub use platform::Platform;
