//! queue-native: BullMQ-compatible queue workers on one process-wide Redis connection pair.
//!
//! `engine` is pure Rust (tokio + redis) and is what `cargo test` exercises; `binding` is the
//! thin napi layer, compiled only with the default `node` feature.

#![deny(clippy::all)]

pub mod engine;

#[cfg(feature = "node")]
mod binding;
