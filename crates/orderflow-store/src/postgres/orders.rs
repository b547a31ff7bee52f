//! Orders on PostgreSQL: placing, editing, cancelling, moving them along the fulfilment path
//! and filling their backorders under row locks, and reading them back with their lines,
//! backorders and timeline.
//!
//! Once a transaction holds every lock it needs, its writes are pipelined: prepared first,
//! then sent together with `try_join!(biased; …)`, which polls, and so sends, them in the
//! order written. The server runs them one after the other, so a statement still sees the
//! effects of those before it, as it would if each were awaited in turn.

use std::collections::HashMap;

use deadpool_postgres::{Client, GenericClient, Pool, Transaction};
use orderflow_domain::status::{self, Cancellation, state};
use orderflow_domain::{
    Currency, CustomerId, OrderId, OrderLine, OrderStatus, StockLevel, StoreId, TimelineEntry,
    Transition, plan_edit, plan_reservation,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row, Statement};

use super::batch::{Batched, BatchedStatement, Batcher};
use super::{Param, prepare_all};
use crate::common::{self, from_micros, micros, parse};
use crate::error::{Error, Result};
use crate::model::*;

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

const EARLIER_KEY: &str = "SELECT request_hash, receipt::TEXT AS receipt FROM idempotency_keys
     WHERE store_id = $1 AND key = $2";

const LOCK_ORDER: &str = "SELECT store_id, customer_id, status, version, holds_stock FROM orders WHERE order_id = $1 FOR UPDATE";
/// One statement in `product_id` order, so that every transaction takes product locks in the
/// same order.
const LOCK_PRODUCTS: &str =
    "SELECT product_id, on_hand, reserved, price_minor, currency FROM products
     WHERE store_id = $1 AND product_id = ANY($2) ORDER BY product_id FOR UPDATE";
/// The rows must be locked already (with [`LOCK_PRODUCTS`]): an UPDATE locks rows in no
/// particular order.
const CHANGE_RESERVED: &str = concat!(
    "UPDATE products SET reserved = products.reserved + d.delta, updated_at = ",
    at_micros!("$4"),
    " FROM unnest($2::TEXT[], $3::BIGINT[]) AS d (product_id, delta)
     WHERE products.store_id = $1 AND products.product_id = d.product_id"
);

const INSERT_LINES: &str =
    "INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_minor, currency)
     SELECT $1::TEXT, l.line_no, l.product_id, l.quantity, l.unit_price_minor, l.currency
     FROM unnest($2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[])
          WITH ORDINALITY AS l (product_id, quantity, unit_price_minor, currency, line_no)";
const APPEND_EVENTS: &str = concat!(
    "INSERT INTO order_events (order_id, seq, at, status, note)
     SELECT $1::TEXT,
            (SELECT COALESCE(MAX(seq), 0) FROM order_events WHERE order_id = $1::TEXT) + e.n, ",
    at_micros!("$2"),
    ", e.status, e.note
     FROM unnest($3::TEXT[], $4::TEXT[]) WITH ORDINALITY AS e (status, note, n)"
);

const DELETE_LINES: &str = "DELETE FROM order_lines WHERE order_id = $1";
const DELETE_BACKORDERS: &str = "DELETE FROM backorders WHERE order_id = $1";
const SET_TOTAL: &str = "UPDATE orders SET currency = $2, total_minor = $3 WHERE order_id = $1";
/// An edit without a new address (`$4` NULL) keeps the old one.
const FINISH_EDIT: &str = concat!(
    "UPDATE orders SET status = $2, version = version + 1, updated_at = ",
    at_micros!("$3"),
    ", shipping_address = COALESCE($4::TEXT::JSONB, shipping_address) WHERE order_id = $1"
);
/// A [`Transition`] as a compare-and-set: `$4` is the status it leaves.
const SET_STATUS: &str = concat!(
    "UPDATE orders SET status = $2, version = version + 1, updated_at = ",
    at_micros!("$3"),
    " WHERE order_id = $1 AND status = $4"
);
/// Writes levels the domain computed from rows locked with [`LOCK_PRODUCTS`].
const SET_LEVELS: &str = concat!(
    "UPDATE products SET on_hand = d.on_hand, reserved = d.reserved, updated_at = ",
    at_micros!("$5"),
    " FROM unnest($2::TEXT[], $3::BIGINT[], $4::BIGINT[]) AS d (product_id, on_hand, reserved)
     WHERE products.store_id = $1 AND products.product_id = d.product_id"
);
/// Locks the products a backordered order waits for, in `product_id` order. Its backorder rows
/// cannot change meanwhile: whoever changes them holds the order's lock first.
const LOCK_WAITING_PRODUCTS: &str =
    "SELECT product_id, on_hand, reserved, price_minor, currency FROM products
     WHERE store_id = $1 AND product_id IN (SELECT product_id FROM backorders WHERE order_id = $2)
     ORDER BY product_id FOR UPDATE";
/// The products a backordered order waits for, each with the units that live orders of the
/// same store which started waiting earlier (ties broken by order id) wait for. Run after
/// [`LOCK_WAITING_PRODUCTS`], so that it sees every fill that took those locks before.
const BACKORDER_QUEUE: &str = "SELECT mine.product_id, mine.quantity,
            (SELECT COALESCE(SUM(b.quantity), 0)
             FROM backorders b JOIN orders o ON o.order_id = b.order_id
             WHERE b.product_id = mine.product_id
               AND (b.created_at, b.order_id) < (mine.created_at, mine.order_id)
               AND o.store_id = $2 AND o.status = ANY($3))::BIGINT AS ahead
     FROM backorders mine WHERE mine.order_id = $1 ORDER BY mine.product_id";

