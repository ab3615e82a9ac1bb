//! Typed calls of our Lua scripts (`src/scripts/*.lua`, documented in `docs/PROTOCOL.md`).
//!
//! Each script is compiled into the binary, assembled with its includes
//! (`src/scripts/include/`, see [`super::lua`]) and wrapped in a `redis::Script` once; calls go
//! out as `EVALSHA` with an automatic `EVAL` fallback when the server does not know the
//! script yet (after a restart or `SCRIPT FLUSH`). Negative reply codes become engine errors
//! naming the job, the queue and the condition.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::aio::MultiplexedConnection;
use redis::{Script, ScriptInvocation, Value};

use super::error::{Error, Result};
use super::keys::QueueKeys;
use super::lua;

static ACTIVATE: LazyLock<Script> =
    LazyLock::new(|| lua::script("activate", include_str!("../scripts/activate.lua")));
static FINISH: LazyLock<Script> =
    LazyLock::new(|| lua::script("finish", include_str!("../scripts/finish.lua")));
static RETRY: LazyLock<Script> =
    LazyLock::new(|| lua::script("retry", include_str!("../scripts/retry.lua")));
static DELAY: LazyLock<Script> =
    LazyLock::new(|| lua::script("delay", include_str!("../scripts/delay.lua")));
static EXTEND_LOCKS: LazyLock<Script> =
    LazyLock::new(|| lua::script("extend_locks", include_str!("../scripts/extend_locks.lua")));
static STALLED: LazyLock<Script> =
    LazyLock::new(|| lua::script("stalled", include_str!("../scripts/stalled.lua")));
static PROGRESS: LazyLock<Script> =
    LazyLock::new(|| lua::script("progress", include_str!("../scripts/progress.lua")));
static ADD_LOG: LazyLock<Script> =
    LazyLock::new(|| lua::script("add_log", include_str!("../scripts/add_log.lua")));
static UPDATE_DATA: LazyLock<Script> =
    LazyLock::new(|| lua::script("update_data", include_str!("../scripts/update_data.lua")));
static WAITING_CHILDREN: LazyLock<Script> = LazyLock::new(|| {
    lua::script(
        "waiting_children",
        include_str!("../scripts/waiting_children.lua"),
    )
});
static REQUEUE: LazyLock<Script> =
    LazyLock::new(|| lua::script("requeue", include_str!("../scripts/requeue.lua")));
static SCHEDULER_NEXT: LazyLock<Script> = LazyLock::new(|| {
    lua::script(
        "scheduler_next",
        include_str!("../scripts/scheduler_next.lua"),
    )
});

/// How to take jobs: by `activate`, or by the fetch-next of `finish`.
pub struct FetchOpts<'a> {
    pub lock_duration_ms: u64,
    /// The worker's own rate limit (max jobs, duration ms). A global limit in the queue's
    /// meta (`max`) takes precedence for the max; the worker's duration wins over
    /// `meta.duration` (BullMQ's precedence).
    pub limiter: Option<(u64, u64)>, /* (max, duration ms) */
    /// Stored as the job's `pb` ("processed by").
    pub name: Option<&'a str>,
    /// One lock token per job wanted; `"0"` takes a job without a lock.
    pub tokens: &'a [String],
}

/// A job as `HGETALL` returned it when it was activated.
#[derive(Debug, Clone)]
pub struct RawJob {
    pub id: String,
    pub fields: HashMap<String, String>,
}

/// What a fetch produced.
///
/// * `jobs`: the activated jobs, in activation order (at most one per token).
/// * `rate_limit_ttl`: > 0 only when no job was taken because the rate limit is reached:
///   the ms until the window ends.
/// * `next_delayed_due`: when no job was taken, the due time (epoch ms) of the earliest
///   delayed job, or 0 when there is none.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub jobs: Vec<RawJob>,
    pub rate_limit_ttl: u64,
    pub next_delayed_due: u64,
}

