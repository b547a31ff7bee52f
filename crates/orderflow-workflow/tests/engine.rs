//! Engine conformance, on SQLite and (with `ORDERFLOW_TEST_POSTGRES`) PostgreSQL: runs follow
//! their DAG, steps are leased to one worker at a time, retries, alerts, compensation, trigger
//! rules, sensors and an operator's actions.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orderflow_domain::StoreId;
use orderflow_store::{Alert, Claim, RunStatus, Scope, StartRun, StepStatus, Store};
use orderflow_workflow::{
    AlertDispatcher, AlertSink, Control, OnTimeout, Outcome, Registry, RetryPolicy, SensorPolicy,
    StepError, StepHandler, TriggerRule, Worker, WorkerConfig, WorkflowBuilder, step,
};
use support::{case, done, finished, scripted};
use time::OffsetDateTime;

const WITHIN: Duration = Duration::from_secs(20);

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        max_attempts,
        Duration::from_millis(40),
        Duration::from_millis(200),
    )
}

fn config(name: &str) -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_secs(5),
        heartbeat_every: Duration::from_millis(500),
        poll_every: Duration::from_millis(100),
        ..WorkerConfig::named(name)
    }
}

async fn start(store: &Arc<dyn Store>, registry: &Registry, workflow: &str) -> String {
    let run = registry
        .new_run(workflow, &serde_json::json!({}), OffsetDateTime::now_utc())
        .expect("the workflow is registered");
    store
        .start_run(StartRun {
            run,
            store_id: StoreId::default_store(),
            order_id: None,
            now: OffsetDateTime::now_utc(),
        })
        .await
        .expect("the run starts")
        .run_id
}

fn status_of(run: &orderflow_store::Run, step: &str) -> StepStatus {
    run.steps
        .iter()
        .find(|s| s.name == step)
        .unwrap_or_else(|| panic!("run has no step {step}"))
        .status
}

case!(a_run_follows_its_dag);
async fn a_run_follows_its_dag(store: Arc<dyn Store>) {
    let order = Arc::new(Mutex::new(Vec::new()));
    let record = |name: &'static str| {
        let order = order.clone();
        scripted(move |_| {
            order.lock().expect("log").push(name);
            Ok(Outcome::Done(Some(serde_json::json!({ "by": name }))))
        })
    };
    let workflow = WorkflowBuilder::new("diamond")
        .step(step("a"))
        .step(step("b").after(["a"]))
        .step(step("c").after(["a"]))
        .step(step("d").after(["b", "c"]))
        .build()
        .expect("a valid DAG");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                ("a", record("a")),
                ("b", record("b")),
                ("c", record("c")),
                ("d", record("d")),
            ],
        )
        .expect("every step has a handler");
    let registry = Arc::new(registry);
    let _worker = Worker::start(store.clone(), registry.clone(), config("w1"));
    let run_id = start(&store, &registry, "diamond").await;

    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let order = order.lock().expect("log").clone();
    assert_eq!(order.first(), Some(&"a"));
    assert_eq!(order.last(), Some(&"d"));
    assert_eq!(order.len(), 4, "each step ran once: {order:?}");
    let d = run.steps.iter().find(|s| s.name == "d").expect("step d");
    assert_eq!(d.output.as_deref(), Some(r#"{"by":"d"}"#));
    assert_eq!(d.history.len(), 1);
    assert_eq!(d.history[0].outcome.as_deref(), Some("succeeded"));
}

case!(two_workers_never_hold_the_same_step);
async fn two_workers_never_hold_the_same_step(store: Arc<dyn Store>) {
    #[derive(Debug, Default)]
    struct Exclusive {
        running: Mutex<HashSet<String>>,
        ran: Mutex<Vec<String>>,
        overlaps: AtomicU32,
    }
    #[async_trait]
    impl StepHandler for Exclusive {
        async fn run(
            &self,
            context: &orderflow_workflow::StepContext,
        ) -> Result<Outcome, StepError> {
            let key = context.idempotency_key();
            if !self.running.lock().expect("set").insert(key.clone()) {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.running.lock().expect("set").remove(&key);
            self.ran.lock().expect("log").push(key);
            Ok(Outcome::Done(None))
        }
    }
    let handler = Arc::new(Exclusive::default());
    let workflow = WorkflowBuilder::new("pair")
        .step(step("first"))
        .step(step("second").after(["first"]))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                ("first", handler.clone() as Arc<dyn StepHandler>),
                ("second", handler.clone()),
            ],
        )
        .expect("registered");
    let registry = Arc::new(registry);
    let mut runs = Vec::new();
    for _ in 0..150 {
        runs.push(start(&store, &registry, "pair").await);
    }
    let _one = Worker::start(store.clone(), registry.clone(), config("one"));
    let _two = Worker::start(store.clone(), registry.clone(), config("two"));
    for run_id in &runs {
        assert_eq!(
            finished(&store, run_id, WITHIN).await.status,
            RunStatus::Succeeded
        );
    }
    assert_eq!(handler.overlaps.load(Ordering::SeqCst), 0);
    let ran = handler.ran.lock().expect("log").clone();
    let distinct: HashSet<&String> = ran.iter().collect();
    assert_eq!(ran.len(), 300, "every step ran");
    assert_eq!(distinct.len(), 300, "no step ran twice");
}

