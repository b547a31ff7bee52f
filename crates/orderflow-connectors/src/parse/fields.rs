//! Field readers shared by the JSON parsers. Each reads one payload field the way every
//! platform that sends it needs it read, and names the field by its path when it refuses it,
//! so that the platforms' parsers differ only in what their payloads really differ in.

use orderflow_domain::money::Currency;
use orderflow_domain::party::{Address, Customer, PartyError};
use time::OffsetDateTime;

use super::{Exact, ParseError, currency};
use crate::timestamp;

/// Serde reads a struct from a JSON array too, field by field in order; an order is only
/// ever an object, and a list of orders is the caller's to split.
pub(crate) fn refuse_array(body: &[u8]) -> Result<(), ParseError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Err(ParseError::Json {
            path: ".".to_owned(),
            message: "invalid type: sequence, expected an order object".to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The lines of an order, which it cannot do without: an absent list and an empty one are
/// refused alike, as missing.
pub(crate) fn required_list<'a, T>(
    list: Option<&'a [T]>,
    field: &str,
) -> Result<&'a [T], ParseError> {
    match list {
        Some(list) if !list.is_empty() => Ok(list),
        _ => Err(ParseError::missing(field)),
    }
}

/// The order's currency, which every amount is read in: missing when absent, invalid when not
/// ISO 4217.
pub(crate) fn required_currency(field: &str, code: Option<&str>) -> Result<Currency, ParseError> {
    currency(field, code.ok_or_else(|| ParseError::missing(field))?)
}

