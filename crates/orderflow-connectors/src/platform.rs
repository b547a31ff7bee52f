//! The storefront platforms orderflow takes orders from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Shopify,
    Woocommerce,
    Jumpseller,
    Vtex,
    Prestashop,
    Magento,
    /// A home-made shop posting the canonical order, signed per Standard Webhooks.
    Custom,
}

impl Platform {
    pub const ALL: [Platform; 7] = [
        Platform::Shopify,
        Platform::Woocommerce,
        Platform::Jumpseller,
        Platform::Vtex,
        Platform::Prestashop,
        Platform::Magento,
        Platform::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Shopify => "shopify",
            Platform::Woocommerce => "woocommerce",
            Platform::Jumpseller => "jumpseller",
            Platform::Vtex => "vtex",
            Platform::Prestashop => "prestashop",
            Platform::Magento => "magento",
            Platform::Custom => "custom",
        }
    }

    /// Whether the platform pushes orders to `POST /webhooks/{platform}/{store_id}`;
    /// PrestaShop and Magento have no outbound webhooks and are only pulled from.
    pub fn pushes(self) -> bool {
        !matches!(self, Platform::Prestashop | Platform::Magento)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown platform {0:?}; expected one of shopify, woocommerce, jumpseller, vtex, prestashop, magento, custom"
)]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|platform| platform.as_str() == text)
            .ok_or_else(|| UnknownPlatform(text.to_owned()))
    }
}
