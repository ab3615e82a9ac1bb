//! The retry rule and backoff of a failed attempt, and the stacktrace kept with it.

use serde_json::Value;

use super::options::{Backoff, JobOpts};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
