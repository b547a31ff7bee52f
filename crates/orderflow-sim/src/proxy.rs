//! A proxy to put in front of a receiver (orderflow itself) to make it look unreliable to a
//! platform: the next N requests answered with an error without reaching it, or reaching it
//! at once but answered late — the receiver did its work, the platform timed out anyway and
//! re-sends, which is how duplicates happen in real life.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::serve::{self, Fault, Faults, Seen, Serving};

/// A running proxy. Its [`Proxy::faults`] decide the next requests: `Status` answers without
/// forwarding; `Delay` forwards at once and holds the answer back.
#[derive(Debug)]
pub struct Proxy {
    serving: Serving,
    faults: Faults,
}

#[derive(Debug, Clone)]
struct Forwarding {
    target: String,
    http: reqwest::Client,
    faults: Faults,
}

impl Proxy {
    /// Forwards every request to the same path and query under `target`
    /// (`http://127.0.0.1:8080`).
    pub async fn start(target: &str) -> std::io::Result<Self> {
        let (listener, url) = serve::bind().await?;
        let faults = Faults::default();
        let state = Forwarding {
            target: target.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            faults: faults.clone(),
        };
        let router = Router::new().fallback(forward).with_state(state);
        Ok(Self {
            serving: serve::serve(listener, url, router),
            faults,
        })
    }

    /// Where platforms should send: the proxy's own base URL.
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The requests the proxy saw and what it answered each.
    pub fn requests(&self) -> Vec<Seen> {
        self.serving.requests()
    }

    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// Headers that belong to one hop, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive"
    )
}

async fn forward(State(forwarding): State<Forwarding>, request: Request) -> Response {
    let (held_back, refused) = match forwarding.faults.take() {
        Some(Fault::Status(status)) => (Duration::ZERO, Some(status)),
        Some(Fault::Delay(delay)) => (delay, None),
        None => (Duration::ZERO, None),
    };
    if let Some(status) = refused {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        return (status, "simulated failure").into_response();
    }
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let body = match axum::body::to_bytes(body, crate::MAX_BODY).await {
        Ok(body) => body,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let mut outgoing = forwarding
        .http
        .request(parts.method, format!("{}{path}", forwarding.target))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answered = match outgoing.send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            match response.bytes().await {
                Ok(bytes) => Ok((status, headers, bytes)),
                Err(error) => Err(error.to_string()),
            }
        }
        Err(error) => Err(error.to_string()),
    };
    // The target has done its work by now; only the answer is late.
    tokio::time::sleep(held_back).await;
    match answered {
        Ok((status, headers, bytes)) => {
            let mut response = Response::new(Body::from(Bytes::from(bytes.to_vec())));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if !hop_by_hop(name) {
                    response.headers_mut().insert(name.clone(), value.clone());
                }
            }
            response
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error).into_response(),
    }
}
