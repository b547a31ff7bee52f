//! The embedded SQLite backend: rusqlite with WAL, one group-committing writer thread and a
//! pool of read-only connections for everything that only reads.

mod checkpointer;
mod documents;
mod intake;
mod runs;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orderflow_domain::status::{self, Cancellation, state};
use orderflow_domain::{
    Currency, OrderId, OrderStatus, ProductId, StockLevel, StoreId, TimelineEntry, Transition,
    plan_edit, plan_reservation,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use crate::Work;
use crate::common::{self, from_micros, live_statuses_sql, micros, parse};
use crate::error::{Error, Result};
use crate::model::*;
use crate::runs::*;
use crate::wake::Wakers;
use writer::Writer;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::unavailable(error)
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[derive(Debug)]
pub struct SqliteStore {
    writer: Writer,
    /// In-process wake-ups for workers, per kind of work: one process owns the file's writer,
    /// so its workers are the only ones to wake.
    wakers: Arc<Wakers>,
    /// Roles held by someone in this process: the file has one writer process, so leading
    /// within it is leading.
    leaders: Arc<Mutex<std::collections::HashSet<String>>>,
    readers: Arc<ReaderPool>,
    _checkpointer: checkpointer::Checkpointer,
}

#[derive(Debug)]
struct ReaderPool {
    path: String,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| Error::unavailable("reader pool poisoned"))?
            .pop();
        match idle {
            Some(connection) => Ok(connection),
            None => {
                let connection = open_connection(&self.path, Synchronous::Normal)?;
                connection.pragma_update(None, "query_only", true)?;
                Ok(connection)
            }
        }
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
    }
}

/// How hard a commit waits for the disk (`?synchronous=` on the database URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// The default: in WAL mode a commit survives the process being killed at any moment; the
    /// WAL is synced at checkpoints, so a power cut may lose the last few hundred milliseconds.
    Normal,
    /// Syncs the WAL at every commit, so an acknowledged write also survives a power cut.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// Splits `path?synchronous=full` into the file path and its options.
fn parse_location(location: &str) -> Result<(String, Synchronous)> {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let mut synchronous = Synchronous::Normal;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        synchronous = match pair {
            "synchronous=normal" => Synchronous::Normal,
            "synchronous=full" => Synchronous::Full,
            other => {
                return Err(Error::Config(format!(
                    "unknown SQLite option {other:?}; supported: synchronous=normal|full"
                )));
            }
        };
    }
    if path.is_empty() {
        return Err(Error::Config("sqlite:// needs a file path".into()));
    }
    Ok((path.to_owned(), synchronous))
}

fn open_connection(path: &str, synchronous: Synchronous) -> Result<Connection> {
    let connection = Connection::open(path)?;
    // Pages of 1 KiB instead of 4: every commit writes each page it changed to the log whole,
    // and an order changes one row on each of a few scattered pages (its products, the
    // customer index), so smaller pages write a quarter of the bytes for the same rows:
    // +16 % orders/s (docs/BENCHMARKS.md). It takes effect only when the file is created; an
    // existing database keeps its page size.
    connection.pragma_update(None, "page_size", 1024)?;
    // WAL lets readers run beside the writer.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", synchronous.pragma())?;
    connection.pragma_update(None, "foreign_keys", true)?;
    // Each request's savepoint journals the pages it touches; keep that journal in memory.
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // Small on purpose: at the end of every write transaction SQLite sweeps this cache's whole
    // page table, and a reader's cache is dropped whenever another connection committed, so
    // 64 MiB cost the writer ~10 % of its time and held nothing longer. The OS page cache
    // keeps the file's pages either way.
    connection.pragma_update(None, "cache_size", -8_192)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    // Every statement of the order path stays prepared; the default of 16 would thrash.
    connection.set_prepared_statement_cache_capacity(128);
    Ok(connection)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    /// `location` is a file path, optionally followed by `?synchronous=normal|full`.
    pub async fn open(location: &str) -> Result<Self> {
        let (path, synchronous) = parse_location(location)?;
        tokio::task::spawn_blocking(move || {
            let mut connection = open_connection(&path, synchronous)?;
            embedded::migrations::runner()
                .run(&mut connection)
                .map_err(|error| Error::Migration(Box::new(error)))?;
            // Checkpoints copy the WAL back into the database file; done by the writer they
            // would stall every request queued behind it, so a thread of their own does them.
            connection.pragma_update(None, "wal_autocheckpoint", 0)?;
            let restart = checkpointer::RestartRequest::default();
            let writer = Writer::start(connection, restart.clone())?;
            let checkpointer = checkpointer::start(open_connection(&path, synchronous)?, restart)?;
            let readers = Arc::new(ReaderPool {
                path,
                idle: Mutex::new(Vec::new()),
            });
            Ok(Self {
                writer,
                wakers: Arc::default(),
                leaders: Arc::default(),
                readers,
                _checkpointer: checkpointer,
            })
        })
        .await
        .map_err(Error::unavailable)?
    }

    async fn read<T, F>(&self, operation: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let connection = readers.take()?;
            let outcome = operation(&connection);
            readers.give_back(connection);
            outcome
        })
        .await
        .map_err(Error::unavailable)?
    }
}

#[async_trait]
impl crate::Store for SqliteStore {
    async fn readiness(&self) -> Result<Readiness> {
        let latest_migration =
            common::latest_version(embedded::migrations::runner().get_migrations());
        self.read(move |c| {
            let applied_migration = c
                .query_row(
                    "SELECT MAX(version) FROM refinery_schema_history",
                    [],
                    |row| row.get(0),
                )
                .optional()?
                .flatten();
            Ok(Readiness {
                applied_migration,
                latest_migration,
            })
        })
        .await
    }

