//! Job options for `Queue.add`: validation, BullMQ's normalisation, and the msgpack bag the
//! add script re-encodes into the stored `opts` field (see [`crate::engine::ordered_json`]
//! for why the key order is kept).

use crate::engine::error::{Error, Result};
use crate::engine::ordered_json::OrderedJson;

/// Highest priority BullMQ accepts (2^21 - 1): keeps `priority * 2^32 + counter` exact.
pub const MAX_PRIORITY: u64 = 2_097_151;

/// One job, validated and normalised, ready for the add script.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedJob {
    /// "" = the queue's counter gives the id.
    pub custom_id: String,
    /// The job's name.
    pub name: String,
    /// JSON text of the data, stored as is.
    pub data: String,
    /// `timestamp` option, else now (ms).
    pub timestamp: f64,
    /// The options as the job sees them (BullMQ's `job.opts`), JSON.
    pub public_opts: String,
    /// The stored form (short names), msgpack.
    pub packed_opts: Vec<u8>,
    /// `<parent queue key>:<parent id>` when the job is a child.
    pub parent_key: Option<String>,
    /// msgpack `{id, queueKey[, fpof, rdof, idof, cpof]}` when the job is a child.
    pub packed_parent: Option<Vec<u8>>,
    /// `delay` option (ms).
    pub delay: f64,
    /// `priority` option (0 = none).
    pub priority: u64,
}

/// Renamed on the way to Redis (BullMQ's `optsEncodeMap`).
const SHORT_NAMES: [(&str, &str); 6] = [
    ("deduplication", "de"),
    ("failParentOnFailure", "fpof"),
    ("continueParentOnFailure", "cpof"),
    ("ignoreDependencyOnFailure", "idof"),
    ("keepLogs", "kl"),
    ("removeDependencyOnFailure", "rdof"),
];

/// The deduplication mode flags (BullMQ 6.7). Lua would take any value but `false` as set,
/// JavaScript any truthy one: only booleans are accepted, so both readings agree.
const DEDUP_MODES: [&str; 4] = ["extend", "replace", "keepLastIfActive", "reschedule"];

