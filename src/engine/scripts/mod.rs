//! Typed calls of our Lua scripts (`src/scripts/*.lua`, documented in `docs/PROTOCOL.md`), and
//! the few plain commands that sit beside them. This is the engine's Redis-call layer: the
//! worker, the queue and the job handle call these functions and never build a `KEYS` or
//! `ARGV` list themselves.
//!
//! Each script is compiled into the binary, assembled with its includes
//! (`src/scripts/include/`, see [`crate::engine::lua`]) and wrapped in a `redis::Script` once;
//! calls go out as `EVALSHA` with an automatic `EVAL` fallback when the server does not know
//! the script yet (after a restart or `SCRIPT FLUSH`). Negative reply codes become engine
//! errors in one place ([`codes`](crate::engine::scripts::codes)), naming the job, the queue and the condition.

pub mod codes;
pub mod fetch;
pub mod job;
pub mod queue;
pub mod reply;
pub mod worker;

use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::engine::connection::RedisConn;
use redis::{Script, ScriptInvocation, Value};

use super::error::{Error, Result};
use super::lua;

pub use fetch::{FetchOpts, Fetched, JobHash, JobRecord, activate};
pub use job::{
    DependencyCounts, add_log, children_values, dependencies_count, update_data, update_progress,
};
pub use worker::{
    FinishJob, Finished, SchedulerNext, extend_locks, finish, finish_many,
    finish_many_with_metrics, move_stalled, move_to_delayed, move_to_waiting_children, requeue,
    retry, scheduler_next, set_rate_limit,
};

/// The one table of scripts: `static NAME` for `src/scripts/<file>.lua`, and [`SOURCES`].
macro_rules! scripts {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| Script::new(text($file)));
        )*
        /// `(name, source as written)` of every script the engine sends (the name is the
        /// file name without `.lua`); [`lua::assemble`] with [`lua::INCLUDES`] gives the
        /// text Redis runs.
        pub const SOURCES: &[(&str, &str)] =
            &[$(($file, include_str!(concat!("../../scripts/", $file, ".lua")))),*];
    };
}

scripts! {
    // Worker: fetch, finish, retry, locks, stalled jobs, flows, schedulers.
    ACTIVATE => "activate",
    FINISH => "finish",
    RETRY => "retry",
    DELAY => "delay",
    EXTEND_LOCKS => "extend_locks",
    STALLED => "stalled",
    WAITING_CHILDREN => "waiting_children",
    REQUEUE => "requeue",
    SCHEDULER_NEXT => "scheduler_next",
    // Job operations (worker and queue alike).
    PROGRESS => "progress",
    ADD_LOG => "add_log",
    UPDATE_DATA => "update_data",
    // Queue: add, pause / resume, drain, clean, retry of finished jobs, getters.
    ADD_JOB => "add_job",
    PAUSE => "pause",
    DRAIN => "drain",
    CLEAN => "clean",
    REPROCESS => "reprocess",
    GET_JOBS => "get_jobs",
    // The rest of the Job and Queue surface (engine::surface) and FlowProducer (engine::flow).
    GET_STATE => "get_state",
    IS_FINISHED => "is_finished",
    REMOVE => "remove",
    PROMOTE => "promote",
    CHANGE_PRIORITY => "change_priority",
    CHANGE_DELAY => "change_delay",
    EXTEND_LOCK => "extend_lock",
    CLEAR_LOGS => "clear_logs",
    DEPENDENCIES => "dependencies",
    REMOVE_CHILD_DEPENDENCY => "remove_child_dependency",
    REMOVE_DEDUP => "remove_dedup",
    OBLITERATE => "obliterate",
    MOVE_JOBS_TO_WAIT => "move_jobs_to_wait",
    QUEUE_ADMIN => "queue_admin",
    ADD_PARENT => "add_parent",
    FLOW_RELEASE => "flow_release",
    ADD_SCHEDULER => "add_scheduler",
    SCHEDULER => "scheduler",
    REMOVE_ORPHANS => "remove_orphans",
}

/// Every script as Redis runs it (assembled with its includes), in [`SOURCES`] order: the
/// one assembly both the `Script`s (their SHA) and `SCRIPT LOAD` use.
static TEXTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(name, source)| lua::assemble(name, source, lua::INCLUDES))
        .collect()
});

