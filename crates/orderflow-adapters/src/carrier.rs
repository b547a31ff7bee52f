//! Carriers: a parcel's shipment, with its label bought and its tracking code, behind
//! [`Carrier`]; an EasyPost client.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use orderflow_domain::Address;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AdapterError;
use crate::http::{self, Answer};

/// Creates shipments. Safe to retry with the same key: the retry finishes what the first
/// call started and never buys a second label.
#[async_trait]
pub trait Carrier: Send + Sync + fmt::Debug {
    /// A stable name for logs and records: `easypost`.
    fn name(&self) -> &'static str;

    /// Creates the shipment and buys its label, in one call for the caller.
    async fn create_shipment(
        &self,
        request: &ShipmentRequest,
        idempotency_key: &str,
    ) -> Result<Shipment, AdapterError>;
}

/// What to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentRequest {
    pub order_id: String,
    pub from: Address,
    pub to: Address,
    pub weight_grams: u32,
    /// The carrier's service to buy (`Priority`); the cheapest when `None`.
    pub service: Option<String>,
}

/// A shipment with its label bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// The carrier that moves the parcel (`USPS`), not the API it was bought through.
    pub carrier: String,
    pub service: String,
    pub shipment_id: String,
    pub tracking_code: String,
    pub tracker_id: Option<String>,
    pub label_url: Option<String>,
}

/// EasyPost's API: `POST /v2/shipments` gets the rates, `POST /v2/shipments/{id}/buy` buys
/// the chosen one. Each call carries its own idempotency key derived from the caller's
/// (`<key>/create`, `<key>/buy`), so a retry replays what already happened and goes on from
/// there.
#[derive(Clone)]
pub struct EasyPostCarrier {
    base_url: String,
    api_key: String,
    http: reqwest::Client,
}

impl fmt::Debug for EasyPostCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EasyPostCarrier")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

const SERVICE: &str = "EasyPost";

/// Grams in an ounce, EasyPost's unit of weight.
const GRAMS_PER_OUNCE: f64 = 28.349_523_125;

#[derive(Debug, Serialize)]
struct EasyPostAddress<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    street1: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    street2: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
}

