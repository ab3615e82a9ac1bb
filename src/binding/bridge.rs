//! The bridge between one engine worker and its facade object in JavaScript: jobs and events
//! go out in coalesced deliveries through one ThreadsafeFunction; outcomes come back through
//! plain synchronous calls (`completeValues` / `completeMany`). [`Handler`] is the engine's
//! [`JobHandler`] for a JavaScript processor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use napi::Status;
use napi::bindgen_prelude::{
    Promise, ToNapiValue, TypeName, ValueType, within_runtime_if_available,
};
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::sync::oneshot;

use crate::engine::observe;
use crate::engine::worker::{ActiveJob, BoxFuture, JobHandler, Outcome, WorkerEvent};

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

/// The kind of a `ProcessorOutcome` (the strings the facade writes).
#[napi(string_enum = "lowercase")]
#[derive(PartialEq, Eq, Debug)]
pub enum OutcomeKind {
    Completed,
    Failed,
    Moved,
    Ratelimited,
}

/// What the facade's processor wrapper resolves with: the JavaScript shape of the engine's
/// one outcome type, `job::Outcome` (a napi object cannot be an enum with data).
#[napi(object)]
pub struct ProcessorOutcome {
    pub kind: OutcomeKind,
    /// Result JSON ("completed").
    pub value: Option<String>,
    pub message: Option<String>,
    pub stack: Option<String>,
    pub unrecoverable: Option<bool>,
    /// Delay from a custom backoffStrategy (-1 = do not retry).
    pub backoff: Option<f64>,
}

impl From<ProcessorOutcome> for Outcome {
    fn from(o: ProcessorOutcome) -> Self {
        match o.kind {
            OutcomeKind::Completed => Outcome::Completed {
                returnvalue: o.value.unwrap_or_else(|| "null".into()),
            },
            OutcomeKind::Moved => Outcome::MovedByProcessor,
            OutcomeKind::Ratelimited => Outcome::RateLimited,
            OutcomeKind::Failed => Outcome::Failed {
                message: o.message.unwrap_or_default(),
                stack: o.stack,
                unrecoverable: o.unrecoverable.unwrap_or(false),
                custom_backoff: o.backoff.map(|b| b as i64),
            },
        }
    }
}

/// The name of a `WorkerEventPayload` (BullMQ's worker event names). Like `OutcomeKind`, a
/// string enum whose variants mirror an engine enum's (`WorkerEvent`): napi objects cannot
/// carry enums with data, so each crosses as a name plus optional fields.
#[napi(string_enum = "lowercase")]
#[derive(PartialEq, Eq, Debug)]
pub enum WorkerEventName {
    Completed,
    Failed,
    Stalled,
    Drained,
    Error,
    Clock,
}

#[napi(object)]
pub struct WorkerEventPayload {
    pub event: WorkerEventName,
    pub job_id: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub will_retry: Option<bool>,
    /// "failed" of a job retried after a backoff: the delay (ms), which BullMQ's job.delay shows.
    pub delay: Option<f64>,
    /// "failed" of a job the processor never saw (deferred failure): its hash.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

impl WorkerEventPayload {
    fn new(event: WorkerEventName, job_id: Option<String>) -> Self {
        WorkerEventPayload {
            event,
            job_id,
            code: None,
            message: None,
            will_retry: None,
            delay: None,
            fields: None,
        }
    }
}

impl From<WorkerEvent> for WorkerEventPayload {
    fn from(event: WorkerEvent) -> Self {
        use WorkerEventName as N;
        match event {
            WorkerEvent::Completed { job_id } => Self::new(N::Completed, Some(job_id)),
            WorkerEvent::Failed {
                job_id,
                reason,
                will_retry,
                delay,
                fields,
            } => WorkerEventPayload {
                message: Some(reason),
                will_retry: Some(will_retry),
                delay: delay.map(|d| d as f64),
                fields,
                ..Self::new(N::Failed, Some(job_id))
            },
            WorkerEvent::Stalled { job_id } => Self::new(N::Stalled, Some(job_id)),
            WorkerEvent::Drained => Self::new(N::Drained, None),
            WorkerEvent::Clock => Self::new(N::Clock, None),
            WorkerEvent::Error {
                code,
                message,
                job_id,
            } => WorkerEventPayload {
                code: Some(code.to_string()),
                message: Some(message),
                ..Self::new(N::Error, job_id)
            },
        }
    }
}

pub type DeliverFn = ThreadsafeFunction<Counted, (), Counted, Status, false, true>;

/// A [`Delivery`] on its way to the JS thread, counted in the process view's bridge backlog
/// (`observe::Counters::handler_backlog`) from the call until it is turned into a JS value
/// there, or dropped undelivered.
pub struct Counted {
    delivery: Option<Delivery>,
    jobs: i64,
}

impl Counted {
    fn new(delivery: Delivery) -> Self {
        let jobs = delivery.jobs.as_ref().map_or(0, |j| j.len() as i64);
        observe::counters()
            .handler_backlog
            .fetch_add(jobs, Ordering::Relaxed);
        Counted {
            delivery: Some(delivery),
            jobs,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        observe::counters()
            .handler_backlog
            .fetch_sub(self.jobs, Ordering::Relaxed);
    }
}

impl TypeName for Counted {
    fn type_name() -> &'static str {
        Delivery::type_name()
    }

