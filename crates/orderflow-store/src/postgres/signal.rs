//! Wakes workers on every node when there is new work: `NOTIFY` after the work is committed,
//! `LISTEN` on a connection of its own.
//!
//! The notification is sent by a task of its own rather than inside the transaction that
//! created the work: a transaction that notifies holds a database-wide lock through its commit,
//! which would queue every order placement behind the previous one's disk flush. Work is
//! committed before it is announced, so a worker woken by the announcement always finds it;
//! an announcement lost to a broken connection costs a poll interval, no more.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

const CHANNEL: &str = "orderflow_work";
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct WorkSignal {
    /// Also used for leadership connections.
    pub(super) config: tokio_postgres::Config,
    /// Woken by `LISTEN` (and by local work directly); what this node's workers wait on.
    local: Arc<Notify>,
    listening: OnceLock<()>,
    /// Woken by local commits that created work; started on the first one.
    outgoing: OnceLock<Arc<Notify>>,
}

impl WorkSignal {
    pub(super) fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            local: Arc::new(Notify::new()),
            listening: OnceLock::new(),
            outgoing: OnceLock::new(),
        }
    }

    /// Announces committed work to this node's workers at once and to other nodes' through
    /// `NOTIFY`, coalescing announcements made while one is being sent.
    pub(super) fn announce(&self) {
        self.local.notify_one();
        self.outgoing
            .get_or_init(|| {
                let wake = Arc::new(Notify::new());
                tokio::spawn(notify_loop(self.config.clone(), wake.clone()));
                wake
            })
            .notify_one();
    }

    /// What this node's workers wait on; listens for other nodes' announcements from the
    /// first call on.
    pub(super) fn subscribe(&self) -> Arc<Notify> {
        self.listening.get_or_init(|| {
            tokio::spawn(listen_loop(self.config.clone(), self.local.clone()));
        });
        self.local.clone()
    }
}

async fn notify_loop(config: tokio_postgres::Config, wake: Arc<Notify>) {
    loop {
        let client = match config.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }
            Err(error) => {
                tracing::warn!(%error, "work announcements: cannot connect; retrying");
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        loop {
            wake.notified().await;
            if let Err(error) = client.batch_execute(&format!("NOTIFY {CHANNEL}")).await {
                tracing::warn!(%error, "work announcement failed; reconnecting");
                break;
            }
        }
    }
}

async fn listen_loop(config: tokio_postgres::Config, local: Arc<Notify>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (messages, mut received) = tokio::sync::mpsc::unbounded_channel();
                // The connection must be polled for notifications to arrive; this task does it.
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if messages.send(()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "work listener connection failed");
                                break;
                            }
                        }
                    }
                });
                if let Err(error) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::warn!(%error, "cannot LISTEN for work");
                } else {
                    // Work announced while no one listened is found by the catch-up this wakes.
                    local.notify_one();
                    while received.recv().await.is_some() {
                        local.notify_one();
                    }
                }
                driver.abort();
            }
            Err(error) => tracing::warn!(%error, "work listener: cannot connect"),
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

/// Leadership as a session-level advisory lock on a connection of its own: PostgreSQL releases
/// it when the connection closes, so a node that dies stops leading at once.
#[derive(Debug)]
pub(super) struct AdvisoryLeadership {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl AdvisoryLeadership {
    pub(super) async fn try_take(
        config: &tokio_postgres::Config,
        role: &str,
    ) -> crate::Result<Option<Self>> {
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let held: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&role],
            )
            .await?
            .try_get(0)?;
        if held {
            Ok(Some(Self { client, driver }))
        } else {
            driver.abort();
            Ok(None)
        }
    }
}

impl crate::runs::Leadership for AdvisoryLeadership {
    fn is_held(&self) -> bool {
        !self.client.is_closed()
    }
}

impl Drop for AdvisoryLeadership {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
