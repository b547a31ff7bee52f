//! `/products`: the catalogue and its stock (PRODUCT.md §4).

use axum::Json;
use axum::extract::{Path, State};
use orderflow_domain::{Currency, ProductId, StoreId};
use orderflow_store::{PageRequest, Product, ProductInput};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem, not_found_as};
use crate::extract::{ApiJson, ApiQuery};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProductBody {
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    /// Minor units of `currency` (cents).
    pub price: i64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    /// Units in the warehouse; may not drop below what open orders reserve.
    pub on_hand: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    /// Units received (positive) or written off (negative).
    pub delta: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductBody {
    pub product_id: String,
    pub store_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub price: i64,
    pub currency: String,
    pub on_hand: i64,
    /// Units held by open orders.
    pub reserved: i64,
    /// `on_hand - reserved`: what a new order can take.
    pub available: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductListBody {
    pub products: Vec<ProductBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StoreQuery {
    /// Admins only: the store to act on (default `default`).
    pub store_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProductListQuery {
    pub store_id: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub fn product_body(product: Product) -> ProductBody {
    ProductBody {
        available: product.available(),
        product_id: product.product_id.to_string(),
        store_id: product.store_id.to_string(),
        name: product.name,
        category: product.category,
        price: product.price_minor,
        currency: product.currency.to_string(),
        on_hand: product.on_hand,
        reserved: product.reserved,
    }
}

fn named_store(text: Option<&str>) -> ApiResult<Option<StoreId>> {
    text.map(str::parse)
        .transpose()
        .map_err(|e| ApiError::InvalidQuery(format!("store_id: {e}")))
}

/// Validates a product as given over the API or in a CSV import.
pub fn product_input(
    product_id: &str,
    body: PutProductBody,
    now: OffsetDateTime,
) -> ApiResult<ProductInput> {
    let invalid =
        |field: &str, e: &dyn std::fmt::Display| ApiError::InvalidBody(format!("{field}: {e}"));
    let product_id: ProductId = product_id.parse().map_err(|e| invalid("product_id", &e))?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        return Err(ApiError::InvalidBody(
            "name must be 1 to 200 characters, without NUL".into(),
        ));
    }
    if (body.category.as_deref()).is_some_and(|c| c.chars().count() > 100 || c.contains('\0')) {
        return Err(ApiError::InvalidBody(
            "category must be at most 100 characters, without NUL".into(),
        ));
    }
    if body.price < 0 {
        return Err(ApiError::InvalidBody("price must not be negative".into()));
    }
    if body.on_hand < 0 {
        return Err(ApiError::InvalidBody("on_hand must not be negative".into()));
    }
    let currency: Currency = body.currency.parse().map_err(|e| invalid("currency", &e))?;
    Ok(ProductInput {
        product_id,
        name,
        category: body.category.filter(|c| !c.trim().is_empty()),
        price_minor: body.price,
        currency,
        on_hand: body.on_hand,
        now,
    })
}

#[utoipa::path(
    put, path = "/products/{product_id}", tag = "products",
    params(("product_id" = String, Path), StoreQuery),
    request_body = PutProductBody,
    responses(
        (status = 200, description = "Created or updated", body = ProductBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "on_hand below what open orders reserve", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(product_id): Path<String>,
    ApiQuery(query): ApiQuery<StoreQuery>,
    ApiJson(body): ApiJson<PutProductBody>,
) -> ApiResult<Json<ProductBody>> {
    caller.require_merchant()?;
    let store_id = caller.acting_store(named_store(query.store_id.as_deref())?)?;
    let input = product_input(&product_id, body, OffsetDateTime::now_utc())?;
    let product = state
        .store
        .put_product(&store_id, input)
        .await
        .map_err(not_found_as("product"))?;
    Ok(Json(product_body(product)))
}

#[utoipa::path(
    get, path = "/products/{product_id}", tag = "products",
    params(("product_id" = String, Path), StoreQuery),
    responses(
        (status = 200, body = ProductBody),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(product_id): Path<String>,
    ApiQuery(query): ApiQuery<StoreQuery>,
) -> ApiResult<Json<ProductBody>> {
    let store_id = caller.acting_store(named_store(query.store_id.as_deref())?)?;
    let product_id: ProductId = product_id
        .parse()
        .map_err(|_| ApiError::NotFound("product"))?;
    let product = state
        .store
        .get_product(&store_id, &product_id)
        .await
        .map_err(not_found_as("product"))?;
    Ok(Json(product_body(product)))
}

#[utoipa::path(
    post, path = "/products/{product_id}/stock", tag = "products",
    params(("product_id" = String, Path), StoreQuery),
    request_body = StockBody,
    responses(
        (status = 200, description = "Adjusted", body = ProductBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "on_hand would drop below zero or below what open orders reserve", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn adjust_stock(
    State(state): State<AppState>,
    caller: Caller,
    Path(product_id): Path<String>,
    ApiQuery(query): ApiQuery<StoreQuery>,
    ApiJson(body): ApiJson<StockBody>,
) -> ApiResult<Json<ProductBody>> {
    caller.require_merchant()?;
    let store_id = caller.acting_store(named_store(query.store_id.as_deref())?)?;
    let product_id: ProductId = product_id
        .parse()
        .map_err(|_| ApiError::NotFound("product"))?;
    let product = state
        .store
        .adjust_stock(&store_id, &product_id, body.delta)
        .await
        .map_err(not_found_as("product"))?;
    Ok(Json(product_body(product)))
}

#[utoipa::path(
    get, path = "/products", tag = "products",
    params(ProductListQuery),
    responses(
        (status = 200, description = "By product id", body = ProductListBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ProductListQuery>,
) -> ApiResult<Json<ProductListBody>> {
    let store_id = caller.acting_store(named_store(query.store_id.as_deref())?)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::InvalidQuery(
            "limit must be between 1 and 500".into(),
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| ApiError::InvalidQuery(format!("cursor: {e}")))?;
    let page = state
        .store
        .list_products(&store_id, PageRequest { limit, after })
        .await?;
    let next_cursor = if page.has_more {
        page.items.last().map(|p| p.product_id.to_string())
    } else {
        None
    };
    Ok(Json(ProductListBody {
        products: page.items.into_iter().map(product_body).collect(),
        next_cursor,
    }))
}
