//! The PostgreSQL backend: tokio-postgres connections from a deadpool pool, one transaction per
//! call. Writers lock rows with `SELECT … FOR UPDATE`, an order before its products and products
//! in `product_id` order, so concurrent requests queue behind each other instead of deadlocking.

/// SQL for the `timestamptz` whose Unix microseconds are in parameter `$param`. The driver is
/// built without `time` support, so instants cross the wire as integers. Whole seconds and the
/// remaining microseconds are added separately because an interval times a count is computed
/// in `float8`, which is exact only up to 2^53 µs (about the year 2255).
macro_rules! at_micros {
    ($param:literal) => {
        concat!(
            "(TIMESTAMPTZ 'epoch' + (",
            $param,
            "::BIGINT / 1000000) * INTERVAL '1 second' + (",
            $param,
            "::BIGINT % 1000000) * INTERVAL '1 microsecond')"
        )
    };
}

/// SQL reading the `timestamptz` column `$column` as Unix microseconds, under the column's
/// name. `EXTRACT` returns `numeric` since PostgreSQL 14, so no precision is lost.
macro_rules! micros_of {
    ($column:literal) => {
        concat!(
            "(EXTRACT(EPOCH FROM ",
            $column,
            ") * 1000000)::BIGINT AS ",
            $column
        )
    };
}

/// The columns [`product`] reads.
macro_rules! product_columns {
    () => {
        concat!(
            "store_id, product_id, name, category, price_minor, currency, on_hand, reserved, ",
            micros_of!("created_at"),
            ", ",
            micros_of!("updated_at")
        )
    };
}

mod batch;
mod documents;
mod intake;
mod orders;
mod runs;
mod signal;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use orderflow_domain::{OrderId, ProductId, StockLevel, StoreId};
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};

use crate::Work;
use crate::common::{self, from_micros, micros, parse};
use crate::error::{Error, Result};
use crate::model::*;
use crate::runs::*;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Key of the session-level advisory lock held while migrating, so that nodes starting at the
/// same time migrate one after the other (the ASCII of "orderflw").
const MIGRATION_LOCK: i64 = 0x6f72_6465_7266_6c77;

const POOL_SIZE: usize = 16;
/// How long a request waits for a pooled connection before the database counts as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Param<'a> = &'a (dyn ToSql + Sync);

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        Error::unavailable(error)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Error::unavailable(error)
    }
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Prepares every query (or takes it from the connection's cache) before any of them runs:
/// statements pipelined afterwards then reach the server in the order they are polled, which
/// a statement still being prepared would upset.
async fn prepare_all<const N: usize>(
    tx: &Transaction<'_>,
    queries: [&str; N],
) -> Result<[Statement; N]> {
    let mut statements = Vec::with_capacity(N);
    for query in queries {
        statements.push(tx.prepare_cached(query).await?);
    }
    Ok(statements
        .try_into()
        .unwrap_or_else(|_| unreachable!("one statement per query")))
}

pub struct PostgresStore {
    pool: Pool,
    batcher: batch::Batcher,
    signal: signal::WorkSignal,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL), applies pending migrations and
    /// opens a pool of connections.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| Error::Config(format!("invalid PostgreSQL URL: {error}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        migrate(&config).await?;
        let signal = signal::WorkSignal::new(config.clone());
        // Every statement here is a keyed lookup or write whose generic plan is the right one,
        // but with array parameters PostgreSQL's cost model keeps choosing custom plans, and
        // re-planning each execution cost as much CPU as executing (docs/BENCHMARKS.md).
        // A generic plan is made once per connection, though, from the statistics of that
        // moment: prepared while a table was new and small (or never analysed), an
        // `= ANY($1)` lookup became a sequential scan that stayed one as the table grew, until
        // the pipeline spent half of PostgreSQL's CPU scanning orders. Every statement here
        // is served by an index, so sequential scans are priced out: plans no longer depend
        // on when a connection first ran them (a table with no index to use is still scanned).
        let plans = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off";
        let options = match config.get_options() {
            Some(options) => format!("{options} {plans}"),
            None => plans.to_owned(),
        };
        config.options(&options);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|error| Error::Config(error.to_string()))?;
        let batcher = batch::Batcher::start(pool.clone());
        Ok(Self {
            pool,
            batcher,
            signal,
        })
    }
}

