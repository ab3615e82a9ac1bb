//! Test-only exports (cargo feature `testing`, `npm run build:testing`): the engine's typed
//! script wrappers, callable from jest, so that each script's KEYS / ARGV layout and the
//! include assembly live once, in Rust. Not part of the API and not in release builds.
//!
//! `testScriptCall(connectionJson, prefix, queue, script, argsJson)` runs one wrapper of
//! `engine::scripts` on the shared command connection and resolves with Redis's reply as it
//! came (numbers, strings, nested arrays, null; negative codes included), not the decoded
//! result: the specs assert on what the script answered. The arguments, by script (`now`,
//! ids and tokens as JSON numbers / strings):
//!
//! | script | args |
//! | --- | --- |
//! | `activate` | `{now, fetch}` |
//! | `finish` | `{now, jobs: [{id, token, outcome: {completed: json} or {failed: reason, stacktrace?}, keep?: {count, age?, limit?}, attempts?}], fetch?}` |
//! | `retry` | `{id, token, now, lifo, reason, stacktrace?}` |
//! | `delay` | `{id, token, now, delayMs, skipAttempt, reason?, stacktrace?}` |
//! | `extend_locks` | `{durationMs, pairs: [[id, token], ...]}` |
//! | `stalled` | `{maxStalled, now, intervalMs}` |
//! | `progress` | `{id, json}` |
//! | `add_log` | `{id, line, keep?}` |
//! | `update_data` | `{id, json}` |
//! | `waiting_children` | `{id, token, now, childKey?}` |
//! | `requeue` | `{id, token}` |
//! | `scheduler_next` | `{schedulerId, producerId, now, next?, legacy, opts: [bytes]}` |
//! | `add_job` | `{jobs: [{name, data, opts}], now}` (validated and encoded as `Queue.add` does) |
//! | `pause` | `{action: "paused" or "resumed", emit}` |
//! | `drain` | `{delayed}` |
//! | `clean` | `{state, cutoff, limit}` |
//! | `reprocess` | `{id, state, resetAttemptsMade, resetAttemptsStarted}` |
//! | `get_jobs` | `{states, start, end, asc}` |
//!
//! `fetch` is `{lockMs?, limiter?: [max, duration], name?, tokens: [...]}` (lockMs 30000 by
//! default). `testScriptSources()` gives every script's text as Redis runs it (includes
//! inlined), by name.

use std::collections::HashMap;

use napi_derive::napi;
use serde_json::Value;

use super::connection::value_to_json;
use super::error::{IntoNapi, to_napi};
use super::options;
use crate::engine::job::{self, KeepJobs, Outcome};
use crate::engine::keys::{JobState, QueueKeys};
use crate::engine::scripts::{self, FetchOpts, FinishJob, RAW_REPLY};
use crate::engine::{Error, Result, connection, lua};

/// Every script's text as Redis runs it, by name.
#[napi]
pub fn test_script_sources() -> HashMap<String, String> {
    scripts::SOURCES
        .iter()
        .map(|(name, source)| (name.to_string(), lua::assemble(name, source, lua::INCLUDES)))
        .collect()
}

/// Run the wrapper of `script` with `argsJson` (see the module table); resolves with the
/// raw reply.
#[napi]
pub async fn test_script_call(
    connection_json: Option<String>,
    prefix: String,
    queue: String,
    script: String,
    args_json: String,
) -> napi::Result<Value> {
    let args: Value = serde_json::from_str(&args_json)
        .map_err(|e| to_napi(Error::invalid("args", e.to_string())))?;
    let endpoint = options::resolve(connection_json.as_deref()).napi()?;
    let pair = connection::global().pair(&endpoint).napi()?;
    let mut conn = pair.command().await.napi()?;
    let keys = QueueKeys::new(&prefix, &queue);
    let slot = std::cell::RefCell::new(None);
    let (result, slot) = RAW_REPLY
        .scope(slot, async {
            let result = call(&mut conn, &keys, &script, &Args(&args)).await;
            (result, RAW_REPLY.with(|s| s.borrow_mut().take()))
        })
        .await;
    match (slot, result) {
        (Some(reply), _) => Ok(value_to_json(reply)),
        (None, Err(e)) => Err(to_napi(e)),
        (None, Ok(())) => Ok(Value::Null),
    }
}

/// Typed access to the call's JSON arguments; a missing or mistyped one is an
/// `ERR_INVALID_OPTION` naming it.
struct Args<'a>(&'a Value);

