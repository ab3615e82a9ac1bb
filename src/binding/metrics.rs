//! Observability: BullMQ's job metrics of a queue (`NativeQueue.getMetrics`).

use napi_derive::napi;

use super::error::{IntoNapi, to_napi};
use super::queue::NativeQueue;
use crate::engine::Error;

/// The stored metrics of one kind; the facade turns the text into BullMQ's numbers.
#[napi(object)]
pub struct JobMetricsOutput {
    pub count: Option<String>,
    pub prev_ts: Option<String>,
    pub prev_count: Option<String>,
    pub data: Vec<String>,
    pub points: f64,
}

fn index(name: &str, v: f64) -> napi::Result<i64> {
    if v.is_finite() && v.fract() == 0.0 {
        Ok(v as i64)
    } else {
        Err(to_napi(Error::invalid(name, "must be an integer")))
    }
}

#[napi]
impl NativeQueue {
    #[napi]
    pub async fn get_metrics(
        &self,
        kind: String,
        start: f64,
        end: f64,
    ) -> napi::Result<JobMetricsOutput> {
        let (start, end) = (index("start", start)?, index("end", end)?);
        let m = self.inner.job_metrics(&kind, start, end).await.napi()?;
        Ok(JobMetricsOutput {
            count: m.count,
            prev_ts: m.prev_ts,
            prev_count: m.prev_count,
            data: m.data,
            points: m.points as f64,
        })
    }
}

/// The engine's part of `metrics()`: sockets, dispatcher, lock renewal, bridge backlog and
/// per-queue counters, read now (synchronous: atomics and one pass over the workers).
#[napi]
pub fn process_metrics() -> napi::Result<serde_json::Value> {
    serde_json::to_value(crate::engine::observe::snapshot())
        .map_err(|e| napi::Error::new(napi::Status::GenericFailure, e.to_string()))
}
