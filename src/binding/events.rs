//! `NativeQueueEvents`: the napi face of a subscription to the process-wide events reader
//! (`engine::connection::events_reader`). Entries cross as one JSON text per batch; the facade
//! (lib/queue-events.js) turns them into BullMQ's QueueEvents events.

use napi::Status;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::json;

use super::error::{IntoNapi, to_napi};
use super::options::resolve;
use crate::engine::connection;
use crate::engine::connection::events_reader::{self, DEFAULT_BLOCK_MS, Delivery, Subscription};
use crate::engine::keys::QueueKeys;
use crate::engine::options::Endpoint;
use crate::engine::{Error, Result};

/// Strong on purpose: like BullMQ's QueueEvents (an open socket), a running subscription keeps
/// the process alive; it is released when the subscription ends (close or shutdown).
type EventsFn = ThreadsafeFunction<String, (), String, Status, false, false>;

#[napi]
pub struct NativeQueueEvents {
    endpoint: Endpoint,
    stream: String,
    sub: tokio::sync::Mutex<Option<Subscription>>,
}

fn batch_json(delivery: Delivery) -> String {
    match delivery {
        Delivery::Entries(entries) => {
            let list: Vec<serde_json::Value> = entries
                .into_iter()
                .map(|(id, fields)| {
                    let flat: Vec<String> = fields.into_iter().flat_map(|(k, v)| [k, v]).collect();
                    json!([id, flat])
                })
                .collect();
            json!({ "entries": list }).to_string()
        }
        Delivery::Error(err) => {
            json!({ "error": { "code": err.code(), "message": err.to_string() } }).to_string()
        }
    }
}

fn parse_prefix(prefix: Option<String>) -> Result<String> {
    match prefix {
        None => Ok("bull".into()),
        Some(p) if !p.is_empty() => Ok(p),
        Some(_) => Err(Error::invalid("prefix", "must be a non-empty string")),
    }
}

// Constructed like NativeQueueOps (binding/surface.rs): connection JSON, prefix, queue name.
#[napi]
impl NativeQueueEvents {
    #[napi(constructor)]
    pub fn new(
        name: String,
        prefix: Option<String>,
        connection_json: Option<String>,
    ) -> napi::Result<Self> {
        if name.is_empty() {
            return Err(to_napi(Error::invalid(
                "name",
                "must be a non-empty string",
            )));
        }
        let prefix = parse_prefix(prefix).napi()?;
        let endpoint = resolve(connection_json.as_deref()).napi()?;
        Ok(NativeQueueEvents {
            endpoint,
            stream: QueueKeys::new(&prefix, &name).events,
            sub: tokio::sync::Mutex::new(None),
        })
    }

    /// Start delivering this queue's events to `callback` (one JSON text per batch:
    /// `{"entries": [[id, [field, value, ...]], ...]}` or `{"error": {code, message}}`),
    /// from `lastEventId` (default `$`: what is written from now on). Resolves once every
    /// later event is sure to be delivered.
    #[napi]
    pub async fn subscribe(
        &self,
        callback: EventsFn,
        last_event_id: Option<String>,
        blocking_timeout_ms: Option<f64>,
    ) -> napi::Result<()> {
        let mut guard = self.sub.lock().await;
        if guard.is_some() {
            return Err(to_napi(Error::JobState(
                "this QueueEvents is already running".into(),
            )));
        }
        let block_ms = match blocking_timeout_ms {
            None => DEFAULT_BLOCK_MS,
            Some(v) if v.is_finite() && v > 0.0 => v as u64,
            Some(_) => {
                return Err(to_napi(Error::invalid(
                    "blockingTimeout",
                    "must be a positive number of ms",
                )));
            }
        };
        let pair = connection::global().pair(&self.endpoint).napi()?;
        let sink = std::sync::Arc::new(move |d: Delivery| {
            callback.call(batch_json(d), ThreadsafeFunctionCallMode::NonBlocking);
        });
        let sub = events_reader::subscribe(
            pair,
            self.stream.clone(),
            last_event_id.as_deref(),
            block_ms,
            sink,
        )
        .await
        .napi()?;
        *guard = Some(sub);
        Ok(())
    }

    /// Stop delivering; resolves once the events socket is closed if this was the last
    /// subscription of the endpoint. Idempotent.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let sub = self.sub.lock().await.take();
        if let Some(sub) = sub {
            sub.close().await;
        }
        Ok(())
    }
}
