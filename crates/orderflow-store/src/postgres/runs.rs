//! Workflow runs on PostgreSQL. Workers on any number of nodes claim steps with
//! `FOR UPDATE SKIP LOCKED`; every change to a run's steps locks the run's row first, so the
//! planner never decides from a picture another transaction is changing.

use deadpool_postgres::{Client, Transaction};
use orderflow_domain::{OrderId, StoreId};
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::is_unique_violation;
use crate::common::{from_micros, micros, parse, run_visible};
use crate::error::{Error, Result};
use crate::model::{Page, Scope};
use crate::runs::*;

const INSERT_RUN: &str = concat!(
    "INSERT INTO runs (run_id, workflow, store_id, order_id, dedupe_key, status, input, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, 'running', $6, ",
    at_micros!("$7"),
    ", ",
    at_micros!("$7"),
    ")"
);

const INSERT_STEPS: &str = concat!(
    "INSERT INTO run_steps (run_id, step, position, status, due_at)
     SELECT $1, s.step, s.position - 1, CASE WHEN s.ready THEN 'ready' ELSE 'waiting' END,
            CASE WHEN s.ready THEN ",
    at_micros!("$4"),
    " END
     FROM unnest($2::TEXT[], $3::BOOLEAN[]) WITH ORDINALITY AS s (step, ready, position)"
);

