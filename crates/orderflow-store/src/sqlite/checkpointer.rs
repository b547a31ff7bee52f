//! Moves committed pages from the WAL into the database file, off the writer's thread.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// How often to checkpoint: often enough that the WAL stays small, rarely enough to cost
/// nothing when idle.
const INTERVAL: Duration = Duration::from_millis(250);

/// Keeps the checkpointer running; dropping it stops the thread.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _running: mpsc::Sender<()>,
}

/// Runs passive checkpoints until the store is dropped. A passive checkpoint never blocks the
/// writer or readers; frames still in use are left for the next round.
pub(super) fn start(connection: Connection) -> Result<Checkpointer> {
    let (running, stopped) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                let outcome =
                    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                if let Err(error) = outcome {
                    tracing::warn!(%error, "wal checkpoint failed");
                }
            }
        })
        .map_err(Error::unavailable)?;
    Ok(Checkpointer { _running: running })
}
