//! What becomes of an attempt, as data and on a fake clock: retries on the backoff schedule
//! (with the provider's `Retry-After` as a floor), the last attempt failing for good, timeouts,
//! and sensors poking until their own timeout fails or skips them.

use std::time::Duration;

use orderflow_workflow::verdict::{Ended, Verdict, after_running, before_running};
use orderflow_workflow::{OnTimeout, Outcome, RetryPolicy, SensorPolicy, StepDef, StepError, step};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-04 10:00:00 UTC);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 4 attempts, 100 ms doubling up to 1 s, 5 s per attempt.
fn charge() -> StepDef {
    step("charge")
        .retry(RetryPolicy::new(4, ms(100), ms(1_000)))
        .timeout(Duration::from_secs(5))
}

/// Looks every 2 s for up to a minute, then gives up as `on_timeout` says.
fn stock_sensor(on_timeout: OnTimeout) -> StepDef {
    step("reserve").sensor(SensorPolicy {
        poke_every: Duration::from_secs(2),
        timeout: Duration::from_secs(60),
        on_timeout,
    })
}

fn retry(message: &str, after: Option<Duration>) -> Ended {
    Ended::Returned(Err(StepError::Retry {
        message: message.into(),
        after,
    }))
}

fn retry_at(error: &str, wait: Duration) -> Verdict {
    Verdict::RetryAt {
        error: error.into(),
        at: NOW + wait,
    }
}

/// `(attempt, how it ended, jitter, expected verdict)` for one step definition.
fn check(definition: &StepDef, cases: Vec<(u32, Ended, f64, Verdict)>) {
    for (attempt, ended, jitter, expected) in cases {
        let described = format!("attempt {attempt} {ended:?} with jitter {jitter}");
        assert_eq!(
            after_running(definition, attempt, ended, NOW, jitter),
            expected,
            "{described}"
        );
    }
}

#[test]
fn a_failed_attempt_is_retried_on_the_backoff_schedule_with_jitter_between_half_and_all_of_it() {
    check(
        &charge(),
        vec![
            (1, retry("503", None), 0.0, retry_at("503", ms(50))),
            (1, retry("503", None), 0.5, retry_at("503", ms(75))),
            (2, retry("503", None), 0.0, retry_at("503", ms(100))),
            (3, retry("503", None), 0.5, retry_at("503", ms(300))),
        ],
    );
}

#[test]
fn the_backoff_never_exceeds_its_cap() {
    let patient = step("charge").retry(RetryPolicy::new(40, ms(100), ms(1_000)));
    check(
        &patient,
        vec![
            (4, retry("503", None), 0.0, retry_at("503", ms(400))),
            (5, retry("503", None), 0.0, retry_at("503", ms(500))),
            (39, retry("503", None), 0.5, retry_at("503", ms(750))),
        ],
    );
}

#[test]
fn a_providers_retry_after_is_waited_out_even_when_the_backoff_is_shorter() {
    check(
        &charge(),
        vec![
            (
                1,
                retry("429", Some(Duration::from_secs(7))),
                0.0,
                retry_at("429", Duration::from_secs(7)),
            ),
            // A Retry-After shorter than the backoff does not shorten it.
            (3, retry("429", Some(ms(10))), 0.0, retry_at("429", ms(200))),
        ],
    );
}

#[test]
fn the_last_attempt_fails_for_good_and_says_which_it_was() {
    check(
        &charge(),
        vec![
            (
                4,
                retry("503", None),
                0.0,
                Verdict::Failed("503 (attempt 4 of 4)".into()),
            ),
            (
                4,
                Ended::TimedOut,
                0.0,
                Verdict::Failed("timed out after 5 s (attempt 4 of 4)".into()),
            ),
        ],
    );
}

#[test]
fn a_timed_out_attempt_is_retried_like_a_failed_one() {
    check(
        &charge(),
        vec![(
            1,
            Ended::TimedOut,
            0.0,
            retry_at("timed out after 5 s", ms(50)),
        )],
    );
}

#[test]
fn a_fatal_error_fails_at_once_whatever_attempts_are_left() {
    check(
        &charge(),
        vec![(
            1,
            Ended::Returned(Err(StepError::fatal("card declined"))),
            0.0,
            Verdict::Failed("card declined".into()),
        )],
    );
}

#[test]
fn success_carries_the_steps_output() {
    let output = serde_json::json!({"payment_id": "pi_1"});
    check(
        &charge(),
        vec![(
            2,
            Ended::Returned(Ok(Outcome::Done(Some(output.clone())))),
            0.0,
            Verdict::Succeeded(Some(output)),
        )],
    );
}

#[test]
fn a_sensor_that_is_not_satisfied_pokes_again_after_its_interval() {
    check(
        &stock_sensor(OnTimeout::Fail),
        vec![(
            1,
            Ended::Returned(Ok(Outcome::NotYet)),
            0.5,
            Verdict::PokeAt(NOW + Duration::from_secs(2)),
        )],
    );
}

#[test]
fn a_step_that_is_not_a_sensor_cannot_answer_not_yet() {
    check(
        &charge(),
        vec![(
            1,
            Ended::Returned(Ok(Outcome::NotYet)),
            0.0,
            Verdict::Failed("a step that is not a sensor answered 'not yet'".into()),
        )],
    );
}

#[test]
fn a_sensor_runs_until_its_timeout_then_fails_or_skips_as_declared() {
    let minute = time::Duration::seconds(60);
    let waited = "the condition did not hold within 60 s".to_owned();
    for (on_timeout, first_started_at, expected) in [
        (OnTimeout::Fail, NOW - time::Duration::seconds(59), None),
        (
            OnTimeout::Fail,
            NOW - minute,
            Some(Verdict::Failed(waited.clone())),
        ),
        (
            OnTimeout::Skip,
            NOW - minute,
            Some(Verdict::Skipped(waited.clone())),
        ),
    ] {
        assert_eq!(
            before_running(&stock_sensor(on_timeout), 1, first_started_at, NOW),
            expected,
            "{on_timeout:?} first started at {first_started_at}"
        );
    }
}

#[test]
fn a_step_taken_over_after_its_last_attempt_fails_instead_of_running_again() {
    assert_eq!(before_running(&charge(), 4, NOW, NOW), None);
    assert_eq!(
        before_running(&charge(), 5, NOW, NOW),
        Some(Verdict::Failed(
            "the worker running attempt 4 of 4 stopped responding".into()
        ))
    );
}
