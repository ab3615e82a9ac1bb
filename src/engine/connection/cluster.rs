//! Redis Cluster endpoints (DESIGN.md §1.4). A cluster is reached through the same
//! [`Pair`] machinery as a single server (supervised sockets, backoff, events, health), split
//! by role:
//!
//! - Command side: one command-only pair per primary that owns the slot of a queue in use
//!   (opened on first use, never to replicas, closed when the node stops owning slots). Calls go
//!   through a [`super::conn::SlotConn`] bound to the queue's one slot, which follows
//!   redirections.
//! - Blocking side: a multi-key BZPOPMIN must stay within one slot, so there is one
//!   blocking-only pair, and one dispatcher, per distinct slot with waiting workers: queues
//!   sharing a hash tag (`prefix: '{bull}'`) share one blocking socket for the whole process.
//!   When a slot changes owner the dispatcher's next BZPOPMIN goes to the new owner over a
//!   fresh blocking pair; the old one is shut down.
//!
//! The slot map comes from `CLUSTER SLOTS`, asked of a node we already talk to (else a seed,
//! over a short-lived connection), on first use and after every redirection or failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};

use super::conn::{Conn, SlotConn};
use super::events::Hub;
use super::health::{EndpointHealth, summarize};
use super::pair::{Pair, Role};
use super::slots::SLOT_COUNT;
use super::supervisor::build_client;
use crate::engine::error::{Error, Result};
use crate::engine::options::Endpoint;

/// A cluster node, as `CLUSTER SLOTS` names it.
pub type NodeAddr = (String, u16);

/// How long a call waits for a slot owner's socket before the map is asked again (the owner
/// may have died and been replaced by a failover).
const OWNER_WAIT: Duration = Duration::from_secs(1);

/// `"host:port"` (as in `MOVED 3999 127.0.0.1:7001`) into a node address.
pub fn parse_addr(s: &str) -> Option<NodeAddr> {
    let (h, p) = s.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Some((h.to_string(), p.parse().ok()?))
}

/// One Redis Cluster endpoint: its slot map and the pairs of its nodes.
pub struct Cluster {
    endpoint: Endpoint,
    display: String,
    hub: Arc<Hub>,
    owners: RwLock<Vec<Option<NodeAddr>>>,
    /// Command-only pairs, by primary.
    nodes: Mutex<HashMap<NodeAddr, Arc<Pair>>>,
    /// Blocking-only pairs, by slot.
    blockers: Mutex<HashMap<u16, Arc<Pair>>>,
    refresh_lock: tokio::sync::Mutex<()>,
    refreshed_at: Mutex<Option<Instant>>,
    closed: AtomicBool,
}

impl Cluster {
    pub(super) fn new(endpoint: Endpoint, hub: Arc<Hub>) -> Result<Arc<Self>> {
        // Fails now (bad TLS material, say) rather than at the first node.
        build_client(&node_endpoint(&endpoint, &endpoint.cluster[0]))?;
        Ok(Arc::new(Cluster {
            display: endpoint.display(),
            endpoint,
            hub,
            owners: RwLock::new(vec![None; SLOT_COUNT as usize]),
            nodes: Mutex::new(HashMap::new()),
            blockers: Mutex::new(HashMap::new()),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshed_at: Mutex::new(None),
            closed: AtomicBool::new(false),
        }))
    }

