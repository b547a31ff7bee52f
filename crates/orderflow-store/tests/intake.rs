//! Storage conformance for storefront intake: the inbox, storefront orders and forwards, on
//! SQLite and (with `ORDERFLOW_TEST_POSTGRES`) PostgreSQL.

mod support;

use std::sync::Arc;

use orderflow_domain::OrderStatus;
use orderflow_domain::id::time_ordered_id;
use orderflow_store::{
    DeliveryStatus, Error, ForwardOutcome, ForwardStatus, InboxFilter, NewDelivery, NewForward,
    OrderSource, PlaceOrder, Scope, Settlement, SourceUpdate, Store, Work,
};
use time::Duration;
use tokio::sync::Notify;

use support::*;

fn delivery_id() -> String {
    time_ordered_id("dlv_", 1_700_000_000_000, rand::random())
}

fn delivery(store_id: &orderflow_domain::StoreId, event_key: &str) -> NewDelivery {
    NewDelivery {
        delivery_id: delivery_id(),
        store_id: store_id.clone(),
        platform: "shopify".into(),
        event_key: event_key.into(),
        topic: Some("orders/create".into()),
        headers: vec![("x-shopify-event-id".into(), event_key.into())],
        body: br#"{"id":820982911946154508}"#.to_vec(),
        now: now(),
    }
}

/// A storefront order as the intake worker places it: keyed by its external id.
fn storefront_order(
    store_id: &orderflow_domain::StoreId,
    external_id: &str,
    unmanaged: bool,
) -> PlaceOrder {
    PlaceOrder {
        run: None,
        allow_partial: true,
        // As intake places them: the external id, unique per store, is the only key.
        idempotency: None,
        source: Some(OrderSource {
            external_id: external_id.into(),
            updated_at: now(),
            document: r#"{"platform":"shopify"}"#.into(),
            note: "placed from shopify".into(),
            unmanaged_lines: unmanaged.then(|| vec![priced("SKU-1", 2, 1990)]),
        }),
        ..order(store_id, &[("SKU-1", 2)])
    }
}

