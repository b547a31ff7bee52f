//! The HTTP API, one module per resource.

pub mod intake;
pub mod orders;
pub mod products;
pub mod runs;
pub mod stores;
pub mod system;
