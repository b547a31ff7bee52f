//! The order status machine of PRODUCT.md §10, and the points of the fulfilment pipeline's
//! happy path ([`Progress`]) that the system moves an order to.
//!
//! A status change is a [`Transition`], and the only way to build one is
//! [`Transition::of`], whose type parameters must name an edge declared in [`edges!`]: an
//! illegal change such as delivered → pending does not compile. Code that holds a status only
//! at run time matches on it and names the edge it wants for each arm.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Backordered,
    Rejected,
    Paid,
    Fulfilling,
    Shipped,
    InTransit,
    OutForDelivery,
    Delivered,
    Cancelled,
    OnHold,
    DeliveryException,
    Returned,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 14] = [
        Self::Pending,
        Self::Confirmed,
        Self::Backordered,
        Self::Rejected,
        Self::Paid,
        Self::Fulfilling,
        Self::Shipped,
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::Cancelled,
        Self::OnHold,
        Self::DeliveryException,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Backordered => "backordered",
            Self::Rejected => "rejected",
            Self::Paid => "paid",
            Self::Fulfilling => "fulfilling",
            Self::Shipped => "shipped",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::OnHold => "on_hold",
            Self::DeliveryException => "delivery_exception",
            Self::Returned => "returned",
        }
    }

    /// Whether the order's lines are still held as reservations against `on_hand`: true until
    /// it ships (the reservation becomes a decrement of `on_hand`) or ends without shipping.
    pub fn holds_reservation(self) -> bool {
        matches!(
            self,
            Self::Pending
                | Self::Confirmed
                | Self::Backordered
                | Self::Paid
                | Self::Fulfilling
                | Self::OnHold
        )
    }

    /// Whether the parcel has left: lines and address are frozen and cancelling is too late.
    pub fn has_shipped(self) -> bool {
        matches!(
            self,
            Self::Shipped
                | Self::InTransit
                | Self::OutForDelivery
                | Self::Delivered
                | Self::DeliveryException
                | Self::Returned
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

/// Marker types, one per status, used only as type parameters of [`Transition::of`].
pub mod state {
    use super::OrderStatus;

    pub trait State {
        const STATUS: OrderStatus;
    }

    /// Implemented exactly for the legal edges `Self → To`.
    pub trait Becomes<To: State>: State {}

    macro_rules! states {
        ($($name:ident),* $(,)?) => {$(
            #[derive(Debug)]
            pub enum $name {}
            impl State for $name {
                const STATUS: OrderStatus = OrderStatus::$name;
            }
        )*};
    }

    states!(
        Pending,
        Confirmed,
        Backordered,
        Rejected,
        Paid,
        Fulfilling,
        Shipped,
        InTransit,
        OutForDelivery,
        Delivered,
        Cancelled,
        OnHold,
        DeliveryException,
        Returned,
    );

    macro_rules! edges {
        ($($from:ident => $($to:ident)|+;)*) => {
            $($(impl Becomes<$to> for $from {})+)*

            /// Every legal edge, for documentation and tests.
            pub const EDGES: &[(OrderStatus, OrderStatus)] = &[
                $($((OrderStatus::$from, OrderStatus::$to),)+)*
            ];
        };
    }

    edges! {
        Pending => Confirmed | Backordered | Rejected | Cancelled | OnHold;
        Backordered => Confirmed | Rejected | Cancelled | OnHold;
        Confirmed => Paid | Cancelled | OnHold;
        Paid => Fulfilling | Cancelled | OnHold;
        Fulfilling => Shipped | Cancelled | OnHold;
        OnHold => Confirmed | Backordered | Paid | Fulfilling | Cancelled;
        Shipped => InTransit | OutForDelivery | Delivered | DeliveryException;
        InTransit => OutForDelivery | Delivered | DeliveryException;
        OutForDelivery => Delivered | DeliveryException;
        DeliveryException => InTransit | OutForDelivery | Delivered | Returned;
        Delivered => Returned;
    }
}

/// A legal status change, ready to be applied as a compare-and-set (`WHERE status = from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    from: OrderStatus,
    to: OrderStatus,
}

impl Transition {
    pub fn of<From, To>() -> Self
    where
        From: state::Becomes<To>,
        To: state::State,
    {
        Self {
            from: From::STATUS,
            to: To::STATUS,
        }
    }

    pub fn from(self) -> OrderStatus {
        self.from
    }

    pub fn to(self) -> OrderStatus {
        self.to
    }
}

/// What cancelling an order in a given status amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// Cancel now; release the reservation if the order held one.
    Cancel(Transition),
    /// Already cancelled: repeating a cancellation changes nothing.
    AlreadyCancelled,
    /// Shipped, rejected or otherwise finished: too late to cancel.
    TooLate(OrderStatus),
}

