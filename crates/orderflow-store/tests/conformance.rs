//! The storage conformance suite: one set of cases that every backend must pass, each run on
//! SQLite and, when `ORDERFLOW_TEST_POSTGRES` names a server, on PostgreSQL.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use orderflow_domain::{Address, OrderId, OrderStatus, Refusal, Shortfall, StockError, StoreId};
use orderflow_store::{
    ApiKey, BackorderLine, CancelOrder, Destination, EditOrder, Error, Idempotency, NewApiKey,
    NewStore, Order, OrderFilter, PageRequest, PlaceOrder, Placement, Product, Receipt, Role,
    Scope, Store, StoreRecord, StoreSettings,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use support::*;

// ----- schema and stores --------------------------------------------------------------------

case!(migrations_are_applied_and_reported_ready);
async fn migrations_are_applied_and_reported_ready(store: Arc<dyn Store>) {
    let readiness = store.readiness().await.expect("readiness is answered");
    assert!(readiness.latest_migration >= 1, "{readiness:?}");
    assert_eq!(
        readiness.applied_migration,
        Some(readiness.latest_migration)
    );
    assert!(readiness.is_ready());

    let default = store
        .get_store(&StoreId::default_store())
        .await
        .expect("the default store exists");
    assert_eq!(default.store_id, StoreId::default_store());
    assert_eq!(default.name, "Default store");
    assert_eq!(default.platform, None);
}

case!(creating_a_store_twice_is_refused_and_an_unknown_store_is_not_found);
async fn creating_a_store_twice_is_refused_and_an_unknown_store_is_not_found(
    store: Arc<dyn Store>,
) {
    let created_at = now();
    let settings = StoreSettings {
        webhook_secret: Some("shpss_current".into()),
        manage_stock: false,
        rules: serde_json::json!([{"kind": "exclude_regions", "regions": ["RM"]}]),
        destination: Some(Destination {
            url: "http://127.0.0.1:9/orders".into(),
            secret: "whsec_c2VjcmV0".into(),
        }),
        ..StoreSettings::default()
    };
    let new = NewStore {
        store_id: sid("acme"),
        name: "Acme".into(),
        platform: Some("shopify".into()),
        settings: settings.clone(),
        now: created_at,
    };
    let expected = StoreRecord {
        store_id: sid("acme"),
        name: "Acme".into(),
        platform: Some("shopify".into()),
        settings,
        created_at,
    };

    assert_eq!(
        store
            .create_store(new.clone())
            .await
            .expect("store is created"),
        expected
    );
    assert_eq!(
        store.get_store(&sid("acme")).await.expect("store is found"),
        expected
    );

    let again = store
        .create_store(NewStore {
            name: "Other".into(),
            ..new
        })
        .await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
    assert_eq!(
        store.get_store(&sid("acme")).await.expect("store is found"),
        expected
    );

    assert_not_found(store.get_store(&sid("nobody")).await);
}

// ----- API keys -----------------------------------------------------------------------------

case!(an_api_key_is_found_by_its_token_hash_with_its_role_store_and_customer);
async fn an_api_key_is_found_by_its_token_hash_with_its_role_store_and_customer(
    store: Arc<dyn Store>,
) {
    let acme = create_store(&*store, "acme").await;
    let created_at = now();
    let customer_key = NewApiKey {
        key_id: "key_customer".into(),
        token_hash: "a".repeat(64),
        role: Role::Customer,
        store_id: Some(acme.clone()),
        customer_id: Some(cid("c-1")),
        now: created_at,
    };
    let admin_key = NewApiKey {
        key_id: "key_admin".into(),
        token_hash: "b".repeat(64),
        role: Role::Admin,
        store_id: None,
        customer_id: None,
        now: created_at,
    };
    store
        .create_api_key(customer_key)
        .await
        .expect("customer key is created");
    store
        .create_api_key(admin_key)
        .await
        .expect("admin key is created");

    assert_eq!(
        store
            .find_api_key(&"a".repeat(64))
            .await
            .expect("lookup works"),
        Some(ApiKey {
            key_id: "key_customer".into(),
            role: Role::Customer,
            store_id: Some(acme),
            customer_id: Some(cid("c-1")),
            created_at,
        })
    );
    assert_eq!(
        store
            .find_api_key(&"b".repeat(64))
            .await
            .expect("lookup works"),
        Some(ApiKey {
            key_id: "key_admin".into(),
            role: Role::Admin,
            store_id: None,
            customer_id: None,
            created_at
        })
    );
    assert_eq!(
        store
            .find_api_key(&"c".repeat(64))
            .await
            .expect("lookup works"),
        None
    );
}

// ----- products -----------------------------------------------------------------------------

case!(putting_a_product_creates_it_and_putting_it_again_updates_it_keeping_its_reservation);
async fn putting_a_product_creates_it_and_putting_it_again_updates_it_keeping_its_reservation(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    let created_at = now();
    let input = orderflow_store::ProductInput {
        category: Some("mugs".into()),
        now: created_at,
        ..product("mug", 1_250, 5)
    };
    let created = store
        .put_product(&shop, input.clone())
        .await
        .expect("product is created");
    let expected = Product {
        store_id: shop.clone(),
        product_id: pid("mug"),
        name: "Product mug".into(),
        category: Some("mugs".into()),
        price_minor: 1_250,
        currency: eur(),
        on_hand: 5,
        reserved: 0,
        created_at,
        updated_at: created_at,
    };
    assert_eq!(created, expected);
    assert_eq!(
        store
            .get_product(&shop, &pid("mug"))
            .await
            .expect("product is found"),
        expected
    );

    placed(&*store, order(&shop, &[("mug", 2)])).await;

    let updated_at = now();
    let update = orderflow_store::ProductInput {
        name: "Big mug".into(),
        category: None,
        price_minor: 1_500,
        on_hand: 8,
        now: updated_at,
        ..input
    };
    let updated = store
        .put_product(&shop, update)
        .await
        .expect("product is updated");
    let expected = Product {
        name: "Big mug".into(),
        category: None,
        price_minor: 1_500,
        on_hand: 8,
        reserved: 2,
        updated_at,
        ..expected
    };
    assert_eq!(updated, expected);
    assert_eq!(
        store
            .get_product(&shop, &pid("mug"))
            .await
            .expect("product is found"),
        expected
    );
}

case!(getting_an_unknown_product_is_not_found);
async fn getting_an_unknown_product_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(
        store
            .get_product(&StoreId::default_store(), &pid("ghost"))
            .await,
    );
    assert_not_found(
        store
            .adjust_stock(&StoreId::default_store(), &pid("ghost"), 1)
            .await,
    );
}

