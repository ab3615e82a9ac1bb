//! The one error type of the engine. Every failure that can reach JavaScript is one of these
//! variants; the binding turns it into a `QueueNativeError` whose `code` is `Error::code()`.

/// Every failure the engine reports, each with a stable code ([`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A caller-supplied option is wrong. `option` names it the way the caller wrote it.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option, as the caller wrote it.
        option: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No TCP/TLS session could be established (refused, timed out, DNS, reset during setup).
    #[error("{0}")]
    Unreachable(String),
    /// The server rejected our credentials (WRONGPASS, NOAUTH, ...).
    #[error("{0}")]
    Auth(String),
    /// `ERR max number of clients reached`: kept apart because it is the failure this
    /// library exists to prevent, and the application must see the server's own words.
    #[error("{0}")]
    MaxClients(String),
    /// The server is older than the protocol needs.
    #[error("{0}")]
    RedisVersion(String),
    /// TLS handshake or certificate problem.
    #[error("{0}")]
    Tls(String),
    /// The library (or the connection pair) was shut down.
    #[error("{0}")]
    Closed(String),
    /// A command did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The connection dropped while a command was in flight.
    #[error("{0}")]
    ConnectionLost(String),
    /// The job's lock is gone or held by another token (scripts' -2 / -6).
    #[error("{0}")]
    LockLost(String),
    /// The job hash does not exist (scripts' -1).
    #[error("{0}")]
    JobNotFound(String),
    /// The job is not in the state the operation needs (-3 not active, -4 pending
    /// dependencies, -9 failed children).
    #[error("{0}")]
    JobState(String),
    /// Stored job data (or a value to store) is not valid JSON.
    #[error("{0}")]
    JobData(String),
    /// A queue's keys would span Redis Cluster slots (no shared hash tag).
    #[error("{0}")]
    CrossSlot(String),
    /// The ACL user lacks a permission (`NOPERM`); the message names the command or key.
    #[error("{0}")]
    NoPerm(String),
    /// The server refused the command for now (LOADING, BUSY, TRYAGAIN, MASTERDOWN): it was
    /// not run. Calls wait and send it again (see `scripts::ride_out`); this reaches the
    /// caller only when the refusal outlasts that wait.
    #[error("{0}")]
    Busy(String),
    /// Any other error reply from Redis.
    #[error("{0}")]
    Redis(String),
}

impl Error {
    /// The stable code JavaScript sees as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidOption { .. } => "ERR_INVALID_OPTION",
            Error::Unreachable(_) => "ERR_REDIS_UNREACHABLE",
            Error::Auth(_) => "ERR_AUTH",
            Error::MaxClients(_) => "ERR_MAX_CLIENTS",
            Error::RedisVersion(_) => "ERR_REDIS_VERSION",
            Error::Tls(_) => "ERR_TLS",
            Error::Closed(_) => "ERR_CLOSED",
            Error::Timeout(_) => "ERR_TIMEOUT",
            Error::ConnectionLost(_) => "ERR_CONNECTION_LOST",
            Error::LockLost(_) => "ERR_LOCK_LOST",
            Error::JobNotFound(_) => "ERR_JOB_NOT_FOUND",
            Error::JobState(_) => "ERR_JOB_STATE",
            Error::JobData(_) => "ERR_JOB_DATA",
            Error::CrossSlot(_) => "ERR_CROSSSLOT",
            Error::NoPerm(_) => "ERR_NOPERM",
            Error::Busy(_) => "ERR_REDIS_BUSY",
            Error::Redis(_) => "ERR_REDIS",
        }
    }

    /// An [`Error::InvalidOption`].
    pub fn invalid(option: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            option: option.into(),
            reason: reason.into(),
        }
    }

    /// Errors that retrying cannot fix: the supervisor stops instead of looping.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::RedisVersion(_) | Error::InvalidOption { .. })
    }

    /// Classify a redis-rs error. `secret` is removed from the text in case a lower layer
    /// ever echoes it (defence in depth: we never put it into messages ourselves).
    pub fn from_redis(err: &redis::RedisError, secret: Option<&str>) -> Self {
        let text = scrub(&err.to_string(), secret);
        let lower = text.to_ascii_lowercase();
        if lower.contains("max number of clients reached") {
            // Keep the server's wording intact: this is what operators grep for.
            return Error::MaxClients(text);
        }
        if lower.contains("wrongpass")
            || lower.contains("noauth")
            || lower.contains("invalid password")
            || lower.contains("invalid username-password")
            || lower.contains("authentication")
            || err.kind() == redis::ErrorKind::AuthenticationFailed
        {
            return Error::Auth(text);
        }
        if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
            || text.contains("NOPERM")
        {
            return Error::NoPerm(text);
        }
        if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot) {
            return Error::CrossSlot(text);
        }
        if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake") {
            return Error::Tls(text);
        }
        if matches!(
            err.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN")
        ) {
            return Error::Busy(text);
        }
        if err.is_timeout() {
            return Error::Timeout(text);
        }
        if err.is_connection_refusal() {
            return Error::Unreachable(text);
        }
        if err.is_connection_dropped() || err.is_io_error() {
            return Error::ConnectionLost(text);
        }
        Error::Redis(text)
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Replace every occurrence of `secret` with `***`.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_clients_keeps_server_words() {
        let e = redis::RedisError::from((
            redis::ErrorKind::Io,
            "connect",
            "ERR max number of clients reached".to_string(),
        ));
        let mapped = Error::from_redis(&e, None);
        assert_eq!(mapped.code(), "ERR_MAX_CLIENTS");
        assert!(mapped.to_string().contains("max number of clients reached"));
    }

    #[test]
    fn wrongpass_is_auth_and_secret_is_scrubbed() {
        let e = redis::RedisError::from((
            redis::ErrorKind::Io,
            "auth",
            "WRONGPASS invalid username-password pair hunter2".to_string(),
        ));
        let mapped = Error::from_redis(&e, Some("hunter2"));
        assert_eq!(mapped.code(), "ERR_AUTH");
        assert!(!mapped.to_string().contains("hunter2"));
    }

    #[test]
    fn refusals_for_now_are_busy() {
        for (code, text) in [
            ("LOADING", "Redis is loading the dataset in memory"),
            ("BUSY", "Redis is busy running a script."),
            ("TRYAGAIN", "Multiple keys request during rehashing of slot"),
            (
                "MASTERDOWN",
                "Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ),
        ] {
            let reply = format!("-{code} {text}\r\n");
            let value = redis::parse_redis_value(reply.as_bytes()).unwrap();
            let e = value.extract_error().unwrap_err();
            assert_eq!(
                Error::from_redis(&e, None).code(),
                "ERR_REDIS_BUSY",
                "{code}"
            );
        }
        let other = redis::RedisError::from((redis::ErrorKind::Io, "x", "ERR unknown".into()));
        assert_ne!(Error::from_redis(&other, None).code(), "ERR_REDIS_BUSY");
    }

    #[test]
    fn invalid_option_names_the_option() {
        let e = Error::invalid("port", "must be an integer between 1 and 65535");
        assert_eq!(e.code(), "ERR_INVALID_OPTION");
        assert!(e.to_string().contains("`port`"));
    }
}
