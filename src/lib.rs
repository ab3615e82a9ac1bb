//! queue-native: BullMQ-compatible queue workers on one process-wide Redis connection pair.
//!
//! `engine` is pure Rust (tokio + redis) and is what `cargo test` exercises; `binding` is the
//! thin napi layer, compiled with the `node` feature (what `npm run build` enables).

#![deny(clippy::all)]

pub mod engine;

// Not in unit-test builds: napi-derive registers exports only outside `cfg(test)`, so there
// the binding would be dead code, and it has no logic of its own to test.
#[cfg(all(feature = "node", not(test)))]
mod binding;