/// The order's creation time, which it must carry, and its last modification time, which
/// falls back to the creation time: without it the creation time is the only instant the body
/// vouches for, and the oldest one possible, so such a body never passes for newer than a
/// version already held.
pub(crate) fn created_and_updated(
    (created_field, created): (&'static str, Option<&str>),
    (updated_field, updated): (&'static str, Option<&str>),
) -> Result<(OffsetDateTime, OffsetDateTime), ParseError> {
    let created_at = timestamp::parse(
        created_field,
        created.ok_or_else(|| ParseError::missing(created_field))?,
    )?;
    let updated_at = match updated {
        Some(text) => timestamp::parse(updated_field, text)?,
        None => created_at,
    };
    Ok((created_at, updated_at))
}

/// An id of a platform whose ids are integers, as its decimal digits: they may exceed 2^53
/// (Shopify's do), so they never pass through a number type.
pub(crate) fn numeric_id(id: Option<&Exact>, field: &str) -> Result<String, ParseError> {
    let digits = id.ok_or_else(|| ParseError::missing(field))?.id(field)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(ParseError::invalid(
            field,
            format!("{digits:?} is not a numeric id"),
        ))
    }
}

/// An id the platform leaves out, or sends as `null`, when there is none.
pub(crate) fn optional_id(id: Option<&Exact>, field: &str) -> Result<Option<String>, ParseError> {
    match present(id) {
        Some(id) => id.id(field).map(Some),
        None => Ok(None),
    }
}

/// A line's quantity, which it must carry: a whole number of at least 1.
pub(crate) fn quantity(value: Option<&Exact>, field: &str) -> Result<u32, ParseError> {
    value
        .ok_or_else(|| ParseError::missing(field))?
        .quantity(field)
}

/// An amount the order must carry, in minor units of `currency`, of either sign: some
/// platforms send what is taken off as a negative amount (Magento's `discount_amount`).
pub(crate) fn signed_amount(
    value: Option<&Exact>,
    field: &str,
    currency: Currency,
) -> Result<i64, ParseError> {
    value
        .ok_or_else(|| ParseError::missing(field))?
        .minor(field, currency)
}

/// An amount the order must carry, in minor units of `currency`, which cannot be negative.
pub(crate) fn amount(
    value: Option<&Exact>,
    field: &str,
    currency: Currency,
) -> Result<i64, ParseError> {
    let minor = signed_amount(value, field, currency)?;
    if minor < 0 {
        return Err(ParseError::invalid(field, "must not be negative"));
    }
    Ok(minor)
}

/// An amount of either sign that the platform leaves out (or sends as `null`) when there is
/// none of it.
pub(crate) fn optional_signed_amount(
    value: Option<&Exact>,
    field: &str,
    currency: Currency,
) -> Result<i64, ParseError> {
    present(value).map_or(Ok(0), |value| signed_amount(Some(value), field, currency))
}

/// An amount that cannot be negative and that the platform leaves out (or sends as `null`)
/// when there is none of it.
pub(crate) fn optional_amount(
    value: Option<&Exact>,
    field: &str,
    currency: Currency,
) -> Result<i64, ParseError> {
    present(value).map_or(Ok(0), |value| amount(Some(value), field, currency))
}

/// A field that is there and not `null`.
fn present(value: Option<&Exact>) -> Option<&Exact> {
    value.filter(|value| value.text().is_some())
}

/// A value picked by [`first_of`], with the payload field it came from.
pub(crate) type Sourced = Option<(&'static str, String)>;

/// The first candidate that has a value, with the field it came from: a customer's name,
/// email or phone may come from several fields, and a value the domain refuses must be
/// reported by the one it came from.
pub(crate) fn first_of<const N: usize>(candidates: [(&'static str, Option<String>); N]) -> Sourced {
    candidates
        .into_iter()
        .find_map(|(field, value)| value.map(|value| (field, value)))
}

/// The customer of a `name`, `email` and `phone` each picked by [`first_of`], validated: a
/// refused value is reported by the payload field it came from, anything else by `fallback`.
pub(crate) fn sourced_customer(
    name: Sourced,
    email: Sourced,
    phone: Sourced,
    fallback: &'static str,
) -> Result<Customer, ParseError> {
    let customer = Customer {
        customer_id: None,
        name: name.as_ref().map(|(_, value)| value.clone()),
        email: email.as_ref().map(|(_, value)| value.clone()),
        phone: phone.as_ref().map(|(_, value)| value.clone()),
        locale: None,
    };
    customer.validate().map_err(|error| {
        let source = match &error {
            PartyError::Email => email.as_ref().map(|(field, _)| *field),
            PartyError::TooLong { field, .. } | PartyError::Nul { field } => match *field {
                "customer.email" => email.as_ref().map(|(source, _)| *source),
                "customer.phone" => phone.as_ref().map(|(source, _)| *source),
                "customer.name" => name.as_ref().map(|(source, _)| *source),
                _ => None,
            },
            PartyError::Country => None,
        };
        ParseError::invalid(source.unwrap_or(fallback), error.to_string())
    })?;
    Ok(customer)
}

/// The platform's paths of the fields an [`Address`] is read from, so that an address the
/// domain refuses is reported by the field the platform sent rather than by orderflow's name.
#[derive(Debug)]
pub(crate) struct AddressPaths {
    /// The address object itself, for a refusal no single field explains.
    pub(crate) whole: &'static str,
    pub(crate) name: &'static str,
    pub(crate) line1: &'static str,
    pub(crate) line2: &'static str,
    pub(crate) city: &'static str,
    pub(crate) region: &'static str,
    pub(crate) postal_code: &'static str,
    pub(crate) country: &'static str,
}

/// The shipping address read field by field, validated; `None` when every field is empty, as
/// platforms send for an order that ships nowhere.
pub(crate) fn validated_address(
    address: Address,
    paths: &AddressPaths,
) -> Result<Option<Address>, ParseError> {
    if address == Address::default() {
        return Ok(None);
    }
    address.validate().map_err(|error| {
        let field = match &error {
            PartyError::TooLong { field, .. } | PartyError::Nul { field } => match *field {
                "shipping_address.name" => paths.name,
                "shipping_address.line1" => paths.line1,
                "shipping_address.line2" => paths.line2,
                "shipping_address.city" => paths.city,
                "shipping_address.region" => paths.region,
                "shipping_address.postal_code" => paths.postal_code,
                _ => paths.whole,
            },
            PartyError::Country => paths.country,
            PartyError::Email => paths.whole,
        };
        ParseError::invalid(field, error.to_string())
    })?;
    Ok(Some(address))
}
