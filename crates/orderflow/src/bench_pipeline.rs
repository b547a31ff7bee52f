//! `orderflow bench pipeline`: `--orders` orders placed over HTTP by `--concurrency` clients,
//! each carried by the order pipeline to `shipped` against in-process sandboxes; then, from
//! the runs the store kept, how fast orders completed (from the first placement to the last
//! run's end), how long each took from creation to shipment, and how long a step's handler
//! waited to start after the step before it finished.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orderflow_store::{Run, RunFilter, RunStatus, Scope, Store};
use serde_json::json;
use time::OffsetDateTime;

use crate::bench::{BenchArgs, round, sku};
use crate::engine::EngineArgs;
use crate::load::{drive, drive_until_done};
use crate::server::Running;

/// How long the pipeline may take to drain what was placed before the bench gives up.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

pub async fn measure(
    args: &BenchArgs,
    store: Arc<dyn Store>,
    backend: &str,
) -> anyhow::Result<String> {
    let starts = Arc::new(HandlerStarts::default());
    let engine = EngineArgs {
        observer: Some(starts.clone()),
        ..EngineArgs::sandboxed()
    };
    let server = Running::start(
        store.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(&engine),
    )
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let duration = Duration::from_secs(args.seconds);
    let base = Arc::new(server.url());
    let mut floor = {
        let (client, base) = (client.clone(), base.clone());
        drive(args.concurrency, duration, move |_, _| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                matches!(client.get(format!("{base}/healthz")).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await
    };

    let token = Arc::new(format!("Bearer {}", server.admin_token));
    let skus = args.skus.max(2);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let total = args.orders;
    let placed = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        // Clients stop once `total` orders were asked for; the duration is only a bound.
        drive_until_done(args.concurrency, DRAIN_LIMIT, move |_, _| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let n = next.fetch_add(1, Ordering::Relaxed);
            let product = sku((n as usize * 7919) % skus);
            let body = json!({
                "products": [{"product_id": product, "item_count": 1}],
                "payment_method": "pm_card_visa",
                "customer": {"name": "Bench Customer", "email": "bench@example.com"},
                "shipping_address": {
                    "name": "Bench Customer", "line1": "Av. Providencia 1208", "city": "Santiago",
                    "region": "RM", "postal_code": "7500000", "country": "CL"
                }
            })
            .to_string();
            async move {
                if n >= total {
                    return None;
                }
                let sent = client
                    .post(format!("{base}/orders"))
                    .header("authorization", token.as_str())
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                Some(matches!(sent, Ok(r) if r.status() == reqwest::StatusCode::CREATED))
            }
        })
        .await
    };
    let placing = started.elapsed();
    // Only the order pipeline's runs: a storefront-pulls tick may fall inside the bench.
    let running = RunFilter {
        status: Some(RunStatus::Running),
        workflow: Some(orderflow_pipeline::ORDER_WORKFLOW.into()),
        limit: 1,
        ..Default::default()
    };
    while !store
        .list_runs(&Scope::Everything, running.clone())
        .await?
        .items
        .is_empty()
    {
        anyhow::ensure!(
            started.elapsed() < placing + DRAIN_LIMIT,
            "runs were still running {} s after the last order",
            DRAIN_LIMIT.as_secs()
        );
        // Looking is a query too; a quarter second is ~1 % of a run.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drained = started.elapsed();
    server.stop().await?;

    let runs = all_runs(store.as_ref()).await?;
    let succeeded = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .count();
    let mut end_to_end_ms = Vec::new();
    let mut gaps_ms = Vec::new();
    let workflow = orderflow_pipeline::order_workflow(orderflow_pipeline::Timing::default());
    for run in &runs {
        let run = store.get_run(&Scope::Everything, &run.run_id).await?;
        if let Some(shipped) = finished_at(&run, "create_shipment") {
            end_to_end_ms.push(millis(shipped - run.created_at));
        }
        gaps_ms.extend(step_gaps(&workflow, &run, &starts));
    }
    let floor_rate = floor.per_second();
    let line = json!({
        "scenario": "pipeline",
        "backend": backend,
        "concurrency": args.concurrency,
        "orders": placed.count(),
        "placement_s": round(placing.as_secs_f64()),
        "placement_errors": placed.errors,
        "runs_succeeded": succeeded,
        "runs_not_succeeded": runs.len() - succeeded,
        "orders_completed_per_s": round(succeeded as f64 / drained.as_secs_f64()),
        "e2e_p50_ms": round(quantile(&mut end_to_end_ms, 0.50)),
        "e2e_p99_ms": round(quantile(&mut end_to_end_ms, 0.99)),
        "step_gap_p50_ms": round(quantile(&mut gaps_ms, 0.50)),
        "step_gap_p99_ms": round(quantile(&mut gaps_ms, 0.99)),
        "total_s": round(drained.as_secs_f64()),
        "floor_healthz_per_s": round(floor_rate),
        "floor_p50_ms": round(floor.quantile_ms(0.50)),
        "floor_p99_ms": round(floor.quantile_ms(0.99)),
    });
    Ok(line.to_string())
}

async fn all_runs(store: &dyn Store) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut filter = RunFilter {
        workflow: Some(orderflow_pipeline::ORDER_WORKFLOW.into()),
        limit: 200,
        ..Default::default()
    };
    loop {
        let page = store.list_runs(&Scope::Everything, filter.clone()).await?;
        let more = page.has_more;
        filter.before = page.items.last().map(|r| r.run_id.clone());
        runs.extend(page.items);
        if !more {
            return Ok(runs);
        }
    }
}

fn finished_at(run: &Run, step: &str) -> Option<OffsetDateTime> {
    run.steps.iter().find(|s| s.name == step)?.finished_at
}

/// When each step's handler first started, by run and step, as the worker saw it.
#[derive(Debug, Default)]
struct HandlerStarts(std::sync::Mutex<HashMap<(String, String), OffsetDateTime>>);

impl orderflow_workflow::StepObserver for HandlerStarts {
    fn handler_started(&self, step: &orderflow_store::ClaimedStep, at: OffsetDateTime) {
        if let Ok(mut starts) = self.0.lock() {
            starts
                .entry((step.run_id.clone(), step.step.clone()))
                .or_insert(at);
        }
    }
}

/// For every step that ran after others: from the last of its upstream steps finishing (as
/// recorded, before that finish committed) to its own handler starting. So the gap holds the
/// commit, the claim or hand-over, and the wait for a free worker slot.
fn step_gaps(
    workflow: &orderflow_workflow::Workflow,
    run: &Run,
    starts: &HandlerStarts,
) -> Vec<f64> {
    let finished: HashMap<&str, OffsetDateTime> = run
        .steps
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.finished_at?)))
        .collect();
    let Ok(starts) = starts.0.lock() else {
        return Vec::new();
    };
    run.steps
        .iter()
        .filter_map(|step| {
            let started = *starts.get(&(run.run_id.clone(), step.name.clone()))?;
            let upstream = &workflow.step(&step.name)?.upstream;
            let ready = upstream
                .iter()
                .map(|u| finished.get(u.as_str()).copied())
                .collect::<Option<Vec<_>>>()?
                .into_iter()
                .max()?;
            Some(millis(started - ready))
        })
        .collect()
}

fn millis(duration: time::Duration) -> f64 {
    duration.as_seconds_f64() * 1000.0
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    values[rank]
}
