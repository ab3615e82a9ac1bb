//! Typed calls of our Lua scripts (`src/scripts/*.lua`, documented in `docs/PROTOCOL.md`), and
//! the few plain commands that sit beside them. This is the engine's Redis-call layer: the
//! worker, the queue and the job handle call these functions and never build a `KEYS` or
//! `ARGV` list themselves.
//!
//! Each script is compiled into the binary, assembled with its includes
//! (`src/scripts/include/`, see [`crate::engine::lua`]) and wrapped in a `redis::Script` once;
//! calls go out as `EVALSHA` with an automatic `EVAL` fallback when the server does not know
//! the script yet (after a restart or `SCRIPT FLUSH`). Negative reply codes become engine
//! errors in one place ([`codes`]), naming the job, the queue and the condition.

pub mod codes;
pub mod fetch;
pub mod job;
pub mod queue;
pub mod reply;
pub mod worker;

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation, Value};

use super::error::{Error, Result};
use super::lua;

pub use fetch::{FetchOpts, Fetched, JobRecord, activate};
pub use job::{add_log, children_values, dependencies_count, update_data, update_progress};
pub use worker::{
    FinishJob, Finished, SchedulerNext, extend_locks, finish, finish_many, move_stalled,
    move_to_delayed, move_to_waiting_children, requeue, retry, scheduler_next, set_rate_limit,
};

/// The one table of scripts: `static NAME` for `src/scripts/<file>.lua`, and [`NAMES`].
macro_rules! scripts {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
                lua::script($file, include_str!(concat!("../../scripts/", $file, ".lua")))
            });
        )*
        /// The name (file name without `.lua`) of every script the engine sends.
        pub const NAMES: &[&str] = &[$($file),*];
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
}

/// Run a prepared script call (EVALSHA, with EVAL when the server lacks the script).
pub(crate) async fn invoke(
    inv: &ScriptInvocation<'_>,
    conn: &mut impl crate::engine::connection::RedisConn,
) -> Result<Value> {
    inv.invoke_async(conn).await.map_err(redis_err)
}

/// A redis-rs error from a call on the command connection.
pub(crate) fn redis_err(e: redis::RedisError) -> Error {
    Error::from_redis(&e, None)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
        names.sort();
        assert_eq!(names, files);
    }
}
