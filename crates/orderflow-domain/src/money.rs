//! Money in integer minor units with an ISO 4217 currency; never floating point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be a three-letter ISO 4217 code such as EUR")]
    Currency,
    #[error("amount must not be negative")]
    Negative,
    #[error("{0:?} is not a decimal amount")]
    Decimal(String),
    #[error("{0:?} is too large an amount")]
    Overflow(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("built only from ASCII letters")
    }

    /// Digits after the decimal point in this currency's minor unit (ISO 4217): 2 unless the
    /// currency is one of the few with none (CLP, JPY, …) or three (BHD, KWD, …).
    pub fn exponent(&self) -> u32 {
        const NONE: [&str; 16] = [
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND",
            "VUV", "XAF", "XOF", "XPF",
        ];
        const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
        let code = self.as_str();
        if NONE.contains(&code) {
            0
        } else if THREE.contains(&code) {
            3
        } else {
            2
        }
    }

    /// Parses a decimal amount written in major units ("19.99", "-3", "12.500000") into minor
    /// units exactly, never through floating point. Digits beyond the currency's exponent are
    /// rounded half away from zero, as shops that compute tax-inclusive prices to six places
    /// (PrestaShop) expect their totals to come out.
    pub fn parse_decimal(&self, text: &str) -> Result<i64, MoneyError> {
        parse_decimal(text, self.exponent())
    }
}

fn parse_decimal(text: &str, exponent: u32) -> Result<i64, MoneyError> {
    let invalid = || MoneyError::Decimal(text.to_owned());
    let overflow = || MoneyError::Overflow(text.to_owned());
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(invalid());
    }
    let exponent = exponent as usize;
    let mut minor: i64 = 0;
    for digit in whole.bytes().chain(
        fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(exponent),
    ) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(digit - b'0')))
            .ok_or_else(overflow)?;
    }
    if fraction.len() > exponent && fraction.as_bytes()[exponent] >= b'5' {
        minor = minor.checked_add(1).ok_or_else(overflow)?;
    }
    Ok(if negative { -minor } else { minor })
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(MoneyError::Currency),
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-negative amount of minor units (cents, öre, yen) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        code.parse().expect("a valid code")
    }

    #[test]
    fn decimal_amounts_become_minor_units_exactly() {
        let eur = currency("EUR");
        for (text, minor) in [
            ("19.99", 1999),
            ("0.1", 10),
            ("12.500000", 1250),
            ("3", 300),
            ("-4.05", -405),
            ("199.0", 19900),
            ("1.005", 101),
            ("1.004999", 100),
            ("92233720368547758.07", i64::MAX),
        ] {
            assert_eq!(eur.parse_decimal(text), Ok(minor), "{text}");
        }
        assert_eq!(currency("CLP").parse_decimal("1990.00"), Ok(1990));
        assert_eq!(currency("KWD").parse_decimal("1.5"), Ok(1500));
    }

    #[test]
    fn what_is_not_a_decimal_amount_is_refused() {
        let eur = currency("EUR");
        for text in ["", ".", "1e3", "1,50", "NaN", "--1", "1.2.3", " "] {
            assert!(
                matches!(eur.parse_decimal(text), Err(MoneyError::Decimal(_))),
                "{text:?}"
            );
        }
        assert!(matches!(
            eur.parse_decimal("92233720368547758.08"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert_eq!(
            "EUR".parse::<Currency>().map(|c| c.to_string()),
            Ok("EUR".to_owned())
        );
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert_eq!(bad.parse::<Currency>(), Err(MoneyError::Currency), "{bad}");
        }
    }

    #[test]
    fn negative_amounts_are_refused() {
        let eur = "EUR".parse().expect("valid");
        assert_eq!(Money::new(-1, eur), Err(MoneyError::Negative));
        assert_eq!(Money::new(1999, eur).map(|m| m.minor()), Ok(1999));
    }
}
