//! The inbox of storefront deliveries and the forwards to courier systems, on PostgreSQL.
//! Workers on several nodes claim with `FOR UPDATE SKIP LOCKED`, so none waits for another.

use deadpool_postgres::Client;
use orderflow_domain::{OrderId, StoreId};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::common::{self, from_micros, micros, parse};
use crate::error::{Error, Result};
use crate::model::*;

macro_rules! delivery_columns {
    () => {
        concat!(
            "delivery_id, store_id, platform, event_key, topic, headers::TEXT AS headers, status, reason, \
             order_id, duplicate_of, attempts, ",
            micros_of!("received_at"),
            ", ",
            micros_of!("processed_at")
        )
    };
}

macro_rules! forward_columns {
    () => {
        concat!(
            "forward_id, store_id, order_id, delivery_id, url, payload, status, attempts, last_error, ",
            micros_of!("next_attempt_at"),
            ", ",
            micros_of!("created_at"),
            ", ",
            micros_of!("delivered_at")
        )
    };
}

/// Claims the event and stores the delivery in one statement, so one round trip in the usual
/// case. A racing delivery of the same event makes the claim wait for its commit and then do
/// nothing, and this delivery is stored as a duplicate; which delivery it duplicates is filled
/// in by a second statement, which (unlike the first) sees the winner's committed row.
const RECEIVE: &str = concat!(
    "WITH claimed AS (
         INSERT INTO inbox_events (store_id, event_key, delivery_id) VALUES ($2, $4, $1)
         ON CONFLICT DO NOTHING RETURNING delivery_id
     ), kept AS (
         INSERT INTO inbox_bodies (delivery_id, body) VALUES ($1, $7)
     )
     INSERT INTO inbox (delivery_id, store_id, platform, event_key, topic, headers, status,
                        received_at, processed_at)
     SELECT $1, $2, $3, $4, $5, $6::TEXT::JSONB,
            CASE WHEN EXISTS (SELECT 1 FROM claimed) THEN 'received' ELSE 'duplicate' END, ",
    at_micros!("$8"),
    ", CASE WHEN EXISTS (SELECT 1 FROM claimed) THEN NULL ELSE ",
    at_micros!("$8"),
    " END
     RETURNING status"
);

const POINT_TO_FIRST: &str = "UPDATE inbox SET duplicate_of = (
         SELECT delivery_id FROM inbox_events WHERE store_id = $2 AND event_key = $3
     ) WHERE delivery_id = $1
     RETURNING duplicate_of";

pub(super) async fn receive(client: &Client, delivery: &NewDelivery) -> Result<Received> {
    let store_id = delivery.store_id.as_str();
    let insert = client.prepare_cached(RECEIVE).await?;
    let status: String = client
        .query_one(
            &insert,
            &[
                &delivery.delivery_id,
                &store_id,
                &delivery.platform,
                &delivery.event_key,
                &delivery.topic,
                &common::headers_json(&delivery.headers)?,
                &delivery.body,
                &micros(delivery.now),
            ],
        )
        .await?
        .try_get("status")?;
    let duplicate_of = if status == DeliveryStatus::Duplicate.as_str() {
        let point = client.prepare_cached(POINT_TO_FIRST).await?;
        client
            .query_one(
                &point,
                &[&delivery.delivery_id, &store_id, &delivery.event_key],
            )
            .await?
            .try_get("duplicate_of")?
    } else {
        None
    };
    Ok(Received {
        delivery_id: delivery.delivery_id.clone(),
        duplicate_of,
    })
}

pub(super) async fn claim(
    client: &Client,
    limit: u32,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Delivery>> {
    let statement = client
        .prepare_cached(concat!(
            "WITH leased AS (
                 UPDATE inbox SET lease_until = ",
            at_micros!("$3"),
            ", attempts = attempts + 1
                 WHERE delivery_id IN (
                     SELECT delivery_id FROM inbox
                     WHERE status = 'received' AND (lease_until IS NULL OR lease_until <= ",
            at_micros!("$1"),
            ")
                     ORDER BY delivery_id LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 RETURNING ",
            delivery_columns!(),
            "
             )
             SELECT leased.*, b.body FROM leased JOIN inbox_bodies b USING (delivery_id)"
        ))
        .await?;
    let rows = client
        .query(
            &statement,
            &[&micros(now), &i64::from(limit), &micros(lease_until)],
        )
        .await?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            let mut delivery = delivery(row)?;
            delivery.body = row.try_get("body")?;
            Ok(delivery)
        })
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by(|a, b| a.delivery_id.cmp(&b.delivery_id));
    Ok(claimed)
}

