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
    // `data` is read on its own, so its paths are made to name the field as the shop sent it.
    let order: IncomingOrder = from_json(&encoded).map_err(|error| match error {
        ParseError::Json { path, message } if path == "." => ParseError::Json {
            path: "data".into(),
            message,
        },
        ParseError::Json { path, message } => ParseError::Json {
            path: format!("data.{path}"),
            message,
        },
        other => other,
    })?;
    if order.lines.is_empty() {
        return Err(ParseError::missing("data.lines"));
    }
    // Every other parser refuses a line of no units; so must the canonical one, or the
    // order would fail later, when its lines are placed.
    if let Some(index) = order.lines.iter().position(|line| line.quantity == 0) {
        return Err(ParseError::invalid(
            format!("data.lines[{index}].quantity"),
            "0 is not a quantity of at least 1",
        ));
    }
    Ok(order)
}
