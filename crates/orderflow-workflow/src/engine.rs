//! The runtime: step handlers registered per workflow, and workers that claim steps from the
//! store, run them under a lease kept alive by heartbeats, and record how they ended.
//!
//! A worker that finishes a step is handed the step it made ready in the same transaction and
//! goes straight on with it, so a run's steps follow each other without a claim in between.
//! Other ready steps are announced by the store ([`orderflow_store::Store::work_signal`]);
//! polling at `poll_every` is only the fallback.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderflow_domain::{OrderId, StoreId};
use orderflow_store::{
    Claim, ClaimedStep, Error as StoreError, FinishStep, NewAlert, NewRun, RunPlan, RunPlanner,
    RunSnapshot, RunStatus, StepLimit, StepResult, Store,
};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::definition::{DefinitionError, StepDef, Workflow};
use crate::verdict::{self, Ended, Verdict};

/// What a step sees of its run.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub run_id: String,
    pub workflow: String,
    pub step: String,
    pub attempt: u32,
    pub store_id: StoreId,
    pub order_id: Option<OrderId>,
    pub input: serde_json::Value,
    /// Outputs of the run's steps that succeeded, by step name.
    pub outputs: HashMap<String, serde_json::Value>,
    pub run_cancelled: bool,
}

impl StepContext {
    /// The same for every attempt of this step in this run: handed to outside services so
    /// that a retried call acts once.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.run_id, self.step)
    }

    pub fn output(&self, step: &str) -> Option<&serde_json::Value> {
        self.outputs.get(step)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Option<serde_json::Value>),
    /// A sensor's condition does not hold yet.
    NotYet,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Worth another try, not before `after` when the other side said so.
    #[error("{message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Another try would fail the same way.
    #[error("{0}")]
    Fatal(String),
}

impl StepError {
    pub fn retry(message: impl fmt::Display) -> Self {
        Self::Retry {
            message: message.to_string(),
            after: None,
        }
    }

    pub fn fatal(message: impl fmt::Display) -> Self {
        Self::Fatal(message.to_string())
    }
}

#[async_trait]
pub trait StepHandler: Send + Sync + fmt::Debug {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError>;
}

#[derive(Debug)]
struct Registered {
    workflow: Arc<Workflow>,
    handlers: HashMap<String, Arc<dyn StepHandler>>,
}

/// The workflows this node knows, with a handler for every step. It is also the planner the
/// store consults whenever a run's steps change.
#[derive(Debug, Default)]
pub struct Registry {
    workflows: HashMap<String, Registered>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("step {step:?} of workflow {workflow:?} has no handler")]
    MissingHandler { workflow: String, step: String },
    #[error("{0:?} is not a step of workflow {1:?}")]
    UnknownStep(String, String),
    #[error("workflow {0:?} is registered twice")]
    Duplicate(String),
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(
        &mut self,
        workflow: Workflow,
        handlers: impl IntoIterator<Item = (&'static str, Arc<dyn StepHandler>)>,
    ) -> Result<(), RegistryError> {
        let handlers: HashMap<String, Arc<dyn StepHandler>> = handlers
            .into_iter()
            .map(|(name, handler)| (name.to_owned(), handler))
            .collect();
        if let Some(unknown) = handlers.keys().find(|name| workflow.step(name).is_none()) {
            return Err(RegistryError::UnknownStep(
                unknown.clone(),
                workflow.name().to_owned(),
            ));
        }
        if let Some(step) = workflow
            .steps()
            .iter()
            .find(|s| !handlers.contains_key(&s.name))
        {
            return Err(RegistryError::MissingHandler {
                workflow: workflow.name().to_owned(),
                step: step.name.clone(),
            });
        }
        let name = workflow.name().to_owned();
        if self.workflows.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        self.workflows.insert(
            name,
            Registered {
                workflow: Arc::new(workflow),
                handlers,
            },
        );
        Ok(())
    }

    /// Registers `workflow` without handlers, for a node that plans and starts runs but never
    /// runs steps (the API and scheduler roles): it needs the definitions, not the outside
    /// services the handlers call. A worker given such a registry fails the steps it claims.
    pub fn declare(&mut self, workflow: Workflow) -> Result<(), RegistryError> {
        let name = workflow.name().to_owned();
        if self.workflows.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        self.workflows.insert(
            name,
            Registered {
                workflow: Arc::new(workflow),
                handlers: HashMap::new(),
            },
        );
        Ok(())
    }

    pub fn workflow(&self, name: &str) -> Option<&Arc<Workflow>> {
        self.workflows.get(name).map(|r| &r.workflow)
    }

    pub fn workflows(&self) -> impl Iterator<Item = &Arc<Workflow>> {
        self.workflows.values().map(|r| &r.workflow)
    }

    /// A new run of `workflow` with `input`; `None` for a workflow this node does not know.
    pub fn new_run(
        &self,
        workflow: &str,
        input: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Option<NewRun> {
        let workflow = self.workflow(workflow)?;
        Some(NewRun {
            run_id: orderflow_domain::id::time_ordered_id(
                "run_",
                unix_millis(now),
                rand::rng().random(),
            ),
            workflow: workflow.name().to_owned(),
            dedupe_key: None,
            input: input.to_string(),
            steps: workflow.seeds(),
        })
    }

    /// Step concurrency limits across every workflow; the store counts them over every worker.
    fn limits(&self) -> Vec<StepLimit> {
        self.workflows
            .values()
            .flat_map(|r| r.workflow.steps())
            .filter_map(|s| {
                s.concurrency.map(|at_once| StepLimit {
                    step: s.name.clone(),
                    at_once,
                })
            })
            .collect()
    }
}

impl RunPlanner for Registry {
    fn plan(&self, run: &RunSnapshot) -> RunPlan {
        match self.workflow(&run.workflow) {
            Some(workflow) => workflow.plan(run),
            // A run of a workflow another version of orderflow declared: leave it as it is.
            None => RunPlan::default(),
        }
    }
}

pub(crate) fn unix_millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Told the moment a step's handler starts: for measuring how long a ready step waited
/// (after its upstream step's finish committed, or until a worker claimed it).
pub trait StepObserver: Send + Sync + fmt::Debug {
    fn handler_started(&self, step: &ClaimedStep, at: OffsetDateTime);
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in leases and attempts.
    pub worker_id: String,
    /// How long a claimed step stays this worker's without a heartbeat.
    pub lease: Duration,
    pub heartbeat_every: Duration,
    /// Steps claimed per round trip.
    pub batch: u32,
    /// Steps this worker runs at once.
    pub max_in_flight: usize,
    /// The longest an idle worker sleeps without looking for work.
    pub poll_every: Duration,
    pub observer: Option<Arc<dyn StepObserver>>,
}

impl WorkerConfig {
    pub fn named(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            lease: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(10),
            batch: 64,
            max_in_flight: 256,
            poll_every: Duration::from_secs(1),
            observer: None,
        }
    }
}

