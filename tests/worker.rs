//! The engine's Worker driven by a plain Rust [`JobHandler`] (no Node) against a real
//! `redis-server`: completion, retries with backoff, final failure, concurrency, a delayed
//! job taken when it falls due; and the dispatcher on its own: waking on a marker, rotating
//! the keys so that no queue starves, `CLIENT UNBLOCK` when the registered set changes, and
//! the earliest deadline deciding the BZPOPMIN timeout.
//!
//! Every test has its own server (so its own connection pair in the process-wide registry).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::RedisServer;
use queue_native::engine::connection::{Dispatcher, Registry, Wake};
use queue_native::engine::options::Endpoint;
use queue_native::engine::queue::{NewJob, Queue, QueueConfig};
use queue_native::engine::worker::{
    ActiveJob, BoxFuture, JobHandler, Outcome, Worker, WorkerConfig, WorkerEvent,
};

type Process = dyn Fn(ActiveJob) -> BoxFuture<Outcome> + Send + Sync;

/// A handler whose processor is a Rust closure; it records every event.
struct FakeHandler {
    process: Box<Process>,
    events: Mutex<Vec<WorkerEvent>>,
}

impl JobHandler for FakeHandler {
    fn process(&self, job: ActiveJob) -> BoxFuture<Outcome> {
        (self.process)(job)
    }

    fn emit(&self, event: WorkerEvent) {
        self.events.lock().unwrap().push(event);
    }
}

impl FakeHandler {
    fn new(process: impl Fn(ActiveJob) -> BoxFuture<Outcome> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(FakeHandler {
            process: Box::new(process),
            events: Mutex::new(Vec::new()),
        })
    }

    fn completed(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                WorkerEvent::Completed { job_id } => Some(job_id.clone()),
                _ => None,
            })
            .collect()
    }

    /// `(job id, will_retry)` of every `failed` event, in order.
    fn failed(&self) -> Vec<(String, bool)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                WorkerEvent::Failed {
                    job_id, will_retry, ..
                } => Some((job_id.clone(), *will_retry)),
                _ => None,
            })
            .collect()
    }

    fn errors(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                WorkerEvent::Error { code, message, .. } => Some(format!("{code}: {message}")),
                _ => None,
            })
            .collect()
    }
}

fn endpoint(server: &RedisServer) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: server.port(),
        ..Endpoint::default()
    }
}

fn queue(server: &RedisServer, name: &str) -> Queue {
    let cfg = QueueConfig::from_json(name, &serde_json::json!({})).unwrap();
    Queue::new(&endpoint(server), cfg).unwrap()
}

fn worker(server: &RedisServer, cfg: WorkerConfig, handler: Arc<FakeHandler>) -> Worker {
    let w = Worker::new(&endpoint(server), cfg, handler).unwrap();
    w.run();
    w
}

