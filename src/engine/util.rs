//! Small shared helpers: wall-clock milliseconds and cheap randomness.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The last report of JavaScript's clock: (its time, the system time when it was reported),
/// both ms. One lock, so that a reader never pairs one report's time with another's instant.
static CLOCK_REPORT: Mutex<Option<(u64, u64)>> = Mutex::new(None);
/// Closer than this, the two clocks are the same clock read at two instants.
const SAME_CLOCK_MS: u64 = 100;
/// A report older than this no longer moves the engine's clock.
const CLOCK_REPORT_TTL_MS: u64 = 10_000;

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix time in ms: the unit of every BullMQ timestamp. BullMQ stamps its times with
/// JavaScript's `Date.now()`; so does the engine, through the facade's reports
/// ([`sync_clock`]): they differ from the system clock only when the application mocks
/// `Date` (sinon or jest fake timers), and then BullMQ's scripts would see the mocked time.
/// A mocked clock stands still until the test moves it, so the engine uses the reported
/// time as it is (not moved on by real time since the report).
pub fn now_ms() -> u64 {
    let report = *CLOCK_REPORT.lock().unwrap_or_else(|e| e.into_inner());
    adjusted(system_ms(), report)
}

/// The system time `sys`, or the reported time of a mocked clock while that report is recent.
fn adjusted(sys: u64, report: Option<(u64, u64)>) -> u64 {
    mocked_time(sys, report).unwrap_or(sys)
}

/// The reported time of a mocked clock while that report is recent (at system time `sys`).
fn mocked_time(sys: u64, report: Option<(u64, u64)>) -> Option<u64> {
    match report {
        Some((js, at)) if mocked(js, at) && sys.saturating_sub(at) <= CLOCK_REPORT_TTL_MS => {
            Some(js)
        }
        _ => None,
    }
}

/// Whether JavaScript's time `js`, read at system time `at`, is another clock than the
/// system's (not the same clock read a moment apart).
fn mocked(js: u64, at: u64) -> bool {
    js.abs_diff(at) > SAME_CLOCK_MS
}

/// JavaScript's `Date.now()`, reported by the facade when it hands the engine something to
/// write (outcomes, adds), and when a worker asks for it ([`clock_reported`]).
pub fn sync_clock(js_now_ms: f64) {
    if !js_now_ms.is_finite() {
        return;
    }
    let report = (js_now_ms.max(0.0) as u64, system_ms());
    *CLOCK_REPORT.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    CLOCK_SEEN.notify_waiters();
}

/// Woken by every report of JavaScript's clock.
static CLOCK_SEEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Whether the engine's time is a mocked JavaScript clock now (see [`now_ms`]). A mocked clock
/// moves only when the test moves it, and nothing tells the engine: a worker waiting for a
/// time to come asks JavaScript for its clock again and again meanwhile (tests only; a real
/// clock never is mocked).
pub fn clock_mocked() -> bool {
    let report = *CLOCK_REPORT.lock().unwrap_or_else(|e| e.into_inner());
    mocked_time(system_ms(), report).is_some()
}

/// Resolves at JavaScript's next report of its clock, or after `wait`, whichever comes
/// first; `ask` (called once registered) makes JavaScript report.
pub async fn clock_reported(ask: impl FnOnce(), wait: std::time::Duration) {
    let seen = CLOCK_SEEN.notified();
    tokio::pin!(seen);
    seen.as_mut().enable();
    ask();
    let _ = tokio::time::timeout(wait, seen).await;
}

/// splitmix64 over time and a counter: for jitter and lock tokens, which need spread and
/// uniqueness within a process, not cryptographic quality.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = (nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
        .wrapping_add(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform-ish in [0, bound) (0 when bound is 0).
pub fn random_below(bound: u64) -> u64 {
    if bound == 0 { 0 } else { random_u64() % bound }
}

/// Uniform in [0, 1).
pub fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A version-4-shaped UUID string, used as the per-worker part of lock tokens.
pub fn uuid_v4() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Let every other task that is ready on this worker run first, then go on: the task wakes
/// itself and returns Pending once, which puts it at the back of the runtime's local run
/// queue. `tokio::task::yield_now` also waits until the worker would park (the global queue
/// drained, the I/O driver polled: an `epoll_wait` system call per yield). The bridge's
/// hand-over to JavaScript only waits for the tasks woken with it (the jobs of one finishing
/// reply), so it uses this; the finishing call keeps `yield_now`, whose wider wait also
/// gathers the outcomes that JavaScript handed over meanwhile (larger batches at high
/// concurrency). Measured with bench/ab.js in docs/PERFORMANCE.md.
pub fn requeue() -> impl std::future::Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mocked_javascript_clock_is_engine_time_while_its_report_is_recent() {
        let sys = 1_800_000_000_000;
        // The same clock read a moment apart: not mocked, the system clock runs.
        assert!(!mocked(sys - 3, sys));
        assert_eq!(adjusted(sys + 5, Some((sys - 3, sys))), sys + 5);
        // No report yet: the system clock.
        assert_eq!(adjusted(sys, None), sys);
        // sinon's clock at 0 (1970): engine time is the reported time, standing still as
        // the mocked clock does until the test moves it (and reports again).
        assert!(mocked(0, sys));
        assert_eq!(adjusted(sys + 250, Some((0, sys))), 0);
        // A clock one minute ahead.
        let ahead = sys + 60_000;
        assert!(mocked(ahead, sys));
        assert_eq!(adjusted(sys, Some((ahead, sys))), ahead);
        // A stale report (fake timers restored, nothing reported since) no longer counts.
        let later = sys + CLOCK_REPORT_TTL_MS + 1;
        assert_eq!(adjusted(later, Some((0, sys))), later);
    }

    #[test]
    fn requeue_lets_the_tasks_ready_now_run_first() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let o = order.clone();
        rt.block_on(async move {
            tokio::spawn(async move {
                o.lock().unwrap().push("first");
                let o2 = o.clone();
                // Ready at once, but only runs when this task gives the worker up.
                tokio::spawn(async move { o2.lock().unwrap().push("other") });
                requeue().await;
                o.lock().unwrap().push("after requeue");
            })
            .await
            .unwrap();
        });
        assert_eq!(*order.lock().unwrap(), ["first", "other", "after requeue"]);
    }
}
