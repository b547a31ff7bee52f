//! Sends the alerts that failing steps left in the store, retrying until the sink takes them.
//! An alert is written in the transaction that failed its step, so it is neither lost by a
//! crash nor sent for a step that did not fail.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderflow_store::{Alert, AlertOutcome, Store};
use time::OffsetDateTime;

#[async_trait]
pub trait AlertSink: Send + Sync + fmt::Debug {
    async fn send(&self, alert: &Alert) -> Result<(), String>;
}

const BATCH: u32 = 16;
const LEASE: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs until dropped.
#[derive(Debug)]
pub struct AlertDispatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AlertDispatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AlertDispatcher {
    pub fn start(store: Arc<dyn Store>, sink: Arc<dyn AlertSink>, poll_every: Duration) -> Self {
        Self {
            task: tokio::spawn(dispatch(store, sink, poll_every)),
        }
    }
}

async fn dispatch(store: Arc<dyn Store>, sink: Arc<dyn AlertSink>, poll_every: Duration) {
    loop {
        let now = OffsetDateTime::now_utc();
        let alerts = match store.claim_alerts(BATCH, now, now + LEASE).await {
            Ok(alerts) => alerts,
            Err(error) => {
                tracing::warn!(%error, "claiming alerts failed");
                Vec::new()
            }
        };
        let full = alerts.len() == BATCH as usize;
        for alert in alerts {
            let outcome = match sink.send(&alert).await {
                Ok(()) => AlertOutcome::Sent,
                Err(error) => {
                    let backoff = Duration::from_secs(2u64.saturating_pow(alert.attempts.min(16)))
                        .min(MAX_BACKOFF);
                    tracing::warn!(alert = %alert.alert_id, %error, "alert not delivered; will retry");
                    AlertOutcome::RetryAt {
                        error,
                        at: OffsetDateTime::now_utc() + backoff,
                    }
                }
            };
            if let Err(error) = store
                .record_alert(&alert.alert_id, outcome, OffsetDateTime::now_utc())
                .await
            {
                tracing::warn!(%error, "recording an alert failed");
            }
        }
        if !full {
            tokio::time::sleep(poll_every).await;
        }
    }
}
