//! What the engine knows about one job, apart from Redis: its stored options and their
//! retention rules, the retry rule and backoff, job-scheduler iterations, and the
//! validation and encoding of new jobs. Nothing here talks to Redis; the script calls that
//! use these values live in [`crate::engine::scripts`].

pub mod add;
pub mod options;
pub mod outcome;
pub mod retry;
pub mod scheduler;

pub use add::{MAX_PRIORITY, PreparedJob, prepare};
pub use options::{Backoff, JobOpts, KEEP_ALL, KeepJobs, attempts_made, parse_keep};
pub use outcome::Outcome;
pub use retry::{RetryDecision, append_stacktrace, builtin_backoff, decide_retry};
pub use scheduler::{
    NextIteration, is_legacy_repeat_key, next_iteration, next_iteration_failed,
    next_iteration_opts, not_a_scheduler,
};
