//! The process-wide parts of the worker runtime: the list of live workers (for health, lock
//! renewal, stalled checks and shutdown), one dispatcher per connection pair, one lock-renewal
//! loop for the process and one stalled checker per queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::handler::{WorkerEvent, WorkerHealth};
use super::run::is_connection_error;
use super::{Worker, WorkerInner};
use crate::engine::connection::{self, BlockingRoute, ConnectionEvent, Dispatcher, EventKind};
use crate::engine::error::Error;
use crate::engine::observe;
use crate::engine::options::EndpointKey;
use crate::engine::scripts;
use crate::engine::util::now_ms;

/// A queue as the process sees it: its endpoint and its key base.
type QueueId = (EndpointKey, String);
/// A worker and its (job id, token) pairs whose locks are due for renewal.
type DueLocks = (Arc<WorkerInner>, Vec<(String, String)>);
/// A queue's stalled-check loop and the bell that makes it check at once.
type StalledChecker = (JoinHandle<()>, Arc<Notify>);

/// Process-wide worker bookkeeping: the list of workers (for health, lock renewal and
/// stalled checks), one dispatcher per connection pair, one stalled checker per queue.
pub(super) struct Runtime {
    pub(super) workers: Mutex<Vec<Weak<WorkerInner>>>,
    dispatchers: Mutex<Vec<Arc<Dispatcher>>>,
    stalled: Mutex<HashMap<QueueId, StalledChecker>>,
    renewer: Mutex<Option<JoinHandle<()>>>,
    /// Wakes the renewal loop at once: a worker that just started may need a shorter tick
    /// than the one the loop is sleeping (a 400 ms lock must not wait out a 3.75 s tick).
    renew_kick: Notify,
    listening: OnceLock<()>,
}

pub(super) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| Runtime {
        workers: Mutex::new(Vec::new()),
        dispatchers: Mutex::new(Vec::new()),
        stalled: Mutex::new(HashMap::new()),
        renewer: Mutex::new(None),
        renew_kick: Notify::new(),
        listening: OnceLock::new(),
    });
    rt.listening.get_or_init(|| {
        // Connection errors reach every worker on the affected endpoint.
        // Process-wide and never removed: the runtime outlives every worker.
        let _ = connection::global().on_event(Arc::new(|ev: &ConnectionEvent| {
            if ev.event != EventKind::Error {
                return;
            }
            for w in live_workers() {
                if w.endpoint_display == ev.endpoint {
                    w.handler.emit(WorkerEvent::Error {
                        code: ev.code.unwrap_or("ERR_REDIS"),
                        message: ev.message.clone().unwrap_or_default(),
                        job_id: None,
                    });
                }
            }
        }));
    });
    rt
}

impl WorkerInner {
    fn queue_id(&self) -> QueueId {
        (self.endpoint_key.clone(), self.handle.keys().base.clone())
    }
}

/// The live workers consuming the queue `key`.
fn workers_of(key: &QueueId) -> impl Iterator<Item = Arc<WorkerInner>> {
    live_workers()
        .into_iter()
        .filter(move |w| w.endpoint_key == key.0 && w.handle.keys().base == key.1)
}

pub(super) fn live_workers() -> Vec<Arc<WorkerInner>> {
    let rt = runtime();
    let mut list = rt.workers.lock().unwrap();
    list.retain(|w| w.upgrade().is_some_and(|w| !*w.closed.borrow()));
    list.iter().filter_map(Weak::upgrade).collect()
}

impl Runtime {
    /// The dispatcher of `route`: one per pair, or per cluster slot.
    pub(super) fn dispatcher_for(&self, route: BlockingRoute) -> Arc<Dispatcher> {
        let mut list = self.dispatchers.lock().unwrap();
        list.retain(|d| !d.route().is_closed());
        if let Some(d) = list.iter().find(|d| d.route().same(&route)) {
            return Arc::clone(d);
        }
        let d = Dispatcher::start_on(route);
        list.push(Arc::clone(&d));
        d
    }

    pub(super) fn ensure_renewer(&'static self) {
        let mut slot = self.renewer.lock().unwrap();
        if slot.as_ref().is_some_and(|t| !t.is_finished()) {
            self.renew_kick.notify_one();
            return;
        }
        *slot = Some(tokio::spawn(renew_locks_loop()));
    }

    pub(super) fn ensure_stalled_checker(&'static self, w: &Arc<WorkerInner>) {
        let key = w.queue_id();
        let mut map = self.stalled.lock().unwrap();
        if let Some((task, kick)) = map.get(&key)
            && !task.is_finished()
        {
            // A worker joining runs a check at once (as BullMQ's does) and may shorten the
            // interval: wake the loop so it re-reads both.
            kick.notify_one();
            return;
        }
        let kick = Arc::new(Notify::new());
        let task = tokio::spawn(stalled_loop(key.clone(), Arc::clone(&kick)));
        map.insert(key, (task, kick));
    }
}

