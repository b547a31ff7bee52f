//! The people and places on an order: the customer and the shipping address.

use serde::{Deserialize, Serialize};

use crate::id::CustomerId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyError {
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("country must be an ISO 3166-1 alpha-2 code such as CL")]
    Country,
    #[error("email must look like name@domain")]
    Email,
    #[error("{field} must not contain the NUL character")]
    Nul { field: &'static str },
}

fn check_len(field: &'static str, value: &Option<String>, max: usize) -> Result<(), PartyError> {
    match value {
        Some(text) if text.chars().count() > max => Err(PartyError::TooLong { field, max }),
        // No database stores NUL in text the same way (PostgreSQL refuses it), so no field has it.
        Some(text) if text.contains('\0') => Err(PartyError::Nul { field }),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub customer_id: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A BCP 47 language tag (`es-CL`) choosing the language of messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl Customer {
    pub fn validate(&self) -> Result<(), PartyError> {
        check_len("customer.name", &self.name, 200)?;
        check_len("customer.email", &self.email, 254)?;
        check_len("customer.phone", &self.phone, 32)?;
        check_len("customer.locale", &self.locale, 35)?;
        if let Some(email) = &self.email {
            let (local, domain) = email.split_once('@').ok_or(PartyError::Email)?;
            if local.is_empty() || domain.is_empty() || domain.contains('@') {
                return Err(PartyError::Email);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// A province or state code (`RM`, `CA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    pub fn validate(&self) -> Result<(), PartyError> {
        check_len("shipping_address.name", &self.name, 200)?;
        check_len("shipping_address.line1", &self.line1, 200)?;
        check_len("shipping_address.line2", &self.line2, 200)?;
        check_len("shipping_address.city", &self.city, 100)?;
        check_len("shipping_address.region", &self.region, 10)?;
        check_len("shipping_address.postal_code", &self.postal_code, 20)?;
        if let Some(country) = &self.country {
            let well_formed = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
            if !well_formed {
                return Err(PartyError::Country);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_with_a_three_letter_country_is_refused() {
        let address = Address {
            country: Some("CHL".into()),
            ..Address::default()
        };
        assert_eq!(address.validate(), Err(PartyError::Country));
    }

    #[test]
    fn no_field_may_contain_nul() {
        let customer = Customer {
            name: Some("Ana\0".into()),
            ..Customer::default()
        };
        assert_eq!(
            customer.validate(),
            Err(PartyError::Nul {
                field: "customer.name"
            })
        );
    }

    #[test]
    fn a_customer_email_needs_an_at_sign() {
        let customer = Customer {
            email: Some("ana.example.com".into()),
            ..Customer::default()
        };
        assert_eq!(customer.validate(), Err(PartyError::Email));
        let customer = Customer {
            email: Some("ana@example.com".into()),
            ..Customer::default()
        };
        assert_eq!(customer.validate(), Ok(()));
    }
}
