//! What every sandbox server shares: the shop's orders (changeable while it runs), faults to
//! inject (a status, or a slow answer, for the next N requests, or for the requests matching
//! a pattern), a log of the requests it saw, the answers it keeps per idempotency key, and a
//! handle that stops it when dropped.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::order::SimOrder;

/// Locks a mutex, carrying on with the data if a panicking holder poisoned it: a sandbox
/// that keeps answering is more use to a failing test than a second panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A shop's orders, shared between the test (which adds and changes them) and the servers
/// that serve them.
#[derive(Debug, Clone, Default)]
pub struct Shop {
    orders: Arc<Mutex<Vec<SimOrder>>>,
}

impl Shop {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_orders(orders: impl IntoIterator<Item = SimOrder>) -> Self {
        let shop = Self::new();
        for order in orders {
            shop.put(order);
        }
        shop
    }

    /// Adds the order, or replaces the one with its id.
    pub fn put(&self, order: SimOrder) {
        let mut orders = lock(&self.orders);
        match orders.iter_mut().find(|held| held.id == order.id) {
            Some(held) => *held = order,
            None => orders.push(order),
        }
    }

    /// Changes the order with this id in place; false when there is none.
    pub fn update(&self, id: u64, change: impl FnOnce(&mut SimOrder)) -> bool {
        let mut orders = lock(&self.orders);
        match orders.iter_mut().find(|held| held.id == id) {
            Some(order) => {
                change(order);
                true
            }
            None => false,
        }
    }

    pub fn remove(&self, id: u64) -> Option<SimOrder> {
        let mut orders = lock(&self.orders);
        let index = orders.iter().position(|held| held.id == id)?;
        Some(orders.remove(index))
    }

    pub fn get(&self, id: u64) -> Option<SimOrder> {
        lock(&self.orders).iter().find(|o| o.id == id).cloned()
    }

    /// Every order, in the order they were added.
    pub fn orders(&self) -> Vec<SimOrder> {
        lock(&self.orders).clone()
    }
}

/// Something to do to a request instead of (or before) answering it normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status at once, without doing anything else.
    Status(u16),
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// Faults for the next requests, taken one per request in order, and faults for the requests
/// that match a pattern ([`Faults::on`]).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    queue: Arc<Mutex<VecDeque<Fault>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
    release: Arc<Release>,
}

impl Faults {
    /// The next `count` requests are answered with `status`.
    pub fn fail_next(&self, count: usize, status: u16) {
        self.push(count, Fault::Status(status));
    }

    /// The next `count` requests are answered after `delay`.
    pub fn slow_next(&self, count: usize, delay: Duration) {
        self.push(count, Fault::Delay(delay));
    }

    pub fn push(&self, count: usize, fault: Fault) {
        lock(&self.queue).extend(std::iter::repeat_n(fault, count));
    }

    pub fn clear(&self) {
        lock(&self.queue).clear();
        lock(&self.rules).clear();
    }

    /// How many faults are still waiting for a request (a rule for every matching request
    /// counts as none).
    pub fn pending(&self) -> usize {
        let counted: usize = lock(&self.rules).iter().filter_map(|r| r.remaining).sum();
        lock(&self.queue).len() + counted
    }

    pub(crate) fn take(&self) -> Option<Fault> {
        lock(&self.queue).pop_front()
    }
}

/// What a pattern rule does to a request it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Answer this status at once, without doing anything else.
    Status(u16),
    /// Answer 429 with `Retry-After` (whole seconds, rounded up), without doing anything else.
    RateLimit(Duration),
    /// Wait this long, then answer normally. Delays of several matching rules add up.
    Delay(Duration),
    /// Hold the request without doing anything until the caller gives up: a timeout where
    /// nothing happened. It is answered 504 when the server stops, on
    /// [`Faults::release_stalls`], or after [`STALL_LIMIT`].
    Stall,
    /// Do the work, then hold the answer back as [`Misbehaviour::Stall`] does: a timeout where
    /// the effect happened and the caller never heard of it.
    LoseAnswer,
}

