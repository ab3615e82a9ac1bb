//! The process-wide events reader: every `QueueEvents` of the process is served by ONE
//! `XREAD BLOCK` over all subscribed `<prefix>:<queue>:events` streams of an endpoint, on a
//! third socket that exists only while at least one subscription does.
//!
//! BullMQ gives each `QueueEvents` its own blocking connection; a process with ten of them holds
//! ten extra sockets. Here a subscription is an entry in a table: the reader groups the table by
//! stream, reads each stream from the oldest cursor among its subscribers, and hands every
//! subscriber only the entries past its own cursor. When the table changes while the XREAD is
//! blocked, `CLIENT UNBLOCK <id>` on the shared command connection ends the read early (as the
//! dispatcher does with its BZPOPMIN); the reader then reads the new table.
//!
//! A subscription asking for `$` ("from now") gets a concrete cursor at subscribe time, read on
//! the command connection (the id of the stream's last entry): every event written after
//! `subscribe` returns is delivered, even if the reader picks the stream up a moment later. That
//! is what `QueueEvents.waitUntilReady()` promises.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::watch;

use super::{Pair, backoff_delay};
use crate::engine::error::{Error, Result};
use crate::engine::options::EndpointKey;
use crate::engine::scripts::reply::as_text;

/// Entries per XREAD: bounds one reply (an events stream holds up to ~10000 entries) while
/// a backlog is still drained in few round trips.
const BATCH: u64 = 1000;
/// BullMQ's default `blockingTimeout` of a QueueEvents.
pub const DEFAULT_BLOCK_MS: u64 = 10_000;
/// An XREAD that overstays its block by this much is presumed hung: the socket is dropped
/// and opened again.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);
/// How long a table change keeps trying to interrupt a blocked read before giving up (the
/// read then ends by its own timeout).
const KICK_FOR: Duration = Duration::from_secs(3);

/// One stream entry: its id and its field/value pairs in stream order.
pub type Entry = (String, Vec<(String, String)>);

/// What a subscriber receives.
pub enum Delivery {
    /// New entries of the subscribed stream, oldest first.
    Entries(Vec<Entry>),
    /// The events socket failed; the reader reconnects by itself and resumes from the cursor.
    Error(Error),
}

/// Where a subscription's deliveries go (called on the reader's task; must not block).
pub type Sink = Arc<dyn Fn(Delivery) + Send + Sync>;

/// A stream id `<ms>-<seq>`, compared numerically.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    /// `<ms>-<seq>` or `<ms>` (seq 0), as XREAD accepts them.
    pub fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = match text.split_once('-') {
            Some((ms, seq)) => (ms, seq),
            None => (text, "0"),
        };
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

struct Sub {
    stream: String,
    cursor: StreamId,
    block_ms: u64,
    sink: Sink,
}

#[derive(Default)]
struct State {
    subs: HashMap<u64, Sub>,
    next_id: u64,
    /// Bumped on every table change; `seen` is the generation the reader last read the
    /// table at. A change is picked up once `seen >= generation`.
    generation: u64,
    seen: u64,
    running: bool,
    /// CLIENT ID of the reader's socket while it is open.
    client_id: Option<i64>,
}

/// The reader of one endpoint.
pub struct Reader {
    pair: Arc<Pair>,
    state: Mutex<State>,
    /// true while the reader task runs (subscribers waiting for its exit watch this).
    running_tx: watch::Sender<bool>,
}

/// Sockets the readers of this process hold right now (for `health().connections.events`).
static OPEN_SOCKETS: AtomicU32 = AtomicU32::new(0);

static READERS: LazyLock<Mutex<HashMap<EndpointKey, Arc<Reader>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Events sockets open now, summed over endpoints.
pub fn sockets() -> u32 {
    OPEN_SOCKETS.load(Ordering::Relaxed)
}

/// Counts an open socket for as long as it lives.
struct OpenSocket {
    conn: MultiplexedConnection,
}

