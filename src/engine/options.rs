//! Connection options: parsing and validation of what `configure()`, a worker's or queue's
//! `connection` option, or the environment say, into one resolved [`Endpoint`].
//!
//! Validation lives here (not in JS) so that every entry point gives the same
//! `ERR_INVALID_OPTION` wording and so the rules are covered by `cargo test`.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{Error, Result};

/// `connectTimeout` when none is given.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(10_000);
/// First reconnect delay when none is given.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(100);
/// Longest reconnect delay when none is given.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_millis(2_000);

#[derive(Clone, PartialEq, Eq, Default)]
/// The `tls` option.
pub struct TlsOptions {
    /// CA certificate(s), PEM.
    pub ca: Option<String>,
    /// Client certificate, PEM.
    pub cert: Option<String>,
    /// Client key, PEM.
    pub key: Option<String>,
    /// SNI name (must equal the host).
    pub servername: Option<String>,
    /// Verify the server's certificate.
    pub reject_unauthorized: bool,
}

impl std::fmt::Debug for TlsOptions {
    // Certificates and keys are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca.as_ref().map(|_| "<pem>"))
            .field("cert", &self.cert.as_ref().map(|_| "<pem>"))
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("servername", &self.servername)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Reconnect backoff bounds.
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Cap of the delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: DEFAULT_RETRY_INITIAL,
            max: DEFAULT_RETRY_MAX,
        }
    }
}

/// Everything needed to open the connection pair for one Redis endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database number (SELECT).
    pub db: i64,
    /// ACL user.
    pub username: Option<String>,
    /// Password (never printed).
    pub password: Option<String>,
    /// TLS, when wanted.
    pub tls: Option<TlsOptions>,
    /// Bound of one connection attempt.
    pub connect_timeout: Duration,
    /// Reconnect backoff.
    pub retry: RetryPolicy,
    /// Redis Cluster seed nodes (`cluster` option); empty for a single server. Credentials,
    /// TLS and timeouts above apply to every node of the cluster.
    pub cluster: Vec<(String, u16)>,
    /// Redis Sentinel (`sentinels` + `name`): the master is asked of the sentinels before
    /// every connect, and followed when they name another one.
    pub sentinel: Option<SentinelOptions>,
}

/// The `sentinels`, `name`, `sentinelUsername` and `sentinelPassword` options.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelOptions {
    /// The master's name, as the sentinels monitor it.
    pub name: String,
    /// Sentinel addresses (any of them).
    pub sentinels: Vec<(String, u16)>,
    /// ACL user on the sentinels.
    pub username: Option<String>,
    /// Password on the sentinels (never printed).
    pub password: Option<String>,
}

/// The identity of an endpoint: two option sets with the same key share one connection pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    /// Host, lower-cased.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub db: i64,
    /// User.
    pub username: Option<String>,
    /// TLS or not.
    pub tls: bool,
    /// Cluster seeds (sorted, lower-cased hosts); empty for a single server.
    pub cluster: Vec<(String, u16)>,
    /// Sentinel master name and sentinels (sorted), for a Sentinel endpoint.
    pub sentinel: Option<(String, Vec<(String, u16)>)>,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            host: "127.0.0.1".into(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            cluster: Vec::new(),
            sentinel: None,
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Endpoint {
    /// The identity that decides pair sharing.
    pub fn key(&self) -> EndpointKey {
        // A cluster is named by its seeds alone (the first seed is not special).
        let (host, port) = if self.is_cluster() || self.sentinel.is_some() {
            (String::new(), 0)
        } else {
            (self.host.to_ascii_lowercase(), self.port)
        };
        EndpointKey {
            host,
            port,
            db: self.db,
            username: self.username.clone(),
            tls: self.tls.is_some(),
            cluster: {
                let mut seeds: Vec<_> = self
                    .cluster
                    .iter()
                    .map(|(h, p)| (h.to_ascii_lowercase(), *p))
                    .collect();
                seeds.sort();
                seeds.dedup();
                seeds
            },
            sentinel: self.sentinel.as_ref().map(|s| {
                let mut list: Vec<_> = s
                    .sentinels
                    .iter()
                    .map(|(h, p)| (h.to_ascii_lowercase(), *p))
                    .collect();
                list.sort();
                list.dedup();
                (s.name.clone(), list)
            }),
        }
    }

    /// Whether this endpoint is a Redis Cluster (given by its seed nodes).
    pub fn is_cluster(&self) -> bool {
        !self.cluster.is_empty()
    }

    /// A printable name for logs, events and errors: never carries the password.
    pub fn display(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let user = match &self.username {
            Some(u) => format!("{u}@"),
            None => String::new(),
        };
        let bracket = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_string()
            }
        };
        if self.is_cluster() {
            let seeds: Vec<String> = self
                .cluster
                .iter()
                .map(|(h, p)| format!("{}:{p}", bracket(h)))
                .collect();
            return format!("{scheme}+cluster://{user}{}", seeds.join(","));
        }
        if let Some(s) = &self.sentinel {
            let list: Vec<String> = s
                .sentinels
                .iter()
                .map(|(h, p)| format!("{}:{p}", bracket(h)))
                .collect();
            return format!(
                "{scheme}+sentinel://{user}{}/{}/{}",
                list.join(","),
                s.name,
                self.db
            );
        }
        format!(
            "{scheme}://{user}{}:{}/{}",
            bracket(&self.host),
            self.port,
            self.db
        )
    }
}

