//! Conformance cases for what the fulfilment pipeline asks of the store: moving an order along
//! the happy path (shipping consumes its reservation), filling backorders first come, first
//! served, and the documents it produces. Each runs on SQLite and, when
//! `ORDERFLOW_TEST_POSTGRES` names a server, on PostgreSQL.

mod support;

use std::sync::Arc;

use orderflow_domain::status::Progress;
use orderflow_domain::{OrderId, OrderStatus, StoreId};
use orderflow_store::{
    AdvanceOrder, BackorderFill, BackorderLine, CancelOrder, Document, DocumentInfo, Error, Order,
    OrderSource, PlaceOrder, Scope, Store,
};
use time::OffsetDateTime;

use support::*;

fn advance(order_id: &OrderId, to: Progress, note: &str) -> AdvanceOrder {
    AdvanceOrder {
        order_id: order_id.clone(),
        to,
        note: Some(note.to_owned()),
        now: now(),
    }
}

async fn advanced(store: &dyn Store, order_id: &OrderId, to: Progress, note: &str) -> Order {
    store
        .advance_order(advance(order_id, to, note))
        .await
        .unwrap_or_else(|error| panic!("order moves on to {to:?}: {error:?}"))
}

#[track_caller]
fn assert_not_advanceable(result: Result<Order, Error>, status: OrderStatus) {
    match result {
        Err(Error::NotAdvanceable(refused)) => assert_eq!(refused, status),
        other => panic!("expected Error::NotAdvanceable({status}), got {other:?}"),
    }
}

/// Asserts that every product's `reserved` equals what live orders hold and returns
/// `(product, on_hand, reserved)` per product, ordered by product id.
async fn audit_is_balanced(store: &dyn Store, store_id: &StoreId) -> Vec<(String, i64, i64)> {
    let audit = store
        .audit_reservations(store_id)
        .await
        .expect("audit runs");
    for row in &audit {
        assert_eq!(row.reserved, row.reserved_by_live_orders, "{row:?}");
        assert!(0 <= row.reserved && row.reserved <= row.on_hand, "{row:?}");
    }
    audit
        .into_iter()
        .map(|row| (row.product_id.to_string(), row.on_hand, row.reserved))
        .collect()
}

/// A partial order placed at `at`, so that it waits for what is missing.
fn partial(store_id: &StoreId, pairs: &[(&str, u64)], at: OffsetDateTime) -> PlaceOrder {
    PlaceOrder {
        allow_partial: true,
        now: at,
        ..order(store_id, pairs)
    }
}

fn waiting(pairs: &[(&str, u64)]) -> BackorderFill {
    BackorderFill::Waiting {
        missing: pairs
            .iter()
            .map(|&(product, count)| BackorderLine {
                product_id: pid(product),
                quantity: quantity(count),
            })
            .collect(),
    }
}

async fn fill(store: &dyn Store, order_id: &OrderId) -> BackorderFill {
    store
        .fill_backorder(order_id, now())
        .await
        .expect("a fill is tried")
}

#[track_caller]
fn filled(fill: BackorderFill) -> Order {
    match fill {
        BackorderFill::Filled(order) => order,
        other => panic!("expected the backorder to be filled, got {other:?}"),
    }
}

async fn read(store: &dyn Store, order_id: &OrderId) -> Order {
    store
        .get_order(&Scope::Everything, order_id)
        .await
        .expect("order is readable")
}

// ----- advancing ----------------------------------------------------------------------------

