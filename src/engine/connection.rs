//! The process-wide connection registry: per distinct endpoint exactly one multiplexed
//! command connection and one blocking connection, each owned by a supervisor task that
//! (re)connects with jittered exponential backoff and reports what happens as events.
//!
//! We do not use redis-rs' `ConnectionManager`: it reconnects silently, and the product's
//! promise is that `health()` and the `ready`/`reconnecting`/`error`/`end` events tell the
//! truth about every socket. Connections speak RESP3: its `HELLO 3 AUTH` passes the server's
//! own error text through (a RESP2 `AUTH` error is folded by redis-rs into "Password
//! authentication failed", which would disguise `ERR max number of clients reached`), and
//! only RESP3 connections deliver the Disconnection push that tells us a socket died.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::error::{Error, Result};
use super::options::{self, Endpoint, EndpointKey, RetryPolicy};
use super::util::{now_ms, random_below};

/// Redis older than this lacks commands and script features the protocol relies on.
pub const MIN_REDIS_VERSION: (u32, u32, u32) = (6, 2, 0);
/// Consecutive authentication failures tolerated before the pair gives up: enough to ride out
/// a password rotation, few enough not to hammer a server (or an ACL log) with bad credentials.
pub const MAX_AUTH_ATTEMPTS: u32 = 3;
/// Response timeout on the command connection; the blocking connection has none (a long
/// BZPOPMIN must never be abandoned client-side; its owner runs its own watchdog).
pub const COMMAND_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that dies sooner than this after coming up does not reset the backoff, so a
/// server that accepts and then drops us cannot cause a tight reconnect loop.
const STABLE_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Command,
    Blocking,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Command => "command",
            Role::Blocking => "blocking",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Idle,
    Connecting,
    Ready,
    Reconnecting,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Ready,
    Reconnecting,
    Error,
    End,
    Warning,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Ready => "ready",
            EventKind::Reconnecting => "reconnecting",
            EventKind::Error => "error",
            EventKind::End => "end",
            EventKind::Warning => "warning",
        }
    }
}

/// What listeners of `onConnection` receive. Carries no credentials.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEvent {
    pub event: EventKind,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Milliseconds until the next attempt (`reconnecting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// 1-based count of consecutive failed attempts (`reconnecting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

impl ConnectionEvent {
    fn new(event: EventKind, endpoint: &str) -> Self {
        ConnectionEvent {
            event,
            endpoint: endpoint.to_string(),
            connection: None,
            code: None,
            message: None,
            delay: None,
            attempt: None,
        }
    }
}

pub type Listener = Arc<dyn Fn(&ConnectionEvent) + Send + Sync>;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: &'static str,
    pub message: String,
    /// Unix time in ms.
    pub at: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Connections {
    pub command: u32,
    pub blocking: u32,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHealth {
    pub endpoint: String,
    pub status: Status,
    pub connections: Connections,
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_version: Option<String>,
}

/// `health()` of API.md, summed over every endpoint this process uses.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: Status,
    pub connections: Connections,
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_version: Option<String>,
    pub endpoints: Vec<EndpointHealth>,
}

/// Delay before reconnect attempt `attempt` (1-based): exponential from `initial`, capped at
/// `max`, with "equal jitter" (uniform in [d/2, d]) so a fleet restarted together spreads out
/// while the delay still grows.
pub fn backoff_delay(policy: &RetryPolicy, attempt: u32) -> Duration {
    let initial = policy.initial.as_millis() as u64;
    let max = policy.max.as_millis() as u64;
    let exp = attempt.saturating_sub(1).min(32);
    let base = initial.saturating_mul(1u64 << exp).min(max).max(1);
    let half = base / 2;
    Duration::from_millis(half + random_below(base - half + 1))
}

/// Parse "x.y.z" into a comparable triple; missing parts are 0.
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, patch))
}

fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

struct Slot {
    conn: watch::Sender<Option<MultiplexedConnection>>,
    /// `CLIENT ID` of the live socket: the dispatcher is interrupted with `CLIENT UNBLOCK`.
    client_id: Mutex<Option<i64>>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            conn: watch::Sender::new(None),
            client_id: Mutex::new(None),
        }
    }

    fn is_up(&self) -> bool {
        self.conn.borrow().is_some()
    }
}

