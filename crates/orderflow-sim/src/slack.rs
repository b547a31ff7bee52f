//! A Slack incoming-webhook sandbox: a secret URL that takes a JSON message and answers `ok`,
//! over real HTTP on 127.0.0.1, keeping what it was sent.
//!
//! What it follows from Slack's documentation of incoming webhooks: `POST` a JSON body with
//! `text` (or `blocks`) to `/services/T.../B.../<secret>`; success is 200 with the plain body
//! `ok`; a body that is not JSON is 400 `invalid_payload`, one without text 400 `no_text`, an
//! unknown URL 404 `no_service`; rate limiting is 429 with `Retry-After` (see
//! [`Faults::on`] and [`crate::serve::Matching::rate_limit`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use crate::serve::{self, Faults, Seen, Serving, lock, random_id};

/// A running webhook sink. Dropping it stops it.
#[derive(Debug)]
pub struct SlackSink {
    serving: Serving,
    webhook_url: String,
    state: Shared,
}

type Shared = Arc<Mutex<Inbox>>;

#[derive(Debug)]
struct Inbox {
    secret: String,
    messages: Vec<Value>,
}

impl SlackSink {
    pub async fn start() -> std::io::Result<Self> {
        let (listener, url) = serve::bind().await?;
        let secret = random_id("");
        let webhook_url = format!("{url}/services/T0SANDBOX/B0SANDBOX/{secret}");
        let state = Arc::new(Mutex::new(Inbox {
            secret,
            messages: Vec::new(),
        }));
        let router = Router::new()
            .route("/services/{team}/{bot}/{secret}", post(take))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no_service") })
            .with_state(state.clone());
        Ok(Self {
            serving: serve::serve(listener, url, router),
            webhook_url,
            state,
        })
    }

    /// The incoming-webhook URL to post to, secret included.
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    pub fn faults(&self) -> &Faults {
        self.serving.faults()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.serving.requests()
    }

    /// The JSON bodies taken, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.state).messages.clone()
    }

    /// The `text` of each message taken, oldest first.
    pub fn texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The messages taken once there are at least `count`, or whatever there is after
    /// `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

async fn take(
    State(state): State<Shared>,
    Path((_team, _bot, secret)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let mut inbox = lock(&state);
    if secret != inbox.secret {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    let has_text = message["text"]
        .as_str()
        .is_some_and(|t| !t.trim().is_empty());
    let has_blocks = message["blocks"].as_array().is_some_and(|b| !b.is_empty());
    if !message.is_object() {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    }
    if !has_text && !has_blocks {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    inbox.messages.push(message);
    (StatusCode::OK, "ok").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stalled_request_is_answered_when_the_sink_stops() {
        let sink = SlackSink::start().await.expect("starts");
        sink.faults().on("POST /services/*").stall(1);
        let url = sink.webhook_url().to_owned();
        let request = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .body(r#"{"text":"held"}"#)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;

        tokio::time::timeout(Duration::from_secs(5), sink.stop())
            .await
            .expect("stopping does not wait for the stall");

        let status = request.await.expect("the request ran");
        assert_eq!(status.ok(), Some(504));
    }

    #[tokio::test]
    async fn a_lost_answer_acts_first_and_released_stalls_answer() {
        let sink = SlackSink::start().await.expect("starts");
        sink.faults().on("*").lose_answer(1);
        let url = sink.webhook_url().to_owned();
        let request = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .body(r#"{"text":"kept"}"#)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });

        assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
        assert!(!request.is_finished());
        // The answer is held from just after the work, so release until it is let go.
        while !request.is_finished() {
            sink.faults().release_stalls();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = request.await.expect("the request ran");
        assert_eq!(status.ok(), Some(200));
        assert_eq!(sink.texts(), vec!["kept".to_owned()]);
    }
}