case!(importing_products_writes_them_all_in_one_call_and_updates_existing_ones);
async fn importing_products_writes_them_all_in_one_call_and_updates_existing_ones(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    let written = store
        .import_products(
            &shop,
            vec![
                product("a", 100, 1),
                product("b", 200, 2),
                product("c", 300, 3),
            ],
        )
        .await
        .expect("products are imported");
    assert_eq!(written, 3);
    let written = store
        .import_products(&shop, vec![product("c", 333, 30), product("d", 400, 4)])
        .await
        .expect("products are imported");
    assert_eq!(written, 2);

    let page = store
        .list_products(
            &shop,
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("products are listed");
    let summary: Vec<_> = page
        .items
        .iter()
        .map(|p| (p.product_id.to_string(), p.price_minor, p.on_hand))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".into(), 100, 1),
            ("b".into(), 200, 2),
            ("c".into(), 333, 30),
            ("d".into(), 400, 4)
        ]
    );
    assert!(!page.has_more);
}

case!(products_are_listed_by_id_in_pages_continuing_after_a_cursor);
async fn products_are_listed_by_id_in_pages_continuing_after_a_cursor(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(
        &*store,
        &shop,
        &[
            ("c", 1, 1),
            ("a", 1, 1),
            ("e", 1, 1),
            ("b", 1, 1),
            ("d", 1, 1),
        ],
    )
    .await;
    let page = |after: Option<&str>, limit: u32| {
        let store = store.clone();
        let shop = shop.clone();
        let after = after.map(pid);
        async move {
            let page = store
                .list_products(&shop, PageRequest { limit, after })
                .await
                .expect("products are listed");
            (
                page.items
                    .iter()
                    .map(|p| p.product_id.to_string())
                    .collect::<Vec<_>>(),
                page.has_more,
            )
        }
    };

    assert_eq!(page(None, 2).await, (vec!["a".into(), "b".into()], true));
    assert_eq!(
        page(Some("b"), 2).await,
        (vec!["c".into(), "d".into()], true)
    );
    assert_eq!(page(Some("d"), 2).await, (vec!["e".into()], false));
    assert_eq!(
        page(Some("c"), 2).await,
        (vec!["d".into(), "e".into()], false)
    );
    assert_eq!(page(Some("e"), 2).await, (vec![], false));
    assert_eq!(
        page(Some("bb"), 10).await,
        (vec!["c".into(), "d".into(), "e".into()], false)
    );
}

case!(products_of_another_store_are_invisible);
async fn products_of_another_store_are_invisible(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    let acme = create_store(&*store, "acme").await;
    stock(&*store, &acme, &[("only-acme", 100, 5), ("shared", 100, 7)]).await;
    stock(&*store, &shop, &[("shared", 200, 3)]).await;

    assert_not_found(store.get_product(&shop, &pid("only-acme")).await);
    assert_not_found(store.adjust_stock(&shop, &pid("only-acme"), 1).await);
    let listed = store
        .list_products(
            &shop,
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.product_id.to_string())
            .collect::<Vec<_>>(),
        vec!["shared"]
    );
    assert_eq!(listed.items[0].store_id, shop);
    assert_eq!(
        (listed.items[0].price_minor, listed.items[0].on_hand),
        (200, 3)
    );

    let listed = store
        .list_products(
            &acme,
            PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.product_id.to_string())
            .collect::<Vec<_>>(),
        vec!["only-acme", "shared"]
    );
    assert_eq!(level(&*store, &acme, "shared").await, (7, 0));

    let refused = refusal(store.place_order(order(&shop, &[("only-acme", 1)])).await);
    assert_eq!(refused, Refusal::UnknownProducts(vec![pid("only-acme")]));
}

// ----- stock --------------------------------------------------------------------------------

case!(adjusting_stock_adds_and_removes_units);
async fn adjusting_stock_adds_and_removes_units(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;

    let received = store
        .adjust_stock(&shop, &pid("a"), 3)
        .await
        .expect("units are received");
    assert_eq!((received.on_hand, received.reserved), (8, 0));
    let written_off = store
        .adjust_stock(&shop, &pid("a"), -6)
        .await
        .expect("units are written off");
    assert_eq!((written_off.on_hand, written_off.reserved), (2, 0));
    assert_eq!(level(&*store, &shop, "a").await, (2, 0));

    let negative = store.adjust_stock(&shop, &pid("a"), -3).await;
    assert!(
        matches!(negative, Err(Error::Stock(StockError::NegativeOnHand))),
        "{negative:?}"
    );
    assert_eq!(level(&*store, &shop, "a").await, (2, 0));
}

