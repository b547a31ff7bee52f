//! Pull connectors against sandbox platforms on 127.0.0.1 (`orderflow-sim`), into a real
//! store — a fresh SQLite file, and a fresh PostgreSQL database when `ORDERFLOW_TEST_POSTGRES`
//! names a server — with the real intake worker turning the inbox into orders.

use std::sync::Arc;
use std::time::Duration;

use orderflow_domain::{OrderStatus, StoreId};
use orderflow_intake::pull::{PullConfig, PullError, PullReport, Puller};
use orderflow_intake::worker::{Worker, WorkerConfig};
use orderflow_sim::{Fault, Generator, Shop, SimOrder, SimServer, SimStatus};
use orderflow_store::scratch::ScratchDatabase;
use orderflow_store::{
    ApiCredentials, Delivery, DeliveryStatus, InboxFilter, NewDelivery, NewStore, Order,
    OrderFilter, Scope, Store, StoreRecord, StoreSettings,
};
use time::OffsetDateTime;

/// Expands a case into `mod case { sqlite(), postgres() }`.
macro_rules! case {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _guard) = crate::sqlite().await;
                super::$name(store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some((store, _guard)) = crate::postgres(module_path!()).await else {
                    return;
                };
                super::$name(store).await;
            }
        }
    };
}

const POSTGRES_VARIABLE: &str = "ORDERFLOW_TEST_POSTGRES";

enum Guard {
    // Held for its Drop: the directory goes with the test.
    Directory(#[allow(dead_code)] tempfile::TempDir),
    Database(Option<ScratchDatabase>),
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Guard::Database(scratch) = self else {
            return;
        };
        let Some(scratch) = scratch.take() else {
            return;
        };
        // The test's runtime may be shutting down: drop from a runtime of our own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?
                .block_on(scratch.drop())
                .map_err(|error| format!("{error:?}"))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}

async fn sqlite() -> (Arc<dyn Store>, Guard) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("orderflow.db");
    let store = orderflow_store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("SQLite opens");
    (store, Guard::Directory(directory))
}

async fn postgres(test: &str) -> Option<(Arc<dyn Store>, Guard)> {
    let Ok(admin_url) = std::env::var(POSTGRES_VARIABLE) else {
        eprintln!("{test}: skipped on PostgreSQL because {POSTGRES_VARIABLE} is not set");
        return None;
    };
    let scratch = ScratchDatabase::create(&admin_url, "orderflow_test", rand::random())
        .await
        .expect("a scratch database");
    let store = orderflow_store::open(scratch.url())
        .await
        .expect("PostgreSQL opens");
    Some((store, Guard::Database(Some(scratch))))
}

/// Small pages, so that every test pages; a short time limit, so that a slow platform fails
/// the round quickly.
fn config() -> PullConfig {
    PullConfig {
        page_size: 2,
        timeout: Duration::from_millis(700),
        ..PullConfig::default()
    }
}

struct Intake {
    store: Arc<dyn Store>,
    puller: Puller,
    worker: Worker,
}

impl Intake {
    fn new(store: Arc<dyn Store>) -> Self {
        // The tests drain the worker by hand; its wake-up goes unused.
        let wake = store.work_signal(orderflow_store::Work::Deliveries);
        Self {
            puller: Puller::new(store.clone(), config()),
            worker: Worker::new(store.clone(), wake, WorkerConfig::default()),
            store,
        }
    }

    /// A courier's client store on `platform` whose API is the sandbox `server`: orders are
    /// recorded at the platform's prices, without a catalogue here.
    async fn connect(
        &self,
        store_id: &str,
        platform: &str,
        server: &SimServer,
        key: &str,
        token: Option<&str>,
    ) -> StoreRecord {
        self.store
            .create_store(NewStore {
                store_id: sid(store_id),
                name: format!("{platform} shop"),
                platform: Some(platform.to_owned()),
                settings: StoreSettings {
                    api: Some(ApiCredentials {
                        base_url: server.url().to_owned(),
                        key: Some(key.to_owned()),
                        token: token.map(str::to_owned),
                    }),
                    manage_stock: false,
                    ..StoreSettings::default()
                },
                now: OffsetDateTime::now_utc(),
            })
            .await
            .expect("the store is created")
    }

    async fn pull(&self, record: &StoreRecord) -> PullReport {
        self.puller
            .pull_store(record)
            .await
            .expect("the pull succeeds")
    }

    /// Runs the worker until the inbox has nothing left for it.
    async fn work(&self) {
        while self.worker.drain_once().await.expect("the worker claims") > 0 {}
    }

    async fn orders(&self, store_id: &str) -> Vec<Order> {
        let filter = OrderFilter {
            limit: 100,
            ..OrderFilter::default()
        };
        self.store
            .list_orders(&Scope::Store(sid(store_id)), filter)
            .await
            .expect("orders list")
            .items
    }

