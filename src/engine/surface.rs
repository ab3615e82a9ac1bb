//! The rest of BullMQ's public surface (Job and Queue admin calls: state reads, remove,
//! promote, priorities, obliterate, bulk moves, global limits...): each operation is one of our
//! Lua scripts (`src/scripts/<op>.lua`, in the one table of `scripts`, documented in
//! docs/PROTOCOL.md), called on the shared
//! command connection with the queue keys its header lists and
//! `ARGV = [<prefix>:<queue>:, jobId, params...]`.
//!
//! The scripts build per-job keys from the base themselves (as every script of ours does), so
//! the table below names only queue keys. Replies come back as JSON (`reply_json`); the facade
//! (lib/surface.js) knows each reply's shape and turns error codes into BullMQ's messages.

use redis::{Script, Value};

use super::connection::Pair;
use super::error::{Error, Result};
use super::keys::QueueKeys;
use super::ordered_json::OrderedJson;
use super::scripts::{
    ADD_SCHEDULER, CHANGE_DELAY, CHANGE_PRIORITY, CLEAR_LOGS, DEPENDENCIES, EXTEND_LOCK, GET_STATE,
    IS_FINISHED, MOVE_JOBS_TO_WAIT, OBLITERATE, PROMOTE, QUEUE_ADMIN, REMOVE,
    REMOVE_CHILD_DEPENDENCY, REMOVE_DEDUP, REMOVE_ORPHANS, SCHEDULER, invoke,
};

/// The queue keys each operation's script takes, in KEYS order.
fn op(name: &str) -> Option<(&'static Script, &'static [&'static str])> {
    const STATE_KEYS: &[&str] = &[
        "completed",
        "failed",
        "delayed",
        "active",
        "wait",
        "paused",
        "waiting-children",
        "prioritized",
    ];
    const ENQUEUE_KEYS: &[&str] = &[
        "wait",
        "paused",
        "meta",
        "prioritized",
        "active",
        "pc",
        "marker",
        "events",
        "delayed",
    ];
    Some(match name {
        "getState" => (&*GET_STATE, STATE_KEYS),
        "isFinished" => (&*IS_FINISHED, &["completed", "failed"]),
        "remove" => (&*REMOVE, &["repeat"]),
        "promote" => (&*PROMOTE, ENQUEUE_KEYS),
        "changePriority" => (&*CHANGE_PRIORITY, ENQUEUE_KEYS),
        "changeDelay" => (&*CHANGE_DELAY, &["delayed", "meta", "marker", "events"]),
        "extendLock" => (&*EXTEND_LOCK, &["stalled"]),
        "clearLogs" => (&*CLEAR_LOGS, &[]),
        "dependencies" => (&*DEPENDENCIES, &[]),
        "removeChildDependency" => (&*REMOVE_CHILD_DEPENDENCY, &[]),
        "removeDeduplicationKey" => (&*REMOVE_DEDUP, &[]),
        "obliterate" => (&*OBLITERATE, &["meta", "repeat"]),
        "moveJobsToWait" => (&*MOVE_JOBS_TO_WAIT, ENQUEUE_KEYS),
        "queueAdmin" => (
            &*QUEUE_ADMIN,
            &["meta", "limiter", "events", "prioritized", "marker", "wait"],
        ),
        "scheduler" => (&*SCHEDULER, &["repeat", "delayed", "events"]),
        "removeOrphans" => (&*REMOVE_ORPHANS, &[]),
        "upsertScheduler" => (
            &*ADD_SCHEDULER,
            &[
                "repeat",
                "delayed",
                "wait",
                "paused",
                "meta",
                "prioritized",
                "marker",
                "id",
                "events",
                "pc",
                "active",
            ],
        ),
        _ => return None,
    })
}

/// The params of an operation that arrive as JSON and go to the script as msgpack maps in
/// the same key order (what BullMQ's producer packs): upsertScheduler's scheduler options,
/// template options and iteration options.
fn msgpack_params(name: &str) -> &'static [usize] {
    match name {
        "upsertScheduler" => &[1, 4, 5],
        _ => &[],
    }
}

/// Run operation `name` for the queue `k` (and job `job_id`, "" for queue-wide operations).
pub async fn run(
    pair: &Pair,
    k: &QueueKeys,
    name: &str,
    job_id: &str,
    params: &[String],
) -> Result<serde_json::Value> {
    let (script, keys) =
        op(name).ok_or_else(|| Error::invalid("op", format!("unknown operation `{name}`")))?;
    let mut inv = script.prepare_invoke();
    for suffix in keys {
        inv.key(k.part(suffix));
    }
    inv.arg(&k.base).arg(job_id);
    let packed = msgpack_params(name);
    for (i, p) in params.iter().enumerate() {
        if packed.contains(&i) {
            let value = OrderedJson::parse(p).map_err(|e| {
                Error::invalid(format!("{name} argument {i}"), format!("is not JSON ({e})"))
            })?;
            inv.arg(value.to_msgpack());
        } else {
            inv.arg(p);
        }
    }
    let mut conn = pair.command().await?;
    let reply = invoke(&inv, &mut conn).await?;
    Ok(reply_json(reply))
}

/// A script reply as JSON: integers as numbers, bulk strings as text, nil as null, arrays in
/// order (a RESP3 map becomes a flat array, as the RESP2 reply of the same script would be).
pub fn reply_json(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Int(i) => J::from(i),
        Value::BulkString(b) => J::String(String::from_utf8_lossy(&b).into_owned()),
        Value::SimpleString(s) => J::String(s),
        Value::Okay => J::String("OK".into()),
        Value::Array(a) | Value::Set(a) => J::Array(a.into_iter().map(reply_json).collect()),
        Value::Double(d) => J::from(d),
        Value::VerbatimString { text, .. } => J::String(text),
        Value::Boolean(b) => J::Bool(b),
        Value::Map(m) => J::Array(
            m.into_iter()
                .flat_map(|(k, v)| [reply_json(k), reply_json(v)])
                .collect(),
        ),
        other => J::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_script_and_known_keys() {
        for name in [
            "getState",
            "isFinished",
            "remove",
            "promote",
            "changePriority",
            "changeDelay",
            "extendLock",
            "clearLogs",
            "dependencies",
            "removeChildDependency",
            "removeDeduplicationKey",
            "obliterate",
            "moveJobsToWait",
            "queueAdmin",
            "scheduler",
            "upsertScheduler",
            "removeOrphans",
        ] {
            let (script, keys) = op(name).unwrap();
            assert!(!script.get_hash().is_empty());
            let k = QueueKeys::new("bull", "q");
            for suffix in keys {
                assert!(k.part(suffix).starts_with("bull:q:"));
            }
        }
        assert!(op("nope").is_none());
    }

    #[test]
    fn replies_become_json() {
        let v = Value::Array(vec![
            Value::Int(-3),
            Value::BulkString(b"x".to_vec()),
            Value::Nil,
        ]);
        assert_eq!(reply_json(v), serde_json::json!([-3, "x", null]));
    }
}