/// A running worker; dropping it stops it and abandons its steps to lease expiry.
#[derive(Debug)]
pub struct WorkerHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
pub struct Worker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    config: WorkerConfig,
    limits: Vec<StepLimit>,
    in_flight: Arc<Semaphore>,
}

impl Worker {
    pub fn start(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        config: WorkerConfig,
    ) -> WorkerHandle {
        let limits = registry.limits();
        let worker = Arc::new(Self {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            store,
            registry,
            config,
            limits,
        });
        WorkerHandle {
            task: tokio::spawn(worker.run()),
        }
    }

    async fn run(self: Arc<Self>) {
        let signal = self.store.work_signal(orderflow_store::Work::Steps);
        let mut tasks = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let room = self
                .in_flight
                .available_permits()
                .min(self.config.batch as usize);
            let mut claimed = 0;
            if room > 0 {
                let now = OffsetDateTime::now_utc();
                let claim = Claim {
                    worker: self.config.worker_id.clone(),
                    limit: room as u32,
                    now,
                    lease_until: verdict::later(now, self.config.lease),
                    limits: self.limits.clone(),
                };
                match self.store.claim_steps(claim).await {
                    Ok(steps) => {
                        claimed = steps.len();
                        for step in steps {
                            let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                                break;
                            };
                            tasks.spawn(self.clone().execute(step, permit));
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming steps failed"),
                }
            }
            if room > 0 && claimed == room {
                continue;
            }
            let wait = if room == 0 {
                self.config.poll_every
            } else {
                self.until_next_due().await
            };
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(_) = tasks.join_next(), if room == 0 && !tasks.is_empty() => {}
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let poll = self.config.poll_every;
        match self.store.next_step_due().await {
            Ok(Some(due)) => {
                let wait = due - OffsetDateTime::now_utc();
                Duration::try_from(wait)
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(1), poll)
            }
            _ => poll,
        }
    }

