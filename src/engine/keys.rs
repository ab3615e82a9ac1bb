//! Redis key names of one queue, BullMQ's layout (`bullmq-protocol.md` §2), the job states
//! that have a key, and the rule for queue names. This is the only place in the engine where
//! key names are built; the Lua scripts build job keys themselves from `base` (passed to them
//! as "P").

use super::error::{Error, Result};

/// A queue name is part of every key, and BullMQ splits keys at `:`.
pub fn validate_queue_name(name: &str, option: &str) -> Result<()> {
    if name.is_empty() || name.contains(':') {
        return Err(Error::invalid(
            option,
            format!("`{name}` is not a queue name: it must be a non-empty string without `:`"),
        ));
    }
    Ok(())
}

/// The states of a job that have a key of their own (BullMQ's state names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// `wait` (also accepted as `waiting`).
    Wait,
    /// `paused` (BullMQ 5's paused list).
    Paused,
    /// `active`.
    Active,
    /// `prioritized`.
    Prioritized,
    /// `delayed`.
    Delayed,
    /// `completed`.
    Completed,
    /// `failed`.
    Failed,
    /// `waiting-children`.
    WaitingChildren,
    /// `repeat` (the job schedulers).
    Repeat,
}

impl JobState {
    /// Every state, in BullMQ's order of the getters.
    pub const ALL: [JobState; 9] = [
        JobState::Wait,
        JobState::Paused,
        JobState::Active,
        JobState::Prioritized,
        JobState::Delayed,
        JobState::Completed,
        JobState::Failed,
        JobState::WaitingChildren,
        JobState::Repeat,
    ];

    /// A state by BullMQ's name (`waiting` = `wait`), or None for a name that is not one.
    pub fn parse(name: &str) -> Option<Self> {
        let name = if name == "waiting" { "wait" } else { name };
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// BullMQ's name, which is also the key's suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Wait => "wait",
            JobState::Paused => "paused",
            JobState::Active => "active",
            JobState::Prioritized => "prioritized",
            JobState::Delayed => "delayed",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::WaitingChildren => "waiting-children",
            JobState::Repeat => "repeat",
        }
    }

    /// Stored as a list (LLEN counts it); the others are sorted sets.
    pub fn is_list(self) -> bool {
        matches!(self, JobState::Wait | JobState::Paused | JobState::Active)
    }
}

/// Every key of the queue `<prefix>:<name>`.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // each field is the key named like it (`stalled_check` = `stalled-check`)
pub struct QueueKeys {
    pub prefix: String,
    pub name: String,
    /// `<prefix>:<name>:`
    pub base: String,
    pub wait: String,
    pub active: String,
    pub prioritized: String,
    pub events: String,
    pub stalled: String,
    pub limiter: String,
    pub delayed: String,
    pub paused: String,
    pub meta: String,
    pub pc: String,
    pub marker: String,
    pub completed: String,
    pub failed: String,
    pub stalled_check: String,
    pub id: String,
    pub waiting_children: String,
}

impl QueueKeys {
    /// The keys of queue `name` under `prefix`.
    pub fn new(prefix: &str, name: &str) -> Self {
        let base = format!("{prefix}:{name}:");
        let key = |suffix: &str| format!("{base}{suffix}");
        QueueKeys {
            prefix: prefix.to_string(),
            name: name.to_string(),
            wait: key("wait"),
            active: key("active"),
            prioritized: key("prioritized"),
            events: key("events"),
            stalled: key("stalled"),
            limiter: key("limiter"),
            delayed: key("delayed"),
            paused: key("paused"),
            meta: key("meta"),
            pc: key("pc"),
            marker: key("marker"),
            completed: key("completed"),
            failed: key("failed"),
            stalled_check: key("stalled-check"),
            id: key("id"),
            waiting_children: key("waiting-children"),
            base,
        }
    }

    /// The queue's qualified name `<prefix>:<name>` (BullMQ's `queueKey`, as found in a
    /// child's `parent` JSON).
    pub fn qualified_name(&self) -> &str {
        &self.base[..self.base.len() - 1]
    }

    /// The job hash.
    pub fn job(&self, id: &str) -> String {
        format!("{}{id}", self.base)
    }

    /// The job's lock (value = the owner's token).
    pub fn lock(&self, id: &str) -> String {
        format!("{}{id}:lock", self.base)
    }

    /// The job's log lines.
    pub fn logs(&self, id: &str) -> String {
        format!("{}{id}:logs", self.base)
    }