/// One endpoint's connection pair.
pub struct Pair {
    endpoint: Endpoint,
    display: String,
    client: redis::Client,
    command: Slot,
    blocking: Slot,
    hub: Arc<Hub>,
    /// Set when the pair is shut down or gave up (fatal error): supervisors stop.
    closed: watch::Sender<bool>,
    fatal: Mutex<Option<Error>>,
    ended: AtomicBool,
    ever_ready: AtomicBool,
    announced_ready: Mutex<bool>,
    warned_policy: AtomicBool,
    reconnects: AtomicU64,
    last_error: Mutex<Option<LastError>>,
    redis_version: Mutex<Option<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Pair {
    fn new(endpoint: Endpoint, hub: Arc<Hub>) -> Result<Arc<Self>> {
        let client = build_client(&endpoint)?;
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
            warned_policy: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            last_error: Mutex::new(None),
            redis_version: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        }))
    }

    fn start(self: &Arc<Self>) {
        let mut tasks = self.tasks.lock().unwrap();
        for role in [Role::Command, Role::Blocking] {
            let me = Arc::clone(self);
            tasks.push(tokio::spawn(async move { me.supervise(role).await }));
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    fn slot(&self, role: Role) -> &Slot {
        match role {
            Role::Command => &self.command,
            Role::Blocking => &self.blocking,
        }
    }

    pub fn status(&self) -> Status {
        if *self.closed.borrow() {
            Status::Closed
        } else if self.command.is_up() && self.blocking.is_up() {
            Status::Ready
        } else if self.ever_ready.load(Ordering::Relaxed)
            || self.last_error.lock().unwrap().is_some()
        {
            Status::Reconnecting
        } else {
            Status::Connecting
        }
    }

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

    pub fn blocking_client_id(&self) -> Option<i64> {
        *self.blocking.client_id.lock().unwrap()
    }

    async fn connection(&self, role: Role) -> Result<MultiplexedConnection> {
        let mut rx = self.slot(role).conn.subscribe();
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
            self.command().await?;
            self.blocking().await?;
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

    fn last_error_as_error(&self) -> Option<Error> {
        let last = self.last_error.lock().unwrap().clone()?;
        Some(match last.code {
            "ERR_AUTH" => Error::Auth(last.message),
            "ERR_MAX_CLIENTS" => Error::MaxClients(last.message),
            "ERR_REDIS_VERSION" => Error::RedisVersion(last.message),
            "ERR_TLS" => Error::Tls(last.message),
            "ERR_TIMEOUT" => Error::Timeout(last.message),
            "ERR_CONNECTION_LOST" => Error::ConnectionLost(last.message),
            "ERR_REDIS" => Error::Redis(last.message),
            _ => Error::Unreachable(last.message),
        })
    }

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

    fn record_error(&self, role: Role, err: &Error) {
        *self.last_error.lock().unwrap() = Some(LastError {
            code: err.code(),
            message: err.to_string(),
            at: now_ms(),
        });
        let mut ev = ConnectionEvent::new(EventKind::Error, &self.display);
        ev.connection = Some(role);
        ev.code = Some(err.code());
        ev.message = Some(err.to_string());
        self.hub.emit(&ev);
    }

    /// Make a fresh connection visible. `ready` is announced under the same lock, before
    /// the connection can be seen (and broken) by anyone, so no ready period goes unannounced.
    fn publish(&self, role: Role, conn: MultiplexedConnection) {
        let mut announced = self.announced_ready.lock().unwrap();
        let other = match role {
            Role::Command => &self.blocking,
            Role::Blocking => &self.command,
        };
        if other.is_up() && !self.is_closed() && !*announced {
            *announced = true;
            self.ever_ready.store(true, Ordering::Relaxed);
            self.hub
                .emit(&ConnectionEvent::new(EventKind::Ready, &self.display));
        }
        self.slot(role).conn.send_replace(Some(conn));
    }

    fn slot_changed(&self) {
        let mut announced = self.announced_ready.lock().unwrap();
        let ready = self.command.is_up() && self.blocking.is_up() && !self.is_closed();
        if ready && !*announced {
            *announced = true;
            self.ever_ready.store(true, Ordering::Relaxed);
            self.hub
                .emit(&ConnectionEvent::new(EventKind::Ready, &self.display));
        } else if !ready {
            *announced = false;
        }
    }

    async fn supervise(self: Arc<Self>, role: Role) {
        let slot = self.slot(role);
        let mut closed = self.closed.subscribe();
        let mut failures: u32 = 0;
        let mut auth_failures: u32 = 0;
        loop {
            if *closed.borrow_and_update() {
                break;
            }
            let attempt = tokio::select! {
                r = self.open(role) => r,
                _ = closed.changed() => break,
            };
            match attempt {
                Ok((conn, client_id, mut pushes)) => {
                    auth_failures = 0;
                    *slot.client_id.lock().unwrap() = Some(client_id);
                    self.publish(role, conn);
                    let up_since = Instant::now();
                    let mut conn_rx = slot.conn.subscribe();
                    conn_rx.borrow_and_update();
                    // Up until the socket reports its end, someone reports it broken, or shutdown.
                    let shutdown = loop {
                        tokio::select! {
                            p = pushes.recv() => match p {
                                Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => break false,
                                Some(_) => {}
                            },
                            r = conn_rx.changed() => {
                                if r.is_err() || conn_rx.borrow_and_update().is_none() { break false }
                            }
                            _ = closed.changed() => break true,
                        }
                    };
                    slot.conn.send_replace(None);
                    *slot.client_id.lock().unwrap() = None;
                    self.slot_changed();
                    if shutdown || self.is_closed() {
                        break;
                    }
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    let err = Error::ConnectionLost(format!(
                        "{} connection to {} was closed",
                        role.as_str(),
                        self.display
                    ));
                    self.record_error(role, &err);
                    if up_since.elapsed() >= STABLE_AFTER {
                        failures = 0;
                    }
                }
                Err(err) => {
                    self.record_error(role, &err);
                    if matches!(err, Error::Auth(_)) {
                        auth_failures += 1;
                    }
                    if err.is_fatal() || auth_failures >= MAX_AUTH_ATTEMPTS {
                        self.give_up(err);
                        break;
                    }
                }
            }
            failures += 1;
            let delay = backoff_delay(&self.endpoint.retry, failures);
            let mut ev = ConnectionEvent::new(EventKind::Reconnecting, &self.display);
            ev.connection = Some(role);
            ev.delay = Some(delay.as_millis() as u64);
            ev.attempt = Some(failures);
            self.hub.emit(&ev);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = closed.changed() => break,
            }
        }
    }

    /// A fatal error (wrong password after retries, unsupported server): stop both
    /// supervisors, fail every waiter with this error, announce `end`.
    fn give_up(&self, err: Error) {
        *self.fatal.lock().unwrap() = Some(err);
        self.close_now();
    }

    fn close_now(&self) {
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

    async fn shutdown(&self) {
        self.close_now();
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }

    /// Open one socket and prepare it: HELLO 3 with AUTH and SELECT (by redis-rs), CLIENT SETNAME, CLIENT ID, and on the
    /// command connection the server checks. Bounded by the connect timeout as a whole.
    async fn open(
        &self,
        role: Role,
    ) -> Result<(
        MultiplexedConnection,
        i64,
        mpsc::UnboundedReceiver<PushInfo>,
    )> {
        let timeout = self.endpoint.connect_timeout;
        let (tx, rx) = mpsc::unbounded_channel();
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(match role {
                Role::Command => Some(COMMAND_RESPONSE_TIMEOUT),
                Role::Blocking => None,
            })
            .set_push_sender(tx);
        let secret = self.endpoint.password.as_deref();
        let setup = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map_err(|e| self.setup_error(&e))?;
            // Named so operators can tell our two sockets apart in CLIENT LIST.
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(format!(
                    "queue-native:{}:{}",
                    role.as_str(),
                    std::process::id()
                ))
                .exec_async(&mut conn)
                .await
                .map_err(|e| self.setup_error(&e))?;
            let id: i64 = redis::cmd("CLIENT")
                .arg("ID")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.setup_error(&e))?;
            if role == Role::Command {
                self.check_server(&mut conn).await?;
            }
            Ok::<_, Error>((conn, id))
        };
        match tokio::time::timeout(timeout, setup).await {
            Ok(Ok((conn, id))) => Ok((conn, id, rx)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Unreachable(error_text(
                &format!(
                    "cannot connect to {}: timed out after {} ms",
                    self.display,
                    timeout.as_millis()
                ),
                secret,
            ))),
        }
    }

    /// Errors while establishing a socket: an I/O failure here means "cannot reach".
    fn setup_error(&self, e: &redis::RedisError) -> Error {
        match Error::from_redis(e, self.endpoint.password.as_deref()) {
            Error::ConnectionLost(m) | Error::Timeout(m) | Error::Unreachable(m) => {
                Error::Unreachable(format!("cannot connect to {}: {m}", self.display))
            }
            other => other,
        }
    }

    async fn check_server(&self, conn: &mut MultiplexedConnection) -> Result<()> {
        let info: String = redis::cmd("INFO")
            .query_async(conn)
            .await
            .map_err(|e| self.setup_error(&e))?;
        // Valkey reports a redis_version for compatibility, so one check covers both.
        if let Some(v) = info_field(&info, "redis_version") {
            *self.redis_version.lock().unwrap() = Some(v.to_string());
            match parse_version(v) {
                Some(ver) if ver >= MIN_REDIS_VERSION => {}
                _ => {
                    return Err(Error::RedisVersion(format!(
                        "{} runs Redis {v}; queue-native needs {}.{}.{} or newer",
                        self.display, MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1, MIN_REDIS_VERSION.2
                    )));
                }
            }
        }
        if let Some(policy) = info_field(&info, "maxmemory_policy")
            && policy != "noeviction"
            && !self.warned_policy.swap(true, Ordering::Relaxed)
        {
            let mut ev = ConnectionEvent::new(EventKind::Warning, &self.display);
            ev.code = Some("WARN_EVICTION_POLICY");
            ev.message = Some(format!(
                "maxmemory-policy is `{policy}` on {}: Redis may evict queue keys and lose jobs; set it to `noeviction`",
                self.display
            ));
            self.hub.emit(&ev);
        }
        Ok(())
    }
}

