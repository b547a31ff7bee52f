//! An EasyPost-style carrier sandbox: shipments created with their rates, a rate bought for a
//! label and a tracking code, and trackers read back, over real HTTP on 127.0.0.1, with the
//! same per-key replay and effect counting as the payments sandbox.
//!
//! What it follows from EasyPost's API reference: HTTP Basic with the API key as the user;
//! `POST /v2/shipments` with `{"shipment": {"to_address", "from_address", "parcel"}}` answers
//! 201 with the shipment and its `rates` (`id`, `carrier`, `service`, `rate` as a decimal
//! string, `currency`, `delivery_days`); `POST /v2/shipments/{id}/buy` with
//! `{"rate": {"id": ...}}` answers the shipment with `selected_rate`, `tracking_code`,
//! `postage_label.label_url` and `tracker`; `GET /v2/trackers/{id}`; parcel weight in ounces;
//! errors as `{"error": {"code", "message", "errors": [{"field", "message"}]}}`.
//!
//! Its own inventions, marked as such: `Idempotency-Key` is honoured as Stripe does (a reused
//! key with another request is a 422 `IDEMPOTENCY.MISMATCH`), every address needs `street1`,
//! `city`, `zip` and a two-letter `country` (a 422 `ADDRESS.VERIFY.FAILURE` otherwise), and
//! the rates are a fixed table priced by weight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::serve::{
    self, Faults, Idempotency, Replay, Seen, Serving, basic_auth, fingerprint, idempotency_key,
    lock, random_id,
};

/// Tracking codes are unique across every sandbox of the process.
static NEXT_TRACKING: AtomicU64 = AtomicU64::new(1_000_000_001);

/// The rates offered for every shipment: carrier, service, base price and price per started
/// ounce, in cents, and the days in transit. Not in price order, so that choosing matters.
const RATE_TABLE: [(&str, &str, i64, i64, u32); 4] = [
    ("UPS", "Ground", 899, 12, 4),
    ("USPS", "Priority", 795, 9, 2),
    ("USPS", "GroundAdvantage", 545, 6, 5),
    ("FedEx", "FEDEX_2_DAY", 1599, 15, 2),
];

/// A running carrier sandbox. Dropping it stops it.
#[derive(Debug)]
pub struct EasyPostSandbox {
    serving: Serving,
    state: Shared,
}

type Shared = Arc<Mutex<Depot>>;

#[derive(Debug)]
struct Depot {
    api_key: String,
    base_url: String,
    shipments: HashMap<String, Value>,
    order: Vec<String>,
    trackers: HashMap<String, Value>,
    keys: Idempotency,
}

impl EasyPostSandbox {
    /// Serves on a free port of 127.0.0.1; requests must carry `api_key`.
    pub async fn start(api_key: &str) -> std::io::Result<Self> {
        let (listener, url) = serve::bind().await?;
        let state = Arc::new(Mutex::new(Depot {
            api_key: api_key.to_owned(),
            base_url: url.clone(),
            shipments: HashMap::new(),
            order: Vec::new(),
            trackers: HashMap::new(),
            keys: Idempotency::default(),
        }));
        let router = Router::new()
            .route("/v2/shipments", post(create))
            .route("/v2/shipments/{id}", get(retrieve))
            .route("/v2/shipments/{id}/buy", post(buy))
            .route("/v2/trackers/{id}", get(tracker))
            .with_state(state.clone());
        Ok(Self {
            serving: serve::serve(listener, url, router),
            state,
        })
    }

    /// `http://127.0.0.1:<port>`: the base URL, as `https://api.easypost.com` is.
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    pub fn faults(&self) -> &Faults {
        self.serving.faults()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.serving.requests()
    }

    /// How many times each idempotency key acted: created a shipment or bought a label. A
    /// replayed answer does not count.
    pub fn effects(&self) -> HashMap<String, u32> {
        lock(&self.state).keys.effects()
    }

    /// How many times a request without an idempotency key acted.
    pub fn unkeyed_effects(&self) -> u32 {
        lock(&self.state).keys.unkeyed()
    }

    /// Every shipment, oldest first, as the API shows it.
    pub fn shipments(&self) -> Vec<Value> {
        let depot = lock(&self.state);
        depot
            .order
            .iter()
            .filter_map(|id| depot.shipments.get(id).cloned())
            .collect()
    }

    pub fn shipment(&self, id: &str) -> Option<Value> {
        lock(&self.state).shipments.get(id).cloned()
    }

