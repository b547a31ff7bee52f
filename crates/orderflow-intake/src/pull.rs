//! Pull connectors: orders fetched from a platform's API, for the platforms without webhooks
//! (PrestaShop, Magento) and as reconciliation for those whose webhooks get lost (Shopify
//! gives up after 4 hours, WooCommerce never re-sends, VTEX drops idle hooks, Jumpseller
//! deletes a failing webhook).
//!
//! A pulled order takes the same path as a webhook: it is written to the inbox as a delivery
//! keyed `pull:{external id}:{version}` — the updated-at as sent, or for Jumpseller, which has
//! none, a fingerprint of the order — and the worker makes it an order. An order already
//! taken in by webhook arrives again and is recorded `stale` (or applied, if the pull found a
//! newer version): nothing is done twice.
//!
//! # The cursor
//!
//! Each store's cursor is the updated-at of the newest order stored, spelled as the platform
//! spelled it, so that it goes back to the platform as it came (VTEX's and Jumpseller's,
//! whose lists cannot be asked by it, are described below). It moves only after every
//! order of a page is in the inbox, so a failure (a 429 or 5xx, a timeout, the database) loses
//! nothing: the next round starts from where the last complete page ended.
//!
//! Queries include the cursor's own second (PrestaShop's interval and Shopify's
//! `updated_at_min` are inclusive, Magento is asked `gteq`, WooCommerce's exclusive
//! `modified_after` is given the second before), because another order may be updated in the
//! same second after a page was read; an exclusive bound would skip it for good. The orders at
//! the cursor that were already stored are remembered (in memory) and skipped, so a quiet
//! store costs no inbox rows; after a restart they are stored once more, as duplicates.
//!
//! Paging is by the cursor itself: after a page moves the cursor, the next page is asked from
//! the new cursor, so orders updated while the pages are read cannot shift an offset past one
//! not yet seen. Only a page that leaves the cursor where it was (every order in it updated in
//! the same second) is followed by the platform's next page.
//!
//! # VTEX
//!
//! The OMS list (`GET /api/oms/pvt/orders`) has no filter or sort on `lastChange`: VTEX
//! documents `f_creationDate` (and other dates that are not changes), `orderBy` by
//! `creationDate`, `orderId`, `items`, `totalValue` or `origin`, at most 100 orders a page
//! and 30 pages a query. So each round lists the orders *created* within the look-back,
//! newest first, each next page asked up to the oldest creation seen (so the 30-page limit
//! is never reached), and reads each one's `lastChange` from the list. The cursor is the
//! newest `lastChange` listed; it moves once the whole round is in the inbox, and the next
//! round skips the orders whose `lastChange` is older than it by more than VTEX takes to
//! index a change into the list (the list lags by minutes; VTEX recommends its Feed for
//! integrations). A listed order is written as the hook VTEX would have sent
//! (`{Domain, OrderId, State, CurrentChange, Origin}`), so the worker fetches it from
//! `GET /api/oms/pvt/orders/{orderId}` exactly as for a hook that arrived. A change to an
//! order created before the look-back is not seen.
//!
//! # Jumpseller
//!
//! Jumpseller's orders have no modification time and its API no filter by one; it lists
//! orders by id (`GET /v1/orders/after/{id}.json`, "after 5000 returns 5001, 5002…", at most
//! 100 a page). Each round reads every order created within the look-back and keys it by a
//! fingerprint of the fields the normaliser reads, so an order is stored again only when one
//! of them changed. Its version is the instant it was asked for, sent as
//! `Jumpseller-Triggered-At` the way a webhook says when its event fired, which orders it
//! against the webhooks: one fired later is newer, one fired earlier older. The cursor is
//! the id of the newest order that left the look-back; the next round asks for the orders
//! after it. A change to an order created before the look-back is not seen, and a webhook
//! fired within the clocks' skew of a read may be taken for older than it, until the next
//! round reads the change.
//!
//! Not pulled: `custom`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderflow_connectors::Platform;
use orderflow_connectors::parse::prestashop;
use orderflow_connectors::timestamp;
use orderflow_domain::StoreId;
use orderflow_domain::id::time_ordered_id;
use orderflow_store::{ApiCredentials, Error as StoreError, NewDelivery, Store, StoreRecord};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// How often a node without the workflow engine (`--no-pipeline`, `bench`) pulls every store
/// with API credentials; nodes with the engine pull in a scheduled workflow instead.
pub const DEFAULT_PULL_EVERY: Duration = Duration::from_secs(5 * 60);

/// The Shopify Admin API version asked for: the one the webhooks are serialised as.
pub const SHOPIFY_API_VERSION: &str = "2024-01";

/// How long VTEX may take to show a change in its order list: its reference says the list
/// holds only indexed orders, about four minutes after a change; a quarter of an hour leaves
/// room for that and for clocks. A change older than the cursor by more than this was listed
/// by the round that moved the cursor.
const VTEX_INDEXING_LAG: time::Duration = time::Duration::minutes(15);

/// VTEX lists at most 100 orders a page and 30 pages a query.
const VTEX_MAX_PER_PAGE: u32 = 100;
const VTEX_MAX_PAGE: u32 = 30;

/// Jumpseller lists at most 100 orders a page.
const JUMPSELLER_MAX_LIMIT: u32 = 100;

/// The fields of a Jumpseller order whose change is worth taking in: those the normaliser
/// reads, and the tracking.
const JUMPSELLER_VERSIONED: &[&str] = &[
    "status",
    "status_enum",
    "completed_at",
    "updated_at",
    "currency",
    "subtotal",
    "tax",
    "shipping_tax",
    "shipping",
    "discount",
    "shipping_discount",
    "total",
    "shipping_method_id",
    "shipping_method_name",
    "fulfillment_status",
    "shipment_status",
    "shipment_status_enum",
    "tracking_number",
    "tracking_company",
    "tracking_url",
    "customer",
    "shipping_address",
    "products",
];

#[derive(Debug, Clone)]
pub struct PullConfig {
    /// How far back the first pull of a store (no cursor yet) looks.
    pub look_back: Duration,
    /// Orders asked for per page (capped at the platform's maximum: Shopify 250,
    /// WooCommerce, VTEX and Jumpseller 100).
    pub page_size: u32,
    /// How long one request to a platform may take.
    pub timeout: Duration,
    /// Pages read per store per round; the next round carries on from the cursor.
    pub max_pages: u32,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            look_back: Duration::from_secs(7 * 24 * 3600),
            page_size: 100,
            timeout: Duration::from_secs(30),
            max_pages: 50,
        }
    }
}

