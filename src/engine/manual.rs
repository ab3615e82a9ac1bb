//! Manual processing (BullMQ's `new Worker(name, null)`): the application takes jobs itself
//! with `worker.getNextJob(token)` and finishes them with `job.moveToCompleted` /
//! `job.moveToFailed`. The same scripts the worker runs (`activate`, `finish`, `retry`,
//! `delay`), with the same rules: a failure is retried while attempts remain (at once, or
//! after the job's backoff), else the job fails; retention comes from the job's options, else
//! the worker's.

use super::connection::Pair;
use super::error::{Error, Result};
use super::job::{self, JobOpts, NextIteration, Outcome, RetryDecision};
use super::keys::QueueKeys;
use super::scripts::{self, FetchOpts, FinishJob, JobRecord, SchedulerNext};
use super::util::{now_ms, random_unit};
use super::worker::WorkerConfig;

/// One manual worker: its queue and the options that matter without a processor.
pub struct Manual {
    keys: QueueKeys,
    cfg: WorkerConfig,
}

impl Manual {
    /// `cfg` gives lockDuration, name, removeOnComplete / removeOnFail.
    pub fn new(keys: QueueKeys, cfg: WorkerConfig) -> Self {
        Manual { keys, cfg }
    }

    fn fetch_opts<'a>(&'a self, tokens: &'a [String]) -> FetchOpts<'a> {
        FetchOpts {
            lock_duration_ms: self.cfg.lock_duration_ms,
            limiter: None,
            name: self.cfg.name.as_deref(),
            tokens,
        }
    }

    /// Take the next job with `token` as its lock (None when none can be taken now).
    pub async fn next_job(&self, pair: &Pair, token: &str) -> Result<Option<JobRecord>> {
        let mut conn = pair.command().await?;
        let tokens = [token.to_string()];
        let fetched =
            scripts::activate(&mut conn, &self.keys, now_ms(), &self.fetch_opts(&tokens)).await?;
        Ok(fetched.jobs.into_iter().next())
    }

    /// Add the next iteration of job scheduler `scheduler`, whose iteration `job_id` (stored
    /// options `opts_json`) was just taken by hand: BullMQ's `getNextJob` does it as its
    /// worker's loop does (protocol §9.11). `cron_next` is the next cron run as the
    /// JavaScript side computed it (the engine has no cron parser; ignored for `every`, and
    /// `None` for a cron scheduler means there is no next run).
    pub async fn schedule_next(
        &self,
        pair: &Pair,
        job_id: &str,
        opts_json: Option<&str>,
        scheduler: &str,
        cron_next: Option<u64>,
    ) -> Result<()> {
        let invalid =
            |reason: String| job::next_iteration_failed(scheduler, &self.keys.name, &reason);
        let now = now_ms();
        let next = match job::next_iteration(opts_json, now).map_err(invalid)? {
            NextIteration::Stop => return Ok(()),
            NextIteration::Every => None,
            NextIteration::Cron { after, .. } => match cron_next {
                Some(next) => Some(next.max(after)),
                None => return Ok(()),
            },
        };
        let opts = job::next_iteration_opts(opts_json, scheduler, now, next);
        let legacy = job::is_legacy_repeat_key(scheduler);
        let mut conn = pair.command().await?;
        match scripts::scheduler_next(
            &mut conn, &self.keys, scheduler, job_id, now, next, legacy, &opts,
        )
        .await?
        {
            SchedulerNext::NotAScheduler => Err(invalid(job::not_a_scheduler(scheduler))),
            _ => Ok(()),
        }
    }

    /// Complete an active job held by `token` (`returnvalue` is JSON); with `fetch_next`, take
    /// the next job in the same call.
    pub async fn complete(
        &self,
        pair: &Pair,
        job_id: &str,
        token: &str,
        returnvalue: String,
        fetch_next: bool,
    ) -> Result<Option<JobRecord>> {
        let mut conn = pair.command().await?;
        let stored = self.stored(&mut conn, job_id).await?;
        let opts = JobOpts::parse(stored.opts.as_deref());
        let outcome = Outcome::Completed { returnvalue };
        self.finish(
            &mut conn,
            job_id,
            token,
            &outcome,
            "",
            opts.remove_on_complete
                .unwrap_or(self.cfg.remove_on_complete),
            opts.attempts,
            fetch_next,
        )
        .await
    }

