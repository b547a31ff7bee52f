//! Scale-out and crash: an API node and three worker nodes, separate `orderflow serve`
//! processes on one PostgreSQL database, carry 1,000 orders through the pipeline while one
//! worker is killed with `kill -9`. Every run completes, the payment and carrier sandboxes
//! saw each idempotency key act once, and each customer got each message once, or twice with
//! the same `Message-ID` where the killed worker's e-mail step was taken over.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderflow_store::scratch::ScratchDatabase;
use orderflow_store::{RunFilter, RunStatus, Scope};
use reqwest::StatusCode;
use serde_json::json;

const TOKEN: &str = "scale-out-admin-token";
const ORDERS: usize = 1_000;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("address").port()
}

struct Node {
    child: Child,
    base: String,
}

impl Node {
    async fn start(
        role: &str,
        name: &str,
        database_url: &str,
        providers: &[(&str, String)],
    ) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
        command
            .args([
                "serve",
                "--role",
                role,
                "--worker-id",
                name,
                "--lease-seconds",
                "2",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .env("ORDERFLOW_ADMIN_TOKEN", TOKEN)
            .env("ORDERFLOW_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (flag, value) in providers {
            command.args([*flag, value.as_str()]);
        }
        let node = Self {
            child: command.spawn().expect("start orderflow serve"),
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = client.get(format!("{}/readyz", node.base)).send().await
                && reply.status() == StatusCode::OK
            {
                return node;
            }
            assert!(Instant::now() < deadline, "{name} did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_finish_every_run_while_one_is_killed() {
    let Ok(admin_url) = std::env::var("ORDERFLOW_TEST_POSTGRES") else {
        eprintln!("skipped: ORDERFLOW_TEST_POSTGRES is not set, so the scale-out test did not run");
        return;
    };
    let database = ScratchDatabase::create(&admin_url, "orderflow_scale", rand::random())
        .await
        .expect("a scratch database");
    let url = database.url().to_owned();
    let payments = orderflow_sim::StripeSandbox::start("sk_test_scale")
        .await
        .expect("payments sandbox");
    let carrier = orderflow_sim::EasyPostSandbox::start("EZTK_scale")
        .await
        .expect("carrier sandbox");
    let mail = orderflow_sim::SmtpSink::start().await.expect("SMTP sink");
    let providers = [
        ("--payments-url", payments.url().to_owned()),
        ("--payments-key", "sk_test_scale".to_owned()),
        ("--carrier-url", carrier.url().to_owned()),
        ("--carrier-key", "EZTK_scale".to_owned()),
        ("--smtp-url", mail.url()),
    ];

    let api = Node::start("api", "api", &url, &providers).await;
    let mut workers = Vec::new();
    for name in ["w1", "w2", "w3"] {
        workers.push(Node::start("worker", name, &url, &providers).await);
    }
    let client = reqwest::Client::new();
    let reply = client
        .put(format!("{}/products/mug", api.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Mug", "price": 1250, "currency": "EUR", "on_hand": 1_000_000}))
        .send()
        .await
        .expect("put product");
    assert_eq!(reply.status(), StatusCode::OK);

    let base = Arc::new(api.base.clone());
    let placers: Vec<_> = (0..16)
        .map(|placer| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut placed = 0;
                for n in (placer..ORDERS).step_by(16) {
                    let body = json!({
                        "products": [{"product_id": "mug", "item_count": 1 + n % 3}],
                        "payment_method": "pm_card_visa",
                        "customer": {"name": "Scale", "email": format!("c{n}@example.com")},
                        "shipping_address": {"line1": "Av. Providencia 1208", "city": "Santiago", "region": "RM", "postal_code": "7500000", "country": "CL"}
                    });
                    let reply = client
                        .post(format!("{base}/orders"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await
                        .expect("place");
                    assert_eq!(reply.status(), StatusCode::CREATED);
                    placed += 1;
                }
                placed
            })
        })
        .collect();

    let store = orderflow_store::open(&url).await.expect("open the store");
    let succeeded = |limit| RunFilter {
        status: Some(RunStatus::Succeeded),
        limit,
        ..Default::default()
    };
    // Kill a worker once the work is well under way, mid-step.
    let deadline = Instant::now() + Duration::from_secs(120);
    while store
        .list_runs(&Scope::Everything, succeeded(100))
        .await
        .expect("runs")
        .items
        .len()
        < 100
    {
        assert!(Instant::now() < deadline, "the workers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers[0].kill_9();

    let mut placed = 0;
    for placer in placers {
        placed += placer.await.expect("placer");
    }
    assert_eq!(placed, ORDERS);

    let running = RunFilter {
        status: Some(RunStatus::Running),
        limit: 1,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    while !store
        .list_runs(&Scope::Everything, running.clone())
        .await
        .expect("runs")
        .items
        .is_empty()
    {
        assert!(Instant::now() < deadline, "runs were stranded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut finished = HashMap::new();
    let mut orders = BTreeSet::new();
    let mut run_of: HashMap<String, String> = HashMap::new();
    let mut filter = RunFilter {
        limit: 200,
        ..Default::default()
    };
    loop {
        let page = store
            .list_runs(&Scope::Everything, filter.clone())
            .await
            .expect("runs");
        for run in &page.items {
            *finished.entry(run.status).or_insert(0) += 1;
            if let Some(order) = &run.order_id {
                orders.insert(order.to_string());
                run_of.insert(order.to_string(), run.run_id.clone());
            }
        }
        filter.before = page.items.last().map(|r| r.run_id.clone());
        if !page.has_more {
            break;
        }
    }
    assert_eq!(
        finished.get(&RunStatus::Succeeded),
        Some(&ORDERS),
        "{finished:?}"
    );

    let payment_effects = payments.effects();
    assert_eq!(payment_effects.len(), ORDERS, "one authorisation per order");
    assert!(
        payment_effects.values().all(|&n| n == 1),
        "a payment key acted twice"
    );
    let carrier_effects = carrier.effects();
    assert_eq!(
        carrier_effects.len(),
        2 * ORDERS,
        "one create and one buy per order"
    );
    assert!(
        carrier_effects.values().all(|&n| n == 1),
        "a carrier key acted twice"
    );
    assert_eq!(orders.len(), ORDERS, "one run per order");
    // A message's `Message-ID` is `<{order id}.{kind}@{sender's domain}>`, the same on every
    // try, so it names the (order, kind) the message is for.
    let mut sent: HashMap<(String, String), Vec<String>> = HashMap::new();
    for message in mail.messages() {
        let id = message.message_id.clone().unwrap_or_default();
        let local = id
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default();
        let (order, kind) = local
            .rsplit_once('.')
            .unwrap_or_else(|| panic!("a Message-ID without an order and a kind: {id:?}"));
        sent.entry((order.to_owned(), kind.to_owned()))
            .or_default()
            .push(id);
    }
    // SMTP has no idempotency key: a worker killed after the server took a message and before
    // the step was recorded leaves the step to whoever takes it over when the lease expires,
    // and that attempt sends the message again. A second copy is fair exactly there, and only
    // as the same message (same Message-ID); every other message goes once.
    let mut taken_over = 0;
    for ((order, kind), ids) in &sent {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "{order}'s {kind} messages differ: {ids:?}"
        );
        if ids.len() == 1 {
            continue;
        }
        let step = match kind.as_str() {
            "confirmed" => "confirmation_email",
            "shipped" => "shipped_email",
            other => panic!(
                "{order} got {} messages of an unknown kind {other}",
                ids.len()
            ),
        };
        let run_id = run_of
            .get(order)
            .unwrap_or_else(|| panic!("{order} got messages but has no run"));
        let run = store
            .get_run(&Scope::Everything, run_id)
            .await
            .expect("the run with its attempts");
        let expired = run
            .steps
            .iter()
            .filter(|s| s.name == step)
            .flat_map(|s| &s.history)
            .filter(|a| a.outcome.as_deref() == Some("lease_expired"))
            .count();
        assert!(
            ids.len() <= 1 + expired,
            "{order} got its {kind} message {} times, but {step} lost its lease {expired} times",
            ids.len()
        );
        taken_over += 1;
    }
    eprintln!("{taken_over} messages sent again by a step taken over from the killed worker");
    let expected: BTreeSet<(String, String)> = orders
        .iter()
        .flat_map(|order| ["confirmed", "shipped"].map(|kind| (order.clone(), kind.to_owned())))
        .collect();
    let got: BTreeSet<(String, String)> = sent.into_keys().collect();
    assert_eq!(
        got.symmetric_difference(&expected)
            .take(10)
            .collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "a confirmed and a shipped message for every order, and nothing else"
    );

    drop(workers);
    drop(api);
    drop(store);
    database.drop().await.expect("drop the scratch database");
}