/// What one pull of one store did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    pub pages: u32,
    /// Orders the platform listed.
    pub listed: usize,
    /// New inbox deliveries.
    pub stored: usize,
    /// Deliveries the inbox already held under the same key.
    pub duplicates: usize,
    /// Orders listed again unchanged, stored by an earlier round of this process (or, on
    /// VTEX, changed long enough before the cursor): not stored again.
    pub skipped: usize,
    /// The cursor after the pull, as the platform spells it.
    pub cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("the store has no API credentials to pull with")]
    NoCredentials,
    #[error("{url} answered {status}; the next round tries again")]
    Unavailable { url: String, status: u16 },
    #[error("{url} did not answer in time; the next round tries again")]
    Timeout { url: String },
    #[error("could not reach {url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url} refused the request with {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} answered something unreadable: {message}")]
    Malformed { url: String, message: String },
    #[error("the stored cursor {0:?} is not one this platform's pull writes")]
    Cursor(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PullError {
    /// Whether the next try may succeed: the platform or the database was unavailable, slow
    /// or unreachable. A refusal, an unreadable answer, a foreign cursor or missing
    /// credentials fail the same way until someone changes the store.
    pub fn is_passing(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
                | Self::Store(_)
        )
    }
}

/// The orders at the cursor already stored, by store.
#[derive(Debug, Clone)]
struct Boundary {
    cursor: String,
    keys: HashSet<String>,
}

#[derive(Debug, Clone)]
pub struct Puller {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    config: PullConfig,
    boundaries: Arc<Mutex<HashMap<StoreId, Boundary>>>,
}

/// One order a platform listed: its id, its updated-at as sent, and its body when the listing
/// carries it (PrestaShop's lists ids only).
struct Entry {
    external_id: String,
    updated_at: String,
    body: Option<Vec<u8>>,
}

/// An entry's event key and updated-at, read and as sent.
struct Stamp {
    key: String,
    at: OffsetDateTime,
    text: String,
}

/// Where the platform's next page with the same filter is.
enum Next {
    /// PrestaShop's `limit=offset,count`.
    Offset(u32),
    /// Magento's `currentPage`, WooCommerce's `page`.
    Page(u32),
    /// Shopify's `Link: <…>; rel="next"`.
    Url(String),
}

struct Listing {
    entries: Vec<Entry>,
    next: Option<Next>,
}

struct Fetched {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

const SPACED: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const T_ZONELESS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
const T_UTC: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
/// VTEX's `lastChange`: .NET's seven fractional digits and an offset.
const VTEX_TIME: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]+00:00");
/// The bounds of VTEX's `f_creationDate`: `2022-01-01T02:00:00.000Z`.
const MILLIS_Z: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
/// `Jumpseller-Triggered-At`: `2025-01-01 10:18:51.829 UTC`.
const JUMPSELLER_MILLIS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC");

