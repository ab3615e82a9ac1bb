//! The typed script wrappers (`engine::scripts`) against a real `redis-server`, over a RESP3
//! multiplexed connection as the engine uses it: KEYS/ARGV order, reply parsing and the
//! mapping of script codes to engine errors. (The scripts' semantics against BullMQ itself
//! are proven in `__test__/scripts.test.js`.)

mod common;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::RedisServer;
use queue_native::engine::Error;
use queue_native::engine::job::{KEEP_ALL, KeepJobs, Outcome};
use queue_native::engine::keys::QueueKeys;
use queue_native::engine::scripts::{self, FetchOpts, Fetched, FinishJob};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// `scripts::finish` of one job, its arguments in one line.
#[allow(clippy::too_many_arguments)]
async fn finish(
    conn: &mut MultiplexedConnection,
    k: &QueueKeys,
    job_id: &str,
    token: &str,
    outcome: Outcome,
    stacktrace: &str,
    keep: KeepJobs,
    attempts: u64,
    fetch: Option<&FetchOpts<'_>>,
) -> queue_native::engine::Result<Fetched> {
    let job = FinishJob {
        job_id,
        token,
        outcome: &outcome,
        stacktrace,
        keep,
        attempts,
    };
    scripts::finish(conn, k, now(), &job, fetch).await
}

