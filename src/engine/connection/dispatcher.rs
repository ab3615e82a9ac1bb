//! The dispatcher: the only user of a pair's blocking connection. Every worker of the process
//! that has free capacity while its queue looks empty registers here instead of blocking on a
//! socket of its own. One `BZPOPMIN m1 m2 ... timeout` waits on the markers of all those
//! queues at once; the key order rotates so no queue starves, and the timeout is the earliest
//! deadline among the waiters (a delayed job falling due, or the drain delay).
//!
//! When the set of keys changes (or a waiter needs an earlier deadline) while a BZPOPMIN is in
//! flight, `CLIENT UNBLOCK <id>` on the command connection ends it early; its reply is still
//! consumed, so a marker popped in that instant is never lost.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::{Notify, oneshot};

use super::cluster::BlockingRoute;
use super::pair::{Pair, Role};
use crate::engine::error::Error;
use crate::engine::observe;

/// The smallest BZPOPMIN timeout sent: 1 ms from Redis 7.0.8; before it, a timeout under
/// 2 ms could be taken as 0, "block forever" (BullMQ keeps the same two minimums).
const MIN_BLOCK: Duration = Duration::from_millis(1);
const MIN_BLOCK_BEFORE_7_0_8: Duration = Duration::from_millis(2);

/// The smallest timeout for the server of `pair` (its version as it reported it).
fn min_block(pair: &Pair) -> Duration {
    let version = pair.redis_version.lock().unwrap().clone();
    match version.as_deref().and_then(super::parse_version) {
        Some(v) if v < (7, 0, 8) => MIN_BLOCK_BEFORE_7_0_8,
        _ => MIN_BLOCK,
    }
}
/// BullMQ never blocks longer than this for a scheduled wait; neither do we.
const MAX_BLOCK: Duration = Duration::from_secs(10);
/// A BZPOPMIN that overstays its timeout by this much is presumed hung: the socket is
/// reported broken and the supervisor reconnects.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// Why a waiter was woken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wake {
    /// The marker was popped with this score: 0 means "jobs available now", a future
    /// timestamp (ms) means "next delayed job due then".
    Marker(f64),
    /// The waiter's deadline passed (or the blocking connection failed): poll the queue.
    Timeout,
}

struct Waiter {
    id: u64,
    deadline: Instant,
    tx: oneshot::Sender<Wake>,
}

#[derive(Default)]
struct State {
    waiters: HashMap<String, Vec<Waiter>>,
    next_id: u64,
    /// Rotation offset for the key order.
    turn: usize,
    /// The keys, deadline and generation of the BZPOPMIN in flight, to decide whether a new
    /// registration must interrupt it.
    blocking_on: Option<(Vec<String>, Instant, u64)>,
    /// The pair that BZPOPMIN is in flight on (its `CLIENT ID` is what an interrupt unblocks).
    blocked_pair: Option<Arc<Pair>>,
    generation: u64,
}

/// The BZPOPMIN loop of one pair (or one cluster slot) and the workers waiting on it.
pub struct Dispatcher {
    route: BlockingRoute,
    state: Mutex<State>,
    changed: Notify,
}

/// Removes the registration if the waiting worker gives up (close, pause) before a wake.
pub struct Registration {
    dispatcher: Arc<Dispatcher>,
    key: String,
    id: u64,
    rx: oneshot::Receiver<Wake>,
}

impl Registration {
    /// Wait for the wake-up (a dropped dispatcher counts as a timeout).
    pub async fn wait(mut self) -> Wake {
        (&mut self.rx).await.unwrap_or(Wake::Timeout)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut st = self.dispatcher.state.lock().unwrap();
            if let Some(list) = st.waiters.get_mut(&self.key) {
                list.retain(|w| w.id != self.id);
                if list.is_empty() {
                    st.waiters.remove(&self.key);
                }
            }
        }
        // A marker handed over in the moment the worker stopped waiting (it left to take a
        // job of its own) was popped for nobody: put it back, or the queue's jobs would wait
        // for the drain delay (seen in `npm run demo`: retries left delayed for 5 s).
        if let Ok(Wake::Marker(score)) = self.rx.try_recv() {
            self.dispatcher.restore_marker(&self.key, score);
        }
    }
}

