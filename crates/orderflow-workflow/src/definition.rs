//! Workflows declared in code: a DAG of named steps, each with its retry policy, timeout,
//! trigger rule and concurrency limit. [`WorkflowBuilder::build`] refuses a definition with a
//! cycle, an unknown or duplicate step, so a workflow that starts is well formed.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use orderflow_store::StepSeed;
use serde::Serialize;

use crate::cron::Cron;

/// When a step may run, given how its upstream steps ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream step succeeded (or was skipped by an operator). The default.
    AllSucceeded,
    /// Every upstream step finished, however: for cleanup.
    AllDone,
    /// At least one upstream step failed: for compensation. Skipped when all succeeded.
    OneFailed,
}

/// How often and how soon a failed attempt is tried again: exponential backoff from
/// `initial_delay`, doubled per attempt up to `max_delay`, with equal jitter (half the delay
/// fixed, half random) so that a burst of failures does not come back as a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    #[serde(rename = "initial_delay_ms", with = "millis")]
    pub initial_delay: Duration,
    #[serde(rename = "max_delay_ms", with = "millis")]
    pub max_delay: Duration,
}

impl RetryPolicy {
    pub const fn new(max_attempts: u32, initial_delay: Duration, max_delay: Duration) -> Self {
        Self {
            max_attempts,
            initial_delay,
            max_delay,
        }
    }

    /// No second try.
    pub const fn once() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// The wait before the try after `attempt` (1-based) failed; `random` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let base = self
            .initial_delay
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_delay);
        let half = base / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }

    pub fn allows_another_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(5, Duration::from_millis(200), Duration::from_secs(30))
    }
}

/// What a sensor does when its condition has not held by its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step fails (and the run's compensation follows).
    Fail,
    /// The step is skipped and the run goes on.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SensorPolicy {
    #[serde(rename = "poke_every_ms", with = "millis")]
    pub poke_every: Duration,
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    pub on_timeout: OnTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepDef {
    pub name: String,
    pub upstream: Vec<String>,
    pub trigger: TriggerRule,
    pub retry: RetryPolicy,
    /// How long one attempt may take before it counts as failed.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// `Some` for a step that waits for a condition.
    pub sensor: Option<SensorPolicy>,
    /// How many attempts of this step run at once, over every worker on every node.
    pub concurrency: Option<u32>,
}

/// Starts a step definition; chain the setters, then hand it to [`WorkflowBuilder::step`].
pub fn step(name: &str) -> StepDef {
    StepDef {
        name: name.to_owned(),
        upstream: Vec::new(),
        trigger: TriggerRule::AllSucceeded,
        retry: RetryPolicy::default(),
        timeout: Duration::from_secs(30),
        sensor: None,
        concurrency: None,
    }
}

impl StepDef {
    pub fn after<'a>(mut self, upstream: impl IntoIterator<Item = &'a str>) -> Self {
        self.upstream
            .extend(upstream.into_iter().map(str::to_owned));
        self
    }

    pub fn trigger(mut self, trigger: TriggerRule) -> Self {
        self.trigger = trigger;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn sensor(mut self, policy: SensorPolicy) -> Self {
        self.sensor = Some(policy);
        self
    }

    pub fn concurrency(mut self, limit: u32) -> Self {
        self.concurrency = Some(limit);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("workflow {0:?} has no steps")]
    Empty(String),
    #[error("workflow {workflow:?} declares step {step:?} twice")]
    DuplicateStep { workflow: String, step: String },
    #[error("step {step:?} of workflow {workflow:?} comes after {upstream:?}, which is not a step")]
    UnknownUpstream {
        workflow: String,
        step: String,
        upstream: String,
    },
    #[error("workflow {workflow:?} has a cycle through {steps:?}")]
    Cycle {
        workflow: String,
        steps: Vec<String>,
    },
    #[error("step {step:?} of workflow {workflow:?} needs at least one attempt")]
    NoAttempts { workflow: String, step: String },
}

#[derive(Debug)]
pub struct WorkflowBuilder {
    name: String,
    steps: Vec<StepDef>,
    schedule: Option<Cron>,
}

