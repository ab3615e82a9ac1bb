//! `NativeWorker`: the napi face of `engine::worker::Worker`. The processor and the event
//! sink are ThreadsafeFunctions into the facade (`lib/worker.js`), which wraps the user's
//! processor so that only plain outcomes cross back (see [`super::bridge`]).

use std::sync::Arc;

use napi::bindgen_prelude::within_runtime_if_available;
use napi_derive::napi;

use super::bridge::{Bridge, CronFn, DeliverFn, Handler, ProcessorOutcome};
use super::error::{IntoNapi, to_napi};
use super::handle::handle_methods;
use super::options;
use crate::engine::Error;
use crate::engine::worker::{Outcome, Worker, WorkerConfig};

#[napi]
pub struct NativeWorker {
    inner: Worker,
    bridge: Arc<Bridge>,
}

#[napi]
impl NativeWorker {
    #[napi(constructor)]
    pub fn new(
        queue_name: String,
        options_json: String,
        connection_json: Option<String>,
        deliver: DeliverFn,
        cron: CronFn,
    ) -> napi::Result<Self> {
        let value = options::parse_json(&options_json).napi()?;
        let cfg = WorkerConfig::from_json(&queue_name, &value, |k| std::env::var(k).ok()).napi()?;
        let endpoint = options::resolve(connection_json.as_deref()).napi()?;
        let bridge = Bridge::new(deliver, cron);
        let handler = Arc::new(Handler {
            bridge: Arc::clone(&bridge),
        });
        let inner = within_runtime_if_available(|| Worker::new(&endpoint, cfg, handler)).napi()?;
        Ok(NativeWorker { inner, bridge })
    }

    /// The outcomes of jobs of earlier deliveries (`seqs[i]` settled with `outcomes[i]`),
    /// called by the facade with everything that settled in one tick. Unknown or repeated
    /// sequence numbers are ignored.
    #[napi]
    pub fn complete_many(&self, seqs: Vec<u32>, outcomes: Vec<ProcessorOutcome>) {
        self.bridge.settle(
            seqs.into_iter()
                .zip(outcomes.into_iter().map(Outcome::from)),
        );
    }

    /// `complete_many` for the common case, jobs that completed (`values[i]` is the result
    /// JSON of job `seqs[i]`): two flat arrays cross instead of one object per job.
    #[napi]
    pub fn complete_values(&self, seqs: Vec<u32>, values: Vec<String>) {
        self.bridge.settle(
            seqs.into_iter()
                .zip(values)
                .map(|(seq, returnvalue)| (seq, Outcome::Completed { returnvalue })),
        );
    }

    /// One stalled check of the queue now; the ids moved back (or failed).
    #[napi]
    pub async fn move_stalled_jobs_to_wait(&self) -> napi::Result<Vec<String>> {
        self.inner.move_stalled_jobs_to_wait().await.napi()
    }

    #[napi]
    pub fn run(&self) {
        within_runtime_if_available(|| self.inner.run());
    }

    #[napi]
    pub async fn close(&self, force: bool) -> napi::Result<()> {
        self.inner.close(force).await;
        Ok(())
    }

    /// Release the callbacks into the facade (after `close`, which is final): pending events
    /// are delivered first, later ones dropped.
    #[napi]
    pub fn release(&self) {
        self.bridge.release();
    }

    #[napi]
    pub async fn pause(&self, do_not_wait_active: bool) -> napi::Result<()> {
        self.inner.pause(do_not_wait_active).await;
        Ok(())
    }

    #[napi]
    pub fn resume(&self) {
        self.inner.resume();
    }

    #[napi]
    pub fn set_concurrency(&self, n: u32) -> napi::Result<()> {
        self.inner.set_concurrency(n as usize).napi()
    }

    #[napi]
    pub fn concurrency(&self) -> u32 {
        self.inner.concurrency() as u32
    }

    #[napi]
    pub fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    #[napi]
    pub fn is_paused(&self) -> bool {
        self.inner.is_paused()
    }

    #[napi]
    pub async fn move_to_delayed(
        &self,
        job_id: String,
        token: String,
        timestamp: f64,
    ) -> napi::Result<()> {
        self.inner
            .move_to_delayed(&job_id, &token, timestamp.max(0.0) as u64)
            .await
            .napi()
    }

    /// true = moved to waiting-children, false = no pending child (still active).
    #[napi]
    pub async fn move_to_waiting_children(
        &self,
        job_id: String,
        token: String,
        child_key: Option<String>,
    ) -> napi::Result<bool> {
        self.inner
            .move_to_waiting_children(&job_id, &token, child_key.as_deref())
            .await
            .napi()
    }

    #[napi]
    pub async fn rate_limit(&self, ms: f64) -> napi::Result<()> {
        if !ms.is_finite() || ms < 1.0 {
            return Err(to_napi(Error::invalid(
                "rateLimit",
                "expire time must be a positive number of ms",
            )));
        }
        self.inner.rate_limit(ms as u64).await.napi()
    }
}

handle_methods!(NativeWorker, inner);
