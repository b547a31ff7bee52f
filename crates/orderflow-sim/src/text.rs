//! How the platforms spell things: JSON written in the platform's field order with numbers
//! exactly as a platform prints them, money in each platform's notation, timestamps in each
//! platform's format, and PrestaShop's CDATA-wrapped XML.
//!
//! Money never passes through a float: amounts are integer minor units, printed digit by digit.

use std::fmt::Write as _;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A JSON document as a platform writes it. `serde_json::Value` would sort the keys and could
/// only hold a decimal such as `12.5` as a float; this keeps both as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number token, written as is: `12`, `12.5`, `820982911946154508`.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }

    pub(crate) fn number(text: impl Into<String>) -> Json {
        Json::Number(text.into())
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write(&mut out);
        out.into_bytes()
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Json::Number(text) => out.push_str(text),
            Json::String(text) => write_string(out, text),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&str> for Json {
    fn from(text: &str) -> Self {
        Json::String(text.to_owned())
    }
}

impl From<String> for Json {
    fn from(text: String) -> Self {
        Json::String(text)
    }
}

impl From<&String> for Json {
    fn from(text: &String) -> Self {
        Json::String(text.clone())
    }
}

impl From<bool> for Json {
    fn from(value: bool) -> Self {
        Json::Bool(value)
    }
}

impl From<u64> for Json {
    fn from(value: u64) -> Self {
        Json::Number(value.to_string())
    }
}

impl From<u32> for Json {
    fn from(value: u32) -> Self {
        Json::Number(value.to_string())
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Self {
        Json::Number(value.to_string())
    }
}

impl From<usize> for Json {
    fn from(value: usize) -> Self {
        Json::Number(value.to_string())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(value: Option<T>) -> Self {
        value.map_or(Json::Null, Into::into)
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(items: Vec<T>) -> Self {
        Json::Array(items.into_iter().map(Into::into).collect())
    }
}

/// `minor` as a decimal with exactly `exponent` places: `1250` → `12.50`, `-5` → `-0.05`, and
/// for a currency without minor units (CLP) `12990` → `12990`.
pub(crate) fn decimal(minor: i64, exponent: u32) -> String {
    decimal_places(minor, exponent, exponent)
}

/// `minor` (in units of 10^-exponent) written with `places` decimals, padding with zeros:
/// PrestaShop's six places, `12.500000`.
pub(crate) fn decimal_places(minor: i64, exponent: u32, places: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    let scale = 10u64.pow(exponent);
    let whole = magnitude / scale;
    let fraction = magnitude % scale;
    if places == 0 {
        return format!("{sign}{whole}");
    }
    let mut digits = if exponent == 0 {
        String::new()
    } else {
        format!("{fraction:0width$}", width = exponent as usize)
    };
    while digits.len() < places as usize {
        digits.push('0');
    }
    format!("{sign}{whole}.{digits}")
}

/// A JSON number as PHP prints a float (WooCommerce's line `price`, Magento's amounts): the
/// shortest form, `12.5`, and a whole amount without a point, `3`.
pub(crate) fn php_number(minor: i64, exponent: u32) -> Json {
    let text = decimal(minor, exponent);
    let trimmed = match text.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_owned()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => text,
    };
    Json::Number(trimmed)
}

/// A JSON number as Ruby prints a float (Jumpseller): shortest form, but always with a
/// point, `399.0`.
pub(crate) fn ruby_number(minor: i64, exponent: u32) -> Json {
    match php_number(minor, exponent) {
        Json::Number(text) if !text.contains('.') => Json::Number(format!("{text}.0")),
        other => other,
    }
}

const SECONDS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
const SPACED: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const OFFSET: &[BorrowedFormatItem<'_>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);
const SEVEN_DIGITS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]+00:00");
const MILLIS_UTC: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC");
const SECONDS_UTC: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

fn format(at: OffsetDateTime, description: &[BorrowedFormatItem<'_>]) -> String {
    // Every instant the generator makes is in years 1..9999, which every description formats;
    // an instant outside them is shown by `time`'s own spelling rather than failing a render.
    at.format(description).unwrap_or_else(|_| at.to_string())
}

/// Shopify: ISO 8601 in the shop's zone with its offset, `2008-01-10T11:00:00-05:00`.
pub(crate) fn shopify_time(at: OffsetDateTime, offset: UtcOffset) -> String {
    format(at.to_offset(offset), OFFSET)
}

/// WooCommerce `*_gmt` (UTC) and the plain site-local twins: `2017-03-22T19:28:08`, no zone.
pub(crate) fn zoneless_t(at: OffsetDateTime, offset: UtcOffset) -> String {
    format(at.to_offset(offset), SECONDS)
}

/// Magento (UTC) and PrestaShop (shop-local): `2017-08-21 22:22:19`.
pub(crate) fn spaced(at: OffsetDateTime) -> String {
    format(at.to_offset(UtcOffset::UTC), SPACED)
}

/// VTEX's .NET spelling, seven fractional digits: `2019-02-06T20:46:11.7010747+00:00`.
pub(crate) fn vtex_time(at: OffsetDateTime) -> String {
    format(at.to_offset(UtcOffset::UTC), SEVEN_DIGITS)
}

/// Jumpseller's order times, `2023-02-10 13:56:35 UTC`.
pub(crate) fn jumpseller_time(at: OffsetDateTime) -> String {
    format(at.to_offset(UtcOffset::UTC), SECONDS_UTC)
}

/// Jumpseller's `Jumpseller-Triggered-At`, `2025-01-01 10:18:51.829 UTC`.
pub(crate) fn jumpseller_triggered_at(at: OffsetDateTime) -> String {
    format(at.to_offset(UtcOffset::UTC), MILLIS_UTC)
}

/// RFC 3339 in UTC (Standard Webhooks, Shopify's `X-Shopify-Triggered-At`).
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// `text` as PrestaShop writes element text: inside CDATA, with a `]]>` in the text split
/// across two sections so that it cannot end the first one.
pub(crate) fn cdata(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// Text for an XML attribute value or element content without CDATA.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A random identifier in the 8-4-4-4-12 hex form of a UUID, as Shopify's webhook and event
/// ids are.
pub(crate) fn uuid_like(random: u128) -> String {
    let hex = format!("{random:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn money_is_written_digit_by_digit_in_each_notation() {
        assert_eq!(decimal(1250, 2), "12.50");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(decimal(12990, 0), "12990");
        assert_eq!(decimal(1234, 3), "1.234");
        assert_eq!(decimal_places(1250, 2, 6), "12.500000");
        assert_eq!(decimal_places(12990, 0, 6), "12990.000000");
        assert_eq!(php_number(1250, 2), Json::number("12.5"));
        assert_eq!(php_number(300, 2), Json::number("3"));
        assert_eq!(php_number(12990, 0), Json::number("12990"));
        assert_eq!(ruby_number(39900, 2), Json::number("399.0"));
        assert_eq!(ruby_number(36920, 2), Json::number("369.2"));
    }

    #[test]
    fn json_keeps_field_order_big_integers_and_escapes_text() {
        let document = Json::object([
            ("id", Json::from(820_982_911_946_154_508u64)),
            ("name", Json::from("Ana \"Q\" \\ \u{1}")),
            ("price", php_number(1250, 2)),
            ("a", Json::Null),
        ]);
        assert_eq!(
            String::from_utf8(document.to_bytes()).expect("UTF-8"),
            r#"{"id":820982911946154508,"name":"Ana \"Q\" \\ \u0001","price":12.5,"a":null}"#
        );
    }

    #[test]
    fn every_platform_time_spelling() {
        let at = datetime!(2024-02-06 20:46:11.701_074_7 UTC);
        let minus_five = UtcOffset::from_hms(-5, 0, 0).expect("an offset");
        assert_eq!(shopify_time(at, minus_five), "2024-02-06T15:46:11-05:00");
        assert_eq!(zoneless_t(at, UtcOffset::UTC), "2024-02-06T20:46:11");
        assert_eq!(spaced(at), "2024-02-06 20:46:11");
        assert_eq!(vtex_time(at), "2024-02-06T20:46:11.7010747+00:00");
        assert_eq!(jumpseller_time(at), "2024-02-06 20:46:11 UTC");
        assert_eq!(jumpseller_triggered_at(at), "2024-02-06 20:46:11.701 UTC");
    }

    #[test]
    fn cdata_cannot_be_closed_by_the_text() {
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        assert_eq!(cdata(""), "");
    }
}
