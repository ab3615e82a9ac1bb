//! The worker: concurrency slots per worker, activation on the shared command connection,
//! waiting through the process-wide dispatcher, finish + fetch-next in one script call,
//! retries and backoff, one lock-renewal loop for the process and one stalled checker per
//! queue.
//!
//! The processor itself lives on the other side of a [`JobHandler`] (the binding implements
//! it with a ThreadsafeFunction into JavaScript); the engine only sees plain outcomes.
//!
//! Files: this one holds the handle (`Worker`) and its state; `config.rs` the options,
//! `handler.rs` the processor's side, `run.rs` the fetch loop and a job's way through it,
//! `finish.rs` the coalesced finishing calls, `runtime.rs` the process-wide pieces.

pub mod config;
mod finish;
pub mod handler;
mod observe;
mod run;
mod runtime;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use crate::engine::job::Outcome;
pub use config::WorkerConfig;
pub use handler::{ActiveJob, BoxFuture, JobHandler, WorkerEvent, WorkerHealth};
pub use observe::in_flight_by_queue;
pub use runtime::{close_all, health};

use self::finish::FinishQueue;
use self::runtime::runtime;
use crate::engine::connection::Dispatcher;
use crate::engine::error::{Error, Result};
use crate::engine::handle::QueueHandle;
use crate::engine::keys::QueueKeys;
use crate::engine::options::{Endpoint, EndpointKey};
use crate::engine::scripts::{self, FetchOpts, Fetched};
use crate::engine::util::{now_ms, uuid_v4};

/// Pause after a failed Redis call in the fetch loop before trying again.
const LOOP_ERROR_DELAY: Duration = Duration::from_millis(250);

struct ActiveEntry {
    token: String,
    renewed_at: Instant,
    /// The processor already moved the job out of `active` (delayed, waiting-children):
    /// its lock is gone and must not be renewed.
    released: bool,
    /// The processor is done and the outcome is being written. Its lock is still renewed
    /// (the write may wait out an outage), but a renewal that finds it gone says nothing:
    /// the write itself checks the lock and reports a real loss, and a renewal that queued
    /// behind a successful write would report a loss that never happened.
    writing: bool,
}

impl ActiveEntry {
    /// A job just taken with `token`: its lock is fresh.
    fn new(token: String) -> Self {
        ActiveEntry {
            token,
            renewed_at: Instant::now(),
            released: false,
            writing: false,
        }
    }
}

#[derive(Default)]
struct State {
    started: bool,
    paused: bool,
    closing: bool,
    forced: bool,
    drained: bool,
    announced_drained: bool,
    next_delayed_due: u64,
    limit_until: Option<Instant>,
    active: HashMap<String, ActiveEntry>,
    /// An activation call is in flight: the jobs it takes are active in Redis before they are
    /// in `active`, so a graceful pause or close must wait for it too (as BullMQ's does).
    fetching: bool,
}

/// A worker's shared state (the handle, the run loop and the runtime hold it).
pub struct WorkerInner {
    cfg: WorkerConfig,
    handle: QueueHandle,
    endpoint_key: EndpointKey,
    endpoint_display: String,
    dispatcher: Arc<Dispatcher>,
    concurrency: AtomicUsize,
    handler: Arc<dyn JobHandler>,
    state: Mutex<State>,
    finishing: Mutex<FinishQueue>,
    wake: Notify,
    active_count: watch::Sender<usize>,
    closed: watch::Sender<bool>,
    closing: watch::Sender<bool>,
    token_base: String,
    token_seq: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    main: Mutex<Option<JoinHandle<()>>>,
    /// Finishing calls numbered as they leave, and the number whose turn it is to hand its
    /// results on (see `finish_batch`).
    pub(super) finish_tickets: AtomicU64,
    pub(super) finish_turn: watch::Sender<u64>,
    /// The process view's counters of this worker's queue (shared with its other workers).
    stats: Arc<crate::engine::observe::QueueStats>,
}

/// A worker (cheap to clone: every clone is the same worker). Derefs to its
/// [`QueueHandle`] for the job operations a processor may call.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<WorkerInner>,
}

impl Deref for Worker {
    type Target = QueueHandle;

    fn deref(&self) -> &QueueHandle {
        &self.inner.handle
    }
}

