//! Backends and fixtures for the storage conformance suite: a fresh SQLite file or a fresh
//! PostgreSQL database per test, and small builders that keep the cases readable.
// Each test file uses a different part of these helpers.
#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orderflow_domain::{
    Currency, Customer, CustomerId, OrderId, OrderLine, OrderLines, OrderStatus, ProductId,
    Quantity, Refusal, StoreId,
};
use orderflow_store::scratch::ScratchDatabase;
use orderflow_store::{
    Error, NewStore, Order, OrderFilter, PlaceOrder, PricedLine, ProductInput, Result, Scope,
    Store, StoreSettings,
};
use time::OffsetDateTime;

/// Names the environment variable that turns the PostgreSQL variants on.
pub const POSTGRES_VARIABLE: &str = "ORDERFLOW_TEST_POSTGRES";

/// Expands every case into `mod case { sqlite(), postgres() }`, so that one body specifies
/// both backends. `multi_thread` runs the case on a multi-threaded runtime, for cases about
/// concurrency.
macro_rules! case {
    ($name:ident) => {
        case!(@expand $name, tokio::test);
    };
    ($name:ident, multi_thread) => {
        case!(@expand $name, tokio::test(flavor = "multi_thread", worker_threads = 4));
    };
    (@expand $name:ident, $test:meta) => {
        mod $name {
            #[$test]
            async fn sqlite() {
                let (store, _file) = crate::support::sqlite().await;
                super::$name(store).await;
            }

            #[$test]
            async fn postgres() {
                let Some((store, _database)) = crate::support::postgres(module_path!()).await else {
                    return;
                };
                super::$name(store).await;
            }
        }
    };
}

pub(crate) use case;

/// A store on a fresh SQLite file; the directory holding it is removed when the guard drops.
pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory for the database");
    let path = directory.path().join("orderflow.db");
    let path = path.to_str().expect("the temporary path is UTF-8");
    let store = orderflow_store::open(&format!("sqlite://{path}"))
        .await
        .expect("SQLite store opens");
    (store, directory)
}

/// A store on a fresh PostgreSQL database, or `None` (after saying so) when
/// `ORDERFLOW_TEST_POSTGRES` is not set.
pub async fn postgres(test: &str) -> Option<(Arc<dyn Store>, Database)> {
    let Ok(admin_url) = std::env::var(POSTGRES_VARIABLE) else {
        eprintln!("{test}: skipped on PostgreSQL because {POSTGRES_VARIABLE} is not set");
        return None;
    };
    let scratch = ScratchDatabase::create(&admin_url, "orderflow_test", rand::random())
        .await
        .unwrap_or_else(|error| {
            panic!("create a test database on {POSTGRES_VARIABLE}={admin_url}: {error:?}")
        });
    let url = scratch.url().to_owned();
    let database = Database(Some(scratch));
    let store = orderflow_store::open(&url)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL store opens on {url}: {error:?}"));
    Some((store, database))
}

/// A database created for one test and dropped (best effort) when the test ends, pass or fail.
#[derive(Debug)]
pub struct Database(Option<ScratchDatabase>);

impl Database {
    /// Another handle on this database, with a pool and listener of its own: what a second
    /// node sharing the database opens.
    pub async fn open_again(&self) -> Arc<dyn Store> {
        let url = self
            .0
            .as_ref()
            .expect("the database lives until the guard drops")
            .url();
        orderflow_store::open(url)
            .await
            .unwrap_or_else(|error| panic!("a second PostgreSQL store opens on {url}: {error:?}"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some(scratch) = self.0.take() else { return };
        let url = scratch.url().to_owned();
        // The test's runtime may be unwinding or shutting down: drop from a runtime of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime
                .block_on(scratch.drop())
                .map_err(|error| format!("{error:?}"))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {url}: {error}"),
            Err(_) => {
                eprintln!("could not drop test database {url}: the dropping thread panicked")
            }
        }
    }
}

/// The current time at the microsecond precision both backends store, so that what comes back
/// can be compared exactly with what went in.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .expect("a whole microsecond is a valid nanosecond")
}

/// A fresh order id, strictly greater than every one minted before in this process.
pub fn order_id() -> OrderId {
    static NEXT_MILLIS: AtomicU64 = AtomicU64::new(1_767_225_600_000);
    OrderId::mint(
        NEXT_MILLIS.fetch_add(1, Ordering::Relaxed),
        rand::random::<u128>(),
    )
}

pub fn pid(text: &str) -> ProductId {
    text.parse().expect("a valid product id")
}

pub fn sid(text: &str) -> StoreId {
    text.parse().expect("a valid store id")
}

pub fn cid(text: &str) -> CustomerId {
    text.parse().expect("a valid customer id")
}

pub fn currency(code: &str) -> Currency {
    code.parse().expect("a valid currency")
}

