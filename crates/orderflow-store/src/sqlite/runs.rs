//! Workflow runs on SQLite. Every write goes through the single writer, so a run is never
//! planned by two transactions at once; the writer is the lock.

use std::collections::HashMap;

use orderflow_domain::{OrderId, StoreId};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::is_unique_violation;
use crate::common::{from_micros, micros, parse, run_visible};
use crate::error::{Error, Result};
use crate::model::{Page, Scope};
use crate::runs::check_action;
use crate::runs::*;

pub(super) fn insert_run(
    c: &Connection,
    run: &NewRun,
    store_id: &StoreId,
    order_id: Option<&OrderId>,
    now: OffsetDateTime,
) -> Result<RunStarted> {
    let inserted = c
        .prepare_cached(
            "INSERT INTO runs (run_id, workflow, store_id, order_id, dedupe_key, status, input, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?7)",
        )?
        .execute(params![
            run.run_id,
            run.workflow,
            store_id.as_str(),
            order_id.map(OrderId::as_str),
            run.dedupe_key,
            run.input,
            micros(now)
        ]);
    match inserted {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) && run.dedupe_key.is_some() => {
            let existing = c
                .prepare_cached("SELECT run_id FROM runs WHERE dedupe_key = ?1")?
                .query_row([&run.dedupe_key], |row| row.get(0))?;
            return Ok(RunStarted {
                run_id: existing,
                created: false,
            });
        }
        Err(error) => return Err(error.into()),
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO run_steps (run_id, step, position, status, due_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, seed) in run.steps.iter().enumerate() {
        let (status, due) = if seed.ready {
            (StepStatus::Ready, Some(micros(now)))
        } else {
            (StepStatus::Waiting, None)
        };
        insert.execute(params![
            run.run_id,
            seed.name,
            position as i64,
            status.as_str(),
            due
        ])?;
    }
    Ok(RunStarted {
        run_id: run.run_id.clone(),
        created: true,
    })
}

pub(super) fn claim(c: &Connection, claim: &Claim) -> Result<Vec<ClaimedStep>> {
    let limited: Vec<&str> = claim.limits.iter().map(|l| l.step.as_str()).collect();
    let limited = serde_json::to_string(&limited).map_err(|e| Error::Corrupt(e.to_string()))?;
    let now = micros(claim.now);
    let mut due: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT run_id, step FROM run_steps
             WHERE status = 'ready' AND due_at <= ?1 AND step NOT IN (SELECT value FROM json_each(?3))
             ORDER BY due_at LIMIT ?2",
        )?
        .query_map(params![now, claim.limit, limited], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let room = claim.limit.saturating_sub(due.len() as u32);
    if room > 0 {
        let expired = c
            .prepare_cached(
                "SELECT run_id, step FROM run_steps
                 WHERE status = 'running' AND lease_until <= ?1 AND step NOT IN (SELECT value FROM json_each(?3))
                 ORDER BY lease_until LIMIT ?2",
            )?
            .query_map(params![now, room, limited], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        due.extend(expired);
    }
    for (step, free) in room_left(&claim.limits, &running_counts(c, claim.now)?) {
        let take = free.min(claim.limit.saturating_sub(due.len() as u32));
        if take == 0 {
            continue;
        }
        for sql in [
            "SELECT run_id, step FROM run_steps
             WHERE status = 'ready' AND step = ?3 AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
            "SELECT run_id, step FROM run_steps
             WHERE status = 'running' AND step = ?3 AND lease_until <= ?1 ORDER BY lease_until LIMIT ?2",
        ] {
            let take = take.saturating_sub(
                due.iter()
                    .filter(|(_, claimed)| *claimed == step)
                    .count() as u32,
            );
            if take == 0 {
                break;
            }
            let of_step = c
                .prepare_cached(sql)?
                .query_map(params![now, take, step], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            due.extend(of_step);
        }
    }
    due.iter()
        .map(|(run_id, step)| lease(c, run_id, step, &claim.worker, claim.now, claim.lease_until))
        .collect()
}

/// Attempts of `step` running now under an unexpired lease.
fn running_of_step(c: &Connection, step: &str, now: OffsetDateTime) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT count(*) FROM run_steps WHERE status = 'running' AND step = ?1 AND lease_until > ?2",
    )?
    .query_row(params![step, micros(now)], |row| row.get(0))?)
}