    /// Fail one attempt of an active job held by `token`: retried (now, or after its backoff)
    /// while attempts remain and the error is recoverable, else failed. With `fetch_next`, a
    /// final failure takes the next job in the same call.
    #[allow(clippy::too_many_arguments)]
    pub async fn fail(
        &self,
        pair: &Pair,
        job_id: &str,
        token: &str,
        message: String,
        stack: Option<String>,
        unrecoverable: bool,
        fetch_next: bool,
    ) -> Result<Option<JobRecord>> {
        let mut conn = pair.command().await?;
        let stored = self.stored(&mut conn, job_id).await?;
        let opts = JobOpts::parse(stored.opts.as_deref());
        let stacktrace = job::append_stacktrace(
            stored.stacktrace.as_deref(),
            stack.as_deref(),
            opts.stack_trace_limit,
        );
        let decision = job::decide_retry(&opts, stored.made, unrecoverable, None, random_unit());
        let k = &self.keys;
        match decision {
            RetryDecision::Fail => {
                let outcome = Outcome::Failed {
                    message,
                    stack,
                    unrecoverable,
                    custom_backoff: None,
                };
                self.finish(
                    &mut conn,
                    job_id,
                    token,
                    &outcome,
                    &stacktrace,
                    opts.remove_on_fail.unwrap_or(self.cfg.remove_on_fail),
                    opts.attempts,
                    fetch_next,
                )
                .await
            }
            RetryDecision::RetryNow => {
                scripts::retry(
                    &mut conn,
                    k,
                    job_id,
                    token,
                    now_ms(),
                    opts.lifo,
                    &message,
                    &stacktrace,
                )
                .await?;
                Ok(None)
            }
            RetryDecision::RetryAfter(delay) => {
                scripts::move_to_delayed(
                    &mut conn,
                    k,
                    job_id,
                    token,
                    now_ms(),
                    delay,
                    false,
                    Some(&message),
                    Some(&stacktrace),
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Put an active job held by `token` back to waiting without counting the attempt
    /// (BullMQ's moveToWait); returns the rate limiter's remaining window (ms, 0 = none).
    pub async fn to_wait(&self, pair: &Pair, job_id: &str, token: &str) -> Result<u64> {
        let mut conn = pair.command().await?;
        scripts::requeue(&mut conn, &self.keys, job_id, token).await
    }

    /// Move an active job held by `token` to delayed until `timestamp` (ms) without counting
    /// the attempt (BullMQ's moveToDelayed).
    pub async fn to_delayed(
        &self,
        pair: &Pair,
        job_id: &str,
        token: &str,
        timestamp: u64,
    ) -> Result<()> {
        let mut conn = pair.command().await?;
        let now = now_ms();
        scripts::move_to_delayed(
            &mut conn,
            &self.keys,
            job_id,
            token,
            now,
            timestamp.saturating_sub(now),
            true,
            None,
            None,
        )
        .await
    }

    /// To waiting-children while children (or `child_key`) are pending; false when none is
    /// (the job stays active). The same call as the worker's, for a job taken by hand.
    pub async fn to_waiting_children(
        &self,
        pair: &Pair,
        job_id: &str,
        token: &str,
        child_key: Option<&str>,
    ) -> Result<bool> {
        let mut conn = pair.command().await?;
        scripts::move_to_waiting_children(&mut conn, &self.keys, job_id, token, child_key, now_ms())
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        job_id: &str,
        token: &str,
        outcome: &Outcome,
        stacktrace: &str,
        keep: job::KeepJobs,
        attempts: u64,
        fetch_next: bool,
    ) -> Result<Option<JobRecord>> {
        let tokens = [token.to_string()];
        let fetch = self.fetch_opts(&tokens);
        let job = FinishJob {
            job_id,
            token,
            outcome,
            stacktrace,
            keep,
            attempts,
        };
        let fetched = scripts::finish(
            conn,
            &self.keys,
            now_ms(),
            &job,
            fetch_next.then_some(&fetch),
        )
        .await?;
        Ok(fetched.jobs.into_iter().next())
    }

    async fn stored(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        job_id: &str,
    ) -> Result<Stored> {
        let fields: scripts::JobHash = scripts::hgetall(conn, &self.keys.job(job_id)).await?;
        if fields.is_empty() {
            return Err(Error::JobNotFound(format!(
                "Missing key for job {job_id}. moveToFinished"
            )));
        }
        Ok(Stored {
            made: job::attempts_made(&fields),
            opts: fields.get("opts").cloned(),
            stacktrace: fields.get("stacktrace").cloned(),
        })
    }
}

struct Stored {
    made: u64,
    opts: Option<String>,
    stacktrace: Option<String>,
}
