//! One handler per step of the order pipeline. Each reads the order afresh (a cancelled order
//! stops its run), acts once per idempotency key, and returns what later steps need as its
//! output.

use std::sync::Arc;

use async_trait::async_trait;
use orderflow_adapters::{AdapterError, Email, PaymentRequest, ShipmentRequest};
use orderflow_documents::{PackingSlip as SlipDocument, PartyAddress, ShippingLabel, SlipLine};
use orderflow_domain::status::Progress;
use orderflow_domain::{Address, OrderId, OrderStatus};
use orderflow_store::{
    AdvanceOrder, BackorderFill, CancelOrder, Error as StoreError, NewForward, Order, Scope,
    StoreRecord,
};
use orderflow_workflow::{Outcome, StepContext, StepError, StepHandler};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Services;

/// The run input's `payment_method` for orders paid to the courier.
pub const PAYMENT_METHOD_COD: &str = "cash_on_delivery";
/// The run input's `payment_method` for storefront orders the platform already charged.
pub const PAID_AT_PLATFORM: &str = "paid_at_platform";

/// Grams per unit when the catalogue does not say: a parcel weighs something.
const GRAMS_PER_UNIT: u32 = 500;

fn store_error(error: StoreError) -> StepError {
    match error {
        StoreError::Unavailable(_) => StepError::retry(format!("database: {error}")),
        other => StepError::fatal(other),
    }
}

fn adapter_error(error: AdapterError) -> StepError {
    match error {
        AdapterError::Transient {
            message,
            retry_after,
        } => StepError::Retry {
            message,
            after: retry_after,
        },
        AdapterError::Rejected(message) => StepError::Fatal(message),
    }
}

fn order_id(context: &StepContext) -> Result<&OrderId, StepError> {
    context
        .order_id
        .as_ref()
        .ok_or_else(|| StepError::fatal("the run carries no order"))
}

async fn load(services: &Services, context: &StepContext) -> Result<Order, StepError> {
    services
        .store
        .get_order(&Scope::Everything, order_id(context)?)
        .await
        .map_err(store_error)
}

/// Loads the order and refuses to go on with one that was cancelled meanwhile.
async fn live_order(services: &Services, context: &StepContext) -> Result<Order, StepError> {
    let order = load(services, context).await?;
    if matches!(order.status, OrderStatus::Cancelled | OrderStatus::Rejected) {
        return Err(StepError::fatal(format!("the order is {}", order.status)));
    }
    Ok(order)
}

/// The order's store, as it is now (its rules, destination and name).
async fn store_of(services: &Services, order: &Order) -> Result<StoreRecord, StepError> {
    services
        .store
        .get_store(&order.store_id)
        .await
        .map_err(store_error)
}

async fn advance(
    services: &Services,
    order: &Order,
    to: Progress,
    note: String,
) -> Result<(), StepError> {
    let advanced = services
        .store
        .advance_order(AdvanceOrder {
            order_id: order.order_id.clone(),
            to,
            note: Some(note),
            now: OffsetDateTime::now_utc(),
        })
        .await;
    match advanced {
        Ok(_) => Ok(()),
        Err(error) => Err(store_error(error)),
    }
}

fn done(output: serde_json::Value) -> Result<Outcome, StepError> {
    Ok(Outcome::Done(Some(output)))
}

#[derive(Debug)]
pub(crate) struct Validate(pub Arc<Services>);

#[async_trait]
impl StepHandler for Validate {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        if order.lines.is_empty() && order.backorder.is_empty() {
            return Err(StepError::fatal("the order has no lines"));
        }
        let Some(address) = &order.shipping_address else {
            return Err(StepError::fatal("the order has no shipping address"));
        };
        if address.line1.is_none() || address.city.is_none() || address.country.is_none() {
            return Err(StepError::fatal(
                "the shipping address needs at least line1, city and country",
            ));
        }
        done(serde_json::json!({ "lines": order.lines.len() }))
    }
}

