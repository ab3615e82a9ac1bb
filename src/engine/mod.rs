//! The engine: tokio + redis only. Nothing under this module may import napi; the binding
//! layer (`crate::binding`) is the only place that knows about JavaScript.
//!
//! Architecture in one paragraph: every queue and worker of the process shares one
//! [`connection::Pair`] per Redis endpoint (a command socket and a blocking socket, kept up
//! by supervisors and held in the [`connection::Registry`]). A [`worker::Worker`] takes jobs
//! with Lua scripts on the command socket ([`scripts`]); when its queue looks empty it waits
//! through the pair's [`connection::Dispatcher`], the blocking socket's only user, which
//! waits for every such queue with one `BZPOPMIN`. The handler (the binding's bridge into
//! JavaScript) runs the job and answers with a [`job::Outcome`]; the worker writes final
//! outcomes in coalesced `finish` calls that also fetch the next jobs. A [`queue::Queue`]
//! adds jobs and reads and administers the queue on the same command socket. Both embed a
//! [`handle::QueueHandle`]: the queue's keys, the pair, and the job operations.

#![warn(missing_docs)]

/// Connection registry, pairs and their supervisors, events, health, the dispatcher.
pub mod connection;
/// The one error type and its stable codes.
pub mod error;
/// FlowProducer: trees of jobs stored as BullMQ's FlowProducer stores them.
pub mod flow;
/// `QueueHandle`: a queue's keys and pair, and the five job operations.
pub mod handle;
/// A job apart from Redis: stored options, retention, retry and backoff, scheduler
/// iterations, the validation of new jobs, the one outcome type.
pub mod job;
/// Every Redis key name, the job states with a key, the queue-name rule.
pub mod keys;
/// Assembly of the Lua scripts from their includes.
pub mod lua;
/// Manual processing (`new Worker(name, null)`): getNextJob, moveToCompleted, moveToFailed.
pub mod manual;
/// BullMQ's per-minute job metrics, read side (`Queue.getMetrics`).
pub mod metrics;
/// The process view: counters and histograms of the engine, read on demand.
pub mod observe;
/// Connection options: parsing, validation, the resolved endpoint.
pub mod options;
/// The one key-ordered JSON value and its msgpack encoding.
pub mod ordered_json;
/// The producer / admin side (BullMQ's `Queue`).
pub mod queue;
/// The Redis-call layer: every script (one table) and command, the code -> error map.
pub mod scripts;
/// The rest of BullMQ's Job and Queue surface: one Lua script per operation.
pub mod surface;
/// Wall-clock milliseconds and cheap randomness.
pub mod util;
/// The worker: config, handler types, run loop, finish queue, process-wide runtime.
pub mod worker;

use serde::Serialize;

pub use connection::{ConnectionEvent, Registry};
pub use error::{Error, Result};
pub use handle::QueueHandle;
pub use job::Outcome;
pub use keys::{JobState, QueueKeys};
pub use options::Endpoint;
pub use queue::{Queue, QueueConfig};
pub use worker::{JobHandler, Worker, WorkerConfig, WorkerEvent};

/// `health()` of the API: the connections of the process (see [`connection::Health`]) and
/// every live worker.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    /// The connection pairs, summed and per endpoint.
    #[serde(flatten)]
    pub connections: connection::Health,
    /// Every live worker.
    pub workers: Vec<worker::WorkerHealth>,
}

/// The process's health: connections (of the global registry) and workers.
pub fn health() -> Health {
    Health {
        connections: connection::global().health(),
        workers: worker::health(),
    }
}

/// `shutdown()` of the API: close every worker gracefully, then every connection.
pub async fn shutdown() {
    connection::events_reader::shutdown().await;
    worker::close_all().await;
    connection::global().shutdown().await;
}
