//! The client names of a pair's sockets (`CLIENT SETNAME`). The blocking socket is
//! `queue-native:blocking:<pid>`. The command socket is `queue-native:command:<pid>` until a
//! worker of this process exists on the pair, then `queue-native:command:<workers>:<pid>`,
//! where `<workers>` has one comma-separated entry per Worker: base64 of its queue's
//! `<prefix>:<name>`, and `.` + base64 of its `name` option when it has one. That name is how
//! `Queue.getWorkers()` finds, in `CLIENT LIST`, every Worker of ours serving a queue:
//! BullMQ's reader expects one socket per Worker, named after its queue, which one socket
//! serving many queues and workers cannot give.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::pair::{Pair, Role};

/// The `<queues>` label per pair (by its display name); absent = no worker.
static LABELS: LazyLock<Mutex<HashMap<String, String>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The name a socket of the pair `display` gets now.
pub fn client_name(role: Role, display: &str) -> String {
    let pid = std::process::id();
    let label = LABELS.lock().unwrap().get(display).cloned();
    match (role, label) {
        (Role::Command, Some(label)) => format!("queue-native:command:{label}:{pid}"),
        _ => format!("queue-native:{}:{pid}", role.as_str()),
    }
}

/// The workers of this process on `pair` changed to `workers` (each its queue
/// `<prefix>:<name>` and its `name` option): when the label differs, the live command socket
/// is renamed (a socket opened later, after a reconnect, gets the name from
/// [`client_name`]). One entry per worker, `base64(<prefix>:<name>)`, followed by
/// `.base64(<worker name>)` for a named worker, so that `getWorkers()` lists each Worker as
/// BullMQ's does (one blocking socket per Worker there).
pub fn set_served(pair: &Arc<Pair>, workers: &[(String, Option<String>)]) {
    let mut encoded: Vec<String> = workers
        .iter()
        .map(|(queue, name)| match name {
            Some(name) => format!("{}.{}", base64(queue.as_bytes()), base64(name.as_bytes())),
            None => base64(queue.as_bytes()),
        })
        .collect();
    encoded.sort();
    let label = (!encoded.is_empty()).then(|| encoded.join(","));
    let display = pair.display.clone();
    {
        let mut map = LABELS.lock().unwrap();
        if map.get(&display) == label.as_ref() {
            return;
        }
        match label {
            Some(l) => map.insert(display.clone(), l),
            None => map.remove(&display),
        };
    }
    let pair = Arc::clone(pair);
    tokio::spawn(async move {
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