pub fn cancellation(status: OrderStatus) -> Cancellation {
    use state::*;
    let transition = match status {
        OrderStatus::Pending => Transition::of::<Pending, Cancelled>(),
        OrderStatus::Confirmed => Transition::of::<Confirmed, Cancelled>(),
        OrderStatus::Backordered => Transition::of::<Backordered, Cancelled>(),
        OrderStatus::Paid => Transition::of::<Paid, Cancelled>(),
        OrderStatus::Fulfilling => Transition::of::<Fulfilling, Cancelled>(),
        OrderStatus::OnHold => Transition::of::<OnHold, Cancelled>(),
        OrderStatus::Cancelled => return Cancellation::AlreadyCancelled,
        other => return Cancellation::TooLate(other),
    };
    Cancellation::Cancel(transition)
}

/// The status a freshly placed order moves to from `pending`.
pub fn placement(backordered: bool) -> Transition {
    use state::*;
    if backordered {
        Transition::of::<Pending, Backordered>()
    } else {
        Transition::of::<Pending, Confirmed>()
    }
}

/// The status change, if any, after an edit left the order with (`backordered`) or without
/// lines waiting for stock.
pub fn after_edit(status: OrderStatus, backordered: bool) -> Option<Transition> {
    use state::*;
    match (status, backordered) {
        (OrderStatus::Backordered, false) => Some(Transition::of::<Backordered, Confirmed>()),
        (OrderStatus::Pending, false) => Some(Transition::of::<Pending, Confirmed>()),
        (OrderStatus::Pending, true) => Some(Transition::of::<Pending, Backordered>()),
        _ => None,
    }
}

/// A point on the fulfilment pipeline's happy path that an order is moved to by the system:
/// payment taken, packing started, parcel handed to the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    Paid,
    Fulfilling,
    Shipped,
}

impl Progress {
    pub const ALL: [Progress; 3] = [Self::Paid, Self::Fulfilling, Self::Shipped];

    /// The status an order has once it reached this point.
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Paid => OrderStatus::Paid,
            Self::Fulfilling => OrderStatus::Fulfilling,
            Self::Shipped => OrderStatus::Shipped,
        }
    }

    /// How far along the happy path this point is, for comparing with [`reached`].
    fn rank(self) -> u8 {
        match self {
            Self::Paid => 1,
            Self::Fulfilling => 2,
            Self::Shipped => 3,
        }
    }
}

/// How far along the happy path an order at `status` is: `None` when it is off the path
/// (not yet confirmed, waiting for stock, on hold or ended without shipping).
fn reached(status: OrderStatus) -> Option<u8> {
    match status {
        OrderStatus::Paid => Some(Progress::Paid.rank()),
        OrderStatus::Fulfilling => Some(Progress::Fulfilling.rank()),
        shipped if shipped.has_shipped() => Some(Progress::Shipped.rank()),
        _ => None,
    }
}

/// The status change that moves an order at `status` on to `to`, one step at a time.
///
/// `Ok(None)` when the order is already at or past `to` on the happy path, so that a pipeline
/// step that is retried after its change was committed changes nothing. `Err(status)` when the
/// order cannot get there from where it is: cancelled, rejected, still waiting for stock,
/// or a step would be skipped (a confirmed order is paid before it is packed).
///
/// An order on hold is refused too, although `on_hold → paid | fulfilling` are edges: a hold is
/// someone's decision to stop the order, which only they may lift, and from `on_hold` alone
/// nobody can tell which step the order had reached before it.
pub fn progress(status: OrderStatus, to: Progress) -> Result<Option<Transition>, OrderStatus> {
    use state::*;
    let transition = match (status, to) {
        (OrderStatus::Confirmed, Progress::Paid) => Transition::of::<Confirmed, Paid>(),
        (OrderStatus::Paid, Progress::Fulfilling) => Transition::of::<Paid, Fulfilling>(),
        (OrderStatus::Fulfilling, Progress::Shipped) => Transition::of::<Fulfilling, Shipped>(),
        (status, to) if reached(status).is_some_and(|rank| rank >= to.rank()) => return Ok(None),
        (status, _) => return Err(status),
    };
    Ok(Some(transition))
}

/// Whether lines and address may still be changed: only while the order holds a reservation
/// and before any payment was taken for the old lines.
pub fn editable(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Pending
            | OrderStatus::Confirmed
            | OrderStatus::Backordered
            | OrderStatus::OnHold
    )
}