impl Dispatcher {
    /// Start the loop on `pair`'s blocking connection.
    pub fn start(pair: Arc<Pair>) -> Arc<Self> {
        Self::start_on(BlockingRoute::Pair(pair))
    }

    /// Start the loop on `route` (a pair, or one cluster slot's current owner).
    pub fn start_on(route: BlockingRoute) -> Arc<Self> {
        let d = Arc::new(Dispatcher {
            route,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let me = Arc::clone(&d);
        tokio::spawn(async move { me.run().await });
        d
    }

    /// Where this dispatcher blocks.
    pub fn route(&self) -> &BlockingRoute {
        &self.route
    }

    /// Wait for `marker_key` to be popped, or until `timeout` passes.
    pub fn register(self: &Arc<Self>, marker_key: &str, timeout: Duration) -> Registration {
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        st.next_id += 1;
        let id = st.next_id;
        let interrupt = match &st.blocking_on {
            Some((keys, until, generation))
                if !keys.iter().any(|k| k == marker_key) || deadline < *until =>
            {
                Some(*generation)
            }
            _ => None,
        };
        st.waiters
            .entry(marker_key.to_string())
            .or_default()
            .push(Waiter { id, deadline, tx });
        drop(st);
        self.changed.notify_one();
        if let Some(generation) = interrupt {
            self.interrupt(generation);
        }
        Registration {
            dispatcher: Arc::clone(self),
            key: marker_key.to_string(),
            id,
            rx,
        }
    }

    fn in_flight(&self, generation: u64) -> bool {
        matches!(&self.state.lock().unwrap().blocking_on, Some((_, _, g)) if *g == generation)
    }

    /// End BZPOPMIN number `generation` early. The two sockets race: an UNBLOCK that reaches
    /// Redis before the BZPOPMIN itself finds nobody blocked (reply 0), so it is repeated
    /// until it lands or that BZPOPMIN is over.
    fn interrupt(self: &Arc<Self>, generation: u64) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            for _ in 0..500 {
                if !me.in_flight(generation) {
                    return;
                }
                let blocked = me.state.lock().unwrap().blocked_pair.clone();
                let Some(blocked) = blocked else {
                    // The BZPOPMIN is still being routed: try again in a moment.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                };
                let (Some(client_id), Ok(mut conn)) = (
                    blocked.blocking_client_id(),
                    me.route.unblock_conn(&blocked).await,
                ) else {
                    return;
                };
                // TIMEOUT (the default) makes the BZPOPMIN return nil as if it had timed out.
                let unblocked: redis::RedisResult<i64> = redis::cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(client_id)
                    .query_async(&mut conn)
                    .await;
                match unblocked {
                    Ok(1) => return,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                    // Not permitted (ACL) or broken: fall back to the timeout.
                    Err(_) => return,
                }
            }
        });
    }

