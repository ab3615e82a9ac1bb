//! `configure`, `health`, `shutdown`, `onConnection` and the readiness wait.

use std::time::Duration;

use napi::Status;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::error::{IntoNapi, to_napi};
use super::options::{parse, resolve};
use crate::engine::connection::{self, ConnectionEvent};
use crate::engine::{self as engine, Error};

/// The facade's `Date.now()` (see `engine::util::sync_clock`).
#[napi]
pub fn sync_clock(now_ms: f64) {
    crate::engine::util::sync_clock(now_ms);
}

#[napi]
pub fn configure(options_json: Option<String>) -> napi::Result<()> {
    let ep = parse(options_json.as_deref()).napi()?;
    connection::global().configure(ep);
    Ok(())
}

/// Validate connection options (or the environment) synchronously; returns the endpoint's
/// printable name (no credentials).
#[napi]
pub fn resolve_endpoint(options_json: Option<String>) -> napi::Result<String> {
    resolve(options_json.as_deref()).map(|e| e.display()).napi()
}

/// Open (or reuse) the pair for these options and wait until both sockets are up.
#[napi]
pub async fn connect(options_json: Option<String>, timeout_ms: Option<u32>) -> napi::Result<()> {
    let ep = resolve(options_json.as_deref()).napi()?;
    let timeout = Duration::from_millis(timeout_ms.map(u64::from).unwrap_or(30_000));
    connection::global().wait_ready(&ep, timeout).await.napi()
}

#[napi]
pub fn health() -> napi::Result<serde_json::Value> {
    let mut value = serde_json::to_value(engine::health())
        .map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()))?;
    // The third socket: open only while a QueueEvents is subscribed (engine::connection::events_reader).
    value["connections"]["events"] = engine::connection::events_reader::sockets().into();
    Ok(value)
}

/// Close every worker gracefully, then every connection.
#[napi]
pub async fn shutdown() -> napi::Result<()> {
    engine::shutdown().await;
    Ok(())
}

/// Register the facade's dispatcher for connection events; returns the id that
/// `offConnectionEvent` takes. Weak: a listener must never keep the Node process alive.
#[napi]
pub fn on_connection_event(
    callback: ThreadsafeFunction<String, (), String, Status, false, true>,
) -> f64 {
    let id = connection::global().on_event(std::sync::Arc::new(move |ev: &ConnectionEvent| {
        if let Ok(json) = serde_json::to_string(ev) {
            callback.call(json, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }));
    // Ids count registrations: far below 2^53, so exact as a JS number.
    id as f64
}

/// Remove the dispatcher `id` and release its callback, so that a process (or a test runner)
/// with no connection listener left holds no handle of ours.
#[napi]
pub fn off_connection_event(id: f64) {
    connection::global().off_event(id as u64);
}

/// Run one Redis command on the shared command connection. For diagnostics and tests (e.g.
/// `CLIENT LIST` from the application's point of view); not part of the queue API. On a
/// cluster it runs on the owner of the first argument's slot (taken as a key).
#[napi]
pub async fn raw_command(
    options_json: Option<String>,
    args: Vec<String>,
) -> napi::Result<serde_json::Value> {
    let ep = resolve(options_json.as_deref()).napi()?;
    let Some((name, rest)) = args.split_first() else {
        return Err(to_napi(Error::invalid("args", "must not be empty")));
    };
    let mut conn = connection::global()
        .conn(&ep, rest.first().map(|k| k.as_bytes()))
        .await
        .napi()?;
    let mut cmd = redis::cmd(name);
    for a in rest {
        cmd.arg(a);
    }
    let value: redis::Value = cmd
        .query_async(&mut conn)
        .await
        .map_err(|e| raw_error(&e, ep.password.as_deref()))
        .napi()?;
    Ok(value_to_json(value))
}

/// Run commands in one pipeline (`atomic`: inside MULTI / EXEC) on the shared command
/// connection, for the raw client (`queue.client`'s `multi()` / `pipeline()`). One reply per
/// command, `[error message or null, value]`, as ioredis's `exec()` gives them. On a cluster
/// the pipeline goes to the owner of the first command's first argument's slot.
#[napi]
pub async fn raw_pipeline(
    options_json: Option<String>,
    commands: Vec<Vec<String>>,
    atomic: bool,
) -> napi::Result<Vec<serde_json::Value>> {
    let ep = resolve(options_json.as_deref()).napi()?;
    if commands.iter().any(Vec::is_empty) {
        return Err(to_napi(Error::invalid(
            "commands",
            "a command must not be empty",
        )));
    }
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    let first_key = commands[0].get(1).map(|k| k.as_bytes());
    let mut conn = connection::global().conn(&ep, first_key).await.napi()?;
    let mut pipe = redis::pipe();
    if atomic {
        pipe.atomic();
    }
    pipe.ignore_errors();
    for args in &commands {
        let cmd = pipe.cmd(&args[0]);
        for a in &args[1..] {
            cmd.arg(a);
        }
    }
    let replies: Vec<redis::RedisResult<redis::Value>> = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| Error::from_redis(&e, ep.password.as_deref()))
        .napi()?;
    Ok(replies
        .into_iter()
        .map(|r| match r {
            Ok(v) => serde_json::json!([null, value_to_json(v)]),
            Err(e) => serde_json::json!([raw_error(&e, ep.password.as_deref()).to_string(), null]),
        })
        .collect())
}

/// A raw command's failure: typed as everywhere, and an error reply worded as Redis (and
/// ioredis) word it, `<CODE> <detail>`, rather than redis-rs's rendering.
fn raw_error(e: &redis::RedisError, secret: Option<&str>) -> Error {
    match Error::from_redis(e, secret) {
        Error::Redis(text) => Error::Redis(match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => text,
        }),
        typed => typed,
    }
}

pub(super) fn value_to_json(v: redis::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        redis::Value::Nil => J::Null,
        redis::Value::Int(i) => J::from(i),
        redis::Value::BulkString(b) => J::String(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => J::String(s),
        redis::Value::Okay => J::String("OK".into()),
        redis::Value::Array(a) | redis::Value::Set(a) => {
            J::Array(a.into_iter().map(value_to_json).collect())
        }
        // As RESP2 (and ioredis) gives it: the connection speaks RESP3, whose doubles (ZSCORE,
        // WITHSCORES) would otherwise come out as numbers where RESP2 clients see text.
        redis::Value::Double(d) => J::String(d.to_string()),
        redis::Value::VerbatimString { text, .. } => J::String(text),
        redis::Value::Boolean(b) => J::Bool(b),
        redis::Value::Map(m) => J::Array(
            m.into_iter()
                .flat_map(|(k, v)| [value_to_json(k), value_to_json(v)])
                .collect(),
        ),
        other => J::String(format!("{other:?}")),
    }
}
