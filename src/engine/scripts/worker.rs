//! The worker's scripts: finish (with fetch-next), retry, delay, lock renewal, the stalled
//! check, waiting-children, requeue after a manual rate limit, and job-scheduler iterations.

use redis::Value;

use super::codes::{code_error, expect_count, expect_zero, unexpected};
use super::fetch::{FetchOpts, Fetched, parse_fetched_items, push_fetch_head, push_fetch_keys};
use super::reply::{as_int, as_text, string_list};
use super::{
    DELAY, EXTEND_LOCKS, FINISH, REQUEUE, RETRY, SCHEDULER_NEXT, STALLED, WAITING_CHILDREN, invoke,
};
use crate::engine::error::{Error, Result};
use crate::engine::job::{KeepJobs, Outcome};
use crate::engine::keys::QueueKeys;

/// One job of a [`finish_many`] call.
pub struct FinishJob<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// Lock token; `"0"` skips the lock check.
    pub token: &'a str,
    /// A final outcome: [`Outcome::Completed`] or [`Outcome::Failed`].
    pub outcome: &'a Outcome,
    /// The stacktrace JSON array to store with a failure ("" leaves the stored one as is).
    pub stacktrace: &'a str,
    /// Retention of the finished job.
    pub keep: KeepJobs,
    /// The job's `opts.attempts` (for `retries-exhausted`).
    pub attempts: u64,
}

/// What a [`finish_many`] call did: one result per job, in order, and the jobs fetched.
#[derive(Debug)]
pub struct Finished {
    /// One result per job, in the order given.
    pub results: Vec<Result<()>>,
    /// The jobs taken for the asking slots.
    pub fetched: Fetched,
}

/// Move an active job to completed or failed; with `fetch`, take the next jobs in the same
/// call (returned like `activate`'s; without it the result is empty).
pub async fn finish(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    now: u64,
    job: &FinishJob<'_>,
    fetch: Option<&FetchOpts<'_>>,
) -> Result<Fetched> {
    let mut done = finish_many(conn, k, now, std::slice::from_ref(job), fetch).await?;
    done.results.pop().unwrap_or(Ok(()))?;
    Ok(done.fetched)
}

