//! Taking jobs: `activate`, and the fetch part that `finish` shares with it (the same
//! arguments in, the same reply shape out).

use std::collections::BTreeMap;

use redis::{ScriptInvocation, Value};

use super::codes::unexpected;
use super::reply::{as_text, as_u64, field_map};
use super::{ACTIVATE, invoke};
use crate::engine::error::Result;
use crate::engine::keys::QueueKeys;

/// How to take jobs: by `activate`, or by the fetch-next of `finish`.
pub struct FetchOpts<'a> {
    /// The lock each job taken gets (ms).
    pub lock_duration_ms: u64,
    /// The worker's own rate limit (max jobs, duration ms). A global limit in the queue's
    /// meta (`max`) takes precedence for the max; the worker's duration wins over
    /// `meta.duration` (BullMQ's precedence).
    pub limiter: Option<(u64, u64)>, /* (max, duration ms) */
    /// Stored as the job's `pb` ("processed by").
    pub name: Option<&'a str>,
    /// One lock token per job wanted; `"0"` takes a job without a lock.
    pub tokens: &'a [String],
}

/// A job's hash, ordered by field name. A Redis hash has no fixed order and a `HashMap` a
/// random one per map, while V8 gives an object its hidden class by the order its keys
/// arrive in: the job objects built from these in JavaScript (`JSON.parse` of the worker's
/// delivery, the getters' napi objects) would each get a new shape and every field read in
/// the facade would go megamorphic (at concurrency 50 that doubled the JS thread's time per
/// job). Ordered, the jobs of one shape share one hidden class.
pub type JobHash = BTreeMap<String, String>;

/// A job as a reply carries it: its id and its hash (`HGETALL`).
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The job id.
    pub id: String,
    /// The job hash.
    pub fields: JobHash,
}

/// What a fetch produced.
///
/// * `jobs`: the activated jobs, in activation order (at most one per token).
/// * `rate_limit_ttl`: > 0 only when no job was taken because the rate limit is reached:
///   the ms until the window ends.
/// * `next_delayed_due`: when no job was taken, the due time (epoch ms) of the earliest
///   delayed job, or 0 when there is none.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The jobs taken.
    pub jobs: Vec<JobRecord>,
    /// Ms until the rate limit window ends (0 = not limited).
    pub rate_limit_ttl: u64,
    /// Epoch ms of the earliest delayed job (0 = none).
    pub next_delayed_due: u64,
}

/// Take up to `opts.tokens.len()` jobs (promoting due delayed jobs first).
pub async fn activate(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    now: u64,
    opts: &FetchOpts<'_>,
) -> Result<Fetched> {
    let mut inv = ACTIVATE.prepare_invoke();
    push_fetch_keys(&mut inv, k);
    inv.key(&k.marker).arg(&k.base).arg(now);
    for token in push_fetch_head(&mut inv, Some(opts)) {
        inv.arg(token);
    }
    let reply = invoke(&inv, conn).await?;
    parse_fetched(&reply).map_err(|e| unexpected("activate", k, "", e))
}

/// KEYS[1..10] of activate.lua and finish.lua: the keys their shared fetch part (the `fetch`
/// include) reads, in the order both headers declare.
pub(crate) fn push_fetch_keys(inv: &mut ScriptInvocation<'_>, k: &QueueKeys) {
    inv.key(&k.wait)
        .key(&k.active)
        .key(&k.prioritized)
        .key(&k.events)
        .key(&k.stalled)
        .key(&k.limiter)
        .key(&k.delayed)
        .key(&k.paused)
        .key(&k.meta)
        .key(&k.pc);
}

/// The fetch arguments of activate.lua (ARGV 3..) and finish.lua (ARGV 3..6): lockDuration,
/// limiter max, limiter duration, worker name. Returns the tokens (one per job wanted), which
/// go last. Without `fetch` the positions are filled and there is no token (no fetch).
pub(crate) fn push_fetch_head<'a>(
    inv: &mut ScriptInvocation<'_>,
    fetch: Option<&'a FetchOpts<'a>>,
) -> &'a [String] {
    let (lock, (max, duration), name, tokens): (u64, (u64, u64), &str, &[String]) = match fetch {
        Some(f) => (
            f.lock_duration_ms,
            f.limiter.unwrap_or((0, 0)),
            f.name.unwrap_or(""),
            f.tokens,
        ),
        None => (0, (0, 0), "", &[]),
    };
    inv.arg(lock).arg(max).arg(duration).arg(name);
    tokens
}

