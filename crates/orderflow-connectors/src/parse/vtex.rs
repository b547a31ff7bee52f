//! VTEX OMS: the full order of `GET /api/oms/pvt/orders/{orderId}` (PLATFORMS.md §3), and the
//! thin hook notification that only says an order changed.
//!
//! Mapping decisions:
//! - Money is already integer minor units (`1160` = 11.60 BRL), so amounts are taken as the
//!   integers they are; the store's `CurrencyDecimalDigits` must agree with the currency's ISO
//!   4217 exponent, because otherwise the same integers would mean something else here.
//! - `totals[Discounts]` is negative in VTEX; orderflow's `discount_minor` is the positive amount
//!   taken off.
//! - A line's unit price is `sellingPrice` (after item-level promotions), falling back to `price`;
//!   `totals[Items]` is VTEX's sum of list prices, so lines do not add up to it when there are
//!   discounts.
//! - The country is ISO alpha-3 in VTEX and becomes alpha-2.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer};
use serde::Deserialize;

use super::country::alpha2_from_alpha3;
use super::fields::{created_and_updated, optional_id, quantity, required_currency, required_list};
use super::{Exact, ParseError, from_json, full_name, joined, non_empty};
use crate::incoming::{IncomingLine, IncomingOrder, PlatformState, Totals};
use crate::platform::Platform;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    order_id: Option<String>,
    sequence: Option<Exact>,
    status: Option<String>,
    value: Option<Exact>,
    totals: Option<Vec<Total>>,
    creation_date: Option<String>,
    last_change: Option<String>,
    store_preferences_data: Option<StorePreferences>,
    client_profile_data: Option<ClientProfile>,
    client_preferences_data: Option<ClientPreferences>,
    shipping_data: Option<ShippingData>,
    items: Option<Vec<Item>>,
}

