//! The engine's pure parts as data: which definitions build, what the planner decides from a
//! run's step statuses, and how long the retry policy waits.

use std::time::Duration;

use orderflow_store::{PlannedStep, RunSnapshot, RunStatus, StepStatus};
use orderflow_workflow::{
    DefinitionError, RetryPolicy, TriggerRule, Workflow, WorkflowBuilder, step,
};
use proptest::prelude::*;

use StepStatus::*;

/// validate → charge → {slip ‖ email} → ship; cleanup (all done) and refund (one failed)
/// after everything.
fn shop() -> Workflow {
    WorkflowBuilder::new("shop")
        .step(step("validate"))
        .step(step("charge").after(["validate"]))
        .step(step("slip").after(["charge"]))
        .step(step("email").after(["charge"]))
        .step(step("ship").after(["slip", "email"]))
        .step(
            step("cleanup")
                .after(["ship"])
                .trigger(TriggerRule::AllDone),
        )
        .step(
            step("refund")
                .after(["validate", "charge", "slip", "email", "ship"])
                .trigger(TriggerRule::OneFailed),
        )
        .build()
        .expect("a valid workflow")
}

fn snapshot(status: RunStatus, steps: &[(&str, StepStatus)]) -> RunSnapshot {
    RunSnapshot {
        workflow: "shop".into(),
        status,
        steps: steps.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect(),
    }
}

fn decided(run: &RunSnapshot) -> (Vec<(String, StepStatus)>, Option<RunStatus>) {
    let plan = shop().plan(run);
    let steps = plan
        .steps
        .iter()
        .map(|(name, decision)| (name.clone(), decision.status()))
        .collect();
    (steps, plan.finished)
}

fn names(pairs: &[(&str, StepStatus)]) -> Vec<(String, StepStatus)> {
    pairs.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
}

#[test]
fn a_step_is_ready_only_when_every_upstream_step_succeeded() {
    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Succeeded),
            ("slip", Succeeded),
            ("email", Running),
            ("ship", Waiting),
            ("cleanup", Waiting),
            ("refund", Waiting),
        ],
    );
    assert_eq!(decided(&run), (Vec::new(), None));

    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Succeeded),
            ("slip", Succeeded),
            ("email", Succeeded),
            ("ship", Waiting),
            ("cleanup", Waiting),
            ("refund", Waiting),
        ],
    );
    assert_eq!(decided(&run), (names(&[("ship", Ready)]), None));
}

#[test]
fn parallel_branches_both_start_when_their_common_upstream_succeeds() {
    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Succeeded),
            ("slip", Waiting),
            ("email", Waiting),
            ("ship", Waiting),
            ("cleanup", Waiting),
            ("refund", Waiting),
        ],
    );
    let (steps, finished) = decided(&run);
    assert_eq!(finished, None);
    assert_eq!(steps.len(), 2);
    assert!(steps.contains(&("slip".into(), Ready)));
    assert!(steps.contains(&("email".into(), Ready)));
}

#[test]
fn a_failure_fails_everything_after_it_and_starts_compensation_and_cleanup() {
    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Failed),
            ("slip", Waiting),
            ("email", Waiting),
            ("ship", Waiting),
            ("cleanup", Waiting),
            ("refund", Waiting),
        ],
    );
    let (steps, finished) = decided(&run);
    assert_eq!(finished, None, "refund and cleanup still have to run");
    for failed in ["slip", "email", "ship"] {
        assert!(
            steps.contains(&(failed.into(), UpstreamFailed)),
            "{failed}: {steps:?}"
        );
    }
    assert!(steps.contains(&("cleanup".into(), Ready)));
    assert!(steps.contains(&("refund".into(), Ready)));
    let reason = shop()
        .plan(&run)
        .steps
        .into_iter()
        .find(|(name, _)| name == "slip")
        .map(|(_, decision)| decision);
    assert_eq!(
        reason,
        Some(PlannedStep::UpstreamFailed {
            reason: "upstream step charge is failed".into()
        })
    );
}

#[test]
fn compensation_is_skipped_when_nothing_failed_and_the_run_succeeds() {
    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Succeeded),
            ("slip", Succeeded),
            ("email", Succeeded),
            ("ship", Succeeded),
            ("cleanup", Succeeded),
            ("refund", Waiting),
        ],
    );
    assert_eq!(
        decided(&run),
        (names(&[("refund", Skipped)]), Some(RunStatus::Succeeded))
    );
}

#[test]
fn a_run_with_a_failed_step_ends_failed_once_its_compensation_ran() {
    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Failed),
            ("slip", UpstreamFailed),
            ("email", UpstreamFailed),
            ("ship", UpstreamFailed),
            ("cleanup", Succeeded),
            ("refund", Succeeded),
        ],
    );
    assert_eq!(decided(&run), (Vec::new(), Some(RunStatus::Failed)));
}

