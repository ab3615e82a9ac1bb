//! The finish queue: final outcomes are coalesced into one `finish` script call (which also
//! fetches the next job for every slot that asks), see [`FinishQueue`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::WorkerInner;
use super::handler::WorkerEvent;
use crate::engine::error::{Error, Result};
use crate::engine::job::{KeepJobs, Outcome};
use crate::engine::scripts::{self, FinishJob, JobRecord};
use crate::engine::util::now_ms;

/// A job a finishing call fetched for a slot, with its place in the order jobs were taken
/// ([`super::handler::ActiveJob::order`]) and whether the next iteration of its job
/// scheduler was added already (by the finishing call, before its batch's events).
pub(super) type Taken = (JobRecord, u64, bool);

/// Most jobs finished by one script call (bounds how long the call holds Redis).
const MAX_FINISH_BATCH: usize = 64;

/// A job's final outcome, to be written by a finishing call.
pub(super) struct FinishWork {
    pub(super) job_id: String,
    pub(super) token: String,
    pub(super) outcome: Outcome,
    /// The stacktrace JSON to store with a failure.
    pub(super) stacktrace: String,
    pub(super) keep: KeepJobs,
    pub(super) attempts: u64,
    /// Take the next job for this slot in the same call.
    pub(super) fetch: bool,
    /// The job's place in the order jobs were taken: a batch is written in this order (as
    /// BullMQ's one-call-per-job worker writes them when they settle together), whatever
    /// order the slots' tasks queued them in.
    pub(super) order: u64,
    /// The event to emit once the outcome is written. The finishing call emits the events
    /// of its batch in batch order, before it wakes the slots: woken together, the slots'
    /// tasks run in an order of the scheduler's choosing (tokio runs the last one woken
    /// first), and listeners would hear a batch's jobs out of order.
    pub(super) event: Option<WorkerEvent>,
}

/// A [`FinishWork`] waiting for the next finishing call.
struct FinishReq {
    work: FinishWork,
    /// The job's own result, and the job fetched for its slot (delivered even when the
    /// job's own result is an error: it is active now and must run).
    reply: oneshot::Sender<(Result<()>, Option<Taken>)>,
}

/// Final outcomes are coalesced: while a finishing call is in flight, the outcomes that
/// arrive queue up and go together in the next call (one script call, one round trip and
/// one fetch for all of them). With a single slot nothing waits: the call leaves at once.
///
/// A second call may leave while one is in flight, but only with everything the worker
/// still has to finish: when every active job is either in flight or queued here (nothing
/// is still running in JavaScript). At concurrency N the slots settle in groups (those
/// delivered together); the group that settles while the other's call is in Redis then goes
/// out at once and queues behind it on the socket, instead of waiting a round trip for it
/// to come back, and batches stay as large as the groups.
#[derive(Default)]
pub(super) struct FinishQueue {
    pending: Vec<FinishReq>,
    /// Finishing tasks running (each with a call in flight or about to send one).
    calls: usize,
    /// Jobs in the calls in flight.
    jobs_in_flight: usize,
}

/// How long a finishing call waits for its turn (see `finish_batch`).
const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Hands the turn to the next finishing call when dropped (whatever path the call took).
struct PassTurn<'a> {
    turn: &'a tokio::sync::watch::Sender<u64>,
    next: u64,
}

impl Drop for PassTurn<'_> {
    fn drop(&mut self) {
        let next = self.next;
        self.turn.send_modify(|t| *t = (*t).max(next));
    }
}

/// Finishing calls one worker may have in flight: one executing, the next queued behind it.
const MAX_CALLS_IN_FLIGHT: usize = 2;

impl FinishQueue {
    /// Whether everything active is in flight or queued: no outcome is still to come, so
    /// waiting for the call in flight would not make the next batch any larger.
    fn all_settled(&self, active: usize) -> bool {
        self.pending.len() + self.jobs_in_flight >= active
    }

    /// The next batch, counted as in flight.
    fn take(&mut self) -> Vec<FinishReq> {
        self.pending.sort_by_key(|r| r.work.order);
        let n = self.pending.len().min(MAX_FINISH_BATCH);
        self.jobs_in_flight += n;
        self.pending.drain(..n).collect()
    }
}