/// An order with its lines, backorder and timeline, in one statement (so on one snapshot, with
/// no transaction around it): a step reads its order at every attempt, and four statements in
/// a read-only transaction were six round trips' worth of PostgreSQL's per-statement work.
const ORDER_ROWS: &str = "SELECT o.order_id, o.store_id, o.external_id, o.customer_id, o.status,
            o.customer::TEXT AS customer, o.shipping_address::TEXT AS shipping_address,
            o.currency, o.total_minor, o.version, o.source::TEXT AS source,
            (EXTRACT(EPOCH FROM o.created_at) * 1000000)::BIGINT AS created_at,
            (EXTRACT(EPOCH FROM o.updated_at) * 1000000)::BIGINT AS updated_at,
            COALESCE((SELECT json_agg(json_build_array(l.product_id, l.quantity, l.unit_price_minor, l.currency)
                                      ORDER BY l.line_no)
                      FROM order_lines l WHERE l.order_id = o.order_id), '[]')::TEXT AS lines,
            COALESCE((SELECT json_agg(json_build_array(b.product_id, b.quantity) ORDER BY b.product_id COLLATE \"C\")
                      FROM backorders b WHERE b.order_id = o.order_id), '[]')::TEXT AS backorder,
            COALESCE((SELECT json_agg(json_build_array(e.status, e.note, (EXTRACT(EPOCH FROM e.at) * 1000000)::BIGINT)
                                      ORDER BY e.seq)
                      FROM order_events e WHERE e.order_id = o.order_id), '[]')::TEXT AS timeline
     FROM orders o WHERE o.order_id = ANY($1)";
const LINE_ROWS: &str =
    "SELECT order_id, product_id, quantity, unit_price_minor, currency FROM order_lines
     WHERE order_id = ANY($1) ORDER BY order_id, line_no";

/// What an order line needs to know about its product.
struct Stock {
    level: StockLevel,
    price_minor: i64,
    currency: Currency,
}

struct OrderHead {
    store_id: StoreId,
    status: OrderStatus,
    version: i64,
    holds_stock: bool,
}

/// Reads the stock of the order's products without locking them: the plan made from this
/// snapshot is applied by [`PLACE`], whose reservation update re-checks it row by row.
const READ_PRODUCTS: &str =
    "SELECT product_id, on_hand, reserved, price_minor, currency FROM products
     WHERE store_id = $1 AND product_id = ANY($2)";

/// A statement whose parameters are numbered as they are bound, so that the parts left out of
/// it leave no unused parameter behind (PostgreSQL cannot type one). It owns them, so that the
/// statement can be handed to the placement batcher.
#[derive(Default)]
struct Numbered {
    params: Vec<Box<dyn ToSql + Send + Sync>>,
}

impl Numbered {
    fn bind(&mut self, value: impl ToSql + Send + Sync + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// [`at_micros!`] for a parameter numbered at run time.
fn timestamp_of(param: &str) -> String {
    format!(
        "(TIMESTAMPTZ 'epoch' + ({param}::BIGINT / 1000000) * INTERVAL '1 second' + ({param}::BIGINT % 1000000) * INTERVAL '1 microsecond')"
    )
}

/// Values a placement writes, moved into its one statement.
struct PlaceValues {
    store_id: String,
    now: i64,
    order_id: String,
    reserve_ids: Vec<String>,
    reserve_quantities: Vec<i64>,
    line_ids: Vec<String>,
    line_quantities: Vec<i64>,
    line_prices: Vec<i64>,
    line_currencies: Vec<String>,
    backordered: Vec<String>,
    missing: Vec<i64>,
    customer_id: Option<String>,
    status: &'static str,
    customer: Option<String>,
    address: Option<String>,
    currency: Option<String>,
    total_minor: i64,
    note: Option<String>,
    /// The idempotency key, its request hash and the receipt it will replay.
    claim: Option<(String, String, String)>,
    external_id: Option<String>,
    source_updated_at: Option<i64>,
    source: Option<String>,
    first_note: String,
    reserving: bool,
    run: Option<(String, String, String)>,
    step_names: Vec<String>,
    step_ready: Vec<bool>,
}

/// Places a planned order in one statement, so in one round trip and one implicit transaction:
/// reserve (the `reserved <= on_hand` CHECK refuses the whole statement if the plan went stale
/// meanwhile), insert the order, its lines, backorders and first two timeline entries, and
/// claim the idempotency key and start the order's workflow run. `locked` takes the product
/// locks in product-id order, the order every writer uses, so that placements, edits and
/// cancellations never deadlock.
///
/// A part the order does not need is left out rather than run on no rows: each table and
/// index a statement names is opened and locked at every execution, and past 16 relations
/// PostgreSQL leaves its per-backend fast path for the shared lock table: leaving them out
/// took a fifth of the server's CPU off a placement without key, backorder or run.
fn place_statement(values: PlaceValues) -> BatchedStatement {
    let products = values
        .reserve_ids
        .iter()
        .map(|product| (values.store_id.clone(), product.clone()))
        .collect();
    let key = match (&values.claim, &values.external_id) {
        (Some((key, _, _)), _) => format!("key {} {key}", values.store_id),
        (None, Some(external_id)) => format!("external {} {external_id}", values.store_id),
        (None, None) => format!("order {}", values.order_id),
    };
    let mut p = Numbered::default();
    let store = p.bind(values.store_id);
    let now = p.bind(values.now);
    let at = timestamp_of(&now);
    let order = p.bind(values.order_id);
    let mut ctes = Vec::new();
    if values.reserving {
        let (ids, quantities) = (
            p.bind(values.reserve_ids),
            p.bind(values.reserve_quantities),
        );
        ctes.push(format!(
            "locked AS MATERIALIZED (
                 SELECT p.product_id, d.quantity
                 FROM products p JOIN unnest({ids}::TEXT[], {quantities}::BIGINT[]) AS d (product_id, quantity)
                      ON p.product_id = d.product_id
                 WHERE p.store_id = {store}
                 ORDER BY p.product_id
                 FOR UPDATE OF p
             ), reserve AS (
                 UPDATE products SET reserved = products.reserved + locked.quantity, updated_at = {at}
                 FROM locked WHERE products.store_id = {store} AND products.product_id = locked.product_id
                 RETURNING 1
             )"
        ));
    }
    let status = p.bind(values.status);
    ctes.push(format!(
        "placed AS (
             INSERT INTO orders (order_id, store_id, external_id, customer_id, status, customer,
                                 shipping_address, currency, total_minor, version, created_at, updated_at,
                                 source_updated_at, source, holds_stock)
             VALUES ({order}, {store}, {}::TEXT, {}, {status}, {}::TEXT::JSONB, {}::TEXT::JSONB, {}, {}, 1, {at}, {at},
                     {}, {}::TEXT::JSONB, {}::BOOLEAN)
         )",
        p.bind(values.external_id),
        p.bind(values.customer_id),
        p.bind(values.customer),
        p.bind(values.address),
        p.bind(values.currency),
        p.bind(values.total_minor),
        timestamp_of(&p.bind(values.source_updated_at)),
        p.bind(values.source),
        p.bind(values.reserving),
    ));
    ctes.push(format!(
        "lines AS (
             INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price_minor, currency)
             SELECT {order}, l.line_no, l.product_id, l.quantity, l.unit_price_minor, l.currency
             FROM unnest({}::TEXT[], {}::BIGINT[], {}::BIGINT[], {}::TEXT[])
                  WITH ORDINALITY AS l (product_id, quantity, unit_price_minor, currency, line_no)
         )",
        p.bind(values.line_ids),
        p.bind(values.line_quantities),
        p.bind(values.line_prices),
        p.bind(values.line_currencies),
    ));
    if !values.backordered.is_empty() {
        ctes.push(format!(
            "waiting AS (
                 INSERT INTO backorders (order_id, product_id, quantity, created_at)
                 SELECT {order}, b.product_id, b.quantity, {at}
                 FROM unnest({}::TEXT[], {}::BIGINT[]) AS b (product_id, quantity)
             )",
            p.bind(values.backordered),
            p.bind(values.missing),
        ));
    }
    ctes.push(format!(
        "timeline AS (
             INSERT INTO order_events (order_id, seq, at, status, note)
             VALUES ({order}, 1, {at}, 'pending', {}::TEXT), ({order}, 2, {at}, {status}, {}::TEXT)
         )",
        p.bind(values.first_note),
        p.bind(values.note),
    ));
    if let Some((key, request_hash, receipt)) = values.claim {
        ctes.push(format!(
            "claimed AS (
                 INSERT INTO idempotency_keys (store_id, key, request_hash, receipt, created_at)
                 VALUES ({store}, {}::TEXT, {}::TEXT, {}::TEXT::JSONB, {at})
             )",
            p.bind(key),
            p.bind(request_hash),
            p.bind(receipt),
        ));
    }
    if let Some((run_id, workflow, input)) = values.run {
        let run = p.bind(run_id);
        ctes.push(format!(
            "run AS (
                 INSERT INTO runs (run_id, workflow, store_id, order_id, status, input, created_at, updated_at)
                 VALUES ({run}, {}::TEXT, {store}, {order}, 'running', {}::TEXT, {at}, {at})
             ), steps AS (
                 INSERT INTO run_steps (run_id, step, position, status, due_at)
                 SELECT {run}, s.step, s.position - 1, CASE WHEN s.ready THEN 'ready' ELSE 'waiting' END,
                        CASE WHEN s.ready THEN {at} END
                 FROM unnest({}::TEXT[], {}::BOOLEAN[]) WITH ORDINALITY AS s (step, ready, position)
             )",
            p.bind(workflow),
            p.bind(input),
            p.bind(values.step_names),
            p.bind(values.step_ready),
        ));
    }
    let reserved = if values.reserving {
        "SELECT count(*) AS reserved FROM reserve"
    } else {
        "SELECT 0::BIGINT AS reserved"
    };
    BatchedStatement {
        sql: format!("WITH {} {reserved}", ctes.join(", ")),
        params: p.params,
        products,
        key,
    }
}