/// Validate and normalise one job. `merged_opts` is the JSON of the options after merging
/// the queue's `defaultJobOptions` (as `Object.assign({}, defaults, opts, {jobId})` would),
/// `data` the JSON of the payload; `at` names the job in error messages (e.g. `opts` or
/// `jobs[3].opts`). `now` is used when no `timestamp` option is given.
pub fn prepare(
    name: &str,
    data: &str,
    merged_opts: &str,
    at: &str,
    now: u64,
) -> Result<PreparedJob> {
    let bad = |key: &str, reason: &str| {
        let option = if key.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{key}")
        };
        Error::invalid(option, reason)
    };
    let input = OrderedJson::parse(merged_opts)
        .map_err(|e| bad("", &format!("is not valid JSON ({e})")))?;
    let OrderedJson::Object(entries) = input else {
        return Err(bad("", "must be an object"));
    };

    // BullMQ's Job constructor: `Object.assign({attempts: 0}, opts without repeatJobKey)`,
    // then `opts.backoff = Backoffs.normalize(opts.backoff)` (a number becomes
    // {type: 'fixed', delay}; null / absent stays absent).
    let mut opts = OrderedJson::Object(vec![("attempts".into(), OrderedJson::number(0.0))]);
    for (k, v) in entries {
        if k != "repeatJobKey" {
            opts.set(&k, v);
        }
    }
    match opts.get("backoff") {
        Some(OrderedJson::Number(n)) => {
            let n = n.clone();
            opts.set(
                "backoff",
                OrderedJson::Object(vec![
                    ("type".into(), OrderedJson::String("fixed".into())),
                    ("delay".into(), OrderedJson::Number(n)),
                ]),
            );
        }
        Some(OrderedJson::Null) => {
            opts.remove("backoff");
        }
        _ => {}
    }

    validate(&opts, name, data, &bad)?;

    let custom_id = match opts.field("jobId") {
        Some(OrderedJson::String(s)) => s.clone(),
        _ => String::new(),
    };
    let timestamp = match opts.field("timestamp").and_then(OrderedJson::as_f64) {
        Some(t) if t != 0.0 => t,
        _ => now as f64,
    };
    let delay = opts
        .field("delay")
        .and_then(OrderedJson::as_f64)
        .unwrap_or(0.0);
    let priority = opts
        .field("priority")
        .and_then(OrderedJson::as_f64)
        .unwrap_or(0.0) as u64;

    let (parent_key, packed_parent) = match opts.field("parent") {
        Some(p) => {
            let id = p
                .field("id")
                .and_then(OrderedJson::as_str)
                .unwrap_or_default();
            let queue = p
                .field("queue")
                .and_then(OrderedJson::as_str)
                .unwrap_or_default();
            let mut parent = OrderedJson::Object(vec![
                ("id".into(), OrderedJson::String(id.into())),
                ("queueKey".into(), OrderedJson::String(queue.into())),
            ]);
            for (long, short) in [
                ("failParentOnFailure", "fpof"),
                ("removeDependencyOnFailure", "rdof"),
                ("ignoreDependencyOnFailure", "idof"),
                ("continueParentOnFailure", "cpof"),
            ] {
                if opts.get(long).is_some_and(OrderedJson::truthy) {
                    parent.set(short, OrderedJson::Bool(true));
                }
            }
            (
                Some(crate::engine::keys::job_key_in(queue, id)),
                Some(parent.to_msgpack()),
            )
        }
        None => (None, None),
    };

    // BullMQ's optsAsJSON: short names, telemetry split into `tm` / `omc`, same positions.
    let OrderedJson::Object(public) = &opts else {
        unreachable!("opts is an object")
    };
    let mut stored = OrderedJson::Object(Vec::with_capacity(public.len()));
    for (k, v) in public {
        if k == "telemetry" {
            if let Some(m) = v.get("metadata") {
                stored.set("tm", m.clone());
            }
            if let Some(o) = v.get("omitContext") {
                stored.set("omc", o.clone());
            }
            continue;
        }
        let key = SHORT_NAMES
            .iter()
            .find(|(long, _)| long == k)
            .map(|(_, short)| *short)
            .unwrap_or(k);
        stored.set(key, v.clone());
    }

    Ok(PreparedJob {
        custom_id,
        name: name.to_string(),
        data: data.to_string(),
        timestamp,
        public_opts: opts.to_json(),
        packed_opts: stored.to_msgpack(),
        parent_key,
        packed_parent,
        delay,
        priority,
    })
}

fn non_negative(v: &OrderedJson) -> bool {
    v.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0)
}

fn non_negative_int(v: &OrderedJson) -> bool {
    v.as_f64()
        .is_some_and(|f| f.is_finite() && f >= 0.0 && f.fract() == 0.0)
}

/// Would JavaScript's `${parseInt(id, 10)}` give back `id`? (BullMQ refuses such custom ids:
/// they would collide with the counter's ids.)
fn looks_like_integer(id: &str) -> bool {
    let digits = id.strip_prefix('-').unwrap_or(id);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return false;
    }
    if id == "-0" {
        return false;
    }
    if digits.len() <= 15 {
        return true;
    }
    // Longer ones only while the double prints back the same digits (below 1e21).
    match id.parse::<f64>() {
        Ok(f) if f.abs() < 1e21 => format!("{f}") == id,
        _ => false,
    }
}

