//! The single SQLite writer: one thread owns the only read-write connection and commits many
//! requests per transaction (group commit).
//!
//! Each request runs inside its own savepoint, so a refused request rolls back alone while the
//! others in the batch commit. Answers are sent only after the batch's COMMIT returns, so a
//! caller that got `Ok` holds a durable result; if COMMIT fails, every request in the batch
//! gets the error.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpointer::RestartRequest;
use crate::error::{Error, Result};

/// Upper bound on requests per transaction, to bound latency and the WAL's growth.
const MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(Option<&str>) + Send>;
/// Given the connection inside an open transaction, runs the request; given `None` (the
/// transaction could not begin), only prepares to report the failure.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Completion + Send>;

#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer's thread; between batches it honours the checkpointer's `restart`.
    pub(crate) fn start(connection: Connection, restart: RestartRequest) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(connection, queue, &restart))
            .map_err(Error::unavailable)?;
        Ok(Self { jobs })
    }

    /// Runs `operation` in the next transaction and answers once it is committed.
    pub(crate) async fn write<T, F>(&self, operation: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let outcome = match connection {
                Some(connection) => in_savepoint(connection, operation),
                None => Err(Error::unavailable("could not begin a transaction")),
            };
            Box::new(move |commit_failure| {
                let result = match commit_failure {
                    None => outcome,
                    Some(reason) => Err(Error::unavailable(format!("commit failed: {reason}"))),
                };
                let _ = reply.send(result);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::unavailable("the SQLite writer has stopped"))?;
        answer
            .await
            .map_err(|_| Error::unavailable("the SQLite writer has stopped"))?
    }
}

fn in_savepoint<T>(
    connection: &Connection,
    operation: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    connection
        .prepare_cached("SAVEPOINT request")?
        .execute([])?;
    let outcome = operation(connection);
    let finish = if outcome.is_ok() {
        "RELEASE request"
    } else {
        "ROLLBACK TO request"
    };
    connection.prepare_cached(finish)?.execute([])?;
    if outcome.is_err() {
        connection.prepare_cached("RELEASE request")?.execute([])?;
    }
    outcome
}

fn run(connection: Connection, queue: mpsc::Receiver<Job>, restart: &RestartRequest) {
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = queue.recv() {
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            first(None)(Some(&error.to_string()));
            continue;
        }
        completions.push(first(Some(&connection)));
        while completions.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => completions.push(job(Some(&connection))),
                Err(_) => break,
            }
        }
        let failure = connection.execute_batch("COMMIT").err().map(|error| {
            tracing::error!(%error, batch = completions.len(), "sqlite commit failed");
            let _ = connection.execute_batch("ROLLBACK");
            error.to_string()
        });
        for complete in completions.drain(..) {
            complete(failure.as_deref());
        }
        restart.honour(&connection);
    }
}
