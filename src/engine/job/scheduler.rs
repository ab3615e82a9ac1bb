//! Job-scheduler iterations: whether the activated iteration gets a successor, the successor's
//! options in BullMQ's exact key order, and the legacy repeatable-key shape.

use crate::engine::error::Error;
use crate::engine::ordered_json::{OrderedJson, remove_entry, set_entry};

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
    Cron {
        /// The repeat options, JSON.
        repeat: String,
        /// Search after this time (ms).
        after: u64,
    },
}

fn as_ms(v: &OrderedJson) -> Option<u64> {
    match v {
        OrderedJson::Number(n) => n.as_f64().map(|f| f.max(0.0) as u64),
        OrderedJson::String(s) => s.trim().parse::<f64>().ok().map(|f| f.max(0.0) as u64),
        _ => None,
    }
}

fn truthy(v: Option<&OrderedJson>) -> bool {
    v.is_some_and(OrderedJson::truthy)
}

/// The error reported when the next iteration of job scheduler `scheduler` of `queue` cannot
/// be added (the activated iteration still runs).
pub fn next_iteration_failed(scheduler: &str, queue: &str, reason: &str) -> Error {
    Error::InvalidOption {
        option: "repeat".into(),
        reason: format!(
            "failed to add the next iteration of job scheduler {scheduler} in queue {queue}: {reason}"
        ),
    }
}

/// Why a legacy repeatable-job key gets no next iteration (the script's `NotAScheduler`).
pub fn not_a_scheduler(scheduler: &str) -> String {
    format!(
        "{scheduler} is a legacy repeatable job key, which BullMQ 6 no longer supports (migrate it to a job scheduler)"
    )
}

/// BullMQ's checks before scheduling the next iteration: `repeat` must name exactly one of
/// `every` / `pattern`; `limit` caps the iteration count (`count + 1`); past `endDate` no
/// more iterations; a cron time is searched from `max(now, prevMillis)`.
pub fn next_iteration(
    opts_json: Option<&str>,
    now: u64,
) -> std::result::Result<NextIteration, String> {
    let opts = opts_json
        .and_then(|s| OrderedJson::parse(s).ok())
        .unwrap_or(OrderedJson::Null);
    let repeat = opts.get("repeat").cloned().unwrap_or(OrderedJson::Null);
    let every = truthy(repeat.get("every"));
    let pattern = truthy(repeat.get("pattern"));
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
    if truthy(repeat.get("endDate"))
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
        repeat: repeat.to_json(),
        after: now.max(prev),
    })
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
        vec![("attempts".to_string(), OrderedJson::number(0.0))];
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
                    ("delay".into(), OrderedJson::Number(n.clone())),
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
            Some(n @ OrderedJson::Number(_)) if n.truthy() => n.as_f64().unwrap_or(0.0) + 1.0,
            _ => 1.0,
        };
        let date = |key: &str| match view.get(key) {
            Some(v) if v.truthy() => v.clone(),
            _ => OrderedJson::Null,
        };
        let (start, end) = (date("startDate"), date("endDate"));
        set_entry(&mut repeat, "offset", offset);
        set_entry(&mut repeat, "count", OrderedJson::number(count));
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
    set_entry(&mut opts, "delay", OrderedJson::number(0.0));
    set_entry(&mut opts, "timestamp", OrderedJson::number(now as f64));
    match cron_next {
        Some(n) => set_entry(&mut opts, "prevMillis", OrderedJson::number(n as f64)),
        None => {
            remove_entry(&mut opts, "prevMillis");
        }
    }
    set_entry(
        &mut opts,
        "repeatJobKey",
        OrderedJson::String(scheduler_id.to_string()),
    );
    OrderedJson::Object(opts).to_msgpack()
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
    use crate::engine::ordered_json::{keys, unpack};

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
                repeat: r#"{"pattern":"* * * * * *","count":2,"tz":"UTC"}"#.into(),
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
        assert_eq!(v.get("attempts"), Some(&OrderedJson::number(2.0)));
        assert_eq!(v.get("timestamp"), Some(&OrderedJson::number(1000.0)));
        assert_eq!(
            v.get("backoff"),
            Some(&OrderedJson::Object(vec![
                ("type".into(), OrderedJson::String("fixed".into())),
                ("delay".into(), OrderedJson::number(50.0)),
            ]))
        );
        let repeat = v.get("repeat").unwrap();
        assert_eq!(
            keys(repeat),
            ["every", "count", "offset", "startDate", "endDate"]
        );
        assert_eq!(repeat.get("count"), Some(&OrderedJson::number(2.0)));
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
        assert_eq!(v.get("prevMillis"), Some(&OrderedJson::number(60_000.0)));
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
            Some(&OrderedJson::number(2.0))
        );
    }
}
