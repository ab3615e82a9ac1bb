//! `NativeQueue`: the napi face of `engine::queue::Queue`. Job data and options cross as JSON
//! text (the facade stringifies and parses them); validation lives in the engine.

use napi::bindgen_prelude::within_runtime_if_available;
use napi_derive::napi;

use super::error::{IntoNapi, to_napi};
use super::handle::handle_methods;
use super::options;
use crate::engine::Error;
use crate::engine::queue::{JobRecord, NewJob, Queue, QueueConfig};

#[napi(object)]
pub struct NewJobInput {
    pub name: String,
    /// JSON of the data.
    pub data: String,
    /// JSON of the options, merged with the queue's defaultJobOptions.
    pub opts: String,
}

#[napi(object)]
pub struct AddedJobOutput {
    pub id: String,
    pub timestamp: f64,
    /// JSON of `job.opts` as BullMQ shows it.
    pub opts: String,
    pub delay: f64,
    pub priority: f64,
}

#[napi(object)]
pub struct JobRecordOutput {
    pub id: String,
    /// Ordered by field name (see `JobHash`).
    pub fields: std::collections::BTreeMap<String, String>,
}

#[napi(object)]
pub struct JobLogsOutput {
    pub logs: Vec<String>,
    pub count: f64,
}

impl From<JobRecord> for JobRecordOutput {
    fn from(r: JobRecord) -> Self {
        JobRecordOutput {
            id: r.id,
            fields: r.fields,
        }
    }
}

/// JS numbers for ranges and counts: integers, negative allowed where Redis allows it.
fn int_arg(name: &str, v: f64) -> napi::Result<i64> {
    if v.is_finite() && v.fract() == 0.0 {
        Ok(v as i64)
    } else {
        Err(to_napi(Error::invalid(name, "must be an integer")))
    }
}

fn non_negative(name: &str, v: f64) -> napi::Result<u64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v as u64)
    } else {
        Err(to_napi(Error::invalid(
            name,
            "must be a non-negative number",
        )))
    }
}

#[napi]
pub struct NativeQueue {
    pub(super) inner: Queue,
}

#[napi]
impl NativeQueue {
    #[napi(constructor)]
    pub fn new(
        name: String,
        options_json: String,
        connection_json: Option<String>,
    ) -> napi::Result<Self> {
        let value = options::parse_json(&options_json).napi()?;
        let cfg = QueueConfig::from_json(&name, &value).napi()?;
        let endpoint = options::resolve(connection_json.as_deref()).napi()?;
        // Creating the pair (first user of the endpoint) spawns its supervisor tasks.
        let inner = within_runtime_if_available(|| Queue::new(&endpoint, cfg)).napi()?;
        Ok(NativeQueue { inner })
    }

    #[napi]
    pub async fn add_bulk(&self, jobs: Vec<NewJobInput>) -> napi::Result<Vec<AddedJobOutput>> {
        let jobs: Vec<NewJob> = jobs
            .into_iter()
            .map(|j| NewJob {
                name: j.name,
                data: j.data,
                opts: j.opts,
            })
            .collect();
        let added = self.inner.add_bulk(&jobs).await.napi()?;
        Ok(added
            .into_iter()
            .map(|a| AddedJobOutput {
                id: a.id,
                timestamp: a.timestamp,
                opts: a.opts,
                delay: a.delay,
                priority: a.priority as f64,
            })
            .collect())
    }

    #[napi]
    pub async fn get_job(&self, id: String) -> napi::Result<Option<JobRecordOutput>> {
        Ok(self.inner.get_job(&id).await.napi()?.map(Into::into))
    }

    #[napi]
    pub async fn get_jobs(
        &self,
        types: Vec<String>,
        start: f64,
        end: f64,
        asc: bool,
    ) -> napi::Result<Vec<JobRecordOutput>> {
        let start = int_arg("start", start)?;
        let end = int_arg("end", end)?;
        let jobs = self.inner.get_jobs(&types, start, end, asc).await.napi()?;
        Ok(jobs.into_iter().map(Into::into).collect())
    }

    #[napi]
    pub async fn counts(&self, types: Vec<String>) -> napi::Result<Vec<f64>> {
        let counts = self.inner.counts(&types).await.napi()?;
        Ok(counts.into_iter().map(|n| n as f64).collect())
    }

    #[napi]
    pub async fn is_paused(&self) -> napi::Result<bool> {
        self.inner.is_paused().await.napi()
    }

    #[napi]
    pub async fn pause(&self) -> napi::Result<()> {
        self.inner.pause().await.napi()
    }

    #[napi]
    pub async fn resume(&self) -> napi::Result<()> {
        self.inner.resume().await.napi()
    }

    #[napi]
    pub async fn drain(&self, delayed: bool) -> napi::Result<f64> {
        Ok(self.inner.drain(delayed).await.napi()? as f64)
    }

    #[napi]
    pub async fn clean(&self, grace: f64, limit: f64, kind: String) -> napi::Result<Vec<String>> {
        let grace = non_negative("grace", grace)?;
        let limit = non_negative("limit", limit)?;
        self.inner.clean(grace, limit, &kind).await.napi()
    }

    #[napi]
    pub async fn reprocess(
        &self,
        id: String,
        state: String,
        reset_attempts_made: bool,
        reset_attempts_started: bool,
    ) -> napi::Result<()> {
        self.inner
            .reprocess(&id, &state, reset_attempts_made, reset_attempts_started)
            .await
            .napi()
    }

    #[napi]
    pub async fn job_logs(
        &self,
        id: String,
        start: f64,
        end: f64,
        asc: bool,
    ) -> napi::Result<JobLogsOutput> {
        let start = int_arg("start", start)?;
        let end = int_arg("end", end)?;
        let (logs, count) = self.inner.job_logs(&id, start, end, asc).await.napi()?;
        Ok(JobLogsOutput {
            logs,
            count: count as f64,
        })
    }
}

handle_methods!(NativeQueue, inner);

// After the handle methods, so that `close` stays last in binding.d.ts.
#[napi]
impl NativeQueue {
    #[napi]
    pub fn close(&self) {
        self.inner.close();
    }
}
