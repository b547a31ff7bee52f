//! The orders the sandbox storefronts sell: one platform-neutral [`SimOrder`] that every
//! platform module writes in its own format, and a seeded [`Generator`] so that a run can be
//! repeated exactly.
//!
//! Orders carry no tax and no discount: every platform puts tax in a different place (inside
//! PrestaShop's prices, beside Shopify's), and an order without it reads back the same
//! everywhere, which is what the parser tests compare.

use orderflow_domain::money::Currency;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Where a sandbox order stands, in words every platform has one of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimStatus {
    /// Placed, payment not taken yet.
    Pending,
    Paid,
    /// Shipped (and paid).
    Fulfilled,
    Cancelled,
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCustomer {
    /// The shop's customer id.
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
}

impl SimCustomer {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAddress {
    pub street: String,
    /// The house number, which VTEX and Jumpseller keep apart from the street.
    pub number: String,
    pub line2: Option<String>,
    pub city: String,
    /// The region's code (`CA`, `RM`, `SP`) and its name (`California`).
    pub region_code: String,
    pub region_name: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl SimAddress {
    /// The first address line as the platforms that have one write it: `Avenida Paulista 1578`.
    pub fn line1(&self) -> String {
        format!("{} {}", self.street, self.number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLine {
    pub product_id: u64,
    pub variant_id: u64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// Minor units of the order's currency, before tax (there is none).
    pub unit_price_minor: i64,
}

impl SimLine {
    pub fn total_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    /// The platform's numeric id; Shopify's exceed 2^53.
    pub id: u64,
    /// The order number the customer sees (`#1001` on Shopify, `000001001` on Magento).
    pub number: u64,
    /// PrestaShop's nine-letter reference.
    pub reference: String,
    pub customer: SimCustomer,
    pub address: SimAddress,
    pub lines: Vec<SimLine>,
    pub currency: Currency,
    /// The shipping method's code, written as every platform's method code or carrier name.
    pub shipping_method: String,
    pub shipping_minor: i64,
    pub status: SimStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl SimOrder {
    pub fn items_minor(&self) -> i64 {
        self.lines.iter().map(SimLine::total_minor).sum()
    }

    pub fn total_minor(&self) -> i64 {
        self.items_minor() + self.shipping_minor
    }

    /// The order changed on the platform at `at`: its status and its modification time.
    pub fn change(&mut self, status: SimStatus, at: OffsetDateTime) {
        self.status = status;
        self.updated_at = at;
    }

    /// When it was paid, if it was: a platform records the payment time as a field of its own.
    pub fn paid_at(&self) -> Option<OffsetDateTime> {
        match self.status {
            SimStatus::Paid | SimStatus::Fulfilled | SimStatus::Refunded => Some(self.updated_at),
            SimStatus::Pending | SimStatus::Cancelled => None,
        }
    }
}

/// A country the generator ships to: its alpha-3 code (VTEX), its shop currency, and a few
/// regions each with a city and postal code that belong together.
#[derive(Debug, Clone, Copy)]
pub struct Country {
    pub alpha2: &'static str,
    pub alpha3: &'static str,
    pub name: &'static str,
    pub currency: &'static str,
    /// `(code, name, city, postal code)`.
    pub regions: &'static [(&'static str, &'static str, &'static str, &'static str)],
    pub streets: &'static [&'static str],
}

pub const COUNTRIES: &[Country] = &[
    Country {
        alpha2: "US",
        alpha3: "USA",
        name: "United States",
        currency: "USD",
        regions: &[
            ("CA", "California", "San Francisco", "94103"),
            ("NY", "New York", "Brooklyn", "11201"),
            ("TX", "Texas", "Austin", "78701"),
        ],
        streets: &["Market St", "Oak Ave", "Congress Ave"],
    },
    Country {
        alpha2: "CL",
        alpha3: "CHL",
        name: "Chile",
        currency: "CLP",
        regions: &[
            ("RM", "Región Metropolitana", "Santiago", "8320000"),
            ("VS", "Valparaíso", "Viña del Mar", "2520000"),
            ("BI", "Biobío", "Concepción", "4030000"),
        ],
        streets: &["Av. Providencia", "Calle Valparaíso", "Av. O'Higgins"],
    },
    Country {
        alpha2: "BR",
        alpha3: "BRA",
        name: "Brazil",
        currency: "BRL",
        regions: &[
            ("SP", "São Paulo", "São Paulo", "01310-100"),
            ("RJ", "Rio de Janeiro", "Rio de Janeiro", "22630-011"),
            ("MG", "Minas Gerais", "Belo Horizonte", "30130-010"),
        ],
        streets: &["Avenida Paulista", "Avenida Lúcio Costa", "Rua da Bahia"],
    },
    Country {
        alpha2: "ES",
        alpha3: "ESP",
        name: "Spain",
        currency: "EUR",
        regions: &[
            ("M", "Madrid", "Madrid", "28013"),
            ("B", "Barcelona", "Barcelona", "08001"),
            ("V", "Valencia", "Valencia", "46001"),
        ],
        streets: &["Calle Mayor", "Carrer de Balmes", "Calle de Colón"],
    },
];

/// The country of an alpha-2 code the generator knows.
pub fn country(alpha2: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.alpha2 == alpha2)
}

/// `(sku, name, price in US cents)`. Names have accents and symbols so that encodings are
/// exercised on the way through.
pub const CATALOGUE: &[(&str, &str, i64)] = &[
    ("TEE-ORG-M", "Organic tee – M", 2200),
    ("TEE-ORG-L", "Organic tee – L", 2200),
    ("MUG-ENAMEL", "Enamel mug", 1450),
    ("CAP-WOOL", "Wool cap", 2900),
    ("BOTTLE-750", "Steel bottle 750 ml", 3100),
    ("SOCKS-3PK", "Socks, three-pack", 1599),
    ("TOTE-CANVAS", "Canvas tote", 1800),
    ("LAMP-DESK", "Desk lamp «Nordic»", 8999),
    ("CAFE-250G", "Café de Colombia 250 g", 1250),
    ("BOOK-RUST", "Rust & Ferris: a field guide", 3999),
];

/// `(code, price in US cents)`.
pub const SHIPPING_METHODS: &[(&str, i64)] =
    &[("standard", 500), ("express", 1200), ("next_day", 2000)];

const FIRST_NAMES: &[(&str, &str)] = &[
    ("Lucía", "lucia"),
    ("Mateo", "mateo"),
    ("Sofia", "sofia"),
    ("Liam", "liam"),
    ("Camila", "camila"),
    ("João", "joao"),
    ("Emma", "emma"),
    ("Benjamín", "benjamin"),
    ("Valentina", "valentina"),
    ("Noah", "noah"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("García", "garcia"),
    ("Silva", "silva"),
    ("Smith", "smith"),
    ("Rojas", "rojas"),
    ("Müller", "muller"),
    ("Pereira", "pereira"),
    ("Johnson", "johnson"),
    ("Muñoz", "munoz"),
];

/// A price in US cents, in `currency`'s minor units at a fixed, round rate: the sandbox needs
/// plausible amounts in every exponent, not exchange rates.
pub fn price_in(us_cents: i64, currency: Currency) -> i64 {
    match currency.as_str() {
        "EUR" => us_cents * 92 / 100,
        "BRL" => us_cents * 5,
        // Whole pesos, rounded to tens as Chilean prices are.
        "CLP" => us_cents * 95 / 100 * 10,
        _ => us_cents,
    }
}

/// The first order id by default: as large as Shopify's (its docs' sample is
/// 820982911946154508), beyond 2^53, so that any float on the way shows.
pub const LARGE_FIRST_ID: u64 = 820_982_911_946_154_508;

/// Makes orders from a seed: the same seed gives the same orders, field for field.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: StdRng,
    next_id: u64,
    next_number: u64,
    clock: OffsetDateTime,
    countries: Vec<&'static Country>,
}

impl Generator {
    /// Ids from [`LARGE_FIRST_ID`], numbers from 1001, times from 2025-01-01 UTC, customers
    /// in every country of [`COUNTRIES`].
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_id: LARGE_FIRST_ID,
            next_number: 1001,
            clock: datetime!(2025-01-01 00:00 UTC),
            countries: COUNTRIES.iter().collect(),
        }
    }

    /// Ids from `id` on, for platforms with small ids (PrestaShop, Magento, WooCommerce).
    pub fn first_id(mut self, id: u64) -> Self {
        self.next_id = id;
        self
    }

    /// Orders are placed from `at` on, a minute or so apart.
    pub fn starting_at(mut self, at: OffsetDateTime) -> Self {
        self.clock = at;
        self
    }

    /// Only customers in these countries (alpha-2 codes the generator knows; others are
    /// ignored, and none known keeps every country).
    pub fn countries(mut self, alpha2: &[&str]) -> Self {
        let chosen: Vec<_> = alpha2.iter().filter_map(|code| country(code)).collect();
        if !chosen.is_empty() {
            self.countries = chosen;
        }
        self
    }

    pub fn orders(&mut self, count: usize) -> Vec<SimOrder> {
        (0..count).map(|_| self.order()).collect()
    }

    pub fn order(&mut self) -> SimOrder {
        let id = self.next_id;
        let number = self.next_number;
        self.next_id = self.next_id.wrapping_add(self.rng.random_range(1..=3));
        self.next_number += 1;

        // A tenth of a microsecond is the finest any platform writes (VTEX's seven digits).
        let gap = Duration::seconds(self.rng.random_range(20..=90))
            + Duration::nanoseconds(self.rng.random_range(0..10_000_000) * 100);
        let created_at = self.clock + gap;
        self.clock = created_at;
        let updated_at = created_at + Duration::seconds(self.rng.random_range(0..=30));

        let place = *self
            .countries
            .choose(&mut self.rng)
            .unwrap_or(&&COUNTRIES[0]);
        let currency: Currency = place.currency.parse().unwrap_or_else(|_| usd());
        let (region_code, region_name, city, postal_code) = *place
            .regions
            .choose(&mut self.rng)
            .unwrap_or(&place.regions[0]);
        let street = *place.streets.choose(&mut self.rng).unwrap_or(&"Main St");

        let (first, first_slug) = *FIRST_NAMES.choose(&mut self.rng).unwrap_or(&FIRST_NAMES[0]);
        let (last, last_slug) = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&LAST_NAMES[0]);
        let customer = SimCustomer {
            id: self.rng.random_range(1_000..1_000_000),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: format!(
                "{first_slug}.{last_slug}{}@example.com",
                self.rng.random_range(1..100)
            ),
            phone: self.phone(place.alpha2),
        };
        let address = SimAddress {
            street: street.to_owned(),
            number: self.rng.random_range(1..3000).to_string(),
            line2: self
                .rng
                .random_bool(0.3)
                .then(|| format!("Apt {}", self.rng.random_range(1..60))),
            city: city.to_owned(),
            region_code: region_code.to_owned(),
            region_name: region_name.to_owned(),
            postal_code: postal_code.to_owned(),
            country: place.alpha2.to_owned(),
        };

        let line_count = self.rng.random_range(1..=3);
        let lines = CATALOGUE
            .choose_multiple(&mut self.rng, line_count)
            .map(|&(sku, name, cents)| SimLine {
                product_id: product_id(sku),
                variant_id: product_id(sku) * 10 + 1,
                sku: sku.to_owned(),
                name: name.to_owned(),
                quantity: self.rng.random_range(1..=3),
                unit_price_minor: price_in(cents, currency),
            })
            .collect();
        let (method, shipping_cents) = *SHIPPING_METHODS
            .choose(&mut self.rng)
            .unwrap_or(&SHIPPING_METHODS[0]);
        let status = if self.rng.random_bool(0.7) {
            SimStatus::Paid
        } else {
            SimStatus::Pending
        };
        let reference = (0..9)
            .map(|_| char::from(b'A' + self.rng.random_range(0..26u8)))
            .collect();
        SimOrder {
            id,
            number,
            reference,
            customer,
            address,
            lines,
            currency,
            shipping_method: method.to_owned(),
            shipping_minor: price_in(shipping_cents, currency),
            status,
            created_at,
            updated_at,
        }
    }

    fn phone(&mut self, country: &str) -> String {
        let a = self.rng.random_range(0..10_000);
        let b = self.rng.random_range(0..10_000);
        match country {
            "US" => format!("+1 415 555 {a:04}"),
            "CL" => format!("+56 9 {a:04} {b:04}"),
            "BR" => format!("+55 21 9{a:04}-{b:04}"),
            "ES" => format!("+34 6{:02} {:03} {:03}", a % 100, b % 1000, a % 1000),
            _ => format!("+1 555 {a:04}"),
        }
    }
}

fn usd() -> Currency {
    Currency::try_from("USD".to_owned()).unwrap_or_else(|_| unreachable!("USD is a currency"))
}

/// The id of a record belonging to an order (a line, an address): `order_id × scale + n`,
/// wrapping rather than overflowing for ids near `u64::MAX`, since such ids only need to be
/// stable and distinct within the order.
pub(crate) fn sub_id(order_id: u64, scale: u64, n: usize) -> u64 {
    order_id
        .wrapping_mul(scale)
        .wrapping_add(u64::try_from(n).unwrap_or(u64::MAX))
}

/// A stable product id per SKU, so that every order of a SKU names the same product.
pub fn product_id(sku: &str) -> u64 {
    fnv1a(sku.as_bytes()) % 9_000_000 + 1_000_000
}

/// FNV-1a: stable across runs and platforms, unlike `std`'s hasher, so that ids derived from
/// names stay the same between a listing and a fetch.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_orders_and_another_seed_others() {
        let first = Generator::new(7).orders(20);
        assert_eq!(first, Generator::new(7).orders(20));
        assert_ne!(first, Generator::new(8).orders(20));
    }

    #[test]
    fn orders_are_consistent_and_ids_exceed_what_a_float_holds() {
        let orders = Generator::new(1).orders(50);
        for pair in orders.windows(2) {
            assert!(pair[1].id > pair[0].id);
            assert!(pair[1].created_at > pair[0].created_at);
            assert_eq!(pair[1].number, pair[0].number + 1);
        }
        for order in &orders {
            assert!(order.id > 1 << 53);
            assert!(order.updated_at >= order.created_at);
            assert!(!order.lines.is_empty() && order.lines.len() <= 3);
            assert!(order.lines.iter().all(|l| l.quantity >= 1));
            let place = country(&order.address.country).expect("a known country");
            assert_eq!(order.currency.as_str(), place.currency);
            assert!(
                place
                    .regions
                    .iter()
                    .any(|r| r.0 == order.address.region_code)
            );
            assert_eq!(
                order.total_minor(),
                order.items_minor() + order.shipping_minor
            );
            assert_eq!(order.reference.len(), 9);
        }
    }

    #[test]
    fn countries_and_first_ids_can_be_chosen() {
        let orders = Generator::new(3).first_id(5).countries(&["CL"]).orders(5);
        assert_eq!(orders[0].id, 5);
        assert!(orders.iter().all(|o| o.currency.as_str() == "CLP"));
    }
}
