//! What the store keeps of workflow runs: runs, their steps, attempts and alerts.
//!
//! The store knows nothing of a workflow's shape. Whenever a step changes, it hands the run's
//! step statuses to a [`RunPlanner`] (the engine) inside the same transaction, with the run
//! locked, and applies what the planner decides. Two steps of one run finishing at once are
//! therefore planned one after the other, never from the same stale picture.

use std::fmt;
use std::str::FromStr;

use orderflow_domain::{OrderId, StoreId};
use time::OffsetDateTime;

use crate::error::Error;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self, Error> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(Error::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other
                    ))),
                }
            }
        }
    };
}

text_enum!(
    /// Where a run stands. A cancelled run still runs its compensation steps.
    RunStatus {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

text_enum!(
    StepStatus {
        Waiting => "waiting",
        Ready => "ready",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Skipped => "skipped",
        UpstreamFailed => "upstream_failed",
        Cancelled => "cancelled",
    }
);

impl StepStatus {
    /// Whether the step will not run again unless an operator retries it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Skipped | Self::UpstreamFailed | Self::Cancelled
        )
    }
}

/// A run to create: with an order in [`crate::PlaceOrder`], or on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub run_id: String,
    pub workflow: String,
    /// Makes starting the same run twice a no-op (a cron tick, say).
    pub dedupe_key: Option<String>,
    /// The run's parameters, as JSON.
    pub input: String,
    /// Every step of the workflow, `ready` for those without upstream steps.
    pub steps: Vec<StepSeed>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSeed {
    pub name: String,
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRun {
    pub run: NewRun,
    pub store_id: StoreId,
    pub order_id: Option<OrderId>,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStarted {
    pub run_id: String,
    /// False when a run with the same dedupe key existed; `run_id` is then that run's.
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub run_id: String,
    pub workflow: String,
    pub store_id: StoreId,
    pub order_id: Option<OrderId>,
    pub status: RunStatus,
    pub input: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    /// Empty in listings.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub due_at: Option<OffsetDateTime>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    pub first_started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub output: Option<String>,
    pub error: Option<String>,
    /// Filled by [`crate::Store::get_run`] only.
    pub history: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempt: u32,
    pub worker: String,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub order_id: Option<OrderId>,
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    pub limit: u32,
    /// Newest first: continue with runs older than this one.
    pub before: Option<String>,
}

/// What a worker leased: one step of one run, with what it needs to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedStep {
    pub run_id: String,
    pub workflow: String,
    pub store_id: StoreId,
    pub order_id: Option<OrderId>,
    pub run_status: RunStatus,
    pub input: String,
    pub step: String,
    /// This try's number, from 1; a sensor keeps its number across pokes.
    pub attempt: u32,
    pub first_started_at: OffsetDateTime,
    /// Outputs of the run's steps that succeeded, by step name.
    pub outputs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub worker: String,
    pub limit: u32,
    pub now: OffsetDateTime,
    pub lease_until: OffsetDateTime,
    /// Steps that may run only so many at once, counted over every worker.
    pub limits: Vec<StepLimit>,
}

/// A cap on the attempts of one step running at once across every worker and node, for the
/// rate limits of the providers it calls. An attempt counts while its lease is unexpired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLimit {
    pub step: String,
    pub at_once: u32,
}

/// How many more attempts of each limited step may start, given how many are running.
pub(crate) fn room_left(
    limits: &[StepLimit],
    running: &std::collections::HashMap<String, i64>,
) -> Vec<(String, u32)> {
    limits
        .iter()
        .map(|limit| {
            let busy = running.get(&limit.step).copied().unwrap_or(0);
            let free = i64::from(limit.at_once).saturating_sub(busy).max(0);
            (limit.step.clone(), u32::try_from(free).unwrap_or(0))
        })
        .collect()
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    Succeeded {
        output: Option<String>,
    },
    /// Try again at `due_at`.
    Retry {
        error: String,
        due_at: OffsetDateTime,
    },
    /// A sensor's condition does not hold yet: look again at `due_at`, same attempt.
    Poke {
        due_at: OffsetDateTime,
    },
    /// No more tries: the step failed for good, and operations are told.
    Failed {
        error: String,
        alert: NewAlert,
    },
    /// The step is given up without failing the run (a sensor whose wait may time out).
    Skipped {
        reason: String,
    },
}

