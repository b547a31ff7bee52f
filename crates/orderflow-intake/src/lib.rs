//! Storefront intake after the HTTP edge has stored a delivery: the worker that turns inbox
//! deliveries into orders under each store's [`rules`], and the [`forward`]er that hands clean
//! orders to a store's courier system.

pub mod forward;
pub mod rules;
pub mod worker;
