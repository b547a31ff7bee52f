//! Backends and small handlers for the engine's tests: a fresh SQLite file or PostgreSQL
//! database per test, and handlers scripted by closures.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderflow_store::scratch::ScratchDatabase;
use orderflow_store::{Run, RunStatus, Scope, Store};
use orderflow_workflow::{Outcome, StepContext, StepError, StepHandler};

/// Expands a case into `mod case { sqlite(), postgres() }`; the PostgreSQL variant runs when
/// `ORDERFLOW_TEST_POSTGRES` names a server.
macro_rules! case {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (store, _file) = crate::support::sqlite().await;
                super::$name(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some((store, _database)) = crate::support::postgres(module_path!()).await
                else {
                    return;
                };
                super::$name(store).await;
            }
        }
    };
}
pub(crate) use case;

pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("engine.db");
    let url = format!("sqlite://{}", path.display());
    let store = orderflow_store::open(&url)
        .await
        .expect("SQLite store opens");
    (store, directory)
}

pub async fn postgres(test: &str) -> Option<(Arc<dyn Store>, Database)> {
    let Ok(admin_url) = std::env::var("ORDERFLOW_TEST_POSTGRES") else {
        eprintln!("{test}: skipped on PostgreSQL because ORDERFLOW_TEST_POSTGRES is not set");
        return None;
    };
    let scratch = ScratchDatabase::create(&admin_url, "orderflow_engine", rand::random())
        .await
        .expect("a scratch PostgreSQL database");
    let store = orderflow_store::open(scratch.url())
        .await
        .expect("PostgreSQL store opens");
    Some((store, Database(Some(scratch))))
}

/// Drops its database when the test ends, pass or fail.
#[derive(Debug)]
pub struct Database(Option<ScratchDatabase>);

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(scratch) = self.0.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the database");
                runtime.block_on(scratch.drop())
            })
            .join();
        }
    }
}

type Script = dyn Fn(&StepContext) -> Result<Outcome, StepError> + Send + Sync;

/// A handler whose behaviour is a closure over the step's context.
pub struct Scripted(Arc<Script>);

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

#[async_trait]
impl StepHandler for Scripted {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        (self.0)(context)
    }
}

pub fn scripted(
    script: impl Fn(&StepContext) -> Result<Outcome, StepError> + Send + Sync + 'static,
) -> Arc<dyn StepHandler> {
    Arc::new(Scripted(Arc::new(script)))
}

pub fn done() -> Arc<dyn StepHandler> {
    scripted(|_| Ok(Outcome::Done(None)))
}

/// Waits until the run has finished, or panics after `within`.
pub async fn finished(store: &Arc<dyn Store>, run_id: &str, within: Duration) -> Run {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = store
            .get_run(&Scope::Everything, run_id)
            .await
            .expect("the run can be read");
        if run.status != RunStatus::Running && run.steps.iter().all(|s| s.status.is_finished()) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run_id} did not finish within {within:?}: {:#?}",
            run.steps
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