case!(an_order_moves_along_the_happy_path_one_step_at_a_time_with_its_notes);
async fn an_order_moves_along_the_happy_path_one_step_at_a_time_with_its_notes(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let before = placed(&*store, order(&shop, &[("a", 2)])).await;

    let step = advance(&before.order_id, Progress::Paid, "paid: ch_1");
    let paid_at = step.now;
    let paid = store.advance_order(step).await.expect("order is paid");
    assert_eq!((paid.status, paid.version), (OrderStatus::Paid, 2));
    let last = paid.timeline.last().expect("a timeline entry");
    assert_eq!(
        (last.status, last.note.as_deref(), last.at),
        (OrderStatus::Paid, Some("paid: ch_1"), paid_at)
    );
    assert_eq!(paid.updated_at, paid_at);
    assert_eq!(paid.lines, before.lines);
    assert_eq!(level(&*store, &shop, "a").await, (5, 2));

    let packing = advanced(&*store, &before.order_id, Progress::Fulfilling, "slip").await;
    assert_eq!(
        (packing.status, packing.version),
        (OrderStatus::Fulfilling, 3)
    );
    assert_eq!(level(&*store, &shop, "a").await, (5, 2));
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 2)]
    );

    assert_eq!(
        statuses(&packing),
        vec![
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Paid,
            OrderStatus::Fulfilling
        ]
    );
    assert_eq!(read(&*store, &before.order_id).await, packing);
}

case!(shipping_takes_the_lines_off_both_on_hand_and_reserved_and_keeps_the_books_balanced);
async fn shipping_takes_the_lines_off_both_on_hand_and_reserved_and_keeps_the_books_balanced(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5), ("b", 10, 3), ("c", 1, 4)]).await;
    let shipping = placed(&*store, order(&shop, &[("a", 2), ("b", 3)])).await;
    let staying = placed(&*store, order(&shop, &[("a", 1), ("c", 1)])).await;
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 3), ("b".into(), 3, 3), ("c".into(), 4, 1)]
    );

    for to in [Progress::Paid, Progress::Fulfilling] {
        advanced(&*store, &shipping.order_id, to, "on its way").await;
    }
    let shipped = advanced(
        &*store,
        &shipping.order_id,
        Progress::Shipped,
        "shipped with DHL (JJD01)",
    )
    .await;
    assert_eq!((shipped.status, shipped.version), (OrderStatus::Shipped, 4));
    assert_eq!(
        shipped
            .timeline
            .last()
            .and_then(|entry| entry.note.as_deref()),
        Some("shipped with DHL (JJD01)")
    );
    assert_eq!(shipped.lines, shipping.lines, "the lines say what left");
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 3, 1), ("b".into(), 0, 0), ("c".into(), 4, 1)]
    );

    // What is left is the other order's to cancel, and the books still balance.
    store
        .cancel_order(
            &Scope::Everything,
            CancelOrder {
                runs: None,
                order_id: staying.order_id.clone(),
                reason: None,
                now: now(),
            },
        )
        .await
        .expect("the other order is cancelled");
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 3, 0), ("b".into(), 0, 0), ("c".into(), 4, 0)]
    );
}

case!(a_step_the_order_already_passed_is_a_no_op_and_ships_nothing_twice);
async fn a_step_the_order_already_passed_is_a_no_op_and_ships_nothing_twice(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let before = placed(&*store, order(&shop, &[("a", 2)])).await;

    let paid = advanced(&*store, &before.order_id, Progress::Paid, "paid").await;
    assert_eq!(
        advanced(&*store, &before.order_id, Progress::Paid, "paid again").await,
        paid
    );

    advanced(&*store, &before.order_id, Progress::Fulfilling, "packed").await;
    let shipped = advanced(&*store, &before.order_id, Progress::Shipped, "shipped").await;
    assert_eq!(level(&*store, &shop, "a").await, (3, 0));
    for to in Progress::ALL {
        assert_eq!(
            advanced(&*store, &before.order_id, to, "retried").await,
            shipped,
            "{to:?}"
        );
    }
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 3, 0)]
    );
}