/// The text Redis runs for script `name` (the file name without `.lua`).
fn text(name: &str) -> &'static str {
    let at = SOURCES
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no script named {name}"));
    &TEXTS[at]
}

fn load(text: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("LOAD").arg(text);
    cmd
}

/// `SCRIPT LOAD` of script `name`, for a MULTI whose `EVALSHA`s must not meet an empty cache
/// part-way.
pub(crate) fn load_cmd(name: &str) -> redis::Cmd {
    load(text(name))
}

/// `EVALSHA` of `script` with `keys`, its arguments to be added: a call that goes inside a
/// MULTI (a `ScriptInvocation` only sends itself).
pub(crate) fn evalsha_cmd(script: &Script, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

/// Put every script into the server's cache, in one pipelined round trip, when a command
/// socket opens (and so again after a restart emptied the cache). A script missing from the
/// cache costs its caller a NOSCRIPT round trip and a SCRIPT LOAD; calls made at the same time
/// (a burst of `Queue.add` on a fresh server) would then reach Redis in the order their
/// retries resume, not the order they were made. Best effort: a user whose ACL forbids
/// `SCRIPT LOAD` still gets each script loaded on first use.
pub(crate) async fn preload(conn: &mut impl redis::aio::ConnectionLike) -> bool {
    let mut pipe = redis::pipe();
    for text in TEXTS.iter() {
        pipe.add_command(load(text)).ignore();
    }
    pipe.exec_async(conn).await.is_ok()
}

/// Run a prepared script call (EVALSHA, with EVAL when the server lacks the script).
pub(crate) async fn invoke(
    inv: &ScriptInvocation<'_>,
    conn: &mut impl crate::engine::connection::RedisConn,
) -> Result<Value> {
    let reply: Value =
        ride_out(conn, |mut c| async move { inv.invoke_async(&mut c).await }).await?;
    #[cfg(feature = "testing")]
    let _ = RAW_REPLY.try_with(|slot| *slot.borrow_mut() = Some(reply.clone()));
    Ok(reply)
}

#[cfg(feature = "testing")]
tokio::task_local! {
    /// Test builds only: inside [`RAW_REPLY`]`.scope(..)`, the undecoded reply of the last
    /// script call, so the test binding can hand jest what Redis answered (negative codes
    /// included) while the KEYS / ARGV layout stays in the typed wrappers.
    pub static RAW_REPLY: std::cell::RefCell<Option<Value>>;
}

/// A whole hash (empty when the key does not exist).
pub(crate) async fn hgetall<T: redis::FromRedisValue + Send>(
    conn: &mut impl crate::engine::connection::RedisConn,
    key: &str,
) -> Result<T> {
    query(conn, redis::cmd("HGETALL").arg(key)).await
}

/// One plain command (or pipeline) on the command connection, riding out refusals for now.
pub(crate) async fn query<T: redis::FromRedisValue + Send>(
    conn: &mut impl RedisConn,
    cmd: &impl Queryable,
) -> Result<T> {
    ride_out(conn, |mut c| async move { cmd.run(&mut c).await }).await
}

/// A command or a pipeline: what [`query`] sends.
pub(crate) trait Queryable: Sync {
    /// Send it on `conn` and decode the reply.
    fn run<T: redis::FromRedisValue + Send>(
        &self,
        conn: &mut impl RedisConn,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send;
}

impl Queryable for redis::Cmd {
    fn run<T: redis::FromRedisValue + Send>(
        &self,
        conn: &mut impl RedisConn,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Queryable for redis::Pipeline {
    fn run<T: redis::FromRedisValue + Send>(
        &self,
        conn: &mut impl RedisConn,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

/// How long one call keeps sending a command the server refuses for now. A restarted Redis
/// answers LOADING until its dataset is in memory (seconds for a large AOF); giving up sooner
/// would leave a finished job active until its lock expires and run it again.
pub const BUSY_DEADLINE: Duration = Duration::from_secs(30);
const BUSY_FIRST_PAUSE: Duration = Duration::from_millis(10);
const BUSY_MAX_PAUSE: Duration = Duration::from_millis(250);

/// Send a call, and send it again while the server answers LOADING, BUSY, TRYAGAIN or
/// MASTERDOWN (the command was not run, so sending it again is always safe), up to
/// [`BUSY_DEADLINE`]. Every other error is returned at once.
pub(crate) async fn ride_out<T, C, F, Fut>(conn: &C, mut call: F) -> Result<T>
where
    C: RedisConn,
    F: FnMut(C) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    let started = Instant::now();
    let mut pause = BUSY_FIRST_PAUSE;
    loop {
        let err = match call(conn.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) => redis_err(e),
        };
        if !matches!(err, Error::Busy(_)) || started.elapsed() + pause > BUSY_DEADLINE {
            return Err(err);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BUSY_MAX_PAUSE);
    }
}

/// A redis-rs error from a call on the command connection.
pub(crate) fn redis_err(e: redis::RedisError) -> Error {
    let err = Error::from_redis(&e, None);
    script_acl_refusal(&err.to_string()).unwrap_or(err)
}

/// Redis 7.0 refuses a command inside a script without naming it: "The user executing the
/// script can't run this command or subcommand script: <sha>, on @user_script:<line>." The
/// line of our own script names it, so the error does (`ERR_NOPERM` naming the command).
fn script_acl_refusal(text: &str) -> Option<Error> {
    if !text.contains("can't run this command") {
        return None;
    }
    let refusal = |detail: String| Some(Error::NoPerm(format!("NOPERM {detail}: {text}")));
    let sha = text
        .split("script: ")
        .nth(1)
        .and_then(|r| r.split(',').next());
    let line = text
        .rsplit("@user_script:")
        .next()
        .and_then(|l| l.trim().trim_end_matches('.').parse::<usize>().ok());
    let (Some(sha), Some(line)) = (sha, line) else {
        return refusal("this ACL user cannot run a command a script needs".into());
    };
    for (name, source) in SOURCES {
        let body = lua::assemble(name, source, lua::INCLUDES);
        if Script::new(&body).get_hash() != sha.trim() {
            continue;
        }
        let code = body
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
            .trim();
        return refusal(match called_command(code) {
            Some(cmd) => format!(
                "this ACL user has no permissions to run the '{}' command (called by {name}.lua, line {line})",
                cmd.to_ascii_lowercase()
            ),
            // The command is chosen at run time (e.g. LPUSH or RPUSH): show the call.
            None => format!(
                "this ACL user cannot run the command of `{code}` ({name}.lua, line {line})"
            ),
        });
    }
    refusal("this ACL user cannot run a command a script needs".into())
}

/// The command a Lua line calls: `rcall('XADD', ...)` or `redis.call("XADD", ...)`.
fn called_command(line: &str) -> Option<&str> {
    let after = &line[line.find("call(")? + 5..];
    let after = after.trim_start();
    let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &after[1..];
    rest.find(quote).map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_acl_refusal_names_the_command() {
        let body = lua::assemble(
            "add_job",
            include_str!("../../scripts/add_job.lua"),
            lua::INCLUDES,
        );
        let line = 1 + body
            .lines()
            .position(|l| l.contains("call(\"XADD\"") || l.contains("call('XADD'"))
            .expect("add_job emits an event");
        let text = format!(
            "ResponseError: The user executing the script can't run this command or subcommand script: {}, on @user_script:{line}.",
            ADD_JOB.get_hash()
        );
        let e = script_acl_refusal(&text).unwrap();
        assert_eq!(e.code(), "ERR_NOPERM");
        assert!(e.to_string().contains("'xadd'"), "{e}");
        assert!(e.to_string().contains("add_job.lua"), "{e}");
        assert_eq!(called_command("  rcall('HSET', k, f, v)"), Some("HSET"));
        assert_eq!(called_command("local x = 1"), None);
        assert!(script_acl_refusal("ERR something else").is_none());
    }

    #[test]
    fn the_table_names_every_script_file_once() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".lua").map(str::to_string)
            })
            .collect();
        files.sort();
        let mut names: Vec<String> = SOURCES.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(names, files);
    }
}
