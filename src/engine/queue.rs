//! The producer / admin side: BullMQ's `Queue` (add, addBulk, getters, counts, pause /
//! resume, drain, clean, retry of finished jobs) on the process-wide command connection.
//! A queue opens no socket of its own: it borrows the command connection of its endpoint's
//! pair, like every worker of the process. The Redis calls are in [`scripts::queue`]; this
//! module validates the arguments and drives the calls.

use std::ops::Deref;

use super::error::{Error, Result};
use super::handle::QueueHandle;
use super::job::{PreparedJob, prepare};
use super::keys::{JobState, QueueKeys, validate_queue_name};
use super::options::Endpoint;
use super::scripts::{self, queue as calls};
use super::util::now_ms;

pub use super::scripts::fetch::JobRecord;

/// Jobs removed per clean call (BullMQ's `clean` uses the same cap per round trip).
const CLEAN_BATCH: u64 = 10_000;

/// What `new Queue(name, { prefix })` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue's name.
    pub name: String,
    /// The key prefix (`bull` by default).
    pub prefix: String,
}

impl QueueConfig {
    /// Queue options (JSON, without `connection`; unknown keys are ignored, as BullMQ's
    /// Queue has many that mean nothing here).
    pub fn from_json(name: &str, v: &serde_json::Value) -> Result<Self> {
        validate_queue_name(name, "name")?;
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
    /// The job's name.
    pub name: String,
    /// The data, JSON.
    pub data: String,
    /// The options, JSON.
    pub opts: String,
}

/// What was added: the id (an existing one when the job was deduplicated or its custom id
/// already existed) and what the job object needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AddedJob {
    /// The job's id.
    pub id: String,
    /// The job's timestamp (ms).
    pub timestamp: f64,
    /// The options as BullMQ's `job.opts` shows them (JSON).
    pub opts: String,
    /// `delay` (ms).
    pub delay: f64,
    /// `priority`.
    pub priority: u64,
}

/// A queue: its [`QueueHandle`] (keys, pair, job operations) and the producer / admin calls.
pub struct Queue {
    handle: QueueHandle,
}

impl Deref for Queue {
    type Target = QueueHandle;

    fn deref(&self) -> &QueueHandle {
        &self.handle
    }
}

/// A state by name for the getters, or the error naming the accepted ones.
fn state(kind: &str) -> Result<JobState> {
    JobState::parse(kind).ok_or_else(|| {
        Error::invalid(
            "type",
            format!(
                "`{kind}` is not a job state (waiting, wait, paused, active, prioritized, delayed, completed, failed, waiting-children, repeat)"
            ),
        )
    })
}

impl Queue {
    /// A queue on the process-wide pair of `endpoint` (created, and connecting in the
    /// background, if this is its first user). Must be called inside the tokio runtime.
    pub fn new(endpoint: &Endpoint, cfg: QueueConfig) -> Result<Self> {
        let keys = QueueKeys::new(&cfg.prefix, &cfg.name);
        Ok(Queue {
            handle: QueueHandle::new(endpoint, keys, true)?,
        })
    }

    /// The queue's [`QueueHandle`].
    pub fn handle(&self) -> &QueueHandle {
        &self.handle
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
            .collect::<Result<Vec<PreparedJob>>>()?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let ids = calls::add_jobs(&mut conn, self.keys(), &prepared).await?;
        Ok(prepared
            .into_iter()
            .zip(ids)
            .map(|(p, id)| AddedJob {
                id,
                timestamp: p.timestamp,
                opts: p.public_opts,
                delay: p.delay,
                priority: p.priority,
            })
            .collect())
    }

