//! `NativeWorker`: the napi face of `engine::worker::Worker`. The processor and the event
//! sink are ThreadsafeFunctions into the facade (index.js), which wraps the user's processor
//! so that only plain outcomes cross back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use napi::Status;
use napi::bindgen_prelude::{Promise, within_runtime_if_available};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::connection::resolve;
use super::error::{IntoNapi, to_napi};
use crate::engine::Error;
use crate::engine::worker::{
    self, ActiveJob, BoxFuture, JobHandler, ProcessOutcome, Worker, WorkerConfig, WorkerEvent,
};

#[napi(object)]
pub struct JobPayload {
    pub id: String,
    pub token: String,
    pub fields: HashMap<String, String>,
}

/// What the facade's processor wrapper resolves with.
#[napi(object)]
pub struct ProcessorOutcome {
    /// "completed" | "failed" | "moved" | "ratelimited"
    pub kind: String,
    /// Result JSON ("completed").
    pub value: Option<String>,
    pub message: Option<String>,
    pub stack: Option<String>,
    pub unrecoverable: Option<bool>,
    /// Delay from a custom backoffStrategy (-1 = do not retry).
    pub backoff: Option<f64>,
}

#[napi(object)]
pub struct WorkerEventPayload {
    /// "completed" | "failed" | "stalled" | "drained" | "error"
    pub event: String,
    pub job_id: Option<String>,
    pub value: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub will_retry: Option<bool>,
    /// "failed" of a job the processor never saw (deferred failure): its hash.
    pub fields: Option<HashMap<String, String>>,
}

type ProcessorFn =
    ThreadsafeFunction<JobPayload, Promise<ProcessorOutcome>, JobPayload, Status, false, true>;
type EventFn = ThreadsafeFunction<WorkerEventPayload, (), WorkerEventPayload, Status, false, true>;
/// `(requestJson) => replyJson`: request `{"repeat": {...}, "after": ms}`, reply
/// `{"next": ms | null}` or `{"error": message}` (the facade runs cron-parser).
type CronFn = ThreadsafeFunction<String, String, String, Status, false, true>;

struct Handler {
    processor: Arc<ProcessorFn>,
    events: EventFn,
    cron: Arc<CronFn>,
}

fn failed(message: String) -> ProcessOutcome {
    ProcessOutcome::Failed {
        message,
        stack: None,
        unrecoverable: false,
        custom_backoff: None,
    }
}

impl JobHandler for Handler {
    fn process(&self, job: ActiveJob) -> BoxFuture<ProcessOutcome> {
        let processor = Arc::clone(&self.processor);
        Box::pin(async move {
            let payload = JobPayload {
                id: job.id,
                token: job.token,
                fields: job.fields,
            };
            let promise = match processor.call_async(payload).await {
                Ok(p) => p,
                Err(e) => return failed(format!("processor could not be called: {}", e.reason)),
            };
            let outcome = match promise.await {
                Ok(o) => o,
                Err(e) => return failed(format!("processor wrapper failed: {}", e.reason)),
            };
            match outcome.kind.as_str() {
                "completed" => ProcessOutcome::Completed {
                    returnvalue: outcome.value.unwrap_or_else(|| "null".into()),
                },
                "moved" => ProcessOutcome::MovedByProcessor,
                "ratelimited" => ProcessOutcome::RateLimited,
                _ => ProcessOutcome::Failed {
                    message: outcome.message.unwrap_or_default(),
                    stack: outcome.stack,
                    unrecoverable: outcome.unrecoverable.unwrap_or(false),
                    custom_backoff: outcome.backoff.map(|b| b as i64),
                },
            }
        })
    }

