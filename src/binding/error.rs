//! The one conversion from engine errors to JavaScript errors. The message carries the
//! stable code as a prefix (`ERR_AUTH: ...`); the facade (`lib/errors.js`) turns that into a
//! `QueueNativeError` with `err.code`, so the code survives any napi status mapping.

use crate::engine::Error;

pub fn to_napi(err: Error) -> napi::Error {
    napi::Error::new(
        napi::Status::GenericFailure,
        format!("{}: {}", err.code(), err),
    )
}

pub trait IntoNapi<T> {
    fn napi(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for Result<T, Error> {
    fn napi(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}