case!(
    a_delivery_resent_concurrently_is_received_once_and_recorded_as_duplicates,
    multi_thread
);
async fn a_delivery_resent_concurrently_is_received_once_and_recorded_as_duplicates(
    store: Arc<dyn Store>,
) {
    let store_id = create_store(store.as_ref(), "shop").await;
    let received: Vec<_> = at_once(10, || {
        let (store, delivery) = (store.clone(), delivery(&store_id, "evt-1"));
        async move { store.receive_delivery(delivery).await.expect("stored") }
    })
    .await;
    let originals: Vec<_> = received
        .iter()
        .filter(|r| r.duplicate_of.is_none())
        .collect();
    assert_eq!(originals.len(), 1, "{received:?}");
    let original = &originals[0].delivery_id;
    assert!(
        received
            .iter()
            .all(|r| r.duplicate_of.is_none() || r.duplicate_of.as_ref() == Some(original))
    );

    let scope = Scope::Store(store_id.clone());
    let all = store
        .list_deliveries(
            &scope,
            InboxFilter {
                limit: 50,
                ..InboxFilter::default()
            },
        )
        .await
        .expect("listed");
    assert_eq!(all.items.len(), 10);
    assert_eq!(
        all.items
            .iter()
            .filter(|d| d.status == DeliveryStatus::Duplicate)
            .count(),
        9
    );
    let kept = store
        .get_delivery(&scope, original)
        .await
        .expect("the original is kept");
    assert_eq!(kept.body, br#"{"id":820982911946154508}"#);
    assert_eq!(kept.status, DeliveryStatus::Received);
}

case!(another_tenant_neither_sees_nor_lists_a_delivery);
async fn another_tenant_neither_sees_nor_lists_a_delivery(store: Arc<dyn Store>) {
    let mine = create_store(store.as_ref(), "mine").await;
    let theirs = create_store(store.as_ref(), "theirs").await;
    let received = store
        .receive_delivery(delivery(&mine, "evt-1"))
        .await
        .expect("stored");
    assert_not_found(
        store
            .get_delivery(&Scope::Store(theirs.clone()), &received.delivery_id)
            .await,
    );
    let listed = store
        .list_deliveries(
            &Scope::Store(theirs),
            InboxFilter {
                limit: 10,
                ..InboxFilter::default()
            },
        )
        .await
        .expect("listed");
    assert!(listed.items.is_empty());
}

case!(a_claimed_delivery_is_leased_and_taken_over_when_the_lease_runs_out);
async fn a_claimed_delivery_is_leased_and_taken_over_when_the_lease_runs_out(
    store: Arc<dyn Store>,
) {
    let store_id = create_store(store.as_ref(), "shop").await;
    let received = store
        .receive_delivery(delivery(&store_id, "evt-1"))
        .await
        .expect("stored");
    let t0 = now();
    let first = store
        .claim_deliveries(10, t0, t0 + Duration::seconds(30))
        .await
        .expect("claimed");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].delivery_id, received.delivery_id);
    assert_eq!(first[0].attempts, 1);
    assert!(!first[0].body.is_empty(), "a claim carries the body");

    let while_leased = store
        .claim_deliveries(10, t0 + Duration::seconds(10), t0 + Duration::seconds(40))
        .await
        .expect("claimed");
    assert!(while_leased.is_empty(), "{while_leased:?}");

    let after_expiry = store
        .claim_deliveries(10, t0 + Duration::seconds(31), t0 + Duration::seconds(61))
        .await
        .expect("claimed");
    assert_eq!(after_expiry.len(), 1);
    assert_eq!(after_expiry[0].attempts, 2);

    store
        .settle_delivery(Settlement {
            delivery_id: received.delivery_id.clone(),
            status: DeliveryStatus::Rejected,
            reason: Some("exclude_regions: RM is excluded".into()),
            order_id: None,
            forward: None,
            now: t0 + Duration::seconds(32),
        })
        .await
        .expect("settled");
    let later = store
        .claim_deliveries(10, t0 + Duration::seconds(100), t0 + Duration::seconds(130))
        .await
        .expect("claimed");
    assert!(
        later.is_empty(),
        "a settled delivery is never claimed again"
    );
    let settled = store
        .get_delivery(&Scope::Everything, &received.delivery_id)
        .await
        .expect("found");
    assert_eq!(settled.status, DeliveryStatus::Rejected);
    assert_eq!(
        settled.reason.as_deref(),
        Some("exclude_regions: RM is excluded")
    );
}

case!(a_storefront_order_is_placed_once_per_external_id);
async fn a_storefront_order_is_placed_once_per_external_id(store: Arc<dyn Store>) {
    let store_id = create_store(store.as_ref(), "courier-client").await;
    let first = store
        .place_order(storefront_order(&store_id, "820982911946154508", true))
        .await
        .expect("placed");
    assert!(!first.replayed);
    let again = store
        .place_order(storefront_order(&store_id, "820982911946154508", true))
        .await
        .expect("replayed");
    assert!(again.replayed);
    assert_eq!(again.receipt.order_id, first.receipt.order_id);

    let order = store
        .get_order(&Scope::Store(store_id.clone()), &first.receipt.order_id)
        .await
        .expect("found");
    assert_eq!(order.external_id.as_deref(), Some("820982911946154508"));
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.lines, vec![priced("SKU-1", 2, 1990)]);
    assert_eq!(order.total_minor, 3980);
    assert_eq!(
        order.timeline[0].note.as_deref(),
        Some("placed from shopify")
    );
    let orders = listed(store.as_ref(), &Scope::Store(store_id), filter(10)).await;
    assert_eq!(orders.len(), 1);
}