pub fn eur() -> Currency {
    currency("EUR")
}

pub fn quantity(count: u64) -> Quantity {
    Quantity::try_from(count).expect("a valid quantity")
}

pub fn line(product: &str, count: u64) -> OrderLine {
    OrderLine {
        product_id: pid(product),
        quantity: quantity(count),
    }
}

pub fn lines(pairs: &[(&str, u64)]) -> OrderLines {
    OrderLines::new(
        pairs
            .iter()
            .map(|&(product, count)| line(product, count))
            .collect(),
    )
    .expect("valid lines")
}

pub fn priced(product: &str, count: u64, unit_price_minor: i64) -> PricedLine {
    PricedLine {
        product_id: pid(product),
        quantity: quantity(count),
        unit_price_minor,
        currency: eur(),
    }
}

pub fn customer(id: &str) -> Customer {
    Customer {
        customer_id: Some(cid(id)),
        name: Some(format!("Customer {id}")),
        ..Customer::default()
    }
}

/// A product priced in EUR.
pub fn product(id: &str, price_minor: i64, on_hand: i64) -> ProductInput {
    ProductInput {
        product_id: pid(id),
        name: format!("Product {id}"),
        category: None,
        price_minor,
        currency: eur(),
        on_hand,
        now: now(),
    }
}

/// An order for `pairs`, all or nothing, without customer, address or idempotency key.
pub fn order(store_id: &StoreId, pairs: &[(&str, u64)]) -> PlaceOrder {
    PlaceOrder {
        run: None,
        order_id: order_id(),
        store_id: store_id.clone(),
        lines: lines(pairs),
        allow_partial: false,
        customer: None,
        shipping_address: None,
        idempotency: None,
        source: None,
        now: now(),
    }
}

pub fn filter(limit: u32) -> OrderFilter {
    OrderFilter {
        limit,
        ..OrderFilter::default()
    }
}

/// Creates a second tenant besides `default`.
pub async fn create_store(store: &dyn Store, id: &str) -> StoreId {
    let store_id = sid(id);
    store
        .create_store(NewStore {
            store_id: store_id.clone(),
            name: format!("Store {id}"),
            platform: None,
            settings: StoreSettings::default(),
            now: now(),
        })
        .await
        .expect("store is created");
    store_id
}

/// Puts `(id, price_minor, on_hand)` products into `store_id`.
pub async fn stock(store: &dyn Store, store_id: &StoreId, products: &[(&str, i64, i64)]) {
    let inputs = products
        .iter()
        .map(|&(id, price, on_hand)| product(id, price, on_hand))
        .collect();
    let written = store
        .import_products(store_id, inputs)
        .await
        .expect("products are imported");
    assert_eq!(written, products.len());
}

/// `(on_hand, reserved)` of a product.
pub async fn level(store: &dyn Store, store_id: &StoreId, id: &str) -> (i64, i64) {
    let product = store
        .get_product(store_id, &pid(id))
        .await
        .expect("product exists");
    (product.on_hand, product.reserved)
}

/// Places an order that must succeed and returns it as stored.
pub async fn placed(store: &dyn Store, order: PlaceOrder) -> Order {
    let order_id = order.order_id.clone();
    let placement = store.place_order(order).await.expect("order is placed");
    assert_eq!(placement.receipt.order_id, order_id);
    store
        .get_order(&Scope::Everything, &order_id)
        .await
        .expect("placed order is readable")
}

/// The ids of every order `scope` sees, newest first.
pub async fn listed(store: &dyn Store, scope: &Scope, filter: OrderFilter) -> Vec<OrderId> {
    let page = store
        .list_orders(
            scope,
            OrderFilter {
                limit: 1_000,
                ..filter
            },
        )
        .await
        .expect("orders are listed");
    assert!(!page.has_more, "more than 1000 orders in a test");
    page.items.into_iter().map(|order| order.order_id).collect()
}

pub fn statuses(order: &Order) -> Vec<OrderStatus> {
    order.timeline.iter().map(|entry| entry.status).collect()
}

#[track_caller]
pub fn refusal<T: Debug>(result: Result<T>) -> Refusal {
    match result {
        Err(Error::Refused(refusal)) => refusal,
        other => panic!("expected Error::Refused, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_not_found<T: Debug>(result: Result<T>) {
    match result {
        Err(Error::NotFound) => {}
        other => panic!("expected Error::NotFound, got {other:?}"),
    }
}

/// Starts `copies` calls at once, each on a task of its own, and returns what each answered.
pub async fn at_once<T, Call>(copies: usize, call: impl Fn() -> Call) -> Vec<T>
where
    Call: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..copies).map(|_| tokio::spawn(call())).collect();
    let mut answers = Vec::with_capacity(copies);
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    answers
}