case!(removing_stock_below_what_is_reserved_is_refused_and_changes_nothing);
async fn removing_stock_below_what_is_reserved_is_refused_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    placed(&*store, order(&shop, &[("a", 3)])).await;

    let refused = store.adjust_stock(&shop, &pid("a"), -3).await;
    assert!(
        matches!(
            refused,
            Err(Error::Stock(StockError::BelowReserved {
                on_hand: 2,
                reserved: 3
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(level(&*store, &shop, "a").await, (5, 3));

    let allowed = store
        .adjust_stock(&shop, &pid("a"), -2)
        .await
        .expect("unreserved units may go");
    assert_eq!((allowed.on_hand, allowed.reserved), (3, 3));
}

case!(putting_a_product_with_on_hand_below_what_is_reserved_is_refused_and_changes_nothing);
async fn putting_a_product_with_on_hand_below_what_is_reserved_is_refused_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    placed(&*store, order(&shop, &[("a", 3)])).await;
    let before = store
        .get_product(&shop, &pid("a"))
        .await
        .expect("product exists");

    let refused = store
        .put_product(
            &shop,
            orderflow_store::ProductInput {
                name: "Renamed".into(),
                ..product("a", 999, 2)
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::Stock(StockError::BelowReserved {
                on_hand: 2,
                reserved: 3
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(
        store
            .get_product(&shop, &pid("a"))
            .await
            .expect("product exists"),
        before
    );

    let negative = store.put_product(&shop, product("new", 100, -1)).await;
    assert!(
        matches!(negative, Err(Error::Stock(StockError::NegativeOnHand))),
        "{negative:?}"
    );
    assert_not_found(store.get_product(&shop, &pid("new")).await);
}

// ----- placing orders -----------------------------------------------------------------------

case!(placing_an_order_reserves_every_line_and_confirms_it);
async fn placing_an_order_reserves_every_line_and_confirms_it(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 250, 10), ("b", 1_000, 3)]).await;
    let address = Address {
        city: Some("Santiago".into()),
        country: Some("CL".into()),
        ..Address::default()
    };
    let request = PlaceOrder {
        run: None,
        customer: Some(customer("c-1")),
        shipping_address: Some(address.clone()),
        ..order(&shop, &[("a", 4), ("b", 1)])
    };
    let (order_id, placed_at) = (request.order_id.clone(), request.now);

    let placement = store.place_order(request).await.expect("order is placed");
    assert_eq!(
        placement,
        Placement {
            receipt: Receipt {
                order_id: order_id.clone(),
                order_status: OrderStatus::Confirmed,
                products: vec![line("a", 4), line("b", 1)],
                unavailable: vec![],
            },
            replayed: false,
        }
    );
    let a = store
        .get_product(&shop, &pid("a"))
        .await
        .expect("product exists");
    assert_eq!((a.on_hand, a.reserved, a.available()), (10, 4, 6));
    let b = store
        .get_product(&shop, &pid("b"))
        .await
        .expect("product exists");
    assert_eq!((b.on_hand, b.reserved, b.available()), (3, 1, 2));

    let stored = store
        .get_order(&Scope::Everything, &order_id)
        .await
        .expect("order is readable");
    assert_eq!(
        statuses(&stored),
        vec![OrderStatus::Pending, OrderStatus::Confirmed]
    );
    assert!(
        stored.timeline.iter().all(|entry| entry.at == placed_at),
        "{:?}",
        stored.timeline
    );
    assert_eq!(
        stored,
        Order {
            order_id,
            store_id: shop.clone(),
            external_id: None,
            status: OrderStatus::Confirmed,
            lines: vec![priced("a", 4, 250), priced("b", 1, 1_000)],
            backorder: vec![],
            customer: Some(customer("c-1")),
            shipping_address: Some(address),
            currency: Some(eur()),
            total_minor: 2_000,
            timeline: stored.timeline.clone(),
            version: 1,
            created_at: placed_at,
            updated_at: placed_at,
            source: None,
        }
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 10, 4), ("b".into(), 3, 1)]
    );
}

case!(an_order_with_too_little_stock_is_refused_naming_every_short_line_and_changes_nothing);
async fn an_order_with_too_little_stock_is_refused_naming_every_short_line_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(
        &*store,
        &shop,
        &[("a", 100, 3), ("b", 100, 5), ("c", 100, 0)],
    )
    .await;
    let first = placed(&*store, order(&shop, &[("a", 1)])).await;

    let refused = refusal(
        store
            .place_order(order(&shop, &[("a", 3), ("b", 5), ("c", 1)]))
            .await,
    );
    assert_eq!(
        refused,
        Refusal::Short(vec![
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
        ])
    );
    assert_eq!(level(&*store, &shop, "a").await, (3, 1));
    assert_eq!(level(&*store, &shop, "b").await, (5, 0));
    assert_eq!(level(&*store, &shop, "c").await, (0, 0));
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default()).await,
        vec![first.order_id]
    );
}

case!(a_partial_order_reserves_what_is_available_and_backorders_the_rest);
async fn a_partial_order_reserves_what_is_available_and_backorders_the_rest(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 2), ("b", 10, 5), ("c", 1, 0)]).await;
    let request = PlaceOrder {
        run: None,
        allow_partial: true,
        ..order(&shop, &[("a", 5), ("b", 1), ("c", 2)])
    };
    let order_id = request.order_id.clone();

    let placement = store
        .place_order(request)
        .await
        .expect("partial order is placed");
    assert_eq!(
        placement.receipt,
        Receipt {
            order_id: order_id.clone(),
            order_status: OrderStatus::Backordered,
            products: vec![line("a", 2), line("b", 1)],
            unavailable: vec![
                Shortfall {
                    product_id: pid("a"),
                    requested: 5,
                    available: 2
                },
                Shortfall {
                    product_id: pid("c"),
                    requested: 2,
                    available: 0
                },
            ],
        }
    );
    assert!(!placement.replayed);

    let stored = store
        .get_order(&Scope::Everything, &order_id)
        .await
        .expect("order is readable");
    assert_eq!(stored.status, OrderStatus::Backordered);
    assert_eq!(
        statuses(&stored),
        vec![OrderStatus::Pending, OrderStatus::Backordered]
    );
    assert_eq!(stored.lines, vec![priced("a", 2, 100), priced("b", 1, 10)]);
    assert_eq!(
        stored.backorder,
        vec![
            BackorderLine {
                product_id: pid("a"),
                quantity: quantity(3)
            },
            BackorderLine {
                product_id: pid("c"),
                quantity: quantity(2)
            },
        ]
    );
    assert_eq!(
        (stored.currency, stored.total_minor, stored.version),
        (Some(eur()), 210, 1)
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 2, 2), ("b".into(), 5, 1), ("c".into(), 0, 0)]
    );
}

case!(an_order_for_an_unknown_product_is_refused_and_changes_nothing);
async fn an_order_for_an_unknown_product_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;

    let refused = refusal(
        store
            .place_order(order(&shop, &[("a", 1), ("ghost", 1), ("phantom", 2)]))
            .await,
    );
    assert_eq!(
        refused,
        Refusal::UnknownProducts(vec![pid("ghost"), pid("phantom")])
    );
    let partial = PlaceOrder {
        run: None,
        allow_partial: true,
        ..order(&shop, &[("a", 1), ("ghost", 1)])
    };
    assert_eq!(
        refusal(store.place_order(partial).await),
        Refusal::UnknownProducts(vec![pid("ghost")])
    );

    assert_eq!(level(&*store, &shop, "a").await, (5, 0));
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default()).await,
        Vec::<OrderId>::new()
    );
}

