//! What every sandbox server shares: the shop's orders (changeable while it runs), faults to
//! inject (a status, or a slow answer, for the next N requests), a log of the requests it
//! saw, and a handle that stops it when dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
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
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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

/// Faults for the next requests, taken one per request in order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    queue: Arc<Mutex<VecDeque<Fault>>>,
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
    }

    /// How many faults are still waiting for a request.
    pub fn pending(&self) -> usize {
        lock(&self.queue).len()
    }

    pub(crate) fn take(&self) -> Option<Fault> {
        lock(&self.queue).pop_front()
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
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Body::from("simulated failure")).into_response()
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        None => next.run(request).await,
    };
    log.push(Seen {
        method,
        uri,
        status: response.status().as_u16(),
    });
    response
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
}
