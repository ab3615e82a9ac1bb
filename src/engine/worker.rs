//! The worker runtime: concurrency slots per worker, activation on the shared command
//! connection, waiting through the process-wide dispatcher, finish + fetch-next in one script
//! call, retries and backoff, one lock-renewal loop for the process and one stalled checker
//! per queue.
//!
//! The processor itself lives on the other side of a [`JobHandler`] (the binding implements
//! it with a ThreadsafeFunction into JavaScript); the engine only sees plain outcomes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use super::connection::{self, ConnectionEvent, EventKind, Pair};
use super::dispatcher::{Dispatcher, Wake};
use super::error::{Error, Result};
use super::job::{self, JobOpts, NextIteration, RetryDecision};
use super::keys::QueueKeys;
use super::options::{Endpoint, EndpointKey};
use super::scripts::{
    self, FetchOpts, Fetched, FinishJob, KeepJobs, Outcome, RawJob, SchedulerNext,
};
use super::util::{now_ms, random_unit, uuid_v4};

/// The limiter value of a manual rate limit (`Number.MAX_SAFE_INTEGER`, as BullMQ sets it):
/// above any max, so every worker that knows a max sees the queue as limited.
const RATE_LIMITED: u64 = 9_007_199_254_740_991;
/// Longest single sleep while rate limited (BullMQ's maximumRateLimitDelay).
const MAX_RATE_LIMIT_SLEEP: Duration = Duration::from_secs(30);
/// Pause after a failed Redis call in the fetch loop before trying again.
const LOOP_ERROR_DELAY: Duration = Duration::from_millis(250);
/// Finishing a job is retried this often across a reconnect before it is left to the
/// stalled checker.
const FINISH_ATTEMPTS: u32 = 3;
/// Most jobs finished by one script call (bounds how long the call holds Redis).
const MAX_FINISH_BATCH: usize = 64;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub queue: String,
    pub prefix: String,
    pub concurrency: usize,
    pub lock_duration_ms: u64,
    pub stalled_interval_ms: u64,
    pub max_stalled_count: u64,
    pub drain_delay_ms: u64,
    pub remove_on_complete: KeepJobs,
    pub remove_on_fail: KeepJobs,
    pub limiter: Option<(u64, u64)>,
    pub name: Option<String>,
    pub max_started_attempts: Option<u64>,
    pub skip_stalled_check: bool,
}

impl WorkerConfig {
    pub fn new(queue: &str) -> Self {
        WorkerConfig {
            queue: queue.to_string(),
            prefix: "bull".into(),
            concurrency: 1,
            lock_duration_ms: 30_000,
            stalled_interval_ms: 30_000,
            max_stalled_count: 1,
            drain_delay_ms: 5_000,
            remove_on_complete: job::KEEP_ALL,
            remove_on_fail: job::KEEP_ALL,
            limiter: None,
            name: None,
            max_started_attempts: None,
            skip_stalled_check: false,
        }
    }
}

/// A job handed to the processor: the raw hash as stored (data and opts stay JSON text; the
/// JavaScript side parses them).
#[derive(Clone, Debug)]
pub struct ActiveJob {
    pub id: String,
    pub token: String,
    pub fields: HashMap<String, String>,
}

/// What the processor made of a job.
#[derive(Clone, Debug)]
pub enum ProcessOutcome {
    /// `returnvalue` is JSON text (`null` for undefined).
    Completed { returnvalue: String },
    Failed {
        message: String,
        stack: Option<String>,
        unrecoverable: bool,
        /// What a custom `backoffStrategy` returned, for non-builtin backoff types.
        custom_backoff: Option<i64>,
    },
    /// The processor moved the job itself (`moveToDelayed` + DelayedError,
    /// `moveToWaitingChildren` + WaitingChildrenError): nothing to write.
    MovedByProcessor,
    /// The processor hit a manual rate limit (RateLimitError): the job goes back to waiting
    /// without counting the attempt, and this worker fetches nothing until the limit ends.
    RateLimited,
}