    async fn inbox(&self, store_id: &str) -> Vec<Delivery> {
        let filter = InboxFilter {
            store_id: Some(sid(store_id)),
            limit: 200,
            ..InboxFilter::default()
        };
        self.store
            .list_deliveries(&Scope::Everything, filter)
            .await
            .expect("the inbox lists")
            .items
    }

    async fn cursor(&self, store_id: &str) -> Option<String> {
        self.store
            .pull_cursor(&sid(store_id))
            .await
            .expect("the cursor reads")
    }
}

fn sid(text: &str) -> StoreId {
    text.parse().expect("a store id")
}

/// Five orders placed over the last hour or so, with small ids as PrestaShop and Magento
/// have.
fn recent_orders(seed: u64) -> Vec<SimOrder> {
    Generator::new(seed)
        .first_id(100)
        .starting_at(OffsetDateTime::now_utc() - time::Duration::hours(2))
        .orders(5)
}

fn spaced(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .expect("formattable")
}

fn newest(orders: &[SimOrder]) -> OffsetDateTime {
    orders
        .iter()
        .map(|o| o.updated_at)
        .max()
        .expect("some orders")
}

fn external_ids(orders: &[Order]) -> Vec<String> {
    let mut ids: Vec<String> = orders
        .iter()
        .filter_map(|o| o.external_id.clone())
        .collect();
    ids.sort();
    ids
}

fn ids_of(orders: &[SimOrder]) -> Vec<String> {
    let mut ids: Vec<String> = orders.iter().map(|o| o.id.to_string()).collect();
    ids.sort();
    ids
}

/// The id the store's platform gives `order`: VTEX adds the seller's suffix.
fn external_id(record: &StoreRecord, order: &SimOrder) -> String {
    match record.platform.as_deref() {
        Some("vtex") => orderflow_sim::vtex::order_id(order),
        _ => order.id.to_string(),
    }
}

fn external_ids_of(record: &StoreRecord, orders: &[SimOrder]) -> Vec<String> {
    let mut ids: Vec<String> = orders.iter().map(|o| external_id(record, o)).collect();
    ids.sort();
    ids
}

async fn prestashop(orders: Vec<SimOrder>) -> SimServer {
    orderflow_sim::prestashop::serve(Shop::with_orders(orders), "WSKEY")
        .await
        .expect("the PrestaShop sandbox serves")
}

async fn magento(orders: Vec<SimOrder>) -> SimServer {
    orderflow_sim::magento::serve(Shop::with_orders(orders), "TOKEN")
        .await
        .expect("the Magento sandbox serves")
}

case!(prestashop_orders_are_pulled_into_the_inbox_and_each_becomes_one_order);
async fn prestashop_orders_are_pulled_into_the_inbox_and_each_becomes_one_order(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(21);
    let mut stale = Generator::new(22).first_id(90).order();
    stale.created_at = OffsetDateTime::now_utc() - time::Duration::days(9);
    stale.updated_at = OffsetDateTime::now_utc() - time::Duration::days(8);
    let server = prestashop([orders.clone(), vec![stale]].concat()).await;
    let record = intake
        .connect("presta", "prestashop", &server, "WSKEY", None)
        .await;

    let report = intake.pull(&record).await;

    assert_eq!(
        report.stored, 5,
        "the order of eight days ago is past the look-back"
    );
    assert_eq!(report.cursor, Some(spaced(newest(&orders))));
    assert_eq!(intake.cursor("presta").await, report.cursor);
    let inbox = intake.inbox("presta").await;
    assert_eq!(inbox.len(), 5);
    assert!(inbox.iter().all(|d| d.topic.as_deref() == Some("pull")));
    let first = &orders[0];
    assert!(
        inbox
            .iter()
            .any(|d| d.event_key == format!("pull:{}:{}", first.id, spaced(first.updated_at)))
    );
    let listing = server.requests()[0].query();
    assert!(listing.contains(&("date".to_owned(), "1".to_owned())));
    assert!(listing.contains(&("sort".to_owned(), "[date_upd_ASC]".to_owned())));

    intake.work().await;
    let placed = intake.orders("presta").await;
    assert_eq!(external_ids(&placed), ids_of(&orders));
    let order = placed
        .iter()
        .find(|o| o.external_id == Some(first.id.to_string()))
        .expect("the first order");
    let address = order.shipping_address.as_ref().expect("an address");
    assert_eq!(
        address.region.as_deref(),
        Some(first.address.region_code.as_str())
    );
    assert_eq!(
        address.country.as_deref(),
        Some(first.address.country.as_str())
    );
    let skus: Vec<&str> = order.lines.iter().map(|l| l.product_id.as_str()).collect();
    let expected: Vec<&str> = first.lines.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(skus, expected);
    assert_eq!(order.total_minor, first.items_minor());
}

