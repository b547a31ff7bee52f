//! The durable workflow engine.
//!
//! - [`definition`]: workflows declared in code as DAGs of steps, checked when built.
//! - [`plan`]: what follows a step change, as a pure function of the run's step statuses.
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

pub use alerts::{AlertDispatcher, AlertSink};
pub use control::Control;
pub use cron::Cron;
pub use definition::{
    DefinitionError, OnTimeout, RetryPolicy, SensorPolicy, StepDef, TriggerRule, Workflow,
    WorkflowBuilder, step,
};
pub use engine::{
    Outcome, Registry, RegistryError, StepContext, StepError, StepHandler, Worker, WorkerConfig,
    WorkerHandle,
};
pub use schedule::Scheduler;