#[derive(Clone, Debug)]
pub enum WorkerEvent {
    /// The result is written. (The processor's side already has the value it returned.)
    Completed {
        job_id: String,
    },
    /// Every failed attempt, as BullMQ does; `will_retry` tells whether it goes round again.
    /// `fields`: the job hash as activated, when the processor never saw the job (a
    /// deferred failure), so that the listener still gets a job.
    Failed {
        job_id: String,
        reason: String,
        will_retry: bool,
        fields: Option<HashMap<String, String>>,
    },
    Stalled {
        job_id: String,
    },
    Drained,
    Error {
        code: &'static str,
        message: String,
        job_id: Option<String>,
    },
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub trait JobHandler: Send + Sync + 'static {
    fn process(&self, job: ActiveJob) -> BoxFuture<ProcessOutcome>;
    fn emit(&self, event: WorkerEvent);
    /// The next run (epoch ms) of a cron job scheduler: the first match of the repeat
    /// options' `pattern` (with `tz`, `startDate`, `endDate`, as BullMQ passes them to
    /// cron-parser) after `after_ms`; `Ok(None)` when there is none. `repeat_json` is the
    /// activated iteration's `opts.repeat`. The engine has no cron parser: the binding asks
    /// the JavaScript side. Errors (an invalid pattern) are reported, not retried.
    fn next_cron(
        &self,
        repeat_json: String,
        after_ms: u64,
    ) -> BoxFuture<std::result::Result<Option<u64>, String>> {
        let _ = (repeat_json, after_ms);
        Box::pin(async { Err("this worker cannot compute cron schedules".to_string()) })
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerHealth {
    pub queue: String,
    pub concurrency: usize,
    pub active: usize,
    pub completed: u64,
    pub failed: u64,
    pub running: bool,
    pub paused: bool,
}

struct ActiveEntry {
    token: String,
    renewed_at: Instant,
    /// The processor already moved the job out of `active` (delayed, waiting-children):
    /// its lock is gone and must not be renewed.
    released: bool,
}

/// A job's final outcome, to be written by a finishing call.
struct FinishWork {
    job_id: String,
    token: String,
    outcome: FinalOutcome,
    keep: KeepJobs,
    attempts: u64,
    /// Take the next job for this slot in the same call.
    fetch: bool,
}

/// A [`FinishWork`] waiting for the next finishing call.
struct FinishReq {
    work: FinishWork,
    /// The job's own result, and the job fetched for its slot (delivered even when the
    /// job's own result is an error: it is active now and must run).
    reply: oneshot::Sender<(Result<()>, Option<RawJob>)>,
}

enum FinalOutcome {
    Completed { returnvalue: String },
    Failed { reason: String, stacktrace: String },
}

/// Final outcomes are coalesced: while one finishing call is in flight, the outcomes that
/// arrive queue up and go together in the next call (one script call, one round trip and
/// one fetch for all of them). With a single slot nothing waits: the call leaves at once.
#[derive(Default)]
struct FinishQueue {
    pending: Vec<FinishReq>,
    running: bool,
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
}

pub struct WorkerInner {
    cfg: WorkerConfig,
    keys: QueueKeys,
    endpoint_key: EndpointKey,
    endpoint_display: String,
    pair: Arc<Pair>,
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
}

/// Handle owned by the binding.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<WorkerInner>,
}

impl Worker {
    /// Create a worker on the process-wide pair of `endpoint`. Does not start fetching until
    /// [`Worker::run`]. Must be called inside the tokio runtime.
    pub fn new(
        endpoint: &Endpoint,
        cfg: WorkerConfig,
        handler: Arc<dyn JobHandler>,
    ) -> Result<Self> {
        validate(&cfg)?;
        let pair = connection::global().pair(endpoint)?;
        let rt = runtime();
        let dispatcher = rt.dispatcher_for(&pair);
        let inner = Arc::new(WorkerInner {
            keys: QueueKeys::new(&cfg.prefix, &cfg.queue),
            endpoint_key: endpoint.key(),
            endpoint_display: endpoint.display(),
            concurrency: AtomicUsize::new(cfg.concurrency),
            cfg,
            pair,
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
        });
        rt.workers.lock().unwrap().push(Arc::downgrade(&inner));
        Ok(Worker { inner })
    }

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

    /// Resolves once both sockets of the pair are up.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<()> {
        self.inner.pair.wait_ready(timeout).await
    }

    pub fn is_running(&self) -> bool {
        let st = self.inner.state.lock().unwrap();
        st.started && !st.closing
    }

    pub fn is_paused(&self) -> bool {
        self.inner.state.lock().unwrap().paused
    }

    pub fn set_concurrency(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::invalid("concurrency", CONCURRENCY_RULE));
        }
        self.inner.concurrency.store(n, Ordering::Relaxed);
        self.inner.wake.notify_one();
        Ok(())
    }

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
    }

    pub fn health(&self) -> WorkerHealth {
        self.inner.health()
    }

    fn keys(&self) -> &QueueKeys {
        &self.inner.keys
    }

    pub async fn update_progress(&self, job_id: &str, progress_json: &str) -> Result<()> {
        let mut conn = self.inner.pair.command().await?;
        scripts::update_progress(&mut conn, self.keys(), job_id, progress_json).await
    }

    pub async fn add_log(&self, job_id: &str, line: &str, keep_logs: Option<u64>) -> Result<u64> {
        let mut conn = self.inner.pair.command().await?;
        scripts::add_log(&mut conn, self.keys(), job_id, line, keep_logs).await
    }

    pub async fn update_data(&self, job_id: &str, data_json: &str) -> Result<()> {
        let mut conn = self.inner.pair.command().await?;
        scripts::update_data(&mut conn, self.keys(), job_id, data_json).await
    }

    /// The processor's own `job.moveToDelayed(timestamp)`: does not count as an attempt.
    pub async fn move_to_delayed(&self, job_id: &str, token: &str, timestamp: u64) -> Result<()> {
        let mut conn = self.inner.pair.command().await?;
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
        let mut conn = self.inner.pair.command().await?;
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
    /// knows a max (a limiter option or a global limit); this worker also stops fetching
    /// until then.
    pub async fn rate_limit(&self, ms: u64) -> Result<()> {
        if ms == 0 {
            return Err(Error::invalid(
                "rateLimit",
                "expire time must be a positive number of ms",
            ));
        }
        let mut conn = self.inner.pair.command().await?;
        redis::cmd("SET")
            .arg(&self.keys().limiter)
            .arg(RATE_LIMITED)
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::from_redis(&e, None))?;
        self.inner.limit_for(ms);
        Ok(())
    }

    /// Children results of a flow parent: child job key -> returnvalue JSON.
    pub async fn children_values(&self, job_id: &str) -> Result<HashMap<String, String>> {
        let mut conn = self.inner.pair.command().await?;
        scripts::children_values(&mut conn, self.keys(), job_id).await
    }

    /// Pending and processed children counts of a flow parent.
    pub async fn dependencies_count(&self, job_id: &str) -> Result<(u64, u64)> {
        let mut conn = self.inner.pair.command().await?;
        scripts::dependencies_count(&mut conn, self.keys(), job_id).await
    }
}