fn completed(returnvalue: &str) -> Outcome {
    Outcome::Completed {
        returnvalue: returnvalue.to_string(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn connect(server: &RedisServer) -> MultiplexedConnection {
    let info = redis::RedisConnectionInfo::default().set_protocol(redis::ProtocolVersion::RESP3);
    let addr = redis::ConnectionAddr::Tcp("127.0.0.1".into(), server.port());
    let info = redis::IntoConnectionInfo::into_connection_info(addr)
        .unwrap()
        .set_redis_settings(info);
    redis::Client::open(info)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Add waiting jobs the way a BullMQ producer leaves them (hash + LPUSH wait).
async fn add_jobs(conn: &mut MultiplexedConnection, k: &QueueKeys, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        let id: u64 = conn.incr(&k.id, 1).await.unwrap();
        let id = id.to_string();
        let _: () = conn
            .hset_multiple(
                k.job(&id),
                &[
                    ("name", *name),
                    ("data", "{}"),
                    ("opts", r#"{"attempts":0}"#),
                    ("timestamp", &now().to_string()),
                    ("delay", "0"),
                    ("priority", "0"),
                ],
            )
            .await
            .unwrap();
        let _: () = conn.lpush(&k.wait, &id).await.unwrap();
        ids.push(id);
    }
    ids
}

/// Fetch options with a 10 s lock, no limiter and no worker name.
fn fetch_with(tokens: &[String]) -> FetchOpts<'_> {
    FetchOpts {
        lock_duration_ms: 10_000,
        limiter: None,
        name: None,
        tokens,
    }
}

fn tokens(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

async fn hash(conn: &mut MultiplexedConnection, key: &str) -> HashMap<String, String> {
    conn.hgetall(key).await.unwrap()
}

async fn event_names(conn: &mut MultiplexedConnection, k: &QueueKeys) -> Vec<String> {
    // [[id, [field, value, ...]], ...]; the first field of our entries is `event`.
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&k.events)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            assert_eq!(fields[0], "event");
            fields[1].clone()
        })
        .collect()
}

#[tokio::test]
async fn activate_batches_and_finish_fetches_next() {
    let server = RedisServer::start();
    let mut conn = connect(&server).await;
    let k = QueueKeys::new("bull", "rs-activate");
    let ids = add_jobs(&mut conn, &k, &["a", "b", "c"]).await;

    let toks = tokens(&["t1", "t2"]);
    let opts = FetchOpts {
        lock_duration_ms: 10_000,
        limiter: None,
        name: Some("rust-worker"),
        tokens: &toks,
    };
    let t = now();
    let fetched = scripts::activate(&mut conn, &k, t, &opts).await.unwrap();
    assert_eq!(fetched.rate_limit_ttl, 0);
    assert_eq!(fetched.next_delayed_due, 0);
    let got: Vec<&str> = fetched.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let first = &fetched.jobs[0];
    assert_eq!(first.fields["name"], "a");
    assert_eq!(first.fields["pb"], "rust-worker");
    assert_eq!(first.fields["ats"], "1");
    assert_eq!(first.fields["processedOn"], t.to_string());
    let lock: String = conn.get(k.lock(&ids[1])).await.unwrap();
    assert_eq!(lock, "t2");

    // Complete the first job and fetch the next one under the same token.
    let next_tok = tokens(&["t1"]);
    let fetch = fetch_with(&next_tok);
    let done = finish(
        &mut conn,
        &k,
        &ids[0],
        "t1",
        completed(r#"{"ok":true}"#),
        "",
        KEEP_ALL,
        0,
        Some(&fetch),
    )
    .await
    .unwrap();
    assert_eq!(done.jobs.len(), 1);
    assert_eq!(done.jobs[0].id, ids[2]);
    let lock: String = conn.get(k.lock(&ids[2])).await.unwrap();
    assert_eq!(lock, "t1");
    let h = hash(&mut conn, &k.job(&ids[0])).await;
    assert_eq!(h["returnvalue"], r#"{"ok":true}"#);
    assert_eq!(h["atm"], "1");
    let score: Option<u64> = conn.zscore(&k.completed, &ids[0]).await.unwrap();
    assert!(score.is_some());

    // Fail the second one (final failure): stacktrace stored, retries-exhausted emitted.
    let failed = finish(
        &mut conn,
        &k,
        &ids[1],
        "t2",
        Outcome::failed("boom"),
        r#"["Error: boom"]"#,
        KEEP_ALL,
        1,
        None,
    )
    .await
    .unwrap();
    assert!(failed.jobs.is_empty());
    let h = hash(&mut conn, &k.job(&ids[1])).await;
    assert_eq!(h["failedReason"], "boom");
    assert_eq!(h["stacktrace"], r#"["Error: boom"]"#);

    // Last one deleted at once (removeOnComplete: true), then the queue is drained.
    finish(
        &mut conn,
        &k,
        &ids[2],
        "t1",
        completed("null"),
        "",
        KeepJobs {
            count: 0,
            age_secs: None,
            limit: None,
        },
        0,
        None,
    )
    .await
    .unwrap();
    let exists: bool = conn.exists(k.job(&ids[2])).await.unwrap();
    assert!(!exists);
    let names = event_names(&mut conn, &k).await;
    assert_eq!(
        names,
        [
            "active",
            "active",
            "completed",
            "active",
            "failed",
            "retries-exhausted",
            "completed",
            "drained"
        ]
    );
}

#[tokio::test]
async fn script_codes_become_engine_errors() {
    let server = RedisServer::start();
    let mut conn = connect(&server).await;
    let k = QueueKeys::new("bull", "rs-errors");
    let ids = add_jobs(&mut conn, &k, &["a"]).await;
    let toks = tokens(&["mine"]);
    let opts = fetch_with(&toks);
    scripts::activate(&mut conn, &k, now(), &opts)
        .await
        .unwrap();

    let shared = conn.clone();
    let keys = k.clone();
    let complete = move |token: &'static str, id: String| {
        let k = keys.clone();
        let mut conn = shared.clone();
        async move {
            finish(
                &mut conn,
                &k,
                &id,
                token,
                completed("1"),
                "",
                KEEP_ALL,
                0,
                None,
            )
            .await
        }
    };
    let err = complete("theirs", ids[0].clone()).await.unwrap_err();
    assert!(matches!(err, Error::LockLost(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "Lock mismatch for job {}. Cmd moveToFinished from active",
            ids[0]
        )),
        "{err}"
    );
    let err = complete("mine", "404".into()).await.unwrap_err();
    assert!(matches!(err, Error::JobNotFound(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("Missing key for job 404. moveToFinished"),
        "{err}"
    );

    let _: () = conn
        .sadd(k.dependencies(&ids[0]), "bull:other:1")
        .await
        .unwrap();
    let err = complete("mine", ids[0].clone()).await.unwrap_err();
    assert!(matches!(err, Error::JobState(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("has pending dependencies. moveToFinished"),
        "{err}"
    );
    let _: () = conn.del(k.dependencies(&ids[0])).await.unwrap();

    let _: () = conn.lrem(&k.active, 0, &ids[0]).await.unwrap();
    let err = complete("mine", ids[0].clone()).await.unwrap_err();
    assert!(matches!(err, Error::JobState(_)), "{err:?}");
    assert!(
        err.to_string().contains("is not in the active state"),
        "{err}"
    );
    // The lock went with the -3 attempt: now it is missing.
    let err = scripts::retry(&mut conn, &k, &ids[0], "mine", now(), false, "x", "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LockLost(_)), "{err:?}");
    assert!(err.to_string().contains("Missing lock for job"), "{err}");

    let err = scripts::update_progress(&mut conn, &k, "404", "1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::JobNotFound(_)), "{err:?}");
    let err = scripts::add_log(&mut conn, &k, "404", "line", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::JobNotFound(_)), "{err:?}");
    let err = scripts::update_data(&mut conn, &k, "404", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::JobNotFound(_)), "{err:?}");
}

#[tokio::test]
async fn retry_delay_locks_stalled_and_job_updates() {
    let server = RedisServer::start();
    let mut conn = connect(&server).await;
    let k = QueueKeys::new("{t}", "rs-misc");
    let ids = add_jobs(&mut conn, &k, &["a", "b", "c"]).await;
    let toks = tokens(&["ta", "tb", "tc"]);
    let opts = FetchOpts {
        lock_duration_ms: 1_000,
        limiter: Some((10, 1_000)),
        name: None,
        tokens: &toks,
    };
    let fetched = scripts::activate(&mut conn, &k, now(), &opts)
        .await
        .unwrap();
    assert_eq!(fetched.jobs.len(), 3);
    let counter: u64 = conn.get(&k.limiter).await.unwrap();
    assert_eq!(counter, 3);

    // Immediate retry of a lifo job: RPUSH, runs next.
    scripts::retry(
        &mut conn,
        &k,
        &ids[0],
        "ta",
        now(),
        true,
        "again",
        r#"["s"]"#,
    )
    .await
    .unwrap();
    let wait: Vec<String> = conn.lrange(&k.wait, 0, -1).await.unwrap();
    assert_eq!(wait, [ids[0].clone()]);
    let h = hash(&mut conn, &k.job(&ids[0])).await;
    assert_eq!(
        (h["atm"].as_str(), h["failedReason"].as_str()),
        ("1", "again")
    );

    // Backoff: delayed with the §5 score; skip_attempt leaves atm alone.
    let t = now();
    scripts::move_to_delayed(
        &mut conn,
        &k,
        &ids[1],
        "tb",
        t,
        500,
        false,
        Some("oops"),
        Some("[]"),
    )
    .await
    .unwrap();
    let score: f64 = conn.zscore(&k.delayed, &ids[1]).await.unwrap();
    assert_eq!(score as u64, (t + 500) * 4096);
    let h = hash(&mut conn, &k.job(&ids[1])).await;
    assert_eq!((h["atm"].as_str(), h["delay"].as_str()), ("1", "500"));
    let due = scripts::activate(
        &mut conn,
        &k,
        now(),
        &FetchOpts {
            lock_duration_ms: 1_000,
            limiter: None,
            name: None,
            tokens: &[],
        },
    )
    .await
    .unwrap();
    assert_eq!(due.next_delayed_due, t + 500);

    // Locks: the owner renews, a wrong token is reported.
    let lost = scripts::extend_locks(
        &mut conn,
        &k,
        60_000,
        &[
            (ids[2].clone(), "tc".to_string()),
            (ids[1].clone(), "tb".to_string()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(lost, [ids[1].clone()]);
    let pttl: i64 = conn.pttl(k.lock(&ids[2])).await.unwrap();
    assert!(pttl > 50_000, "{pttl}");
    assert!(
        scripts::extend_locks(&mut conn, &k, 1_000, &[])
            .await
            .unwrap()
            .is_empty()
    );

    // Stalled: first check flags, a later one (guard gone, lock gone) moves the job back.
    assert!(
        scripts::move_stalled(&mut conn, &k, 1, now(), 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    let _: () = conn.del(&k.stalled_check).await.unwrap();
    let _: () = conn.del(k.lock(&ids[2])).await.unwrap();
    let moved = scripts::move_stalled(&mut conn, &k, 1, now(), 60_000)
        .await
        .unwrap();
    assert_eq!(moved, [ids[2].clone()]);
    let h = hash(&mut conn, &k.job(&ids[2])).await;
    assert_eq!(h["stc"], "1");

    // Per-job updates.
    scripts::update_progress(&mut conn, &k, &ids[0], r#"{"pct":5}"#)
        .await
        .unwrap();
    assert_eq!(
        scripts::add_log(&mut conn, &k, &ids[0], "l1", None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        scripts::add_log(&mut conn, &k, &ids[0], "l2", Some(1))
            .await
            .unwrap(),
        1
    );
    let logs: Vec<String> = conn.lrange(k.logs(&ids[0]), 0, -1).await.unwrap();
    assert_eq!(logs, ["l2"]);
    scripts::update_data(&mut conn, &k, &ids[0], r#"{"v":2}"#)
        .await
        .unwrap();
    let h = hash(&mut conn, &k.job(&ids[0])).await;
    assert_eq!(h["progress"], r#"{"pct":5}"#);
    assert_eq!(h["data"], r#"{"v":2}"#);
}

#[tokio::test]
async fn rate_limit_ttl_is_reported_when_nothing_can_start() {
    let server = RedisServer::start();
    let mut conn = connect(&server).await;
    let k = QueueKeys::new("bull", "rs-limit");
    add_jobs(&mut conn, &k, &["a", "b", "c"]).await;
    let toks = tokens(&["x", "y", "z"]);
    let opts = FetchOpts {
        lock_duration_ms: 1_000,
        limiter: Some((2, 5_000)),
        name: None,
        tokens: &toks,
    };
    let first = scripts::activate(&mut conn, &k, now(), &opts)
        .await
        .unwrap();
    assert_eq!(first.jobs.len(), 2);
    assert_eq!(first.rate_limit_ttl, 0);
    let second = scripts::activate(&mut conn, &k, now(), &opts)
        .await
        .unwrap();
    assert!(second.jobs.is_empty());
    assert!(
        second.rate_limit_ttl > 0 && second.rate_limit_ttl <= 5_000,
        "{}",
        second.rate_limit_ttl
    );
}

#[tokio::test]
async fn waiting_children_requeue_and_scheduler_next() {
    let server = RedisServer::start();
    let mut conn = connect(&server).await;
    let k = QueueKeys::new("bull", "rs-flows");
    let ids = add_jobs(&mut conn, &k, &["parent", "limited"]).await;
    let toks = tokens(&["tp", "tl"]);
    let opts = fetch_with(&toks);
    scripts::activate(&mut conn, &k, now(), &opts)
        .await
        .unwrap();

    // Nothing pending: stays active. A pending child: moved.
    let moved = scripts::move_to_waiting_children(&mut conn, &k, &ids[0], "tp", None, now())
        .await
        .unwrap();
    assert!(!moved);
    let child = k.job("kid");
    let _: () = conn.sadd(k.dependencies(&ids[0]), &child).await.unwrap();
    let err = scripts::move_to_waiting_children(&mut conn, &k, &ids[0], "other", None, now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_LOCK_LOST");
    let moved =
        scripts::move_to_waiting_children(&mut conn, &k, &ids[0], "tp", Some(&child), now())
            .await
            .unwrap();
    assert!(moved);
    let score: Option<u64> = conn.zscore(&k.waiting_children, &ids[0]).await.unwrap();
    assert!(score.is_some());

    // Back to wait without an attempt; the limiter's ttl comes back.
    let _: () = redis::cmd("SET")
        .arg(&k.limiter)
        .arg("9007199254740991")
        .arg("PX")
        .arg(3000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl = scripts::requeue(&mut conn, &k, &ids[1], "tl")
        .await
        .unwrap();
    assert!(ttl > 2000 && ttl <= 3000, "{ttl}");
    let wait: Vec<String> = conn.lrange(&k.wait, 0, -1).await.unwrap();
    assert_eq!(wait, [ids[1].clone()]);
    let err = scripts::requeue(&mut conn, &k, &ids[1], "tl")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_LOCK_LOST");

    // A job scheduler: the current iteration adds the next one; others do nothing.
    let t = now();
    let _: () = conn.zadd(k.repeat(), "s", t).await.unwrap();
    let sched = format!("{}:s", k.repeat());
    let _: () = conn
        .hset_multiple(&sched, &[("name", "tick"), ("every", "500"), ("ic", "1")])
        .await
        .unwrap();
    let producer = format!("repeat:s:{t}");
    let _: () = conn
        .hset(
            k.job(&producer),
            "opts",
            r#"{"repeat":{"every":500,"count":1}}"#,
        )
        .await
        .unwrap();
    let opts = queue_native::engine::job::next_iteration_opts(
        Some(r#"{"repeat":{"every":500,"count":1}}"#),
        "s",
        t,
        None,
    );
    let next = scripts::scheduler_next(&mut conn, &k, "s", &producer, t, None, false, &opts)
        .await
        .unwrap();
    assert_eq!(
        next,
        scripts::SchedulerNext::Added(format!("repeat:s:{}", t + 500))
    );
    let again = scripts::scheduler_next(&mut conn, &k, "s", &producer, t, None, false, &opts)
        .await
        .unwrap();
    assert_eq!(again, scripts::SchedulerNext::Nothing);
    let gone = scripts::scheduler_next(
        &mut conn,
        &k,
        "nope",
        "repeat:nope:1",
        t,
        Some(t),
        false,
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(gone, scripts::SchedulerNext::Nothing);
    let h = hash(&mut conn, &k.job(&format!("repeat:s:{}", t + 500))).await;
    assert_eq!(h["name"], "tick");
    assert_eq!(h["rjk"], "s");
    let stored: serde_json::Value = serde_json::from_str(&h["opts"]).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"attempts": 0, "repeat": {"every": 500, "count": 2},
            "jobId": format!("repeat:s:{}", t + 500), "delay": 500, "timestamp": t, "repeatJobKey": "s"})
    );
}

#[tokio::test]
async fn finish_many_reports_each_job_and_hands_out_fetched_jobs_in_token_order() {
    let server = RedisServer::start();
    let mut conn = connect(&server).await;
    let k = QueueKeys::new("bull", "rs-finish-many");
    let ids = add_jobs(&mut conn, &k, &["a", "b", "c", "d"]).await;
    let toks = tokens(&["t1", "t2"]);
    let opts = fetch_with(&toks);
    scripts::activate(&mut conn, &k, now(), &opts)
        .await
        .unwrap();

    let (one, two) = (completed("1"), completed("2"));
    let job = |job_id, token, outcome| FinishJob {
        job_id,
        token,
        outcome,
        stacktrace: "",
        keep: KEEP_ALL,
        attempts: 0,
    };
    let jobs = [job(&ids[0], "t1", &one), job(&ids[1], "not-t2", &two)];
    let next = tokens(&["t1", "t3"]);
    let fetch = FetchOpts {
        tokens: &next,
        ..opts
    };
    let done = scripts::finish_many(&mut conn, &k, now(), &jobs, Some(&fetch))
        .await
        .unwrap();
    assert!(done.results[0].is_ok());
    assert!(
        matches!(&done.results[1], Err(Error::LockLost(m)) if m.contains(&ids[1])),
        "{:?}",
        done.results[1]
    );
    let got: Vec<&str> = done.fetched.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(got, [ids[2].as_str(), ids[3].as_str()]);
    let lock: String = conn.get(k.lock(&ids[3])).await.unwrap();
    assert_eq!(lock, "t3");
    let rv: Option<String> = conn.hget(k.job(&ids[0]), "returnvalue").await.unwrap();
    assert_eq!(rv.as_deref(), Some("1"));
    let rv: Option<String> = conn.hget(k.job(&ids[1]), "returnvalue").await.unwrap();
    assert_eq!(rv, None);
}