case!(a_steps_concurrency_limit_holds_across_workers);
async fn a_steps_concurrency_limit_holds_across_workers(store: Arc<dyn Store>) {
    /// Stands for a provider that allows two calls at once: counts the calls in progress.
    #[derive(Debug, Default)]
    struct RateLimited {
        in_progress: AtomicU32,
        most_at_once: AtomicU32,
        calls: AtomicU32,
    }
    #[async_trait]
    impl StepHandler for RateLimited {
        async fn run(
            &self,
            _context: &orderflow_workflow::StepContext,
        ) -> Result<Outcome, StepError> {
            let now = self.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.in_progress.fetch_sub(1, Ordering::SeqCst);
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Outcome::Done(None))
        }
    }
    let provider = Arc::new(RateLimited::default());
    // `prepare` is unlimited and hands each run straight on to the limited `call`, so both
    // the claim and the finish-and-go-on paths must respect the limit.
    let workflow = WorkflowBuilder::new("limited")
        .step(step("prepare"))
        .step(step("call").after(["prepare"]).concurrency(2))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                ("prepare", done()),
                ("call", provider.clone() as Arc<dyn StepHandler>),
            ],
        )
        .expect("registered");
    let registry = Arc::new(registry);
    let mut runs = Vec::new();
    for _ in 0..24 {
        runs.push(start(&store, &registry, "limited").await);
    }
    // Three workers stand for three nodes: each alone would allow two calls at once.
    let _workers: Vec<_> = ["a", "b", "c"]
        .map(|name| Worker::start(store.clone(), registry.clone(), config(name)))
        .into();
    for run_id in &runs {
        assert_eq!(
            finished(&store, run_id, WITHIN).await.status,
            RunStatus::Succeeded
        );
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 24);
    assert!(
        provider.most_at_once.load(Ordering::SeqCst) <= 2,
        "{} calls ran at once under a limit of 2",
        provider.most_at_once.load(Ordering::SeqCst)
    );
}

case!(an_expired_lease_is_taken_over);
async fn an_expired_lease_is_taken_over(store: Arc<dyn Store>) {
    let workflow = WorkflowBuilder::new("single")
        .step(step("only"))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(workflow, [("only", done())])
        .expect("registered");
    let registry = Arc::new(registry);
    let run_id = start(&store, &registry, "single").await;

    // A worker claims the step and dies without a word.
    let now = OffsetDateTime::now_utc();
    let claimed = store
        .claim_steps(Claim {
            worker: "dead".into(),
            limit: 10,
            now,
            lease_until: now + Duration::from_millis(300),
            limits: Vec::new(),
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);

    let _survivor = Worker::start(store.clone(), registry.clone(), config("survivor"));
    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let history = &run.steps[0].history;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].worker, "dead");
    assert_eq!(history[0].outcome.as_deref(), Some("lease_expired"));
    assert_eq!(history[1].worker, "survivor");
    assert_eq!(history[1].outcome.as_deref(), Some("succeeded"));
}