impl Args<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn bad(key: &str, want: &str) -> Error {
        Error::invalid(format!("args.{key}"), format!("must be {want}"))
    }

    fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(Value::as_f64)
            .filter(|f| *f >= 0.0)
            .map(|f| f as u64)
            .ok_or_else(|| Self::bad(key, "a non-negative number"))
    }

    fn i64(&self, key: &str) -> Result<i64> {
        self.get(key)
            .and_then(Value::as_f64)
            .map(|f| f as i64)
            .ok_or_else(|| Self::bad(key, "a number"))
    }

    fn str(&self, key: &str) -> Result<String> {
        self.get(key)
            .and_then(text)
            .ok_or_else(|| Self::bad(key, "a string"))
    }

    fn opt_str(&self, key: &str) -> Option<String> {
        self.str(key).ok()
    }

    fn bool(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    fn list(&self, key: &str) -> Vec<Value> {
        self.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn state(&self, key: &str) -> Result<JobState> {
        JobState::parse(&self.str(key)?).ok_or_else(|| Self::bad(key, "a job state"))
    }
}

/// A string, or a number as its text (ids and tokens may come as either).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The owned parts of a `fetch` argument (a [`FetchOpts`] borrows them).
struct Fetch {
    lock_ms: u64,
    limiter: Option<(u64, u64)>,
    name: Option<String>,
    tokens: Vec<String>,
}

impl Fetch {
    fn parse(v: Option<&Value>) -> Result<Option<Fetch>> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let a = Args(v);
        let limiter = match a.list("limiter").as_slice() {
            [max, duration] => Some((
                max.as_f64().unwrap_or(0.0) as u64,
                duration.as_f64().unwrap_or(0.0) as u64,
            )),
            _ => None,
        };
        Ok(Some(Fetch {
            lock_ms: a.u64("lockMs").unwrap_or(30_000),
            limiter,
            name: a.opt_str("name"),
            tokens: a
                .list("tokens")
                .iter()
                .map(|t| text(t).ok_or_else(|| Args::bad("fetch.tokens", "a list of strings")))
                .collect::<Result<_>>()?,
        }))
    }

    fn opts(&self) -> FetchOpts<'_> {
        FetchOpts {
            lock_duration_ms: self.lock_ms,
            limiter: self.limiter,
            name: self.name.as_deref(),
            tokens: &self.tokens,
        }
    }
}

fn keep(v: Option<&Value>) -> KeepJobs {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return job::KEEP_ALL;
    };
    let a = Args(v);
    KeepJobs {
        count: a.i64("count").unwrap_or(-1),
        age_secs: a.u64("age").ok().filter(|n| *n > 0),
        limit: a.u64("limit").ok().filter(|n| *n > 0),
    }
}

/// One job of a `finish` call, owned.
struct FinishArg {
    id: String,
    token: String,
    outcome: Outcome,
    stacktrace: String,
    keep: KeepJobs,
    attempts: u64,
}

fn finish_arg(v: &Value) -> Result<FinishArg> {
    let a = Args(v);
    let outcome = Args(a.get("outcome").unwrap_or(&Value::Null));
    let (outcome, stacktrace) = match outcome.opt_str("completed") {
        Some(returnvalue) => (Outcome::Completed { returnvalue }, String::new()),
        None => (
            Outcome::failed(outcome.str("failed")?),
            outcome.opt_str("stacktrace").unwrap_or_default(),
        ),
    };
    Ok(FinishArg {
        id: a.str("id")?,
        token: a.str("token")?,
        outcome,
        stacktrace,
        keep: keep(a.get("keep")),
        attempts: a.u64("attempts").unwrap_or(0),
    })
}

