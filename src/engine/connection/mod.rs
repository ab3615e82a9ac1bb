//! The process-wide connection registry: per distinct endpoint exactly one multiplexed
//! command connection and one blocking connection, each owned by a supervisor task that
//! (re)connects with jittered exponential backoff and reports what happens as events.
//!
//! We do not use redis-rs' `ConnectionManager`: it reconnects silently, and the product's
//! promise is that `health()` and the `ready`/`reconnecting`/`error`/`end` events tell the
//! truth about every socket. Connections speak RESP3: its `HELLO 3 AUTH` passes the server's
//! own error text through (a RESP2 `AUTH` error is folded by redis-rs into "Password
//! authentication failed", which would disguise `ERR max number of clients reached`), and
//! only RESP3 connections deliver the Disconnection push that tells us a socket died.

pub mod cluster;
pub mod conn;
pub mod dispatcher;
pub mod events;
/// The process-wide events reader: one XREAD BLOCK for every QueueEvents, on a third socket.
pub mod events_reader;
pub mod health;
pub mod naming;
pub mod pair;
pub mod registry;
pub mod sentinel;
pub mod slots;
pub mod supervisor;
pub mod watchdog;

pub use cluster::{BlockingRoute, Cluster};
pub use conn::{Conn, RedisConn, SlotConn};
pub use dispatcher::{Dispatcher, Registration, Wake};
pub use events::{ConnectionEvent, EventKind, Hub, Listener, ListenerId};
pub use health::{Connections, EndpointHealth, Health, LastError, Status};
pub use pair::{Pair, Role};
pub use registry::{Registry, global};
pub use supervisor::{COMMAND_RESPONSE_TIMEOUT, MIN_REDIS_VERSION, backoff_delay, parse_version};
pub use watchdog::{WATCHDOG_EVERY, WATCHDOG_LATE};
