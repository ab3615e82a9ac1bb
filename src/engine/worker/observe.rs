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

/// Publish, in the command socket's client name, the queues that this process's running
/// workers on `pair` serve (see [`naming`]); called when a worker starts or has closed.
pub(super) fn refresh_served(pair: &Arc<Pair>) {
    let queues: Vec<String> = live_workers()
        .into_iter()
        .filter(|w| {
            w.handle
                .single_pair()
                .is_some_and(|p| Arc::ptr_eq(&p, pair))
                && w.state.lock().unwrap().started
        })
        .map(|w| w.handle.keys().qualified_name().to_string())
        .collect();
    naming::set_served(pair, &queues);
}