impl StepResult {
    /// What the step's row and its attempt's row become: both backends write the same.
    pub(crate) fn recorded(&self) -> Recorded<'_> {
        let (status, outcome, due_at, output, error) = match self {
            Self::Succeeded { output } => (
                StepStatus::Succeeded,
                "succeeded",
                None,
                output.as_deref(),
                None,
            ),
            Self::Retry { error, due_at } => (
                StepStatus::Ready,
                "failed",
                Some(*due_at),
                None,
                Some(error.as_str()),
            ),
            Self::Poke { due_at } => (StepStatus::Ready, "waiting", Some(*due_at), None, None),
            Self::Failed { error, .. } => (
                StepStatus::Failed,
                "failed",
                None,
                None,
                Some(error.as_str()),
            ),
            Self::Skipped { reason } => (
                StepStatus::Skipped,
                "skipped",
                None,
                None,
                Some(reason.as_str()),
            ),
        };
        Recorded {
            status,
            outcome,
            due_at,
            output,
            error,
            poking: matches!(self, Self::Poke { .. }),
        }
    }
}

pub(crate) struct Recorded<'a> {
    pub status: StepStatus,
    /// The attempt's outcome: `succeeded`, `failed`, `waiting` (a poke), `skipped`.
    pub outcome: &'static str,
    pub due_at: Option<OffsetDateTime>,
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    /// A sensor between pokes: its next claim resumes this attempt.
    pub poking: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub alert_id: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct FinishStep {
    pub run_id: String,
    pub step: String,
    pub attempt: u32,
    pub worker: String,
    pub result: StepResult,
    pub now: OffsetDateTime,
    /// Lease up to this many of the steps this one made ready to the same worker, so that it
    /// goes straight on with them.
    pub claim_next: u32,
    pub lease_until: OffsetDateTime,
    /// Honoured when leasing the next steps, as by a claim.
    pub limits: Vec<StepLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub run_status: RunStatus,
    pub next: Vec<ClaimedStep>,
    /// Steps made ready but left for other workers (beyond `claim_next`).
    pub left_ready: usize,
}

/// A run's steps as the planner sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSnapshot {
    pub workflow: String,
    pub status: RunStatus,
    pub steps: Vec<(String, StepStatus)>,
}

/// What the planner decided: steps that become ready, skipped or upstream-failed, and the run's
/// end when every step has finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPlan {
    pub steps: Vec<(String, PlannedStep)>,
    pub finished: Option<RunStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedStep {
    Ready,
    /// The step's trigger rule can no longer be met; `reason` says which.
    Skipped {
        reason: String,
    },
    UpstreamFailed {
        reason: String,
    },
    /// The run was cancelled before the step started.
    Cancelled {
        reason: String,
    },
}

impl PlannedStep {
    pub fn status(&self) -> StepStatus {
        match self {
            Self::Ready => StepStatus::Ready,
            Self::Skipped { .. } => StepStatus::Skipped,
            Self::UpstreamFailed { .. } => StepStatus::UpstreamFailed,
            Self::Cancelled { .. } => StepStatus::Cancelled,
        }
    }
}

/// The engine's side of a step change: given where a run stands, what follows.
pub trait RunPlanner: Send + Sync + fmt::Debug {
    fn plan(&self, run: &RunSnapshot) -> RunPlan;
}

/// An operator's action on a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    /// Run the step again with fresh tries; `reset` are the steps downstream of it that had
    /// given up because of it and wait again.
    Retry { reset: Vec<String> },
    /// Count the step as done without running it; `reset` as for a retry.
    Skip { reset: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub alert_id: String,
    pub run_id: String,
    pub step: String,
    pub order_id: Option<OrderId>,
    pub title: String,
    pub body: String,
    pub attempts: u32,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOutcome {
    Sent,
    RetryAt { error: String, at: OffsetDateTime },
}

/// Refuses an operator's action that makes no sense for where the run and step stand.
pub(crate) fn check_action(
    run: RunStatus,
    step: StepStatus,
    action: &StepAction,
) -> Result<(), Error> {
    if run == RunStatus::Cancelled {
        return Err(Error::InvalidAction(
            "the run was cancelled; its steps can no longer be retried or skipped".into(),
        ));
    }
    let allowed = match action {
        StepAction::Retry { .. } => step == StepStatus::Failed,
        StepAction::Skip { .. } => matches!(
            step,
            StepStatus::Waiting
                | StepStatus::Ready
                | StepStatus::Failed
                | StepStatus::UpstreamFailed
        ),
    };
    if allowed {
        Ok(())
    } else {
        let verb = match action {
            StepAction::Retry { .. } => "retried (only a failed step can be)",
            StepAction::Skip { .. } => "skipped (a running or finished step cannot be)",
        };
        Err(Error::InvalidAction(format!(
            "a step that is {step} cannot be {verb}"
        )))
    }
}

/// Being the one node that does something (start cron runs): held until dropped, or until the
/// connection that holds it dies.
pub trait Leadership: Send + Sync + fmt::Debug {
    fn is_held(&self) -> bool;
}
