//! Stock levels and the arithmetic of reservations.
//!
//! Invariant: `0 <= reserved <= on_hand` for every product. [`StockLevel`] cannot be built or
//! changed into a value that breaks it, and the planners below decide what an order may take
//! before the store applies it in one transaction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::id::ProductId;
use crate::order::{OrderLine, OrderLines};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("item_count must be at least 1")]
    Zero,
    #[error("item_count must be at most {max}", max = Quantity::MAX)]
    TooLarge,
}

/// How many units of one product a line asks for: 1 to [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 1_000_000;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for Quantity {
    type Error = QuantityError;
    fn try_from(count: u64) -> Result<Self, Self::Error> {
        match count {
            0 => Err(QuantityError::Zero),
            n if n > u64::from(Self::MAX) => Err(QuantityError::TooLarge),
            n => Ok(Self(n as u32)),
        }
    }
}

impl From<Quantity> for u32 {
    fn from(quantity: Quantity) -> Self {
        quantity.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    #[error("on_hand must not be negative")]
    NegativeOnHand,
    #[error("on_hand cannot drop to {on_hand} while {reserved} units are reserved by open orders")]
    BelowReserved { on_hand: i64, reserved: i64 },
    #[error("stock level out of range")]
    Overflow,
}

/// What a store holds of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevel {
    on_hand: i64,
    reserved: i64,
}

impl StockLevel {
    pub fn new(on_hand: i64, reserved: i64) -> Result<Self, StockError> {
        if on_hand < 0 {
            return Err(StockError::NegativeOnHand);
        }
        if reserved < 0 || reserved > on_hand {
            return Err(StockError::BelowReserved { on_hand, reserved });
        }
        Ok(Self { on_hand, reserved })
    }

    pub fn on_hand(self) -> i64 {
        self.on_hand
    }

    pub fn reserved(self) -> i64 {
        self.reserved
    }

    pub fn available(self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Sets `on_hand` outright, as a stock count or a product update does.
    pub fn with_on_hand(self, on_hand: i64) -> Result<Self, StockError> {
        Self::new(on_hand, self.reserved)
    }

    /// Receives (`delta > 0`) or writes off (`delta < 0`) units.
    pub fn adjusted(self, delta: i64) -> Result<Self, StockError> {
        let on_hand = self
            .on_hand
            .checked_add(delta)
            .ok_or(StockError::Overflow)?;
        Self::new(on_hand, self.reserved)
    }

    /// Holds `units` more for an order; `None` when fewer are available.
    pub fn reserve(self, units: i64) -> Option<Self> {
        let reserved = self.reserved.checked_add(units)?;
        Self::new(self.on_hand, reserved).ok()
    }

    /// Gives back `units` an order held; `None` if it held fewer (a bookkeeping bug).
    pub fn release(self, units: i64) -> Option<Self> {
        Self::new(self.on_hand, self.reserved.checked_sub(units)?).ok()
    }

    /// Turns `units` of reservation into units that left the warehouse.
    pub fn ship(self, units: i64) -> Option<Self> {
        Self::new(
            self.on_hand.checked_sub(units)?,
            self.reserved.checked_sub(units)?,
        )
        .ok()
    }
}

/// A line that could not be reserved in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortfall {
    pub product_id: ProductId,
    pub requested: u32,
    pub available: i64,
}

impl Shortfall {
    /// Units still missing after reserving what was available.
    pub fn missing(&self) -> i64 {
        i64::from(self.requested) - self.available.max(0)
    }
}

/// Why an order cannot be placed or edited as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownProducts(Vec<ProductId>),
    Short(Vec<Shortfall>),
}

/// What placing an order takes from stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationPlan {
    /// Lines reserved now, in the order they were asked for; a partly available line appears
    /// with the available count.
    pub reserve: Vec<OrderLine>,
    /// Lines (or their missing remainder) that wait for stock.
    pub backorder: Vec<Shortfall>,
}

/// Decides what an order reserves given each product's current level (`None`: no such
/// product in the store). All or nothing, unless `allow_partial`, when what is available is
/// reserved and the rest is backordered.
pub fn plan_reservation(
    lines: &OrderLines,
    level_of: impl Fn(&ProductId) -> Option<StockLevel>,
    allow_partial: bool,
) -> Result<ReservationPlan, Refusal> {
    let mut unknown = Vec::new();
    let mut reserve = Vec::new();
    let mut short = Vec::new();
    for line in lines.iter() {
        let Some(level) = level_of(&line.product_id) else {
            unknown.push(line.product_id.clone());
            continue;
        };
        let wanted = i64::from(line.quantity.get());
        let available = level.available();
        if available >= wanted {
            reserve.push(line.clone());
            continue;
        }
        short.push(Shortfall {
            product_id: line.product_id.clone(),
            requested: line.quantity.get(),
            available,
        });
        if let Ok(quantity) = Quantity::try_from(available.max(0) as u64) {
            reserve.push(OrderLine {
                product_id: line.product_id.clone(),
                quantity,
            });
        }
    }
    if !unknown.is_empty() {
        return Err(Refusal::UnknownProducts(unknown));
    }
    if !short.is_empty() && !allow_partial {
        return Err(Refusal::Short(short));
    }
    Ok(ReservationPlan {
        reserve,
        backorder: short,
    })
}

