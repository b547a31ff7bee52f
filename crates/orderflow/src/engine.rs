//! Wiring the workflow engine into a node: the order pipeline's adapters (real providers, or
//! in-process sandboxes when `--sandbox` says so), the scheduled storefront pulls, and the
//! parts a node's role runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use orderflow_adapters::{
    Alerter, Alerters, Carrier, EasyPostCarrier, EmailAlerter, Mailer, PaymentGateway,
    SlackWebhook, SmtpMailer, StripePayments,
};
use orderflow_domain::Address;
use orderflow_intake::pull::{PullConfig, Puller};
use orderflow_pipeline::{OperationsAlerts, Pulls, Services, Timing};
use orderflow_sim::{EasyPostSandbox, SlackSink, SmtpSink, StripeSandbox};
use orderflow_store::Store;
use orderflow_workflow::{
    AlertDispatcher, Control, Cron, Scheduler, Worker, WorkerConfig, WorkerHandle,
};

/// What a node does. Several nodes on one PostgreSQL database divide the work by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeRole {
    /// Answer the API (and start runs for the orders it takes).
    Api,
    /// Run workflow steps, intake and alerts.
    Worker,
    /// Start scheduled runs.
    Scheduler,
    /// Everything.
    All,
}

#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    #[arg(long, env = "ORDERFLOW_ROLE", value_enum, default_value = "all")]
    pub role: NodeRole,
    /// Take orders without running them through the order pipeline (intake and forwarding
    /// still run): for a courier that only collects its client stores' orders.
    #[arg(long, env = "ORDERFLOW_NO_PIPELINE")]
    pub no_pipeline: bool,
    /// How long a worker's claim on a step lasts without a heartbeat, in seconds: how soon a
    /// dead worker's steps are taken over.
    #[arg(long, default_value_t = 30)]
    pub lease_seconds: u64,
    /// A PaymentIntents API (Stripe's `https://api.stripe.com` or compatible). Required on a
    /// node that runs workflow steps, unless `--sandbox`.
    #[arg(long, env = "ORDERFLOW_PAYMENTS_URL")]
    pub payments_url: Option<String>,
    #[arg(
        long,
        env = "ORDERFLOW_PAYMENTS_KEY",
        default_value = "sk_test_orderflow"
    )]
    pub payments_key: String,
    /// An EasyPost-compatible API. Required on a node that runs workflow steps, unless
    /// `--sandbox`.
    #[arg(long, env = "ORDERFLOW_CARRIER_URL")]
    pub carrier_url: Option<String>,
    #[arg(long, env = "ORDERFLOW_CARRIER_KEY", default_value = "EZTK_orderflow")]
    pub carrier_key: String,
    /// `smtp://host:port` (or `smtps://user:pass@host:port`). Required on a node that runs
    /// workflow steps, unless `--sandbox`.
    #[arg(long, env = "ORDERFLOW_SMTP_URL")]
    pub smtp_url: Option<String>,
    #[arg(
        long,
        env = "ORDERFLOW_MAIL_FROM",
        default_value = "orders@orderflow.local"
    )]
    pub mail_from: String,
    /// A Slack-compatible incoming webhook for operations alerts.
    #[arg(long, env = "ORDERFLOW_SLACK_WEBHOOK")]
    pub slack_webhook: Option<String>,
    /// Where alerts are e-mailed.
    #[arg(long, env = "ORDERFLOW_ALERT_EMAIL")]
    pub alert_email: Option<String>,
    /// Names this node's worker in leases (default: host and process id).
    #[arg(long, env = "ORDERFLOW_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Stand in for the payments provider, the carrier and the SMTP server left unset with
    /// in-process sandboxes: every payment approved, fake labels bought, mail kept in
    /// memory. For trying orderflow out, never for real orders.
    #[arg(long, env = "ORDERFLOW_SANDBOX")]
    pub sandbox: bool,
    /// When the storefront pulls run: a five-field cron expression in UTC, or `off`.
    #[arg(
        long,
        env = "ORDERFLOW_PULL_CRON",
        default_value = orderflow_pipeline::pulls::DEFAULT_PULL_CRON,
        value_parser = parse_pull_schedule,
    )]
    pub pull_cron: PullSchedule,
    /// How often a backordered order looks for stock, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub backorder_poke_ms: u64,
    /// Send alerts to an in-process Slack sandbox when no channel is configured (demo),
    /// rather than to the log.
    #[arg(skip)]
    pub sandbox_alerts: bool,
    /// Watches step handlers start (the pipeline bench measures step-to-step gaps with it).
    #[arg(skip)]
    pub observer: Option<Arc<dyn orderflow_workflow::StepObserver>>,
}