impl Worker {
    /// Create a worker on the process-wide pair of `endpoint`. Does not start fetching until
    /// [`Worker::run`]. Must be called inside the tokio runtime.
    pub fn new(
        endpoint: &Endpoint,
        cfg: WorkerConfig,
        handler: Arc<dyn JobHandler>,
    ) -> Result<Self> {
        config::validate(&cfg)?;
        let handle = QueueHandle::new(endpoint, QueueKeys::new(&cfg.prefix, &cfg.queue), false)?;
        let rt = runtime();
        let dispatcher = rt.dispatcher_for(handle.blocking_route());
        let stats = crate::engine::observe::queue_stats(handle.keys().qualified_name());
        let inner = Arc::new(WorkerInner {
            stats,
            handle,
            endpoint_key: endpoint.key(),
            endpoint_display: endpoint.display(),
            concurrency: AtomicUsize::new(cfg.concurrency),
            cfg,
            dispatcher,
            handler,
            state: Mutex::new(State::default()),
            finishing: Mutex::new(FinishQueue::default()),
            wake: Notify::new(),
            active_count: watch::Sender::new(0),
            closed: watch::Sender::new(false),
            closing: watch::Sender::new(false),
            token_base: uuid_v4(),
            token_seq: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            main: Mutex::new(None),
            finish_tickets: AtomicU64::new(0),
            finish_turn: watch::Sender::new(0),
        });
        rt.workers.lock().unwrap().push(Arc::downgrade(&inner));
        if let Some(pair) = inner.handle.single_pair() {
            observe::refresh_served(&pair);
        }
        Ok(Worker { inner })
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.inner.cfg.queue
    }

    /// Start fetching (idempotent).
    pub fn run(&self) {
        let me = &self.inner;
        {
            let mut st = me.state.lock().unwrap();
            if st.started || st.closing {
                return;
            }
            st.started = true;
        }
        let rt = runtime();
        rt.ensure_renewer();
        if !me.cfg.skip_stalled_check {
            rt.ensure_stalled_checker(me);
        }
        let task = tokio::spawn(Arc::clone(me).fetch_loop());
        *me.main.lock().unwrap() = Some(task);
    }

    /// Started, not closing, and on a pair that has not given up (see [`WorkerInner::running`]).
    pub fn is_running(&self) -> bool {
        self.inner.running(&self.inner.state.lock().unwrap())
    }

    /// Paused locally ([`Worker::pause`]).
    pub fn is_paused(&self) -> bool {
        self.inner.state.lock().unwrap().paused
    }

    /// Change the number of jobs processed at once.
    pub fn set_concurrency(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::invalid("concurrency", config::CONCURRENCY_RULE));
        }
        self.inner.concurrency.store(n, Ordering::Relaxed);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Run the stalled check of this worker's queue now (see `runtime::move_stalled_now`);
    /// the ids of the jobs moved back to waiting (or failed).
    pub async fn move_stalled_jobs_to_wait(&self) -> Result<Vec<String>> {
        runtime::move_stalled_now(&self.inner).await
    }

    /// The number of jobs processed at once.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency.load(Ordering::Relaxed)
    }

    /// Stop fetching; unless `do_not_wait_active`, wait for the jobs in flight.
    pub async fn pause(&self, do_not_wait_active: bool) {
        self.inner.state.lock().unwrap().paused = true;
        self.inner.wake.notify_one();
        if !do_not_wait_active {
            self.inner.wait_idle().await;
        }
    }

    /// Fetch again after [`Worker::pause`].
    pub fn resume(&self) {
        self.inner.state.lock().unwrap().paused = false;
        self.inner.wake.notify_one();
    }

    /// Graceful: stop fetching, let in-flight jobs finish and their results be written.
    /// Forced: stop at once; unfinished jobs keep their locks until they expire and the
    /// stalled checker (of any worker) moves them back. Idempotent.
    pub async fn close(&self, force: bool) {
        let me = &self.inner;
        {
            let mut st = me.state.lock().unwrap();
            st.closing = true;
            st.forced |= force;
        }
        me.closing.send_replace(true);
        me.wake.notify_one();
        if !force {
            me.wait_idle().await;
        }
        let main = me.main.lock().unwrap().take();
        if let Some(task) = main {
            let _ = task.await;
        }
        me.closed.send_replace(true);
        if let Some(pair) = me.handle.single_pair() {
            observe::refresh_served(&pair);
        }
    }

    /// This worker in `health().workers`.
    pub fn health(&self) -> WorkerHealth {
        self.inner.health()
    }

    /// The processor's own `job.moveToDelayed(timestamp)`: does not count as an attempt.
    pub async fn move_to_delayed(&self, job_id: &str, token: &str, timestamp: u64) -> Result<()> {
        let mut conn = self.conn().await?;
        let now = now_ms();
        let delay = timestamp.saturating_sub(now);
        scripts::move_to_delayed(
            &mut conn,
            self.keys(),
            job_id,
            token,
            now,
            delay,
            true,
            None,
            None,
        )
        .await?;
        self.inner.released(job_id, token);
        Ok(())
    }

    /// The processor's own `job.moveToWaitingChildren(token, {child})`: true when the job
    /// moved to waiting-children (the processor then throws WaitingChildrenError), false
    /// when it has no pending child (it stays active). `child_key` is a full job key.
    pub async fn move_to_waiting_children(
        &self,
        job_id: &str,
        token: &str,
        child_key: Option<&str>,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        let moved = scripts::move_to_waiting_children(
            &mut conn,
            self.keys(),
            job_id,
            token,
            child_key,
            now_ms(),
        )
        .await?;
        if moved {
            self.inner.released(job_id, token);
        }
        Ok(moved)
    }

    /// A manual rate limit (`worker.rateLimit(ms)`): the queue's limiter key is set to
    /// BullMQ's "limit reached" value for `ms`, which stops activations in every worker that
    /// knows a max (a limiter option or a global limit), this one included.
    pub async fn rate_limit(&self, ms: u64) -> Result<()> {
        if ms == 0 {
            return Err(Error::invalid(
                "rateLimit",
                "expire time must be a positive number of ms",
            ));
        }
        // Only the queue's limiter key, as BullMQ: this worker learns of the limit from Redis
        // (the TTL a fetch reports when a max is known, or the requeue of a RateLimitError),
        // so `queue.removeRateLimitKey()` counts for it as for every other worker.
        let mut conn = self.conn().await?;
        scripts::set_rate_limit(&mut conn, self.keys(), ms).await?;
        Ok(())
    }
}

