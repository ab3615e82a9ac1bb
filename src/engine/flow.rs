//! FlowProducer: a tree of jobs (parents wait in `waiting-children` for their children),
//! stored exactly as BullMQ's FlowProducer stores it. The facade flattens the tree in BullMQ's
//! insertion order (breadth first: a node, then its siblings, then the next level) and gives
//! every node its final id; here each node is validated and prepared like `Queue.add` would
//! (`queue::prepare`), then added in that order: a node with children by `add_parent.lua`, a
//! leaf by `add_job.lua` (the script `Queue.add` uses), and finally every parent whose children
//! were all found already finished is released by `flow_release.lua`.
//!
//! As BullMQ's, the whole insert is one MULTI on the shared command connection: the tree
//! appears at once; a node refused part-way (e.g. a missing parent) does not undo the others.

use std::collections::HashSet;

use super::connection::Pair;
use super::error::{Error, Result};
use super::job::prepare;
use super::keys::QueueKeys;
use super::scripts::queue::{flow_node_cmd, flow_node_reply};
use super::scripts::reply::{as_int, as_text};
use super::scripts::{FLOW_RELEASE, evalsha_cmd, load_cmd};
use super::util::now_ms;
use redis::Value;

/// One node of a flow, as the facade sends it.
#[derive(Clone, Debug)]
pub struct FlowEntry {
    /// The key prefix of the node's queue.
    pub prefix: String,
    /// The node's queue.
    pub queue: String,
    /// The job name.
    pub name: String,
    /// JSON of the data.
    pub data: String,
    /// JSON of the merged options (queue defaults, the node's opts, `parent`), with `jobId`
    /// only when the caller gave one (it is then stored in `opts`, as BullMQ does).
    pub opts: String,
    /// The node's id (the caller's jobId, or a generated one).
    pub job_id: String,
    /// Whether the node has children (it then waits in waiting-children).
    pub has_children: bool,
}

/// What happened to one node: added (its id, and what its job object shows), or the
/// negative code of its script (-5 parent missing, -7 the id exists with another parent).
#[derive(Clone, Debug, PartialEq)]
pub enum Added {
    /// Stored (or found, for an existing custom id).
    Job {
        /// The job id.
        id: String,
        /// The options as BullMQ's `job.opts` shows them (JSON).
        opts: String,
        /// The job's `timestamp` field.
        timestamp: f64,
        /// Its `delay` option (0 without).
        delay: f64,
        /// Its `priority` option (0 without).
        priority: u64,
    },
    /// The script's negative code.
    Code(i64),
}

/// Add the nodes in order, then release the parents, all in one MULTI: the tree appears at
/// once, as with BullMQ's FlowProducer (added one call at a time, a child could be taken and
/// finished before its siblings existed, and its parent run with children still to come).
/// The results stop at the first node that failed (its code is its result); as in BullMQ's
/// MULTI, the nodes after it were still sent.
pub async fn add_flow(pair: &Pair, entries: &[FlowEntry]) -> Result<Vec<Added>> {
    let now = now_ms();
    let mut prepared = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let mut p = prepare(&e.name, &e.data, &e.opts, &format!("flow[{i}].opts"), now)?;
        p.custom_id = e.job_id.clone();
        prepared.push(p);
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    // The scripts are in the cache already (every command socket loads them when it opens);
    // loading them again inside the MULTI costs a hash each and keeps a SCRIPT FLUSH in
    // between from failing the EVALSHAs after the first nodes were stored.
    for name in ["add_job", "add_parent", "flow_release"] {
        pipe.add_command(load_cmd(name)).ignore();
    }
    let mut parents: Vec<(String, String)> = Vec::new();
    let mut seen = HashSet::new();
    for (e, p) in entries.iter().zip(&prepared) {
        let k = QueueKeys::new(&e.prefix, &e.queue);
        pipe.add_command(flow_node_cmd(&k, p, e.has_children));
        if let Some(parent_key) = &p.parent_key
            && seen.insert(parent_key.clone())
            && let Some((queue_key, id)) = parent_key.rsplit_once(':')
        {
            parents.push((format!("{queue_key}:"), id.to_string()));
        }
    }
    for (base, id) in &parents {
        let mut release = evalsha_cmd(&FLOW_RELEASE, &[]);
        release.arg(base).arg(id).arg(now);
        pipe.add_command(release).ignore();
    }
    let mut conn = pair.command().await?;
    let replies: Vec<Value> = pipe
        .query_async(&mut conn)
        .await
        .map_err(super::scripts::redis_err)?;
    let mut out = Vec::with_capacity(entries.len());
    for ((e, p), reply) in entries.iter().zip(&prepared).zip(replies) {
        let reply = flow_node_reply(reply);
        let added = match (as_int(&reply), as_text(&reply)) {
            (Some(code), _) if code < 0 => Added::Code(code),
            (_, Some(id)) => Added::Job {
                id,
                opts: p.public_opts.clone(),
                timestamp: p.timestamp,
                delay: p.delay,
                priority: p.priority,
            },
            _ => {
                return Err(Error::Redis(format!(
                    "flow: unexpected reply {reply:?} adding job {} to queue {}",
                    p.custom_id, e.queue
                )));
            }
        };
        let failed = matches!(added, Added::Code(_));
        out.push(added);
        if failed {
            break;
        }
    }
    Ok(out)
}