impl<'a> From<&'a Address> for EasyPostAddress<'a> {
    fn from(address: &'a Address) -> Self {
        Self {
            name: address.name.as_deref(),
            street1: address.line1.as_deref(),
            street2: address.line2.as_deref(),
            city: address.city.as_deref(),
            state: address.region.as_deref(),
            zip: address.postal_code.as_deref(),
            country: address.country.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct EasyPostShipment {
    id: String,
    #[serde(default)]
    rates: Vec<Rate>,
    #[serde(default)]
    selected_rate: Option<Rate>,
    #[serde(default)]
    tracking_code: Option<String>,
    #[serde(default)]
    postage_label: Option<PostageLabel>,
    #[serde(default)]
    tracker: Option<Tracker>,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct Rate {
    id: String,
    #[serde(default)]
    carrier: String,
    #[serde(default)]
    service: String,
    /// A decimal string: `"7.58"`.
    #[serde(default)]
    rate: String,
}

#[derive(Debug, Deserialize)]
struct PostageLabel {
    #[serde(default)]
    label_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tracker {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct EasyPostError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: EasyPostError,
}

/// A price in hundredths: `"7.58"` → 758, `"12"` → 1200, `"7.5"` → 750.
fn price_in_hundredths(rate: &str) -> Option<i64> {
    let (whole, fraction) = rate.trim().split_once('.').unwrap_or((rate.trim(), ""));
    let whole: i64 = whole.parse().ok()?;
    let fraction = format!("{fraction:0<2}");
    let fraction: i64 = fraction.get(..2)?.parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

/// Ounces, rounded up to a tenth, at least a tenth.
fn ounces(grams: u32) -> f64 {
    let tenths = (f64::from(grams) / GRAMS_PER_OUNCE * 10.0).ceil().max(1.0);
    tenths / 10.0
}

/// The rate to buy: the one for the requested service, or the cheapest.
fn choose(rates: &[Rate], service: Option<&str>) -> Result<Rate, AdapterError> {
    let chosen = match service {
        Some(wanted) => rates
            .iter()
            .find(|rate| rate.service.eq_ignore_ascii_case(wanted)),
        None => rates
            .iter()
            .filter_map(|rate| Some((price_in_hundredths(&rate.rate)?, rate)))
            .min_by_key(|(price, _)| *price)
            .map(|(_, rate)| rate),
    };
    chosen.cloned().ok_or_else(|| match service {
        Some(wanted) => AdapterError::Rejected(format!(
            "EasyPost offered no rate for the service {wanted:?}"
        )),
        None => AdapterError::rejected("EasyPost offered no rate for this shipment"),
    })
}

fn easypost_failure(answer: &Answer) -> AdapterError {
    let error = serde_json::from_slice::<ErrorBody>(&answer.body)
        .map(|body| body.error)
        .unwrap_or_default();
    let message = match &error.message {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => answer.snippet(),
    };
    let fields: Vec<String> = error
        .errors
        .iter()
        .filter_map(|e| {
            let field = e["field"].as_str()?;
            let problem = e["message"].as_str().unwrap_or("invalid");
            Some(format!("{field} {problem}"))
        })
        .collect();
    let mut detail = format!("{}: {message}", error.code.as_deref().unwrap_or("error"));
    if !fields.is_empty() {
        detail.push_str(&format!(" ({})", fields.join("; ")));
    }
    answer.failure(SERVICE, &detail)
}

impl EasyPostCarrier {
    /// EasyPost's own API.
    pub const API: &'static str = "https://api.easypost.com";

    /// A client for `base_url` (`EasyPostCarrier::API`, or a sandbox) with the default
    /// timeout.
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, AdapterError> {
        Ok(Self::with_client(
            base_url,
            api_key,
            http::http_client(http::DEFAULT_TIMEOUT)?,
        ))
    }

    /// A client that makes its requests with `http` (its timeout, its pool).
    pub fn with_client(base_url: &str, api_key: &str, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
        }
    }

    /// The same client with requests giving up after `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Result<Self, AdapterError> {
        Ok(Self {
            http: http::http_client(timeout)?,
            ..self
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .basic_auth(&self.api_key, Some(""))
    }

    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        idempotency_key: &str,
    ) -> Result<Answer, AdapterError> {
        let sent = self
            .request(reqwest::Method::POST, path)
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await;
        Answer::read(SERVICE, sent).await
    }

    async fn retrieve(&self, shipment_id: &str) -> Result<EasyPostShipment, AdapterError> {
        let sent = self
            .request(
                reqwest::Method::GET,
                &format!("/v2/shipments/{shipment_id}"),
            )
            .send()
            .await;
        let answer = Answer::read(SERVICE, sent).await?;
        if !answer.status.is_success() {
            return Err(easypost_failure(&answer));
        }
        answer.json(SERVICE)
    }

    /// What the caller gets of a bought shipment; a shipment without a tracking code has no
    /// label either, and is a no.
    fn bought(shipment: EasyPostShipment, rate: &Rate) -> Result<Shipment, AdapterError> {
        let tracking_code = shipment
            .tracking_code
            .filter(|code| !code.is_empty())
            .ok_or_else(|| {
                AdapterError::Rejected(format!(
                    "EasyPost bought the shipment {} without a tracking code",
                    shipment.id
                ))
            })?;
        let selected = shipment.selected_rate.unwrap_or_else(|| rate.clone());
        Ok(Shipment {
            carrier: selected.carrier,
            service: selected.service,
            shipment_id: shipment.id,
            tracking_code,
            tracker_id: shipment.tracker.and_then(|t| t.id),
            label_url: shipment.postage_label.and_then(|l| l.label_url),
        })
    }
}

#[async_trait]
impl Carrier for EasyPostCarrier {
    fn name(&self) -> &'static str {
        "easypost"
    }

    async fn create_shipment(
        &self,
        request: &ShipmentRequest,
        idempotency_key: &str,
    ) -> Result<Shipment, AdapterError> {
        if request.weight_grams == 0 {
            return Err(AdapterError::rejected("a parcel must weigh something"));
        }
        let body = json!({ "shipment": {
            "reference": request.order_id,
            "to_address": EasyPostAddress::from(&request.to),
            "from_address": EasyPostAddress::from(&request.from),
            "parcel": { "weight": ounces(request.weight_grams) },
        }});
        let answer = self
            .post("/v2/shipments", &body, &format!("{idempotency_key}/create"))
            .await?;
        if !answer.status.is_success() {
            return Err(easypost_failure(&answer));
        }
        let created: EasyPostShipment = answer.json(SERVICE)?;
        if !http::is_path_safe(&created.id) {
            return Err(AdapterError::Rejected(format!(
                "EasyPost answered a shipment id that is not usable: {:?}",
                created.id
            )));
        }
        if created.rates.is_empty() && !created.messages.is_empty() {
            let messages: Vec<String> = created
                .messages
                .iter()
                .filter_map(|m| m["message"].as_str().map(str::to_owned))
                .collect();
            return Err(AdapterError::Rejected(format!(
                "EasyPost offered no rate for this shipment: {}",
                messages.join("; ")
            )));
        }
        let rate = choose(&created.rates, request.service.as_deref())?;

        let path = format!("/v2/shipments/{}/buy", created.id);
        let buy = json!({ "rate": { "id": rate.id } });
        let answer = self
            .post(&path, &buy, &format!("{idempotency_key}/buy"))
            .await?;
        if answer.status.is_success() {
            return Self::bought(answer.json(SERVICE)?, &rate);
        }
        // Bought already, by an attempt whose answer was lost: what it bought stands.
        let failure = easypost_failure(&answer);
        if answer.status.as_u16() == 422 {
            let current = self.retrieve(&created.id).await?;
            if current
                .tracking_code
                .as_deref()
                .is_some_and(|c| !c.is_empty())
            {
                return Self::bought(current, &rate);
            }
        }
        Err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(service: &str, price: &str) -> Rate {
        Rate {
            id: format!("rate_{service}"),
            carrier: "USPS".into(),
            service: service.into(),
            rate: price.into(),
        }
    }

    #[test]
    fn prices_compare_in_hundredths() {
        assert_eq!(price_in_hundredths("7.58"), Some(758));
        assert_eq!(price_in_hundredths("12"), Some(1200));
        assert_eq!(price_in_hundredths("7.5"), Some(750));
        assert_eq!(price_in_hundredths("abc"), None);
    }

    #[test]
    fn the_cheapest_rate_is_chosen_unless_a_service_is_asked_for() {
        let rates = [
            rate("Ground", "9.11"),
            rate("Priority", "10.04"),
            rate("Cheap", "5.51"),
        ];
        assert_eq!(
            choose(&rates, None).map(|r| r.service).ok().as_deref(),
            Some("Cheap")
        );
        assert_eq!(
            choose(&rates, Some("priority"))
                .map(|r| r.service)
                .ok()
                .as_deref(),
            Some("Priority")
        );
        assert!(matches!(
            choose(&rates, Some("Drone")),
            Err(AdapterError::Rejected(_))
        ));
        assert!(matches!(choose(&[], None), Err(AdapterError::Rejected(_))));
    }

    #[test]
    fn weights_go_up_to_the_next_tenth_of_an_ounce() {
        assert!((ounces(1) - 0.1).abs() < 1e-9);
        assert!((ounces(1000) - 35.3).abs() < 1e-9);
        assert!((ounces(2835) - 100.1).abs() < 1e-9);
    }
}