impl EngineArgs {
    /// Every role, with in-process sandboxes for every provider: for `demo` and `bench`.
    pub fn sandboxed() -> Self {
        let pulls = Cron::parse(orderflow_pipeline::pulls::DEFAULT_PULL_CRON)
            .expect("the default pull schedule is a valid cron expression");
        Self {
            role: NodeRole::All,
            no_pipeline: false,
            lease_seconds: 30,
            payments_url: None,
            payments_key: "sk_test_orderflow".into(),
            carrier_url: None,
            carrier_key: "EZTK_orderflow".into(),
            smtp_url: None,
            mail_from: "orders@orderflow.local".into(),
            slack_webhook: None,
            alert_email: None,
            worker_id: None,
            sandbox: true,
            pull_cron: PullSchedule(Some(pulls)),
            backorder_poke_ms: 2000,
            sandbox_alerts: true,
            observer: None,
        }
    }

    pub fn runs_workers(&self) -> bool {
        matches!(self.role, NodeRole::Worker | NodeRole::All)
    }

    /// Whether this node runs workflow steps, and so calls the providers.
    pub fn runs_steps(&self) -> bool {
        !self.no_pipeline && self.runs_workers()
    }

    /// The providers a node that runs steps lacks, each as what it is, its flag and its
    /// environment variable; none when it runs no steps or `--sandbox` lets sandboxes stand in.
    pub fn missing_providers(&self) -> Vec<[&'static str; 3]> {
        if !self.runs_steps() || self.sandbox {
            return Vec::new();
        }
        [
            (
                &self.payments_url,
                [
                    "payments provider",
                    "--payments-url",
                    "ORDERFLOW_PAYMENTS_URL",
                ],
            ),
            (
                &self.carrier_url,
                ["carrier", "--carrier-url", "ORDERFLOW_CARRIER_URL"],
            ),
            (
                &self.smtp_url,
                ["SMTP server", "--smtp-url", "ORDERFLOW_SMTP_URL"],
            ),
        ]
        .into_iter()
        .filter(|(url, _)| configured(url).is_none())
        .map(|(_, names)| names)
        .collect()
    }

    /// Refuses a node that would run steps against providers nobody configured: sandboxes
    /// standing in silently would approve every payment and "ship" with fake labels.
    pub fn check_providers(&self) -> anyhow::Result<()> {
        let missing = self.missing_providers();
        if missing.is_empty() {
            return Ok(());
        }
        let what: Vec<&str> = missing.iter().map(|[what, _, _]| *what).collect();
        let how: Vec<String> = missing
            .iter()
            .map(|[_, flag, env]| format!("{flag} (or {env})"))
            .collect();
        anyhow::bail!(
            "this node runs workflow steps (--role {}) but has no {} configured: set {}, or pass \
             --sandbox (or ORDERFLOW_SANDBOX=true) to use in-process sandboxes that approve \
             every payment and buy fake labels",
            self.role
                .to_possible_value()
                .map_or_else(|| format!("{:?}", self.role), |v| v.get_name().to_owned()),
            either(&what),
            how.join(", "),
        )
    }
}

/// `a`, `a or b`, `a, b or c`.
fn either(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A provider URL that was given; an empty environment variable counts as unset.
fn configured(url: &Option<String>) -> Option<&str> {
    url.as_deref().filter(|url| !url.trim().is_empty())
}

/// The storefront pulls' schedule: `None` turns them off.
#[derive(Debug, Clone)]
pub struct PullSchedule(pub Option<Cron>);

fn parse_pull_schedule(text: &str) -> Result<PullSchedule, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(PullSchedule(None));
    }
    Cron::parse(text)
        .map(|cron| PullSchedule(Some(cron)))
        .map_err(|error| error.to_string())
}

/// Sandboxes standing in for providers that were not configured; kept alive with the node.
#[derive(Debug, Default)]
pub struct Sandboxes {
    pub payments: Option<StripeSandbox>,
    pub carrier: Option<EasyPostSandbox>,
    pub mail: Option<SmtpSink>,
    pub slack: Option<SlackSink>,
}

/// Where alerts go when no channel is configured: the log, at error level.
#[derive(Debug)]
struct LoggedAlerts;

#[async_trait::async_trait]
impl Alerter for LoggedAlerts {
    async fn alert(
        &self,
        alert: &orderflow_adapters::Alert,
    ) -> Result<(), orderflow_adapters::AdapterError> {
        tracing::error!(title = %alert.title, run = ?alert.run_id, order = ?alert.order_id, "{}", alert.text);
        Ok(())
    }
}

/// The engine's parts running on this node; dropping it stops them.
#[derive(Debug)]
pub struct Engine {
    pub control: Control,
    pub sandboxes: Sandboxes,
    _worker: Option<WorkerHandle>,
    _alerts: Option<AlertDispatcher>,
    _scheduler: Option<Scheduler>,
}

fn warehouse() -> Address {
    Address {
        name: Some("orderflow warehouse".into()),
        line1: Some("417 Montgomery Street".into()),
        line2: None,
        city: Some("San Francisco".into()),
        region: Some("CA".into()),
        postal_code: Some("94104".into()),
        country: Some("US".into()),
    }
}

