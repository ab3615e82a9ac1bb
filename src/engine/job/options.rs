//! A job's options as stored in its `opts` field (written by BullMQ's `Queue.add` or ours),
//! and the retention of finished jobs.
//!
//! Parsing is defensive: BullMQ's Lua re-encodes `opts` with cjson, so integers may arrive as
//! floats, and older producers omit fields.

use serde_json::Value;

/// Retention of finished jobs (`removeOnComplete` / `removeOnFail`): `count` -1 keeps all,
/// 0 deletes the job at once, n keeps the newest n; `age_secs` removes jobs finished longer
/// ago (None or 0 = no age limit), at most `limit` (default 1000) per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepJobs {
    /// Newest jobs kept: -1 all, 0 none.
    pub count: i64,
    /// Jobs finished longer ago than this are removed.
    pub age_secs: Option<u64>,
    /// Most jobs removed by age in one call.
    pub limit: Option<u64>,
}

/// Keep every finished job (BullMQ's default when neither job nor worker says otherwise).
pub const KEEP_ALL: KeepJobs = KeepJobs {
    count: -1,
    age_secs: None,
    limit: None,
};

/// `backoff` of a job: `type` (`fixed`, `exponential` or a custom name), `delay` ms, `jitter` 0..=1.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// `type`.
    pub kind: String,
    /// Base delay in ms.
    pub delay: u64,
    /// Share of the delay drawn at random.
    pub jitter: f64,
}

/// The stored options the worker acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobOpts {
    /// `attempts` (0 and 1 both mean one attempt).
    pub attempts: u64,
    /// `backoff`, normalised.
    pub backoff: Option<Backoff>,
    /// `lifo`: a retried job goes to the end that runs next.
    pub lifo: bool,
    /// `removeOnComplete`, when the job sets it.
    pub remove_on_complete: Option<KeepJobs>,
    /// `removeOnFail`, when the job sets it.
    pub remove_on_fail: Option<KeepJobs>,
    /// `stackTraceLimit`.
    pub stack_trace_limit: Option<usize>,
    /// `keepLogs` (stored as `kl`).
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
    /// Parse the stored `opts` JSON; missing or unreadable options are the defaults.
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
pub fn attempts_made(fields: &crate::engine::scripts::JobHash) -> u64 {
    fields
        .get("atm")
        .or_else(|| fields.get("attemptsMade"))
        .and_then(|s| s.parse::<f64>().ok())
        .map(|f| f as u64)
        .unwrap_or(0)
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
}
