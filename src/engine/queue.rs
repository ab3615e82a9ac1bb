//! The producer / admin side: BullMQ's `Queue` (add, addBulk, getters, counts, pause /
//! resume, drain, clean, retry of finished jobs) on the process-wide command connection.
//! A queue opens no socket of its own: it borrows the command connection of its endpoint's
//! pair, like every worker of the process.
//!
//! Writes go through our scripts (`add_job`, `pause`, `drain`, `clean`, `reprocess`; see
//! docs/PROTOCOL.md), reads that need a consistent view through `get_jobs`; counts, logs and
//! single hashes are plain commands, pipelined where there are several.

mod opts;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Script, ScriptInvocation, Value};

pub use opts::{MAX_PRIORITY, OVal, PreparedJob, prepare};

use super::connection::{self, Pair};
use super::error::{Error, Result};
use super::keys::QueueKeys;
use super::lua;
use super::options::Endpoint;
use super::scripts::{self, as_int, as_text, field_map, invoke, string_list};
use super::util::now_ms;

static ADD_JOB: LazyLock<Script> =
    LazyLock::new(|| lua::script("add_job", include_str!("../scripts/add_job.lua")));
static PAUSE: LazyLock<Script> =
    LazyLock::new(|| lua::script("pause", include_str!("../scripts/pause.lua")));
static DRAIN: LazyLock<Script> =
    LazyLock::new(|| lua::script("drain", include_str!("../scripts/drain.lua")));
static CLEAN: LazyLock<Script> =
    LazyLock::new(|| lua::script("clean", include_str!("../scripts/clean.lua")));
static REPROCESS: LazyLock<Script> =
    LazyLock::new(|| lua::script("reprocess", include_str!("../scripts/reprocess.lua")));
static GET_JOBS: LazyLock<Script> =
    LazyLock::new(|| lua::script("get_jobs", include_str!("../scripts/get_jobs.lua")));

/// Legacy v5 `paused` jobs moved back into `wait` per resume call (BullMQ's batch size).
const RESUME_BATCH: u64 = 7000;
/// Jobs removed per clean call (BullMQ's `clean` uses the same cap per round trip).
const CLEAN_BATCH: u64 = 10_000;
/// Reads per state a bounded getter may make to fill the places of vanished jobs.
const GETTER_READS: u64 = 5;

/// What `new Queue(name, { prefix })` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    pub prefix: String,
}

impl QueueConfig {
    /// Queue options (JSON, without `connection`; unknown keys are ignored, as BullMQ's
    /// Queue has many that mean nothing here).
    pub fn from_json(name: &str, v: &serde_json::Value) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid("name", "Queue name must be provided"));
        }
        if name.contains(':') {
            return Err(Error::invalid("name", "Queue name cannot contain :"));
        }
        let prefix = match v.get("prefix") {
            None | Some(serde_json::Value::Null) => "bull".to_string(),
            Some(p) => p
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::invalid("prefix", "must be a non-empty string"))?
                .to_string(),
        };
        Ok(QueueConfig {
            name: name.to_string(),
            prefix,
        })
    }
}

/// A job to add: its name, its data as JSON text and its options as JSON text (already
/// merged with the queue's defaults).
#[derive(Clone, Debug)]
pub struct NewJob {
    pub name: String,
    pub data: String,
    pub opts: String,
}

/// What was added: the id (an existing one when the job was deduplicated or its custom id
/// already existed) and what the job object needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AddedJob {
    pub id: String,
    pub timestamp: f64,
    /// The options as BullMQ's `job.opts` shows them (JSON).
    pub opts: String,
    pub delay: f64,
    pub priority: u64,
}

/// A stored job: its id and hash fields.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub fields: HashMap<String, String>,
}

/// BullMQ's state names as getters and counts accept them (`waiting` = `wait`).
pub fn state_name(kind: &str) -> &str {
    if kind == "waiting" { "wait" } else { kind }
}

fn is_list_state(state: &str) -> bool {
    matches!(state, "wait" | "paused" | "active")
}