    /// Moves a tracker on (`in_transit`, `out_for_delivery`, `delivered`, ...), adding a
    /// tracking detail; false when there is no such tracker.
    pub fn set_tracker_status(&self, tracker_id: &str, status: &str) -> bool {
        let mut depot = lock(&self.state);
        let Some(tracker) = depot.trackers.get_mut(tracker_id) else {
            return false;
        };
        let at = now();
        tracker["status"] = json!(status);
        tracker["updated_at"] = json!(at);
        if let Some(details) = tracker["tracking_details"].as_array_mut() {
            details.push(json!({
                "object": "TrackingDetail",
                "status": status,
                "message": status.replace('_', " "),
                "datetime": at,
                "source": "sandbox",
            }));
        }
        true
    }

    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
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

fn error(status: u16, code: &str, message: &str, errors: Vec<Value>) -> Response {
    answer(
        status,
        json!({ "error": { "code": code, "message": message, "errors": errors } }),
        false,
    )
}

/// The common start of every call: credentials, then the idempotency key. `Err` is the
/// answer to give at once.
fn admit(
    depot: &Depot,
    headers: &HeaderMap,
    request: &str,
) -> Result<Option<String>, Box<Response>> {
    if !authorised(depot, headers) {
        return Err(Box::new(unauthorised()));
    }
    let key = idempotency_key(headers);
    match depot.keys.replay(key.as_deref(), request) {
        Replay::Fresh => Ok(key),
        Replay::Same(status, body) => Err(Box::new(answer(status, body, true))),
        Replay::Mismatch => Err(Box::new(error(
            422,
            "IDEMPOTENCY.MISMATCH",
            "This Idempotency-Key was used with another request.",
            Vec::new(),
        ))),
    }
}

fn authorised(depot: &Depot, headers: &HeaderMap) -> bool {
    basic_auth(headers).map(|(user, _)| user).as_deref() == Some(depot.api_key.as_str())
}

fn unauthorised() -> Response {
    error(
        401,
        "APIKEY.INACTIVE",
        "The API key provided is not valid.",
        Vec::new(),
    )
}

fn json_body(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            400,
            "BAD_REQUEST",
            &format!("The request body is not JSON: {e}"),
            Vec::new(),
        ))
    })
}