    async fn create_store(&self, store: NewStore) -> Result<StoreRecord> {
        self.writer
            .write(move |c| {
                let inserted = c
                    .prepare_cached(
                        "INSERT INTO stores (store_id, name, platform, settings, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![store.store_id.as_str(), store.name, store.platform, common::settings_json(&store.settings)?, micros(store.now)]);
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        Err(Error::AlreadyExists(format!("store {}", store.store_id)))
                    }
                    other => other.map(|_| ()).map_err(Error::from),
                }?;
                read_store(c, &store.store_id)
            })
            .await
    }

    async fn get_store(&self, store_id: &StoreId) -> Result<StoreRecord> {
        let store_id = store_id.clone();
        self.read(move |c| read_store(c, &store_id)).await
    }

    async fn update_store(&self, store: StoreRecord) -> Result<StoreRecord> {
        self.writer
            .write(move |c| {
                let changed = c
                    .prepare_cached("UPDATE stores SET name = ?2, platform = ?3, settings = ?4 WHERE store_id = ?1")?
                    .execute(params![
                        store.store_id.as_str(),
                        store.name,
                        store.platform,
                        common::settings_json(&store.settings)?
                    ])?;
                if changed == 0 {
                    return Err(Error::NotFound);
                }
                read_store(c, &store.store_id)
            })
            .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        self.writer
            .write(move |c| {
                let inserted = c
                    .prepare_cached(
                        "INSERT INTO api_keys (key_id, token_hash, role, store_id, customer_id, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                    key.key_id,
                    key.token_hash,
                    key.role.as_str(),
                    key.store_id.as_ref().map(StoreId::as_str),
                    key.customer_id.as_ref().map(|c| c.as_str()),
                    micros(key.now)
                ]);
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        return Err(Error::AlreadyExists(format!("api key {}", key.key_id)));
                    }
                    other => other?,
                };
                Ok(ApiKey {
                    key_id: key.key_id,
                    role: key.role,
                    store_id: key.store_id,
                    customer_id: key.customer_id,
                    created_at: from_micros(micros(key.now))?,
                })
            })
            .await
    }

    async fn find_api_key(&self, token_hash: &str) -> Result<Option<ApiKey>> {
        let token_hash = token_hash.to_owned();
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT key_id, role, store_id, customer_id, created_at FROM api_keys WHERE token_hash = ?1",
                )?
                .query_row([token_hash], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .optional()?;
            let Some((key_id, role, store_id, customer_id, created_at)) = row else { return Ok(None) };
            Ok(Some(ApiKey {
                key_id,
                role: Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
                store_id: store_id.map(|s| parse("store_id", &s)).transpose()?,
                customer_id: customer_id.map(|s| parse("customer_id", &s)).transpose()?,
                created_at: from_micros(created_at)?,
            }))
        })
        .await
    }

    async fn put_product(&self, store_id: &StoreId, product: ProductInput) -> Result<Product> {
        let store_id = store_id.clone();
        let (written, poked) = self
            .writer
            .write(move |c| {
                let poked = upsert_product(c, &store_id, &product)?;
                Ok((read_product(c, &store_id, &product.product_id)?, poked))
            })
            .await?;
        if poked > 0 {
            self.wakers.wake(Work::Steps);
        }
        Ok(written)
    }

    async fn import_products(
        &self,
        store_id: &StoreId,
        products: Vec<ProductInput>,
    ) -> Result<usize> {
        let store_id = store_id.clone();
        let (written, poked) = self
            .writer
            .write(move |c| {
                let mut poked = 0;
                for product in &products {
                    poked += upsert_product(c, &store_id, product)?;
                }
                Ok((products.len(), poked))
            })
            .await?;
        if poked > 0 {
            self.wakers.wake(Work::Steps);
        }
        Ok(written)
    }

    async fn get_product(&self, store_id: &StoreId, product_id: &ProductId) -> Result<Product> {
        let (store_id, product_id) = (store_id.clone(), product_id.clone());
        self.read(move |c| read_product(c, &store_id, &product_id))
            .await
    }

    async fn list_products(
        &self,
        store_id: &StoreId,
        page: PageRequest<ProductId>,
    ) -> Result<Page<Product>> {
        let store_id = store_id.clone();
        self.read(move |c| {
            let after = page.after.as_ref().map(ProductId::as_str).unwrap_or("");
            let mut statement = c.prepare_cached(&format!(
                "SELECT {PRODUCT_COLUMNS} FROM products WHERE store_id = ?1 AND product_id > ?2
                 ORDER BY product_id LIMIT ?3"
            ))?;
            let rows = statement.query_map(
                params![store_id.as_str(), after, page.limit.saturating_add(1)],
                product_row,
            )?;
            let mut items = rows
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|r| r.into_product())
                .collect::<Result<Vec<_>>>()?;
            let has_more = items.len() > page.limit as usize;
            items.truncate(page.limit as usize);
            Ok(Page { items, has_more })
        })
        .await
    }

    async fn adjust_stock(
        &self,
        store_id: &StoreId,
        product_id: &ProductId,
        delta: i64,
    ) -> Result<Product> {
        let (store_id, product_id) = (store_id.clone(), product_id.clone());
        let (adjusted, poked) = self
            .writer
            .write(move |c| {
                let (level, _, _) = read_level(c, &store_id, &product_id)?.ok_or(Error::NotFound)?;
                let level = level.adjusted(delta)?;
                let now = OffsetDateTime::now_utc();
                c.prepare_cached(
                    "UPDATE products SET on_hand = ?1, updated_at = ?2 WHERE store_id = ?3 AND product_id = ?4",
                )?
                .execute(params![
                    level.on_hand(),
                    micros(now),
                    store_id.as_str(),
                    product_id.as_str()
                ])?;
                let poked = if delta > 0 {
                    runs::poke_backorder_sensors(c, &store_id, product_id.as_str(), now)?
                } else {
                    0
                };
                Ok((read_product(c, &store_id, &product_id)?, poked))
            })
            .await?;
        if poked > 0 {
            self.wakers.wake(Work::Steps);
        }
        Ok(adjusted)
    }

    async fn place_order(&self, order: PlaceOrder) -> Result<Placement> {
        let starts_run = order.run.is_some();
        let placement = self.writer.write(move |c| place_order(c, &order)).await?;
        if starts_run && !placement.replayed {
            self.wakers.wake(Work::Steps);
        }
        Ok(placement)
    }

    async fn get_order(&self, scope: &Scope, order_id: &OrderId) -> Result<Order> {
        let (scope, order_id) = (scope.clone(), order_id.clone());
        self.read(move |c| read_order(c, &scope, &order_id)).await
    }

    async fn edit_order(&self, scope: &Scope, edit: EditOrder) -> Result<Order> {
        let scope = scope.clone();
        let (order, poked) = self
            .writer
            .write(move |c| edit_order(c, &scope, &edit))
            .await?;
        if poked > 0 {
            self.wakers.wake(Work::Steps);
        }
        Ok(order)
    }

    async fn cancel_order(&self, scope: &Scope, cancel: CancelOrder) -> Result<Order> {
        let scope = scope.clone();
        let (order, poked) = self
            .writer
            .write(move |c| cancel_order(c, &scope, &cancel))
            .await?;
        if poked > 0 {
            self.wakers.wake(Work::Steps);
        }
        Ok(order)
    }

    async fn list_orders(&self, scope: &Scope, filter: OrderFilter) -> Result<Page<Order>> {
        let scope = scope.clone();
        self.read(move |c| list_orders(c, &scope, &filter)).await
    }

    async fn advance_order(&self, advance: AdvanceOrder) -> Result<Order> {
        self.writer.write(move |c| advance_order(c, &advance)).await
    }

    async fn fill_backorder(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
    ) -> Result<BackorderFill> {
        let order_id = order_id.clone();
        self.writer
            .write(move |c| fill_backorder(c, &order_id, now))
            .await
    }

    async fn put_document(
        &self,
        order_id: &OrderId,
        kind: &str,
        content_type: &str,
        body: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (order_id, kind, content_type) =
            (order_id.clone(), kind.to_owned(), content_type.to_owned());
        self.writer
            .write(move |c| documents::put(c, &order_id, &kind, &content_type, &body, now))
            .await
    }

    async fn get_document(
        &self,
        scope: &Scope,
        order_id: &OrderId,
        kind: &str,
    ) -> Result<Document> {
        let (scope, order_id, kind) = (scope.clone(), order_id.clone(), kind.to_owned());
        self.read(move |c| documents::get(c, &scope, &order_id, &kind))
            .await
    }

    async fn list_documents(&self, scope: &Scope, order_id: &OrderId) -> Result<Vec<DocumentInfo>> {
        let (scope, order_id) = (scope.clone(), order_id.clone());
        self.read(move |c| documents::list(c, &scope, &order_id))
            .await
    }

    async fn audit_reservations(&self, store_id: &StoreId) -> Result<Vec<ReservationAudit>> {
        let store_id = store_id.clone();
        self.read(move |c| {
            let sql = format!(
                // One pass over the store's live orders: lines are not indexed by product,
                // which would cost every placement an insert at a random place in that index.
                "WITH live AS (
                     SELECT l.product_id, SUM(l.quantity) AS units
                     FROM orders o JOIN order_lines l ON l.order_id = o.order_id
                     WHERE o.store_id = ?1 AND o.holds_stock AND o.status IN ({})
                     GROUP BY l.product_id
                 )
                 SELECT p.product_id, p.on_hand, p.reserved, COALESCE(live.units, 0)
                 FROM products p LEFT JOIN live ON live.product_id = p.product_id
                 WHERE p.store_id = ?1 ORDER BY p.product_id",
                live_statuses_sql()
            );
            let mut statement = c.prepare(&sql)?;
            let rows = statement.query_map([store_id.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                ))
            })?;
            rows.map(|row| {
                let (product_id, on_hand, reserved, reserved_by_live_orders) = row?;
                Ok(ReservationAudit {
                    product_id: parse("product_id", &product_id)?,
                    on_hand,
                    reserved,
                    reserved_by_live_orders,
                })
            })
            .collect()
        })
        .await
    }

    async fn receive_delivery(&self, delivery: NewDelivery) -> Result<Received> {
        let received = self
            .writer
            .write(move |c| intake::receive(c, &delivery))
            .await?;
        if received.duplicate_of.is_none() {
            self.wakers.wake(Work::Deliveries);
        }
        Ok(received)
    }

    async fn claim_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Delivery>> {
        self.writer
            .write(move |c| intake::claim(c, limit, now, lease_until))
            .await
    }

    async fn settle_delivery(&self, settlement: Settlement) -> Result<()> {
        let forwards = settlement.forward.is_some();
        self.writer
            .write(move |c| intake::settle(c, &settlement))
            .await?;
        if forwards {
            self.wakers.wake(Work::Forwards);
        }
        Ok(())
    }

    async fn queue_forward(&self, forward: NewForward, now: OffsetDateTime) -> Result<bool> {
        let queued = self
            .writer
            .write(move |c| intake::queue_forward(c, &forward, now))
            .await?;
        if queued {
            self.wakers.wake(Work::Forwards);
        }
        Ok(queued)
    }

    async fn get_delivery(&self, scope: &Scope, delivery_id: &str) -> Result<Delivery> {
        let (scope, delivery_id) = (scope.clone(), delivery_id.to_owned());
        self.read(move |c| intake::read_delivery(c, Some(&scope), &delivery_id, true))
            .await
    }

    async fn list_deliveries(&self, scope: &Scope, filter: InboxFilter) -> Result<Page<Delivery>> {
        let scope = scope.clone();
        self.read(move |c| intake::list(c, &scope, &filter)).await
    }

    async fn recent_order_deliveries(
        &self,
        store_id: &StoreId,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let store_id = store_id.clone();
        self.read(move |c| intake::recent_order_deliveries(c, &store_id, limit))
            .await
    }

    async fn update_order_source(
        &self,
        store_id: &StoreId,
        external_id: &str,
        updated_at: OffsetDateTime,
        document: String,
        now: OffsetDateTime,
    ) -> Result<SourceUpdate> {
        let (store_id, external_id) = (store_id.clone(), external_id.to_owned());
        self.writer
            .write(move |c| {
                intake::update_source(c, &store_id, &external_id, updated_at, &document, now)
            })
            .await
    }

    async fn pull_cursor(&self, store_id: &StoreId) -> Result<Option<String>> {
        let store_id = store_id.clone();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT cursor FROM pull_cursors WHERE store_id = ?1")?
                    .query_row([store_id.as_str()], |row| row.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn set_pull_cursor(
        &self,
        store_id: &StoreId,
        cursor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (store_id, cursor) = (store_id.clone(), cursor.to_owned());
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO pull_cursors (store_id, cursor, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                )?
                .execute(params![store_id.as_str(), cursor, micros(now)])?;
                Ok(())
            })
            .await
    }

    async fn stores_with_api(&self) -> Result<Vec<StoreRecord>> {
        self.read(|c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT store_id FROM stores WHERE json_extract(settings, '$.api') IS NOT NULL ORDER BY store_id",
                )?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.iter()
                .map(|id| read_store(c, &parse("stores.store_id", id)?))
                .collect()
        })
        .await
    }

    async fn claim_due_forwards(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Forward>> {
        self.writer
            .write(move |c| intake::claim_forwards(c, limit, now, lease_until))
            .await
    }

    async fn record_forward_attempt(
        &self,
        forward_id: &str,
        outcome: ForwardOutcome,
        now: OffsetDateTime,
    ) -> Result<()> {
        let forward_id = forward_id.to_owned();
        self.writer
            .write(move |c| intake::record_attempt(c, &forward_id, &outcome, now))
            .await
    }

    async fn get_forward(&self, scope: &Scope, forward_id: &str) -> Result<Forward> {
        let (scope, forward_id) = (scope.clone(), forward_id.to_owned());
        self.read(move |c| intake::read_forward(c, &scope, &forward_id))
            .await
    }

    async fn list_forwards(
        &self,
        scope: &Scope,
        status: Option<ForwardStatus>,
        limit: u32,
    ) -> Result<Vec<Forward>> {
        let scope = scope.clone();
        self.read(move |c| intake::list_forwards(c, &scope, status, limit))
            .await
    }

    async fn retry_forward(
        &self,
        scope: &Scope,
        forward_id: &str,
        now: OffsetDateTime,
    ) -> Result<Forward> {
        let (scope, forward_id) = (scope.clone(), forward_id.to_owned());
        let forward = self
            .writer
            .write(move |c| intake::retry_forward(c, &scope, &forward_id, now))
            .await?;
        self.wakers.wake(Work::Forwards);
        Ok(forward)
    }

    async fn retry_dead_forwards(&self, scope: &Scope, now: OffsetDateTime) -> Result<u64> {
        let scope = scope.clone();
        let retried = self
            .writer
            .write(move |c| intake::retry_dead(c, &scope, now))
            .await?;
        if retried > 0 {
            self.wakers.wake(Work::Forwards);
        }
        Ok(retried)
    }

    async fn start_run(&self, start: StartRun) -> Result<RunStarted> {
        let started = self
            .writer
            .write(move |c| {
                runs::insert_run(
                    c,
                    &start.run,
                    &start.store_id,
                    start.order_id.as_ref(),
                    start.now,
                )
            })
            .await?;
        if started.created {
            self.wakers.wake(Work::Steps);
        }
        Ok(started)
    }

    async fn claim_steps(&self, claim: Claim) -> Result<Vec<ClaimedStep>> {
        self.writer.write(move |c| runs::claim(c, &claim)).await
    }

    async fn heartbeat(
        &self,
        run_id: &str,
        step: &str,
        attempt: u32,
        worker: &str,
        lease_until: OffsetDateTime,
    ) -> Result<()> {
        let (run_id, step, worker) = (run_id.to_owned(), step.to_owned(), worker.to_owned());
        self.writer
            .write(move |c| runs::heartbeat(c, &run_id, &step, attempt, &worker, lease_until))
            .await
    }

    async fn finish_step(
        &self,
        finish: FinishStep,
        planner: Arc<dyn RunPlanner>,
    ) -> Result<Finished> {
        let finished = self
            .writer
            .write(move |c| runs::finish(c, &finish, planner.as_ref()))
            .await?;
        if finished.left_ready > 0 {
            self.wakers.wake(Work::Steps);
        }
        Ok(finished)
    }

    async fn cancel_run(
        &self,
        scope: &Scope,
        run_id: &str,
        now: OffsetDateTime,
        planner: Arc<dyn RunPlanner>,
    ) -> Result<Run> {
        let (scope, run_id) = (scope.clone(), run_id.to_owned());
        let run = self
            .writer
            .write(move |c| {
                runs::cancel(c, &scope, &run_id, now, planner.as_ref())?;
                runs::read_run(c, &scope, &run_id)
            })
            .await?;
        self.wakers.wake(Work::Steps);
        Ok(run)
    }

    async fn act_on_step(
        &self,
        scope: &Scope,
        run_id: &str,
        step: &str,
        action: StepAction,
        now: OffsetDateTime,
        planner: Arc<dyn RunPlanner>,
    ) -> Result<Run> {
        let (scope, run_id, step) = (scope.clone(), run_id.to_owned(), step.to_owned());
        let run = self
            .writer
            .write(move |c| {
                runs::act(c, &scope, &run_id, &step, &action, now, planner.as_ref())?;
                runs::read_run(c, &scope, &run_id)
            })
            .await?;
        self.wakers.wake(Work::Steps);
        Ok(run)
    }

    async fn get_run(&self, scope: &Scope, run_id: &str) -> Result<Run> {
        let (scope, run_id) = (scope.clone(), run_id.to_owned());
        self.read(move |c| runs::read_run(c, &scope, &run_id)).await
    }

    async fn list_runs(&self, scope: &Scope, filter: RunFilter) -> Result<Page<Run>> {
        let scope = scope.clone();
        self.read(move |c| runs::list(c, &scope, &filter)).await
    }

    async fn next_step_due(&self) -> Result<Option<OffsetDateTime>> {
        self.read(runs::next_due).await
    }

    fn work_signal(&self, work: Work) -> Arc<tokio::sync::Notify> {
        self.wakers.of(work).clone()
    }

    async fn try_lead(&self, role: &str) -> Result<Option<Box<dyn Leadership>>> {
        Ok(ProcessLeadership::take(&self.leaders, role).map(|l| Box::new(l) as _))
    }

    async fn claim_alerts(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Alert>> {
        self.writer
            .write(move |c| runs::claim_alerts(c, limit, now, lease_until))
            .await
    }

    async fn record_alert(
        &self,
        alert_id: &str,
        outcome: AlertOutcome,
        now: OffsetDateTime,
    ) -> Result<()> {
        let alert_id = alert_id.to_owned();
        self.writer
            .write(move |c| runs::record_alert(c, &alert_id, &outcome, now))
            .await
    }
}

#[derive(Debug)]
struct ProcessLeadership {
    leaders: Arc<Mutex<std::collections::HashSet<String>>>,
    role: String,
}

impl ProcessLeadership {
    fn take(leaders: &Arc<Mutex<std::collections::HashSet<String>>>, role: &str) -> Option<Self> {
        let mut held = leaders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.insert(role.to_owned()).then(|| Self {
            leaders: leaders.clone(),
            role: role.to_owned(),
        })
    }
}

impl Leadership for ProcessLeadership {
    fn is_held(&self) -> bool {
        true
    }
}

impl Drop for ProcessLeadership {
    fn drop(&mut self) {
        self.leaders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.role);
    }
}