/// The longest a stalled request is held.
pub const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Faults for the requests matching `[METHOD ]PATH`, where `*` in the path stands for any
/// run of characters and the query is not looked at: `"POST /v1/payment_intents"`,
/// `"POST /v2/shipments/*/buy"`, `"*/buy"`, `"*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    method: Option<String>,
    path: String,
    then: Misbehaviour,
    /// `None`: every matching request.
    remaining: Option<usize>,
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method))
            && glob(&self.path, path)
    }

    fn spend(&mut self) {
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(1);
        }
    }
}

/// Whether `text` matches `pattern`, whose `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// What the matching rules decided for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) delay: Duration,
    pub(crate) then: Option<Misbehaviour>,
}

/// Wakes stalled requests: all of them when the server stops, the current ones on demand.
#[derive(Debug, Default)]
struct Release {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

/// The rules for the requests matching one pattern: see [`Faults::on`].
#[derive(Debug)]
pub struct Matching<'f> {
    faults: &'f Faults,
    method: Option<String>,
    path: String,
}

impl Matching<'_> {
    fn add(self, then: Misbehaviour, remaining: Option<usize>) {
        lock(&self.faults.rules).push(Rule {
            method: self.method,
            path: self.path,
            then,
            remaining,
        });
    }

    /// The next `count` matching requests are answered with `status`.
    pub fn fail(self, count: usize, status: u16) {
        self.add(Misbehaviour::Status(status), Some(count));
    }

    /// Every matching request is answered with `status`.
    pub fn fail_every(self, status: u16) {
        self.add(Misbehaviour::Status(status), None);
    }

    /// The next `count` matching requests are answered 429 with `Retry-After`.
    pub fn rate_limit(self, count: usize, retry_after: Duration) {
        self.add(Misbehaviour::RateLimit(retry_after), Some(count));
    }

    /// The next `count` matching requests are answered after `delay`.
    pub fn slow(self, count: usize, delay: Duration) {
        self.add(Misbehaviour::Delay(delay), Some(count));
    }

    /// Every matching request is answered after `delay`.
    pub fn slow_every(self, delay: Duration) {
        self.add(Misbehaviour::Delay(delay), None);
    }

    /// The next `count` matching requests are held, undone, until the caller times out.
    pub fn stall(self, count: usize) {
        self.add(Misbehaviour::Stall, Some(count));
    }

    /// The next `count` matching requests are done, and their answers held until the caller
    /// times out.
    pub fn lose_answer(self, count: usize) {
        self.add(Misbehaviour::LoseAnswer, Some(count));
    }

    /// Any other rule.
    pub fn push(self, count: Option<usize>, then: Misbehaviour) {
        self.add(then, count);
    }
}

