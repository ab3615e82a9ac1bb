//! The engine: tokio + redis only. Nothing under this module may import napi; the binding
//! layer (`crate::binding`) is the only place that knows about JavaScript.

pub mod connection;
pub mod error;
pub mod options;

pub use error::{Error, Result};
