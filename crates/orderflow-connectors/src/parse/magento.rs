//! Placeholder until the magento parser lands.

use super::ParseError;
use crate::incoming::IncomingOrder;

pub fn parse(_body: &[u8]) -> Result<IncomingOrder, ParseError> {
    Err(ParseError::invalid("platform", "magento payloads are not parsed yet"))
}
