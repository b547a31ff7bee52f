//! `/orders`: place, read, edit, cancel and list orders (PRODUCT.md §3).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_domain::{
    Address, Customer, OrderId, OrderLine, OrderLines, OrderStatus, Quantity, StoreId,
};
use orderflow_store::{
    CancelOrder, EditOrder, Idempotency, Order, OrderFilter, PlaceOrder, Receipt,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Caller, hex};
use crate::error::{ApiError, ApiResult, Problem, ShortfallBody, not_found_as};
use crate::extract::{ApiJson, ApiQuery};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    pub product_id: String,
    /// Units of the product, 1 to 1,000,000.
    pub item_count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    pub products: Vec<LineBody>,
    #[serde(default)]
    pub customer: Option<Customer>,
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// Place the order for what is in stock and backorder the rest instead of refusing it.
    #[serde(default)]
    pub allow_partial: bool,
    /// Admins only: the store to place the order in (default `default`).
    #[serde(default)]
    pub store_id: Option<String>,
    /// How the customer pays: a payment provider's method (`pm_card_visa`) or
    /// `cash_on_delivery`. Authorised by the order's workflow.
    #[serde(default)]
    pub payment_method: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditOrderBody {
    /// Replaces all lines; stock is re-reserved atomically.
    #[serde(default)]
    pub products: Option<Vec<LineBody>>,
    #[serde(default)]
    pub shipping_address: Option<Address>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlacedBody {
    pub message: String,
    pub order_id: String,
    pub order_status: OrderStatus,
    pub products: Vec<LineBody>,
    /// Lines (or parts of lines) waiting for stock; present only when some are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<ShortfallBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PricedLineBody {
    pub product_id: String,
    pub item_count: u32,
    /// Minor units of `currency`, as priced when the line was reserved.
    pub unit_price: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MoneyBody {
    /// Minor units (cents).
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimelineBody {
    /// RFC 3339, UTC.
    pub at: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderBody {
    pub order_id: String,
    pub store_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub order_status: OrderStatus,
    pub products: Vec<PricedLineBody>,
    /// Units waiting for stock.
    pub backordered: Vec<LineBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<MoneyBody>,
    /// Parcels with their tracking, once the order ships.
    pub shipments: Vec<serde_json::Value>,
    pub timeline: Vec<TimelineBody>,
    pub created_at: String,
    pub updated_at: String,
    /// Increases with every change; the `ETag` is this number in quotes.
    pub version: i64,
    /// For an order taken in from a storefront: its platform, platform order id and number,
    /// platform status, the inbox delivery it came in, shipping method, and the packages and
    /// decisions of the store's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub source: Option<serde_json::Value>,
    /// The order's workflow run, on a node that runs workflows: where each step stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSummaryBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunSummaryBody {
    pub run_id: String,
    pub workflow: String,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Each step's name and status, in the workflow's order.
    pub steps: Vec<StepSummaryBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepSummaryBody {
    pub name: String,
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UpdatedBody {
    pub message: String,
    #[serde(flatten)]
    pub order: OrderBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelledBody {
    pub message: String,
    pub order_id: String,
    pub order_status: OrderStatus,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderListBody {
    pub orders: Vec<OrderBody>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    pub status: Option<String>,
    pub store_id: Option<String>,
    pub customer_id: Option<String>,
    pub external_id: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

pub(crate) fn lines_from(body: &[LineBody], field: &str) -> ApiResult<OrderLines> {
    let lines = body
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let product_id = line
                .product_id
                .parse()
                .map_err(|e| ApiError::InvalidBody(format!("{field}[{i}].product_id: {e}")))?;
            let quantity = u64::try_from(line.item_count)
                .map_err(|_| orderflow_domain::QuantityError::Zero)
                .and_then(Quantity::try_from)
                .map_err(|e| ApiError::InvalidBody(format!("{field}[{i}].{e}")))?;
            Ok(OrderLine {
                product_id,
                quantity,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    OrderLines::new(lines).map_err(|e| ApiError::InvalidBody(format!("{field}: {e}")))
}

fn line_body(line: &OrderLine) -> LineBody {
    LineBody {
        product_id: line.product_id.to_string(),
        item_count: i64::from(line.quantity.get()),
    }
}

fn validate_parties(customer: Option<&Customer>, address: Option<&Address>) -> ApiResult<()> {
    if let Some(customer) = customer {
        customer
            .validate()
            .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    }
    if let Some(address) = address {
        address
            .validate()
            .map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    }
    Ok(())
}

fn order_id_from(text: &str) -> ApiResult<OrderId> {
    // A malformed id names no order: answer as for any other unknown id.
    text.parse().map_err(|_| ApiError::NotFound("order"))
}

pub fn order_body(order: Order) -> OrderBody {
    OrderBody {
        order_id: order.order_id.to_string(),
        store_id: order.store_id.to_string(),
        external_id: order.external_id,
        order_status: order.status,
        products: order
            .lines
            .iter()
            .map(|l| PricedLineBody {
                product_id: l.product_id.to_string(),
                item_count: l.quantity.get(),
                unit_price: l.unit_price_minor,
                currency: l.currency.to_string(),
            })
            .collect(),
        backordered: order
            .backorder
            .iter()
            .map(|b| LineBody {
                product_id: b.product_id.to_string(),
                item_count: i64::from(b.quantity.get()),
            })
            .collect(),
        customer: order.customer,
        shipping_address: order.shipping_address,
        total: order.currency.map(|c| MoneyBody {
            amount: order.total_minor,
            currency: c.to_string(),
        }),
        shipments: Vec::new(),
        run: None,
        source: order
            .source
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok()),
        timeline: order
            .timeline
            .into_iter()
            .map(|e| TimelineBody {
                at: rfc3339(e.at),
                status: e.status,
                note: e.note,
            })
            .collect(),
        created_at: rfc3339(order.created_at),
        updated_at: rfc3339(order.updated_at),
        version: order.version,
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\""))
        .expect("digits and quotes are a valid header value")
}

fn placed_body(receipt: &Receipt) -> PlacedBody {
    PlacedBody {
        message: "Success! Order placed".into(),
        order_id: receipt.order_id.to_string(),
        order_status: receipt.order_status,
        products: receipt.products.iter().map(line_body).collect(),
        unavailable: receipt
            .unavailable
            .iter()
            .map(ShortfallBody::from)
            .collect(),
    }
}

/// The `Idempotency-Key`, namespaced by caller so that two customers' keys never meet.
fn idempotency(
    headers: &HeaderMap,
    caller: &Caller,
    body: &PlaceOrderBody,
) -> ApiResult<Option<Idempotency>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::InvalidBody(
                "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
            )
        })?;
    let namespace = match caller {
        Caller::Admin => "admin".to_owned(),
        Caller::Store(_) => "store".to_owned(),
        Caller::Customer(_, customer) => format!("customer:{customer}"),
    };
    let canonical = serde_json::to_vec(body).map_err(|_| ApiError::Internal)?;
    Ok(Some(Idempotency {
        key: format!("{namespace}:{key}"),
        request_hash: hex(&Sha256::digest(&canonical)),
    }))
}

fn new_order_id(now: OffsetDateTime) -> OrderId {
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    OrderId::mint(millis, rand::random())
}

#[utoipa::path(
    post, path = "/orders", tag = "orders",
    request_body = PlaceOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body return the first response")),
    responses(
        (status = 201, description = "Order placed; `Location` names it", body = PlacedBody),
        (status = 400, description = "Malformed body, invalid field or unknown product", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Named store not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock: `shortfalls` names each product", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn place(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrderBody>,
) -> ApiResult<Response> {
    let named_store = body
        .store_id
        .as_deref()
        .map(str::parse::<StoreId>)
        .transpose()
        .map_err(|e| ApiError::InvalidBody(format!("store_id: {e}")))?;
    let store_id = caller.acting_store(named_store)?;
    let lines = lines_from(&body.products, "products")?;
    let mut customer = body.customer.clone();
    if let Caller::Customer(_, own) = &caller {
        // A customer always orders as itself, whatever the body says.
        customer.get_or_insert_with(Customer::default).customer_id = Some(own.clone());
    }
    validate_parties(customer.as_ref(), body.shipping_address.as_ref())?;
    let idempotency = idempotency(&headers, &caller, &body)?;
    let now = OffsetDateTime::now_utc();
    let placed = state
        .store
        .place_order(PlaceOrder {
            run: state.order_run(body.payment_method.as_deref(), None, now),
            order_id: new_order_id(now),
            store_id,
            lines,
            allow_partial: body.allow_partial,
            customer,
            shipping_address: body.shipping_address,
            idempotency,
            now,
            source: None,
        })
        .await;
    let placement = match placed {
        Ok(placement) => placement,
        Err(error) => {
            if matches!(
                error,
                orderflow_store::Error::Refused(orderflow_domain::Refusal::Short(_))
            ) {
                state.metrics.reservations_refused.inc();
            }
            return Err(not_found_as("store")(error));
        }
    };
    if !placement.replayed {
        state.metrics.orders_placed.inc();
    }
    let location = format!("/orders/{}", placement.receipt.order_id);
    let mut response = (StatusCode::CREATED, Json(placed_body(&placement.receipt))).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|_| ApiError::Internal)?,
    );
    if placement.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(
    get, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path)),
    responses(
        (status = 200, description = "The order; `ETag` carries its version", body = OrderBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order visible to this token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> ApiResult<Response> {
    let order_id = order_id_from(&order_id)?;
    let order = state
        .store
        .get_order(&caller.scope(), &order_id)
        .await
        .map_err(not_found_as("order"))?;
    let version = order.version;
    let mut body = order_body(order);
    if state.workflows.is_some() {
        attach_run(&state, &caller.scope(), &mut body).await?;
    }
    Ok(([(header::ETAG, etag(version))], Json(body)).into_response())
}

fn expected_version(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(header::IF_MATCH)?.to_str().ok()?.trim();
    if value == "*" {
        return None;
    }
    // An unparseable tag matches no version, so the edit is refused with 412.
    let tag = value.trim_start_matches("W/").trim_matches('"');
    Some(tag.parse().unwrap_or(-1))
}

#[utoipa::path(
    patch, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is refused with 412")),
    request_body = EditOrderBody,
    responses(
        (status = 200, description = "Order updated", body = UpdatedBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock, or the order has shipped or ended", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EditOrderBody>,
) -> ApiResult<Response> {
    let order_id = order_id_from(&order_id)?;
    if body.products.is_none() && body.shipping_address.is_none() {
        return Err(ApiError::InvalidBody(
            "nothing to change: send products and/or shipping_address".into(),
        ));
    }
    let lines = body
        .products
        .as_deref()
        .map(|lines| lines_from(lines, "products"))
        .transpose()?;
    validate_parties(None, body.shipping_address.as_ref())?;
    let order = state
        .store
        .edit_order(
            &caller.scope(),
            EditOrder {
                order_id,
                expected_version: expected_version(&headers),
                lines,
                shipping_address: body.shipping_address,
                now: OffsetDateTime::now_utc(),
            },
        )
        .await
        .map_err(not_found_as("order"))?;
    let version = order.version;
    let body = UpdatedBody {
        message: "Order successfully updated".into(),
        order: order_body(order),
    };
    Ok(([(header::ETAG, etag(version))], Json(body)).into_response())
}

#[utoipa::path(
    delete, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path)),
    responses(
        (status = 200, description = "Cancelled (repeating is harmless); stock released once", body = CancelledBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order has shipped or ended", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> ApiResult<Json<CancelledBody>> {
    let order_id = order_id_from(&order_id)?;
    let reason = match &caller {
        Caller::Customer(..) => "cancelled by the customer",
        _ => "cancelled through the API",
    };
    let order = state
        .store
        .cancel_order(
            &caller.scope(),
            CancelOrder {
                runs: state.workflows.as_ref().map(|c| c.registry().clone() as _),
                order_id,
                reason: Some(reason.into()),
                now: OffsetDateTime::now_utc(),
            },
        )
        .await
        .map_err(not_found_as("order"))?;
    Ok(Json(CancelledBody {
        message: "Order successfully cancelled".into(),
        order_id: order.order_id.to_string(),
        order_status: order.status,
    }))
}

/// Shows the order's latest run and, once it shipped, the shipment its run created.
async fn attach_run(
    state: &AppState,
    scope: &orderflow_store::Scope,
    body: &mut OrderBody,
) -> ApiResult<()> {
    let filter = orderflow_store::RunFilter {
        order_id: Some(order_id_from(&body.order_id)?),
        limit: 1,
        ..Default::default()
    };
    let Some(latest) = state
        .store
        .list_runs(&orderflow_store::Scope::Everything, filter)
        .await?
        .items
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let run = state
        .store
        .get_run(&orderflow_store::Scope::Everything, &latest.run_id)
        .await?;
    body.shipments = run
        .steps
        .iter()
        .filter(|s| {
            s.name == "create_shipment" && s.status == orderflow_store::StepStatus::Succeeded
        })
        .filter_map(|s| serde_json::from_str(s.output.as_deref()?).ok())
        .collect();
    // A customer sees its parcel but not the runs behind it.
    if matches!(scope, orderflow_store::Scope::Customer(..)) {
        return Ok(());
    }
    body.run = Some(RunSummaryBody {
        run_id: run.run_id,
        workflow: run.workflow,
        status: run.status.as_str().to_owned(),
        steps: run
            .steps
            .into_iter()
            .map(|s| StepSummaryBody {
                name: s.name,
                status: s.status.as_str().to_owned(),
            })
            .collect(),
    });
    Ok(())
}

#[utoipa::path(
    get, path = "/orders", tag = "orders",
    params(OrderQuery),
    responses(
        (status = 200, description = "Newest first", body = OrderListBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> ApiResult<Json<OrderListBody>> {
    let invalid =
        |field: &str, e: &dyn std::fmt::Display| ApiError::InvalidQuery(format!("{field}: {e}"));
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidQuery(
            "limit must be between 1 and 200".into(),
        ));
    }
    let filter = OrderFilter {
        status: query
            .status
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| invalid("status", &e))?,
        store_id: query
            .store_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| invalid("store_id", &e))?,
        customer_id: query
            .customer_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| invalid("customer_id", &e))?,
        external_id: query.external_id,
        limit,
        before: query
            .cursor
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| invalid("cursor", &e))?,
    };
    let page = state.store.list_orders(&caller.scope(), filter).await?;
    let next_cursor = if page.has_more {
        page.items.last().map(|o| o.order_id.to_string())
    } else {
        None
    };
    Ok(Json(OrderListBody {
        orders: page.items.into_iter().map(order_body).collect(),
        next_cursor,
    }))
}