/// ioredis/BullMQ connection options that existing code passes and that mean nothing to a
/// connection pair we manage ourselves. Accepted and ignored so `base.worker.ts` can keep
/// its config object; anything else unknown is rejected so typos do not pass silently.
const IGNORED_IOREDIS_KEYS: &[&str] = &[
    "maxRetriesPerRequest",
    "enableReadyCheck",
    "enableOfflineQueue",
    "lazyConnect",
    "family",
    "keepAlive",
    "noDelay",
    "connectionName",
    "showFriendlyErrorStack",
    "enableAutoPipelining",
    "autoResubscribe",
    "autoResendUnfulfilledCommands",
    "reconnectOnError",
    "retryStrategy",
    "commandTimeout",
];

/// Parse a connection options object (`ConnectionOptions` of API.md), given as JSON.
/// `null`/absent means "no options" and yields `None`.
pub fn parse_connection_options(value: &Value) -> Result<Option<Endpoint>> {
    let obj = match value {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        _ => return Err(Error::invalid("connection", "must be an object")),
    };
    let mut ep = match obj.get("url") {
        None | Some(Value::Null) => Endpoint::default(),
        Some(Value::String(u)) => parse_url(u, "url")?,
        Some(_) => return Err(Error::invalid("url", "must be a string")),
    };
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "url" => {}
            "host" => ep.host = non_empty_string(v, "host")?,
            "port" => ep.port = port(v, "port")?,
            "db" => ep.db = db(v, "db")?,
            "username" => ep.username = Some(non_empty_string(v, "username")?),
            "password" => ep.password = Some(string(v, "password")?),
            "tls" => ep.tls = tls(v)?,
            "connectTimeout" => {
                ep.connect_timeout = Duration::from_millis(positive_ms(v, "connectTimeout")?)
            }
            "retry" => ep.retry = retry(v)?,
            // Parsed after the loop: its URLs may fill in credentials not given here.
            "cluster" | "sentinels" | "name" | "sentinelUsername" | "sentinelPassword" => {}
            other if IGNORED_IOREDIS_KEYS.contains(&other) => {}
            other => return Err(Error::invalid(other, "unknown connection option")),
        }
    }
    if let Some(seeds) = obj.get("cluster").filter(|v| !v.is_null()) {
        cluster_seeds(seeds, obj, &mut ep)?;
    }
    sentinel_options(obj, &mut ep)?;
    if let Some(name) = ep.tls.as_ref().and_then(|t| t.servername.as_deref())
        && !ep.is_cluster()
        && !name.eq_ignore_ascii_case(&ep.host)
    {
        // redis-rs verifies the certificate against the host it dials, so a separate SNI name
        // cannot be honoured; refusing beats silently verifying the wrong name.
        return Err(Error::invalid(
            "tls.servername",
            "must equal the host (connecting to one name while verifying another is not supported)",
        ));
    }
    Ok(Some(ep))
}