/// The address as EasyPost shows it, or the fields it misses.
fn address(which: &str, given: &Value) -> Result<Value, Vec<Value>> {
    let text = |name: &str| {
        given[name]
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut missing = Vec::new();
    for field in ["street1", "city", "zip", "country"] {
        if text(field).is_none() {
            missing.push(json!({
                "field": format!("{which}.{field}"),
                "message": "cannot be blank",
            }));
        }
    }
    if let Some(country) = text("country")
        && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        missing.push(json!({
            "field": format!("{which}.country"),
            "message": "must be a two-letter ISO country code",
        }));
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut shown = json!({ "id": random_id("adr_"), "object": "Address", "mode": "test" });
    for field in [
        "name", "company", "street1", "street2", "city", "state", "zip", "country", "phone",
        "email",
    ] {
        shown[field] = json!(text(field));
    }
    Ok(shown)
}

fn cents(amount: i64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let given = match json_body(&body) {
        Ok(given) => given,
        Err(response) => return *response,
    };
    let request = fingerprint(
        "POST",
        "/v2/shipments",
        &[(String::new(), given.to_string())],
    );
    let mut depot = lock(&state);
    let key = match admit(&depot, &headers, &request) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let shipment = &given["shipment"];
    if !shipment.is_object() {
        return error(
            422,
            "PARAMETER.REQUIRED",
            "Missing required parameter: shipment.",
            Vec::new(),
        );
    }
    let to = address("to_address", &shipment["to_address"]);
    let from = address("from_address", &shipment["from_address"]);
    let (to, from) = match (to, from) {
        (Ok(to), Ok(from)) => (to, from),
        (to, from) => {
            let mut errors = to.err().unwrap_or_default();
            errors.extend(from.err().unwrap_or_default());
            return error(
                422,
                "ADDRESS.VERIFY.FAILURE",
                "Unable to verify address.",
                errors,
            );
        }
    };
    let weight = shipment["parcel"]["weight"].as_f64().unwrap_or(0.0);
    if !(weight > 0.0 && weight.is_finite()) {
        return error(
            422,
            "PARAMETER.INVALID",
            "Invalid parameter: parcel.weight must be a positive number of ounces.",
            vec![json!({ "field": "parcel.weight", "message": "must be greater than 0" })],
        );
    }

    let id = random_id("shp_");
    let started_ounces = weight.ceil() as i64;
    let rates: Vec<Value> = RATE_TABLE
        .iter()
        .map(|&(carrier, service, base, per_ounce, days)| {
            let price = cents(base + per_ounce * started_ounces);
            json!({
                "id": random_id("rate_"),
                "object": "Rate",
                "mode": "test",
                "shipment_id": id,
                "carrier": carrier,
                "service": service,
                "rate": price,
                "currency": "USD",
                "retail_rate": price,
                "retail_currency": "USD",
                "delivery_days": days,
                "est_delivery_days": days,
                "carrier_account_id": format!("ca_sandbox_{}", carrier.to_ascii_lowercase()),
            })
        })
        .collect();
    let at = now();
    let mut parcel = json!({ "id": random_id("prcl_"), "object": "Parcel", "mode": "test" });
    for field in ["length", "width", "height", "predefined_package"] {
        parcel[field] = shipment["parcel"][field].clone();
    }
    parcel["weight"] = json!(weight);
    let shown = json!({
        "id": id,
        "object": "Shipment",
        "mode": "test",
        "reference": shipment["reference"],
        "status": "unknown",
        "to_address": to,
        "from_address": from,
        "return_address": from,
        "buyer_address": to,
        "parcel": parcel,
        "rates": rates,
        "selected_rate": null,
        "postage_label": null,
        "tracking_code": null,
        "tracker": null,
        "messages": [],
        "created_at": at,
        "updated_at": at,
    });
    depot.shipments.insert(id.clone(), shown.clone());
    depot.order.push(id);
    depot.keys.acted(key.as_deref());
    depot.keys.keep(key.as_deref(), request, 201, &shown);
    answer(201, shown, false)
}

fn not_found(what: &str) -> Response {
    error(
        404,
        "NOT_FOUND",
        &format!("The requested resource could not be found: {what}."),
        Vec::new(),
    )
}

async fn retrieve(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let depot = lock(&state);
    if !authorised(&depot, &headers) {
        return unauthorised();
    }
    match depot.shipments.get(&id) {
        Some(shipment) => answer(200, shipment.clone(), false),
        None => not_found(&id),
    }
}

async fn buy(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let given = match json_body(&body) {
        Ok(given) => given,
        Err(response) => return *response,
    };
    let path = format!("/v2/shipments/{id}/buy");
    let request = fingerprint("POST", &path, &[(String::new(), given.to_string())]);
    let mut depot = lock(&state);
    let key = match admit(&depot, &headers, &request) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let Some(rate_id) = given["rate"]["id"].as_str().map(str::to_owned) else {
        return error(
            422,
            "PARAMETER.REQUIRED",
            "Missing required parameter: rate.id.",
            Vec::new(),
        );
    };
    let base_url = depot.base_url.clone();
    let Some(shipment) = depot.shipments.get_mut(&id) else {
        return not_found(&id);
    };
    if !shipment["postage_label"].is_null() {
        let body = json!({ "error": {
            "code": "SHIPMENT.POSTAGE.EXISTS",
            "message": "This shipment already has postage.",
            "errors": [],
        }});
        depot.keys.keep(key.as_deref(), request, 422, &body);
        return answer(422, body, false);
    }
    let rate = shipment["rates"]
        .as_array()
        .and_then(|rates| rates.iter().find(|rate| rate["id"] == rate_id.as_str()))
        .cloned();
    let Some(rate) = rate else {
        return error(
            422,
            "SHIPMENT.RATE.INVALID",
            &format!("The rate {rate_id} is not one of this shipment's rates."),
            Vec::new(),
        );
    };
    let tracking_code = format!("EZ{}", NEXT_TRACKING.fetch_add(1, Ordering::Relaxed));
    let tracker_id = random_id("trk_");
    let label_id = random_id("pl_");
    let at = now();
    let tracker = json!({
        "id": tracker_id,
        "object": "Tracker",
        "mode": "test",
        "tracking_code": tracking_code,
        "status": "pre_transit",
        "carrier": rate["carrier"],
        "shipment_id": id,
        "est_delivery_date": null,
        "public_url": format!("{base_url}/track/{tracker_id}"),
        "tracking_details": [],
        "created_at": at,
        "updated_at": at,
    });
    shipment["selected_rate"] = rate;
    shipment["tracking_code"] = json!(tracking_code);
    shipment["tracker"] = tracker.clone();
    shipment["updated_at"] = json!(at);
    shipment["postage_label"] = json!({
        "id": label_id,
        "object": "PostageLabel",
        "label_date": at,
        "label_resolution": 300,
        "label_size": "4x6",
        "label_type": "default",
        "label_file_type": "image/png",
        "label_url": format!("{base_url}/labels/{label_id}.png"),
        "created_at": at,
        "updated_at": at,
    });
    let shown = shipment.clone();
    depot.trackers.insert(tracker_id, tracker);
    depot.keys.acted(key.as_deref());
    depot.keys.keep(key.as_deref(), request, 200, &shown);
    answer(200, shown, false)
}

async fn tracker(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let depot = lock(&state);
    if !authorised(&depot, &headers) {
        return unauthorised();
    }
    match depot.trackers.get(&id) {
        Some(tracker) => answer(200, tracker.clone(), false),
        None => not_found(&id),
    }
}
