//! `orderflow`: the one binary. `serve` runs the API, `demo` shows the whole thing on a fresh
//! embedded database, `bench` measures it; `migrate`, `keys` and `import` administer a database.

mod bench;
mod bench_pipeline;
mod demo;
mod demo_storefronts;
mod engine;
mod import;
mod load;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use orderflow_domain::{CustomerId, StoreId};

#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about = "Order operations engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct DatabaseArgs {
    /// `sqlite://path` (embedded, the default) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "ORDERFLOW_DATABASE_URL",
        default_value = "sqlite://orderflow.db"
    )]
    database_url: String,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing would only obscure the arguments"
)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        #[arg(long, env = "ORDERFLOW_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        engine: engine::EngineArgs,
    },
    /// Apply pending migrations and report the schema version.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Seed a fresh embedded database, serve it and run a stream of orders through the API.
    Demo(demo::DemoArgs),
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Bulk imports.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Measure a scenario against a freshly started server; prints one JSON line.
    Bench(bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make an API key and print its token (shown only once).
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        store_id: Option<StoreId>,
        #[arg(long)]
        customer_id: Option<CustomerId>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Store,
    Customer,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Create or update products from a CSV file with the header
    /// `product_id,name,category,price,currency,on_hand` (price in minor units).
    Products {
        csv: PathBuf,
        #[arg(long, default_value = "default")]
        store_id: StoreId,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("ORDERFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            database,
            engine,
        } => {
            init_tracing();
            server::serve(listen, &database.database_url, &engine).await
        }
        Command::Migrate { database } => {
            init_tracing();
            let store = orderflow_store::open(&database.database_url)
                .await
                .context("opening the database")?;
            let readiness = store.readiness().await?;
            println!(
                "schema at version {} of {}",
                readiness.applied_migration.unwrap_or(0),
                readiness.latest_migration
            );
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    role,
                    store_id,
                    customer_id,
                    database,
                },
        } => {
            let store = orderflow_store::open(&database.database_url)
                .await
                .context("opening the database")?;
            let token = server::create_key(store.as_ref(), role, store_id, customer_id).await?;
            println!("{token}");
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Products {
                    csv,
                    store_id,
                    database,
                },
        } => {
            let store = orderflow_store::open(&database.database_url)
                .await
                .context("opening the database")?;
            let count = import::products(store.as_ref(), &store_id, &csv).await?;
            println!("imported {count} products into store {store_id}");
            Ok(())
        }
        Command::Demo(args) => {
            init_tracing_quiet();
            demo::run(args).await
        }
        Command::Bench(args) => {
            init_tracing_quiet();
            bench::run(args).await
        }
    }
}

/// For commands that draw progress bars: only warnings and errors reach the terminal.
fn init_tracing_quiet() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("ORDERFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}
