//! The storefront part of `orderflow demo`: six client shops of a courier company, one per
//! platform, from the sandbox storefronts. Shopify, WooCommerce and Jumpseller send their
//! orders as signed webhooks (Shopify through a flaky network that makes it re-send), VTEX
//! sends thin hooks whose orders orderflow fetches from the OMS API, and PrestaShop and
//! Magento, which have no webhooks, are pulled from. orderflow takes each order in once,
//! applies the shops' rules and forwards the clean orders to the courier.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use orderflow_domain::StoreId;
use orderflow_intake::pull::{PullConfig, Puller};
use orderflow_sim::jumpseller::JumpsellerSender;
use orderflow_sim::proxy::Proxy;
use orderflow_sim::serve::SimServer;
use orderflow_sim::shopify::ShopifySender;
use orderflow_sim::vtex::VtexHookSender;
use orderflow_sim::woocommerce::WooSender;
use orderflow_sim::{Generator, RetryPolicy, SimOrder};
use orderflow_store::Store;
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

/// How a client shop's orders reach orderflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Webhook,
    /// A thin hook naming the order, which the worker fetches from the platform's API.
    HookAndFetch,
    /// No webhooks on the platform: pulled from its API by updated-at cursor.
    Pull,
}

impl Via {
    fn describe(self) -> &'static str {
        match self {
            Via::Webhook => "signed webhooks",
            Via::HookAndFetch => "hooks + OMS fetch",
            Via::Pull => "pulled from its API",
        }
    }
}

struct Client {
    store_id: &'static str,
    platform: &'static str,
    secret: Option<&'static str>,
    via: Via,
}

const SHOPIFY: usize = 0;
const WOOCOMMERCE: usize = 1;
const JUMPSELLER: usize = 2;
const VTEX: usize = 3;
const PRESTASHOP: usize = 4;
const MAGENTO: usize = 5;

const CLIENTS: [Client; 6] = [
    Client {
        store_id: "andes-outdoor",
        platform: "shopify",
        secret: Some("shpss_demo_andes_0123456789"),
        via: Via::Webhook,
    },
    Client {
        store_id: "casa-cafe",
        platform: "woocommerce",
        secret: Some("wc_demo_casa_cafe_secret"),
        via: Via::Webhook,
    },
    Client {
        store_id: "tienda-sur",
        platform: "jumpseller",
        secret: Some("js_demo_hooks_token_sur"),
        via: Via::Webhook,
    },
    Client {
        store_id: "mercado-norte",
        platform: "vtex",
        // VTEX does not sign: the hook is configured to send this secret as a header.
        secret: Some("vtex_demo_hook_header_secret"),
        via: Via::HookAndFetch,
    },
    Client {
        store_id: "libreria-centro",
        platform: "prestashop",
        secret: None,
        via: Via::Pull,
    },
    Client {
        store_id: "ferreteria-sur",
        platform: "magento",
        secret: None,
        via: Via::Pull,
    },
];

const VTEX_APP_KEY: &str = "vtexappkey-demo";
const VTEX_APP_TOKEN: &str = "vtex-demo-app-token";
const PRESTASHOP_KEY: &str = "DEMOPRESTASHOPWEBSERVICEKEY00001";
const MAGENTO_TOKEN: &str = "magento-demo-integration-token";

/// The sandbox platforms orderflow calls (VTEX's OMS, the PrestaShop webservice, Magento's
/// REST API), kept serving as long as the demo does: the server's scheduled reconciliation
/// pulls find them there.
#[derive(Debug)]
pub struct Sandboxes {
    _servers: Vec<SimServer>,
}

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