#[derive(Debug)]
pub(crate) struct ApplyRules(pub Arc<Services>);

#[async_trait]
impl StepHandler for ApplyRules {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        // A storefront order went through its store's rules at intake, which recorded why.
        if order.source.is_some() {
            return done(serde_json::json!({ "decided": "at intake" }));
        }
        let store = store_of(&self.0, &order).await?;
        let rules = orderflow_intake::rules::parse_rules(&store.settings.rules)
            .map_err(|error| StepError::fatal(format!("the store's rules are invalid: {error}")))?;
        let region = order
            .shipping_address
            .as_ref()
            .and_then(|a| a.region.clone());
        for rule in &rules {
            if let Some(reason) = orderflow_intake::rules::refuses_region(rule, region.as_deref()) {
                return Err(StepError::fatal(format!(
                    "rejected by the store's rules: {reason}"
                )));
            }
        }
        done(serde_json::json!({ "rules": rules.len() }))
    }
}

#[derive(Debug)]
pub(crate) struct ReserveStock(pub Arc<Services>);

#[async_trait]
impl StepHandler for ReserveStock {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        if order.status != OrderStatus::Backordered {
            return done(serde_json::json!({ "backordered": false }));
        }
        let fill = self
            .0
            .store
            .fill_backorder(&order.order_id, OffsetDateTime::now_utc())
            .await
            .map_err(store_error)?;
        match fill {
            BackorderFill::Filled(_) => done(serde_json::json!({ "backordered": true })),
            BackorderFill::Waiting { .. } => Ok(Outcome::NotYet),
            BackorderFill::NotBackordered(OrderStatus::Cancelled | OrderStatus::Rejected) => Err(
                StepError::fatal("the order was cancelled while it waited for stock"),
            ),
            BackorderFill::NotBackordered(_) => done(serde_json::json!({ "backordered": true })),
        }
    }
}

#[derive(Debug)]
pub(crate) struct AuthorizePayment(pub Arc<Services>);

#[async_trait]
impl StepHandler for AuthorizePayment {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        let method = context
            .input
            .get("payment_method")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let currency = order
            .currency
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| "USD".into());
        let request = PaymentRequest {
            order_id: order.order_id.to_string(),
            amount_minor: order.total_minor,
            currency,
            customer_email: order.customer.as_ref().and_then(|c| c.email.clone()),
            payment_method: method.clone(),
        };
        let key = context.idempotency_key();
        let (gateway, authorization) = if method.as_deref() == Some(PAID_AT_PLATFORM) {
            let authorization = orderflow_adapters::Authorization {
                id: format!(
                    "platform:{}",
                    order.external_id.as_deref().unwrap_or_default()
                ),
                amount_minor: order.total_minor,
                status: "paid".into(),
            };
            (PAID_AT_PLATFORM, authorization)
        } else if method.as_deref() == Some(PAYMENT_METHOD_COD) {
            let cod = orderflow_adapters::CashOnDelivery;
            let authorization = orderflow_adapters::PaymentGateway::authorize(&cod, &request, &key)
                .await
                .map_err(adapter_error)?;
            ("cash_on_delivery", authorization)
        } else {
            let authorization = self
                .0
                .payments
                .authorize(&request, &key)
                .await
                .map_err(adapter_error)?;
            (self.0.payments.name(), authorization)
        };
        advance(
            &self.0,
            &order,
            Progress::Paid,
            format!("payment authorised by {gateway} ({})", authorization.id),
        )
        .await?;
        done(serde_json::json!({
            "gateway": gateway,
            "authorization_id": authorization.id,
            "amount_minor": authorization.amount_minor,
        }))
    }
}

/// An order placed over the API, as its courier system gets it: what intake's clean
/// storefront order carries, as far as an API order has it.
#[derive(Debug, serde::Serialize)]
struct CourierOrder<'a> {
    order_id: &'a OrderId,
    store_id: &'a str,
    customer: Option<&'a orderflow_domain::Customer>,
    shipping_address: Option<&'a Address>,
    lines: Vec<CourierLine<'a>>,
    currency: Option<&'a str>,
    total_minor: i64,
}

