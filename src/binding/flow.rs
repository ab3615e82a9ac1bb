//! `addFlow`: the napi face of `engine::flow` (FlowProducer.add / addBulk). The facade
//! (lib/flow-producer.js) flattens the tree, builds each node's options and ids, and turns the
//! results back into job trees.

use napi_derive::napi;

use super::error::IntoNapi;
use super::options::resolve;
use crate::engine::connection;
use crate::engine::flow::{self, Added, FlowEntry};

/// One flow node from the facade: field for field `engine::flow::FlowEntry` (a deliberate
/// mirror: the engine has no napi, so the `#[napi(object)]` twin lives here).
#[napi(object)]
pub struct FlowEntryInput {
    pub prefix: String,
    pub queue: String,
    pub name: String,
    /// JSON of the data.
    pub data: String,
    /// JSON of the merged options.
    pub opts: String,
    pub job_id: String,
    pub has_children: bool,
}

/// Add the flattened flow; one result per node added: `{id, opts, timestamp, delay,
/// priority}` or `{code}` (the script's negative code), after which nothing more was added.
#[napi]
pub async fn add_flow(
    connection_json: Option<String>,
    entries: Vec<FlowEntryInput>,
) -> napi::Result<Vec<serde_json::Value>> {
    // The endpoint and pair as NativeQueue's constructor resolves them (binding/queue.rs).
    let endpoint = resolve(connection_json.as_deref()).napi()?;
    let pair = connection::global().pair(&endpoint).napi()?;
    let entries: Vec<FlowEntry> = entries
        .into_iter()
        .map(|e| FlowEntry {
            prefix: e.prefix,
            queue: e.queue,
            name: e.name,
            data: e.data,
            opts: e.opts,
            job_id: e.job_id,
            has_children: e.has_children,
        })
        .collect();
    let added = flow::add_flow(&pair, &entries).await.napi()?;
    Ok(added
        .into_iter()
        .map(|a| match a {
            Added::Job {
                id,
                opts,
                timestamp,
                delay,
                priority,
            } => serde_json::json!({
                "id": id, "opts": opts, "timestamp": timestamp, "delay": delay, "priority": priority
            }),
            Added::Code(code) => serde_json::json!({ "code": code }),
        })
        .collect())
}