impl WorkerInner {
    async fn closing_requested(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    fn next_token(&self) -> String {
        format!(
            "{}:{}",
            self.token_base,
            self.token_seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn health(&self) -> WorkerHealth {
        let st = self.state.lock().unwrap();
        WorkerHealth {
            queue: self.cfg.queue.clone(),
            concurrency: self.concurrency.load(Ordering::Relaxed),
            active: st.active.len(),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            running: self.running(&st),
            paused: st.paused,
        }
    }

    /// What `isRunning()` and `health().workers[].running` both say, so that they agree with
    /// the pair's status at every moment: a pair that gave up for good (a server too old) is
    /// `closed`, and a worker on it runs nothing.
    fn running(&self, st: &State) -> bool {
        st.started && !st.closing && !self.handle.connection_closed()
    }

    async fn wait_idle(&self) {
        let mut rx = self.active_count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    fn fetch_opts<'a>(&'a self, tokens: &'a [String]) -> FetchOpts<'a> {
        FetchOpts {
            lock_duration_ms: self.cfg.lock_duration_ms,
            limiter: self.cfg.limiter,
            name: self.cfg.name.as_deref(),
            tokens,
        }
    }

    fn set_active(&self, st: &mut State) {
        self.active_count
            .send_replace(st.active.len() + usize::from(st.fetching));
    }

    /// The processor moved job `id` out of `active` itself: stop renewing its lock.
    fn released(&self, id: &str, token: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some(e) = st.active.get_mut(id).filter(|e| e.token == token) {
            e.released = true;
        }
    }

    /// Fetch nothing for `ms` (at most one maximumRateLimitDelay at a time, as BullMQ: the
    /// fetch after it asks Redis again). Never shortens a longer local limit.
    fn limit_for(&self, ms: u64) {
        let until =
            Instant::now() + Duration::from_millis(ms.min(self.cfg.max_rate_limit_delay_ms));
        let mut st = self.state.lock().unwrap();
        if st.limit_until.is_none_or(|u| u < until) {
            st.limit_until = Some(until);
        }
    }

    /// Remember what an empty fetch said about the queue.
    fn note_empty(&self, f: &Fetched) {
        let mut st = self.state.lock().unwrap();
        if f.rate_limit_ttl > 0 {
            let ttl = Duration::from_millis(f.rate_limit_ttl.min(self.cfg.max_rate_limit_delay_ms));
            st.limit_until = Some(Instant::now() + ttl);
            return;
        }
        st.drained = true;
        st.next_delayed_due = f.next_delayed_due;
        if !st.announced_drained {
            st.announced_drained = true;
            drop(st);
            self.handler.emit(WorkerEvent::Drained);
        }
    }

    fn emit_error(&self, err: &Error, job_id: Option<&str>) {
        self.handler.emit(WorkerEvent::Error {
            code: err.code(),
            message: err.to_string(),
            job_id: job_id.map(str::to_string),
        });
    }
}
