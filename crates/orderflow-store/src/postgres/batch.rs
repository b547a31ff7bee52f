//! Group commit on PostgreSQL: the one-statement writes of concurrent requests (placing an
//! order) run in one transaction, so that they share one commit (one WAL flush), and a product
//! that every order wants is locked once per batch instead of once per order, each holder
//! waiting out its own commit before the next could reserve.
//!
//! Receiving a webhook delivery stays a statement of its own: batched with the placements, or
//! on a batcher of their own, acknowledgements came back no faster, though PostgreSQL spent a
//! fifth less CPU on them (docs/BENCHMARKS.md).
//!
//! A batch is all or nothing. If any of its statements fails (stock that moved since it was
//! planned, a taken idempotency key or external id, a deadlock), the batch is rolled back and
//! each statement is handed back to run alone, where the failure is met and handled as before:
//! the batch only ever adds a faster path, never a new outcome.

use std::sync::Arc;

use deadpool_postgres::Pool;
use futures_util::future::{join_all, join4};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Param;
use crate::error::{Error, Result};

/// Statements one transaction takes at most.
const MAX_BATCH: usize = 64;
/// Batches in flight at once: while one commits, the next gathers and runs on another
/// connection. Two did better than four or eight on two cores (docs/BENCHMARKS.md): more
/// batches at once are smaller, and each pays its own commit.
const BATCHERS: usize = 2;
/// Statements waiting for a batcher before callers wait to hand theirs over.
const QUEUE: usize = 1024;

/// A statement that writes and answers one row, with parameters it owns so that it can cross
/// to the batcher's task.
#[derive(Debug)]
pub(super) struct BatchedStatement {
    pub sql: String,
    pub params: Vec<Box<dyn ToSql + Send + Sync>>,
    /// The `(store, product)` rows the statement reserves, which the batch locks first.
    pub products: Vec<(String, String)>,
    /// The unique key the statement claims (an idempotency key, an external id). A batch runs
    /// its statements in the order of their keys, so that two batches claiming the same keys
    /// wait for each other in one direction, not in a cycle that only PostgreSQL's deadlock
    /// detector (after a second) would break.
    pub key: String,
}

impl BatchedStatement {
    pub fn params(&self) -> Vec<Param<'_>> {
        self.params
            .iter()
            .map(|param| param.as_ref() as Param<'_>)
            .collect()
    }
}

/// What became of a statement handed to the batcher.
#[derive(Debug)]
pub(super) enum Batched {
    /// Committed with its batch; the row it answered.
    Committed(Row),
    /// Its batch failed: run the statement alone, on a connection of the caller's.
    Alone(BatchedStatement),
}

struct Job {
    statement: BatchedStatement,
    reply: oneshot::Sender<Result<Batched>>,
}

#[derive(Debug)]
pub(super) struct Batcher {
    jobs: mpsc::Sender<Job>,
}

/// Takes every product row of the batch in one statement, in the order every writer locks
/// products (by product id; here also by store, for batches that span stores), before any
/// placement of the batch locks its own: the batch's statements then take no lock that could
/// wait in a cycle with another batch or with an edit.
const LOCK_PRODUCTS: &str = "SELECT 1 FROM products p
     JOIN unnest($1::TEXT[], $2::TEXT[]) AS d (store_id, product_id)
       ON p.store_id = d.store_id AND p.product_id = d.product_id
     ORDER BY p.product_id, p.store_id
     FOR UPDATE OF p";

impl Batcher {
    pub fn start(pool: Pool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..BATCHERS {
            tokio::spawn(batcher(pool.clone(), Arc::clone(&queue)));
        }
        Self { jobs }
    }

    pub async fn execute(&self, statement: BatchedStatement) -> Result<Batched> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { statement, reply }).await {
            return Ok(Batched::Alone(job.statement));
        }
        answer
            .await
            .map_err(|_| Error::unavailable("the placement batcher stopped"))?
    }
}

/// Gathers whatever statements are waiting (at least one), runs them as one transaction and
/// answers each; ends when the store is dropped.
async fn batcher(pool: Pool, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut queue = queue.lock().await;
            if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        batch.sort_unstable_by(|a, b| a.statement.key.cmp(&b.statement.key));
        let (statements, replies): (Vec<BatchedStatement>, Vec<_>) = batch
            .into_iter()
            .map(|job| (job.statement, job.reply))
            .unzip();
        match run(&pool, &statements).await {
            Ok(Some(rows)) => {
                for (reply, row) in replies.into_iter().zip(rows) {
                    let _ = reply.send(Ok(Batched::Committed(row)));
                }
            }
            Ok(None) => {
                for (reply, statement) in replies.into_iter().zip(statements) {
                    let _ = reply.send(Ok(Batched::Alone(statement)));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::unavailable(message.clone())));
                }
            }
        }
    }
}