/// Records a fate and queues the forward (one per order, however often the delivery was
/// processed) in one statement.
const SETTLE: &str = concat!(
    "WITH settled AS (
         UPDATE inbox SET status = $2, reason = $3, order_id = $4, lease_until = NULL, processed_at = ",
    at_micros!("$5"),
    " WHERE delivery_id = $1
         RETURNING delivery_id
     ), queued AS (
         INSERT INTO forwards (forward_id, store_id, order_id, delivery_id, url, payload, status,
                               next_attempt_at, created_at)
         SELECT $6, $7, $4, $1, $8, $9, 'pending', ",
    at_micros!("$5"),
    ", ",
    at_micros!("$5"),
    " WHERE $6::TEXT IS NOT NULL AND EXISTS (SELECT 1 FROM settled)
         ON CONFLICT (order_id) DO NOTHING
     )
     SELECT count(*) AS settled FROM settled"
);

pub(super) async fn settle(client: &Client, settlement: &Settlement) -> Result<()> {
    let statement = client.prepare_cached(SETTLE).await?;
    let forward = settlement.forward.as_ref();
    let settled: i64 = client
        .query_one(
            &statement,
            &[
                &settlement.delivery_id,
                &settlement.status.as_str(),
                &settlement.reason,
                &settlement.order_id.as_ref().map(OrderId::as_str),
                &micros(settlement.now),
                &forward.map(|f| f.forward_id.as_str()),
                &forward.map(|f| f.store_id.as_str()),
                &forward.map(|f| f.url.as_str()),
                &forward.map(|f| f.payload.as_str()),
            ],
        )
        .await?
        .try_get("settled")?;
    if settled == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

const QUEUE_FORWARD: &str = concat!(
    "INSERT INTO forwards (forward_id, store_id, order_id, delivery_id, url, payload, status,
                           next_attempt_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', ",
    at_micros!("$7"),
    ", ",
    at_micros!("$7"),
    ") ON CONFLICT (order_id) DO NOTHING"
);

/// Queues a forward unless its order has one; true when this call queued it.
pub(super) async fn queue_forward(
    client: &Client,
    forward: &NewForward,
    now: OffsetDateTime,
) -> Result<bool> {
    let statement = client.prepare_cached(QUEUE_FORWARD).await?;
    let queued = client
        .execute(
            &statement,
            &[
                &forward.forward_id,
                &forward.store_id.as_str(),
                &forward.order_id.as_str(),
                &forward.delivery_id,
                &forward.url,
                &forward.payload,
                &micros(now),
            ],
        )
        .await?;
    Ok(queued == 1)
}

fn delivery(row: &Row) -> Result<Delivery> {
    let status: String = row.try_get("status")?;
    let attempts: i32 = row.try_get("attempts")?;
    Ok(Delivery {
        delivery_id: row.try_get("delivery_id")?,
        store_id: parse("inbox.store_id", row.try_get("store_id")?)?,
        platform: row.try_get("platform")?,
        event_key: row.try_get("event_key")?,
        topic: row.try_get("topic")?,
        headers: common::headers_from_json(row.try_get("headers")?)?,
        body: Vec::new(),
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("inbox.status holds {status:?}")))?,
        reason: row.try_get("reason")?,
        order_id: row
            .try_get::<_, Option<&str>>("order_id")?
            .map(|id| parse("inbox.order_id", id))
            .transpose()?,
        duplicate_of: row.try_get("duplicate_of")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        received_at: from_micros(row.try_get("received_at")?)?,
        processed_at: row
            .try_get::<_, Option<i64>>("processed_at")?
            .map(from_micros)
            .transpose()?,
    })
}

pub(super) async fn read_delivery(
    client: &Client,
    scope: &Scope,
    delivery_id: &str,
) -> Result<Delivery> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT b.body, ",
            delivery_columns!(),
            " FROM inbox JOIN inbox_bodies b USING (delivery_id) WHERE delivery_id = $1"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&delivery_id])
        .await?
        .ok_or(Error::NotFound)?;
    let mut found = delivery(&row)?;
    if !scope.admits(&found.store_id, None) {
        return Err(Error::NotFound);
    }
    found.body = row.try_get("body")?;
    Ok(found)
}