case!(magento_orders_are_pulled_page_by_page_and_each_becomes_one_order);
async fn magento_orders_are_pulled_page_by_page_and_each_becomes_one_order(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let orders = recent_orders(23);
    let server = magento(orders.clone()).await;
    let record = intake
        .connect("mage", "magento", &server, "TOKEN", Some("TOKEN"))
        .await;

    let report = intake.pull(&record).await;

    assert_eq!(report.stored, 5);
    assert!(report.pages >= 3, "five orders two to a page: {report:?}");
    assert_eq!(report.cursor, Some(spaced(newest(&orders))));
    let asked = server.requests()[0].query();
    assert!(asked.contains(&(
        "searchCriteria[filter_groups][0][filters][0][field]".to_owned(),
        "updated_at".to_owned()
    )));
    intake.work().await;
    let placed = intake.orders("mage").await;
    assert_eq!(external_ids(&placed), ids_of(&orders));
    assert!(placed.iter().all(|o| o.status != OrderStatus::Cancelled));
}

/// Pulls twice with nothing changed on the platform: the second pull stores nothing, and a
/// puller that lost its memory (a restart) stores only duplicates. The cursor holds.
async fn a_quiet_platform_adds_nothing(intake: &Intake, record: &StoreRecord) {
    let store_id = record.store_id.to_string();
    let first = intake.pull(record).await;
    assert_eq!(first.stored, 5);
    let cursor = intake.cursor(&store_id).await;

    let again = intake.pull(record).await;
    assert_eq!((again.stored, again.duplicates), (0, 0), "{again:?}");
    assert_eq!(intake.cursor(&store_id).await, cursor);

    let restarted = Puller::new(intake.store.clone(), config());
    let after_restart = restarted.pull_store(record).await.expect("pulls");
    assert_eq!(after_restart.stored, 0, "{after_restart:?}");
    assert_eq!(intake.cursor(&store_id).await, cursor);

    intake.work().await;
    assert_eq!(intake.orders(&store_id).await.len(), 5);
    let inbox = intake.inbox(&store_id).await;
    let accepted = inbox
        .iter()
        .filter(|d| d.status == orderflow_store::DeliveryStatus::Accepted)
        .count();
    assert_eq!(accepted, 5);
    assert_eq!(inbox.len(), 5 + after_restart.duplicates);
}

case!(a_second_prestashop_pull_without_changes_stores_nothing_new);
async fn a_second_prestashop_pull_without_changes_stores_nothing_new(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = prestashop(recent_orders(24)).await;
    let record = intake
        .connect("presta", "prestashop", &server, "WSKEY", None)
        .await;
    a_quiet_platform_adds_nothing(&intake, &record).await;
}

case!(a_second_magento_pull_without_changes_stores_nothing_new);
async fn a_second_magento_pull_without_changes_stores_nothing_new(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = magento(recent_orders(25)).await;
    let record = intake
        .connect("mage", "magento", &server, "TOKEN", None)
        .await;
    a_quiet_platform_adds_nothing(&intake, &record).await;
}

/// The platform cancels one order after the first pull: the next pull brings its new
/// version, and the order here is cancelled; the others are untouched.
async fn a_cancellation_on_the_platform_cancels_the_order(
    intake: &Intake,
    record: &StoreRecord,
    server: &SimServer,
    orders: &[SimOrder],
) {
    let store_id = record.store_id.to_string();
    intake.pull(record).await;
    intake.work().await;
    let cancelled = &orders[2];
    let changed = server.shop().update(cancelled.id, |order| {
        order.change(SimStatus::Cancelled, OffsetDateTime::now_utc());
    });
    assert!(changed);

    let report = intake.pull(record).await;
    assert_eq!(report.stored, 1, "{report:?}");
    intake.work().await;

    let placed = intake.orders(&store_id).await;
    assert_eq!(placed.len(), 5);
    for order in &placed {
        let expected = order.external_id == Some(external_id(record, cancelled));
        assert_eq!(
            order.status == OrderStatus::Cancelled,
            expected,
            "order {:?} is {:?}",
            order.external_id,
            order.status
        );
    }
}

case!(a_prestashop_order_cancelled_after_the_first_pull_is_cancelled_here);
async fn a_prestashop_order_cancelled_after_the_first_pull_is_cancelled_here(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(26);
    let server = prestashop(orders.clone()).await;
    let record = intake
        .connect("presta", "prestashop", &server, "WSKEY", None)
        .await;
    a_cancellation_on_the_platform_cancels_the_order(&intake, &record, &server, &orders).await;
}