case!(a_lost_lease_cannot_record_a_result);
async fn a_lost_lease_cannot_record_a_result(store: Arc<dyn Store>) {
    let workflow = WorkflowBuilder::new("single")
        .step(step("only"))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(workflow, [("only", done())])
        .expect("registered");
    let registry = Arc::new(registry);
    start(&store, &registry, "single").await;
    let now = OffsetDateTime::now_utc();
    let claim = |worker: &str, at: OffsetDateTime| Claim {
        worker: worker.into(),
        limit: 1,
        now: at,
        lease_until: at + Duration::from_millis(100),
        limits: Vec::new(),
    };
    let slow = store.claim_steps(claim("slow", now)).await.expect("claim");
    let later = now + Duration::from_millis(200);
    let fast = store
        .claim_steps(claim("fast", later))
        .await
        .expect("claim");
    assert_eq!(fast[0].attempt, 2, "the expired lease was taken over");
    let outcome = store
        .finish_step(
            orderflow_store::FinishStep {
                run_id: slow[0].run_id.clone(),
                step: "only".into(),
                attempt: slow[0].attempt,
                worker: "slow".into(),
                result: orderflow_store::StepResult::Succeeded { output: None },
                now: later,
                claim_next: 0,
                lease_until: later,
                limits: Vec::new(),
            },
            registry.clone(),
        )
        .await;
    assert!(
        matches!(outcome, Err(orderflow_store::Error::LeaseLost)),
        "{outcome:?}"
    );
    let heartbeat = store
        .heartbeat(&slow[0].run_id, "only", slow[0].attempt, "slow", later)
        .await;
    assert!(matches!(heartbeat, Err(orderflow_store::Error::LeaseLost)));
}

case!(a_failing_step_is_retried_on_schedule);
async fn a_failing_step_is_retried_on_schedule(store: Arc<dyn Store>) {
    let tries = Arc::new(AtomicU32::new(0));
    let counter = tries.clone();
    let flaky = scripted(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(StepError::retry("the service answered 503"))
        } else {
            Ok(Outcome::Done(None))
        }
    });
    let workflow = WorkflowBuilder::new("flaky")
        .step(step("call").retry(RetryPolicy::new(
            5,
            Duration::from_millis(200),
            Duration::from_secs(1),
        )))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(workflow, [("call", flaky)])
        .expect("registered");
    let registry = Arc::new(registry);
    let _worker = Worker::start(store.clone(), registry.clone(), config("w"));
    let run_id = start(&store, &registry, "flaky").await;
    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let history = &run.steps[0].history;
    let outcomes: Vec<_> = history.iter().map(|a| a.outcome.as_deref()).collect();
    assert_eq!(
        outcomes,
        [Some("failed"), Some("failed"), Some("succeeded")]
    );
    assert_eq!(
        history[0].error.as_deref(),
        Some("the service answered 503")
    );
    // Backoff with equal jitter waits at least half the delay: 100 ms, then 200 ms.
    let gap =
        |i: usize| history[i + 1].started_at - history[i].finished_at.expect("attempt finished");
    assert!(
        gap(0) >= Duration::from_millis(100),
        "first retry after {}",
        gap(0)
    );
    assert!(
        gap(1) >= Duration::from_millis(200),
        "second retry after {}",
        gap(1)
    );
}

#[derive(Debug, Default)]
struct RecordingSink(Mutex<Vec<Alert>>);

#[async_trait]
impl AlertSink for RecordingSink {
    async fn send(&self, alert: &Alert) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .push(alert.clone());
        Ok(())
    }
}

