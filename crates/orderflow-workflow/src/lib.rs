//! The durable workflow engine.
//!
//! - [`definition`]: workflows declared in code as DAGs of steps, checked when built.
//! - [`plan`]: what follows a step change, as a pure function of the run's step statuses.
//! - [`verdict`]: what becomes of an attempt (retry, poke, skip, fail), as a pure function of
//!   the definition, how the attempt ended and the time.
//! - [`engine`]: step handlers, the [`Registry`] and the [`Worker`] that claims and runs steps.
//! - [`control`]: an operator's retry, skip and cancel.
//! - [`alerts`], [`schedule`]: sending alerts, starting cron runs.
//!
//! State lives in the store (runs, steps, attempts, alerts); this crate holds none, so any
//! number of workers on any number of nodes share the work.

pub mod alerts;
pub mod control;
pub mod cron;
pub mod definition;
pub mod engine;
pub mod plan;
pub mod schedule;
pub mod verdict;

pub use alerts::{AlertDispatcher, AlertSink};
pub use control::Control;
pub use cron::Cron;
pub use definition::{
    DefinitionError, OnTimeout, RetryPolicy, SensorPolicy, StepDef, TriggerRule, Workflow,
    WorkflowBuilder, step,
};
pub use engine::{
    Outcome, Registry, RegistryError, StepContext, StepError, StepHandler, StepObserver, Worker,
    WorkerConfig, WorkerHandle,
};
pub use schedule::Scheduler;
