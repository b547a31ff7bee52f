//! The sender and recipient blocks printed on packing slips and labels.

/// A postal address as it is printed. Unlike the order's `orderflow_domain::Address`, where
/// every field is optional because storefronts send partial data, a document needs the fields
/// that make a parcel deliverable; the caller decides what to do when they are missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartyAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// A province or state code (`RM`, `CA`).
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// Printed as given; an ISO 3166-1 alpha-2 code is expected.
    pub country: String,
}

impl PartyAddress {
    /// The address as printed, one entry per line: name, street lines, "city, region postal",
    /// country. Blank parts leave no empty line behind.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(5);
        push_nonblank(&mut lines, &self.name);
        lines.extend(self.lines_after_name());
        lines
    }

    /// Everything but the name, which labels print in a larger type.
    pub(crate) fn lines_after_name(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(4);
        push_nonblank(&mut lines, &self.line1);
        if let Some(line2) = &self.line2 {
            push_nonblank(&mut lines, line2);
        }
        push_nonblank(&mut lines, &self.locality());
        push_nonblank(&mut lines, &self.country);
        lines
    }

    fn locality(&self) -> String {
        let tail = [self.region.as_deref(), self.postal_code.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        match (self.city.trim(), tail.is_empty()) {
            ("", _) => tail,
            (city, true) => city.to_owned(),
            (city, false) => format!("{city}, {tail}"),
        }
    }
}

fn push_nonblank(lines: &mut Vec<String>, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        lines.push(text.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn santiago() -> PartyAddress {
        PartyAddress {
            name: "Ana Pérez".into(),
            line1: "Av. Providencia 1234".into(),
            line2: Some("Depto 56".into()),
            city: "Santiago".into(),
            region: Some("RM".into()),
            postal_code: Some("7500000".into()),
            country: "CL".into(),
        }
    }

    #[test]
    fn an_address_prints_as_name_street_locality_country() {
        assert_eq!(
            santiago().lines(),
            [
                "Ana Pérez",
                "Av. Providencia 1234",
                "Depto 56",
                "Santiago, RM 7500000",
                "CL"
            ]
        );
    }

    #[test]
    fn blank_optional_parts_leave_no_empty_lines_or_stray_commas() {
        let address = PartyAddress {
            line2: Some("  ".into()),
            region: None,
            postal_code: Some(String::new()),
            ..santiago()
        };
        assert_eq!(
            address.lines(),
            ["Ana Pérez", "Av. Providencia 1234", "Santiago", "CL"]
        );
    }

    #[test]
    fn a_postal_code_without_a_city_still_prints() {
        let address = PartyAddress {
            city: String::new(),
            region: None,
            ..santiago()
        };
        assert_eq!(address.lines()[3], "7500000");
    }
}
