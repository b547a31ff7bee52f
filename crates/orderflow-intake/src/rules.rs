//! Per-store intake rules, as data: an ordered list kept in the store's settings and editable
//! over the API. Applying them is a pure function of the incoming order, so that a preview
//! over stored deliveries decides exactly as the worker does.

use std::collections::BTreeMap;

use orderflow_connectors::{IncomingLine, IncomingOrder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// Accept only orders shipping to these region codes.
    AllowRegions { regions: Vec<String> },
    /// Reject orders shipping to these region codes.
    ExcludeRegions { regions: Vec<String> },
    /// Drop these SKUs' lines; reject the order if none remain.
    ExcludeSkus { skus: Vec<String> },
    /// Reject orders with these shipping methods.
    ExcludeShippingMethods { methods: Vec<String> },
    /// Split the order into packages of at most `max_items` units.
    SplitPackages { max_items: u32 },
    /// Put each unit of these SKUs in a package of its own.
    ShipAlone { skus: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rules must be a list of rule objects: {0}")]
    Shape(String),
    #[error("rule {index} ({kind}): {reason}")]
    Invalid {
        index: usize,
        kind: &'static str,
        reason: &'static str,
    },
}

impl Rule {
    fn kind(&self) -> &'static str {
        match self {
            Rule::AllowRegions { .. } => "allow_regions",
            Rule::ExcludeRegions { .. } => "exclude_regions",
            Rule::ExcludeSkus { .. } => "exclude_skus",
            Rule::ExcludeShippingMethods { .. } => "exclude_shipping_methods",
            Rule::SplitPackages { .. } => "split_packages",
            Rule::ShipAlone { .. } => "ship_alone",
        }
    }
}

/// Reads and checks a store's rules.
pub fn parse_rules(value: &serde_json::Value) -> Result<Vec<Rule>, RuleError> {
    let rules: Vec<Rule> =
        serde_json::from_value(value.clone()).map_err(|e| RuleError::Shape(e.to_string()))?;
    for (index, rule) in rules.iter().enumerate() {
        let invalid = |reason| RuleError::Invalid {
            index,
            kind: rule.kind(),
            reason,
        };
        match rule {
            Rule::AllowRegions { regions } | Rule::ExcludeRegions { regions }
                if regions.is_empty() =>
            {
                return Err(invalid("regions must not be empty"));
            }
            Rule::ExcludeSkus { skus } | Rule::ShipAlone { skus } if skus.is_empty() => {
                return Err(invalid("skus must not be empty"));
            }
            Rule::ExcludeShippingMethods { methods } if methods.is_empty() => {
                return Err(invalid("methods must not be empty"));
            }
            Rule::SplitPackages { max_items: 0 } => {
                return Err(invalid("max_items must be at least 1"));
            }
            _ => {}
        }
    }
    Ok(rules)
}

/// A package of the order: the units of each SKU (or item id) that travel together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub items: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Accept {
        /// The order's lines after the rules that drop lines.
        lines: Vec<IncomingLine>,
        /// More than one when a rule split the order.
        packages: Vec<Package>,
        /// What each rule that acted did, for the timeline and the inbox.
        notes: Vec<String>,
    },
    Reject {
        rule: &'static str,
        reason: String,
    },
}

/// Why a region rule refuses an order shipping to `region`, if it does. Orders placed over the
/// API are held to the same region rules as storefront orders.
pub fn refuses_region(rule: &Rule, region: Option<&str>) -> Option<String> {
    match rule {
        Rule::AllowRegions { regions }
            if !region.is_some_and(|r| regions.iter().any(|a| a == r)) =>
        {
            Some(format!(
                "shipping region {} is not among {}",
                region.unwrap_or("(none)"),
                regions.join(", ")
            ))
        }
        Rule::ExcludeRegions { regions } => region
            .filter(|r| regions.iter().any(|x| x == r))
            .map(|r| format!("shipping region {r} is excluded")),
        _ => None,
    }
}