case!(an_order_priced_in_more_than_one_currency_is_refused_and_changes_nothing);
async fn an_order_priced_in_more_than_one_currency_is_refused_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let dollars = orderflow_store::ProductInput {
        currency: currency("USD"),
        ..product("b", 100, 5)
    };
    store
        .put_product(&shop, dollars)
        .await
        .expect("product is created");

    let refused = store.place_order(order(&shop, &[("a", 1), ("b", 1)])).await;
    assert!(
        matches!(refused, Err(Error::MixedCurrencies)),
        "{refused:?}"
    );
    assert_eq!(level(&*store, &shop, "a").await, (5, 0));
    assert_eq!(level(&*store, &shop, "b").await, (5, 0));
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default()).await,
        Vec::<OrderId>::new()
    );
}

// ----- idempotency --------------------------------------------------------------------------

fn keyed(store_id: &StoreId, key: &str, hash: &str) -> PlaceOrder {
    PlaceOrder {
        run: None,
        idempotency: Some(Idempotency {
            key: key.into(),
            request_hash: hash.into(),
        }),
        ..order(store_id, &[("a", 2)])
    }
}

case!(retrying_with_the_same_idempotency_key_replays_the_first_receipt_without_a_second_order);
async fn retrying_with_the_same_idempotency_key_replays_the_first_receipt_without_a_second_order(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 10)]).await;
    let first = store
        .place_order(keyed(&shop, "key-1", "hash-1"))
        .await
        .expect("order is placed");
    assert!(!first.replayed);

    let retry = keyed(&shop, "key-1", "hash-1");
    let retry_id = retry.order_id.clone();
    let second = store.place_order(retry).await.expect("retry is answered");
    assert_eq!(
        second,
        Placement {
            receipt: first.receipt.clone(),
            replayed: true
        }
    );

    assert_eq!(level(&*store, &shop, "a").await, (10, 2));
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default()).await,
        vec![first.receipt.order_id]
    );
    assert_not_found(store.get_order(&Scope::Everything, &retry_id).await);
}

case!(reusing_an_idempotency_key_for_a_different_request_is_refused_and_changes_nothing);
async fn reusing_an_idempotency_key_for_a_different_request_is_refused_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 10)]).await;
    let first = store
        .place_order(keyed(&shop, "key-1", "hash-1"))
        .await
        .expect("order is placed");

    let reused = store.place_order(keyed(&shop, "key-1", "hash-2")).await;
    assert!(
        matches!(reused, Err(Error::IdempotencyKeyReused)),
        "{reused:?}"
    );

    assert_eq!(level(&*store, &shop, "a").await, (10, 2));
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default()).await,
        vec![first.receipt.order_id]
    );
}

case!(an_idempotency_key_used_in_one_store_is_independent_of_the_same_key_in_another);
async fn an_idempotency_key_used_in_one_store_is_independent_of_the_same_key_in_another(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    let acme = create_store(&*store, "acme").await;
    stock(&*store, &shop, &[("a", 100, 10)]).await;
    stock(&*store, &acme, &[("a", 100, 10)]).await;

    let in_shop = store
        .place_order(keyed(&shop, "key-1", "hash-1"))
        .await
        .expect("order is placed");
    let in_acme = store
        .place_order(keyed(&acme, "key-1", "hash-1"))
        .await
        .expect("order is placed");
    assert!(!in_acme.replayed);
    assert_ne!(in_acme.receipt.order_id, in_shop.receipt.order_id);
    let other_hash = store
        .place_order(keyed(&acme, "key-2", "hash-9"))
        .await
        .expect("order is placed");
    assert!(!other_hash.replayed);

    assert_eq!(level(&*store, &shop, "a").await, (10, 2));
    assert_eq!(level(&*store, &acme, "a").await, (10, 4));
    assert_eq!(
        listed(&*store, &Scope::Store(acme), OrderFilter::default()).await,
        vec![other_hash.receipt.order_id, in_acme.receipt.order_id]
    );
}

case!(
    concurrent_retries_with_one_idempotency_key_place_exactly_one_order,
    multi_thread
);
async fn concurrent_retries_with_one_idempotency_key_place_exactly_one_order(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 100)]).await;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let request = keyed(&shop, "race", "hash-race");
            tokio::spawn(async move { store.place_order(request).await })
        })
        .collect();
    let mut placements = Vec::new();
    for task in tasks {
        placements.push(
            task.await
                .expect("task completes")
                .expect("every retry is answered"),
        );
    }

    let originals: Vec<_> = placements.iter().filter(|p| !p.replayed).collect();
    assert_eq!(originals.len(), 1, "{placements:?}");
    let receipt = &originals[0].receipt;
    assert!(
        placements.iter().all(|p| &p.receipt == receipt),
        "{placements:?}"
    );
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default()).await,
        vec![receipt.order_id.clone()]
    );
    assert_eq!(level(&*store, &shop, "a").await, (100, 2));
}

// ----- reading orders -----------------------------------------------------------------------

case!(an_order_is_visible_only_within_its_store_and_to_its_own_customer);
async fn an_order_is_visible_only_within_its_store_and_to_its_own_customer(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    let acme = create_store(&*store, "acme").await;
    stock(&*store, &shop, &[("a", 100, 10)]).await;
    let placed = placed(
        &*store,
        PlaceOrder {
            run: None,
            customer: Some(customer("c-1")),
            ..order(&shop, &[("a", 2)])
        },
    )
    .await;
    let id = &placed.order_id;

    assert_not_found(store.get_order(&Scope::Store(acme.clone()), id).await);
    assert_not_found(
        store
            .get_order(&Scope::Customer(shop.clone(), cid("c-2")), id)
            .await,
    );
    assert_not_found(
        store
            .get_order(&Scope::Customer(acme.clone(), cid("c-1")), id)
            .await,
    );
    assert_not_found(store.get_order(&Scope::Everything, &order_id()).await);
    for scope in [
        Scope::Everything,
        Scope::Store(shop.clone()),
        Scope::Customer(shop.clone(), cid("c-1")),
    ] {
        assert_eq!(
            store.get_order(&scope, id).await.expect("order is visible"),
            placed,
            "{scope:?}"
        );
    }

    let other_store = Scope::Store(acme);
    let cancel = CancelOrder {
        runs: None,
        order_id: id.clone(),
        reason: None,
        now: now(),
    };
    assert_not_found(store.cancel_order(&other_store, cancel).await);
    let edit = EditOrder {
        order_id: id.clone(),
        expected_version: None,
        lines: Some(lines(&[("a", 1)])),
        shipping_address: None,
        now: now(),
    };
    assert_not_found(
        store
            .edit_order(&Scope::Customer(shop.clone(), cid("c-2")), edit)
            .await,
    );
    assert_eq!(
        store
            .get_order(&Scope::Everything, id)
            .await
            .expect("order is readable"),
        placed
    );
    assert_eq!(level(&*store, &shop, "a").await, (10, 2));
}