impl Faults {
    /// Rules for the requests matching `[METHOD ]PATH` (`*` stands for any run of characters;
    /// the query is not looked at): `faults.on("POST /v1/payment_intents").fail(2, 500)`,
    /// `faults.on("*/buy").stall(1)`, `faults.on("*").slow_every(Duration::from_millis(50))`.
    ///
    /// A request meets the faults of [`Faults::fail_next`] and [`Faults::slow_next`] first;
    /// then the delays of every matching rule add up, and the first matching rule that
    /// answers instead (a status, a stall, a lost answer) is the one it meets.
    pub fn on(&self, pattern: &str) -> Matching<'_> {
        let pattern = pattern.trim();
        let (method, path) = match pattern.split_once(' ') {
            Some((method, path))
                if !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                (Some(method.to_ascii_uppercase()), path.trim().to_owned())
            }
            _ => (None, pattern.to_owned()),
        };
        Matching {
            faults: self,
            method,
            path,
        }
    }

    /// Answers the requests stalled so far (504), as if their callers had gone.
    pub fn release_stalls(&self) {
        self.release.notify.notify_waiters();
    }

    /// Consumes the rules that apply to one request.
    pub(crate) fn decide(&self, method: &str, path: &str) -> Decision {
        let mut decision = Decision::default();
        for rule in lock(&self.rules).iter_mut() {
            if !rule.matches(method, path) {
                continue;
            }
            match rule.then {
                Misbehaviour::Delay(delay) => {
                    decision.delay += delay;
                    rule.spend();
                }
                answer if decision.then.is_none() => {
                    decision.then = Some(answer);
                    rule.spend();
                }
                _ => {}
            }
        }
        decision
    }

    /// Waits until the stall is released, the server stops, or [`STALL_LIMIT`] passes.
    pub(crate) async fn stalled(&self) {
        let notified = self.release.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.release.stopped.load(Ordering::Acquire) {
            return;
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(STALL_LIMIT) => {}
        }
    }

    /// The server is stopping: no request stays stalled.
    pub(crate) fn stop_stalling(&self) {
        self.release.stopped.store(true, Ordering::Release);
        self.release.notify.notify_waiters();
    }
}

/// A request a sandbox server saw, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path and query as received (percent-encoded).
    pub uri: String,
    pub status: u16,
}

impl Seen {
    /// The query's parameters, decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        let query = self.uri.split_once('?').map_or("", |(_, q)| q);
        decode_query(query)
    }

    pub fn path(&self) -> &str {
        self.uri.split_once('?').map_or(&self.uri, |(p, _)| p)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RequestLog(Arc<Mutex<Vec<Seen>>>);

impl RequestLog {
    fn push(&self, seen: Seen) {
        lock(&self.0).push(seen);
    }

    fn all(&self) -> Vec<Seen> {
        lock(&self.0).clone()
    }
}

/// `a=1&b=%5B2%5D` → `[("a","1"),("b","[2]")]`; undecodable pairs are left out.
pub(crate) fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Form decoding: `+` is a space, `%XX` a byte; `None` for a bad escape or non-UTF-8 result.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A running sandbox server or proxy: its address, its faults and what it saw. Dropping the
/// handle stops it.
#[derive(Debug)]
pub struct Serving {
    url: String,
    faults: Faults,
    log: RequestLog,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Serving {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.log.all()
    }

    /// Stops taking requests and waits for the ones in hand.
    pub async fn stop(mut self) {
        self.faults.stop_stalling();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.faults.stop_stalling();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A sandbox storefront server: [`Serving`] plus the shop whose orders it serves.
#[derive(Debug)]
pub struct SimServer {
    serving: Serving,
    shop: Shop,
}

impl SimServer {
    pub fn url(&self) -> &str {
        self.serving.url()
    }

    /// The orders it serves: add or change them and the next request sees it.
    pub fn shop(&self) -> &Shop {
        &self.shop
    }

    pub fn faults(&self) -> &Faults {
        self.serving.faults()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.serving.requests()
    }

    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// Binds 127.0.0.1 on a free port; `router` gets the base URL to build links with.
pub(crate) async fn bind() -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// Serves `router` on `listener` behind the fault and logging layer.
pub(crate) fn serve(listener: TcpListener, url: String, router: Router) -> Serving {
    let faults = Faults::default();
    let log = RequestLog::default();
    let app = router.layer(axum::middleware::from_fn_with_state(
        (faults.clone(), log.clone()),
        faults_and_log,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "a sandbox server stopped with an error");
        }
    });
    Serving {
        url,
        faults,
        log,
        stop: Some(stop),
        task: Some(task),
    }
}

pub(crate) fn sim_server(serving: Serving, shop: Shop) -> SimServer {
    SimServer { serving, shop }
}

async fn faults_and_log(
    State((faults, log)): State<(Faults, RequestLog)>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let uri = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let response = match faults.take() {
        Some(Fault::Status(status)) => simulated_failure(status),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            misbehave(&faults, &method, request, next).await
        }
        None => misbehave(&faults, &method, request, next).await,
    };
    log.push(Seen {
        method,
        uri,
        status: response.status().as_u16(),
    });
    response
}

fn simulated_failure(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Body::from("simulated failure")).into_response()
}