fn error_text(text: &str, secret: Option<&str>) -> String {
    super::error::scrub(text, secret)
}

fn build_client(ep: &Endpoint) -> Result<redis::Client> {
    // RESP3 because only a RESP3 connection reports its own end (the Disconnection push),
    // and its HELLO carries AUTH, whose error replies redis-rs passes on unchanged.
    let mut redis_info = redis::RedisConnectionInfo::default()
        .set_protocol(redis::ProtocolVersion::RESP3)
        .set_skip_set_lib_name()
        .set_db(ep.db);
    if let Some(user) = &ep.username {
        redis_info = redis_info.set_username(user);
    }
    if let Some(pw) = &ep.password {
        redis_info = redis_info.set_password(pw);
    }
    let addr = match &ep.tls {
        None => redis::ConnectionAddr::Tcp(ep.host.clone(), ep.port),
        Some(t) => redis::ConnectionAddr::TcpTls {
            // `tls.servername`, if given, equals the host (checked by options).
            host: ep.host.clone(),
            port: ep.port,
            insecure: !t.reject_unauthorized,
            tls_params: None,
        },
    };
    let info = redis::IntoConnectionInfo::into_connection_info(addr)
        .map_err(|e| Error::invalid("connection", e.to_string()))?
        .set_redis_settings(redis_info);
    let result = match &ep.tls {
        Some(t) if t.ca.is_some() || t.cert.is_some() => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: match (&t.cert, &t.key) {
                    (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                        client_cert: c.as_bytes().to_vec(),
                        client_key: k.as_bytes().to_vec(),
                    }),
                    _ => None,
                },
                root_cert: t.ca.as_ref().map(|c| c.as_bytes().to_vec()),
            },
        ),
        _ => redis::Client::open(info),
    };
    result.map_err(|e| match Error::from_redis(&e, ep.password.as_deref()) {
        Error::Tls(m) => Error::invalid("tls", m),
        other => Error::invalid("connection", other.to_string()),
    })
}