case!(
    a_storefront_order_placed_ten_times_at_once_is_one_order_reserved_once,
    multi_thread
);
async fn a_storefront_order_placed_ten_times_at_once_is_one_order_reserved_once(
    store: Arc<dyn Store>,
) {
    let store_id = create_store(store.as_ref(), "shop").await;
    stock(store.as_ref(), &store_id, &[("SKU-1", 1500, 10)]).await;
    let placed = at_once(10, || {
        let store = store.clone();
        let order = storefront_order(&store_id, "820982911946154508", false);
        async move { store.place_order(order).await.expect("placed or replayed") }
    })
    .await;
    assert_eq!(placed.iter().filter(|p| !p.replayed).count(), 1);
    let first = &placed
        .iter()
        .find(|p| !p.replayed)
        .expect("one placed")
        .receipt;
    for replayed in placed.iter().filter(|p| p.replayed) {
        assert_eq!(&replayed.receipt, first);
    }
    assert_eq!(level(store.as_ref(), &store_id, "SKU-1").await, (10, 2));
    let orders = listed(store.as_ref(), &Scope::Store(store_id), filter(10)).await;
    assert_eq!(orders.len(), 1);
}

case!(a_storefront_order_of_a_store_that_manages_stock_reserves_it);
async fn a_storefront_order_of_a_store_that_manages_stock_reserves_it(store: Arc<dyn Store>) {
    let store_id = create_store(store.as_ref(), "shop").await;
    stock(store.as_ref(), &store_id, &[("SKU-1", 1500, 1)]).await;
    let placed = store
        .place_order(storefront_order(&store_id, "1001", false))
        .await
        .expect("placed");
    assert_eq!(placed.receipt.order_status, OrderStatus::Backordered);
    assert_eq!(level(store.as_ref(), &store_id, "SKU-1").await, (1, 1));
}

case!(a_platform_update_applies_only_when_newer_than_what_is_held);
async fn a_platform_update_applies_only_when_newer_than_what_is_held(store: Arc<dyn Store>) {
    let store_id = create_store(store.as_ref(), "shop").await;
    let request = storefront_order(&store_id, "42", true);
    let held_at = request.source.as_ref().expect("a source").updated_at;
    let placed = store.place_order(request).await.expect("placed");
    let order_id = placed.receipt.order_id;

    let update = |seconds: i64| {
        store.update_order_source(
            &store_id,
            "42",
            held_at + Duration::seconds(seconds),
            r#"{"platform":"shopify","state":"paid"}"#.into(),
            now(),
        )
    };
    assert_eq!(
        update(0).await.expect("answered"),
        SourceUpdate::Stale {
            order_id: order_id.clone()
        }
    );
    assert_eq!(
        update(-60).await.expect("answered"),
        SourceUpdate::Stale {
            order_id: order_id.clone()
        }
    );
    assert_eq!(
        update(60).await.expect("answered"),
        SourceUpdate::Applied {
            order_id: order_id.clone()
        }
    );
    assert_eq!(
        update(30).await.expect("answered"),
        SourceUpdate::Stale { order_id },
        "older than the update just applied"
    );
    assert!(matches!(
        store
            .update_order_source(&store_id, "unknown", now(), "{}".into(), now())
            .await,
        Err(Error::NotFound)
    ));
}