/// The reasons are BullMQ's texts where BullMQ has the rule (its users and tests match on
/// them); the option's name comes first, as in every invalid-option error of ours.
fn validate(
    opts: &OrderedJson,
    name: &str,
    data: &str,
    bad: &dyn Fn(&str, &str) -> Error,
) -> Result<()> {
    if let Some(id) = opts.field("jobId") {
        let Some(id) = id.as_str() else {
            return Err(bad("jobId", "must be a string"));
        };
        if !id.is_empty() {
            if id == "0" || id.starts_with("0:") {
                return Err(bad("jobId", "JobId cannot be '0' or start with '0:'"));
            }
            if looks_like_integer(id) {
                return Err(bad("jobId", "Custom Id cannot be integers"));
            }
            if id.contains(':') && id.split(':').count() != 3 {
                return Err(bad("jobId", "Custom Id cannot contain :"));
            }
        }
    }
    if let Some(p) = opts.field("priority") {
        match p.as_f64() {
            Some(f) if f.fract() != 0.0 => {
                return Err(bad("priority", "Priority should not be float"));
            }
            Some(f) if (0.0..=MAX_PRIORITY as f64).contains(&f) => {}
            _ => {
                return Err(bad(
                    "priority",
                    &format!("Priority should be between 0 and {MAX_PRIORITY}"),
                ));
            }
        }
    }
    if let Some(d) = opts.field("delay")
        && !non_negative(d)
    {
        return Err(bad(
            "delay",
            "must be a non-negative number of milliseconds",
        ));
    }
    if let Some(a) = opts.field("attempts")
        && !non_negative_int(a)
    {
        return Err(bad("attempts", "must be a non-negative integer"));
    }
    if let Some(t) = opts.field("timestamp")
        && !non_negative(t)
    {
        return Err(bad(
            "timestamp",
            "must be a non-negative number of milliseconds",
        ));
    }
    for key in ["keepLogs", "stackTraceLimit"] {
        if let Some(v) = opts.field(key)
            && !non_negative_int(v)
        {
            return Err(bad(key, "must be a non-negative integer"));
        }
    }
    if let Some(l) = opts.field("lifo")
        && !matches!(l, OrderedJson::Bool(_))
    {
        return Err(bad("lifo", "must be a boolean"));
    }
    if let Some(b) = opts.field("backoff") {
        let OrderedJson::Object(_) = b else {
            return Err(bad(
                "backoff",
                "must be a number (ms) or { type, delay?, jitter? }",
            ));
        };
        if b.field("type")
            .and_then(OrderedJson::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(bad("backoff.type", "must be a non-empty string"));
        }
        if let Some(d) = b.field("delay")
            && !non_negative(d)
        {
            return Err(bad(
                "backoff.delay",
                "must be a non-negative number of milliseconds",
            ));
        }
        if let Some(j) = b.field("jitter")
            && !j.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f))
        {
            return Err(bad("backoff.jitter", "Jitter should be between 0 and 1"));
        }
    }
    for key in ["removeOnComplete", "removeOnFail"] {
        if let Some(v) = opts.field(key) {
            let ok = match v {
                OrderedJson::Bool(_) => true,
                OrderedJson::Number(_) => v.as_f64().is_some_and(f64::is_finite),
                OrderedJson::Object(entries) => entries.iter().all(|(k, x)| {
                    matches!(k.as_str(), "age" | "count" | "limit")
                        && (matches!(x, OrderedJson::Null) || non_negative(x))
                }),
                _ => false,
            };
            if !ok {
                return Err(bad(
                    key,
                    "must be a boolean, a number or { age?, count?, limit? }",
                ));
            }
        }
    }
    if opts.get("debounce").is_some() {
        return Err(bad(
            "debounce",
            "was removed in BullMQ 6: use `deduplication`",
        ));
    }
    if opts.field("repeat").is_some() {
        return Err(bad(
            "repeat",
            "repeatable jobs are not supported by queue-native's Queue",
        ));
    }
    let parent = opts.field("parent");
    if let Some(p) = parent {
        for key in ["id", "queue"] {
            if p.field(key)
                .and_then(OrderedJson::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(bad(
                    &format!("parent.{key}"),
                    "must be a non-empty string (queue: the parent's `<prefix>:<queue>`)",
                ));
            }
        }
    }
    if let Some(de) = opts.field("deduplication") {
        let OrderedJson::Object(_) = de else {
            return Err(bad(
                "deduplication",
                "must be { id, ttl?, extend?, replace?, reschedule?, keepLastIfActive? }",
            ));
        };
        if de
            .field("id")
            .and_then(OrderedJson::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(bad("deduplication.id", "Deduplication id must be provided"));
        }
        if let Some(t) = de.field("ttl")
            && !non_negative(t)
        {
            return Err(bad(
                "deduplication.ttl",
                "must be a non-negative number of milliseconds",
            ));
        }
        for mode in DEDUP_MODES {
            if let Some(v) = de.field(mode)
                && !matches!(v, OrderedJson::Bool(_))
            {
                return Err(bad(&format!("deduplication.{mode}"), "must be a boolean"));
            }
        }
        if parent.is_some() {
            return Err(bad(
                "deduplication",
                "Deduplication and parent options cannot be used together",
            ));
        }
    }
    let exclusive: Vec<&str> = [
        "removeDependencyOnFailure",
        "failParentOnFailure",
        "continueParentOnFailure",
        "ignoreDependencyOnFailure",
    ]
    .into_iter()
    .filter(|k| opts.get(k).is_some_and(OrderedJson::truthy))
    .collect();
    if exclusive.len() > 1 {
        return Err(bad(
            exclusive[1],
            &format!(
                "The following options cannot be used together: {}",
                exclusive.join(", ")
            ),
        ));
    }
    if let Some(limit) = opts.field("sizeLimit") {
        let Some(limit) = limit.as_f64().filter(|f| *f >= 0.0) else {
            return Err(bad("sizeLimit", "must be a non-negative number of bytes"));
        };
        if limit > 0.0 && data.len() as f64 > limit {
            return Err(bad(
                "sizeLimit",
                &format!("The size of job {name} exceeds the limit {limit} bytes"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ordered_json::keys;

    #[test]
    fn normalises_like_bullmq() {
        let p = prepare(
            "n",
            "{}",
            r#"{"removeOnComplete":10,"backoff":300,"deduplication":{"id":"d"},"jobId":"a-1","attempts":3,"repeatJobKey":"x","telemetry":{"metadata":"m","omitContext":true}}"#,
            "opts",
            5,
        )
        .unwrap();
        let public = OrderedJson::parse(&p.public_opts).unwrap();
        assert_eq!(
            keys(&public),
            [
                "attempts",
                "removeOnComplete",
                "backoff",
                "deduplication",
                "jobId",
                "telemetry"
            ]
        );
        assert_eq!(
            public.get("backoff").unwrap().to_json(),
            r#"{"type":"fixed","delay":300}"#
        );
        assert_eq!(p.custom_id, "a-1");
        assert_eq!(p.timestamp, 5.0);
        // Stored names: de, tm, omc in the same places.
        let mut expected = OrderedJson::parse(
            r#"{"attempts":3,"removeOnComplete":10,"backoff":{"type":"fixed","delay":300},"de":{"id":"d"},"jobId":"a-1","tm":"m","omc":true}"#,
        )
        .unwrap()
        .to_msgpack();
        assert_eq!(p.packed_opts, std::mem::take(&mut expected));
    }

    #[test]
    fn parent_and_flags() {
        let p = prepare(
            "n",
            "{}",
            r#"{"parent":{"id":"p1","queue":"bull:pq"},"failParentOnFailure":true,"timestamp":42}"#,
            "opts",
            5,
        )
        .unwrap();
        assert_eq!(p.parent_key.as_deref(), Some("bull:pq:p1"));
        assert_eq!(
            p.packed_parent.unwrap(),
            OrderedJson::parse(r#"{"id":"p1","queueKey":"bull:pq","fpof":true}"#)
                .unwrap()
                .to_msgpack()
        );
        assert_eq!(p.timestamp, 42.0);
    }

    #[test]
    fn rejects_bad_options_naming_them() {
        let bad = |opts: &str| match prepare("n", "{}", opts, "jobs[2].opts", 1) {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption for {opts}, got {other:?}"),
        };
        assert_eq!(bad(r#"{"priority":-1}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"priority":2097152}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"priority":1.5}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"priority":"1"}"#), "jobs[2].opts.priority");
        assert_eq!(bad(r#"{"delay":-5}"#), "jobs[2].opts.delay");
        assert_eq!(bad(r#"{"jobId":"123"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":"-7"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":"0"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":"a:b"}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"jobId":5}"#), "jobs[2].opts.jobId");
        assert_eq!(bad(r#"{"attempts":-1}"#), "jobs[2].opts.attempts");
        assert_eq!(
            bad(r#"{"backoff":{"delay":5}}"#),
            "jobs[2].opts.backoff.type"
        );
        assert_eq!(
            bad(r#"{"backoff":{"type":"fixed","jitter":2}}"#),
            "jobs[2].opts.backoff.jitter"
        );
        assert_eq!(
            bad(r#"{"deduplication":{}}"#),
            "jobs[2].opts.deduplication.id"
        );
        assert_eq!(
            bad(r#"{"deduplication":{"id":"x","extend":1}}"#),
            "jobs[2].opts.deduplication.extend"
        );
        assert_eq!(
            bad(r#"{"deduplication":{"id":"x","keepLastIfActive":"yes"}}"#),
            "jobs[2].opts.deduplication.keepLastIfActive"
        );
        assert_eq!(
            bad(r#"{"deduplication":{"id":"x"},"parent":{"id":"p","queue":"bull:q"}}"#),
            "jobs[2].opts.deduplication"
        );
        assert_eq!(bad(r#"{"parent":{"id":"p"}}"#), "jobs[2].opts.parent.queue");
        assert_eq!(
            bad(r#"{"removeOnComplete":"yes"}"#),
            "jobs[2].opts.removeOnComplete"
        );
        assert_eq!(bad(r#"{"debounce":{"id":"x"}}"#), "jobs[2].opts.debounce");
        assert_eq!(bad("[1]"), "jobs[2].opts");
        assert_eq!(bad("{"), "jobs[2].opts");
        assert_eq!(
            bad(r#"{"failParentOnFailure":true,"ignoreDependencyOnFailure":true}"#),
            "jobs[2].opts.ignoreDependencyOnFailure"
        );
        assert!(matches!(
            prepare("n", "\"0123456789\"", r#"{"sizeLimit":5}"#, "opts", 1),
            Err(Error::InvalidOption { .. })
        ));
    }

    #[test]
    fn accepts_what_bullmq_accepts() {
        for ok in [
            r#"{}"#,
            r#"{"priority":0,"delay":0}"#,
            r#"{"priority":2097151}"#,
            r#"{"jobId":"repeat:a:1"}"#,
            r#"{"jobId":"007"}"#,
            r#"{"jobId":"12345678901234567890"}"#,
            r#"{"jobId":""}"#,
            r#"{"jobId":null,"backoff":null}"#,
            r#"{"removeOnFail":{"age":10,"count":5}}"#,
            r#"{"deduplication":{"id":"x","ttl":100,"extend":false}}"#,
            r#"{"deduplication":{"id":"x","ttl":100,"extend":true,"replace":true,"reschedule":true,"keepLastIfActive":true}}"#,
            r#"{"deduplication":{"id":"x","replace":null}}"#,
        ] {
            assert!(prepare("n", "{}", ok, "opts", 1).is_ok(), "{ok}");
        }
        assert!(looks_like_integer("42"));
        assert!(!looks_like_integer("42a"));
        assert!(!looks_like_integer("+42"));
        assert!(!looks_like_integer("-0"));
    }
}