/// The text of an option's range rule: BullMQ's words where BullMQ checks the option too
/// (users match on them), the same shape for ours.
fn range_rule(key: &str) -> String {
    match key {
        "maxStalledCount" | "maxStartedAttempts" => {
            format!("{key} must be greater or equal than 0")
        }
        "concurrency" => CONCURRENCY_RULE.to_string(),
        _ => format!("{key} must be greater than 0"),
    }
}

/// BullMQ's text for the concurrency rule (constructor and setter).
pub const CONCURRENCY_RULE: &str = "concurrency must be a finite number greater than 0";

fn validate(cfg: &WorkerConfig) -> Result<()> {
    if cfg.queue.is_empty() {
        return Err(Error::invalid("queueName", "Queue name must be provided"));
    }
    if cfg.queue.contains(':') {
        return Err(Error::invalid("queueName", "Queue name cannot contain :"));
    }
    if cfg.prefix.is_empty() {
        return Err(Error::invalid("prefix", "must not be empty"));
    }
    if cfg.concurrency == 0 {
        return Err(Error::invalid("concurrency", CONCURRENCY_RULE));
    }
    if cfg.lock_duration_ms == 0 {
        return Err(Error::invalid("lockDuration", range_rule("lockDuration")));
    }
    if cfg.stalled_interval_ms == 0 {
        return Err(Error::invalid(
            "stalledInterval",
            range_rule("stalledInterval"),
        ));
    }
    if let Some((max, duration)) = cfg.limiter
        && (max == 0 || duration == 0)
    {
        return Err(Error::invalid(
            "limiter",
            "max and duration must be positive",
        ));
    }
    Ok(())
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
            running: st.started && !st.closing,
            paused: st.paused,
        }
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
        self.active_count.send_replace(st.active.len());
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
        let until = Instant::now() + Duration::from_millis(ms).min(MAX_RATE_LIMIT_SLEEP);
        let mut st = self.state.lock().unwrap();
        if st.limit_until.is_none_or(|u| u < until) {
            st.limit_until = Some(until);
        }
    }

    /// Remember what an empty fetch said about the queue.
    fn note_empty(&self, f: &Fetched) {
        let mut st = self.state.lock().unwrap();
        if f.rate_limit_ttl > 0 {
            let ttl = Duration::from_millis(f.rate_limit_ttl).min(MAX_RATE_LIMIT_SLEEP);
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

    async fn fetch_loop(self: Arc<Self>) {
        loop {
            let (free, drained, next_due, limit_until) = {
                let st = self.state.lock().unwrap();
                if st.closing {
                    break;
                }
                let conc = self.concurrency.load(Ordering::Relaxed);
                let free = if st.paused {
                    0
                } else {
                    conc.saturating_sub(st.active.len())
                };
                (free, st.drained, st.next_delayed_due, st.limit_until)
            };
            if free == 0 {
                self.wake.notified().await;
                continue;
            }
            if let Some(until) = limit_until {
                if until > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = self.wake.notified() => {}
                    }
                    continue;
                }
                let mut st = self.state.lock().unwrap();
                st.limit_until = None;
                // As BullMQ after a rate-limit wait: ask Redis directly before blocking.
                st.drained = false;
            }
            if drained {
                let now = now_ms();
                let timeout = if next_due > now {
                    Duration::from_millis(next_due - now)
                } else {
                    Duration::from_millis(self.cfg.drain_delay_ms)
                };
                let registration = self.dispatcher.register(&self.keys.marker, timeout);
                tokio::select! {
                    wake = registration.wait() => {
                        let mut st = self.state.lock().unwrap();
                        match wake {
                            Wake::Marker(score) if score > (now_ms() + 1) as f64 => {
                                st.next_delayed_due = score as u64;
                            }
                            _ => st.drained = false,
                        }
                    }
                    _ = self.wake.notified() => {}
                }
                continue;
            }
            let tokens: Vec<String> = (0..free).map(|_| self.next_token()).collect();
            // During an outage the connection may be far away: a close must not wait for it.
            // Only the wait is raced; a script call, once sent, is always seen through.
            let conn = tokio::select! {
                c = self.pair.command() => c,
                _ = self.closing_requested() => break,
            };
            let fetched = match conn {
                Ok(mut conn) => {
                    scripts::activate(&mut conn, &self.keys, now_ms(), &self.fetch_opts(&tokens))
                        .await
                }
                Err(e) => Err(e),
            };
            match fetched {
                Ok(f) if f.jobs.is_empty() => self.note_empty(&f),
                Ok(f) => {
                    // The script hands out the tokens in order, one per job taken.
                    let jobs: Vec<(RawJob, String)> = f.jobs.into_iter().zip(tokens).collect();
                    {
                        let mut st = self.state.lock().unwrap();
                        st.announced_drained = false;
                        for (j, token) in &jobs {
                            st.active.insert(
                                j.id.clone(),
                                ActiveEntry {
                                    token: token.clone(),
                                    renewed_at: Instant::now(),
                                    released: false,
                                },
                            );
                        }
                        self.set_active(&mut st);
                    }
                    for (j, token) in jobs {
                        tokio::spawn(Arc::clone(&self).job_task(j, token));
                    }
                }
                Err(e) => self.loop_error(&e).await,
            }
        }
    }

    /// A failed Redis call in the loop: connection trouble is reported by the connection
    /// events (every worker on the endpoint hears it); anything else is reported here.
    async fn loop_error(&self, e: &Error) {
        if !is_connection_error(e) {
            self.emit_error(e, None);
        }
        tokio::time::sleep(LOOP_ERROR_DELAY).await;
    }

    async fn job_task(self: Arc<Self>, first: RawJob, token: String) {
        let mut current = Some(first);
        while let Some(job) = current.take() {
            let id = job.id.clone();
            current = self.handle_job(job, &token).await;
            let mut st = self.state.lock().unwrap();
            st.active.remove(&id);
            if let Some(next) = &current {
                st.active.insert(
                    next.id.clone(),
                    ActiveEntry {
                        token: token.clone(),
                        renewed_at: Instant::now(),
                        released: false,
                    },
                );
            }
            self.set_active(&mut st);
        }
        self.wake.notify_one();
    }

    /// Run one job through the processor and write its outcome. Returns the next job when
    /// the finishing call fetched one for this slot.
    async fn handle_job(self: &Arc<Self>, mut job: RawJob, token: &str) -> Option<RawJob> {
        if let Some(scheduler) = job.fields.get("rjk") {
            self.schedule_next(&job, scheduler).await;
        }
        let opts = JobOpts::parse(job.fields.get("opts").map(String::as_str));
        let made = job::attempts_made(&job.fields);
        let started: u64 = job
            .fields
            .get("ats")
            .and_then(|s| s.parse::<f64>().ok())
            .map(|f| f as u64)
            .unwrap_or(0);
        // The hash moves to the processor; the failure path only needs the stored stack.
        let prior_stacktrace = job.fields.get("stacktrace").cloned();
        let mut not_run = true;
        let outcome = if let Some(reason) = job.fields.get("defa") {
            // A deferred failure (stalled too often, failed child): fail without running.
            // BullMQ fails it with an UnrecoverableError, whose stack joins the stacktrace.
            ProcessOutcome::Failed {
                message: reason.clone(),
                stack: Some(unrecoverable_stack(reason)),
                unrecoverable: true,
                custom_backoff: None,
            }
        } else if self
            .cfg
            .max_started_attempts
            .is_some_and(|max| started > max)
        {
            ProcessOutcome::Failed {
                message: "job started more than allowable limit".into(),
                stack: Some(unrecoverable_stack("job started more than allowable limit")),
                unrecoverable: true,
                custom_backoff: None,
            }
        } else {
            not_run = false;
            self.handler
                .process(ActiveJob {
                    id: job.id.clone(),
                    token: token.to_string(),
                    fields: std::mem::take(&mut job.fields),
                })
                .await
        };
        let (can_fetch, forced) = {
            let st = self.state.lock().unwrap();
            let conc = self.concurrency.load(Ordering::Relaxed);
            let limited = st.limit_until.is_some_and(|u| u > Instant::now());
            (
                !st.closing && !st.paused && !limited && st.active.len() <= conc,
                st.forced,
            )
        };
        if forced {
            // Left to the stalled checker: its lock expires, it is moved back and retried.
            return None;
        }
        match outcome {
            ProcessOutcome::MovedByProcessor => None,
            ProcessOutcome::RateLimited => {
                let result = self
                    .with_retries(&job.id, |mut conn| {
                        let keys = &self.keys;
                        let id = &job.id;
                        async move { scripts::requeue(&mut conn, keys, id, token).await }
                    })
                    .await;
                match result {
                    Ok(ttl) if ttl > 0 => self.limit_for(ttl),
                    Ok(_) => {}
                    Err(e) => self.emit_error(&e, Some(&job.id)),
                }
                None
            }
            ProcessOutcome::Completed { returnvalue } => {
                let keep = opts
                    .remove_on_complete
                    .unwrap_or(self.cfg.remove_on_complete);
                let (result, next) = self
                    .finish_coalesced(FinishWork {
                        job_id: job.id.clone(),
                        token: token.to_string(),
                        outcome: FinalOutcome::Completed { returnvalue },
                        keep,
                        attempts: opts.attempts,
                        fetch: can_fetch,
                    })
                    .await;
                match result {
                    Ok(()) => {
                        self.completed.fetch_add(1, Ordering::Relaxed);
                        self.handler.emit(WorkerEvent::Completed {
                            job_id: job.id.clone(),
                        });
                    }
                    Err(e) => self.emit_error(&e, Some(&job.id)),
                }
                next
            }
            ProcessOutcome::Failed {
                message,
                stack,
                unrecoverable,
                custom_backoff,
            } => {
                let stacktrace = job::append_stacktrace(
                    prior_stacktrace.as_deref(),
                    stack.as_deref(),
                    opts.stack_trace_limit,
                );
                let decision =
                    job::decide_retry(&opts, made, unrecoverable, custom_backoff, random_unit());
                let will_retry = decision != RetryDecision::Fail;
                let mut next = None;
                let result = match decision {
                    RetryDecision::Fail => {
                        let keep = opts.remove_on_fail.unwrap_or(self.cfg.remove_on_fail);
                        let (result, fetched) = self
                            .finish_coalesced(FinishWork {
                                job_id: job.id.clone(),
                                token: token.to_string(),
                                outcome: FinalOutcome::Failed {
                                    reason: message.clone(),
                                    stacktrace: stacktrace.clone(),
                                },
                                keep,
                                attempts: opts.attempts,
                                fetch: can_fetch,
                            })
                            .await;
                        next = fetched;
                        result
                    }
                    RetryDecision::RetryNow => {
                        self.with_retries(&job.id, |mut conn| {
                            let keys = &self.keys;
                            let id = &job.id;
                            let (reason, st) = (&message, &stacktrace);
                            async move {
                                scripts::retry(
                                    &mut conn,
                                    keys,
                                    id,
                                    token,
                                    now_ms(),
                                    opts.lifo,
                                    reason,
                                    st,
                                )
                                .await
                            }
                        })
                        .await
                    }
                    RetryDecision::RetryAfter(delay) => {
                        self.with_retries(&job.id, |mut conn| {
                            let keys = &self.keys;
                            let id = &job.id;
                            let (reason, st) = (&message, &stacktrace);
                            async move {
                                scripts::move_to_delayed(
                                    &mut conn,
                                    keys,
                                    id,
                                    token,
                                    now_ms(),
                                    delay,
                                    false,
                                    Some(reason),
                                    Some(st),
                                )
                                .await
                            }
                        })
                        .await
                    }
                };
                match result {
                    Ok(()) => {
                        if !will_retry {
                            self.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        self.handler.emit(WorkerEvent::Failed {
                            job_id: job.id.clone(),
                            reason: message,
                            will_retry,
                            fields: not_run.then(|| job.fields.clone()),
                        });
                    }
                    Err(e) => self.emit_error(&e, Some(&job.id)),
                }
                next
            }
        }
    }

    /// Hand a final outcome to the finishing calls (see [`FinishQueue`]) and wait for its
    /// result and the job fetched for this slot.
    async fn finish_coalesced(self: &Arc<Self>, work: FinishWork) -> (Result<()>, Option<RawJob>) {
        let (reply, rx) = oneshot::channel();
        let start = {
            let mut q = self.finishing.lock().unwrap();
            q.pending.push(FinishReq { work, reply });
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).finish_loop());
        }
        rx.await.unwrap_or_else(|_| {
            (
                Err(Error::Closed(
                    "the worker stopped before the job's result was written".into(),
                )),
                None,
            )
        })
    }

    async fn finish_loop(self: Arc<Self>) {
        // The other slots woken by the same delivery queue their outcomes first; when every
        // job in flight has already queued its outcome (always so at concurrency 1), there is
        // nobody to wait for.
        let queued = self.finishing.lock().unwrap().pending.len();
        if queued < self.state.lock().unwrap().active.len() {
            tokio::task::yield_now().await;
        }
        loop {
            let batch: Vec<FinishReq> = {
                let mut q = self.finishing.lock().unwrap();
                if q.pending.is_empty() {
                    q.running = false;
                    return;
                }
                let n = q.pending.len().min(MAX_FINISH_BATCH);
                q.pending.drain(..n).collect()
            };
            self.finish_batch(batch).await;
        }
    }

    async fn finish_batch(&self, batch: Vec<FinishReq>) {
        let tokens: Vec<String> = batch
            .iter()
            .filter(|r| r.work.fetch)
            .map(|r| r.work.token.clone())
            .collect();
        let fetch = (!tokens.is_empty()).then(|| self.fetch_opts(&tokens));
        let jobs: Vec<FinishJob<'_>> = batch
            .iter()
            .map(|FinishReq { work: r, .. }| FinishJob {
                job_id: &r.job_id,
                token: &r.token,
                outcome: match &r.outcome {
                    FinalOutcome::Completed { returnvalue } => Outcome::Completed { returnvalue },
                    FinalOutcome::Failed { reason, stacktrace } => {
                        Outcome::Failed { reason, stacktrace }
                    }
                },
                keep: r.keep,
                attempts: r.attempts,
            })
            .collect();
        let result = self
            .with_retries(&batch[0].work.job_id, |mut conn| {
                let (keys, jobs, fetch) = (&self.keys, &jobs, fetch.as_ref());
                async move { scripts::finish_many(&mut conn, keys, now_ms(), jobs, fetch).await }
            })
            .await;
        drop(jobs);
        match result {
            Err(e) => {
                for r in batch {
                    let _ = r.reply.send((Err(e.clone()), None));
                }
            }
            Ok(done) => {
                let f = done.fetched;
                if fetch.is_some() {
                    if f.jobs.is_empty() {
                        self.note_empty(&f);
                    } else {
                        self.state.lock().unwrap().announced_drained = false;
                    }
                }
                let mut fetched = f.jobs.into_iter();
                for (r, res) in batch.into_iter().zip(done.results) {
                    let next = if r.work.fetch { fetched.next() } else { None };
                    let _ = r.reply.send((res, next));
                }
            }
        }
    }

    /// A job-scheduler iteration was activated: add the next iteration before the processor
    /// runs, as BullMQ's worker does (protocol §9.11). Failures are reported as `error`
    /// events and the job still runs.
    async fn schedule_next(&self, job: &RawJob, scheduler: &str) {
        let fail = |reason: String| {
            self.emit_error(
                &Error::InvalidOption {
                    option: "repeat".into(),
                    reason: format!(
                        "failed to add the next iteration of job scheduler {scheduler} in queue {}: {reason}",
                        self.cfg.queue
                    ),
                },
                Some(&job.id),
            )
        };
        let now = now_ms();
        let next = match job::next_iteration(job.fields.get("opts").map(String::as_str), now) {
            Ok(NextIteration::Stop) => return,
            Ok(NextIteration::Every) => None,
            Ok(NextIteration::Cron { repeat, after }) => {
                match self.handler.next_cron(repeat, after).await {
                    Ok(Some(next)) => Some(next.max(after)),
                    Ok(None) => return,
                    Err(reason) => return fail(reason),
                }
            }
            Err(reason) => return fail(reason),
        };
        let legacy = job::is_legacy_repeat_key(scheduler);
        let now = now_ms();
        let opts = job::next_iteration_opts(
            job.fields.get("opts").map(String::as_str),
            scheduler,
            now,
            next,
        );
        let result = self
            .with_retries(&job.id, |mut conn| {
                let keys = &self.keys;
                let id = &job.id;
                let opts = &opts;
                async move {
                    scripts::scheduler_next(&mut conn, keys, scheduler, id, now, next, legacy, opts)
                        .await
                }
            })
            .await;
        match result {
            Ok(SchedulerNext::NotAScheduler) => fail(format!(
                "{scheduler} is a legacy repeatable job key, which BullMQ 6 no longer supports (migrate it to a job scheduler)"
            )),
            Ok(_) => {}
            Err(e) => self.emit_error(&e, Some(&job.id)),
        }
    }

    /// Run a state-changing script, riding out a reconnect: a connection error is retried
    /// on the new connection a few times. A retried call whose first attempt did land fails
    /// its lock or state check, which is reported, never applied twice.
    async fn with_retries<T, F, Fut>(&self, job_id: &str, mut call: F) -> Result<T>
    where
        F: FnMut(redis::aio::MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = match tokio::time::timeout(
                Duration::from_millis(self.cfg.lock_duration_ms),
                self.pair.command(),
            )
            .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "no Redis connection to write the result of job {job_id} in queue {}",
                        self.cfg.queue
                    )));
                }
            };
            match call(conn).await {
                Err(e) if is_connection_error(&e) && attempt < FINISH_ATTEMPTS => {
                    tokio::time::sleep(LOOP_ERROR_DELAY).await;
                }
                other => return other,
            }
        }
    }
}

