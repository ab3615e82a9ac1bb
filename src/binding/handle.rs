//! The napi methods of a class that wraps an engine [`QueueHandle`](crate::engine::QueueHandle)
//! (`NativeWorker`, `NativeQueue`), written once: the readiness wait and the five job
//! operations (progress, log, data, children values, dependency counts), which the facade's
//! `Job` calls on either class.

/// `handle_methods!(Class, field)`: those methods of `Class`, whose `field` derefs to a
/// `QueueHandle`.
macro_rules! handle_methods {
    ($class:ident, $field:ident) => {
        #[napi]
        impl $class {
            #[napi]
            pub async fn wait_until_ready(&self, timeout_ms: u32) -> napi::Result<()> {
                self.$field
                    .wait_until_ready(std::time::Duration::from_millis(u64::from(timeout_ms)))
                    .await
                    .napi()
            }

            #[napi]
            pub async fn update_progress(
                &self,
                job_id: String,
                progress_json: String,
            ) -> napi::Result<()> {
                self.$field
                    .update_progress(&job_id, &progress_json)
                    .await
                    .napi()
            }

            #[napi]
            pub async fn add_log(
                &self,
                job_id: String,
                line: String,
                keep_logs: Option<u32>,
            ) -> napi::Result<u32> {
                self.$field
                    .add_log(&job_id, &line, keep_logs.map(u64::from))
                    .await
                    .map(|n| n as u32)
                    .napi()
            }

            #[napi]
            pub async fn update_data(&self, job_id: String, data_json: String) -> napi::Result<()> {
                self.$field.update_data(&job_id, &data_json).await.napi()
            }

            #[napi]
            pub async fn children_values(
                &self,
                job_id: String,
            ) -> napi::Result<std::collections::HashMap<String, String>> {
                self.$field.children_values(&job_id).await.napi()
            }

            #[napi]
            pub async fn dependencies_count(&self, job_id: String) -> napi::Result<Vec<u32>> {
                let (pending, processed) = self.$field.dependencies_count(&job_id).await.napi()?;
                Ok(vec![pending as u32, processed as u32])
            }
        }
    };
}

pub(crate) use handle_methods;
