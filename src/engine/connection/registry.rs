//! The registry: every connection pair of the process, keyed by endpoint, the default
//! endpoint (`configure()`), and the event listeners.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use super::cluster::Cluster;
use super::conn::Conn;
use super::events::{Hub, Listener, ListenerId};
use super::health::{Health, summarize};
use super::pair::Pair;
use crate::engine::error::{Error, Result};
use crate::engine::options::{self, Endpoint, EndpointKey};

#[derive(Default)]
struct RegistryState {
    configured: Option<Endpoint>,
    pairs: HashMap<EndpointKey, Arc<Pair>>,
    clusters: HashMap<EndpointKey, Arc<Cluster>>,
    shut_down: bool,
}

/// Every connection pair of the process. The binding uses [`global()`]; tests build their own.
#[derive(Default)]
pub struct Registry {
    state: Mutex<RegistryState>,
    hub: Arc<Hub>,
}

static GLOBAL: OnceLock<Registry> = OnceLock::new();

/// The process's registry (what the binding, workers and queues use).
pub fn global() -> &'static Registry {
    GLOBAL.get_or_init(Registry::default)
}

impl Registry {
    /// An empty registry (tests build their own).
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the process default (`configure()`); `None` goes back to the environment.
    pub fn configure(&self, endpoint: Option<Endpoint>) {
        self.state.lock().unwrap().configured = endpoint;
    }

    /// Precedence: explicit options, else `configure()`, else the environment.
    pub fn resolve(&self, explicit: Option<Endpoint>) -> Result<Endpoint> {
        if let Some(ep) = explicit {
            return Ok(ep);
        }
        if let Some(ep) = self.state.lock().unwrap().configured.clone() {
            return Ok(ep);
        }
        options::from_env(|k| std::env::var(k).ok())
    }

    /// The pair for this endpoint, created (and connecting in the background) on first use.
    /// Must be called inside a tokio runtime.
    pub fn pair(&self, endpoint: &Endpoint) -> Result<Arc<Pair>> {
        // Checked before taking the lock: a spawn outside a runtime would panic while holding
        // it and poison the registry for the rest of the process.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Closed(
                "connection pairs can only be created inside the tokio runtime".into(),
            ));
        }
        if endpoint.is_cluster() {
            return Err(Error::invalid(
                "cluster",
                "a Redis Cluster endpoint has no single connection pair (use Registry::cluster)",
            ));
        }
        let key = endpoint.key();
        let mut state = self.state.lock().unwrap();
        state.shut_down = false;
        if let Some(p) = state.pairs.get(&key)
            && !p.is_closed()
        {
            return Ok(Arc::clone(p));
        }
        let pair = Pair::new(endpoint.clone(), Arc::clone(&self.hub))?;
        pair.start();
        state.pairs.insert(key, Arc::clone(&pair));
        Ok(pair)
    }

    /// The Redis Cluster of this endpoint, created on first use (its node sockets open as
    /// queues use their slots). Must be called inside a tokio runtime.
    pub fn cluster(&self, endpoint: &Endpoint) -> Result<Arc<Cluster>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Closed(
                "cluster connections can only be created inside the tokio runtime".into(),
            ));
        }
        let key = endpoint.key();
        let mut state = self.state.lock().unwrap();
        state.shut_down = false;
        if let Some(c) = state.clusters.get(&key)
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let cluster = Cluster::new(endpoint.clone(), Arc::clone(&self.hub))?;
        state.clusters.insert(key, Arc::clone(&cluster));
        Ok(cluster)
    }

    /// Wait until `endpoint` is usable: a single server's two sockets are up, or a cluster's
    /// slot map is loaded.
    pub async fn wait_ready(
        &self,
        endpoint: &Endpoint,
        timeout: std::time::Duration,
    ) -> Result<()> {
        if endpoint.is_cluster() {
            self.cluster(endpoint)?.wait_ready(timeout).await
        } else {
            self.pair(endpoint)?.wait_ready(timeout).await
        }
    }

    /// A command connection of `endpoint`; on a cluster, to the owner of `key`'s slot (slot 0
    /// without a key).
    pub async fn conn(&self, endpoint: &Endpoint, key: Option<&[u8]>) -> Result<Conn> {
        if endpoint.is_cluster() {
            let slot = key.map(super::slots::key_slot).unwrap_or(0);
            self.cluster(endpoint)?.conn(slot).await
        } else {
            Ok(Conn::Node(self.pair(endpoint)?.command().await?))
        }
    }

    /// Add a listener for every connection event; the id removes it ([`Self::off_event`]).
    pub fn on_event(&self, listener: Listener) -> ListenerId {
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        self.hub.listeners.lock().unwrap().push((id, listener));
        id
    }

    /// Remove listener `id` (dropping it: a JS callback it holds is released). Unknown ids
    /// are ignored.
    pub fn off_event(&self, id: ListenerId) {
        self.hub.listeners.lock().unwrap().retain(|(l, _)| *l != id);
    }

    /// `health()` of the connections, over every pair.
    pub fn health(&self) -> Health {
        let state = self.state.lock().unwrap();
        let mut endpoints: Vec<_> = state.pairs.values().map(|p| p.health()).collect();
        for c in state.clusters.values() {
            endpoints.extend(c.health());
        }
        endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        summarize(endpoints, state.shut_down)
    }

    /// Close every connection pair. Idempotent; a later `pair()` connects afresh.
    pub async fn shutdown(&self) {
        let (pairs, clusters): (Vec<Arc<Pair>>, Vec<Arc<Cluster>>) = {
            let mut state = self.state.lock().unwrap();
            state.shut_down = true;
            (
                state.pairs.drain().map(|(_, p)| p).collect(),
                state.clusters.drain().map(|(_, c)| c).collect(),
            )
        };
        for p in pairs {
            p.shutdown().await;
        }
        for c in clusters {
            c.shutdown().await;
        }
    }
}