/// A store on a fresh database of the server `ORDERFLOW_TEST_POSTGRES` names, for the tests of
/// this backend's internals; `None` (after saying so) when it is not set.
#[cfg(test)]
async fn scratch_store() -> Option<(PostgresStore, crate::scratch::ScratchDatabase)> {
    let Ok(admin_url) = std::env::var("ORDERFLOW_TEST_POSTGRES") else {
        eprintln!("skipped on PostgreSQL because ORDERFLOW_TEST_POSTGRES is not set");
        return None;
    };
    let database =
        crate::scratch::ScratchDatabase::create(&admin_url, "orderflow_test", rand::random())
            .await
            .expect("a scratch database");
    let store = PostgresStore::connect(database.url())
        .await
        .expect("the store opens");
    Some((store, database))
}

/// Applies pending migrations on a connection of its own, holding [`MIGRATION_LOCK`].
async fn migrate(config: &tokio_postgres::Config) -> Result<()> {
    let (mut client, connection) = config.connect(NoTls).await?;
    // The connection future does the I/O and ends when `client` is dropped.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "migration connection failed");
        }
    });
    client
        .execute("SELECT pg_advisory_lock($1::BIGINT)", &[&MIGRATION_LOCK])
        .await?;
    let migrated = embedded::migrations::runner().run_async(&mut client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1::BIGINT)", &[&MIGRATION_LOCK])
        .await;
    migrated.map_err(|error| Error::Migration(Box::new(error)))?;
    unlocked?;
    Ok(())
}

#[async_trait]
impl crate::Store for PostgresStore {
    async fn readiness(&self) -> Result<Readiness> {
        let latest_migration =
            common::latest_version(embedded::migrations::runner().get_migrations());
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT MAX(version)::BIGINT FROM refinery_schema_history")
            .await?;
        let applied_migration = client.query_one(&statement, &[]).await?.try_get(0)?;
        Ok(Readiness {
            applied_migration,
            latest_migration,
        })
    }

