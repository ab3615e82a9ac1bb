//! One endpoint's connection pair: the two slots (command, blocking), what waits for them,
//! and the bookkeeping behind `health()` and the events. The tasks that fill the slots are in
//! [`super::supervisor`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::events::{ConnectionEvent, EventKind, Hub};
use super::health::{Connections, EndpointHealth, LastError, Status};
use super::supervisor::build_client;
use crate::engine::error::{Error, Result};
use crate::engine::options::Endpoint;
use crate::engine::util::now_ms;

/// How long `shutdown()` waits for the server to confirm it closed our sockets.
const SHUTDOWN_GOODBYE: Duration = Duration::from_secs(2);

/// Which socket of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The multiplexed command connection, shared by every caller.
    Command,
    /// The blocking connection (the dispatcher's BZPOPMIN).
    Blocking,
}

impl Role {
    /// The name in events and CLIENT SETNAME.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Command => "command",
            Role::Blocking => "blocking",
        }
    }
}

pub(super) struct Slot {
    pub(super) conn: watch::Sender<Option<MultiplexedConnection>>,
    /// `CLIENT ID` of the live socket: the dispatcher is interrupted with `CLIENT UNBLOCK`.
    pub(super) client_id: Mutex<Option<i64>>,
    /// Callers that found no socket wait here in arrival order (tokio's Mutex is fair), so
    /// that the commands queued while connecting leave in the order they were made, as
    /// ioredis's offline queue sends them (ten `Queue.add` calls get ids in call order).
    turn: tokio::sync::Mutex<()>,
}

impl Slot {
    pub(super) fn new() -> Self {
        Slot {
            conn: watch::Sender::new(None),
            client_id: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.conn.borrow().is_some()
    }
}

/// One endpoint's connection pair.
pub struct Pair {
    pub(super) endpoint: Endpoint,
    pub(super) display: String,
    pub(super) client: redis::Client,
    pub(super) command: Slot,
    pub(super) blocking: Slot,
    pub(super) hub: Arc<Hub>,
    /// Set when the pair is shut down or gave up (fatal error): supervisors stop.
    pub(super) closed: watch::Sender<bool>,
    pub(super) fatal: Mutex<Option<Error>>,
    pub(super) ended: AtomicBool,
    pub(super) ever_ready: AtomicBool,
    pub(super) announced_ready: Mutex<bool>,
    /// The watchdog's PING is overdue (see [`super::watchdog`]).
    pub(super) degraded: AtomicBool,
    /// Ends the supervisors' backoff sleeps: the watchdog saw a frozen server answer again.
    pub(super) retry_now: Notify,
    pub(super) warned_policy: AtomicBool,
    pub(super) reconnects: AtomicU64,
    pub(super) last_error: Mutex<Option<LastError>>,
    pub(super) redis_version: Mutex<Option<String>>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The sockets this pair opens: both for a single server; a Redis Cluster node's command
    /// pair has only `Command`, a slot's blocking pair only `Blocking` (see `cluster.rs`).
    pub(super) roles: &'static [Role],
    /// A Sentinel endpoint's master lookup and watcher (see `sentinel.rs`).
    pub(super) sentinel: Option<Arc<super::sentinel::Sentinel>>,
}

impl Pair {
    pub(super) fn new(endpoint: Endpoint, hub: Arc<Hub>) -> Result<Arc<Self>> {
        Self::with_roles(endpoint, hub, &[Role::Command, Role::Blocking])
    }

    /// A pair that opens only `roles` (cluster hook: see `cluster.rs`).
    pub(super) fn with_roles(
        endpoint: Endpoint,
        hub: Arc<Hub>,
        roles: &'static [Role],
    ) -> Result<Arc<Self>> {
        let client = build_client(&endpoint)?;
        let endpoint_sentinel = endpoint
            .sentinel
            .clone()
            .map(|s| Arc::new(super::sentinel::Sentinel::new(s)));
        Ok(Arc::new(Pair {
            display: endpoint.display(),
            endpoint,
            client,
            command: Slot::new(),
            blocking: Slot::new(),
            hub,
            closed: watch::Sender::new(false),
            fatal: Mutex::new(None),
            ended: AtomicBool::new(false),
            ever_ready: AtomicBool::new(false),
            announced_ready: Mutex::new(false),
            degraded: AtomicBool::new(false),
            retry_now: Notify::new(),
            warned_policy: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            last_error: Mutex::new(None),
            redis_version: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            roles,
            sentinel: endpoint_sentinel,
        }))
    }