/// Retention of finished jobs (`removeOnComplete` / `removeOnFail`): `count` -1 keeps all,
/// 0 deletes the job at once, n keeps the newest n; `age_secs` removes jobs finished longer
/// ago (None or 0 = no age limit), at most `limit` (default 1000) per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepJobs {
    pub count: i64,
    pub age_secs: Option<u64>,
    pub limit: Option<u64>,
}

/// How a job ended. `returnvalue` is JSON; `reason` is the plain error message;
/// `stacktrace` is a JSON array, or "" to leave the stored one unchanged.
pub enum Outcome<'a> {
    Completed {
        returnvalue: &'a str,
    },
    Failed {
        reason: &'a str,
        stacktrace: &'a str,
    },
}

/// Take up to `opts.tokens.len()` jobs (promoting due delayed jobs first).
pub async fn activate(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    now: u64,
    opts: &FetchOpts<'_>,
) -> Result<Fetched> {
    let mut inv = ACTIVATE.prepare_invoke();
    inv.key(&k.wait)
        .key(&k.active)
        .key(&k.prioritized)
        .key(&k.events)
        .key(&k.stalled)
        .key(&k.limiter)
        .key(&k.delayed)
        .key(&k.paused)
        .key(&k.meta)
        .key(&k.pc)
        .key(&k.marker)
        .arg(&k.base)
        .arg(now);
    for token in push_fetch_head(&mut inv, Some(opts)) {
        inv.arg(token);
    }
    let reply = invoke(&inv, conn).await?;
    parse_fetched(&reply).map_err(|e| unexpected("activate", k, "", e))
}

/// One job of a [`finish_many`] call.
pub struct FinishJob<'a> {
    pub job_id: &'a str,
    /// Lock token; `"0"` skips the lock check.
    pub token: &'a str,
    pub outcome: Outcome<'a>,
    pub keep: KeepJobs,
    /// The job's `opts.attempts` (for `retries-exhausted`).
    pub attempts: u64,
}

/// What a [`finish_many`] call did: one result per job, in order, and the jobs fetched.
#[derive(Debug)]
pub struct Finished {
    pub results: Vec<Result<()>>,
    pub fetched: Fetched,
}

/// Move an active job to completed or failed; with `fetch`, take the next jobs in the same
/// call (returned like `activate`'s; without it the result is empty).
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
    token: &str,
    now: u64,
    outcome: Outcome<'_>,
    keep: KeepJobs,
    attempts: u64,
    fetch: Option<&FetchOpts<'_>>,
) -> Result<Fetched> {
    let job = FinishJob {
        job_id,
        token,
        outcome,
        keep,
        attempts,
    };
    let mut done = finish_many(conn, k, now, std::slice::from_ref(&job), fetch).await?;
    done.results.pop().unwrap_or(Ok(()))?;
    Ok(done.fetched)
}

