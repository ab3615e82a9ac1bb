//! The napi binding: the only code in the crate that knows about JavaScript. Each function
//! parses its inputs, calls the engine and converts the result; no queue logic lives here.

mod connection;
mod error;
mod queue;
mod worker;