pub struct Queue {
    keys: QueueKeys,
    endpoint: Endpoint,
    pair: Mutex<Arc<Pair>>,
    closed: AtomicBool,
}

impl Queue {
    /// A queue on the process-wide pair of `endpoint` (created, and connecting in the
    /// background, if this is its first user). Must be called inside the tokio runtime.
    pub fn new(endpoint: &Endpoint, cfg: QueueConfig) -> Result<Self> {
        let pair = connection::global().pair(endpoint)?;
        Ok(Queue {
            keys: QueueKeys::new(&cfg.prefix, &cfg.name),
            endpoint: endpoint.clone(),
            pair: Mutex::new(pair),
            closed: AtomicBool::new(false),
        })
    }

    pub fn keys(&self) -> &QueueKeys {
        &self.keys
    }

    /// The queue no longer accepts calls. The shared connections stay (other queues and
    /// workers use them); `shutdown()` closes those. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Resolves once the pair's sockets are up.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<()> {
        let pair = Arc::clone(&self.pair.lock().unwrap());
        pair.wait_ready(timeout).await
    }

    /// The shared command connection. After `shutdown()` closed the pair, a queue that was
    /// not closed itself connects again (as a new Queue would); a pair that gave up (e.g.
    /// wrong password) keeps reporting why.
    async fn conn(&self) -> Result<MultiplexedConnection> {
        if self.is_closed() {
            return Err(Error::Closed(format!("queue {} is closed", self.keys.name)));
        }
        let pair = Arc::clone(&self.pair.lock().unwrap());
        match pair.command().await {
            Err(Error::Closed(_)) if pair.is_closed() => {
                let fresh = connection::global().pair(&self.endpoint)?;
                *self.pair.lock().unwrap() = Arc::clone(&fresh);
                fresh.command().await
            }
            other => other,
        }
    }

    /// Validate and prepare every job first (nothing is written when one is invalid), then
    /// add them all in one script call: one round trip however many jobs.
    pub async fn add_bulk(&self, jobs: &[NewJob]) -> Result<Vec<AddedJob>> {
        let now = now_ms();
        let single = jobs.len() == 1;
        let prepared = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let at = if single {
                    "opts".to_string()
                } else {
                    format!("jobs[{i}].opts")
                };
                prepare(&j.name, &j.data, &j.opts, &at, now)
            })
            .collect::<Result<Vec<_>>>()?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.keys;
        let mut inv = ADD_JOB.prepare_invoke();
        inv.key(&k.wait)
            .key(&k.paused)
            .key(&k.meta)
            .key(&k.id)
            .key(&k.completed)
            .key(&k.delayed)
            .key(&k.active)
            .key(&k.events)
            .key(&k.marker)
            .key(&k.prioritized)
            .key(&k.pc)
            .arg(&k.base);
        for p in &prepared {
            inv.arg(&p.custom_id)
                .arg(&p.name)
                .arg(p.timestamp.to_string())
                .arg(&p.data)
                .arg(p.packed_opts.as_slice())
                .arg(p.parent_key.as_deref().unwrap_or(""))
                .arg(p.packed_parent.as_deref().unwrap_or(b""));
        }
        let mut conn = self.conn().await?;
        let reply = invoke(&inv, &mut conn).await?;
        let Value::Array(items) = &reply else {
            return Err(self.unexpected("add_job", &reply));
        };
        if items.len() != prepared.len() {
            return Err(self.unexpected("add_job", &reply));
        }
        let mut out = Vec::with_capacity(prepared.len());
        for (p, item) in prepared.into_iter().zip(items) {
            if let Some(code) = as_int(item) {
                return Err(self.add_error(code, &p));
            }
            let id = as_text(item).ok_or_else(|| self.unexpected("add_job", &reply))?;
            out.push(AddedJob {
                id,
                timestamp: p.timestamp,
                opts: p.public_opts,
                delay: p.delay,
                priority: p.priority,
            });
        }
        Ok(out)
    }

    fn add_error(&self, code: i64, p: &PreparedJob) -> Error {
        let q = &self.keys.name;
        let parent = p.parent_key.as_deref().unwrap_or("");
        match code {
            -5 => Error::JobNotFound(format!(
                "cannot add job to queue {q}: parent job {parent} does not exist"
            )),
            -7 => Error::JobState(format!(
                "cannot add job {} to queue {q}: it already exists with another parent than {parent}",
                p.custom_id
            )),
            other => Error::Redis(format!(
                "cannot add job to queue {q}: unexpected code {other}"
            )),
        }
    }

    /// The job's hash, or None when it does not exist.
    pub async fn get_job(&self, id: &str) -> Result<Option<JobRecord>> {
        let mut conn = self.conn().await?;
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.job(id))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok((!fields.is_empty()).then(|| JobRecord {
            id: id.to_string(),
            fields,
        }))
    }

    /// Jobs of the given states (`waiting` = `wait`), BullMQ's order: lists oldest first
    /// when `asc`, sets by score (ascending or descending). An id listed under two states
    /// (it moved meanwhile) appears once.
    pub async fn get_jobs(
        &self,
        states: &[String],
        start: i64,
        end: i64,
        asc: bool,
    ) -> Result<Vec<JobRecord>> {
        let mut seen = HashSet::new();
        let mut inv = GET_JOBS.prepare_invoke();
        inv.arg(&self.keys.base)
            .arg(start)
            .arg(end)
            .arg(if asc { "1" } else { "0" });
        inv.arg(GETTER_READS);
        let mut names = Vec::new();
        for s in states {
            let state = state_name(s);
            if !seen.insert(state.to_string()) {
                continue;
            }
            let key = self.state_key(s)?;
            inv.key(key);
            names.push(state.to_string());
        }
        for n in &names {
            inv.arg(n);
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let reply = invoke(&inv, &mut conn).await?;
        let Value::Array(items) = &reply else {
            return Err(self.unexpected("get_jobs", &reply));
        };
        if items.len() % 2 != 0 {
            return Err(self.unexpected("get_jobs", &reply));
        }
        let mut ids = HashSet::new();
        let mut out = Vec::new();
        for pair in items.chunks(2) {
            let id = as_text(&pair[0]).ok_or_else(|| self.unexpected("get_jobs", &reply))?;
            let fields = field_map(&pair[1]).ok_or_else(|| self.unexpected("get_jobs", &reply))?;
            if ids.insert(id.clone()) {
                out.push(JobRecord { id, fields });
            }
        }
        Ok(out)
    }

    fn state_key(&self, kind: &str) -> Result<String> {
        self.keys.state(state_name(kind)).ok_or_else(|| {
            Error::invalid(
                "type",
                format!(
                    "`{kind}` is not a job state (waiting, wait, paused, active, prioritized, delayed, completed, failed, waiting-children, repeat)"
                ),
            )
        })
    }

    /// Number of jobs per state, in the order asked (one round trip).
    pub async fn counts(&self, states: &[String]) -> Result<Vec<u64>> {
        let mut pipe = redis::pipe();
        for s in states {
            let key = self.state_key(s)?;
            let cmd = if is_list_state(state_name(s)) {
                "LLEN"
            } else {
                "ZCARD"
            };
            pipe.cmd(cmd).arg(key);
        }
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        pipe.query_async(&mut conn).await.map_err(redis_err)
    }

    /// `meta.paused` is set (by our pause or BullMQ's, v5 or v6).
    pub async fn is_paused(&self) -> Result<bool> {
        let mut conn = self.conn().await?;
        redis::cmd("HEXISTS")
            .arg(&self.keys.meta)
            .arg("paused")
            .query_async(&mut conn)
            .await
            .map_err(redis_err)
    }

    fn pause_invocation(&self, action: &str, emit: bool) -> ScriptInvocation<'static> {
        let k = &self.keys;
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
        inv
    }

    /// Pause globally: workers of every process (ours and BullMQ's) stop taking jobs.
    pub async fn pause(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        invoke(&self.pause_invocation("paused", true), &mut conn).await?;
        Ok(())
    }

    /// Resume globally, moving any legacy v5 `paused` list back into `wait` (in batches,
    /// until none is left).
    pub async fn resume(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut emit = true;
        loop {
            let reply = invoke(&self.pause_invocation("resumed", emit), &mut conn).await?;
            emit = false;
            match as_int(&reply) {
                Some(0) => return Ok(()),
                Some(n) if n > 0 => continue,
                _ => return Err(self.unexpected("pause", &reply)),
            }
        }
    }

    /// Remove every waiting (and prioritized) job, and the delayed ones when `delayed`.
    /// Returns how many were removed.
    pub async fn drain(&self, delayed: bool) -> Result<u64> {
        let k = &self.keys;
        let mut inv = DRAIN.prepare_invoke();
        inv.key(&k.wait)
            .key(&k.paused)
            .key(&k.delayed)
            .key(&k.prioritized)
            .key(k.repeat())
            .arg(&k.base)
            .arg(if delayed { "1" } else { "0" });
        let mut conn = self.conn().await?;
        let reply = invoke(&inv, &mut conn).await?;
        as_int(&reply)
            .map(|n| n.max(0) as u64)
            .ok_or_else(|| self.unexpected("drain", &reply))
    }

    /// Remove jobs of `kind` older than `grace_ms`, at most `limit` (0 = all). Returns the
    /// removed ids. Kinds: completed, failed, delayed, prioritized, wait (waiting), paused,
    /// active.
    pub async fn clean(&self, grace_ms: u64, limit: u64, kind: &str) -> Result<Vec<String>> {
        let state = state_name(kind);
        if !matches!(
            state,
            "completed" | "failed" | "delayed" | "prioritized" | "wait" | "paused" | "active"
        ) {
            return Err(Error::invalid(
                "type",
                format!(
                    "`{kind}` cannot be cleaned (completed, failed, delayed, prioritized, wait, paused, active)"
                ),
            ));
        }
        let source = self.state_key(state)?;
        let cutoff = now_ms().saturating_sub(grace_ms);
        let max = if limit == 0 { u64::MAX } else { limit };
        let per_call = max.min(CLEAN_BATCH);
        let mut conn = self.conn().await?;
        let mut removed: Vec<String> = Vec::new();
        while (removed.len() as u64) < max {
            let k = &self.keys;
            let mut inv = CLEAN.prepare_invoke();
            inv.key(&source)
                .key(&k.events)
                .key(k.repeat())
                .arg(&k.base)
                .arg(cutoff)
                .arg(per_call)
                .arg(state);
            let reply = invoke(&inv, &mut conn).await?;
            let ids = string_list(&reply).ok_or_else(|| self.unexpected("clean", &reply))?;
            let n = ids.len() as u64;
            removed.extend(ids);
            if n < per_call {
                break;
            }
        }
        Ok(removed)
    }

    /// BullMQ's `job.retry(state)`: a failed (or completed) job goes back to waiting.
    pub async fn reprocess(
        &self,
        id: &str,
        state: &str,
        reset_attempts_made: bool,
        reset_attempts_started: bool,
    ) -> Result<()> {
        let (source, field) = match state {
            "failed" => (&self.keys.failed, "failedReason"),
            "completed" => (&self.keys.completed, "returnvalue"),
            other => {
                return Err(Error::invalid(
                    "state",
                    format!("`{other}` cannot be retried (failed or completed)"),
                ));
            }
        };
        let k = &self.keys;
        let mut inv = REPROCESS.prepare_invoke();
        inv.key(k.job(id))
            .key(&k.events)
            .key(source)
            .key(&k.wait)
            .key(&k.meta)
            .key(&k.active)
            .key(&k.marker)
            .key(&k.prioritized)
            .key(&k.pc)
            .key(&k.paused)
            .arg(id)
            .arg(field)
            .arg(state)
            .arg(if reset_attempts_made { "1" } else { "0" })
            .arg(if reset_attempts_started { "1" } else { "0" });
        let mut conn = self.conn().await?;
        let reply = invoke(&inv, &mut conn).await?;
        let q = &k.name;
        match as_int(&reply) {
            Some(0) => Ok(()),
            Some(-1) => Err(Error::JobNotFound(format!(
                "cannot retry: job {id} in queue {q} does not exist"
            ))),
            Some(-3) => Err(Error::JobState(format!(
                "cannot retry: job {id} in queue {q} is not {state}"
            ))),
            _ => Err(self.unexpected("reprocess", &reply)),
        }
    }

    /// Log lines of a job (`start`..=`end`, oldest first when `asc`) and how many it has.
    pub async fn job_logs(
        &self,
        id: &str,
        start: i64,
        end: i64,
        asc: bool,
    ) -> Result<(Vec<String>, u64)> {
        let key = self.keys.logs(id);
        let (from, to) = if asc {
            (start, end)
        } else {
            (-(end + 1), -(start + 1))
        };
        let mut conn = self.conn().await?;
        let (mut logs, count): (Vec<String>, u64) = redis::pipe()
            .cmd("LRANGE")
            .arg(&key)
            .arg(from)
            .arg(to)
            .cmd("LLEN")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if !asc {
            logs.reverse();
        }
        Ok((logs, count))
    }

    pub async fn update_progress(&self, id: &str, progress_json: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        scripts::update_progress(&mut conn, &self.keys, id, progress_json).await
    }

    pub async fn add_log(&self, id: &str, line: &str, keep_logs: Option<u64>) -> Result<u64> {
        let mut conn = self.conn().await?;
        scripts::add_log(&mut conn, &self.keys, id, line, keep_logs).await
    }

    pub async fn update_data(&self, id: &str, data_json: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        scripts::update_data(&mut conn, &self.keys, id, data_json).await
    }

    /// Children results of a flow parent: child job key -> returnvalue JSON.
    pub async fn children_values(&self, id: &str) -> Result<HashMap<String, String>> {
        let mut conn = self.conn().await?;
        scripts::children_values(&mut conn, &self.keys, id).await
    }

    /// Pending and processed children counts of a flow parent.
    pub async fn dependencies_count(&self, id: &str) -> Result<(u64, u64)> {
        let mut conn = self.conn().await?;
        scripts::dependencies_count(&mut conn, &self.keys, id).await
    }

    fn unexpected(&self, script: &str, reply: &Value) -> Error {
        Error::Redis(format!(
            "unexpected reply from script {script} in queue {}: {reply:?}",
            self.keys.name
        ))
    }
}

