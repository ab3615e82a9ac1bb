//! A worker's configuration: BullMQ's defaults, the options of API.md parsed from JSON, and
//! their validation.

use crate::engine::error::{Error, Result};
use crate::engine::job::{self, KeepJobs};
use crate::engine::keys::validate_queue_name;

/// What `new Worker(queue, processor, opts)` says (the options the engine acts on).
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The queue's name.
    pub queue: String,
    /// The key prefix (`bull`).
    pub prefix: String,
    /// Jobs processed at once.
    pub concurrency: usize,
    /// `lockDuration` (ms).
    pub lock_duration_ms: u64,
    /// `stalledInterval` (ms).
    pub stalled_interval_ms: u64,
    /// `maxStalledCount`.
    pub max_stalled_count: u64,
    /// `drainDelay`, in ms (the option is in seconds).
    pub drain_delay_ms: u64,
    /// `removeOnComplete` for jobs that do not set their own.
    pub remove_on_complete: KeepJobs,
    /// `removeOnFail` for jobs that do not set their own.
    pub remove_on_fail: KeepJobs,
    /// `limiter`: (max jobs, duration ms).
    pub limiter: Option<(u64, u64)>,
    /// `name`, stored as each job's `pb` (processed by).
    pub name: Option<String>,
    /// `maxStartedAttempts`.
    pub max_started_attempts: Option<u64>,
    /// `skipStalledCheck`.
    pub skip_stalled_check: bool,
    /// `metrics.maxDataPoints`: record BullMQ's per-minute metrics, keeping this many points
    /// (None or 0 = off, as in BullMQ).
    pub metrics_max_data_points: Option<u64>,
    /// `maximumRateLimitDelay` (ms): the longest single wait while rate limited; the worker
    /// asks Redis again after it (due delayed jobs get promoted then).
    pub max_rate_limit_delay_ms: u64,
    /// `lockRenewTime` (ms; None = half of lockDuration, as in BullMQ).
    pub lock_renew_time_ms: Option<u64>,
    /// `skipLockRenewal`: the locks of this worker's jobs are never extended.
    pub skip_lock_renewal: bool,
}

impl WorkerConfig {
    /// BullMQ's defaults for queue `queue`.
    pub fn new(queue: &str) -> Self {
        WorkerConfig {
            queue: queue.to_string(),
            prefix: "bull".into(),
            concurrency: 1,
            lock_duration_ms: 30_000,
            stalled_interval_ms: 30_000,
            max_stalled_count: 1,
            drain_delay_ms: 5_000,
            remove_on_complete: job::KEEP_ALL,
            remove_on_fail: job::KEEP_ALL,
            limiter: None,
            name: None,
            max_started_attempts: None,
            skip_stalled_check: false,
            metrics_max_data_points: None,
            max_rate_limit_delay_ms: 30_000,
            lock_renew_time_ms: None,
            skip_lock_renewal: false,
        }
    }

    /// How old a job's lock gets before it is extended: half of `lockRenewTime` (BullMQ's
    /// lock manager checks every `lockRenewTime / 2`), so a quarter of the lock by default.
    pub fn renew_after(&self) -> std::time::Duration {
        let renew = self.lock_renew_time_ms.unwrap_or(self.lock_duration_ms / 2);
        std::time::Duration::from_millis((renew / 2).max(1))
    }