#[test]
fn an_operator_skip_lets_the_run_go_on() {
    let run = snapshot(
        RunStatus::Running,
        &[
            ("validate", Succeeded),
            ("charge", Skipped),
            ("slip", Waiting),
            ("email", Waiting),
            ("ship", Waiting),
            ("cleanup", Waiting),
            ("refund", Waiting),
        ],
    );
    let (steps, _) = decided(&run);
    assert!(steps.contains(&("slip".into(), Ready)));
    assert!(steps.contains(&("email".into(), Ready)));
}

#[test]
fn cancelling_stops_what_has_not_started_and_compensates() {
    let run = snapshot(
        RunStatus::Cancelled,
        &[
            ("validate", Succeeded),
            ("charge", Running),
            ("slip", Waiting),
            ("email", Waiting),
            ("ship", Waiting),
            ("cleanup", Waiting),
            ("refund", Waiting),
        ],
    );
    let (steps, finished) = decided(&run);
    for cancelled in ["slip", "email", "ship"] {
        assert!(
            steps.contains(&(cancelled.into(), Cancelled)),
            "{cancelled}: {steps:?}"
        );
    }
    assert!(steps.contains(&("refund".into(), Ready)), "{steps:?}");
    assert!(
        !steps.iter().any(|(name, _)| name == "charge"),
        "a running step is left to finish"
    );
    assert_eq!(finished, None);

    let done = snapshot(
        RunStatus::Cancelled,
        &[
            ("validate", Succeeded),
            ("charge", Succeeded),
            ("slip", Cancelled),
            ("email", Cancelled),
            ("ship", Cancelled),
            ("cleanup", Succeeded),
            ("refund", Succeeded),
        ],
    );
    assert_eq!(decided(&done), (Vec::new(), Some(RunStatus::Cancelled)));
}

#[test]
fn definitions_with_cycles_unknown_or_duplicate_steps_are_refused() {
    let cycle = WorkflowBuilder::new("loop")
        .step(step("a").after(["c"]))
        .step(step("b").after(["a"]))
        .step(step("c").after(["b"]))
        .step(step("free"))
        .build();
    match cycle {
        Err(DefinitionError::Cycle { steps, .. }) => assert_eq!(steps, ["a", "b", "c"]),
        other => panic!("a cycle was accepted: {other:?}"),
    }
    assert!(matches!(
        WorkflowBuilder::new("typo")
            .step(step("a").after(["b"]))
            .build(),
        Err(DefinitionError::UnknownUpstream { .. })
    ));
    assert!(matches!(
        WorkflowBuilder::new("twice")
            .step(step("a"))
            .step(step("a"))
            .build(),
        Err(DefinitionError::DuplicateStep { .. })
    ));
    assert!(matches!(
        WorkflowBuilder::new("empty").build(),
        Err(DefinitionError::Empty(_))
    ));
    assert!(matches!(
        WorkflowBuilder::new("never")
            .step(step("a").retry(RetryPolicy::new(0, Duration::ZERO, Duration::ZERO)))
            .build(),
        Err(DefinitionError::NoAttempts { .. })
    ));
}

#[test]
fn a_new_run_starts_with_its_roots_ready_and_downstream_is_transitive() {
    let workflow = shop();
    let ready: Vec<String> = workflow
        .seeds()
        .into_iter()
        .filter(|s| s.ready)
        .map(|s| s.name)
        .collect();
    assert_eq!(ready, ["validate"]);
    assert_eq!(
        workflow.downstream_of("slip"),
        ["ship", "cleanup", "refund"]
    );
    assert_eq!(workflow.downstream_of("refund"), Vec::<String>::new());
}

#[test]
fn retry_delays_double_up_to_the_cap_with_equal_jitter() {
    let policy = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_secs(1));
    // No jitter drawn: half the delay; all of it drawn: the whole delay.
    assert_eq!(policy.delay(1, 0.0), Duration::from_millis(50));
    assert_eq!(policy.delay(1, 1.0), Duration::from_millis(100));
    assert_eq!(policy.delay(2, 1.0), Duration::from_millis(200));
    assert_eq!(policy.delay(3, 1.0), Duration::from_millis(400));
    assert_eq!(policy.delay(5, 1.0), Duration::from_secs(1), "capped");
    assert_eq!(policy.delay(40, 1.0), Duration::from_secs(1), "no overflow");
    assert!(policy.allows_another_after(9));
    assert!(!policy.allows_another_after(10));
}

proptest! {
    #[test]
    fn a_retry_never_waits_less_than_half_its_delay_nor_more_than_the_cap(
        attempt in 1u32..64,
        random in 0.0f64..1.0,
        initial_ms in 1u64..10_000,
        cap_ms in 1u64..600_000,
    ) {
        let policy = RetryPolicy::new(64, Duration::from_millis(initial_ms), Duration::from_millis(cap_ms));
        let delay = policy.delay(attempt, random);
        let full = policy.delay(attempt, 1.0);
        prop_assert!(delay <= Duration::from_millis(cap_ms));
        prop_assert!(delay >= full / 2);
        prop_assert!(policy.delay(attempt + 1, 1.0) >= full, "delays never shrink");
    }
}