fn read_store(c: &Connection, store_id: &StoreId) -> Result<StoreRecord> {
    let row = c
        .prepare_cached(
            "SELECT name, platform, created_at, settings FROM stores WHERE store_id = ?1",
        )?
        .query_row([store_id.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .optional()?
        .ok_or(Error::NotFound)?;
    Ok(StoreRecord {
        store_id: store_id.clone(),
        name: row.0,
        platform: row.1,
        settings: common::settings_from_json(&row.3)?,
        created_at: from_micros(row.2)?,
    })
}

const PRODUCT_COLUMNS: &str = "store_id, product_id, name, category, price_minor, currency, on_hand, reserved, created_at, updated_at";

struct ProductRow {
    store_id: String,
    product_id: String,
    name: String,
    category: Option<String>,
    price_minor: i64,
    currency: String,
    on_hand: i64,
    reserved: i64,
    created_at: i64,
    updated_at: i64,
}

fn product_row(row: &Row<'_>) -> rusqlite::Result<ProductRow> {
    Ok(ProductRow {
        store_id: row.get(0)?,
        product_id: row.get(1)?,
        name: row.get(2)?,
        category: row.get(3)?,
        price_minor: row.get(4)?,
        currency: row.get(5)?,
        on_hand: row.get(6)?,
        reserved: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

impl ProductRow {
    fn into_product(self) -> Result<Product> {
        Ok(Product {
            store_id: parse("store_id", &self.store_id)?,
            product_id: parse("product_id", &self.product_id)?,
            name: self.name,
            category: self.category,
            price_minor: self.price_minor,
            currency: parse("currency", &self.currency)?,
            on_hand: self.on_hand,
            reserved: self.reserved,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

fn read_product(c: &Connection, store_id: &StoreId, product_id: &ProductId) -> Result<Product> {
    c.prepare_cached(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE store_id = ?1 AND product_id = ?2"
    ))?
    .query_row([store_id.as_str(), product_id.as_str()], product_row)
    .optional()?
    .ok_or(Error::NotFound)?
    .into_product()
}

/// The stock level and unit price of a product, if the store has it.
fn read_level(
    c: &Connection,
    store_id: &StoreId,
    product_id: &ProductId,
) -> Result<Option<(StockLevel, i64, Currency)>> {
    let row = c
        .prepare_cached(
            "SELECT on_hand, reserved, price_minor, currency FROM products WHERE store_id = ?1 AND product_id = ?2",
        )?
        .query_row([store_id.as_str(), product_id.as_str()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?, row.get::<_, String>(3)?))
        })
        .optional()?;
    row.map(|(on_hand, reserved, price, currency)| {
        let level =
            StockLevel::new(on_hand, reserved).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok((level, price, parse("currency", &currency)?))
    })
    .transpose()
}

/// Returns how many backorder sensors a raised `on_hand` made due now.
fn upsert_product(c: &Connection, store_id: &StoreId, product: &ProductInput) -> Result<usize> {
    read_store(c, store_id)?;
    // A new product has no backorders: orders can name only products that exist.
    let raised = if let Some((level, _, _)) = read_level(c, store_id, &product.product_id)? {
        level.with_on_hand(product.on_hand)?;
        product.on_hand > level.on_hand()
    } else {
        StockLevel::new(product.on_hand, 0)?;
        false
    };
    c.prepare_cached(
        "INSERT INTO products (store_id, product_id, name, category, price_minor, currency, on_hand, reserved, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8)
         ON CONFLICT (store_id, product_id) DO UPDATE SET
             name = excluded.name, category = excluded.category, price_minor = excluded.price_minor,
             currency = excluded.currency, on_hand = excluded.on_hand, updated_at = excluded.updated_at",
    )?
    .execute(params![
        store_id.as_str(),
        product.product_id.as_str(),
        product.name,
        product.category,
        product.price_minor,
        product.currency.as_str(),
        product.on_hand,
        micros(product.now)
    ])?;
    if raised {
        runs::poke_backorder_sensors(
            c,
            store_id,
            product.product_id.as_str(),
            OffsetDateTime::now_utc(),
        )
    } else {
        Ok(0)
    }
}

fn change_reserved(
    c: &Connection,
    store_id: &StoreId,
    product_id: &ProductId,
    delta: i64,
    now: OffsetDateTime,
) -> Result<()> {
    let changed = c
        .prepare_cached(
            "UPDATE products SET reserved = reserved + ?1, updated_at = ?2 WHERE store_id = ?3 AND product_id = ?4",
        )?
        .execute(params![delta, micros(now), store_id.as_str(), product_id.as_str()])?;
    if changed != 1 {
        return Err(Error::Corrupt(format!(
            "product {product_id} vanished while reserving"
        )));
    }
    Ok(())
}

/// Writes a product's level as the domain computed it from the row this writer just read.
fn set_level(
    c: &Connection,
    store_id: &StoreId,
    product_id: &ProductId,
    level: StockLevel,
    now: OffsetDateTime,
) -> Result<()> {
    let changed = c
        .prepare_cached(
            "UPDATE products SET on_hand = ?1, reserved = ?2, updated_at = ?3 WHERE store_id = ?4 AND product_id = ?5",
        )?
        .execute(params![
            level.on_hand(),
            level.reserved(),
            micros(now),
            store_id.as_str(),
            product_id.as_str()
        ])?;
    if changed != 1 {
        return Err(Error::Corrupt(format!(
            "product {product_id} vanished while shipping"
        )));
    }
    Ok(())
}

/// Applies `transition` as a compare-and-set on the order's status, bumping its version.
fn set_status(
    c: &Connection,
    order_id: &OrderId,
    transition: Transition,
    now: OffsetDateTime,
) -> Result<()> {
    let changed = c
        .prepare_cached(
            "UPDATE orders SET status = ?1, version = version + 1, updated_at = ?2 WHERE order_id = ?3 AND status = ?4",
        )?
        .execute(params![
            transition.to().as_str(),
            micros(now),
            order_id.as_str(),
            transition.from().as_str()
        ])?;
    if changed != 1 {
        return Err(Error::Corrupt(format!(
            "order {order_id} changed status under the writer"
        )));
    }
    Ok(())
}

/// Appends a timeline entry after the order's last one.
fn append_event(
    c: &Connection,
    order_id: &OrderId,
    at: OffsetDateTime,
    status: OrderStatus,
    note: Option<&str>,
) -> Result<()> {
    // A prefix lookup on order_events is re-planned at every binding (SQLite marks it
    // binding-dependent), so the hot path, placing an order, numbers its entries itself.
    let last: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM order_events WHERE order_id = ?1")?
        .query_row([order_id.as_str()], |row| row.get(0))?;
    insert_event(c, order_id, last + 1, at, status, note)
}

fn insert_event(
    c: &Connection,
    order_id: &OrderId,
    seq: i64,
    at: OffsetDateTime,
    status: OrderStatus,
    note: Option<&str>,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO order_events (order_id, seq, at, status, note) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        order_id.as_str(),
        seq,
        micros(at),
        status.as_str(),
        note
    ])?;
    Ok(())
}

fn insert_lines(c: &Connection, order_id: &OrderId, lines: &[PricedLine]) -> Result<()> {
    let mut statement = c.prepare_cached(
        "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_minor, currency)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (line_no, line) in lines.iter().enumerate() {
        statement.execute(params![
            order_id.as_str(),
            line_no as i64 + 1,
            line.product_id.as_str(),
            line.quantity.get(),
            line.unit_price_minor,
            line.currency.as_str()
        ])?;
    }
    Ok(())
}

fn place_order(c: &Connection, order: &PlaceOrder) -> Result<Placement> {
    if let Some(idempotency) = &order.idempotency {
        let earlier = c
            .prepare_cached("SELECT request_hash, receipt FROM idempotency_keys WHERE store_id = ?1 AND key = ?2")?
            .query_row([order.store_id.as_str(), &idempotency.key], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((request_hash, receipt)) = earlier {
            return common::replay(&request_hash, &receipt, idempotency);
        }
    }
    if let Some(source) = order
        .source
        .as_ref()
        .filter(|_| order.idempotency.is_none())
    {
        // A storefront order is known by its external id, unique per store: no key of its own.
        let held: Option<String> = c
            .prepare_cached("SELECT order_id FROM orders WHERE store_id = ?1 AND external_id = ?2")?
            .query_row([order.store_id.as_str(), &source.external_id], |row| {
                row.get(0)
            })
            .optional()?;
        if let Some(held) = held {
            let scope = Scope::Store(order.store_id.clone());
            let held = read_order(c, &scope, &parse("order_id", &held)?)?;
            return Ok(Placement {
                receipt: common::receipt_of(&held),
                replayed: true,
            });
        }
    }

    let unmanaged = common::unmanaged_lines(order);
    let holds_stock = unmanaged.is_none();
    let (plan, lines) = match unmanaged {
        Some(unmanaged) => unmanaged,
        None => {
            let mut known = HashMap::new();
            for line in order.lines.iter() {
                if let Some(found) = read_level(c, &order.store_id, &line.product_id)? {
                    known.insert(line.product_id.clone(), found);
                }
            }
            let plan = plan_reservation(
                &order.lines,
                |id| known.get(id).map(|k| k.0),
                order.allow_partial,
            )
            .map_err(Error::Refused)?;
            let lines = common::price(&plan.reserve, |id| known.get(id).map(|k| (k.1, k.2)));
            for line in &lines {
                change_reserved(
                    c,
                    &order.store_id,
                    &line.product_id,
                    i64::from(line.quantity.get()),
                    order.now,
                )?;
            }
            (plan, lines)
        }
    };
    let (currency, total_minor) = common::total(&lines)?;
    let transition = status::placement(!plan.backorder.is_empty());
    let customer_id = order
        .customer
        .as_ref()
        .and_then(|c| c.customer_id.as_ref())
        .map(|id| id.as_str());
    c.prepare_cached(
        "INSERT INTO orders (order_id, store_id, external_id, customer_id, status, customer, shipping_address,
                             currency, total_minor, version, created_at, updated_at, source_updated_at, source,
                             holds_stock)
         VALUES (?1, ?2, ?10, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?11, ?12, ?13)",
    )?
    .execute(params![
        order.order_id.as_str(),
        order.store_id.as_str(),
        customer_id,
        transition.to().as_str(),
        common::to_json(&order.customer)?,
        common::to_json(&order.shipping_address)?,
        currency.as_ref().map(Currency::as_str),
        total_minor,
        micros(order.now),
        order.source.as_ref().map(|s| s.external_id.as_str()),
        order.source.as_ref().map(|s| micros(s.updated_at)),
        order.source.as_ref().map(|s| s.document.as_str()),
        holds_stock,
    ])?;
    insert_lines(c, &order.order_id, &lines)?;
    for shortfall in &plan.backorder {
        c.prepare_cached("INSERT INTO backorders (order_id, product_id, quantity, created_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![order.order_id.as_str(), shortfall.product_id.as_str(), shortfall.missing(), micros(order.now)])?;
    }
    insert_event(
        c,
        &order.order_id,
        1,
        order.now,
        OrderStatus::Pending,
        Some(order.source.as_ref().map_or("placed", |s| s.note.as_str())),
    )?;
    insert_event(
        c,
        &order.order_id,
        2,
        order.now,
        transition.to(),
        common::placement_note(&plan),
    )?;

    let receipt = Receipt {
        order_id: order.order_id.clone(),
        order_status: transition.to(),
        products: plan.reserve,
        unavailable: plan.backorder,
    };
    if let Some(idempotency) = &order.idempotency {
        c.prepare_cached(
            "INSERT INTO idempotency_keys (store_id, key, request_hash, receipt, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            order.store_id.as_str(),
            idempotency.key,
            idempotency.request_hash,
            serde_json::to_string(&receipt).map_err(|e| Error::Corrupt(e.to_string()))?,
            micros(order.now)
        ])?;
    }
    if let Some(run) = &order.run {
        runs::insert_run(c, run, &order.store_id, Some(&order.order_id), order.now)?;
    }
    Ok(Placement {
        receipt,
        replayed: false,
    })
}

struct OrderHead {
    store_id: StoreId,
    status: OrderStatus,
    version: i64,
    holds_stock: bool,
}

/// The order's store, status and version, if `scope` may see it.
fn read_head(c: &Connection, scope: &Scope, order_id: &OrderId) -> Result<OrderHead> {
    let row = c
        .prepare_cached(
            "SELECT store_id, customer_id, status, version, holds_stock FROM orders WHERE order_id = ?1",
        )?
        .query_row([order_id.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, bool>(4)?,
            ))
        })
        .optional()?
        .ok_or(Error::NotFound)?;
    let store_id: StoreId = parse("store_id", &row.0)?;
    let customer_id = row.1.map(|c| parse("customer_id", &c)).transpose()?;
    if !scope.admits(&store_id, customer_id.as_ref()) {
        return Err(Error::NotFound);
    }
    Ok(OrderHead {
        store_id,
        status: parse("status", &row.2)?,
        version: row.3,
        holds_stock: row.4,
    })
}

fn read_lines(c: &Connection, order_id: &OrderId) -> Result<Vec<PricedLine>> {
    let mut statement = c.prepare_cached(
        "SELECT product_id, quantity, unit_price_minor, currency FROM order_lines WHERE order_id = ?1 ORDER BY line_no",
    )?;
    let rows = statement.query_map([order_id.as_str()], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (product_id, quantity, unit_price_minor, currency) = row?;
        Ok(PricedLine {
            product_id: parse("product_id", &product_id)?,
            quantity: common::quantity(quantity)?,
            unit_price_minor,
            currency: parse("currency", &currency)?,
        })
    })
    .collect()
}

fn read_order(c: &Connection, scope: &Scope, order_id: &OrderId) -> Result<Order> {
    read_head(c, scope, order_id)?;
    let row = c
        .prepare_cached(
            "SELECT store_id, external_id, status, customer, shipping_address, currency, total_minor, version,
                    created_at, updated_at, source
             FROM orders WHERE order_id = ?1",
        )?
        .query_row([order_id.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, i64>(7)?,
                row.get::<_, i64>(8)?,
                row.get::<_, i64>(9)?,
                row.get::<_, Option<String>>(10)?,
            ))
        })?;
    let mut backorder_statement = c.prepare_cached(
        "SELECT product_id, quantity FROM backorders WHERE order_id = ?1 ORDER BY product_id",
    )?;
    let backorder = backorder_statement
        .query_map([order_id.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .map(|row| {
            let (product_id, quantity) = row?;
            Ok(BackorderLine {
                product_id: parse("product_id", &product_id)?,
                quantity: common::quantity(quantity)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut event_statement = c.prepare_cached(
        "SELECT at, status, note FROM order_events WHERE order_id = ?1 ORDER BY seq",
    )?;
    let timeline = event_statement
        .query_map([order_id.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })?
        .map(|row| {
            let (at, status, note) = row?;
            Ok(TimelineEntry {
                at: from_micros(at)?,
                status: parse("status", &status)?,
                note,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Order {
        order_id: order_id.clone(),
        store_id: parse("store_id", &row.0)?,
        external_id: row.1,
        status: parse("status", &row.2)?,
        lines: read_lines(c, order_id)?,
        backorder,
        customer: common::from_json(row.3.as_deref())?,
        shipping_address: common::from_json(row.4.as_deref())?,
        currency: row.5.map(|c| parse("currency", &c)).transpose()?,
        total_minor: row.6,
        timeline,
        version: row.7,
        created_at: from_micros(row.8)?,
        updated_at: from_micros(row.9)?,
        source: row.10,
    })
}

/// Also returns how many backorder sensors the units the edit released made due now.
fn edit_order(c: &Connection, scope: &Scope, edit: &EditOrder) -> Result<(Order, usize)> {
    let head = read_head(c, scope, &edit.order_id)?;
    common::check_editable(head.status, head.version, edit.expected_version)?;
    if !head.holds_stock && edit.lines.is_some() {
        return Err(Error::LinesManagedElsewhere);
    }
    let mut new_status = head.status;
    let mut poked = 0;
    if let Some(new_lines) = &edit.lines {
        let current = read_lines(c, &edit.order_id)?;
        let held: Vec<_> = current.iter().map(PricedLine::as_order_line).collect();
        let mut known = HashMap::new();
        for line in new_lines.iter() {
            if let Some(found) = read_level(c, &head.store_id, &line.product_id)? {
                known.insert(line.product_id.clone(), found);
            }
        }
        let plan =
            plan_edit(&held, new_lines, |id| known.get(id).map(|k| k.0)).map_err(Error::Refused)?;
        let lines = common::price(new_lines.as_slice(), |id| known.get(id).map(|k| (k.1, k.2)));
        let (currency, total_minor) = common::total(&lines)?;
        for (product_id, delta) in &plan.deltas {
            change_reserved(c, &head.store_id, product_id, *delta, edit.now)?;
            // Units the edit gave back are as good as a restock to the orders waiting for them.
            if *delta < 0 {
                poked +=
                    runs::poke_backorder_sensors(c, &head.store_id, product_id.as_str(), edit.now)?;
            }
        }
        c.prepare_cached("DELETE FROM order_lines WHERE order_id = ?1")?
            .execute([edit.order_id.as_str()])?;
        c.prepare_cached("DELETE FROM backorders WHERE order_id = ?1")?
            .execute([edit.order_id.as_str()])?;
        insert_lines(c, &edit.order_id, &lines)?;
        c.prepare_cached("UPDATE orders SET currency = ?1, total_minor = ?2 WHERE order_id = ?3")?
            .execute(params![
                currency.as_ref().map(Currency::as_str),
                total_minor,
                edit.order_id.as_str()
            ])?;
        if let Some(transition) = status::after_edit(head.status, false) {
            new_status = transition.to();
            poked += runs::poke_order_sensors(c, edit.order_id.as_str(), edit.now)?;
            append_event(
                c,
                &edit.order_id,
                edit.now,
                new_status,
                Some("lines edited; all units reserved"),
            )?;
        }
    }
    if let Some(address) = &edit.shipping_address {
        c.prepare_cached("UPDATE orders SET shipping_address = ?1 WHERE order_id = ?2")?
            .execute(params![
                common::to_json(&Some(address))?,
                edit.order_id.as_str()
            ])?;
    }
    c.prepare_cached(
        "UPDATE orders SET status = ?1, version = version + 1, updated_at = ?2 WHERE order_id = ?3",
    )?
    .execute(params![
        new_status.as_str(),
        micros(edit.now),
        edit.order_id.as_str()
    ])?;
    Ok((read_order(c, scope, &edit.order_id)?, poked))
}

/// Also returns how many backorder sensors the released units made due now.
fn cancel_order(c: &Connection, scope: &Scope, cancel: &CancelOrder) -> Result<(Order, usize)> {
    let head = read_head(c, scope, &cancel.order_id)?;
    let transition = match status::cancellation(head.status) {
        Cancellation::Cancel(transition) => transition,
        Cancellation::AlreadyCancelled => return Ok((read_order(c, scope, &cancel.order_id)?, 0)),
        Cancellation::TooLate(status) => return Err(Error::TooLateToCancel(status)),
    };
    let lines = if head.holds_stock {
        read_lines(c, &cancel.order_id)?
    } else {
        Vec::new()
    };
    let mut poked = 0;
    for line in lines {
        change_reserved(
            c,
            &head.store_id,
            &line.product_id,
            -i64::from(line.quantity.get()),
            cancel.now,
        )?;
        // Released units are as good as a restock to the orders waiting for the product.
        poked +=
            runs::poke_backorder_sensors(c, &head.store_id, line.product_id.as_str(), cancel.now)?;
    }
    c.prepare_cached("DELETE FROM backorders WHERE order_id = ?1")?
        .execute([cancel.order_id.as_str()])?;
    set_status(c, &cancel.order_id, transition, cancel.now)?;
    append_event(
        c,
        &cancel.order_id,
        cancel.now,
        transition.to(),
        cancel.reason.as_deref(),
    )?;
    if let Some(planner) = &cancel.runs {
        runs::cancel_order_runs(c, &cancel.order_id, cancel.now, planner.as_ref())?;
    }
    Ok((read_order(c, scope, &cancel.order_id)?, poked))
}

fn advance_order(c: &Connection, advance: &AdvanceOrder) -> Result<Order> {
    let order_id = &advance.order_id;
    let head = read_head(c, &Scope::Everything, order_id)?;
    let Some(transition) =
        status::progress(head.status, advance.to).map_err(Error::NotAdvanceable)?
    else {
        return read_order(c, &Scope::Everything, order_id);
    };
    // Shipping consumes the reservation: the units leave `on_hand` as they leave `reserved`,
    // and the order, no longer live, drops out of the audit's sum with them.
    if transition.to().has_shipped() && head.holds_stock {
        let lines = read_lines(c, order_id)?;
        let mut known = HashMap::new();
        for line in &lines {
            if let Some((level, _, _)) = read_level(c, &head.store_id, &line.product_id)? {
                known.insert(line.product_id.clone(), level);
            }
        }
        for (product_id, level) in common::shipped_levels(&lines, |id| known.get(id).copied())? {
            set_level(c, &head.store_id, product_id, level, advance.now)?;
        }
    }
    set_status(c, order_id, transition, advance.now)?;
    append_event(
        c,
        order_id,
        advance.now,
        transition.to(),
        advance.note.as_deref(),
    )?;
    read_order(c, &Scope::Everything, order_id)
}

/// The products a backordered order waits for, each with the units that live orders of the
/// same store which started waiting earlier (ties broken by order id) wait for.
fn backorder_queue(
    c: &Connection,
    store_id: &StoreId,
    order_id: &OrderId,
) -> Result<Vec<common::Waiting>> {
    let mut statement = c.prepare_cached(&format!(
        "SELECT mine.product_id, mine.quantity,
                (SELECT COALESCE(SUM(b.quantity), 0)
                 FROM backorders b JOIN orders o ON o.order_id = b.order_id
                 WHERE b.product_id = mine.product_id
                   AND (b.created_at, b.order_id) < (mine.created_at, mine.order_id)
                   AND o.store_id = ?2 AND o.status IN ({}))
         FROM backorders mine WHERE mine.order_id = ?1 ORDER BY mine.product_id",
        live_statuses_sql()
    ))?;
    let rows = statement.query_map([order_id.as_str(), store_id.as_str()], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (product_id, quantity, ahead) = row?;
        Ok(common::Waiting {
            product_id: parse("product_id", &product_id)?,
            quantity,
            ahead,
        })
    })
    .collect()
}

fn fill_backorder(
    c: &Connection,
    order_id: &OrderId,
    now: OffsetDateTime,
) -> Result<BackorderFill> {
    let head = read_head(c, &Scope::Everything, order_id)?;
    if head.status != OrderStatus::Backordered {
        return Ok(BackorderFill::NotBackordered(head.status));
    }
    if !head.holds_stock {
        // Placement never backorders what it does not reserve; filling would unbalance the books.
        return Err(Error::Corrupt(format!(
            "order {order_id} waits for stock it does not manage"
        )));
    }
    let waiting = backorder_queue(c, &head.store_id, order_id)?;
    let mut known = HashMap::new();
    for product in &waiting {
        if let Some(found) = read_level(c, &head.store_id, &product.product_id)? {
            known.insert(product.product_id.clone(), found);
        }
    }
    let missing = common::still_missing(&waiting, |id| known.get(id).map(|k| k.0))?;
    if !missing.is_empty() {
        return Ok(BackorderFill::Waiting { missing });
    }

    let lines = common::filled_lines(read_lines(c, order_id)?, &waiting, |id| {
        known.get(id).map(|k| (k.1, k.2))
    })?;
    let (currency, total_minor) = common::total(&lines)?;
    for product in &waiting {
        change_reserved(
            c,
            &head.store_id,
            &product.product_id,
            product.quantity,
            now,
        )?;
    }
    c.prepare_cached("DELETE FROM order_lines WHERE order_id = ?1")?
        .execute([order_id.as_str()])?;
    insert_lines(c, order_id, &lines)?;
    c.prepare_cached("DELETE FROM backorders WHERE order_id = ?1")?
        .execute([order_id.as_str()])?;
    c.prepare_cached("UPDATE orders SET currency = ?1, total_minor = ?2 WHERE order_id = ?3")?
        .execute(params![
            currency.as_ref().map(Currency::as_str),
            total_minor,
            order_id.as_str()
        ])?;
    let transition = Transition::of::<state::Backordered, state::Confirmed>();
    set_status(c, order_id, transition, now)?;
    append_event(
        c,
        order_id,
        now,
        transition.to(),
        Some(common::BACKORDER_FILLED),
    )?;
    Ok(BackorderFill::Filled(read_order(
        c,
        &Scope::Everything,
        order_id,
    )?))
}

fn list_orders(c: &Connection, scope: &Scope, filter: &OrderFilter) -> Result<Page<Order>> {
    let (conditions, values): (Vec<String>, Vec<String>) = common::order_conditions(scope, filter)
        .into_iter()
        .map(|(condition, value)| (format!("{condition} ?"), value))
        .unzip();
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT order_id FROM orders {where_clause} ORDER BY order_id DESC LIMIT {}",
        filter.limit.saturating_add(1)
    );
    let mut statement = c.prepare_cached(&sql)?;
    let ids = statement
        .query_map(rusqlite::params_from_iter(values.iter()), |row| {
            row.get::<_, String>(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let has_more = ids.len() > filter.limit as usize;
    let items = ids
        .iter()
        .take(filter.limit as usize)
        .map(|id| read_order(c, scope, &parse("order_id", id)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Page { items, has_more })
}

#[cfg(test)]
mod tests {
    use super::{Synchronous, parse_location};

    #[test]
    fn a_location_may_ask_for_full_synchronous_commits() {
        assert_eq!(
            parse_location("a.db").ok(),
            Some(("a.db".to_owned(), Synchronous::Normal))
        );
        assert_eq!(
            parse_location("/x/a.db?synchronous=full").ok(),
            Some(("/x/a.db".to_owned(), Synchronous::Full))
        );
        assert!(parse_location("a.db?cache=shared").is_err());
        assert!(parse_location("?synchronous=full").is_err());
    }
}
