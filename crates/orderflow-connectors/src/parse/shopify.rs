//! Placeholder until the shopify parser lands.

use super::ParseError;
use crate::incoming::IncomingOrder;

pub fn parse(_body: &[u8]) -> Result<IncomingOrder, ParseError> {
    Err(ParseError::invalid("platform", "shopify payloads are not parsed yet"))
}
