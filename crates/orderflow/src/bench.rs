//! `orderflow bench <scenario>`: throughput and latency against a freshly started server,
//! next to the same run's floor (`GET /healthz` with the same client and concurrency).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use orderflow_domain::{ProductId, StoreId};
use orderflow_store::scratch::ScratchDatabase;
use orderflow_store::{ProductInput, Store};
use serde_json::json;

use crate::load::drive;
use crate::server::Running;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scenario {
    /// 2-line orders over `--skus` products.
    Orders,
    /// 1-line orders all on one product, its stock replenished as it runs low.
    OrdersHot,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(value_enum)]
    scenario: Scenario,
    /// A PostgreSQL server to benchmark on (a scratch database is created on it and dropped);
    /// without it, a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of load, for the floor and for the scenario each.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 10_000)]
    skus: usize,
}

const STOCK_PER_SKU: i64 = 1_000_000_000;

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let scratch_dir = tempfile_dir()?;
    let (url, scratch_db, backend) = match &args.database_url {
        Some(admin_url) => {
            let db = ScratchDatabase::create(admin_url, "orderflow_bench", rand::random()).await?;
            (db.url().to_owned(), Some(db), "postgres")
        }
        None => (
            format!("sqlite://{}", scratch_dir.join("bench.db").display()),
            None,
            "sqlite",
        ),
    };
    let outcome = measure(&args, &url, backend).await;
    if let Some(db) = scratch_db {
        db.drop().await?;
    }
    let _ = std::fs::remove_dir_all(&scratch_dir);
    println!("{}", outcome?);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("orderflow-bench-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn seed(store: &dyn Store, skus: usize) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let products: Vec<ProductInput> = (0..skus)
        .map(|i| {
            Ok(ProductInput {
                product_id: sku(i).parse()?,
                name: format!("Bench product {i}"),
                category: Some("bench".into()),
                price_minor: 1_000 + i as i64,
                currency: "EUR".parse()?,
                on_hand: STOCK_PER_SKU,
                now,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for chunk in products.chunks(2_000) {
        store
            .import_products(&StoreId::default_store(), chunk.to_vec())
            .await?;
    }
    Ok(())
}

fn sku(i: usize) -> String {
    format!("SKU-{i:06}")
}

async fn measure(args: &BenchArgs, url: &str, backend: &str) -> anyhow::Result<String> {
    let store = orderflow_store::open(url)
        .await
        .context("opening the benchmark database")?;
    let skus = match args.scenario {
        Scenario::Orders => args.skus.max(2),
        Scenario::OrdersHot => 1,
    };
    seed(store.as_ref(), skus).await?;
    let server = Running::start(store.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let duration = Duration::from_secs(args.seconds);

    let base = Arc::new(server.url());
    let mut floor = {
        let (client, base) = (client.clone(), base.clone());
        drive(args.concurrency, duration, move |_, _| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                matches!(client.get(format!("{base}/healthz")).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await
    };

    let replenisher = matches!(args.scenario, Scenario::OrdersHot)
        .then(|| tokio::spawn(replenish(store.clone())));
    let token = Arc::new(format!("Bearer {}", server.admin_token));
    let scenario = args.scenario;
    let mut orders = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        drive(args.concurrency, duration, move |worker, n| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let body = order_body(scenario, skus, worker, n);
            async move {
                let sent = client
                    .post(format!("{base}/orders"))
                    .header("authorization", token.as_str())
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                matches!(sent, Ok(r) if r.status() == reqwest::StatusCode::CREATED)
            }
        })
        .await
    };
    if let Some(replenisher) = replenisher {
        replenisher.abort();
    }
    server.stop().await?;

    let floor_rate = floor.per_second();
    let line = json!({
        "scenario": match args.scenario { Scenario::Orders => "orders", Scenario::OrdersHot => "orders-hot" },
        "backend": backend,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "orders": orders.count(),
        "orders_per_s": round(orders.per_second()),
        "p50_ms": round(orders.quantile_ms(0.50)),
        "p99_ms": round(orders.quantile_ms(0.99)),
        "errors": orders.errors,
        "floor_healthz_per_s": round(floor_rate),
        "floor_p50_ms": round(floor.quantile_ms(0.50)),
        "floor_p99_ms": round(floor.quantile_ms(0.99)),
        "ratio_to_floor": round(orders.per_second() / floor_rate.max(1e-9)),
    });
    Ok(line.to_string())
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// A cheap pseudo-random spread of SKUs per worker and iteration (no shared RNG state).
fn order_body(scenario: Scenario, skus: usize, worker: usize, n: u64) -> String {
    match scenario {
        Scenario::OrdersHot => format!(
            r#"{{"products":[{{"product_id":"{}","item_count":1}}]}}"#,
            sku(0)
        ),
        Scenario::Orders => {
            let mix = (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let first = (mix % skus as u64) as usize;
            let second = (first + 1 + ((mix >> 32) % (skus as u64 - 1)) as usize) % skus;
            format!(
                r#"{{"products":[{{"product_id":"{}","item_count":1}},{{"product_id":"{}","item_count":2}}]}}"#,
                sku(first),
                sku(second)
            )
        }
    }
}

/// Keeps the hot product from running out, as a warehouse receiving stock would.
async fn replenish(store: Arc<dyn Store>) {
    let Ok(product_id) = sku(0).parse::<ProductId>() else {
        return;
    };
    let store_id = StoreId::default_store();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(product) = store.get_product(&store_id, &product_id).await
            && product.available() < STOCK_PER_SKU / 2
        {
            let _ = store
                .adjust_stock(&store_id, &product_id, STOCK_PER_SKU)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_line_orders_never_repeat_a_product() {
        for worker in 0..64 {
            for n in 0..200 {
                let body = order_body(Scenario::Orders, 10, worker, n);
                let parsed: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
                let products = parsed["products"].as_array().expect("array");
                assert_ne!(
                    products[0]["product_id"], products[1]["product_id"],
                    "{body}"
                );
            }
        }
    }
}
