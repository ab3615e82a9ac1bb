//! The queue's scripts (`add_job`, `add_parent`, `pause`, `drain`, `clean`, `reprocess`, `get_jobs`) and
//! the plain commands of its getters (a job's hash, counts, the paused flag, logs).

use redis::{ScriptInvocation, Value};

use super::codes::{add_error, reprocess_error, unexpected};
use super::fetch::JobRecord;
use super::reply::{as_int, as_text, field_map, string_list};
use super::{
    ADD_JOB, ADD_PARENT, CLEAN, DRAIN, GET_JOBS, PAUSE, REPROCESS, evalsha_cmd, hgetall, invoke,
};
use crate::engine::error::Result;
use crate::engine::job::PreparedJob;
use crate::engine::keys::{JobState, QueueKeys};

/// Legacy v5 `paused` jobs moved back into `wait` per resume call (BullMQ's batch size).
const RESUME_BATCH: u64 = 7000;
/// Reads per state a bounded getter may make to fill the places of vanished jobs.
const GETTER_READS: u64 = 5;

/// Add prepared jobs in one call; returns their ids, in order (an existing id when a job
/// was deduplicated or its custom id already existed). The first job the script refuses
/// fails the call.
pub async fn add_jobs(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    jobs: &[PreparedJob],
) -> Result<Vec<String>> {
    let mut inv = add_job_invocation(k);
    for p in jobs {
        push_job_args(&mut inv, p);
    }
    let reply = invoke(&inv, conn).await?;
    let bad = |reply: &Value| unexpected("add_job", k, "", reply);
    let Value::Array(items) = &reply else {
        return Err(bad(&reply));
    };
    if items.len() != jobs.len() {
        return Err(bad(&reply));
    }
    let mut ids = Vec::with_capacity(jobs.len());
    for (p, item) in jobs.iter().zip(items) {
        if let Some(code) = as_int(item) {
            let parent = p.parent_key.as_deref().unwrap_or("");
            return Err(add_error(code, k, &p.custom_id, parent));
        }
        ids.push(as_text(item).ok_or_else(|| bad(&reply))?);
    }
    Ok(ids)
}

/// One node of a flow as a plain `EVALSHA` command, to go inside the flow's MULTI (a
/// `ScriptInvocation` only sends itself): a node with children by `add_parent` (it waits in
/// waiting-children), a leaf by `add_job`. Its reply in the EXEC is read by
/// [`flow_node_reply`].
pub fn flow_node_cmd(k: &QueueKeys, p: &PreparedJob, has_children: bool) -> redis::Cmd {
    let mut cmd = if has_children {
        evalsha_cmd(&ADD_PARENT, &add_parent_keys(k))
    } else {
        evalsha_cmd(&ADD_JOB, &add_job_keys(k))
    };
    cmd.arg(&k.base);
    let timestamp = p.timestamp.to_string();
    for a in job_args(p, &timestamp) {
        cmd.arg(a);
    }
    cmd
}

/// The script's raw reply for one flow node (its id, or its negative code): the flow keeps
/// the codes as per-node results instead of failing. `add_job` answers with a list of one.
pub fn flow_node_reply(reply: Value) -> Value {
    match reply {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    }
}

fn add_parent_keys(k: &QueueKeys) -> [&str; 4] {
    [&k.meta, &k.id, &k.waiting_children, &k.events]
}

fn add_job_keys(k: &QueueKeys) -> [&str; 11] {
    [
        &k.wait,
        &k.paused,
        &k.meta,
        &k.id,
        &k.completed,
        &k.delayed,
        &k.active,
        &k.events,
        &k.marker,
        &k.prioritized,
        &k.pc,
    ]
}

/// `add_job`'s KEYS and its first ARGV (the key base); each job's arguments follow.
fn add_job_invocation(k: &QueueKeys) -> ScriptInvocation<'static> {
    let mut inv = ADD_JOB.prepare_invoke();
    for key in add_job_keys(k) {
        inv.key(key);
    }
    inv.arg(&k.base);
    inv
}

/// One job's seven arguments, in the order `add_job` and `add_parent` both read them.
fn job_args<'a>(p: &'a PreparedJob, timestamp: &'a str) -> [&'a [u8]; 7] {
    [
        p.custom_id.as_bytes(),
        p.name.as_bytes(),
        timestamp.as_bytes(),
        p.data.as_bytes(),
        p.packed_opts.as_slice(),
        p.parent_key.as_deref().unwrap_or("").as_bytes(),
        p.packed_parent.as_deref().unwrap_or(b""),
    ]
}

fn push_job_args(inv: &mut ScriptInvocation<'_>, p: &PreparedJob) {
    let timestamp = p.timestamp.to_string();
    for a in job_args(p, &timestamp) {
        inv.arg(a);
    }
}

/// The job's hash (empty when the job does not exist).
pub async fn job_hash(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    id: &str,
) -> Result<super::JobHash> {
    hgetall(conn, &k.job(id)).await
}

