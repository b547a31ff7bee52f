//! The intake worker: claims inbox deliveries, parses them, applies the store's rules and
//! places, updates or cancels the order they carry, then records each delivery's fate.
//!
//! Exactly once rests on the database, not on the worker: an order is placed under its
//! external id, unique per store (a second placement finds the first and replays it), a newer
//! platform version replaces the held one only if it is newer, and forwards are unique per
//! order. A worker that dies mid-delivery leaves its lease to run out; the next one redoes
//! the delivery and finds what was already done.
//!
//! On a node that runs the order pipeline ([`Pipeline`]) an accepted order's forward is the
//! pipeline's `forward_to_courier` step, which the worker hands the clean order in the run's
//! input; a platform cancellation cancels the order's run with it. Without the pipeline the
//! worker queues the forward itself, with the delivery's fate.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orderflow_connectors::{IncomingOrder, Platform};
use orderflow_domain::id::time_ordered_id;
use orderflow_domain::{OrderId, OrderLine, OrderLines, ProductId, Quantity, Refusal, StoreId};
use orderflow_store::{
    CancelOrder, Delivery, DeliveryStatus, Error as StoreError, NewForward, OrderSource,
    PlaceOrder, PricedLine, Scope, Settlement, SourceUpdate, Store, StoreRecord,
};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::reading::{Reader, Reading};
use crate::rules::{self, Decision, Package};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Deliveries claimed at once.
    pub batch: u32,
    /// How long a claimed delivery is the worker's before another may take it over.
    pub lease: Duration,
    /// How often to look for work when nothing wakes the worker.
    pub poll: Duration,
    /// Claims after which a delivery that keeps failing for passing reasons (database, a
    /// platform API) is marked failed instead of retried.
    pub max_attempts: u32,
    /// The order pipeline, on a node that runs workflows.
    pub pipeline: Option<Pipeline>,
}

/// Makes a new order's workflow run, given the instant the order is placed and, when its
/// store has a destination, the clean order for the run to forward.
pub type MakeOrderRun = dyn Fn(OffsetDateTime, Option<&serde_json::Value>) -> Option<orderflow_store::NewRun>
    + Send
    + Sync;

/// How the worker hands storefront orders to the order pipeline.
#[derive(Clone)]
pub struct Pipeline {
    /// The run each new storefront order starts with, created in the order's transaction.
    /// When it returns `None` (no such workflow here) the worker forwards the order itself.
    pub order_run: Arc<MakeOrderRun>,
    /// Cancels an order's runs in the transaction that cancels the order, as
    /// `DELETE /orders/{id}` does, so that a platform cancellation ends the run cancelled
    /// with its compensation instead of failing the next step on a cancelled order.
    pub runs: Arc<dyn orderflow_store::RunPlanner>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipeline")
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            max_attempts: 5,
            pipeline: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    reader: Reader,
    wake: Arc<Notify>,
    config: WorkerConfig,
}

/// What a delivery became, before it is written down.
struct Fate {
    status: DeliveryStatus,
    reason: Option<String>,
    order_id: Option<OrderId>,
    forward: Option<NewForward>,
}

impl Fate {
    fn of(status: DeliveryStatus, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: Some(reason.into()),
            order_id: None,
            forward: None,
        }
    }
}

/// Where a storefront order came from and what intake decided, kept on the order. Small on
/// purpose: the payload itself stays in the inbox (`delivery_id`), and copying it onto every
/// order cost a third of the intake rate in disk writes (docs/BENCHMARKS.md).
#[derive(Debug, Serialize)]
pub struct Provenance<'a> {
    pub platform: orderflow_connectors::Platform,
    pub external_id: &'a str,
    pub number: Option<&'a str>,
    pub platform_status: &'a str,
    pub delivery_id: &'a str,
    pub shipping_method: Option<&'a str>,
    #[serde(skip_serializing_if = "<[Package]>::is_empty")]
    pub packages: &'a [Package],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub decisions: &'a [String],
}

impl<'a> Provenance<'a> {
    fn of(incoming: &'a IncomingOrder, delivery: &'a Delivery) -> Self {
        Self {
            platform: incoming.platform,
            external_id: &incoming.external_id,
            number: incoming.number.as_deref(),
            platform_status: &incoming.platform_status,
            delivery_id: &delivery.delivery_id,
            shipping_method: incoming.shipping_method.as_deref(),
            packages: &[],
            decisions: &[],
        }
    }
}

/// The clean order forwarded to the courier system.
#[derive(Debug, Serialize)]
pub struct ForwardedOrder<'a> {
    pub order_id: &'a OrderId,
    pub store_id: &'a str,
    #[serde(flatten)]
    pub order: &'a IncomingOrder,
    pub packages: &'a [Package],
    pub decisions: &'a [String],
}