case!(a_magento_order_cancelled_after_the_first_pull_is_cancelled_here);
async fn a_magento_order_cancelled_after_the_first_pull_is_cancelled_here(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let orders = recent_orders(27);
    let server = magento(orders.clone()).await;
    let record = intake
        .connect("mage", "magento", &server, "TOKEN", None)
        .await;
    a_cancellation_on_the_platform_cancels_the_order(&intake, &record, &server, &orders).await;
}

/// The platform serves the first three of `orders` (and, for Jumpseller, older ones that
/// give the cursor somewhere to be) and is pulled; two more orders appear, and the platform
/// fails (500, then 429, then too slowly): nothing moves and nothing is stored. Once it
/// answers, the two are taken in.
async fn a_failing_platform_moves_nothing_and_loses_nothing(
    intake: &Intake,
    record: &StoreRecord,
    server: &SimServer,
    orders: &[SimOrder],
) {
    let store_id = record.store_id.to_string();
    intake.pull(record).await;
    let cursor = intake.cursor(&store_id).await;
    for order in &orders[3..] {
        server.shop().put(order.clone());
    }

    server.faults().fail_next(1, 500);
    let failed = intake.puller.pull_store(record).await;
    assert!(
        matches!(failed, Err(PullError::Unavailable { status: 500, .. })),
        "{failed:?}"
    );
    server.faults().fail_next(1, 429);
    let limited = intake.puller.pull_store(record).await;
    assert!(
        matches!(limited, Err(PullError::Unavailable { status: 429, .. })),
        "{limited:?}"
    );
    server.faults().slow_next(1, Duration::from_millis(1_500));
    let slow = intake.puller.pull_store(record).await;
    assert!(matches!(slow, Err(PullError::Timeout { .. })), "{slow:?}");
    assert_eq!(intake.cursor(&store_id).await, cursor);
    assert_eq!(intake.inbox(&store_id).await.len(), 3);

    let recovered = intake.pull(record).await;
    assert_eq!(recovered.stored, 2, "{recovered:?}");
    intake.work().await;
    assert_eq!(
        external_ids(&intake.orders(&store_id).await),
        external_ids_of(record, orders)
    );
}

case!(a_platform_that_fails_leaves_the_cursor_where_it_was_and_loses_nothing);
async fn a_platform_that_fails_leaves_the_cursor_where_it_was_and_loses_nothing(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(28);
    let server = magento(orders[..3].to_vec()).await;
    let record = intake
        .connect("mage", "magento", &server, "TOKEN", None)
        .await;
    a_failing_platform_moves_nothing_and_loses_nothing(&intake, &record, &server, &orders).await;
}

case!(a_prestashop_page_that_fails_half_way_moves_no_cursor_and_loses_no_order);
async fn a_prestashop_page_that_fails_half_way_moves_no_cursor_and_loses_no_order(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(29);
    let server = prestashop(orders.clone()).await;
    let record = intake
        .connect("presta", "prestashop", &server, "WSKEY", None)
        .await;
    // The listing and the first order with its six resources pass; the second order fails.
    server.faults().push(8, Fault::Delay(Duration::ZERO));
    server.faults().fail_next(1, 503);

    let failed = intake.puller.pull_store(&record).await;
    assert!(
        matches!(failed, Err(PullError::Unavailable { status: 503, .. })),
        "{failed:?}"
    );
    assert_eq!(
        intake.cursor("presta").await,
        None,
        "the page was not all stored"
    );
    assert_eq!(intake.inbox("presta").await.len(), 1);

    let report = intake.pull(&record).await;
    assert_eq!(report.stored + report.duplicates, 5, "{report:?}");
    intake.work().await;
    assert_eq!(
        external_ids(&intake.orders("presta").await),
        ids_of(&orders)
    );
}

/// Orders updated in one second fill more than a page: the cursor cannot move past the
/// first page, so the platform's own paging is followed, and then an order updated in that
/// same second after the pull is still found.
async fn orders_sharing_a_second_are_all_taken(
    intake: &Intake,
    record: &StoreRecord,
    server: &SimServer,
) {
    let store_id = record.store_id.to_string();
    let second = (OffsetDateTime::now_utc() - time::Duration::minutes(10))
        .replace_nanosecond(0)
        .expect("a time");
    let mut orders = Generator::new(30)
        .first_id(300)
        .starting_at(second - time::Duration::hours(1))
        .orders(6);
    for order in &mut orders {
        order.updated_at = second;
    }
    let late = orders.pop().expect("six orders");
    for order in &orders {
        server.shop().put(order.clone());
    }

    let report = intake.pull(record).await;
    assert_eq!(report.stored, 5, "{report:?}");

    server.shop().put(late.clone());
    let report = intake.pull(record).await;
    assert_eq!((report.stored, report.duplicates), (1, 0), "{report:?}");
    intake.work().await;
    assert_eq!(intake.orders(&store_id).await.len(), 6);
}