case!(an_order_off_the_happy_path_or_asked_to_skip_a_step_is_refused_and_changes_nothing);
async fn an_order_off_the_happy_path_or_asked_to_skip_a_step_is_refused_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 3)]).await;
    let confirmed = placed(&*store, order(&shop, &[("a", 1)])).await;
    let cancelled = placed(&*store, order(&shop, &[("a", 1)])).await;
    let backordered = placed(&*store, partial(&shop, &[("a", 5)], now())).await;
    assert_eq!(backordered.status, OrderStatus::Backordered);
    let cancelled = store
        .cancel_order(
            &Scope::Everything,
            CancelOrder {
                runs: None,
                order_id: cancelled.order_id.clone(),
                reason: None,
                now: now(),
            },
        )
        .await
        .expect("order is cancelled");

    for to in [Progress::Fulfilling, Progress::Shipped] {
        assert_not_advanceable(
            store
                .advance_order(advance(&confirmed.order_id, to, "skip"))
                .await,
            OrderStatus::Confirmed,
        );
    }
    for to in Progress::ALL {
        assert_not_advanceable(
            store
                .advance_order(advance(&backordered.order_id, to, "too early"))
                .await,
            OrderStatus::Backordered,
        );
        assert_not_advanceable(
            store
                .advance_order(advance(&cancelled.order_id, to, "too late"))
                .await,
            OrderStatus::Cancelled,
        );
    }

    assert_eq!(read(&*store, &confirmed.order_id).await, confirmed);
    assert_eq!(read(&*store, &backordered.order_id).await, backordered);
    assert_eq!(read(&*store, &cancelled.order_id).await, cancelled);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 3, 2)]
    );
}

case!(advancing_an_unknown_order_is_not_found);
async fn advancing_an_unknown_order_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(
        store
            .advance_order(advance(&order_id(), Progress::Paid, "paid"))
            .await,
    );
}

case!(shipping_an_order_whose_stock_is_managed_elsewhere_moves_no_stock);
async fn shipping_an_order_whose_stock_is_managed_elsewhere_moves_no_stock(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("SKU-1", 1990, 5)]).await;
    let request = PlaceOrder {
        source: Some(OrderSource {
            external_id: "1001".into(),
            updated_at: now(),
            document: r#"{"platform":"shopify"}"#.into(),
            note: "placed from shopify".into(),
            unmanaged_lines: Some(vec![priced("SKU-1", 2, 1990)]),
        }),
        ..order(&shop, &[("SKU-1", 2)])
    };
    let before = placed(&*store, request).await;
    assert_eq!(level(&*store, &shop, "SKU-1").await, (5, 0));

    for to in Progress::ALL {
        advanced(&*store, &before.order_id, to, "moved on").await;
    }
    assert_eq!(
        read(&*store, &before.order_id).await.status,
        OrderStatus::Shipped
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("SKU-1".into(), 5, 0)]
    );
}

// ----- backorders ---------------------------------------------------------------------------