impl Worker {
    /// `wake` fires when deliveries are stored: on a node, the store's
    /// `work_signal(Work::Deliveries)`, which hears every node's; `config.poll` is the fallback.
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>, config: WorkerConfig) -> Self {
        Self {
            store,
            reader: Reader::new(Duration::from_secs(10)),
            wake,
            config,
        }
    }

    /// Processes deliveries until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let processed = match self.drain_once().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(%error, "intake worker could not claim deliveries");
                    0
                }
            };
            if processed == self.config.batch as usize {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// Claims one batch and settles what it can; returns how many deliveries it claimed.
    ///
    /// The batch's deliveries are processed at once, so that their writes reach the database
    /// together (SQLite's writer commits them in one transaction; PostgreSQL spreads them over
    /// the pool). Deliveries of one order racing each other are safe: see the module docs.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        let now = OffsetDateTime::now_utc();
        let claimed = self
            .store
            .claim_deliveries(self.config.batch, now, now + self.config.lease)
            .await?;
        let count = claimed.len();
        let mut stores: BTreeMap<StoreId, Arc<StoreRecord>> = BTreeMap::new();
        let mut working = tokio::task::JoinSet::new();
        for delivery in claimed {
            let store = match stores.get(&delivery.store_id) {
                Some(store) => store.clone(),
                None => {
                    let store = Arc::new(self.store.get_store(&delivery.store_id).await?);
                    stores.insert(delivery.store_id.clone(), store.clone());
                    store
                }
            };
            let worker = self.clone();
            working.spawn(async move { worker.settle_one(&store, delivery).await });
        }
        while working.join_next().await.is_some() {}
        Ok(count)
    }

    async fn settle_one(&self, store: &StoreRecord, delivery: Delivery) {
        let delivery_id = delivery.delivery_id.clone();
        let attempts = delivery.attempts;
        let fate = match self.process(store, &delivery).await {
            Ok(fate) => fate,
            Err(error) if attempts >= self.config.max_attempts => Fate::of(
                DeliveryStatus::Failed,
                format!("gave up after {attempts} tries: {error}"),
            ),
            Err(error) => {
                // Left leased: the delivery is claimed again once the lease runs out.
                tracing::warn!(%error, %delivery_id, attempts, "delivery will be retried");
                return;
            }
        };
        let settlement = Settlement {
            delivery_id,
            status: fate.status,
            reason: fate.reason,
            order_id: fate.order_id,
            forward: fate.forward,
            now: OffsetDateTime::now_utc(),
        };
        if let Err(error) = self.store.settle_delivery(settlement).await {
            tracing::warn!(%error, "could not record a delivery's fate; it will be redone");
        }
    }

    /// Decides a delivery's fate; `Err` means a passing failure worth another try.
    async fn process(
        &self,
        store: &StoreRecord,
        delivery: &Delivery,
    ) -> Result<Fate, ProcessError> {
        // An OMS that is down or throttling is a passing failure: the delivery is retried.
        let reading = self
            .reader
            .read(store, delivery)
            .await
            .map_err(ProcessError::other)?;
        match reading {
            Reading::Order(incoming) => self.settle_order(store, delivery, *incoming, false).await,
            Reading::Deleted {
                platform,
                external_id,
            } => self.cancel_deleted(store, platform, &external_id).await,
            Reading::Unreadable(reason) => Ok(Fate::of(DeliveryStatus::Failed, reason)),
        }
    }

    async fn settle_order(
        &self,
        store: &StoreRecord,
        delivery: &Delivery,
        incoming: IncomingOrder,
        after_replay: bool,
    ) -> Result<Fate, ProcessError> {
        let now = OffsetDateTime::now_utc();
        let document = serde_json::to_string(&Provenance::of(&incoming, delivery))
            .map_err(ProcessError::other)?;
        match self
            .store
            .update_order_source(
                &store.store_id,
                &incoming.external_id,
                incoming.updated_at,
                document,
                now,
            )
            .await
        {
            Ok(SourceUpdate::Stale { order_id }) => {
                return Ok(Fate {
                    order_id: Some(order_id),
                    ..Fate::of(
                        DeliveryStatus::Stale,
                        format!(
                            "{} is not newer than the version held",
                            rfc3339(incoming.updated_at)
                        ),
                    )
                });
            }
            Ok(SourceUpdate::Applied { order_id }) => {
                return self.apply_update(store, &incoming, order_id).await;
            }
            Err(StoreError::NotFound) if !after_replay => {}
            Err(StoreError::NotFound) => {
                return Err(ProcessError::other(
                    "the order vanished after it was placed",
                ));
            }
            Err(error) => return Err(error.into()),
        }

        if incoming.state.cancels() {
            return Ok(Fate::of(
                DeliveryStatus::Rejected,
                format!(
                    "the order is {} on {} and was never taken in",
                    incoming.platform_status, incoming.platform
                ),
            ));
        }
        let rules = match rules::parse_rules(&store.settings.rules) {
            Ok(rules) => rules,
            Err(error) => {
                return Ok(Fate::of(
                    DeliveryStatus::Failed,
                    format!("store rules: {error}"),
                ));
            }
        };
        let (lines, packages, notes) = match rules::apply(&rules, &incoming) {
            Decision::Reject { rule, reason } => {
                return Ok(Fate::of(
                    DeliveryStatus::Rejected,
                    format!("{rule}: {reason}"),
                ));
            }
            Decision::Accept {
                lines,
                packages,
                notes,
            } => (lines, packages, notes),
        };
        let order_lines = match merge_lines(&incoming, &lines) {
            Ok(lines) => lines,
            Err(reason) => return Ok(Fate::of(DeliveryStatus::Failed, reason)),
        };
        let order_id = OrderId::mint(unix_millis(now), rand::random());
        let forwarded = ForwardedOrder {
            order_id: &order_id,
            store_id: store.store_id.as_str(),
            order: &incoming,
            packages: &packages,
            decisions: &notes,
        };
        let document = serde_json::to_string(&forwarded).map_err(ProcessError::other)?;
        let provenance = serde_json::to_string(&Provenance {
            packages: &packages,
            decisions: &notes,
            ..Provenance::of(&incoming, delivery)
        })
        .map_err(ProcessError::other)?;
        let origin = format!(
            "placed from {} order {}",
            incoming.platform,
            incoming.number.as_deref().unwrap_or(&incoming.external_id)
        );
        let note = std::iter::once(origin)
            .chain(notes.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ");
        let unmanaged_lines = (!store.settings.manage_stock).then(|| {
            order_lines
                .iter()
                .map(|(line, unit_price_minor)| PricedLine {
                    product_id: line.product_id.clone(),
                    quantity: line.quantity,
                    unit_price_minor: *unit_price_minor,
                    currency: incoming.currency,
                })
                .collect()
        });
        let lines = OrderLines::new(order_lines.into_iter().map(|(line, _)| line).collect())
            .map_err(|error| ProcessError::other(error.to_string()));
        let lines = match lines {
            Ok(lines) => lines,
            Err(error) => return Ok(Fate::of(DeliveryStatus::Failed, error.to_string())),
        };
        let run = match &self.config.pipeline {
            Some(pipeline) => {
                let clean = match &store.settings.destination {
                    Some(_) => Some(serde_json::to_value(&forwarded).map_err(ProcessError::other)?),
                    None => None,
                };
                (pipeline.order_run)(now, clean.as_ref())
            }
            None => None,
        };
        // The run forwards the order once the pipeline has accepted it; without a run the
        // worker queues the forward with the delivery's fate, as before there was a pipeline.
        let forwarded_by_run = run.is_some();
        let placed = self
            .store
            .place_order(PlaceOrder {
                run,
                order_id,
                store_id: store.store_id.clone(),
                lines,
                allow_partial: true,
                customer: Some(incoming.customer.clone()),
                shipping_address: incoming.shipping_address.clone(),
                // The external id, unique per store, makes the placement exactly once.
                idempotency: None,
                source: Some(OrderSource {
                    external_id: incoming.external_id.clone(),
                    updated_at: incoming.updated_at,
                    document: provenance,
                    note: note.clone(),
                    unmanaged_lines,
                }),
                now,
            })
            .await;
        let placement = match placed {
            Ok(placement) => placement,
            Err(StoreError::Refused(Refusal::UnknownProducts(products))) => {
                let names: Vec<&str> = products.iter().map(ProductId::as_str).collect();
                return Ok(Fate::of(
                    DeliveryStatus::Rejected,
                    format!("not in the store's catalogue: {}", names.join(", ")),
                ));
            }
            Err(StoreError::MixedCurrencies) => {
                return Ok(Fate::of(
                    DeliveryStatus::Rejected,
                    "the catalogue prices these lines in more than one currency",
                ));
            }
            Err(error) => return Err(error.into()),
        };
        if placement.replayed {
            // Another worker placed it between our lookup and our placement: this delivery
            // is an update of that order (or the same version again).
            return Box::pin(self.settle_order(store, delivery, incoming, true)).await;
        }
        let order_id = placement.receipt.order_id;
        let forward = store
            .settings
            .destination
            .as_ref()
            .filter(|_| !forwarded_by_run)
            .map(|destination| NewForward {
                forward_id: time_ordered_id("fwd_", unix_millis(now), rand::random()),
                store_id: store.store_id.clone(),
                order_id: order_id.clone(),
                delivery_id: Some(delivery.delivery_id.clone()),
                url: destination.url.clone(),
                payload: crate::forward::envelope("order.created", now, &document),
            });
        Ok(Fate {
            status: DeliveryStatus::Accepted,
            reason: (!notes.is_empty()).then(|| notes.join("; ")),
            order_id: Some(order_id),
            forward,
        })
    }

    /// A newer version of an order already held: a platform cancellation cancels it here.
    async fn apply_update(
        &self,
        store: &StoreRecord,
        incoming: &IncomingOrder,
        order_id: OrderId,
    ) -> Result<Fate, ProcessError> {
        let mut reason = format!(
            "updated to {} on {}",
            incoming.platform_status, incoming.platform
        );
        if incoming.state.cancels() {
            let cancelled = self
                .store
                .cancel_order(
                    &Scope::Store(store.store_id.clone()),
                    CancelOrder {
                        runs: self.order_runs(),
                        order_id: order_id.clone(),
                        reason: Some(format!(
                            "{} on {}",
                            incoming.platform_status, incoming.platform
                        )),
                        now: OffsetDateTime::now_utc(),
                    },
                )
                .await;
            match cancelled {
                Ok(_) => reason = format!("cancelled: {reason}"),
                Err(StoreError::TooLateToCancel(status)) => {
                    reason = format!("{reason}; too late to cancel an order that is {status}");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Fate {
            order_id: Some(order_id),
            ..Fate::of(DeliveryStatus::Accepted, reason)
        })
    }

    /// What cancels an order's runs with the order, on a node that runs the pipeline.
    fn order_runs(&self) -> Option<Arc<dyn orderflow_store::RunPlanner>> {
        self.config.pipeline.as_ref().map(|p| p.runs.clone())
    }

    /// The platform deleted its order `external_id`: the order held for it is cancelled as a
    /// platform cancellation is (its stock released, its run cancelled).
    async fn cancel_deleted(
        &self,
        store: &StoreRecord,
        platform: Platform,
        external_id: &str,
    ) -> Result<Fate, ProcessError> {
        let filter = orderflow_store::OrderFilter {
            external_id: Some(external_id.to_owned()),
            limit: 1,
            ..Default::default()
        };
        let scope = Scope::Store(store.store_id.clone());
        let found = self.store.list_orders(&scope, filter).await?;
        let Some(order) = found.items.into_iter().next() else {
            return Ok(Fate::of(
                DeliveryStatus::Rejected,
                format!("deleted on {platform} before intake"),
            ));
        };
        let cancel = CancelOrder {
            runs: self.order_runs(),
            order_id: order.order_id.clone(),
            reason: Some(format!("deleted on {platform}")),
            now: OffsetDateTime::now_utc(),
        };
        let reason = match self.store.cancel_order(&scope, cancel).await {
            Ok(_) => format!("cancelled: deleted on {platform}"),
            Err(StoreError::TooLateToCancel(status)) => {
                format!("deleted on {platform}; too late to cancel an order that is {status}")
            }
            Err(error) => return Err(error.into()),
        };
        Ok(Fate {
            order_id: Some(order.order_id),
            ..Fate::of(DeliveryStatus::Accepted, reason)
        })
    }
}

/// One order line per product, in first-seen order, with the platform's unit price; lines of
/// the same SKU (a platform may repeat one with different options) are added together.
fn merge_lines(
    incoming: &IncomingOrder,
    lines: &[orderflow_connectors::IncomingLine],
) -> Result<Vec<(OrderLine, i64)>, String> {
    let mut merged: Vec<(ProductId, u64, i64)> = Vec::new();
    let mut positions = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let key = line
            .product_key()
            .ok_or_else(|| format!("line {index} has neither a SKU nor an item id"))?;
        let product_id: ProductId = key
            .parse()
            .map_err(|error| format!("line {index}: SKU {key:?}: {error}"))?;
        match positions.get(&product_id) {
            Some(&at) => {
                let entry: &mut (ProductId, u64, i64) = &mut merged[at];
                entry.1 += u64::from(line.quantity);
            }
            None => {
                positions.insert(product_id.clone(), merged.len());
                merged.push((product_id, u64::from(line.quantity), line.unit_price_minor));
            }
        }
    }
    if merged.is_empty() {
        return Err(format!(
            "{} order {} has no lines",
            incoming.platform, incoming.external_id
        ));
    }
    merged
        .into_iter()
        .map(|(product_id, count, price)| {
            let quantity =
                Quantity::try_from(count).map_err(|error| format!("{product_id}: {error}"))?;
            Ok((
                OrderLine {
                    product_id,
                    quantity,
                },
                price,
            ))
        })
        .collect()
}

fn unix_millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// A failure worth another try: the database or a platform API did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl ProcessError {
    fn other(error: impl ToString) -> Self {
        ProcessError::Other(error.to_string())
    }
}
