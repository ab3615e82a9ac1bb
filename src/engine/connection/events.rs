//! Connection events (`onConnection` of the API) and the hub that fans them out.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::pair::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
/// The kind of a connection event (`event` of `onConnection`).
pub enum EventKind {
    /// Both sockets of the pair are up.
    Ready,
    /// A socket is down; the next attempt is scheduled.
    Reconnecting,
    /// A connection error (the pair keeps trying unless `end` follows).
    Error,
    /// The pair is closed for good (shutdown or a fatal error).
    End,
    /// Something to fix on the server (e.g. its eviction policy).
    Warning,
}

impl EventKind {
    /// The event's name.
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
    /// What happened.
    pub event: EventKind,
    /// The endpoint's printable name.
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Which socket (`error`, `reconnecting`).
    pub connection: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The error or warning code.
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The error or warning text.
    pub message: Option<String>,
    /// Milliseconds until the next attempt (`reconnecting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// 1-based count of consecutive failed attempts (`reconnecting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

impl ConnectionEvent {
    pub(super) fn new(event: EventKind, endpoint: &str) -> Self {
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

/// A receiver of connection events.
pub type Listener = Arc<dyn Fn(&ConnectionEvent) + Send + Sync>;

/// Names one registered [`Listener`], to remove it again.
pub type ListenerId = u64;

/// Fans connection events out to listeners (the binding registers JS callbacks here).
#[derive(Default)]
pub struct Hub {
    pub(super) listeners: Mutex<Vec<(ListenerId, Listener)>>,
    pub(super) next_id: std::sync::atomic::AtomicU64,
}

impl Hub {
    /// Call every listener with `ev`.
    pub fn emit(&self, ev: &ConnectionEvent) {
        let listeners: Vec<Listener> = self
            .listeners
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| Arc::clone(l))
            .collect();
        for l in listeners {
            l(ev);
        }
    }
}
