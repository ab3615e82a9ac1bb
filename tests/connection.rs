//! The connection registry against a real `redis-server`: one pair of sockets per endpoint,
//! named in CLIENT LIST, reconnecting after kills, giving up on bad credentials, surviving a
//! full server, and closing cleanly on shutdown.
//!
//! Every test has its own server and its own `Registry` (never the global one), so the tests
//! can run in parallel.

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ClientInfo, RedisServer, Reply, RespConn};
use queue_native::engine::connection::{
    ConnectionEvent, Connections, EventKind, Registry, Role, Status,
};
use queue_native::engine::options::{Endpoint, parse_connection_options};
use serde_json::{Value, json};

const BOTH_UP: Connections = Connections {
    command: 1,
    blocking: 1,
};
const NONE_UP: Connections = Connections {
    command: 0,
    blocking: 0,
};

fn endpoint(options: Value) -> Endpoint {
    parse_connection_options(&options)
        .expect("valid options")
        .expect("options given")
}

fn local(port: u16) -> Endpoint {
    endpoint(json!({"host": "127.0.0.1", "port": port}))
}

fn name_of(role: Role) -> String {
    format!("queue-native:{}:{}", role.as_str(), std::process::id())
}

/// Our sockets (by name) among the clients of one server.
fn ours(clients: Vec<ClientInfo>) -> Vec<ClientInfo> {
    let suffix = format!(":{}", std::process::id());
    let mut v: Vec<ClientInfo> = clients
        .into_iter()
        .filter(|c| c.name.starts_with("queue-native:") && c.name.ends_with(&suffix))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn names(clients: &[ClientInfo]) -> Vec<String> {
    clients.iter().map(|c| c.name.clone()).collect()
}

fn expected_names() -> Vec<String> {
    vec![name_of(Role::Blocking), name_of(Role::Command)]
}

/// Everything the registry emits, both as values and as the JSON a JS listener would see.
#[derive(Clone, Default)]
struct Events {
    inner: Arc<Mutex<Vec<(ConnectionEvent, String)>>>,
}

impl Events {
    fn listen(registry: &Registry) -> Self {
        let events = Events::default();
        let sink = Arc::clone(&events.inner);
        registry.on_event(Arc::new(move |ev: &ConnectionEvent| {
            let text = serde_json::to_string(ev).expect("event serializes");
            sink.lock().unwrap().push((ev.clone(), text));
        }));
        events
    }

    fn all(&self) -> Vec<ConnectionEvent> {
        self.inner
            .lock()
            .unwrap()
            .iter()
            .map(|(e, _)| e.clone())
            .collect()
    }

    fn json(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .iter()
            .map(|(_, j)| j.clone())
            .collect()
    }

    fn of(&self, kind: EventKind) -> Vec<ConnectionEvent> {
        self.all().into_iter().filter(|e| e.event == kind).collect()
    }

    fn errors_with(&self, code: &str) -> Vec<ConnectionEvent> {
        self.of(EventKind::Error)
            .into_iter()
            .filter(|e| e.code == Some(code))
            .collect()
    }

    fn count(&self, kind: EventKind) -> usize {
        self.of(kind).len()
    }
}

/// Poll `cond` every 20 ms until it holds or `limit` passes; true if it held.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`] for a condition that needs the network from the test side (blocking
/// calls), run off the runtime's worker threads.
async fn eventually_blocking<F>(limit: Duration, cond: F) -> bool
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let cond = Arc::new(cond);
    let deadline = Instant::now() + limit;
    loop {
        let c = Arc::clone(&cond);
        if tokio::task::spawn_blocking(move || c()).await.unwrap() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run a blocking test-side call off the runtime's worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn with_timeout<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_by_options_with_exactly_two_named_sockets() {
    let server = Arc::new(RedisServer::start());
    let registry = Registry::new();
    let events = Events::listen(&registry);
    assert_eq!(registry.health().status, Status::Idle);

    let pair = registry.pair(&local(server.port())).unwrap();
    pair.wait_ready(Duration::from_secs(5)).await.unwrap();

    let health = registry.health();
    assert_eq!(health.status, Status::Ready, "{health:?}");
    assert_eq!(health.connections, BOTH_UP, "{health:?}");
    assert_eq!(health.reconnects, 0, "{health:?}");
    assert!(health.last_error.is_none(), "{health:?}");
    assert_eq!(health.endpoints.len(), 1, "{health:?}");
    assert_eq!(
        health.endpoints[0].endpoint,
        format!("redis://127.0.0.1:{}/0", server.port())
    );
    assert!(
        health
            .redis_version
            .as_deref()
            .is_some_and(|v| v.starts_with('7')),
        "{health:?}"
    );
    // `ready` is emitted right after the second socket is published, so poll briefly.
    assert!(
        eventually(Duration::from_secs(1), || events.count(EventKind::Ready)
            == 1)
        .await,
        "{:?}",
        events.json()
    );
    assert_eq!(events.count(EventKind::Error), 0, "{:?}", events.json());

    let s = Arc::clone(&server);
    let clients = blocking(move || s.client_list()).await;
    let mine = ours(clients.clone());
    assert_eq!(names(&mine), expected_names(), "CLIENT LIST: {clients:?}");
    // ...and no other (unnamed, leaked) socket of ours: the server has no other client.
    assert_eq!(clients.len(), 2, "CLIENT LIST: {clients:?}");
    // The blocking connection's id is what the dispatcher will CLIENT UNBLOCK.
    let blocking_id = mine
        .iter()
        .find(|c| c.name == name_of(Role::Blocking))
        .unwrap()
        .id;
    assert_eq!(pair.blocking_client_id(), Some(blocking_id));

    // The command connection works.
    let mut conn = pair.command().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");

    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_and_host_port_share_one_pair() {
    let server = Arc::new(RedisServer::start());
    let registry = Registry::new();
    let port = server.port();

    let by_url = endpoint(json!({"url": server.url()}));
    let by_url_db0 = endpoint(json!({"url": format!("redis://127.0.0.1:{port}/0")}));
    let by_fields = local(port);
    // Options that do not change the endpoint's identity do not make a second pair either.
    let with_tuning = endpoint(json!({
        "host": "127.0.0.1", "port": port, "connectTimeout": 2000,
        "retry": {"initialDelay": 10, "maxDelay": 20}, "maxRetriesPerRequest": null,
    }));

    let a = registry.pair(&by_url).unwrap();
    let b = registry.pair(&by_fields).unwrap();
    let c = registry.pair(&by_url_db0).unwrap();
    let d = registry.pair(&with_tuning).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "URL and host/port gave two pairs");
    assert!(
        Arc::ptr_eq(&a, &c),
        "redis://h:p and redis://h:p/0 gave two pairs"
    );
    assert!(Arc::ptr_eq(&a, &d), "tuning options gave a second pair");

    a.wait_ready(Duration::from_secs(5)).await.unwrap();
    b.wait_ready(Duration::from_secs(5)).await.unwrap();

    let health = registry.health();
    assert_eq!(health.endpoints.len(), 1, "{health:?}");
    assert_eq!(health.connections, BOTH_UP, "{health:?}");
    let s = Arc::clone(&server);
    let clients = blocking(move || s.client_list()).await;
    assert_eq!(
        names(&ours(clients.clone())),
        expected_names(),
        "{clients:?}"
    );
    assert_eq!(clients.len(), 2, "CLIENT LIST: {clients:?}");

    registry.shutdown().await;
}

/// Kill one of the pair's sockets server-side; the supervisor must notice and reconnect.
async fn killed_connection_is_replaced(role: Role) {
    let server = Arc::new(RedisServer::start());
    let registry = Registry::new();
    let events = Events::listen(&registry);
    let pair = registry.pair(&local(server.port())).unwrap();
    pair.wait_ready(Duration::from_secs(5)).await.unwrap();
    // The first `ready` is emitted just after the second socket is published (wait_ready can
    // return a moment earlier); wait for it so the kill below cannot overtake it.
    assert!(
        eventually(Duration::from_secs(1), || events.count(EventKind::Ready)
            == 1)
        .await,
        "{:?}",
        events.json()
    );
    let before = registry.health();
    assert_eq!(before.connections, BOTH_UP);

    let s = Arc::clone(&server);
    let old = blocking(move || ours(s.client_list())).await;
    assert_eq!(names(&old), expected_names());
    let victim = old
        .iter()
        .find(|c| c.name == name_of(role))
        .unwrap()
        .clone();
    let survivor = old
        .iter()
        .find(|c| c.name != name_of(role))
        .unwrap()
        .clone();

    let s = Arc::clone(&server);
    let id = victim.id.to_string();
    let killed = blocking(move || s.cmd(&["CLIENT", "KILL", "ID", &id])).await;
    assert_eq!(killed, Reply::Int(1), "CLIENT KILL ID {}", victim.id);

    let recovered = eventually(Duration::from_secs(5), || {
        let h = registry.health();
        h.reconnects > before.reconnects && h.connections == BOTH_UP && h.status == Status::Ready
    })
    .await;
    let health = registry.health();
    assert!(
        recovered,
        "{role:?} connection not replaced within 5 s: {health:?}\nevents: {:?}",
        events.json()
    );
    assert_eq!(health.reconnects, before.reconnects + 1, "{health:?}");

    // The server sees a new socket for the killed role and the untouched one for the other.
    let s = Arc::clone(&server);
    let now = blocking(move || ours(s.client_list())).await;
    assert_eq!(names(&now), expected_names(), "{now:?}");
    let replacement = now.iter().find(|c| c.name == name_of(role)).unwrap();
    assert_ne!(replacement.id, victim.id, "killed socket still listed");
    let other = now.iter().find(|c| c.name != name_of(role)).unwrap();
    assert_eq!(
        other.id, survivor.id,
        "the other connection was replaced too"
    );
    if role == Role::Blocking {
        assert_eq!(pair.blocking_client_id(), Some(replacement.id));
    }

    // The loss was reported for the right connection, then a new `ready`.
    let lost = events.errors_with("ERR_CONNECTION_LOST");
    assert_eq!(lost.len(), 1, "{:?}", events.json());
    assert_eq!(lost[0].connection, Some(role));
    let reconnecting = events.of(EventKind::Reconnecting);
    assert_eq!(reconnecting.len(), 1, "{:?}", events.json());
    assert_eq!(reconnecting[0].connection, Some(role));
    assert_eq!(reconnecting[0].attempt, Some(1));
    assert!(
        eventually(Duration::from_secs(1), || events.count(EventKind::Ready)
            == 2)
        .await,
        "{:?}",
        events.json()
    );

    // And the replacement works.
    let mut conn = match role {
        Role::Command => pair.command().await.unwrap(),
        Role::Blocking => pair.blocking().await.unwrap(),
    };
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");

    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_command_connection_is_replaced() {
    killed_connection_is_replaced(Role::Command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_blocking_connection_is_replaced() {
    killed_connection_is_replaced(Role::Blocking).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_retried_quietly_and_heals_without_leaking_it() {
    const SECRET: &str = "wrong-pass-123";
    let server = Arc::new(RedisServer::start_with(&["--requirepass", "sekrit"]));
    let registry = Registry::new();
    let events = Events::listen(&registry);
    let ep = endpoint(json!({
        "host": "127.0.0.1", "port": server.port(), "password": SECRET,
        "retry": {"initialDelay": 50, "maxDelay": 200}
    }));
    assert!(!format!("{ep:?}").contains(SECRET));

    let pair = registry.pair(&ep).unwrap();
    let err = pair.wait_ready(Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(err.code(), "ERR_AUTH", "{err:?}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!format!("{err:?}").contains(SECRET), "{err:?}");

    // Not given up: still reconnecting, and still dialling (a rotation must heal)...
    let s = Arc::clone(&server);
    let conns_before: u64 = blocking(move || s.info_field("stats", "total_connections_received"))
        .await
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = Arc::clone(&server);
    let conns_after: u64 = blocking(move || s.info_field("stats", "total_connections_received"))
        .await
        .unwrap()
        .parse()
        .unwrap();
    // Backoff capped at 200 ms: at least 5 attempts per socket in a second (+1: our INFO).
    assert!(
        conns_after >= conns_before + 6,
        "{conns_before} -> {conns_after}"
    );
    let health = registry.health();
    assert_eq!(health.status, Status::Reconnecting, "{health:?}");
    assert_eq!(health.connections, NONE_UP, "{health:?}");
    assert_eq!(
        health.last_error.as_ref().map(|e| e.code),
        Some("ERR_AUTH"),
        "{health:?}"
    );
    assert_eq!(events.count(EventKind::End), 0, "{:?}", events.json());
    assert_eq!(events.count(EventKind::Ready), 0, "{:?}", events.json());
    // ...but quietly: one `error` per socket when the failure started, not one per attempt.
    let auth_errors = events.errors_with("ERR_AUTH").len();
    assert!(
        (1..=2).contains(&auth_errors),
        "{auth_errors} auth errors: {:?}",
        events.json()
    );

    // The secret never shows up anywhere the application (or a log) can see.
    for text in events.json() {
        assert!(!text.contains(SECRET), "event leaks the password: {text}");
    }
    let health_json = serde_json::to_string(&registry.health()).unwrap();
    assert!(!health_json.contains(SECRET), "{health_json}");

    // The server takes the password now: the pair comes up by itself.
    let s = Arc::clone(&server);
    blocking(move || s.cmd(&["CONFIG", "SET", "requirepass", SECRET])).await;
    pair.wait_ready(Duration::from_secs(3)).await.unwrap();
    assert_eq!(registry.health().status, Status::Ready);
    assert!(
        eventually(Duration::from_secs(1), || events.count(EventKind::Ready)
            == 1)
        .await,
        "{:?}",
        events.json()
    );

    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_db_from_url_are_applied_to_both_sockets() {
    const SECRET: &str = "sekrit";
    let server = Arc::new(RedisServer::start_with(&["--requirepass", SECRET]));
    let registry = Registry::new();
    let events = Events::listen(&registry);
    let ep = endpoint(json!({"url": format!("redis://:{SECRET}@127.0.0.1:{}/3", server.port())}));
    let pair = registry.pair(&ep).unwrap();
    pair.wait_ready(Duration::from_secs(5)).await.unwrap();
    assert_eq!(registry.health().connections, BOTH_UP);

    let s = Arc::clone(&server);
    let mine = blocking(move || ours(s.client_list())).await;
    assert_eq!(names(&mine), expected_names(), "{mine:?}");
    for c in &mine {
        assert_eq!(c.fields.get("db").map(String::as_str), Some("3"), "{c:?}");
    }

    // Commands go to db 3.
    let mut conn = pair.command().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("queue-native-test-key")
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let s = Arc::clone(&server);
    let (in_db3, in_db0) = blocking(move || {
        let mut c = s.connect().unwrap();
        let in_db0 = c.cmd(&["GET", "queue-native-test-key"]).unwrap();
        c.cmd(&["SELECT", "3"]).unwrap().ok().unwrap();
        (c.cmd(&["GET", "queue-native-test-key"]).unwrap(), in_db0)
    })
    .await;
    assert_eq!(in_db3, Reply::Bulk(Some(b"v".to_vec())));
    assert_eq!(in_db0, Reply::Bulk(None));

    let health_json = serde_json::to_string(&registry.health()).unwrap();
    assert!(!health_json.contains(SECRET), "{health_json}");
    assert!(health_json.contains(&format!("127.0.0.1:{}/3", server.port())));
    for text in events.json() {
        assert!(!text.contains(SECRET), "event leaks the password: {text}");
    }

    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backs_off_then_recovers_by_itself() {
    let port = common::free_port();
    let registry = Registry::new();
    let events = Events::listen(&registry);
    let ep = endpoint(json!({
        "host": "127.0.0.1", "port": port,
        "retry": {"initialDelay": 50, "maxDelay": 400},
    }));
    let pair = registry.pair(&ep).unwrap();

    let command_reconnects = || -> Vec<ConnectionEvent> {
        events
            .of(EventKind::Reconnecting)
            .into_iter()
            .filter(|e| e.connection == Some(Role::Command))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(5), || command_reconnects().len() >= 4).await,
        "fewer than 4 reconnecting events in 5 s: {:?}",
        events.json()
    );
    let seen = command_reconnects();
    let delays: Vec<u64> = seen.iter().map(|e| e.delay.unwrap()).collect();
    let attempts: Vec<u32> = seen.iter().map(|e| e.attempt.unwrap()).collect();
    assert_eq!(
        attempts,
        (1..=attempts.len() as u32).collect::<Vec<_>>(),
        "{delays:?}"
    );
    let n = delays.len();
    let first_min = delays[0].min(delays[1]);
    let last_max = delays[n - 2].max(delays[n - 1]);
    assert!(last_max > first_min, "backoff does not grow: {delays:?}");
    assert!(
        delays.iter().all(|d| *d <= 400),
        "delay above maxDelay: {delays:?}"
    );

    let h = registry.health();
    assert_eq!(h.status, Status::Reconnecting, "{h:?}");
    assert_eq!(h.connections, NONE_UP, "{h:?}");
    assert_eq!(
        h.last_error.as_ref().map(|e| e.code),
        Some("ERR_REDIS_UNREACHABLE"),
        "{h:?}"
    );
    // A short wait reports why it is not ready.
    let err = pair
        .wait_ready(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_REDIS_UNREACHABLE", "{err:?}");

    // Bring the server up on that port: the pair must get there on its own.
    let server = Arc::new(RedisServer::start_on_port(port, &[]));
    let started = Instant::now();
    pair.wait_ready(Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| panic!("not ready 3 s after the server came up: {e:?}"));
    assert!(started.elapsed() < Duration::from_secs(3));
    let h = registry.health();
    assert_eq!(h.status, Status::Ready, "{h:?}");
    assert_eq!(h.connections, BOTH_UP, "{h:?}");
    assert!(
        eventually(Duration::from_secs(1), || events.count(EventKind::Ready)
            == 1)
        .await,
        "{:?}",
        events.json()
    );
    let s = Arc::clone(&server);
    let clients = blocking(move || s.client_list()).await;
    assert_eq!(
        names(&ours(clients.clone())),
        expected_names(),
        "{clients:?}"
    );

    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_is_reported_in_the_servers_words_and_recovers() {
    const MAX_CLIENTS: usize = 4;
    let server = RedisServer::start_with(&["--maxclients", &MAX_CLIENTS.to_string()]);
    let port = server.port();

    // Fill the server from the test side.
    let mut hogs: Vec<RespConn> = blocking(move || {
        let mut hogs = Vec::new();
        for _ in 0..=MAX_CLIENTS + 2 {
            let mut c = RespConn::connect(port).expect("connect hog");
            match c.cmd(&["PING"]) {
                Ok(Reply::Simple(s)) if s == "PONG" => hogs.push(c),
                Ok(Reply::Error(e)) if e.contains("max number of clients reached") => {
                    return hogs;
                }
                other => panic!("unexpected reply while filling the server: {other:?}"),
            }
        }
        panic!(
            "server accepted more than {MAX_CLIENTS} + 2 clients with --maxclients {MAX_CLIENTS}"
        );
    })
    .await;
    assert_eq!(hogs.len(), MAX_CLIENTS);

    let registry = Registry::new();
    let events = Events::listen(&registry);
    let ep = endpoint(json!({
        "host": "127.0.0.1", "port": port,
        "retry": {"initialDelay": 20, "maxDelay": 200},
    }));
    let pair = registry.pair(&ep).unwrap();

    let reported = eventually(Duration::from_secs(3), || {
        !events.errors_with("ERR_MAX_CLIENTS").is_empty()
    })
    .await;
    assert!(
        reported,
        "no ERR_MAX_CLIENTS error event; events: {:?}; health: {:?}",
        events.json(),
        registry.health()
    );
    for ev in events.errors_with("ERR_MAX_CLIENTS") {
        let msg = ev.message.unwrap_or_default();
        assert!(msg.contains("max number of clients reached"), "{msg}");
    }
    let err = pair
        .wait_ready(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_MAX_CLIENTS", "{err:?}");
    assert!(
        err.to_string().contains("max number of clients reached"),
        "{err}"
    );
    let h = registry.health();
    assert_ne!(h.status, Status::Ready, "{h:?}");
    assert_ne!(
        h.status,
        Status::Closed,
        "a full server is not a reason to give up: {h:?}"
    );
    let last = h.last_error.clone().expect("lastError set");
    assert_eq!(last.code, "ERR_MAX_CLIENTS", "{h:?}");
    assert!(
        last.message.contains("max number of clients reached"),
        "{h:?}"
    );

    // Make room for exactly our two sockets.
    hogs.truncate(MAX_CLIENTS - 2);
    pair.wait_ready(Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| panic!("not ready 3 s after making room: {e:?}"));
    let h = registry.health();
    assert_eq!(h.status, Status::Ready, "{h:?}");
    assert_eq!(h.connections, BOTH_UP, "{h:?}");

    // The server is full again (2 hogs + our 2): ask over a hog's socket.
    let mut hog = hogs.pop().unwrap();
    let clients = blocking(move || common::client_list_via(&mut hog)).await;
    assert_eq!(
        names(&ours(clients.clone())),
        expected_names(),
        "{clients:?}"
    );

    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_everything_and_is_idempotent() {
    let server = Arc::new(RedisServer::start());
    let registry = Registry::new();
    let events = Events::listen(&registry);
    let ep = local(server.port());
    let pair = registry.pair(&ep).unwrap();
    pair.wait_ready(Duration::from_secs(5)).await.unwrap();
    let s = Arc::clone(&server);
    assert_eq!(
        names(&blocking(move || ours(s.client_list())).await),
        expected_names()
    );

    with_timeout("shutdown", Duration::from_secs(5), registry.shutdown()).await;
    let h = registry.health();
    assert_eq!(h.status, Status::Closed, "{h:?}");
    assert_eq!(h.connections, NONE_UP, "{h:?}");
    assert!(h.endpoints.is_empty(), "{h:?}");
    assert_eq!(pair.status(), Status::Closed);
    assert_eq!(events.count(EventKind::End), 1, "{:?}", events.json());
    let err = pair.command().await.unwrap_err();
    assert_eq!(err.code(), "ERR_CLOSED", "{err:?}");

    let s = Arc::clone(&server);
    let gone = eventually_blocking(Duration::from_secs(2), move || {
        ours(s.client_list()).is_empty()
    })
    .await;
    let s = Arc::clone(&server);
    assert!(
        gone,
        "our sockets still open 2 s after shutdown: {:?}",
        blocking(move || s.client_list()).await
    );

    // Again: no panic, no second `end`, still closed.
    with_timeout(
        "second shutdown",
        Duration::from_secs(5),
        registry.shutdown(),
    )
    .await;
    assert_eq!(registry.health().status, Status::Closed);
    assert_eq!(events.count(EventKind::End), 1, "{:?}", events.json());

    // A later pair() connects afresh.
    let again = registry.pair(&ep).unwrap();
    assert!(!Arc::ptr_eq(&pair, &again));
    again.wait_ready(Duration::from_secs(5)).await.unwrap();
    let h = registry.health();
    assert_eq!(h.status, Status::Ready, "{h:?}");
    assert_eq!(h.connections, BOTH_UP, "{h:?}");
    let s = Arc::clone(&server);
    assert_eq!(
        names(&blocking(move || ours(s.client_list())).await),
        expected_names()
    );

    registry.shutdown().await;
}
