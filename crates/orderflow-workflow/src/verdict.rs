//! What becomes of an attempt, decided as a pure function of the step's definition, how the
//! attempt ended, the time and a random number: the worker only reads the clock and the random
//! source and writes the verdict down, so every timing rule is testable with a fake clock.

use std::time::Duration;

use time::OffsetDateTime;

use crate::definition::{OnTimeout, StepDef};
use crate::engine::{Outcome, StepError};

/// How one run of a step's handler ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Returned(Result<Outcome, StepError>),
    /// The handler did not answer within the step's timeout.
    TimedOut,
}

/// The fate of an attempt, before it is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Succeeded(Option<serde_json::Value>),
    /// A sensor looks again at `at`, within the same attempt.
    PokeAt(OffsetDateTime),
    /// Another attempt is due at `at`.
    RetryAt {
        error: String,
        at: OffsetDateTime,
    },
    Skipped(String),
    /// No more attempts: the run's failure path and an alert follow.
    Failed(String),
}

/// Decides, before the handler runs, whether attempt `attempt` should run at all: `Some` when
/// it must end without running (its worker died on the last allowed attempt, or a sensor has
/// waited past its timeout since `first_started_at`).
pub fn before_running(
    step: &StepDef,
    attempt: u32,
    first_started_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<Verdict> {
    if attempt > step.retry.max_attempts {
        // Only a lease taken over after the last allowed attempt gets here.
        let max = step.retry.max_attempts;
        return Some(Verdict::Failed(format!(
            "the worker running attempt {max} of {max} stopped responding"
        )));
    }
    let sensor = step.sensor?;
    if now - first_started_at < sensor.timeout {
        return None;
    }
    let waited = format!(
        "the condition did not hold within {} s",
        sensor.timeout.as_secs_f64()
    );
    Some(match sensor.on_timeout {
        OnTimeout::Fail => Verdict::Failed(waited),
        OnTimeout::Skip => Verdict::Skipped(waited),
    })
}

/// Decides what follows attempt `attempt` that `ended` at `now`; `jitter` is uniform in
/// `[0, 1)` and spreads retries of many runs failing together.
pub fn after_running(
    step: &StepDef,
    attempt: u32,
    ended: Ended,
    now: OffsetDateTime,
    jitter: f64,
) -> Verdict {
    let (error, at_least) = match ended {
        Ended::Returned(Ok(Outcome::Done(output))) => return Verdict::Succeeded(output),
        Ended::Returned(Ok(Outcome::NotYet)) => {
            return match step.sensor {
                Some(sensor) => Verdict::PokeAt(later(now, sensor.poke_every)),
                None => Verdict::Failed("a step that is not a sensor answered 'not yet'".into()),
            };
        }
        Ended::Returned(Err(StepError::Fatal(error))) => return Verdict::Failed(error),
        Ended::Returned(Err(StepError::Retry { message, after })) => (message, after),
        Ended::TimedOut => (
            format!("timed out after {} s", step.timeout.as_secs_f64()),
            None,
        ),
    };
    if !step.retry.allows_another_after(attempt) {
        return Verdict::Failed(format!(
            "{error} (attempt {attempt} of {})",
            step.retry.max_attempts
        ));
    }
    // The provider's Retry-After is a floor: coming back sooner would only be refused again.
    let wait = step
        .retry
        .delay(attempt, jitter)
        .max(at_least.unwrap_or_default());
    Verdict::RetryAt {
        error,
        at: later(now, wait),
    }
}

pub(crate) fn later(now: OffsetDateTime, delay: Duration) -> OffsetDateTime {
    time::Duration::try_from(delay)
        .ok()
        .and_then(|delay| now.checked_add(delay))
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}
