//! BullMQ's per-minute job metrics, read side: what `Queue.getMetrics(type, start, end)`
//! returns. The write side is `finish.lua` (worker option `metrics.maxDataPoints`).

use super::error::{Error, Result};
use super::handle::QueueHandle;
use super::scripts::redis_err;

/// The MULTI reply: the hash's three fields, the points asked for, the list's length.
type MetricsReply = (
    (Option<String>, Option<String>, Option<String>),
    Vec<String>,
    u64,
);

/// The metrics of one kind (`completed` / `failed`) as stored: the hash's fields as text
/// (None when absent), the data points asked for, and how many points there are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobMetrics {
    /// `count`: jobs counted since metrics were first recorded.
    pub count: Option<String>,
    /// `prevTS`: when the last data point was closed (ms).
    pub prev_ts: Option<String>,
    /// `prevCount`: `count` when the last data point was closed.
    pub prev_count: Option<String>,
    /// Points `start..=end` of the list (newest minute first).
    pub data: Vec<String>,
    /// Length of the list.
    pub points: u64,
}

/// `kind` of `getMetrics`, or the error naming the two accepted.
pub fn metrics_kind(kind: &str) -> Result<&'static str> {
    match kind {
        "completed" => Ok("completed"),
        "failed" => Ok("failed"),
        _ => Err(Error::invalid(
            "type",
            format!("`{kind}` is not a metrics type (completed, failed)"),
        )),
    }
}

impl QueueHandle {
    /// BullMQ's metrics of `kind`, points `start..=end` (Redis list indexes), read in one
    /// MULTI so the three parts agree.
    pub async fn job_metrics(&self, kind: &str, start: i64, end: i64) -> Result<JobMetrics> {
        let kind = metrics_kind(kind)?;
        let k = self.keys();
        let (hash, data) = (k.metrics(kind), k.metrics_data(kind));
        let mut conn = self.conn().await?;
        let ((count, prev_ts, prev_count), data, points): MetricsReply = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&hash)
            .arg("count")
            .arg("prevTS")
            .arg("prevCount")
            .cmd("LRANGE")
            .arg(&data)
            .arg(start)
            .arg(end)
            .cmd("LLEN")
            .arg(&data)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(JobMetrics {
            count,
            prev_ts,
            prev_count,
            data,
            points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completed_and_failed_are_metrics_types() {
        assert_eq!(metrics_kind("completed").unwrap(), "completed");
        assert_eq!(metrics_kind("failed").unwrap(), "failed");
        assert!(matches!(
            metrics_kind("active"),
            Err(Error::InvalidOption { .. })
        ));
    }
}