/// Finish several active jobs of one queue in one script call (each checked and applied on
/// its own: one job's failed check does not stop the others), then fetch like `finish`.
pub async fn finish_many(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    now: u64,
    jobs: &[FinishJob<'_>],
    fetch: Option<&FetchOpts<'_>>,
) -> Result<Finished> {
    finish_many_with_metrics(conn, k, now, jobs, fetch, None).await
}

/// [`finish_many`] that also records BullMQ's per-minute metrics of every job it finishes
/// when `metrics` (maxDataPoints) is given; with None the call is exactly `finish_many`'s.
pub async fn finish_many_with_metrics(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    now: u64,
    jobs: &[FinishJob<'_>],
    fetch: Option<&FetchOpts<'_>>,
    metrics: Option<u64>,
) -> Result<Finished> {
    let mut parts = Vec::with_capacity(jobs.len());
    for j in jobs {
        let Some(p) = j.outcome.final_parts() else {
            return Err(Error::JobState(format!(
                "cannot finish job {} in queue {}: {:?} is not a final outcome",
                j.job_id, k.name, j.outcome
            )));
        };
        parts.push(p);
    }
    let mut inv = FINISH.prepare_invoke();
    push_fetch_keys(&mut inv, k);
    inv.key(&k.completed)
        .key(&k.failed)
        .key(&k.marker)
        .arg(now)
        .arg(&k.base);
    let tokens = push_fetch_head(&mut inv, fetch);
    inv.arg(jobs.len());
    for (j, (kind, _, value)) in jobs.iter().zip(&parts) {
        let stacktrace = if matches!(j.outcome, Outcome::Failed { .. }) {
            j.stacktrace
        } else {
            ""
        };
        inv.arg(j.job_id)
            .arg(kind)
            .arg(value)
            .arg(j.token)
            .arg(j.keep.count)
            .arg(j.keep.age_secs.unwrap_or(0))
            .arg(j.keep.limit.unwrap_or(0))
            .arg(j.attempts)
            .arg(stacktrace);
    }
    for token in tokens {
        inv.arg(token);
    }
    if let Some(points) = metrics {
        inv.key(k.metrics("completed"))
            .key(k.metrics("failed"))
            .arg(points);
    }
    let first_id = jobs.first().map_or("", |j| j.job_id);
    let reply = invoke(&inv, conn).await?;
    let bad = |v: &Value| unexpected("finish", k, first_id, v);
    let Value::Array(items) = &reply else {
        return Err(bad(&reply));
    };
    let Some((Value::Array(codes), rest)) = items.split_first() else {
        return Err(bad(&reply));
    };
    if codes.len() != jobs.len() {
        return Err(bad(&reply));
    }
    let mut results = Vec::with_capacity(jobs.len());
    for ((code, j), (_, op, _)) in codes.iter().zip(jobs).zip(&parts) {
        let code = as_int(code).ok_or_else(|| bad(&reply))?;
        results.push(if code < 0 {
            Err(code_error(code, op, j.job_id))
        } else {
            Ok(())
        });
    }
    let fetched = parse_fetched_items(rest).ok_or_else(|| bad(&reply))?;
    Ok(Finished { results, fetched })
}

/// Put an active job straight back to waiting (failed attempt, retried without backoff).
/// `lifo` jobs go to the end that runs next.
#[allow(clippy::too_many_arguments)]
pub async fn retry(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    token: &str,
    now: u64,
    lifo: bool,
    reason: &str,
    stacktrace: &str,
) -> Result<()> {
    let mut inv = RETRY.prepare_invoke();
    inv.key(&k.active)
        .key(&k.wait)
        .key(&k.paused)
        .key(k.job(job_id))
        .key(&k.meta)
        .key(&k.events)
        .key(&k.delayed)
        .key(&k.prioritized)
        .key(&k.pc)
        .key(&k.marker)
        .key(&k.stalled)
        .arg(&k.base)
        .arg(now)
        .arg(if lifo { "RPUSH" } else { "LPUSH" })
        .arg(job_id)
        .arg(token)
        .arg(reason)
        .arg(stacktrace);
    let reply = invoke(&inv, conn).await?;
    expect_zero(&reply, "retryJob", k, job_id)
}

/// Move an active job to delayed, due at `now + delay_ms`. `skip_attempt` is for the
/// processor's own `moveToDelayed` (the attempt does not count); `reason` / `stacktrace`
/// are stored when given (a retry with backoff).
#[allow(clippy::too_many_arguments)]
pub async fn move_to_delayed(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    token: &str,
    now: u64,
    delay_ms: u64,
    skip_attempt: bool,
    reason: Option<&str>,
    stacktrace: Option<&str>,
) -> Result<()> {
    let mut inv = DELAY.prepare_invoke();
    inv.key(&k.marker)
        .key(&k.active)
        .key(&k.prioritized)
        .key(&k.delayed)
        .key(k.job(job_id))
        .key(&k.events)
        .key(&k.meta)
        .key(&k.stalled)
        .key(&k.wait)
        .key(&k.limiter)
        .key(&k.pc)
        .arg(&k.base)
        .arg(now)
        .arg(job_id)
        .arg(token)
        .arg(delay_ms)
        .arg(if skip_attempt { "1" } else { "0" })
        .arg(reason.unwrap_or(""))
        .arg(stacktrace.unwrap_or(""));
    let reply = invoke(&inv, conn).await?;
    expect_zero(&reply, "moveToDelayed", k, job_id)
}

/// Renew the locks of `jobs` (id, token) for `duration_ms`. Returns the ids whose lock is
/// gone or owned by another token (empty = all renewed).
pub async fn extend_locks(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    duration_ms: u64,
    jobs: &[(String, String)], /* (id, token) */
) -> Result<Vec<String>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut inv = EXTEND_LOCKS.prepare_invoke();
    inv.key(&k.stalled).arg(&k.base).arg(duration_ms);
    for (id, token) in jobs {
        inv.arg(id).arg(token);
    }
    let reply = invoke(&inv, conn).await?;
    string_list(&reply).ok_or_else(|| unexpected("extend_locks", k, "", &reply))
}

/// The stalled-jobs check (a no-op returning nothing while another worker's check of this
/// interval is still current). Returns the ids moved back to waiting.
pub async fn move_stalled(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    max_stalled: u64,
    now: u64,
    interval_ms: u64,
) -> Result<Vec<String>> {
    let mut inv = STALLED.prepare_invoke();
    inv.key(&k.stalled)
        .key(&k.wait)
        .key(&k.active)
        .key(&k.stalled_check)
        .key(&k.meta)
        .key(&k.paused)
        .key(&k.marker)
        .key(&k.events)
        .arg(max_stalled)
        .arg(&k.base)
        .arg(now)
        .arg(interval_ms);
    let reply = invoke(&inv, conn).await?;
    string_list(&reply).ok_or_else(|| unexpected("stalled", k, "", &reply))
}

/// Move an active parent to `waiting-children` while it has pending children (the
/// processor's `moveToWaitingChildren`). With `child_key` (a full job key) only that child
/// counts. Returns true when the job was moved, false when there was nothing to wait for
/// (the job stays active and locked).
pub async fn move_to_waiting_children(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    token: &str,
    child_key: Option<&str>,
    now: u64,
) -> Result<bool> {
    let mut inv = WAITING_CHILDREN.prepare_invoke();
    inv.key(&k.active)
        .key(&k.waiting_children)
        .key(k.job(job_id))
        .key(k.dependencies(job_id))
        .key(k.unsuccessful(job_id))
        .key(&k.stalled)
        .key(&k.events)
        .key(&k.meta)
        .arg(job_id)
        .arg(token)
        .arg(child_key.unwrap_or(""))
        .arg(now);
    let reply = invoke(&inv, conn).await?;
    match as_int(&reply) {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        Some(code) => Err(code_error(code, "moveToWaitingChildren", job_id)),
        None => Err(unexpected("waiting_children", k, job_id, &reply)),
    }
}

/// Put an active job back to waiting without counting the attempt (a manual rate limit).
/// Returns the rate limiter's remaining window in ms (0 = not limited).
pub async fn requeue(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    token: &str,
) -> Result<u64> {
    let mut inv = REQUEUE.prepare_invoke();
    inv.key(&k.active)
        .key(&k.wait)
        .key(&k.stalled)
        .key(&k.paused)
        .key(&k.meta)
        .key(&k.limiter)
        .key(&k.prioritized)
        .key(&k.marker)
        .key(&k.events)
        .key(k.job(job_id))
        .arg(job_id)
        .arg(token)
        .arg(&k.base);
    let reply = invoke(&inv, conn).await?;
    expect_count(&reply, "moveJobFromActiveToWait", "requeue", k, job_id)
}

/// What `scheduler_next` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerNext {
    /// The next iteration was added under this job id.
    Added(String),
    /// Nothing to do: the scheduler is gone, or the job is not its current iteration.
    Nothing,
    /// The next iteration's slot is already taken (a `duplicated` event was written).
    Duplicated,
    /// A legacy repeatable-job key that is not a job scheduler.
    NotAScheduler,
}