/// The stacktrace entry of a job the worker fails without running it (BullMQ stores the stack
/// of the UnrecoverableError it creates there).
fn unrecoverable_stack(reason: &str) -> String {
    format!("UnrecoverableError: {reason}\n    at queue-native worker (the job was not run)")
}

fn is_connection_error(e: &Error) -> bool {
    matches!(
        e,
        Error::ConnectionLost(_)
            | Error::Unreachable(_)
            | Error::Timeout(_)
            | Error::MaxClients(_)
            | Error::Auth(_)
            | Error::Closed(_)
    )
}

/// A queue as the process sees it: its endpoint and its key base.
type QueueId = (EndpointKey, String);
/// A worker and its (job id, token) pairs whose locks are due for renewal.
type DueLocks = (Arc<WorkerInner>, Vec<(String, String)>);
/// A queue's stalled-check loop and the bell that makes it check at once.
type StalledChecker = (JoinHandle<()>, Arc<Notify>);

/// Process-wide worker bookkeeping: the list of workers (for health, lock renewal and
/// stalled checks), one dispatcher per connection pair, one stalled checker per queue.
struct Runtime {
    workers: Mutex<Vec<Weak<WorkerInner>>>,
    dispatchers: Mutex<Vec<Arc<Dispatcher>>>,
    stalled: Mutex<HashMap<QueueId, StalledChecker>>,
    renewer: Mutex<Option<JoinHandle<()>>>,
    /// Wakes the renewal loop at once: a worker that just started may need a shorter tick
    /// than the one the loop is sleeping (a 400 ms lock must not wait out a 3.75 s tick).
    renew_kick: Notify,
    listening: OnceLock<()>,
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| Runtime {
        workers: Mutex::new(Vec::new()),
        dispatchers: Mutex::new(Vec::new()),
        stalled: Mutex::new(HashMap::new()),
        renewer: Mutex::new(None),
        renew_kick: Notify::new(),
        listening: OnceLock::new(),
    });
    rt.listening.get_or_init(|| {
        // Connection errors reach every worker on the affected endpoint.
        connection::global().on_event(Arc::new(|ev: &ConnectionEvent| {
            if ev.event != EventKind::Error {
                return;
            }
            for w in live_workers() {
                if w.endpoint_display == ev.endpoint {
                    w.handler.emit(WorkerEvent::Error {
                        code: ev.code.unwrap_or("ERR_REDIS"),
                        message: ev.message.clone().unwrap_or_default(),
                        job_id: None,
                    });
                }
            }
        }));
    });
    rt
}

