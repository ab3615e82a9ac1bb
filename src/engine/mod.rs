//! The engine: tokio + redis only. Nothing under this module may import napi; the binding
//! layer (`crate::binding`) is the only place that knows about JavaScript.

pub mod connection;
pub mod dispatcher;
pub mod error;
pub mod job;
pub mod keys;
pub mod lua;
pub mod options;
pub mod queue;
pub mod scripts;
pub mod util;
pub mod worker;

pub use error::{Error, Result};