impl WorkflowBuilder {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            steps: Vec::new(),
            schedule: None,
        }
    }

    pub fn step(mut self, step: StepDef) -> Self {
        self.steps.push(step);
        self
    }

    /// Starts a run on this cron schedule (UTC), on one node at a time.
    pub fn schedule(mut self, cron: Cron) -> Self {
        self.schedule = Some(cron);
        self
    }

    pub fn build(self) -> Result<Workflow, DefinitionError> {
        let workflow = self.name;
        if self.steps.is_empty() {
            return Err(DefinitionError::Empty(workflow));
        }
        let mut index = HashMap::new();
        for (position, step) in self.steps.iter().enumerate() {
            if index.insert(step.name.clone(), position).is_some() {
                return Err(DefinitionError::DuplicateStep {
                    workflow,
                    step: step.name.clone(),
                });
            }
            if step.retry.max_attempts == 0 {
                return Err(DefinitionError::NoAttempts {
                    workflow,
                    step: step.name.clone(),
                });
            }
        }
        for step in &self.steps {
            if let Some(unknown) = step.upstream.iter().find(|u| !index.contains_key(*u)) {
                return Err(DefinitionError::UnknownUpstream {
                    workflow,
                    step: step.name.clone(),
                    upstream: unknown.clone(),
                });
            }
        }
        // Kahn's algorithm: whatever cannot be ordered sits on a cycle (or after one).
        let mut pending: Vec<usize> = self.steps.iter().map(|s| s.upstream.len()).collect();
        let mut downstream = vec![Vec::new(); self.steps.len()];
        for (position, step) in self.steps.iter().enumerate() {
            for upstream in &step.upstream {
                downstream[index[upstream]].push(position);
            }
        }
        let mut order: Vec<usize> = (0..self.steps.len()).filter(|&i| pending[i] == 0).collect();
        let mut next = 0;
        while next < order.len() {
            for &after in &downstream[order[next]] {
                pending[after] -= 1;
                if pending[after] == 0 {
                    order.push(after);
                }
            }
            next += 1;
        }
        if order.len() < self.steps.len() {
            let steps = (0..self.steps.len())
                .filter(|&i| pending[i] > 0)
                .map(|i| self.steps[i].name.clone())
                .collect();
            return Err(DefinitionError::Cycle { workflow, steps });
        }
        Ok(Workflow {
            name: workflow,
            steps: self.steps,
            index,
            downstream,
            topological: order,
            schedule: self.schedule,
        })
    }
}

/// A well-formed workflow: steps in declaration order, plus the DAG's edges both ways.
#[derive(Debug, Clone)]
pub struct Workflow {
    name: String,
    steps: Vec<StepDef>,
    index: HashMap<String, usize>,
    downstream: Vec<Vec<usize>>,
    topological: Vec<usize>,
    schedule: Option<Cron>,
}

impl Workflow {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn steps(&self) -> &[StepDef] {
        &self.steps
    }

    pub fn step(&self, name: &str) -> Option<&StepDef> {
        self.index.get(name).map(|&i| &self.steps[i])
    }

    pub fn schedule(&self) -> Option<&Cron> {
        self.schedule.as_ref()
    }

    /// Steps in an order where each comes after all its upstream steps.
    pub fn topological(&self) -> impl Iterator<Item = &StepDef> {
        self.topological.iter().map(|&i| &self.steps[i])
    }

    /// The steps of a new run: those without upstream steps start ready.
    pub fn seeds(&self) -> Vec<StepSeed> {
        self.steps
            .iter()
            .map(|step| StepSeed {
                name: step.name.clone(),
                ready: step.upstream.is_empty(),
            })
            .collect()
    }

    /// Every step that depends, directly or not, on `name`.
    pub fn downstream_of(&self, name: &str) -> Vec<String> {
        let Some(&start) = self.index.get(name) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(at) = stack.pop() {
            for &after in &self.downstream[at] {
                if seen.insert(after) {
                    stack.push(after);
                }
            }
        }
        seen.into_iter()
            .map(|i| self.steps[i].name.clone())
            .collect()
    }
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }
}
