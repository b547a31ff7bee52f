//! `custom`: a home-made shop posts the canonical order itself, in a Standard Webhooks
//! envelope: `{"type":"order.created"|"order.updated","timestamp":"…","data":{…}}`, where
//! `data` is an [`IncomingOrder`] without its `platform`.

use serde::Deserialize;

use super::{ParseError, from_json};
use crate::incoming::IncomingOrder;
use crate::platform::Platform;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Map<String, serde_json::Value>,
}

pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    let envelope: Envelope = from_json(body)?;
    if !envelope.kind.starts_with("order.") {
        return Err(ParseError::invalid(
            "type",
            format!("{:?} is not an order event", envelope.kind),
        ));
    }
    let mut data = envelope.data;
    data.insert("platform".into(), serde_json::json!(Platform::Custom));
    let encoded =
        serde_json::to_vec(&data).map_err(|e| ParseError::invalid("data", e.to_string()))?;
    let order: IncomingOrder = from_json(&encoded)?;
    if order.lines.is_empty() {
        return Err(ParseError::missing("data.lines"));
    }
    Ok(order)
}