/// One loop for the whole process: every tick, the locks older than a quarter of their
/// duration are extended, all those of one queue (same endpoint, same lock duration) in one
/// script call, however many workers consume it.
async fn renew_locks_loop() {
    let started = || -> Vec<Arc<WorkerInner>> {
        live_workers()
            .into_iter()
            .filter(|w| w.state.lock().unwrap().started)
            .collect()
    };
    loop {
        let mut workers = started();
        if workers.is_empty() {
            // Decide to stop under the slot's lock: a worker starting meanwhile either is seen
            // here or finds the slot empty and starts a new loop.
            let mut slot = runtime().renewer.lock().unwrap();
            workers = started();
            if workers.is_empty() {
                *slot = None;
                return;
            }
        }
        // skipLockRenewal: that worker's locks are left to expire (BullMQ's option).
        workers.retain(|w| !w.cfg.skip_lock_renewal);
        let min_renew = workers
            .iter()
            .map(|w| w.cfg.renew_after())
            .min()
            .unwrap_or(Duration::from_millis(7_500));
        let mut batches: HashMap<(QueueId, u64), Vec<DueLocks>> = HashMap::new();
        for w in workers {
            let due: Vec<(String, String)> = {
                let st = w.state.lock().unwrap();
                let age = w.cfg.renew_after();
                st.active
                    .iter()
                    .filter(|(_, e)| !e.released && e.renewed_at.elapsed() >= age)
                    .map(|(id, e)| (id.clone(), e.token.clone()))
                    .collect()
            };
            if !due.is_empty() {
                let key = (w.queue_id(), w.cfg.lock_duration_ms);
                batches.entry(key).or_default().push((w, due));
            }
        }
        for ((_, duration), group) in batches {
            let first = &group[0].0;
            let all: Vec<(String, String)> = group
                .iter()
                .flat_map(|(_, due)| due.iter().cloned())
                .collect();
            let Ok(mut conn) = first.handle.conn().await else {
                continue;
            };
            match scripts::extend_locks(&mut conn, first.handle.keys(), duration, &all).await {
                Ok(failed) => {
                    let lag = &observe::counters().lock_renewal_lag;
                    for (w, due) in &group {
                        let due_after = w.cfg.renew_after();
                        let mut st = w.state.lock().unwrap();
                        for (id, _) in due {
                            if let Some(e) = st.active.get_mut(id) {
                                lag.observe(e.renewed_at.elapsed().saturating_sub(due_after));
                                e.renewed_at = Instant::now();
                            }
                        }
                        // Only a job still running with this token has really lost its lock.
                        let lost: Vec<&String> = failed
                            .iter()
                            .filter(|f| {
                                due.iter().any(|(d, token)| {
                                    d == *f
                                        && st.active.get(d).is_some_and(|e| {
                                            e.token == *token && !e.released && !e.writing
                                        })
                                })
                            })
                            .collect();
                        drop(st);
                        for id in lost {
                            // BullMQ's words, exactly (applications match on them).
                            w.emit_error(
                                &Error::LockLost(format!("could not renew lock for job {id}")),
                                Some(id),
                            );
                        }
                    }
                }
                Err(e) if !is_connection_error(&e) => first.emit_error(&e, None),
                Err(_) => {}
            }
        }
        let tick = (min_renew / 2).clamp(Duration::from_millis(25), Duration::from_millis(5_000));
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = runtime().renew_kick.notified() => {}
        }
    }
}

/// The stalled check of one queue, shared by every worker of this process consuming it:
/// runs at once, then every (smallest) `stalledInterval`. The script's guard key makes it
/// run once per interval across the whole fleet.
async fn stalled_loop(key: QueueId, kick: Arc<Notify>) {
    loop {
        let workers: Vec<_> = workers_of(&key)
            .filter(|w| !w.cfg.skip_stalled_check)
            .collect();
        let Some(first) = workers.first() else {
            return;
        };
        let interval = workers
            .iter()
            .map(|w| w.cfg.stalled_interval_ms)
            .min()
            .unwrap_or(30_000);
        let max_stalled = first.cfg.max_stalled_count;
        let keys = first.handle.keys().clone();
        let conn = first.handle.conn().await;
        drop(workers);
        if let Ok(mut conn) = conn {
            match scripts::move_stalled(&mut conn, &keys, max_stalled, now_ms(), interval).await {
                Ok(ids) => announce_stalled(&key, &ids),
                Err(e) if !is_connection_error(&e) => {
                    for w in workers_of(&key) {
                        w.emit_error(&e, None);
                    }
                }
                Err(_) => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
            _ = kick.notified() => {}
        }
    }
}

/// One stalled check of `w`'s queue now, with its options (BullMQ's
/// `worker.moveStalledJobsToWait()`, which manual workers call themselves): every worker of
/// the process on the queue hears `stalled` for the jobs moved back. The script's guard key
/// still limits the check to once per `stalledInterval` across the fleet.
pub(super) async fn move_stalled_now(
    w: &Arc<WorkerInner>,
) -> crate::engine::error::Result<Vec<String>> {
    let mut conn = w.handle.conn().await?;
    let ids = scripts::move_stalled(
        &mut conn,
        w.handle.keys(),
        w.cfg.max_stalled_count,
        now_ms(),
        w.cfg.stalled_interval_ms,
    )
    .await?;
    announce_stalled(&w.queue_id(), &ids);
    Ok(ids)
}

/// Every worker of the process on the queue `key` hears `stalled` for each job a stalled
/// check moved back (or failed).
fn announce_stalled(key: &QueueId, ids: &[String]) {
    for w in workers_of(key) {
        for id in ids {
            w.handler.emit(WorkerEvent::Stalled { job_id: id.clone() });
        }
    }
}

/// `health().workers`: every live worker of the process.
pub fn health() -> Vec<WorkerHealth> {
    live_workers().iter().map(|w| w.health()).collect()
}

/// Close every worker of the process gracefully (the first half of `shutdown()`).
pub async fn close_all() {
    for w in live_workers() {
        Worker { inner: w }.close(false).await;
    }
}
