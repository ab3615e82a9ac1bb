//! Small shared helpers: wall-clock milliseconds and cheap randomness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in ms: the unit of every BullMQ timestamp.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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

/// A job hash as one JSON object text, its keys sorted. A Redis hash has no fixed order (and
/// a `HashMap` a random one per map), while V8 gives an object its hidden class by the order
/// its keys arrive in: jobs whose keys came in a new order each time would each build a new
/// shape, and every read of a job field in the facade would go megamorphic (at concurrency
/// 50 that doubled the JS thread's time per job). Sorted, the jobs of one shape share one.
pub fn sorted_fields_json(fields: &std::collections::HashMap<String, String>) -> String {
    let mut sorted: Vec<(&String, &String)> = fields.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let size: usize = sorted.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, v);
    }
    out.push(b'}');
    // serde_json writes valid UTF-8 for valid UTF-8 input.
    String::from_utf8(out).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn fields_json_has_its_keys_sorted_and_parses_back() {
        let pairs = [
            ("timestamp", "1700000000000"),
            ("data", r#"{"a":"q\"uote","n":1}"#),
            ("name", "ünï\ncode\u{1}"),
            ("ats", "1"),
            ("opts", "{}"),
        ];
        // Many maps: each HashMap has its own random iteration order.
        for _ in 0..20 {
            let fields: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let text = sorted_fields_json(&fields);
            let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
            let positions: Vec<usize> = ["ats", "data", "name", "opts", "timestamp"]
                .iter()
                .map(|k| at(k))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
            let back: HashMap<String, String> = serde_json::from_str(&text).unwrap();
            assert_eq!(back, fields);
        }
        assert_eq!(sorted_fields_json(&HashMap::new()), "{}");
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