/// The rows the batch's statements answered, once committed; `None` if the batch could not
/// run or a statement failed and it was rolled back (each then runs alone, and meets the
/// failure, or the unreachable database, itself); an error only when the commit's fate is
/// unknown.
///
/// The whole transaction (begin, lock, the statements, commit) is sent at once and answered in
/// one round trip: a statement that fails aborts the transaction, and PostgreSQL answers the
/// `COMMIT` of an aborted transaction by rolling it back.
async fn run(pool: &Pool, statements: &[BatchedStatement]) -> Result<Option<Vec<Row>>> {
    let Ok(client) = pool.get().await else {
        return Ok(None);
    };
    let (stores, products): (Vec<&str>, Vec<&str>) = statements
        .iter()
        .flat_map(|s| &s.products)
        .map(|(store, product)| (store.as_str(), product.as_str()))
        .unzip();
    // Prepared (from the connection's cache, after the first time) before anything is sent,
    // so that what follows reaches the server in the order it is polled.
    let Ok(lock) = client.prepare_cached(LOCK_PRODUCTS).await else {
        return Ok(None);
    };
    let mut prepared = Vec::with_capacity(statements.len());
    for statement in statements {
        let Ok(statement) = client.prepare_cached(&statement.sql).await else {
            return Ok(None);
        };
        prepared.push(statement);
    }
    let params: Vec<Vec<Param<'_>>> = statements.iter().map(BatchedStatement::params).collect();
    let lock_params: [Param<'_>; 2] = [&stores, &products];
    // A batch of orders that hold no stock here (a courier's client stores) locks nothing.
    let lock_products = async {
        if products.is_empty() {
            Ok(Vec::new())
        } else {
            client.query(&lock, &lock_params).await
        }
    };
    let (begun, locked, answers, committed) = join4(
        client.batch_execute("BEGIN"),
        lock_products,
        join_all(
            prepared
                .iter()
                .zip(&params)
                .map(|(statement, params)| client.query_one(statement, params)),
        ),
        client.batch_execute("COMMIT"),
    )
    .await;
    if let Err(error) = begun {
        // Without a transaction the statements may each have committed on their own.
        return Err(error.into());
    }
    if locked.is_err() {
        return Ok(None);
    }
    let Ok(rows) = answers.into_iter().collect::<Result<Vec<Row>, _>>() else {
        return Ok(None);
    };
    committed?;
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::{BatchedStatement, run};
    use crate::postgres::{PostgresStore, scratch_store};

    fn new_store(store_id: &str) -> BatchedStatement {
        BatchedStatement {
            sql: "INSERT INTO stores (store_id, name, created_at) VALUES ($1, 'A store', now())
                  RETURNING store_id"
                .to_owned(),
            params: vec![Box::new(store_id.to_owned())],
            products: Vec::new(),
            key: store_id.to_owned(),
        }
    }

    async fn stores(store: &PostgresStore) -> Vec<String> {
        let client = store.pool.get().await.expect("a pool connection");
        client
            .query("SELECT store_id FROM stores ORDER BY store_id", &[])
            .await
            .expect("the stores")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// The batch is sent whole, commit included: a statement that fails must take the
    /// others down with it, or those the caller then runs alone would be placed twice.
    #[tokio::test]
    async fn a_batch_commits_all_its_statements_or_none() {
        let Some((store, database)) = scratch_store().await else {
            return;
        };

        let committed = run(&store.pool, &[new_store("north"), new_store("south")])
            .await
            .expect("the commit's fate is known")
            .expect("both statements committed");
        let answered: Vec<String> = committed.iter().map(|row| row.get(0)).collect();
        assert_eq!(answered, ["north", "south"]);

        // "north" exists: the second statement fails, so "east" must not be kept either.
        let rolled_back = run(&store.pool, &[new_store("east"), new_store("north")])
            .await
            .expect("the commit's fate is known");
        assert!(rolled_back.is_none());
        assert_eq!(stores(&store).await, ["default", "north", "south"]);

        // A later batch commits as usual.
        run(&store.pool, &[new_store("west")])
            .await
            .expect("the commit's fate is known")
            .expect("committed");
        assert_eq!(stores(&store).await, ["default", "north", "south", "west"]);

        drop(store);
        database
            .drop()
            .await
            .expect("the scratch database is dropped");
    }
}
