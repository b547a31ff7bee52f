//! Payments: authorising an order's amount and voiding the authorisation, behind
//! [`PaymentGateway`]; cash on delivery, which needs nobody, and a Stripe PaymentIntents
//! client.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::AdapterError;
use crate::http::{self, Answer};

/// Authorises payments and voids authorisations. Both calls are safe to retry with the same
/// key: the second does nothing and answers as the first did.
#[async_trait]
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// A stable name for logs and the delivery record: `cash_on_delivery`, `stripe`.
    fn name(&self) -> &'static str;

    /// Holds the amount on the customer's payment method without taking it.
    async fn authorize(
        &self,
        request: &PaymentRequest,
        idempotency_key: &str,
    ) -> Result<Authorization, AdapterError>;

    /// Releases an authorisation. Voiding one that is already void succeeds.
    async fn void(&self, authorization_id: &str, idempotency_key: &str)
    -> Result<(), AdapterError>;
}

/// What to authorise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub order_id: String,
    /// In the currency's minor unit (cents).
    pub amount_minor: i64,
    /// ISO 4217; sent to Stripe in lower case.
    pub currency: String,
    pub customer_email: Option<String>,
    /// The provider's payment method (`pm_...` for Stripe).
    pub payment_method: Option<String>,
}

/// An authorisation the provider holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The provider's id: what [`PaymentGateway::void`] takes.
    pub id: String,
    pub amount_minor: i64,
    /// The provider's word for its state (`requires_capture` for Stripe).
    pub status: String,
}

/// Cash on delivery: nothing to authorise now, the courier collects. Authorises at once with
/// an id derived from the idempotency key, so a retry gets the same id.
#[derive(Debug, Clone, Copy, Default)]
pub struct CashOnDelivery;

#[async_trait]
impl PaymentGateway for CashOnDelivery {
    fn name(&self) -> &'static str {
        "cash_on_delivery"
    }

    async fn authorize(
        &self,
        request: &PaymentRequest,
        idempotency_key: &str,
    ) -> Result<Authorization, AdapterError> {
        if request.amount_minor < 0 {
            return Err(AdapterError::rejected(
                "a negative amount cannot be collected",
            ));
        }
        Ok(Authorization {
            id: format!("cod_{idempotency_key}"),
            amount_minor: request.amount_minor,
            status: "pending_collection".to_owned(),
        })
    }

    async fn void(
        &self,
        _authorization_id: &str,
        _idempotency_key: &str,
    ) -> Result<(), AdapterError> {
        Ok(())
    }
}

/// Stripe's PaymentIntents API: an authorisation is a PaymentIntent created and confirmed
/// with `capture_method=manual`, left in `requires_capture`; voiding cancels it.
#[derive(Clone)]
pub struct StripePayments {
    base_url: String,
    secret_key: String,
    http: reqwest::Client,
}

impl fmt::Debug for StripePayments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripePayments")
            .field("base_url", &self.base_url)
            .field("secret_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// `error` of a Stripe error body.
#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    payment_intent: Option<Intent>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct Intent {
    #[serde(default)]
    id: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    status: String,
}

const SERVICE: &str = "Stripe";

impl StripePayments {
    /// Stripe's own API.
    pub const API: &'static str = "https://api.stripe.com";

    /// A client for `base_url` (`StripePayments::API`, or a sandbox) with the default timeout.
    pub fn new(base_url: &str, secret_key: &str) -> Result<Self, AdapterError> {
        Ok(Self::with_client(
            base_url,
            secret_key,
            http::http_client(http::DEFAULT_TIMEOUT)?,
        ))
    }

    /// A client that makes its requests with `http` (its timeout, its pool).
    pub fn with_client(base_url: &str, secret_key: &str, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
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

    async fn post(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<Answer, AdapterError> {
        let sent = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await;
        Answer::read(SERVICE, sent).await
    }
}

/// The error of a failed answer, as Stripe describes it.
fn stripe_error(answer: &Answer) -> StripeError {
    serde_json::from_slice::<ErrorBody>(&answer.body)
        .map(|body| body.error)
        .unwrap_or_default()
}

/// Maps a Stripe failure: declines and other card errors are a no; so is any 4xx but the
/// busy ones (409 for a concurrent request with the same key, 429).
fn failure(answer: &Answer, error: &StripeError) -> AdapterError {
    let message = error.message.clone().unwrap_or_else(|| answer.snippet());
    if error.kind.as_deref() == Some("card_error") || answer.status.as_u16() == 402 {
        let reason = error
            .decline_code
            .as_deref()
            .or(error.code.as_deref())
            .unwrap_or("card_error");
        return AdapterError::Rejected(format!("the card was declined ({reason}): {message}"));
    }
    let kind = [error.kind.as_deref(), error.code.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    answer.failure(SERVICE, &format!("{kind}: {message}"))
}

#[async_trait]
impl PaymentGateway for StripePayments {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn authorize(
        &self,
        request: &PaymentRequest,
        idempotency_key: &str,
    ) -> Result<Authorization, AdapterError> {
        let Some(payment_method) = &request.payment_method else {
            return Err(AdapterError::rejected(
                "a card payment needs a payment method to authorise",
            ));
        };
        if request.amount_minor <= 0 {
            return Err(AdapterError::rejected(
                "only a positive amount can be authorised",
            ));
        }
        let form = [
            ("amount", request.amount_minor.to_string()),
            ("currency", request.currency.to_ascii_lowercase()),
            ("payment_method", payment_method.clone()),
            ("payment_method_types[]", "card".to_owned()),
            ("confirm", "true".to_owned()),
            ("capture_method", "manual".to_owned()),
            ("description", format!("Order {}", request.order_id)),
            ("metadata[order_id]", request.order_id.clone()),
        ];
        let answer = self
            .post("/v1/payment_intents", &form, idempotency_key)
            .await?;
        if !answer.status.is_success() {
            return Err(failure(&answer, &stripe_error(&answer)));
        }
        let intent: Intent = answer.json(SERVICE)?;
        if intent.id.is_empty() {
            return Err(AdapterError::transient(
                "Stripe answered a PaymentIntent without an id",
            ));
        }
        match intent.status.as_str() {
            "requires_capture" | "succeeded" | "processing" => Ok(Authorization {
                id: intent.id,
                amount_minor: intent.amount,
                status: intent.status,
            }),
            "requires_action" => Err(AdapterError::Rejected(format!(
                "the payment {} needs the customer to authenticate it",
                intent.id
            ))),
            other => Err(AdapterError::Rejected(format!(
                "the payment {} was not authorised: {other}",
                intent.id
            ))),
        }
    }

    async fn void(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(), AdapterError> {
        if !http::is_path_safe(authorization_id) {
            return Err(AdapterError::Rejected(format!(
                "{authorization_id:?} is not a PaymentIntent id"
            )));
        }
        let path = format!("/v1/payment_intents/{authorization_id}/cancel");
        let form = [("cancellation_reason", "abandoned".to_owned())];
        let answer = self.post(&path, &form, idempotency_key).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        let error = stripe_error(&answer);
        // Cancelled already (by an earlier attempt under another key): the void holds.
        let already_void = error.code.as_deref() == Some("payment_intent_unexpected_state")
            && error
                .payment_intent
                .as_ref()
                .is_some_and(|intent| intent.status == "canceled");
        if already_void {
            return Ok(());
        }
        Err(failure(&answer, &error))
    }
}