// ----- editing and cancelling ---------------------------------------------------------------

fn edit(order_id: &OrderId, expected_version: Option<i64>, pairs: &[(&str, u64)]) -> EditOrder {
    EditOrder {
        order_id: order_id.clone(),
        expected_version,
        lines: Some(lines(pairs)),
        shipping_address: None,
        now: now(),
    }
}

case!(editing_lines_re_reserves_the_difference_counting_the_orders_own_reservation_as_available);
async fn editing_lines_re_reserves_the_difference_counting_the_orders_own_reservation_as_available(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(
        &*store,
        &shop,
        &[("a", 100, 6), ("b", 10, 5), ("c", 1_000, 2)],
    )
    .await;
    let before = placed(&*store, order(&shop, &[("a", 4), ("b", 2)])).await;
    placed(&*store, order(&shop, &[("a", 1)])).await;
    assert_eq!(level(&*store, &shop, "a").await, (6, 5));

    let change = edit(&before.order_id, Some(1), &[("a", 5), ("c", 2)]);
    let edited_at = change.now;
    let edited = store
        .edit_order(&Scope::Store(shop.clone()), change)
        .await
        .expect("edit fits");
    assert_eq!(
        edited,
        Order {
            lines: vec![priced("a", 5, 100), priced("c", 2, 1_000)],
            total_minor: 2_500,
            version: 2,
            updated_at: edited_at,
            ..before.clone()
        }
    );
    assert_eq!(
        statuses(&edited),
        vec![OrderStatus::Pending, OrderStatus::Confirmed]
    );
    assert_eq!(
        store
            .get_order(&Scope::Everything, &before.order_id)
            .await
            .expect("readable"),
        edited
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 6, 6), ("b".into(), 5, 0), ("c".into(), 2, 2)]
    );

    let shrunk = store
        .edit_order(
            &Scope::Everything,
            edit(&before.order_id, None, &[("a", 1)]),
        )
        .await;
    let shrunk = shrunk.expect("a smaller edit fits");
    assert_eq!(
        (shrunk.lines.clone(), shrunk.total_minor, shrunk.version),
        (vec![priced("a", 1, 100)], 100, 3)
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 6, 2), ("b".into(), 5, 0), ("c".into(), 2, 0)]
    );
}

case!(an_edit_needing_more_than_is_available_is_refused_and_changes_nothing);
async fn an_edit_needing_more_than_is_available_is_refused_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(
        &*store,
        &shop,
        &[("a", 100, 6), ("b", 10, 5), ("c", 1_000, 1)],
    )
    .await;
    let before = placed(&*store, order(&shop, &[("a", 4), ("b", 2)])).await;
    placed(&*store, order(&shop, &[("a", 1)])).await;

    let refused = refusal(
        store
            .edit_order(
                &Scope::Everything,
                edit(&before.order_id, Some(1), &[("a", 6), ("c", 2)]),
            )
            .await,
    );
    assert_eq!(
        refused,
        Refusal::Short(vec![
            Shortfall {
                product_id: pid("a"),
                requested: 6,
                available: 5
            },
            Shortfall {
                product_id: pid("c"),
                requested: 2,
                available: 1
            },
        ])
    );
    let unknown = refusal(
        store
            .edit_order(
                &Scope::Everything,
                edit(&before.order_id, None, &[("ghost", 1)]),
            )
            .await,
    );
    assert_eq!(unknown, Refusal::UnknownProducts(vec![pid("ghost")]));

    assert_eq!(
        store
            .get_order(&Scope::Everything, &before.order_id)
            .await
            .expect("readable"),
        before
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 6, 5), ("b".into(), 5, 2), ("c".into(), 1, 0)]
    );
}

case!(an_edit_based_on_a_stale_version_is_refused_naming_the_current_one);
async fn an_edit_based_on_a_stale_version_is_refused_naming_the_current_one(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 10)]).await;
    let placed = placed(&*store, order(&shop, &[("a", 1)])).await;
    let first = store
        .edit_order(
            &Scope::Everything,
            edit(&placed.order_id, Some(1), &[("a", 2)]),
        )
        .await;
    assert_eq!(first.expect("edit at the current version").version, 2);

    let stale = store
        .edit_order(
            &Scope::Everything,
            edit(&placed.order_id, Some(1), &[("a", 5)]),
        )
        .await;
    assert!(
        matches!(stale, Err(Error::VersionMismatch { current: 2 })),
        "{stale:?}"
    );
    let order = store
        .get_order(&Scope::Everything, &placed.order_id)
        .await
        .expect("readable");
    assert_eq!((order.lines, order.version), (vec![priced("a", 2, 100)], 2));
    assert_eq!(level(&*store, &shop, "a").await, (10, 2));
}

case!(an_address_only_edit_keeps_the_lines_and_bumps_the_version);
async fn an_address_only_edit_keeps_the_lines_and_bumps_the_version(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 10)]).await;
    let old_address = Address {
        city: Some("Lyon".into()),
        country: Some("FR".into()),
        ..Address::default()
    };
    let before = placed(
        &*store,
        PlaceOrder {
            run: None,
            shipping_address: Some(old_address),
            ..order(&shop, &[("a", 3)])
        },
    )
    .await;

    let new_address = Address {
        city: Some("Paris".into()),
        country: Some("FR".into()),
        ..Address::default()
    };
    let change = EditOrder {
        order_id: before.order_id.clone(),
        expected_version: Some(1),
        lines: None,
        shipping_address: Some(new_address.clone()),
        now: now(),
    };
    let edited_at = change.now;
    let edited = store
        .edit_order(&Scope::Everything, change)
        .await
        .expect("address is changed");
    assert_eq!(
        edited,
        Order {
            shipping_address: Some(new_address),
            version: 2,
            updated_at: edited_at,
            ..before.clone()
        }
    );
    assert_eq!(level(&*store, &shop, "a").await, (10, 3));
}