    /// Worker options of API.md (as JSON, without `connection` and JS-only fields). Unknown
    /// keys are ignored: BullMQ has many options that mean nothing here (metrics, sandboxes)
    /// and existing `base.worker.ts` code passes some of them.
    pub fn from_json(
        queue: &str,
        v: &serde_json::Value,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        use serde_json::Value;
        let mut cfg = WorkerConfig::new(queue);
        if let Some(c) = env("QUEUE_CONCURRENCY").filter(|s| !s.trim().is_empty()) {
            cfg.concurrency = c
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid("QUEUE_CONCURRENCY", "must be a positive integer"))?;
        }
        let Some(o) = v.as_object() else {
            return if v.is_null() {
                Ok(cfg)
            } else {
                Err(Error::invalid("opts", "must be an object"))
            };
        };
        // One wording per rule: a value out of range gets the rule's text (BullMQ's, where
        // BullMQ has the rule), whichever side it misses; a fraction is its own rule.
        let pos_int = |key: &str| -> Result<Option<u64>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => {
                    let f = x
                        .as_f64()
                        .filter(|f| *f >= 0.0)
                        .ok_or_else(|| Error::invalid(key, range_rule(key)))?;
                    if f.fract() != 0.0 {
                        return Err(Error::invalid(key, format!("{key} must be an integer")));
                    }
                    Ok(Some(f as u64))
                }
            }
        };
        if let Some(p) = o.get("prefix").filter(|p| !p.is_null()) {
            cfg.prefix = p
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::invalid("prefix", "must be a non-empty string"))?
                .to_string();
        }
        if let Some(n) = pos_int("concurrency")? {
            cfg.concurrency = n as usize;
        }
        if let Some(n) = pos_int("lockDuration")? {
            cfg.lock_duration_ms = n;
        }
        if let Some(n) = pos_int("stalledInterval")? {
            cfg.stalled_interval_ms = n;
        }
        if let Some(n) = pos_int("maxStalledCount")? {
            cfg.max_stalled_count = n;
        }
        if let Some(n) = pos_int("maxStartedAttempts")? {
            cfg.max_started_attempts = Some(n);
        }
        if let Some(n) = pos_int("lockRenewTime")? {
            cfg.lock_renew_time_ms = Some(n.max(1));
        }
        if let Some(v) = o.get("skipLockRenewal").filter(|v| !v.is_null()) {
            cfg.skip_lock_renewal = v
                .as_bool()
                .ok_or_else(|| Error::invalid("skipLockRenewal", "must be a boolean"))?;
        }
        if let Some(n) = pos_int("maximumRateLimitDelay")? {
            cfg.max_rate_limit_delay_ms = n.max(1);
        }
        match o.get("drainDelay") {
            None | Some(Value::Null) => {}
            Some(d) => {
                let secs = d
                    .as_f64()
                    .filter(|f| *f > 0.0)
                    .ok_or_else(|| Error::invalid("drainDelay", range_rule("drainDelay")))?;
                cfg.drain_delay_ms = (secs * 1000.0) as u64;
            }
        }
        for (key, slot) in [
            ("removeOnComplete", &mut cfg.remove_on_complete),
            ("removeOnFail", &mut cfg.remove_on_fail),
        ] {
            if let Some(x) = o.get(key).filter(|x| !x.is_null()) {
                *slot = job::parse_keep(x).ok_or_else(|| {
                    Error::invalid(key, "must be a boolean, a number or {age, count, limit}")
                })?;
            }
        }
        if let Some(l) = o.get("limiter").filter(|x| !x.is_null()) {
            let max = l.get("max").and_then(Value::as_f64).filter(|f| *f >= 1.0);
            let duration = l
                .get("duration")
                .and_then(Value::as_f64)
                .filter(|f| *f >= 1.0);
            match (max, duration) {
                (Some(m), Some(d)) => cfg.limiter = Some((m as u64, d as u64)),
                _ => {
                    return Err(Error::invalid(
                        "limiter",
                        "needs positive `max` and `duration` (ms)",
                    ));
                }
            }
        }
        if let Some(n) = o.get("name").filter(|x| !x.is_null()) {
            cfg.name = Some(
                n.as_str()
                    .ok_or_else(|| Error::invalid("name", "must be a string"))?
                    .to_string(),
            );
        }
        if let Some(b) = o.get("skipStalledCheck") {
            cfg.skip_stalled_check = b.as_bool().unwrap_or(false);
        }
        if let Some(m) = o.get("metrics").filter(|x| !x.is_null()) {
            let points = m.get("maxDataPoints").filter(|x| !x.is_null());
            cfg.metrics_max_data_points = match points {
                None => None,
                Some(p) => Some(
                    p.as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                        .ok_or_else(|| {
                            Error::invalid(
                                "metrics.maxDataPoints",
                                "must be a non-negative integer",
                            )
                        })?,
                ),
            }
            .filter(|n| *n > 0);
        }
        validate(&cfg)?;
        Ok(cfg)
    }
}