    /// The endpoint's printable name (no credentials).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Shut down.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn closed_error(&self) -> Error {
        Error::Closed(format!("connection to {} is closed", self.display))
    }

    /// The primary that owns `slot` according to the current map.
    pub fn owner(&self, slot: u16) -> Option<NodeAddr> {
        self.owners.read().unwrap()[slot as usize].clone()
    }

    /// The owner of `slot`, loading the map if it does not know.
    pub async fn resolve(&self, slot: u16) -> Result<NodeAddr> {
        if let Some(a) = self.owner(slot) {
            return Ok(a);
        }
        self.refresh().await?;
        self.owner(slot).ok_or_else(|| {
            Error::Redis(format!(
                "CLUSTERDOWN slot {slot} is not served by any node of {}",
                self.display
            ))
        })
    }

    /// The command-only pair of node `addr`, opened on first use.
    pub fn node(&self, addr: &NodeAddr) -> Result<Arc<Pair>> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let mut nodes = self.nodes.lock().unwrap();
        if let Some(p) = nodes.get(addr)
            && !p.is_closed()
        {
            return Ok(Arc::clone(p));
        }
        let pair = Pair::with_roles(
            node_endpoint(&self.endpoint, addr),
            Arc::clone(&self.hub),
            &[Role::Command],
        )?;
        pair.start();
        nodes.insert(addr.clone(), Arc::clone(&pair));
        Ok(pair)
    }

    /// The command connection of `slot`'s owner. While the owner's socket is down the map is
    /// asked again every [`OWNER_WAIT`], so a failover moves the call to the new primary.
    pub async fn command_for_slot(&self, slot: u16) -> Result<(NodeAddr, MultiplexedConnection)> {
        loop {
            let addr = self.resolve(slot).await?;
            let pair = self.node(&addr)?;
            match tokio::time::timeout(OWNER_WAIT, pair.command()).await {
                // Shut down under us: a refresh that saw this node lose its slots (a
                // failover) pruned it after `resolve` read the map; ask the map again.
                Ok(Err(Error::Closed(_))) if !self.is_closed() => {
                    tokio::task::yield_now().await;
                }
                Ok(r) => return r.map(|c| (addr, c)),
                Err(_) => {
                    let _ = self.refresh().await;
                }
            }
        }
    }

    /// A [`Conn`] for the queue whose keys hash to `slot`.
    pub async fn conn(self: &Arc<Self>, slot: u16) -> Result<Conn> {
        Ok(Conn::Slot(SlotConn::open(Arc::clone(self), slot).await?))
    }

    /// The blocking-only pair of `slot`, on its current owner. A pair left on a former owner
    /// is replaced (and shut down).
    pub async fn blocking_for_slot(&self, slot: u16) -> Result<Arc<Pair>> {
        let addr = self.resolve(slot).await?;
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (pair, old) = {
            let mut blockers = self.blockers.lock().unwrap();
            match blockers.get(&slot) {
                Some(p) if !p.is_closed() && same_node(p.endpoint(), &addr) => {
                    return Ok(Arc::clone(p));
                }
                _ => {}
            }
            let pair = Pair::with_roles(
                node_endpoint(&self.endpoint, &addr),
                Arc::clone(&self.hub),
                &[Role::Blocking],
            )?;
            pair.start();
            let old = blockers.insert(slot, Arc::clone(&pair));
            (pair, old)
        };
        if let Some(old) = old {
            tokio::spawn(async move { old.shutdown().await });
        }
        Ok(pair)
    }

    /// `-MOVED <slot> <addr>`: note the new owner at once, and refresh the whole map in the
    /// background (a reshard or failover moves more than one slot).
    pub fn moved(self: &Arc<Self>, slot: u16, addr: &str) {
        if let Some(a) = parse_addr(addr)
            && (slot as usize) < SLOT_COUNT as usize
        {
            self.owners.write().unwrap()[slot as usize] = Some(a);
        }
        self.refresh_soon();
    }

    /// Refresh the map in the background.
    pub fn refresh_soon(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let _ = me.refresh().await;
        });
    }

    /// Load the slot map. Callers arriving while a refresh runs share its result.
    pub async fn refresh(&self) -> Result<()> {
        let asked = Instant::now();
        let _guard = self.refresh_lock.lock().await;
        if self.refreshed_at.lock().unwrap().is_some_and(|t| t > asked) {
            return Ok(());
        }
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let mut candidates: Vec<NodeAddr> = self.nodes.lock().unwrap().keys().cloned().collect();
        for seed in &self.endpoint.cluster {
            if !candidates.contains(seed) {
                candidates.push(seed.clone());
            }
        }
        let mut last = None;
        for addr in candidates {
            match self.query_slots(&addr).await {
                Ok(map) => {
                    self.install(map);
                    *self.refreshed_at.lock().unwrap() = Some(Instant::now());
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unreachable(format!("{}: no node", self.display))))
    }

    fn install(&self, map: Vec<(u16, u16, NodeAddr)>) {
        let mut owners = vec![None; SLOT_COUNT as usize];
        for (start, end, addr) in map {
            for slot in start..=end.min(SLOT_COUNT - 1) {
                owners[slot as usize] = Some(addr.clone());
            }
        }
        let complete = owners.iter().all(Option::is_some);
        let primaries: Vec<NodeAddr> = {
            let mut p: Vec<NodeAddr> = owners.iter().flatten().cloned().collect();
            p.sort();
            p.dedup();
            p
        };
        *self.owners.write().unwrap() = owners;
        if complete {
            // A node that owns no slot any more (a demoted primary) keeps no socket of ours.
            let gone: Vec<Arc<Pair>> = {
                let mut nodes = self.nodes.lock().unwrap();
                let stale: Vec<NodeAddr> = nodes
                    .keys()
                    .filter(|a| !primaries.contains(a))
                    .cloned()
                    .collect();
                stale.iter().filter_map(|a| nodes.remove(a)).collect()
            };
            for p in gone {
                tokio::spawn(async move { p.shutdown().await });
            }
        }
    }

    async fn query_slots(&self, addr: &NodeAddr) -> Result<Vec<(u16, u16, NodeAddr)>> {
        let existing = self.nodes.lock().unwrap().get(addr).cloned();
        let mut conn = match existing {
            Some(p) => match tokio::time::timeout(Duration::from_millis(200), p.command()).await {
                Ok(Ok(c)) => c,
                _ => self.connect_once(addr).await?,
            },
            None => self.connect_once(addr).await?,
        };
        let reply: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::from_redis(&e, self.endpoint.password.as_deref()))?;
        let map = parse_slots(&reply, addr);
        if map.is_empty() {
            return Err(Error::Redis(format!(
                "CLUSTERDOWN {}:{} serves no slot (is the cluster created?)",
                addr.0, addr.1
            )));
        }
        Ok(map)
    }

    /// A short-lived connection for `CLUSTER SLOTS` (dropped after the one call).
    async fn connect_once(&self, addr: &NodeAddr) -> Result<MultiplexedConnection> {
        let ep = node_endpoint(&self.endpoint, addr);
        let client = build_client(&ep)?;
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ep.connect_timeout))
            .set_response_timeout(Some(ep.connect_timeout));
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| match Error::from_redis(&e, ep.password.as_deref()) {
                Error::ConnectionLost(m) | Error::Timeout(m) | Error::Unreachable(m) => {
                    Error::Unreachable(format!("cannot connect to {}: {m}", ep.display()))
                }
                other => other,
            })
    }

    /// Resolves once the slot map is known (a cluster opens node sockets only for slots in
    /// use, so "ready" means: reachable, authenticated, and serving every slot).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.refresh()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "{} not ready after {} ms",
                self.display,
                timeout.as_millis()
            ))),
        }
    }

    /// `health().endpoints` entries: one per node, its command and blocking sockets summed.
    pub fn health(&self) -> Vec<EndpointHealth> {
        let mut by_node: HashMap<String, Vec<EndpointHealth>> = HashMap::new();
        let pairs: Vec<Arc<Pair>> = {
            let nodes = self.nodes.lock().unwrap();
            let blockers = self.blockers.lock().unwrap();
            nodes.values().chain(blockers.values()).cloned().collect()
        };
        for p in pairs {
            by_node
                .entry(p.display().to_string())
                .or_default()
                .push(p.health());
        }
        by_node
            .into_iter()
            .map(|(endpoint, parts)| {
                let h = summarize(parts, false);
                EndpointHealth {
                    endpoint,
                    status: h.status,
                    connections: h.connections,
                    reconnects: h.reconnects,
                    last_error: h.last_error,
                    redis_version: h.redis_version,
                }
            })
            .collect()
    }

    /// Close every node's sockets.
    pub(super) async fn shutdown(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let pairs: Vec<Arc<Pair>> = {
            let mut nodes = self.nodes.lock().unwrap();
            let mut blockers = self.blockers.lock().unwrap();
            nodes
                .drain()
                .map(|(_, p)| p)
                .chain(blockers.drain().map(|(_, p)| p))
                .collect()
        };
        for p in pairs {
            p.shutdown().await;
        }
    }
}

