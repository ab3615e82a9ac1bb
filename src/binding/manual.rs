//! `NativeManualWorker`: the napi face of `engine::manual` (a Worker without processor:
//! getNextJob, moveToCompleted, moveToFailed). Jobs cross as `{id, fields}`, as the Queue's do.

use napi_derive::napi;

use super::error::IntoNapi;
use super::options;
use crate::engine::connection;
use crate::engine::keys::QueueKeys;
use crate::engine::manual::Manual;
use crate::engine::options::Endpoint;
use crate::engine::scripts::JobRecord;
use crate::engine::worker::WorkerConfig;

/// A job taken by hand: its id and hash.
#[napi(object)]
pub struct ManualJob {
    pub id: String,
    /// Ordered by field name (see `JobHash`).
    pub fields: std::collections::BTreeMap<String, String>,
}

fn out(job: Option<JobRecord>) -> Option<ManualJob> {
    job.map(|j| ManualJob {
        id: j.id,
        fields: j.fields,
    })
}

#[napi]
pub struct NativeManualWorker {
    endpoint: Endpoint,
    inner: Manual,
}

#[napi]
impl NativeManualWorker {
    /// `optionsJson`: the Worker's options (prefix, lockDuration, name, removeOnComplete,
    /// removeOnFail matter here), validated as a Worker's.
    #[napi(constructor)]
    pub fn new(
        queue_name: String,
        options_json: String,
        connection_json: Option<String>,
    ) -> napi::Result<Self> {
        let value = options::parse_json(&options_json).napi()?;
        let cfg = WorkerConfig::from_json(&queue_name, &value, |k| std::env::var(k).ok()).napi()?;
        let endpoint = options::resolve(connection_json.as_deref()).napi()?;
        let keys = QueueKeys::new(&cfg.prefix, &queue_name);
        Ok(NativeManualWorker {
            endpoint,
            inner: Manual::new(keys, cfg),
        })
    }

    /// The next job, locked with `token`; null when there is none to take now.
    #[napi]
    pub async fn next_job(&self, token: String) -> napi::Result<Option<ManualJob>> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        self.inner.next_job(&pair, &token).await.map(out).napi()
    }

    /// Add the next iteration of job scheduler `scheduler` after its iteration `jobId`
    /// (stored options `optsJson`) was taken; `cronNext`: the next cron run (ms) the
    /// JavaScript side computed, null when there is none or the scheduler is an `every` one.
    #[napi]
    pub async fn schedule_next(
        &self,
        job_id: String,
        opts_json: Option<String>,
        scheduler: String,
        cron_next: Option<f64>,
    ) -> napi::Result<()> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        let cron_next = cron_next
            .filter(|n| n.is_finite())
            .map(|n| n.max(0.0) as u64);
        self.inner
            .schedule_next(&pair, &job_id, opts_json.as_deref(), &scheduler, cron_next)
            .await
            .napi()
    }

    /// Complete; with `fetchNext`, the next job taken in the same call (or null).
    #[napi]
    pub async fn complete(
        &self,
        job_id: String,
        token: String,
        returnvalue_json: String,
        fetch_next: bool,
    ) -> napi::Result<Option<ManualJob>> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        self.inner
            .complete(&pair, &job_id, &token, returnvalue_json, fetch_next)
            .await
            .map(out)
            .napi()
    }

    /// Fail one attempt (retried while attempts remain); with `fetchNext`, after a final
    /// failure, the next job taken in the same call (or null).
    #[napi]
    pub async fn fail(
        &self,
        job_id: String,
        token: String,
        message: String,
        stack: Option<String>,
        unrecoverable: bool,
        fetch_next: bool,
    ) -> napi::Result<Option<ManualJob>> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        self.inner
            .fail(
                &pair,
                &job_id,
                &token,
                message,
                stack,
                unrecoverable,
                fetch_next,
            )
            .await
            .map(out)
            .napi()
    }

    /// Back to waiting without counting the attempt; the rate limiter's remaining window (ms).
    #[napi]
    pub async fn move_to_wait(&self, job_id: String, token: String) -> napi::Result<f64> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        self.inner
            .to_wait(&pair, &job_id, &token)
            .await
            .map(|ms| ms as f64)
            .napi()
    }

    // The same call as NativeWorker::move_to_delayed (binding/worker.rs), for a job taken by hand.
    /// To delayed until `timestamp` (ms) without counting the attempt.
    #[napi]
    pub async fn move_to_delayed(
        &self,
        job_id: String,
        token: String,
        timestamp: f64,
    ) -> napi::Result<()> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        let at = if timestamp.is_finite() && timestamp > 0.0 {
            timestamp as u64
        } else {
            0
        };
        self.inner
            .to_delayed(&pair, &job_id, &token, at)
            .await
            .napi()
    }

    // The same call as NativeWorker::move_to_waiting_children, for a job taken by hand.
    /// To waiting-children while children are pending (false: none is, the job stays active).
    #[napi]
    pub async fn move_to_waiting_children(
        &self,
        job_id: String,
        token: String,
        child_key: Option<String>,
    ) -> napi::Result<bool> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        self.inner
            .to_waiting_children(&pair, &job_id, &token, child_key.as_deref())
            .await
            .napi()
    }
}