case!(magento_orders_sharing_a_second_across_pages_are_all_taken);
async fn magento_orders_sharing_a_second_across_pages_are_all_taken(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = magento(Vec::new()).await;
    let record = intake
        .connect("mage", "magento", &server, "TOKEN", None)
        .await;
    orders_sharing_a_second_are_all_taken(&intake, &record, &server).await;
}

case!(prestashop_orders_sharing_a_second_across_pages_are_all_taken);
async fn prestashop_orders_sharing_a_second_across_pages_are_all_taken(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = prestashop(Vec::new()).await;
    let record = intake
        .connect("presta", "prestashop", &server, "WSKEY", None)
        .await;
    orders_sharing_a_second_are_all_taken(&intake, &record, &server).await;
}

case!(woocommerce_orders_sharing_a_second_across_pages_are_all_taken);
async fn woocommerce_orders_sharing_a_second_across_pages_are_all_taken(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = orderflow_sim::woocommerce::serve(Shop::new(), "ck_1", "cs_1")
        .await
        .expect("serves");
    let record = intake
        .connect("woo", "woocommerce", &server, "ck_1", Some("cs_1"))
        .await;
    orders_sharing_a_second_are_all_taken(&intake, &record, &server).await;
}

case!(woocommerce_reconciliation_takes_in_every_order_and_later_changes);
async fn woocommerce_reconciliation_takes_in_every_order_and_later_changes(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let orders = recent_orders(31);
    let server =
        orderflow_sim::woocommerce::serve(Shop::with_orders(orders.clone()), "ck_1", "cs_1")
            .await
            .expect("serves");
    let record = intake
        .connect("woo", "woocommerce", &server, "ck_1", Some("cs_1"))
        .await;

    let report = intake.pull(&record).await;
    assert_eq!(report.stored, 5);
    let gmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    assert_eq!(
        report.cursor,
        Some(newest(&orders).format(gmt).expect("formattable")),
        "the cursor is date_modified_gmt as WooCommerce spells it"
    );
    let asked = server.requests()[0].query();
    assert!(asked.contains(&("orderby".to_owned(), "modified".to_owned())));
    assert!(asked.contains(&("dates_are_gmt".to_owned(), "true".to_owned())));
    intake.work().await;

    server.shop().update(orders[0].id, |order| {
        order.change(SimStatus::Refunded, OffsetDateTime::now_utc());
    });
    let report = intake.pull(&record).await;
    assert_eq!(report.stored, 1);
    intake.work().await;
    let placed = intake.orders("woo").await;
    assert_eq!(external_ids(&placed), ids_of(&orders));
    let refunded = placed
        .iter()
        .find(|o| o.external_id == Some(orders[0].id.to_string()))
        .expect("the refunded order");
    assert_eq!(refunded.status, OrderStatus::Cancelled);
}

case!(wrong_credentials_are_refused_and_move_nothing);
async fn wrong_credentials_are_refused_and_move_nothing(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = prestashop(recent_orders(32)).await;
    let record = intake
        .connect("presta", "prestashop", &server, "WRONG", None)
        .await;

    let refused = intake.puller.pull_store(&record).await;

    assert!(
        matches!(refused, Err(PullError::Refused { status: 401, .. })),
        "{refused:?}"
    );
    assert_eq!(intake.cursor("presta").await, None);
    assert!(intake.inbox("presta").await.is_empty());
}

case!(pull_all_pulls_every_platform_with_an_api_but_custom);
async fn pull_all_pulls_every_platform_with_an_api_but_custom(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = prestashop(recent_orders(33)).await;
    intake
        .connect("presta", "prestashop", &server, "WSKEY", None)
        .await;
    let oms = vtex(recent_orders(34)).await;
    intake
        .connect("lux", "vtex", &oms, "appkey", Some("apptoken"))
        .await;
    // A custom storefront only pushes; its credentials are not for pulling.
    intake
        .connect("own", "custom", &server, "WSKEY", None)
        .await;

    let results = intake.puller.pull_all().await;

    let mut pulled: Vec<(String, usize)> = results
        .iter()
        .map(|(store_id, result)| {
            let report = result.as_ref().expect("the pull succeeds");
            (store_id.to_string(), report.stored)
        })
        .collect();
    pulled.sort();
    assert_eq!(pulled, [("lux".to_owned(), 5), ("presta".to_owned(), 5)]);
}

// VTEX: the OMS list of orders created within the look-back; each listed order goes to the
// inbox as the hook VTEX would have sent, and the worker fetches it from the OMS.