fn same_node(ep: &Endpoint, addr: &NodeAddr) -> bool {
    ep.port == addr.1 && ep.host.eq_ignore_ascii_case(&addr.0)
}

/// The single-server endpoint of one node: the cluster's credentials, TLS and timeouts.
fn node_endpoint(cluster: &Endpoint, addr: &NodeAddr) -> Endpoint {
    Endpoint {
        host: addr.0.clone(),
        port: addr.1,
        db: 0,
        cluster: Vec::new(),
        ..cluster.clone()
    }
}

/// `CLUSTER SLOTS`: `[[start, end, [host, port, id, ...], replica...], ...]`, primaries only.
/// An empty host means "the node you asked".
fn parse_slots(reply: &Value, asked: &NodeAddr) -> Vec<(u16, u16, NodeAddr)> {
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter_map(|r| {
            let Value::Array(r) = r else { return None };
            let start = u16::try_from(int(r.first()?)?).ok()?;
            let end = u16::try_from(int(r.get(1)?)?).ok()?;
            let Value::Array(node) = r.get(2)? else {
                return None;
            };
            let host = text(node.first()?)
                .filter(|h| !h.is_empty() && h != "?")
                .unwrap_or_else(|| asked.0.clone());
            let port = u16::try_from(int(node.get(1)?)?).ok()?;
            Some((start, end, (host, port)))
        })
        .collect()
}

