//! Starting the server for `serve`, `demo` and `bench`, and making keys from the command line.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use orderflow_domain::{CustomerId, StoreId};
use orderflow_intake::forward::ForwardPolicy;
use orderflow_intake::pull::DEFAULT_PULL_EVERY;
use orderflow_intake::worker::WorkerConfig;
use orderflow_server::auth::{issue_key, new_token};
use orderflow_server::{AppState, Background, PullTimer};
use orderflow_store::{Role, Store};
use tokio::net::TcpListener;

use crate::RoleArg;
use crate::engine::{Engine, EngineArgs};

/// Serves the node's role: the API (`api`), the workflow workers with intake and alerts
/// (`worker`), the cron scheduler (`scheduler`), or all of them. Every role listens, so that
/// `/healthz`, `/readyz` and `/metrics` answer on each node.
pub async fn serve(
    listen: SocketAddr,
    database_url: &str,
    engine: &EngineArgs,
) -> anyhow::Result<()> {
    // Before anything else, so that a misconfigured node stops at once.
    engine.check_providers()?;
    let store = orderflow_store::open(database_url)
        .await
        .context("opening the database")?;
    let admin_token = std::env::var("ORDERFLOW_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if admin_token.is_none() {
        tracing::warn!(
            "ORDERFLOW_ADMIN_TOKEN is not set: only keys made with `orderflow keys create` can call the API"
        );
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let running = if engine.no_pipeline {
        None
    } else {
        Some(Engine::start(store.clone(), engine).await?)
    };
    let control = running.as_ref().map(|r| r.control.clone());
    // With the engine, the pulls are its `storefront_pulls` workflow: one run per tick over
    // every node, on whichever worker claims it. A `--no-pipeline` node has no engine and so
    // no scheduler to elect a leader with: it pulls on its own timer, on the same cron. Two
    // such nodes both pull, which costs requests but nothing else (each page moves the
    // cursor; the inbox keeps one delivery per event key).
    let pulls = match (&running, &engine.pull_cron.0) {
        (None, Some(cron)) => PullTimer::Cron(cron.clone()),
        _ => PullTimer::Off,
    };
    let state = AppState::with_workflows(store, admin_token.as_deref(), control);
    let background = engine.runs_workers().then(|| {
        Background::start(
            &state,
            WorkerConfig::default(),
            ForwardPolicy::default(),
            pulls,
        )
    });
    let served = orderflow_server::serve(listener, state, shutdown_signal()).await;
    if let Some(background) = background {
        background.stop().await;
    }
    drop(running);
    served.context("serving")
}

/// A server running in this process on an ephemeral port, for `demo` and `bench`.
#[derive(Debug)]
pub struct Running {
    pub address: SocketAddr,
    pub admin_token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Option<Background>,
    /// With `engine`: the workflow engine and the sandboxes it talks to.
    pub engine: Option<Engine>,
}

impl Running {
    /// Serves `store` on `listen`; with `engine`, every order runs through the pipeline.
    pub async fn start(
        store: Arc<dyn Store>,
        listen: SocketAddr,
        engine: Option<&EngineArgs>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        let (_, admin_token) = new_token();
        let engine = match engine {
            Some(args) => Some(Engine::start(store.clone(), args).await?),
            None => None,
        };
        let control = engine.as_ref().map(|e| e.control.clone());
        // As in `serve`: the engine's workflow pulls when there is one, else a timer.
        let pulls = if engine.is_some() {
            PullTimer::Off
        } else {
            PullTimer::Every(DEFAULT_PULL_EVERY)
        };
        let state = AppState::with_workflows(store, Some(&admin_token), control);
        let background = Background::start(
            &state,
            WorkerConfig::default(),
            ForwardPolicy::default(),
            pulls,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(orderflow_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            address,
            admin_token,
            stop: Some(stop),
            task,
            background: Some(background),
            engine,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        if let Some(background) = self.background.take() {
            background.stop().await;
        }
        Ok(())
    }
}

pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

pub async fn create_key(
    store: &dyn Store,
    role: RoleArg,
    store_id: Option<StoreId>,
    customer_id: Option<CustomerId>,
) -> anyhow::Result<String> {
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Store => Role::Store,
        RoleArg::Customer => Role::Customer,
    };
    let store_id = Some(store_id.unwrap_or_else(StoreId::default_store));
    let (_, token) = issue_key(store, role, store_id, customer_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(token)
}