/// Finish several active jobs of one queue in one script call (each checked and applied on
/// its own: one job's failed check does not stop the others), then fetch like `finish`.
pub async fn finish_many(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    now: u64,
    jobs: &[FinishJob<'_>],
    fetch: Option<&FetchOpts<'_>>,
) -> Result<Finished> {
    let mut inv = FINISH.prepare_invoke();
    inv.key(&k.wait)
        .key(&k.active)
        .key(&k.prioritized)
        .key(&k.events)
        .key(&k.stalled)
        .key(&k.limiter)
        .key(&k.delayed)
        .key(&k.paused)
        .key(&k.meta)
        .key(&k.pc)
        .key(&k.completed)
        .key(&k.failed)
        .key(&k.marker)
        .arg(now)
        .arg(&k.base);
    let tokens = push_fetch_head(&mut inv, fetch);
    inv.arg(jobs.len());
    for j in jobs {
        let (kind, value, stacktrace) = match j.outcome {
            Outcome::Completed { returnvalue } => ("completed", returnvalue, ""),
            Outcome::Failed { reason, stacktrace } => ("failed", reason, stacktrace),
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
    for (code, j) in codes.iter().zip(jobs) {
        let code = as_int(code).ok_or_else(|| bad(&reply))?;
        let op = match j.outcome {
            Outcome::Completed { .. } => "complete",
            Outcome::Failed { .. } => "fail",
        };
        results.push(if code < 0 {
            Err(code_error(code, op, k, j.job_id))
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
    conn: &mut MultiplexedConnection,
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
    expect_zero(&reply, "retry", k, job_id)
}

/// Move an active job to delayed, due at `now + delay_ms`. `skip_attempt` is for the
/// processor's own `moveToDelayed` (the attempt does not count); `reason` / `stacktrace`
/// are stored when given (a retry with backoff).
#[allow(clippy::too_many_arguments)]
pub async fn move_to_delayed(
    conn: &mut MultiplexedConnection,
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
    expect_zero(&reply, "move to delayed", k, job_id)
}

/// Renew the locks of `jobs` (id, token) for `duration_ms`. Returns the ids whose lock is
/// gone or owned by another token (empty = all renewed).
pub async fn extend_locks(
    conn: &mut MultiplexedConnection,
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
    conn: &mut MultiplexedConnection,
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

/// Store the job's progress (JSON) and emit `progress`.
pub async fn update_progress(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
    progress_json: &str,
) -> Result<()> {
    let mut inv = PROGRESS.prepare_invoke();
    inv.key(k.job(job_id))
        .key(&k.events)
        .key(&k.meta)
        .arg(job_id)
        .arg(progress_json);
    let reply = invoke(&inv, conn).await?;
    expect_zero(&reply, "update progress", k, job_id)
}

/// Append a log line, keeping only the newest `keep_logs` lines if given. Returns the
/// number of lines stored.
pub async fn add_log(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
    line: &str,
    keep_logs: Option<u64>,
) -> Result<u64> {
    let mut inv = ADD_LOG.prepare_invoke();
    inv.key(k.job(job_id))
        .key(k.logs(job_id))
        .arg(job_id)
        .arg(line)
        .arg(keep_logs.map(|n| n.to_string()).unwrap_or_default());
    let reply = invoke(&inv, conn).await?;
    match as_int(&reply) {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(code) => Err(code_error(code, "add log", k, job_id)),
        None => Err(unexpected("add_log", k, job_id, &reply)),
    }
}

/// Replace the job's data (JSON).
pub async fn update_data(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
    data_json: &str,
) -> Result<()> {
    let mut inv = UPDATE_DATA.prepare_invoke();
    inv.key(k.job(job_id)).arg(data_json);
    let reply = invoke(&inv, conn).await?;
    expect_zero(&reply, "update data", k, job_id)
}

/// Children results of a flow parent: child job key -> returnvalue JSON.
pub async fn children_values(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
) -> Result<HashMap<String, String>> {
    redis::cmd("HGETALL")
        .arg(k.processed(job_id))
        .query_async(conn)
        .await
        .map_err(|e| Error::from_redis(&e, None))
}

/// Pending and processed children counts of a flow parent.
pub async fn dependencies_count(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
) -> Result<(u64, u64)> {
    redis::pipe()
        .cmd("SCARD")
        .arg(k.dependencies(job_id))
        .cmd("HLEN")
        .arg(k.processed(job_id))
        .query_async(conn)
        .await
        .map_err(|e| Error::from_redis(&e, None))
}

/// Move an active parent to `waiting-children` while it has pending children (the
/// processor's `moveToWaitingChildren`). With `child_key` (a full job key) only that child
/// counts. Returns true when the job was moved, false when there was nothing to wait for
/// (the job stays active and locked).
pub async fn move_to_waiting_children(
    conn: &mut MultiplexedConnection,
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
        Some(code) => Err(code_error(code, "move to waiting-children", k, job_id)),
        None => Err(unexpected("waiting_children", k, job_id, &reply)),
    }
}

/// Put an active job back to waiting without counting the attempt (a manual rate limit).
/// Returns the rate limiter's remaining window in ms (0 = not limited).
pub async fn requeue(
    conn: &mut MultiplexedConnection,
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
    match as_int(&reply) {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(code) => Err(code_error(code, "move back to wait", k, job_id)),
        None => Err(unexpected("requeue", k, job_id, &reply)),
    }
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
    conn: &mut MultiplexedConnection,
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

pub(crate) async fn invoke(
    inv: &ScriptInvocation<'_>,
    conn: &mut MultiplexedConnection,
) -> Result<Value> {
    inv.invoke_async(conn)
        .await
        .map_err(|e| Error::from_redis(&e, None))
}

/// The fetch arguments of activate.lua (ARGV 3..) and finish.lua (ARGV 3..6): lockDuration,
/// limiter max, limiter duration, worker name. Returns the tokens (one per job wanted), which
/// go last. Without `fetch` the positions are filled and there is no token (no fetch).
fn push_fetch_head<'a>(
    inv: &mut ScriptInvocation<'_>,
    fetch: Option<&'a FetchOpts<'a>>,
) -> &'a [String] {
    let (lock, (max, duration), name, tokens): (u64, (u64, u64), &str, &[String]) = match fetch {
        Some(f) => (
            f.lock_duration_ms,
            f.limiter.unwrap_or((0, 0)),
            f.name.unwrap_or(""),
            f.tokens,
        ),
        None => (0, (0, 0), "", &[]),
    };
    inv.arg(lock).arg(max).arg(duration).arg(name);
    tokens
}

/// The error for a negative script code.
fn code_error(code: i64, op: &str, k: &QueueKeys, id: &str) -> Error {
    let q = &k.name;
    match code {
        -1 => Error::JobNotFound(format!("cannot {op}: job {id} in queue {q} does not exist")),
        -2 => Error::LockLost(format!(
            "cannot {op}: lock for job {id} in queue {q} is missing (it expired or was released)"
        )),
        -6 => Error::LockLost(format!(
            "cannot {op}: lock for job {id} in queue {q} is held by another worker"
        )),
        -3 => Error::JobState(format!("cannot {op}: job {id} in queue {q} is not active")),
        -4 => Error::JobState(format!(
            "cannot {op}: job {id} in queue {q} has pending dependencies (children not finished)"
        )),
        -9 => Error::JobState(format!(
            "cannot {op}: job {id} in queue {q} has failed children"
        )),
        other => Error::Redis(format!(
            "cannot {op}: unexpected code {other} for job {id} in queue {q}"
        )),
    }
}

fn unexpected(script: &str, k: &QueueKeys, id: &str, reply: impl std::fmt::Debug) -> Error {
    let job = if id.is_empty() {
        String::new()
    } else {
        format!(" for job {id}")
    };
    Error::Redis(format!(
        "unexpected reply from script {script}{job} in queue {}: {reply:?}",
        k.name
    ))
}

fn expect_zero(reply: &Value, op: &str, k: &QueueKeys, id: &str) -> Result<()> {
    match as_int(reply) {
        Some(0) => Ok(()),
        Some(code) => Err(code_error(code, op, k, id)),
        None => Err(unexpected(op, k, id, reply)),
    }
}

pub(crate) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Double(d) => Some(*d as i64),
        _ => None,
    }
}

pub(crate) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Okay => Some("OK".to_string()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => Some((*n).max(0) as u64),
        Value::Double(d) => Some(d.max(0.0) as u64),
        other => as_text(other)?.parse().ok(),
    }
}

pub(crate) fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(as_text).collect(),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// A flat `[field, value, ...]` array (HGETALL inside Lua) into a map.
pub(crate) fn field_map(v: &Value) -> Option<HashMap<String, String>> {
    match v {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return None;
            }
            items
                .chunks(2)
                .map(|pair| Some((as_text(&pair[0])?, as_text(&pair[1])?)))
                .collect()
        }
        Value::Map(pairs) => pairs
            .iter()
            .map(|(f, val)| Some((as_text(f)?, as_text(val)?)))
            .collect(),
        _ => None,
    }
}

