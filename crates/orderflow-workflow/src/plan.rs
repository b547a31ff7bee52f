//! What follows a step change, decided from the run's step statuses alone: which waiting steps
//! become ready, which can no longer run, and whether the run is over. Pure, so the store can
//! call it inside the transaction that changed the run.

use std::collections::HashMap;

use orderflow_store::{PlannedStep, RunPlan, RunSnapshot, RunStatus, StepStatus};

use crate::definition::{TriggerRule, Workflow};

/// A step counts as having failed, for its downstream steps, when it failed, could not run
/// because of a failure, or was cancelled.
fn failed(status: StepStatus) -> bool {
    matches!(
        status,
        StepStatus::Failed | StepStatus::UpstreamFailed | StepStatus::Cancelled
    )
}

/// A step skipped (by an operator, or because it was not needed) lets its downstream go on.
fn went_well(status: StepStatus) -> bool {
    matches!(status, StepStatus::Succeeded | StepStatus::Skipped)
}

impl Workflow {
    /// Plans until nothing more changes: a step made upstream-failed may in turn decide its own
    /// downstream steps in the same call.
    pub fn plan(&self, run: &RunSnapshot) -> RunPlan {
        let mut statuses: HashMap<&str, StepStatus> = run
            .steps
            .iter()
            .map(|(name, status)| (name.as_str(), *status))
            .collect();
        let cancelled = run.status == RunStatus::Cancelled;
        let mut plan = RunPlan::default();
        loop {
            let mut changed = false;
            for step in self.topological() {
                let Some(&status) = statuses.get(step.name.as_str()) else {
                    continue;
                };
                let decision = match status {
                    StepStatus::Waiting | StepStatus::Ready
                        if cancelled && step.trigger == TriggerRule::AllSucceeded =>
                    {
                        Some(PlannedStep::Cancelled {
                            reason: "the run was cancelled".into(),
                        })
                    }
                    StepStatus::Waiting => self.decide(step, &statuses),
                    _ => None,
                };
                if let Some(decision) = decision {
                    statuses.insert(step.name.as_str(), decision.status());
                    plan.steps.push((step.name.clone(), decision));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if statuses.values().all(|s| s.is_finished()) {
            plan.finished = Some(if cancelled {
                RunStatus::Cancelled
            } else if statuses.values().any(|&s| failed(s)) {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            });
        }
        plan
    }

    fn decide(
        &self,
        step: &crate::definition::StepDef,
        statuses: &HashMap<&str, StepStatus>,
    ) -> Option<PlannedStep> {
        let upstream: Vec<(&str, StepStatus)> = step
            .upstream
            .iter()
            .map(|name| {
                let status = statuses.get(name.as_str()).copied();
                (name.as_str(), status.unwrap_or(StepStatus::Waiting))
            })
            .collect();
        let all_finished = upstream.iter().all(|(_, s)| s.is_finished());
        let first_failure = upstream.iter().find(|(_, s)| failed(*s));
        match step.trigger {
            TriggerRule::AllSucceeded => {
                if let Some((name, status)) = first_failure {
                    Some(PlannedStep::UpstreamFailed {
                        reason: format!("upstream step {name} is {status}"),
                    })
                } else if upstream.iter().all(|(_, s)| went_well(*s)) {
                    Some(PlannedStep::Ready)
                } else {
                    None
                }
            }
            TriggerRule::AllDone => all_finished.then_some(PlannedStep::Ready),
            TriggerRule::OneFailed => {
                if first_failure.is_some() {
                    Some(PlannedStep::Ready)
                } else if all_finished {
                    Some(PlannedStep::Skipped {
                        reason: "no upstream step failed".into(),
                    })
                } else {
                    None
                }
            }
        }
    }
}