/// Attempts before a placement that keeps losing races for the last units gives up.
const PLACE_ATTEMPTS: usize = 16;

/// Places an order through the batcher, holding no connection while its batch gathers.
pub(super) async fn place_order(
    pool: &Pool,
    batcher: &Batcher,
    order: &PlaceOrder,
) -> Result<Placement> {
    for _ in 0..PLACE_ATTEMPTS {
        match try_place_order(pool, batcher, order).await? {
            Attempt::Done(placement) => return Ok(placement),
            Attempt::KeyTaken => {
                let client = pool.get().await?;
                return match (&order.idempotency, &order.source) {
                    (Some(idempotency), _) => replay(&client, &order.store_id, idempotency).await,
                    (None, Some(source)) => {
                        replay_storefront_order(&client, &order.store_id, &source.external_id).await
                    }
                    (None, None) => Err(Error::Corrupt(
                        "a key conflict for an order with neither key nor external id".into(),
                    )),
                };
            }
            Attempt::StalePlan => continue,
        }
    }
    Err(Error::unavailable(format!(
        "order {} lost the race for stock {PLACE_ATTEMPTS} times",
        order.order_id
    )))
}

enum Attempt {
    Done(Placement),
    /// Another request holds the idempotency key: replay its answer.
    KeyTaken,
    /// Stock moved between reading it and reserving it: plan again.
    StalePlan,
}

