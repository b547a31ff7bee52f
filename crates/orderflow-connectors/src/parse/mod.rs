//! One parser per platform, each from the platform's payload bytes to an [`IncomingOrder`].
//!
//! Parsers never panic, whatever the bytes (each platform's `tests/<platform>.rs` has proptest
//! fuzz properties over arbitrary and mutated payloads), and never read money through a float:
//! decimal strings and JSON numbers are taken as written.

use orderflow_domain::money::Currency;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::incoming::IncomingOrder;
use crate::platform::Platform;

pub mod country;
pub mod custom;
mod fields;
pub mod jumpseller;
pub mod magento;
pub mod prestashop;
pub mod shopify;
pub mod vtex;
pub mod woocommerce;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a valid payload at {path}: {message}")]
    Json { path: String, message: String },
    #[error("not valid XML: {0}")]
    Xml(String),
    #[error("{0} is missing")]
    Missing(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A deletion notice (Shopify's `orders/delete`) names the order and nothing else: no
    /// currency, lines or times, so it cannot become an [`IncomingOrder`]. Its own variant
    /// so that intake can cancel the order it names, and a failure says what happened
    /// rather than which field is missing first.
    #[error("{platform} deleted order {external_id}; the delivery carries only its id")]
    Deleted {
        platform: Platform,
        external_id: String,
    },
}

impl ParseError {
    pub fn missing(field: impl Into<String>) -> Self {
        ParseError::Missing(field.into())
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Parses the order a delivery of `platform` carries.
///
/// For PrestaShop, whose order refers to its address, customer, country, state and currency
/// by id only, `body` is the envelope the pull connector assembles (see [`prestashop`]).
pub fn parse_order(platform: Platform, body: &[u8]) -> Result<IncomingOrder, ParseError> {
    match platform {
        Platform::Shopify => shopify::parse(body),
        Platform::Woocommerce => woocommerce::parse(body),
        Platform::Jumpseller => jumpseller::parse(body),
        Platform::Vtex => vtex::parse(body),
        Platform::Prestashop => prestashop::parse(body),
        Platform::Magento => magento::parse(body),
        Platform::Custom => custom::parse(body),
    }
}

/// Deserialises JSON, naming the path of the first thing that does not fit.
pub(crate) fn from_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| ParseError::Json {
        path: error.path().to_string(),
        message: error.inner().to_string(),
    })
}

/// A JSON number or numeric string exactly as written, for money and ids that must not pass
/// through a float: `"19.99"`, `19.99`, `820982911946154508`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct Exact(Box<RawValue>);

impl Exact {
    /// The text of the number, without the quotes of a numeric string; `None` for `null`.
    pub(crate) fn text(&self) -> Option<&str> {
        let raw = self.0.get().trim();
        if raw == "null" {
            return None;
        }
        Some(
            raw.strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(raw),
        )
    }

    /// Minor units of `currency`, reading the decimal exactly.
    pub(crate) fn minor(&self, field: &str, currency: Currency) -> Result<i64, ParseError> {
        let text = self.text().ok_or_else(|| ParseError::missing(field))?;
        currency
            .parse_decimal(text)
            .map_err(|error| ParseError::invalid(field, error.to_string()))
    }

    /// An id as its decimal digits (or the string as sent).
    pub(crate) fn id(&self, field: &str) -> Result<String, ParseError> {
        match self.text() {
            Some(text) if !text.is_empty() && !text.contains(['"', '\\']) => Ok(text.to_owned()),
            Some(_) => Err(ParseError::invalid(field, "not an id")),
            None => Err(ParseError::missing(field)),
        }
    }

    /// A whole quantity, at least 1.
    pub(crate) fn quantity(&self, field: &str) -> Result<u32, ParseError> {
        let text = self.text().ok_or_else(|| ParseError::missing(field))?;
        // Magento sends whole quantities as 1.0000 (`qty_ordered`).
        let whole = match text.split_once('.') {
            Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
            Some(_) => return Err(ParseError::invalid(field, "not a whole quantity")),
            None => text,
        };
        whole.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ParseError::invalid(field, format!("{text} is not a quantity of at least 1"))
        })
    }
}

/// Text or `None` for a blank or missing field.
pub(crate) fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The parts that are there, trimmed and joined by `separator`; `None` when none is. Names,
/// street lines and status words arrive in pieces, any of which may be missing or blank.
pub(crate) fn joined<const N: usize>(parts: [Option<&str>; N], separator: &str) -> Option<String> {
    let joined = parts
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(separator);
    (!joined.is_empty()).then_some(joined)
}

/// `first last`, either of which may be missing.
pub(crate) fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    joined([first, last], " ")
}

pub(crate) fn currency(field: &str, text: &str) -> Result<Currency, ParseError> {
    text.parse()
        .map_err(|_| ParseError::invalid(field, format!("{text:?} is not an ISO 4217 currency")))
}