case!(backorders_are_filled_first_come_first_served_whoever_asks_first);
async fn backorders_are_filled_first_come_first_served_whoever_asks_first(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 1)]).await;
    let placed_at = now();
    // The older order takes the one unit there is and waits for two more; the younger waits
    // for all of its two.
    let older = placed(&*store, partial(&shop, &[("a", 3)], placed_at)).await;
    let younger = placed(
        &*store,
        partial(
            &shop,
            &[("a", 2)],
            placed_at + time::Duration::milliseconds(1),
        ),
    )
    .await;
    assert_eq!(older.lines, vec![priced("a", 1, 100)]);
    assert_eq!(younger.lines, vec![]);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 1, 1)]
    );

    // Nothing arrived: both wait, each for what it misses.
    assert_eq!(fill(&*store, &younger.order_id).await, waiting(&[("a", 2)]));
    assert_eq!(fill(&*store, &older.order_id).await, waiting(&[("a", 2)]));

    // Two units arrive: enough for either, but the older order's turn comes first, even
    // though the younger one asks first.
    store
        .adjust_stock(&shop, &pid("a"), 2)
        .await
        .expect("units are received");
    assert_eq!(fill(&*store, &younger.order_id).await, waiting(&[("a", 2)]));
    assert_eq!(read(&*store, &younger.order_id).await, younger);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 3, 1)]
    );

    let filled_at = now();
    let older_filled = filled(
        store
            .fill_backorder(&older.order_id, filled_at)
            .await
            .expect("a fill is tried"),
    );
    assert_eq!(older_filled.status, OrderStatus::Confirmed);
    assert_eq!(older_filled.lines, vec![priced("a", 3, 100)]);
    assert_eq!(older_filled.backorder, vec![]);
    assert_eq!(
        (
            older_filled.currency,
            older_filled.total_minor,
            older_filled.version
        ),
        (Some(eur()), 300, 2)
    );
    assert_eq!(
        statuses(&older_filled),
        vec![
            OrderStatus::Pending,
            OrderStatus::Backordered,
            OrderStatus::Confirmed
        ]
    );
    let last = older_filled.timeline.last().expect("a timeline entry");
    assert_eq!(
        (last.note.as_deref(), last.at),
        (Some("backorder filled"), filled_at)
    );
    assert_eq!(read(&*store, &older.order_id).await, older_filled);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 3, 3)]
    );

    // The younger order still waits; filling the older one again changes nothing.
    assert_eq!(fill(&*store, &younger.order_id).await, waiting(&[("a", 2)]));
    assert_eq!(
        fill(&*store, &older.order_id).await,
        BackorderFill::NotBackordered(OrderStatus::Confirmed)
    );

    // More stock: now it is the younger order's turn.
    store
        .adjust_stock(&shop, &pid("a"), 1)
        .await
        .expect("units are received");
    assert_eq!(fill(&*store, &younger.order_id).await, waiting(&[("a", 1)]));
    store
        .adjust_stock(&shop, &pid("a"), 1)
        .await
        .expect("units are received");
    let younger_filled = filled(fill(&*store, &younger.order_id).await);
    assert_eq!(younger_filled.lines, vec![priced("a", 2, 100)]);
    assert_eq!(
        (
            younger_filled.status,
            younger_filled.currency,
            younger_filled.total_minor,
            younger_filled.version
        ),
        (OrderStatus::Confirmed, Some(eur()), 200, 2)
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 5)]
    );
}

case!(orders_that_started_waiting_at_the_same_instant_are_served_by_order_id);
async fn orders_that_started_waiting_at_the_same_instant_are_served_by_order_id(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 0)]).await;
    let at = now();
    let first = partial(&shop, &[("a", 1)], at);
    let second = partial(&shop, &[("a", 1)], at);
    assert!(first.order_id < second.order_id);
    // Placed in the opposite order: the queue goes by when they started waiting, then by id.
    let second = placed(&*store, second).await;
    let first = placed(&*store, first).await;

    store
        .adjust_stock(&shop, &pid("a"), 1)
        .await
        .expect("units are received");
    assert_eq!(fill(&*store, &second.order_id).await, waiting(&[("a", 1)]));
    filled(fill(&*store, &first.order_id).await);
    assert_eq!(fill(&*store, &second.order_id).await, waiting(&[("a", 1)]));
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 1, 1)]
    );
}

case!(filling_grows_partly_reserved_lines_and_adds_lines_for_what_was_not_reserved_at_all);
async fn filling_grows_partly_reserved_lines_and_adds_lines_for_what_was_not_reserved_at_all(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 2), ("b", 10, 5), ("c", 7, 0)]).await;
    let before = placed(
        &*store,
        partial(&shop, &[("a", 5), ("b", 1), ("c", 2)], now()),
    )
    .await;
    assert_eq!(before.lines, vec![priced("a", 2, 100), priced("b", 1, 10)]);

    // All or nothing: `a` is there now but `c` is not, so nothing is taken.
    store
        .adjust_stock(&shop, &pid("a"), 3)
        .await
        .expect("units are received");
    assert_eq!(fill(&*store, &before.order_id).await, waiting(&[("c", 2)]));
    assert_eq!(read(&*store, &before.order_id).await, before);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 2), ("b".into(), 5, 1), ("c".into(), 0, 0)]
    );

    store
        .adjust_stock(&shop, &pid("c"), 2)
        .await
        .expect("units are received");
    let after = filled(fill(&*store, &before.order_id).await);
    assert_eq!(
        after.lines,
        vec![priced("a", 5, 100), priced("b", 1, 10), priced("c", 2, 7)]
    );
    assert_eq!(after.backorder, vec![]);
    assert_eq!(
        (
            after.status,
            after.currency,
            after.total_minor,
            after.version
        ),
        (OrderStatus::Confirmed, Some(eur()), 524, 2)
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 5), ("b".into(), 5, 1), ("c".into(), 2, 2)]
    );

    // A filled order goes on like any other, and shipping it balances the books too.
    for to in Progress::ALL {
        advanced(&*store, &before.order_id, to, "moved on").await;
    }
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 0, 0), ("b".into(), 4, 0), ("c".into(), 0, 0)]
    );
}

