//! Identifiers. Orders get prefixed, time-ordered ids minted here; stores, products and
//! customers are named by the merchant and only validated.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be 1 to {max} characters long")]
    Length { kind: &'static str, max: usize },
    #[error("{kind} may contain only letters, digits, '-', '_', '.' and ':'")]
    Charset { kind: &'static str },
    #[error("an order id looks like ord_ followed by 26 base-32 characters")]
    OrderIdFormat,
}

/// Crockford's base-32 alphabet: sortable as ASCII, no I, L, O or U to misread.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `ord_` followed by 26 Crockford base-32 characters encoding 48 bits of milliseconds since the
/// Unix epoch and 80 random bits, so that ids sort by creation time (newest-first listings and
/// cursors are plain comparisons) and never collide in practice across nodes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);

impl OrderId {
    const PREFIX: &'static str = "ord_";

    /// Mints an id from the creation time and 80 bits of caller-supplied randomness (the upper
    /// 48 bits of `random` are ignored).
    pub fn mint(unix_millis: u64, random: u128) -> Self {
        Self(time_ordered_id(Self::PREFIX, unix_millis, random))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `prefix` and 26 Crockford base-32 digits of 48 bits of milliseconds then 80 random bits:
/// ids that sort by creation time as text, so a time window is a range of ids. Also used for
/// deliveries (`dlv_`) and forwards (`fwd_`).
pub fn time_ordered_id(prefix: &str, unix_millis: u64, random: u128) -> String {
    let value: u128 =
        (u128::from(unix_millis & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
    let mut text = String::with_capacity(prefix.len() + 26);
    text.push_str(prefix);
    for i in (0..26).rev() {
        let digit = ((value >> (i * 5)) & 0x1F) as usize;
        text.push(char::from(CROCKFORD[digit]));
    }
    text
}

impl FromStr for OrderId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text
            .strip_prefix(Self::PREFIX)
            .ok_or(IdError::OrderIdFormat)?;
        // 26 base-32 digits hold 130 bits; the first digit may only carry the top 3 of 128.
        let first_ok = body
            .as_bytes()
            .first()
            .is_some_and(|b| (b'0'..=b'7').contains(b));
        if body.len() != 26 || !first_ok || !body.bytes().all(|b| CROCKFORD.contains(&b)) {
            return Err(IdError::OrderIdFormat);
        }
        Ok(Self(text.to_owned()))
    }
}

impl TryFrom<String> for OrderId {
    type Error = IdError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> Self {
        id.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn validate_name(kind: &'static str, text: &str, max: usize) -> Result<(), IdError> {
    if text.is_empty() || text.len() > max {
        return Err(IdError::Length { kind, max });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if !text.chars().all(allowed) {
        return Err(IdError::Charset { kind });
    }
    Ok(())
}

macro_rules! named_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                validate_name($kind, text, $max)?;
                Ok(Self(text.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                validate_name($kind, &text, $max)?;
                Ok(Self(text))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

named_id!(
    /// A store (tenant). Every product and order belongs to exactly one.
    StoreId,
    "store_id",
    64
);
named_id!(
    /// A merchant's SKU, unique within its store.
    ProductId,
    "product_id",
    128
);
named_id!(
    /// The merchant's or platform's id of a customer, unique within its store.
    CustomerId,
    "customer_id",
    128
);

impl StoreId {
    /// The built-in store of a single-merchant installation.
    pub fn default_store() -> Self {
        Self("default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_sort_by_creation_time() {
        let earlier = OrderId::mint(1_700_000_000_000, u128::MAX);
        let later = OrderId::mint(1_700_000_000_001, 0);
        assert!(earlier < later);
        assert_eq!(earlier.as_str().len(), 30);
    }

    #[test]
    fn minted_order_ids_parse_back() {
        let id = OrderId::mint(1_763_000_000_000, 0x1234_5678_9abc_def0_1234);
        assert_eq!(id.as_str().parse::<OrderId>(), Ok(id));
    }

    #[test]
    fn malformed_order_ids_are_refused() {
        for text in [
            "",
            "ord_",
            "ord_123",
            "xyz_01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "ord_01ARZ3NDEKTSV4RRFFQ69G5FAU",
        ] {
            assert_eq!(
                text.parse::<OrderId>(),
                Err(IdError::OrderIdFormat),
                "{text}"
            );
        }
        assert_eq!(
            "ord_81ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<OrderId>(),
            Err(IdError::OrderIdFormat)
        );
    }

    #[test]
    fn product_ids_refuse_spaces_and_overlong_names() {
        assert!("SKU-1".parse::<ProductId>().is_ok());
        assert!("sku 1".parse::<ProductId>().is_err());
        assert!("".parse::<ProductId>().is_err());
        assert!("x".repeat(129).parse::<ProductId>().is_err());
    }
}