/// Resolve the default endpoint from the environment: `REDIS_URL`, else the `REDIS_HOST`
/// family, else `redis://127.0.0.1:6379`. `get` abstracts `std::env::var` for tests.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Endpoint> {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    if let Some(url) = get("REDIS_URL") {
        return parse_url(url.trim(), "REDIS_URL");
    }
    let mut ep = Endpoint::default();
    if let Some(h) = get("REDIS_HOST") {
        ep.host = h.trim().to_string();
    }
    if let Some(p) = get("REDIS_PORT") {
        ep.port = parse_port_str(p.trim(), "REDIS_PORT")?;
    }
    if let Some(u) = get("REDIS_USERNAME") {
        ep.username = Some(u);
    }
    if let Some(pw) = get("REDIS_PASSWORD") {
        ep.password = Some(pw);
    }
    if let Some(d) = get("REDIS_DB") {
        ep.db = parse_db_str(d.trim(), "REDIS_DB")?;
    }
    if let Some(t) = get("REDIS_TLS") {
        match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => ep.tls = Some(TlsOptions::secure()),
            "0" | "false" | "no" | "off" => ep.tls = None,
            _ => return Err(Error::invalid("REDIS_TLS", "must be true or false")),
        }
    }
    Ok(ep)
}

impl TlsOptions {
    fn secure() -> Self {
        TlsOptions {
            reject_unauthorized: true,
            ..Default::default()
        }
    }
}

/// Parse `redis://[user[:password]@]host[:port][/db]` or `rediss://…` (TLS).
pub fn parse_url(input: &str, option: &str) -> Result<Endpoint> {
    // The URL may carry a password: error messages below never quote the input.
    let url = url::Url::parse(input)
        .map_err(|e| Error::invalid(option, format!("is not a valid URL ({e})")))?;
    let mut ep = Endpoint::default();
    match url.scheme() {
        "redis" => {}
        "rediss" => ep.tls = Some(TlsOptions::secure()),
        other => {
            return Err(Error::invalid(
                option,
                format!("unsupported URL scheme `{other}` (use redis:// or rediss://)"),
            ));
        }
    }
    ep.host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(Error::invalid(option, "has no host")),
    };
    if let Some(p) = url.port() {
        if p == 0 {
            return Err(Error::invalid(option, "port must be between 1 and 65535"));
        }
        ep.port = p;
    }
    let user = decode(url.username());
    if !user.is_empty() {
        ep.username = Some(user);
    }
    if let Some(pw) = url.password() {
        ep.password = Some(decode(pw));
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        ep.db = parse_db_str(path, option)?;
    }
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "db" => ep.db = parse_db_str(&v, option)?,
            other => {
                return Err(Error::invalid(
                    option,
                    format!("unknown URL query parameter `{other}`"),
                ));
            }
        }
    }
    Ok(ep)
}

/// The `cluster` option: seed nodes as `{ host, port }` objects, `"host:port"` strings or
/// `redis://` / `rediss://` URLs (any subset of the nodes; the rest is discovered). A URL's
/// user, password and scheme apply to the whole cluster unless the options say otherwise.
fn cluster_seeds(v: &Value, obj: &Map<String, Value>, ep: &mut Endpoint) -> Result<()> {
    let list = v
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Error::invalid("cluster", "must be a non-empty array of nodes"))?;
    if obj.get("db").and_then(integer).is_some_and(|d| d != 0) {
        return Err(Error::invalid("db", "a Redis Cluster has only database 0"));
    }
    for (i, item) in list.iter().enumerate() {
        let name = format!("cluster[{i}]");
        let (host, port) = match item {
            Value::String(s) if s.contains("://") => {
                let u = parse_url(s, &name)?;
                let given = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
                if !given("username") && ep.username.is_none() {
                    ep.username = u.username.clone();
                }
                if !given("password") && ep.password.is_none() {
                    ep.password = u.password.clone();
                }
                if !given("tls") && ep.tls.is_none() {
                    ep.tls = u.tls.clone();
                }
                (u.host, u.port)
            }
            Value::String(s) => {
                let (h, p) = s.rsplit_once(':').ok_or_else(|| {
                    Error::invalid(&name, "must be host:port, a redis:// URL or { host, port }")
                })?;
                let h = h.trim_start_matches('[').trim_end_matches(']');
                if h.is_empty() {
                    return Err(Error::invalid(&name, "has no host"));
                }
                (h.to_string(), parse_port_str(p, &name)?)
            }
            Value::Object(o) => {
                for k in o.keys() {
                    if k != "host" && k != "port" {
                        return Err(Error::invalid(
                            format!("{name}.{k}"),
                            "unknown cluster node option (credentials and tls go beside `cluster`)",
                        ));
                    }
                }
                let host = match o.get("host") {
                    Some(h) if !h.is_null() => non_empty_string(h, &format!("{name}.host"))?,
                    _ => "127.0.0.1".to_string(),
                };
                let port = match o.get("port") {
                    Some(p) if !p.is_null() => port(p, &format!("{name}.port"))?,
                    _ => 6379,
                };
                (host, port)
            }
            _ => {
                return Err(Error::invalid(
                    &name,
                    "must be host:port, a redis:// URL or { host, port }",
                ));
            }
        };
        ep.cluster.push((host, port));
    }
    ep.db = 0;
    ep.host = ep.cluster[0].0.clone();
    ep.port = ep.cluster[0].1;
    Ok(())
}