fn live_workers() -> Vec<Arc<WorkerInner>> {
    let rt = runtime();
    let mut list = rt.workers.lock().unwrap();
    list.retain(|w| w.upgrade().is_some_and(|w| !*w.closed.borrow()));
    list.iter().filter_map(Weak::upgrade).collect()
}

impl Runtime {
    fn dispatcher_for(&self, pair: &Arc<Pair>) -> Arc<Dispatcher> {
        let mut list = self.dispatchers.lock().unwrap();
        list.retain(|d| !d.pair().is_closed());
        if let Some(d) = list.iter().find(|d| Arc::ptr_eq(d.pair(), pair)) {
            return Arc::clone(d);
        }
        let d = Dispatcher::start(Arc::clone(pair));
        list.push(Arc::clone(&d));
        d
    }

    fn ensure_renewer(&'static self) {
        let mut slot = self.renewer.lock().unwrap();
        if slot.as_ref().is_some_and(|t| !t.is_finished()) {
            self.renew_kick.notify_one();
            return;
        }
        *slot = Some(tokio::spawn(renew_locks_loop()));
    }

    fn ensure_stalled_checker(&'static self, w: &Arc<WorkerInner>) {
        let key = (w.endpoint_key.clone(), w.keys.base.clone());
        let mut map = self.stalled.lock().unwrap();
        if let Some((task, kick)) = map.get(&key)
            && !task.is_finished()
        {
            // A worker joining runs a check at once (as BullMQ's does) and may shorten the
            // interval: wake the loop so it re-reads both.
            kick.notify_one();
            return;
        }
        let kick = Arc::new(Notify::new());
        let task = tokio::spawn(stalled_loop(key.clone(), Arc::clone(&kick)));
        map.insert(key, (task, kick));
    }
}

