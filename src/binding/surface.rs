//! `NativeQueueOps`: the napi face of `engine::surface` (the Job and Queue admin operations).
//! One per queue and endpoint; the facade (lib/surface.js) shapes arguments and replies.

use napi_derive::napi;

use super::error::{IntoNapi, to_napi};
use super::options::resolve;
use crate::engine::connection;
use crate::engine::keys::QueueKeys;
use crate::engine::options::Endpoint;
use crate::engine::{Error, surface};

#[napi]
pub struct NativeQueueOps {
    endpoint: Endpoint,
    keys: QueueKeys,
}

#[napi]
impl NativeQueueOps {
    #[napi(constructor)]
    pub fn new(
        name: String,
        prefix: Option<String>,
        connection_json: Option<String>,
    ) -> napi::Result<Self> {
        if name.is_empty() || name.contains(':') {
            return Err(to_napi(Error::invalid(
                "name",
                "must be a non-empty string without ':'",
            )));
        }
        let prefix = prefix.unwrap_or_else(|| "bull".into());
        if prefix.is_empty() {
            return Err(to_napi(Error::invalid(
                "prefix",
                "must be a non-empty string",
            )));
        }
        let endpoint = resolve(connection_json.as_deref()).napi()?;
        Ok(NativeQueueOps {
            endpoint,
            keys: QueueKeys::new(&prefix, &name),
        })
    }

    /// Run operation `op` (see engine::surface) for job `jobId` ("" for queue-wide ones);
    /// resolves with the script's reply as JSON.
    #[napi]
    pub async fn run(
        &self,
        op: String,
        job_id: String,
        params: Vec<String>,
    ) -> napi::Result<serde_json::Value> {
        let pair = connection::global().pair(&self.endpoint).napi()?;
        surface::run(&pair, &self.keys, &op, &job_id, &params)
            .await
            .napi()
    }
}