case!(exhausted_retries_fire_the_alert_and_the_compensation);
async fn exhausted_retries_fire_the_alert_and_the_compensation(store: Arc<dyn Store>) {
    let compensated = Arc::new(AtomicU32::new(0));
    let counter = compensated.clone();
    let workflow = WorkflowBuilder::new("doomed")
        .step(step("reserve"))
        .step(step("charge").after(["reserve"]).retry(fast_retries(3)))
        .step(step("ship").after(["charge"]))
        .step(
            step("undo")
                .after(["reserve", "charge", "ship"])
                .trigger(TriggerRule::OneFailed),
        )
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                ("reserve", done()),
                (
                    "charge",
                    scripted(|_| Err(StepError::retry("card processor down"))),
                ),
                ("ship", done()),
                (
                    "undo",
                    scripted(move |_| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Ok(Outcome::Done(None))
                    }),
                ),
            ],
        )
        .expect("registered");
    let registry = Arc::new(registry);
    let sink = Arc::new(RecordingSink::default());
    let _alerts = AlertDispatcher::start(store.clone(), sink.clone(), Duration::from_millis(50));
    let _worker = Worker::start(store.clone(), registry.clone(), config("w"));
    let run_id = start(&store, &registry, "doomed").await;

    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(status_of(&run, "charge"), StepStatus::Failed);
    assert_eq!(status_of(&run, "ship"), StepStatus::UpstreamFailed);
    assert_eq!(status_of(&run, "undo"), StepStatus::Succeeded);
    assert_eq!(compensated.load(Ordering::SeqCst), 1);
    let charge = run
        .steps
        .iter()
        .find(|s| s.name == "charge")
        .expect("charge");
    assert_eq!(charge.attempts, 3);

    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let alerts = sink.0.lock().expect("alerts").clone();
        if let [alert] = &alerts[..] {
            assert_eq!(alert.run_id, run_id);
            assert_eq!(alert.step, "charge");
            assert!(alert.body.contains("card processor down"), "{}", alert.body);
            break;
        }
        assert!(alerts.len() < 2, "one alert, not {}", alerts.len());
        assert!(tokio::time::Instant::now() < deadline, "no alert was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

case!(trigger_rules_decide_cleanup_and_compensation);
async fn trigger_rules_decide_cleanup_and_compensation(store: Arc<dyn Store>) {
    let workflow = WorkflowBuilder::new("rules")
        .step(step("work"))
        .step(
            step("cleanup")
                .after(["work"])
                .trigger(TriggerRule::AllDone),
        )
        .step(
            step("on_failure")
                .after(["work"])
                .trigger(TriggerRule::OneFailed),
        )
        .step(step("next").after(["work"]))
        .build()
        .expect("valid");
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failing = fail.clone();
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                (
                    "work",
                    scripted(move |_| {
                        if failing.load(Ordering::SeqCst) {
                            Err(StepError::fatal("bad input"))
                        } else {
                            Ok(Outcome::Done(None))
                        }
                    }),
                ),
                ("cleanup", done()),
                ("on_failure", done()),
                ("next", done()),
            ],
        )
        .expect("registered");
    let registry = Arc::new(registry);
    let _worker = Worker::start(store.clone(), registry.clone(), config("w"));

    let run = finished(&store, &start(&store, &registry, "rules").await, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(status_of(&run, "cleanup"), StepStatus::Succeeded);
    assert_eq!(status_of(&run, "on_failure"), StepStatus::Skipped);
    assert_eq!(status_of(&run, "next"), StepStatus::Succeeded);

    fail.store(true, Ordering::SeqCst);
    let run = finished(&store, &start(&store, &registry, "rules").await, WITHIN).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(status_of(&run, "work"), StepStatus::Failed);
    assert_eq!(run.steps[0].attempts, 1, "a fatal error is not retried");
    assert_eq!(status_of(&run, "cleanup"), StepStatus::Succeeded);
    assert_eq!(status_of(&run, "on_failure"), StepStatus::Succeeded);
    assert_eq!(status_of(&run, "next"), StepStatus::UpstreamFailed);
}

