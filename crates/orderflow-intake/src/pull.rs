//! Pull connectors: orders fetched from a platform's API, by updated-at cursor, for the
//! platforms without webhooks (PrestaShop, Magento) and as reconciliation for those whose
//! webhooks get lost (Shopify gives up after 4 hours, WooCommerce never re-sends).
//!
//! A pulled order takes the same path as a webhook: it is written to the inbox as a delivery
//! keyed `pull:{external id}:{updated-at as sent}` and the worker makes it an order. An order
//! already taken in by webhook arrives again and is recorded `stale` (or applied, if the pull
//! found a newer version): nothing is done twice.
//!
//! # The cursor
//!
//! Each store's cursor is the updated-at of the newest order stored, spelled as the platform
//! spelled it, so that it goes back to the platform as it came. It moves only after every
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
//! Not pulled: VTEX (its hook's receiver fetches each order; a Feed v3 reconciliation is not
//! built), Jumpseller (no updated-at filter) and `custom`.

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
use tokio::sync::Notify;

/// How often a server pulls every store with API credentials.
pub const DEFAULT_PULL_EVERY: Duration = Duration::from_secs(5 * 60);

/// The Shopify Admin API version asked for: the one the webhooks are serialised as.
pub const SHOPIFY_API_VERSION: &str = "2024-01";

#[derive(Debug, Clone)]
pub struct PullConfig {
    /// How far back the first pull of a store (no cursor yet) looks.
    pub look_back: Duration,
    /// Orders asked for per page (capped at the platform's maximum: Shopify 250,
    /// WooCommerce 100).
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
    /// Orders at the cursor stored by an earlier round of this process, not stored again.
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
    #[error("the stored cursor {0:?} is not a time")]
    Cursor(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
    wake: Arc<Notify>,
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
    /// `wake` is the intake worker's: notified after each new delivery.
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>, config: PullConfig) -> Self {
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
            wake,
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

    /// One round over every store with credentials on a platform that is pulled.
    pub async fn pull_all(&self) -> Vec<(StoreId, Result<PullReport, PullError>)> {
        let stores = match self.store.stores_with_api().await {
            Ok(stores) => stores,
            Err(error) => {
                tracing::warn!(%error, "could not list the stores to pull");
                return Vec::new();
            }
        };
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
        results
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
                let now = OffsetDateTime::now_utc();
                let received = self
                    .store
                    .receive_delivery(NewDelivery {
                        delivery_id: time_ordered_id("dlv_", unix_millis(now), rand::random()),
                        store_id: store_id.clone(),
                        platform: platform.as_str().to_owned(),
                        event_key: stamp.key.clone(),
                        topic: Some("pull".into()),
                        headers: Vec::new(),
                        body,
                        now,
                    })
                    .await?;
                if received.duplicate_of.is_some() {
                    report.duplicates += 1;
                } else {
                    report.stored += 1;
                    self.wake.notify_one();
                }
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
}

/// The platforms whose orders are pulled.
fn pulled(platform: &str) -> bool {
    matches!(
        platform,
        "prestashop" | "magento" | "shopify" | "woocommerce"
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
    }
}