    /// A parent's finished children: child job key -> returnvalue JSON.
    pub fn processed(&self, id: &str) -> String {
        format!("{}{id}:processed", self.base)
    }

    /// A parent's unfinished children (full job keys).
    pub fn dependencies(&self, id: &str) -> String {
        format!("{}{id}:dependencies", self.base)
    }

    /// A parent's children that failed with `failParentOnFailure` (zset).
    pub fn unsuccessful(&self, id: &str) -> String {
        format!("{}{id}:unsuccessful", self.base)
    }

    /// The job schedulers (zset: scheduler id -> next run).
    pub fn repeat(&self) -> String {
        format!("{}repeat", self.base)
    }

    /// The key of a job state.
    pub fn state(&self, state: JobState) -> String {
        format!("{}{}", self.base, state.as_str())
    }

    /// The key that deduplication id `id` is claimed under (value = owning job id).
    pub fn dedup(&self, id: &str) -> String {
        format!("{}de:{id}", self.base)
    }
}

/// The key of job `id` of the queue whose qualified name is `queue_key` (`<prefix>:<queue>`),
/// e.g. a parent given as `{ id, queue }`.
pub fn job_key_in(queue_key: &str, id: &str) -> String {
    format!("{queue_key}:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_follow_bullmq_layout() {
        let k = QueueKeys::new("bull", "q1");
        assert_eq!(k.prefix, "bull");
        assert_eq!(k.name, "q1");
        assert_eq!(k.base, "bull:q1:");
        assert_eq!(k.qualified_name(), "bull:q1");
        let expected = [
            (&k.wait, "bull:q1:wait"),
            (&k.active, "bull:q1:active"),
            (&k.prioritized, "bull:q1:prioritized"),
            (&k.events, "bull:q1:events"),
            (&k.stalled, "bull:q1:stalled"),
            (&k.limiter, "bull:q1:limiter"),
            (&k.delayed, "bull:q1:delayed"),
            (&k.paused, "bull:q1:paused"),
            (&k.meta, "bull:q1:meta"),
            (&k.pc, "bull:q1:pc"),
            (&k.marker, "bull:q1:marker"),
            (&k.completed, "bull:q1:completed"),
            (&k.failed, "bull:q1:failed"),
            (&k.stalled_check, "bull:q1:stalled-check"),
            (&k.id, "bull:q1:id"),
            (&k.waiting_children, "bull:q1:waiting-children"),
        ];
        for (got, want) in expected {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn job_keys_append_the_id_to_the_base() {
        let k = QueueKeys::new("bull", "q1");
        assert_eq!(k.job("12"), "bull:q1:12");
        assert_eq!(k.lock("12"), "bull:q1:12:lock");
        assert_eq!(k.logs("12"), "bull:q1:12:logs");
        assert_eq!(k.processed("12"), "bull:q1:12:processed");
        assert_eq!(k.dependencies("12"), "bull:q1:12:dependencies");
        assert_eq!(k.unsuccessful("12"), "bull:q1:12:unsuccessful");
        // Scheduler iterations and flow children carry colons / uuids in their ids.
        assert_eq!(
            k.job("repeat:s1:1700000000000"),
            "bull:q1:repeat:s1:1700000000000"
        );
    }

    #[test]
    fn queue_side_keys() {
        let k = QueueKeys::new("bull", "q1");
        assert_eq!(k.repeat(), "bull:q1:repeat");
        assert_eq!(k.state(JobState::Wait), "bull:q1:wait");
        assert_eq!(
            k.state(JobState::WaitingChildren),
            "bull:q1:waiting-children"
        );
        assert_eq!(JobState::parse("waiting"), Some(JobState::Wait));
        assert_eq!(JobState::parse("meta"), None);
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert!(JobState::Active.is_list() && !JobState::Delayed.is_list());
        assert!(validate_queue_name("a:b", "name").is_err());
        assert!(validate_queue_name("", "name").is_err());
        assert!(validate_queue_name("ok", "name").is_ok());
        assert_eq!(k.dedup("d1"), "bull:q1:de:d1");
        assert_eq!(job_key_in("bull:parents", "p1"), "bull:parents:p1");
    }

    #[test]
    fn custom_prefix_with_hash_tag() {
        let k = QueueKeys::new("{app}", "mail");
        assert_eq!(k.base, "{app}:mail:");
        assert_eq!(k.marker, "{app}:mail:marker");
        assert_eq!(k.job("7"), "{app}:mail:7");
        assert_eq!(k.qualified_name(), "{app}:mail");
    }
}
