//! The run loop of one worker: fetch while slots are free (activation on the shared command
//! connection, waiting through the dispatcher when the queue looks empty), run each job
//! through the handler, write its outcome (finish, retry or delay), add a scheduler's next
//! iteration, ride out reconnects.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::finish::{FinishWork, Taken};
use super::handler::{ActiveJob, WorkerEvent};
use super::{ActiveEntry, LOOP_ERROR_DELAY, WorkerInner};
use crate::engine::connection::Wake;
use crate::engine::error::{Error, Result};
use crate::engine::job::{self, JobOpts, NextIteration, Outcome, RetryDecision};
use crate::engine::observe;
use crate::engine::scripts::{self, JobRecord, SchedulerNext};
use crate::engine::util::{now_ms, random_unit};

/// Numbers the jobs in the order they were taken ([`ActiveJob::order`]); process-wide, as
/// only the order within one worker matters.
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// How long a worker waits on a mocked clock before it reads it again (see `fetch_loop`).
const MOCKED_CLOCK_POLL: Duration = Duration::from_millis(50);

/// `n` consecutive numbers, the first returned: for the jobs one call will take.
pub(super) fn reserve_orders(n: usize) -> u64 {
    TAKEN.fetch_add(n as u64, Ordering::Relaxed)
}

impl WorkerInner {
    pub(super) async fn fetch_loop(self: Arc<Self>) {
        // When the last wait ended with a marker: the fetch that follows is timed.
        let mut woke_at: Option<Instant> = None;
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
                // A mocked clock (fake timers in tests) moves only when the test moves it:
                // read it afresh, and wait only a little before reading it again.
                let mocked = crate::engine::util::clock_mocked();
                if mocked {
                    crate::engine::util::clock_reported(
                        || self.handler.emit(WorkerEvent::Clock),
                        MOCKED_CLOCK_POLL,
                    )
                    .await;
                }
                let now = now_ms();
                if next_due != 0 && next_due <= now {
                    // A delayed job is due already (its marker may be gone: popped by an
                    // earlier wait this loop left for a job of its own): the activation
                    // promotes it. Blocking here would wait out the drain delay.
                    let mut st = self.state.lock().unwrap();
                    st.drained = false;
                    st.next_delayed_due = 0;
                    continue;
                }
                let mut timeout = if next_due > now {
                    Duration::from_millis(next_due - now)
                } else {
                    Duration::from_millis(self.cfg.drain_delay_ms)
                };
                if mocked {
                    timeout = timeout.min(MOCKED_CLOCK_POLL);
                }
                let registration = self
                    .dispatcher
                    .register(&self.handle.keys().marker, timeout);
                tokio::select! {
                    wake = registration.wait() => {
                        let mut st = self.state.lock().unwrap();
                        match wake {
                            Wake::Marker(score) if score > (now_ms() + 1) as f64 => {
                                st.next_delayed_due = score as u64;
                            }
                            Wake::Marker(_) => {
                                st.drained = false;
                                woke_at = Some(Instant::now());
                            }
                            _ => st.drained = false,
                        }
                    }
                    _ = self.wake.notified() => {}
                }
                continue;
            }
            {
                // Checked and marked under one lock: a pause or close either stops this fetch
                // or waits for the jobs it takes.
                let mut st = self.state.lock().unwrap();
                if st.paused || st.closing {
                    continue;
                }
                st.fetching = true;
                self.set_active(&mut st);
            }
            let tokens: Vec<String> = (0..free).map(|_| self.next_token()).collect();
            // During an outage the connection may be far away: a close must not wait for it.
            // Only the wait is raced; a script call, once sent, is always seen through.
            let conn = tokio::select! {
                c = self.handle.conn() => c,
                _ = self.closing_requested() => {
                    self.fetch_done();
                    break;
                }
            };
            // Numbered as the call leaves (see finish_batch).
            let first_order = reserve_orders(tokens.len());
            let fetched = match conn {
                Ok(mut conn) => {
                    scripts::activate(
                        &mut conn,
                        self.handle.keys(),
                        now_ms(),
                        &self.fetch_opts(&tokens),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            if let Some(at) = woke_at.take() {
                observe::counters().wake_to_fetch.observe(at.elapsed());
            }
            match fetched {
                Ok(f) if f.jobs.is_empty() => {
                    self.fetch_done();
                    self.note_empty(&f)
                }
                Ok(f) => {
                    // The script hands out the tokens in order, one per job taken.
                    let jobs: Vec<(JobRecord, String)> = f.jobs.into_iter().zip(tokens).collect();
                    {
                        let mut st = self.state.lock().unwrap();
                        st.announced_drained = false;
                        st.fetching = false;
                        for (j, token) in &jobs {
                            st.active
                                .insert(j.id.clone(), ActiveEntry::new(token.clone()));
                        }
                        self.set_active(&mut st);
                    }
                    // tokio runs the task spawned last first (its LIFO slot), the others in
                    // spawn order: the first job is spawned last, so the jobs start (and, when
                    // they fail without running, queue their outcomes) in the order taken.
                    let mut tasks = jobs.into_iter().zip(first_order..);
                    let first = tasks.next();
                    for ((j, token), order) in tasks.chain(first) {
                        tokio::spawn(Arc::clone(&self).job_task(j, token, order));
                    }
                }
                Err(e) => {
                    self.fetch_done();
                    self.loop_error(&e).await
                }
            }
        }
    }

    /// The activation call in flight ended without jobs to add to `active`.
    fn fetch_done(&self) {
        let mut st = self.state.lock().unwrap();
        st.fetching = false;
        self.set_active(&mut st);
    }

    /// A failed Redis call in the loop: connection trouble is reported by the connection
    /// events (every worker on the endpoint hears it); anything else is reported here.
    async fn loop_error(&self, e: &Error) {
        if !is_connection_error(e) {
            self.emit_error(e, None);
        }
        tokio::time::sleep(LOOP_ERROR_DELAY).await;
    }

    async fn job_task(self: Arc<Self>, first: JobRecord, token: String, first_order: u64) {
        let mut current = Some((first, first_order, false));
        while let Some((job, order, scheduled)) = current.take() {
            let id = job.id.clone();
            current = self.handle_job(job, &token, order, scheduled).await;
            let mut st = self.state.lock().unwrap();
            st.active.remove(&id);
            if let Some((next, _, _)) = &current {
                st.active
                    .insert(next.id.clone(), ActiveEntry::new(token.clone()));
            }
            self.set_active(&mut st);
        }
        self.wake.notify_one();
    }

    /// Run one job through the processor and write its outcome. Returns the next job when
    /// the finishing call fetched one for this slot.
    async fn handle_job(
        self: &Arc<Self>,
        mut job: JobRecord,
        token: &str,
        order: u64,
        scheduled: bool,
    ) -> Option<Taken> {
        if !scheduled && let Some(scheduler) = job.fields.get("rjk") {
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
        let mut outcome = if let Some(reason) = job.fields.get("defa") {
            // A deferred failure (stalled too often, failed child): fail without running.
            // BullMQ fails it with an UnrecoverableError, whose stack joins the stacktrace.
            Outcome::Failed {
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
            Outcome::Failed {
                message: "job started more than allowable limit".into(),
                stack: Some(unrecoverable_stack("job started more than allowable limit")),
                unrecoverable: true,
                custom_backoff: None,
            }
        } else {
            not_run = false;
            let started = Instant::now();
            let outcome = self
                .handler
                .process(ActiveJob {
                    id: job.id.clone(),
                    token: token.to_string(),
                    fields: std::mem::take(&mut job.fields),
                    order,
                })
                .await;
            self.stats.processing.observe(started.elapsed());
            self.stats.processed.fetch_add(1, Ordering::Relaxed);
            if matches!(outcome, Outcome::Failed { .. }) {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            outcome
        };
        let (can_fetch, forced) = {
            let mut st = self.state.lock().unwrap();
            if let Some(e) = st.active.get_mut(&job.id).filter(|e| e.token == token) {
                e.writing = true;
            }
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
        // A completion the finishing script refuses because of the job's state goes round
        // again as that failure (see `refused_completion`). The refused call may still have
        // taken the slot's next job: it is carried over (the failure's call then takes none)
        // and handed on, or it would stay active with nobody holding it.
        let mut carried: Option<Taken> = None;
        loop {
            let next = match outcome {
                Outcome::MovedByProcessor => None,
                Outcome::RateLimited => {
                    let result = self
                        .with_retries(&job.id, |mut conn| {
                            let keys = self.handle.keys();
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
                Outcome::Completed { .. } => {
                    let keep = opts
                        .remove_on_complete
                        .unwrap_or(self.cfg.remove_on_complete);
                    let (result, next) = self
                        .finish_coalesced(FinishWork {
                            job_id: job.id.clone(),
                            token: token.to_string(),
                            outcome,
                            stacktrace: String::new(),
                            keep,
                            attempts: opts.attempts,
                            fetch: can_fetch && carried.is_none(),
                            order,
                            event: Some(WorkerEvent::Completed {
                                job_id: job.id.clone(),
                            }),
                        })
                        .await;
                    match result {
                        Ok(()) => {
                            // The event went out with the batch (see FinishWork::event).
                            self.completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            self.emit_error(&e, Some(&job.id));
                            if let Some(failure) = refused_completion(&e) {
                                outcome = failure;
                                carried = next;
                                continue;
                            }
                        }
                    }
                    next
                }
                Outcome::Failed {
                    ref message,
                    ref stack,
                    unrecoverable,
                    custom_backoff,
                } => {
                    let stacktrace = job::append_stacktrace(
                        prior_stacktrace.as_deref(),
                        stack.as_deref(),
                        opts.stack_trace_limit,
                    );
                    let decision = job::decide_retry(
                        &opts,
                        made,
                        unrecoverable,
                        custom_backoff,
                        random_unit(),
                    );
                    let message = message.clone();
                    let will_retry = decision != RetryDecision::Fail;
                    let delay = match decision {
                        RetryDecision::RetryAfter(delay) => Some(delay),
                        _ => None,
                    };
                    let mut next = None;
                    let mut emitted = false;
                    let result = match decision {
                        RetryDecision::Fail => {
                            let keep = opts.remove_on_fail.unwrap_or(self.cfg.remove_on_fail);
                            let (result, fetched) = self
                                .finish_coalesced(FinishWork {
                                    job_id: job.id.clone(),
                                    token: token.to_string(),
                                    outcome,
                                    stacktrace: stacktrace.clone(),
                                    keep,
                                    attempts: opts.attempts,
                                    fetch: can_fetch && carried.is_none(),
                                    order,
                                    event: Some(WorkerEvent::Failed {
                                        job_id: job.id.clone(),
                                        reason: message.clone(),
                                        will_retry: false,
                                        delay: None,
                                        fields: not_run.then(|| job.fields.clone()),
                                    }),
                                })
                                .await;
                            next = fetched;
                            emitted = true;
                            result
                        }
                        RetryDecision::RetryNow => {
                            self.with_retries(&job.id, |mut conn| {
                                let keys = self.handle.keys();
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
                                let keys = self.handle.keys();
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
                            // A final failure's event went out with its batch (see
                            // FinishWork::event).
                            if !emitted {
                                self.handler.emit(WorkerEvent::Failed {
                                    job_id: job.id.clone(),
                                    reason: message,
                                    will_retry,
                                    delay,
                                    fields: not_run.then(|| job.fields.clone()),
                                });
                            }
                        }
                        Err(e) => self.emit_error(&e, Some(&job.id)),
                    }
                    next
                }
            };
            return next.or(carried);
        }
    }

    /// A job-scheduler iteration was activated: add the next iteration before the processor
    /// runs, as BullMQ's worker does (protocol §9.11). Failures are reported as `error`
    /// events and the job still runs.
    pub(super) async fn schedule_next(&self, job: &JobRecord, scheduler: &str) {
        let fail = |reason: String| {
            self.emit_error(
                &job::next_iteration_failed(scheduler, &self.cfg.queue, &reason),
                Some(&job.id),
            )
        };
        let now = now_ms();
        let next = match job::next_iteration(job.fields.get("opts").map(String::as_str), now) {
            Ok(NextIteration::Stop) => return,
            Ok(NextIteration::Every) => None,
            Ok(NextIteration::Cron { repeat, after }) => {
                let name = job.fields.get("name").cloned().unwrap_or_default();
                match self.handler.next_cron(repeat, after, name).await {
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
                let keys = self.handle.keys();
                let id = &job.id;
                let opts = &opts;
                async move {
                    scripts::scheduler_next(&mut conn, keys, scheduler, id, now, next, legacy, opts)
                        .await
                }
            })
            .await;
        match result {
            Ok(SchedulerNext::NotAScheduler) => fail(job::not_a_scheduler(scheduler)),
            Ok(_) => {}
            Err(e) => self.emit_error(&e, Some(&job.id)),
        }
    }

    /// Run a state-changing script, riding out reconnects: a connection error is retried on
    /// the next connection for as long as the job's lock can still hold (`lockDuration` from
    /// the first attempt; a CLIENT KILL storm can break several attempts in a row, and giving
    /// up earlier leaves a finished job to be run again). A retried call whose earlier attempt
    /// did land fails its lock or state check, which is reported, never applied twice.
    pub(super) async fn with_retries<T, F, Fut>(&self, job_id: &str, mut call: F) -> Result<T>
    where
        F: FnMut(crate::engine::connection::Conn) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.cfg.lock_duration_ms);
        loop {
            let conn = match tokio::time::timeout_at(deadline.into(), self.handle.conn()).await {
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
                Err(e)
                    if is_connection_error(&e)
                        && Instant::now() + LOOP_ERROR_DELAY < deadline
                        && !matches!(e, Error::Closed(_)) =>
                {
                    tokio::time::sleep(LOOP_ERROR_DELAY).await;
                }
                other => return other,
            }
        }
    }
}

/// BullMQ's worker, when completing a job fails with a non-connection error, reports it and
/// then fails the job with that error: a parent with pending children fails with "Job N has
/// pending dependencies. moveToFinished" (retried if it has attempts left), one with a failed
/// child with an UnrecoverableError (no retry). The same for us, for the state errors; a
/// lost lock or a missing job is only reported (failing it could not succeed either).
fn refused_completion(e: &Error) -> Option<Outcome> {
    let Error::JobState(message) = e else {
        return None;
    };
    let unrecoverable = message.contains("at least one failed child");
    let name = if unrecoverable {
        "UnrecoverableError"
    } else {
        "Error"
    };
    Some(Outcome::Failed {
        message: message.clone(),
        stack: Some(format!(
            "{name}: {message}\n    at queue-native worker (moveToFinished)"
        )),
        unrecoverable,
        custom_backoff: None,
    })
}

/// The stacktrace entry of a job the worker fails without running it (BullMQ stores the stack
/// of the UnrecoverableError it creates there).
fn unrecoverable_stack(reason: &str) -> String {
    format!("UnrecoverableError: {reason}\n    at queue-native worker (the job was not run)")
}

pub(super) fn is_connection_error(e: &Error) -> bool {
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