/// `sentinels: [{ host, port } | 'host:port', ...]` with `name` (ioredis's spelling), and
/// optional `sentinelUsername` / `sentinelPassword` for the sentinels themselves.
fn sentinel_options(obj: &Map<String, Value>, ep: &mut Endpoint) -> Result<()> {
    let given = |k: &str| obj.get(k).filter(|v| !v.is_null());
    let Some(list) = given("sentinels") else {
        for k in ["name", "sentinelUsername", "sentinelPassword"] {
            if given(k).is_some() {
                return Err(Error::invalid(k, "only means something with `sentinels`"));
            }
        }
        return Ok(());
    };
    if ep.is_cluster() {
        return Err(Error::invalid(
            "sentinels",
            "cannot be combined with `cluster`",
        ));
    }
    let list = list
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Error::invalid("sentinels", "must be a non-empty array of nodes"))?;
    let mut sentinels = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let name = format!("sentinels[{i}]");
        sentinels.push(match item {
            Value::String(s) => {
                let (h, p) = s
                    .rsplit_once(':')
                    .ok_or_else(|| Error::invalid(&name, "must be host:port or { host, port }"))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    parse_port_str(p, &name)?,
                )
            }
            Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| *k != "host" && *k != "port") {
                    return Err(Error::invalid(
                        format!("{name}.{k}"),
                        "unknown sentinel option",
                    ));
                }
                let host = match o.get("host") {
                    Some(h) if !h.is_null() => non_empty_string(h, &format!("{name}.host"))?,
                    _ => "127.0.0.1".to_string(),
                };
                let port = match o.get("port") {
                    Some(p) if !p.is_null() => port(p, &format!("{name}.port"))?,
                    _ => 26379,
                };
                (host, port)
            }
            _ => return Err(Error::invalid(&name, "must be host:port or { host, port }")),
        });
    }
    let name = match given("name") {
        Some(v) => non_empty_string(v, "name")?,
        None => {
            return Err(Error::invalid(
                "name",
                "the master's name is required with `sentinels`",
            ));
        }
    };
    ep.sentinel = Some(SentinelOptions {
        name,
        sentinels,
        username: given("sentinelUsername")
            .map(|v| non_empty_string(v, "sentinelUsername"))
            .transpose()?,
        password: given("sentinelPassword")
            .map(|v| string(v, "sentinelPassword"))
            .transpose()?,
    });
    Ok(())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn string(v: &Value, option: &str) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(option, "must be a string"))
}

fn non_empty_string(v: &Value, option: &str) -> Result<String> {
    let s = string(v, option)?;
    if s.trim().is_empty() {
        return Err(Error::invalid(option, "must not be empty"));
    }
    Ok(s)
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

fn port(v: &Value, option: &str) -> Result<u16> {
    match v {
        Value::String(s) => parse_port_str(s, option),
        _ => integer(v)
            .filter(|p| (1..=65535).contains(p))
            .map(|p| p as u16)
            .ok_or_else(|| Error::invalid(option, "must be an integer between 1 and 65535")),
    }
}

fn parse_port_str(s: &str, option: &str) -> Result<u16> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::invalid(option, "must be an integer between 1 and 65535"))
}

fn db(v: &Value, option: &str) -> Result<i64> {
    match v {
        Value::String(s) => parse_db_str(s, option),
        _ => integer(v)
            .filter(|d| *d >= 0)
            .ok_or_else(|| Error::invalid(option, "must be a non-negative integer")),
    }
}

fn parse_db_str(s: &str, option: &str) -> Result<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|d| *d >= 0)
        .ok_or_else(|| Error::invalid(option, "database must be a non-negative integer"))
}

