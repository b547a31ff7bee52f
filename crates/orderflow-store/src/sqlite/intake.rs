//! The inbox of storefront deliveries and the forwards to courier systems, on SQLite.

use orderflow_domain::{OrderId, StoreId};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::is_unique_violation;
use crate::common::{self, from_micros, micros, parse};
use crate::error::{Error, Result};
use crate::model::*;

const DELIVERY_COLUMNS: &str = "delivery_id, store_id, platform, event_key, topic, headers, status, reason, order_id, duplicate_of, attempts, received_at, processed_at";

pub(super) fn receive(c: &Connection, delivery: &NewDelivery) -> Result<Received> {
    let claimed = c
        .prepare_cached(
            "INSERT INTO inbox_events (store_id, event_key, delivery_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            delivery.store_id.as_str(),
            delivery.event_key,
            delivery.delivery_id
        ]);
    let duplicate_of = match claimed {
        Ok(_) => None,
        Err(error) if is_unique_violation(&error) => Some(
            c.prepare_cached(
                "SELECT delivery_id FROM inbox_events WHERE store_id = ?1 AND event_key = ?2",
            )?
            .query_row(
                params![delivery.store_id.as_str(), delivery.event_key],
                |row| row.get::<_, String>(0),
            )?,
        ),
        Err(error) => return Err(error.into()),
    };
    let status = if duplicate_of.is_some() {
        DeliveryStatus::Duplicate
    } else {
        DeliveryStatus::Received
    };
    c.prepare_cached(
        "INSERT INTO inbox (delivery_id, store_id, platform, event_key, topic, headers, status,
                            duplicate_of, received_at, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, CASE WHEN ?8 IS NULL THEN NULL ELSE ?9 END)",
    )?
    .execute(params![
        delivery.delivery_id,
        delivery.store_id.as_str(),
        delivery.platform,
        delivery.event_key,
        delivery.topic,
        common::headers_json(&delivery.headers)?,
        status.as_str(),
        duplicate_of,
        micros(delivery.now),
    ])?;
    c.prepare_cached("INSERT INTO inbox_bodies (delivery_id, body) VALUES (?1, ?2)")?
        .execute(params![delivery.delivery_id, delivery.body])?;
    Ok(Received {
        delivery_id: delivery.delivery_id.clone(),
        duplicate_of,
    })
}

pub(super) fn claim(
    c: &Connection,
    limit: u32,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Delivery>> {
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT delivery_id FROM inbox
             WHERE status = 'received' AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY delivery_id LIMIT ?2",
        )?
        .query_map(params![micros(now), limit], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        c.prepare_cached(
            "UPDATE inbox SET lease_until = ?2, attempts = attempts + 1 WHERE delivery_id = ?1",
        )?
        .execute(params![id, micros(lease_until)])?;
        claimed.push(read_delivery(c, None, &id, true)?);
    }
    Ok(claimed)
}

pub(super) fn settle(c: &Connection, settlement: &Settlement) -> Result<()> {
    let changed = c
        .prepare_cached(
            "UPDATE inbox SET status = ?2, reason = ?3, order_id = ?4, processed_at = ?5, lease_until = NULL
             WHERE delivery_id = ?1",
        )?
        .execute(params![
            settlement.delivery_id,
            settlement.status.as_str(),
            settlement.reason,
            settlement.order_id.as_ref().map(OrderId::as_str),
            micros(settlement.now),
        ])?;
    if changed == 0 {
        return Err(Error::NotFound);
    }
    if let Some(forward) = &settlement.forward {
        // A delivery processed twice (its worker died after the order was placed) finds the
        // forward already queued.
        queue_forward(c, forward, settlement.now)?;
    }
    Ok(())
}

/// Queues a forward unless its order has one; true when this call queued it.
pub(super) fn queue_forward(
    c: &Connection,
    forward: &NewForward,
    now: OffsetDateTime,
) -> Result<bool> {
    let queued = c
        .prepare_cached(
            "INSERT INTO forwards (forward_id, store_id, order_id, delivery_id, url, payload, status,
                                   next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)
             ON CONFLICT (order_id) DO NOTHING",
        )?
        .execute(params![
            forward.forward_id,
            forward.store_id.as_str(),
            forward.order_id.as_str(),
            forward.delivery_id,
            forward.url,
            forward.payload,
            micros(now),
        ])?;
    Ok(queued == 1)
}

pub(super) fn read_delivery(
    c: &Connection,
    scope: Option<&Scope>,
    delivery_id: &str,
    with_body: bool,
) -> Result<Delivery> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM inbox WHERE delivery_id = ?1");
    let row = c
        .prepare_cached(&sql)?
        .query_row([delivery_id], delivery_row)
        .optional()?
        .ok_or(Error::NotFound)?;
    let mut delivery = into_delivery(row)?;
    if scope.is_some_and(|scope| !scope.admits(&delivery.store_id, None)) {
        return Err(Error::NotFound);
    }
    if with_body {
        delivery.body = c
            .prepare_cached("SELECT body FROM inbox_bodies WHERE delivery_id = ?1")?
            .query_row([delivery_id], |row| row.get(0))?;
    }
    Ok(delivery)
}