#[derive(Debug, serde::Serialize)]
struct CourierLine<'a> {
    sku: &'a str,
    quantity: u32,
    unit_price_minor: i64,
}

impl<'a> CourierOrder<'a> {
    fn of(order: &'a Order) -> Self {
        Self {
            order_id: &order.order_id,
            store_id: order.store_id.as_str(),
            customer: order.customer.as_ref(),
            shipping_address: order.shipping_address.as_ref(),
            lines: order
                .lines
                .iter()
                .map(|line| CourierLine {
                    sku: line.product_id.as_str(),
                    quantity: line.quantity.get(),
                    unit_price_minor: line.unit_price_minor,
                })
                .collect(),
            currency: order
                .currency
                .as_ref()
                .map(orderflow_domain::Currency::as_str),
            total_minor: order.total_minor,
        }
    }
}

/// Queues the order's forward to its store's destination (the courier system); the
/// forwarder signs, sends and retries it. Once per order whatever the retries: the store
/// keeps one forward per order, and its id is the order's.
#[derive(Debug)]
pub(crate) struct ForwardToCourier(pub Arc<Services>);

#[async_trait]
impl StepHandler for ForwardToCourier {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        let store = store_of(&self.0, &order).await?;
        let Some(destination) = store.settings.destination else {
            return done(
                serde_json::json!({ "forwarded": false, "reason": "the store has no destination" }),
            );
        };
        // A storefront order goes as intake cleaned it (the platform's document is not kept
        // on the order); an API order as the order itself.
        let data = match context.input.get("forward") {
            Some(clean) => clean.to_string(),
            None => serde_json::to_string(&CourierOrder::of(&order)).map_err(|error| {
                StepError::fatal(format!("the order cannot be written: {error}"))
            })?,
        };
        // The inbox delivery a storefront order came in, so that it shows `forwarded` once
        // the courier has it.
        let delivery_id = order
            .source
            .as_deref()
            .and_then(|source| serde_json::from_str::<serde_json::Value>(source).ok())
            .and_then(|source| source.get("delivery_id")?.as_str().map(str::to_owned));
        let suffix = order.order_id.as_str();
        let forward_id = format!("fwd_{}", suffix.strip_prefix("ord_").unwrap_or(suffix));
        let now = OffsetDateTime::now_utc();
        let queued = self
            .0
            .store
            .queue_forward(
                NewForward {
                    forward_id: forward_id.clone(),
                    store_id: order.store_id.clone(),
                    order_id: order.order_id.clone(),
                    delivery_id,
                    url: destination.url,
                    payload: orderflow_intake::forward::envelope("order.created", now, &data),
                },
                now,
            )
            .await
            .map_err(store_error)?;
        done(serde_json::json!({
            "forwarded": true,
            "forward_id": forward_id,
            // False when an earlier attempt (or intake, for an order taken in before this
            // node ran the pipeline) had queued it already.
            "queued": queued,
        }))
    }
}

fn party(address: Option<&Address>, fallback_name: &str) -> PartyAddress {
    let text = |value: Option<&String>| value.cloned().unwrap_or_default();
    PartyAddress {
        name: address
            .and_then(|a| a.name.clone())
            .unwrap_or_else(|| fallback_name.to_owned()),
        line1: text(address.and_then(|a| a.line1.as_ref())),
        line2: address.and_then(|a| a.line2.clone()),
        city: text(address.and_then(|a| a.city.as_ref())),
        region: address.and_then(|a| a.region.clone()),
        postal_code: address.and_then(|a| a.postal_code.clone()),
        country: text(address.and_then(|a| a.country.as_ref())),
    }
}

fn customer_name(order: &Order) -> String {
    order
        .customer
        .as_ref()
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| "Customer".into())
}

#[derive(Debug)]
pub(crate) struct PackingSlip(pub Arc<Services>);

