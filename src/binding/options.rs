//! Connection options as they cross from JavaScript: JSON text (the facade stringifies them)
//! so that validation, with its exact error wording, happens in one place:
//! `engine::options`.

use crate::engine::connection;
use crate::engine::options::{self, Endpoint};
use crate::engine::{Error, Result};

/// Parse `connection` options (None = not given).
pub fn parse(json: Option<&str>) -> Result<Option<Endpoint>> {
    match json {
        None => Ok(None),
        Some(text) => {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| Error::invalid("connection", format!("is not serialisable ({e})")))?;
            options::parse_connection_options(&value)
        }
    }
}

/// The endpoint for these options: explicit, else `configure()`, else the environment.
pub fn resolve(json: Option<&str>) -> Result<Endpoint> {
    connection::global().resolve(parse(json)?)
}

/// A worker's or queue's own options (JSON text) as a JSON value.
pub fn parse_json(json: &str) -> Result<serde_json::Value> {
    serde_json::from_str(json)
        .map_err(|e| Error::invalid("opts", format!("is not serialisable ({e})")))
}
