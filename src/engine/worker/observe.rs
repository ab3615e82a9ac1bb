//! The workers' part of the process view (see [`crate::engine::observe`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::runtime::live_workers;
use crate::engine::connection::{Pair, naming};

/// Jobs active now in this process's live workers, by queue (`<prefix>:<name>`).
pub fn in_flight_by_queue() -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for w in live_workers() {
        let active = w.state.lock().unwrap().active.len() as u64;
        *out.entry(w.handle.keys().qualified_name().to_string())
            .or_default() += active;
    }
    out
}

/// Publish, in the command socket's client name, the workers of this process on `pair` (see
/// [`naming`]); called when a worker is created or has closed. A worker that does not run
/// yet counts, as BullMQ's does (its blocking socket is open from its constructor).
pub(super) fn refresh_served(pair: &Arc<Pair>) {
    let workers: Vec<(String, Option<String>)> = live_workers()
        .into_iter()
        .filter(|w| {
            w.handle
                .single_pair()
                .is_some_and(|p| Arc::ptr_eq(&p, pair))
                && !w.state.lock().unwrap().closing
        })
        .map(|w| {
            (
                w.handle.keys().qualified_name().to_string(),
                w.cfg.name.clone(),
            )
        })
        .collect();
    naming::set_served(pair, &workers);
}
