//! The client names of a pair's sockets (`CLIENT SETNAME`). The blocking socket is
//! `queue-native:blocking:<pid>`. The command socket is `queue-native:command:<pid>` until a
//! worker of this process exists on the pair, then `queue-native:command:<workers>:<pid>`,
//! where `<workers>` has one comma-separated entry per Worker: base64 of its queue's
//! `<prefix>:<name>`, and `.` + base64 of its `name` option when it has one. That name is how
//! `Queue.getWorkers()` finds, in `CLIENT LIST`, every Worker of ours serving a queue:
//! BullMQ's reader expects one socket per Worker, named after its queue, which one socket
//! serving many queues and workers cannot give. Each QueueEvents adds an entry `!` + base64
//! of its queue's `<prefix>:<name>`, for `Queue.getQueueEvents()`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::pair::{Pair, Role};

/// What a pair's command socket name lists: its Workers and its QueueEvents.
#[derive(Default)]
struct Served {
    /// One entry per Worker (see [`set_served`]).
    workers: Vec<String>,
    /// One entry per QueueEvents (see [`set_listening`]).
    listeners: Vec<String>,
}

impl Served {
    /// The `<entries>` part of the name; None when nothing is listed.
    fn label(&self) -> Option<String> {
        let all: Vec<&str> = self
            .workers
            .iter()
            .chain(&self.listeners)
            .map(String::as_str)
            .collect();
        (!all.is_empty()).then(|| all.join(","))
    }
}

/// Per pair (by its display name).
static SERVED: LazyLock<Mutex<HashMap<String, Served>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The name a socket of the pair `display` gets now.
pub fn client_name(role: Role, display: &str) -> String {
    let pid = std::process::id();
    let label = SERVED.lock().unwrap().get(display).and_then(Served::label);
    match (role, label) {
        (Role::Command, Some(label)) => format!("queue-native:command:{label}:{pid}"),
        _ => format!("queue-native:{}:{pid}", role.as_str()),
    }
}

/// The Workers of this process on `pair` changed to `workers` (each its queue
/// `<prefix>:<name>` and its `name` option). One entry per Worker, `base64(<prefix>:<name>)`,
/// followed by `.base64(<worker name>)` for a named worker, so that `getWorkers()` lists each
/// Worker as BullMQ's does (one blocking socket per Worker there).
pub fn set_served(pair: &Arc<Pair>, workers: &[(String, Option<String>)]) {
    let mut encoded: Vec<String> = workers
        .iter()
        .map(|(queue, name)| match name {
            Some(name) => format!("{}.{}", base64(queue.as_bytes()), base64(name.as_bytes())),
            None => base64(queue.as_bytes()),
        })
        .collect();
    encoded.sort();
    update(pair, |s| s.workers = encoded);
}

/// The QueueEvents of this process on `pair` changed: one entry per QueueEvents,
/// `!base64(<prefix>:<name>)` (`!` is not base64), for `getQueueEvents()`.
pub fn set_listening(pair: &Arc<Pair>, queues: &[String]) {
    let mut encoded: Vec<String> = queues
        .iter()
        .map(|q| format!("!{}", base64(q.as_bytes())))
        .collect();
    encoded.sort();
    update(pair, |s| s.listeners = encoded);
}

/// Change what `pair` lists; when its label differs, rename the live command socket (a socket
/// opened later, after a reconnect, gets the name from [`client_name`]).
fn update(pair: &Arc<Pair>, change: impl FnOnce(&mut Served)) {
    let display = pair.display.clone();
    {
        let mut map = SERVED.lock().unwrap();
        let served = map.entry(display.clone()).or_default();
        let before = served.label();
        change(served);
        let after = served.label();
        if after.is_none() {
            map.remove(&display);
        }
        if before == after {
            return;
        }
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let pair = Arc::clone(pair);
    rt.spawn(async move {
        if let Ok(mut conn) = pair.command().await {
            // The name is read when the command leaves: of two renames in flight, the one
            // sent last carries the newest label.
            let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(client_name(Role::Command, &display))
                .exec_async(&mut conn)
                .await;
        }
    });
}

/// Standard base64 with padding (what Node's `Buffer.toString('base64')` gives).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_with_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"bull:orders"), "YnVsbDpvcmRlcnM=");
        assert_eq!(base64("bull:ü?>".as_bytes()), "YnVsbDrDvD8+");
    }

    #[test]
    fn names_without_served_queues_are_the_plain_ones() {
        let pid = std::process::id();
        assert_eq!(
            client_name(Role::Blocking, "naming-test:1"),
            format!("queue-native:blocking:{pid}")
        );
        assert_eq!(
            client_name(Role::Command, "naming-test:1"),
            format!("queue-native:command:{pid}")
        );
    }
}