fn spell(at: OffsetDateTime, description: &[BorrowedFormatItem<'_>]) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    // Instants come from the clock or from a platform's own four-digit years.
    at.format(description).unwrap_or_else(|_| at.to_string())
}

/// `at` as `platform` writes an updated-at.
fn platform_time(platform: Platform, at: OffsetDateTime) -> String {
    match platform {
        Platform::Shopify => spell(at, T_UTC),
        Platform::Woocommerce => spell(at, T_ZONELESS),
        Platform::Vtex => spell(at, VTEX_TIME),
        _ => spell(at, SPACED),
    }
}

/// The URL without its query, for messages: enough to tell which call failed.
fn without_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

fn unix_millis(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The decimal digits of a JSON id (a number or a numeric string), never through a float.
fn id_text(raw: &RawValue) -> Option<String> {
    let text = raw.get().trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.to_owned())
}

impl Puller {
    /// Intake workers hear of the deliveries it stores from the store itself
    /// (`Work::Deliveries`), as of webhooks'.
    pub fn new(store: Arc<dyn Store>, config: PullConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // A platform that redirects is misconfigured here; following it could carry the
            // credentials somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            store,
            http,
            config,
            boundaries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Pulls every store with API credentials, then again every `every`, until `shutdown`.
    /// A zero `every` turns scheduled pulls off (the puller only waits for `shutdown`).
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        if every.is_zero() {
            shutdown.await;
            return;
        }
        loop {
            // A round cut short loses nothing: the cursor only moves after a stored page.
            tokio::select! {
                () = &mut shutdown => return,
                _ = self.pull_all() => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One round over every store with credentials on a platform that is pulled; a store
    /// list that cannot be read is logged and reported as no stores.
    pub async fn pull_all(&self) -> Vec<(StoreId, Result<PullReport, PullError>)> {
        match self.try_pull_all().await {
            Ok(results) => results,
            Err(error) => {
                tracing::warn!(%error, "could not list the stores to pull");
                Vec::new()
            }
        }
    }

    /// One round over every store with credentials on a platform that is pulled, failing
    /// only when the stores cannot be listed: each store's own failure is in its result.
    pub async fn try_pull_all(
        &self,
    ) -> Result<Vec<(StoreId, Result<PullReport, PullError>)>, StoreError> {
        let stores = self.store.stores_with_api().await?;
        let mut results = Vec::new();
        for record in stores {
            if !record.platform.as_deref().is_some_and(pulled) {
                continue;
            }
            let result = self.pull_store(&record).await;
            match &result {
                Ok(report) if report.stored > 0 => tracing::info!(
                    store_id = %record.store_id, stored = report.stored,
                    cursor = ?report.cursor, "pulled orders"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(store_id = %record.store_id, %error, "pull failed");
                }
            }
            results.push((record.store_id, result));
        }
        Ok(results)
    }

    /// Pulls the orders of one store updated since its cursor into the inbox. A store on a
    /// platform that is not pulled reports nothing done.
    pub async fn pull_store(&self, record: &StoreRecord) -> Result<PullReport, PullError> {
        let Some(platform) = record
            .platform
            .as_deref()
            .filter(|p| pulled(p))
            .and_then(|p| p.parse::<Platform>().ok())
        else {
            return Ok(PullReport::default());
        };
        let api = record
            .settings
            .api
            .as_ref()
            .ok_or(PullError::NoCredentials)?;
        match platform {
            Platform::Vtex => return self.pull_vtex(record, api).await,
            Platform::Jumpseller => return self.pull_jumpseller(record, api).await,
            _ => {}
        }
        let store_id = &record.store_id;
        let mut cursor = match self.store.pull_cursor(store_id).await? {
            Some(cursor) => cursor,
            None => platform_time(platform, OffsetDateTime::now_utc() - self.config.look_back),
        };
        let mut cursor_at =
            timestamp::parse("cursor", &cursor).map_err(|_| PullError::Cursor(cursor.clone()))?;
        let mut known = self.boundary(store_id, &cursor);
        let mut report = PullReport::default();
        let mut next = None;
        for _ in 0..self.config.max_pages.max(1) {
            let listing = self
                .list(platform, api, &cursor, cursor_at, next.take())
                .await?;
            report.pages += 1;
            report.listed += listing.entries.len();
            // Read before anything is stored, so that a page with an unreadable time stores
            // nothing and moves nothing.
            let mut stamps = Vec::with_capacity(listing.entries.len());
            for entry in &listing.entries {
                let at = timestamp::parse("updated_at", &entry.updated_at).map_err(|_| {
                    PullError::Malformed {
                        url: api.base_url.clone(),
                        message: format!(
                            "order {} has the updated-at {:?}",
                            entry.external_id, entry.updated_at
                        ),
                    }
                })?;
                stamps.push(Stamp {
                    key: event_key(entry),
                    at,
                    text: entry.updated_at.clone(),
                });
            }
            for (entry, stamp) in listing.entries.into_iter().zip(&stamps) {
                if known.contains(&stamp.key) {
                    report.skipped += 1;
                    continue;
                }
                let body = match entry.body {
                    Some(body) => body,
                    None => match self.prestashop_envelope(api, &entry.external_id).await? {
                        Some(body) => body,
                        // Deleted between the listing and the fetch: nothing to take in.
                        None => continue,
                    },
                };
                self.deliver(
                    store_id,
                    platform,
                    &stamp.key,
                    Vec::new(),
                    body,
                    &mut report,
                )
                .await?;
            }
            // Every order of the page is in the inbox: the cursor may move to its newest.
            let at_instant = |at: OffsetDateTime| {
                stamps
                    .iter()
                    .filter(move |s| s.at == at)
                    .map(|s| s.key.clone())
            };
            match stamps.iter().max_by_key(|s| s.at) {
                Some(newest) if newest.at > cursor_at => {
                    cursor.clone_from(&newest.text);
                    cursor_at = newest.at;
                    known = at_instant(cursor_at).collect();
                    self.store
                        .set_pull_cursor(store_id, &cursor, OffsetDateTime::now_utc())
                        .await?;
                    self.remember(store_id, &cursor, &known);
                    // The next page is asked from the new cursor, not by the platform's paging.
                    if listing.next.is_none() {
                        break;
                    }
                }
                _ => {
                    known.extend(at_instant(cursor_at));
                    self.remember(store_id, &cursor, &known);
                    match listing.next {
                        Some(more) => next = Some(more),
                        None => break,
                    }
                }
            }
        }
        report.cursor = Some(cursor);
        Ok(report)
    }

    /// Writes one pulled order to the inbox under `key`, counted as stored or, when the
    /// inbox already holds that key, as a duplicate.
    async fn deliver(
        &self,
        store_id: &StoreId,
        platform: Platform,
        key: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        report: &mut PullReport,
    ) -> Result<(), PullError> {
        let now = OffsetDateTime::now_utc();
        let received = self
            .store
            .receive_delivery(NewDelivery {
                delivery_id: time_ordered_id("dlv_", unix_millis(now), rand::random()),
                store_id: store_id.clone(),
                platform: platform.as_str().to_owned(),
                event_key: key.to_owned(),
                topic: Some("pull".into()),
                headers,
                body,
                now,
            })
            .await?;
        if received.duplicate_of.is_some() {
            report.duplicates += 1;
        } else {
            report.stored += 1;
        }
        Ok(())
    }

    fn boundary(&self, store_id: &StoreId, cursor: &str) -> HashSet<String> {
        let boundaries = self
            .boundaries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        boundaries
            .get(store_id)
            .filter(|b| b.cursor == cursor)
            .map(|b| b.keys.clone())
            .unwrap_or_default()
    }

    fn remember(&self, store_id: &StoreId, cursor: &str, keys: &HashSet<String>) {
        let mut boundaries = self
            .boundaries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        boundaries.insert(
            store_id.clone(),
            Boundary {
                cursor: cursor.to_owned(),
                keys: keys.clone(),
            },
        );
    }

    async fn list(
        &self,
        platform: Platform,
        api: &ApiCredentials,
        cursor: &str,
        cursor_at: OffsetDateTime,
        next: Option<Next>,
    ) -> Result<Listing, PullError> {
        match platform {
            Platform::Prestashop => self.list_prestashop(api, cursor, next).await,
            Platform::Magento => self.list_magento(api, cursor, next).await,
            Platform::Shopify => self.list_shopify(api, cursor, next).await,
            Platform::Woocommerce => self.list_woocommerce(api, cursor_at, next).await,
            Platform::Vtex | Platform::Jumpseller | Platform::Custom => Ok(Listing {
                entries: Vec::new(),
                next: None,
            }),
        }
    }

    /// GETs `request`; `None` for a 404. 429 and 5xx are passing failures, other non-2xx
    /// answers refusals.
    async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<Option<Fetched>, PullError> {
        let request = request.build().map_err(|error| PullError::Transport {
            url: String::new(),
            message: error.to_string(),
        })?;
        let url = without_query(request.url().as_str());
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Err(PullError::Timeout { url }),
            Err(error) => {
                return Err(PullError::Transport {
                    url,
                    message: error.to_string(),
                });
            }
        };
        let status = response.status();
        if status.as_u16() == 404 {
            return Ok(None);
        }
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(error) if error.is_timeout() => return Err(PullError::Timeout { url }),
            Err(error) => {
                return Err(PullError::Transport {
                    url,
                    message: error.to_string(),
                });
            }
        };
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(PullError::Unavailable {
                url,
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(PullError::Refused {
                url,
                status: status.as_u16(),
                body: text.chars().take(300).collect(),
            });
        }
        Ok(Some(Fetched { headers, body }))
    }

    /// Like [`Puller::fetch`], but a 404 is a refusal: a listing endpoint must exist.
    async fn fetch_listing(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Fetched, PullError> {
        self.fetch(request)
            .await?
            .ok_or_else(|| PullError::Refused {
                url: without_query(url),
                status: 404,
                body: "no such endpoint; check the store's API base URL".into(),
            })
    }

    async fn list_prestashop(
        &self,
        api: &ApiCredentials,
        cursor: &str,
        next: Option<Next>,
    ) -> Result<Listing, PullError> {
        let key = api_key(api)?;
        let url = format!("{}/orders", prestashop_root(&api.base_url));
        let offset = match next {
            Some(Next::Offset(offset)) => offset,
            _ => 0,
        };
        // The shop's zone is unknown and its times are local: a day ahead of UTC covers every
        // zone without letting a clock gone wild pull the cursor years ahead.
        let until = spell(OffsetDateTime::now_utc() + time::Duration::DAY, SPACED);
        let request = self.http.get(&url).basic_auth(key, Some("")).query(&[
            ("display", "[id,date_upd]".to_owned()),
            ("filter[date_upd]", format!("[{cursor},{until}]")),
            ("date", "1".to_owned()),
            ("sort", "[date_upd_ASC]".to_owned()),
            ("limit", format!("{offset},{}", self.config.page_size)),
        ]);
        let fetched = self.fetch_listing(request, &url).await?;
        let text = String::from_utf8_lossy(&fetched.body);
        let listed =
            prestashop::order_ids_and_dates(&text).map_err(|error| PullError::Malformed {
                url: url.clone(),
                message: error.to_string(),
            })?;
        let full = listed.len() >= self.config.page_size as usize;
        Ok(Listing {
            entries: listed
                .into_iter()
                .map(|order| Entry {
                    external_id: order.id,
                    updated_at: order.date_upd,
                    body: None,
                })
                .collect(),
            next: full.then(|| Next::Offset(offset + self.config.page_size)),
        })
    }

    /// The order and what it refers to, in the envelope `parse::prestashop` reads. A resource
    /// that cannot be fetched or read is left null, so that the worker records the order as
    /// failed with the parser's reason instead of the pull stopping on it forever.
    async fn prestashop_envelope(
        &self,
        api: &ApiCredentials,
        id: &str,
    ) -> Result<Option<Vec<u8>>, PullError> {
        let root = prestashop_root(&api.base_url);
        let Some(order) = self.prestashop_resource(api, &root, "orders", id).await? else {
            return Ok(None);
        };
        let mut envelope = serde_json::Map::new();
        if let Ok(refs) = prestashop::order_refs(&order) {
            let address = match &refs.address_delivery {
                Some(id) => {
                    self.prestashop_resource(api, &root, "addresses", id)
                        .await?
                }
                None => None,
            };
            let fields = address
                .as_deref()
                .and_then(|xml| prestashop::address_fields(xml).ok());
            let field = |xml: Option<String>, name: &str| {
                xml.and_then(|xml| prestashop::resource_field(&xml, name).ok().flatten())
            };
            let country = match fields.as_ref().and_then(|f| f.id_country.as_deref()) {
                Some(id) => {
                    self.prestashop_resource(api, &root, "countries", id)
                        .await?
                }
                None => None,
            };
            let state = match fields.as_ref().and_then(|f| f.id_state.as_deref()) {
                Some(id) => self.prestashop_resource(api, &root, "states", id).await?,
                None => None,
            };
            let customer = match &refs.customer {
                Some(id) => {
                    self.prestashop_resource(api, &root, "customers", id)
                        .await?
                }
                None => None,
            };
            let currency = match &refs.currency {
                Some(id) => {
                    self.prestashop_resource(api, &root, "currencies", id)
                        .await?
                }
                None => None,
            };
            let carrier = match &refs.carrier {
                Some(id) => self.prestashop_resource(api, &root, "carriers", id).await?,
                None => None,
            };
            envelope.insert("address".into(), address.into());
            envelope.insert("customer".into(), customer.into());
            envelope.insert("country_iso".into(), field(country, "iso_code").into());
            envelope.insert("state_iso".into(), field(state, "iso_code").into());
            envelope.insert("currency_iso".into(), field(currency, "iso_code").into());
            envelope.insert("carrier".into(), field(carrier, "name").into());
        }
        envelope.insert("order".into(), order.into());
        serde_json::to_vec(&envelope)
            .map(Some)
            .map_err(|error| PullError::Malformed {
                url: format!("{root}/orders/{id}"),
                message: error.to_string(),
            })
    }

    async fn prestashop_resource(
        &self,
        api: &ApiCredentials,
        root: &str,
        resource: &str,
        id: &str,
    ) -> Result<Option<String>, PullError> {
        let key = api_key(api)?;
        let request = self
            .http
            .get(format!("{root}/{resource}/{id}"))
            .basic_auth(key, Some(""));
        Ok(self
            .fetch(request)
            .await?
            .map(|fetched| String::from_utf8_lossy(&fetched.body).into_owned()))
    }

    async fn list_magento(
        &self,
        api: &ApiCredentials,
        cursor: &str,
        next: Option<Next>,
    ) -> Result<Listing, PullError> {
        #[derive(Deserialize)]
        struct Search {
            items: Option<Vec<Box<RawValue>>>,
            total_count: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Ident {
            entity_id: Option<Box<RawValue>>,
            updated_at: Option<String>,
        }
        let token = api_token(api)?;
        let url = format!("{}/V1/orders", magento_root(&api.base_url));
        let page = match next {
            Some(Next::Page(page)) => page,
            _ => 1,
        };
        const FILTER: &str = "searchCriteria[filter_groups][0][filters][0]";
        const SORT: &str = "searchCriteria[sortOrders][0]";
        let request = self.http.get(&url).bearer_auth(token).query(&[
            (format!("{FILTER}[field]"), "updated_at".to_owned()),
            (format!("{FILTER}[value]"), cursor.to_owned()),
            (format!("{FILTER}[condition_type]"), "gteq".to_owned()),
            (format!("{SORT}[field]"), "updated_at".to_owned()),
            (format!("{SORT}[direction]"), "ASC".to_owned()),
            (
                "searchCriteria[pageSize]".to_owned(),
                self.config.page_size.to_string(),
            ),
            ("searchCriteria[currentPage]".to_owned(), page.to_string()),
        ]);
        let fetched = self.fetch_listing(request, &url).await?;
        let malformed = |message: String| PullError::Malformed {
            url: url.clone(),
            message,
        };
        let search: Search =
            serde_json::from_slice(&fetched.body).map_err(|e| malformed(e.to_string()))?;
        let items = search.items.unwrap_or_default();
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let ident: Ident =
                serde_json::from_str(item.get()).map_err(|e| malformed(e.to_string()))?;
            let (Some(id), Some(updated_at)) = (
                ident.entity_id.as_deref().and_then(id_text),
                ident.updated_at,
            ) else {
                return Err(malformed("an order without entity_id or updated_at".into()));
            };
            entries.push(Entry {
                external_id: id,
                updated_at,
                body: Some(item.get().as_bytes().to_vec()),
            });
        }
        // Some Magento versions answer a page past the end with the last page again, so the
        // count, not an empty page, says when to stop.
        let seen = u64::from(page) * u64::from(self.config.page_size);
        let more = search.total_count.is_some_and(|total| seen < total)
            && entries.len() >= self.config.page_size as usize;
        Ok(Listing {
            entries,
            next: more.then_some(Next::Page(page + 1)),
        })
    }

    async fn list_shopify(
        &self,
        api: &ApiCredentials,
        cursor: &str,
        next: Option<Next>,
    ) -> Result<Listing, PullError> {
        #[derive(Deserialize)]
        struct Orders {
            orders: Vec<Box<RawValue>>,
        }
        #[derive(Deserialize)]
        struct Ident {
            id: Option<Box<RawValue>>,
            updated_at: Option<String>,
        }
        let token = api_token(api)?;
        let root = api.base_url.trim_end_matches('/');
        let url = format!("{root}/admin/api/{SHOPIFY_API_VERSION}/orders.json");
        let request = match next {
            Some(Next::Url(next)) => self.http.get(next),
            _ => self.http.get(&url).query(&[
                ("status", "any".to_owned()),
                ("updated_at_min", cursor.to_owned()),
                ("order", "updated_at asc".to_owned()),
                ("limit", self.config.page_size.clamp(1, 250).to_string()),
            ]),
        };
        let fetched = self
            .fetch_listing(request.header("X-Shopify-Access-Token", token), &url)
            .await?;
        let malformed = |message: String| PullError::Malformed {
            url: url.clone(),
            message,
        };
        let orders: Orders =
            serde_json::from_slice(&fetched.body).map_err(|e| malformed(e.to_string()))?;
        let mut entries = Vec::with_capacity(orders.orders.len());
        for order in orders.orders {
            let ident: Ident =
                serde_json::from_str(order.get()).map_err(|e| malformed(e.to_string()))?;
            let (Some(id), Some(updated_at)) =
                (ident.id.as_deref().and_then(id_text), ident.updated_at)
            else {
                return Err(malformed("an order without id or updated_at".into()));
            };
            entries.push(Entry {
                external_id: id,
                updated_at,
                body: Some(order.get().as_bytes().to_vec()),
            });
        }
        let next = match next_link(&fetched.headers) {
            // The token goes only where the store's credentials say.
            Some(link) if link.starts_with(&format!("{root}/")) => Some(Next::Url(link)),
            Some(link) => {
                return Err(malformed(format!(
                    "the next page {link:?} is not under the store's API base URL"
                )));
            }
            None => None,
        };
        Ok(Listing { entries, next })
    }

    async fn list_woocommerce(
        &self,
        api: &ApiCredentials,
        cursor_at: OffsetDateTime,
        next: Option<Next>,
    ) -> Result<Listing, PullError> {
        #[derive(Deserialize)]
        struct Ident {
            id: Option<Box<RawValue>>,
            date_modified_gmt: Option<String>,
        }
        let (key, secret) = (api_key(api)?, api_token(api)?);
        let url = format!("{}/orders", woocommerce_root(&api.base_url));
        let page = match next {
            Some(Next::Page(page)) => page,
            _ => 1,
        };
        let per_page = self.config.page_size.clamp(1, 100);
        // `modified_after` is exclusive and WordPress keeps whole seconds: the second before
        // the cursor takes in the cursor's own second.
        let after = spell(cursor_at - time::Duration::SECOND, T_ZONELESS);
        let request = self.http.get(&url).basic_auth(key, Some(secret)).query(&[
            ("modified_after", after),
            ("dates_are_gmt", "true".to_owned()),
            ("orderby", "modified".to_owned()),
            ("order", "asc".to_owned()),
            ("per_page", per_page.to_string()),
            ("page", page.to_string()),
        ]);
        let fetched = self.fetch_listing(request, &url).await?;
        let malformed = |message: String| PullError::Malformed {
            url: url.clone(),
            message,
        };
        let orders: Vec<Box<RawValue>> =
            serde_json::from_slice(&fetched.body).map_err(|e| malformed(e.to_string()))?;
        let mut entries = Vec::with_capacity(orders.len());
        for order in orders {
            let ident: Ident =
                serde_json::from_str(order.get()).map_err(|e| malformed(e.to_string()))?;
            let (Some(id), Some(updated_at)) = (
                ident.id.as_deref().and_then(id_text),
                ident.date_modified_gmt,
            ) else {
                return Err(malformed("an order without id or date_modified_gmt".into()));
            };
            entries.push(Entry {
                external_id: id,
                updated_at,
                body: Some(order.get().as_bytes().to_vec()),
            });
        }
        let total_pages = fetched
            .headers
            .get("x-wp-totalpages")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let more = match total_pages {
            Some(pages) => page < pages,
            None => entries.len() >= per_page as usize,
        };
        Ok(Listing {
            entries,
            next: more.then_some(Next::Page(page + 1)),
        })
    }

    /// VTEX: the orders created within the look-back, newest first, from the OMS list, each
    /// written to the inbox as the hook VTEX would have sent for it (see the module's notes).
    async fn pull_vtex(
        &self,
        record: &StoreRecord,
        api: &ApiCredentials,
    ) -> Result<PullReport, PullError> {
        let store_id = &record.store_id;
        let (app_key, app_token) = (api_key(api)?, api_secret(api)?);
        let now = OffsetDateTime::now_utc();
        let mut cursor = match self.store.pull_cursor(store_id).await? {
            Some(cursor) => cursor,
            None => platform_time(Platform::Vtex, now - self.config.look_back),
        };
        let cursor_at =
            timestamp::parse("cursor", &cursor).map_err(|_| PullError::Cursor(cursor.clone()))?;
        let listed_before = cursor_at - VTEX_INDEXING_LAG;
        let mut known = self.boundary(store_id, &cursor);
        let account = vtex_account(&api.base_url, store_id);
        let url = format!("{}/api/oms/pvt/orders", api.base_url.trim_end_matches('/'));
        let per_page = self.config.page_size.clamp(1, VTEX_MAX_PER_PAGE);
        let created_from = spell(now - self.config.look_back, MILLIS_Z);
        let mut created_until = now;
        let mut page = 1;
        let mut listed = HashSet::new();
        let mut newest: Option<(OffsetDateTime, String)> = None;
        // The keys of this round's orders, with their changes: what the next round may meet.
        let mut in_inbox: Vec<(OffsetDateTime, String)> = Vec::new();
        let mut report = PullReport::default();
        let mut finished = false;
        for _ in 0..self.config.max_pages.max(1) {
            let request = self
                .http
                .get(&url)
                .header("X-VTEX-API-AppKey", app_key)
                .header("X-VTEX-API-AppToken", app_token)
                .header(reqwest::header::ACCEPT, "application/json")
                .query(&[
                    (
                        "f_creationDate",
                        format!(
                            "creationDate:[{created_from} TO {}]",
                            spell(created_until, MILLIS_Z)
                        ),
                    ),
                    ("orderBy", "creationDate,desc".to_owned()),
                    ("page", page.to_string()),
                    ("per_page", per_page.to_string()),
                ]);
            let listing = self.list_vtex(request, &url).await?;
            report.pages += 1;
            let last = listing.orders.len() < per_page as usize
                || listing.pages.is_some_and(|pages| pages <= u64::from(page));
            let oldest = listing.orders.iter().map(|order| order.created).min();
            for order in listing.orders {
                // Asked up to the oldest creation of the page before, its last orders
                // come again.
                if !listed.insert(order.id.clone()) {
                    continue;
                }
                report.listed += 1;
                if newest.as_ref().is_none_or(|(at, _)| order.changed > *at) {
                    newest = Some((order.changed, order.last_change.clone()));
                }
                if order.changed < listed_before {
                    report.skipped += 1;
                    continue;
                }
                let key = format!("pull:{}:{}", order.id, order.last_change);
                in_inbox.push((order.changed, key.clone()));
                if known.contains(&key) {
                    report.skipped += 1;
                    continue;
                }
                let hook = vtex_hook(&order, &account, app_key);
                self.deliver(
                    store_id,
                    Platform::Vtex,
                    &key,
                    Vec::new(),
                    hook,
                    &mut report,
                )
                .await?;
                known.insert(key);
            }
            // A failure on a later page does not store these again.
            self.remember(store_id, &cursor, &known);
            if last {
                finished = true;
                break;
            }
            // The next page holds the orders created up to the oldest of this one, to the
            // millisecond VTEX filters by and past it, so that none of that millisecond is
            // missed; only a page all of one millisecond is followed by VTEX's next page.
            match oldest.map(past_its_millisecond) {
                Some(until) if until < created_until => {
                    created_until = until;
                    page = 1;
                }
                _ => page += 1,
            }
            if page > VTEX_MAX_PAGE {
                break;
            }
        }
        if !finished {
            tracing::warn!(
                store_id = %store_id, pages = report.pages,
                "more VTEX orders were created within the look-back than a round reads; \
                 the oldest are not reconciled"
            );
        }
        // Every order listed is in the inbox: the cursor may move to the newest change.
        let mut cursor_at = cursor_at;
        if let Some((at, text)) = newest.filter(|(at, _)| *at > cursor_at) {
            cursor = text;
            cursor_at = at;
            self.store
                .set_pull_cursor(store_id, &cursor, OffsetDateTime::now_utc())
                .await?;
        }
        let listed_before = cursor_at - VTEX_INDEXING_LAG;
        known = in_inbox
            .into_iter()
            .filter(|(at, _)| *at >= listed_before)
            .map(|(_, key)| key)
            .collect();
        self.remember(store_id, &cursor, &known);
        report.cursor = Some(cursor);
        Ok(report)
    }

    /// One page of VTEX's order list, every order's times read before anything is stored.
    async fn list_vtex(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<VtexPage, PullError> {
        #[derive(Deserialize)]
        struct List {
            list: Vec<Listed>,
            paging: Option<Paging>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Listed {
            order_id: Option<String>,
            status: Option<String>,
            origin: Option<String>,
            creation_date: Option<String>,
            last_change: Option<String>,
        }
        #[derive(Deserialize)]
        struct Paging {
            pages: Option<u64>,
        }
        let fetched = self.fetch_listing(request, url).await?;
        let malformed = |message: String| PullError::Malformed {
            url: url.to_owned(),
            message,
        };
        let list: List =
            serde_json::from_slice(&fetched.body).map_err(|e| malformed(e.to_string()))?;
        let mut orders = Vec::with_capacity(list.list.len());
        for listed in list.list {
            let (Some(id), Some(status)) = (
                listed.order_id.filter(|id| !id.is_empty()),
                listed.status.filter(|status| !status.is_empty()),
            ) else {
                return Err(malformed("an order without orderId or status".into()));
            };
            let time = |field: &str, text: Option<String>| {
                let text = text.ok_or_else(|| malformed(format!("order {id} has no {field}")))?;
                let at = timestamp::parse("lastChange", &text)
                    .map_err(|_| malformed(format!("order {id} has the {field} {text:?}")))?;
                Ok::<_, PullError>((at, text))
            };
            let (created, _) = time("creationDate", listed.creation_date)?;
            let (changed, last_change) = time("lastChange", listed.last_change)?;
            orders.push(VtexListed {
                id,
                status,
                origin: listed.origin.filter(|origin| !origin.is_empty()),
                created,
                changed,
                last_change,
            });
        }
        Ok(VtexPage {
            orders,
            pages: list.paging.and_then(|paging| paging.pages),
        })
    }

    /// Jumpseller: every order created within the look-back, read by id after the cursor and
    /// stored when its fingerprint is new (see the module's notes).
    async fn pull_jumpseller(
        &self,
        record: &StoreRecord,
        api: &ApiCredentials,
    ) -> Result<PullReport, PullError> {
        let store_id = &record.store_id;
        let (login, auth_token) = (api_key(api)?, api_secret(api)?);
        let root = jumpseller_root(&api.base_url);
        let mut cursor = match self.store.pull_cursor(store_id).await? {
            Some(text) => Some(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| PullError::Cursor(text.clone()))?,
            ),
            None => None,
        };
        let spelled = |cursor: Option<u64>| cursor.map_or_else(String::new, |id| id.to_string());
        let mut known = self.boundary(store_id, &spelled(cursor));
        let window_start = OffsetDateTime::now_utc() - self.config.look_back;
        let limit = self.config.page_size.clamp(1, JUMPSELLER_MAX_LIMIT);
        let mut after = cursor.unwrap_or(0);
        // Whether every order read so far, in id order, was created before the look-back:
        // the cursor passes only those.
        let mut leaving = true;
        let mut in_window = HashSet::new();
        let mut report = PullReport::default();
        let mut finished = false;
        for _ in 0..self.config.max_pages.max(1) {
            // The orders read show their state as it was by the time they were asked for.
            let asked_at = spell(OffsetDateTime::now_utc(), JUMPSELLER_MILLIS);
            let url = format!("{root}/orders/after/{after}.json");
            let request = self
                .http
                .get(&url)
                .basic_auth(login, Some(auth_token))
                .query(&[("limit", limit)]);
            let orders = self.list_jumpseller(request, &url, after).await?;
            report.pages += 1;
            report.listed += orders.len();
            let full = orders.len() >= limit as usize;
            let mut passed = None;
            for order in orders {
                after = order.id;
                if order.created < window_start {
                    if leaving {
                        passed = Some(order.id);
                    }
                    continue;
                }
                leaving = false;
                let key = format!("pull:{}:{}", order.id, order.fingerprint);
                in_window.insert(key.clone());
                if known.contains(&key) {
                    report.skipped += 1;
                    continue;
                }
                let headers = vec![("jumpseller-triggered-at".to_owned(), asked_at.clone())];
                self.deliver(
                    store_id,
                    Platform::Jumpseller,
                    &key,
                    headers,
                    order.body,
                    &mut report,
                )
                .await?;
                known.insert(key);
            }
            if passed.is_some() {
                cursor = passed;
                self.store
                    .set_pull_cursor(store_id, &spelled(cursor), OffsetDateTime::now_utc())
                    .await?;
            }
            self.remember(store_id, &spelled(cursor), &known);
            if !full {
                finished = true;
                break;
            }
        }
        if finished {
            // The orders that left the look-back are forgotten with it.
            self.remember(store_id, &spelled(cursor), &in_window);
        }
        report.cursor = cursor.map(|id| id.to_string());
        Ok(report)
    }

    /// One page of Jumpseller's orders after `after`: each `{"order":{…}}` as it came, its id
    /// and creation read, and its fingerprint; ids must rise from `after`, or paging from the
    /// last id could skip orders.
    async fn list_jumpseller(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        after: u64,
    ) -> Result<Vec<JumpsellerListed>, PullError> {
        #[derive(Deserialize)]
        struct Wrapped {
            order: HashMap<String, Box<RawValue>>,
        }
        let fetched = self.fetch_listing(request, url).await?;
        let malformed = |message: String| PullError::Malformed {
            url: url.to_owned(),
            message,
        };
        let items: Vec<Box<RawValue>> =
            serde_json::from_slice(&fetched.body).map_err(|e| malformed(e.to_string()))?;
        let mut orders = Vec::with_capacity(items.len());
        let mut previous = after;
        for item in items {
            let Wrapped { order } =
                serde_json::from_str(item.get()).map_err(|e| malformed(e.to_string()))?;
            let Some(id) = order
                .get("id")
                .and_then(|id| id_text(id))
                .and_then(|id| id.parse::<u64>().ok())
            else {
                return Err(malformed("an order without a numeric id".into()));
            };
            if id <= previous {
                return Err(malformed(format!(
                    "order {id} came after order {previous}: the orders are not in id order"
                )));
            }
            previous = id;
            let created = order
                .get("created_at")
                .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
                .and_then(|text| timestamp::parse("created_at", &text).ok())
                .ok_or_else(|| malformed(format!("order {id} has no readable created_at")))?;
            orders.push(JumpsellerListed {
                id,
                created,
                fingerprint: jumpseller_fingerprint(&order),
                body: item.get().as_bytes().to_vec(),
            });
        }
        Ok(orders)
    }
}

/// One order of VTEX's list: what the hook for it says.
struct VtexListed {
    id: String,
    status: String,
    origin: Option<String>,
    created: OffsetDateTime,
    changed: OffsetDateTime,
    /// `lastChange` as VTEX spelled it.
    last_change: String,
}

struct VtexPage {
    orders: Vec<VtexListed>,
    /// `paging.pages`: how many pages the query has.
    pages: Option<u64>,
}

/// One order of Jumpseller's list.
struct JumpsellerListed {
    id: u64,
    created: OffsetDateTime,
    fingerprint: String,
    /// `{"order":{…}}`, the webhook's body.
    body: Vec<u8>,
}

/// The hook VTEX would have sent for a listed order; the worker fetches the order it names
/// from the OMS, as for a hook that arrived.
fn vtex_hook(order: &VtexListed, account: &str, app_key: &str) -> Vec<u8> {
    serde_json::json!({
        "Domain": order.origin.as_deref().unwrap_or("Marketplace"),
        "OrderId": order.id,
        "State": order.status,
        "CurrentChange": order.last_change,
        "Origin": {"Account": account, "Key": app_key},
    })
    .to_string()
    .into_bytes()
}

/// The VTEX account a store's API URL names (`https://{account}.vtexcommercestable.com.br`),
/// or the store's id when the URL has no such host name (an address, a sandbox).
fn vtex_account(base_url: &str, store_id: &StoreId) -> String {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|url| {
            let (account, _) = url.domain()?.split_once('.')?;
            (!account.is_empty()).then(|| account.to_owned())
        })
        .unwrap_or_else(|| store_id.to_string())
}

/// The millisecond after the one `at` falls in: an inclusive bound at milliseconds that
/// takes in everything up to `at`.
fn past_its_millisecond(at: OffsetDateTime) -> OffsetDateTime {
    // A whole number of milliseconds is always a valid nanosecond.
    let floor = at
        .replace_nanosecond(u32::from(at.millisecond()) * 1_000_000)
        .unwrap_or(at);
    floor + time::Duration::MILLISECOND
}

/// FNV-1a over the versioned fields of a Jumpseller order as they were written: stable
/// across runs and builds, unlike `std`'s hasher, so that the inbox recognises an unchanged
/// order after a restart.
fn jumpseller_fingerprint(order: &HashMap<String, Box<RawValue>>) -> String {
    let hash = JUMPSELLER_VERSIONED
        .iter()
        .flat_map(|field| {
            let value = order.get(*field).map_or("", |raw| raw.get());
            field
                .bytes()
                .chain([b'='])
                .chain(value.bytes())
                .chain([b'\n'])
        })
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// The API root, whether the store was configured with `https://api.jumpseller.com` or with
/// its `/v1`.
fn jumpseller_root(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        base.to_owned()
    } else {
        format!("{base}/v1")
    }
}

/// The platforms whose orders are pulled.
fn pulled(platform: &str) -> bool {
    matches!(
        platform,
        "prestashop" | "magento" | "shopify" | "woocommerce" | "vtex" | "jumpseller"
    )
}

fn event_key(entry: &Entry) -> String {
    format!("pull:{}:{}", entry.external_id, entry.updated_at)
}

fn api_key(api: &ApiCredentials) -> Result<&str, PullError> {
    api.key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or(PullError::NoCredentials)
}

/// The token, for the platforms that take a key and a token both (VTEX's app key and token,
/// Jumpseller's login and auth token).
fn api_secret(api: &ApiCredentials) -> Result<&str, PullError> {
    api.token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or(PullError::NoCredentials)
}

fn api_token(api: &ApiCredentials) -> Result<&str, PullError> {
    api.token
        .as_deref()
        .or(api.key.as_deref())
        .filter(|t| !t.is_empty())
        .ok_or(PullError::NoCredentials)
}

/// The webservice root, whether the store was configured with the shop's URL or its `/api`.
fn prestashop_root(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/api") {
        base.to_owned()
    } else {
        format!("{base}/api")
    }
}

/// The REST root (`…/rest` or `…/rest/{store code}`), whether the store was configured with
/// the shop's URL or with it.
fn magento_root(base: &str) -> String {
    let base = base.trim_end_matches('/');
    // `…/rest` itself, or `…/rest/{store code}`.
    let named = base.rsplit_once("/rest").is_some_and(|(_, after)| {
        after.is_empty()
            || after
                .strip_prefix('/')
                .is_some_and(|code| !code.contains('/'))
    });
    if named {
        base.to_owned()
    } else {
        format!("{base}/rest")
    }
}

fn woocommerce_root(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/wp-json/wc/v3") {
        base.to_owned()
    } else {
        format!("{base}/wp-json/wc/v3")
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_roots_are_found_whether_or_not_the_store_named_them() {
        assert_eq!(
            prestashop_root("https://shop.example"),
            "https://shop.example/api"
        );
        assert_eq!(
            prestashop_root("https://shop.example/api/"),
            "https://shop.example/api"
        );
        assert_eq!(magento_root("https://m.example"), "https://m.example/rest");
        assert_eq!(
            magento_root("https://m.example/restaurant"),
            "https://m.example/restaurant/rest"
        );
        assert_eq!(
            magento_root("https://m.example/rest"),
            "https://m.example/rest"
        );
        assert_eq!(
            magento_root("https://m.example/rest/default"),
            "https://m.example/rest/default"
        );
        assert_eq!(
            woocommerce_root("https://w.example/"),
            "https://w.example/wp-json/wc/v3"
        );
    }

    #[test]
    fn the_next_link_is_read_among_others() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://s/a?page_info=p>; rel=\"previous\", <https://s/a?page_info=n>; rel=\"next\""
                .parse()
                .expect("a header value"),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://s/a?page_info=n")
        );
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }

    #[test]
    fn ids_are_read_as_digits_never_as_floats() {
        let raw = |text: &str| RawValue::from_string(text.to_owned()).expect("JSON");
        assert_eq!(
            id_text(&raw("820982911946154508")).as_deref(),
            Some("820982911946154508")
        );
        assert_eq!(id_text(&raw("\"42\"")).as_deref(), Some("42"));
        assert_eq!(id_text(&raw("1.5")), None);
        assert_eq!(id_text(&raw("null")), None);
    }

    #[test]
    fn a_first_cursor_is_spelled_as_the_platform_spells_times() {
        let at = time::macros::datetime!(2025-01-02 03:04:05.6 UTC);
        assert_eq!(
            platform_time(Platform::Prestashop, at),
            "2025-01-02 03:04:05"
        );
        assert_eq!(platform_time(Platform::Magento, at), "2025-01-02 03:04:05");
        assert_eq!(
            platform_time(Platform::Woocommerce, at),
            "2025-01-02T03:04:05"
        );
        assert_eq!(platform_time(Platform::Shopify, at), "2025-01-02T03:04:05Z");
        assert_eq!(
            platform_time(Platform::Vtex, at),
            "2025-01-02T03:04:05.6000000+00:00"
        );
    }

    #[test]
    fn jumpseller_and_vtex_addresses_are_read_whether_or_not_the_store_named_them() {
        assert_eq!(
            jumpseller_root("https://api.jumpseller.com"),
            "https://api.jumpseller.com/v1"
        );
        assert_eq!(
            jumpseller_root("https://api.jumpseller.com/v1/"),
            "https://api.jumpseller.com/v1"
        );
        let store: StoreId = "lux".parse().expect("a store id");
        assert_eq!(
            vtex_account("https://luxbags.vtexcommercestable.com.br/", &store),
            "luxbags"
        );
        assert_eq!(vtex_account("http://127.0.0.1:8080", &store), "lux");
    }

    #[test]
    fn the_next_vtex_page_reaches_past_the_millisecond_of_the_oldest_order() {
        let at = time::macros::datetime!(2025-01-02 03:04:05.123_4567 UTC);
        assert_eq!(
            past_its_millisecond(at),
            time::macros::datetime!(2025-01-02 03:04:05.124 UTC)
        );
        assert_eq!(
            spell(past_its_millisecond(at), MILLIS_Z),
            "2025-01-02T03:04:05.124Z"
        );
    }

    #[test]
    fn a_jumpseller_fingerprint_changes_with_what_is_read_and_nothing_else() {
        let order = |body: &str| -> HashMap<String, Box<RawValue>> {
            serde_json::from_str(body).expect("an object")
        };
        let paid = order(r#"{"id":1,"status_enum":"paid","total":10.5,"recovery_url":"a"}"#);
        let relinked = order(r#"{"id":1,"status_enum":"paid","total":10.5,"recovery_url":"b"}"#);
        let cancelled = order(r#"{"id":1,"status_enum":"canceled","total":10.5}"#);
        assert_eq!(
            jumpseller_fingerprint(&paid),
            jumpseller_fingerprint(&relinked)
        );
        assert_ne!(
            jumpseller_fingerprint(&paid),
            jumpseller_fingerprint(&cancelled)
        );
        // Kept in the inbox's event keys: the same order must give the same key in every
        // build.
        assert_eq!(jumpseller_fingerprint(&paid), "a8f3ec4e7180872c");
    }
}