pub(super) async fn list(
    client: &Client,
    scope: &Scope,
    filter: &InboxFilter,
) -> Result<Page<Delivery>> {
    let conditions = common::inbox_conditions(scope, filter);
    let mut sql = concat!("SELECT ", delivery_columns!(), " FROM inbox").to_owned();
    for (i, (condition, _)) in conditions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{condition} ${}", i + 1));
    }
    sql.push_str(&format!(
        " ORDER BY delivery_id DESC LIMIT {}",
        filter.limit + 1
    ));
    let values: Vec<&(dyn ToSql + Sync)> = conditions.iter().map(|(_, v)| v as _).collect();
    let rows = client.query(&sql, &values).await?;
    let mut items = rows.iter().map(delivery).collect::<Result<Vec<_>>>()?;
    let has_more = items.len() > filter.limit as usize;
    items.truncate(filter.limit as usize);
    Ok(Page { items, has_more })
}

pub(super) async fn recent_order_deliveries(
    client: &Client,
    store_id: &StoreId,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT b.body, ",
            delivery_columns!(),
            " FROM inbox JOIN inbox_bodies b USING (delivery_id)
              WHERE store_id = $1 AND status NOT IN ('duplicate', 'failed')
              ORDER BY delivery_id DESC LIMIT $2"
        ))
        .await?;
    client
        .query(&statement, &[&store_id.as_str(), &i64::from(limit)])
        .await?
        .iter()
        .map(|row| {
            let mut found = delivery(row)?;
            found.body = row.try_get("body")?;
            Ok(found)
        })
        .collect()
}

pub(super) async fn update_source(
    client: &Client,
    store_id: &StoreId,
    external_id: &str,
    updated_at: OffsetDateTime,
    document: &str,
    now: OffsetDateTime,
) -> Result<SourceUpdate> {
    // Only a newer version wins, decided by the row itself so that racing updates agree.
    let statement = client
        .prepare_cached(concat!(
            "WITH held AS (
                 SELECT order_id FROM orders WHERE store_id = $1 AND external_id = $2
             ), applied AS (
                 UPDATE orders SET source_updated_at = ",
            at_micros!("$3"),
            ", source = $4::TEXT::JSONB, updated_at = ",
            at_micros!("$5"),
            " WHERE store_id = $1 AND external_id = $2
                   AND (source_updated_at IS NULL OR source_updated_at < ",
            at_micros!("$3"),
            ")
                 RETURNING order_id
             )
             SELECT held.order_id, EXISTS (SELECT 1 FROM applied) AS applied FROM held"
        ))
        .await?;
    let row = client
        .query_opt(
            &statement,
            &[
                &store_id.as_str(),
                &external_id,
                &micros(updated_at),
                &document,
                &micros(now),
            ],
        )
        .await?
        .ok_or(Error::NotFound)?;
    let order_id: OrderId = parse("orders.order_id", row.try_get("order_id")?)?;
    Ok(if row.try_get("applied")? {
        SourceUpdate::Applied { order_id }
    } else {
        SourceUpdate::Stale { order_id }
    })
}

fn forward(row: &Row) -> Result<Forward> {
    let status: String = row.try_get("status")?;
    let attempts: i32 = row.try_get("attempts")?;
    Ok(Forward {
        forward_id: row.try_get("forward_id")?,
        store_id: parse("forwards.store_id", row.try_get("store_id")?)?,
        order_id: parse("forwards.order_id", row.try_get("order_id")?)?,
        delivery_id: row.try_get("delivery_id")?,
        url: row.try_get("url")?,
        payload: row.try_get("payload")?,
        status: ForwardStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("forwards.status holds {status:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: from_micros(row.try_get("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        delivered_at: row
            .try_get::<_, Option<i64>>("delivered_at")?
            .map(from_micros)
            .transpose()?,
    })
}

pub(super) async fn read_forward(
    client: &Client,
    scope: &Scope,
    forward_id: &str,
) -> Result<Forward> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            forward_columns!(),
            " FROM forwards WHERE forward_id = $1"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&forward_id])
        .await?
        .ok_or(Error::NotFound)?;
    let found = forward(&row)?;
    if !scope.admits(&found.store_id, None) {
        return Err(Error::NotFound);
    }
    Ok(found)
}