fn positive_ms(v: &Value, option: &str) -> Result<u64> {
    integer(v)
        .filter(|n| *n > 0)
        .map(|n| n as u64)
        .ok_or_else(|| Error::invalid(option, "must be a positive integer (milliseconds)"))
}

fn tls(v: &Value) -> Result<Option<TlsOptions>> {
    match v {
        Value::Bool(false) => Ok(None),
        Value::Bool(true) => Ok(Some(TlsOptions::secure())),
        Value::Object(o) => tls_object(o).map(Some),
        _ => Err(Error::invalid("tls", "must be a boolean or an object")),
    }
}

fn tls_object(o: &Map<String, Value>) -> Result<TlsOptions> {
    let mut t = TlsOptions::secure();
    for (k, v) in o {
        if v.is_null() {
            continue;
        }
        let name = format!("tls.{k}");
        match k.as_str() {
            "ca" => t.ca = Some(non_empty_string(v, &name)?),
            "cert" => t.cert = Some(non_empty_string(v, &name)?),
            "key" => t.key = Some(non_empty_string(v, &name)?),
            "servername" => t.servername = Some(non_empty_string(v, &name)?),
            "rejectUnauthorized" => {
                t.reject_unauthorized = v
                    .as_bool()
                    .ok_or_else(|| Error::invalid(&name, "must be a boolean"))?
            }
            _ => return Err(Error::invalid(&name, "unknown TLS option")),
        }
    }
    if t.cert.is_some() != t.key.is_some() {
        return Err(Error::invalid(
            "tls.cert",
            "tls.cert and tls.key must be given together",
        ));
    }
    Ok(t)
}