pub(super) async fn insert_run(
    tx: &Transaction<'_>,
    run: &NewRun,
    store_id: &StoreId,
    order_id: Option<&OrderId>,
    now: OffsetDateTime,
) -> Result<RunStarted> {
    let statement = tx.prepare_cached(INSERT_RUN).await?;
    let inserted = tx
        .execute(
            &statement,
            &[
                &run.run_id,
                &run.workflow,
                &store_id.as_str(),
                &order_id.map(OrderId::as_str),
                &run.dedupe_key,
                &run.input,
                &micros(now),
            ],
        )
        .await;
    match inserted {
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) && run.dedupe_key.is_some() => {
            return Err(Error::AlreadyExists(
                run.dedupe_key.clone().unwrap_or_default(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    let ready: Vec<bool> = run.steps.iter().map(|s| s.ready).collect();
    let statement = tx.prepare_cached(INSERT_STEPS).await?;
    tx.execute(&statement, &[&run.run_id, &names, &ready, &micros(now)])
        .await?;
    Ok(RunStarted {
        run_id: run.run_id.clone(),
        created: true,
    })
}

pub(super) async fn start_run(client: &mut Client, start: &StartRun) -> Result<RunStarted> {
    let tx = client.transaction().await?;
    match insert_run(
        &tx,
        &start.run,
        &start.store_id,
        start.order_id.as_ref(),
        start.now,
    )
    .await
    {
        Ok(started) => {
            tx.commit().await?;
            Ok(started)
        }
        Err(Error::AlreadyExists(key)) => {
            drop(tx);
            let row = client
                .query_one("SELECT run_id FROM runs WHERE dedupe_key = $1", &[&key])
                .await?;
            Ok(RunStarted {
                run_id: row.try_get(0)?,
                created: false,
            })
        }
        Err(error) => Err(error),
    }
}

const DUE_READY: &str = concat!(
    "SELECT run_id, step FROM run_steps
     WHERE status = 'ready' AND due_at <= ",
    at_micros!("$1"),
    " AND NOT (step = ANY($3))
     ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED"
);

const DUE_EXPIRED: &str = concat!(
    "SELECT run_id, step FROM run_steps
     WHERE status = 'running' AND lease_until <= ",
    at_micros!("$1"),
    " AND NOT (step = ANY($3))
     ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED"
);

/// Leases one step in one statement: closes the expired attempt of a dead worker, starts (or,
/// for a sensor between pokes, resumes) an attempt, and reads what the worker needs.
const LEASE: &str = concat!(
    "WITH expired AS (
         UPDATE step_attempts a SET finished_at = ",
    at_micros!("$5"),
    ", outcome = 'lease_expired'
         FROM run_steps s
         WHERE s.run_id = $1 AND s.step = $2 AND s.status = 'running'
           AND a.run_id = s.run_id AND a.step = s.step AND a.attempt = s.attempts
         RETURNING 1
     ), leased AS (
         UPDATE run_steps SET status = 'running',
                attempts = CASE WHEN poking THEN attempts ELSE attempts + 1 END,
                poking = FALSE, due_at = NULL, lease_owner = $3, lease_until = ",
    at_micros!("$4"),
    ", first_started_at = COALESCE(first_started_at, ",
    at_micros!("$5"),
    ")
         WHERE run_id = $1 AND step = $2
         RETURNING run_id, step, attempts, first_started_at
     ), attempt AS (
         INSERT INTO step_attempts (run_id, step, attempt, worker, started_at)
         SELECT run_id, step, attempts, $3, ",
    at_micros!("$5"),
    " FROM leased
         ON CONFLICT (run_id, step, attempt)
         DO UPDATE SET worker = EXCLUDED.worker, finished_at = NULL, outcome = NULL
         RETURNING 1
     )
     SELECT l.attempts, (EXTRACT(EPOCH FROM l.first_started_at) * 1000000)::BIGINT AS first_started_at,
            r.workflow, r.store_id, r.order_id, r.status, r.input,
            (SELECT count(*) FROM expired) + (SELECT count(*) FROM attempt) AS touched,
            COALESCE((SELECT json_agg(json_build_array(o.step, o.output))
                      FROM run_steps o
                      WHERE o.run_id = $1 AND o.status = 'succeeded' AND o.output IS NOT NULL), '[]')::TEXT
              AS outputs
     FROM leased l JOIN runs r ON r.run_id = l.run_id"
);

async fn lease(
    tx: &Transaction<'_>,
    run_id: &str,
    step: &str,
    worker: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<ClaimedStep> {
    let statement = tx.prepare_cached(LEASE).await?;
    let row = tx
        .query_one(
            &statement,
            &[&run_id, &step, &worker, &micros(lease_until), &micros(now)],
        )
        .await?;
    let outputs: Vec<(String, String)> =
        serde_json::from_str(&row.try_get::<_, String>("outputs")?)
            .map_err(|e| Error::Corrupt(format!("step outputs: {e}")))?;
    let store_id: String = row.try_get("store_id")?;
    let order_id: Option<String> = row.try_get("order_id")?;
    let status: String = row.try_get("status")?;
    Ok(ClaimedStep {
        run_id: run_id.to_owned(),
        workflow: row.try_get("workflow")?,
        store_id: parse("store_id", &store_id)?,
        order_id: order_id
            .as_deref()
            .map(|id| parse("order_id", id))
            .transpose()?,
        run_status: status.parse()?,
        input: row.try_get("input")?,
        step: step.to_owned(),
        attempt: attempt_number(row.try_get("attempts")?)?,
        first_started_at: from_micros(row.try_get("first_started_at")?)?,
        outputs,
    })
}

fn attempt_number(value: i32) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("attempts holds {value}")))
}

fn attempt_param(value: u32) -> Result<i32> {
    i32::try_from(value).map_err(|_| Error::Corrupt(format!("attempt {value} out of range")))
}

pub(super) async fn claim(client: &mut Client, claim: &Claim) -> Result<Vec<ClaimedStep>> {
    let tx = client.transaction().await?;
    let now = micros(claim.now);
    let limit = i64::from(claim.limit);
    let limited: Vec<&str> = claim.limits.iter().map(|l| l.step.as_str()).collect();
    let ready = tx.prepare_cached(DUE_READY).await?;
    let mut due: Vec<(String, String)> = tx
        .query(&ready, &[&now, &limit, &limited])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_>>()?;
    let room = limit - due.len() as i64;
    if room > 0 {
        let expired = tx.prepare_cached(DUE_EXPIRED).await?;
        for row in tx.query(&expired, &[&now, &room, &limited]).await? {
            due.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    if !claim.limits.is_empty() && (due.len() as i64) < limit {
        // Counting the running attempts and leasing more must not interleave with another
        // worker doing the same, or both would fill the same free slots. Taken in one order
        // (by name) before any row lock, so claims never deadlock.
        let mut names = limited.clone();
        names.sort_unstable();
        let lock = tx.prepare_cached(LOCK_STEP_LIMIT).await?;
        for name in &names {
            tx.execute(&lock, &[name]).await?;
        }
        let ready_of_step = tx.prepare_cached(DUE_READY_OF_STEP).await?;
        let expired_of_step = tx.prepare_cached(DUE_EXPIRED_OF_STEP).await?;
        for (step, free) in room_left(&claim.limits, &running_counts(&tx, now).await?) {
            for statement in [&ready_of_step, &expired_of_step] {
                let taken = due.iter().filter(|(_, claimed)| *claimed == step).count() as i64;
                let take = (i64::from(free) - taken).min(limit - due.len() as i64);
                if take <= 0 {
                    break;
                }
                for row in tx.query(statement, &[&now, &take, &step]).await? {
                    due.push((row.try_get(0)?, row.try_get(1)?));
                }
            }
        }
    }
    let mut claimed = Vec::with_capacity(due.len());
    for (run_id, step) in &due {
        claimed.push(
            lease(
                &tx,
                run_id,
                step,
                &claim.worker,
                claim.now,
                claim.lease_until,
            )
            .await?,
        );
    }
    tx.commit().await?;
    Ok(claimed)
}

const LOCK_STEP_LIMIT: &str =
    "SELECT pg_advisory_xact_lock(hashtext('orderflow.step_limit'), hashtext($1))";
/// A finishing worker only goes on with a limited step if no claim is counting that step's
/// slots at the moment: it never waits for the lock, so finishes never queue behind claims.
const TRY_LOCK_STEP_LIMIT: &str =
    "SELECT pg_try_advisory_xact_lock(hashtext('orderflow.step_limit'), hashtext($1))";

const RUNNING_OF_STEP: &str = concat!(
    "SELECT count(*) FROM run_steps WHERE status = 'running' AND step = $1 AND lease_until > ",
    at_micros!("$2")
);

const DUE_READY_OF_STEP: &str = concat!(
    "SELECT run_id, step FROM run_steps
     WHERE status = 'ready' AND step = $3 AND due_at <= ",
    at_micros!("$1"),
    " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED"
);

const DUE_EXPIRED_OF_STEP: &str = concat!(
    "SELECT run_id, step FROM run_steps
     WHERE status = 'running' AND step = $3 AND lease_until <= ",
    at_micros!("$1"),
    " ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED"
);

/// Attempts running now under an unexpired lease, by step.
async fn running_counts(
    tx: &Transaction<'_>,
    now: i64,
) -> Result<std::collections::HashMap<String, i64>> {
    let statement = tx
        .prepare_cached(concat!(
            "SELECT step, count(*) FROM run_steps WHERE status = 'running' AND lease_until > ",
            at_micros!("$1"),
            " GROUP BY step"
        ))
        .await?;
    tx.query(&statement, &[&now])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

pub(super) async fn heartbeat(
    client: &Client,
    run_id: &str,
    step: &str,
    attempt: u32,
    worker: &str,
    lease_until: OffsetDateTime,
) -> Result<()> {
    let statement = client
        .prepare_cached(concat!(
            "UPDATE run_steps SET lease_until = ",
            at_micros!("$5"),
            " WHERE run_id = $1 AND step = $2 AND attempts = $3 AND lease_owner = $4 AND status = 'running'"
        ))
        .await?;
    let held = client
        .execute(
            &statement,
            &[
                &run_id,
                &step,
                &attempt_param(attempt)?,
                &worker,
                &micros(lease_until),
            ],
        )
        .await?;
    if held == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost)
    }
}

/// Locks the run's row: every change to a run's steps goes through here first.
async fn lock_run(
    tx: &Transaction<'_>,
    run_id: &str,
) -> Result<Option<(StoreId, String, RunStatus)>> {
    let statement = tx
        .prepare_cached("SELECT store_id, workflow, status FROM runs WHERE run_id = $1 FOR UPDATE")
        .await?;
    match tx.query_opt(&statement, &[&run_id]).await? {
        None => Ok(None),
        Some(row) => {
            let store_id: String = row.try_get(0)?;
            let status: String = row.try_get(2)?;
            Ok(Some((
                parse("store_id", &store_id)?,
                row.try_get(1)?,
                status.parse()?,
            )))
        }
    }
}

const RECORD_RESULT: &str = concat!(
    "WITH step AS (
         UPDATE run_steps SET status = $5, due_at = ",
    at_micros!("$6"),
    ", output = $7, error = $8, finished_at = CASE WHEN $9 THEN ",
    at_micros!("$10"),
    " END, poking = $11, lease_owner = NULL, lease_until = NULL
         WHERE run_id = $1 AND step = $2 AND attempts = $3 AND lease_owner = $4 AND status = 'running'
         RETURNING 1
     ), attempt AS (
         UPDATE step_attempts SET finished_at = ",
    at_micros!("$10"),
    ", outcome = $12, error = $8
         WHERE run_id = $1 AND step = $2 AND attempt = $3 AND EXISTS (SELECT 1 FROM step)
     )
     SELECT count(*) AS held FROM step"
);

const INSERT_ALERT: &str = concat!(
    "INSERT INTO alerts (alert_id, run_id, step, order_id, title, body, status, next_attempt_at, created_at)
     SELECT $1, run_id, $2, order_id, $3, $4, 'pending', ",
    at_micros!("$5"),
    ", ",
    at_micros!("$5"),
    " FROM runs WHERE run_id = $6 AND status <> 'cancelled'"
);

pub(super) async fn finish(
    client: &mut Client,
    finish: &FinishStep,
    planner: &dyn RunPlanner,
) -> Result<Finished> {
    let tx = client.transaction().await?;
    let (_, workflow, run_status) = lock_run(&tx, &finish.run_id)
        .await?
        .ok_or(Error::LeaseLost)?;
    let now = micros(finish.now);
    let recorded = finish.result.recorded();
    let record = tx.prepare_cached(RECORD_RESULT).await?;
    let held: i64 = tx
        .query_one(
            &record,
            &[
                &finish.run_id,
                &finish.step,
                &attempt_param(finish.attempt)?,
                &finish.worker,
                &recorded.status.as_str(),
                &recorded.due_at.map(micros),
                &recorded.output,
                &recorded.error,
                &recorded.status.is_finished(),
                &now,
                &recorded.poking,
                &recorded.outcome,
            ],
        )
        .await?
        .try_get("held")?;
    if held != 1 {
        return Err(Error::LeaseLost);
    }
    if let StepResult::Failed { alert, .. } = &finish.result {
        let insert = tx.prepare_cached(INSERT_ALERT).await?;
        tx.execute(
            &insert,
            &[
                &alert.alert_id,
                &finish.step,
                &alert.title,
                &alert.body,
                &now,
                &finish.run_id,
            ],
        )
        .await?;
    }
    let (run_status, ready) = replan(
        &tx,
        &finish.run_id,
        workflow,
        run_status,
        finish.now,
        planner,
    )
    .await?;
    let mut next = Vec::new();
    for step in &ready {
        if next.len() >= finish.claim_next as usize {
            break;
        }
        if let Some(limit) = finish.limits.iter().find(|l| &l.step == step) {
            let try_lock = tx.prepare_cached(TRY_LOCK_STEP_LIMIT).await?;
            let count = tx.prepare_cached(RUNNING_OF_STEP).await?;
            // Sent together, one round trip: the count still runs after the lock was tried,
            // in a snapshot of its own.
            let (lock_params, count_params): (
                [&(dyn tokio_postgres::types::ToSql + Sync); 1],
                [&(dyn tokio_postgres::types::ToSql + Sync); 2],
            ) = ([step], [step, &now]);
            let (locked, running) = tokio::join!(
                tx.query_one(&try_lock, &lock_params),
                tx.query_one(&count, &count_params)
            );
            let locked: bool = locked?.try_get(0)?;
            let running: i64 = running?.try_get(0)?;
            if !locked || running >= i64::from(limit.at_once) {
                continue;
            }
        }
        next.push(
            lease(
                &tx,
                &finish.run_id,
                step,
                &finish.worker,
                finish.now,
                finish.lease_until,
            )
            .await?,
        );
    }
    tx.commit().await?;
    Ok(Finished {
        run_status,
        left_ready: ready.len() - next.len(),
        next,
    })
}

async fn replan(
    tx: &Transaction<'_>,
    run_id: &str,
    workflow: String,
    status: RunStatus,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<(RunStatus, Vec<String>)> {
    let statement = tx
        .prepare_cached("SELECT step, status FROM run_steps WHERE run_id = $1")
        .await?;
    let steps = tx
        .query(&statement, &[&run_id])
        .await?
        .iter()
        .map(|row| {
            let status: String = row.try_get(1)?;
            Ok((row.try_get(0)?, status.parse()?))
        })
        .collect::<Result<Vec<(String, StepStatus)>>>()?;
    let plan = planner.plan(&RunSnapshot {
        workflow,
        status,
        steps,
    });
    let mut ready = Vec::new();
    let (mut names, mut statuses, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    for (step, decision) in &plan.steps {
        match decision {
            PlannedStep::Ready => ready.push(step.as_str()),
            PlannedStep::Skipped { reason }
            | PlannedStep::UpstreamFailed { reason }
            | PlannedStep::Cancelled { reason } => {
                names.push(step.as_str());
                statuses.push(decision.status().as_str());
                reasons.push(reason.as_str());
            }
        }
    }
    let now = micros(now);
    let mut made_ready = Vec::new();
    if !ready.is_empty() {
        let statement = tx
            .prepare_cached(concat!(
                "UPDATE run_steps SET status = 'ready', due_at = ",
                at_micros!("$3"),
                " WHERE run_id = $1 AND step = ANY($2) AND status = 'waiting' RETURNING step"
            ))
            .await?;
        for row in tx.query(&statement, &[&run_id, &ready, &now]).await? {
            made_ready.push(row.try_get(0)?);
        }
    }
    if !names.is_empty() {
        let statement = tx
            .prepare_cached(concat!(
                "UPDATE run_steps s SET status = d.status, error = d.reason, due_at = NULL, finished_at = ",
                at_micros!("$5"),
                " FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[]) AS d (step, status, reason)
                 WHERE s.run_id = $1 AND s.step = d.step AND s.status IN ('waiting', 'ready')"
            ))
            .await?;
        tx.execute(&statement, &[&run_id, &names, &statuses, &reasons, &now])
            .await?;
    }
    let run_status = match plan.finished {
        Some(end) => {
            let statement = tx
                .prepare_cached(concat!(
                    "UPDATE runs SET status = $2, finished_at = ",
                    at_micros!("$3"),
                    ", updated_at = ",
                    at_micros!("$3"),
                    " WHERE run_id = $1"
                ))
                .await?;
            tx.execute(&statement, &[&run_id, &end.as_str(), &now])
                .await?;
            end
        }
        None => {
            let statement = tx
                .prepare_cached(concat!(
                    "UPDATE runs SET updated_at = ",
                    at_micros!("$2"),
                    " WHERE run_id = $1"
                ))
                .await?;
            tx.execute(&statement, &[&run_id, &now]).await?;
            status
        }
    };
    Ok((run_status, made_ready))
}

async fn visible_run(
    tx: &Transaction<'_>,
    scope: &Scope,
    run_id: &str,
) -> Result<(String, RunStatus)> {
    let (store_id, workflow, status) = lock_run(tx, run_id).await?.ok_or(Error::NotFound)?;
    if !run_visible(scope, &store_id) {
        return Err(Error::NotFound);
    }
    Ok((workflow, status))
}

pub(super) async fn cancel(
    client: &mut Client,
    scope: &Scope,
    run_id: &str,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let tx = client.transaction().await?;
    cancel_in(&tx, scope, run_id, now, planner).await?;
    tx.commit().await?;
    Ok(())
}

/// Cancels every running run of an order, inside the transaction that cancels the order.
pub(super) async fn cancel_order_runs(
    tx: &Transaction<'_>,
    order_id: &OrderId,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let running = tx
        .query(
            "SELECT run_id FROM runs WHERE order_id = $1 AND status = 'running'",
            &[&order_id.as_str()],
        )
        .await?;
    for row in running {
        let run_id: String = row.try_get(0)?;
        cancel_in(tx, &Scope::Everything, &run_id, now, planner).await?;
    }
    Ok(())
}

async fn cancel_in(
    tx: &Transaction<'_>,
    scope: &Scope,
    run_id: &str,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let (workflow, status) = visible_run(tx, scope, run_id).await?;
    match status {
        RunStatus::Running => {}
        RunStatus::Cancelled => return Ok(()),
        finished => {
            return Err(Error::InvalidAction(format!(
                "the run has already {finished}; there is nothing left to cancel"
            )));
        }
    }
    let statement = tx
        .prepare_cached(concat!(
            "UPDATE runs SET status = 'cancelled', updated_at = ",
            at_micros!("$2"),
            " WHERE run_id = $1"
        ))
        .await?;
    tx.execute(&statement, &[&run_id, &micros(now)]).await?;
    replan(tx, run_id, workflow, RunStatus::Cancelled, now, planner).await?;
    Ok(())
}

pub(super) async fn act(
    client: &mut Client,
    scope: &Scope,
    run_id: &str,
    step: &str,
    action: &StepAction,
    now: OffsetDateTime,
    planner: &dyn RunPlanner,
) -> Result<()> {
    let tx = client.transaction().await?;
    let (workflow, run_status) = visible_run(&tx, scope, run_id).await?;
    let current: String = tx
        .query_opt(
            "SELECT status FROM run_steps WHERE run_id = $1 AND step = $2",
            &[&run_id, &step],
        )
        .await?
        .ok_or(Error::NotFound)?
        .try_get(0)?;
    check_action(run_status, current.parse()?, action)?;
    let now_micros = micros(now);
    let reset = match action {
        StepAction::Retry { reset } => {
            tx.execute(
                concat!(
                    "UPDATE run_steps SET status = 'ready', attempts = 0, poking = FALSE, due_at = ",
                    at_micros!("$3"),
                    ", error = NULL, output = NULL, finished_at = NULL, first_started_at = NULL
                     WHERE run_id = $1 AND step = $2"
                ),
                &[&run_id, &step, &now_micros],
            )
            .await?;
            reset
        }
        StepAction::Skip { reset } => {
            tx.execute(
                concat!(
                    "UPDATE run_steps SET status = 'skipped', due_at = NULL, error = 'skipped by an operator',
                            finished_at = ",
                    at_micros!("$3"),
                    " WHERE run_id = $1 AND step = $2"
                ),
                &[&run_id, &step, &now_micros],
            )
            .await?;
            reset
        }
    };
    tx.execute(
        "UPDATE run_steps SET status = 'waiting', error = NULL, finished_at = NULL
         WHERE run_id = $1 AND step = ANY($2) AND status IN ('upstream_failed', 'skipped')",
        &[&run_id, reset],
    )
    .await?;
    tx.execute(
        concat!(
            "UPDATE runs SET status = 'running', finished_at = NULL, updated_at = ",
            at_micros!("$2"),
            " WHERE run_id = $1"
        ),
        &[&run_id, &now_micros],
    )
    .await?;
    replan(&tx, run_id, workflow, RunStatus::Running, now, planner).await?;
    tx.commit().await?;
    Ok(())
}

macro_rules! run_columns {
    () => {
        concat!(
            "run_id, workflow, store_id, order_id, status, input, ",
            micros_of!("created_at"),
            ", ",
            micros_of!("updated_at"),
            ", ",
            micros_of!("finished_at")
        )
    };
}

fn run_row(row: &Row) -> Result<Run> {
    let store_id: String = row.try_get("store_id")?;
    let order_id: Option<String> = row.try_get("order_id")?;
    let status: String = row.try_get("status")?;
    let finished_at: Option<i64> = row.try_get("finished_at")?;
    Ok(Run {
        run_id: row.try_get("run_id")?,
        workflow: row.try_get("workflow")?,
        store_id: parse("store_id", &store_id)?,
        order_id: order_id
            .as_deref()
            .map(|id| parse("order_id", id))
            .transpose()?,
        status: status.parse()?,
        input: row.try_get("input")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
        finished_at: finished_at.map(from_micros).transpose()?,
        steps: Vec::new(),
    })
}

fn micros_opt(value: Option<i64>) -> Result<Option<OffsetDateTime>> {
    value.map(from_micros).transpose()
}

pub(super) async fn read_run(client: &Client, scope: &Scope, run_id: &str) -> Result<Run> {
    let head = client
        .prepare_cached(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE run_id = $1"
        ))
        .await?;
    let steps = client
        .prepare_cached(concat!(
            "SELECT step, status, attempts, lease_owner, output, error, ",
            micros_of!("due_at"),
            ", ",
            micros_of!("lease_until"),
            ", ",
            micros_of!("first_started_at"),
            ", ",
            micros_of!("finished_at"),
            " FROM run_steps WHERE run_id = $1 ORDER BY position"
        ))
        .await?;
    let attempts = client
        .prepare_cached(concat!(
            "SELECT step, attempt, worker, outcome, error, ",
            micros_of!("started_at"),
            ", ",
            micros_of!("finished_at"),
            " FROM step_attempts WHERE run_id = $1 ORDER BY step, attempt"
        ))
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&run_id];
    let (head, steps, attempts) = tokio::try_join!(
        client.query_opt(&head, &params),
        client.query(&steps, &params),
        client.query(&attempts, &params),
    )?;
    let mut run = run_row(&head.ok_or(Error::NotFound)?)?;
    if !run_visible(scope, &run.store_id) {
        return Err(Error::NotFound);
    }
    let mut history = attempts
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<_, String>("step")?,
                Attempt {
                    attempt: attempt_number(row.try_get("attempt")?)?,
                    worker: row.try_get("worker")?,
                    started_at: from_micros(row.try_get("started_at")?)?,
                    finished_at: micros_opt(row.try_get("finished_at")?)?,
                    outcome: row.try_get("outcome")?,
                    error: row.try_get("error")?,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    run.steps = steps
        .iter()
        .map(|row| {
            let name: String = row.try_get("step")?;
            let status: String = row.try_get("status")?;
            Ok(Step {
                history: history
                    .extract_if(.., |(step, _)| *step == name)
                    .map(|(_, attempt)| attempt)
                    .collect(),
                status: status.parse()?,
                attempts: attempt_number(row.try_get("attempts")?)?,
                due_at: micros_opt(row.try_get("due_at")?)?,
                lease_owner: row.try_get("lease_owner")?,
                lease_until: micros_opt(row.try_get("lease_until")?)?,
                first_started_at: micros_opt(row.try_get("first_started_at")?)?,
                finished_at: micros_opt(row.try_get("finished_at")?)?,
                output: row.try_get("output")?,
                error: row.try_get("error")?,
                name,
            })
        })
        .collect::<Result<_>>()?;
    Ok(run)
}

pub(super) async fn list(client: &Client, scope: &Scope, filter: &RunFilter) -> Result<Page<Run>> {
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
    let statement = client
        .prepare_cached(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs
             WHERE ($1::TEXT IS NULL OR store_id = $1) AND ($2::TEXT IS NULL OR order_id = $2)
               AND ($3::TEXT IS NULL OR status = $3) AND ($4::TEXT IS NULL OR workflow = $4)
               AND ($5::TEXT IS NULL OR run_id < $5)
             ORDER BY run_id DESC LIMIT $6"
        ))
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &store,
                &filter.order_id.as_ref().map(OrderId::as_str),
                &filter.status.map(RunStatus::as_str),
                &filter.workflow,
                &filter.before,
                &(i64::from(limit) + 1),
            ],
        )
        .await?;
    let has_more = rows.len() > limit as usize;
    let items = rows
        .iter()
        .take(limit as usize)
        .map(run_row)
        .collect::<Result<_>>()?;
    Ok(Page { items, has_more })
}