pub(super) async fn list_forwards(
    client: &Client,
    scope: &Scope,
    status: Option<ForwardStatus>,
    limit: u32,
) -> Result<Vec<Forward>> {
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            forward_columns!(),
            " FROM forwards WHERE ($1::TEXT IS NULL OR store_id = $1) AND ($2::TEXT IS NULL OR status = $2)
              ORDER BY forward_id DESC LIMIT $3"
        ))
        .await?;
    client
        .query(
            &statement,
            &[
                &common::scope_store(scope),
                &status.map(ForwardStatus::as_str),
                &i64::from(limit),
            ],
        )
        .await?
        .iter()
        .map(forward)
        .collect()
}

pub(super) async fn claim_forwards(
    client: &Client,
    limit: u32,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Forward>> {
    let statement = client
        .prepare_cached(concat!(
            "UPDATE forwards SET next_attempt_at = ",
            at_micros!("$3"),
            " WHERE forward_id IN (
                 SELECT forward_id FROM forwards
                 WHERE status = 'pending' AND next_attempt_at <= ",
            at_micros!("$1"),
            " ORDER BY next_attempt_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING ",
            forward_columns!()
        ))
        .await?;
    client
        .query(
            &statement,
            &[&micros(now), &i64::from(limit), &micros(lease_until)],
        )
        .await?
        .iter()
        .map(forward)
        .collect()
}

pub(super) async fn record_attempt(
    client: &mut Client,
    forward_id: &str,
    outcome: &ForwardOutcome,
    now: OffsetDateTime,
) -> Result<()> {
    let (status, next, error) = match outcome {
        ForwardOutcome::Delivered => (ForwardStatus::Delivered, now, None),
        ForwardOutcome::RetryAt { at, error } => (ForwardStatus::Pending, *at, Some(error)),
        ForwardOutcome::Dead { error } => (ForwardStatus::Dead, now, Some(error)),
    };
    let tx = client.transaction().await?;
    let update = tx
        .prepare_cached(concat!(
            "UPDATE forwards SET status = $2, attempts = attempts + 1, next_attempt_at = ",
            at_micros!("$3"),
            ", last_error = COALESCE($4, last_error),
                delivered_at = CASE WHEN $2 = 'delivered' THEN ",
            at_micros!("$5"),
            " ELSE delivered_at END
             WHERE forward_id = $1 AND status = 'pending'
             RETURNING delivery_id"
        ))
        .await?;
    let row = tx
        .query_opt(
            &update,
            &[
                &forward_id,
                &status.as_str(),
                &micros(next),
                &error,
                &micros(now),
            ],
        )
        .await?
        .ok_or(Error::NotFound)?;
    if status == ForwardStatus::Delivered {
        let delivery_id: Option<String> = row.try_get("delivery_id")?;
        let mark = tx
            .prepare_cached("UPDATE inbox SET status = 'forwarded' WHERE delivery_id = $1")
            .await?;
        tx.execute(&mark, &[&delivery_id]).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn retry_forward(
    client: &Client,
    scope: &Scope,
    forward_id: &str,
    now: OffsetDateTime,
) -> Result<Forward> {
    let found = read_forward(client, scope, forward_id).await?;
    if found.status == ForwardStatus::Delivered {
        return Err(Error::AlreadyExists(format!(
            "forward {forward_id} was delivered"
        )));
    }
    let statement = client
        .prepare_cached(concat!(
            "UPDATE forwards SET status = 'pending', attempts = 0, next_attempt_at = ",
            at_micros!("$2"),
            " WHERE forward_id = $1 AND status <> 'delivered'"
        ))
        .await?;
    client
        .execute(&statement, &[&forward_id, &micros(now)])
        .await?;
    read_forward(client, scope, forward_id).await
}

pub(super) async fn retry_dead(client: &Client, scope: &Scope, now: OffsetDateTime) -> Result<u64> {
    let statement = client
        .prepare_cached(concat!(
            "UPDATE forwards SET status = 'pending', attempts = 0, next_attempt_at = ",
            at_micros!("$2"),
            " WHERE status = 'dead' AND ($1::TEXT IS NULL OR store_id = $1)"
        ))
        .await?;
    Ok(client
        .execute(&statement, &[&common::scope_store(scope), &micros(now)])
        .await?)
}