/// An `inbox` row as stored (without its body), before its columns are parsed.
struct DeliveryRow {
    delivery_id: String,
    store_id: String,
    platform: String,
    event_key: String,
    topic: Option<String>,
    headers: String,
    status: String,
    reason: Option<String>,
    order_id: Option<String>,
    duplicate_of: Option<String>,
    attempts: i64,
    received_at: i64,
    processed_at: Option<i64>,
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        delivery_id: row.get(0)?,
        store_id: row.get(1)?,
        platform: row.get(2)?,
        event_key: row.get(3)?,
        topic: row.get(4)?,
        headers: row.get(5)?,
        status: row.get(6)?,
        reason: row.get(7)?,
        order_id: row.get(8)?,
        duplicate_of: row.get(9)?,
        attempts: row.get(10)?,
        received_at: row.get(11)?,
        processed_at: row.get(12)?,
    })
}

fn into_delivery(row: DeliveryRow) -> Result<Delivery> {
    Ok(Delivery {
        delivery_id: row.delivery_id,
        store_id: parse("inbox.store_id", &row.store_id)?,
        platform: row.platform,
        event_key: row.event_key,
        topic: row.topic,
        headers: common::headers_from_json(&row.headers)?,
        body: Vec::new(),
        status: DeliveryStatus::parse(&row.status)
            .ok_or_else(|| Error::Corrupt(format!("inbox.status holds {:?}", row.status)))?,
        reason: row.reason,
        order_id: row
            .order_id
            .map(|id| parse("inbox.order_id", &id))
            .transpose()?,
        duplicate_of: row.duplicate_of,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        received_at: from_micros(row.received_at)?,
        processed_at: row.processed_at.map(from_micros).transpose()?,
    })
}

pub(super) fn list(c: &Connection, scope: &Scope, filter: &InboxFilter) -> Result<Page<Delivery>> {
    let conditions = common::inbox_conditions(scope, filter);
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM inbox");
    for (i, (condition, _)) in conditions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{condition} ?{}", i + 1));
    }
    sql.push_str(&format!(
        " ORDER BY delivery_id DESC LIMIT {}",
        filter.limit + 1
    ));
    let values: Vec<&dyn rusqlite::ToSql> = conditions.iter().map(|(_, v)| v as _).collect();
    let mut items = c
        .prepare(&sql)?
        .query_map(values.as_slice(), delivery_row)?
        .map(|row| row.map_err(Error::from).and_then(into_delivery))
        .collect::<Result<Vec<_>>>()?;
    let has_more = items.len() > filter.limit as usize;
    items.truncate(filter.limit as usize);
    Ok(Page { items, has_more })
}

pub(super) fn recent_order_deliveries(
    c: &Connection,
    store_id: &StoreId,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT delivery_id FROM inbox
             WHERE store_id = ?1 AND status NOT IN ('duplicate', 'failed')
             ORDER BY delivery_id DESC LIMIT ?2",
        )?
        .query_map(params![store_id.as_str(), limit], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter()
        .map(|id| read_delivery(c, None, id, true))
        .collect()
}

