//! `orderflow demo`: a fresh embedded database with a seeded catalogue, the server, and a
//! stream of orders placed, edited and cancelled through the real HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_domain::StoreId;
use orderflow_store::ProductInput;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::engine::{Engine, EngineArgs};
use crate::server::Running;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to serve; if the port is taken, a free one is used instead.
    #[arg(long, env = "ORDERFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The demo database file; it is recreated at every run.
    #[arg(long, default_value = "orderflow-demo.db")]
    database: PathBuf,
    /// Orders to place.
    #[arg(long, default_value_t = 2_000)]
    orders: u64,
    /// Clients placing orders at once.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Orders of each sandbox storefront: sent as webhooks (Shopify, WooCommerce, Jumpseller),
    /// as VTEX hooks, or pulled (PrestaShop, Magento).
    #[arg(long, default_value_t = 100)]
    storefront_orders: usize,
    /// Stop after the stream of orders instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "coffee",
        &[
            "Espresso beans 1 kg",
            "Filter roast 500 g",
            "Decaf 250 g",
            "Cold brew pack",
        ],
    ),
    ("tea", &["Sencha 100 g", "Earl Grey 100 g", "Rooibos 200 g"]),
    (
        "equipment",
        &["Hand grinder", "Pour-over kettle", "Milk jug", "Scale"],
    ),
    ("mugs", &["Stoneware mug", "Glass cup", "Travel tumbler"]),
];

/// Units of each scarce product that arrive after the stream of orders.
const SCARCE_RESTOCK: i64 = 100;

#[derive(Debug, Default)]
struct Tally {
    placed: AtomicU64,
    backordered: AtomicU64,
    refused: AtomicU64,
    edited: AtomicU64,
    cancelled: AtomicU64,
    failed: AtomicU64,
}

fn catalogue() -> anyhow::Result<Vec<ProductInput>> {
    let now = time::OffsetDateTime::now_utc();
    let mut products = Vec::new();
    for (c, (category, names)) in CATEGORIES.iter().enumerate() {
        for (n, name) in names.iter().enumerate() {
            for size in 0..10 {
                let index = products.len();
                products.push(ProductInput {
                    product_id: format!("{}-{:02}-{size}", &category[..3].to_uppercase(), n)
                        .parse()?,
                    name: format!("{name} #{size}"),
                    category: Some((*category).to_owned()),
                    price_minor: 500 + (c as i64 * 700) + (n as i64 * 150) + size,
                    currency: "EUR".parse()?,
                    // A few scarce products so that refusals and backorders show up.
                    on_hand: if index % 13 == 0 { 5 } else { 400 },
                    now,
                });
            }
        }
    }
    Ok(products)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Backordered orders look for stock often, so the demo shows them complete.
    let engine = EngineArgs {
        backorder_poke_ms: 200,
        ..EngineArgs::sandboxed()
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut path = args.database.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    let url = format!("sqlite://{}", args.database.display());
    let store = orderflow_store::open(&url)
        .await
        .context("creating the demo database")?;
    let products = catalogue()?;
    store
        .import_products(&StoreId::default_store(), products.clone())
        .await?;
    println!(
        "Seeded {} products into {}",
        products.len(),
        args.database.display()
    );

    let server = match Running::start(store.clone(), args.listen, Some(&engine)).await {
        Ok(server) => server,
        Err(_) => {
            Running::start(
                store.clone(),
                SocketAddr::new(args.listen.ip(), 0),
                Some(&engine),
            )
            .await?
        }
    };
    let base = server.url();
    println!("Serving the API at {base} (API reference: {base}/docs)");
    if let Some(engine) = &server.engine {
        misbehave(engine);
    }

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    stream_orders(&args, &base, &server.admin_token, &products, &tally).await?;
    let seconds = started.elapsed().as_secs_f64();
    let pipeline = match &server.engine {
        Some(engine) => {
            // A delivery to the warehouse: backordered orders waiting for the scarce products
            // are served, oldest first, and run on to shipped.
            for product in products.iter().filter(|p| p.on_hand < SCARCE_RESTOCK) {
                store
                    .adjust_stock(
                        &StoreId::default_store(),
                        &product.product_id,
                        SCARCE_RESTOCK,
                    )
                    .await?;
            }
            Some(follow_pipeline(store.as_ref(), engine).await?)
        }
        None => None,
    };

    let audit = store.audit_reservations(&StoreId::default_store()).await?;
    let balanced = audit
        .iter()
        .all(|a| a.reserved == a.reserved_by_live_orders && a.reserved <= a.on_hand);
    let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
    println!();
    println!(
        "Orders placed      {:>7}  ({:.0}/s)",
        count(&tally.placed),
        count(&tally.placed) as f64 / seconds
    );
    println!("  backordered      {:>7}", count(&tally.backordered));
    println!("  edited           {:>7}", count(&tally.edited));
    println!("  cancelled        {:>7}", count(&tally.cancelled));
    println!(
        "Refused (409)      {:>7}  not enough stock",
        count(&tally.refused)
    );
    println!("Failed             {:>7}", count(&tally.failed));
    println!(
        "Stock books        {}",
        if balanced {
            "balanced: reserved = units of open orders"
        } else {
            "UNBALANCED"
        }
    );
    if let Some(pipeline) = &pipeline {
        pipeline.print();
    }
    // Held until the demo ends: the server's scheduled pulls call these sandboxes.
    let _sandboxes = if args.storefront_orders > 0 {
        Some(
            crate::demo_storefronts::run(
                &base,
                &server.admin_token,
                store.clone(),
                args.storefront_orders,
            )
            .await?,
        )
    } else {
        None
    };
    println!();
    println!(
        "API:        {base}/orders   (Authorization: Bearer {})",
        server.admin_token
    );
    println!("Inbox:      {base}/inbox");
    println!("Reference:  {base}/docs");
    println!("Metrics:    {base}/metrics");
    if !balanced || count(&tally.failed) > 0 {
        server.stop().await?;
        anyhow::bail!("the demo found a problem (see above)");
    }
    if args.exit {
        return server.stop().await;
    }
    println!("\nServing until Ctrl-C.");
    crate::server::shutdown_signal().await;
    server.stop().await
}

async fn stream_orders(
    args: &DemoArgs,
    base: &str,
    admin_token: &str,
    products: &[ProductInput],
    tally: &Arc<Tally>,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new(args.orders).with_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} orders  {per_sec}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let ids: Arc<Vec<String>> =
        Arc::new(products.iter().map(|p| p.product_id.to_string()).collect());
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, next, ids, tally, bar) = (
            client.clone(),
            next.clone(),
            ids.clone(),
            tally.clone(),
            bar.clone(),
        );
        let (base, auth, total) = (
            base.to_owned(),
            format!("Bearer {admin_token}"),
            args.orders,
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                one_customer(&client, &base, &auth, &ids, n, &tally).await;
                bar.inc(1);
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    bar.finish_with_message("done");
    Ok(())
}