/// Jobs of the given states (each once), `start..=end` per state in BullMQ's order: lists
/// oldest first when `asc`, sets by score. An id listed under two states appears once.
pub async fn get_jobs(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    states: &[JobState],
    start: i64,
    end: i64,
    asc: bool,
) -> Result<Vec<JobRecord>> {
    let mut inv = GET_JOBS.prepare_invoke();
    inv.arg(&k.base)
        .arg(start)
        .arg(end)
        .arg(if asc { "1" } else { "0" })
        .arg(GETTER_READS);
    for s in states {
        inv.key(k.state(*s));
    }
    for s in states {
        inv.arg(s.as_str());
    }
    let reply = invoke(&inv, conn).await?;
    let bad = |reply: &Value| unexpected("get_jobs", k, "", reply);
    let Value::Array(items) = &reply else {
        return Err(bad(&reply));
    };
    if items.len() % 2 != 0 {
        return Err(bad(&reply));
    }
    let mut ids = std::collections::HashSet::new();
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let id = as_text(&pair[0]).ok_or_else(|| bad(&reply))?;
        let fields = field_map(&pair[1]).ok_or_else(|| bad(&reply))?;
        if ids.insert(id.clone()) {
            out.push(JobRecord { id, fields });
        }
    }
    Ok(out)
}

/// Number of jobs per state, in the order given (one round trip).
pub async fn counts(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    states: &[JobState],
) -> Result<Vec<u64>> {
    let mut pipe = redis::pipe();
    for s in states {
        pipe.cmd(if s.is_list() { "LLEN" } else { "ZCARD" })
            .arg(k.state(*s));
    }
    super::query(conn, &pipe).await
}

/// `meta.paused` is set (by our pause or BullMQ's, v5 or v6).
pub async fn is_paused(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
) -> Result<bool> {
    super::query(conn, redis::cmd("HEXISTS").arg(&k.meta).arg("paused")).await
}

/// Pause (`paused`) or resume (`resumed`) globally; `emit` writes the event. A resume moves
/// at most one batch of a legacy `paused` list back: returns how many are left (0 = done).
pub async fn pause(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    action: &str,
    emit: bool,
) -> Result<u64> {
    let mut inv = PAUSE.prepare_invoke();
    inv.key(&k.wait)
        .key(&k.paused)
        .key(&k.meta)
        .key(&k.prioritized)
        .key(&k.events)
        .key(&k.delayed)
        .key(&k.marker)
        .arg(action)
        .arg(if emit { "1" } else { "0" })
        .arg(RESUME_BATCH);
    let reply = invoke(&inv, conn).await?;
    match as_int(&reply) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(unexpected("pause", k, "", &reply)),
    }
}

/// Remove every waiting (and prioritized) job, and the delayed ones when `delayed`.
/// Returns how many were removed.
pub async fn drain(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    delayed: bool,
) -> Result<u64> {
    let mut inv = DRAIN.prepare_invoke();
    inv.key(&k.wait)
        .key(&k.paused)
        .key(&k.delayed)
        .key(&k.prioritized)
        .key(k.repeat())
        .arg(&k.base)
        .arg(if delayed { "1" } else { "0" });
    let reply = invoke(&inv, conn).await?;
    as_int(&reply)
        .map(|n| n.max(0) as u64)
        .ok_or_else(|| unexpected("drain", k, "", &reply))
}

/// Remove at most `limit` jobs of `state` finished (or added) before `cutoff` (epoch ms).
/// Returns the removed ids.
pub async fn clean(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    state: JobState,
    cutoff: u64,
    limit: u64,
) -> Result<Vec<String>> {
    let mut inv = CLEAN.prepare_invoke();
    inv.key(k.state(state))
        .key(&k.events)
        .key(k.repeat())
        .arg(&k.base)
        .arg(cutoff)
        .arg(limit)
        .arg(state.as_str());
    let reply = invoke(&inv, conn).await?;
    string_list(&reply).ok_or_else(|| unexpected("clean", k, "", &reply))
}

/// BullMQ's `job.retry(state)`: a failed or completed job goes back to waiting.
pub async fn reprocess(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    id: &str,
    state: JobState,
    reset_attempts_made: bool,
    reset_attempts_started: bool,
) -> Result<()> {
    let field = if state == JobState::Failed {
        "failedReason"
    } else {
        "returnvalue"
    };
    let mut inv = REPROCESS.prepare_invoke();
    inv.key(k.job(id))
        .key(&k.events)
        .key(k.state(state))
        .key(&k.wait)
        .key(&k.meta)
        .key(&k.active)
        .key(&k.marker)
        .key(&k.prioritized)
        .key(&k.pc)
        .key(&k.paused)
        .arg(id)
        .arg(field)
        .arg(state.as_str())
        .arg(if reset_attempts_made { "1" } else { "0" })
        .arg(if reset_attempts_started { "1" } else { "0" });
    let reply = invoke(&inv, conn).await?;
    match as_int(&reply) {
        Some(0) => Ok(()),
        _ => Err(reprocess_error(&reply, k, id, state.as_str())),
    }
}

/// Log lines of a job (`start..=end`, oldest first when `asc`) and how many it has.
pub async fn job_logs(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    id: &str,
    start: i64,
    end: i64,
    asc: bool,
) -> Result<(Vec<String>, u64)> {
    let key = k.logs(id);
    let (from, to) = if asc {
        (start, end)
    } else {
        (-(end + 1), -(start + 1))
    };
    let (mut logs, count): (Vec<String>, u64) = super::query(
        conn,
        redis::pipe()
            .cmd("LRANGE")
            .arg(&key)
            .arg(from)
            .arg(to)
            .cmd("LLEN")
            .arg(&key),
    )
    .await?;
    if !asc {
        logs.reverse();
    }
    Ok((logs, count))
}