/// Applies the pattern rules of [`Faults::on`] to one request.
async fn misbehave(faults: &Faults, method: &str, request: Request, next: Next) -> Response {
    let decision = faults.decide(method, request.uri().path());
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    match decision.then {
        None | Some(Misbehaviour::Delay(_)) => next.run(request).await,
        Some(Misbehaviour::Status(status)) => simulated_failure(status),
        Some(Misbehaviour::RateLimit(retry_after)) => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", seconds.to_string())],
                Body::from("simulated rate limit"),
            )
                .into_response()
        }
        Some(Misbehaviour::Stall) => {
            faults.stalled().await;
            (StatusCode::GATEWAY_TIMEOUT, Body::from("simulated stall")).into_response()
        }
        Some(Misbehaviour::LoseAnswer) => {
            let response = next.run(request).await;
            faults.stalled().await;
            response
        }
    }
}

/// The answers a sandbox keeps per idempotency key, the way Stripe documents it: a retry with
/// the same key and the same request gets the first answer back without anything being done
/// again; the same key with another request is refused. It also counts, per key, how many
/// times a request with it acted (created, bought or cancelled something).
#[derive(Debug, Default)]
pub(crate) struct Idempotency {
    answers: HashMap<String, Kept>,
    effects: HashMap<String, u32>,
    unkeyed: u32,
}

#[derive(Debug, Clone)]
struct Kept {
    request: String,
    status: u16,
    body: serde_json::Value,
}

/// What a request's idempotency key says about it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Replay {
    /// No key, or a key not seen before: do the work.
    Fresh,
    /// The same request came with this key before: answer what was answered then.
    Same(u16, serde_json::Value),
    /// The key came with another request.
    Mismatch,
}

impl Idempotency {
    pub(crate) fn replay(&self, key: Option<&str>, request: &str) -> Replay {
        match key.and_then(|key| self.answers.get(key)) {
            None => Replay::Fresh,
            Some(kept) if kept.request == request => Replay::Same(kept.status, kept.body.clone()),
            Some(_) => Replay::Mismatch,
        }
    }

    /// Keeps the answer for the key, if there is one.
    pub(crate) fn keep(
        &mut self,
        key: Option<&str>,
        request: String,
        status: u16,
        body: &serde_json::Value,
    ) {
        if let Some(key) = key {
            let kept = Kept {
                request,
                status,
                body: body.clone(),
            };
            self.answers.insert(key.to_owned(), kept);
        }
    }

    /// A request with this key (or none) created, bought or cancelled something.
    pub(crate) fn acted(&mut self, key: Option<&str>) {
        match key {
            Some(key) => *self.effects.entry(key.to_owned()).or_default() += 1,
            None => self.unkeyed += 1,
        }
    }

    pub(crate) fn effects(&self) -> HashMap<String, u32> {
        self.effects.clone()
    }

    pub(crate) fn unkeyed(&self) -> u32 {
        self.unkeyed
    }
}

/// The `Idempotency-Key` header, when there is a usable one.
pub(crate) fn idempotency_key(headers: &axum::http::HeaderMap) -> Option<String> {
    let key = headers.get("idempotency-key")?.to_str().ok()?.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// What a request is, for telling a retry from another request under the same key: method,
/// path and its parameters in a stable order.
pub(crate) fn fingerprint(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut params = params.to_vec();
    params.sort();
    let params: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("{method} {path}\n{}", params.join("\n"))
}

/// An id in the providers' style: `prefix` and 24 random letters and digits.
pub(crate) fn random_id(prefix: &str) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

/// HTTP Basic credentials of a request: `(user, password)`.
pub(crate) fn basic_auth(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':').unwrap_or((&text, ""));
    Some((user.to_owned(), password.to_owned()))
}

