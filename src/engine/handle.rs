//! [`QueueHandle`]: one queue's keys and its endpoint's connection pair, and the five job
//! operations that a worker's processor and a queue alike offer (progress, log, data,
//! children values, dependency counts). [`crate::engine::worker::Worker`] and
//! [`crate::engine::queue::Queue`] each embed one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::connection::{self, BlockingRoute, Cluster, Conn, Pair};
use super::error::{Error, Result};
use super::keys::QueueKeys;
use super::options::Endpoint;
use super::scripts;

/// Where a queue's calls go: a single server's pair, or the owner of the queue's one slot
/// in a Redis Cluster.
enum Route {
    Pair(Mutex<Arc<Pair>>),
    Cluster(Mutex<Arc<Cluster>>, u16),
}

/// A queue's keys on its endpoint's process-wide connection pair.
pub struct QueueHandle {
    keys: QueueKeys,
    endpoint: Endpoint,
    route: Route,
    /// A queue follows the registry to a fresh pair after `shutdown()` closed its own (as a
    /// new Queue would connect); a worker stays on the pair it was created with.
    follow_registry: bool,
    closed: AtomicBool,
}

impl QueueHandle {
    /// The handle of queue `keys` on the global registry's pair for `endpoint` (created, and
    /// connecting in the background, if this is its first user). Must be called inside the
    /// tokio runtime. On a cluster endpoint a queue whose keys would span slots is refused
    /// here (`ERR_CROSSSLOT`), not at its first script call.
    pub fn new(endpoint: &Endpoint, keys: QueueKeys, follow_registry: bool) -> Result<Self> {
        let route = if endpoint.is_cluster() {
            let slot = connection::slots::queue_slot(&keys)?;
            Route::Cluster(Mutex::new(connection::global().cluster(endpoint)?), slot)
        } else {
            Route::Pair(Mutex::new(connection::global().pair(endpoint)?))
        };
        Ok(QueueHandle {
            keys,
            endpoint: endpoint.clone(),
            route,
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

    /// Where a dispatcher serving this queue blocks: the pair, or the queue's cluster slot.
    pub fn blocking_route(&self) -> BlockingRoute {
        match &self.route {
            Route::Pair(p) => BlockingRoute::Pair(Arc::clone(&p.lock().unwrap())),
            Route::Cluster(c, slot) => BlockingRoute::Slot(Arc::clone(&c.lock().unwrap()), *slot),
        }
    }

    /// The pair of a single-node endpoint (None on a cluster): what names the command socket
    /// with the queues its workers serve (`Queue.getWorkers()`).
    pub fn single_pair(&self) -> Option<Arc<Pair>> {
        match &self.route {
            Route::Pair(p) => Some(Arc::clone(&p.lock().unwrap())),
            Route::Cluster(..) => None,
        }
    }

    /// The connections this handle uses were shut down or gave up (its pair, or its cluster).
    pub fn connection_closed(&self) -> bool {
        match &self.route {
            Route::Pair(p) => p.lock().unwrap().is_closed(),
            Route::Cluster(c, _) => c.lock().unwrap().is_closed(),
        }
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
        match &self.route {
            Route::Pair(p) => {
                let pair = Arc::clone(&p.lock().unwrap());
                pair.wait_ready(timeout).await
            }
            Route::Cluster(c, slot) => {
                let cluster = Arc::clone(&c.lock().unwrap());
                match tokio::time::timeout(timeout, cluster.command_for_slot(*slot)).await {
                    Ok(r) => r.map(|_| ()),
                    Err(_) => Err(Error::Timeout(format!(
                        "{} not ready after {} ms",
                        cluster.display(),
                        timeout.as_millis()
                    ))),
                }
            }
        }
    }

    /// The shared command connection. A pair that gave up (e.g. a server too old) keeps
    /// reporting why.
    pub async fn conn(&self) -> Result<Conn> {
        if self.is_closed() {
            return Err(Error::Closed(format!("queue {} is closed", self.keys.name)));
        }
        match &self.route {
            Route::Pair(slot) => {
                let pair = Arc::clone(&slot.lock().unwrap());
                match pair.command().await {
                    Err(Error::Closed(_)) if self.follow_registry && pair.is_closed() => {
                        let fresh = connection::global().pair(&self.endpoint)?;
                        *slot.lock().unwrap() = Arc::clone(&fresh);
                        fresh.command().await.map(Conn::Node)
                    }
                    other => other.map(Conn::Node),
                }
            }
            Route::Cluster(c, slot) => {
                let cluster = Arc::clone(&c.lock().unwrap());
                match cluster.conn(*slot).await {
                    Err(Error::Closed(_)) if self.follow_registry && cluster.is_closed() => {
                        let fresh = connection::global().cluster(&self.endpoint)?;
                        *c.lock().unwrap() = Arc::clone(&fresh);
                        fresh.conn(*slot).await
                    }
                    other => other,
                }
            }
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