async fn vtex(orders: Vec<SimOrder>) -> SimServer {
    orderflow_sim::vtex::serve_oms(Shop::with_orders(orders), "appkey", "apptoken")
        .await
        .expect("the VTEX OMS sandbox serves")
}

async fn connect_vtex(intake: &Intake, server: &SimServer) -> StoreRecord {
    intake
        .connect("lux", "vtex", server, "appkey", Some("apptoken"))
        .await
}

/// `lastChange` as VTEX spells it.
fn vtex_time(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]+00:00"
    ))
    .expect("formattable")
}

/// A webhook delivery as the intake endpoint stores it, for the orders a platform's
/// webhooks did bring.
async fn delivered_by_webhook(
    intake: &Intake,
    store_id: &str,
    platform: &str,
    event_key: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) {
    let now = OffsetDateTime::now_utc();
    intake
        .store
        .receive_delivery(NewDelivery {
            delivery_id: format!("dlv_{}", rand::random::<u64>()),
            store_id: sid(store_id),
            platform: platform.to_owned(),
            event_key,
            topic: None,
            headers,
            body,
            now,
        })
        .await
        .expect("the delivery is stored");
}

case!(vtex_orders_whose_hooks_were_lost_are_pulled_and_each_becomes_one_order);
async fn vtex_orders_whose_hooks_were_lost_are_pulled_and_each_becomes_one_order(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(40);
    let mut old = Generator::new(41).first_id(90).order();
    old.created_at = OffsetDateTime::now_utc() - time::Duration::days(9);
    old.updated_at = OffsetDateTime::now_utc() - time::Duration::days(8);
    let server = vtex([orders.clone(), vec![old]].concat()).await;
    let record = connect_vtex(&intake, &server).await;
    // The hooks of the first two orders arrived; the other three were lost.
    for order in &orders[..2] {
        let hook = orderflow_sim::vtex::hook_body(order, "lux", "appkey");
        let key = format!("{}-01:hook", order.id);
        delivered_by_webhook(&intake, "lux", "vtex", key, Vec::new(), hook).await;
    }
    intake.work().await;
    assert_eq!(intake.orders("lux").await.len(), 2);

    let report = intake.pull(&record).await;

    assert_eq!(
        report.stored, 5,
        "every order created within the look-back, the one created nine days ago left out"
    );
    assert!(report.pages >= 3, "five orders two to a page: {report:?}");
    assert_eq!(report.cursor, Some(vtex_time(newest(&orders))));
    assert_eq!(intake.cursor("lux").await, report.cursor);
    let listings: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/api/oms/pvt/orders")
        .collect();
    let asked = listings[0].query();
    assert!(asked.contains(&("orderBy".to_owned(), "creationDate,desc".to_owned())));
    assert!(asked.iter().any(|(name, value)| name == "f_creationDate"
        && value.starts_with("creationDate:[")
        && value.contains(" TO ")));
    let first = &orders[0];
    assert!(intake.inbox("lux").await.iter().any(|d| {
        d.topic.as_deref() == Some("pull")
            && d.event_key == format!("pull:{}-01:{}", first.id, vtex_time(first.updated_at))
    }));

    intake.work().await;
    let placed = intake.orders("lux").await;
    assert_eq!(external_ids(&placed), external_ids_of(&record, &orders));
    let fetched = server
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/api/oms/pvt/orders/"))
        .count();
    assert_eq!(
        fetched, 7,
        "two hooks and five pulled orders, each fetched from the OMS"
    );
    let pulled: Vec<DeliveryStatus> = intake
        .inbox("lux")
        .await
        .iter()
        .filter(|d| d.topic.as_deref() == Some("pull"))
        .map(|d| d.status)
        .collect();
    let stale = pulled
        .iter()
        .filter(|s| **s == DeliveryStatus::Stale)
        .count();
    assert_eq!(
        stale, 2,
        "the two the hooks brought are not newer: {pulled:?}"
    );
    let order = placed
        .iter()
        .find(|o| o.external_id == Some(format!("{}-01", orders[4].id)))
        .expect("a pulled order");
    assert_eq!(order.total_minor, orders[4].items_minor());
}

case!(a_second_vtex_pull_without_changes_stores_nothing_new);
async fn a_second_vtex_pull_without_changes_stores_nothing_new(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = vtex(recent_orders(42)).await;
    let record = connect_vtex(&intake, &server).await;
    a_quiet_platform_adds_nothing(&intake, &record).await;
}