pub(super) fn update_source(
    c: &Connection,
    store_id: &StoreId,
    external_id: &str,
    updated_at: OffsetDateTime,
    document: &str,
    now: OffsetDateTime,
) -> Result<SourceUpdate> {
    let (order_id, held): (String, Option<i64>) = c
        .prepare_cached(
            "SELECT order_id, source_updated_at FROM orders WHERE store_id = ?1 AND external_id = ?2",
        )?
        .query_row(params![store_id.as_str(), external_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
        .ok_or(Error::NotFound)?;
    let order_id: OrderId = parse("orders.order_id", &order_id)?;
    if held.is_some_and(|held| held >= micros(updated_at)) {
        return Ok(SourceUpdate::Stale { order_id });
    }
    c.prepare_cached(
        "UPDATE orders SET source_updated_at = ?2, source = ?3, updated_at = ?4 WHERE order_id = ?1",
    )?
    .execute(params![
        order_id.as_str(),
        micros(updated_at),
        document,
        micros(now)
    ])?;
    Ok(SourceUpdate::Applied { order_id })
}

const FORWARD_COLUMNS: &str = "forward_id, store_id, order_id, delivery_id, url, payload, status, attempts, next_attempt_at, last_error, created_at, delivered_at";

/// A `forwards` row as stored, before its columns are parsed.
struct ForwardRow {
    forward_id: String,
    store_id: String,
    order_id: String,
    delivery_id: Option<String>,
    url: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

fn forward_row(row: &Row<'_>) -> rusqlite::Result<ForwardRow> {
    Ok(ForwardRow {
        forward_id: row.get(0)?,
        store_id: row.get(1)?,
        order_id: row.get(2)?,
        delivery_id: row.get(3)?,
        url: row.get(4)?,
        payload: row.get(5)?,
        status: row.get(6)?,
        attempts: row.get(7)?,
        next_attempt_at: row.get(8)?,
        last_error: row.get(9)?,
        created_at: row.get(10)?,
        delivered_at: row.get(11)?,
    })
}

fn into_forward(row: ForwardRow) -> Result<Forward> {
    Ok(Forward {
        forward_id: row.forward_id,
        store_id: parse("forwards.store_id", &row.store_id)?,
        order_id: parse("forwards.order_id", &row.order_id)?,
        delivery_id: row.delivery_id,
        url: row.url,
        payload: row.payload,
        status: ForwardStatus::parse(&row.status)
            .ok_or_else(|| Error::Corrupt(format!("forwards.status holds {:?}", row.status)))?,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_at: from_micros(row.next_attempt_at)?,
        last_error: row.last_error,
        created_at: from_micros(row.created_at)?,
        delivered_at: row.delivered_at.map(from_micros).transpose()?,
    })
}

pub(super) fn read_forward(c: &Connection, scope: &Scope, forward_id: &str) -> Result<Forward> {
    let sql = format!("SELECT {FORWARD_COLUMNS} FROM forwards WHERE forward_id = ?1");
    let forward = c
        .prepare_cached(&sql)?
        .query_row([forward_id], forward_row)
        .optional()?
        .ok_or(Error::NotFound)
        .and_then(into_forward)?;
    if !scope.admits(&forward.store_id, None) {
        return Err(Error::NotFound);
    }
    Ok(forward)
}

pub(super) fn list_forwards(
    c: &Connection,
    scope: &Scope,
    status: Option<ForwardStatus>,
    limit: u32,
) -> Result<Vec<Forward>> {
    let store = common::scope_store(scope);
    let sql = format!(
        "SELECT {FORWARD_COLUMNS} FROM forwards
         WHERE (?1 IS NULL OR store_id = ?1) AND (?2 IS NULL OR status = ?2)
         ORDER BY forward_id DESC LIMIT ?3"
    );
    c.prepare_cached(&sql)?
        .query_map(
            params![store, status.map(ForwardStatus::as_str), limit],
            forward_row,
        )?
        .map(|row| row.map_err(Error::from).and_then(into_forward))
        .collect()
}

pub(super) fn claim_forwards(
    c: &Connection,
    limit: u32,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Forward>> {
    let sql = format!(
        "SELECT {FORWARD_COLUMNS} FROM forwards
         WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?2"
    );
    let due = c
        .prepare_cached(&sql)?
        .query_map(params![micros(now), limit], forward_row)?
        .map(|row| row.map_err(Error::from).and_then(into_forward))
        .collect::<Result<Vec<_>>>()?;
    for forward in &due {
        c.prepare_cached("UPDATE forwards SET next_attempt_at = ?2 WHERE forward_id = ?1")?
            .execute(params![forward.forward_id, micros(lease_until)])?;
    }
    Ok(due)
}

pub(super) fn record_attempt(
    c: &Connection,
    forward_id: &str,
    outcome: &ForwardOutcome,
    now: OffsetDateTime,
) -> Result<()> {
    let (status, next, error) = match outcome {
        ForwardOutcome::Delivered => (ForwardStatus::Delivered, now, None),
        ForwardOutcome::RetryAt { at, error } => (ForwardStatus::Pending, *at, Some(error)),
        ForwardOutcome::Dead { error } => (ForwardStatus::Dead, now, Some(error)),
    };
    let changed = c
        .prepare_cached(
            "UPDATE forwards SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3,
                    last_error = COALESCE(?4, last_error),
                    delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END
             WHERE forward_id = ?1 AND status = 'pending'",
        )?
        .execute(params![
            forward_id,
            status.as_str(),
            micros(next),
            error,
            micros(now)
        ])?;
    if changed == 0 {
        return Err(Error::NotFound);
    }
    if status == ForwardStatus::Delivered {
        c.prepare_cached(
            "UPDATE inbox SET status = 'forwarded'
             WHERE delivery_id = (SELECT delivery_id FROM forwards WHERE forward_id = ?1)",
        )?
        .execute([forward_id])?;
    }
    Ok(())
}

pub(super) fn retry_forward(
    c: &Connection,
    scope: &Scope,
    forward_id: &str,
    now: OffsetDateTime,
) -> Result<Forward> {
    let forward = read_forward(c, scope, forward_id)?;
    if forward.status == ForwardStatus::Delivered {
        return Err(Error::AlreadyExists(format!(
            "forward {forward_id} was delivered"
        )));
    }
    c.prepare_cached(
        "UPDATE forwards SET status = 'pending', attempts = 0, next_attempt_at = ?2 WHERE forward_id = ?1",
    )?
    .execute(params![forward_id, micros(now)])?;
    read_forward(c, scope, forward_id)
}

pub(super) fn retry_dead(c: &Connection, scope: &Scope, now: OffsetDateTime) -> Result<u64> {
    let changed = c
        .prepare_cached(
            "UPDATE forwards SET status = 'pending', attempts = 0, next_attempt_at = ?2
             WHERE status = 'dead' AND (?1 IS NULL OR store_id = ?1)",
        )?
        .execute(params![common::scope_store(scope), micros(now)])?;
    Ok(changed as u64)
}
