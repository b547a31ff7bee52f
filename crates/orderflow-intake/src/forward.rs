//! Forwarding clean orders to a store's destination (its courier system), signed per
//! Standard Webhooks, retried with exponential backoff and jitter, honouring `Retry-After`,
//! and dead-lettered after the last try until an operator replays it.

use std::sync::Arc;
use std::time::Duration;

use orderflow_connectors::signature::standard::Secret;
use orderflow_store::{Forward, ForwardOutcome, Store};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The Standard Webhooks envelope around an already serialised `data` document.
pub fn envelope(kind: &str, at: OffsetDateTime, data: &str) -> String {
    let timestamp = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(r#"{{"type":"{kind}","timestamp":"{timestamp}","data":{data}}}"#)
}

#[derive(Debug, Clone)]
pub struct ForwardPolicy {
    /// Tries before a forward is dead-lettered.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long one request may take.
    pub timeout: Duration,
    /// How often to look for due forwards when nothing wakes the forwarder.
    pub poll: Duration,
}

impl Default for ForwardPolicy {
    /// About a day of tries: 5 s, 10 s, 20 s … capped at an hour, 12 in all.
    fn default() -> Self {
        Self {
            max_attempts: 12,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(15),
            poll: Duration::from_millis(250),
        }
    }
}

impl ForwardPolicy {
    /// The wait before try `attempt + 1` after try `attempt` (1-based) failed: exponential,
    /// with "equal jitter" (half fixed, half random by `jitter` in 0..1) so that many orders
    /// failing together do not retry together, and never less than the receiver's
    /// `Retry-After`.
    pub fn delay(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let half = exponential / 2;
        let jittered = half + half.mul_f64(jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_delay)),
            None => jittered,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    wake: Arc<Notify>,
    policy: ForwardPolicy,
}

impl Forwarder {
    /// `wake` fires when forwards are made due: on a node, the store's
    /// `work_signal(Work::Forwards)`, which hears every node's; `policy.poll` is the fallback.
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>, policy: ForwardPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            // A destination's redirect is a failure (Standard Webhooks), never followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            store,
            http,
            wake,
            policy,
        }
    }

    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.send_due().await {
                Ok(count) if count > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "forwarder could not claim forwards"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.policy.poll) => {}
            }
        }
    }

    /// Sends every forward that is due, concurrently; returns how many were tried.
    pub async fn send_due(&self) -> Result<usize, orderflow_store::Error> {
        let now = OffsetDateTime::now_utc();
        // A claim lasts longer than a request may take, so a forward is never sent twice at
        // once; a forwarder that dies leaves it due again when the claim runs out.
        let lease = now + self.policy.timeout * 2;
        let due = self.store.claim_due_forwards(32, now, lease).await?;
        let count = due.len();
        let mut sending = JoinSet::new();
        for forward in due {
            let this = self.clone();
            sending.spawn(async move {
                let outcome = this.attempt(&forward).await;
                let recorded = this
                    .store
                    .record_forward_attempt(&forward.forward_id, outcome, OffsetDateTime::now_utc())
                    .await;
                if let Err(error) = recorded {
                    tracing::warn!(%error, forward_id = %forward.forward_id, "could not record a forward attempt");
                }
            });
        }
        while sending.join_next().await.is_some() {}
        Ok(count)
    }

    async fn attempt(&self, forward: &Forward) -> ForwardOutcome {
        let attempt = forward.attempts + 1;
        let failed = |error: String, retry_after: Option<Duration>| {
            if attempt >= self.policy.max_attempts {
                return ForwardOutcome::Dead {
                    error: format!("{error} (try {attempt} of {})", self.policy.max_attempts),
                };
            }
            let wait = self
                .policy
                .delay(attempt, rand::random::<f64>(), retry_after);
            ForwardOutcome::RetryAt {
                at: OffsetDateTime::now_utc() + wait,
                error,
            }
        };
        let store = match self.store.get_store(&forward.store_id).await {
            Ok(store) => store,
            Err(error) => return failed(format!("store: {error}"), None),
        };
        let Some(destination) = store.settings.destination else {
            return ForwardOutcome::Dead {
                error: "the store no longer has a destination".into(),
            };
        };
        let secret = match Secret::parse(&destination.secret) {
            Ok(secret) => secret,
            Err(error) => {
                return ForwardOutcome::Dead {
                    error: format!("destination secret: {error}"),
                };
            }
        };
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = secret.sign(&forward.forward_id, timestamp, forward.payload.as_bytes());
        let sent = self
            .http
            .post(&forward.url)
            .header("content-type", "application/json")
            .header("webhook-id", &forward.forward_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(forward.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => ForwardOutcome::Delivered,
            // Gone: the receiver asks not to be sent this again.
            Ok(response) if response.status().as_u16() == 410 => ForwardOutcome::Dead {
                error: "410 Gone".into(),
            },
            Ok(response) => failed(
                response.status().to_string(),
                retry_after(response.headers(), OffsetDateTime::now_utc()),
            ),
            Err(error) if error.is_timeout() => failed("timed out".into(), None),
            Err(error) => failed(error.to_string(), None),
        }
    }
}

