//! What the engine needs to know about one job: its options as stored in the `opts` JSON
//! field (written by BullMQ's `Queue.add` or ours), the retry decision and the backoff.
//!
//! Parsing is defensive: BullMQ's Lua re-encodes `opts` with cjson, so integers may arrive as
//! floats, and older producers omit fields.

use std::collections::HashMap;

use serde_json::Value;

use super::scripts::KeepJobs;

/// Keep every finished job (BullMQ's default when neither job nor worker says otherwise).
pub const KEEP_ALL: KeepJobs = KeepJobs {
    count: -1,
    age_secs: None,
    limit: None,
};

#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    pub kind: String,
    pub delay: u64,
    pub jitter: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOpts {
    pub attempts: u64,
    pub backoff: Option<Backoff>,
    pub lifo: bool,
    pub remove_on_complete: Option<KeepJobs>,
    pub remove_on_fail: Option<KeepJobs>,
    pub stack_trace_limit: Option<usize>,
    pub keep_logs: Option<u64>,
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `removeOnComplete` / `removeOnFail` as BullMQ understands them: `true` -> delete now,
/// `false` -> keep all, n -> keep newest n, `{age, count, limit}` as is.
pub fn parse_keep(v: &Value) -> Option<KeepJobs> {
    match v {
        Value::Bool(true) => Some(KeepJobs {
            count: 0,
            age_secs: None,
            limit: None,
        }),
        Value::Bool(false) => Some(KEEP_ALL),
        Value::Number(_) => {
            let n = v.as_f64()?;
            Some(KeepJobs {
                count: if n < 0.0 { -1 } else { n as i64 },
                age_secs: None,
                limit: None,
            })
        }
        Value::Object(o) => {
            let count = match o.get("count") {
                Some(c) => c.as_f64().map(|n| n as i64).unwrap_or(-1),
                // An object with only `age` keeps any number of jobs younger than age.
                None => -1,
            };
            Some(KeepJobs {
                count,
                age_secs: o.get("age").and_then(as_u64),
                limit: o.get("limit").and_then(as_u64),
            })
        }
        _ => None,
    }
}

impl JobOpts {
    pub fn parse(opts_json: Option<&str>) -> Self {
        let Some(v) = opts_json.and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
            return JobOpts::default();
        };
        let backoff = match v.get("backoff") {
            Some(Value::Object(b)) => Some(Backoff {
                kind: b
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("fixed")
                    .to_string(),
                delay: b.get("delay").and_then(as_u64).unwrap_or(0),
                jitter: b
                    .get("jitter")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
                    .clamp(0.0, 1.0),
            }),
            Some(n @ Value::Number(_)) => as_u64(n).map(|delay| Backoff {
                kind: "fixed".into(),
                delay,
                jitter: 0.0,
            }),
            _ => None,
        };
        JobOpts {
            attempts: v.get("attempts").and_then(as_u64).unwrap_or(0),
            backoff,
            lifo: v.get("lifo").and_then(Value::as_bool).unwrap_or(false),
            remove_on_complete: v.get("removeOnComplete").and_then(parse_keep),
            remove_on_fail: v.get("removeOnFail").and_then(parse_keep),
            stack_trace_limit: v
                .get("stackTraceLimit")
                .and_then(as_u64)
                .map(|n| n as usize),
            keep_logs: v.get("kl").or_else(|| v.get("keepLogs")).and_then(as_u64),
        }
    }
}

/// Attempts made so far (`atm`, or the legacy `attemptsMade`).
pub fn attempts_made(fields: &HashMap<String, String>) -> u64 {
    fields
        .get("atm")
        .or_else(|| fields.get("attemptsMade"))
        .and_then(|s| s.parse::<f64>().ok())
        .map(|f| f as u64)
        .unwrap_or(0)
}

