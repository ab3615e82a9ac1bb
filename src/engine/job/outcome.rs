//! [`Outcome`]: what became of one attempt of a job. The one outcome type of the crate: the
//! binding builds it from what the JavaScript processor wrapper reports, the worker decides
//! on it (retry, fail, complete) and the finishing script writes it.

/// What the processor made of a job.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `returnvalue` is JSON text (`null` for undefined).
    Completed {
        /// The result, JSON.
        returnvalue: String,
    },
    /// The processor threw (or the worker fails the job without running it).
    Failed {
        /// The error message (stored as `failedReason`).
        message: String,
        /// The error's stack, appended to the stored stacktrace.
        stack: Option<String>,
        /// An UnrecoverableError: no retry whatever `attempts` says.
        unrecoverable: bool,
        /// What a custom `backoffStrategy` returned, for non-builtin backoff types
        /// (-1 = do not retry).
        custom_backoff: Option<i64>,
    },
    /// The processor moved the job itself (`moveToDelayed` + DelayedError,
    /// `moveToWaitingChildren` + WaitingChildrenError): nothing to write.
    MovedByProcessor,
    /// The processor hit a manual rate limit (RateLimitError): the job goes back to waiting
    /// without counting the attempt, and this worker fetches nothing until the limit ends.
    RateLimited,
}

impl Outcome {
    /// A plain failure: recoverable, no stack, no custom backoff.
    pub fn failed(message: impl Into<String>) -> Self {
        Outcome::Failed {
            message: message.into(),
            stack: None,
            unrecoverable: false,
            custom_backoff: None,
        }
    }

    /// For a final outcome (one that the finishing script writes): the state it moves the
    /// job to (`completed` / `failed`), BullMQ's command name for error messages and the stored value
    /// (the result JSON, or the failed reason). None for the outcomes the worker does not
    /// finish ([`Outcome::MovedByProcessor`], [`Outcome::RateLimited`]).
    pub fn final_parts(&self) -> Option<(&'static str, &'static str, &str)> {
        match self {
            Outcome::Completed { returnvalue } => {
                Some(("completed", "moveToFinished", returnvalue))
            }
            Outcome::Failed { message, .. } => Some(("failed", "moveToFinished", message)),
            Outcome::MovedByProcessor | Outcome::RateLimited => None,
        }
    }
}