/// The receiver's `Retry-After`, in either of its forms, measured by its own `Date`.
fn retry_after(headers: &reqwest::header::HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    orderflow_connectors::retry_after::parse(
        text(reqwest::header::RETRY_AFTER)?,
        text(reqwest::header::DATE),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ForwardPolicy {
        ForwardPolicy {
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            ..ForwardPolicy::default()
        }
    }

    #[test]
    fn the_wait_doubles_per_failure_between_half_and_all_of_it_up_to_the_cap() {
        let policy = policy();
        let cases = [
            (1, 0.0, 2_500),
            (1, 1.0, 5_000),
            (2, 0.0, 5_000),
            (3, 0.5, 15_000),
            (5, 1.0, 60_000),
            (40, 1.0, 60_000),
        ];
        for (attempt, jitter, millis) in cases {
            assert_eq!(
                policy.delay(attempt, jitter, None),
                Duration::from_millis(millis),
                "attempt {attempt}, jitter {jitter}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let policy = policy();
        assert_eq!(
            policy.delay(1, 0.0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            policy.delay(1, 0.0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        assert_eq!(
            policy.delay(3, 1.0, Some(Duration::from_secs(1))),
            Duration::from_secs(20),
            "a shorter Retry-After does not shorten the backoff"
        );
    }

    #[test]
    fn a_receivers_retry_after_is_read_in_seconds_or_as_an_http_date() {
        use reqwest::header::{DATE, HeaderMap, HeaderValue, RETRY_AFTER};
        let now = time::macros::datetime!(2026-11-27 10:00:00 UTC);
        let answer = |pairs: &[(reqwest::header::HeaderName, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(name.clone(), HeaderValue::from_static(value));
            }
            retry_after(&headers, now)
        };
        assert_eq!(
            answer(&[(RETRY_AFTER, "30")]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            answer(&[(RETRY_AFTER, "Fri, 27 Nov 2026 10:02:00 GMT")]),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            answer(&[
                (RETRY_AFTER, "Fri, 27 Nov 2026 11:00:45 GMT"),
                (DATE, "Fri, 27 Nov 2026 11:00:00 GMT"),
            ]),
            Some(Duration::from_secs(45)),
            "measured by the receiver's clock, an hour ahead of ours"
        );
        assert_eq!(answer(&[(RETRY_AFTER, "in a while")]), None);
        assert_eq!(answer(&[]), None);
    }

    #[test]
    fn the_envelope_wraps_the_document_as_data() {
        let at = time::macros::datetime!(2026-11-22 10:00 UTC);
        let body = envelope("order.created", at, r#"{"order_id":"ord_1"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(parsed["type"], "order.created");
        assert_eq!(parsed["timestamp"], "2026-11-22T10:00:00Z");
        assert_eq!(parsed["data"]["order_id"], "ord_1");
    }
}