    fn value_type() -> ValueType {
        Delivery::value_type()
    }
}

impl ToNapiValue for Counted {
    unsafe fn to_napi_value(env: sys::napi_env, mut val: Self) -> napi::Result<sys::napi_value> {
        let delivery = val.delivery.take().unwrap_or(Delivery {
            events: None,
            jobs: None,
        });
        // SAFETY: called by napi on the JS thread with its env, as Delivery's own is.
        unsafe { Delivery::to_napi_value(env, delivery) }
    }
}
/// `(requestJson) => Promise<replyJson>`: request `{"repeat": {...}, "after": ms, "name":
/// jobName}`, reply `{"next": ms | null}` or `{"error": message}`. The facade runs the
/// worker's repeat strategy (cron-parser by default, or the user's `settings.repeatStrategy`,
/// which BullMQ awaits, hence the Promise).
pub type CronFn = ThreadsafeFunction<String, Promise<String>, String, Status, false, true>;

/// The JavaScript side of one worker: what is waiting to be delivered, and the jobs whose
/// outcome is awaited.
///
/// Jobs and events are coalesced: the first item schedules one flush, and everything queued
/// before it runs goes in the same call. At concurrency N a batch activation becomes one
/// wake-up of the JS thread instead of N, and a job fetched by the finishing call of the one
/// before travels together with that job's `completed`. Outcomes come back through plain
/// synchronous calls (`completeValues` / `completeMany`, one per tick) rather than a Promise
/// per job, which napi would have to wrap in two new JS callbacks each time.
pub struct Bridge {
    /// The two callbacks into the facade; `None` once released (see [`Bridge::release`]).
    deliver: Mutex<Option<DeliverFn>>,
    cron: Mutex<Option<Arc<CronFn>>>,
    outbox: Mutex<Outbox>,
    waiting: Mutex<HashMap<u32, oneshot::Sender<Outcome>>>,
    next_seq: AtomicU32,
}

#[derive(Default)]
struct Outbox {
    events: Vec<WorkerEventPayload>,
    /// With each job its `ActiveJob::order`: the tasks of one batch queue their jobs in the
    /// order the runtime polls them (the last spawned often first), not the queue's.
    jobs: Vec<(u64, JobPayload)>,
    flush_scheduled: bool,
}

impl Bridge {
    pub fn new(deliver: DeliverFn, cron: CronFn) -> Arc<Self> {
        Arc::new(Bridge {
            deliver: Mutex::new(Some(deliver)),
            cron: Mutex::new(Some(Arc::new(cron))),
            outbox: Mutex::new(Outbox::default()),
            waiting: Mutex::new(HashMap::new()),
            next_seq: AtomicU32::new(0),
        })
    }

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
            // job a finishing call fetched) do so first: until a yield brings nothing new, so
            // that a batch whose tasks run on several threads still crosses whole (and in
            // order, see flush).
            let mut seen = 0;
            loop {
                crate::engine::util::requeue().await;
                let queued = {
                    let outbox = me.outbox.lock().unwrap();
                    outbox.events.len() + outbox.jobs.len()
                };
                if queued == seen {
                    break;
                }
                seen = queued;
            }
            me.flush();
        });
    }

    fn flush(&self) {
        let (events, mut ordered) = {
            let mut outbox = self.outbox.lock().unwrap();
            outbox.flush_scheduled = false;
            (
                std::mem::take(&mut outbox.events),
                std::mem::take(&mut outbox.jobs),
            )
        };
        // BullMQ starts the jobs it took in queue order.
        ordered.sort_by_key(|(order, _)| *order);
        let jobs: Vec<JobPayload> = ordered.into_iter().map(|(_, job)| job).collect();
        if events.is_empty() && jobs.is_empty() {
            return;
        }
        let seqs: Vec<u32> = jobs.iter().map(|j| j.seq).collect();
        let delivery = Delivery {
            events: (!events.is_empty()).then_some(events),
            jobs: (!jobs.is_empty()).then_some(jobs),
        };
        let status = match self.deliver.lock().unwrap().as_ref() {
            Some(deliver) => deliver.call(
                Counted::new(delivery),
                ThreadsafeFunctionCallMode::NonBlocking,
            ),
            None => Status::Closing,
        };
        if status != Status::Ok {
            // JavaScript is gone (environment shutting down) or the worker released its
            // callbacks: release the waiting jobs.
            let mut waiting = self.waiting.lock().unwrap();
            for seq in seqs {
                waiting.remove(&seq);
            }
        }
    }

    /// Deliver what is queued now, then drop both callbacks: once a worker has closed, nothing
    /// of it may hold a handle in the JS environment (weak handles still show as open to
    /// async_hooks, and so to `jest --detectOpenHandles`, until they are released). The
    /// delivery call is queued before the release, and Node runs queued calls before it
    /// finalizes the function. Later events are dropped; a later cron request fails.
    pub fn release(&self) {
        self.flush();
        drop(self.deliver.lock().unwrap().take());
        drop(self.cron.lock().unwrap().take());
    }

    /// The outcomes of jobs of earlier deliveries, by sequence number. Unknown or repeated
    /// sequence numbers are ignored.
    pub fn settle(&self, outcomes: impl Iterator<Item = (u32, Outcome)>) {
        let settled: Vec<_> = {
            let mut waiting = self.waiting.lock().unwrap();
            outcomes
                .filter_map(|(seq, outcome)| Some((waiting.remove(&seq)?, outcome)))
                .collect()
        };
        let single = settled.len() == 1;
        // Woken one by one from this thread, the first job's task could start (and write its
        // result alone) before the others are woken. Woken together from the runtime's
        // thread, they all queue their results before the finishing call leaves. tokio runs
        // the task woken last first (its LIFO slot) and the others in the order they were
        // woken: the first outcome is woken last, so the tasks run, and queue their results,
        // in the order JavaScript handed them over (the finishing call and its events keep
        // that order; see FinishWork::event).
        let wake = move || {
            let mut settled = settled.into_iter();
            let first = settled.next();
            for (tx, outcome) in settled {
                let _ = tx.send(outcome);
            }
            if let Some((tx, outcome)) = first {
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

/// The engine's [`JobHandler`] for a JavaScript processor.
pub struct Handler {
    pub bridge: Arc<Bridge>,
}

impl JobHandler for Handler {
    fn process(&self, job: ActiveJob) -> BoxFuture<Outcome> {
        let bridge = Arc::clone(&self.bridge);
        Box::pin(async move {
            let seq = bridge.next_seq.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            bridge.waiting.lock().unwrap().insert(seq, tx);
            let payload = JobPayload {
                seq,
                id: job.id,
                token: job.token,
                // Ordered by field name (see `JobHash`): one V8 hidden class per job shape.
                fields_json: serde_json::to_string(&job.fields).unwrap_or_else(|_| "{}".into()),
            };
            bridge.enqueue(|o| o.jobs.push((job.order, payload)));
            rx.await
                .unwrap_or_else(|_| Outcome::failed("processor could not be called"))
        })
    }

    fn next_cron(
        &self,
        repeat_json: String,
        after_ms: u64,
        job_name: String,
    ) -> BoxFuture<std::result::Result<Option<u64>, String>> {
        let cron = self.bridge.cron.lock().unwrap().clone();
        Box::pin(async move {
            let cron = cron.ok_or("the worker is closed")?;
            let repeat: serde_json::Value =
                serde_json::from_str(&repeat_json).map_err(|e| e.to_string())?;
            let request =
                serde_json::json!({ "repeat": repeat, "after": after_ms, "name": job_name })
                    .to_string();
            let unreachable = |e: napi::Error| format!("cron could not be computed: {}", e.reason);
            let reply = cron
                .call_async(request)
                .await
                .map_err(unreachable)?
                .await
                .map_err(unreachable)?;
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
        let payload = WorkerEventPayload::from(event);
        self.bridge.enqueue(|o| o.events.push(payload));
    }
}
