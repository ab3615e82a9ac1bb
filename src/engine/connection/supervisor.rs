//! The supervisor of one socket of a pair: open it (HELLO 3 with AUTH, SELECT, CLIENT
//! SETNAME, CLIENT ID, the server checks), publish it, watch for its end, reconnect with
//! jittered exponential backoff, give up on errors that retrying cannot fix.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind};
use tokio::sync::mpsc;

use super::events::{ConnectionEvent, EventKind};
use super::pair::{Pair, Role};
use crate::engine::error::{Error, Result};
use crate::engine::options::{Endpoint, RetryPolicy};
use crate::engine::util::random_below;

/// Redis older than this lacks commands and script features the protocol relies on.
pub const MIN_REDIS_VERSION: (u32, u32, u32) = (6, 2, 0);
/// Response timeout on the command connection; the blocking connection has none (a long
/// BZPOPMIN must never be abandoned client-side; its owner runs its own watchdog).
pub const COMMAND_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that dies sooner than this after coming up does not reset the backoff, so a
/// server that accepts and then drops us cannot cause a tight reconnect loop.
const STABLE_AFTER: Duration = Duration::from_secs(1);
/// How often a socket connected to a loading server asks whether loading is over.
const LOADING_POLL: Duration = Duration::from_millis(50);

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

/// An opened socket: the connection, its `CLIENT ID`, and its push channel.
type Opened = (
    MultiplexedConnection,
    i64,
    mpsc::UnboundedReceiver<PushInfo>,
);

impl Pair {
    pub(super) async fn supervise(self: Arc<Self>, role: Role) {
        let slot = self.slot(role);
        let mut closed = self.closed.subscribe();
        let mut failures: u32 = 0;
        // The code of the failure last announced as an `error` event: retries that fail the
        // same way update `last_error` quietly, so a password rotation or an outage is one
        // event when it starts (and one per change), not one per attempt.
        let mut announced: Option<&'static str> = None;
        loop {
            if *closed.borrow_and_update() {
                break;
            }
            let attempt = tokio::select! {
                r = self.open_loaded(role) => r,
                _ = closed.changed() => break,
            };
            match attempt {
                Ok((conn, client_id, mut pushes)) => {
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
                    self.record_error(role, &err, true);
                    announced = Some(err.code());
                    if up_since.elapsed() >= STABLE_AFTER {
                        failures = 0;
                    }
                }
                Err(err) => {
                    // Wrong credentials are retried like any outage: a password rotation
                    // must heal by itself once the server takes the password again.
                    self.record_error(role, &err, announced != Some(err.code()));
                    announced = Some(err.code());
                    if err.is_fatal() {
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
                _ = self.retry_now.notified() => {}
                _ = closed.changed() => break,
            }
        }
    }

    /// [`Self::open`], then wait until the server has its dataset in memory: a restarted
    /// Redis accepts connections (and HELLO, CLIENT, INFO) while it loads its AOF or RDB, but
    /// answers every data command with LOADING. The socket is published only once loaded, so
    /// `ready` means "can run scripts". The wait has no deadline of its own (a large dataset
    /// takes as long as it takes); each probe is bounded by the connect timeout.
    async fn open_loaded(&self, role: Role) -> Result<Opened> {
        let (mut conn, id, pushes) = self.open(role).await?;
        let mut reported = false;
        let mut info_cmd = redis::cmd("INFO");
        info_cmd.arg("persistence");
        loop {
            let probe = info_cmd.query_async::<String>(&mut conn);
            let info = match tokio::time::timeout(self.endpoint.connect_timeout, probe).await {
                Ok(r) => r.map_err(|e| self.setup_error(&e))?,
                Err(_) => {
                    return Err(Error::Unreachable(format!(
                        "{} did not answer INFO within {} ms",
                        self.display,
                        self.endpoint.connect_timeout.as_millis()
                    )));
                }
            };
            if info_field(&info, "loading") != Some("1") {
                return Ok((conn, id, pushes));
            }
            if !reported {
                reported = true;
                self.record_error(
                    role,
                    &Error::Busy(format!(
                        "{} is loading its dataset (LOADING): waiting until it is loaded",
                        self.display
                    )),
                    true,
                );
            }
            tokio::time::sleep(LOADING_POLL).await;
        }
    }

    /// Open one socket and prepare it: HELLO 3 with AUTH and SELECT (by redis-rs), CLIENT SETNAME, CLIENT ID, and on the
    /// command connection the server checks. Bounded by the connect timeout as a whole.
    async fn open(&self, role: Role) -> Result<Opened> {
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
            // Sentinel hook: the master is asked for before every connect.
            let client = match &self.sentinel {
                Some(s) => s.client_for(&self.endpoint, role).await?,
                None => self.client.clone(),
            };
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map_err(|e| self.setup_error(&e))?;
            // Named so operators can tell our two sockets apart in CLIENT LIST.
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(super::naming::client_name(role, &self.display))
                .exec_async(&mut conn)
                .await
                .map_err(|e| self.setup_error(&e))?;
            let id: i64 = redis::cmd("CLIENT")
                .arg("ID")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.setup_error(&e))?;
            if let Some(s) = &self.sentinel {
                s.check_master(&mut conn).await?;
            }
            if role == Role::Command {
                self.check_server(&mut conn).await?;
                crate::engine::scripts::preload(&mut conn).await;
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
    crate::engine::error::scrub(text, secret)
}

pub(super) fn build_client(ep: &Endpoint) -> Result<redis::Client> {
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
