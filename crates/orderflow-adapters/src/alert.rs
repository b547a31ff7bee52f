//! Alerts for operations (a step that used all its tries, a late shipment), behind
//! [`Alerter`]: a Slack-compatible incoming webhook, e-mail, and several channels at once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::http::{self, Answer};
use crate::{AdapterError, Email, Mailer};

/// Tells operations about something that needs a person.
#[async_trait]
pub trait Alerter: Send + Sync + fmt::Debug {
    async fn alert(&self, alert: &Alert) -> Result<(), AdapterError>;
}

/// What to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub title: String,
    pub text: String,
    pub run_id: Option<String>,
    pub order_id: Option<String>,
}

impl Alert {
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            text: text.into(),
            run_id: None,
            order_id: None,
        }
    }

    /// `Run: run_1` and `Order: ord_1` lines, for the ids it has.
    fn ids(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(run) = &self.run_id {
            lines.push(format!("Run: {run}"));
        }
        if let Some(order) = &self.order_id {
            lines.push(format!("Order: {order}"));
        }
        lines
    }
}

/// Slack's control characters in message text; everything else is sent as it is.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming webhook, or anything that takes its JSON (`{"text": ...}`): Mattermost,
/// Rocket.Chat, Discord's `/slack` endpoint.
#[derive(Clone)]
pub struct SlackWebhook {
    url: String,
    http: reqwest::Client,
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is the secret.
        f.debug_struct("SlackWebhook")
            .field("url", &"[redacted]")
            .finish_non_exhaustive()
    }
}

const SLACK: &str = "the Slack webhook";

impl SlackWebhook {
    pub fn new(url: &str) -> Result<Self, AdapterError> {
        Ok(Self::with_client(
            url,
            http::http_client(http::DEFAULT_TIMEOUT)?,
        ))
    }

    pub fn with_client(url: &str, http: reqwest::Client) -> Self {
        Self {
            url: url.trim().to_owned(),
            http,
        }
    }

    /// The same webhook with requests giving up after `timeout`.
    pub fn with_timeout(self, timeout: Duration) -> Result<Self, AdapterError> {
        Ok(Self {
            http: http::http_client(timeout)?,
            ..self
        })
    }

    /// The message text: the title in bold, the text, the ids.
    fn text(alert: &Alert) -> String {
        let mut lines = vec![format!("*{}*", slack_escape(&alert.title))];
        if !alert.text.is_empty() {
            lines.push(slack_escape(&alert.text));
        }
        lines.extend(alert.ids().iter().map(|line| slack_escape(line)));
        lines.join("\n")
    }
}

#[async_trait]
impl Alerter for SlackWebhook {
    async fn alert(&self, alert: &Alert) -> Result<(), AdapterError> {
        let body = json!({ "text": Self::text(alert) });
        let sent = self.http.post(&self.url).json(&body).send().await;
        let answer = Answer::read(SLACK, sent).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        // Slack answers its errors as a word in plain text: `invalid_payload`, `no_service`.
        Err(answer.failure(SLACK, &answer.snippet()))
    }
}

/// Alerts by e-mail, through any [`Mailer`].
#[derive(Debug, Clone)]
pub struct EmailAlerter {
    pub mailer: Arc<dyn Mailer>,
    pub from: String,
    pub to: String,
}

impl EmailAlerter {
    pub fn new(mailer: Arc<dyn Mailer>, from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            mailer,
            from: from.into(),
            to: to.into(),
        }
    }
}

/// FNV-1a: a stable digest for message ids, the same on every machine and build.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[async_trait]
impl Alerter for EmailAlerter {
    async fn alert(&self, alert: &Alert) -> Result<(), AdapterError> {
        let mut text = alert.text.clone();
        let ids = alert.ids();
        if !ids.is_empty() {
            text.push_str("\n\n");
            text.push_str(&ids.join("\n"));
        }
        // The same alert sent again is the same message.
        let digest = fnv1a(&[
            &alert.title,
            &alert.text,
            alert.run_id.as_deref().unwrap_or(""),
            alert.order_id.as_deref().unwrap_or(""),
        ]);
        let email = Email {
            from: self.from.clone(),
            to: self.to.clone(),
            subject: format!("[orderflow] {}", alert.title),
            text,
            html: None,
            message_id: format!("alert.{digest:016x}"),
        };
        self.mailer.send(&email).await.map(|_| ())
    }
}

/// Several channels: each alert goes to all of them, and fails only when every one fails.
#[derive(Debug, Clone, Default)]
pub struct Alerters(pub Vec<Arc<dyn Alerter>>);

#[async_trait]
impl Alerter for Alerters {
    async fn alert(&self, alert: &Alert) -> Result<(), AdapterError> {
        let mut failures = Vec::new();
        for alerter in &self.0 {
            match alerter.alert(alert).await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(alerter = ?alerter, %error, "an alert channel failed");
                    failures.push(error);
                }
            }
        }
        if failures.is_empty() || failures.len() < self.0.len() {
            return Ok(());
        }
        let message = failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        if failures.iter().any(AdapterError::is_transient) {
            let retry_after = failures.iter().filter_map(AdapterError::retry_after).max();
            Err(AdapterError::Transient {
                message: format!("every alert channel failed: {message}"),
                retry_after,
            })
        } else {
            Err(AdapterError::Rejected(format!(
                "every alert channel failed: {message}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_text_is_escaped_and_carries_the_ids() {
        let mut alert = Alert::new("Step <pay> failed", "tries used: 5 & gave up");
        alert.order_id = Some("ord_1".into());
        assert_eq!(
            SlackWebhook::text(&alert),
            "*Step &lt;pay&gt; failed*\ntries used: 5 &amp; gave up\nOrder: ord_1"
        );
    }

    #[test]
    fn the_digest_is_stable_and_tells_fields_apart() {
        assert_eq!(fnv1a(&["a", "b"]), fnv1a(&["a", "b"]));
        assert_ne!(fnv1a(&["ab", ""]), fnv1a(&["a", "b"]));
    }
}