#[derive(Deserialize)]
struct Total {
    id: Option<String>,
    value: Option<Exact>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StorePreferences {
    currency_code: Option<String>,
    currency_format_info: Option<CurrencyFormatInfo>,
}

#[derive(Deserialize)]
struct CurrencyFormatInfo {
    #[serde(rename = "CurrencyDecimalDigits")]
    decimal_digits: Option<Exact>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientProfile {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
}

#[derive(Deserialize)]
struct ClientPreferences {
    locale: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShippingData {
    address: Option<VtexAddress>,
    logistics_info: Option<Vec<LogisticsInfo>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VtexAddress {
    receiver_name: Option<String>,
    street: Option<String>,
    number: Option<String>,
    complement: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogisticsInfo {
    selected_sla: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    id: Option<Exact>,
    ref_id: Option<String>,
    seller_sku: Option<String>,
    name: Option<String>,
    quantity: Option<Exact>,
    selling_price: Option<Exact>,
    price: Option<Exact>,
}

pub fn parse(body: &[u8]) -> Result<IncomingOrder, ParseError> {
    let order: Order = from_json(body)?;
    let external_id =
        non_empty(order.order_id.as_deref()).ok_or_else(|| ParseError::missing("orderId"))?;
    let number = match &order.sequence {
        Some(sequence) if sequence.text().is_some_and(|t| !t.trim().is_empty()) => {
            Some(sequence.id("sequence")?)
        }
        _ => Some(external_id.clone()),
    };
    let currency = store_currency(order.store_preferences_data.as_ref())?;
    let platform_status = order
        .status
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let (created_at, updated_at) = created_and_updated(
        ("creationDate", order.creation_date.as_deref()),
        ("lastChange", order.last_change.as_deref()),
    )?;
    let customer = customer(
        order.client_profile_data.as_ref(),
        order.client_preferences_data.as_ref(),
    )?;
    let shipping_address = match order
        .shipping_data
        .as_ref()
        .and_then(|s| s.address.as_ref())
    {
        Some(address) => Some(shipping_address(address)?),
        None => None,
    };
    let shipping_method = order
        .shipping_data
        .as_ref()
        .and_then(|s| s.logistics_info.as_ref())
        .and_then(|infos| infos.first())
        .and_then(|info| non_empty(info.selected_sla.as_deref()));
    Ok(IncomingOrder {
        platform: Platform::Vtex,
        external_id,
        number,
        state: state(&platform_status),
        platform_status,
        customer,
        shipping_address,
        lines: lines(order.items.as_deref())?,
        shipping_method,
        currency,
        totals: totals(order.value.as_ref(), order.totals.as_deref())?,
        created_at,
        updated_at,
    })
}

fn store_currency(preferences: Option<&StorePreferences>) -> Result<Currency, ParseError> {
    const CODE: &str = "storePreferencesData.currencyCode";
    const DIGITS: &str = "storePreferencesData.currencyFormatInfo.CurrencyDecimalDigits";
    let currency = required_currency(
        CODE,
        preferences
            .and_then(|p| p.currency_code.as_deref())
            .map(str::trim),
    )?;
    let digits = preferences
        .and_then(|p| p.currency_format_info.as_ref())
        .and_then(|info| info.decimal_digits.as_ref())
        .and_then(Exact::text);
    // Without the store's own statement, the ISO exponent is the only scale there is.
    if let Some(digits) = digits {
        let store = digits
            .parse::<u32>()
            .map_err(|_| ParseError::invalid(DIGITS, format!("{digits:?} is not a digit count")))?;
        if store != currency.exponent() {
            return Err(ParseError::invalid(
                DIGITS,
                format!(
                    "the store counts {currency} amounts in units of 10^-{store}, but orderflow \
                     counts them in units of 10^-{}; the amounts would be scaled wrongly",
                    currency.exponent()
                ),
            ));
        }
    }
    Ok(currency)
}

/// An integer of minor units exactly as VTEX wrote it: anything with a fraction or exponent is
/// not a VTEX amount and is refused rather than rounded.
fn whole_minor(value: Option<&Exact>, field: &str) -> Result<i64, ParseError> {
    let text = value
        .and_then(Exact::text)
        .ok_or_else(|| ParseError::missing(field))?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::invalid(
            field,
            format!("{text:?} is not a whole number of minor units"),
        ));
    }
    text.parse::<i64>()
        .map_err(|_| ParseError::invalid(field, format!("{text:?} is too large an amount")))
}

fn totals(value: Option<&Exact>, totals: Option<&[Total]>) -> Result<Totals, ParseError> {
    let mut result = Totals {
        total_minor: whole_minor(value, "value")?,
        ..Totals::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for (index, total) in totals.unwrap_or_default().iter().enumerate() {
        let Some(id) = total.id.as_deref() else {
            continue;
        };
        let field = format!("totals[{index}].value");
        let slot = match id {
            "Items" => &mut result.items_minor,
            "Shipping" => &mut result.shipping_minor,
            "Tax" => &mut result.tax_minor,
            "Discounts" => &mut result.discount_minor,
            // `Change` and custom totals are already inside `value`.
            _ => continue,
        };
        if seen.contains(&id) {
            return Err(ParseError::invalid(
                format!("totals[{index}].id"),
                format!("{id} appears twice"),
            ));
        }
        seen.push(id);
        let amount = whole_minor(total.value.as_ref(), &field)?;
        *slot = if id == "Discounts" {
            if amount > 0 {
                return Err(ParseError::invalid(
                    field,
                    format!("a VTEX discount total is negative or zero, not {amount}"),
                ));
            }
            amount
                .checked_neg()
                .ok_or_else(|| ParseError::invalid(&field, "too large an amount"))?
        } else {
            amount
        };
    }
    Ok(result)
}

fn lines(items: Option<&[Item]>) -> Result<Vec<IncomingLine>, ParseError> {
    required_list(items, "items")?
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let at = |field: &str| format!("items[{index}].{field}");
            let quantity = quantity(item.quantity.as_ref(), &at("quantity"))?;
            let (price, field) = match (&item.selling_price, &item.price) {
                (Some(selling), _) if selling.text().is_some() => (selling, at("sellingPrice")),
                (_, Some(price)) => (price, at("price")),
                _ => return Err(ParseError::missing(at("sellingPrice"))),
            };
            let unit_price_minor = whole_minor(Some(price), &field)?;
            if unit_price_minor < 0 {
                return Err(ParseError::invalid(field, "a unit price is not negative"));
            }
            let item_id = optional_id(item.id.as_ref(), &at("id"))?;
            Ok(IncomingLine {
                sku: non_empty(item.ref_id.as_deref())
                    .or_else(|| non_empty(item.seller_sku.as_deref())),
                item_id,
                name: non_empty(item.name.as_deref()),
                quantity,
                unit_price_minor,
            })
        })
        .collect()
}

fn customer(
    profile: Option<&ClientProfile>,
    preferences: Option<&ClientPreferences>,
) -> Result<Customer, ParseError> {
    let customer = Customer {
        customer_id: None,
        name: profile.and_then(|p| full_name(p.first_name.as_deref(), p.last_name.as_deref())),
        email: profile.and_then(|p| non_empty(p.email.as_deref())),
        phone: profile.and_then(|p| non_empty(p.phone.as_deref())),
        locale: preferences.and_then(|p| non_empty(p.locale.as_deref())),
    };
    customer
        .validate()
        .map_err(|error| ParseError::invalid("clientProfileData", error.to_string()))?;
    Ok(customer)
}

fn shipping_address(address: &VtexAddress) -> Result<Address, ParseError> {
    const COUNTRY: &str = "shippingData.address.country";
    let country = match non_empty(address.country.as_deref()) {
        Some(alpha3) => Some(
            alpha2_from_alpha3(&alpha3)
                .ok_or_else(|| {
                    ParseError::invalid(
                        COUNTRY,
                        format!("{alpha3:?} is not an ISO 3166-1 alpha-3 code"),
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    let address = Address {
        name: non_empty(address.receiver_name.as_deref()),
        line1: joined([address.street.as_deref(), address.number.as_deref()], " "),
        line2: non_empty(address.complement.as_deref()),
        city: non_empty(address.city.as_deref()),
        region: non_empty(address.state.as_deref()),
        postal_code: non_empty(address.postal_code.as_deref()),
        country,
    };
    address
        .validate()
        .map_err(|error| ParseError::invalid("shippingData.address", error.to_string()))?;
    Ok(address)
}

/// VTEX's workflow states reduced to what intake acts on. Unknown and empty states stay
/// `Pending`: VTEX adds states now and then, and holding an order is the safe default.
fn state(status: &str) -> PlatformState {
    match status {
        // The payment is approved; what follows is VTEX's own fulfilment gating.
        "payment-approved"
        | "waiting-for-seller-decision"
        | "authorize-fulfillment"
        | "waiting-ffmt-authorization"
        | "ready-for-handling"
        | "start-handling"
        | "handling"
        | "invoice" => PlatformState::Paid,
        "invoiced" => PlatformState::Fulfilled,
        // `cancel` is VTEX cancelling already; a *requested* cancellation can still be denied
        // by the seller, so it holds the order (Pending) rather than releasing its stock.
        "canceled" | "cancel" => PlatformState::Cancelled,
        _ => PlatformState::Pending,
    }
}

/// The thin hook notification (`{Domain, OrderId, State, LastState, LastChange, CurrentChange,
/// Origin{Account, Key}}`): it names an order whose full body must then be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtexHook {
    pub domain: Option<String>,
    pub order_id: String,
    pub state: String,
    pub last_state: Option<String>,
    /// As sent (`2019-07-29T23:17:30.0617185Z`): the hook's dedup key uses the text itself.
    pub last_change: Option<String>,
    pub current_change: Option<String>,
    /// The account the hook belongs to, to be checked against the configured tenant.
    pub origin_account: String,
    /// The app key that owns the hook.
    pub origin_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Hook {
    domain: Option<String>,
    order_id: Option<String>,
    state: Option<String>,
    last_state: Option<String>,
    last_change: Option<String>,
    current_change: Option<String>,
    origin: Option<Origin>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Origin {
    account: Option<String>,
    key: Option<String>,
}

pub fn parse_hook(body: &[u8]) -> Result<VtexHook, ParseError> {
    let hook: Hook = from_json(body)?;
    let required = |value: Option<&str>, field: &str| {
        non_empty(value).ok_or_else(|| ParseError::missing(field))
    };
    let origin = hook.origin.as_ref();
    Ok(VtexHook {
        domain: non_empty(hook.domain.as_deref()),
        order_id: required(hook.order_id.as_deref(), "OrderId")?,
        state: required(hook.state.as_deref(), "State")?,
        last_state: non_empty(hook.last_state.as_deref()),
        last_change: non_empty(hook.last_change.as_deref()),
        current_change: non_empty(hook.current_change.as_deref()),
        origin_account: required(origin.and_then(|o| o.account.as_deref()), "Origin.Account")?,
        origin_key: required(origin.and_then(|o| o.key.as_deref()), "Origin.Key")?,
    })
}

/// Whether the body is the `{"hookConfig":"ping"}` VTEX posts when a hook is configured: it
/// must be answered with 200 or VTEX refuses to save the configuration.
pub fn is_ping(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Ping {
        #[serde(rename = "hookConfig")]
        hook_config: String,
    }
    serde_json::from_slice::<Ping>(body).is_ok_and(|ping| ping.hook_config == "ping")
}

/// One event of `GET /api/orders/feed` (Feed v3): like the hook, it only names the order; its
/// `handle` is what commits it (`POST /api/orders/feed {"handles":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtexFeedEvent {
    pub event_id: String,
    pub handle: String,
    pub domain: Option<String>,
    pub order_id: String,
    pub state: String,
    pub last_state: Option<String>,
    pub last_change: Option<String>,
    pub current_change: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeedEvent {
    event_id: Option<String>,
    handle: Option<String>,
    domain: Option<String>,
    order_id: Option<String>,
    state: Option<String>,
    last_state: Option<String>,
    last_change: Option<String>,
    current_change: Option<String>,
}

/// Reads a Feed v3 batch, in the order VTEX sent it.
pub fn parse_feed(body: &[u8]) -> Result<Vec<VtexFeedEvent>, ParseError> {
    let events: Vec<FeedEvent> = from_json(body)?;
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let required = |value: Option<&str>, field: &str| {
                non_empty(value).ok_or_else(|| ParseError::missing(format!("[{index}].{field}")))
            };
            Ok(VtexFeedEvent {
                event_id: required(event.event_id.as_deref(), "eventId")?,
                handle: required(event.handle.as_deref(), "handle")?,
                domain: non_empty(event.domain.as_deref()),
                order_id: required(event.order_id.as_deref(), "orderId")?,
                state: required(event.state.as_deref(), "state")?,
                last_state: non_empty(event.last_state.as_deref()),
                last_change: non_empty(event.last_change.as_deref()),
                current_change: non_empty(event.current_change.as_deref()),
            })
        })
        .collect()
}