    pub(super) fn start(self: &Arc<Self>) {
        let mut tasks = self.tasks.lock().unwrap();
        for &role in self.roles {
            let me = Arc::clone(self);
            tasks.push(tokio::spawn(async move { me.supervise(role).await }));
        }
        if let Some(s) = &self.sentinel {
            let (s, me) = (Arc::clone(s), Arc::clone(self));
            tasks.push(tokio::spawn(s.watch(me)));
        }
        // The watchdog pings on the command socket: a blocking-only pair (cluster) has none.
        if self.roles.contains(&Role::Command) {
            let me = Arc::clone(self);
            tasks.push(tokio::spawn(async move { me.watch().await }));
        }
    }

    /// The endpoint this pair connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint's printable name (no credentials).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Up, or a socket this pair does not open (which never holds readiness back).
    fn up(&self, role: Role) -> bool {
        !self.roles.contains(&role) || self.slot(role).is_up()
    }

    pub(super) fn slot(&self, role: Role) -> &Slot {
        match role {
            Role::Command => &self.command,
            Role::Blocking => &self.blocking,
        }
    }

    /// The pair's state for `health()`.
    pub fn status(&self) -> Status {
        if *self.closed.borrow() {
            Status::Closed
        } else if self.up(Role::Command) && self.up(Role::Blocking) {
            if self.degraded.load(Ordering::SeqCst) {
                Status::Degraded
            } else {
                Status::Ready
            }
        } else if self.ever_ready.load(Ordering::Relaxed)
            || self.last_error.lock().unwrap().is_some()
        {
            Status::Reconnecting
        } else {
            Status::Connecting
        }
    }

    /// Shut down or gave up.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// The shared command connection, waiting for it if it is (re)connecting. Fails at once
    /// if the pair is closed or gave up.
    pub async fn command(&self) -> Result<MultiplexedConnection> {
        self.connection(Role::Command).await
    }

    /// The blocking connection: only the dispatcher may use it.
    pub async fn blocking(&self) -> Result<MultiplexedConnection> {
        self.connection(Role::Blocking).await
    }

    /// `CLIENT ID` of the live blocking socket (for `CLIENT UNBLOCK`).
    pub fn blocking_client_id(&self) -> Option<i64> {
        *self.blocking.client_id.lock().unwrap()
    }

