//! The standard order pipeline (PRODUCT.md §6) as a workflow of the engine:
//!
//! ```text
//! validate → apply_rules → reserve_stock (sensor) → authorize_payment ─┬─ packing_slip ─────────┬─ create_shipment → shipped_email
//!                                                                       ├─ confirmation_email ───┘
//!                                                                       └─ forward_to_courier (stores with a destination)
//! compensate (one failed): release stock, void the payment, tell the customer
//! ```
//!
//! Every order gets a run, started in the transaction that creates the order. Each step acts
//! on the outside world through an adapter with the step's idempotency key, and moves the
//! order's status along through the store, whose transitions the domain checks.
//!
//! Beside it, [`pulls`]: the storefront pulls as a cron-scheduled workflow.

pub mod pulls;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderflow_adapters::{Alerter, Carrier, Mailer, PaymentGateway};
use orderflow_domain::Address;
use orderflow_intake::pull::Puller;
use orderflow_store::Store;
use orderflow_workflow::{
    AlertSink, Cron, OnTimeout, Registry, RegistryError, RetryPolicy, SensorPolicy, StepHandler,
    TriggerRule, Workflow, WorkflowBuilder, step,
};

pub use steps::{PAID_AT_PLATFORM, PAYMENT_METHOD_COD};

/// The name of the order pipeline's workflow.
pub const ORDER_WORKFLOW: &str = "order";

/// The main steps, in order; `compensate` follows any of them failing.
pub const MAIN_STEPS: [&str; 9] = [
    "validate",
    "apply_rules",
    "reserve_stock",
    "authorize_payment",
    "packing_slip",
    "confirmation_email",
    "forward_to_courier",
    "create_shipment",
    "shipped_email",
];

/// The outside world as the pipeline reaches it.
#[derive(Debug, Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub payments: Arc<dyn PaymentGateway>,
    pub carrier: Arc<dyn Carrier>,
    pub mailer: Arc<dyn Mailer>,
    /// The `From` of customer e-mails.
    pub sender: String,
    /// Where parcels leave from.
    pub warehouse: Address,
}

/// How long a backordered order waits for stock, and how often it looks.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub backorder_poke: Duration,
    pub backorder_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            backorder_poke: Duration::from_secs(2),
            backorder_timeout: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Outside calls: a handful of quick retries, then backing off up to a minute.
const OUTSIDE: RetryPolicy =
    RetryPolicy::new(6, Duration::from_millis(200), Duration::from_secs(60));
/// Our own database and documents: retried only for transient database trouble.
const INSIDE: RetryPolicy = RetryPolicy::new(4, Duration::from_millis(100), Duration::from_secs(5));

pub fn order_workflow(timing: Timing) -> Workflow {
    let built = WorkflowBuilder::new(ORDER_WORKFLOW)
        .step(step("validate").retry(INSIDE))
        .step(step("apply_rules").after(["validate"]).retry(INSIDE))
        .step(
            step("reserve_stock")
                .after(["apply_rules"])
                .retry(INSIDE)
                .sensor(SensorPolicy {
                    poke_every: timing.backorder_poke,
                    timeout: timing.backorder_timeout,
                    on_timeout: OnTimeout::Fail,
                }),
        )
        .step(
            step("authorize_payment")
                .after(["reserve_stock"])
                .retry(OUTSIDE)
                .timeout(Duration::from_secs(30))
                .concurrency(32),
        )
        .step(
            step("packing_slip")
                .after(["authorize_payment"])
                .retry(INSIDE),
        )
        .step(
            step("confirmation_email")
                .after(["authorize_payment"])
                .retry(OUTSIDE)
                .concurrency(16),
        )
        // The courier gets the clean order (validated, through the store's rules) once its stock
        // is reserved and its payment authorised, so it never sees an order we would still
        // refuse or cancel for a declined card; it waits for nothing of ours after that, so it
        // runs beside the slip and the message. A no-op for stores without a destination.
        .step(
            step("forward_to_courier")
                .after(["authorize_payment"])
                .retry(INSIDE),
        )
        .step(
            step("create_shipment")
                .after(["packing_slip", "confirmation_email"])
                .retry(OUTSIDE)
                .timeout(Duration::from_secs(30))
                .concurrency(32),
        )
        .step(
            step("shipped_email")
                .after(["create_shipment"])
                .retry(OUTSIDE)
                .concurrency(16),
        )
        .step(
            step("compensate")
                .after(MAIN_STEPS)
                .trigger(TriggerRule::OneFailed)
                .retry(OUTSIDE),
        )
        .build();
    match built {
        Ok(workflow) => workflow,
        // The definition is a constant of this crate; the unit test below builds it.
        Err(error) => unreachable!("the order workflow is well formed: {error}"),
    }
}

/// The storefront pulls as a node runs them: the puller the step uses and the cron that
/// starts them (none: no scheduled pulls).
#[derive(Debug, Clone)]
pub struct Pulls {
    pub puller: Puller,
    pub schedule: Option<Cron>,
}

