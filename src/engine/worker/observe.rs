//! The workers' part of the process view (see [`crate::engine::observe`]).

use std::collections::HashMap;

use super::runtime::live_workers;

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