pub(super) async fn next_due(client: &Client) -> Result<Option<OffsetDateTime>> {
    let statement = client
        .prepare_cached(
            "SELECT (EXTRACT(EPOCH FROM LEAST(
                 (SELECT MIN(due_at) FROM run_steps WHERE status = 'ready'),
                 (SELECT MIN(lease_until) FROM run_steps WHERE status = 'running'))) * 1000000)::BIGINT",
        )
        .await?;
    let due: Option<i64> = client.query_one(&statement, &[]).await?.try_get(0)?;
    micros_opt(due)
}

pub(super) async fn claim_alerts(
    client: &Client,
    limit: u32,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Alert>> {
    let statement = client
        .prepare_cached(concat!(
            "UPDATE alerts SET attempts = attempts + 1, next_attempt_at = ",
            at_micros!("$3"),
            " WHERE alert_id IN (
                 SELECT alert_id FROM alerts WHERE status = 'pending' AND next_attempt_at <= ",
            at_micros!("$1"),
            " ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING alert_id, run_id, step, order_id, title, body, attempts, ",
            micros_of!("created_at")
        ))
        .await?;
    client
        .query(
            &statement,
            &[&micros(now), &i64::from(limit), &micros(lease_until)],
        )
        .await?
        .iter()
        .map(|row| {
            let order_id: Option<String> = row.try_get("order_id")?;
            Ok(Alert {
                alert_id: row.try_get("alert_id")?,
                run_id: row.try_get("run_id")?,
                step: row.try_get("step")?,
                order_id: order_id
                    .as_deref()
                    .map(|id| parse("order_id", id))
                    .transpose()?,
                title: row.try_get("title")?,
                body: row.try_get("body")?,
                attempts: attempt_number(row.try_get("attempts")?)?,
                created_at: from_micros(row.try_get("created_at")?)?,
            })
        })
        .collect()
}

pub(super) async fn record_alert(
    client: &Client,
    alert_id: &str,
    outcome: &AlertOutcome,
    now: OffsetDateTime,
) -> Result<()> {
    let changed = match outcome {
        AlertOutcome::Sent => {
            client
                .execute(
                    concat!(
                        "UPDATE alerts SET status = 'sent', last_error = NULL, sent_at = ",
                        at_micros!("$2"),
                        " WHERE alert_id = $1"
                    ),
                    &[&alert_id, &micros(now)],
                )
                .await?
        }
        AlertOutcome::RetryAt { error, at } => {
            client
                .execute(
                    concat!(
                        "UPDATE alerts SET last_error = $3, next_attempt_at = ",
                        at_micros!("$2"),
                        " WHERE alert_id = $1"
                    ),
                    &[&alert_id, &micros(*at), error],
                )
                .await?
        }
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Makes the sensors waiting between pokes in the running runs of orders backordered on any
/// of `product_ids` due at `now` (Unix µs), in the transaction that raised their stock;
/// returns how many. A restock would otherwise reach them only at their next poke. Which of
/// them gets the stock stays `fill_backorder`'s decision (first come, first served), not the
/// order they run in. The steps are locked in key order, so two restocks touching the same
/// runs queue instead of deadlocking; the products were locked before, as every writer does.
pub(super) async fn poke_backorder_sensors(
    tx: &Transaction<'_>,
    store_id: &StoreId,
    product_ids: &[&str],
    now: i64,
) -> Result<u64> {
    if product_ids.is_empty() {
        return Ok(0);
    }
    let statement = tx
        .prepare_cached(concat!(
            "WITH due AS (
                 SELECT s.run_id, s.step FROM run_steps s JOIN runs r ON r.run_id = s.run_id
                 WHERE r.order_id IN (SELECT b.order_id FROM backorders b
                                      JOIN orders o ON o.order_id = b.order_id
                                      WHERE o.store_id = $1 AND b.product_id = ANY($2))
                   AND r.status = 'running' AND s.status = 'ready' AND s.poking
                   AND s.due_at > ",
            at_micros!("$3"),
            "
                 ORDER BY s.run_id, s.step
                 FOR UPDATE OF s
             )
             UPDATE run_steps s SET due_at = ",
            at_micros!("$3"),
            " FROM due WHERE s.run_id = due.run_id AND s.step = due.step"
        ))
        .await?;
    Ok(tx
        .execute(&statement, &[&store_id.as_str(), &product_ids, &now])
        .await?)
}

/// Makes the sensors waiting between pokes in the running runs of `order_id` due at `now`
/// (Unix µs): an edit that left the order nothing to wait for lets it move on at once.
pub(super) async fn poke_order_sensors(
    tx: &Transaction<'_>,
    order_id: &str,
    now: i64,
) -> Result<u64> {
    let statement = tx
        .prepare_cached(concat!(
            "UPDATE run_steps s SET due_at = ",
            at_micros!("$2"),
            " FROM runs r
             WHERE r.run_id = s.run_id AND r.order_id = $1 AND r.status = 'running'
               AND s.status = 'ready' AND s.poking AND s.due_at > ",
            at_micros!("$2")
        ))
        .await?;
    Ok(tx.execute(&statement, &[&order_id, &now]).await?)
}
