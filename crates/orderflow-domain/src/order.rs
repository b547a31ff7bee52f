//! Order lines and the timeline every status change is appended to.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::ProductId;
use crate::status::OrderStatus;
use crate::stock::Quantity;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    #[serde(rename = "item_count")]
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("products must list at least one line")]
    Empty,
    #[error("products must list at most {max} lines", max = OrderLines::MAX_LINES)]
    TooMany,
    #[error("product {0} appears on more than one line; put the whole count on one line")]
    Duplicate(ProductId),
}

/// The lines a client asks for: at least one, each product once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    pub const MAX_LINES: usize = 500;

    pub fn new(lines: Vec<OrderLine>) -> Result<Self, LineError> {
        if lines.is_empty() {
            return Err(LineError::Empty);
        }
        if lines.len() > Self::MAX_LINES {
            return Err(LineError::TooMany);
        }
        let mut seen = HashSet::with_capacity(lines.len());
        for line in &lines {
            if !seen.insert(&line.product_id) {
                return Err(LineError::Duplicate(line.product_id.clone()));
            }
        }
        Ok(Self(lines))
    }

    pub fn iter(&self) -> impl Iterator<Item = &OrderLine> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[OrderLine] {
        &self.0
    }
}

/// One status change of an order, as shown on its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product: &str, count: u64) -> OrderLine {
        OrderLine {
            product_id: product.parse().expect("valid"),
            quantity: Quantity::try_from(count).expect("valid"),
        }
    }

    #[test]
    fn an_order_needs_at_least_one_line() {
        assert_eq!(OrderLines::new(vec![]), Err(LineError::Empty));
    }

    #[test]
    fn a_product_may_appear_on_one_line_only() {
        let lines = vec![line("a", 1), line("b", 1), line("a", 2)];
        assert_eq!(
            OrderLines::new(lines),
            Err(LineError::Duplicate("a".parse().expect("valid")))
        );
    }

    #[test]
    fn lines_deserialise_from_the_seed_field_names() {
        let parsed: OrderLine =
            serde_json::from_str(r#"{"product_id":"sku-1","item_count":2}"#).expect("parses");
        assert_eq!(parsed, line("sku-1", 2));
        let zero = serde_json::from_str::<OrderLine>(r#"{"product_id":"sku-1","item_count":0}"#);
        assert!(zero.is_err());
        let negative =
            serde_json::from_str::<OrderLine>(r#"{"product_id":"sku-1","item_count":-3}"#);
        assert!(negative.is_err());
    }
}
