//! `health()` of the connections: per endpoint, and summed over every endpoint.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
/// The state of a pair, or of all of them.
pub enum Status {
    /// No pair yet.
    Idle,
    /// Connecting for the first time.
    Connecting,
    /// Both sockets up.
    Ready,
    /// Both sockets up, but Redis has not answered the watchdog's PING in time (stopped,
    /// overloaded, or a partition): calls wait. Back to `Ready` when it answers.
    Degraded,
    /// Was up (or failed), trying again.
    Reconnecting,
    /// Shut down or gave up.
    Closed,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
/// The most recent connection error.
pub struct LastError {
    /// Its engine code.
    pub code: &'static str,
    /// Its message.
    pub message: String,
    /// Unix time in ms.
    pub at: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
/// Sockets up, by role.
pub struct Connections {
    /// Command connections up.
    pub command: u32,
    /// Blocking connections up.
    pub blocking: u32,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
/// One endpoint in `health().endpoints`.
pub struct EndpointHealth {
    /// The endpoint's printable name.
    pub endpoint: String,
    /// Its pair's state.
    pub status: Status,
    /// Its sockets up.
    pub connections: Connections,
    /// Reconnects after a socket was lost.
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Its most recent error.
    pub last_error: Option<LastError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The server's version, once known.
    pub redis_version: Option<String>,
}

/// `health()` of API.md, summed over every endpoint this process uses. Its fields mirror
/// [`EndpointHealth`]'s on purpose: API.md gives the process-wide view the shape of one
/// endpoint's, plus the list of endpoints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Ready only when every endpoint is.
    pub status: Status,
    /// Sockets up, summed.
    pub connections: Connections,
    /// Reconnects, summed.
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The most recent error of any endpoint.
    pub last_error: Option<LastError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A server version (the first known).
    pub redis_version: Option<String>,
    /// Each endpoint, sorted by name.
    pub endpoints: Vec<EndpointHealth>,
}

/// The process-wide view of `endpoints` (sorted by the caller); `shut_down` tells an empty
/// registry that was shut down (`closed`) from one never used (`idle`).
pub fn summarize(endpoints: Vec<EndpointHealth>, shut_down: bool) -> Health {
    let status = if endpoints.is_empty() {
        if shut_down {
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
    } else if endpoints.iter().any(|e| e.status == Status::Degraded) {
        Status::Degraded
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
