//! A closed-loop load generator: N clients, each sending its next request as soon as the last
//! one answered, for a fixed time. Shared by `bench` and `demo`.

use std::future::Future;
use std::time::{Duration, Instant};

/// What a run of requests measured.
#[derive(Debug, Default)]
pub struct Sample {
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Sample {
    pub fn count(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub fn per_second(&self) -> f64 {
        self.count() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of latency, in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let rank = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[rank] as f64 / 1000.0
    }
}

/// Runs `clients` loops for `duration`; `request(client, n)` answers whether it succeeded.
/// Failed requests count as errors and are left out of the latencies.
pub async fn drive<F, Fut>(clients: usize, duration: Duration, request: F) -> Sample
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    drive_until_done(clients, duration, move |client, n| {
        let sent = request(client, n);
        async move { Some(sent.await) }
    })
    .await
}

/// Like [`drive`], but a client also stops when `request` answers `None` (no work left).
pub async fn drive_until_done<F, Fut>(clients: usize, duration: Duration, request: F) -> Sample
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Option<bool>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut sample = Sample::default();
            let mut n = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match request(client, n).await {
                    Some(true) => sample.latencies_us.push(sent.elapsed().as_micros() as u64),
                    Some(false) => sample.errors += 1,
                    None => break,
                }
                n += 1;
            }
            sample
        }));
    }
    let mut total = Sample::default();
    for task in tasks {
        if let Ok(sample) = task.await {
            total.latencies_us.extend(sample.latencies_us);
            total.errors += sample.errors;
        }
    }
    total.elapsed = started.elapsed();
    total
}