/// The value of the first query parameter of that name.
pub(crate) fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_forms_do() {
        assert_eq!(
            decode_query(
                "filter%5Bdate_upd%5D=%5B2024-01-01+10%3A00%3A00%2C2024-01-02%5D&date=1&x"
            ),
            vec![
                (
                    "filter[date_upd]".to_owned(),
                    "[2024-01-01 10:00:00,2024-01-02]".to_owned()
                ),
                ("date".to_owned(), "1".to_owned()),
                ("x".to_owned(), String::new()),
            ]
        );
        assert_eq!(decode_query("a=%zz&b=2"), vec![("b".into(), "2".into())]);
    }

    #[test]
    fn patterns_match_method_and_path_with_stars() {
        let faults = Faults::default();
        faults.on("POST /v1/payment_intents").fail(1, 500);
        faults.on("*/buy").stall(1);
        faults.on("get /v2/trackers/*").fail_every(404);
        faults.on("*").slow_every(Duration::from_millis(5));

        let buy = faults.decide("POST", "/v2/shipments/shp_1/buy");
        assert_eq!(buy.then, Some(Misbehaviour::Stall));
        assert_eq!(buy.delay, Duration::from_millis(5));
        assert_eq!(faults.decide("POST", "/v2/shipments/shp_1/buy").then, None);

        assert_eq!(faults.decide("GET", "/v1/payment_intents").then, None);
        let create = faults.decide("POST", "/v1/payment_intents");
        assert_eq!(create.then, Some(Misbehaviour::Status(500)));
        assert_eq!(faults.decide("POST", "/v1/payment_intents").then, None);

        for _ in 0..3 {
            let tracker = faults.decide("GET", "/v2/trackers/trk_1");
            assert_eq!(tracker.then, Some(Misbehaviour::Status(404)));
        }
        assert_eq!(faults.pending(), 0);
        faults.clear();
        assert_eq!(
            faults.decide("GET", "/v2/trackers/trk_1"),
            Decision::default()
        );
    }

    #[test]
    fn globs_anchor_at_both_ends() {
        assert!(glob("/a/*/c", "/a/b/c"));
        assert!(glob("/a/*", "/a/"));
        assert!(glob("*", ""));
        assert!(glob("*/buy", "/v2/shipments/x/buy"));
        assert!(!glob("*/buy", "/v2/shipments/x/buy/more"));
        assert!(!glob("/a", "/a/b"));
        assert!(!glob("/a/*/c", "/a/b/d"));
        assert!(glob("*ab*ab", "xabyab"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn a_key_replays_its_request_and_refuses_another() {
        let mut keys = Idempotency::default();
        let request = fingerprint(
            "POST",
            "/x",
            &[("b".into(), "2".into()), ("a".into(), "1".into())],
        );
        let same = fingerprint(
            "POST",
            "/x",
            &[("a".into(), "1".into()), ("b".into(), "2".into())],
        );
        assert_eq!(request, same);
        assert_eq!(keys.replay(Some("k"), &request), Replay::Fresh);
        keys.acted(Some("k"));
        keys.keep(
            Some("k"),
            request.clone(),
            200,
            &serde_json::json!({"id": 1}),
        );
        assert_eq!(
            keys.replay(Some("k"), &same),
            Replay::Same(200, serde_json::json!({"id": 1}))
        );
        assert_eq!(keys.replay(Some("k"), "POST /y\n"), Replay::Mismatch);
        assert_eq!(keys.replay(None, &request), Replay::Fresh);
        keys.acted(None);
        assert_eq!(keys.effects().get("k"), Some(&1));
        assert_eq!(keys.unkeyed(), 1);
    }
}
