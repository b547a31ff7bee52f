//! `orderflow import products <csv>`: bulk catalogue import with a progress bar.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_domain::StoreId;
use orderflow_server::api::products::{PutProductBody, product_input};
use orderflow_store::Store;
use serde::Deserialize;

/// Rows per transaction: large enough to amortise the commit, small enough to show progress.
const BATCH: usize = 1_000;

#[derive(Debug, Deserialize)]
struct Row {
    product_id: String,
    name: String,
    #[serde(default)]
    category: Option<String>,
    price: i64,
    currency: String,
    on_hand: i64,
}

pub async fn products(store: &dyn Store, store_id: &StoreId, path: &Path) -> anyhow::Result<usize> {
    let size = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let now = time::OffsetDateTime::now_utc();
    let mut batch = Vec::with_capacity(BATCH);
    let mut written = 0;
    let headers = reader.byte_headers().context("reading the header line")?.clone();
    let mut record = csv::ByteRecord::new();
    // Line 1 is the header.
    let mut line = 1;
    while reader.read_byte_record(&mut record).with_context(|| format!("line {}", line + 1))? {
        line += 1;
        let row: Row = record.deserialize(Some(&headers)).with_context(|| format!("line {line}"))?;
        let body = PutProductBody {
            name: row.name,
            category: row.category,
            price: row.price,
            currency: row.currency,
            on_hand: row.on_hand,
        };
        let input = product_input(&row.product_id, body, now).map_err(|e| anyhow::anyhow!("line {line}: {e}"))?;
        batch.push(input);
        if batch.len() == BATCH {
            written += store.import_products(store_id, std::mem::take(&mut batch)).await?;
            bar.set_position(reader.position().byte());
            bar.set_message(format!("{written} products"));
        }
    }
    if !batch.is_empty() {
        written += store.import_products(store_id, batch).await?;
    }
    bar.finish_with_message(format!("{written} products"));
    Ok(written)
}