case!(a_cancelled_order_leaves_the_queue_and_is_not_filled);
async fn a_cancelled_order_leaves_the_queue_and_is_not_filled(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 0)]).await;
    let at = now();
    let older = placed(&*store, partial(&shop, &[("a", 2)], at)).await;
    let younger = placed(
        &*store,
        partial(&shop, &[("a", 2)], at + time::Duration::milliseconds(1)),
    )
    .await;
    store
        .adjust_stock(&shop, &pid("a"), 2)
        .await
        .expect("units are received");
    assert_eq!(fill(&*store, &younger.order_id).await, waiting(&[("a", 2)]));

    store
        .cancel_order(
            &Scope::Everything,
            CancelOrder {
                runs: None,
                order_id: older.order_id.clone(),
                reason: None,
                now: now(),
            },
        )
        .await
        .expect("the older order is cancelled");
    assert_eq!(
        fill(&*store, &older.order_id).await,
        BackorderFill::NotBackordered(OrderStatus::Cancelled)
    );
    filled(fill(&*store, &younger.order_id).await);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 2, 2)]
    );
}

case!(filling_an_order_that_waits_for_nothing_reports_its_status_and_an_unknown_one_is_not_found);
async fn filling_an_order_that_waits_for_nothing_reports_its_status_and_an_unknown_one_is_not_found(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let confirmed = placed(&*store, order(&shop, &[("a", 1)])).await;
    assert_eq!(
        fill(&*store, &confirmed.order_id).await,
        BackorderFill::NotBackordered(OrderStatus::Confirmed)
    );
    assert_eq!(read(&*store, &confirmed.order_id).await, confirmed);
    assert_not_found(store.fill_backorder(&order_id(), now()).await);
}

case!(
    concurrent_fills_serve_exactly_the_oldest_orders_and_never_oversell,
    multi_thread
);
async fn concurrent_fills_serve_exactly_the_oldest_orders_and_never_oversell(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 0)]).await;
    let start = now();
    let mut queue = Vec::new();
    for position in 0..12 {
        let request = partial(
            &shop,
            &[("a", 2)],
            start + time::Duration::milliseconds(position),
        );
        queue.push(placed(&*store, request).await.order_id);
    }
    // Enough for the five oldest orders and one unit more, which the sixth must not get.
    store
        .adjust_stock(&shop, &pid("a"), 11)
        .await
        .expect("units are received");

    let tasks: Vec<_> = queue
        .iter()
        .rev()
        .map(|order_id| {
            let (store, order_id) = (store.clone(), order_id.clone());
            tokio::spawn(async move { store.fill_backorder(&order_id, now()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(
            task.await
                .expect("task completes")
                .expect("a fill is tried"),
        );
    }
    answers.reverse();
    for (position, answer) in answers.iter().enumerate() {
        match answer {
            BackorderFill::Filled(_) => {
                assert!(position < 5, "order {position} filled out of turn")
            }
            BackorderFill::Waiting { .. } => assert!(position >= 5, "order {position} waits"),
            other => panic!("order {position}: {other:?}"),
        }
    }
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 11, 10)]
    );
    // The sixth order is told it misses one unit, after the others settled.
    assert_eq!(fill(&*store, &queue[5]).await, waiting(&[("a", 1)]));
}

// ----- documents ----------------------------------------------------------------------------

