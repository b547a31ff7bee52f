//! The timestamp spellings of the platforms (PLATFORMS.md §10), read into UTC instants.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::parse::ParseError;

/// Reads RFC 3339 with an offset (Shopify, VTEX's 7-digit fractions), or a zoneless
/// `YYYY-MM-DD[T ]HH:MM:SS[.fff]` optionally followed by ` UTC` (WooCommerce `*_gmt`,
/// Magento, Jumpseller), which is taken as UTC. PrestaShop's shop-local times are read the
/// same way: the webservice does not say which zone the shop is in.
pub fn parse(field: &'static str, text: &str) -> Result<OffsetDateTime, ParseError> {
    let invalid = || ParseError::invalid(field, format!("{text:?} is not a timestamp"));
    if let Ok(instant) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(instant.to_offset(UtcOffset::UTC));
    }
    let zoneless = text
        .strip_suffix(" UTC")
        .unwrap_or(text)
        .replacen(' ', "T", 1);
    let (seconds, fraction) = match zoneless.split_once('.') {
        Some((seconds, fraction)) => (seconds, Some(fraction)),
        None => (zoneless.as_str(), None),
    };
    let local = PrimitiveDateTime::parse(
        seconds,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .map_err(|_| invalid())?;
    let nanos = match fraction {
        None => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(9)
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')),
        Some(_) => return Err(invalid()),
    };
    local
        .replace_nanosecond(nanos)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| invalid())
}

/// Like [`parse`], but PrestaShop's `0000-00-00 00:00:00` and empty strings mean "none".
pub fn parse_optional(
    field: &'static str,
    text: &str,
) -> Result<Option<OffsetDateTime>, ParseError> {
    if text.is_empty() || text.starts_with("0000-00-00") {
        return Ok(None);
    }
    parse(field, text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> String {
        parse("t", text)
            .expect("a timestamp")
            .format(&Rfc3339)
            .expect("formattable")
    }

    #[test]
    fn every_platform_spelling_reads_as_the_same_kind_of_instant() {
        assert_eq!(utc("2008-01-10T11:00:00-05:00"), "2008-01-10T16:00:00Z");
        assert_eq!(utc("2017-03-22T16:28:08"), "2017-03-22T16:28:08Z");
        assert_eq!(utc("2017-08-21 22:22:19"), "2017-08-21T22:22:19Z");
        assert_eq!(utc("2023-02-10 13:56:35 UTC"), "2023-02-10T13:56:35Z");
        assert_eq!(
            utc("2025-01-01 10:18:51.829 UTC"),
            "2025-01-01T10:18:51.829Z"
        );
        assert_eq!(
            utc("2019-02-06T20:46:11.7010747+00:00"),
            "2019-02-06T20:46:11.7010747Z"
        );
    }

    #[test]
    fn prestashop_zero_dates_mean_none_and_garbage_is_refused() {
        assert_eq!(parse_optional("t", "0000-00-00 00:00:00"), Ok(None));
        assert!(parse("t", "yesterday").is_err());
        assert!(parse("t", "2020-01-01 10:00:00.x").is_err());
    }
}