/// Where a dispatcher blocks: a single server's pair, or one cluster slot (whose owner may
/// change under it).
#[derive(Clone)]
pub enum BlockingRoute {
    /// A single server's pair.
    Pair(Arc<Pair>),
    /// One slot of a cluster.
    Slot(Arc<Cluster>, u16),
}

impl BlockingRoute {
    /// Whether two routes block on the same socket.
    pub fn same(&self, other: &BlockingRoute) -> bool {
        match (self, other) {
            (BlockingRoute::Pair(a), BlockingRoute::Pair(b)) => Arc::ptr_eq(a, b),
            (BlockingRoute::Slot(a, s), BlockingRoute::Slot(b, t)) => Arc::ptr_eq(a, b) && s == t,
            _ => false,
        }
    }

    /// Shut down (the dispatcher ends).
    pub fn is_closed(&self) -> bool {
        match self {
            BlockingRoute::Pair(p) => p.is_closed(),
            BlockingRoute::Slot(c, _) => c.is_closed(),
        }
    }

    /// The pair to block on now, and its blocking connection. A cluster slot's owner is
    /// looked up afresh each time; waiting for its socket is bounded so a dead owner is
    /// noticed.
    pub async fn blocking(&self) -> Result<(Arc<Pair>, MultiplexedConnection)> {
        match self {
            BlockingRoute::Pair(p) => Ok((Arc::clone(p), p.blocking().await?)),
            BlockingRoute::Slot(c, slot) => {
                let pair = c.blocking_for_slot(*slot).await?;
                match tokio::time::timeout(OWNER_WAIT, pair.blocking()).await {
                    Ok(r) => Ok((pair, r?)),
                    Err(_) => {
                        c.refresh_soon();
                        Err(Error::Timeout(format!(
                            "blocking connection to {} not up",
                            pair.display()
                        )))
                    }
                }
            }
        }
    }

    /// A command connection to the node of `blocking` (for `CLIENT UNBLOCK`).
    pub async fn unblock_conn(&self, blocking: &Pair) -> Result<MultiplexedConnection> {
        match self {
            BlockingRoute::Pair(p) => p.command().await,
            BlockingRoute::Slot(c, _) => {
                let ep = blocking.endpoint();
                c.node(&(ep.host.clone(), ep.port))?.command().await
            }
        }
    }

    /// A command connection for the keys this route blocks on (a marker put back).
    pub async fn command(&self) -> Result<Conn> {
        match self {
            BlockingRoute::Pair(p) => Ok(Conn::Node(p.command().await?)),
            BlockingRoute::Slot(c, slot) => c.conn(*slot).await,
        }
    }

    /// A BZPOPMIN failed: on a cluster the slot may have moved (`-MOVED`, `-UNBLOCKED` after
    /// a failover, a dead node), so the map is refreshed before the next one.
    pub fn failed(&self, e: &redis::RedisError) {
        if let BlockingRoute::Slot(c, _) = self {
            match e.redirect_node() {
                Some((addr, slot)) => c.moved(slot, addr),
                None => c.refresh_soon(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_slots_reply_is_read() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
        ]);
        let asked = ("10.0.0.9".to_string(), 7001);
        let map = parse_slots(&reply, &asked);
        assert_eq!(
            map,
            vec![
                (0, 5460, ("10.0.0.1".to_string(), 7000)),
                (5461, 16383, ("10.0.0.9".to_string(), 7001)),
            ]
        );
        assert_eq!(
            parse_addr("127.0.0.1:7002"),
            Some(("127.0.0.1".into(), 7002))
        );
        assert_eq!(parse_addr("[::1]:7002"), Some(("::1".into(), 7002)));
        assert_eq!(parse_addr("nope"), None);
    }
}