/// One loop for the whole process: every tick, the locks older than a quarter of their
/// duration are extended, all those of one queue (same endpoint, same lock duration) in one
/// script call, however many workers consume it.
async fn renew_locks_loop() {
    let started = || -> Vec<Arc<WorkerInner>> {
        live_workers()
            .into_iter()
            .filter(|w| w.state.lock().unwrap().started)
            .collect()
    };
    loop {
        let mut workers = started();
        if workers.is_empty() {
            // Decide to stop under the slot's lock: a worker starting meanwhile either is seen
            // here or finds the slot empty and starts a new loop.
            let mut slot = runtime().renewer.lock().unwrap();
            workers = started();
            if workers.is_empty() {
                *slot = None;
                return;
            }
        }
        let min_lock = workers
            .iter()
            .map(|w| w.cfg.lock_duration_ms)
            .min()
            .unwrap_or(30_000);
        let mut batches: HashMap<(QueueId, u64), Vec<DueLocks>> = HashMap::new();
        for w in workers {
            let due: Vec<(String, String)> = {
                let st = w.state.lock().unwrap();
                let age = Duration::from_millis(w.cfg.lock_duration_ms / 4);
                st.active
                    .iter()
                    .filter(|(_, e)| !e.released && e.renewed_at.elapsed() >= age)
                    .map(|(id, e)| (id.clone(), e.token.clone()))
                    .collect()
            };
            if !due.is_empty() {
                let key = (
                    (w.endpoint_key.clone(), w.keys.base.clone()),
                    w.cfg.lock_duration_ms,
                );
                batches.entry(key).or_default().push((w, due));
            }
        }
        for ((_, duration), group) in batches {
            let first = &group[0].0;
            let all: Vec<(String, String)> = group
                .iter()
                .flat_map(|(_, due)| due.iter().cloned())
                .collect();
            let Ok(mut conn) = first.pair.command().await else {
                continue;
            };
            match scripts::extend_locks(&mut conn, &first.keys, duration, &all).await {
                Ok(failed) => {
                    for (w, due) in &group {
                        let mut st = w.state.lock().unwrap();
                        for (id, _) in due {
                            if let Some(e) = st.active.get_mut(id) {
                                e.renewed_at = Instant::now();
                            }
                        }
                        drop(st);
                        for id in failed.iter().filter(|f| due.iter().any(|(d, _)| d == *f)) {
                            w.emit_error(
                                &Error::LockLost(format!(
                                    "could not renew the lock of job {id} in queue {}: it was taken over or expired",
                                    w.cfg.queue
                                )),
                                Some(id),
                            );
                        }
                    }
                }
                Err(e) if !is_connection_error(&e) => first.emit_error(&e, None),
                Err(_) => {}
            }
        }
        let tick = Duration::from_millis((min_lock / 8).clamp(25, 5_000));
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = runtime().renew_kick.notified() => {}
        }
    }
}

