//! The watchdog of a pair. A Redis that stops answering without closing its sockets (stopped
//! by SIGSTOP, stuck in a long script, behind a network partition that drops packets) gives
//! the supervisors nothing to see: the sockets stay up. So once a second the watchdog sends a
//! PING on the command connection; one unanswered for [`WATCHDOG_LATE`] marks the pair
//! `degraded` (status, plus one `error` event with `ERR_TIMEOUT`). The same PING's reply is the
//! first sign that Redis is back: the pair is `ready` again (and says so) the moment it comes.
//! Calls in flight are not abandoned meanwhile; they get their replies when Redis wakes. If
//! the PING fails instead (the command connection's own response timeout, 30 s), the socket
//! is reported broken and the supervisor reconnects.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::pair::{Pair, Role};
use crate::engine::error::Error;

/// How often the watchdog pings a pair whose command connection is up.
pub const WATCHDOG_EVERY: Duration = Duration::from_secs(1);
/// A PING unanswered this long marks the pair `degraded`. Far above any round trip of a
/// healthy server, even a loaded one; a script that holds Redis this long is worth reporting.
pub const WATCHDOG_LATE: Duration = Duration::from_secs(2);

impl Pair {
    pub(super) async fn watch(self: Arc<Self>) {
        let mut closed = self.closed.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(WATCHDOG_EVERY) => {}
                _ = closed.wait_for(|c| *c) => return,
            }
            let Some(mut conn) = self.command.conn.borrow().clone() else {
                continue;
            };
            let ping = async move {
                redis::cmd("PING")
                    .query_async::<redis::Value>(&mut conn)
                    .await
            };
            tokio::pin!(ping);
            let on_time = tokio::select! {
                r = &mut ping => Some(r),
                _ = tokio::time::sleep(WATCHDOG_LATE) => None,
                _ = closed.wait_for(|c| *c) => return,
            };
            let reply = match on_time {
                Some(r) => r,
                None => {
                    self.set_degraded(true);
                    let r = tokio::select! {
                        r = &mut ping => r,
                        _ = closed.wait_for(|c| *c) => return,
                    };
                    // The server is back: a socket that broke during the freeze (the
                    // dispatcher's own watchdog) reconnects now, not after its backoff.
                    self.retry_now.notify_waiters();
                    r
                }
            };
            if let Err(e) = reply
                && e.is_timeout()
            {
                self.report_broken(Role::Command);
            }
            self.set_degraded(false);
        }
    }

    /// Enter or leave `degraded`; entering is announced as an `error`, leaving as `ready`
    /// (when both sockets are up; otherwise the supervisors announce it when they are).
    fn set_degraded(&self, on: bool) {
        if self.degraded.swap(on, Ordering::SeqCst) == on {
            return;
        }
        if on {
            let err = Error::Timeout(format!(
                "{} has not answered a PING within {} ms: Redis is stopped, overloaded or unreachable; calls wait for it",
                self.display,
                WATCHDOG_LATE.as_millis()
            ));
            self.record_error(Role::Command, &err, true);
        }
        self.slot_changed();
    }
}