case!(a_forward_queued_twice_for_one_order_keeps_the_first_and_says_so);
async fn a_forward_queued_twice_for_one_order_keeps_the_first_and_says_so(store: Arc<dyn Store>) {
    let store_id = create_store(store.as_ref(), "shop").await;
    let placed = store
        .place_order(storefront_order(&store_id, "8", true))
        .await
        .expect("placed");
    let forward = |forward_id: &str| NewForward {
        forward_id: forward_id.into(),
        store_id: store_id.clone(),
        order_id: placed.receipt.order_id.clone(),
        delivery_id: None,
        url: "http://127.0.0.1:9/orders".into(),
        payload: format!(r#"{{"type":"order.created","id":"{forward_id}"}}"#),
    };
    let t0 = now();
    let first = store.queue_forward(forward("fwd_a"), t0).await;
    assert!(matches!(first, Ok(true)), "the first is queued: {first:?}");
    let again = store
        .queue_forward(forward("fwd_b"), t0 + Duration::seconds(1))
        .await;
    assert!(
        matches!(again, Ok(false)),
        "a retried step finds the forward already there: {again:?}"
    );
    let queued = store
        .list_forwards(&Scope::Everything, None, 10)
        .await
        .expect("listed");
    assert_eq!(queued.len(), 1, "one forward per order");
    assert_eq!(queued[0].forward_id, "fwd_a");
    assert_eq!(queued[0].status, ForwardStatus::Pending);
    let due = store
        .claim_due_forwards(10, t0, t0 + Duration::seconds(30))
        .await
        .expect("claimed");
    assert_eq!(due.len(), 1, "a queued forward is due at once");
}

case!(a_forward_is_queued_once_retried_on_schedule_dead_lettered_and_replayed);
async fn a_forward_is_queued_once_retried_on_schedule_dead_lettered_and_replayed(
    store: Arc<dyn Store>,
) {
    let store_id = create_store(store.as_ref(), "shop").await;
    let placed = store
        .place_order(storefront_order(&store_id, "7", true))
        .await
        .expect("placed");
    let received = store
        .receive_delivery(delivery(&store_id, "evt-7"))
        .await
        .expect("stored");
    let t0 = now();
    let settle = |forward_id: &str| Settlement {
        delivery_id: received.delivery_id.clone(),
        status: DeliveryStatus::Accepted,
        reason: None,
        order_id: Some(placed.receipt.order_id.clone()),
        forward: Some(NewForward {
            forward_id: forward_id.into(),
            store_id: store_id.clone(),
            order_id: placed.receipt.order_id.clone(),
            delivery_id: Some(received.delivery_id.clone()),
            url: "http://127.0.0.1:9/orders".into(),
            payload: r#"{"type":"order.created"}"#.into(),
        }),
        now: t0,
    };
    store
        .settle_delivery(settle("fwd_1"))
        .await
        .expect("settled");
    store
        .settle_delivery(settle("fwd_2"))
        .await
        .expect("settled again after a worker died");
    let everything = Scope::Everything;
    let queued = store
        .list_forwards(&everything, None, 10)
        .await
        .expect("listed");
    assert_eq!(queued.len(), 1, "one forward per order");
    assert_eq!(queued[0].forward_id, "fwd_1");

    let lease = |at: time::OffsetDateTime| (at, at + Duration::seconds(30));
    let (at, until) = lease(t0);
    let due = store
        .claim_due_forwards(10, at, until)
        .await
        .expect("claimed");
    assert_eq!(due.len(), 1);
    let (at, until) = lease(t0 + Duration::seconds(1));
    assert!(
        store
            .claim_due_forwards(10, at, until)
            .await
            .expect("claimed")
            .is_empty(),
        "a claimed forward is leased"
    );
    store
        .record_forward_attempt(
            "fwd_1",
            ForwardOutcome::RetryAt {
                at: t0 + Duration::seconds(5),
                error: "503 Service Unavailable".into(),
            },
            t0,
        )
        .await
        .expect("recorded");
    let (at, until) = lease(t0 + Duration::seconds(4));
    assert!(
        store
            .claim_due_forwards(10, at, until)
            .await
            .expect("claimed")
            .is_empty()
    );
    let (at, until) = lease(t0 + Duration::seconds(5));
    assert_eq!(
        store
            .claim_due_forwards(10, at, until)
            .await
            .expect("claimed")
            .len(),
        1
    );
    store
        .record_forward_attempt(
            "fwd_1",
            ForwardOutcome::Dead {
                error: "timed out".into(),
            },
            t0 + Duration::seconds(6),
        )
        .await
        .expect("recorded");
    let dead = store
        .get_forward(&everything, "fwd_1")
        .await
        .expect("found");
    assert_eq!(dead.status, ForwardStatus::Dead);
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.last_error.as_deref(), Some("timed out"));

    let other = create_store(store.as_ref(), "other").await;
    assert_eq!(
        store
            .retry_dead_forwards(&Scope::Store(other), t0)
            .await
            .expect("retried"),
        0,
        "another tenant's dead letters are not theirs to replay"
    );
    assert_eq!(
        store
            .retry_dead_forwards(&Scope::Store(store_id.clone()), t0 + Duration::seconds(7))
            .await
            .expect("retried"),
        1
    );
    let (at, until) = lease(t0 + Duration::seconds(7));
    assert_eq!(
        store
            .claim_due_forwards(10, at, until)
            .await
            .expect("claimed")
            .len(),
        1
    );
    store
        .record_forward_attempt(
            "fwd_1",
            ForwardOutcome::Delivered,
            t0 + Duration::seconds(8),
        )
        .await
        .expect("recorded");
    let delivered = store
        .get_forward(&everything, "fwd_1")
        .await
        .expect("found");
    assert_eq!(delivered.status, ForwardStatus::Delivered);
    assert!(matches!(
        store.retry_forward(&everything, "fwd_1", t0).await,
        Err(Error::AlreadyExists(_))
    ));
    let forwarded = store
        .get_delivery(&everything, &received.delivery_id)
        .await
        .expect("found");
    assert_eq!(forwarded.status, DeliveryStatus::Forwarded);
}

