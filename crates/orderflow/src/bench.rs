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
    /// ~3 KB signed Shopify webhook deliveries for a courier's client store: acknowledgements,
    /// then how fast the inbox becomes orders.
    Ingest,
    /// Orders through the whole order pipeline (stock, payment, slip, e-mail, shipment,
    /// e-mail) against in-process sandboxes that answer at once.
    Pipeline,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(value_enum)]
    pub(crate) scenario: Scenario,
    /// A PostgreSQL server to benchmark on (a scratch database is created on it and dropped);
    /// without it, a fresh SQLite file.
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Seconds of load, for the floor and for the scenario each.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    #[arg(long, default_value_t = 10_000)]
    pub(crate) skus: usize,
    /// `pipeline`: orders to carry through the pipeline.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) orders: u64,
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

pub(crate) fn sku(i: usize) -> String {
    format!("SKU-{i:06}")
}

async fn measure(args: &BenchArgs, url: &str, backend: &str) -> anyhow::Result<String> {
    let store = orderflow_store::open(url)
        .await
        .context("opening the benchmark database")?;
    let skus = match args.scenario {
        Scenario::Orders => args.skus.max(2),
        Scenario::OrdersHot | Scenario::Ingest => 1,
        Scenario::Pipeline => args.skus.max(2),
    };
    seed(store.as_ref(), skus).await?;
    match args.scenario {
        Scenario::Ingest => return measure_ingest(args, store, backend).await,
        Scenario::Pipeline => return crate::bench_pipeline::measure(args, store, backend).await,
        Scenario::Orders | Scenario::OrdersHot => {}
    }
    let server = Running::start(store.clone(), SocketAddr::from(([127, 0, 0, 1], 0)), None).await?;
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
        "scenario": match args.scenario { Scenario::Orders => "orders", _ => "orders-hot" },
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

const INGEST_STORE: &str = "bench-client";
const INGEST_SECRET: &str = "shpss_bench_0123456789abcdef";

async fn measure_ingest(
    args: &BenchArgs,
    store: Arc<dyn Store>,
    backend: &str,
) -> anyhow::Result<String> {
    let store_id: StoreId = INGEST_STORE.parse()?;
    store
        .create_store(orderflow_store::NewStore {
            store_id: store_id.clone(),
            name: "Courier client".into(),
            platform: Some("shopify".into()),
            settings: orderflow_store::StoreSettings {
                webhook_secret: Some(INGEST_SECRET.into()),
                manage_stock: false,
                ..Default::default()
            },
            now: time::OffsetDateTime::now_utc(),
        })
        .await?;
    let server = Running::start(store.clone(), SocketAddr::from(([127, 0, 0, 1], 0)), None).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let duration = Duration::from_secs(args.seconds);
    let base = Arc::new(server.url());
    let floor = {
        let (client, base) = (client.clone(), base.clone());
        drive(args.concurrency, duration, move |_, _| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                matches!(client.get(format!("{base}/healthz")).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await
    };

    let started = std::time::Instant::now();
    let mut acks = {
        let (client, base) = (client.clone(), base.clone());
        drive(args.concurrency, duration, move |sender, n| {
            let (client, base) = (client.clone(), base.clone());
            let id = 5_000_000_000_000_000_000u64 + (sender as u64) * 100_000_000 + n;
            let body = shopify_delivery(id);
            let signature = orderflow_connectors::signature::base64_hmac_sha256(
                INGEST_SECRET.as_bytes(),
                body.as_bytes(),
            );
            async move {
                let sent = client
                    .post(format!("{base}/webhooks/shopify/{INGEST_STORE}"))
                    .header("content-type", "application/json")
                    .header("x-shopify-hmac-sha256", signature)
                    .header("x-shopify-topic", "orders/create")
                    .header("x-shopify-shop-domain", "bench.myshopify.com")
                    .header("x-shopify-api-version", "2024-01")
                    .header("x-shopify-event-id", format!("evt-{id}"))
                    .header("x-shopify-webhook-id", format!("wh-{id}"))
                    .body(body)
                    .send()
                    .await;
                matches!(sent, Ok(r) if r.status().is_success())
            }
        })
        .await
    };
    let burst_ended = std::time::Instant::now();
    // The inbox drains when no delivery is left waiting for the worker.
    let waiting = orderflow_store::InboxFilter {
        status: Some(orderflow_store::DeliveryStatus::Received),
        limit: 1,
        ..Default::default()
    };
    let drain_deadline = burst_ended + Duration::from_secs(120);
    while !store
        .list_deliveries(&orderflow_store::Scope::Everything, waiting.clone())
        .await?
        .items
        .is_empty()
    {
        anyhow::ensure!(
            std::time::Instant::now() < drain_deadline,
            "the inbox did not drain within 120 s of the burst"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = std::time::Instant::now();
    server.stop().await?;
    let accepted =
        count_deliveries(store.as_ref(), orderflow_store::DeliveryStatus::Accepted).await?;
    let failed = count_deliveries(store.as_ref(), orderflow_store::DeliveryStatus::Failed).await?;

    let floor_rate = floor.per_second();
    let line = json!({
        "scenario": "ingest",
        "backend": backend,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "body_bytes": shopify_delivery(0).len(),
        "acks": acks.count(),
        "acks_per_s": round(acks.per_second()),
        "ack_p50_ms": round(acks.quantile_ms(0.50)),
        "ack_p99_ms": round(acks.quantile_ms(0.99)),
        "errors": acks.errors,
        "orders": accepted,
        "failed": failed,
        "orders_per_s": round(accepted as f64 / drained.duration_since(started).as_secs_f64()),
        "drain_after_burst_s": round(drained.duration_since(burst_ended).as_secs_f64()),
        "floor_healthz_per_s": round(floor_rate),
        "ratio_to_floor": round(acks.per_second() / floor_rate.max(1e-9)),
    });
    Ok(line.to_string())
}

async fn count_deliveries(
    store: &dyn Store,
    status: orderflow_store::DeliveryStatus,
) -> anyhow::Result<u64> {
    let mut count = 0;
    let mut filter = orderflow_store::InboxFilter {
        status: Some(status),
        limit: 200,
        ..Default::default()
    };
    loop {
        let page = store
            .list_deliveries(&orderflow_store::Scope::Everything, filter.clone())
            .await?;
        count += page.items.len() as u64;
        match page.items.last() {
            Some(last) if page.has_more => filter.before = Some(last.delivery_id.clone()),
            _ => return Ok(count),
        }
    }
}

/// A Shopify `orders/create` body of about 3 KB, shaped like the platform's (ids beyond 2^53,
/// money as decimal strings, addresses, three lines, shipping and tax lines).
fn shopify_delivery(id: u64) -> String {
    let line = |n: u64, sku: &str, price: &str| {
        format!(
            r#"{{"id":{line_id},"variant_id":{variant},"product_id":{product},"title":"Bench product {n}","variant_title":"Default","name":"Bench product {n} - Default","sku":"{sku}","vendor":"orderflow","quantity":{quantity},"price":"{price}","grams":450,"requires_shipping":true,"taxable":true,"gift_card":false,"fulfillment_service":"manual","fulfillment_status":null,"total_discount":"0.00","properties":[{{"name":"gift_wrap","value":"no"}}],"tax_lines":[{{"title":"IVA","price":"1.90","rate":0.19}}]}}"#,
            line_id = id % 1_000_000_000 * 10 + n,
            variant = 39_072_856 + n,
            product = 632_910_392 + n,
            quantity = 1 + n % 3,
        )
    };
    let address = r#"{"first_name":"Ana","last_name":"Rojas","name":"Ana Rojas","company":null,"address1":"Avenida Libertador Bernardo O'Higgins 1449","address2":"Depto 1203","city":"Santiago","province":"Región Metropolitana","province_code":"RM","zip":"8320000","country":"Chile","country_code":"CL","phone":"+56 9 8765 4321","latitude":-33.4489,"longitude":-70.6693}"#;
    format!(
        r##"{{"id":{id},"admin_graphql_api_id":"gid://shopify/Order/{id}","name":"#{number}","order_number":{number},"number":{number},"email":"ana.rojas@example.com","contact_email":"ana.rojas@example.com","phone":"+56987654321","currency":"CLP","presentment_currency":"CLP","financial_status":"paid","fulfillment_status":null,"confirmed":true,"test":false,"created_at":"2026-11-22T10:00:00-03:00","updated_at":"2026-11-22T10:00:05-03:00","processed_at":"2026-11-22T10:00:00-03:00","cancelled_at":null,"cancel_reason":null,"closed_at":null,"browser_ip":"190.98.1.1","buyer_accepts_marketing":false,"landing_site":"/collections/all","referring_site":"https://www.google.com/","source_name":"web","tags":"bench, black-friday","note":"Please leave the parcel with the concierge.","note_attributes":[{{"name":"delivery_window","value":"09:00-13:00"}}],"subtotal_price":"39990","total_line_items_price":"39990","total_price":"43980","total_tax":"0","total_discounts":"0","total_weight":1350,"discount_codes":[],"customer":{{"id":{customer},"email":"ana.rojas@example.com","first_name":"Ana","last_name":"Rojas","phone":"+56987654321","orders_count":3,"state":"enabled","verified_email":true,"tags":""}},"billing_address":{address},"shipping_address":{address},"line_items":[{l1},{l2},{l3}],"shipping_lines":[{{"id":271878346596884015,"code":"express","title":"Express 24h","price":"3990","source":"shopify","carrier_identifier":null,"tax_lines":[]}}],"tax_lines":[],"fulfillments":[],"refunds":[]}}"##,
        number = id % 1_000_000,
        customer = 115_310_627_314_723_954u64,
        l1 = line(1, "BENCH-MUG", "9990"),
        l2 = line(2, "BENCH-TEA", "4990"),
        l3 = line(3, "BENCH-KETTLE", "14990"),
    )
}

pub(crate) fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// A cheap pseudo-random spread of SKUs per worker and iteration (no shared RNG state).
fn order_body(scenario: Scenario, skus: usize, worker: usize, n: u64) -> String {
    match scenario {
        Scenario::OrdersHot | Scenario::Ingest | Scenario::Pipeline => format!(
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
