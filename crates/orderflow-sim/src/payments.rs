//! A Stripe-style payments sandbox: PaymentIntents created (and confirmed) with a form body,
//! retrieved, captured and cancelled, over real HTTP on 127.0.0.1, honouring `Idempotency-Key`
//! the way Stripe documents it, and counting how many times each key acted.
//!
//! What it follows from Stripe's API reference: `POST /v1/payment_intents` with `amount`,
//! `currency`, `payment_method`, `confirm`, `capture_method` and `metadata[...]`; a manual
//! capture leaves a confirmed intent in `requires_capture`; a declined card is a 402 whose
//! `error` has `type: card_error`, `code: card_declined`, a `decline_code` and the intent;
//! `POST /v1/payment_intents/{id}/cancel` and `/capture`; errors as `{"error": {...}}`; the
//! secret key as a bearer token (or the HTTP Basic user). A key seen before with the same
//! request gets the first answer again (`Idempotent-Replayed: true`) without anything being
//! done; with another request it is a 400 `idempotency_error`. Answers are kept only once the
//! endpoint has started working: refused credentials and invalid parameters are not kept.
//!
//! Test payment methods: `pm_card_visa` and `pm_card_mastercard` authorise;
//! `pm_card_chargeDeclined` (generic_decline), `pm_card_chargeDeclinedInsufficientFunds`
//! (insufficient_funds) and `pm_card_chargeDeclinedFraudulent` (fraudulent) are declined.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::serve::{
    self, Faults, Idempotency, Replay, Seen, Serving, basic_auth, decode_query, fingerprint,
    idempotency_key, lock, random_id,
};

/// The statuses from which Stripe lets an intent be cancelled.
const CANCELLABLE: [&str; 5] = [
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
];

/// A running payments sandbox. Dropping it stops it.
#[derive(Debug)]
pub struct StripeSandbox {
    serving: Serving,
    state: Shared,
}

type Shared = Arc<Mutex<Ledger>>;

#[derive(Debug)]
struct Ledger {
    secret_key: String,
    /// Intents by id, and their ids in the order they were created.
    intents: HashMap<String, Value>,
    order: Vec<String>,
    keys: Idempotency,
}

impl StripeSandbox {
    /// Serves on a free port of 127.0.0.1; requests must carry `secret_key`.
    pub async fn start(secret_key: &str) -> std::io::Result<Self> {
        let (listener, url) = serve::bind().await?;
        let state = Arc::new(Mutex::new(Ledger {
            secret_key: secret_key.to_owned(),
            intents: HashMap::new(),
            order: Vec::new(),
            keys: Idempotency::default(),
        }));
        let router = Router::new()
            .route("/v1/payment_intents", post(create))
            .route("/v1/payment_intents/{id}", get(retrieve))
            .route("/v1/payment_intents/{id}/cancel", post(cancel))
            .route("/v1/payment_intents/{id}/capture", post(capture))
            .with_state(state.clone());
        Ok(Self {
            serving: serve::serve(listener, url, router),
            state,
        })
    }

    /// `http://127.0.0.1:<port>`: the base URL, as `https://api.stripe.com` is.
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    pub fn faults(&self) -> &Faults {
        self.serving.faults()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.serving.requests()
    }

    /// How many times each idempotency key acted: created, captured or cancelled an intent.
    /// A replayed answer does not count.
    pub fn effects(&self) -> HashMap<String, u32> {
        lock(&self.state).keys.effects()
    }

    /// How many times a request without an idempotency key acted.
    pub fn unkeyed_effects(&self) -> u32 {
        lock(&self.state).keys.unkeyed()
    }

    /// Every intent, oldest first, as the API shows it.
    pub fn intents(&self) -> Vec<Value> {
        let ledger = lock(&self.state);
        ledger
            .order
            .iter()
            .filter_map(|id| ledger.intents.get(id).cloned())
            .collect()
    }

    pub fn intent(&self, id: &str) -> Option<Value> {
        lock(&self.state).intents.get(id).cloned()
    }

    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

fn answer(status: u16, body: Value, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("a valid value"),
        );
    }
    response
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Response {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    answer(status, json!({ "error": error }), false)
}

fn invalid(code: &str, param: &str, message: &str) -> Response {
    answer(
        400,
        json!({ "error": {
            "type": "invalid_request_error",
            "code": code,
            "param": param,
            "message": message,
        }}),
        false,
    )
}

