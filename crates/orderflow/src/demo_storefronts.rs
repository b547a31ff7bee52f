//! The storefront part of `orderflow demo`: three client shops of a courier company (Shopify,
//! WooCommerce, Jumpseller, from the sandbox storefronts) send their orders as signed
//! webhooks, some through a flaky network that makes Shopify re-send; orderflow takes each
//! order in once, applies the shops' rules and forwards the clean orders to the courier.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_sim::jumpseller::JumpsellerSender;
use orderflow_sim::proxy::Proxy;
use orderflow_sim::shopify::ShopifySender;
use orderflow_sim::woocommerce::WooSender;
use orderflow_sim::{Generator, RetryPolicy, SimOrder};
use serde_json::{Value, json};

/// What the courier system received.
#[derive(Debug)]
struct Courier {
    url: String,
    received: Arc<AtomicU64>,
}

async fn start_courier() -> anyhow::Result<Courier> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/orders", listener.local_addr()?);
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/orders",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Courier { url, received })
}

struct Shop {
    store_id: &'static str,
    platform: &'static str,
    secret: &'static str,
}

const SHOPS: [Shop; 3] = [
    Shop {
        store_id: "andes-outdoor",
        platform: "shopify",
        secret: "shpss_demo_andes_0123456789",
    },
    Shop {
        store_id: "casa-cafe",
        platform: "woocommerce",
        secret: "wc_demo_casa_cafe_secret",
    },
    Shop {
        store_id: "tienda-sur",
        platform: "jumpseller",
        secret: "js_demo_hooks_token_sur",
    },
];

fn rules_of(store_id: &str) -> Value {
    match store_id {
        // This shop's courier does not serve Biobío, and packs at most four items a box.
        "andes-outdoor" => json!([
            {"kind": "exclude_regions", "regions": ["BI"]},
            {"kind": "split_packages", "max_items": 4}
        ]),
        // Next-day orders go with another carrier.
        "casa-cafe" => json!([{"kind": "exclude_shipping_methods", "methods": ["next_day"]}]),
        _ => json!([]),
    }
}

pub async fn run(base: &str, token: &str, orders_per_shop: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let courier = start_courier().await?;
    for shop in &SHOPS {
        let created = http
            .post(format!("{base}/stores"))
            .bearer_auth(token)
            .json(&json!({
                "store_id": shop.store_id,
                "name": shop.store_id,
                "platform": shop.platform,
                "webhook_secret": shop.secret,
                "manage_stock": false,
                "rules": rules_of(shop.store_id),
                "destination": {"url": courier.url, "secret": "whsec_ZGVtby1jb3VyaWVyLXNpZ25pbmcta2V5"},
            }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "creating store {}: {}",
            shop.store_id,
            created.text().await.unwrap_or_default()
        );
    }

    // Shopify reaches orderflow through a network that now and then answers too late:
    // orderflow has stored the delivery, Shopify times out and re-sends the same event.
    let flaky = Proxy::start(base)
        .await
        .context("starting the flaky network")?;
    let shopify = ShopifySender::new(flaky.url(), "andes-outdoor", SHOPS[0].secret).retry(
        RetryPolicy::shopify()
            .compressed(10_000)
            .with_timeout(Duration::from_millis(300)),
    );
    let woo = WooSender::new(base, "casa-cafe", SHOPS[1].secret);
    let jumpseller = JumpsellerSender::new(base, "tienda-sur", SHOPS[2].secret);
    let mut generator = Generator::new(2026).countries(&["CL"]);
    let batches: Vec<(usize, Vec<SimOrder>)> = (0..3)
        .map(|shop| (shop, generator.orders(orders_per_shop)))
        .collect();

    let total = (orders_per_shop * 3) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} storefront orders sent {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut resent = 0u64;
    for (shop, orders) in batches {
        for (n, order) in orders.iter().enumerate() {
            let report = match shop {
                0 => {
                    if n % 25 == 0 {
                        flaky.faults().slow_next(1, Duration::from_millis(400));
                    }
                    shopify.send("orders/create", order).await
                }
                1 => woo.send("order.created", order).await,
                _ => jumpseller.send("order_paid", order).await,
            };
            resent += report.attempts.len().saturating_sub(1) as u64;
            bar.inc(1);
        }
    }
    bar.finish_with_message(format!("in {:.1} s", started.elapsed().as_secs_f64()));
    flaky.stop().await;

    // The worker and the forwarder run beside the server; wait until they are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fates = loop {
        let fates = count_fates(&http, base, token).await?;
        let waiting = fates
            .iter()
            .any(|(status, n)| *status == "received" && *n > 0);
        let forwarded = fates
            .iter()
            .find(|(status, _)| *status == "forwarded")
            .map_or(0, |(_, n)| *n);
        let accepted = fates
            .iter()
            .find(|(status, _)| *status == "accepted")
            .map_or(0, |(_, n)| *n);
        if !waiting && accepted == 0 && forwarded > 0 || Instant::now() > deadline {
            break fates;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    println!();
    println!("Storefront deliveries (GET /inbox)");
    for (status, count) in &fates {
        if *count > 0 {
            println!("  {status:<16} {count:>7}");
        }
    }
    println!("  re-sent by Shopify after a late answer: {resent} (each dropped as a duplicate)");
    let delivered = courier.received.load(Ordering::Relaxed);
    println!("Courier system received {delivered} signed orders");
    let count = |wanted: &str| {
        fates
            .iter()
            .find(|(status, _)| *status == wanted)
            .map_or(0, |(_, n)| *n)
    };
    anyhow::ensure!(
        count("received") == 0 && count("accepted") == 0,
        "the inbox did not drain within a minute"
    );
    anyhow::ensure!(count("failed") == 0, "some storefront deliveries failed");
    anyhow::ensure!(
        delivered == count("forwarded"),
        "the courier received {delivered} orders, the inbox shows {} forwarded",
        count("forwarded")
    );
    Ok(())
}

const FATES: [&str; 7] = [
    "received",
    "accepted",
    "forwarded",
    "duplicate",
    "stale",
    "rejected",
    "failed",
];

async fn count_fates(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    for status in FATES {
        let mut count = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{base}/inbox?status={status}&limit=200");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            count += page["items"].as_array().map_or(0, Vec::len) as u64;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        counts.push((status, count));
    }
    Ok(counts)
}
