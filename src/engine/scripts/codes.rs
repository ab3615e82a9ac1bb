//! The only map from script reply codes to engine errors, and the error for a reply of the
//! wrong shape. Codes are BullMQ's (protocol §4): -1 missing job, -2 missing lock, -3 not in
//! the expected state, -4 pending dependencies, -5 missing parent, -6 lock held by another
//! token, -7 job exists with another parent, -9 failed children.

use redis::Value;

use super::reply::as_int;
use crate::engine::error::{Error, Result};
use crate::engine::keys::QueueKeys;

/// The error for a negative script code.
pub(crate) fn code_error(code: i64, op: &str, id: &str) -> Error {
    // BullMQ's texts (its finishedErrors), with `op` its command name: users match on them.
    match code {
        -1 => Error::JobNotFound(format!("Missing key for job {id}. {op}")),
        -2 => Error::LockLost(format!("Missing lock for job {id}. {op}")),
        -6 => Error::LockLost(format!("Lock mismatch for job {id}. Cmd {op} from active")),
        -3 => Error::JobState(format!("Job {id} is not in the active state. {op}")),
        -4 => Error::JobState(format!("Job {id} has pending dependencies. {op}")),
        -9 => Error::JobState(format!(
            "Cannot complete job {id} because it has at least one failed child. {op}"
        )),
        other => Error::Redis(format!("Unknown code {other} error for {id}. {op}")),
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
        Some(code) => Err(code_error(code, op, id)),
        None => Err(unexpected(script, k, id, reply)),
    }
}

/// A reply that must be 0 (anything negative is a code).
pub(crate) fn expect_zero(reply: &Value, op: &str, k: &QueueKeys, id: &str) -> Result<()> {
    match as_int(reply) {
        Some(0) => Ok(()),
        Some(code) => Err(code_error(code, op, id)),
        None => Err(unexpected(op, k, id, reply)),
    }
}

/// The error for a negative code of `add_job` (per job of the batch), in BullMQ's words.
pub(crate) fn add_error(code: i64, k: &QueueKeys, custom_id: &str, parent: &str) -> Error {
    let q = &k.name;
    match code {
        -5 => Error::JobNotFound(format!("Missing key for parent job {parent}. addJob")),
        // The custom id exists with another live parent.
        -7 => Error::JobState(format!(
            "The parent job {parent} cannot be replaced. addJob (job {custom_id} in queue {q})"
        )),
        other => Error::Redis(format!(
            "cannot add job to queue {q}: unexpected code {other}"
        )),
    }
}

/// The error for a negative code of `reprocess` (`job.retry(state)`), in BullMQ's words.
pub(crate) fn reprocess_error(reply: &Value, k: &QueueKeys, id: &str, state: &str) -> Error {
    match as_int(reply) {
        Some(-1) => code_error(-1, "reprocessJob", id),
        Some(-3) => Error::JobState(format!(
            "Job {id} is not in the {state} state. reprocessJob"
        )),
        _ => unexpected("reprocess", k, "", reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_engine_errors_with_bullmqs_texts() {
        let e = code_error(-6, "moveToFinished", "12");
        assert_eq!(e.code(), "ERR_LOCK_LOST");
        assert!(
            e.to_string()
                .ends_with("Lock mismatch for job 12. Cmd moveToFinished from active"),
            "{e}"
        );
        let e = code_error(-2, "moveToFinished", "12");
        assert_eq!(e.code(), "ERR_LOCK_LOST");
        assert!(
            e.to_string()
                .ends_with("Missing lock for job 12. moveToFinished"),
            "{e}"
        );
        let e = code_error(-1, "retryJob", "3");
        assert_eq!(e.code(), "ERR_JOB_NOT_FOUND");
        assert!(
            e.to_string().ends_with("Missing key for job 3. retryJob"),
            "{e}"
        );
        for code in [-3, -4, -9] {
            assert_eq!(
                code_error(code, "moveToFinished", "3").code(),
                "ERR_JOB_STATE"
            );
        }
        assert!(
            code_error(-4, "moveToFinished", "3")
                .to_string()
                .ends_with("Job 3 has pending dependencies. moveToFinished")
        );
        assert!(
            code_error(-9, "moveToWaitingChildren", "3")
                .to_string()
                .ends_with("Cannot complete job 3 because it has at least one failed child. moveToWaitingChildren")
        );
        assert!(
            code_error(-3, "retryJob", "3")
                .to_string()
                .ends_with("Job 3 is not in the active state. retryJob")
        );
        assert_eq!(code_error(-42, "retryJob", "3").code(), "ERR_REDIS");
    }
}
