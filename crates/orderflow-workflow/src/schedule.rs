//! Starts the runs of workflows that have a cron schedule. Every node with the scheduler role
//! runs a scheduler, and the one holding the store's leadership (an advisory lock on
//! PostgreSQL) fires the ticks; if it dies, another takes over at the next tick. Each tick's run
//! also carries the dedupe key `workflow@instant`, so even two nodes that both believe they
//! lead start it once.

use std::sync::Arc;
use std::time::Duration;

use orderflow_domain::StoreId;
use orderflow_store::{RunStarted, StartRun, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::engine::Registry;

#[derive(Debug)]
pub struct Scheduler {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scheduler {
    pub fn start(store: Arc<dyn Store>, registry: Arc<Registry>) -> Self {
        Self {
            task: tokio::spawn(tick(store, registry)),
        }
    }
}

/// The dedupe key of the run a schedule starts at `at`.
pub fn tick_key(workflow: &str, at: OffsetDateTime) -> String {
    let at = at
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string());
    format!("{workflow}@{at}")
}

/// Starts the run of `workflow` for its tick at `at`, keyed by [`tick_key`] so that the tick
/// starts one run however many nodes fire it; `None` for a workflow `registry` does not hold.
pub async fn start_tick(
    store: &dyn Store,
    registry: &Registry,
    workflow: &str,
    at: OffsetDateTime,
) -> Result<Option<RunStarted>, orderflow_store::Error> {
    let input = serde_json::json!({ "scheduled_for": at.format(&Rfc3339).unwrap_or_default() });
    let Some(mut run) = registry.new_run(workflow, &input, at) else {
        return Ok(None);
    };
    run.dedupe_key = Some(tick_key(workflow, at));
    let start = StartRun {
        run,
        store_id: StoreId::default_store(),
        order_id: None,
        now: OffsetDateTime::now_utc(),
    };
    store.start_run(start).await.map(Some)
}

/// The leadership role the schedulers compete for.
pub const LEADER_ROLE: &str = "orderflow-scheduler";

async fn tick(store: Arc<dyn Store>, registry: Arc<Registry>) {
    let mut last = OffsetDateTime::now_utc();
    let mut leadership: Option<Box<dyn orderflow_store::Leadership>> = None;
    loop {
        let next = registry
            .workflows()
            .filter_map(|w| Some((w.clone(), w.schedule()?.next_after(last)?)))
            .min_by_key(|(_, at)| *at);
        let Some((_, at)) = next else {
            return;
        };
        let wait = Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        if !leadership.as_ref().is_some_and(|held| held.is_held()) {
            leadership = match store.try_lead(LEADER_ROLE).await {
                Ok(taken) => taken,
                Err(error) => {
                    tracing::warn!(%error, "cannot ask for the scheduler's leadership");
                    None
                }
            };
        }
        if leadership.is_none() {
            // Another node leads and fires this tick.
            last = at;
            continue;
        }
        for workflow in registry.workflows() {
            let due = workflow
                .schedule()
                .and_then(|cron| cron.next_after(last))
                .is_some_and(|fire| fire <= at);
            if !due {
                continue;
            }
            match start_tick(store.as_ref(), &registry, workflow.name(), at).await {
                Ok(Some(started)) if started.created => {
                    tracing::info!(workflow = workflow.name(), run = %started.run_id, "scheduled run started");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, workflow = workflow.name(), "starting a scheduled run failed")
                }
            }
        }
        last = at;
    }
}