/// Attempts running now under an unexpired lease, by step.
fn running_counts(c: &Connection, now: OffsetDateTime) -> Result<HashMap<String, i64>> {
    Ok(c
        .prepare_cached(
            "SELECT step, count(*) FROM run_steps WHERE status = 'running' AND lease_until > ?1 GROUP BY step",
        )?
        .query_map([micros(now)], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Leases one step that is ready or whose lease expired, starting (or, for a sensor between
/// pokes, resuming) an attempt.
fn lease(
    c: &Connection,
    run_id: &str,
    step: &str,
    worker: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<ClaimedStep> {
    let (status, attempts, poking): (String, u32, bool) = c
        .prepare_cached(
            "SELECT status, attempts, poking FROM run_steps WHERE run_id = ?1 AND step = ?2",
        )?
        .query_row(params![run_id, step], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if status == StepStatus::Running.as_str() {
        c.prepare_cached(
            "UPDATE step_attempts SET finished_at = ?4, outcome = 'lease_expired'
             WHERE run_id = ?1 AND step = ?2 AND attempt = ?3",
        )?
        .execute(params![run_id, step, attempts, micros(now)])?;
    }
    let attempt = if poking { attempts } else { attempts + 1 };
    c.prepare_cached(
        "UPDATE run_steps SET status = 'running', attempts = ?3, poking = 0, due_at = NULL,
                lease_owner = ?4, lease_until = ?5, first_started_at = COALESCE(first_started_at, ?6)
         WHERE run_id = ?1 AND step = ?2",
    )?
    .execute(params![run_id, step, attempt, worker, micros(lease_until), micros(now)])?;
    c.prepare_cached(
        "INSERT INTO step_attempts (run_id, step, attempt, worker, started_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (run_id, step, attempt) DO UPDATE SET worker = excluded.worker, finished_at = NULL, outcome = NULL",
    )?
    .execute(params![run_id, step, attempt, worker, micros(now)])?;

    let (workflow, store_id, order_id, run_status, input, first_started_at): (
        String,
        String,
        Option<String>,
        String,
        String,
        i64,
    ) = c
        .prepare_cached(
            "SELECT r.workflow, r.store_id, r.order_id, r.status, r.input, s.first_started_at
             FROM runs r JOIN run_steps s ON s.run_id = r.run_id AND s.step = ?2 WHERE r.run_id = ?1",
        )?
        .query_row(params![run_id, step], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
        })?;
    let outputs = c
        .prepare_cached(
            "SELECT step, output FROM run_steps WHERE run_id = ?1 AND status = 'succeeded' AND output IS NOT NULL",
        )?
        .query_map([run_id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ClaimedStep {
        run_id: run_id.to_owned(),
        workflow,
        store_id: parse("store_id", &store_id)?,
        order_id: order_id
            .as_deref()
            .map(|id| parse("order_id", id))
            .transpose()?,
        run_status: run_status.parse()?,
        input,
        step: step.to_owned(),
        attempt,
        first_started_at: from_micros(first_started_at)?,
        outputs,
    })
}

pub(super) fn heartbeat(
    c: &Connection,
    run_id: &str,
    step: &str,
    attempt: u32,
    worker: &str,
    lease_until: OffsetDateTime,
) -> Result<()> {
    let held = c
        .prepare_cached(
            "UPDATE run_steps SET lease_until = ?5
             WHERE run_id = ?1 AND step = ?2 AND attempts = ?3 AND lease_owner = ?4 AND status = 'running'",
        )?
        .execute(params![run_id, step, attempt, worker, micros(lease_until)])?;
    if held == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost)
    }
}

pub(super) fn finish(
    c: &Connection,
    finish: &FinishStep,
    planner: &dyn RunPlanner,
) -> Result<Finished> {
    let now = micros(finish.now);
    let held: Option<String> = c
        .prepare_cached(
            "SELECT status FROM run_steps
             WHERE run_id = ?1 AND step = ?2 AND attempts = ?3 AND lease_owner = ?4 AND status = 'running'",
        )?
        .query_row(
            params![finish.run_id, finish.step, finish.attempt, finish.worker],
            |row| row.get(0),
        )
        .optional()?;
    if held.is_none() {
        return Err(Error::LeaseLost);
    }
    let recorded = finish.result.recorded();
    let finished_at = recorded.status.is_finished().then_some(now);
    c.prepare_cached(
        "UPDATE run_steps SET status = ?3, due_at = ?4, output = ?5, error = ?6, finished_at = ?7,
                poking = ?8, lease_owner = NULL, lease_until = NULL
         WHERE run_id = ?1 AND step = ?2",
    )?
    .execute(params![
        finish.run_id,
        finish.step,
        recorded.status.as_str(),
        recorded.due_at.map(micros),
        recorded.output,
        recorded.error,
        finished_at,
        recorded.poking
    ])?;
    c.prepare_cached(
        "UPDATE step_attempts SET finished_at = ?4, outcome = ?5, error = ?6
         WHERE run_id = ?1 AND step = ?2 AND attempt = ?3",
    )?
    .execute(params![
        finish.run_id,
        finish.step,
        finish.attempt,
        now,
        recorded.outcome,
        recorded.error
    ])?;
    // A step failing in a run someone cancelled is no news for operations.
    if let StepResult::Failed { alert, .. } = &finish.result {
        c.prepare_cached(
            "INSERT INTO alerts (alert_id, run_id, step, order_id, title, body, status, next_attempt_at, created_at)
             SELECT ?1, run_id, ?2, order_id, ?3, ?4, 'pending', ?5, ?5 FROM runs
             WHERE run_id = ?6 AND status <> 'cancelled'",
        )?
        .execute(params![
            alert.alert_id,
            finish.step,
            alert.title,
            alert.body,
            now,
            finish.run_id
        ])?;
    }
    let (run_status, ready) = replan(c, &finish.run_id, finish.now, planner)?;
    let mut next = Vec::new();
    for step in &ready {
        if next.len() >= finish.claim_next as usize {
            break;
        }
        if let Some(limit) = finish.limits.iter().find(|l| &l.step == step)
            && running_of_step(c, step, finish.now)? >= i64::from(limit.at_once)
        {
            continue;
        }
        next.push(lease(
            c,
            &finish.run_id,
            step,
            &finish.worker,
            finish.now,
            finish.lease_until,
        )?);
    }
    Ok(Finished {
        run_status,
        left_ready: ready.len() - next.len(),
        next,
    })
}

/// Hands the run's step statuses to the planner and applies its plan; returns the run's
/// status and the steps made ready.
fn replan(
    c: &Connection,
    run_id: &str,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<(RunStatus, Vec<String>)> {
    let (workflow, status): (String, String) = c
        .prepare_cached("SELECT workflow, status FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let steps = c
        .prepare_cached("SELECT step, status FROM run_steps WHERE run_id = ?1")?
        .query_map([run_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .map(|row| {
            let (name, status) = row?;
            Ok((name, status.parse()?))
        })
        .collect::<Result<Vec<(String, StepStatus)>>>()?;
    let snapshot = RunSnapshot {
        workflow,
        status: status.parse()?,
        steps,
    };
    let plan = planner.plan(&snapshot);
    let mut ready = Vec::new();
    for (step, decision) in &plan.steps {
        let changed = match decision {
            PlannedStep::Ready => c
                .prepare_cached(
                    "UPDATE run_steps SET status = 'ready', due_at = ?3
                     WHERE run_id = ?1 AND step = ?2 AND status = 'waiting'",
                )?
                .execute(params![run_id, step, micros(now)])?,
            PlannedStep::Skipped { reason }
            | PlannedStep::UpstreamFailed { reason }
            | PlannedStep::Cancelled { reason } => c
                .prepare_cached(
                    "UPDATE run_steps SET status = ?3, error = ?4, finished_at = ?5, due_at = NULL
                     WHERE run_id = ?1 AND step = ?2 AND status IN ('waiting', 'ready')",
                )?
                .execute(params![
                    run_id,
                    step,
                    decision.status().as_str(),
                    reason,
                    micros(now)
                ])?,
        };
        if changed == 1 && *decision == PlannedStep::Ready {
            ready.push(step.clone());
        }
    }
    let run_status = match plan.finished {
        Some(end) => {
            c.prepare_cached(
                "UPDATE runs SET status = ?2, finished_at = ?3, updated_at = ?3 WHERE run_id = ?1",
            )?
            .execute(params![run_id, end.as_str(), micros(now)])?;
            end
        }
        None => {
            c.prepare_cached("UPDATE runs SET updated_at = ?2 WHERE run_id = ?1")?
                .execute(params![run_id, micros(now)])?;
            snapshot.status
        }
    };
    Ok((run_status, ready))
}

fn visible_run(c: &Connection, scope: &Scope, run_id: &str) -> Result<(StoreId, RunStatus)> {
    let found: Option<(String, String)> = c
        .prepare_cached("SELECT store_id, status FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (store_id, status) = found.ok_or(Error::NotFound)?;
    let store_id: StoreId = parse("store_id", &store_id)?;
    if !run_visible(scope, &store_id) {
        return Err(Error::NotFound);
    }
    Ok((store_id, status.parse()?))
}

pub(super) fn cancel(
    c: &Connection,
    scope: &Scope,
    run_id: &str,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let (_, status) = visible_run(c, scope, run_id)?;
    match status {
        RunStatus::Running => {}
        RunStatus::Cancelled => return Ok(()),
        finished => {
            return Err(Error::InvalidAction(format!(
                "the run has already {finished}; there is nothing left to cancel"
            )));
        }
    }
    c.prepare_cached("UPDATE runs SET status = 'cancelled', updated_at = ?2 WHERE run_id = ?1")?
        .execute(params![run_id, micros(now)])?;
    replan(c, run_id, now, planner)?;
    Ok(())
}

/// Cancels every running run of an order, inside the transaction that cancels the order.
pub(super) fn cancel_order_runs(
    c: &Connection,
    order_id: &OrderId,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let running: Vec<String> = c
        .prepare_cached("SELECT run_id FROM runs WHERE order_id = ?1 AND status = 'running'")?
        .query_map([order_id.as_str()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for run_id in running {
        cancel(c, &Scope::Everything, &run_id, now, planner)?;
    }
    Ok(())
}

pub(super) fn act(
    c: &Connection,
    scope: &Scope,
    run_id: &str,
    step: &str,
    action: &StepAction,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let (_, run_status) = visible_run(c, scope, run_id)?;
    let current: StepStatus = c
        .prepare_cached("SELECT status FROM run_steps WHERE run_id = ?1 AND step = ?2")?
        .query_row(params![run_id, step], |row| row.get::<_, String>(0))
        .optional()?
        .ok_or(Error::NotFound)?
        .parse()?;
    check_action(run_status, current, action)?;
    let reset = match action {
        StepAction::Retry { reset } => {
            c.prepare_cached(
                "UPDATE run_steps SET status = 'ready', attempts = 0, poking = 0, due_at = ?3, error = NULL,
                        output = NULL, finished_at = NULL, first_started_at = NULL
                 WHERE run_id = ?1 AND step = ?2",
            )?
            .execute(params![run_id, step, micros(now)])?;
            reset
        }
        StepAction::Skip { reset } => {
            c.prepare_cached(
                "UPDATE run_steps SET status = 'skipped', due_at = NULL, error = 'skipped by an operator',
                        finished_at = ?3
                 WHERE run_id = ?1 AND step = ?2",
            )?
            .execute(params![run_id, step, micros(now)])?;
            reset
        }
    };
    let mut waiting = c.prepare_cached(
        "UPDATE run_steps SET status = 'waiting', error = NULL, finished_at = NULL
         WHERE run_id = ?1 AND step = ?2 AND status IN ('upstream_failed', 'skipped')",
    )?;
    for downstream in reset {
        waiting.execute(params![run_id, downstream])?;
    }
    c.prepare_cached(
        "UPDATE runs SET status = 'running', finished_at = NULL, updated_at = ?2 WHERE run_id = ?1",
    )?
    .execute(params![run_id, micros(now)])?;
    replan(c, run_id, now, planner)?;
    Ok(())
}

pub(super) fn read_run(c: &Connection, scope: &Scope, run_id: &str) -> Result<Run> {
    let mut run = c
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"))?
        .query_row([run_id], run_row)
        .optional()?
        .ok_or(Error::NotFound)??;
    if !run_visible(scope, &run.store_id) {
        return Err(Error::NotFound);
    }
    let mut history = c
        .prepare_cached(
            "SELECT step, attempt, worker, started_at, finished_at, outcome, error
             FROM step_attempts WHERE run_id = ?1 ORDER BY step, attempt",
        )?
        .query_map([run_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    run.steps = c
        .prepare_cached(
            "SELECT step, status, attempts, due_at, lease_owner, lease_until, first_started_at, finished_at,
                    output, error
             FROM run_steps WHERE run_id = ?1 ORDER BY position",
        )?
        .query_map([run_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, u32>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, Option<i64>>(6)?,
                row.get::<_, Option<i64>>(7)?,
                row.get::<_, Option<String>>(8)?,
                row.get::<_, Option<String>>(9)?,
            ))
        })?
        .map(|row| {
            let (name, status, attempts, due, owner, lease, first, finished, output, error) = row?;
            let micros_opt = |v: Option<i64>| v.map(from_micros).transpose();
            Ok(Step {
                history: history
                    .extract_if(.., |h| h.0 == name)
                    .map(|(_, attempt, worker, started, finished, outcome, error)| {
                        Ok(Attempt {
                            attempt,
                            worker,
                            started_at: from_micros(started)?,
                            finished_at: micros_opt(finished)?,
                            outcome,
                            error,
                        })
                    })
                    .collect::<Result<_>>()?,
                name,
                status: status.parse()?,
                attempts,
                due_at: micros_opt(due)?,
                lease_owner: owner,
                lease_until: micros_opt(lease)?,
                first_started_at: micros_opt(first)?,
                finished_at: micros_opt(finished)?,
                output,
                error,
            })
        })
        .collect::<Result<_>>()?;
    Ok(run)
}

const RUN_COLUMNS: &str =
    "run_id, workflow, store_id, order_id, status, input, created_at, updated_at, finished_at";

fn run_row(row: &Row) -> rusqlite::Result<Result<Run>> {
    let store_id: String = row.get(2)?;
    let order_id: Option<String> = row.get(3)?;
    let status: String = row.get(4)?;
    let created_at: i64 = row.get(6)?;
    let updated_at: i64 = row.get(7)?;
    let finished_at: Option<i64> = row.get(8)?;
    let run_id: String = row.get(0)?;
    let workflow: String = row.get(1)?;
    let input: String = row.get(5)?;
    Ok((|| {
        Ok(Run {
            run_id,
            workflow,
            store_id: parse("store_id", &store_id)?,
            order_id: order_id
                .as_deref()
                .map(|id| parse("order_id", id))
                .transpose()?,
            status: status.parse()?,
            input,
            created_at: from_micros(created_at)?,
            updated_at: from_micros(updated_at)?,
            finished_at: finished_at.map(from_micros).transpose()?,
            steps: Vec::new(),
        })
    })())
}

pub(super) fn list(c: &Connection, scope: &Scope, filter: &RunFilter) -> Result<Page<Run>> {
    let store = match scope {
        Scope::Everything => None,
        Scope::Store(own) => Some(own.as_str()),
        Scope::Customer(..) => {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        }
    };
    let limit = filter.limit.max(1);
    let rows = c
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR store_id = ?1) AND (?2 IS NULL OR order_id = ?2)
               AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR workflow = ?4)
               AND (?5 IS NULL OR run_id < ?5)
             ORDER BY run_id DESC LIMIT ?6"
        ))?
        .query_map(
            params![
                store,
                filter.order_id.as_ref().map(OrderId::as_str),
                filter.status.map(RunStatus::as_str),
                filter.workflow,
                filter.before,
                limit + 1
            ],
            run_row,
        )?
        .map(|row| row?)
        .collect::<Result<Vec<_>>>()?;
    let has_more = rows.len() > limit as usize;
    let items = rows.into_iter().take(limit as usize).collect();
    Ok(Page { items, has_more })
}

pub(super) fn next_due(c: &Connection) -> Result<Option<OffsetDateTime>> {
    let (ready, lease): (Option<i64>, Option<i64>) = c
        .prepare_cached(
            "SELECT (SELECT MIN(due_at) FROM run_steps WHERE status = 'ready'),
                    (SELECT MIN(lease_until) FROM run_steps WHERE status = 'running')",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    [ready, lease]
        .into_iter()
        .flatten()
        .min()
        .map(from_micros)
        .transpose()
}

pub(super) fn claim_alerts(
    c: &Connection,
    limit: u32,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Alert>> {
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT alert_id FROM alerts WHERE status = 'pending' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at LIMIT ?2",
        )?
        .query_map(params![micros(now), limit], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut alerts = Vec::with_capacity(ids.len());
    for id in ids {
        let alert = c
            .prepare_cached(
                "UPDATE alerts SET attempts = attempts + 1, next_attempt_at = ?2 WHERE alert_id = ?1
                 RETURNING alert_id, run_id, step, order_id, title, body, attempts, created_at",
            )?
            .query_row(params![id, micros(lease_until)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, u32>(6)?,
                    row.get::<_, i64>(7)?,
                ))
            })?;
        let (alert_id, run_id, step, order_id, title, body, attempts, created_at) = alert;
        alerts.push(Alert {
            alert_id,
            run_id,
            step,
            order_id: order_id
                .as_deref()
                .map(|id| parse("order_id", id))
                .transpose()?,
            title,
            body,
            attempts,
            created_at: from_micros(created_at)?,
        });
    }
    Ok(alerts)
}

pub(super) fn record_alert(
    c: &Connection,
    alert_id: &str,
    outcome: &AlertOutcome,
    now: OffsetDateTime,
) -> Result<()> {
    let changed = match outcome {
        AlertOutcome::Sent => c
            .prepare_cached("UPDATE alerts SET status = 'sent', sent_at = ?2, last_error = NULL WHERE alert_id = ?1")?
            .execute(params![alert_id, micros(now)])?,
        AlertOutcome::RetryAt { error, at } => c
            .prepare_cached("UPDATE alerts SET next_attempt_at = ?2, last_error = ?3 WHERE alert_id = ?1")?
            .execute(params![alert_id, micros(*at), error])?,
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Makes the sensors waiting between pokes in the running runs of orders backordered on
/// `product_id` due at `now`, in the transaction that raised its stock; returns how many.
/// A restock would otherwise reach them only at their next poke. Which of them gets the
/// stock stays `fill_backorder`'s decision (first come, first served), not the order they run.
pub(super) fn poke_backorder_sensors(
    c: &Connection,
    store_id: &StoreId,
    product_id: &str,
    now: OffsetDateTime,
) -> Result<usize> {
    Ok(c.prepare_cached(
        "UPDATE run_steps SET due_at = ?3
         WHERE status = 'ready' AND poking AND due_at > ?3
           AND run_id IN (SELECT r.run_id FROM runs r
                          JOIN backorders b ON b.order_id = r.order_id
                          JOIN orders o ON o.order_id = b.order_id
                          WHERE b.product_id = ?2 AND o.store_id = ?1 AND r.status = 'running')",
    )?
    .execute(params![store_id.as_str(), product_id, micros(now)])?)
}

/// Makes the sensors waiting between pokes in the running runs of `order_id` due at `now`:
/// an edit that left the order nothing to wait for lets it move on at once.
pub(super) fn poke_order_sensors(
    c: &Connection,
    order_id: &str,
    now: OffsetDateTime,
) -> Result<usize> {
    Ok(c.prepare_cached(
        "UPDATE run_steps SET due_at = ?2
         WHERE status = 'ready' AND poking AND due_at > ?2
           AND run_id IN (SELECT run_id FROM runs WHERE order_id = ?1 AND status = 'running')",
    )?
    .execute(params![order_id, micros(now)])?)
}