fn redis_err(e: redis::RedisError) -> Error {
    Error::from_redis(&e, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_names_and_prefix() {
        let c = QueueConfig::from_json("mail", &json!({})).unwrap();
        assert_eq!((c.name.as_str(), c.prefix.as_str()), ("mail", "bull"));
        let c = QueueConfig::from_json("mail", &json!({"prefix": "{app}"})).unwrap();
        assert_eq!(c.prefix, "{app}");
        for (name, opts) in [
            ("a:b", json!({})),
            ("", json!({})),
            ("ok", json!({"prefix": ""})),
            ("ok", json!({"prefix": 5})),
        ] {
            assert!(
                matches!(
                    QueueConfig::from_json(name, &opts),
                    Err(Error::InvalidOption { .. })
                ),
                "{name} {opts}"
            );
        }
    }

    #[test]
    fn waiting_is_wait() {
        assert_eq!(state_name("waiting"), "wait");
        assert_eq!(state_name("failed"), "failed");
        assert!(is_list_state("active"));
        assert!(!is_list_state("delayed"));
    }

    #[test]
    fn flat_hashes_parse() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let m = field_map(&Value::Array(vec![b("name"), b("x"), b("data"), b("{}")])).unwrap();
        assert_eq!(m["name"], "x");
        assert_eq!(m["data"], "{}");
        assert!(field_map(&Value::Array(vec![b("odd")])).is_none());
    }
}