/// Applies `rules` in order; the first rule that rejects decides.
pub fn apply(rules: &[Rule], order: &IncomingOrder) -> Decision {
    let region = order
        .shipping_address
        .as_ref()
        .and_then(|a| a.region.as_deref());
    let mut lines = order.lines.clone();
    let mut notes = Vec::new();
    let mut max_items = None;
    let mut alone: Vec<&str> = Vec::new();
    for rule in rules {
        match rule {
            Rule::AllowRegions { .. } | Rule::ExcludeRegions { .. } => {
                if let Some(reason) = refuses_region(rule, region) {
                    return Decision::Reject {
                        rule: rule.kind(),
                        reason,
                    };
                }
            }
            Rule::ExcludeSkus { skus } => {
                let before = lines.len();
                let mut dropped = Vec::new();
                lines.retain(|line| match line.sku.as_deref() {
                    Some(sku) if skus.iter().any(|x| x == sku) => {
                        dropped.push(sku.to_owned());
                        false
                    }
                    _ => true,
                });
                if lines.is_empty() {
                    return Decision::Reject {
                        rule: rule.kind(),
                        reason: format!("every line is an excluded SKU ({})", dropped.join(", ")),
                    };
                }
                if lines.len() < before {
                    notes.push(format!("exclude_skus dropped {}", dropped.join(", ")));
                }
            }
            Rule::ExcludeShippingMethods { methods } => {
                if let Some(method) = order
                    .shipping_method
                    .as_deref()
                    .filter(|m| methods.iter().any(|x| x == m))
                {
                    return Decision::Reject {
                        rule: rule.kind(),
                        reason: format!("shipping method {method} is excluded"),
                    };
                }
            }
            Rule::SplitPackages { max_items: n } => max_items = Some(*n),
            Rule::ShipAlone { skus } => alone.extend(skus.iter().map(String::as_str)),
        }
    }
    let packages = pack(&lines, max_items, &alone);
    if packages.len() > 1 {
        notes.push(format!("split into {} packages", packages.len()));
    }
    Decision::Accept {
        lines,
        packages,
        notes,
    }
}

/// Units of `ship_alone` SKUs one per package, then the rest filled up to `max_items` units.
fn pack(lines: &[IncomingLine], max_items: Option<u32>, alone: &[&str]) -> Vec<Package> {
    let mut packages = Vec::new();
    let mut current = Package {
        items: BTreeMap::new(),
    };
    let mut count = 0u32;
    for line in lines {
        let key = line.product_key().unwrap_or("unknown").to_owned();
        if line.sku.as_deref().is_some_and(|sku| alone.contains(&sku)) {
            for _ in 0..line.quantity {
                packages.push(Package {
                    items: BTreeMap::from([(key.clone(), 1)]),
                });
            }
            continue;
        }
        let mut remaining = line.quantity;
        while remaining > 0 {
            let room = max_items.map_or(remaining, |max| max - count);
            let taken = remaining.min(room);
            *current.items.entry(key.clone()).or_default() += taken;
            count += taken;
            remaining -= taken;
            if max_items.is_some_and(|max| count == max) {
                packages.push(std::mem::replace(
                    &mut current,
                    Package {
                        items: BTreeMap::new(),
                    },
                ));
                count = 0;
            }
        }
    }
    if !current.items.is_empty() || packages.is_empty() {
        packages.push(current);
    }
    packages
}

#[cfg(test)]
mod tests {
    use orderflow_connectors::{Platform, PlatformState, Totals};
    use orderflow_domain::party::{Address, Customer};
    use time::macros::datetime;

    use super::*;

    fn line(sku: &str, quantity: u32) -> IncomingLine {
        IncomingLine {
            sku: Some(sku.into()),
            item_id: None,
            name: None,
            quantity,
            unit_price_minor: 1000,
        }
    }

    fn order(region: &str, method: &str, lines: Vec<IncomingLine>) -> IncomingOrder {
        IncomingOrder {
            platform: Platform::Jumpseller,
            external_id: "1".into(),
            number: None,
            state: PlatformState::Paid,
            platform_status: "paid".into(),
            customer: Customer::default(),
            shipping_address: Some(Address {
                region: Some(region.into()),
                country: Some("CL".into()),
                ..Address::default()
            }),
            lines,
            shipping_method: Some(method.into()),
            currency: "CLP".parse().expect("a currency"),
            totals: Totals::default(),
            created_at: datetime!(2026-11-22 10:00 UTC),
            updated_at: datetime!(2026-11-22 10:00 UTC),
        }
    }