case!(settings_of_a_store_are_replaced_by_an_update);
async fn settings_of_a_store_are_replaced_by_an_update(store: Arc<dyn Store>) {
    let store_id = create_store(store.as_ref(), "shop").await;
    let mut record = store.get_store(&store_id).await.expect("found");
    assert!(
        record.settings.manage_stock,
        "stores manage stock unless told otherwise"
    );
    record.settings.webhook_secret = Some("new".into());
    record.settings.previous_webhook_secret = Some("old".into());
    record.platform = Some("woocommerce".into());
    let updated = store.update_store(record.clone()).await.expect("updated");
    assert_eq!(updated, record);
    record.store_id = sid("ghost");
    assert!(matches!(
        store.update_store(record).await,
        Err(Error::NotFound)
    ));
}

case!(an_order_of_a_store_that_does_not_manage_stock_cancels_without_releasing_anything);
async fn an_order_of_a_store_that_does_not_manage_stock_cancels_without_releasing_anything(
    store: Arc<dyn Store>,
) {
    let store_id = create_store(store.as_ref(), "courier-client").await;
    // The catalogue happens to hold the same SKU: it must not be touched.
    stock(store.as_ref(), &store_id, &[("SKU-1", 1500, 5)]).await;
    let placed = store
        .place_order(storefront_order(&store_id, "9", true))
        .await
        .expect("placed");
    assert_eq!(level(store.as_ref(), &store_id, "SKU-1").await, (5, 0));
    let scope = Scope::Store(store_id.clone());
    let edit = store
        .edit_order(
            &scope,
            orderflow_store::EditOrder {
                order_id: placed.receipt.order_id.clone(),
                expected_version: None,
                lines: Some(lines(&[("SKU-1", 1)])),
                shipping_address: None,
                now: now(),
            },
        )
        .await;
    assert!(
        matches!(edit, Err(Error::LinesManagedElsewhere)),
        "{edit:?}"
    );
    let cancelled = store
        .cancel_order(
            &scope,
            orderflow_store::CancelOrder {
                runs: None,
                order_id: placed.receipt.order_id,
                reason: Some("cancelled on shopify".into()),
                now: now(),
            },
        )
        .await
        .expect("cancelled");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(level(store.as_ref(), &store_id, "SKU-1").await, (5, 0));
    let audit = store.audit_reservations(&store_id).await.expect("audited");
    assert!(
        audit
            .iter()
            .all(|a| a.reserved == a.reserved_by_live_orders)
    );
}

case!(a_pull_cursor_is_kept_per_store_and_stores_with_credentials_are_listed);
async fn a_pull_cursor_is_kept_per_store_and_stores_with_credentials_are_listed(
    store: Arc<dyn Store>,
) {
    let shop = create_store(store.as_ref(), "shop").await;
    assert_eq!(store.pull_cursor(&shop).await.expect("read"), None);
    store
        .set_pull_cursor(&shop, "2024-01-01 00:00:00", now())
        .await
        .expect("set");
    store
        .set_pull_cursor(&shop, "2024-01-02 08:30:00", now())
        .await
        .expect("moved on");
    assert_eq!(
        store.pull_cursor(&shop).await.expect("read").as_deref(),
        Some("2024-01-02 08:30:00")
    );
    assert!(store.stores_with_api().await.expect("listed").is_empty());
    let mut record = store.get_store(&shop).await.expect("found");
    record.settings.api = Some(orderflow_store::ApiCredentials {
        base_url: "http://127.0.0.1:9/api".into(),
        key: Some("ws-key".into()),
        token: None,
    });
    store.update_store(record).await.expect("updated");
    let pulled: Vec<_> = store
        .stores_with_api()
        .await
        .expect("listed")
        .into_iter()
        .map(|s| s.store_id)
        .collect();
    assert_eq!(pulled, vec![shop]);
}