    async fn create_store(&self, store: NewStore) -> Result<StoreRecord> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(concat!(
                "INSERT INTO stores (store_id, name, platform, settings, created_at)
                 VALUES ($1, $2, $3, $4::TEXT::JSONB, ",
                at_micros!("$5"),
                ")"
            ))
            .await?;
        client
            .execute(
                &statement,
                &[
                    &store.store_id.as_str(),
                    &store.name,
                    &store.platform,
                    &common::settings_json(&store.settings)?,
                    &micros(store.now),
                ],
            )
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    Error::AlreadyExists(format!("store {}", store.store_id))
                } else {
                    error.into()
                }
            })?;
        read_store(&client, &store.store_id).await
    }

    async fn get_store(&self, store_id: &StoreId) -> Result<StoreRecord> {
        let client = self.pool.get().await?;
        read_store(&client, store_id).await
    }

    async fn update_store(&self, store: StoreRecord) -> Result<StoreRecord> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "UPDATE stores SET name = $2, platform = $3, settings = $4::TEXT::JSONB WHERE store_id = $1",
            )
            .await?;
        let changed = client
            .execute(
                &statement,
                &[
                    &store.store_id.as_str(),
                    &store.name,
                    &store.platform,
                    &common::settings_json(&store.settings)?,
                ],
            )
            .await?;
        if changed == 0 {
            return Err(Error::NotFound);
        }
        read_store(&client, &store.store_id).await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(concat!(
                "INSERT INTO api_keys (key_id, token_hash, role, store_id, customer_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, ",
                at_micros!("$6"),
                ")"
            ))
            .await?;
        client
            .execute(
                &statement,
                &[
                    &key.key_id,
                    &key.token_hash,
                    &key.role.as_str(),
                    &key.store_id.as_ref().map(StoreId::as_str),
                    &key.customer_id.as_ref().map(|c| c.as_str()),
                    &micros(key.now),
                ],
            )
            .await?;
        Ok(ApiKey {
            key_id: key.key_id,
            role: key.role,
            store_id: key.store_id,
            customer_id: key.customer_id,
            created_at: key.now,
        })
    }

    async fn find_api_key(&self, token_hash: &str) -> Result<Option<ApiKey>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(concat!(
                "SELECT key_id, role, store_id, customer_id, ",
                micros_of!("created_at"),
                " FROM api_keys WHERE token_hash = $1"
            ))
            .await?;
        let Some(row) = client.query_opt(&statement, &[&token_hash]).await? else {
            return Ok(None);
        };
        let role: &str = row.try_get("role")?;
        Ok(Some(ApiKey {
            key_id: row.try_get("key_id")?,
            role: Role::parse(role).ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
            store_id: row
                .try_get::<_, Option<&str>>("store_id")?
                .map(|s| parse("store_id", s))
                .transpose()?,
            customer_id: row
                .try_get::<_, Option<&str>>("customer_id")?
                .map(|s| parse("customer_id", s))
                .transpose()?,
            created_at: from_micros(row.try_get("created_at")?)?,
        }))
    }

    async fn put_product(&self, store_id: &StoreId, product: ProductInput) -> Result<Product> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (written, poked) =
            upsert_products(&tx, store_id, std::slice::from_ref(&product)).await?;
        tx.commit().await?;
        if poked > 0 {
            self.signal.announce(Work::Steps);
        }
        written.into_iter().next().ok_or_else(|| {
            Error::Corrupt(format!("product {} was not written", product.product_id))
        })
    }

    async fn import_products(
        &self,
        store_id: &StoreId,
        products: Vec<ProductInput>,
    ) -> Result<usize> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (_, poked) = upsert_products(&tx, store_id, &products).await?;
        tx.commit().await?;
        if poked > 0 {
            self.signal.announce(Work::Steps);
        }
        // Generic plans are made from the statistics of their first use; a catalogue loaded in
        // bulk would otherwise be planned as the empty table it was, until autovacuum's ANALYZE.
        client.batch_execute("ANALYZE products").await?;
        Ok(products.len())
    }

    async fn get_product(&self, store_id: &StoreId, product_id: &ProductId) -> Result<Product> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(concat!(
                "SELECT ",
                product_columns!(),
                " FROM products WHERE store_id = $1 AND product_id = $2"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&store_id.as_str(), &product_id.as_str()])
            .await?
            .ok_or(Error::NotFound)?;
        product(&row)
    }

    async fn list_products(
        &self,
        store_id: &StoreId,
        page: PageRequest<ProductId>,
    ) -> Result<Page<Product>> {
        let client = self.pool.get().await?;
        // SQLite compares text bytewise; "C" does the same whatever the database's collation.
        let statement = client
            .prepare_cached(concat!(
                "SELECT ",
                product_columns!(),
                " FROM products WHERE store_id = $1 AND product_id COLLATE \"C\" > $2
                 ORDER BY product_id COLLATE \"C\" LIMIT $3"
            ))
            .await?;
        let after = page.after.as_ref().map(ProductId::as_str).unwrap_or("");
        let rows = client
            .query(
                &statement,
                &[&store_id.as_str(), &after, &(i64::from(page.limit) + 1)],
            )
            .await?;
        let mut items = rows.iter().map(product).collect::<Result<Vec<_>>>()?;
        let has_more = items.len() > page.limit as usize;
        items.truncate(page.limit as usize);
        Ok(Page { items, has_more })
    }

    async fn adjust_stock(
        &self,
        store_id: &StoreId,
        product_id: &ProductId,
        delta: i64,
    ) -> Result<Product> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let [lock, update] = prepare_all(
            &tx,
            [
                "SELECT on_hand, reserved FROM products
                 WHERE store_id = $1 AND product_id = $2 FOR UPDATE",
                concat!(
                    "UPDATE products SET on_hand = $3, updated_at = ",
                    at_micros!("$4"),
                    " WHERE store_id = $1 AND product_id = $2 RETURNING ",
                    product_columns!()
                ),
            ],
        )
        .await?;
        let (store_id, product_id) = (store_id.as_str(), product_id.as_str());
        let row = tx
            .query_opt(&lock, &[&store_id, &product_id])
            .await?
            .ok_or(Error::NotFound)?;
        let level = StockLevel::new(row.try_get("on_hand")?, row.try_get("reserved")?)
            .map_err(|error| Error::Corrupt(error.to_string()))?
            .adjusted(delta)?;
        let now = micros(OffsetDateTime::now_utc());
        let row = tx
            .query_one(&update, &[&store_id, &product_id, &level.on_hand(), &now])
            .await?;
        let adjusted = product(&row)?;
        let poked = if delta > 0 {
            runs::poke_backorder_sensors(&tx, &adjusted.store_id, &[product_id], now).await?
        } else {
            0
        };
        tx.commit().await?;
        if poked > 0 {
            self.signal.announce(Work::Steps);
        }
        Ok(adjusted)
    }

    async fn place_order(&self, order: PlaceOrder) -> Result<Placement> {
        let placement = orders::place_order(&self.pool, &self.batcher, &order).await?;
        if order.run.is_some() && !placement.replayed {
            self.signal.announce(Work::Steps);
        }
        Ok(placement)
    }

    async fn get_order(&self, scope: &Scope, order_id: &OrderId) -> Result<Order> {
        let client = self.pool.get().await?;
        orders::load_order(&client, scope, order_id).await
    }

    async fn edit_order(&self, scope: &Scope, edit: EditOrder) -> Result<Order> {
        let mut client = self.pool.get().await?;
        let (order, poked) = orders::edit_order(&mut client, scope, &edit).await?;
        if poked > 0 {
            self.signal.announce(Work::Steps);
        }
        Ok(order)
    }

    async fn cancel_order(&self, scope: &Scope, cancel: CancelOrder) -> Result<Order> {
        let mut client = self.pool.get().await?;
        let (order, poked) = orders::cancel_order(&mut client, scope, &cancel).await?;
        if poked > 0 {
            self.signal.announce(Work::Steps);
        }
        Ok(order)
    }

    async fn list_orders(&self, scope: &Scope, filter: OrderFilter) -> Result<Page<Order>> {
        let mut client = self.pool.get().await?;
        orders::list_orders(&mut client, scope, &filter).await
    }

    async fn advance_order(&self, advance: AdvanceOrder) -> Result<Order> {
        let mut client = self.pool.get().await?;
        orders::advance_order(&mut client, &advance).await
    }

    async fn fill_backorder(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
    ) -> Result<BackorderFill> {
        let mut client = self.pool.get().await?;
        orders::fill_backorder(&mut client, order_id, micros(now)).await
    }

    async fn put_document(
        &self,
        order_id: &OrderId,
        kind: &str,
        content_type: &str,
        body: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        documents::put(&client, order_id, kind, content_type, &body, now).await
    }

    async fn get_document(
        &self,
        scope: &Scope,
        order_id: &OrderId,
        kind: &str,
    ) -> Result<Document> {
        let client = self.pool.get().await?;
        documents::get(&client, scope, order_id, kind).await
    }

    async fn list_documents(&self, scope: &Scope, order_id: &OrderId) -> Result<Vec<DocumentInfo>> {
        let client = self.pool.get().await?;
        documents::list(&client, scope, order_id).await
    }

    async fn audit_reservations(&self, store_id: &StoreId) -> Result<Vec<ReservationAudit>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                // One pass over the store's live orders: lines are not indexed by product,
                // which would cost every placement an insert at a random place in that index.
                "WITH live AS (
                     SELECT l.product_id, SUM(l.quantity) AS units
                     FROM orders o JOIN order_lines l ON l.order_id = o.order_id
                     WHERE o.store_id = $1 AND o.holds_stock AND o.status = ANY($2)
                     GROUP BY l.product_id
                 )
                 SELECT p.product_id, p.on_hand, p.reserved,
                        COALESCE(live.units, 0)::BIGINT AS reserved_by_live_orders
                 FROM products p LEFT JOIN live ON live.product_id = p.product_id
                 WHERE p.store_id = $1 ORDER BY p.product_id COLLATE \"C\"",
            )
            .await?;
        let rows = client
            .query(&statement, &[&store_id.as_str(), &common::live_statuses()])
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReservationAudit {
                    product_id: parse("product_id", row.try_get("product_id")?)?,
                    on_hand: row.try_get("on_hand")?,
                    reserved: row.try_get("reserved")?,
                    reserved_by_live_orders: row.try_get("reserved_by_live_orders")?,
                })
            })
            .collect()
    }

    async fn receive_delivery(&self, delivery: NewDelivery) -> Result<Received> {
        let client = self.pool.get().await?;
        let received = intake::receive(&client, &delivery).await?;
        if received.duplicate_of.is_none() {
            self.signal.announce(Work::Deliveries);
        }
        Ok(received)
    }

    async fn claim_deliveries(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Delivery>> {
        let client = self.pool.get().await?;
        intake::claim(&client, limit, now, lease_until).await
    }

    async fn settle_delivery(&self, settlement: Settlement) -> Result<()> {
        let client = self.pool.get().await?;
        intake::settle(&client, &settlement).await?;
        if settlement.forward.is_some() {
            self.signal.announce(Work::Forwards);
        }
        Ok(())
    }

    async fn queue_forward(&self, forward: NewForward, now: OffsetDateTime) -> Result<bool> {
        let client = self.pool.get().await?;
        let queued = intake::queue_forward(&client, &forward, now).await?;
        if queued {
            self.signal.announce(Work::Forwards);
        }
        Ok(queued)
    }

    async fn get_delivery(&self, scope: &Scope, delivery_id: &str) -> Result<Delivery> {
        let client = self.pool.get().await?;
        intake::read_delivery(&client, scope, delivery_id).await
    }

    async fn list_deliveries(&self, scope: &Scope, filter: InboxFilter) -> Result<Page<Delivery>> {
        let client = self.pool.get().await?;
        intake::list(&client, scope, &filter).await
    }

    async fn recent_order_deliveries(
        &self,
        store_id: &StoreId,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let client = self.pool.get().await?;
        intake::recent_order_deliveries(&client, store_id, limit).await
    }

    async fn update_order_source(
        &self,
        store_id: &StoreId,
        external_id: &str,
        updated_at: OffsetDateTime,
        document: String,
        now: OffsetDateTime,
    ) -> Result<SourceUpdate> {
        let client = self.pool.get().await?;
        intake::update_source(&client, store_id, external_id, updated_at, &document, now).await
    }

    async fn pull_cursor(&self, store_id: &StoreId) -> Result<Option<String>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT cursor FROM pull_cursors WHERE store_id = $1")
            .await?;
        Ok(client
            .query_opt(&statement, &[&store_id.as_str()])
            .await?
            .map(|row| row.try_get(0))
            .transpose()?)
    }

    async fn set_pull_cursor(
        &self,
        store_id: &StoreId,
        cursor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(concat!(
                "INSERT INTO pull_cursors (store_id, cursor, updated_at) VALUES ($1, $2, ",
                at_micros!("$3"),
                ") ON CONFLICT (store_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at"
            ))
            .await?;
        client
            .execute(&statement, &[&store_id.as_str(), &cursor, &micros(now)])
            .await?;
        Ok(())
    }

    async fn stores_with_api(&self) -> Result<Vec<StoreRecord>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT store_id FROM stores WHERE settings->'api' IS NOT NULL AND settings->'api' <> 'null'::jsonb ORDER BY store_id",
            )
            .await?;
        let mut stores = Vec::new();
        for row in client.query(&statement, &[]).await? {
            let store_id: StoreId = parse("stores.store_id", row.try_get(0)?)?;
            stores.push(read_store(&client, &store_id).await?);
        }
        Ok(stores)
    }

    async fn claim_due_forwards(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Forward>> {
        let client = self.pool.get().await?;
        intake::claim_forwards(&client, limit, now, lease_until).await
    }

    async fn record_forward_attempt(
        &self,
        forward_id: &str,
        outcome: ForwardOutcome,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut client = self.pool.get().await?;
        intake::record_attempt(&mut client, forward_id, &outcome, now).await
    }

    async fn get_forward(&self, scope: &Scope, forward_id: &str) -> Result<Forward> {
        let client = self.pool.get().await?;
        intake::read_forward(&client, scope, forward_id).await
    }

    async fn list_forwards(
        &self,
        scope: &Scope,
        status: Option<ForwardStatus>,
        limit: u32,
    ) -> Result<Vec<Forward>> {
        let client = self.pool.get().await?;
        intake::list_forwards(&client, scope, status, limit).await
    }

    async fn retry_forward(
        &self,
        scope: &Scope,
        forward_id: &str,
        now: OffsetDateTime,
    ) -> Result<Forward> {
        let client = self.pool.get().await?;
        let forward = intake::retry_forward(&client, scope, forward_id, now).await?;
        self.signal.announce(Work::Forwards);
        Ok(forward)
    }

    async fn retry_dead_forwards(&self, scope: &Scope, now: OffsetDateTime) -> Result<u64> {
        let client = self.pool.get().await?;
        let retried = intake::retry_dead(&client, scope, now).await?;
        if retried > 0 {
            self.signal.announce(Work::Forwards);
        }
        Ok(retried)
    }

    async fn start_run(&self, start: StartRun) -> Result<RunStarted> {
        let mut client = self.pool.get().await?;
        let started = runs::start_run(&mut client, &start).await?;
        if started.created {
            self.signal.announce(Work::Steps);
        }
        Ok(started)
    }

    async fn claim_steps(&self, claim: Claim) -> Result<Vec<ClaimedStep>> {
        let mut client = self.pool.get().await?;
        runs::claim(&mut client, &claim).await
    }

    async fn heartbeat(
        &self,
        run_id: &str,
        step: &str,
        attempt: u32,
        worker: &str,
        lease_until: OffsetDateTime,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        runs::heartbeat(&client, run_id, step, attempt, worker, lease_until).await
    }

    async fn finish_step(
        &self,
        finish: FinishStep,
        planner: std::sync::Arc<dyn RunPlanner>,
    ) -> Result<Finished> {
        let mut client = self.pool.get().await?;
        let finished = runs::finish(&mut client, &finish, planner.as_ref()).await?;
        if finished.left_ready > 0 {
            self.signal.announce(Work::Steps);
        }
        Ok(finished)
    }

    async fn cancel_run(
        &self,
        scope: &Scope,
        run_id: &str,
        now: OffsetDateTime,
        planner: std::sync::Arc<dyn RunPlanner>,
    ) -> Result<Run> {
        let mut client = self.pool.get().await?;
        runs::cancel(&mut client, scope, run_id, now, planner.as_ref()).await?;
        self.signal.announce(Work::Steps);
        runs::read_run(&client, scope, run_id).await
    }

    async fn act_on_step(
        &self,
        scope: &Scope,
        run_id: &str,
        step: &str,
        action: StepAction,
        now: OffsetDateTime,
        planner: std::sync::Arc<dyn RunPlanner>,
    ) -> Result<Run> {
        let mut client = self.pool.get().await?;
        runs::act(
            &mut client,
            scope,
            run_id,
            step,
            &action,
            now,
            planner.as_ref(),
        )
        .await?;
        self.signal.announce(Work::Steps);
        runs::read_run(&client, scope, run_id).await
    }

    async fn get_run(&self, scope: &Scope, run_id: &str) -> Result<Run> {
        let client = self.pool.get().await?;
        runs::read_run(&client, scope, run_id).await
    }

    async fn list_runs(&self, scope: &Scope, filter: RunFilter) -> Result<Page<Run>> {
        let client = self.pool.get().await?;
        runs::list(&client, scope, &filter).await
    }

    async fn next_step_due(&self) -> Result<Option<OffsetDateTime>> {
        let client = self.pool.get().await?;
        runs::next_due(&client).await
    }

    fn work_signal(&self, work: Work) -> std::sync::Arc<tokio::sync::Notify> {
        self.signal.subscribe(work)
    }

    async fn try_lead(&self, role: &str) -> Result<Option<Box<dyn Leadership>>> {
        Ok(
            signal::AdvisoryLeadership::try_take(&self.signal.config, role)
                .await?
                .map(|l| Box::new(l) as _),
        )
    }

    async fn claim_alerts(
        &self,
        limit: u32,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Alert>> {
        let client = self.pool.get().await?;
        runs::claim_alerts(&client, limit, now, lease_until).await
    }

    async fn record_alert(
        &self,
        alert_id: &str,
        outcome: AlertOutcome,
        now: OffsetDateTime,
    ) -> Result<()> {
        let client = self.pool.get().await?;
        runs::record_alert(&client, alert_id, &outcome, now).await
    }
}

async fn read_store(client: &deadpool_postgres::Client, store_id: &StoreId) -> Result<StoreRecord> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT name, platform, settings::TEXT AS settings, ",
            micros_of!("created_at"),
            " FROM stores WHERE store_id = $1"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&store_id.as_str()])
        .await?
        .ok_or(Error::NotFound)?;
    Ok(StoreRecord {
        store_id: store_id.clone(),
        name: row.try_get("name")?,
        platform: row.try_get("platform")?,
        settings: common::settings_from_json(row.try_get("settings")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

fn product(row: &Row) -> Result<Product> {
    Ok(Product {
        store_id: parse("store_id", row.try_get("store_id")?)?,
        product_id: parse("product_id", row.try_get("product_id")?)?,
        name: row.try_get("name")?,
        category: row.try_get("category")?,
        price_minor: row.try_get("price_minor")?,
        currency: parse("currency", row.try_get("currency")?)?,
        on_hand: row.try_get("on_hand")?,
        reserved: row.try_get("reserved")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
    })
}

const LOCK_RESERVED: &str = "SELECT product_id, on_hand, reserved FROM products
     WHERE store_id = $1 AND product_id = ANY($2) ORDER BY product_id FOR UPDATE";
/// Sorted, so that concurrent imports create new rows in the same order and cannot deadlock
/// waiting for each other's uncommitted inserts.
const UPSERT_PRODUCTS: &str = concat!(
    "INSERT INTO products (store_id, product_id, name, category, price_minor, currency,
                           on_hand, reserved, created_at, updated_at)
     SELECT $1, p.product_id, p.name, p.category, p.price_minor, p.currency, p.on_hand, 0, ",
    at_micros!("p.created"),
    ", ",
    at_micros!("p.updated"),
    " FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[],
                  $7::BIGINT[], $8::BIGINT[], $9::BIGINT[])
          AS p (product_id, name, category, price_minor, currency, on_hand, created, updated)
     ORDER BY p.product_id
     ON CONFLICT (store_id, product_id) DO UPDATE SET
         name = excluded.name, category = excluded.category,
         price_minor = excluded.price_minor, currency = excluded.currency,
         on_hand = excluded.on_hand, updated_at = excluded.updated_at
     RETURNING ",
    product_columns!()
);

/// Creates or updates `products` in one statement and returns the rows written, one per
/// distinct product. Refuses, like writing them one by one would, the first product whose
/// `on_hand` is negative or below what open orders reserve.
async fn upsert_products(
    tx: &Transaction<'_>,
    store_id: &StoreId,
    products: &[ProductInput],
) -> Result<(Vec<Product>, u64)> {
    let [lock, upsert] = prepare_all(tx, [LOCK_RESERVED, UPSERT_PRODUCTS]).await?;
    let ids: Vec<&str> = products.iter().map(|p| p.product_id.as_str()).collect();
    // (on_hand, reserved) of the products that exist.
    let held: HashMap<String, (i64, i64)> = tx
        .query(&lock, &[&store_id.as_str(), &ids])
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("product_id")?,
                (row.try_get("on_hand")?, row.try_get("reserved")?),
            ))
        })
        .collect::<Result<_>>()?;
    // Products are new (nothing reserved) or locked above, so these checks hold until commit.
    for product in products {
        StockLevel::new(
            product.on_hand,
            held.get(product.product_id.as_str())
                .map_or(0, |&(_, reserved)| reserved),
        )?;
    }

    // A product listed twice ends up as its last entry says, created when its first was.
    let mut merged: BTreeMap<&str, (&ProductInput, i64)> = BTreeMap::new();
    for product in products {
        merged
            .entry(product.product_id.as_str())
            .and_modify(|(latest, _)| *latest = product)
            .or_insert((product, micros(product.now)));
    }
    let rows: Vec<_> = merged.into_values().collect();
    let ids: Vec<&str> = rows.iter().map(|(p, _)| p.product_id.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|(p, _)| p.name.as_str()).collect();
    let categories: Vec<Option<&str>> = rows.iter().map(|(p, _)| p.category.as_deref()).collect();
    let prices: Vec<i64> = rows.iter().map(|(p, _)| p.price_minor).collect();
    let currencies: Vec<&str> = rows.iter().map(|(p, _)| p.currency.as_str()).collect();
    let on_hands: Vec<i64> = rows.iter().map(|(p, _)| p.on_hand).collect();
    let created: Vec<i64> = rows.iter().map(|(_, created)| *created).collect();
    let updated: Vec<i64> = rows.iter().map(|(p, _)| micros(p.now)).collect();
    let written = tx
        .query(
            &upsert,
            &[
                &store_id.as_str(),
                &ids,
                &names,
                &categories,
                &prices,
                &currencies,
                &on_hands,
                &created,
                &updated,
            ],
        )
        .await?
        .iter()
        .map(product)
        .collect::<Result<Vec<_>>>()?;
    // Only a product that exists can have backorders: orders name products of the catalogue.
    let raised: Vec<&str> = rows
        .iter()
        .filter(|(p, _)| {
            held.get(p.product_id.as_str())
                .is_some_and(|&(on_hand, _)| p.on_hand > on_hand)
        })
        .map(|(p, _)| p.product_id.as_str())
        .collect();
    let poked =
        runs::poke_backorder_sensors(tx, store_id, &raised, micros(OffsetDateTime::now_utc()))
            .await?;
    Ok((written, poked))
}
