//! The job operations a processor (through the worker) and a queue alike may call: progress,
//! logs, data, and a flow parent's children.

use std::collections::HashMap;

use super::codes::{expect_count, expect_zero};
use super::{ADD_LOG, PROGRESS, UPDATE_DATA, hgetall, invoke};
use crate::engine::error::Result;
use crate::engine::keys::QueueKeys;

/// Store the job's progress (JSON) and emit `progress`.
pub async fn update_progress(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    progress_json: &str,
) -> Result<()> {
    let mut inv = PROGRESS.prepare_invoke();
    inv.key(k.job(job_id))
        .key(&k.events)
        .key(&k.meta)
        .arg(job_id)
        .arg(progress_json);
    let reply = invoke(&inv, conn).await?;
    expect_zero(&reply, "updateProgress", k, job_id)
}

/// Append a log line, keeping only the newest `keep_logs` lines if given. Returns the
/// number of lines stored.
pub async fn add_log(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    line: &str,
    keep_logs: Option<u64>,
) -> Result<u64> {
    let mut inv = ADD_LOG.prepare_invoke();
    inv.key(k.job(job_id))
        .key(k.logs(job_id))
        .arg(job_id)
        .arg(line)
        .arg(keep_logs.map(|n| n.to_string()).unwrap_or_default());
    let reply = invoke(&inv, conn).await?;
    expect_count(&reply, "addLog", "add_log", k, job_id)
}

/// Replace the job's data (JSON).
pub async fn update_data(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
    data_json: &str,
) -> Result<()> {
    let mut inv = UPDATE_DATA.prepare_invoke();
    inv.key(k.job(job_id)).arg(data_json);
    let reply = invoke(&inv, conn).await?;
    expect_zero(&reply, "updateData", k, job_id)
}

/// Children results of a flow parent: child job key -> returnvalue JSON.
pub async fn children_values(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
) -> Result<HashMap<String, String>> {
    hgetall(conn, &k.processed(job_id)).await
}

/// A flow parent's children by what became of them: BullMQ's `getDependenciesCount()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DependencyCounts {
    /// Not finished yet (`:dependencies`).
    pub unprocessed: u64,
    /// Completed (`:processed`).
    pub processed: u64,
    /// Failed and ignored or let the parent go on (`:failed`).
    pub ignored: u64,
    /// Failed with `failParentOnFailure` (`:unsuccessful`).
    pub failed: u64,
}

/// The children counts of a flow parent, read in one round trip.
pub async fn dependencies_count(
    conn: &mut impl crate::engine::connection::RedisConn,
    k: &QueueKeys,
    job_id: &str,
) -> Result<DependencyCounts> {
    let (unprocessed, processed, ignored, failed): (u64, u64, u64, u64) = super::query(
        conn,
        redis::pipe()
            .cmd("SCARD")
            .arg(k.dependencies(job_id))
            .cmd("HLEN")
            .arg(k.processed(job_id))
            .cmd("HLEN")
            .arg(k.failed_children(job_id))
            .cmd("ZCARD")
            .arg(k.unsuccessful(job_id)),
    )
    .await?;
    Ok(DependencyCounts {
        unprocessed,
        processed,
        ignored,
        failed,
    })
}