async fn add(q: &Queue, jobs: &[(&str, &str, &str)]) -> Vec<String> {
    let jobs: Vec<NewJob> = jobs
        .iter()
        .map(|(name, data, opts)| NewJob {
            name: name.to_string(),
            data: data.to_string(),
            opts: opts.to_string(),
        })
        .collect();
    q.add_bulk(&jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

/// Poll `cond` every 20 ms until it holds, at most `secs` seconds.
async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn hash(q: &Queue, id: &str) -> queue_native::engine::scripts::JobHash {
    q.get_job(id).await.unwrap().expect("job exists").fields
}

async fn counts(q: &Queue, states: &[&str]) -> Vec<u64> {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    q.counts(&states).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn completes_jobs_and_stores_their_results() {
    let server = RedisServer::start();
    let q = queue(&server, "w-complete");
    let handler = FakeHandler::new(|job| {
        Box::pin(async move {
            let data = job.fields.get("data").cloned().unwrap_or_default();
            Outcome::Completed {
                returnvalue: format!(r#"{{"echo":{data}}}"#),
            }
        })
    });
    let ids = add(&q, &[("a", r#"{"n":1}"#, "{}"), ("b", r#"{"n":2}"#, "{}")]).await;
    let w = worker(
        &server,
        WorkerConfig::new("w-complete"),
        Arc::clone(&handler),
    );
    wait_for("2 completed events", 10, || handler.completed().len() == 2).await;
    assert_eq!(handler.completed(), ids);
    assert_eq!(
        hash(&q, &ids[0]).await["returnvalue"],
        r#"{"echo":{"n":1}}"#
    );
    assert_eq!(
        hash(&q, &ids[1]).await["returnvalue"],
        r#"{"echo":{"n":2}}"#
    );
    assert_eq!(
        counts(&q, &["completed", "active", "wait"]).await,
        [2, 0, 0]
    );
    assert_eq!(w.health().completed, 2);
    assert!(handler.errors().is_empty(), "{:?}", handler.errors());
    w.close(false).await;
    assert!(!w.is_running());
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_with_backoff_then_completes() {
    let server = RedisServer::start();
    let q = queue(&server, "w-retry");
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&starts);
    let handler = FakeHandler::new(move |_job| {
        let attempt = {
            let mut s = seen.lock().unwrap();
            s.push(Instant::now());
            s.len()
        };
        Box::pin(async move {
            if attempt < 3 {
                Outcome::Failed {
                    message: format!("attempt {attempt} failed"),
                    stack: Some(format!("Error: attempt {attempt}")),
                    unrecoverable: false,
                    custom_backoff: None,
                }
            } else {
                Outcome::Completed {
                    returnvalue: "\"third time\"".into(),
                }
            }
        })
    });
    let ids = add(
        &q,
        &[(
            "r",
            "{}",
            r#"{"attempts":3,"backoff":{"type":"fixed","delay":300}}"#,
        )],
    )
    .await;
    let w = worker(&server, WorkerConfig::new("w-retry"), Arc::clone(&handler));
    wait_for("the third attempt to complete", 10, || {
        handler.completed().len() == 1
    })
    .await;
    assert_eq!(
        handler.failed(),
        [(ids[0].clone(), true), (ids[0].clone(), true)]
    );
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 3);
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(290),
            "retried after {gap:?}, before the 300 ms backoff"
        );
    }
    let h = hash(&q, &ids[0]).await;
    assert_eq!(h["atm"], "3");
    assert_eq!(h["returnvalue"], "\"third time\"");
    let stacks: Vec<String> = serde_json::from_str(&h["stacktrace"]).unwrap();
    assert_eq!(stacks, ["Error: attempt 1", "Error: attempt 2"]);
    w.close(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fails_for_good_when_attempts_run_out() {
    let server = RedisServer::start();
    let q = queue(&server, "w-fail");
    let handler = FakeHandler::new(|_job| Box::pin(async { Outcome::failed("always") }));
    let ids = add(&q, &[("f", "{}", r#"{"attempts":2}"#)]).await;
    let w = worker(&server, WorkerConfig::new("w-fail"), Arc::clone(&handler));
    wait_for("the final failure", 10, || handler.failed().len() == 2).await;
    // Without backoff the retry goes straight back to waiting; the second failure is final.
    assert_eq!(
        handler.failed(),
        [(ids[0].clone(), true), (ids[0].clone(), false)]
    );
    wait_for("the failed count", 5, || w.health().failed == 1).await;
    let h = hash(&q, &ids[0]).await;
    assert_eq!(h["failedReason"], "always");
    assert_eq!(h["atm"], "2");
    assert_eq!(counts(&q, &["failed", "active", "wait"]).await, [1, 0, 0]);
    w.close(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_up_to_concurrency_jobs_at_once() {
    let server = RedisServer::start();
    let q = queue(&server, "w-conc");
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (Arc::clone(&running), Arc::clone(&peak));
    let handler = FakeHandler::new(move |_job| {
        let (r, p) = (Arc::clone(&r), Arc::clone(&p));
        Box::pin(async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Outcome::Completed {
                returnvalue: "null".into(),
            }
        })
    });
    let jobs: Vec<(&str, &str, &str)> = (0..12).map(|_| ("c", "{}", "{}")).collect();
    add(&q, &jobs).await;
    let mut cfg = WorkerConfig::new("w-conc");
    cfg.concurrency = 4;
    let w = worker(&server, cfg, Arc::clone(&handler));
    wait_for("12 completions", 15, || handler.completed().len() == 12).await;
    assert_eq!(peak.load(Ordering::SeqCst), 4, "jobs in flight at the peak");
    assert_eq!(counts(&q, &["completed"]).await, [12]);
    w.close(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_job_runs_when_due_not_after_the_drain_delay() {
    let server = RedisServer::start();
    let q = queue(&server, "w-delayed");
    let handler = FakeHandler::new(|_job| {
        Box::pin(async {
            Outcome::Completed {
                returnvalue: "null".into(),
            }
        })
    });
    let mut cfg = WorkerConfig::new("w-delayed");
    // Far longer than the test: only the delayed job's due time can wake the worker.
    cfg.drain_delay_ms = 60_000;
    let w = worker(&server, cfg, Arc::clone(&handler));
    w.wait_until_ready(Duration::from_secs(10)).await.unwrap();
    // Let the worker find the queue empty and register with the dispatcher.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let added = Instant::now();
    add(&q, &[("d", "{}", r#"{"delay":800}"#)]).await;
    wait_for("the delayed job", 10, || handler.completed().len() == 1).await;
    let took = added.elapsed();
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(5),
        "the delayed job ran after {took:?}"
    );
    w.close(false).await;
}

async fn dispatcher(
    server: &RedisServer,
) -> (Registry, Arc<Dispatcher>, redis::aio::MultiplexedConnection) {
    let registry = Registry::new();
    let pair = registry.pair(&endpoint(server)).unwrap();
    pair.wait_ready(Duration::from_secs(10)).await.unwrap();
    let conn = pair.command().await.unwrap();
    (registry, Dispatcher::start(pair), conn)
}

async fn zadd(conn: &mut redis::aio::MultiplexedConnection, key: &str, score: f64, member: &str) {
    redis::cmd("ZADD")
        .arg(key)
        .arg(score)
        .arg(member)
        .query_async::<()>(conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatcher_wakes_the_waiter_of_a_popped_marker() {
    let server = RedisServer::start();
    let (registry, d, mut conn) = dispatcher(&server).await;
    let started = Instant::now();
    let waiting = tokio::spawn(d.register("q:marker", Duration::from_secs(20)).wait());
    tokio::time::sleep(Duration::from_millis(100)).await;
    zadd(&mut conn, "q:marker", 0.0, "0").await;
    let wake = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken before its timeout")
        .unwrap();
    assert_eq!(wake, Wake::Marker(0.0));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A due time as the score: the waiter learns when the next delayed job is due.
    let waiting = tokio::spawn(d.register("q:marker", Duration::from_secs(20)).wait());
    tokio::time::sleep(Duration::from_millis(100)).await;
    zadd(&mut conn, "q:marker", 1_700_000_000_000.0, "1").await;
    let wake = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wake, Wake::Marker(1_700_000_000_000.0));
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatcher_puts_back_a_marker_its_waiter_left_unread() {
    // The worker stops waiting (a job of its own ended) in the moment the marker is handed to
    // it: the popped marker must not vanish, or the queue's jobs wait for the drain delay.
    let server = RedisServer::start();
    let (registry, d, mut conn) = dispatcher(&server).await;
    let registration = d.register("q:marker", Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(100)).await;
    zadd(&mut conn, "q:marker", 1_700_000_000_000.0, "1").await;
    // Popped and handed over (the waiter never reads it).
    let popped = async {
        loop {
            let n: i64 = redis::cmd("ZCARD")
                .arg("q:marker")
                .query_async(&mut conn)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), popped)
        .await
        .expect("the dispatcher pops the marker");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(registration);
    let back = async {
        loop {
            let score: Option<f64> = redis::cmd("ZSCORE")
                .arg("q:marker")
                .arg("1")
                .query_async(&mut conn)
                .await
                .unwrap();
            if let Some(score) = score {
                return score;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let score = tokio::time::timeout(Duration::from_secs(5), back)
        .await
        .expect("the unread marker is put back");
    assert_eq!(score, 1_700_000_000_000.0);
    registry.shutdown().await;
}

/// Every BZPOPMIN the server runs from now on, as its key list, read through MONITOR on a
/// thread of its own (it ends when the server goes away).
fn watch_bzpopmin(server: &RedisServer) -> Arc<Mutex<Vec<Vec<String>>>> {
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let mut monitor = server.connect().unwrap();
    monitor.cmd(&["MONITOR"]).unwrap();
    let out = Arc::clone(&seen);
    std::thread::spawn(move || {
        while let Ok(common::Reply::Simple(line)) = monitor.read_reply() {
            // `<time> [<db> <addr>] "BZPOPMIN" "k1" "k2" ... "<timeout>"`
            let args: Vec<String> = line
                .split('"')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect();
            if args
                .first()
                .is_some_and(|c| c.eq_ignore_ascii_case("bzpopmin"))
            {
                out.lock().unwrap().push(args[1..args.len() - 1].to_vec());
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatcher_rotates_the_keys_so_that_no_queue_starves() {
    let server = RedisServer::start();
    let (registry, d, _conn) = dispatcher(&server).await;
    let seen = watch_bzpopmin(&server);
    // BZPOPMIN takes from the first non-empty key it is given: with the same order every
    // time, a queue whose marker is always set would starve the ones after it. Two waiters
    // stay registered while a third key comes and goes, so each round blocks on all three.
    let a = d.register("a:marker", Duration::from_secs(30));
    let b = d.register("b:marker", Duration::from_secs(30));
    for _ in 0..6 {
        let wake = d
            .register("c:marker", Duration::from_millis(50))
            .wait()
            .await;
        assert_eq!(wake, Wake::Timeout);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rounds: Vec<Vec<String>> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|keys| keys.len() == 3)
        .cloned()
        .collect();
    assert!(rounds.len() >= 4, "too few rounds to judge: {rounds:?}");
    let firsts: std::collections::HashSet<&str> = rounds.iter().map(|k| k[0].as_str()).collect();
    assert!(
        firsts.len() >= 2,
        "every BZPOPMIN put the same key first: {rounds:?}"
    );
    drop((a, b));
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatcher_unblocks_when_a_new_key_registers() {
    let server = RedisServer::start();
    let (registry, d, mut conn) = dispatcher(&server).await;
    // The dispatcher blocks on the first key alone, for up to 10 s.
    let first = d.register("one:marker", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let second = tokio::spawn(d.register("two:marker", Duration::from_secs(30)).wait());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Only a BZPOPMIN that includes the new key can see this marker.
    zadd(&mut conn, "two:marker", 0.0, "0").await;
    let wake = tokio::time::timeout(Duration::from_secs(3), second)
        .await
        .expect("the new key was waited on well before the first BZPOPMIN's 10 s ran out")
        .unwrap();
    assert_eq!(wake, Wake::Marker(0.0));
    assert!(started.elapsed() < Duration::from_secs(3));
    let unblocked = server
        .info_field("commandstats", "cmdstat_client|unblock")
        .unwrap_or_default();
    assert!(
        unblocked.starts_with("calls="),
        "no CLIENT UNBLOCK was sent"
    );
    drop(first);
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatcher_blocks_until_the_earliest_deadline() {
    let server = RedisServer::start();
    let (registry, d, _conn) = dispatcher(&server).await;
    let late = d.register("late:marker", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let wake = d
        .register("soon:marker", Duration::from_millis(400))
        .wait()
        .await;
    let took = started.elapsed();
    assert_eq!(wake, Wake::Timeout);
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "the 400 ms waiter was released after {took:?}"
    );
    // The late waiter is still waiting.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), late.wait())
            .await
            .is_err()
    );
    registry.shutdown().await;
}

/// At concurrency N the slots settle in groups; the group that settles while the previous
/// group's finishing call is still in Redis must leave at once (queued behind it on the
/// socket), not a round trip later. Redis is held with `CLIENT PAUSE WRITE`: the first call
/// waits in it, and the second shows in the command connection's query buffer.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_settled_while_a_finishing_call_is_held_is_sent_at_once() {
    let server = RedisServer::start();
    let q = queue(&server, "w-pipe");
    let started = Arc::new(AtomicUsize::new(0));
    let gate_a = Arc::new(tokio::sync::Semaphore::new(0));
    let gate_b = Arc::new(tokio::sync::Semaphore::new(0));
    let (s, ga, gb) = (
        Arc::clone(&started),
        Arc::clone(&gate_a),
        Arc::clone(&gate_b),
    );
    let handler = FakeHandler::new(move |job| {
        let gate = if job.fields.get("name").map(String::as_str) == Some("a") {
            Arc::clone(&ga)
        } else {
            Arc::clone(&gb)
        };
        s.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            gate.acquire().await.unwrap().forget();
            Outcome::Completed {
                returnvalue: "null".into(),
            }
        })
    });
    add(
        &q,
        &[
            ("a", "{}", "{}"),
            ("a", "{}", "{}"),
            ("b", "{}", "{}"),
            ("b", "{}", "{}"),
        ],
    )
    .await;
    let mut cfg = WorkerConfig::new("w-pipe");
    cfg.concurrency = 4;
    // No lock renewal or stalled check while Redis is held.
    cfg.lock_duration_ms = 60_000;
    cfg.stalled_interval_ms = 60_000;
    let w = worker(&server, cfg, Arc::clone(&handler));
    wait_for("4 jobs running", 10, || started.load(Ordering::SeqCst) == 4).await;

    let qbuf = |server: &RedisServer| -> usize {
        let clients = server.client_list();
        let cmd = clients
            .iter()
            .find(|c| c.name.starts_with("queue-native:command"))
            .unwrap_or_else(|| panic!("no command connection in {clients:?}"));
        cmd.fields["qbuf"].parse().unwrap()
    };
    server.cmd(&["CLIENT", "PAUSE", "10000", "WRITE"]);
    gate_a.add_permits(2);
    // A finishing call for two jobs is several hundred bytes; the connection's health check
    // may queue a PING (14 bytes) behind the held call at any time, so size is what tells
    // them apart.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = qbuf(&server);
    assert!(
        before < 200,
        "only the first call is out, and it waits in Redis ({before} bytes queued)"
    );
    gate_b.add_permits(2);
    let mut queued = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        queued = qbuf(&server);
        if queued > 200 {
            break;
        }
    }
    server.cmd(&["CLIENT", "UNPAUSE"]);
    assert!(
        queued > 200,
        "the second group's finishing call was not sent ({queued} bytes queued)"
    );
    wait_for("4 completions", 10, || handler.completed().len() == 4).await;
    assert_eq!(counts(&q, &["completed", "active"]).await, [4, 0]);
    w.close(false).await;
}