/// Runs `orders_per_shop` orders of each client shop in and prints what became of them;
/// fails if any delivery failed, the inbox did not drain, or the courier's count disagrees.
pub async fn run(
    base: &str,
    token: &str,
    store: Arc<dyn Store>,
    orders_per_shop: usize,
) -> anyhow::Result<Sandboxes> {
    let http = reqwest::Client::new();
    let courier = start_courier().await?;

    let mut generator = Generator::new(2026).countries(&["CL"]);
    let pushed: Vec<Vec<SimOrder>> = (0..4).map(|_| generator.orders(orders_per_shop)).collect();
    // Pulls look back a week from now, so the pulled shops' orders are from the last day;
    // both platforms number their orders from 1.
    let mut recent = Generator::new(2027)
        .countries(&["CL"])
        .first_id(1)
        .starting_at(time::OffsetDateTime::now_utc() - time::Duration::days(1));
    let oms = orderflow_sim::vtex::serve_oms(
        orderflow_sim::Shop::with_orders(pushed[VTEX].clone()),
        VTEX_APP_KEY,
        VTEX_APP_TOKEN,
    )
    .await
    .context("starting the VTEX OMS sandbox")?;
    let prestashop = orderflow_sim::prestashop::serve(
        orderflow_sim::Shop::with_orders(recent.orders(orders_per_shop)),
        PRESTASHOP_KEY,
    )
    .await
    .context("starting the PrestaShop sandbox")?;
    let magento = orderflow_sim::magento::serve(
        orderflow_sim::Shop::with_orders(recent.orders(orders_per_shop)),
        MAGENTO_TOKEN,
    )
    .await
    .context("starting the Magento sandbox")?;

    for (index, client) in CLIENTS.iter().enumerate() {
        let api = match index {
            VTEX => json!({"base_url": oms.url(), "key": VTEX_APP_KEY, "token": VTEX_APP_TOKEN}),
            PRESTASHOP => json!({"base_url": prestashop.url(), "key": PRESTASHOP_KEY}),
            MAGENTO => json!({"base_url": magento.url(), "token": MAGENTO_TOKEN}),
            _ => Value::Null,
        };
        let created = http
            .post(format!("{base}/stores"))
            .bearer_auth(token)
            .json(&json!({
                "store_id": client.store_id,
                "name": client.store_id,
                "platform": client.platform,
                "webhook_secret": client.secret,
                "api": api,
                "manage_stock": false,
                "rules": rules_of(client.store_id),
                "destination": {"url": courier.url, "secret": "whsec_ZGVtby1jb3VyaWVyLXNpZ25pbmcta2V5"},
            }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "creating store {}: {}",
            client.store_id,
            created.text().await.unwrap_or_default()
        );
    }

    // Shopify reaches orderflow through a network that now and then answers too late:
    // orderflow has stored the delivery, Shopify times out and re-sends the same event.
    let flaky = Proxy::start(base)
        .await
        .context("starting the flaky network")?;
    let secret = |index: usize| CLIENTS[index].secret.unwrap_or_default();
    let shopify = ShopifySender::new(flaky.url(), CLIENTS[SHOPIFY].store_id, secret(SHOPIFY))
        .retry(
            RetryPolicy::shopify()
                .compressed(10_000)
                .with_timeout(Duration::from_millis(300)),
        );
    let woo = WooSender::new(base, CLIENTS[WOOCOMMERCE].store_id, secret(WOOCOMMERCE));
    let jumpseller = JumpsellerSender::new(base, CLIENTS[JUMPSELLER].store_id, secret(JUMPSELLER));
    let vtex = VtexHookSender::new(base, CLIENTS[VTEX].store_id, secret(VTEX));

    let total = (orders_per_shop * pushed.len()) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} storefront orders sent {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut resent = 0u64;
    for (shop, orders) in pushed.iter().enumerate() {
        for (n, order) in orders.iter().enumerate() {
            let report = match shop {
                SHOPIFY => {
                    if n % 25 == 0 {
                        flaky.faults().slow_next(1, Duration::from_millis(400));
                    }
                    shopify.send("orders/create", order).await
                }
                WOOCOMMERCE => woo.send("order.created", order).await,
                JUMPSELLER => jumpseller.send("order_paid", order).await,
                _ => vtex.send(order).await,
            };
            if shop == SHOPIFY {
                resent += report.attempts.len().saturating_sub(1) as u64;
            }
            bar.inc(1);
        }
    }
    bar.finish_with_message(format!("in {:.1} s", started.elapsed().as_secs_f64()));
    flaky.stop().await;

    // The server pulls on its own schedule (every few minutes); the demo does not wait for
    // it and runs one round for the shops that have no webhooks, as the schedule would.
    let puller = Puller::new(store.clone(), PullConfig::default());
    let mut pulled = 0usize;
    for index in [PRESTASHOP, MAGENTO] {
        let store_id: StoreId = CLIENTS[index].store_id.parse()?;
        let record = store.get_store(&store_id).await?;
        let report = puller
            .pull_store(&record)
            .await
            .with_context(|| format!("pulling {}", CLIENTS[index].platform))?;
        pulled += report.stored;
    }
    println!("Pulled {pulled} orders from PrestaShop and Magento into the inbox");

    // The worker and the forwarder run beside the server; wait until they are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fates = loop {
        let fates = count_fates(&http, base, token).await?;
        let drained = fates.total("received") == 0 && fates.total("accepted") == 0;
        if drained && fates.total("forwarded") > 0 || Instant::now() > deadline {
            break fates;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    println!();
    println!("Storefront deliveries (GET /inbox)");
    for status in FATES {
        let count = fates.total(status);
        if count > 0 {
            println!("  {status:<16} {count:>7}");
        }
    }
    println!("  re-sent by Shopify after a late answer: {resent} (each dropped as a duplicate)");
    fates.print_by_platform();
    let delivered = courier.received.load(Ordering::Relaxed);
    println!("Courier system received {delivered} signed orders");
    anyhow::ensure!(
        fates.total("received") == 0 && fates.total("accepted") == 0,
        "the inbox did not drain within a minute"
    );
    anyhow::ensure!(
        fates.total("failed") == 0,
        "some storefront deliveries failed"
    );
    anyhow::ensure!(
        delivered == fates.total("forwarded"),
        "the courier received {delivered} orders, the inbox shows {} forwarded",
        fates.total("forwarded")
    );
    for client in &CLIENTS {
        anyhow::ensure!(
            fates.deliveries(client.platform) > 0,
            "no delivery of {} reached the inbox",
            client.platform
        );
    }
    Ok(Sandboxes {
        _servers: vec![oms, prestashop, magento],
    })
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

/// Deliveries counted by platform and fate.
#[derive(Debug, Default)]
struct Fates(BTreeMap<String, BTreeMap<String, u64>>);

impl Fates {
    fn total(&self, status: &str) -> u64 {
        self.0.values().filter_map(|fates| fates.get(status)).sum()
    }

    fn deliveries(&self, platform: &str) -> u64 {
        self.0.get(platform).map_or(0, |fates| fates.values().sum())
    }

    /// One row per platform, in the order of [`CLIENTS`], with a column per fate seen.
    fn print_by_platform(&self) {
        let columns: Vec<&str> = FATES
            .into_iter()
            .filter(|status| self.total(status) > 0)
            .collect();
        println!();
        print!("  {:<12} {:>10}", "by platform", "deliveries");
        for status in &columns {
            print!(" {status:>10}");
        }
        println!("  how");
        for client in &CLIENTS {
            let fates = self.0.get(client.platform);
            print!(
                "  {:<12} {:>10}",
                client.platform,
                self.deliveries(client.platform)
            );
            for status in &columns {
                let count = fates.and_then(|f| f.get(*status)).copied().unwrap_or(0);
                print!(" {count:>10}");
            }
            println!("  {}", client.via.describe());
        }
    }
}

/// Every delivery in the inbox, read page by page.
async fn count_fates(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<Fates> {
    let mut fates = Fates::default();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/inbox?limit=200");
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
        for delivery in page["items"].as_array().into_iter().flatten() {
            let platform = delivery["platform"].as_str().unwrap_or("unknown");
            let status = delivery["status"].as_str().unwrap_or("unknown");
            *fates
                .0
                .entry(platform.to_owned())
                .or_default()
                .entry(status.to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(fates)
}
