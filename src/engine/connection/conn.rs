//! [`Conn`]: the command connection a queue's calls go through. For a single server it is the
//! pair's multiplexed connection itself; for a Redis Cluster it is a [`SlotConn`], the
//! multiplexed connection of the primary that owns the queue's slot, which follows `MOVED`
//! (slot map updated, call re-sent to the new owner), `ASK` (`ASKING` + the call on the
//! importing node, once), `TRYAGAIN` and `CLUSTERDOWN` (short pause, map refreshed, re-sent).
//! These replies mean the server did not run the call, so re-sending never applies it twice.
//! `NOSCRIPT` needs nothing here: redis-rs answers it with `SCRIPT LOAD` on the same `Conn`,
//! which routes it to the node that lacked the script.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};

use super::cluster::Cluster;
use crate::engine::error::Error;

/// Redirections followed for one call before its error is returned: a slot migration or a
/// failover settles in far fewer; more means the cluster is misconfigured.
const MAX_REDIRECTS: u32 = 16;

/// What the script layer calls through: a [`Conn`], or a plain multiplexed connection (tests).
/// Cloneable, so a call can be sent again on a copy (both are handles on one socket).
pub trait RedisConn: ConnectionLike + Send + Sync + Clone {}
impl<T: ConnectionLike + Send + Sync + Clone> RedisConn for T {}

/// A command connection: a single server's, or a cluster slot's.
#[derive(Clone)]
pub enum Conn {
    /// A single server's multiplexed connection.
    Node(MultiplexedConnection),
    /// The owner of one cluster slot, re-routed on redirection.
    Slot(SlotConn),
}

impl From<MultiplexedConnection> for Conn {
    fn from(c: MultiplexedConnection) -> Self {
        Conn::Node(c)
    }
}

/// The command connection of the primary that owns `slot`.
#[derive(Clone)]
pub struct SlotConn {
    cluster: Arc<Cluster>,
    slot: u16,
    conn: MultiplexedConnection,
}

enum Next {
    Retry,
    Ask(MultiplexedConnection),
}

fn routing_error(e: Error) -> RedisError {
    RedisError::from((ErrorKind::Io, "cluster routing", e.to_string()))
}

/// The redirection-type error a reply carries, if any.
fn redirection(v: &Value) -> Option<RedisError> {
    match v {
        Value::ServerError(_) => {
            let e = v.clone().extract_error().err()?;
            matches!(
                e.kind(),
                ErrorKind::Server(
                    ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
            )
            .then_some(e)
        }
        _ => None,
    }
}

impl SlotConn {
    /// The connection of `slot`'s current owner (the map is loaded if needed).
    pub async fn open(cluster: Arc<Cluster>, slot: u16) -> crate::engine::error::Result<Self> {
        let (_, conn) = cluster.command_for_slot(slot).await?;
        Ok(SlotConn {
            cluster,
            slot,
            conn,
        })
    }

    /// The slot this connection serves.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// Point this connection at the slot's owner in the current map.
    async fn reroute(&mut self) -> RedisResult<()> {
        self.conn = self
            .cluster
            .command_for_slot(self.slot)
            .await
            .map_err(routing_error)?
            .1;
        Ok(())
    }

    async fn follow(&mut self, e: RedisError, attempt: u32) -> RedisResult<Next> {
        if attempt > MAX_REDIRECTS {
            return Err(e);
        }
        match e.kind() {
            ErrorKind::Server(ServerErrorKind::Moved) => {
                if attempt > 2 {
                    // Sent back and forth: during a failover a map read from a node that has
                    // not seen it yet can undo the redirection. Let the cluster settle, read
                    // the map again, and let this MOVED have the last word.
                    tokio::time::sleep(Duration::from_millis(25 * attempt as u64)).await;
                    let _ = self.cluster.refresh().await;
                }
                if let Some((addr, slot)) = e.redirect_node() {
                    self.cluster.moved(slot, addr);
                }
                self.reroute().await?;
                Ok(Next::Retry)
            }
            ErrorKind::Server(ServerErrorKind::Ask) => {
                let addr = e
                    .redirect_node()
                    .and_then(|(a, _)| super::cluster::parse_addr(a))
                    .ok_or_else(|| e.clone())?;
                let pair = self.cluster.node(&addr).map_err(routing_error)?;
                Ok(Next::Ask(pair.command().await.map_err(routing_error)?))
            }
            ErrorKind::Server(ServerErrorKind::TryAgain) => {
                // A multi-key call during a slot migration: the keys are split for a moment.
                tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
                Ok(Next::Retry)
            }
            _ => {
                // CLUSTERDOWN / MASTERDOWN / READONLY: a failover in progress (or just done);
                // wait for the new map.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = self.cluster.refresh().await;
                self.reroute().await?;
                Ok(Next::Retry)
            }
        }
    }

    async fn command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let mut attempt = 0;
        let mut ask: Option<MultiplexedConnection> = None;
        loop {
            let reply = match ask.take() {
                None => self.conn.req_packed_command(cmd).await?,
                Some(mut target) => {
                    let mut p = redis::pipe();
                    p.cmd("ASKING").ignore();
                    p.add_command(cmd.clone());
                    target
                        .req_packed_commands(&p, 1, 1)
                        .await?
                        .pop()
                        .unwrap_or(Value::Nil)
                }
            };
            let Some(e) = redirection(&reply) else {
                return Ok(reply);
            };
            attempt += 1;
            if let Next::Ask(c) = self.follow(e, attempt).await? {
                ask = Some(c);
            }
        }
    }

    async fn pipeline(
        &mut self,
        p: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut attempt = 0;
        loop {
            let replies = self.conn.req_packed_commands(p, offset, count).await?;
            let Some(e) = replies.iter().find_map(redirection) else {
                return Ok(replies);
            };
            attempt += 1;
            // A pipeline is not re-sent with ASKING: the migration is waited out instead.
            let e = if e.kind() == ErrorKind::Server(ServerErrorKind::Ask) {
                RedisError::from((ErrorKind::Server(ServerErrorKind::TryAgain), "ASK"))
            } else {
                e
            };
            self.follow(e, attempt).await?;
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Slot(s) => Box::pin(s.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Slot(s) => Box::pin(s.pipeline(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Slot(_) => 0,
        }
    }
}