impl Engine {
    /// Starts the engine's parts for `args.role`.
    pub async fn start(store: Arc<dyn Store>, args: &EngineArgs) -> anyhow::Result<Self> {
        let timing = Timing {
            backorder_poke: Duration::from_millis(args.backorder_poke_ms.max(10)),
            ..Timing::default()
        };
        let pulls = args.pull_cron.0.clone();
        let mut sandboxes = Sandboxes::default();
        let (registry, alerts) = if args.runs_workers() {
            args.check_providers()?;
            let (services, alerts) = services(store.clone(), args, &mut sandboxes).await?;
            let puller = Puller::new(store.clone(), PullConfig::default());
            let pulls = Pulls {
                puller,
                schedule: pulls,
            };
            let registry = orderflow_pipeline::registry(services, timing, pulls)?;
            (registry, Some(alerts))
        } else {
            // API and scheduler nodes start and plan runs but never run a step: they need
            // the definitions, not the providers.
            (orderflow_pipeline::definitions(timing, pulls)?, None)
        };
        let registry = Arc::new(registry);
        let control = Control::new(store.clone(), registry.clone());
        let worker_id = args.worker_id.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into()),
                std::process::id()
            )
        });
        let (worker, alerts) = match alerts {
            Some(alerters) => {
                let lease = Duration::from_secs(args.lease_seconds.max(1));
                let config = WorkerConfig {
                    lease,
                    heartbeat_every: lease / 3,
                    observer: args.observer.clone(),
                    ..WorkerConfig::named(worker_id)
                };
                let worker = Worker::start(store.clone(), registry.clone(), config);
                let alerts = AlertDispatcher::start(
                    store.clone(),
                    Arc::new(OperationsAlerts(Arc::new(Alerters(alerters)))),
                    Duration::from_secs(1),
                );
                (Some(worker), Some(alerts))
            }
            None => (None, None),
        };
        let scheduler = matches!(args.role, NodeRole::Scheduler | NodeRole::All)
            .then(|| Scheduler::start(store, registry));
        Ok(Self {
            control,
            sandboxes,
            _worker: worker,
            _alerts: alerts,
            _scheduler: scheduler,
        })
    }
}

/// The pipeline's providers and the operations alerters, for a node that runs steps: those
/// configured, and sandboxes for the others (which [`EngineArgs::check_providers`] allows
/// only with `--sandbox`).
async fn services(
    store: Arc<dyn Store>,
    args: &EngineArgs,
    sandboxes: &mut Sandboxes,
) -> anyhow::Result<(Services, Vec<Arc<dyn Alerter>>)> {
    let payments: Arc<dyn PaymentGateway> = match configured(&args.payments_url) {
        Some(url) => Arc::new(StripePayments::new(url, &args.payments_key)?),
        None => {
            let sandbox = StripeSandbox::start(&args.payments_key).await?;
            tracing::warn!(url = %sandbox.url(), "--sandbox: payments go to an in-process sandbox that approves them all");
            let client = StripePayments::new(sandbox.url(), &args.payments_key)?;
            sandboxes.payments = Some(sandbox);
            Arc::new(client)
        }
    };
    let carrier: Arc<dyn Carrier> = match configured(&args.carrier_url) {
        Some(url) => Arc::new(EasyPostCarrier::new(url, &args.carrier_key)?),
        None => {
            let sandbox = EasyPostSandbox::start(&args.carrier_key).await?;
            tracing::warn!(url = %sandbox.url(), "--sandbox: labels are bought from an in-process sandbox carrier");
            let client = EasyPostCarrier::new(sandbox.url(), &args.carrier_key)?;
            sandboxes.carrier = Some(sandbox);
            Arc::new(client)
        }
    };
    let mailer: Arc<dyn Mailer> = match configured(&args.smtp_url) {
        Some(url) => Arc::new(SmtpMailer::new(url)?),
        None => {
            let sink = SmtpSink::start().await.context("starting the SMTP sink")?;
            tracing::warn!(url = %sink.url(), "--sandbox: mail goes to an in-process sink");
            let client = SmtpMailer::new(&sink.url())?;
            sandboxes.mail = Some(sink);
            Arc::new(client)
        }
    };
    let mut alerters: Vec<Arc<dyn Alerter>> = Vec::new();
    if let Some(url) = &args.slack_webhook {
        alerters.push(Arc::new(SlackWebhook::new(url)?));
    }
    if let Some(to) = &args.alert_email {
        alerters.push(Arc::new(EmailAlerter::new(
            mailer.clone(),
            args.mail_from.clone(),
            to.clone(),
        )));
    }
    if alerters.is_empty() && args.sandbox_alerts {
        let sink = SlackSink::start()
            .await
            .context("starting the Slack sandbox")?;
        alerters.push(Arc::new(SlackWebhook::new(sink.webhook_url())?));
        sandboxes.slack = Some(sink);
    } else if alerters.is_empty() {
        alerters.push(Arc::new(LoggedAlerts));
    }
    let services = Services {
        store,
        payments,
        carrier,
        mailer,
        sender: args.mail_from.clone(),
        warehouse: warehouse(),
    };
    Ok((services, alerters))
}