fn sensor_workflow(on_timeout: OnTimeout) -> Registry {
    let workflow = WorkflowBuilder::new("waiting")
        .step(step("wait").sensor(SensorPolicy {
            poke_every: Duration::from_millis(50),
            timeout: Duration::from_millis(400),
            on_timeout,
        }))
        .step(step("after").after(["wait"]))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                ("wait", scripted(|_| Ok(Outcome::NotYet))),
                ("after", done()),
            ],
        )
        .expect("registered");
    registry
}

case!(a_sensor_that_times_out_fails_or_skips_as_declared);
async fn a_sensor_that_times_out_fails_or_skips_as_declared(store: Arc<dyn Store>) {
    let failing = Arc::new(sensor_workflow(OnTimeout::Fail));
    let worker = Worker::start(store.clone(), failing.clone(), config("w"));
    let run = finished(&store, &start(&store, &failing, "waiting").await, WITHIN).await;
    drop(worker);
    assert_eq!(run.status, RunStatus::Failed);
    let wait = &run.steps[0];
    assert_eq!(wait.status, StepStatus::Failed);
    assert_eq!(wait.attempts, 1, "pokes are not attempts");
    assert!(
        wait.error
            .as_deref()
            .unwrap_or_default()
            .contains("did not hold")
    );
    assert_eq!(status_of(&run, "after"), StepStatus::UpstreamFailed);

    let skipping = Arc::new(sensor_workflow(OnTimeout::Skip));
    let _worker = Worker::start(store.clone(), skipping.clone(), config("w2"));
    let run = finished(&store, &start(&store, &skipping, "waiting").await, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(status_of(&run, "wait"), StepStatus::Skipped);
    assert_eq!(status_of(&run, "after"), StepStatus::Succeeded);
}

case!(a_cancelled_run_stops_and_compensates);
async fn a_cancelled_run_stops_and_compensates(store: Arc<dyn Store>) {
    let workflow = WorkflowBuilder::new("cancellable")
        .step(step("hold"))
        .step(step("wait").after(["hold"]).sensor(SensorPolicy {
            poke_every: Duration::from_millis(50),
            timeout: Duration::from_secs(60),
            on_timeout: OnTimeout::Fail,
        }))
        .step(step("ship").after(["wait"]))
        .step(
            step("release")
                .after(["hold", "wait", "ship"])
                .trigger(TriggerRule::OneFailed),
        )
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                ("hold", done()),
                ("wait", scripted(|_| Ok(Outcome::NotYet))),
                ("ship", done()),
                ("release", done()),
            ],
        )
        .expect("registered");
    let registry = Arc::new(registry);
    let _worker = Worker::start(store.clone(), registry.clone(), config("w"));
    let run_id = start(&store, &registry, "cancellable").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let control = Control::new(store.clone(), registry.clone());
    control
        .cancel_run(&Scope::Everything, &run_id)
        .await
        .expect("cancel");
    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(status_of(&run, "hold"), StepStatus::Succeeded);
    assert_eq!(status_of(&run, "ship"), StepStatus::Cancelled);
    assert_eq!(status_of(&run, "release"), StepStatus::Succeeded);
    let again = control.cancel_run(&Scope::Everything, &run_id).await;
    assert!(again.is_ok(), "cancelling twice is harmless");
}