async fn call(
    conn: &mut redis::aio::MultiplexedConnection,
    k: &QueueKeys,
    script: &str,
    a: &Args<'_>,
) -> Result<()> {
    match script {
        "activate" => {
            let fetch = Fetch::parse(a.get("fetch"))?
                .ok_or_else(|| Args::bad("fetch", "{ tokens, ... }"))?;
            scripts::activate(conn, k, a.u64("now")?, &fetch.opts()).await?;
        }
        "finish" => {
            let jobs = a
                .list("jobs")
                .iter()
                .map(finish_arg)
                .collect::<Result<Vec<_>>>()?;
            let jobs: Vec<FinishJob<'_>> = jobs
                .iter()
                .map(|j| FinishJob {
                    job_id: &j.id,
                    token: &j.token,
                    outcome: &j.outcome,
                    stacktrace: &j.stacktrace,
                    keep: j.keep,
                    attempts: j.attempts,
                })
                .collect();
            let fetch = Fetch::parse(a.get("fetch"))?;
            let fetch = fetch.as_ref().map(Fetch::opts);
            scripts::finish_many(conn, k, a.u64("now")?, &jobs, fetch.as_ref()).await?;
        }
        "retry" => {
            let (reason, stacktrace) = (a.str("reason")?, a.opt_str("stacktrace"));
            scripts::retry(
                conn,
                k,
                &a.str("id")?,
                &a.str("token")?,
                a.u64("now")?,
                a.bool("lifo"),
                &reason,
                stacktrace.as_deref().unwrap_or(""),
            )
            .await?;
        }
        "delay" => {
            let (reason, stacktrace) = (a.opt_str("reason"), a.opt_str("stacktrace"));
            scripts::move_to_delayed(
                conn,
                k,
                &a.str("id")?,
                &a.str("token")?,
                a.u64("now")?,
                a.u64("delayMs")?,
                a.bool("skipAttempt"),
                reason.as_deref(),
                stacktrace.as_deref(),
            )
            .await?;
        }
        "extend_locks" => {
            let pairs = a
                .list("pairs")
                .iter()
                .map(
                    |p| match (p.get(0).and_then(text), p.get(1).and_then(text)) {
                        (Some(id), Some(token)) => Ok((id, token)),
                        _ => Err(Args::bad("pairs", "a list of [id, token]")),
                    },
                )
                .collect::<Result<Vec<_>>>()?;
            scripts::extend_locks(conn, k, a.u64("durationMs")?, &pairs).await?;
        }
        "stalled" => {
            scripts::move_stalled(
                conn,
                k,
                a.u64("maxStalled")?,
                a.u64("now")?,
                a.u64("intervalMs")?,
            )
            .await?;
        }
        "progress" => {
            scripts::update_progress(conn, k, &a.str("id")?, &a.str("json")?).await?;
        }
        "add_log" => {
            let keep = a.u64("keep").ok();
            scripts::add_log(conn, k, &a.str("id")?, &a.str("line")?, keep).await?;
        }
        "update_data" => {
            scripts::update_data(conn, k, &a.str("id")?, &a.str("json")?).await?;
        }
        "waiting_children" => {
            let child = a.opt_str("childKey").filter(|c| !c.is_empty());
            scripts::move_to_waiting_children(
                conn,
                k,
                &a.str("id")?,
                &a.str("token")?,
                child.as_deref(),
                a.u64("now")?,
            )
            .await?;
        }
        "requeue" => {
            scripts::requeue(conn, k, &a.str("id")?, &a.str("token")?).await?;
        }
        "scheduler_next" => {
            let opts: Vec<u8> = a
                .list("opts")
                .iter()
                .map(|b| b.as_u64().unwrap_or(0) as u8)
                .collect();
            scripts::scheduler_next(
                conn,
                k,
                &a.str("schedulerId")?,
                &a.str("producerId")?,
                a.u64("now")?,
                a.u64("next").ok(),
                a.bool("legacy"),
                &opts,
            )
            .await?;
        }
        "add_job" => {
            let now = a.u64("now")?;
            let jobs = a
                .list("jobs")
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    let j = Args(j);
                    job::prepare(
                        &j.str("name")?,
                        &j.str("data")?,
                        &j.str("opts")?,
                        &format!("jobs[{i}].opts"),
                        now,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            scripts::queue::add_jobs(conn, k, &jobs).await?;
        }
        "pause" => {
            scripts::queue::pause(conn, k, &a.str("action")?, a.bool("emit")).await?;
        }
        "drain" => {
            scripts::queue::drain(conn, k, a.bool("delayed")).await?;
        }
        "clean" => {
            scripts::queue::clean(
                conn,
                k,
                a.state("state")?,
                a.u64("cutoff")?,
                a.u64("limit")?,
            )
            .await?;
        }
        "reprocess" => {
            scripts::queue::reprocess(
                conn,
                k,
                &a.str("id")?,
                a.state("state")?,
                a.bool("resetAttemptsMade"),
                a.bool("resetAttemptsStarted"),
            )
            .await?;
        }
        "get_jobs" => {
            let states = a
                .list("states")
                .iter()
                .map(|s| {
                    s.as_str()
                        .and_then(JobState::parse)
                        .ok_or_else(|| Args::bad("states", "a list of job states"))
                })
                .collect::<Result<Vec<_>>>()?;
            scripts::queue::get_jobs(
                conn,
                k,
                &states,
                a.i64("start")?,
                a.i64("end")?,
                a.bool("asc"),
            )
            .await?;
        }
        other => {
            return Err(Error::invalid(
                "script",
                format!(
                    "`{other}` is not one of {:?}",
                    scripts::SOURCES.iter().map(|(n, _)| *n).collect::<Vec<_>>()
                ),
            ));
        }
    }
    Ok(())
}