/// One customer's visit: place an order, and now and then change or cancel it.
async fn one_customer(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    ids: &[String],
    n: u64,
    tally: &Tally,
) {
    let pick = |k: u64| {
        ids[((n.wrapping_mul(2_654_435_761) + k * 97) % ids.len() as u64) as usize].clone()
    };
    let lines = 1 + n % 3;
    let mut chosen: Vec<String> = (0..lines).map(pick).collect();
    chosen.dedup();
    let body = json!({
        "products": chosen.iter().map(|p| json!({"product_id": p, "item_count": 1 + n % 2})).collect::<Vec<_>>(),
        "customer": {"customer_id": format!("cust-{}", n % 300), "name": format!("Customer {}", n % 300), "email": format!("c{}@example.com", n % 300)},
        "shipping_address": {"line1": "Av. Providencia 1234", "city": "Santiago", "region": "RM", "postal_code": "7500000", "country": "CL"},
        "allow_partial": n.is_multiple_of(10),
        // One customer in 25 pays with a card the provider declines: the pipeline releases
        // the stock, voids nothing (nothing was held) and tells the customer.
        "payment_method": if n.is_multiple_of(25) { "pm_card_chargeDeclined" } else if n.is_multiple_of(7) { "cash_on_delivery" } else { "pm_card_visa" },
    });
    let placed = client
        .post(format!("{base}/orders"))
        .header("authorization", auth)
        .json(&body)
        .send()
        .await;
    let response = match placed {
        Ok(response) => response,
        Err(_) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    match response.status() {
        StatusCode::CREATED => {}
        StatusCode::CONFLICT => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        _ => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    tally.placed.fetch_add(1, Ordering::Relaxed);
    let Ok(receipt) = response.json::<Value>().await else {
        return;
    };
    if receipt["order_status"] == "backordered" {
        tally.backordered.fetch_add(1, Ordering::Relaxed);
    }
    let Some(order_id) = receipt["order_id"].as_str() else {
        return;
    };
    let url = format!("{base}/orders/{order_id}");
    if n.is_multiple_of(17) {
        let edit = json!({"products": [{"product_id": pick(5), "item_count": 1}]});
        if let Ok(r) = client
            .patch(&url)
            .header("authorization", auth)
            .json(&edit)
            .send()
            .await
            && r.status().is_success()
        {
            tally.edited.fetch_add(1, Ordering::Relaxed);
        }
    }
    if n.is_multiple_of(11)
        && let Ok(r) = client
            .delete(&url)
            .header("authorization", auth)
            .send()
            .await
        && r.status().is_success()
    {
        tally.cancelled.fetch_add(1, Ordering::Relaxed);
    }
}

/// Makes the sandboxes fail now and then, as real providers do, so that retries show.
fn misbehave(engine: &Engine) {
    if let Some(payments) = &engine.sandboxes.payments {
        payments
            .faults()
            .on("POST /v1/payment_intents")
            .fail(25, 503);
    }
    if let Some(carrier) = &engine.sandboxes.carrier {
        carrier
            .faults()
            .on("POST /v2/shipments")
            .rate_limit(15, std::time::Duration::from_millis(300));
    }
    if let Some(mail) = &engine.sandboxes.mail {
        mail.faults().fail_next(10, 451);
    }
}

/// What the order pipeline did with the demo's orders.
#[derive(Debug, Default)]
struct PipelineTally {
    runs: usize,
    succeeded: usize,
    failed: usize,
    cancelled: usize,
    failed_attempts: usize,
    emails: usize,
    alerts: usize,
    seconds: f64,
}

impl PipelineTally {
    fn print(&self) {
        println!();
        println!(
            "Workflow runs      {:>7}  (drained {:.1} s after the last order)",
            self.runs, self.seconds
        );
        println!(
            "  shipped          {:>7}  label, packing slip and two e-mails each",
            self.succeeded
        );
        println!(
            "  compensated      {:>7}  a step failed for good: stock released, customer told",
            self.failed
        );
        println!("  cancelled        {:>7}  by the customer", self.cancelled);
        println!(
            "Failed attempts    {:>7}  declined cards, and sandbox failures retried on schedule",
            self.failed_attempts
        );
        println!(
            "E-mails delivered  {:>7}  to the demo's SMTP sink",
            self.emails
        );
        println!(
            "Alerts             {:>7}  to operations, in the demo's Slack sink",
            self.alerts
        );
    }
}

/// Waits for every run to finish, with a progress bar, then counts what happened.
async fn follow_pipeline(
    store: &dyn orderflow_store::Store,
    engine: &Engine,
) -> anyhow::Result<PipelineTally> {
    use orderflow_store::{RunFilter, RunStatus, Scope};
    let started = Instant::now();
    let all = |status: Option<RunStatus>| RunFilter {
        status,
        limit: 200,
        ..Default::default()
    };
    let count = |status: Option<RunStatus>| async move {
        let mut filter = all(status);
        let mut runs = Vec::new();
        loop {
            let page = store.list_runs(&Scope::Everything, filter.clone()).await?;
            filter.before = page.items.last().map(|r| r.run_id.clone());
            let more = page.has_more;
            runs.extend(page.items);
            if !more {
                return anyhow::Ok(runs);
            }
        }
    };
    let total = count(None).await?.len() as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} runs finished  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let running = count(Some(RunStatus::Running)).await?.len() as u64;
        bar.set_position(total - running.min(total));
        if running == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "{running} runs were still running after 5 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bar.finish_with_message("done");
    let runs = count(None).await?;
    let mut tally = PipelineTally {
        runs: runs.len(),
        seconds: started.elapsed().as_secs_f64(),
        ..PipelineTally::default()
    };
    for run in &runs {
        match run.status {
            RunStatus::Succeeded => tally.succeeded += 1,
            RunStatus::Failed => tally.failed += 1,
            RunStatus::Cancelled => tally.cancelled += 1,
            RunStatus::Running => {}
        }
        let detail = store.get_run(&Scope::Everything, &run.run_id).await?;
        tally.failed_attempts += detail
            .steps
            .iter()
            .flat_map(|s| &s.history)
            .filter(|a| a.outcome.as_deref() == Some("failed"))
            .count();
    }
    tally.emails = engine
        .sandboxes
        .mail
        .as_ref()
        .map_or(0, |m| m.messages().len());
    Ok(tally)
}