impl OpenSocket {
    fn new(conn: MultiplexedConnection) -> Self {
        OPEN_SOCKETS.fetch_add(1, Ordering::Relaxed);
        OpenSocket { conn }
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        OPEN_SOCKETS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A live subscription; [`Subscription::close`] ends it (dropping it does too, without
/// waiting for the socket to close).
pub struct Subscription {
    reader: Arc<Reader>,
    id: u64,
}

impl Subscription {
    /// End the subscription. When it was the last one of its endpoint, resolves once the
    /// events socket is closed.
    pub async fn close(self) {
        let reader = Arc::clone(&self.reader);
        let last = reader.remove(self.id);
        std::mem::forget(self);
        if last {
            reader.wait_stopped().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.reader.remove(self.id);
    }
}

/// Subscribe to `stream` (the full key of a queue's events stream) from `last_event_id`
/// (None or `$`: from now). `block_ms` is the XREAD block the subscriber asks for; the reader
/// blocks for the smallest among its subscribers.
pub async fn subscribe(
    pair: Arc<Pair>,
    stream: String,
    last_event_id: Option<&str>,
    block_ms: u64,
    sink: Sink,
) -> Result<Subscription> {
    let cursor = match last_event_id {
        None | Some("$") => last_id(&pair, &stream).await?,
        Some(text) => StreamId::parse(text).ok_or_else(|| {
            Error::invalid(
                "lastEventId",
                format!("`{text}` is not a stream id (`<ms>-<seq>`, `<ms>` or `$`)"),
            )
        })?,
    };
    let reader = reader_for(&pair);
    let id = reader.insert(Sub {
        stream,
        cursor,
        block_ms: block_ms.max(1),
        sink,
    });
    Ok(Subscription { reader, id })
}

/// Close every subscription of the process (`shutdown()`), waiting for the sockets to close.
pub async fn shutdown() {
    let readers: Vec<Arc<Reader>> = READERS.lock().unwrap().drain().map(|(_, r)| r).collect();
    for r in readers {
        {
            let mut st = r.state.lock().unwrap();
            st.subs.clear();
            st.generation += 1;
        }
        r.kick();
        r.wait_stopped().await;
    }
}

/// The id of the stream's newest entry, or 0-0 when it has none: reading after it yields
/// exactly what is written from now on.
async fn last_id(pair: &Pair, stream: &str) -> Result<StreamId> {
    let mut conn = pair.command().await?;
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .map_err(|e| Error::from_redis(&e, pair.endpoint().password.as_deref()))?;
    Ok(parse_entries(&reply)
        .and_then(|entries| entries.into_iter().next())
        .and_then(|(id, _)| StreamId::parse(&id))
        .unwrap_or_default())
}

fn reader_for(pair: &Arc<Pair>) -> Arc<Reader> {
    let mut readers = READERS.lock().unwrap();
    let key = pair.endpoint().key();
    if let Some(r) = readers.get(&key)
        && Arc::ptr_eq(&r.pair, pair)
    {
        return Arc::clone(r);
    }
    // First subscriber of this endpoint, or its pair was shut down and replaced.
    let reader = Arc::new(Reader {
        pair: Arc::clone(pair),
        state: Mutex::new(State::default()),
        running_tx: watch::Sender::new(false),
    });
    readers.insert(key, Arc::clone(&reader));
    reader
}

impl Reader {
    fn insert(self: &Arc<Self>, sub: Sub) -> u64 {
        let spawn = {
            let mut st = self.state.lock().unwrap();
            st.next_id += 1;
            let id = st.next_id;
            st.subs.insert(id, sub);
            st.generation += 1;
            let spawn = !st.running;
            if spawn {
                // Under the lock, like the reader's own stop: the two never interleave.
                st.running = true;
                self.running_tx.send_replace(true);
            }
            (id, spawn)
        };
        self.publish_listening();
        if spawn.1 {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.run().await });
        } else {
            self.kick();
        }
        spawn.0
    }

    /// Remove a subscription; true when the table is now empty (the reader will exit).
    fn remove(self: &Arc<Self>, id: u64) -> bool {
        let (removed, empty) = {
            let mut st = self.state.lock().unwrap();
            let removed = st.subs.remove(&id);
            if removed.is_some() {
                st.generation += 1;
            }
            (removed, st.subs.is_empty())
        };
        // The sink (and whatever it holds, e.g. a JS callback) is released outside the lock.
        drop(removed);
        self.publish_listening();
        self.kick();
        empty
    }

    /// The queues of the subscriptions, one per subscription, into the command socket's name
    /// (`getQueueEvents()`, see [`super::naming`]).
    fn publish_listening(&self) {
        let queues: Vec<String> = {
            let st = self.state.lock().unwrap();
            st.subs
                .values()
                .map(|s| {
                    s.stream
                        .strip_suffix(":events")
                        .unwrap_or(&s.stream)
                        .to_string()
                })
                .collect()
        };
        super::naming::set_listening(&self.pair, &queues);
    }

    async fn wait_stopped(&self) {
        let mut rx = self.running_tx.subscribe();
        let _ =
            tokio::time::timeout(KICK_FOR + WATCHDOG_GRACE, rx.wait_for(|running| !running)).await;
    }

    /// Make the reader read the table again soon: interrupt its XREAD until it has seen the
    /// current generation (a CLIENT UNBLOCK sent just before the XREAD starts blocking finds
    /// nothing to unblock, hence the retries).
    fn kick(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let deadline = tokio::time::Instant::now() + KICK_FOR;
            let target = me.state.lock().unwrap().generation;
            while tokio::time::Instant::now() < deadline {
                let client_id = {
                    let st = me.state.lock().unwrap();
                    if !st.running || st.seen >= target {
                        return;
                    }
                    st.client_id
                };
                if let Some(id) = client_id
                    && let Ok(mut conn) = me.pair.command().await
                {
                    let _: redis::RedisResult<Value> = redis::cmd("CLIENT")
                        .arg("UNBLOCK")
                        .arg(id)
                        .query_async(&mut conn)
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }

    /// What to read next: (streams, cursors, block ms), or None when the table is empty.
    fn plan(&self) -> Option<(Vec<String>, Vec<String>, u64)> {
        let mut st = self.state.lock().unwrap();
        if st.subs.is_empty() {
            return None;
        }
        st.seen = st.generation;
        let mut from: HashMap<&str, StreamId> = HashMap::new();
        let mut block = u64::MAX;
        for sub in st.subs.values() {
            let c = from.entry(&sub.stream).or_insert(sub.cursor);
            *c = (*c).min(sub.cursor);
            block = block.min(sub.block_ms);
        }
        let mut pairs: Vec<(String, StreamId)> =
            from.into_iter().map(|(s, c)| (s.to_string(), c)).collect();
        pairs.sort();
        let (streams, ids) = pairs.into_iter().map(|(s, c)| (s, c.to_string())).unzip();
        Some((streams, ids, block))
    }

    async fn run(self: Arc<Self>) {
        let mut socket: Option<OpenSocket> = None;
        let mut failures: u32 = 0;
        loop {
            let Some((streams, ids, block_ms)) = self.plan() else {
                // The socket closes before the reader says it stopped, so a new reader (for a
                // subscription arriving now) never runs beside this one's socket.
                drop(socket.take());
                let mut st = self.state.lock().unwrap();
                st.client_id = None;
                if st.subs.is_empty() {
                    st.running = false;
                    self.running_tx.send_replace(false);
                    return;
                }
                continue;
            };
            if socket.is_none() {
                match self.open().await {
                    Ok((conn, client_id)) => {
                        socket = Some(OpenSocket::new(conn));
                        self.state.lock().unwrap().client_id = Some(client_id);
                    }
                    Err(err) => {
                        failures += 1;
                        self.broadcast_error(err);
                        self.pause_after_failure(failures).await;
                        continue;
                    }
                }
            }
            let Some(open) = socket.as_mut() else {
                continue;
            };
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(&streams)
                .arg(&ids);
            let wait = Duration::from_millis(block_ms) + WATCHDOG_GRACE;
            let reply = tokio::time::timeout(wait, cmd.query_async::<Value>(&mut open.conn)).await;
            match reply {
                Ok(Ok(value)) => {
                    failures = 0;
                    self.deliver(&value);
                }
                Ok(Err(e)) => {
                    socket = None;
                    self.state.lock().unwrap().client_id = None;
                    failures += 1;
                    self.broadcast_error(Error::from_redis(
                        &e,
                        self.pair.endpoint().password.as_deref(),
                    ));
                    self.pause_after_failure(failures).await;
                }
                Err(_) => {
                    // Hung socket: open a new one (the old one closes when dropped).
                    socket = None;
                    self.state.lock().unwrap().client_id = None;
                }
            }
        }
    }

    /// Back off before the next attempt, but wake early when the table empties (close must
    /// not wait out a reconnect delay).
    async fn pause_after_failure(&self, failures: u32) {
        let delay = backoff_delay(&self.pair.endpoint().retry, failures);
        let deadline = tokio::time::Instant::now() + delay;
        while tokio::time::Instant::now() < deadline {
            if self.state.lock().unwrap().subs.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20).min(delay)).await;
        }
    }

    async fn open(&self) -> Result<(MultiplexedConnection, i64)> {
        let ep = self.pair.endpoint();
        let secret = ep.password.as_deref();
        // No response timeout: a long XREAD BLOCK must not be abandoned by the client; the
        // watchdog in `run` covers a hung socket instead.
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ep.connect_timeout))
            .set_response_timeout(None);
        let setup = async {
            let mut conn = self
                .pair
                .client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(format!("queue-native:events:{}", std::process::id()))
                .exec_async(&mut conn)
                .await?;
            let id: i64 = redis::cmd("CLIENT")
                .arg("ID")
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>((conn, id))
        };
        match tokio::time::timeout(ep.connect_timeout, setup).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(match Error::from_redis(&e, secret) {
                Error::ConnectionLost(m) | Error::Timeout(m) | Error::Unreachable(m) => {
                    Error::Unreachable(format!("events connection to {}: {m}", self.pair.display()))
                }
                other => other,
            }),
            Err(_) => Err(Error::Unreachable(format!(
                "events connection to {}: timed out after {} ms",
                self.pair.display(),
                ep.connect_timeout.as_millis()
            ))),
        }
    }

    fn broadcast_error(&self, err: Error) {
        let sinks: Vec<Sink> = self
            .state
            .lock()
            .unwrap()
            .subs
            .values()
            .map(|s| Arc::clone(&s.sink))
            .collect();
        for sink in sinks {
            sink(Delivery::Error(err.clone()));
        }
    }

    /// Hand each subscriber the entries past its cursor, and advance the cursor.
    fn deliver(&self, reply: &Value) {
        let by_stream = parse_xread(reply);
        if by_stream.is_empty() {
            return;
        }
        let mut out: Vec<(Sink, Vec<Entry>)> = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            for sub in st.subs.values_mut() {
                let Some(entries) = by_stream.get(&sub.stream) else {
                    continue;
                };
                let mine: Vec<Entry> = entries
                    .iter()
                    .filter(|(id, _)| StreamId::parse(id).is_some_and(|i| i > sub.cursor))
                    .cloned()
                    .collect();
                if let Some(last) = mine.last().and_then(|(id, _)| StreamId::parse(id)) {
                    sub.cursor = last;
                    out.push((Arc::clone(&sub.sink), mine));
                }
            }
        }
        for (sink, entries) in out {
            sink(Delivery::Entries(entries));
        }
    }
}