case!(editing_a_backordered_order_so_that_everything_is_reserved_confirms_it);
async fn editing_a_backordered_order_so_that_everything_is_reserved_confirms_it(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 2)]).await;
    let before = placed(
        &*store,
        PlaceOrder {
            run: None,
            allow_partial: true,
            ..order(&shop, &[("a", 5)])
        },
    )
    .await;
    assert_eq!(before.status, OrderStatus::Backordered);
    store
        .adjust_stock(&shop, &pid("a"), 3)
        .await
        .expect("units are received");

    let change = edit(&before.order_id, Some(1), &[("a", 5)]);
    let edited_at = change.now;
    let edited = store
        .edit_order(&Scope::Everything, change)
        .await
        .expect("edit fits now");
    assert_eq!(edited.status, OrderStatus::Confirmed);
    assert_eq!(
        statuses(&edited),
        vec![
            OrderStatus::Pending,
            OrderStatus::Backordered,
            OrderStatus::Confirmed
        ]
    );
    assert_eq!(
        edited.timeline.last().map(|entry| entry.at),
        Some(edited_at)
    );
    assert_eq!(edited.backorder, vec![]);
    assert_eq!(
        (edited.lines.clone(), edited.total_minor, edited.version),
        (vec![priced("a", 5, 100)], 500, 2)
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 5)]
    );
}

case!(cancelling_an_order_releases_its_reservation_exactly_once);
async fn cancelling_an_order_releases_its_reservation_exactly_once(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let before = placed(&*store, order(&shop, &[("a", 3)])).await;
    let cancel = CancelOrder {
        runs: None,
        order_id: before.order_id.clone(),
        reason: Some("customer asked".into()),
        now: now(),
    };
    let cancelled_at = cancel.now;

    let cancelled = store
        .cancel_order(&Scope::Everything, cancel.clone())
        .await
        .expect("order is cancelled");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.version, 2);
    assert_eq!(cancelled.updated_at, cancelled_at);
    assert_eq!(cancelled.lines, before.lines);
    assert_eq!(
        statuses(&cancelled),
        vec![
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Cancelled
        ]
    );
    let last = cancelled.timeline.last().expect("a timeline");
    assert_eq!(
        (last.at, last.note.as_deref()),
        (cancelled_at, Some("customer asked"))
    );
    assert_eq!(level(&*store, &shop, "a").await, (5, 0));

    placed(&*store, order(&shop, &[("a", 2)])).await;
    let again = store
        .cancel_order(
            &Scope::Everything,
            CancelOrder {
                runs: None,
                reason: Some("twice".into()),
                now: now(),
                ..cancel
            },
        )
        .await
        .expect("cancelling again is answered");
    assert_eq!(again, cancelled);
    assert_eq!(
        store
            .get_order(&Scope::Everything, &before.order_id)
            .await
            .expect("still readable"),
        cancelled
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 2)]
    );
}

case!(a_cancelled_order_cannot_be_edited);
async fn a_cancelled_order_cannot_be_edited(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 5)]).await;
    let before = placed(&*store, order(&shop, &[("a", 3)])).await;
    let cancel = CancelOrder {
        runs: None,
        order_id: before.order_id.clone(),
        reason: None,
        now: now(),
    };
    let cancelled = store
        .cancel_order(&Scope::Everything, cancel)
        .await
        .expect("order is cancelled");

    let refused = store
        .edit_order(
            &Scope::Everything,
            edit(&before.order_id, None, &[("a", 1)]),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::NotEditable(OrderStatus::Cancelled))),
        "{refused:?}"
    );
    let address_only = EditOrder {
        order_id: before.order_id.clone(),
        expected_version: Some(2),
        lines: None,
        shipping_address: Some(Address::default()),
        now: now(),
    };
    let refused = store.edit_order(&Scope::Everything, address_only).await;
    assert!(
        matches!(refused, Err(Error::NotEditable(OrderStatus::Cancelled))),
        "{refused:?}"
    );

    assert_eq!(
        store
            .get_order(&Scope::Everything, &before.order_id)
            .await
            .expect("readable"),
        cancelled
    );
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 5, 0)]
    );
}

case!(cancelling_a_backordered_order_releases_only_what_it_reserved);
async fn cancelling_a_backordered_order_releases_only_what_it_reserved(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 2), ("b", 100, 4)]).await;
    let other = placed(&*store, order(&shop, &[("b", 1)])).await;
    let partial = placed(
        &*store,
        PlaceOrder {
            run: None,
            allow_partial: true,
            ..order(&shop, &[("a", 5), ("b", 2)])
        },
    )
    .await;
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 2, 2), ("b".into(), 4, 3)]
    );

    let cancel = CancelOrder {
        runs: None,
        order_id: partial.order_id.clone(),
        reason: None,
        now: now(),
    };
    let cancelled = store
        .cancel_order(&Scope::Everything, cancel)
        .await
        .expect("order is cancelled");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("a".into(), 2, 0), ("b".into(), 4, 1)]
    );
    let other = store
        .get_order(&Scope::Everything, &other.order_id)
        .await
        .expect("readable");
    assert_eq!(other.status, OrderStatus::Confirmed);
}

// ----- listing orders -----------------------------------------------------------------------

