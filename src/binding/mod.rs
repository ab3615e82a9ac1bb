//! The napi binding: the only code in the crate that knows about JavaScript. Each function
//! parses its inputs, calls the engine and converts the result; no queue logic lives here.

mod bridge;
mod connection;
mod error;
mod handle;
mod options;
mod queue;
#[cfg(feature = "testing")]
mod testing;
mod worker;

/// One tokio worker thread: the engine's work per job is small and I/O-bound, and a single
/// thread avoids the cross-thread wake-ups (futex, work stealing) that a multi-threaded
/// runtime pays on every Redis reply and every processor result.
#[napi_derive::module_init]
fn init() {
    let threads = std::env::var("QUEUE_NATIVE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("queue-native: cannot start the tokio runtime");
    napi::bindgen_prelude::create_custom_tokio_runtime(rt);
}
