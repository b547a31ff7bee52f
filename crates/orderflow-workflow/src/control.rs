//! An operator's hands on runs: retry or skip a step, cancel a run. The store applies each in
//! one transaction; the registry says which steps downstream wait again.

use std::sync::Arc;

use orderflow_store::{Result, Run, Scope, StepAction, Store};
use time::OffsetDateTime;

use crate::engine::Registry;

#[derive(Debug, Clone)]
pub struct Control {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
}

impl Control {
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>) -> Self {
        Self { store, registry }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Runs a failed step again with fresh tries; the steps that gave up because of it wait
    /// for it again.
    pub async fn retry_step(&self, scope: &Scope, run_id: &str, step: &str) -> Result<Run> {
        let reset = self.downstream(scope, run_id, step).await?;
        self.store
            .act_on_step(
                scope,
                run_id,
                step,
                StepAction::Retry { reset },
                OffsetDateTime::now_utc(),
                self.registry.clone(),
            )
            .await
    }

    /// Counts a step as done without running it; the run goes on past it.
    pub async fn skip_step(&self, scope: &Scope, run_id: &str, step: &str) -> Result<Run> {
        let reset = self.downstream(scope, run_id, step).await?;
        self.store
            .act_on_step(
                scope,
                run_id,
                step,
                StepAction::Skip { reset },
                OffsetDateTime::now_utc(),
                self.registry.clone(),
            )
            .await
    }

    /// Cancels the run: what has not started never will, and its compensation runs.
    pub async fn cancel_run(&self, scope: &Scope, run_id: &str) -> Result<Run> {
        self.store
            .cancel_run(
                scope,
                run_id,
                OffsetDateTime::now_utc(),
                self.registry.clone(),
            )
            .await
    }

    async fn downstream(&self, scope: &Scope, run_id: &str, step: &str) -> Result<Vec<String>> {
        let run = self.store.get_run(scope, run_id).await?;
        let workflow = self.registry.workflow(&run.workflow).ok_or_else(|| {
            orderflow_store::Error::InvalidAction(format!(
                "workflow {} is not known to this node",
                run.workflow
            ))
        })?;
        if workflow.step(step).is_none() {
            return Err(orderflow_store::Error::NotFound);
        }
        Ok(workflow.downstream_of(step))
    }
}
