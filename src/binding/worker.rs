//! `NativeWorker`: the napi face of `engine::worker::Worker`. The processor and the event
//! sink are ThreadsafeFunctions into the facade (index.js), which wraps the user's processor
//! so that only plain outcomes cross back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::Status;
use napi::bindgen_prelude::within_runtime_if_available;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::sync::oneshot;

use super::connection::resolve;
use super::error::{IntoNapi, to_napi};
use crate::engine::Error;
use crate::engine::worker::{
    self, ActiveJob, BoxFuture, JobHandler, ProcessOutcome, Worker, WorkerConfig, WorkerEvent,
};

#[napi(object)]
pub struct JobPayload {
    /// Handed back with the outcome (`NativeWorker.completeValues` / `completeMany`).
    pub seq: u32,
    pub id: String,
    pub token: String,
    /// The job hash as one JSON object text: V8's JSON.parse builds the object faster than
    /// napi can set its properties one by one.
    pub fields_json: String,
}

/// One call into JavaScript: the jobs to run and the events to emit that piled up since the
/// last call (events first: they happened before).
#[napi(object)]
pub struct Delivery {
    pub events: Option<Vec<WorkerEventPayload>>,
    pub jobs: Option<Vec<JobPayload>>,
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
    pub code: Option<String>,
    pub message: Option<String>,
    pub will_retry: Option<bool>,
    /// "failed" of a job the processor never saw (deferred failure): its hash.
    pub fields: Option<HashMap<String, String>>,
}

type DeliverFn = ThreadsafeFunction<Delivery, (), Delivery, Status, false, true>;
/// `(requestJson) => replyJson`: request `{"repeat": {...}, "after": ms}`, reply
/// `{"next": ms | null}` or `{"error": message}` (the facade runs cron-parser).
type CronFn = ThreadsafeFunction<String, String, String, Status, false, true>;

/// The JavaScript side of one worker: what is waiting to be delivered, and the jobs whose
/// outcome is awaited.
///
/// Jobs and events are coalesced: the first item schedules one flush, and everything queued
/// before it runs goes in the same call. At concurrency N a batch activation becomes one
/// wake-up of the JS thread instead of N, and a job fetched by the finishing call of the one
/// before travels together with that job's `completed`. Outcomes come back through plain
/// synchronous calls (`completeValues` / `completeMany`, one per tick) rather than a Promise
/// per job, which napi would have to wrap in two new JS callbacks each time.
struct Bridge {
    deliver: DeliverFn,
    outbox: Mutex<Outbox>,
    waiting: Mutex<HashMap<u32, oneshot::Sender<ProcessorOutcome>>>,
    next_seq: AtomicU32,
}

#[derive(Default)]
struct Outbox {
    events: Vec<WorkerEventPayload>,
    jobs: Vec<JobPayload>,
    flush_scheduled: bool,
}

impl Bridge {
    fn enqueue(self: &Arc<Self>, push: impl FnOnce(&mut Outbox)) {
        let schedule = {
            let mut outbox = self.outbox.lock().unwrap();
            push(&mut outbox);
            !std::mem::replace(&mut outbox.flush_scheduled, true)
        };
        if !schedule {
            return;
        }
        let me = Arc::clone(self);
        spawn(async move {
            // Let the tasks that are about to queue something (the other jobs of a batch, the
            // job a finishing call fetched) do so first.
            tokio::task::yield_now().await;
            me.flush();
        });
    }

    fn flush(&self) {
        let (events, jobs) = {
            let mut outbox = self.outbox.lock().unwrap();
            outbox.flush_scheduled = false;
            (
                std::mem::take(&mut outbox.events),
                std::mem::take(&mut outbox.jobs),
            )
        };
        if events.is_empty() && jobs.is_empty() {
            return;
        }
        let seqs: Vec<u32> = jobs.iter().map(|j| j.seq).collect();
        let delivery = Delivery {
            events: (!events.is_empty()).then_some(events),
            jobs: (!jobs.is_empty()).then_some(jobs),
        };
        if self
            .deliver
            .call(delivery, ThreadsafeFunctionCallMode::NonBlocking)
            != Status::Ok
        {
            // JavaScript is gone (environment shutting down): release the waiting jobs.
            let mut waiting = self.waiting.lock().unwrap();
            for seq in seqs {
                waiting.remove(&seq);
            }
        }
    }
}