fn retry(v: &Value) -> Result<RetryPolicy> {
    let o = v
        .as_object()
        .ok_or_else(|| Error::invalid("retry", "must be an object"))?;
    let mut r = RetryPolicy::default();
    for (k, v) in o {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "initialDelay" => {
                r.initial = Duration::from_millis(positive_ms(v, "retry.initialDelay")?)
            }
            "maxDelay" => r.max = Duration::from_millis(positive_ms(v, "retry.maxDelay")?),
            other => {
                return Err(Error::invalid(
                    format!("retry.{other}"),
                    "unknown retry option",
                ));
            }
        }
    }
    if r.max < r.initial {
        return Err(Error::invalid(
            "retry.maxDelay",
            "must not be smaller than retry.initialDelay",
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Endpoint> {
        parse_connection_options(&v).map(|o| o.unwrap())
    }

    fn option_of(e: Error) -> String {
        match e {
            Error::InvalidOption { option, .. } => option,
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn url_and_host_port_name_the_same_endpoint() {
        let a = parse(json!({"url": "redis://:s3cret@LocalHost:7000/2"})).unwrap();
        let b = parse(json!({"host": "localhost", "port": 7000, "db": 2, "password": "s3cret"}))
            .unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        assert!(!a.display().contains("s3cret"));
    }

    #[test]
    fn explicit_fields_override_url() {
        let e = parse(json!({"url": "redis://h:1/1", "port": 2})).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("h", 2, 1));
    }

    #[test]
    fn rediss_means_tls_and_percent_decoding() {
        let e = parse(json!({"url": "rediss://user%40x:p%3Aw@example.com"})).unwrap();
        assert!(e.tls.is_some());
        assert_eq!(e.username.as_deref(), Some("user@x"));
        assert_eq!(e.password.as_deref(), Some("p:w"));
        assert_eq!(e.port, 6379);
    }

    #[test]
    fn invalid_options_name_the_option() {
        assert_eq!(
            option_of(parse(json!({"port": 70000})).unwrap_err()),
            "port"
        );
        assert_eq!(
            option_of(parse(json!({"port": "abc"})).unwrap_err()),
            "port"
        );
        assert_eq!(option_of(parse(json!({"db": "abc"})).unwrap_err()), "db");
        assert_eq!(option_of(parse(json!({"db": -1})).unwrap_err()), "db");
        assert_eq!(
            option_of(parse(json!({"url": "http://x:1"})).unwrap_err()),
            "url"
        );
        assert_eq!(
            option_of(parse(json!({"tls": {"cafile": "x"}})).unwrap_err()),
            "tls.cafile"
        );
        assert_eq!(option_of(parse(json!({"hots": "x"})).unwrap_err()), "hots");
        assert_eq!(
            option_of(parse(json!({"host": "a", "tls": {"servername": "b"}})).unwrap_err()),
            "tls.servername"
        );
        assert_eq!(
            option_of(parse(json!({"retry": {"initialDelay": 0}})).unwrap_err()),
            "retry.initialDelay"
        );
    }

    #[test]
    fn cluster_seeds_in_three_spellings() {
        let e = parse(json!({
            "cluster": [{"host": "10.0.0.1", "port": 7000}, "10.0.0.2:7001", "rediss://u:pw@10.0.0.3:7002"]
        }))
        .unwrap();
        assert!(e.is_cluster());
        assert_eq!(e.cluster.len(), 3);
        assert_eq!(e.cluster[2], ("10.0.0.3".to_string(), 7002));
        assert_eq!(e.password.as_deref(), Some("pw"));
        assert!(e.tls.is_some());
        assert!(!e.display().contains("pw"));
        assert!(e.display().starts_with("rediss+cluster://u@10.0.0.1:7000,"));
        // Same seeds in another order: one cluster.
        let f = parse(json!({"cluster": ["10.0.0.2:7001", "rediss://u:pw@10.0.0.3:7002", {"host": "10.0.0.1", "port": 7000}]}))
            .unwrap();
        assert_eq!(e.key(), f.key());
        assert_eq!(
            option_of(parse(json!({"cluster": []})).unwrap_err()),
            "cluster"
        );
        assert_eq!(
            option_of(parse(json!({"cluster": ["nohost"]})).unwrap_err()),
            "cluster[0]"
        );
        assert_eq!(
            option_of(parse(json!({"cluster": [{"host": "h", "password": "x"}]})).unwrap_err()),
            "cluster[0].password"
        );
        assert_eq!(
            option_of(parse(json!({"cluster": ["h:1"], "db": 1})).unwrap_err()),
            "db"
        );
    }

    #[test]
    fn sentinel_options() {
        let e = parse(json!({
            "sentinels": [{"host": "10.0.0.1", "port": 26379}, "10.0.0.2:26380"],
            "name": "mymaster", "password": "pw", "sentinelPassword": "spw"
        }))
        .unwrap();
        let s = e.sentinel.as_ref().unwrap();
        assert_eq!(s.name, "mymaster");
        assert_eq!(s.sentinels[1], ("10.0.0.2".to_string(), 26380));
        assert_eq!(s.password.as_deref(), Some("spw"));
        assert!(!e.display().contains("pw"));
        assert_eq!(
            e.display(),
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/0"
        );
        assert_eq!(
            option_of(parse(json!({"sentinels": ["h:1"]})).unwrap_err()),
            "name"
        );
        assert_eq!(option_of(parse(json!({"name": "m"})).unwrap_err()), "name");
        assert_eq!(
            option_of(parse(json!({"sentinels": [], "name": "m"})).unwrap_err()),
            "sentinels"
        );
        assert_eq!(
            option_of(
                parse(json!({"sentinels": ["h:1"], "name": "m", "cluster": ["h:2"]})).unwrap_err()
            ),
            "sentinels"
        );
    }

    #[test]
    fn bad_url_error_does_not_echo_the_password() {
        let e = parse(json!({"url": "ftp://u:topsecret@h"})).unwrap_err();
        assert!(!e.to_string().contains("topsecret"));
    }

    #[test]
    fn ioredis_options_are_tolerated() {
        let e =
            parse(json!({"host": "h", "maxRetriesPerRequest": null, "enableReadyCheck": false}))
                .unwrap();
        assert_eq!(e.host, "h");
    }

    #[test]
    fn environment_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = from_env(env(&[("REDIS_URL", "redis://a:1/3"), ("REDIS_HOST", "b")])).unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("a", 1, 3));
        let e = from_env(env(&[
            ("REDIS_HOST", "b"),
            ("REDIS_PORT", "2"),
            ("REDIS_DB", "4"),
            ("REDIS_TLS", "true"),
        ]))
        .unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("b", 2, 4));
        assert!(e.tls.is_some());
        let e = from_env(env(&[])).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 6379));
        assert_eq!(
            option_of(from_env(env(&[("REDIS_PORT", "x")])).unwrap_err()),
            "REDIS_PORT"
        );
        assert_eq!(
            option_of(from_env(env(&[("REDIS_DB", "one")])).unwrap_err()),
            "REDIS_DB"
        );
    }
}