/// Fans connection events out to listeners (the binding registers JS callbacks here).
#[derive(Default)]
pub struct Hub {
    listeners: Mutex<Vec<Listener>>,
}

impl Hub {
    pub fn emit(&self, ev: &ConnectionEvent) {
        let listeners = self.listeners.lock().unwrap().clone();
        for l in listeners {
            l(ev);
        }
    }
}

#[derive(Default)]
struct RegistryState {
    configured: Option<Endpoint>,
    pairs: HashMap<EndpointKey, Arc<Pair>>,
    shut_down: bool,
}

/// Every connection pair of the process. The binding uses [`global()`]; tests build their own.
#[derive(Default)]
pub struct Registry {
    state: Mutex<RegistryState>,
    hub: Arc<Hub>,
}

static GLOBAL: OnceLock<Registry> = OnceLock::new();

pub fn global() -> &'static Registry {
    GLOBAL.get_or_init(Registry::default)
}

impl Registry {
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

    pub fn on_event(&self, listener: Listener) {
        self.hub.listeners.lock().unwrap().push(listener);
    }

    pub fn clear_listeners(&self) {
        self.hub.listeners.lock().unwrap().clear();
    }

    pub fn health(&self) -> Health {
        let state = self.state.lock().unwrap();
        let mut endpoints: Vec<EndpointHealth> = state.pairs.values().map(|p| p.health()).collect();
        endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        let status = if endpoints.is_empty() {
            if state.shut_down {
                Status::Closed
            } else {
                Status::Idle
            }
        } else if endpoints.iter().all(|e| e.status == Status::Ready) {
            Status::Ready
        } else if endpoints.iter().any(|e| e.status == Status::Reconnecting) {
            Status::Reconnecting
        } else if endpoints.iter().any(|e| e.status == Status::Connecting) {
            Status::Connecting
        } else if endpoints.iter().any(|e| e.status == Status::Ready) {
            Status::Ready
        } else {
            Status::Closed
        };
        let connections = endpoints
            .iter()
            .fold(Connections::default(), |acc, e| Connections {
                command: acc.command + e.connections.command,
                blocking: acc.blocking + e.connections.blocking,
            });
        let last_error = endpoints
            .iter()
            .filter_map(|e| e.last_error.clone())
            .max_by_key(|e| e.at);
        Health {
            status,
            connections,
            reconnects: endpoints.iter().map(|e| e.reconnects).sum(),
            last_error,
            redis_version: endpoints.iter().find_map(|e| e.redis_version.clone()),
            endpoints,
        }
    }