/// The stalled check of one queue, shared by every worker of this process consuming it:
/// runs at once, then every (smallest) `stalledInterval`. The script's guard key makes it
/// run once per interval across the whole fleet.
async fn stalled_loop(key: QueueId, kick: Arc<Notify>) {
    loop {
        let workers: Vec<_> = live_workers()
            .into_iter()
            .filter(|w| {
                w.endpoint_key == key.0 && w.keys.base == key.1 && !w.cfg.skip_stalled_check
            })
            .collect();
        let Some(first) = workers.first() else {
            return;
        };
        let interval = workers
            .iter()
            .map(|w| w.cfg.stalled_interval_ms)
            .min()
            .unwrap_or(30_000);
        let max_stalled = first.cfg.max_stalled_count;
        let pair = Arc::clone(&first.pair);
        let keys = first.keys.clone();
        drop(workers);
        if let Ok(mut conn) = pair.command().await {
            match scripts::move_stalled(&mut conn, &keys, max_stalled, now_ms(), interval).await {
                Ok(ids) if !ids.is_empty() => {
                    for w in live_workers()
                        .into_iter()
                        .filter(|w| w.endpoint_key == key.0 && w.keys.base == key.1)
                    {
                        for id in &ids {
                            w.handler.emit(WorkerEvent::Stalled { job_id: id.clone() });
                        }
                    }
                }
                Ok(_) => {}
                Err(e) if !is_connection_error(&e) => {
                    for w in live_workers()
                        .into_iter()
                        .filter(|w| w.endpoint_key == key.0 && w.keys.base == key.1)
                    {
                        w.emit_error(&e, None);
                    }
                }
                Err(_) => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
            _ = kick.notified() => {}
        }
    }
}

/// Health of every live worker of the process.
pub fn health() -> Vec<WorkerHealth> {
    live_workers().iter().map(|w| w.health()).collect()
}

/// Close every worker gracefully, then every connection (`shutdown()` of the API).
pub async fn shutdown() {
    let workers = live_workers();
    for w in &workers {
        Worker {
            inner: Arc::clone(w),
        }
        .close(false)
        .await;
    }
    connection::global().shutdown().await;
}

impl WorkerConfig {
    /// Worker options of API.md (as JSON, without `connection` and JS-only fields). Unknown
    /// keys are ignored: BullMQ has many options that mean nothing here (metrics, sandboxes)
    /// and existing `base.worker.ts` code passes some of them.
    pub fn from_json(
        queue: &str,
        v: &serde_json::Value,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        use serde_json::Value;
        let mut cfg = WorkerConfig::new(queue);
        if let Some(c) = env("QUEUE_CONCURRENCY").filter(|s| !s.trim().is_empty()) {
            cfg.concurrency = c
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid("QUEUE_CONCURRENCY", "must be a positive integer"))?;
        }
        let Some(o) = v.as_object() else {
            return if v.is_null() {
                Ok(cfg)
            } else {
                Err(Error::invalid("opts", "must be an object"))
            };
        };
        // One wording per rule: a value out of range gets the rule's text (BullMQ's, where
        // BullMQ has the rule), whichever side it misses; a fraction is its own rule.
        let pos_int = |key: &str| -> Result<Option<u64>> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => {
                    let f = x
                        .as_f64()
                        .filter(|f| *f >= 0.0)
                        .ok_or_else(|| Error::invalid(key, range_rule(key)))?;
                    if f.fract() != 0.0 {
                        return Err(Error::invalid(key, format!("{key} must be an integer")));
                    }
                    Ok(Some(f as u64))
                }
            }
        };
        if let Some(p) = o.get("prefix").filter(|p| !p.is_null()) {
            cfg.prefix = p
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::invalid("prefix", "must be a non-empty string"))?
                .to_string();
        }
        if let Some(n) = pos_int("concurrency")? {
            cfg.concurrency = n as usize;
        }
        if let Some(n) = pos_int("lockDuration")? {
            cfg.lock_duration_ms = n;
        }
        if let Some(n) = pos_int("stalledInterval")? {
            cfg.stalled_interval_ms = n;
        }
        if let Some(n) = pos_int("maxStalledCount")? {
            cfg.max_stalled_count = n;
        }
        if let Some(n) = pos_int("maxStartedAttempts")? {
            cfg.max_started_attempts = Some(n);
        }
        match o.get("drainDelay") {
            None | Some(Value::Null) => {}
            Some(d) => {
                let secs = d
                    .as_f64()
                    .filter(|f| *f > 0.0)
                    .ok_or_else(|| Error::invalid("drainDelay", range_rule("drainDelay")))?;
                cfg.drain_delay_ms = (secs * 1000.0) as u64;
            }
        }
        for (key, slot) in [
            ("removeOnComplete", &mut cfg.remove_on_complete),
            ("removeOnFail", &mut cfg.remove_on_fail),
        ] {
            if let Some(x) = o.get(key).filter(|x| !x.is_null()) {
                *slot = job::parse_keep(x).ok_or_else(|| {
                    Error::invalid(key, "must be a boolean, a number or {age, count, limit}")
                })?;
            }
        }
        if let Some(l) = o.get("limiter").filter(|x| !x.is_null()) {
            let max = l.get("max").and_then(Value::as_f64).filter(|f| *f >= 1.0);
            let duration = l
                .get("duration")
                .and_then(Value::as_f64)
                .filter(|f| *f >= 1.0);
            match (max, duration) {
                (Some(m), Some(d)) => cfg.limiter = Some((m as u64, d as u64)),
                _ => {
                    return Err(Error::invalid(
                        "limiter",
                        "needs positive `max` and `duration` (ms)",
                    ));
                }
            }
        }
        if let Some(n) = o.get("name").filter(|x| !x.is_null()) {
            cfg.name = Some(
                n.as_str()
                    .ok_or_else(|| Error::invalid("name", "must be a string"))?
                    .to_string(),
            );
        }
        if let Some(b) = o.get("skipStalledCheck") {
            cfg.skip_stalled_check = b.as_bool().unwrap_or(false);
        }
        validate(&cfg)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_match_bullmq() {
        let c = WorkerConfig::from_json("q", &json!({}), no_env).unwrap();
        assert_eq!(c.concurrency, 1);
        assert_eq!(c.lock_duration_ms, 30_000);
        assert_eq!(c.stalled_interval_ms, 30_000);
        assert_eq!(c.max_stalled_count, 1);
        assert_eq!(c.drain_delay_ms, 5_000);
        assert_eq!(c.prefix, "bull");
    }

    #[test]
    fn env_concurrency_and_explicit_override() {
        let env = |k: &str| (k == "QUEUE_CONCURRENCY").then(|| "10".to_string());
        assert_eq!(
            WorkerConfig::from_json("q", &json!({}), env)
                .unwrap()
                .concurrency,
            10
        );
        assert_eq!(
            WorkerConfig::from_json("q", &json!({"concurrency": 3}), env)
                .unwrap()
                .concurrency,
            3
        );
    }

    #[test]
    fn invalid_options_are_named() {
        let bad = |v: serde_json::Value| match WorkerConfig::from_json("q", &v, no_env) {
            Err(Error::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption, got {:?}", other.map(|_| ())),
        };
        assert_eq!(bad(json!({"concurrency": 0})), "concurrency");
        assert_eq!(bad(json!({"concurrency": "ten"})), "concurrency");
        assert_eq!(
            bad(json!({"limiter": {"max": 0, "duration": 10}})),
            "limiter"
        );
        assert_eq!(bad(json!({"removeOnComplete": "yes"})), "removeOnComplete");
        assert_eq!(bad(json!({"drainDelay": -1})), "drainDelay");
        assert!(matches!(
            WorkerConfig::from_json("a:b", &json!({}), no_env),
            Err(Error::InvalidOption { .. })
        ));
    }
}