/// `{rateLimitTtl, nextDelayedDue, id1, {fields}, id2, {fields}, ...}`.
fn parse_fetched(v: &Value) -> std::result::Result<Fetched, &Value> {
    match v {
        Value::Array(items) => parse_fetched_items(items).ok_or(v),
        _ => Err(v),
    }
}

fn parse_fetched_items(items: &[Value]) -> Option<Fetched> {
    if items.len() < 2 || !items.len().is_multiple_of(2) {
        return None;
    }
    let rate_limit_ttl = as_u64(&items[0])?;
    let next_delayed_due = as_u64(&items[1])?;
    let jobs = items[2..]
        .chunks(2)
        .map(|pair| {
            Some(RawJob {
                id: as_text(&pair[0])?,
                fields: field_map(&pair[1])?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Fetched {
        jobs,
        rate_limit_ttl,
        next_delayed_due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_a_batch_of_jobs() {
        let reply = Value::Array(vec![
            Value::Int(0),
            Value::Int(0),
            bulk("1"),
            Value::Array(vec![bulk("name"), bulk("a"), bulk("ats"), bulk("1")]),
            bulk("2"),
            Value::Array(vec![bulk("name"), bulk("b")]),
        ]);
        let f = parse_fetched(&reply).unwrap();
        assert_eq!(f.rate_limit_ttl, 0);
        assert_eq!(f.next_delayed_due, 0);
        assert_eq!(f.jobs.len(), 2);
        assert_eq!(f.jobs[0].id, "1");
        assert_eq!(f.jobs[0].fields["name"], "a");
        assert_eq!(f.jobs[0].fields["ats"], "1");
        assert_eq!(f.jobs[1].id, "2");
        assert_eq!(f.jobs[1].fields["name"], "b");
    }

    #[test]
    fn parses_rate_limit_and_next_delayed() {
        let f = parse_fetched(&Value::Array(vec![Value::Int(250), Value::Int(0)])).unwrap();
        assert_eq!((f.rate_limit_ttl, f.next_delayed_due), (250, 0));
        assert!(f.jobs.is_empty());
        let f = parse_fetched(&Value::Array(vec![
            Value::Int(0),
            Value::Int(1_700_000_000_123),
        ]))
        .unwrap();
        assert_eq!(f.next_delayed_due, 1_700_000_000_123);
    }

    #[test]
    fn rejects_malformed_replies() {
        assert!(parse_fetched(&Value::Int(0)).is_err());
        assert!(parse_fetched(&Value::Array(vec![Value::Int(0)])).is_err());
        assert!(
            parse_fetched(&Value::Array(vec![
                Value::Int(0),
                Value::Int(0),
                bulk("1"),
                Value::Array(vec![bulk("odd")]),
            ]))
            .is_err()
        );
    }

    #[test]
    fn codes_map_to_engine_errors() {
        let k = QueueKeys::new("bull", "q");
        let e = code_error(-6, "complete", &k, "12");
        assert_eq!(e.code(), "ERR_LOCK_LOST");
        assert!(
            e.to_string()
                .contains("lock for job 12 in queue q is held by another worker"),
            "{e}"
        );
        let e = code_error(-2, "fail", &k, "12");
        assert_eq!(e.code(), "ERR_LOCK_LOST");
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(code_error(-1, "retry", &k, "3").code(), "ERR_JOB_NOT_FOUND");
        for code in [-3, -4, -9] {
            assert_eq!(
                code_error(code, "complete", &k, "3").code(),
                "ERR_JOB_STATE"
            );
        }
        assert!(
            code_error(-4, "complete", &k, "3")
                .to_string()
                .contains("pending dependencies")
        );
        assert!(
            code_error(-9, "complete", &k, "3")
                .to_string()
                .contains("failed children")
        );
        assert!(
            code_error(-3, "retry", &k, "3")
                .to_string()
                .contains("not active")
        );
        assert_eq!(code_error(-42, "retry", &k, "3").code(), "ERR_REDIS");
    }

    #[test]
    fn string_lists_accept_empty_replies() {
        assert_eq!(string_list(&Value::Array(vec![])), Some(vec![]));
        assert_eq!(
            string_list(&Value::Array(vec![bulk("4"), bulk("5")])),
            Some(vec!["4".to_string(), "5".to_string()])
        );
        assert_eq!(string_list(&Value::Int(1)), None);
    }
}