    fn next_cron(
        &self,
        repeat_json: String,
        after_ms: u64,
    ) -> BoxFuture<std::result::Result<Option<u64>, String>> {
        let cron = Arc::clone(&self.cron);
        Box::pin(async move {
            let repeat: serde_json::Value =
                serde_json::from_str(&repeat_json).map_err(|e| e.to_string())?;
            let request = serde_json::json!({ "repeat": repeat, "after": after_ms }).to_string();
            let reply = cron
                .call_async(request)
                .await
                .map_err(|e| format!("cron could not be computed: {}", e.reason))?;
            let reply: serde_json::Value =
                serde_json::from_str(&reply).map_err(|e| e.to_string())?;
            if let Some(error) = reply.get("error").and_then(serde_json::Value::as_str) {
                return Err(error.to_string());
            }
            Ok(reply
                .get("next")
                .and_then(serde_json::Value::as_f64)
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| n as u64))
        })
    }

    fn emit(&self, event: WorkerEvent) {
        let payload = match event {
            WorkerEvent::Completed {
                job_id,
                returnvalue,
            } => WorkerEventPayload {
                event: "completed".into(),
                job_id: Some(job_id),
                value: Some(returnvalue),
                code: None,
                message: None,
                will_retry: None,
                fields: None,
            },
            WorkerEvent::Failed {
                job_id,
                reason,
                will_retry,
                fields,
            } => WorkerEventPayload {
                event: "failed".into(),
                job_id: Some(job_id),
                value: None,
                code: None,
                message: Some(reason),
                will_retry: Some(will_retry),
                fields,
            },
            WorkerEvent::Stalled { job_id } => WorkerEventPayload {
                event: "stalled".into(),
                job_id: Some(job_id),
                value: None,
                code: None,
                message: None,
                will_retry: None,
                fields: None,
            },
            WorkerEvent::Drained => WorkerEventPayload {
                event: "drained".into(),
                job_id: None,
                value: None,
                code: None,
                message: None,
                will_retry: None,
                fields: None,
            },
            WorkerEvent::Error {
                code,
                message,
                job_id,
            } => WorkerEventPayload {
                event: "error".into(),
                job_id,
                value: None,
                code: Some(code.to_string()),
                message: Some(message),
                will_retry: None,
                fields: None,
            },
        };
        self.events
            .call(payload, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

#[napi]
pub struct NativeWorker {
    inner: Worker,
}

#[napi]
impl NativeWorker {
    #[napi(constructor)]
    pub fn new(
        queue_name: String,
        options_json: String,
        connection_json: Option<String>,
        processor: ProcessorFn,
        events: EventFn,
        cron: CronFn,
    ) -> napi::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(&options_json)
            .map_err(|e| to_napi(Error::invalid("opts", format!("is not serialisable ({e})"))))?;
        let cfg = WorkerConfig::from_json(&queue_name, &value, |k| std::env::var(k).ok()).napi()?;
        let endpoint = resolve(connection_json.as_deref()).napi()?;
        let handler = Arc::new(Handler {
            processor: Arc::new(processor),
            events,
            cron: Arc::new(cron),
        });
        let inner = within_runtime_if_available(|| Worker::new(&endpoint, cfg, handler)).napi()?;
        Ok(NativeWorker { inner })
    }

    #[napi]
    pub fn run(&self) {
        within_runtime_if_available(|| self.inner.run());
    }

    #[napi]
    pub async fn wait_until_ready(&self, timeout_ms: u32) -> napi::Result<()> {
        self.inner
            .wait_until_ready(Duration::from_millis(u64::from(timeout_ms)))
            .await
            .napi()
    }

    #[napi]
    pub async fn close(&self, force: bool) -> napi::Result<()> {
        self.inner.close(force).await;
        Ok(())
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
    pub async fn update_progress(&self, job_id: String, progress_json: String) -> napi::Result<()> {
        self.inner
            .update_progress(&job_id, &progress_json)
            .await
            .napi()
    }

    #[napi]
    pub async fn add_log(
        &self,
        job_id: String,
        line: String,
        keep_logs: Option<u32>,
    ) -> napi::Result<u32> {
        self.inner
            .add_log(&job_id, &line, keep_logs.map(u64::from))
            .await
            .map(|n| n as u32)
            .napi()
    }

    #[napi]
    pub async fn update_data(&self, job_id: String, data_json: String) -> napi::Result<()> {
        self.inner.update_data(&job_id, &data_json).await.napi()
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

    #[napi]
    pub async fn children_values(&self, job_id: String) -> napi::Result<HashMap<String, String>> {
        self.inner.children_values(&job_id).await.napi()
    }

    #[napi]
    pub async fn dependencies_count(&self, job_id: String) -> napi::Result<Vec<u32>> {
        let (pending, processed) = self.inner.dependencies_count(&job_id).await.napi()?;
        Ok(vec![pending as u32, processed as u32])
    }
}

/// Health of every worker in the process (merged into `health()` by the facade).
pub fn workers_health() -> serde_json::Value {
    serde_json::to_value(worker::health()).unwrap_or(serde_json::Value::Null)
}
