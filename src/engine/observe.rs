//! The process view (`metrics()` of the API): counters and histograms kept as atomics where
//! the work happens, read on demand. Nothing here is written to Redis; a scrape costs a few
//! atomic loads and one pass over the live workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde::Serialize;

/// Bucket bounds (seconds) for the latencies of the engine's own steps.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds (seconds) for the processors' run times.
pub const PROCESSING_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A Prometheus-style histogram: fixed bounds, one atomic per bucket.
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

/// A histogram as read: cumulative buckets, the sum (seconds) and the count.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations ≤ it)`, ascending; `+Inf` is `count`.
    pub buckets: Vec<Bucket>,
    /// Sum of the observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// One cumulative bucket.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bucket {
    /// Upper bound, seconds.
    pub le: f64,
    /// Observations at or below it.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with these bounds (ascending, seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Count one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The histogram now (each atomic read once; a concurrent observation may be half in).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (i, le) in self.bounds.iter().enumerate() {
            running += self.counts[i].load(Ordering::Relaxed);
            buckets.push(Bucket {
                le: *le,
                count: running,
            });
        }
        running += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: running,
        }
    }
}

/// What the workers of one queue did in this process (every worker of the queue shares
/// one; it outlives them, so the counters never go back).
pub struct QueueStats {
    /// Processor runs that ended (any outcome).
    pub processed: AtomicU64,
    /// Processor runs that ended in a failure (retried or final).
    pub failed: AtomicU64,
    /// How long the processor ran.
    pub processing: Histogram,
}

/// Process-wide counters of the dispatcher, the lock renewal and the handler.
pub struct Counters {
    /// Waiters woken because their queue's marker was popped.
    pub wakeups_marker: AtomicU64,
    /// Waiters woken because their wait timed out (or the blocking socket failed).
    pub wakeups_timeout: AtomicU64,
    /// From a marker wake-up to the worker's fetch reply.
    pub wake_to_fetch: Histogram,
    /// How late each lock renewal was, past the moment it was due.
    pub lock_renewal_lag: Histogram,
    /// Jobs handed to the handler and not yet picked up on its side (the JS thread).
    pub handler_backlog: AtomicI64,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| Counters {
    wakeups_marker: AtomicU64::new(0),
    wakeups_timeout: AtomicU64::new(0),
    wake_to_fetch: Histogram::new(LATENCY_BUCKETS),
    lock_renewal_lag: Histogram::new(LATENCY_BUCKETS),
    handler_backlog: AtomicI64::new(0),
});

/// Per queue (`<prefix>:<name>`), created by the first worker of the queue.
static QUEUES: LazyLock<Mutex<HashMap<String, Arc<QueueStats>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process's counters.
pub fn counters() -> &'static Counters {
    &COUNTERS
}

/// The stats of queue `qualified` (`<prefix>:<name>`), shared by its workers.
pub fn queue_stats(qualified: &str) -> Arc<QueueStats> {
    let mut map = QUEUES.lock().unwrap();
    Arc::clone(map.entry(qualified.to_string()).or_insert_with(|| {
        Arc::new(QueueStats {
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            processing: Histogram::new(PROCESSING_BUCKETS),
        })
    }))
}

/// Sockets of one endpoint.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMetrics {
    /// The endpoint's printable name (no credentials).
    pub endpoint: String,
    /// Command sockets up.
    pub command: u32,
    /// Blocking sockets up.
    pub blocking: u32,
    /// Reconnects after a socket was lost.
    pub reconnects: u64,
}

/// One queue's line of the process view.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueMetrics {
    /// Key prefix.
    pub prefix: String,
    /// Queue name.
    pub queue: String,
    /// Jobs active in this process's workers now.
    pub in_flight: u64,
    /// Processor runs that ended.
    pub processed: u64,
    /// Of which failed.
    pub failed: u64,
    /// Processor run times.
    pub processing_seconds: HistogramSnapshot,
}

