//! The processor's side of a worker: the job it gets, the events it hears, and the
//! [`JobHandler`] trait the binding implements (with ThreadsafeFunctions into JavaScript;
//! tests implement it in plain Rust). The processor's answer is a [`crate::engine::job::Outcome`].

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::engine::job::Outcome;
use crate::engine::scripts::JobHash;

/// A job handed to the processor: the raw hash as stored (data and opts stay JSON text; the
/// JavaScript side parses them).
#[derive(Clone, Debug)]
pub struct ActiveJob {
    /// The job id.
    pub id: String,
    /// The lock token (the processor's own moves need it).
    pub token: String,
    /// The job hash.
    pub fields: JobHash,
    /// Its place in the order the worker took jobs (increasing): the jobs of one fetch are
    /// handed over in this order, which is the queue's, whatever order their tasks run in.
    pub order: u64,
}

/// What a worker tells its listeners (BullMQ's worker events).
#[derive(Clone, Debug)]
pub enum WorkerEvent {
    /// The result is written. (The processor's side already has the value it returned.)
    Completed {
        /// The job id.
        job_id: String,
    },
    /// Every failed attempt, as BullMQ does; `will_retry` tells whether it goes round again.
    /// `fields`: the job hash as activated, when the processor never saw the job (a
    /// deferred failure), so that the listener still gets a job.
    Failed {
        /// The job id.
        job_id: String,
        /// The failed reason.
        reason: String,
        /// The job goes round again (delayed or waiting).
        will_retry: bool,
        /// The backoff delay (ms) when it goes round again through `delayed`.
        delay: Option<u64>,
        /// The job hash, when the processor never saw the job.
        fields: Option<JobHash>,
    },
    /// The stalled checker moved the job back to waiting (or failed it).
    Stalled {
        /// The job id.
        job_id: String,
    },
    /// The queue ran empty (once per empty period).
    Drained,
    /// Ask JavaScript to report its clock (`Date.now()`, to [`crate::engine::util::sync_clock`]):
    /// sent while the clock is mocked and the worker waits for a time to come.
    Clock,
    /// Something failed outside a job's own outcome.
    Error {
        /// The engine error code.
        code: &'static str,
        /// The message.
        message: String,
        /// The job concerned, if any.
        job_id: Option<String>,
    },
}

/// A boxed, sendable future (what [`JobHandler`] methods return).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The processor and the event sink of one worker.
pub trait JobHandler: Send + Sync + 'static {
    /// Run the processor on `job`.
    fn process(&self, job: ActiveJob) -> BoxFuture<Outcome>;
    /// Deliver an event to the worker's listeners.
    fn emit(&self, event: WorkerEvent);
    /// The next run (epoch ms) of a cron job scheduler, as the worker's repeat strategy
    /// computes it from `after_ms`, the activated iteration's `opts.repeat` (`repeat_json`)
    /// and its job name (BullMQ's `repeatStrategy(millis, opts, name)`; by default the first
    /// cron-parser match of `pattern` with `tz`, `startDate`, `endDate`); `Ok(None)` when
    /// there is none. The engine has no cron parser and runs no user code: the binding asks
    /// the JavaScript side. Errors (an invalid pattern, a throwing strategy) are reported,
    /// not retried.
    fn next_cron(
        &self,
        repeat_json: String,
        after_ms: u64,
        job_name: String,
    ) -> BoxFuture<std::result::Result<Option<u64>, String>> {
        let _ = (repeat_json, after_ms, job_name);
        Box::pin(async { Err("this worker cannot compute cron schedules".to_string()) })
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
/// One worker in `health().workers`.
pub struct WorkerHealth {
    /// The queue's name.
    pub queue: String,
    /// The current concurrency.
    pub concurrency: usize,
    /// Jobs in flight.
    pub active: usize,
    /// Jobs completed by this worker.
    pub completed: u64,
    /// Jobs failed for good by this worker.
    pub failed: u64,
    /// Started and not closing.
    pub running: bool,
    /// Paused locally.
    pub paused: bool,
}
