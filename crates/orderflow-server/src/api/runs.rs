//! The workflow engine at the edge: the workflows this node runs, their runs with every step
//! and attempt, an operator's retry, skip and cancel, and the documents the pipeline made.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use orderflow_store::{Run, RunFilter, RunStatus, Step};
use orderflow_workflow::{Control, TriggerRule};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::intake::rfc3339;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem, not_found_as};

fn control(state: &AppState) -> ApiResult<&Control> {
    state
        .workflows
        .as_ref()
        .ok_or(ApiError::NotFound("workflow engine on this node"))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkflowBody {
    pub name: String,
    /// Cron expression (UTC) for workflows that run on a schedule.
    pub schedule: Option<String>,
    /// In declaration order; `upstream` gives the DAG's edges.
    pub steps: Vec<StepDefinitionBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepDefinitionBody {
    pub name: String,
    pub upstream: Vec<String>,
    /// `all_succeeded`, `all_done` or `one_failed`.
    pub trigger: String,
    pub max_attempts: u32,
    pub initial_delay_ms: u64,
    pub max_delay_ms: u64,
    pub timeout_ms: u64,
    /// For sensors: how often the condition is checked and how long it may take.
    pub poke_every_ms: Option<u64>,
    pub sensor_timeout_ms: Option<u64>,
    /// Attempts of this step one worker runs at once.
    pub concurrency: Option<u32>,
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[utoipa::path(
    get, path = "/workflows", tag = "workflows",
    responses(
        (status = 200, description = "The workflows this node runs, with their DAGs", body = [WorkflowBody]),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_workflows(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<WorkflowBody>>> {
    caller.require_merchant()?;
    let control = control(&state)?;
    let mut workflows: Vec<WorkflowBody> = control
        .registry()
        .workflows()
        .map(|workflow| WorkflowBody {
            name: workflow.name().to_owned(),
            schedule: workflow.schedule().map(|c| c.expression().to_owned()),
            steps: workflow
                .steps()
                .iter()
                .map(|step| StepDefinitionBody {
                    name: step.name.clone(),
                    upstream: step.upstream.clone(),
                    trigger: match step.trigger {
                        TriggerRule::AllSucceeded => "all_succeeded",
                        TriggerRule::AllDone => "all_done",
                        TriggerRule::OneFailed => "one_failed",
                    }
                    .into(),
                    max_attempts: step.retry.max_attempts,
                    initial_delay_ms: millis(step.retry.initial_delay),
                    max_delay_ms: millis(step.retry.max_delay),
                    timeout_ms: millis(step.timeout),
                    poke_every_ms: step.sensor.map(|s| millis(s.poke_every)),
                    sensor_timeout_ms: step.sensor.map(|s| millis(s.timeout)),
                    concurrency: step.concurrency,
                })
                .collect(),
        })
        .collect();
    workflows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(workflows))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptBody {
    pub attempt: u32,
    pub worker: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// `succeeded`, `failed`, `waiting` (a sensor's poke), `skipped`, `lease_expired`; none
    /// while running.
    pub outcome: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepBody {
    pub name: String,
    /// `waiting`, `ready`, `running`, `succeeded`, `failed`, `skipped`, `upstream_failed`,
    /// `cancelled`.
    pub status: String,
    pub attempts: u32,
    pub due_at: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub history: Vec<AttemptBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunBody {
    pub run_id: String,
    pub workflow: String,
    pub store_id: String,
    pub order_id: Option<String>,
    /// `running`, `succeeded`, `failed`, `cancelled`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// Empty in listings.
    pub steps: Vec<StepBody>,
}

fn duration_ms(
    from: Option<time::OffsetDateTime>,
    to: Option<time::OffsetDateTime>,
) -> Option<i64> {
    Some(i64::try_from((to? - from?).whole_milliseconds()).unwrap_or(i64::MAX))
}

fn step_body(step: Step) -> StepBody {
    StepBody {
        status: step.status.as_str().to_owned(),
        attempts: step.attempts,
        due_at: step.due_at.map(rfc3339),
        lease_owner: step.lease_owner,
        lease_until: step.lease_until.map(rfc3339),
        started_at: step.first_started_at.map(rfc3339),
        finished_at: step.finished_at.map(rfc3339),
        duration_ms: duration_ms(step.first_started_at, step.finished_at),
        output: step
            .output
            .map(|o| serde_json::from_str(&o).unwrap_or(serde_json::Value::String(o))),
        error: step.error,
        history: step
            .history
            .into_iter()
            .map(|a| AttemptBody {
                attempt: a.attempt,
                worker: a.worker,
                started_at: rfc3339(a.started_at),
                finished_at: a.finished_at.map(rfc3339),
                duration_ms: duration_ms(Some(a.started_at), a.finished_at),
                outcome: a.outcome,
                error: a.error,
            })
            .collect(),
        name: step.name,
    }
}

pub(crate) fn run_body(run: Run) -> RunBody {
    RunBody {
        run_id: run.run_id,
        workflow: run.workflow,
        store_id: run.store_id.to_string(),
        order_id: run.order_id.map(|id| id.to_string()),
        status: run.status.as_str().to_owned(),
        created_at: rfc3339(run.created_at),
        updated_at: rfc3339(run.updated_at),
        finished_at: run.finished_at.map(rfc3339),
        steps: run.steps.into_iter().map(step_body).collect(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    pub order_id: Option<String>,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: Option<String>,
    pub workflow: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunPage {
    pub runs: Vec<RunBody>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/runs", tag = "workflows", params(RunQuery),
    responses(
        (status = 200, description = "Runs, newest first, without their steps", body = RunPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    caller.require_merchant()?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidQuery("limit must be 1 to 200".into()));
    }
    let status = query
        .status
        .map(|s| {
            s.parse::<RunStatus>().map_err(|_| {
                ApiError::InvalidQuery(
                    "status must be running, succeeded, failed or cancelled".into(),
                )
            })
        })
        .transpose()?;
    let order_id = query
        .order_id
        .map(|id| {
            id.parse()
                .map_err(|e| ApiError::InvalidQuery(format!("order_id: {e}")))
        })
        .transpose()?;
    let page = state
        .store
        .list_runs(
            &caller.scope(),
            RunFilter {
                order_id,
                status,
                workflow: query.workflow,
                limit,
                before: query.cursor,
            },
        )
        .await?;
    let next_cursor = page
        .has_more
        .then(|| page.items.last().map(|r| r.run_id.clone()))
        .flatten();
    Ok(Json(RunPage {
        runs: page.items.into_iter().map(run_body).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/runs/{run_id}", tag = "workflows",
    params(("run_id" = String, Path)),
    responses(
        (status = 200, description = "The run with its steps, attempts, errors and durations", body = RunBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunBody>> {
    caller.require_merchant()?;
    let run = state
        .store
        .get_run(&caller.scope(), &run_id)
        .await
        .map_err(not_found_as("run"))?;
    Ok(Json(run_body(run)))
}

#[utoipa::path(
    post, path = "/runs/{run_id}/steps/{step}/retry", tag = "workflows",
    params(("run_id" = String, Path), ("step" = String, Path)),
    responses(
        (status = 200, description = "The step runs again with fresh tries", body = RunBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Only a failed step of a run that was not cancelled can be retried", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn retry_step(
    State(state): State<AppState>,
    caller: Caller,
    Path((run_id, step)): Path<(String, String)>,
) -> ApiResult<Json<RunBody>> {
    caller.require_merchant()?;
    let run = control(&state)?
        .retry_step(&caller.scope(), &run_id, &step)
        .await
        .map_err(not_found_as("run or step"))?;
    Ok(Json(run_body(run)))
}

#[utoipa::path(
    post, path = "/runs/{run_id}/steps/{step}/skip", tag = "workflows",
    params(("run_id" = String, Path), ("step" = String, Path)),
    responses(
        (status = 200, description = "The step counts as done and the run goes on", body = RunBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A running or finished step cannot be skipped", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn skip_step(
    State(state): State<AppState>,
    caller: Caller,
    Path((run_id, step)): Path<(String, String)>,
) -> ApiResult<Json<RunBody>> {
    caller.require_merchant()?;
    let run = control(&state)?
        .skip_step(&caller.scope(), &run_id, &step)
        .await
        .map_err(not_found_as("run or step"))?;
    Ok(Json(run_body(run)))
}

#[utoipa::path(
    post, path = "/runs/{run_id}/cancel", tag = "workflows",
    params(("run_id" = String, Path)),
    responses(
        (status = 200, description = "Steps not started are cancelled; compensation runs", body = RunBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has already finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunBody>> {
    caller.require_merchant()?;
    let run = control(&state)?
        .cancel_run(&caller.scope(), &run_id)
        .await
        .map_err(not_found_as("run"))?;
    Ok(Json(run_body(run)))
}

#[utoipa::path(
    get, path = "/orders/{order_id}/documents/{kind}", tag = "orders",
    params(("order_id" = String, Path), ("kind" = String, Path, description = "`packing_slip`, `label` (PDF) or `label_zpl`")),
    responses(
        (status = 200, description = "The document as stored (PDF or ZPL)", content_type = "application/pdf"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or no such document yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    Path((order_id, kind)): Path<(String, String)>,
) -> ApiResult<Response> {
    let order_id = order_id.parse().map_err(|_| ApiError::NotFound("order"))?;
    let document = state
        .store
        .get_document(&caller.scope(), &order_id, &kind)
        .await
        .map_err(not_found_as("document"))?;
    Ok((
        [(header::CONTENT_TYPE, document.content_type)],
        document.body,
    )
        .into_response())
}