case!(orders_are_listed_newest_first_in_pages_continuing_before_a_cursor);
async fn orders_are_listed_newest_first_in_pages_continuing_before_a_cursor(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("a", 100, 100)]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(placed(&*store, order(&shop, &[("a", 1)])).await.order_id);
    }
    let page = |before: Option<OrderId>| {
        let store = store.clone();
        async move {
            let page = store
                .list_orders(
                    &Scope::Store(StoreId::default_store()),
                    OrderFilter {
                        before,
                        ..filter(2)
                    },
                )
                .await
                .expect("orders are listed");
            (
                page.items
                    .into_iter()
                    .map(|order| order.order_id)
                    .collect::<Vec<_>>(),
                page.has_more,
            )
        }
    };

    assert_eq!(
        page(None).await,
        (vec![ids[4].clone(), ids[3].clone()], true)
    );
    assert_eq!(
        page(Some(ids[3].clone())).await,
        (vec![ids[2].clone(), ids[1].clone()], true)
    );
    assert_eq!(
        page(Some(ids[1].clone())).await,
        (vec![ids[0].clone()], false)
    );
    assert_eq!(
        page(Some(ids[2].clone())).await,
        (vec![ids[1].clone(), ids[0].clone()], false)
    );
    assert_eq!(page(Some(ids[0].clone())).await, (vec![], false));

    let full = store
        .list_orders(&Scope::Everything, filter(5))
        .await
        .expect("orders are listed");
    assert_eq!(full.items.len(), 5);
    assert!(!full.has_more);
    assert_eq!(
        full.items[0],
        store
            .get_order(&Scope::Everything, &ids[4])
            .await
            .expect("readable")
    );
}

case!(orders_are_listed_by_scope_and_filtered_by_status_customer_and_store);
async fn orders_are_listed_by_scope_and_filtered_by_status_customer_and_store(
    store: Arc<dyn Store>,
) {
    let shop = StoreId::default_store();
    let acme = create_store(&*store, "acme").await;
    stock(&*store, &shop, &[("a", 100, 100)]).await;
    stock(&*store, &acme, &[("a", 100, 100)]).await;
    let place = |store_id: &StoreId, who: Option<&str>| PlaceOrder {
        run: None,
        customer: who.map(customer),
        ..order(store_id, &[("a", 1)])
    };
    let o1 = placed(&*store, place(&shop, Some("c-1"))).await.order_id;
    let o2 = placed(&*store, place(&shop, Some("c-2"))).await.order_id;
    let o3 = placed(&*store, place(&shop, None)).await.order_id;
    let o4 = placed(&*store, place(&acme, Some("c-1"))).await.order_id;
    let o5 = placed(&*store, place(&shop, Some("c-1"))).await.order_id;
    let cancel = |order_id: &OrderId| CancelOrder {
        runs: None,
        order_id: order_id.clone(),
        reason: None,
        now: now(),
    };
    store
        .cancel_order(&Scope::Everything, cancel(&o2))
        .await
        .expect("cancelled");
    store
        .cancel_order(&Scope::Everything, cancel(&o5))
        .await
        .expect("cancelled");

    let everything = Scope::Everything;
    let in_shop = Scope::Store(shop.clone());
    let c1_in_shop = Scope::Customer(shop.clone(), cid("c-1"));
    let in_acme = Scope::Store(acme.clone());
    let c2_in_acme = Scope::Customer(acme.clone(), cid("c-2"));
    let all = OrderFilter::default;
    let with_status = |status| OrderFilter {
        status: Some(status),
        ..OrderFilter::default()
    };
    let of_customer = |id: &str| OrderFilter {
        customer_id: Some(cid(id)),
        ..OrderFilter::default()
    };

    let cases: Vec<(&Scope, OrderFilter, Vec<&OrderId>)> = vec![
        (&everything, all(), vec![&o5, &o4, &o3, &o2, &o1]),
        (&in_shop, all(), vec![&o5, &o3, &o2, &o1]),
        (&in_acme, all(), vec![&o4]),
        (
            &everything,
            OrderFilter {
                store_id: Some(acme.clone()),
                ..all()
            },
            vec![&o4],
        ),
        (&c1_in_shop, all(), vec![&o5, &o1]),
        (&c2_in_acme, all(), vec![]),
        (
            &everything,
            with_status(OrderStatus::Cancelled),
            vec![&o5, &o2],
        ),
        (
            &in_shop,
            with_status(OrderStatus::Confirmed),
            vec![&o3, &o1],
        ),
        (&everything, of_customer("c-1"), vec![&o5, &o4, &o1]),
        (&in_shop, of_customer("c-1"), vec![&o5, &o1]),
        (
            &everything,
            OrderFilter {
                status: Some(OrderStatus::Confirmed),
                ..of_customer("c-1")
            },
            vec![&o4, &o1],
        ),
        (&c1_in_shop, of_customer("c-2"), vec![]),
        (&c1_in_shop, with_status(OrderStatus::Cancelled), vec![&o5]),
    ];
    for (scope, filter, expected) in cases {
        let described = format!("{scope:?} {filter:?}");
        let expected: Vec<OrderId> = expected.into_iter().cloned().collect();
        assert_eq!(
            listed(&*store, scope, filter).await,
            expected,
            "{described}"
        );
    }
}

// ----- concurrency --------------------------------------------------------------------------

case!(concurrent_orders_never_oversell, multi_thread);
async fn concurrent_orders_never_oversell(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    stock(&*store, &shop, &[("scarce", 100, 10)]).await;

    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            let request = order(&shop, &[("scarce", 1)]);
            tokio::spawn(async move { store.place_order(request).await })
        })
        .collect();
    let (mut placed, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task completes") {
            Ok(placement) => {
                assert_eq!(placement.receipt.order_status, OrderStatus::Confirmed);
                placed += 1;
            }
            Err(Error::Refused(refusal)) => {
                let sold_out = Shortfall {
                    product_id: pid("scarce"),
                    requested: 1,
                    available: 0,
                };
                assert_eq!(refusal, Refusal::Short(vec![sold_out]));
                refused += 1;
            }
            Err(other) => panic!("expected a placement or a refusal, got {other:?}"),
        }
    }

    assert_eq!((placed, refused), (10, 30));
    assert_eq!(level(&*store, &shop, "scarce").await, (10, 10));
    assert_eq!(
        audit_is_balanced(&*store, &shop).await,
        vec![("scarce".into(), 10, 10)]
    );
    assert_eq!(
        listed(&*store, &Scope::Everything, OrderFilter::default())
            .await
            .len(),
        10
    );
}

const WORKLOAD_PRODUCTS: [&str; 5] = ["p0", "p1", "p2", "p3", "p4"];