/// The text of an option's range rule: BullMQ's words where BullMQ checks the option too
/// (users match on them), the same shape for ours.
fn range_rule(key: &str) -> String {
    match key {
        "maxStalledCount" | "maxStartedAttempts" => {
            format!("{key} must be greater or equal than 0")
        }
        "concurrency" => CONCURRENCY_RULE.to_string(),
        _ => format!("{key} must be greater than 0"),
    }
}

/// BullMQ's text for the concurrency rule (constructor and setter).
pub const CONCURRENCY_RULE: &str = "concurrency must be a finite number greater than 0";

pub(super) fn validate(cfg: &WorkerConfig) -> Result<()> {
    validate_queue_name(&cfg.queue, "queueName")?;
    if cfg.prefix.is_empty() {
        return Err(Error::invalid("prefix", "must not be empty"));
    }
    if cfg.concurrency == 0 {
        return Err(Error::invalid("concurrency", CONCURRENCY_RULE));
    }
    if cfg.lock_duration_ms == 0 {
        return Err(Error::invalid("lockDuration", range_rule("lockDuration")));
    }
    if cfg.stalled_interval_ms == 0 {
        return Err(Error::invalid(
            "stalledInterval",
            range_rule("stalledInterval"),
        ));
    }
    if let Some((max, duration)) = cfg.limiter
        && (max == 0 || duration == 0)
    {
        return Err(Error::invalid(
            "limiter",
            "max and duration must be positive",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_match_bullmq() {
        let c = WorkerConfig::from_json("q", &json!({}), no_env).unwrap();
        assert_eq!(c.concurrency, 1);
        assert_eq!(c.lock_duration_ms, 30_000);
        assert_eq!(c.stalled_interval_ms, 30_000);
        assert_eq!(c.max_stalled_count, 1);
        assert_eq!(c.drain_delay_ms, 5_000);
        assert_eq!(c.prefix, "bull");
        assert_eq!(c.metrics_max_data_points, None);
    }

    #[test]
    fn metrics_max_data_points_zero_is_off() {
        let points = |v: serde_json::Value| {
            WorkerConfig::from_json("q", &v, no_env)
                .unwrap()
                .metrics_max_data_points
        };
        assert_eq!(points(json!({"metrics": {"maxDataPoints": 60}})), Some(60));
        assert_eq!(points(json!({"metrics": {"maxDataPoints": 0}})), None);
        assert_eq!(points(json!({"metrics": {}})), None);
    }

    #[test]
    fn env_concurrency_and_explicit_override() {
        let env = |k: &str| (k == "QUEUE_CONCURRENCY").then(|| "10".to_string());
        assert_eq!(
            WorkerConfig::from_json("q", &json!({}), env)
                .unwrap()
                .concurrency,
            10
        );
        assert_eq!(
            WorkerConfig::from_json("q", &json!({"concurrency": 3}), env)
                .unwrap()
                .concurrency,
            3
        );
    }

    #[test]
    fn invalid_options_are_named() {
        let bad = |v: serde_json::Value| match WorkerConfig::from_json("q", &v, no_env) {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption, got {:?}", other.map(|_| ())),
        };
        assert_eq!(bad(json!({"concurrency": 0})), "concurrency");
        assert_eq!(bad(json!({"concurrency": "ten"})), "concurrency");
        assert_eq!(
            bad(json!({"limiter": {"max": 0, "duration": 10}})),
            "limiter"
        );
        assert_eq!(bad(json!({"removeOnComplete": "yes"})), "removeOnComplete");
        assert_eq!(bad(json!({"drainDelay": -1})), "drainDelay");
        assert_eq!(
            bad(json!({"metrics": {"maxDataPoints": -1}})),
            "metrics.maxDataPoints"
        );
        assert!(matches!(
            WorkerConfig::from_json("a:b", &json!({}), no_env),
            Err(Error::InvalidOption { .. })
        ));
    }
}