impl WorkerInner {
    /// Hand a final outcome to the finishing calls (see [`FinishQueue`]) and wait for its
    /// result and the job fetched for this slot.
    pub(super) async fn finish_coalesced(
        self: &Arc<Self>,
        work: FinishWork,
    ) -> (Result<()>, Option<Taken>) {
        let (reply, rx) = oneshot::channel();
        let active = self.state.lock().unwrap().active.len();
        let start = {
            let mut q = self.finishing.lock().unwrap();
            q.pending.push(FinishReq { work, reply });
            let start = q.calls == 0 || (q.calls < MAX_CALLS_IN_FLIGHT && q.all_settled(active));
            if start {
                q.calls += 1;
            }
            start
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
        let mut active = self.state.lock().unwrap().active.len();
        if !self.finishing.lock().unwrap().all_settled(active) {
            tokio::task::yield_now().await;
        }
        let mut sent = 0;
        loop {
            let batch = {
                let mut q = self.finishing.lock().unwrap();
                q.jobs_in_flight -= sent;
                // First whatever is queued. After a call: alone, this task sends what queued
                // meanwhile; beside another call in flight, only a batch that nothing else
                // will join goes now, the rest is left to the other task, which takes it
                // when its call returns.
                let go_on =
                    !q.pending.is_empty() && (sent == 0 || q.calls == 1 || q.all_settled(active));
                if !go_on {
                    q.calls -= 1;
                    return;
                }
                q.take()
            };
            sent = batch.len();
            self.finish_batch(batch).await;
            active = self.state.lock().unwrap().active.len();
        }
    }

    async fn finish_batch(&self, batch: Vec<FinishReq>) {
        let tokens: Vec<String> = batch
            .iter()
            .filter(|r| r.work.fetch)
            .map(|r| r.work.token.clone())
            .collect();
        let fetch = (!tokens.is_empty()).then(|| self.fetch_opts(&tokens));
        // The jobs this call takes are numbered now, as it leaves: calls leave in this order
        // on the one socket and Redis takes their jobs in this order, while their replies
        // wake the slots' tasks in any order (the bridge starts a delivery's jobs by number).
        let first_order = super::run::reserve_orders(tokens.len());
        // And the call's turn to emit its events and hand its results on: its replies come
        // back in this order, but wake the two calls' tasks in any order.
        let ticket = self.finish_tickets.fetch_add(1, Ordering::Relaxed);
        let jobs: Vec<FinishJob<'_>> = batch
            .iter()
            .map(|FinishReq { work: r, .. }| FinishJob {
                job_id: &r.job_id,
                token: &r.token,
                outcome: &r.outcome,
                stacktrace: &r.stacktrace,
                keep: r.keep,
                attempts: r.attempts,
            })
            .collect();
        let result = self
            .with_retries(&batch[0].work.job_id, |mut conn| {
                let (keys, jobs, fetch) = (self.handle.keys(), &jobs, fetch.as_ref());
                let metrics = self.cfg.metrics_max_data_points;
                async move {
                    scripts::finish_many_with_metrics(
                        &mut conn,
                        keys,
                        now_ms(),
                        jobs,
                        fetch,
                        metrics,
                    )
                    .await
                }
            })
            .await;
        drop(jobs);
        // A call whose predecessor's task never comes (it cannot happen, but a wait must not
        // be able to stall the worker) goes after a while anyway.
        let mut turn = self.finish_turn.subscribe();
        let _ = tokio::time::timeout(TURN_WAIT, turn.wait_for(|t| *t >= ticket)).await;
        let _pass = PassTurn {
            turn: &self.finish_turn,
            next: ticket + 1,
        };
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
                // A job scheduler's iteration taken here gets its successor before this
                // batch's events go out, as BullMQ's worker adds it before it takes up the
                // next job: a listener of `completed` finds the next iteration there.
                let mut taken = Vec::with_capacity(f.jobs.len());
                for (job, order) in f.jobs.into_iter().zip(first_order..) {
                    let scheduled = match job.fields.get("rjk") {
                        Some(scheduler) => {
                            self.schedule_next(&job, scheduler).await;
                            true
                        }
                        None => false,
                    };
                    taken.push((job, order, scheduled));
                }
                let mut fetched = taken.into_iter();
                let mut replies = Vec::with_capacity(batch.len());
                for (mut r, res) in batch.into_iter().zip(done.results) {
                    if res.is_ok()
                        && let Some(event) = r.work.event.take()
                    {
                        self.handler.emit(event);
                    }
                    let next = if r.work.fetch { fetched.next() } else { None };
                    replies.push((r.reply, res, next));
                }
                for (reply, res, next) in replies {
                    let _ = reply.send((res, next));
                }
            }
        }
    }
}
