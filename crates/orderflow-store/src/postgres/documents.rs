//! The documents the fulfilment pipeline produces for an order, on PostgreSQL. Each call is one
//! statement, so one implicit transaction: reading the order's owner with the document is what
//! scopes it.

use deadpool_postgres::Client;
use orderflow_domain::{CustomerId, OrderId, StoreId};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::common::{from_micros, micros, parse};
use crate::error::{Error, Result};
use crate::model::*;

/// Selecting the order's row makes an unknown order write nothing, which tells it apart.
const PUT: &str = concat!(
    "INSERT INTO documents (order_id, kind, content_type, body, created_at)
     SELECT order_id, $2, $3, $4, ",
    at_micros!("$5"),
    " FROM orders WHERE order_id = $1
     ON CONFLICT (order_id, kind) DO UPDATE SET
         content_type = excluded.content_type, body = excluded.body,
         created_at = excluded.created_at"
);
// `micros_of!` names its column after the expression, which cannot be qualified.
const GET: &str = "SELECT o.store_id, o.customer_id, d.content_type, d.body,
            (EXTRACT(EPOCH FROM d.created_at) * 1000000)::BIGINT AS created_at
     FROM orders o JOIN documents d ON d.order_id = o.order_id
     WHERE o.order_id = $1 AND d.kind = $2";
/// One row per document, or a single row of NULLs for an order without any, so that one
/// statement answers both "may the caller see the order" and "what does it have".
const LIST: &str = "SELECT o.store_id, o.customer_id, d.kind, d.content_type,
            octet_length(d.body)::BIGINT AS size,
            (EXTRACT(EPOCH FROM d.created_at) * 1000000)::BIGINT AS created_at
     FROM orders o LEFT JOIN documents d ON d.order_id = o.order_id
     WHERE o.order_id = $1 ORDER BY d.kind";

pub(super) async fn put(
    client: &Client,
    order_id: &OrderId,
    kind: &str,
    content_type: &str,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<()> {
    let statement = client.prepare_cached(PUT).await?;
    let written = client
        .execute(
            &statement,
            &[
                &order_id.as_str(),
                &kind,
                &content_type,
                &body,
                &micros(now),
            ],
        )
        .await?;
    if written == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

pub(super) async fn get(
    client: &Client,
    scope: &Scope,
    order_id: &OrderId,
    kind: &str,
) -> Result<Document> {
    let statement = client.prepare_cached(GET).await?;
    let row = client
        .query_opt(&statement, &[&order_id.as_str(), &kind])
        .await?
        .ok_or(Error::NotFound)?;
    admit(scope, &row)?;
    Ok(Document {
        kind: kind.to_owned(),
        content_type: row.try_get("content_type")?,
        body: row.try_get("body")?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

pub(super) async fn list(
    client: &Client,
    scope: &Scope,
    order_id: &OrderId,
) -> Result<Vec<DocumentInfo>> {
    let statement = client.prepare_cached(LIST).await?;
    let rows = client.query(&statement, &[&order_id.as_str()]).await?;
    let first = rows.first().ok_or(Error::NotFound)?;
    admit(scope, first)?;
    let mut documents = Vec::with_capacity(rows.len());
    for row in &rows {
        // The LEFT JOIN's row of NULLs: the order has no documents.
        let Some(kind) = row.try_get::<_, Option<String>>("kind")? else {
            continue;
        };
        let size: i64 = row.try_get("size")?;
        documents.push(DocumentInfo {
            kind,
            content_type: row.try_get("content_type")?,
            size: u64::try_from(size)
                .map_err(|_| Error::Corrupt(format!("document size {size}")))?,
            created_at: from_micros(row.try_get("created_at")?)?,
        });
    }
    Ok(documents)
}

/// Whether `scope` may see the order a row belongs to; an order it may not see does not exist
/// for it.
fn admit(scope: &Scope, row: &Row) -> Result<()> {
    let store_id: StoreId = parse("store_id", row.try_get("store_id")?)?;
    let customer_id: Option<CustomerId> = row
        .try_get::<_, Option<&str>>("customer_id")?
        .map(|c| parse("customer_id", c))
        .transpose()?;
    if !scope.admits(&store_id, customer_id.as_ref()) {
        return Err(Error::NotFound);
    }
    Ok(())
}