case!(a_document_is_stored_replaced_by_a_retry_and_listed_without_its_body);
async fn a_document_is_stored_replaced_by_a_retry_and_listed_without_its_body(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let order = placed(&*store, order(&shop, &[("a", 1)])).await;
    let id = &order.order_id;
    assert_eq!(
        store
            .list_documents(&Scope::Everything, id)
            .await
            .expect("documents are listed"),
        vec![]
    );

    // Every byte value, and enough of them to leave the page the row starts on.
    let label: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let first_at = now();
    store
        .put_document(
            id,
            "label",
            "application/pdf",
            b"%PDF-draft".to_vec(),
            first_at,
        )
        .await
        .expect("document is stored");
    let rewritten_at = now() + time::Duration::seconds(1);
    store
        .put_document(id, "label", "application/pdf", label.clone(), rewritten_at)
        .await
        .expect("document is replaced");
    let slip_at = now();
    store
        .put_document(
            id,
            "packing_slip",
            "application/pdf",
            b"%PDF-1.7 slip".to_vec(),
            slip_at,
        )
        .await
        .expect("document is stored");
    store
        .put_document(
            id,
            "label_zpl",
            "application/zpl",
            b"^XA^XZ".to_vec(),
            slip_at,
        )
        .await
        .expect("document is stored");

    assert_eq!(
        store
            .get_document(&Scope::Everything, id, "label")
            .await
            .expect("document is found"),
        Document {
            kind: "label".into(),
            content_type: "application/pdf".into(),
            body: label,
            created_at: rewritten_at,
        }
    );
    assert_eq!(
        store
            .list_documents(&Scope::Store(shop.clone()), id)
            .await
            .expect("documents are listed"),
        vec![
            DocumentInfo {
                kind: "label".into(),
                content_type: "application/pdf".into(),
                size: 200_000,
                created_at: rewritten_at,
            },
            DocumentInfo {
                kind: "label_zpl".into(),
                content_type: "application/zpl".into(),
                size: 6,
                created_at: slip_at,
            },
            DocumentInfo {
                kind: "packing_slip".into(),
                content_type: "application/pdf".into(),
                size: 13,
                created_at: slip_at,
            },
        ]
    );
    assert_not_found(store.get_document(&Scope::Everything, id, "invoice").await);
    // Documents are not part of the order: it is unchanged.
    assert_eq!(read(&*store, id).await, order);
}

case!(documents_are_visible_only_to_those_who_may_see_their_order);
async fn documents_are_visible_only_to_those_who_may_see_their_order(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    let acme = create_store(&*store, "acme").await;
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let order = placed(
        &*store,
        PlaceOrder {
            customer: Some(customer("c-1")),
            ..order(&shop, &[("a", 1)])
        },
    )
    .await;
    let id = &order.order_id;
    let at = now();
    store
        .put_document(id, "label", "application/pdf", b"%PDF".to_vec(), at)
        .await
        .expect("document is stored");

    for scope in [
        Scope::Store(acme.clone()),
        Scope::Customer(shop.clone(), cid("c-2")),
        Scope::Customer(acme.clone(), cid("c-1")),
    ] {
        assert_not_found(store.get_document(&scope, id, "label").await);
        assert_not_found(store.list_documents(&scope, id).await);
    }
    for scope in [
        Scope::Everything,
        Scope::Store(shop.clone()),
        Scope::Customer(shop.clone(), cid("c-1")),
    ] {
        let document = store
            .get_document(&scope, id, "label")
            .await
            .expect("document is visible");
        assert_eq!(document.body, b"%PDF".to_vec(), "{scope:?}");
        let listed = store
            .list_documents(&scope, id)
            .await
            .expect("documents are visible");
        assert_eq!(listed.len(), 1, "{scope:?}");
    }
}

case!(documents_of_an_unknown_order_are_not_found_and_cannot_be_stored);
async fn documents_of_an_unknown_order_are_not_found_and_cannot_be_stored(store: Arc<dyn Store>) {
    let unknown = order_id();
    assert_not_found(
        store
            .put_document(
                &unknown,
                "label",
                "application/pdf",
                b"%PDF".to_vec(),
                now(),
            )
            .await,
    );
    assert_not_found(
        store
            .get_document(&Scope::Everything, &unknown, "label")
            .await,
    );
    assert_not_found(store.list_documents(&Scope::Everything, &unknown).await);
}