/// Add the next iteration of job scheduler `scheduler_id` after its iteration `producer_id`
/// was activated. `next` is the next run (ms) of a cron scheduler; `None` lets the script
/// compute it for an `every` scheduler. `legacy`: the id has the legacy repeatable-key shape.
/// `opts`: the next iteration's options as a msgpack map (`job::next_iteration_opts`).
#[allow(clippy::too_many_arguments)]
pub async fn scheduler_next(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    scheduler_id: &str,
    producer_id: &str,
    now: u64,
    next: Option<u64>,
    legacy: bool,
    opts: &[u8],
) -> Result<SchedulerNext> {
    let mut inv = SCHEDULER_NEXT.prepare_invoke();
    inv.key(k.repeat())
        .key(&k.delayed)
        .key(&k.wait)
        .key(&k.paused)
        .key(&k.meta)
        .key(&k.prioritized)
        .key(&k.marker)
        .key(&k.id)
        .key(&k.events)
        .key(&k.pc)
        .key(&k.active)
        .key(k.job(producer_id))
        .arg(&k.base)
        .arg(now)
        .arg(scheduler_id)
        .arg(producer_id)
        .arg(next.map(|n| n.to_string()).unwrap_or_default())
        .arg(if legacy { "1" } else { "0" })
        .arg(opts);
    let reply = invoke(&inv, conn).await?;
    match &reply {
        Value::Int(0) => Ok(SchedulerNext::Nothing),
        Value::Int(1) => Ok(SchedulerNext::Duplicated),
        Value::Int(2) => Ok(SchedulerNext::NotAScheduler),
        other => match as_text(other) {
            Some(id) if !matches!(other, Value::Int(_)) => Ok(SchedulerNext::Added(id)),
            _ => Err(unexpected("scheduler_next", k, producer_id, other)),
        },
    }
}

/// The limiter value of a manual rate limit (`Number.MAX_SAFE_INTEGER`, as BullMQ sets it):
/// above any max, so every worker that knows a max sees the queue as limited.
const RATE_LIMITED: u64 = 9_007_199_254_740_991;

/// A manual rate limit: the queue's limiter key says "limit reached" for `ms`.
pub async fn set_rate_limit(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    ms: u64,
) -> Result<()> {
    super::query::<()>(
        conn,
        redis::cmd("SET")
            .arg(&k.limiter)
            .arg(RATE_LIMITED)
            .arg("PX")
            .arg(ms),
    )
    .await
}