    /// Hand a popped marker to the waiters of its queue. If none is left to take it (they
    /// gave up while the BZPOPMIN was in flight), the marker goes back into Redis: a wake-up
    /// consumed by nobody would leave a job waiting for the next timeout.
    fn wake_key(&self, key: &str, member: &str, score: f64) {
        let list = self.state.lock().unwrap().waiters.remove(key);
        let mut delivered = false;
        for w in list.into_iter().flatten() {
            if w.tx.send(Wake::Marker(score)).is_ok() {
                delivered = true;
                observe::counters()
                    .wakeups_marker
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        if !delivered {
            self.put_back(key, member, score);
        }
    }

    /// Put a marker popped for nobody back into Redis. Members as the scripts write them:
    /// `"0"` at score 0 (jobs waiting), `"1"` at a delayed job's due time.
    fn restore_marker(&self, key: &str, score: f64) {
        self.put_back(key, if score > 0.0 { "1" } else { "0" }, score);
    }

    fn put_back(&self, key: &str, member: &str, score: f64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let route = self.route.clone();
        let (key, member) = (key.to_string(), member.to_string());
        runtime.spawn(async move {
            if let Ok(mut conn) = route.command().await {
                let _: redis::RedisResult<Value> = redis::cmd("ZADD")
                    .arg(&key)
                    .arg(score)
                    .arg(&member)
                    .query_async(&mut conn)
                    .await;
            }
        });
    }

    /// Wake every waiter whose deadline has passed (all of them if `all`).
    fn wake_due(&self, all: bool) {
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            st.waiters.retain(|_, list| {
                let (fire, keep): (Vec<_>, Vec<_>) =
                    list.drain(..).partition(|w| all || w.deadline <= now);
                due.extend(fire);
                *list = keep;
                !list.is_empty()
            });
        }
        for w in due {
            if w.tx.send(Wake::Timeout).is_ok() {
                observe::counters()
                    .wakeups_timeout
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            if self.route.is_closed() {
                self.wake_due(true);
                return;
            }
            // What to block on: every key with a live waiter, rotated.
            let plan = {
                let mut st = self.state.lock().unwrap();
                st.waiters.retain(|_, l| {
                    l.retain(|w| !w.tx.is_closed());
                    !l.is_empty()
                });
                if st.waiters.is_empty() {
                    st.blocking_on = None;
                    None
                } else {
                    let mut keys: Vec<String> = st.waiters.keys().cloned().collect();
                    keys.sort();
                    let turn = st.turn % keys.len();
                    keys.rotate_left(turn);
                    st.turn = st.turn.wrapping_add(1);
                    let deadline = st
                        .waiters
                        .values()
                        .flatten()
                        .map(|w| w.deadline)
                        .min()
                        .expect("non-empty");
                    st.generation += 1;
                    st.blocking_on = Some((keys.clone(), deadline, st.generation));
                    Some((keys, deadline))
                }
            };
            let Some((keys, deadline)) = plan else {
                tokio::select! {
                    _ = self.changed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            };
            let (blocked, mut conn) = match self.route.blocking().await {
                Ok(c) => c,
                Err(_) => {
                    // Pair closed: release everybody; they will see the error themselves.
                    self.wake_due(true);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let timeout = deadline
                .saturating_duration_since(Instant::now())
                .clamp(min_block(&blocked), MAX_BLOCK);
            self.state.lock().unwrap().blocked_pair = Some(Arc::clone(&blocked));
            let mut cmd = redis::cmd("BZPOPMIN");
            for k in &keys {
                cmd.arg(k);
            }
            cmd.arg(format!("{:.3}", timeout.as_secs_f64()));
            // A closing pair ends the wait at once and drops this handle on the socket. On a
            // cluster the pair may close because the slot moved: the route decides whether the
            // dispatcher ends.
            let mut closed = blocked.closed.subscribe();
            let reply = tokio::select! {
                r = tokio::time::timeout(timeout + WATCHDOG_GRACE, cmd.query_async::<Value>(&mut conn)) => r,
                _ = closed.wait_for(|c| *c) => {
                    {
                        let mut st = self.state.lock().unwrap();
                        st.blocking_on = None;
                        st.blocked_pair = None;
                    }
                    self.wake_due(true);
                    if self.route.is_closed() {
                        return;
                    }
                    continue;
                }
            };
            {
                let mut st = self.state.lock().unwrap();
                st.blocking_on = None;
                st.blocked_pair = None;
            }
            match reply {
                Ok(Ok(Value::Array(items))) if items.len() == 3 => {
                    let key = value_string(&items[0]);
                    let member = value_string(&items[1]);
                    let score = value_string(&items[2]).parse::<f64>().unwrap_or(0.0);
                    self.wake_key(&key, &member, score);
                    self.wake_due(false);
                }
                Ok(Ok(_)) => self.wake_due(false),
                Ok(Err(e)) => {
                    // On a cluster, -MOVED / -UNBLOCKED (reshard, failover): re-route first.
                    self.route.failed(&e);
                    // An ACL user without BZPOPMIN would otherwise only show as slow pickup:
                    // say so once as a connection error naming the command.
                    let err = Error::from_redis(&e, blocked.endpoint().password.as_deref());
                    if matches!(err, Error::NoPerm(_)) {
                        let repeated = blocked
                            .last_error
                            .lock()
                            .unwrap()
                            .as_ref()
                            .is_some_and(|l| l.code == err.code() && l.message == err.to_string());
                        if !repeated {
                            blocked.record_error(Role::Blocking, &err, true);
                        }
                    }
                    // The socket failed (killed, server restart): waiters poll their queues
                    // through the command connection instead of waiting for a reconnect.
                    // The pause keeps a persistent error from becoming a busy loop.
                    self.wake_due(true);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    blocked.report_broken(Role::Blocking);
                    self.wake_due(true);
                }
            }
        }
    }
}

fn value_string(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        _ => String::new(),
    }
}