async fn try_place_order(pool: &Pool, batcher: &Batcher, order: &PlaceOrder) -> Result<Attempt> {
    let store_id = order.store_id.as_str();
    let now = micros(order.now);
    let product_ids: Vec<&str> = order
        .lines
        .iter()
        .map(|line| line.product_id.as_str())
        .collect();
    let (plan, lines, reserving) = match common::unmanaged_lines(order) {
        Some((plan, lines)) => (plan, lines, false),
        None => {
            let client = pool.get().await?;
            let read = client.prepare_cached(READ_PRODUCTS).await?;
            let known = stock_by_product(&client.query(&read, &[&store_id, &product_ids]).await?)?;
            let plan = plan_reservation(
                &order.lines,
                |id| known.get(id.as_str()).map(|k| k.level),
                order.allow_partial,
            )
            .map_err(Error::Refused)?;
            let lines = common::price(&plan.reserve, |id| {
                known.get(id.as_str()).map(|k| (k.price_minor, k.currency))
            });
            (plan, lines, true)
        }
    };
    let (currency, total_minor) = common::total(&lines)?;
    let transition = status::placement(!plan.backorder.is_empty());
    let note = common::placement_note(&plan);
    let receipt = Receipt {
        order_id: order.order_id.clone(),
        order_status: transition.to(),
        products: plan.reserve,
        unavailable: plan.backorder,
    };
    // Only a claimed key keeps the receipt to replay.
    let claim = order
        .idempotency
        .as_ref()
        .map(|i| {
            let receipt =
                serde_json::to_string(&receipt).map_err(|e| Error::Corrupt(e.to_string()))?;
            Ok::<_, Error>((i.key.clone(), i.request_hash.clone(), receipt))
        })
        .transpose()?;

    let (reserve_ids, reserve_quantities): (Vec<String>, Vec<i64>) = lines
        .iter()
        .filter(|_| reserving)
        .map(|line| (line.product_id.to_string(), i64::from(line.quantity.get())))
        .unzip();
    let reserving_products = reserve_ids.len() as i64;
    let (backordered, missing) = receipt
        .unavailable
        .iter()
        .map(|s| (s.product_id.to_string(), s.missing()))
        .unzip();
    let (step_names, step_ready) = order
        .run
        .iter()
        .flat_map(|r| &r.steps)
        .map(|s| (s.name.clone(), s.ready))
        .unzip();
    let values = PlaceValues {
        store_id: store_id.to_owned(),
        now,
        order_id: order.order_id.to_string(),
        reserve_ids,
        reserve_quantities,
        line_ids: lines.iter().map(|l| l.product_id.to_string()).collect(),
        line_quantities: lines.iter().map(|l| i64::from(l.quantity.get())).collect(),
        line_prices: lines.iter().map(|l| l.unit_price_minor).collect(),
        line_currencies: lines.iter().map(|l| l.currency.to_string()).collect(),
        backordered,
        missing,
        customer_id: order
            .customer
            .as_ref()
            .and_then(|c| c.customer_id.as_ref())
            .map(ToString::to_string),
        status: transition.to().as_str(),
        customer: common::to_json(&order.customer)?,
        address: common::to_json(&order.shipping_address)?,
        currency: currency.as_ref().map(ToString::to_string),
        total_minor,
        note: note.map(str::to_owned),
        claim,
        external_id: order.source.as_ref().map(|s| s.external_id.clone()),
        source_updated_at: order.source.as_ref().map(|s| micros(s.updated_at)),
        source: order.source.as_ref().map(|s| s.document.clone()),
        first_note: order
            .source
            .as_ref()
            .map_or("placed", |s| s.note.as_str())
            .to_owned(),
        reserving,
        run: order
            .run
            .as_ref()
            .map(|r| (r.run_id.clone(), r.workflow.clone(), r.input.clone())),
        step_names,
        step_ready,
    };
    let reserved: i64 = match batcher.execute(place_statement(values)).await? {
        Batched::Committed(row) => row.try_get("reserved")?,
        Batched::Alone(statement) => {
            let client = pool.get().await?;
            let place = client.prepare_cached(&statement.sql).await?;
            match client.query_one(&place, &statement.params()).await {
                Ok(row) => row.try_get("reserved")?,
                Err(error) => return attempt_refused_by(error),
            }
        }
    };
    if reserved != reserving_products {
        return Err(Error::Corrupt(format!(
            "a product of order {} vanished while reserving",
            order.order_id
        )));
    }
    Ok(Attempt::Done(Placement {
        receipt,
        replayed: false,
    }))
}

/// What a placement statement that failed alone means for the placement.
fn attempt_refused_by(error: tokio_postgres::Error) -> Result<Attempt> {
    let code = error.code();
    if code == Some(&SqlState::CHECK_VIOLATION)
        || code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        || code == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    {
        return Ok(Attempt::StalePlan);
    }
    // A storefront order's key and its external id are claimed together, so either conflict
    // means the order exists and its receipt can be replayed.
    let constraint = error.as_db_error().and_then(|e| e.constraint());
    if code == Some(&SqlState::UNIQUE_VIOLATION)
        && matches!(
            constraint,
            Some("idempotency_keys_pkey" | "orders_by_external_id")
        )
    {
        return Ok(Attempt::KeyTaken);
    }
    Err(error.into())
}

/// A storefront order is known by its external id, unique per store: no key of its own.
async fn replay_storefront_order(
    client: &Client,
    store_id: &StoreId,
    external_id: &str,
) -> Result<Placement> {
    // No snapshot needed: an order keeps its external id, and orders are never deleted.
    let find = client
        .prepare_cached("SELECT order_id FROM orders WHERE store_id = $1 AND external_id = $2")
        .await?;
    let row = client
        .query_opt(&find, &[&store_id.as_str(), &external_id])
        .await?
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "external id {external_id:?} conflicted, yet no order holds it"
            ))
        })?;
    let order_id: OrderId = parse("order_id", row.try_get::<_, &str>("order_id")?)?;
    let held = load_order(client, &Scope::Store(store_id.clone()), &order_id).await?;
    Ok(Placement {
        receipt: common::receipt_of(&held),
        replayed: true,
    })
}

async fn replay(
    client: &Client,
    store_id: &StoreId,
    idempotency: &Idempotency,
) -> Result<Placement> {
    let statement = client.prepare_cached(EARLIER_KEY).await?;
    // Keys are never deleted, and the receipt is written in the transaction that claims the key.
    let vanished = || {
        Error::Corrupt(format!(
            "idempotency key {:?} has no receipt",
            idempotency.key
        ))
    };
    let row = client
        .query_opt(&statement, &[&store_id.as_str(), &idempotency.key])
        .await?
        .ok_or_else(vanished)?;
    let receipt: Option<&str> = row.try_get("receipt")?;
    common::replay(
        row.try_get("request_hash")?,
        receipt.ok_or_else(vanished)?,
        idempotency,
    )
}