fn authorised(headers: &HeaderMap, secret_key: &str) -> bool {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let given = bearer
        .map(str::to_owned)
        .or_else(|| basic_auth(headers).map(|(user, _)| user));
    given.as_deref() == Some(secret_key)
}

/// The common start of every call: credentials, then the idempotency key. `Err` is the
/// answer to give at once.
fn admit(
    ledger: &Ledger,
    headers: &HeaderMap,
    request: &str,
) -> Result<Option<String>, Box<Response>> {
    if !authorised(headers, &ledger.secret_key) {
        return Err(Box::new(error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided.",
        )));
    }
    let key = idempotency_key(headers);
    match ledger.keys.replay(key.as_deref(), request) {
        Replay::Fresh => Ok(key),
        Replay::Same(status, body) => Err(Box::new(answer(status, body, true))),
        Replay::Mismatch => Err(Box::new(error(
            400,
            "idempotency_error",
            None,
            &format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{}' if you meant to execute \
                 a different request.",
                key.unwrap_or_default()
            ),
        ))),
    }
}

fn form(body: &Bytes) -> Vec<(String, String)> {
    decode_query(&String::from_utf8_lossy(body))
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    serve::param(params, name)
}

/// `metadata[order_id]=1` → `{"order_id": "1"}`.
fn metadata(params: &[(String, String)]) -> Map<String, Value> {
    params
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((key.to_owned(), Value::String(value.clone())))
        })
        .collect()
}

/// What a test payment method does when charged: `Ok` or the decline code.
fn charge(payment_method: &str) -> Option<Result<(), &'static str>> {
    match payment_method {
        "pm_card_visa" | "pm_card_mastercard" | "pm_card_amex" => Some(Ok(())),
        "pm_card_chargeDeclined" => Some(Err("generic_decline")),
        "pm_card_chargeDeclinedInsufficientFunds" => Some(Err("insufficient_funds")),
        "pm_card_chargeDeclinedFraudulent" => Some(Err("fraudulent")),
        _ => None,
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form(&body);
    let request = fingerprint("POST", "/v1/payment_intents", &params);
    let mut ledger = lock(&state);
    let key = match admit(&ledger, &headers, &request) {
        Ok(key) => key,
        Err(response) => return *response,
    };

    let Some(amount) = param(&params, "amount") else {
        return invalid(
            "parameter_missing",
            "amount",
            "Missing required param: amount.",
        );
    };
    let amount = match amount.parse::<i64>() {
        Ok(amount) if amount >= 1 => amount,
        _ => {
            return invalid(
                "parameter_invalid_integer",
                "amount",
                "This value must be greater than or equal to 1.",
            );
        }
    };
    let Some(currency) = param(&params, "currency") else {
        return invalid(
            "parameter_missing",
            "currency",
            "Missing required param: currency.",
        );
    };
    let currency = currency.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return invalid(
            "parameter_invalid_string",
            "currency",
            &format!("Invalid currency: {currency}."),
        );
    }
    let capture_method = param(&params, "capture_method").unwrap_or("automatic");
    if !["automatic", "automatic_async", "manual"].contains(&capture_method) {
        return invalid(
            "parameter_invalid_string",
            "capture_method",
            "Invalid capture_method.",
        );
    }
    let payment_method = param(&params, "payment_method");
    let outcome = match payment_method {
        Some(pm) => match charge(pm) {
            Some(outcome) => Some(outcome),
            None => {
                return invalid(
                    "resource_missing",
                    "payment_method",
                    &format!("No such PaymentMethod: '{pm}'"),
                );
            }
        },
        None => None,
    };
    let confirm = param(&params, "confirm") == Some("true");
    if confirm && payment_method.is_none() {
        return invalid(
            "payment_intent_unexpected_state",
            "payment_method",
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
        );
    }

    let id = random_id("pi_");
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": capture_method,
        "confirmation_method": "automatic",
        "currency": currency,
        "created": now(),
        "description": param(&params, "description"),
        "livemode": false,
        "metadata": metadata(&params),
        "payment_method": payment_method,
        "payment_method_types": ["card"],
        "latest_charge": null,
        "last_payment_error": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "status": if payment_method.is_some() { "requires_confirmation" } else { "requires_payment_method" },
    });
    let (status, body) = match (confirm, outcome) {
        (true, Some(Ok(()))) => {
            intent["latest_charge"] = json!(random_id("ch_"));
            if capture_method == "manual" {
                intent["status"] = json!("requires_capture");
                intent["amount_capturable"] = json!(amount);
            } else {
                intent["status"] = json!("succeeded");
                intent["amount_received"] = json!(amount);
            }
            (200, intent.clone())
        }
        (true, Some(Err(decline_code))) => {
            let charge = random_id("ch_");
            let error = json!({
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
                "charge": charge,
                "payment_method": { "id": payment_method, "object": "payment_method" },
            });
            intent["status"] = json!("requires_payment_method");
            intent["latest_charge"] = json!(charge);
            intent["last_payment_error"] = error.clone();
            let mut error = error;
            error["payment_intent"] = intent.clone();
            (402, json!({ "error": error }))
        }
        _ => (200, intent.clone()),
    };
    ledger.intents.insert(id.clone(), intent);
    ledger.order.push(id);
    ledger.keys.acted(key.as_deref());
    ledger.keys.keep(key.as_deref(), request, status, &body);
    answer(status, body, false)
}