case!(a_vtex_order_cancelled_after_the_first_pull_is_cancelled_here);
async fn a_vtex_order_cancelled_after_the_first_pull_is_cancelled_here(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let orders = recent_orders(43);
    let server = vtex(orders.clone()).await;
    let record = connect_vtex(&intake, &server).await;
    a_cancellation_on_the_platform_cancels_the_order(&intake, &record, &server, &orders).await;
    assert_eq!(
        intake.cursor("lux").await,
        server
            .shop()
            .get(orders[2].id)
            .map(|order| vtex_time(order.updated_at)),
        "the cursor moved on to the cancellation"
    );
}

case!(a_vtex_list_that_fails_leaves_the_cursor_where_it_was_and_loses_nothing);
async fn a_vtex_list_that_fails_leaves_the_cursor_where_it_was_and_loses_nothing(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(44);
    let server = vtex(orders[..3].to_vec()).await;
    let record = connect_vtex(&intake, &server).await;
    a_failing_platform_moves_nothing_and_loses_nothing(&intake, &record, &server, &orders).await;
}

case!(a_vtex_change_listed_late_is_still_taken);
async fn a_vtex_change_listed_late_is_still_taken(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let orders = recent_orders(45);
    let server = vtex(orders.clone()).await;
    let record = connect_vtex(&intake, &server).await;
    intake.pull(&record).await;
    intake.work().await;
    let cursor = intake.cursor("lux").await;

    // A cancellation made before the newest change the last round saw, which VTEX had not
    // yet indexed into its list then.
    let late = newest(&orders) - time::Duration::minutes(2);
    server.shop().update(orders[0].id, |order| {
        order.change(SimStatus::Cancelled, late);
    });
    let report = intake.pull(&record).await;

    assert_eq!(report.stored, 1, "{report:?}");
    assert_eq!(
        intake.cursor("lux").await,
        cursor,
        "nothing newer was listed"
    );
    intake.work().await;
    let cancelled = intake
        .orders("lux")
        .await
        .into_iter()
        .find(|o| o.external_id == Some(format!("{}-01", orders[0].id)))
        .expect("the order");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
}

case!(wrong_vtex_credentials_are_refused_and_move_nothing);
async fn wrong_vtex_credentials_are_refused_and_move_nothing(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = vtex(recent_orders(46)).await;
    let record = intake
        .connect("lux", "vtex", &server, "appkey", Some("wrong"))
        .await;

    let refused = intake.puller.pull_store(&record).await;

    assert!(
        matches!(refused, Err(PullError::Refused { status: 401, .. })),
        "{refused:?}"
    );
    assert_eq!(intake.cursor("lux").await, None);
    assert!(intake.inbox("lux").await.is_empty());
}

// Jumpseller: no modification time anywhere; every order created within the look-back is
// read by id and stored again when what it says changed.

async fn jumpseller(orders: Vec<SimOrder>) -> SimServer {
    orderflow_sim::jumpseller::serve_api(Shop::with_orders(orders), "login", "authtoken")
        .await
        .expect("the Jumpseller API sandbox serves")
}

async fn connect_jumpseller(intake: &Intake, server: &SimServer) -> StoreRecord {
    intake
        .connect("tienda", "jumpseller", server, "login", Some("authtoken"))
        .await
}

/// Two orders placed nine and eight days ago, before the look-back, with ids below those
/// of [`recent_orders`].
fn old_orders(seed: u64) -> Vec<SimOrder> {
    let mut orders = Generator::new(seed).first_id(80).orders(2);
    for (order, days) in orders.iter_mut().zip([9, 8]) {
        order.created_at = OffsetDateTime::now_utc() - time::Duration::days(days);
        order.updated_at = order.created_at + time::Duration::minutes(1);
    }
    orders
}