/// `{rateLimitTtl, nextDelayedDue, id1, {fields}, id2, {fields}, ...}`.
fn parse_fetched(v: &Value) -> std::result::Result<Fetched, &Value> {
    match v {
        Value::Array(items) => parse_fetched_items(items).ok_or(v),
        _ => Err(v),
    }
}

pub(crate) fn parse_fetched_items(items: &[Value]) -> Option<Fetched> {
    if items.len() < 2 || !items.len().is_multiple_of(2) {
        return None;
    }
    let rate_limit_ttl = as_u64(&items[0])?;
    let next_delayed_due = as_u64(&items[1])?;
    let jobs = items[2..]
        .chunks(2)
        .map(|pair| {
            Some(JobRecord {
                id: as_text(&pair[0])?,
                fields: field_map(&pair[1])?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Fetched {
        jobs,
        rate_limit_ttl,
        next_delayed_due,
    })
}

#[cfg(test)]
mod tests {
    use super::super::reply::bulk;
    use super::*;

    #[test]
    fn parses_a_batch_of_jobs() {
        let reply = Value::Array(vec![
            Value::Int(0),
            Value::Int(0),
            bulk("1"),
            Value::Array(vec![bulk("name"), bulk("a"), bulk("ats"), bulk("1")]),
            bulk("2"),
            Value::Array(vec![bulk("name"), bulk("b")]),
        ]);
        let f = parse_fetched(&reply).unwrap();
        assert_eq!(f.rate_limit_ttl, 0);
        assert_eq!(f.next_delayed_due, 0);
        assert_eq!(f.jobs.len(), 2);
        assert_eq!(f.jobs[0].id, "1");
        assert_eq!(f.jobs[0].fields["name"], "a");
        assert_eq!(f.jobs[0].fields["ats"], "1");
        assert_eq!(f.jobs[1].id, "2");
        assert_eq!(f.jobs[1].fields["name"], "b");
    }

    #[test]
    fn a_job_hash_crosses_as_json_with_its_fields_in_name_order() {
        // HGETALL gives the hash's own order; the JSON handed to JavaScript must not.
        let pairs = [
            ("timestamp", "1700000000000"),
            ("data", r#"{"a":"q\"uote","n":1}"#),
            ("name", "ünï\ncode\u{1}"),
            ("ats", "1"),
            ("opts", "{}"),
        ];
        let hash = Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect());
        let reply = Value::Array(vec![Value::Int(0), Value::Int(0), bulk("7"), hash]);
        let fields = &parse_fetched(&reply).unwrap().jobs[0].fields;
        let text = serde_json::to_string(fields).unwrap();
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        let positions: Vec<usize> = ["ats", "data", "name", "opts", "timestamp"]
            .iter()
            .map(|k| at(k))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        let back: JobHash = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, fields);
        assert_eq!(back.len(), pairs.len());
    }

    #[test]
    fn parses_rate_limit_and_next_delayed() {
        let f = parse_fetched(&Value::Array(vec![Value::Int(250), Value::Int(0)])).unwrap();
        assert_eq!((f.rate_limit_ttl, f.next_delayed_due), (250, 0));
        assert!(f.jobs.is_empty());
        let f = parse_fetched(&Value::Array(vec![
            Value::Int(0),
            Value::Int(1_700_000_000_123),
        ]))
        .unwrap();
        assert_eq!(f.next_delayed_due, 1_700_000_000_123);
    }

    #[test]
    fn rejects_malformed_replies() {
        assert!(parse_fetched(&Value::Int(0)).is_err());
        assert!(parse_fetched(&Value::Array(vec![Value::Int(0)])).is_err());
        assert!(
            parse_fetched(&Value::Array(vec![
                Value::Int(0),
                Value::Int(0),
                bulk("1"),
                Value::Array(vec![bulk("odd")]),
            ]))
            .is_err()
        );
    }
}