/// What to do with a job whose processor threw.
#[derive(Debug, PartialEq)]
pub enum RetryDecision {
    /// No retries left (or unrecoverable): move to failed.
    Fail,
    /// Retry now (no backoff or a zero delay).
    RetryNow,
    /// Retry after this many ms.
    RetryAfter(u64),
}

/// BullMQ's rule: retry iff `atm + 1 < attempts` and the error is recoverable. The delay
/// comes from the job's backoff; `custom` is what a JS `backoffStrategy` returned for a
/// non-builtin type (-1 = do not retry).
pub fn decide_retry(
    opts: &JobOpts,
    attempts_made: u64,
    unrecoverable: bool,
    custom: Option<i64>,
    random: f64,
) -> RetryDecision {
    if unrecoverable || attempts_made + 1 >= opts.attempts {
        return RetryDecision::Fail;
    }
    let delay = match &opts.backoff {
        None => 0,
        Some(b) => match b.kind.as_str() {
            "fixed" | "exponential" => builtin_backoff(b, attempts_made + 1, random),
            _ => match custom {
                Some(d) if d < 0 => return RetryDecision::Fail,
                Some(d) => d as u64,
                None => 0,
            },
        },
    };
    if delay == 0 {
        RetryDecision::RetryNow
    } else {
        RetryDecision::RetryAfter(delay)
    }
}

/// Fixed or exponential backoff for the `attempt`-th failure (1-based), with optional jitter:
/// the delay is drawn from [d*(1-jitter), d].
pub fn builtin_backoff(b: &Backoff, attempt: u64, random: f64) -> u64 {
    let base = match b.kind.as_str() {
        "exponential" => {
            let exp = attempt.saturating_sub(1).min(52) as i32;
            (2f64.powi(exp) * b.delay as f64).round()
        }
        _ => b.delay as f64,
    };
    if b.jitter > 0.0 {
        (random * base * b.jitter + base * (1.0 - b.jitter)).floor() as u64
    } else {
        base as u64
    }
}

/// Append `stack` to the stored stacktrace JSON array, keeping the last `limit` entries.
pub fn append_stacktrace(
    previous: Option<&str>,
    stack: Option<&str>,
    limit: Option<usize>,
) -> String {
    let mut list: Vec<Value> = previous
        .and_then(|p| serde_json::from_str::<Vec<Value>>(p).ok())
        .unwrap_or_default();
    if let Some(s) = stack {
        list.push(Value::String(s.to_string()));
    }
    if let Some(limit) = limit {
        let drop = list.len().saturating_sub(limit);
        list.drain(..drop);
    }
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// The next iteration of a job scheduler, as decided from the activated iteration's own
/// `opts.repeat` (what BullMQ's worker reads) before the script is called.
#[derive(Debug, Clone, PartialEq)]
pub enum NextIteration {
    /// `limit` iterations reached, or past `endDate`: the scheduler stops iterating.
    Stop,
    /// An `every` scheduler: the script computes the next time.
    Every,
    /// A cron `pattern` scheduler: the next time is the first match after `after` (ms),
    /// computed by the JavaScript side from `repeat` (the repeat options, JSON).
    Cron { repeat: String, after: u64 },
}

fn js_truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn as_ms(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_f64().map(|f| f.max(0.0) as u64),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f.max(0.0) as u64),
        _ => None,
    }
}