case!(jumpseller_orders_whose_webhooks_were_lost_are_pulled_and_each_becomes_one_order);
async fn jumpseller_orders_whose_webhooks_were_lost_are_pulled_and_each_becomes_one_order(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(50);
    let old = old_orders(51);
    let server = jumpseller([old.clone(), orders.clone()].concat()).await;
    let record = connect_jumpseller(&intake, &server).await;
    // The webhooks of the first two orders arrived; the other three were lost.
    for order in &orders[..2] {
        let fired = order
            .updated_at
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC"
            ))
            .expect("formattable");
        delivered_by_webhook(
            &intake,
            "tienda",
            "jumpseller",
            format!("tienda:order_paid:{}:{fired}", order.id),
            vec![("jumpseller-triggered-at".to_owned(), fired)],
            orderflow_sim::jumpseller::order_body(order),
        )
        .await;
    }
    intake.work().await;
    assert_eq!(intake.orders("tienda").await.len(), 2);

    let report = intake.pull(&record).await;

    assert_eq!(
        report.stored, 5,
        "the two old orders are past the look-back"
    );
    assert_eq!(report.listed, 7);
    assert!(report.pages >= 3, "seven orders two to a page: {report:?}");
    assert_eq!(
        report.cursor,
        Some(old[1].id.to_string()),
        "the cursor is the newest order that left the look-back"
    );
    assert_eq!(intake.cursor("tienda").await, report.cursor);
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths[0], "/v1/orders/after/0.json");
    assert!(
        paths[1..]
            .iter()
            .all(|path| path.starts_with("/v1/orders/after/")),
        "{paths:?}"
    );
    let inbox = intake.inbox("tienda").await;
    let pulled: Vec<&Delivery> = inbox
        .iter()
        .filter(|d| d.topic.as_deref() == Some("pull"))
        .collect();
    assert_eq!(pulled.len(), 5);
    assert!(
        pulled
            .iter()
            .all(|d| d.header("jumpseller-triggered-at").is_some())
    );

    intake.work().await;
    let placed = intake.orders("tienda").await;
    assert_eq!(
        external_ids(&placed),
        ids_of(&orders),
        "one order each, the two the webhooks brought included"
    );
    let first = &orders[3];
    let order = placed
        .iter()
        .find(|o| o.external_id == Some(first.id.to_string()))
        .expect("a pulled order");
    let skus: Vec<&str> = order.lines.iter().map(|l| l.product_id.as_str()).collect();
    let expected: Vec<&str> = first.lines.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(skus, expected);
    assert_eq!(order.total_minor, first.items_minor());
    let address = order.shipping_address.as_ref().expect("an address");
    assert_eq!(
        address.region.as_deref(),
        Some(first.address.region_code.as_str())
    );
}

case!(a_second_jumpseller_pull_without_changes_stores_nothing_new);
async fn a_second_jumpseller_pull_without_changes_stores_nothing_new(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = jumpseller([old_orders(52), recent_orders(53)].concat()).await;
    let record = connect_jumpseller(&intake, &server).await;
    a_quiet_platform_adds_nothing(&intake, &record).await;
}

case!(a_jumpseller_order_cancelled_after_the_first_pull_is_cancelled_here);
async fn a_jumpseller_order_cancelled_after_the_first_pull_is_cancelled_here(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(54);
    let server = jumpseller(orders.clone()).await;
    let record = connect_jumpseller(&intake, &server).await;
    a_cancellation_on_the_platform_cancels_the_order(&intake, &record, &server, &orders).await;
}

case!(a_jumpseller_api_that_fails_leaves_the_cursor_where_it_was_and_loses_nothing);
async fn a_jumpseller_api_that_fails_leaves_the_cursor_where_it_was_and_loses_nothing(
    store: Arc<dyn Store>,
) {
    let intake = Intake::new(store);
    let orders = recent_orders(55);
    let old = old_orders(56);
    let server = jumpseller([old.clone(), orders[..3].to_vec()].concat()).await;
    let record = connect_jumpseller(&intake, &server).await;
    a_failing_platform_moves_nothing_and_loses_nothing(&intake, &record, &server, &orders).await;
    assert_eq!(intake.cursor("tienda").await, Some(old[1].id.to_string()));
}

case!(the_jumpseller_cursor_passes_orders_as_they_leave_the_look_back);
async fn the_jumpseller_cursor_passes_orders_as_they_leave_the_look_back(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let orders = recent_orders(57);
    let server = jumpseller(orders.clone()).await;
    let record = connect_jumpseller(&intake, &server).await;
    let first = intake.pull(&record).await;
    assert_eq!(first.cursor, None, "every order is within the look-back");

    // Time passes: the first two orders are now older than the look-back.
    for order in &orders[..2] {
        server.shop().update(order.id, |o| {
            o.created_at -= time::Duration::days(8);
        });
    }
    let later = intake.pull(&record).await;

    assert_eq!(later.cursor, Some(orders[1].id.to_string()));
    assert_eq!(intake.cursor("tienda").await, later.cursor);
    assert_eq!((later.stored, later.duplicates), (0, 0), "{later:?}");
    let third = intake.pull(&record).await;
    assert_eq!(
        third.listed, 3,
        "asked for the orders after the cursor: {third:?}"
    );
    assert_eq!((third.stored, third.skipped), (0, 3));
}

case!(wrong_jumpseller_credentials_are_refused_and_move_nothing);
async fn wrong_jumpseller_credentials_are_refused_and_move_nothing(store: Arc<dyn Store>) {
    let intake = Intake::new(store);
    let server = jumpseller(recent_orders(58)).await;
    let record = intake
        .connect("tienda", "jumpseller", &server, "login", Some("wrong"))
        .await;

    let refused = intake.puller.pull_store(&record).await;

    assert!(
        matches!(refused, Err(PullError::Refused { status: 401, .. })),
        "{refused:?}"
    );
    assert_eq!(intake.cursor("tienda").await, None);
    assert!(intake.inbox("tienda").await.is_empty());
}
