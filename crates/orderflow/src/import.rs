//! `orderflow import products <csv>`: bulk catalogue import with a progress bar. Every row is
//! validated before anything is written, so a bad file changes nothing.

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
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let now = time::OffsetDateTime::now_utc();
    let mut products = Vec::new();
    for (index, row) in reader.deserialize::<Row>().enumerate() {
        // Line 1 is the header.
        let line = index + 2;
        let row = row.with_context(|| format!("line {line}"))?;
        let body = PutProductBody {
            name: row.name,
            category: row.category,
            price: row.price,
            currency: row.currency,
            on_hand: row.on_hand,
        };
        products.push(
            product_input(&row.product_id, body, now)
                .map_err(|e| anyhow::anyhow!("line {line}: {e}"))?,
        );
    }
    let bar = ProgressBar::new(products.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} products {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for batch in products.chunks(BATCH) {
        bar.inc(store.import_products(store_id, batch.to_vec()).await? as u64);
    }
    bar.finish();
    Ok(products.len())
}