    fn rules(json: serde_json::Value) -> Vec<Rule> {
        parse_rules(&json).expect("valid rules")
    }

    #[test]
    fn region_rules_allow_or_exclude_by_the_shipping_region_code() {
        let santiago = order("RM", "express", vec![line("A", 1)]);
        let valparaiso = order("VS", "express", vec![line("A", 1)]);
        let only_rm = rules(serde_json::json!([{"kind": "allow_regions", "regions": ["RM"]}]));
        assert!(matches!(
            apply(&only_rm, &santiago),
            Decision::Accept { .. }
        ));
        assert_eq!(
            apply(&only_rm, &valparaiso),
            Decision::Reject {
                rule: "allow_regions",
                reason: "shipping region VS is not among RM".into()
            }
        );
        let not_rm = rules(serde_json::json!([{"kind": "exclude_regions", "regions": ["RM"]}]));
        assert_eq!(
            apply(&not_rm, &santiago),
            Decision::Reject {
                rule: "exclude_regions",
                reason: "shipping region RM is excluded".into()
            }
        );
    }

    #[test]
    fn excluded_skus_are_dropped_and_an_order_of_nothing_else_is_rejected() {
        let rules = rules(serde_json::json!([{"kind": "exclude_skus", "skus": ["GIFT"]}]));
        let mixed = order("RM", "express", vec![line("A", 1), line("GIFT", 1)]);
        let Decision::Accept { lines, notes, .. } = apply(&rules, &mixed) else {
            panic!("accepted");
        };
        assert_eq!(lines, vec![line("A", 1)]);
        assert_eq!(notes, vec!["exclude_skus dropped GIFT".to_owned()]);
        let only_gift = order("RM", "express", vec![line("GIFT", 2)]);
        assert!(matches!(
            apply(&rules, &only_gift),
            Decision::Reject {
                rule: "exclude_skus",
                ..
            }
        ));
    }

    #[test]
    fn an_excluded_shipping_method_rejects_the_order() {
        let rules = rules(serde_json::json!([
            {"kind": "exclude_shipping_methods", "methods": ["pickup"]}
        ]));
        assert!(matches!(
            apply(&rules, &order("RM", "pickup", vec![line("A", 1)])),
            Decision::Reject { reason, .. } if reason == "shipping method pickup is excluded"
        ));
    }

    #[test]
    fn packages_hold_at_most_max_items_and_ship_alone_units_travel_by_themselves() {
        let rules = rules(serde_json::json!([
            {"kind": "split_packages", "max_items": 2},
            {"kind": "ship_alone", "skus": ["TV"]}
        ]));
        let Decision::Accept {
            packages, notes, ..
        } = apply(
            &rules,
            &order(
                "RM",
                "express",
                vec![line("A", 3), line("TV", 2), line("B", 1)],
            ),
        )
        else {
            panic!("accepted");
        };
        let contents: Vec<Vec<(&str, u32)>> = packages
            .iter()
            .map(|p| p.items.iter().map(|(k, v)| (k.as_str(), *v)).collect())
            .collect();
        assert_eq!(
            contents,
            vec![
                vec![("A", 2)],
                vec![("TV", 1)],
                vec![("TV", 1)],
                vec![("A", 1), ("B", 1)],
            ]
        );
        assert_eq!(notes, vec!["split into 4 packages".to_owned()]);
    }

    #[test]
    fn malformed_rules_are_refused_with_their_position() {
        assert!(matches!(
            parse_rules(&serde_json::json!([{"kind": "split_packages", "max_items": 0}])),
            Err(RuleError::Invalid { index: 0, .. })
        ));
        assert!(matches!(
            parse_rules(&serde_json::json!([{"kind": "teleport"}])),
            Err(RuleError::Shape(_))
        ));
        assert!(matches!(
            parse_rules(&serde_json::json!({"kind": "allow_regions"})),
            Err(RuleError::Shape(_))
        ));
    }
}
