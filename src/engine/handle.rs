//! [`QueueHandle`]: one queue's keys and its endpoint's connection pair, and the five job
//! operations that a worker's processor and a queue alike offer (progress, log, data,
//! children values, dependency counts). [`crate::engine::worker::Worker`] and
//! [`crate::engine::queue::Queue`] each embed one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::connection::{self, Pair};
use super::error::{Error, Result};
use super::keys::QueueKeys;
use super::options::Endpoint;
use super::scripts;

/// A queue's keys on its endpoint's process-wide connection pair.
pub struct QueueHandle {
    keys: QueueKeys,
    endpoint: Endpoint,
    pair: Mutex<Arc<Pair>>,
    /// A queue follows the registry to a fresh pair after `shutdown()` closed its own (as a
    /// new Queue would connect); a worker stays on the pair it was created with.
    follow_registry: bool,
    closed: AtomicBool,
}

impl QueueHandle {
    /// The handle of queue `keys` on the global registry's pair for `endpoint` (created, and
    /// connecting in the background, if this is its first user). Must be called inside the
    /// tokio runtime.
    pub fn new(endpoint: &Endpoint, keys: QueueKeys, follow_registry: bool) -> Result<Self> {
        let pair = connection::global().pair(endpoint)?;
        Ok(QueueHandle {
            keys,
            endpoint: endpoint.clone(),
            pair: Mutex::new(pair),
            follow_registry,
            closed: AtomicBool::new(false),
        })
    }

    /// The queue's keys.
    pub fn keys(&self) -> &QueueKeys {
        &self.keys
    }

    /// The endpoint the handle was created for.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The connection pair in use.
    pub fn pair(&self) -> Arc<Pair> {
        Arc::clone(&self.pair.lock().unwrap())
    }

    /// Refuse every later call (`Queue.close()`). The shared connections stay. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Whether [`QueueHandle::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Resolves once the pair's sockets are up.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<()> {
        self.pair().wait_ready(timeout).await
    }

    /// The shared command connection. A pair that gave up (e.g. a server too old) keeps
    /// reporting why.
    pub async fn conn(&self) -> Result<MultiplexedConnection> {
        if self.is_closed() {
            return Err(Error::Closed(format!("queue {} is closed", self.keys.name)));
        }
        let pair = self.pair();
        match pair.command().await {
            Err(Error::Closed(_)) if self.follow_registry && pair.is_closed() => {
                let fresh = connection::global().pair(&self.endpoint)?;
                *self.pair.lock().unwrap() = Arc::clone(&fresh);
                fresh.command().await
            }
            other => other,
        }
    }

    /// Store the job's progress (JSON) and emit `progress`.
    pub async fn update_progress(&self, job_id: &str, progress_json: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        scripts::update_progress(&mut conn, &self.keys, job_id, progress_json).await
    }

    /// Append a log line (keeping the newest `keep_logs`); returns the number of lines.
    pub async fn add_log(&self, job_id: &str, line: &str, keep_logs: Option<u64>) -> Result<u64> {
        let mut conn = self.conn().await?;
        scripts::add_log(&mut conn, &self.keys, job_id, line, keep_logs).await
    }

    /// Replace the job's data (JSON).
    pub async fn update_data(&self, job_id: &str, data_json: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        scripts::update_data(&mut conn, &self.keys, job_id, data_json).await
    }

    /// Children results of a flow parent: child job key -> returnvalue JSON.
    pub async fn children_values(&self, job_id: &str) -> Result<HashMap<String, String>> {
        let mut conn = self.conn().await?;
        scripts::children_values(&mut conn, &self.keys, job_id).await
    }

    /// The children counts of a flow parent (unprocessed, processed, ignored, failed).
    pub async fn dependencies_count(&self, job_id: &str) -> Result<scripts::DependencyCounts> {
        let mut conn = self.conn().await?;
        scripts::dependencies_count(&mut conn, &self.keys, job_id).await
    }
}