    /// The job's hash, or None when it does not exist.
    pub async fn get_job(&self, id: &str) -> Result<Option<JobRecord>> {
        let mut conn = self.conn().await?;
        let fields = calls::job_hash(&mut conn, self.keys(), id).await?;
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
        let mut wanted: Vec<JobState> = Vec::new();
        for s in states {
            let s = state(s)?;
            if !wanted.contains(&s) {
                wanted.push(s);
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        calls::get_jobs(&mut conn, self.keys(), &wanted, start, end, asc).await
    }

    /// Number of jobs per state, in the order asked (one round trip).
    pub async fn counts(&self, states: &[String]) -> Result<Vec<u64>> {
        let states = states
            .iter()
            .map(|s| state(s))
            .collect::<Result<Vec<_>>>()?;
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        calls::counts(&mut conn, self.keys(), &states).await
    }

    /// `meta.paused` is set (by our pause or BullMQ's, v5 or v6).
    pub async fn is_paused(&self) -> Result<bool> {
        let mut conn = self.conn().await?;
        calls::is_paused(&mut conn, self.keys()).await
    }

    /// Pause globally: workers of every process (ours and BullMQ's) stop taking jobs.
    pub async fn pause(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        calls::pause(&mut conn, self.keys(), "paused", true).await?;
        Ok(())
    }

    /// Resume globally, moving any legacy v5 `paused` list back into `wait` (in batches,
    /// until none is left).
    pub async fn resume(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut emit = true;
        while calls::pause(&mut conn, self.keys(), "resumed", emit).await? > 0 {
            emit = false;
        }
        Ok(())
    }

    /// Remove every waiting (and prioritized) job, and the delayed ones when `delayed`.
    /// Returns how many were removed.
    pub async fn drain(&self, delayed: bool) -> Result<u64> {
        let mut conn = self.conn().await?;
        calls::drain(&mut conn, self.keys(), delayed).await
    }

    /// Remove jobs of `kind` older than `grace_ms`, at most `limit` (0 = all). Returns the
    /// removed ids. Kinds: completed, failed, delayed, prioritized, wait (waiting), paused,
    /// active.
    pub async fn clean(&self, grace_ms: u64, limit: u64, kind: &str) -> Result<Vec<String>> {
        use JobState::*;
        let Some(state) = JobState::parse(kind).filter(|s| {
            matches!(
                s,
                Completed | Failed | Delayed | Prioritized | Wait | Paused | Active
            )
        }) else {
            return Err(Error::invalid(
                "type",
                format!(
                    "`{kind}` cannot be cleaned (completed, failed, delayed, prioritized, wait, paused, active)"
                ),
            ));
        };
        let cutoff = now_ms().saturating_sub(grace_ms);
        let max = if limit == 0 { u64::MAX } else { limit };
        let per_call = max.min(CLEAN_BATCH);
        let mut conn = self.conn().await?;
        let mut removed: Vec<String> = Vec::new();
        while (removed.len() as u64) < max {
            let ids = calls::clean(&mut conn, self.keys(), state, cutoff, per_call).await?;
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
        let state = match state {
            "failed" => JobState::Failed,
            "completed" => JobState::Completed,
            other => {
                return Err(Error::invalid(
                    "state",
                    format!("`{other}` cannot be retried (failed or completed)"),
                ));
            }
        };
        let mut conn = self.conn().await?;
        scripts::queue::reprocess(
            &mut conn,
            self.keys(),
            id,
            state,
            reset_attempts_made,
            reset_attempts_started,
        )
        .await
    }

    /// Log lines of a job (`start`..=`end`, oldest first when `asc`) and how many it has.
    pub async fn job_logs(
        &self,
        id: &str,
        start: i64,
        end: i64,
        asc: bool,
    ) -> Result<(Vec<String>, u64)> {
        let mut conn = self.conn().await?;
        calls::job_logs(&mut conn, self.keys(), id, start, end, asc).await
    }
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
    fn getter_states_are_named() {
        assert_eq!(state("waiting").unwrap(), JobState::Wait);
        assert!(matches!(state("meta"), Err(Error::InvalidOption { .. })));
    }
}
