//! The documents the fulfilment pipeline produces for an order, on SQLite.

use orderflow_domain::OrderId;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::read_head;
use crate::common::{from_micros, micros};
use crate::error::{Error, Result};
use crate::model::*;

/// Writes the document, replacing the order's earlier one of the same kind. Selecting the
/// order's row makes an unknown order write nothing, which tells it apart.
pub(super) fn put(
    c: &Connection,
    order_id: &OrderId,
    kind: &str,
    content_type: &str,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<()> {
    // SQLite needs the WHERE to tell the upsert's ON CONFLICT from a join's ON.
    let written = c
        .prepare_cached(
            "INSERT INTO documents (order_id, kind, content_type, body, created_at)
             SELECT order_id, ?2, ?3, ?4, ?5 FROM orders WHERE order_id = ?1
             ON CONFLICT (order_id, kind) DO UPDATE SET
                 content_type = excluded.content_type, body = excluded.body,
                 created_at = excluded.created_at",
        )?
        .execute(params![
            order_id.as_str(),
            kind,
            content_type,
            body,
            micros(now)
        ])?;
    if written == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

pub(super) fn get(
    c: &Connection,
    scope: &Scope,
    order_id: &OrderId,
    kind: &str,
) -> Result<Document> {
    read_head(c, scope, order_id)?;
    let (content_type, body, created_at) = c
        .prepare_cached(
            "SELECT content_type, body, created_at FROM documents WHERE order_id = ?1 AND kind = ?2",
        )?
        .query_row([order_id.as_str(), kind], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .optional()?
        .ok_or(Error::NotFound)?;
    Ok(Document {
        kind: kind.to_owned(),
        content_type,
        body,
        created_at: from_micros(created_at)?,
    })
}

pub(super) fn list(c: &Connection, scope: &Scope, order_id: &OrderId) -> Result<Vec<DocumentInfo>> {
    read_head(c, scope, order_id)?;
    // length() of a BLOB is read from the record header, without loading the body.
    let mut statement = c.prepare_cached(
        "SELECT kind, content_type, length(body), created_at FROM documents WHERE order_id = ?1 ORDER BY kind",
    )?;
    let rows = statement.query_map([order_id.as_str()], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (kind, content_type, size, created_at) = row?;
        Ok(DocumentInfo {
            kind,
            content_type,
            size: u64::try_from(size)
                .map_err(|_| Error::Corrupt(format!("document size {size}")))?,
            created_at: from_micros(created_at)?,
        })
    })
    .collect()
}
