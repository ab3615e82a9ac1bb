//! Redis Sentinel endpoints: the master is asked of the sentinels (`SENTINEL
//! get-master-addr-by-name`) before every connect of either socket, checked with `ROLE` once
//! connected, and watched: every [`WATCH_EVERY`] a watcher asks again, and a socket connected
//! to a node that is no longer the master is reported broken, so its supervisor reconnects
//! to the new master. Both sockets of the pair move; nothing else changes for their users (a
//! command waits for the new connection as it does across any reconnect).
//!
//! The watcher keeps one connection to one sentinel (not to a Redis node).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};

use super::pair::{Pair, Role};
use super::supervisor::build_client;
use crate::engine::error::{Error, Result};
use crate::engine::options::{Endpoint, SentinelOptions};

/// How often the watcher asks the sentinels who the master is.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);

type NodeAddr = (String, u16);

/// The sentinel side of one pair.
pub struct Sentinel {
    opts: SentinelOptions,
    /// The master each socket was opened to.
    connected: Mutex<HashMap<Role, NodeAddr>>,
    /// The watcher's connection to a sentinel, and which one.
    watch_conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Sentinel {
    pub(super) fn new(opts: SentinelOptions) -> Self {
        Sentinel {
            opts,
            connected: Mutex::new(HashMap::new()),
            watch_conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn connect_sentinel(
        &self,
        addr: &NodeAddr,
        timeout: Duration,
    ) -> Result<MultiplexedConnection> {
        let mut info = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(u) = &self.opts.username {
            info = info.set_username(u);
        }
        if let Some(p) = &self.opts.password {
            info = info.set_password(p);
        }
        let ci = redis::IntoConnectionInfo::into_connection_info(redis::ConnectionAddr::Tcp(
            addr.0.clone(),
            addr.1,
        ))
        .map_err(|e| Error::invalid("sentinels", e.to_string()))?
        .set_redis_settings(info);
        let client =
            redis::Client::open(ci).map_err(|e| Error::invalid("sentinels", e.to_string()))?;
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| Error::from_redis(&e, self.opts.password.as_deref()))
    }

    async fn ask(&self, conn: &mut MultiplexedConnection) -> Result<Option<NodeAddr>> {
        let reply: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.opts.name)
            .query_async(conn)
            .await
            .map_err(|e| Error::from_redis(&e, self.opts.password.as_deref()))?;
        Ok(reply.and_then(|(h, p)| Some((h, p.parse().ok()?))))
    }

    /// The master's address, from the first sentinel that knows it (each over a short-lived
    /// connection).
    pub async fn master(&self, timeout: Duration) -> Result<NodeAddr> {
        let mut last = None;
        for addr in &self.opts.sentinels {
            match self.connect_sentinel(addr, timeout).await {
                Ok(mut conn) => match self.ask(&mut conn).await {
                    Ok(Some(m)) => return Ok(m),
                    Ok(None) => {
                        last = Some(Error::Unreachable(format!(
                            "sentinel {}:{} does not know a master named `{}`",
                            addr.0, addr.1, self.opts.name
                        )))
                    }
                    Err(e) => last = Some(e),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(Error::Unreachable(m)) => Error::Unreachable(m),
            Some(e) => Error::Unreachable(format!("no sentinel answered: {e}")),
            None => Error::Unreachable("no sentinel configured".into()),
        })
    }

    /// The client for `role`'s next connect: to the master the sentinels name now.
    pub(super) async fn client_for(&self, ep: &Endpoint, role: Role) -> Result<redis::Client> {
        let master = self.master(ep.connect_timeout).await?;
        let node = Endpoint {
            host: master.0.clone(),
            port: master.1,
            sentinel: None,
            ..ep.clone()
        };
        let client = build_client(&node)?;
        self.connected.lock().unwrap().insert(role, master);
        Ok(client)
    }

    /// A freshly opened socket must be on a master (the sentinels may lag a failover).
    pub(super) async fn check_master(&self, conn: &mut MultiplexedConnection) -> Result<()> {
        let role: Value = redis::cmd("ROLE")
            .query_async(conn)
            .await
            .map_err(|e| Error::from_redis(&e, None))?;
        let is_master = matches!(&role, Value::Array(items) if matches!(items.first(),
            Some(Value::BulkString(b)) if b == b"master"));
        if is_master {
            Ok(())
        } else {
            Err(Error::Unreachable(format!(
                "the node the sentinels name as master `{}` is not a master (failover in progress?)",
                self.opts.name
            )))
        }
    }

    /// Ask the sentinels again (over the watcher's connection); sockets on a former master
    /// are reported broken.
    async fn watch_once(&self, pair: &Pair) {
        let mut slot = self.watch_conn.lock().await;
        let master = match slot.as_mut() {
            Some(conn) => self.ask(conn).await,
            None => Err(Error::Closed(String::new())),
        };
        let master = match master {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(_) => {
                *slot = None;
                for addr in &self.opts.sentinels {
                    if let Ok(c) = self
                        .connect_sentinel(addr, pair.endpoint.connect_timeout)
                        .await
                    {
                        *slot = Some(c);
                        break;
                    }
                }
                return;
            }
        };
        drop(slot);
        let stale: Vec<Role> = self
            .connected
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, a)| **a != master)
            .map(|(r, _)| *r)
            .collect();
        for role in stale {
            if pair.slot(role).is_up() {
                pair.report_broken(role);
            }
        }
    }

    /// The watcher task of `pair` (runs until the pair closes).
    pub(super) async fn watch(self: Arc<Self>, pair: Arc<Pair>) {
        let mut closed = pair.closed.subscribe();
        loop {
            if *closed.borrow_and_update() {
                return;
            }
            self.watch_once(&pair).await;
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = closed.changed() => return,
            }
        }
    }
}
