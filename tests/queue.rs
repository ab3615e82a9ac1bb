//! The engine's Queue (`engine::queue`) against a real `redis-server` through the
//! process-wide connection registry: script arguments, reply parsing, error mapping and the
//! "nothing written on bad input" rule. (Byte-for-byte equality with BullMQ's Queue is proven
//! in `__test__/queue.test.js`.)

mod common;

use std::time::Duration;

use common::RedisServer;
use queue_native::engine::Error;
use queue_native::engine::options::Endpoint;
use queue_native::engine::queue::{NewJob, Queue, QueueConfig};

fn job(name: &str, data: &str, opts: &str) -> NewJob {
    NewJob {
        name: name.into(),
        data: data.into(),
        opts: opts.into(),
    }
}

fn queue(server: &RedisServer, name: &str) -> Queue {
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port: server.port(),
        ..Endpoint::default()
    };
    let cfg = QueueConfig::from_json(name, &serde_json::json!({})).unwrap();
    Queue::new(&endpoint, cfg).unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_read_count_and_admin() {
    let server = RedisServer::start();
    let q = queue(&server, "q");
    q.wait_until_ready(Duration::from_secs(10)).await.unwrap();

    let added = q
        .add_bulk(&[
            job("a", r#"{"n":1}"#, "{}"),
            job("b", "{}", r#"{"priority":3}"#),
            job("c", "{}", r#"{"delay":60000}"#),
            job("d", "{}", r#"{"jobId":"custom","lifo":true}"#),
            job("e", "{}", r#"{"jobId":"custom"}"#),
            job("f", "{}", r#"{"deduplication":{"id":"x"}}"#),
            job("g", "{}", r#"{"deduplication":{"id":"x"}}"#),
        ])
        .await
        .unwrap();
    let ids: Vec<&str> = added.iter().map(|a| a.id.as_str()).collect();
    // Custom and deduplicated adds still take a counter value each.
    assert_eq!(ids, ["1", "2", "3", "custom", "custom", "6", "6"]);
    assert_eq!(added[1].priority, 3);
    assert_eq!(added[2].delay, 60000.0);
    assert!(added[0].opts.starts_with(r#"{"attempts":0"#));
    assert_eq!(server.cmd(&["GET", "bull:q:id"]).text().unwrap(), "7");
    assert_eq!(
        server.cmd(&["HGET", "bull:q:1", "opts"]).text().unwrap(),
        r#"{"attempts":0}"#
    );

    let counts = q
        .counts(&strings(&["waiting", "prioritized", "delayed", "active"]))
        .await
        .unwrap();
    assert_eq!(counts, [3, 1, 1, 0]);
    // Oldest first: the lifo job was pushed to the end that runs next.
    let waiting = q
        .get_jobs(&strings(&["waiting"]), 0, -1, true)
        .await
        .unwrap();
    let order: Vec<&str> = waiting.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(order, ["custom", "1", "6"]);
    assert_eq!(waiting[1].fields["data"], r#"{"n":1}"#);
    let page = q
        .get_jobs(&strings(&["waiting"]), 1, 1, true)
        .await
        .unwrap();
    assert_eq!(page[0].id, "1");
    assert!(q.get_job("nope").await.unwrap().is_none());
    assert_eq!(
        q.get_job("2").await.unwrap().unwrap().fields["priority"],
        "3"
    );

    q.pause().await.unwrap();
    assert!(q.is_paused().await.unwrap());
    q.resume().await.unwrap();
    assert!(!q.is_paused().await.unwrap());

    // Only failed (or completed) jobs can be retried.
    match q.reprocess("1", "failed", false, false).await {
        Err(Error::JobState(m)) => assert!(m.contains("is not in the failed state"), "{m}"),
        other => panic!("expected JobState, got {other:?}"),
    }
    assert!(matches!(
        q.reprocess("nope", "failed", false, false).await,
        Err(Error::JobNotFound(_))
    ));

    assert_eq!(q.clean(0, 0, "waiting").await.unwrap().len(), 3);
    assert_eq!(q.drain(true).await.unwrap(), 2);
    assert_eq!(
        q.counts(&strings(&["wait", "prioritized", "delayed"]))
            .await
            .unwrap(),
        [0, 0, 0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_writes_nothing_and_errors_are_typed() {
    let server = RedisServer::start();
    let q = queue(&server, "bad");
    let err = q
        .add_bulk(&[job("a", "{}", "{}"), job("b", "{}", r#"{"priority":-1}"#)])
        .await
        .unwrap_err();
    match err {
        Error::InvalidOption { option, .. } => assert_eq!(option, "jobs[1].opts.priority"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
    assert_eq!(server.cmd(&["DBSIZE"]), common::Reply::Int(0));

    let err = q
        .add_bulk(&[job(
            "orphan",
            "{}",
            r#"{"parent":{"id":"p","queue":"bull:none"}}"#,
        )])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_JOB_NOT_FOUND");
    assert!(err.to_string().contains("bull:none:p"), "{err}");
    assert_eq!(server.cmd(&["DBSIZE"]), common::Reply::Int(0));

    assert!(matches!(
        q.counts(&strings(&["meta"])).await,
        Err(Error::InvalidOption { .. })
    ));
    q.close();
    assert_eq!(
        q.add_bulk(&[job("a", "{}", "{}")])
            .await
            .unwrap_err()
            .code(),
        "ERR_CLOSED"
    );
}