/// BullMQ's checks before scheduling the next iteration: `repeat` must name exactly one of
/// `every` / `pattern`; `limit` caps the iteration count (`count + 1`); past `endDate` no
/// more iterations; a cron time is searched from `max(now, prevMillis)`.
pub fn next_iteration(
    opts_json: Option<&str>,
    now: u64,
) -> std::result::Result<NextIteration, String> {
    let opts = opts_json
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .unwrap_or(Value::Null);
    let repeat = opts.get("repeat").cloned().unwrap_or(Value::Null);
    let every = js_truthy(repeat.get("every"));
    let pattern = js_truthy(repeat.get("pattern"));
    if every && pattern {
        return Err("Both .pattern and .every options are defined for this repeatable job".into());
    }
    if !every && !pattern {
        return Err(
            "Either .pattern or .every options must be defined for this repeatable job".into(),
        );
    }
    let count = repeat.get("count").and_then(as_ms).unwrap_or(0);
    if repeat
        .get("limit")
        .and_then(as_ms)
        .is_some_and(|limit| count + 1 > limit)
    {
        return Ok(NextIteration::Stop);
    }
    if js_truthy(repeat.get("endDate"))
        && repeat
            .get("endDate")
            .and_then(as_ms)
            .is_some_and(|end| now > end)
    {
        return Ok(NextIteration::Stop);
    }
    if every {
        return Ok(NextIteration::Every);
    }
    let prev = opts.get("prevMillis").and_then(as_ms).unwrap_or(0);
    Ok(NextIteration::Cron {
        repeat: repeat.to_string(),
        after: now.max(prev),
    })
}