/// What one task of the mixed workload saw: the reservations its live orders hold according to
/// the store's answers, and every answer that was not a placement, an edit, a cancellation or
/// a business refusal.
#[derive(Debug, Default)]
struct WorkloadOutcome {
    reserved: HashMap<String, i64>,
    unexpected: Vec<String>,
    /// How often each kind of answer came: placed, edited, cancelled, refused.
    counts: [usize; 4],
}

struct OwnOrder {
    order_id: OrderId,
    version: i64,
    reserved: Vec<(String, i64)>,
}

fn random_lines(rng: &mut StdRng, count: usize) -> Vec<(&'static str, u64)> {
    rand::seq::index::sample(rng, WORKLOAD_PRODUCTS.len(), count)
        .into_iter()
        .map(|index| (WORKLOAD_PRODUCTS[index], rng.random_range(1..=2)))
        .collect()
}

async fn workload_task(store: Arc<dyn Store>, seed: u64) -> WorkloadOutcome {
    let shop = StoreId::default_store();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut live: Vec<OwnOrder> = Vec::new();
    let mut outcome = WorkloadOutcome::default();
    for step in 0..25 {
        let choice = rng.random_range(0..10);
        if live.is_empty() || choice < 4 {
            let count = rng.random_range(2..=3);
            let request = PlaceOrder {
                run: None,
                allow_partial: rng.random_bool(0.3),
                ..order(&shop, &random_lines(&mut rng, count))
            };
            let order_id = request.order_id.clone();
            match store.place_order(request).await {
                Ok(placement) => {
                    outcome.counts[0] += 1;
                    let reserved =
                        placement.receipt.products.iter().map(|line| {
                            (line.product_id.to_string(), i64::from(line.quantity.get()))
                        });
                    live.push(OwnOrder {
                        order_id,
                        version: 1,
                        reserved: reserved.collect(),
                    });
                }
                Err(Error::Refused(Refusal::Short(_))) => outcome.counts[3] += 1,
                Err(other) => outcome
                    .unexpected
                    .push(format!("step {step}: place: {other:?}")),
            }
        } else if choice < 7 {
            let index = rng.random_range(0..live.len());
            let count = rng.random_range(1..=3);
            let change = edit(
                &live[index].order_id,
                Some(live[index].version),
                &random_lines(&mut rng, count),
            );
            match store.edit_order(&Scope::Store(shop.clone()), change).await {
                Ok(edited) => {
                    outcome.counts[1] += 1;
                    live[index].version = edited.version;
                    live[index].reserved = edited
                        .lines
                        .iter()
                        .map(|line| (line.product_id.to_string(), i64::from(line.quantity.get())))
                        .collect();
                }
                Err(Error::Refused(Refusal::Short(_))) => outcome.counts[3] += 1,
                Err(other) => outcome
                    .unexpected
                    .push(format!("step {step}: edit: {other:?}")),
            }
        } else {
            let index = rng.random_range(0..live.len());
            let cancel = CancelOrder {
                runs: None,
                order_id: live[index].order_id.clone(),
                reason: None,
                now: now(),
            };
            match store
                .cancel_order(&Scope::Store(shop.clone()), cancel)
                .await
            {
                Ok(cancelled) if cancelled.status == OrderStatus::Cancelled => {
                    outcome.counts[2] += 1;
                    live.swap_remove(index);
                }
                Ok(other) => outcome
                    .unexpected
                    .push(format!("step {step}: cancel left {:?}", other.status)),
                Err(other) => outcome
                    .unexpected
                    .push(format!("step {step}: cancel: {other:?}")),
            }
        }
    }
    for (product, units) in live.iter().flat_map(|order| order.reserved.iter()) {
        *outcome.reserved.entry(product.clone()).or_default() += units;
    }
    outcome
}

case!(
    a_concurrent_mixed_workload_keeps_the_books_balanced,
    multi_thread
);
async fn a_concurrent_mixed_workload_keeps_the_books_balanced(store: Arc<dyn Store>) {
    let shop = StoreId::default_store();
    let products: Vec<_> = WORKLOAD_PRODUCTS.iter().map(|&id| (id, 100, 20)).collect();
    stock(&*store, &shop, &products).await;
    let seed = rand::random::<u64>();
    eprintln!("mixed workload seed: {seed}");

    let tasks: Vec<_> = (0..32u64)
        .map(|task| tokio::spawn(workload_task(store.clone(), seed.wrapping_add(task))))
        .collect();
    let mut expected_reserved: HashMap<String, i64> = HashMap::new();
    let mut unexpected = Vec::new();
    let mut counts = [0; 4];
    for (task, handle) in tasks.into_iter().enumerate() {
        let outcome = handle.await.expect("task completes");
        for (total, count) in counts.iter_mut().zip(outcome.counts) {
            *total += count;
        }
        for (product, units) in outcome.reserved {
            *expected_reserved.entry(product).or_default() += units;
        }
        unexpected.extend(
            outcome
                .unexpected
                .into_iter()
                .map(|error| format!("task {task} {error}")),
        );
    }

    let [placed, edited, cancelled, refused] = counts;
    eprintln!(
        "mixed workload: {placed} placed, {edited} edited, {cancelled} cancelled, {refused} refused"
    );
    assert_eq!(
        unexpected,
        Vec::<String>::new(),
        "only business refusals are allowed"
    );
    assert!(
        placed > 0 && edited > 0 && cancelled > 0 && refused > 0,
        "the workload contends: {counts:?}"
    );
    let audit = store.audit_reservations(&shop).await.expect("audit runs");
    assert_eq!(audit.len(), WORKLOAD_PRODUCTS.len());
    for row in audit {
        assert_eq!(row.reserved, row.reserved_by_live_orders, "{row:?}");
        assert!(0 <= row.reserved && row.reserved <= row.on_hand, "{row:?}");
        assert_eq!(row.on_hand, 20, "{row:?}");
        let told = expected_reserved
            .get(row.product_id.as_str())
            .copied()
            .unwrap_or(0);
        assert_eq!(
            row.reserved, told,
            "the answers the tasks got add up to the reservation: {row:?}"
        );
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
    }
    audit
        .into_iter()
        .map(|row| (row.product_id.to_string(), row.on_hand, row.reserved))
        .collect()
}
