//! Posting a webhook the way a platform does: one request per attempt, a per-request time
//! limit, the platform's idea of success, and its re-send schedule.

use std::time::Duration;

use tokio::time::Instant;

/// When a platform sends a delivery again after a failure, and how long it waits for an
/// answer. Schedules are hours long in real life; [`RetryPolicy::compressed`] shrinks them so
/// that a test can watch every try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before each re-send: its length is the number of re-sends.
    pub delays: Vec<Duration>,
    /// How long one attempt may take before the platform counts it failed.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// One try, no re-send.
    pub fn none(timeout: Duration) -> Self {
        Self {
            delays: Vec::new(),
            timeout,
        }
    }

    /// `retries` re-sends, the first after `first`, each wait twice the one before.
    pub fn exponential(retries: u32, first: Duration, timeout: Duration) -> Self {
        Self {
            delays: (0..retries)
                .map(|n| first.saturating_mul(2u32.saturating_pow(n)))
                .collect(),
            timeout,
        }
    }

    /// Shopify since 2024-09-10: 8 re-sends over 4 hours with exponential backoff, and an
    /// answer within 5 seconds (PLATFORMS.md §1). Shopify does not publish the exact waits;
    /// doubling from 4 h / 255 spends exactly the 4 hours on the 8 waits.
    pub fn shopify() -> Self {
        Self::exponential(
            8,
            Duration::from_secs(4 * 3600) / 255,
            Duration::from_secs(5),
        )
    }

    /// WooCommerce never re-sends; it waits up to a minute for the answer.
    pub fn woocommerce() -> Self {
        Self::none(Duration::from_secs(60))
    }

    /// Jumpseller, the stricter of its two official texts: 4 re-sends N⁴ minutes apart and a
    /// 15-second time limit.
    pub fn jumpseller() -> Self {
        Self {
            delays: (1..=4u64)
                .map(|n| Duration::from_secs(n.pow(4) * 60))
                .collect(),
            timeout: Duration::from_secs(15),
        }
    }

    /// The Standard Webhooks specification's example schedule (about three days) and a
    /// 15-second time limit.
    pub fn standard_webhooks() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            delays: vec![
                Duration::from_secs(5),
                minutes(5),
                minutes(30),
                minutes(2 * 60),
                minutes(5 * 60),
                minutes(10 * 60),
                minutes(14 * 60),
                minutes(20 * 60),
                minutes(24 * 60),
            ],
            timeout: Duration::from_secs(15),
        }
    }

    /// VTEX re-sends "at intervals recalculated by a geometric progression" and wants an
    /// answer within 5 seconds; the count is not published, so this assumes 5 re-sends
    /// doubling from a minute.
    pub fn vtex() -> Self {
        Self::exponential(5, Duration::from_secs(60), Duration::from_secs(5))
    }

    /// The same schedule `divisor` times faster; the time limit is kept.
    pub fn compressed(mut self, divisor: u32) -> Self {
        let divisor = divisor.max(1);
        for delay in &mut self.delays {
            *delay /= divisor;
        }
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The first try plus the re-sends.
    pub fn tries(&self) -> usize {
        self.delays.len() + 1
    }
}

/// One HTTP request as a platform would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered with this status (which may still count as a failure).
    Answered(u16),
    /// No answer within the policy's time limit.
    TimedOut,
    /// No connection, or the connection broke.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Attempt {
    /// The request as sent.
    pub delivery: Delivery,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct SendReport {
    pub attempts: Vec<Attempt>,
    /// Whether an attempt counted as delivered by the platform's rule.
    pub delivered: bool,
}

impl SendReport {
    pub fn statuses(&self) -> Vec<Option<u16>> {
        self.attempts
            .iter()
            .map(|a| match a.outcome {
                Outcome::Answered(status) => Some(status),
                _ => None,
            })
            .collect()
    }
}

/// A client that neither follows redirects (every platform counts a 3xx as the receiver's
/// answer, most as a failure) nor waits longer than a second to connect, as Shopify.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(1))
        .build()
        // Without TLS features there is nothing for the builder to fail on; the default
        // client differs only in following redirects.
        .unwrap_or_default()
}

/// Sends `attempt(n)` (n from 1) until `succeeded` holds for an answer or the policy's tries
/// are spent, waiting the policy's delays in between.
pub(crate) async fn deliver(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    succeeded: fn(u16) -> bool,
    mut attempt: impl FnMut(u32) -> Delivery,
) -> SendReport {
    let mut attempts = Vec::new();
    for number in 1..=policy.tries() {
        if let Some(delay) = number.checked_sub(2).and_then(|i| policy.delays.get(i)) {
            tokio::time::sleep(*delay).await;
        }
        let delivery = attempt(u32::try_from(number).unwrap_or(u32::MAX));
        let started = Instant::now();
        let mut request = http
            .post(&delivery.url)
            .timeout(policy.timeout)
            .body(delivery.body.clone());
        for (name, value) in &delivery.headers {
            request = request.header(name, value);
        }
        let outcome = match request.send().await {
            // The body is read so that a slow body counts against the time limit too.
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(_) => Outcome::Answered(status),
                    Err(error) if error.is_timeout() => Outcome::TimedOut,
                    Err(error) => Outcome::Failed(error.to_string()),
                }
            }
            Err(error) if error.is_timeout() => Outcome::TimedOut,
            Err(error) => Outcome::Failed(error.to_string()),
        };
        let delivered = matches!(outcome, Outcome::Answered(status) if succeeded(status));
        attempts.push(Attempt {
            delivery,
            outcome,
            elapsed: started.elapsed(),
        });
        if delivered {
            return SendReport {
                attempts,
                delivered: true,
            };
        }
    }
    SendReport {
        attempts,
        delivered: false,
    }
}

pub(crate) fn is_2xx(status: u16) -> bool {
    (200..300).contains(&status)
}

/// `{orderflow}/webhooks/{platform}/{store_id}`.
pub(crate) fn webhook_url(orderflow: &str, platform: &str, store_id: &str) -> String {
    format!(
        "{}/webhooks/{platform}/{store_id}",
        orderflow.trim_end_matches('/')
    )
}

pub(crate) fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shopify_spends_four_hours_on_eight_doubling_waits() {
        let policy = RetryPolicy::shopify();
        assert_eq!(policy.tries(), 9);
        let total: Duration = policy.delays.iter().sum();
        assert!(total <= Duration::from_secs(4 * 3600));
        assert!(total > Duration::from_secs(4 * 3600 - 10));
        for pair in policy.delays.windows(2) {
            assert_eq!(pair[1], pair[0] * 2);
        }
        let fast = policy.clone().compressed(1_000_000);
        assert!(fast.delays.iter().sum::<Duration>() < Duration::from_millis(20));
        assert_eq!(fast.timeout, policy.timeout);
    }

    #[test]
    fn the_other_platforms_schedules() {
        assert_eq!(RetryPolicy::woocommerce().tries(), 1);
        assert_eq!(
            RetryPolicy::jumpseller().delays,
            [1, 16, 81, 256].map(|m| Duration::from_secs(m * 60))
        );
        assert_eq!(RetryPolicy::standard_webhooks().tries(), 10);
    }
}