/// A JSON value that keeps the order of object keys, as `JSON.parse` does. BullMQ stores a
/// job's `opts` as `cjson.encode` of the table `cmsgpack.unpack` built from a msgpack map, and
/// cjson writes keys in the Lua table's hash order, which depends on the keys and the order
/// they were inserted in. Sending the next iteration's options in the very order BullMQ's
/// worker builds them makes our `opts` text byte-identical to BullMQ's.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderedJson {
    /// `null`, and JavaScript `undefined` inside nested objects (msgpack nil either way).
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl<'de> serde::Deserialize<'de> for OrderedJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::String(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<OrderedJson, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OrderedJson::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OrderedJson, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, OrderedJson>()? {
                    set_entry(&mut entries, &k, v);
                }
                Ok(OrderedJson::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// `obj[key] = value` in JavaScript: in place when the key exists, else appended.
fn set_entry(entries: &mut Vec<(String, OrderedJson)>, key: &str, value: OrderedJson) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

fn remove_entry(entries: &mut Vec<(String, OrderedJson)>, key: &str) -> Option<OrderedJson> {
    let at = entries.iter().position(|(k, _)| k == key)?;
    Some(entries.remove(at).1)
}

impl OrderedJson {
    fn truthy(&self) -> bool {
        match self {
            OrderedJson::Null => false,
            OrderedJson::Bool(b) => *b,
            OrderedJson::Number(n) => *n != 0.0 && !n.is_nan(),
            OrderedJson::String(s) => !s.is_empty(),
            _ => true,
        }
    }

    fn get(&self, key: &str) -> Option<&OrderedJson> {
        match self {
            OrderedJson::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// msgpack, as msgpackr writes it for Lua's cmsgpack (numbers as float64: cmsgpack turns
    /// every msgpack number into a Lua number anyway).
    pub fn to_msgpack(&self, out: &mut Vec<u8>) {
        fn len_header(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, b16: u8, b32: u8) {
            if len <= fix_max {
                out.push(fix | len as u8);
            } else if len <= 0xffff {
                out.push(b16);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(b32);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
        }
        fn string(out: &mut Vec<u8>, s: &str) {
            len_header(out, s.len(), 0xa0, 31, 0xda, 0xdb);
            out.extend_from_slice(s.as_bytes());
        }
        match self {
            OrderedJson::Null => out.push(0xc0),
            OrderedJson::Bool(false) => out.push(0xc2),
            OrderedJson::Bool(true) => out.push(0xc3),
            OrderedJson::Number(n) => {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
            OrderedJson::String(s) => string(out, s),
            OrderedJson::Array(items) => {
                len_header(out, items.len(), 0x90, 15, 0xdc, 0xdd);
                for item in items {
                    item.to_msgpack(out);
                }
            }
            OrderedJson::Object(entries) => {
                len_header(out, entries.len(), 0x80, 15, 0xde, 0xdf);
                for (k, v) in entries {
                    string(out, k);
                    v.to_msgpack(out);
                }
            }
        }
    }
}

/// The options of a job scheduler's next iteration as BullMQ 6's worker builds them from the
/// activated iteration's stored `opts` (its Job constructor, then upsertJobScheduler's
/// getNextJobOpts, then the short-name encoding), as a msgpack map in the same key order:
/// `attempts` first (default 0); the stored keys in order, without `repeatJobKey`, a numeric
/// `backoff` as `{type: 'fixed', delay}` and a falsy one dropped, `tm`/`omc` together at the
/// first one's place; `repeat` without `immediately`, with `offset` (kept for `every` only
/// when non-zero, else nil), `count` + 1, `startDate`, `endDate` set or appended; then
/// `jobId`, `delay` (placeholders: the script sets them), `timestamp` = now, `prevMillis`
/// (cron only) and `repeatJobKey` set or appended.
pub fn next_iteration_opts(
    opts_json: Option<&str>,
    scheduler_id: &str,
    now: u64,
    cron_next: Option<u64>,
) -> Vec<u8> {
    let stored = opts_json
        .and_then(|s| serde_json::from_str::<OrderedJson>(s).ok())
        .and_then(|v| match v {
            OrderedJson::Object(entries) => Some(entries),
            _ => None,
        })
        .unwrap_or_default();
    let mut opts: Vec<(String, OrderedJson)> =
        vec![("attempts".to_string(), OrderedJson::Number(0.0))];
    let mut telemetry: Vec<(String, OrderedJson)> = Vec::new();
    for (key, value) in stored {
        match key.as_str() {
            "repeatJobKey" => {}
            "tm" | "omc" => {
                if telemetry.is_empty() {
                    set_entry(&mut opts, "\u{0}telemetry", OrderedJson::Null);
                }
                set_entry(&mut telemetry, &key, value);
            }
            _ => set_entry(&mut opts, &key, value),
        }
    }
    if let Some(at) = opts.iter().position(|(k, _)| k == "\u{0}telemetry") {
        opts.remove(at);
        for (key, value) in ["tm", "omc"]
            .iter()
            .filter_map(|k| telemetry.iter().find(|(t, _)| t == k))
            .rev()
        {
            opts.insert(at, (key.clone(), value.clone()));
        }
    }
    if let Some(at) = opts.iter().position(|(k, _)| k == "backoff") {
        match &opts[at].1 {
            OrderedJson::Number(n) => {
                opts[at].1 = OrderedJson::Object(vec![
                    ("type".into(), OrderedJson::String("fixed".into())),
                    ("delay".into(), OrderedJson::Number(*n)),
                ]);
            }
            v if !v.truthy() => {
                opts.remove(at);
            }
            _ => {}
        }
    }
    if let Some(at) = opts.iter().position(|(k, _)| k == "repeat") {
        let mut repeat = match &opts[at].1 {
            OrderedJson::Object(entries) => entries.clone(),
            _ => Vec::new(),
        };
        remove_entry(&mut repeat, "immediately");
        let view = OrderedJson::Object(repeat.clone());
        let every = view.get("every").is_some_and(OrderedJson::truthy);
        let offset = match view.get("offset") {
            Some(o) if every && o.truthy() => o.clone(),
            _ => OrderedJson::Null,
        };
        let count = match view.get("count") {
            Some(OrderedJson::Number(n)) if *n != 0.0 && !n.is_nan() => n + 1.0,
            _ => 1.0,
        };
        let date = |key: &str| match view.get(key) {
            Some(v) if v.truthy() => v.clone(),
            _ => OrderedJson::Null,
        };
        let (start, end) = (date("startDate"), date("endDate"));
        set_entry(&mut repeat, "offset", offset);
        set_entry(&mut repeat, "count", OrderedJson::Number(count));
        set_entry(&mut repeat, "startDate", start);
        set_entry(&mut repeat, "endDate", end);
        opts[at].1 = OrderedJson::Object(repeat);
    }
    let next = cron_next.map_or_else(|| "undefined".to_string(), |n| n.to_string());
    set_entry(
        &mut opts,
        "jobId",
        OrderedJson::String(format!("repeat:{scheduler_id}:{next}")),
    );
    set_entry(&mut opts, "delay", OrderedJson::Number(0.0));
    set_entry(&mut opts, "timestamp", OrderedJson::Number(now as f64));
    match cron_next {
        Some(n) => set_entry(&mut opts, "prevMillis", OrderedJson::Number(n as f64)),
        None => {
            remove_entry(&mut opts, "prevMillis");
        }
    }
    set_entry(
        &mut opts,
        "repeatJobKey",
        OrderedJson::String(scheduler_id.to_string()),
    );
    let mut out = Vec::new();
    OrderedJson::Object(opts).to_msgpack(&mut out);
    out
}

/// Whether a job's `rjk` has the shape of a legacy (BullMQ <= 5) repeatable-job key,
/// `name:id:endDate:tz:<cron pattern | every ms>`: at least five `:`-separated parts, an
/// empty or numeric endDate, and a last part that holds a space (cron) or only digits.
pub fn is_legacy_repeat_key(key: &str) -> bool {
    let parts: Vec<&str> = key.splitn(5, ':').collect();
    if parts.len() < 5 {
        return false;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let end_date = parts[2];
    let suffix = parts[4];
    (end_date.is_empty() || digits(end_date))
        && !suffix.is_empty()
        && (suffix.contains(' ') || digits(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bullmq_opts() {
        let o = JobOpts::parse(Some(
            r#"{"attempts":3,"backoff":{"type":"exponential","delay":2000},"removeOnComplete":{"age":86400,"count":1000},"removeOnFail":{"age":604800},"lifo":true}"#,
        ));
        assert_eq!(o.attempts, 3);
        assert_eq!(o.backoff.as_ref().unwrap().kind, "exponential");
        assert!(o.lifo);
        assert_eq!(
            o.remove_on_complete,
            Some(KeepJobs {
                count: 1000,
                age_secs: Some(86400),
                limit: None
            })
        );
        assert_eq!(
            o.remove_on_fail,
            Some(KeepJobs {
                count: -1,
                age_secs: Some(604800),
                limit: None
            })
        );
        let n = JobOpts::parse(Some(
            r#"{"attempts":2.0,"backoff":500,"removeOnComplete":true}"#,
        ));
        assert_eq!(n.attempts, 2);
        assert_eq!(n.backoff.unwrap().delay, 500);
        assert_eq!(n.remove_on_complete.unwrap().count, 0);
        assert_eq!(JobOpts::parse(Some("not json")), JobOpts::default());
    }

    #[test]
    fn retry_rule_and_backoff() {
        let opts = JobOpts::parse(Some(
            r#"{"attempts":3,"backoff":{"type":"exponential","delay":200}}"#,
        ));
        assert_eq!(
            decide_retry(&opts, 0, false, None, 0.5),
            RetryDecision::RetryAfter(200)
        );
        assert_eq!(
            decide_retry(&opts, 1, false, None, 0.5),
            RetryDecision::RetryAfter(400)
        );
        assert_eq!(
            decide_retry(&opts, 2, false, None, 0.5),
            RetryDecision::Fail
        );
        assert_eq!(decide_retry(&opts, 0, true, None, 0.5), RetryDecision::Fail);
        let none = JobOpts::parse(Some(r#"{"attempts":2}"#));
        assert_eq!(
            decide_retry(&none, 0, false, None, 0.5),
            RetryDecision::RetryNow
        );
        let custom = JobOpts::parse(Some(r#"{"attempts":5,"backoff":{"type":"mine"}}"#));
        assert_eq!(
            decide_retry(&custom, 0, false, Some(-1), 0.5),
            RetryDecision::Fail
        );
        assert_eq!(
            decide_retry(&custom, 0, false, Some(70), 0.5),
            RetryDecision::RetryAfter(70)
        );
        let jitter = Backoff {
            kind: "fixed".into(),
            delay: 1000,
            jitter: 0.5,
        };
        assert_eq!(builtin_backoff(&jitter, 1, 0.0), 500);
        assert_eq!(builtin_backoff(&jitter, 1, 0.999), 999);
    }

    #[test]
    fn stacktrace_is_trimmed() {
        assert_eq!(
            append_stacktrace(Some(r#"["a","b"]"#), Some("c"), Some(2)),
            r#"["b","c"]"#
        );
        assert_eq!(append_stacktrace(None, Some("x"), None), r#"["x"]"#);
        assert_eq!(append_stacktrace(None, Some("x"), Some(0)), "[]");
    }

    #[test]
    fn scheduler_iteration_rules() {
        let now = 1_000_000;
        assert_eq!(
            next_iteration(Some(r#"{"repeat":{"every":300,"count":1}}"#), now),
            Ok(NextIteration::Every)
        );
        assert_eq!(
            next_iteration(
                Some(
                    r#"{"prevMillis":1000500,"repeat":{"pattern":"* * * * * *","count":2,"tz":"UTC"}}"#
                ),
                now
            ),
            Ok(NextIteration::Cron {
                repeat: r#"{"count":2,"pattern":"* * * * * *","tz":"UTC"}"#.into(),
                after: 1_000_500
            })
        );
        // limit counts iterations: count + 1 > limit stops.
        assert_eq!(
            next_iteration(Some(r#"{"repeat":{"every":10,"count":3,"limit":3}}"#), now),
            Ok(NextIteration::Stop)
        );
        assert_eq!(
            next_iteration(Some(r#"{"repeat":{"every":10,"count":2,"limit":3}}"#), now),
            Ok(NextIteration::Every)
        );
        assert_eq!(
            next_iteration(Some(r#"{"repeat":{"every":10,"endDate":999999}}"#), now),
            Ok(NextIteration::Stop)
        );
        assert!(next_iteration(Some(r#"{"repeat":{}}"#), now).is_err());
        assert!(
            next_iteration(Some(r#"{"repeat":{"every":1,"pattern":"* * * * *"}}"#), now).is_err()
        );
        assert!(next_iteration(None, now).is_err());
    }

    #[test]
    fn legacy_repeat_keys() {
        assert!(is_legacy_repeat_key("name:id::UTC:*/5 * * * *"));
        assert!(is_legacy_repeat_key("name:id:1700000000000::5000"));
        assert!(!is_legacy_repeat_key("my-scheduler"));
        assert!(!is_legacy_repeat_key("a:b:c:d"));
        assert!(!is_legacy_repeat_key("a:b:notanumber:tz:5000"));
        assert!(!is_legacy_repeat_key("a:b::tz:abc"));
    }

    /// Test-only msgpack reader for what `to_msgpack` writes.
    fn unpack(b: &[u8], at: &mut usize) -> OrderedJson {
        let tag = b[*at];
        *at += 1;
        let mut take = |n: usize| {
            let s = &b[*at..*at + n];
            *at += n;
            s.to_vec()
        };
        let len16 = |s: Vec<u8>| u16::from_be_bytes([s[0], s[1]]) as usize;
        match tag {
            0xc0 => OrderedJson::Null,
            0xc2 => OrderedJson::Bool(false),
            0xc3 => OrderedJson::Bool(true),
            0xcb => OrderedJson::Number(f64::from_be_bytes(take(8).try_into().unwrap())),
            t if t & 0xe0 == 0xa0 => {
                OrderedJson::String(String::from_utf8(take((t & 0x1f) as usize)).unwrap())
            }
            0xda => {
                let n = len16(take(2));
                OrderedJson::String(String::from_utf8(take(n)).unwrap())
            }
            t if t & 0xf0 == 0x90 || t == 0xdc => {
                let n = if t == 0xdc {
                    len16(take(2))
                } else {
                    (t & 0x0f) as usize
                };
                OrderedJson::Array((0..n).map(|_| unpack(b, at)).collect())
            }
            t if t & 0xf0 == 0x80 || t == 0xde => {
                let n = if t == 0xde {
                    len16(take(2))
                } else {
                    (t & 0x0f) as usize
                };
                OrderedJson::Object(
                    (0..n)
                        .map(|_| {
                            let OrderedJson::String(k) = unpack(b, at) else {
                                panic!("key")
                            };
                            (k, unpack(b, at))
                        })
                        .collect(),
                )
            }
            t => panic!("tag {t:#x}"),
        }
    }

    fn keys(v: &OrderedJson) -> Vec<&str> {
        match v {
            OrderedJson::Object(e) => e.iter().map(|(k, _)| k.as_str()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn next_iteration_opts_follow_bullmq_key_order() {
        // An every iteration as BullMQ's Queue stores it.
        let stored = r#"{"removeOnComplete":false,"timestamp":1,"repeatJobKey":"s","jobId":"repeat:s:5","repeat":{"every":300,"count":1},"delay":0,"attempts":2,"backoff":50}"#;
        let b = next_iteration_opts(Some(stored), "s", 1000, None);
        let v = unpack(&b, &mut 0);
        assert_eq!(
            keys(&v),
            [
                "attempts",
                "removeOnComplete",
                "timestamp",
                "jobId",
                "repeat",
                "delay",
                "backoff",
                "repeatJobKey"
            ]
        );
        assert_eq!(v.get("attempts"), Some(&OrderedJson::Number(2.0)));
        assert_eq!(v.get("timestamp"), Some(&OrderedJson::Number(1000.0)));
        assert_eq!(
            v.get("backoff"),
            Some(&OrderedJson::Object(vec![
                ("type".into(), OrderedJson::String("fixed".into())),
                ("delay".into(), OrderedJson::Number(50.0)),
            ]))
        );
        let repeat = v.get("repeat").unwrap();
        assert_eq!(
            keys(repeat),
            ["every", "count", "offset", "startDate", "endDate"]
        );
        assert_eq!(repeat.get("count"), Some(&OrderedJson::Number(2.0)));
        assert_eq!(repeat.get("offset"), Some(&OrderedJson::Null));
        assert_eq!(
            v.get("repeatJobKey"),
            Some(&OrderedJson::String("s".into()))
        );

        // A cron iteration: prevMillis set in place, telemetry kept together, null backoff gone.
        let stored = r#"{"prevMillis":7,"tm":"t","x":null,"repeat":{"pattern":"* * * * *","immediately":true,"offset":3},"omc":true,"backoff":null}"#;
        let v = unpack(
            &next_iteration_opts(Some(stored), "c", 5, Some(60_000)),
            &mut 0,
        );
        assert_eq!(
            keys(&v),
            [
                "attempts",
                "prevMillis",
                "tm",
                "omc",
                "x",
                "repeat",
                "jobId",
                "delay",
                "timestamp",
                "repeatJobKey"
            ]
        );
        assert_eq!(v.get("prevMillis"), Some(&OrderedJson::Number(60_000.0)));
        assert_eq!(v.get("x"), Some(&OrderedJson::Null));
        let repeat = v.get("repeat").unwrap();
        assert_eq!(
            keys(repeat),
            ["pattern", "offset", "count", "startDate", "endDate"]
        );
        assert_eq!(repeat.get("offset"), Some(&OrderedJson::Null));
        // Every iteration drops a stored prevMillis.
        let v = unpack(
            &next_iteration_opts(
                Some(r#"{"prevMillis":7,"repeat":{"every":5,"offset":2}}"#),
                "e",
                5,
                None,
            ),
            &mut 0,
        );
        assert!(v.get("prevMillis").is_none());
        assert_eq!(
            v.get("repeat").unwrap().get("offset"),
            Some(&OrderedJson::Number(2.0))
        );
    }
}
