//! The cluster command side against a real 3-primary Redis Cluster built here by hand
//! (ADDSLOTSRANGE + MEET, no replicas): a `Conn` bound to a slot follows `MOVED` after the
//! slot migrates, `ASK` while it is migrating, loads a script the new owner lacks (`NOSCRIPT`),
//! and `health()` reports sockets per node.

mod common;

use std::time::{Duration, Instant};

use common::{RedisServer, Reply};
use queue_native::engine::connection::Registry;
use queue_native::engine::connection::slots::key_slot;
use queue_native::engine::options::parse_connection_options;
use serde_json::json;

fn node_id(s: &RedisServer) -> String {
    s.cmd(&["CLUSTER", "MYID"]).text().unwrap()
}

fn wait(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Three primaries owning a third of the slots each, all agreeing.
fn cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])
        })
        .collect();
    for (n, (a, b)) in nodes.iter().zip([(0, 5460), (5461, 10922), (10923, 16383)]) {
        n.cmd(&["CLUSTER", "ADDSLOTSRANGE", &a.to_string(), &b.to_string()])
            .ok()
            .unwrap();
    }
    for n in &nodes[1..] {
        nodes[0]
            .cmd(&["CLUSTER", "MEET", "127.0.0.1", &n.port().to_string()])
            .ok()
            .unwrap();
    }
    wait("cluster_state:ok on every node", || {
        nodes.iter().all(|n| {
            let info = n.cmd(&["CLUSTER", "INFO"]).text().unwrap_or_default();
            let known = n.cmd(&["CLUSTER", "NODES"]).text().unwrap_or_default();
            info.contains("cluster_state:ok") && known.lines().count() == 3
        })
    });
    nodes
}

/// Start moving `slot` from `from` to `to`: IMPORTING / MIGRATING, and MIGRATE `keys`.
fn begin_migration(nodes: &[RedisServer], slot: u16, from: usize, to: usize, keys: &[&str]) {
    let s = slot.to_string();
    nodes[to]
        .cmd(&[
            "CLUSTER",
            "SETSLOT",
            &s,
            "IMPORTING",
            &node_id(&nodes[from]),
        ])
        .ok()
        .unwrap();
    nodes[from]
        .cmd(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &node_id(&nodes[to])])
        .ok()
        .unwrap();
    let port = nodes[to].port().to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    args.extend_from_slice(keys);
    nodes[from].cmd(&args).ok().unwrap();
}

fn finish_migration(nodes: &[RedisServer], slot: u16, to: usize) {
    let id = node_id(&nodes[to]);
    for n in nodes {
        n.cmd(&["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &id])
            .ok()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_conn_follows_moved_ask_and_noscript() {
    let nodes = cluster();
    let ep = parse_connection_options(&json!({
        "cluster": [format!("127.0.0.1:{}", nodes[0].port())]
    }))
    .unwrap()
    .unwrap();
    let reg = Registry::new();
    let cluster = reg.cluster(&ep).unwrap();

    // MOVED: a connection taken before the slot moves still reaches the key afterwards.
    let slot = key_slot(b"{rt}:k");
    let owner = cluster.resolve(slot).await.unwrap();
    let from = nodes.iter().position(|n| n.port() == owner.1).unwrap();
    let to = (from + 1) % 3;
    let mut conn = reg.conn(&ep, Some(b"{rt}:k")).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("{rt}:k")
        .arg("v1")
        .query_async(&mut conn)
        .await
        .unwrap();
    begin_migration(&nodes, slot, from, to, &["{rt}:k"]);
    finish_migration(&nodes, slot, to);
    let got: String = redis::cmd("GET")
        .arg("{rt}:k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, "v1");
    assert_eq!(
        cluster.owner(slot).unwrap().1,
        nodes[to].port(),
        "MOVED updated the map"
    );

    // NOSCRIPT: the new owner never saw this script; redis-rs loads it there through the Conn.
    let script = redis::Script::new("return redis.call('GET', KEYS[1])");
    let via_script: String = script.key("{rt}:k").invoke_async(&mut conn).await.unwrap();
    assert_eq!(via_script, "v1");

    // ASK: mid-migration, a key already moved is read from the importing node.
    let slot2 = key_slot(b"{ask}:k");
    let owner2 = cluster.resolve(slot2).await.unwrap();
    let from2 = nodes.iter().position(|n| n.port() == owner2.1).unwrap();
    let to2 = (from2 + 1) % 3;
    let mut conn2 = reg.conn(&ep, Some(b"{ask}:k")).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("{ask}:k")
        .arg("v2")
        .query_async(&mut conn2)
        .await
        .unwrap();
    begin_migration(&nodes, slot2, from2, to2, &["{ask}:k"]);
    let direct = nodes[from2].cmd(&["GET", "{ask}:k"]);
    assert!(
        matches!(&direct, Reply::Error(e) if e.starts_with("ASK")),
        "the old owner redirects with ASK: {direct:?}"
    );
    let got2: String = redis::cmd("GET")
        .arg("{ask}:k")
        .query_async(&mut conn2)
        .await
        .unwrap();
    assert_eq!(got2, "v2");
    assert_eq!(
        cluster.owner(slot2).unwrap().1,
        nodes[from2].port(),
        "ASK is one-off: the map is unchanged"
    );
    finish_migration(&nodes, slot2, to2);

    // health(): one entry per node we talk to, one command socket each, no blocking socket.
    let h = reg.health();
    assert!(!h.endpoints.is_empty());
    for e in &h.endpoints {
        assert_eq!(e.connections.blocking, 0, "{}", e.endpoint);
        assert!(e.connections.command <= 1, "{}", e.endpoint);
    }
    reg.shutdown().await;
}