/// Two handles on one database: on PostgreSQL two stores opened on it, as two nodes would; on
/// SQLite, whose announcements stay in the process that owns the file's writer, one handle.
mod a_delivery_or_forward_stored_through_one_handle_wakes_the_workers_of_another {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (store, _file) = crate::support::sqlite().await;
        super::a_delivery_or_forward_stored_through_one_handle_wakes_the_workers_of_another(
            store.clone(),
            store,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some((store, database)) = crate::support::postgres(module_path!()).await else {
            return;
        };
        let other_node = database.open_again().await;
        super::a_delivery_or_forward_stored_through_one_handle_wakes_the_workers_of_another(
            store, other_node,
        )
        .await;
    }
}

/// Far below the workers' poll intervals (and the "many seconds" a test would set), far above
/// a `NOTIFY` round trip.
const PROMPTLY: std::time::Duration = std::time::Duration::from_millis(200);

async fn woken(signal: &Notify, within: std::time::Duration) -> bool {
    tokio::time::timeout(within, signal.notified())
        .await
        .is_ok()
}

/// Takes the permit a signal keeps for a wake-up nobody waited for.
async fn drain(signals: &[&Notify]) {
    for signal in signals {
        woken(signal, std::time::Duration::from_millis(1)).await;
    }
}

async fn a_delivery_or_forward_stored_through_one_handle_wakes_the_workers_of_another(
    receiving: Arc<dyn Store>,
    working: Arc<dyn Store>,
) {
    let store_id = create_store(receiving.as_ref(), "shop").await;
    let deliveries = working.work_signal(Work::Deliveries);
    let forwards = working.work_signal(Work::Forwards);
    let steps = working.work_signal(Work::Steps);

    // The listener connects in the background; deliveries stored before it listens are found
    // by the catch-up its connection wakes, not by their announcements, so wait until one is
    // heard before measuring.
    let mut heard = false;
    for attempt in 0..50 {
        receiving
            .receive_delivery(delivery(&store_id, &format!("warm-up-{attempt}")))
            .await
            .expect("stored");
        if woken(&deliveries, std::time::Duration::from_millis(100)).await {
            heard = true;
            break;
        }
    }
    assert!(heard, "the working handle never heard a delivery");
    // Late echoes of the warm-up (the local wake-up and the NOTIFY both arrive) die out.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drain(&[&deliveries, &forwards, &steps]).await;
    assert!(
        !woken(&deliveries, std::time::Duration::from_millis(300)).await,
        "nothing was stored, so nothing wakes the intake workers"
    );

    receiving
        .receive_delivery(delivery(&store_id, "evt-1"))
        .await
        .expect("stored");
    assert!(
        woken(&deliveries, PROMPTLY).await,
        "a stored delivery wakes the other handle's intake worker within {PROMPTLY:?}"
    );
    assert!(
        !woken(&forwards, std::time::Duration::from_millis(1)).await
            && !woken(&steps, std::time::Duration::from_millis(1)).await,
        "a delivery wakes neither forwarders nor step workers"
    );

    let placed = receiving
        .place_order(storefront_order(&store_id, "1", true))
        .await
        .expect("placed");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drain(&[&deliveries, &forwards, &steps]).await;
    receiving
        .queue_forward(
            NewForward {
                forward_id: "fwd_1".into(),
                store_id: store_id.clone(),
                order_id: placed.receipt.order_id,
                delivery_id: None,
                url: "http://127.0.0.1:9/orders".into(),
                payload: r#"{"type":"order.created"}"#.into(),
            },
            now(),
        )
        .await
        .expect("queued");
    assert!(
        woken(&forwards, PROMPTLY).await,
        "a queued forward wakes the other handle's forwarder within {PROMPTLY:?}"
    );
}