    /// Runs a claimed step, then each step its finish hands back, until none is handed back.
    async fn execute(
        self: Arc<Self>,
        mut step: ClaimedStep,
        _permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        loop {
            let Some(result) = self.attempt(&step).await else {
                return;
            };
            let now = OffsetDateTime::now_utc();
            let finish = FinishStep {
                run_id: step.run_id.clone(),
                step: step.step.clone(),
                attempt: step.attempt,
                worker: self.config.worker_id.clone(),
                result,
                now,
                claim_next: 1,
                lease_until: verdict::later(now, self.config.lease),
                limits: self.limits.clone(),
            };
            match self.store.finish_step(finish, self.registry.clone()).await {
                Ok(finished) => match finished.next.into_iter().next() {
                    Some(next) => step = next,
                    None => return,
                },
                Err(StoreError::LeaseLost) => {
                    tracing::warn!(run = %step.run_id, step = %step.step, "lease lost before the step finished; its result is dropped");
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, run = %step.run_id, step = %step.step, "recording the step failed; it runs again when its lease expires");
                    return;
                }
            }
        }
    }

    /// One attempt at a step; `None` when the lease was lost meanwhile.
    async fn attempt(&self, step: &ClaimedStep) -> Option<StepResult> {
        let Some((definition, handler)) = self.lookup(step) else {
            return Some(failure(
                step,
                format!(
                    "no handler for step {} of workflow {} on this node",
                    step.step, step.workflow
                ),
            ));
        };
        let now = OffsetDateTime::now_utc();
        if let Some(verdict) =
            verdict::before_running(definition, step.attempt, step.first_started_at, now)
        {
            return Some(recorded(step, verdict));
        }
        let context = context_of(step);
        if let Some(observer) = &self.config.observer {
            observer.handler_started(step, OffsetDateTime::now_utc());
        }
        let run = tokio::time::timeout(definition.timeout, handler.run(&context));
        let ended = tokio::select! {
            outcome = run => match outcome {
                Ok(returned) => Ended::Returned(returned),
                Err(_) => Ended::TimedOut,
            },
            () = self.keep_lease(step) => return None,
        };
        let verdict = verdict::after_running(
            definition,
            step.attempt,
            ended,
            OffsetDateTime::now_utc(),
            rand::rng().random::<f64>(),
        );
        Some(recorded(step, verdict))
    }

    fn lookup(&self, step: &ClaimedStep) -> Option<(&StepDef, Arc<dyn StepHandler>)> {
        let registered = self.registry.workflows.get(&step.workflow)?;
        let definition = registered.workflow.step(&step.step)?;
        let handler = registered.handlers.get(&step.step)?.clone();
        Some((definition, handler))
    }

    /// Heartbeats until the lease is lost; never returns while it is held.
    async fn keep_lease(&self, step: &ClaimedStep) {
        loop {
            tokio::time::sleep(self.config.heartbeat_every).await;
            let lease_until = verdict::later(OffsetDateTime::now_utc(), self.config.lease);
            match self
                .store
                .heartbeat(
                    &step.run_id,
                    &step.step,
                    step.attempt,
                    &self.config.worker_id,
                    lease_until,
                )
                .await
            {
                Ok(()) => {}
                Err(StoreError::LeaseLost) => {
                    tracing::warn!(run = %step.run_id, step = %step.step, "lease lost; abandoning the attempt");
                    return;
                }
                Err(error) => tracing::warn!(%error, "heartbeat failed; trying again"),
            }
        }
    }
}

/// The verdict as the store records it.
fn recorded(step: &ClaimedStep, verdict: Verdict) -> StepResult {
    match verdict {
        Verdict::Succeeded(output) => StepResult::Succeeded {
            output: output.map(|value| value.to_string()),
        },
        Verdict::PokeAt(due_at) => StepResult::Poke { due_at },
        Verdict::RetryAt { error, at } => StepResult::Retry { error, due_at: at },
        Verdict::Skipped(reason) => StepResult::Skipped { reason },
        Verdict::Failed(error) => failure(step, error),
    }
}

fn context_of(step: &ClaimedStep) -> StepContext {
    StepContext {
        run_id: step.run_id.clone(),
        workflow: step.workflow.clone(),
        step: step.step.clone(),
        attempt: step.attempt,
        store_id: step.store_id.clone(),
        order_id: step.order_id.clone(),
        input: serde_json::from_str(&step.input).unwrap_or(serde_json::Value::Null),
        outputs: step
            .outputs
            .iter()
            .map(|(name, output)| {
                let value = serde_json::from_str(output)
                    .unwrap_or_else(|_| serde_json::Value::String(output.clone()));
                (name.clone(), value)
            })
            .collect(),
        run_cancelled: step.run_status == RunStatus::Cancelled,
    }
}

/// Fails the step for good, with the alert operations will get.
fn failure(step: &ClaimedStep, error: String) -> StepResult {
    let order = step
        .order_id
        .as_ref()
        .map(|id| format!(" for order {id}"))
        .unwrap_or_default();
    let alert = NewAlert {
        alert_id: orderflow_domain::id::time_ordered_id(
            "alr_",
            unix_millis(OffsetDateTime::now_utc()),
            rand::rng().random(),
        ),
        title: format!(
            "Step {} failed ({} workflow{order})",
            step.step, step.workflow
        ),
        body: format!(
            "Step {} of run {} ({}{order}) gave up after attempt {}: {error}",
            step.step, step.run_id, step.workflow, step.attempt
        ),
    };
    StepResult::Failed { error, alert }
}