#[async_trait]
impl StepHandler for PackingSlip {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        let store = store_of(&self.0, &order).await?;
        let slip = SlipDocument {
            order_id: order.order_id.to_string(),
            store_name: store.name,
            placed_at: order.created_at.format(&Rfc3339).unwrap_or_default(),
            ship_to: party(order.shipping_address.as_ref(), &customer_name(&order)),
            shipping_method: None,
            lines: order
                .lines
                .iter()
                .map(|line| SlipLine {
                    sku: line.product_id.to_string(),
                    quantity: line.quantity.get(),
                })
                .collect(),
        };
        let pdf = orderflow_documents::packing_slip_pdf(&slip);
        let size = pdf.len();
        self.0
            .store
            .put_document(
                &order.order_id,
                "packing_slip",
                "application/pdf",
                pdf,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(store_error)?;
        advance(
            &self.0,
            &order,
            Progress::Fulfilling,
            "packing slip printed".into(),
        )
        .await?;
        done(serde_json::json!({ "document": "packing_slip", "bytes": size }))
    }
}

#[derive(Debug)]
pub(crate) struct CreateShipment(pub Arc<Services>);

#[async_trait]
impl StepHandler for CreateShipment {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = live_order(&self.0, context).await?;
        let to = order
            .shipping_address
            .clone()
            .ok_or_else(|| StepError::fatal("the order has no shipping address"))?;
        let units: u32 = order.lines.iter().map(|l| l.quantity.get()).sum();
        let request = ShipmentRequest {
            order_id: order.order_id.to_string(),
            from: self.0.warehouse.clone(),
            to,
            weight_grams: units.max(1).saturating_mul(GRAMS_PER_UNIT),
            service: None,
        };
        let shipment = self
            .0
            .carrier
            .create_shipment(&request, &context.idempotency_key())
            .await
            .map_err(adapter_error)?;
        let label = ShippingLabel {
            tracking_code: shipment.tracking_code.clone(),
            carrier: shipment.carrier.clone(),
            service: shipment.service.clone(),
            order_id: order.order_id.to_string(),
            from: party(Some(&self.0.warehouse), "Warehouse"),
            to: party(order.shipping_address.as_ref(), &customer_name(&order)),
            weight_grams: request.weight_grams,
        };
        let pdf = orderflow_documents::label_pdf(&label)
            .map_err(|error| StepError::fatal(format!("the label cannot be drawn: {error}")))?;
        let zpl = orderflow_documents::label_zpl(&label)
            .map_err(|error| StepError::fatal(format!("the label cannot be drawn: {error}")))?;
        let now = OffsetDateTime::now_utc();
        for (kind, content_type, body) in [
            ("label", "application/pdf", pdf),
            ("label_zpl", "application/zpl", zpl.into_bytes()),
        ] {
            self.0
                .store
                .put_document(&order.order_id, kind, content_type, body, now)
                .await
                .map_err(store_error)?;
        }
        advance(
            &self.0,
            &order,
            Progress::Shipped,
            format!(
                "shipped with {} {} ({})",
                shipment.carrier, shipment.service, shipment.tracking_code
            ),
        )
        .await?;
        done(serde_json::json!({
            "carrier": shipment.carrier,
            "service": shipment.service,
            "shipment_id": shipment.shipment_id,
            "tracking_code": shipment.tracking_code,
            "tracker_id": shipment.tracker_id,
            "label_url": shipment.label_url,
        }))
    }
}

/// Which customer message a step sends.
#[derive(Debug, Clone, Copy)]
enum Event {
    Confirmed,
    Shipped,
}

#[derive(Debug)]
pub(crate) struct Notify {
    services: Arc<Services>,
    event: Event,
}

impl Notify {
    pub(crate) fn confirmed(services: Arc<Services>) -> Self {
        Self {
            services,
            event: Event::Confirmed,
        }
    }

    pub(crate) fn shipped(services: Arc<Services>) -> Self {
        Self {
            services,
            event: Event::Shipped,
        }
    }
}