#[cfg(test)]
mod tests {
    use super::state::EDGES;
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
            let json = serde_json::to_string(&status).expect("serialises");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn the_happy_path_is_a_chain_of_legal_edges() {
        use OrderStatus::*;
        let path = [
            Pending,
            Confirmed,
            Paid,
            Fulfilling,
            Shipped,
            InTransit,
            OutForDelivery,
            Delivered,
        ];
        for pair in path.windows(2) {
            assert!(
                EDGES.contains(&(pair[0], pair[1])),
                "{} -> {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn no_edge_leaves_a_terminal_status_or_returns_to_pending() {
        for &(from, to) in EDGES {
            assert!(!matches!(
                from,
                OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::Returned
            ));
            assert_ne!(to, OrderStatus::Pending);
        }
    }

    #[test]
    fn every_edge_out_of_a_reserving_status_keeps_the_stock_accounting_closed() {
        // Leaving the reserving statuses is only ever by shipping (reservation consumed) or by
        // ending (cancelled/rejected: reservation released); nothing else may drop a hold.
        for &(from, to) in EDGES {
            if from.holds_reservation() && !to.holds_reservation() {
                assert!(
                    matches!(
                        to,
                        OrderStatus::Shipped | OrderStatus::Cancelled | OrderStatus::Rejected
                    ),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn cancelling_is_possible_exactly_until_shipping() {
        for status in OrderStatus::ALL {
            match cancellation(status) {
                Cancellation::Cancel(t) => {
                    assert!(status.holds_reservation());
                    assert_eq!((t.from(), t.to()), (status, OrderStatus::Cancelled));
                    assert!(EDGES.contains(&(status, OrderStatus::Cancelled)));
                }
                Cancellation::AlreadyCancelled => assert_eq!(status, OrderStatus::Cancelled),
                Cancellation::TooLate(s) => {
                    assert_eq!(s, status);
                    assert!(!status.holds_reservation());
                }
            }
        }
    }

    #[test]
    fn progress_moves_one_step_along_the_happy_path_and_repeats_as_a_no_op() {
        use OrderStatus::*;
        // Ok(Some(status)): moves there; Ok(None): already there; Err: refused.
        type Expected = Result<Option<OrderStatus>, OrderStatus>;
        let table: &[(OrderStatus, Progress, Expected)] = &[
            (Confirmed, Progress::Paid, Ok(Some(Paid))),
            (Paid, Progress::Paid, Ok(None)),
            (Fulfilling, Progress::Paid, Ok(None)),
            (Delivered, Progress::Paid, Ok(None)),
            (Paid, Progress::Fulfilling, Ok(Some(Fulfilling))),
            (Fulfilling, Progress::Fulfilling, Ok(None)),
            (Shipped, Progress::Fulfilling, Ok(None)),
            (Fulfilling, Progress::Shipped, Ok(Some(Shipped))),
            (Shipped, Progress::Shipped, Ok(None)),
            (InTransit, Progress::Shipped, Ok(None)),
            (DeliveryException, Progress::Shipped, Ok(None)),
            (Returned, Progress::Shipped, Ok(None)),
            (Confirmed, Progress::Fulfilling, Err(Confirmed)),
            (Paid, Progress::Shipped, Err(Paid)),
            (Pending, Progress::Paid, Err(Pending)),
            (Backordered, Progress::Paid, Err(Backordered)),
            (Cancelled, Progress::Shipped, Err(Cancelled)),
            (Rejected, Progress::Paid, Err(Rejected)),
            (OnHold, Progress::Paid, Err(OnHold)),
            (OnHold, Progress::Fulfilling, Err(OnHold)),
        ];
        for &(status, to, expected) in table {
            let got = progress(status, to).map(|t| {
                t.map(|t| {
                    assert_eq!(t.from(), status);
                    t.to()
                })
            });
            assert_eq!(got, expected, "{status} -> {to:?}");
        }
    }

    #[test]
    fn progress_only_takes_legal_edges_to_the_point_asked_for_and_then_holds_still() {
        for status in OrderStatus::ALL {
            for to in Progress::ALL {
                match progress(status, to) {
                    Ok(Some(t)) => {
                        assert_eq!((t.from(), t.to()), (status, to.status()));
                        assert!(EDGES.contains(&(status, to.status())));
                        assert_eq!(progress(t.to(), to), Ok(None), "{status} -> {to:?}");
                    }
                    Ok(None) => {
                        // The later points of the happy path, by how far along they are.
                        let along = |s: OrderStatus| match s {
                            OrderStatus::Paid => 1,
                            OrderStatus::Fulfilling => 2,
                            s if s.has_shipped() => 3,
                            _ => 0,
                        };
                        assert!(along(status) >= along(to.status()), "{status} -> {to:?}");
                    }
                    Err(refused) => {
                        assert_eq!(refused, status);
                        assert_ne!(status, to.status());
                    }
                }
            }
        }
    }

    #[test]
    fn an_order_ends_up_shipped_by_asking_for_each_point_in_turn() {
        let mut status = OrderStatus::Confirmed;
        for to in Progress::ALL {
            let transition = progress(status, to)
                .expect("the happy path is open")
                .expect("each point is new");
            status = transition.to();
        }
        assert_eq!(status, OrderStatus::Shipped);
    }

    #[test]
    fn shipped_orders_are_not_editable() {
        for status in OrderStatus::ALL {
            if status.has_shipped() {
                assert!(!editable(status), "{status}");
            }
        }
    }
}