    async fn connection(&self, role: Role) -> Result<MultiplexedConnection> {
        let slot = self.slot(role);
        let mut rx = slot.conn.subscribe();
        // Nobody waiting and a socket up: go. Otherwise queue behind the earlier callers; the
        // turn passes to the next one when this call returns, and this caller sends its
        // command before it next yields (the runtime has one worker thread), so order holds.
        if let Ok(_free) = slot.turn.try_lock()
            && let Some(c) = rx.borrow_and_update().clone()
        {
            return Ok(c);
        }
        let _turn = slot.turn.lock().await;
        let mut closed = self.closed.subscribe();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return Ok(c);
            }
            if *closed.borrow_and_update() {
                return Err(self.closed_error());
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Err(self.closed_error()) },
                _ = closed.changed() => {}
            }
        }
    }

    /// Wait until both connections are up, at most `timeout`. On timeout the last connection
    /// error is returned (that is what the caller needs to fix), else a timeout error.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let both = async {
            for &role in self.roles {
                self.connection(role).await?;
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, both).await {
            Ok(r) => r,
            Err(_) => Err(self.last_error_as_error().unwrap_or_else(|| {
                Error::Timeout(format!(
                    "{} not ready after {} ms",
                    self.display,
                    timeout.as_millis()
                ))
            })),
        }
    }

    fn closed_error(&self) -> Error {
        self.fatal
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| Error::Closed(format!("connection to {} is closed", self.display)))
    }

    pub(super) fn last_error_as_error(&self) -> Option<Error> {
        let last = self.last_error.lock().unwrap().clone()?;
        Some(match last.code {
            "ERR_AUTH" => Error::Auth(last.message),
            "ERR_MAX_CLIENTS" => Error::MaxClients(last.message),
            "ERR_REDIS_VERSION" => Error::RedisVersion(last.message),
            "ERR_TLS" => Error::Tls(last.message),
            "ERR_TIMEOUT" => Error::Timeout(last.message),
            "ERR_CONNECTION_LOST" => Error::ConnectionLost(last.message),
            "ERR_REDIS_BUSY" => Error::Busy(last.message),
            "ERR_REDIS" => Error::Redis(last.message),
            "ERR_NOPERM" => Error::NoPerm(last.message),
            _ => Error::Unreachable(last.message),
        })
    }

    /// This endpoint in `health().endpoints`.
    pub fn health(&self) -> EndpointHealth {
        EndpointHealth {
            endpoint: self.display.clone(),
            status: self.status(),
            connections: Connections {
                command: self.command.is_up() as u32,
                blocking: self.blocking.is_up() as u32,
            },
            reconnects: self.reconnects.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap().clone(),
            redis_version: self.redis_version.lock().unwrap().clone(),
        }
    }

    /// Report that a command on a connection failed in a way that shows the socket is gone
    /// (e.g. a watchdog fired). The supervisor reconnects.
    pub fn report_broken(&self, role: Role) {
        self.slot(role).conn.send_replace(None);
    }

    /// Remember `err` as the pair's last error; announce it as an `error` event if `announce`.
    pub(super) fn record_error(&self, role: Role, err: &Error, announce: bool) {
        *self.last_error.lock().unwrap() = Some(LastError {
            code: err.code(),
            message: err.to_string(),
            at: now_ms(),
        });
        if !announce {
            return;
        }
        let mut ev = ConnectionEvent::new(EventKind::Error, &self.display);
        ev.connection = Some(role);
        ev.code = Some(err.code());
        ev.message = Some(err.to_string());
        self.hub.emit(&ev);
    }

    /// Make a fresh connection visible. `ready` is announced under the same lock, before
    /// the connection can be seen (and broken) by anyone, so no ready period goes unannounced.
    pub(super) fn publish(&self, role: Role, conn: MultiplexedConnection) {
        let mut announced = self.announced_ready.lock().unwrap();
        let other = match role {
            Role::Command => Role::Blocking,
            Role::Blocking => Role::Command,
        };
        if self.up(other)
            && !self.is_closed()
            && !self.degraded.load(Ordering::SeqCst)
            && !*announced
        {
            *announced = true;
            self.ever_ready.store(true, Ordering::Relaxed);
            self.hub
                .emit(&ConnectionEvent::new(EventKind::Ready, &self.display));
        }
        self.slot(role).conn.send_replace(Some(conn));
    }

    pub(super) fn slot_changed(&self) {
        let mut announced = self.announced_ready.lock().unwrap();
        let ready = self.up(Role::Command)
            && self.up(Role::Blocking)
            && !self.is_closed()
            && !self.degraded.load(Ordering::SeqCst);
        if ready && !*announced {
            *announced = true;
            self.ever_ready.store(true, Ordering::Relaxed);
            self.hub
                .emit(&ConnectionEvent::new(EventKind::Ready, &self.display));
        } else if !ready {
            *announced = false;
        }
    }

    /// A fatal error (unsupported server, unusable options): stop both
    /// supervisors, fail every waiter with this error, announce `end`.
    pub(super) fn give_up(&self, err: Error) {
        *self.fatal.lock().unwrap() = Some(err);
        self.close_now();
    }

    pub(super) fn close_now(&self) {
        // `end` goes out before the closed flag is visible, so a listener never sees a
        // closed status without its `end`.
        if !self.ended.swap(true, Ordering::SeqCst) {
            self.hub
                .emit(&ConnectionEvent::new(EventKind::End, &self.display));
        }
        self.closed.send_replace(true);
        self.command.conn.send_replace(None);
        self.blocking.conn.send_replace(None);
        self.slot_changed();
    }

    /// Close the pair so that, when this returns, Redis no longer lists either socket.
    /// Dropping our handles is not enough: the dispatcher's BZPOPMIN holds the blocking socket
    /// until its timeout, and a closed socket is noticed by the server only on its next read.
    /// So the command socket asks the server to close the blocking one (`CLIENT KILL ID`,
    /// which frees a blocked client at once), then itself (`QUIT`: the server closes it after
    /// the reply). Both are best effort: a user without `CLIENT KILL` rights, or a socket that
    /// is down, falls back to the client-side close.
    pub(super) async fn shutdown(&self) {
        let command = self.command.conn.borrow().clone();
        let blocking_id = self.blocking_client_id();
        // Closed first, so that no supervisor takes the coming disconnections for failures.
        self.close_now();
        if let Some(mut conn) = command {
            let goodbye = async {
                if let Some(id) = blocking_id {
                    let _: redis::RedisResult<redis::Value> = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("ID")
                        .arg(id)
                        .query_async(&mut conn)
                        .await;
                }
                let _: redis::RedisResult<redis::Value> =
                    redis::cmd("QUIT").query_async(&mut conn).await;
            };
            let _ = tokio::time::timeout(SHUTDOWN_GOODBYE, goodbye).await;
        }
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}