/// What replacing an order's lines changes in stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditPlan {
    /// Per product, units to reserve (positive) or release (negative); zero deltas omitted,
    /// sorted by product id so that stores lock rows in one global order.
    pub deltas: Vec<(ProductId, i64)>,
}

/// Decides the stock movements of replacing `current` (the reserved lines the order holds)
/// with `new`, all or nothing. The order's own reservation counts as available to it.
pub fn plan_edit(
    current: &[OrderLine],
    new: &OrderLines,
    level_of: impl Fn(&ProductId) -> Option<StockLevel>,
) -> Result<EditPlan, Refusal> {
    let mut held: HashMap<&ProductId, i64> = HashMap::new();
    for line in current {
        *held.entry(&line.product_id).or_default() += i64::from(line.quantity.get());
    }
    let mut deltas: HashMap<ProductId, i64> = HashMap::new();
    let mut unknown = Vec::new();
    let mut short = Vec::new();
    for line in new.iter() {
        let wanted = i64::from(line.quantity.get());
        let own = held.get(&line.product_id).copied().unwrap_or(0);
        let delta = wanted - own;
        deltas.insert(line.product_id.clone(), delta);
        if delta <= 0 {
            continue;
        }
        match level_of(&line.product_id) {
            None => unknown.push(line.product_id.clone()),
            Some(level) if level.available() < delta => short.push(Shortfall {
                product_id: line.product_id.clone(),
                requested: line.quantity.get(),
                available: level.available() + own,
            }),
            Some(_) => {}
        }
    }
    for (product_id, own) in held {
        deltas.entry(product_id.clone()).or_insert(-own);
    }
    if !unknown.is_empty() {
        return Err(Refusal::UnknownProducts(unknown));
    }
    if !short.is_empty() {
        return Err(Refusal::Short(short));
    }
    let mut deltas: Vec<_> = deltas
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .collect();
    deltas.sort();
    Ok(EditPlan { deltas })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pid(text: &str) -> ProductId {
        text.parse().expect("valid product id")
    }

    fn lines(pairs: &[(&str, u64)]) -> OrderLines {
        let lines = pairs
            .iter()
            .map(|&(p, q)| OrderLine {
                product_id: pid(p),
                quantity: Quantity::try_from(q).expect("valid"),
            })
            .collect();
        OrderLines::new(lines).expect("valid lines")
    }

    fn levels(pairs: &[(&str, i64, i64)]) -> impl Fn(&ProductId) -> Option<StockLevel> {
        let map: HashMap<ProductId, StockLevel> = pairs
            .iter()
            .map(|&(p, on_hand, reserved)| {
                (pid(p), StockLevel::new(on_hand, reserved).expect("valid"))
            })
            .collect();
        move |id| map.get(id).copied()
    }

    #[test]
    fn quantities_must_be_between_one_and_a_million() {
        assert_eq!(Quantity::try_from(0), Err(QuantityError::Zero));
        assert_eq!(Quantity::try_from(1_000_001), Err(QuantityError::TooLarge));
        assert_eq!(Quantity::try_from(7).map(Quantity::get), Ok(7));
    }

    #[test]
    fn stock_levels_refuse_to_break_the_invariant() {
        assert_eq!(StockLevel::new(-1, 0), Err(StockError::NegativeOnHand));
        assert!(StockLevel::new(5, 6).is_err());
        let level = StockLevel::new(5, 3).expect("valid");
        assert_eq!(
            level.adjusted(-3),
            Err(StockError::BelowReserved {
                on_hand: 2,
                reserved: 3
            })
        );
        assert_eq!(level.reserve(3), None);
        assert_eq!(level.reserve(2).map(StockLevel::available), Some(0));
        assert_eq!(level.release(4), None);
        assert_eq!(
            level.ship(3).map(|l| (l.on_hand(), l.reserved())),
            Some((2, 0))
        );
    }

    #[test]
    fn an_order_is_reserved_in_full_or_refused_naming_every_short_line() {
        let stock = levels(&[("a", 10, 8), ("b", 5, 0), ("c", 1, 1)]);
        let refusal = plan_reservation(&lines(&[("a", 3), ("b", 5), ("c", 1)]), &stock, false);
        assert_eq!(
            refusal,
            Err(Refusal::Short(vec![
                Shortfall {
                    product_id: pid("a"),
                    requested: 3,
                    available: 2
                },
                Shortfall {
                    product_id: pid("c"),
                    requested: 1,
                    available: 0
                },
            ]))
        );
        let plan = plan_reservation(&lines(&[("b", 5)]), &stock, false).expect("fits");
        assert_eq!(
            plan.reserve,
            lines(&[("b", 5)]).iter().cloned().collect::<Vec<_>>()
        );
        assert!(plan.backorder.is_empty());
    }

    #[test]
    fn a_partial_order_reserves_what_is_there_and_backorders_the_rest() {
        let stock = levels(&[("a", 10, 8), ("c", 1, 1)]);
        let plan = plan_reservation(&lines(&[("a", 3), ("c", 1)]), &stock, true).expect("partial");
        assert_eq!(
            plan.reserve,
            lines(&[("a", 2)]).iter().cloned().collect::<Vec<_>>()
        );
        assert_eq!(
            plan.backorder
                .iter()
                .map(Shortfall::missing)
                .collect::<Vec<_>>(),
            vec![1, 1]
        );
    }

    #[test]
    fn unknown_products_are_refused_even_when_partial_is_allowed() {
        let stock = levels(&[("a", 10, 0)]);
        let refusal = plan_reservation(&lines(&[("a", 1), ("ghost", 1)]), &stock, true);
        assert_eq!(refusal, Err(Refusal::UnknownProducts(vec![pid("ghost")])));
    }

    #[test]
    fn an_edit_counts_the_orders_own_reservation_as_available() {
        let current = lines(&[("a", 4), ("b", 1)]);
        let stock = levels(&[("a", 5, 4), ("b", 1, 1), ("c", 3, 0)]);
        let plan =
            plan_edit(current.as_slice(), &lines(&[("a", 5), ("c", 2)]), &stock).expect("fits");
        assert_eq!(
            plan.deltas,
            vec![(pid("a"), 1), (pid("b"), -1), (pid("c"), 2)]
        );
        let refusal = plan_edit(current.as_slice(), &lines(&[("a", 6)]), &stock);
        assert_eq!(
            refusal,
            Err(Refusal::Short(vec![Shortfall {
                product_id: pid("a"),
                requested: 6,
                available: 5
            }]))
        );
    }

    #[derive(Debug, Clone)]
    enum Move {
        Reserve(i64),
        Release(i64),
        Adjust(i64),
        Ship(i64),
    }

    fn moves() -> impl Strategy<Value = Move> {
        prop_oneof![
            (0i64..50).prop_map(Move::Reserve),
            (0i64..50).prop_map(Move::Release),
            (-50i64..50).prop_map(Move::Adjust),
            (0i64..50).prop_map(Move::Ship),
        ]
    }

    proptest! {
        #[test]
        fn no_sequence_of_moves_breaks_zero_le_reserved_le_on_hand(
            start in 0i64..100,
            script in proptest::collection::vec(moves(), 0..64),
        ) {
            let mut level = StockLevel::new(start, 0).expect("valid");
            for step in script {
                let next = match step {
                    Move::Reserve(n) => level.reserve(n),
                    Move::Release(n) => level.release(n),
                    Move::Adjust(n) => level.adjusted(n).ok(),
                    Move::Ship(n) => level.ship(n),
                };
                if let Some(next) = next {
                    level = next;
                }
                prop_assert!(0 <= level.reserved() && level.reserved() <= level.on_hand());
            }
        }

        #[test]
        fn a_partial_plan_reserves_no_more_than_available_and_loses_no_unit(
            stock in proptest::collection::vec((0i64..20, 0i64..20), 1..6),
            wanted in proptest::collection::vec(1u64..30, 1..6),
        ) {
            let n = stock.len().min(wanted.len());
            let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
            let table: HashMap<ProductId, StockLevel> = (0..n)
                .map(|i| {
                    let (a, b) = stock[i];
                    (pid(&names[i]), StockLevel::new(a + b, b).expect("valid"))
                })
                .collect();
            let asked = OrderLines::new(
                (0..n)
                    .map(|i| OrderLine { product_id: pid(&names[i]), quantity: Quantity::try_from(wanted[i]).expect("valid") })
                    .collect(),
            ).expect("valid");
            let plan = plan_reservation(&asked, |id| table.get(id).copied(), true).expect("partial never refuses known products");
            for line in asked.iter() {
                let level = table[&line.product_id];
                let reserved: i64 = plan.reserve.iter().filter(|l| l.product_id == line.product_id).map(|l| i64::from(l.quantity.get())).sum();
                let waiting: i64 = plan.backorder.iter().filter(|s| s.product_id == line.product_id).map(Shortfall::missing).sum();
                prop_assert!(reserved <= level.available());
                prop_assert_eq!(reserved + waiting, i64::from(line.quantity.get()));
            }
        }
    }
}
