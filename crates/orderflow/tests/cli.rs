//! The binary's subcommands, run as a user would run them.

use std::process::Command;

fn orderflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command.env("ORDERFLOW_LOG", "warn");
    command
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