case!(an_operator_retries_a_failed_step_and_skips_another);
async fn an_operator_retries_a_failed_step_and_skips_another(store: Arc<dyn Store>) {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = healthy.clone();
    let workflow = WorkflowBuilder::new("manual")
        .step(step("call").retry(RetryPolicy::once()))
        .step(step("after").after(["call"]))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(
            workflow,
            [
                (
                    "call",
                    scripted(move |_| {
                        if up.load(Ordering::SeqCst) {
                            Ok(Outcome::Done(None))
                        } else {
                            Err(StepError::retry("down"))
                        }
                    }),
                ),
                ("after", done()),
            ],
        )
        .expect("registered");
    let registry = Arc::new(registry);
    let _worker = Worker::start(store.clone(), registry.clone(), config("w"));
    let control = Control::new(store.clone(), registry.clone());

    let run_id = start(&store, &registry, "manual").await;
    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(status_of(&run, "after"), StepStatus::UpstreamFailed);
    let refused = control
        .retry_step(&Scope::Everything, &run_id, "after")
        .await;
    assert!(
        matches!(refused, Err(orderflow_store::Error::InvalidAction(_))),
        "{refused:?}"
    );

    healthy.store(true, Ordering::SeqCst);
    control
        .retry_step(&Scope::Everything, &run_id, "call")
        .await
        .expect("retry");
    let run = finished(&store, &run_id, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(status_of(&run, "call"), StepStatus::Succeeded);
    assert_eq!(status_of(&run, "after"), StepStatus::Succeeded);

    healthy.store(false, Ordering::SeqCst);
    let second = start(&store, &registry, "manual").await;
    assert_eq!(
        finished(&store, &second, WITHIN).await.status,
        RunStatus::Failed
    );
    control
        .skip_step(&Scope::Everything, &second, "call")
        .await
        .expect("skip");
    let run = finished(&store, &second, WITHIN).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(status_of(&run, "call"), StepStatus::Skipped);
    assert_eq!(status_of(&run, "after"), StepStatus::Succeeded);
}

case!(another_stores_token_cannot_see_or_touch_a_run);
async fn another_stores_token_cannot_see_or_touch_a_run(store: Arc<dyn Store>) {
    let workflow = WorkflowBuilder::new("single")
        .step(step("only"))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(workflow, [("only", done())])
        .expect("registered");
    let registry = Arc::new(registry);
    let run_id = start(&store, &registry, "single").await;
    let other = Scope::Store("elsewhere".parse().expect("store id"));
    assert!(matches!(
        store.get_run(&other, &run_id).await,
        Err(orderflow_store::Error::NotFound)
    ));
    let control = Control::new(store.clone(), registry);
    assert!(matches!(
        control.cancel_run(&other, &run_id).await,
        Err(orderflow_store::Error::NotFound)
    ));
    let own = Scope::Store(StoreId::default_store());
    assert_eq!(
        store.get_run(&own, &run_id).await.expect("visible").run_id,
        run_id
    );
}

case!(one_node_leads_the_scheduler_and_a_tick_starts_one_run);
async fn one_node_leads_the_scheduler_and_a_tick_starts_one_run(store: Arc<dyn Store>) {
    let role = orderflow_workflow::schedule::LEADER_ROLE;
    let leader = store.try_lead(role).await.expect("ask to lead");
    let leader = leader.expect("the first node leads");
    assert!(leader.is_held());
    assert!(
        store.try_lead(role).await.expect("ask to lead").is_none(),
        "a second node does not lead while the first does"
    );
    drop(leader);
    let mut next = None;
    for _ in 0..50 {
        next = store.try_lead(role).await.expect("ask to lead");
        if next.is_some() {
            break;
        }
        // PostgreSQL releases the lock when the leader's connection has closed.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        next.is_some(),
        "leadership passes on once the leader is gone"
    );

    // Even two schedulers that both fire a tick start one run: the tick is the run's key.
    let workflow = WorkflowBuilder::new("nightly")
        .step(step("only"))
        .build()
        .expect("valid");
    let mut registry = Registry::new();
    registry
        .register(workflow, [("only", done())])
        .expect("registered");
    let tick = time::macros::datetime!(2026-11-23 02:30 UTC);
    let mut started = Vec::new();
    for _ in 0..2 {
        let mut run = registry
            .new_run("nightly", &serde_json::json!({}), tick)
            .expect("registered");
        run.dedupe_key = Some(orderflow_workflow::schedule::tick_key("nightly", tick));
        started.push(
            store
                .start_run(StartRun {
                    run,
                    store_id: StoreId::default_store(),
                    order_id: None,
                    now: OffsetDateTime::now_utc(),
                })
                .await
                .expect("start"),
        );
    }
    assert!(started[0].created);
    assert!(!started[1].created);
    assert_eq!(started[0].run_id, started[1].run_id);
}