/// Also returns how many backorder sensors the units the edit released made due now.
pub(super) async fn edit_order(
    client: &mut Client,
    scope: &Scope,
    edit: &EditOrder,
) -> Result<(Order, u64)> {
    let now = micros(edit.now);
    let order_id = edit.order_id.as_str();
    let tx = client.transaction().await?;
    let head = lock_order(&tx, scope, &edit.order_id).await?;
    common::check_editable(head.status, head.version, edit.expected_version)?;
    if !head.holds_stock && edit.lines.is_some() {
        return Err(Error::LinesManagedElsewhere);
    }

    let mut new_status = head.status;
    let mut events = Vec::new();
    let mut poked = 0;
    if let Some(new_lines) = &edit.lines {
        let held: Vec<OrderLine> = read_lines(&tx, &edit.order_id)
            .await?
            .iter()
            .map(PricedLine::as_order_line)
            .collect();
        let product_ids: Vec<&str> = held
            .iter()
            .chain(new_lines.iter())
            .map(|line| line.product_id.as_str())
            .collect();
        let known = lock_products(&tx, &head.store_id, &product_ids).await?;
        let plan = plan_edit(&held, new_lines, |id| {
            known.get(id.as_str()).map(|k| k.level)
        })
        .map_err(Error::Refused)?;
        let lines = common::price(new_lines.as_slice(), |id| {
            known.get(id.as_str()).map(|k| (k.price_minor, k.currency))
        });
        let (currency, total_minor) = common::total(&lines)?;
        let deltas: Vec<(&str, i64)> = plan
            .deltas
            .iter()
            .map(|(id, delta)| (id.as_str(), *delta))
            .collect();
        let order_only: [Param<'_>; 1] = [&order_id];
        let total_params: [Param<'_>; 3] = [
            &order_id,
            &currency.as_ref().map(Currency::as_str),
            &total_minor,
        ];
        let [
            change_reserved_statement,
            delete_lines,
            delete_backorders,
            insert_lines_statement,
            set_total,
        ] = prepare_all(
            &tx,
            [
                CHANGE_RESERVED,
                DELETE_LINES,
                DELETE_BACKORDERS,
                INSERT_LINES,
                SET_TOTAL,
            ],
        )
        .await?;
        let (changed, ..) = tokio::try_join!(
            biased;
            change_reserved(&tx, &change_reserved_statement, &head.store_id, &deltas, now),
            tx.execute(&delete_lines, &order_only),
            tx.execute(&delete_backorders, &order_only),
            insert_lines(&tx, &insert_lines_statement, &edit.order_id, &lines),
            tx.execute(&set_total, &total_params),
        )?;
        if changed != deltas.len() as u64 {
            return Err(Error::Corrupt(format!(
                "a product of order {order_id} vanished while reserving"
            )));
        }
        if let Some(transition) = status::after_edit(head.status, false) {
            new_status = transition.to();
            events.push((new_status, Some("lines edited; all units reserved")));
            poked += super::runs::poke_order_sensors(&tx, order_id, now).await?;
        }
        // Units the edit gave back are as good as a restock to the orders waiting for them.
        let released: Vec<&str> = deltas
            .iter()
            .filter(|(_, delta)| *delta < 0)
            .map(|(id, _)| *id)
            .collect();
        poked += super::runs::poke_backorder_sensors(&tx, &head.store_id, &released, now).await?;
    }

    let address = common::to_json(&edit.shipping_address)?;
    let finish_params: [Param<'_>; 4] = [&order_id, &new_status.as_str(), &now, &address];
    let [finish, append] = prepare_all(&tx, [FINISH_EDIT, APPEND_EVENTS]).await?;
    tokio::try_join!(
        biased;
        tx.execute(&finish, &finish_params),
        append_events(&tx, &append, &edit.order_id, now, &events),
    )?;
    let order = load_order(&tx, scope, &edit.order_id).await?;
    tx.commit().await?;
    Ok((order, poked))
}

/// Also returns how many backorder sensors the released units made due now.
pub(super) async fn cancel_order(
    client: &mut Client,
    scope: &Scope,
    cancel: &CancelOrder,
) -> Result<(Order, u64)> {
    let now = micros(cancel.now);
    let order_id = cancel.order_id.as_str();
    let tx = client.transaction().await?;
    let head = lock_order(&tx, scope, &cancel.order_id).await?;
    let transition = match status::cancellation(head.status) {
        Cancellation::Cancel(transition) => transition,
        Cancellation::AlreadyCancelled => {
            let order = load_order(&tx, scope, &cancel.order_id).await?;
            tx.commit().await?;
            return Ok((order, 0));
        }
        Cancellation::TooLate(status) => return Err(Error::TooLateToCancel(status)),
    };

    let lines = if head.holds_stock {
        read_lines(&tx, &cancel.order_id).await?
    } else {
        Vec::new()
    };
    let releases: Vec<(&str, i64)> = lines
        .iter()
        .map(|line| (line.product_id.as_str(), -i64::from(line.quantity.get())))
        .collect();
    let product_ids: Vec<&str> = releases.iter().map(|(id, _)| *id).collect();
    let lock_params: [Param<'_>; 2] = [&head.store_id.as_str(), &product_ids];
    let order_only: [Param<'_>; 1] = [&order_id];
    let cancel_params: [Param<'_>; 4] = [
        &order_id,
        &transition.to().as_str(),
        &now,
        &transition.from().as_str(),
    ];
    let events = [(transition.to(), cancel.reason.as_deref())];
    let [
        lock,
        change_reserved_statement,
        delete_backorders,
        set_cancelled,
        append,
    ] = prepare_all(
        &tx,
        [
            LOCK_PRODUCTS,
            CHANGE_RESERVED,
            DELETE_BACKORDERS,
            SET_STATUS,
            APPEND_EVENTS,
        ],
    )
    .await?;
    let (_, released, _, cancelled, _) = tokio::try_join!(
        biased;
        // Taken first, in order, so that the UPDATE after it does not lock rows out of order.
        tx.query(&lock, &lock_params),
        change_reserved(&tx, &change_reserved_statement, &head.store_id, &releases, now),
        tx.execute(&delete_backorders, &order_only),
        tx.execute(&set_cancelled, &cancel_params),
        append_events(&tx, &append, &cancel.order_id, now, &events),
    )?;
    if released != releases.len() as u64 {
        return Err(Error::Corrupt(format!(
            "a product of order {order_id} vanished while releasing"
        )));
    }
    if cancelled != 1 {
        return Err(Error::Corrupt(format!(
            "order {order_id} changed status while locked"
        )));
    }
    // Released units are as good as a restock to the orders waiting for the products; the
    // products are locked already, as the restock's path has them.
    let poked = super::runs::poke_backorder_sensors(&tx, &head.store_id, &product_ids, now).await?;
    if let Some(planner) = &cancel.runs {
        super::runs::cancel_order_runs(&tx, &cancel.order_id, cancel.now, planner.as_ref()).await?;
    }
    let order = load_order(&tx, scope, &cancel.order_id).await?;
    tx.commit().await?;
    Ok((order, poked))
}

pub(super) async fn advance_order(client: &mut Client, advance: &AdvanceOrder) -> Result<Order> {
    let now = micros(advance.now);
    let order_id = advance.order_id.as_str();
    let tx = client.transaction().await?;
    let head = lock_order(&tx, &Scope::Everything, &advance.order_id).await?;
    let Some(transition) =
        status::progress(head.status, advance.to).map_err(Error::NotAdvanceable)?
    else {
        let order = load_order(&tx, &Scope::Everything, &advance.order_id).await?;
        tx.commit().await?;
        return Ok(order);
    };

    // Shipping consumes the reservation: the units leave `on_hand` as they leave `reserved`,
    // and the order, no longer live, drops out of the audit's sum with them.
    let lines = if transition.to().has_shipped() && head.holds_stock {
        read_lines(&tx, &advance.order_id).await?
    } else {
        Vec::new()
    };
    let known = if lines.is_empty() {
        HashMap::new()
    } else {
        let product_ids: Vec<&str> = lines.iter().map(|l| l.product_id.as_str()).collect();
        lock_products(&tx, &head.store_id, &product_ids).await?
    };
    let levels = common::shipped_levels(&lines, |id| known.get(id.as_str()).map(|k| k.level))?;
    let shipped_ids: Vec<&str> = levels.iter().map(|(id, _)| id.as_str()).collect();
    let on_hands: Vec<i64> = levels.iter().map(|(_, level)| level.on_hand()).collect();
    let reserveds: Vec<i64> = levels.iter().map(|(_, level)| level.reserved()).collect();
    let level_params: [Param<'_>; 5] = [
        &head.store_id.as_str(),
        &shipped_ids,
        &on_hands,
        &reserveds,
        &now,
    ];
    let status_params: [Param<'_>; 4] = [
        &order_id,
        &transition.to().as_str(),
        &now,
        &transition.from().as_str(),
    ];
    let events = [(transition.to(), advance.note.as_deref())];
    let [set_levels, set_status, append] =
        prepare_all(&tx, [SET_LEVELS, SET_STATUS, APPEND_EVENTS]).await?;
    let (shipped, moved, _) = tokio::try_join!(
        biased;
        tx.execute(&set_levels, &level_params),
        tx.execute(&set_status, &status_params),
        append_events(&tx, &append, &advance.order_id, now, &events),
    )?;
    if shipped != levels.len() as u64 {
        return Err(Error::Corrupt(format!(
            "a product of order {order_id} vanished while shipping"
        )));
    }
    if moved != 1 {
        return Err(Error::Corrupt(format!(
            "order {order_id} changed status while locked"
        )));
    }
    let order = load_order(&tx, &Scope::Everything, &advance.order_id).await?;
    tx.commit().await?;
    Ok(order)
}

pub(super) async fn fill_backorder(
    client: &mut Client,
    order_id: &OrderId,
    now: i64,
) -> Result<BackorderFill> {
    let tx = client.transaction().await?;
    let head = lock_order(&tx, &Scope::Everything, order_id).await?;
    if head.status != OrderStatus::Backordered {
        tx.commit().await?;
        return Ok(BackorderFill::NotBackordered(head.status));
    }
    if !head.holds_stock {
        // Placement never backorders what it does not reserve; filling would unbalance the books.
        return Err(Error::Corrupt(format!(
            "order {order_id} waits for stock it does not manage"
        )));
    }
    let [lock, queue] = prepare_all(&tx, [LOCK_WAITING_PRODUCTS, BACKORDER_QUEUE]).await?;
    let known = stock_by_product(
        &tx.query(&lock, &[&head.store_id.as_str(), &order_id.as_str()])
            .await?,
    )?;
    let waiting = tx
        .query(
            &queue,
            &[
                &order_id.as_str(),
                &head.store_id.as_str(),
                &common::live_statuses(),
            ],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(common::Waiting {
                product_id: parse("product_id", row.try_get("product_id")?)?,
                quantity: row.try_get("quantity")?,
                ahead: row.try_get("ahead")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let missing = common::still_missing(&waiting, |id| known.get(id.as_str()).map(|k| k.level))?;
    if !missing.is_empty() {
        tx.commit().await?;
        return Ok(BackorderFill::Waiting { missing });
    }

    let lines = common::filled_lines(read_lines(&tx, order_id).await?, &waiting, |id| {
        known.get(id.as_str()).map(|k| (k.price_minor, k.currency))
    })?;
    let (currency, total_minor) = common::total(&lines)?;
    let reservations: Vec<(&str, i64)> = waiting
        .iter()
        .map(|product| (product.product_id.as_str(), product.quantity))
        .collect();
    let transition = Transition::of::<state::Backordered, state::Confirmed>();
    let order_only: [Param<'_>; 1] = [&order_id.as_str()];
    let total_params: [Param<'_>; 3] = [
        &order_id.as_str(),
        &currency.as_ref().map(Currency::as_str),
        &total_minor,
    ];
    let status_params: [Param<'_>; 4] = [
        &order_id.as_str(),
        &transition.to().as_str(),
        &now,
        &transition.from().as_str(),
    ];
    let events = [(transition.to(), Some(common::BACKORDER_FILLED))];
    let [
        change_reserved_statement,
        delete_lines,
        insert_lines_statement,
        delete_backorders,
        set_total,
        set_status,
        append,
    ] = prepare_all(
        &tx,
        [
            CHANGE_RESERVED,
            DELETE_LINES,
            INSERT_LINES,
            DELETE_BACKORDERS,
            SET_TOTAL,
            SET_STATUS,
            APPEND_EVENTS,
        ],
    )
    .await?;
    let (reserved, .., confirmed, _) = tokio::try_join!(
        biased;
        change_reserved(&tx, &change_reserved_statement, &head.store_id, &reservations, now),
        tx.execute(&delete_lines, &order_only),
        insert_lines(&tx, &insert_lines_statement, order_id, &lines),
        tx.execute(&delete_backorders, &order_only),
        tx.execute(&set_total, &total_params),
        tx.execute(&set_status, &status_params),
        append_events(&tx, &append, order_id, now, &events),
    )?;
    if reserved != reservations.len() as u64 {
        return Err(Error::Corrupt(format!(
            "a product of order {order_id} vanished while reserving"
        )));
    }
    if confirmed != 1 {
        return Err(Error::Corrupt(format!(
            "order {order_id} changed status while locked"
        )));
    }
    let order = load_order(&tx, &Scope::Everything, order_id).await?;
    tx.commit().await?;
    Ok(BackorderFill::Filled(order))
}

pub(super) async fn list_orders(
    client: &mut Client,
    scope: &Scope,
    filter: &OrderFilter,
) -> Result<Page<Order>> {
    let (conditions, values): (Vec<String>, Vec<String>) = common::order_conditions(scope, filter)
        .into_iter()
        .enumerate()
        .map(|(i, (condition, value))| (format!("{condition} ${}", i + 1), value))
        .unzip();
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT order_id FROM orders {where_clause} ORDER BY order_id DESC LIMIT ${}",
        values.len() + 1
    );
    let limit = i64::from(filter.limit) + 1;
    let mut params: Vec<Param<'_>> = values.iter().map(|value| value as Param<'_>).collect();
    params.push(&limit);

    let tx = snapshot(client).await?;
    let statement = tx.prepare_cached(&sql).await?;
    let mut ids = tx
        .query(&statement, &params)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<PgResult<Vec<String>>>()?;
    let has_more = ids.len() > filter.limit as usize;
    ids.truncate(filter.limit as usize);
    let items = load_orders(&tx, scope, &ids).await?;
    tx.commit().await?;
    Ok(Page { items, has_more })
}

/// A read-only transaction on one snapshot, so that an order and its lines agree.
async fn snapshot(client: &mut Client) -> Result<Transaction<'_>> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// Locks the order's row, the first lock any change to an order takes, and reads its head.
async fn lock_order(tx: &Transaction<'_>, scope: &Scope, order_id: &OrderId) -> Result<OrderHead> {
    let statement = tx.prepare_cached(LOCK_ORDER).await?;
    let row = tx
        .query_opt(&statement, &[&order_id.as_str()])
        .await?
        .ok_or(Error::NotFound)?;
    let store_id: StoreId = parse("store_id", row.try_get("store_id")?)?;
    let customer_id: Option<CustomerId> = row
        .try_get::<_, Option<&str>>("customer_id")?
        .map(|c| parse("customer_id", c))
        .transpose()?;
    if !scope.admits(&store_id, customer_id.as_ref()) {
        return Err(Error::NotFound);
    }
    Ok(OrderHead {
        store_id,
        status: parse("status", row.try_get("status")?)?,
        version: row.try_get("version")?,
        holds_stock: row.try_get("holds_stock")?,
    })
}

/// Locks the store's products among `product_ids` and reads their stock and price; products
/// the store does not have are missing from the answer.
async fn lock_products(
    tx: &Transaction<'_>,
    store_id: &StoreId,
    product_ids: &[&str],
) -> Result<HashMap<String, Stock>> {
    let statement = tx.prepare_cached(LOCK_PRODUCTS).await?;
    stock_by_product(
        &tx.query(&statement, &[&store_id.as_str(), &product_ids])
            .await?,
    )
}

fn stock_by_product(rows: &[Row]) -> Result<HashMap<String, Stock>> {
    rows.iter()
        .map(|row| {
            let level = StockLevel::new(row.try_get("on_hand")?, row.try_get("reserved")?)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let stock = Stock {
                level,
                price_minor: row.try_get("price_minor")?,
                currency: parse("currency", row.try_get("currency")?)?,
            };
            Ok((row.try_get("product_id")?, stock))
        })
        .collect()
}

/// Adds each delta to its product's reservation; answers how many products changed.
async fn change_reserved(
    tx: &Transaction<'_>,
    statement: &Statement,
    store_id: &StoreId,
    deltas: &[(&str, i64)],
    now: i64,
) -> PgResult<u64> {
    let (product_ids, deltas): (Vec<&str>, Vec<i64>) = deltas.iter().copied().unzip();
    tx.execute(
        statement,
        &[&store_id.as_str(), &product_ids, &deltas, &now],
    )
    .await
}

async fn insert_lines(
    tx: &Transaction<'_>,
    statement: &Statement,
    order_id: &OrderId,
    lines: &[PricedLine],
) -> PgResult<u64> {
    let product_ids: Vec<&str> = lines.iter().map(|line| line.product_id.as_str()).collect();
    let quantities: Vec<i64> = lines
        .iter()
        .map(|line| i64::from(line.quantity.get()))
        .collect();
    let prices: Vec<i64> = lines.iter().map(|line| line.unit_price_minor).collect();
    let currencies: Vec<&str> = lines.iter().map(|line| line.currency.as_str()).collect();
    tx.execute(
        statement,
        &[
            &order_id.as_str(),
            &product_ids,
            &quantities,
            &prices,
            &currencies,
        ],
    )
    .await
}

/// Appends `events` (status and note) to the order's timeline, in order.
async fn append_events(
    tx: &Transaction<'_>,
    statement: &Statement,
    order_id: &OrderId,
    at: i64,
    events: &[(OrderStatus, Option<&str>)],
) -> PgResult<u64> {
    let (statuses, notes): (Vec<&str>, Vec<Option<&str>>) = events
        .iter()
        .map(|(status, note)| (status.as_str(), *note))
        .unzip();
    tx.execute(statement, &[&order_id.as_str(), &at, &statuses, &notes])
        .await
}

async fn read_lines(tx: &Transaction<'_>, order_id: &OrderId) -> Result<Vec<PricedLine>> {
    let statement = tx.prepare_cached(LINE_ROWS).await?;
    let ids = [order_id.as_str()];
    tx.query(&statement, &[&ids.as_slice()])
        .await?
        .iter()
        .map(priced_line)
        .collect()
}

pub(super) async fn load_order(
    client: &impl GenericClient,
    scope: &Scope,
    order_id: &OrderId,
) -> Result<Order> {
    load_orders(client, scope, &[order_id.to_string()])
        .await?
        .pop()
        .ok_or(Error::NotFound)
}

/// The orders named by `ids` that `scope` may see, in the order of `ids`.
async fn load_orders(
    client: &impl GenericClient,
    scope: &Scope,
    ids: &[String],
) -> Result<Vec<Order>> {
    let statement = client.prepare_cached(ORDER_ROWS).await?;
    let mut orders = HashMap::with_capacity(ids.len());
    for row in client.query(&statement, &[&ids]).await? {
        let order_id: String = row.try_get("order_id")?;
        let store_id: StoreId = parse("store_id", row.try_get("store_id")?)?;
        let customer_id: Option<CustomerId> = row
            .try_get::<_, Option<&str>>("customer_id")?
            .map(|c| parse("customer_id", c))
            .transpose()?;
        if !scope.admits(&store_id, customer_id.as_ref()) {
            continue;
        }
        let lines: Vec<(String, i64, i64, String)> = aggregate(&row, "lines")?;
        let backorder: Vec<(String, i64)> = aggregate(&row, "backorder")?;
        let timeline: Vec<(String, Option<String>, i64)> = aggregate(&row, "timeline")?;
        let order = Order {
            order_id: parse("order_id", &order_id)?,
            store_id,
            external_id: row.try_get("external_id")?,
            status: parse("status", row.try_get("status")?)?,
            lines: lines
                .into_iter()
                .map(|(product_id, quantity, unit_price_minor, currency)| {
                    Ok(PricedLine {
                        product_id: parse("product_id", &product_id)?,
                        quantity: common::quantity(quantity)?,
                        unit_price_minor,
                        currency: parse("currency", &currency)?,
                    })
                })
                .collect::<Result<_>>()?,
            backorder: backorder
                .into_iter()
                .map(|(product_id, quantity)| {
                    Ok(BackorderLine {
                        product_id: parse("product_id", &product_id)?,
                        quantity: common::quantity(quantity)?,
                    })
                })
                .collect::<Result<_>>()?,
            customer: common::from_json(row.try_get("customer")?)?,
            shipping_address: common::from_json(row.try_get("shipping_address")?)?,
            currency: row
                .try_get::<_, Option<&str>>("currency")?
                .map(|c| parse("currency", c))
                .transpose()?,
            total_minor: row.try_get("total_minor")?,
            timeline: timeline
                .into_iter()
                .map(|(status, note, at)| {
                    Ok(TimelineEntry {
                        at: from_micros(at)?,
                        status: parse("status", &status)?,
                        note,
                    })
                })
                .collect::<Result<_>>()?,
            version: row.try_get("version")?,
            created_at: from_micros(row.try_get("created_at")?)?,
            updated_at: from_micros(row.try_get("updated_at")?)?,
            source: row.try_get("source")?,
        };
        orders.insert(order_id, order);
    }
    Ok(ids.iter().filter_map(|id| orders.remove(id)).collect())
}

/// A JSON array [`ORDER_ROWS`] aggregated from a child table, as the tuples of its rows.
fn aggregate<T: serde::de::DeserializeOwned>(row: &Row, column: &str) -> Result<T> {
    serde_json::from_str(row.try_get(column)?)
        .map_err(|e| Error::Corrupt(format!("order {column}: {e}")))
}

fn priced_line(row: &Row) -> Result<PricedLine> {
    Ok(PricedLine {
        product_id: parse("product_id", row.try_get("product_id")?)?,
        quantity: common::quantity(row.try_get("quantity")?)?,
        unit_price_minor: row.try_get("unit_price_minor")?,
        currency: parse("currency", row.try_get("currency")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::ORDER_ROWS;
    use crate::postgres::scratch_store;

    /// A pool connection makes its generic plan of a statement at the first execution, from
    /// the statistics of that moment, and keeps it. Planned on a new table holding a few
    /// unanalysed rows, an `= ANY($1)` lookup used to become a sequential scan for good.
    #[tokio::test]
    async fn an_order_read_first_planned_on_a_new_table_still_uses_its_index() {
        let Some((store, database)) = scratch_store().await else {
            return;
        };
        let client = store.pool.get().await.expect("a pool connection");
        client
            .batch_execute(
                "INSERT INTO orders (order_id, store_id, status, total_minor, version, created_at, updated_at)
                 SELECT 'ord_' || i, 'default', 'placed', 0, 1, now(), now() FROM generate_series(1, 3) i",
            )
            .await
            .expect("three orders");
        let plan: Vec<String> = client
            .simple_query(&format!(
                "PREPARE probe (TEXT[]) AS {ORDER_ROWS}; EXPLAIN EXECUTE probe ('{{ord_1}}')"
            ))
            .await
            .expect("the plan")
            .into_iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        drop(client);
        drop(store);
        database
            .drop()
            .await
            .expect("the scratch database is dropped");
    }
}