/// XREAD's reply (RESP3 map or RESP2 array of `[stream, entries]`) by stream.
fn parse_xread(v: &Value) -> HashMap<String, Vec<Entry>> {
    let mut out = HashMap::new();
    match v {
        Value::Map(items) => {
            for (k, entries) in items {
                if let (Some(name), Some(list)) = (as_text(k), parse_entries(entries)) {
                    out.insert(name, list);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::Array(pair) = item
                    && let [k, entries] = pair.as_slice()
                    && let (Some(name), Some(list)) = (as_text(k), parse_entries(entries))
                {
                    out.insert(name, list);
                }
            }
        }
        _ => {}
    }
    out
}

/// `[[id, [f1, v1, ...]], ...]` (XRANGE / XREAD entries).
fn parse_entries(v: &Value) -> Option<Vec<Entry>> {
    let Value::Array(items) = v else {
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return None;
        };
        let [id, fields] = pair.as_slice() else {
            return None;
        };
        let id = as_text(id)?;
        let flat: Vec<String> = match fields {
            Value::Array(f) => f.iter().filter_map(as_text).collect(),
            Value::Map(m) => m
                .iter()
                .flat_map(|(k, v)| [as_text(k), as_text(v)])
                .flatten()
                .collect(),
            _ => Vec::new(),
        };
        let fields = flat
            .chunks_exact(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect();
        out.push((id, fields));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn stream_ids_parse_and_order() {
        assert_eq!(StreamId::parse("5-1"), Some(StreamId(5, 1)));
        assert_eq!(StreamId::parse("7"), Some(StreamId(7, 0)));
        assert_eq!(StreamId::parse("x-1"), None);
        assert_eq!(StreamId::parse("$"), None);
        assert!(StreamId(5, 2) > StreamId(5, 1));
        assert!(StreamId(6, 0) > StreamId(5, 9));
        assert_eq!(StreamId(12, 3).to_string(), "12-3");
    }

    #[test]
    fn xread_replies_parse_in_both_protocols() {
        let entries = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("event"), bulk("added"), bulk("jobId"), bulk("1")]),
        ])]);
        let resp3 = Value::Map(vec![(bulk("bull:q:events"), entries.clone())]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("bull:q:events"), entries])]);
        for reply in [resp3, resp2] {
            let got = parse_xread(&reply);
            let list = &got["bull:q:events"];
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].0, "1-0");
            assert_eq!(
                list[0].1,
                vec![
                    ("event".to_string(), "added".to_string()),
                    ("jobId".to_string(), "1".to_string())
                ]
            );
        }
        assert!(parse_xread(&Value::Nil).is_empty());
    }
}