async fn retrieve(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ledger = lock(&state);
    if !authorised(&headers, &ledger.secret_key) {
        return error(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided.",
        );
    }
    match ledger.intents.get(&id) {
        Some(intent) => answer(200, intent.clone(), false),
        None => missing(&id),
    }
}

fn missing(id: &str) -> Response {
    answer(
        404,
        json!({ "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "intent",
            "message": format!("No such payment_intent: '{id}'"),
        }}),
        false,
    )
}

fn unexpected_state(intent: &Value, action: &str, allowed: &str) -> (u16, Value) {
    let status = intent["status"].as_str().unwrap_or_default();
    (
        400,
        json!({ "error": {
            "type": "invalid_request_error",
            "code": "payment_intent_unexpected_state",
            "message": format!(
                "You cannot {action} this PaymentIntent because it has a status of {status}. \
                 Only a PaymentIntent with one of the following statuses may be {allowed}."
            ),
            "payment_intent": intent,
        }}),
    )
}

async fn cancel(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let path = format!("/v1/payment_intents/{id}/cancel");
    let request = fingerprint("POST", &path, &params);
    let mut ledger = lock(&state);
    let key = match admit(&ledger, &headers, &request) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let Some(intent) = ledger.intents.get_mut(&id) else {
        return missing(&id);
    };
    let current = intent["status"].as_str().unwrap_or_default();
    let (status, body, acted) = if CANCELLABLE.contains(&current) {
        intent["status"] = json!("canceled");
        intent["canceled_at"] = json!(now());
        intent["amount_capturable"] = json!(0);
        intent["cancellation_reason"] = json!(param(&params, "cancellation_reason"));
        (200, intent.clone(), true)
    } else {
        let (status, body) = unexpected_state(
            intent,
            "cancel",
            &format!("canceled: {}", CANCELLABLE.join(", ")),
        );
        (status, body, false)
    };
    if acted {
        ledger.keys.acted(key.as_deref());
    }
    ledger.keys.keep(key.as_deref(), request, status, &body);
    answer(status, body, false)
}

async fn capture(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let path = format!("/v1/payment_intents/{id}/capture");
    let request = fingerprint("POST", &path, &params);
    let mut ledger = lock(&state);
    let key = match admit(&ledger, &headers, &request) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let Some(intent) = ledger.intents.get_mut(&id) else {
        return missing(&id);
    };
    let amount = intent["amount"].as_i64().unwrap_or_default();
    let to_capture = match param(&params, "amount_to_capture").map(str::parse::<i64>) {
        None => amount,
        Some(Ok(wanted)) if (1..=amount).contains(&wanted) => wanted,
        Some(_) => {
            return invalid(
                "parameter_invalid_integer",
                "amount_to_capture",
                "The amount to capture must be positive and at most the amount capturable.",
            );
        }
    };
    let (status, body, acted) = if intent["status"] == "requires_capture" {
        intent["status"] = json!("succeeded");
        intent["amount_capturable"] = json!(0);
        intent["amount_received"] = json!(to_capture);
        (200, intent.clone(), true)
    } else {
        let (status, body) = unexpected_state(intent, "capture", "captured: requires_capture");
        (status, body, false)
    };
    if acted {
        ledger.keys.acted(key.as_deref());
    }
    ledger.keys.keep(key.as_deref(), request, status, &body);
    answer(status, body, false)
}