/// `metrics()` of the API, the engine's part (the event loop is measured in JavaScript).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessMetrics {
    /// Sockets and reconnects per endpoint.
    pub endpoints: Vec<EndpointMetrics>,
    /// Marker wake-ups of waiting workers.
    pub dispatcher_wakeups_marker: u64,
    /// Timeout wake-ups of waiting workers.
    pub dispatcher_wakeups_timeout: u64,
    /// Marker wake-up -> fetch reply.
    pub wake_to_fetch_seconds: HistogramSnapshot,
    /// Lock renewals past due.
    pub lock_renewal_lag_seconds: HistogramSnapshot,
    /// Jobs waiting for the JS thread.
    pub bridge_backlog: u64,
    /// Per queue, sorted by prefix and name.
    pub queues: Vec<QueueMetrics>,
}

/// Read everything now.
pub fn snapshot() -> ProcessMetrics {
    let health = super::connection::global().health();
    let endpoints = health
        .endpoints
        .iter()
        .map(|e| EndpointMetrics {
            endpoint: e.endpoint.clone(),
            command: e.connections.command,
            blocking: e.connections.blocking,
            reconnects: e.reconnects,
        })
        .collect();
    let in_flight = super::worker::in_flight_by_queue();
    let mut queues: Vec<QueueMetrics> = {
        let map = QUEUES.lock().unwrap();
        map.iter()
            .map(|(qualified, s)| {
                let (prefix, queue) = split_qualified(qualified);
                QueueMetrics {
                    prefix: prefix.to_string(),
                    queue: queue.to_string(),
                    in_flight: in_flight.get(qualified).copied().unwrap_or(0),
                    processed: s.processed.load(Ordering::Relaxed),
                    failed: s.failed.load(Ordering::Relaxed),
                    processing_seconds: s.processing.snapshot(),
                }
            })
            .collect()
    };
    queues.sort_by(|a, b| (&a.prefix, &a.queue).cmp(&(&b.prefix, &b.queue)));
    let c = counters();
    ProcessMetrics {
        endpoints,
        dispatcher_wakeups_marker: c.wakeups_marker.load(Ordering::Relaxed),
        dispatcher_wakeups_timeout: c.wakeups_timeout.load(Ordering::Relaxed),
        wake_to_fetch_seconds: c.wake_to_fetch.snapshot(),
        lock_renewal_lag_seconds: c.lock_renewal_lag.snapshot(),
        bridge_backlog: c.handler_backlog.load(Ordering::Relaxed).max(0) as u64,
        queues,
    }
}

/// `<prefix>:<name>` -> (prefix, name). A prefix may hold ':' (`{bull}:x`); a queue name
/// may not, so the name is after the last one.
fn split_qualified(qualified: &str) -> (&str, &str) {
    qualified.rsplit_once(':').unwrap_or(("", qualified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_as_count() {
        let h = Histogram::new(&[0.01, 0.1, 1.0]);
        for ms in [5, 5, 50, 500, 5000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        let counts: Vec<u64> = s.buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 3, 4]);
        assert_eq!(s.count, 5);
        assert!((s.sum - 5.56).abs() < 1e-9);
    }

    #[test]
    fn an_observation_on_a_bound_counts_in_that_bucket() {
        let h = Histogram::new(&[0.5, 1.0]);
        h.observe(Duration::from_millis(500));
        assert_eq!(h.snapshot().buckets[0].count, 1);
    }

    #[test]
    fn qualified_names_split_at_the_last_colon() {
        assert_eq!(split_qualified("bull:orders"), ("bull", "orders"));
        assert_eq!(
            split_qualified("{app}:bull:orders"),
            ("{app}:bull", "orders")
        );
    }

    #[test]
    fn queue_stats_are_shared_per_queue() {
        let a = queue_stats("obs-test:q1");
        let b = queue_stats("obs-test:q1");
        a.processed.fetch_add(2, Ordering::Relaxed);
        assert_eq!(b.processed.load(Ordering::Relaxed), 2);
        assert!(!Arc::ptr_eq(&a, &queue_stats("obs-test:q2")));
    }
}