#[async_trait]
impl StepHandler for Notify {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = load(&self.services, context).await?;
        let Some(to) = order.customer.as_ref().and_then(|c| c.email.clone()) else {
            return done(serde_json::json!({ "sent": false, "reason": "no e-mail address" }));
        };
        let name = customer_name(&order);
        let (subject, text, event) = match self.event {
            Event::Confirmed => (
                format!("Order {} confirmed", order.order_id),
                format!(
                    "Hello {name},\n\nwe have your order {} and your payment is authorised. \
                     We will write again when it ships.\n",
                    order.order_id
                ),
                "confirmed",
            ),
            Event::Shipped => {
                let tracking = context
                    .output("create_shipment")
                    .and_then(|o| o.get("tracking_code"))
                    .and_then(|t| t.as_str())
                    .unwrap_or("(not yet known)");
                (
                    format!("Order {} shipped", order.order_id),
                    format!(
                        "Hello {name},\n\nyour order {} is on its way. Tracking number: {tracking}.\n",
                        order.order_id
                    ),
                    "shipped",
                )
            }
        };
        let email = Email {
            from: self.services.sender.clone(),
            to,
            subject,
            text,
            html: None,
            message_id: format!("{}.{event}", order.order_id),
        };
        let answer = self
            .services
            .mailer
            .send(&email)
            .await
            .map_err(adapter_error)?;
        done(serde_json::json!({ "sent": true, "message_id": email.message_id, "server": answer }))
    }
}

/// Undoes what the run did when a step failed for good or the run was cancelled: releases the
/// stock (by cancelling the order), voids the payment, and tells the customer.
#[derive(Debug)]
pub(crate) struct Compensate(pub Arc<Services>);

#[async_trait]
impl StepHandler for Compensate {
    async fn run(&self, context: &StepContext) -> Result<Outcome, StepError> {
        let order = load(&self.0, context).await?;
        if order.status.has_shipped() {
            return done(serde_json::json!({ "compensated": false, "reason": "already shipped" }));
        }
        let reason = if context.run_cancelled {
            "the order was cancelled".to_owned()
        } else {
            "the order could not be completed".to_owned()
        };
        let cancelled = self
            .0
            .store
            .cancel_order(
                &Scope::Everything,
                CancelOrder {
                    runs: None,
                    order_id: order.order_id.clone(),
                    reason: Some(format!("compensation: {reason}")),
                    now: OffsetDateTime::now_utc(),
                },
            )
            .await;
        match cancelled {
            Ok(_) | Err(StoreError::TooLateToCancel(_)) => {}
            Err(error) => return Err(store_error(error)),
        }
        let authorization = context.output("authorize_payment").and_then(|o| {
            Some((
                o.get("gateway")?.as_str()?,
                o.get("authorization_id")?.as_str()?,
            ))
        });
        let mut voided = None;
        if let Some((gateway, id)) = authorization
            && gateway != PAYMENT_METHOD_COD
            && gateway != PAID_AT_PLATFORM
        {
            self.0
                .payments
                .void(id, &format!("{}:void", context.idempotency_key()))
                .await
                .map_err(adapter_error)?;
            voided = Some(id.to_owned());
        }
        let mut told = false;
        if let Some(to) = order.customer.as_ref().and_then(|c| c.email.clone()) {
            let email = Email {
                from: self.0.sender.clone(),
                to,
                subject: format!("Order {} cancelled", order.order_id),
                text: format!(
                    "Hello {},\n\nwe are sorry: {reason}, so order {} is cancelled{}.\n",
                    customer_name(&order),
                    order.order_id,
                    if voided.is_some() {
                        " and the amount held on your card is released"
                    } else {
                        ""
                    }
                ),
                html: None,
                message_id: format!("{}.cancelled", order.order_id),
            };
            self.0.mailer.send(&email).await.map_err(adapter_error)?;
            told = true;
        }
        done(serde_json::json!({ "compensated": true, "voided": voided, "customer_told": told }))
    }
}