/// The workflows without their handlers, for nodes that start and plan runs but never run
/// steps (`--role api`, `--role scheduler`): they need no payment provider, carrier or mail.
pub fn definitions(timing: Timing, pulls: Option<Cron>) -> Result<Registry, RegistryError> {
    let mut registry = Registry::new();
    registry.declare(order_workflow(timing))?;
    registry.declare(pulls::pulls_workflow(pulls))?;
    Ok(registry)
}

/// A registry holding the order pipeline and the storefront pulls with their handlers.
pub fn registry(
    services: Services,
    timing: Timing,
    pulls: Pulls,
) -> Result<Registry, RegistryError> {
    let services = Arc::new(services);
    let handlers: [(&'static str, Arc<dyn StepHandler>); 10] = [
        ("validate", Arc::new(steps::Validate(services.clone()))),
        ("apply_rules", Arc::new(steps::ApplyRules(services.clone()))),
        (
            "reserve_stock",
            Arc::new(steps::ReserveStock(services.clone())),
        ),
        (
            "authorize_payment",
            Arc::new(steps::AuthorizePayment(services.clone())),
        ),
        (
            "packing_slip",
            Arc::new(steps::PackingSlip(services.clone())),
        ),
        (
            "confirmation_email",
            Arc::new(steps::Notify::confirmed(services.clone())),
        ),
        (
            "forward_to_courier",
            Arc::new(steps::ForwardToCourier(services.clone())),
        ),
        (
            "create_shipment",
            Arc::new(steps::CreateShipment(services.clone())),
        ),
        (
            "shipped_email",
            Arc::new(steps::Notify::shipped(services.clone())),
        ),
        ("compensate", Arc::new(steps::Compensate(services))),
    ];
    let mut registry = Registry::new();
    registry.register(order_workflow(timing), handlers)?;
    let pull: Arc<dyn StepHandler> = Arc::new(pulls::PullStores(pulls.puller));
    registry.register(
        pulls::pulls_workflow(pulls.schedule),
        [(pulls::PULL_STEP, pull)],
    )?;
    Ok(registry)
}

/// The run input of an order: how the customer pays and, for a storefront order of a store
/// with a destination, the clean order intake made of it, which `forward_to_courier` sends
/// as is (the platform's own document is not kept on the order).
pub fn run_input(
    payment_method: Option<&str>,
    forward: Option<&serde_json::Value>,
) -> serde_json::Value {
    let mut input = serde_json::json!({ "payment_method": payment_method });
    if let Some(forward) = forward {
        input["forward"] = forward.clone();
    }
    input
}

/// Sends the engine's alerts through the operations alerters (Slack, e-mail).
#[derive(Debug)]
pub struct OperationsAlerts(pub Arc<dyn Alerter>);

#[async_trait]
impl AlertSink for OperationsAlerts {
    async fn send(&self, alert: &orderflow_store::Alert) -> Result<(), String> {
        let message = orderflow_adapters::Alert {
            title: alert.title.clone(),
            text: alert.body.clone(),
            run_id: Some(alert.run_id.clone()),
            order_id: alert.order_id.as_ref().map(|id| id.to_string()),
        };
        self.0
            .alert(&message)
            .await
            .map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_is_a_valid_dag_whose_compensation_watches_every_main_step() {
        let workflow = order_workflow(Timing::default());
        let compensate = workflow.step("compensate").expect("compensate step");
        assert_eq!(compensate.trigger, TriggerRule::OneFailed);
        assert_eq!(compensate.upstream, MAIN_STEPS.map(str::to_owned));
        let seeds = workflow.seeds();
        let ready: Vec<_> = seeds
            .iter()
            .filter(|s| s.ready)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(ready, ["validate"]);
    }

    #[test]
    fn the_courier_is_forwarded_the_order_once_its_payment_is_authorised() {
        let workflow = order_workflow(Timing::default());
        let forward = workflow
            .step("forward_to_courier")
            .expect("forward_to_courier step");
        assert_eq!(forward.upstream, ["authorize_payment"]);
        assert_eq!(forward.trigger, TriggerRule::AllSucceeded);
        let shipment = workflow.step("create_shipment").expect("create_shipment");
        assert!(
            !shipment.upstream.iter().any(|s| s == "forward_to_courier"),
            "shipping does not wait for the courier system"
        );
    }

    #[test]
    fn a_storefront_orders_clean_document_travels_in_the_run_input() {
        let clean = serde_json::json!({ "order_id": "ord_1", "external_id": "450789469" });
        let input = run_input(Some(PAID_AT_PLATFORM), Some(&clean));
        assert_eq!(input["payment_method"], PAID_AT_PLATFORM);
        assert_eq!(input["forward"], clean);
        assert!(run_input(None, None).get("forward").is_none());
    }
}
