//! The only map from script reply codes to engine errors, and the error for a reply of the
//! wrong shape. Codes are BullMQ's (protocol §4): -1 missing job, -2 missing lock, -3 not in
//! the expected state, -4 pending dependencies, -5 missing parent, -6 lock held by another
//! token, -7 job exists with another parent, -9 failed children.

use redis::Value;

use super::reply::as_int;
use crate::engine::error::{Error, Result};
use crate::engine::keys::QueueKeys;

/// The error for a negative script code.
pub(crate) fn code_error(code: i64, op: &str, k: &QueueKeys, id: &str) -> Error {
    let q = &k.name;
    match code {
        -1 => Error::JobNotFound(format!("cannot {op}: job {id} in queue {q} does not exist")),
        -2 => Error::LockLost(format!(
            "cannot {op}: lock for job {id} in queue {q} is missing (it expired or was released)"
        )),
        -6 => Error::LockLost(format!(
            "cannot {op}: lock for job {id} in queue {q} is held by another worker"
        )),
        -3 => Error::JobState(format!("cannot {op}: job {id} in queue {q} is not active")),
        -4 => Error::JobState(format!(
            "cannot {op}: job {id} in queue {q} has pending dependencies (children not finished)"
        )),
        -9 => Error::JobState(format!(
            "cannot {op}: job {id} in queue {q} has failed children"
        )),
        other => Error::Redis(format!(
            "cannot {op}: unexpected code {other} for job {id} in queue {q}"
        )),
    }
}

/// A reply that does not have the shape the script's header promises.
pub(crate) fn unexpected(
    script: &str,
    k: &QueueKeys,
    id: &str,
    reply: impl std::fmt::Debug,
) -> Error {
    let job = if id.is_empty() {
        String::new()
    } else {
        format!(" for job {id}")
    };
    Error::Redis(format!(
        "unexpected reply from script {script}{job} in queue {}: {reply:?}",
        k.name
    ))
}

/// A count (a non-negative integer); a negative reply is a code.
pub(crate) fn expect_count(
    reply: &Value,
    op: &str,
    script: &str,
    k: &QueueKeys,
    id: &str,
) -> Result<u64> {
    match as_int(reply) {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(code) => Err(code_error(code, op, k, id)),
        None => Err(unexpected(script, k, id, reply)),
    }
}

/// A reply that must be 0 (anything negative is a code).
pub(crate) fn expect_zero(reply: &Value, op: &str, k: &QueueKeys, id: &str) -> Result<()> {
    match as_int(reply) {
        Some(0) => Ok(()),
        Some(code) => Err(code_error(code, op, k, id)),
        None => Err(unexpected(op, k, id, reply)),
    }
}

/// The error for a negative code of `add_job` (per job of the batch).
pub(crate) fn add_error(code: i64, k: &QueueKeys, custom_id: &str, parent: &str) -> Error {
    let q = &k.name;
    match code {
        -5 => Error::JobNotFound(format!(
            "cannot add job to queue {q}: parent job {parent} does not exist"
        )),
        -7 => Error::JobState(format!(
            "cannot add job {custom_id} to queue {q}: it already exists with another parent than {parent}"
        )),
        other => Error::Redis(format!(
            "cannot add job to queue {q}: unexpected code {other}"
        )),
    }
}

/// The error for a negative code of `reprocess` (`job.retry(state)`).
pub(crate) fn reprocess_error(reply: &Value, k: &QueueKeys, id: &str, state: &str) -> Error {
    let q = &k.name;
    match as_int(reply) {
        Some(-1) => code_error(-1, "retry", k, id),
        Some(-3) => Error::JobState(format!(
            "cannot retry: job {id} in queue {q} is not {state}"
        )),
        _ => unexpected("reprocess", k, "", reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_engine_errors() {
        let k = QueueKeys::new("bull", "q");
        let e = code_error(-6, "complete", &k, "12");
        assert_eq!(e.code(), "ERR_LOCK_LOST");
        assert!(
            e.to_string()
                .contains("lock for job 12 in queue q is held by another worker"),
            "{e}"
        );
        let e = code_error(-2, "fail", &k, "12");
        assert_eq!(e.code(), "ERR_LOCK_LOST");
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(code_error(-1, "retry", &k, "3").code(), "ERR_JOB_NOT_FOUND");
        for code in [-3, -4, -9] {
            assert_eq!(
                code_error(code, "complete", &k, "3").code(),
                "ERR_JOB_STATE"
            );
        }
        assert!(
            code_error(-4, "complete", &k, "3")
                .to_string()
                .contains("pending dependencies")
        );
        assert!(
            code_error(-9, "complete", &k, "3")
                .to_string()
                .contains("failed children")
        );
        assert!(
            code_error(-3, "retry", &k, "3")
                .to_string()
                .contains("not active")
        );
        assert_eq!(code_error(-42, "retry", &k, "3").code(), "ERR_REDIS");
    }
}
