//! The binary's subcommands, run as a user would run them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "cli-admin-token";

/// The binary, with none of the providers or engine settings of the caller's environment.
fn orderflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command.env("ORDERFLOW_LOG", "warn");
    for variable in [
        "ORDERFLOW_PAYMENTS_URL",
        "ORDERFLOW_CARRIER_URL",
        "ORDERFLOW_SMTP_URL",
        "ORDERFLOW_SANDBOX",
        "ORDERFLOW_ROLE",
        "ORDERFLOW_NO_PIPELINE",
        "ORDERFLOW_PULL_CRON",
    ] {
        command.env_remove(variable);
    }
    command
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("address").port()
}

/// An `orderflow serve` process, killed when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    async fn start(database: &str, args: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = orderflow()
            .args(["serve", "--listen", &listen, "--database-url", database])
            .args(args)
            .env("ORDERFLOW_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start orderflow serve");
        let node = Self {
            child,
            base: format!("http://{listen}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(reply) = client.get(format!("{}/readyz", node.base)).send().await
                && reply.status().is_success()
            {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "serve {args:?} did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The cron of the `storefront_pulls` workflow, as `GET /workflows` shows it.
    async fn pull_schedule(&self) -> Value {
        let workflows: Value = reqwest::Client::new()
            .get(format!("{}/workflows", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET /workflows")
            .json()
            .await
            .expect("a JSON list");
        workflows
            .as_array()
            .and_then(|all| all.iter().find(|w| w["name"] == "storefront_pulls"))
            .map(|w| w["schedule"].clone())
            .unwrap_or_else(|| panic!("no storefront_pulls workflow in {workflows}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_refuses_to_run_steps_without_providers_and_names_what_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("serve.db");
    let database = format!("sqlite://{}", path.display());

    let none = orderflow()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
        ])
        .output()
        .expect("serve");
    let some = orderflow()
        .args(["serve", "--role", "worker", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &database])
        .args(["--payments-url", "https://api.stripe.com"])
        .env("ORDERFLOW_CARRIER_URL", "https://api.easypost.com")
        .output()
        .expect("serve");

    assert!(!none.status.success());
    let stderr = String::from_utf8_lossy(&none.stderr);
    for named in [
        "--payments-url",
        "ORDERFLOW_PAYMENTS_URL",
        "--carrier-url",
        "ORDERFLOW_CARRIER_URL",
        "--smtp-url",
        "ORDERFLOW_SMTP_URL",
        "--sandbox",
        "ORDERFLOW_SANDBOX",
    ] {
        assert!(stderr.contains(named), "{named} is not named: {stderr}");
    }
    assert!(!some.status.success());
    let stderr = String::from_utf8_lossy(&some.stderr);
    assert!(stderr.contains("--smtp-url"), "{stderr}");
    assert!(
        !stderr.contains("--payments-url") && !stderr.contains("--carrier-url"),
        "only the SMTP server is missing: {stderr}"
    );
    assert!(
        !path.exists(),
        "the node stopped before opening the database"
    );
}

#[test]
fn a_malformed_pull_schedule_is_refused_naming_the_setting() {
    let output = orderflow()
        .args(["serve", "--sandbox", "--pull-cron", "every five minutes"])
        .output()
        .expect("serve");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--pull-cron") && stderr.contains("expected 5 fields"),
        "{stderr}"
    );
}

#[tokio::test]
async fn nodes_that_run_no_steps_or_run_them_on_sandboxes_start_with_the_pull_schedule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("nodes.db").display());

    // API and scheduler nodes build no adapters: they need no provider and no --sandbox.
    let api = Node::start(&database, &["--role", "api", "--pull-cron", "*/10 * * * *"]).await;
    let scheduler = Node::start(&database, &["--role", "scheduler"]).await;
    let sandboxed = Node::start(&database, &["--role", "worker", "--sandbox"]).await;

    assert_eq!(api.pull_schedule().await, "*/10 * * * *");
    assert_eq!(sandboxed.pull_schedule().await, "*/5 * * * *");
    drop(scheduler);
}

#[test]
fn the_demo_runs_orders_through_the_pipeline_and_storefront_orders_in_from_all_six_platforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = orderflow()
        .args([
            "demo",
            "--orders",
            "300",
            "--exit",
            "--listen",
            "127.0.0.1:0",
            "--database",
        ])
        .arg(dir.path().join("demo.db"))
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Seeded 140 products"), "{stdout}");
    assert!(
        stdout.contains("balanced: reserved = units of open orders"),
        "{stdout}"
    );
    assert!(stdout.contains("/docs"), "{stdout}");
    let forwarded = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("forwarded"))
        .and_then(|count| count.trim().parse::<u64>().ok());
    assert!(
        forwarded.is_some_and(|n| n > 0),
        "storefront orders were taken in and forwarded: {stdout}"
    );
    assert!(stdout.contains("Courier system received"), "{stdout}");
    // The per-platform rows: `  <platform> <deliveries> <count per fate>…  <how>`.
    for platform in [
        "shopify",
        "woocommerce",
        "jumpseller",
        "vtex",
        "prestashop",
        "magento",
    ] {
        let deliveries = stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(&format!("{platform} ")))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
        assert!(
            deliveries.is_some_and(|n| n > 0),
            "{platform}'s deliveries reached the inbox: {stdout}"
        );
    }
    let shipped = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("shipped"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    assert!(
        shipped.is_some_and(|n| n > 0),
        "orders ran through the pipeline to shipped: {stdout}"
    );
}

#[test]
fn products_import_from_csv_and_keys_are_made_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("cli.db").display());
    let csv = dir.path().join("products.csv");
    std::fs::write(&csv, "product_id,name,category,price,currency,on_hand\nmug,Mug,kitchen,1250,EUR,10\ntea,Tea,,450,EUR,3\n")
        .expect("write csv");

    let import = orderflow()
        .args(["import", "products"])
        .arg(&csv)
        .args(["--database-url", &database])
        .output()
        .expect("import");
    let key = orderflow()
        .args([
            "keys",
            "create",
            "--role",
            "store",
            "--database-url",
            &database,
        ])
        .output()
        .expect("keys");
    let migrate = orderflow()
        .args(["migrate", "--database-url", &database])
        .output()
        .expect("migrate");

    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(String::from_utf8_lossy(&import.stdout).contains("imported 2 products"));
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    assert!(
        String::from_utf8_lossy(&key.stdout)
            .trim()
            .starts_with("of_")
    );
    let migrated = String::from_utf8_lossy(&migrate.stdout);
    let versions: Vec<&str> = migrated
        .split("schema at version ")
        .nth(1)
        .map(|rest| rest.split_whitespace().collect())
        .unwrap_or_default();
    assert!(
        matches!(versions.as_slice(), [applied, "of", latest, ..] if applied == latest && *applied != "0"),
        "migrate reports every migration applied: {migrated}"
    );
}

#[test]
fn a_csv_with_a_bad_row_names_its_line_and_imports_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("cli.db").display());
    let csv = dir.path().join("products.csv");
    std::fs::write(&csv, "product_id,name,category,price,currency,on_hand\nmug,Mug,,1250,EUR,10\ntea,Tea,,-5,EUR,3\n").expect("write csv");

    let import = orderflow()
        .args(["import", "products"])
        .arg(&csv)
        .args(["--database-url", &database])
        .output()
        .expect("import");

    assert!(!import.status.success());
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("price must not be negative"),
        "{stderr}"
    );
}