    /// Close every connection pair. Idempotent; a later `pair()` connects afresh.
    pub async fn shutdown(&self) {
        let pairs: Vec<Arc<Pair>> = {
            let mut state = self.state.lock().unwrap();
            state.shut_down = true;
            state.pairs.drain().map(|(_, p)| p).collect()
        };
        for p in pairs {
            p.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let d = backoff_delay(&policy, attempt).as_millis() as u64;
            let base = (100u64 << (attempt - 1).min(32)).min(2000);
            assert!(
                d >= base / 2 && d <= base,
                "attempt {attempt}: {d} not in [{}, {base}]",
                base / 2
            );
        }
    }

    #[test]
    fn versions_compare() {
        assert!(parse_version("7.0.15").unwrap() >= MIN_REDIS_VERSION);
        assert!(parse_version("6.2").unwrap() >= MIN_REDIS_VERSION);
        assert!(parse_version("6.0.9").unwrap() < MIN_REDIS_VERSION);
        assert!(parse_version("garbage").is_none());
    }

    #[test]
    fn info_fields() {
        let info =
            "# Server\r\nredis_version:7.0.15\r\n# Memory\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(info_field(info, "redis_version"), Some("7.0.15"));
        assert_eq!(info_field(info, "maxmemory_policy"), Some("allkeys-lru"));
        assert_eq!(info_field(info, "redis_mode"), None);
    }
}
