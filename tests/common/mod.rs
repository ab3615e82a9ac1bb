//! Test harness: a throw-away `redis-server` per test (in the spirit of redis-rs' own test
//! harness) and a tiny blocking RESP client for talking to it from the test side.
//!
//! Every server gets its own free port (never 6379) and its own temp dir, and is killed and
//! cleaned up on drop.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NOT_FOUND: &str = "redis-server not found on PATH: install it (e.g. `apt-get install redis-server`) to run the integration tests";
/// How long a freshly spawned server may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts with a new port when a server does not come up (e.g. the port was taken in between).
const START_ATTEMPTS: usize = 5;
/// The developer's own Redis runs there: tests must never touch it.
const FORBIDDEN_PORT: u16 = 6379;

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        if port != FORBIDDEN_PORT {
            return port;
        }
    }
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "queue-native-test-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A running `redis-server`, killed (and its dir removed) on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
    password: Option<String>,
}

impl RedisServer {
    /// A server on a free port with default settings.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server on a free port; `args` are appended to the command line
    /// (e.g. `&["--requirepass", "x"]`).
    pub fn start_with(args: &[&str]) -> Self {
        let mut errors = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(free_port(), args) {
                Ok(server) => return server,
                Err(e) => errors.push(e),
            }
        }
        panic!(
            "redis-server did not start after {START_ATTEMPTS} attempts:\n{}",
            errors.join("\n---\n")
        );
    }

    /// A server on exactly `port` (used to bring up an endpoint a client is already dialling).
    pub fn start_on_port(port: u16, args: &[&str]) -> Self {
        Self::try_start(port, args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(port: u16, args: &[&str]) -> Result<Self, String> {
        assert_ne!(port, FORBIDDEN_PORT, "tests must never use port 6379");
        let dir = unique_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let log_path = dir.join("redis.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("create log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("clone log: {e}"))?;
        let password = args
            .iter()
            .position(|a| *a == "--requirepass")
            .and_then(|i| args.get(i + 1))
            .map(|p| p.to_string());
        let spawned = Command::new("redis-server")
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                if e.kind() == io::ErrorKind::NotFound {
                    panic!("{NOT_FOUND}");
                }
                return Err(format!("spawn redis-server: {e}"));
            }
        };
        // From here on, Drop cleans up (kills the child, removes the dir) on every path.
        let mut server = RedisServer {
            child,
            port,
            dir,
            password,
        };
        server.wait_until_up().map_err(|e| {
            format!(
                "redis-server on port {port}: {e}\n--- log ---\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            )
        })?;
        Ok(server)
    }

    fn wait_until_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited early with {status}"));
            }
            if ping(self.port) {
                // Something answers PING on the port; make sure it is *our* process and not
                // a server another test started on the same port in between.
                let pid = self
                    .info_field("server", "process_id")
                    .map_err(|e| format!("INFO after PING failed: {e}"))?;
                return if pid == self.child.id().to_string() {
                    Ok(())
                } else {
                    Err(format!(
                        "port {} is served by another process ({pid})",
                        self.port
                    ))
                };
            }
            if Instant::now() > deadline {
                return Err(format!("no PONG within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (to stop and continue it with signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh raw connection, authenticated if the server has a password.
    pub fn connect(&self) -> io::Result<RespConn> {
        let mut c = RespConn::connect(self.port)?;
        if let Some(pw) = &self.password {
            c.cmd(&["AUTH", pw])?.ok()?;
        }
        Ok(c)
    }

    /// Run one command on a fresh connection. Panics on I/O errors (the test cannot go on).
    pub fn cmd(&self, args: &[&str]) -> Reply {
        let mut c = self
            .connect()
            .unwrap_or_else(|e| panic!("connect to test redis on port {}: {e}", self.port));
        c.cmd(args)
            .unwrap_or_else(|e| panic!("{args:?} on test redis port {}: {e}", self.port))
    }

    /// `CLIENT LIST` without the connection that asked.
    pub fn client_list(&self) -> Vec<ClientInfo> {
        let mut c = self
            .connect()
            .unwrap_or_else(|e| panic!("connect to test redis on port {}: {e}", self.port));
        client_list_via(&mut c)
    }

    /// One `field` from `INFO section`.
    pub fn info_field(&self, section: &str, field: &str) -> io::Result<String> {
        let info = self.connect()?.cmd(&["INFO", section])?.text()?;
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| io::Error::other(format!("INFO {section} has no {field}")))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True if `PING` on a new connection gets `+PONG` (or `-NOAUTH` when a password is set).
fn ping(port: u16) -> bool {
    let Ok(mut c) = RespConn::connect(port) else {
        return false;
    };
    match c.cmd(&["PING"]) {
        Ok(Reply::Simple(s)) => s == "PONG",
        Ok(Reply::Error(e)) => e.starts_with("NOAUTH"),
        _ => false,
    }
}

/// `CLIENT LIST` over `c`, without `c` itself.
pub fn client_list_via(c: &mut RespConn) -> Vec<ClientInfo> {
    let me = match c.cmd(&["CLIENT", "ID"]) {
        Ok(Reply::Int(id)) => id,
        other => panic!("CLIENT ID: {other:?}"),
    };
    let text = c
        .cmd(&["CLIENT", "LIST"])
        .and_then(Reply::text)
        .unwrap_or_else(|e| panic!("CLIENT LIST: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(ClientInfo::parse)
        .filter(|c| c.id != me)
        .collect()
}

/// One line of `CLIENT LIST`.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub id: i64,
    pub name: String,
    pub fields: HashMap<String, String>,
}

impl ClientInfo {
    fn parse(line: &str) -> Self {
        let fields: HashMap<String, String> = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClientInfo {
            id: fields
                .get("id")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("CLIENT LIST line without id: {line}")),
            name: fields.get("name").cloned().unwrap_or_default(),
            fields,
        }
    }
}

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// `Ok` for anything but an error reply.
    pub fn ok(self) -> io::Result<Reply> {
        match self {
            Reply::Error(e) => Err(io::Error::other(format!("redis error: {e}"))),
            other => Ok(other),
        }
    }

    /// The reply as text (simple or bulk string).
    pub fn text(self) -> io::Result<String> {
        match self {
            Reply::Simple(s) => Ok(s),
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(io::Error::other(format!(
                "expected a string, got {other:?}"
            ))),
        }
    }
}

/// A minimal blocking RESP2 client: enough for PING, CLIENT LIST/KILL, INFO, AUTH.
pub struct RespConn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RespConn {
    pub fn connect(port: u16) -> io::Result<Self> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        Ok(RespConn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf)?;
        self.read_reply()
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| io::Error::other(format!("bad RESP integer {s:?}")))
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(int(rest)?),
            "$" => match int(rest)? {
                n if n < 0 => Reply::Bulk(None),
                n => {
                    let mut data = vec![0; n as usize + 2];
                    self.reader.read_exact(&mut data)?;
                    data.truncate(n as usize);
                    Reply::Bulk(Some(data))
                }
            },
            "*" => match int(rest)? {
                n if n < 0 => Reply::Array(None),
                n => Reply::Array(Some(
                    (0..n)
                        .map(|_| self.read_reply())
                        .collect::<io::Result<_>>()?,
                )),
            },
            _ => return Err(io::Error::other(format!("bad RESP line {line:?}"))),
        })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Err(io::Error::other("empty RESP line"));
        }
        Ok(line)
    }

    pub fn close(self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}
