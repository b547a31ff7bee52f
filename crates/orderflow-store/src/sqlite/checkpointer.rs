//! Moves committed pages from the WAL into the database file, off the writer's thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// How often to checkpoint: often enough that little is left for the next round, rarely
/// enough to cost nothing when idle.
const INTERVAL: Duration = Duration::from_millis(250);

/// WAL frames past which the log is started over (256 MiB of 1 KiB pages; a database made
/// with 4 KiB pages before they shrank keeps a log of up to 1 GiB). Passive checkpoints alone
/// never catch up with a writer that commits without pause: the log only starts again from
/// its beginning once a checkpoint has copied every frame, so under sustained load it grew by
/// ~90 MB/s (700 MB in eight seconds of `bench orders`, 1.1 GB in ten of `bench ingest`).
/// Each restart holds the writer back a moment: at 64 Ki frames, ingest's p99 rose from ~10
/// to ~13-15 ms; at 256 Ki, to ~11-12.5 ms.
const RESTART_AFTER_FRAMES: i64 = 256 * 1024;

/// Keeps the checkpointer running; dropping it stops the thread.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _running: mpsc::Sender<()>,
}

/// Runs passive checkpoints until the store is dropped. A passive checkpoint never blocks the
/// writer or readers; frames still in use are left for the next round. When the log has grown
/// long, it asks the writer (through `restart`) to start the log over between two batches: a
/// restarting checkpoint run from here would wait for the write lock, which a writer that
/// never pauses does not give up.
pub(super) fn start(connection: Connection, restart: RestartRequest) -> Result<Checkpointer> {
    start_with(connection, restart, INTERVAL, RESTART_AFTER_FRAMES)
}

fn start_with(
    connection: Connection,
    restart: RestartRequest,
    interval: Duration,
    restart_after: i64,
) -> Result<Checkpointer> {
    let (running, stopped) = mpsc::channel::<()>();
    thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                match checkpoint(&connection, "PASSIVE") {
                    Ok(frames) if frames > restart_after => restart.ask(),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "wal checkpoint failed"),
                }
            }
        })
        .map_err(Error::unavailable)?;
    Ok(Checkpointer { _running: running })
}

/// The checkpointer's request that the writer start the log over, shared by the two threads.
#[derive(Debug, Clone, Default)]
pub(crate) struct RestartRequest(Arc<AtomicBool>);

impl RestartRequest {
    fn ask(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Run by the writer between two transactions: if asked, a restarting checkpoint, which
    /// copies only what was committed since the last passive one and waits for no writer. The
    /// next commit writes the log from its beginning, over blocks the file already has.
    pub(crate) fn honour(&self, connection: &Connection) {
        if self.0.swap(false, Ordering::Relaxed)
            && let Err(error) = checkpoint(connection, "RESTART")
        {
            tracing::warn!(%error, "wal restart failed");
        }
    }
}

/// Runs a checkpoint of `mode`; answers how many frames the log held.
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<i64> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get(1)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{RestartRequest, start_with};
    use crate::sqlite::writer::Writer;
    use crate::sqlite::{Synchronous, open_connection};

    /// A writer that commits without pause never leaves a passive checkpoint the moment it
    /// needs to copy the last frame, so without restarts the log grows by all it is written.
    #[tokio::test]
    async fn the_log_stays_bounded_while_the_writer_commits_without_pause() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("bounded.db");
        let path = path.to_str().expect("the temporary path is UTF-8");
        let connection =
            open_connection(path, Synchronous::Normal).expect("the writer's connection");
        connection
            .execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .expect("a table");
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no checkpoints by the writer");
        let restart = RestartRequest::default();
        let writer = Writer::start(connection, restart.clone()).expect("the writer starts");
        // Rounds every 10 ms, and a restart past 1,000 frames (1 MB): the log should never
        // hold much more than that.
        let _checkpointer = start_with(
            open_connection(path, Synchronous::Normal).expect("the checkpointer's connection"),
            restart,
            Duration::from_millis(10),
            1_000,
        )
        .expect("the checkpointer starts");

        let written_bytes = 64 * 1024 * 1024;
        let body = vec![7u8; 16 * 1024];
        for _ in 0..written_bytes / body.len() {
            let body = body.clone();
            writer
                .write(move |c| {
                    c.execute("INSERT INTO blobs (body) VALUES (?1)", [&body])?;
                    Ok(())
                })
                .await
                .expect("a commit");
        }

        let log = std::fs::metadata(directory.path().join("bounded.db-wal"))
            .expect("the log exists")
            .len();
        assert!(
            log < 16 * 1024 * 1024,
            "the log holds {log} bytes after {written_bytes} were written"
        );
    }
}