/// Spawn on the addon's runtime, from its threads or from JavaScript's.
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => within_runtime_if_available(|| {
            tokio::spawn(task);
        }),
    }
}

impl NativeWorker {
    fn settle(&self, outcomes: impl Iterator<Item = (u32, ProcessorOutcome)>) {
        let settled: Vec<_> = {
            let mut waiting = self.bridge.waiting.lock().unwrap();
            outcomes
                .filter_map(|(seq, outcome)| Some((waiting.remove(&seq)?, outcome)))
                .collect()
        };
        let single = settled.len() == 1;
        // Woken one by one from this thread, the first job's task could start (and write its
        // result alone) before the others are woken. Woken together from the runtime's
        // thread, they all queue their results before the finishing call leaves.
        let wake = move || {
            for (tx, outcome) in settled {
                let _ = tx.send(outcome);
            }
        };
        if single {
            wake();
        } else {
            spawn(async move { wake() });
        }
    }
}

struct Handler {
    bridge: Arc<Bridge>,
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
        let bridge = Arc::clone(&self.bridge);
        Box::pin(async move {
            let seq = bridge.next_seq.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            bridge.waiting.lock().unwrap().insert(seq, tx);
            let payload = JobPayload {
                seq,
                id: job.id,
                token: job.token,
                fields_json: serde_json::to_string(&job.fields).unwrap_or_else(|_| "{}".into()),
            };
            bridge.enqueue(|o| o.jobs.push(payload));
            let outcome = match rx.await {
                Ok(o) => o,
                Err(_) => return failed("processor could not be called".into()),
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
            WorkerEvent::Completed { job_id } => WorkerEventPayload {
                event: "completed".into(),
                job_id: Some(job_id),
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
                code: None,
                message: Some(reason),
                will_retry: Some(will_retry),
                fields,
            },
            WorkerEvent::Stalled { job_id } => WorkerEventPayload {
                event: "stalled".into(),
                job_id: Some(job_id),
                code: None,
                message: None,
                will_retry: None,
                fields: None,
            },
            WorkerEvent::Drained => WorkerEventPayload {
                event: "drained".into(),
                job_id: None,
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
                code: Some(code.to_string()),
                message: Some(message),
                will_retry: None,
                fields: None,
            },
        };
        self.bridge.enqueue(|o| o.events.push(payload));
    }
}

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
        let value: serde_json::Value = serde_json::from_str(&options_json)
            .map_err(|e| to_napi(Error::invalid("opts", format!("is not serialisable ({e})"))))?;
        let cfg = WorkerConfig::from_json(&queue_name, &value, |k| std::env::var(k).ok()).napi()?;
        let endpoint = resolve(connection_json.as_deref()).napi()?;
        let bridge = Arc::new(Bridge {
            deliver,
            outbox: Mutex::new(Outbox::default()),
            waiting: Mutex::new(HashMap::new()),
            next_seq: AtomicU32::new(0),
        });
        let handler = Arc::new(Handler {
            bridge: Arc::clone(&bridge),
            cron: Arc::new(cron),
        });
        let inner = within_runtime_if_available(|| Worker::new(&endpoint, cfg, handler)).napi()?;
        Ok(NativeWorker { inner, bridge })
    }

    /// The outcomes of jobs of earlier deliveries (`seqs[i]` settled with `outcomes[i]`),
    /// called by the facade with everything that settled in one tick. Unknown or repeated
    /// sequence numbers are ignored.
    #[napi]
    pub fn complete_many(&self, seqs: Vec<u32>, outcomes: Vec<ProcessorOutcome>) {
        self.settle(seqs.into_iter().zip(outcomes));
    }

    /// `complete_many` for the common case, jobs that completed (`values[i]` is the result
    /// JSON of job `seqs[i]`): two flat arrays cross instead of one object per job.
    #[napi]
    pub fn complete_values(&self, seqs: Vec<u32>, values: Vec<String>) {
        self.settle(seqs.into_iter().zip(values).map(|(seq, value)| {
            (
                seq,
                ProcessorOutcome {
                    kind: "completed".into(),
                    value: Some(value),
                    message: None,
                    stack: None,
                    unrecoverable: None,
                    backoff: None,
                },
            )
        }));
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
