//! Wakes workers on every node when there is new work: `NOTIFY` after the work is committed,
//! `LISTEN` on a connection of its own.
//!
//! The notification is sent by a task of its own rather than inside the transaction that
//! created the work: a transaction that notifies holds a database-wide lock through its commit,
//! which would queue every order placement behind the previous one's disk flush. Work is
//! committed before it is announced, so a worker woken by the announcement always finds it;
//! an announcement lost to a broken connection costs a poll interval, no more. Each kind of
//! [`Work`] has a channel, so a burst of deliveries wakes intake workers, not step workers.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::Work;
use crate::wake::Wakers;

const RECONNECT_AFTER: Duration = Duration::from_secs(1);
const GATHER_ANNOUNCEMENTS: Duration = Duration::from_millis(5);

/// One channel per kind of work, all listened to on the node's one `LISTEN` connection.
/// Steps keep the channel they always had, so that nodes of an older release still hear them.
fn channel(work: Work) -> &'static str {
    match work {
        Work::Steps => "orderflow_work",
        Work::Deliveries => "orderflow_deliveries",
        Work::Forwards => "orderflow_forwards",
    }
}

fn bit(work: Work) -> u8 {
    match work {
        Work::Steps => 1,
        Work::Deliveries => 2,
        Work::Forwards => 4,
    }
}

#[derive(Debug)]
pub(super) struct WorkSignal {
    /// Also used for leadership connections.
    pub(super) config: tokio_postgres::Config,
    /// Woken by `LISTEN` (and by local work directly); what this node's workers wait on.
    local: Arc<Wakers>,
    listening: OnceLock<()>,
    /// The kinds announced since the last `NOTIFY` went out (bits of [`bit`]).
    pending: Arc<AtomicU8>,
    /// Woken by local commits that created work; started on the first one.
    outgoing: OnceLock<Arc<Notify>>,
}

impl WorkSignal {
    pub(super) fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            local: Arc::default(),
            listening: OnceLock::new(),
            pending: Arc::default(),
            outgoing: OnceLock::new(),
        }
    }

    /// Announces committed work to this node's workers at once and to other nodes' through
    /// `NOTIFY`, coalescing announcements made while one is being sent: a burst of a thousand
    /// deliveries costs a few `NOTIFY`s, not a thousand.
    pub(super) fn announce(&self, work: Work) {
        self.local.wake(work);
        self.pending.fetch_or(bit(work), Ordering::AcqRel);
        self.outgoing
            .get_or_init(|| {
                let wake = Arc::new(Notify::new());
                tokio::spawn(notify_loop(
                    self.config.clone(),
                    wake.clone(),
                    self.pending.clone(),
                ));
                wake
            })
            .notify_one();
    }

    /// What this node's workers of `work` wait on; listens for other nodes' announcements
    /// (of every kind, on one connection) from the first call on.
    pub(super) fn subscribe(&self, work: Work) -> Arc<Notify> {
        self.listening.get_or_init(|| {
            tokio::spawn(listen_loop(self.config.clone(), self.local.clone()));
        });
        self.local.of(work).clone()
    }
}

async fn notify_loop(config: tokio_postgres::Config, wake: Arc<Notify>, pending: Arc<AtomicU8>) {
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
            // Kinds left over from a failed send go out as soon as the connection is back.
            if pending.load(Ordering::Acquire) == 0 {
                wake.notified().await;
            }
            let kinds = pending.swap(0, Ordering::AcqRel);
            let statements: Vec<String> = Work::ALL
                .into_iter()
                .filter(|work| kinds & bit(*work) != 0)
                .map(|work| format!("NOTIFY {}", channel(work)))
                .collect();
            if statements.is_empty() {
                continue;
            }
            if let Err(error) = client.batch_execute(&statements.join("; ")).await {
                pending.fetch_or(kinds, Ordering::AcqRel);
                tracing::warn!(%error, "work announcement failed; reconnecting");
                break;
            }
            // Each NOTIFY is a commit of its own, and every listening backend reads it: under
            // a burst, announcements gather for a moment instead of going out back to back.
            // Other nodes hear of work at most this much later; this node's workers were
            // woken directly.
            tokio::time::sleep(GATHER_ANNOUNCEMENTS).await;
        }
    }
}

async fn listen_loop(config: tokio_postgres::Config, local: Arc<Wakers>) {
    let listen: Vec<String> = Work::ALL
        .into_iter()
        .map(|work| format!("LISTEN {}", channel(work)))
        .collect();
    let listen = listen.join("; ");
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
                            Ok(AsyncMessage::Notification(notification)) => {
                                let work = Work::ALL
                                    .into_iter()
                                    .find(|work| channel(*work) == notification.channel());
                                if let Some(work) = work
                                    && messages.send(work).is_err()
                                {
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
                if let Err(error) = client.batch_execute(&listen).await {
                    tracing::warn!(%error, "cannot LISTEN for work");
                } else {
                    // Work announced while no one listened is found by the catch-up this wakes.
                    local.wake_all();
                    while let Some(work) = received.recv().await {
                        local.wake(work);
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
