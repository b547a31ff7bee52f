//! Storefront intake after the HTTP edge has stored a delivery: the worker that turns inbox
//! deliveries into orders under each store's [`rules`], the [`forward`]er that hands clean
//! orders to a store's courier system, and the [`pull`] connectors that bring orders in from
//! platforms' APIs through the same inbox. [`reading`] is how a stored delivery becomes the
//! order it carries, shared with the rule preview.

pub mod forward;
pub mod pull;
pub mod reading;
pub mod rules;
pub mod worker;
