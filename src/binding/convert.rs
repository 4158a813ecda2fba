//! Conversions between protocol types and JavaScript values.

use crate::protocol::error::ChannelError;
use crate::protocol::message::Message;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use std::ptr;

/// A message as JavaScript sees it. On disk `replyTo` is `reply_to`; the other names are the same.
/// Optional fields are absent (not `undefined`-valued) when the message does not carry them.
#[napi(object)]
pub struct ChannelMessage {
    /// A v4 UUID, lowercase with dashes.
    pub id: String,
    /// Milliseconds since the Unix epoch when the sender made the message.
    pub timestamp: f64,
    /// `"request"`, `"response"` or `"event"`.
    #[napi(js_name = "type", ts_type = "'request' | 'response' | 'event'")]
    pub kind: String,
    /// Requests: the method name. Events: the event name.
    pub method: Option<String>,
    /// Responses: the `id` of the request answered (`reply_to` on disk).
    pub reply_to: Option<String>,
    /// Request params, response result or event data; `null` in an error response.
    /// Integers beyond 2^53 lose precision, as with `JSON.parse`.
    pub payload: serde_json::Value,
    /// Error responses only: the error text.
    pub error: Option<String>,
}

impl From<Message> for ChannelMessage {
    fn from(message: Message) -> Self {
        ChannelMessage {
            id: message.id,
            timestamp: message.timestamp as f64,
            kind: message.kind.as_str().to_owned(),
            method: message.method,
            reply_to: message.reply_to,
            payload: message.payload,
            error: message.error,
        }
    }
}

/// `napi::Error` with a string status, which napi-rs exposes as `error.code`.
pub struct Code(pub String);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Status> for Code {
    fn from(status: Status) -> Self {
        Code(status.as_ref().to_owned())
    }
}

pub type JsResult<T> = Result<T, Code>;

pub fn to_js_error(error: ChannelError) -> Error<Code> {
    Error::new(Code(error.code().to_owned()), error.to_string())
}

pub fn invalid(reason: impl Into<String>) -> Error<Code> {
    to_js_error(ChannelError::Invalid(reason.into()))
}

/// A JavaScript `Error` with `code` set, for rejecting promises from Rust.
pub fn create_error(env: sys::napi_env, code: &str, message: &str) -> Result<sys::napi_value> {
    unsafe {
        let code = String::to_napi_value(env, code.to_owned())?;
        let message = String::to_napi_value(env, message.to_owned())?;
        let mut error = ptr::null_mut();
        check_status!(sys::napi_create_error(env, code, message, &mut error))?;
        Ok(error)
    }
}

pub fn channel_error_value(env: sys::napi_env, error: &ChannelError) -> Result<sys::napi_value> {
    create_error(env, error.code(), &error.to_string())
}

pub fn message_value(env: sys::napi_env, message: Message) -> Result<sys::napi_value> {
    unsafe { ChannelMessage::to_napi_value(env, message.into()) }
}

/// Parses the JSON text the JS layer made of a payload (it has already refused what JSON cannot
/// hold). A missing payload is `null`.
pub fn parse_payload(json: Option<String>, argument: &str) -> JsResult<serde_json::Value> {
    match json {
        None => Ok(serde_json::Value::Null),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            if e.to_string().contains("recursion limit") {
                invalid(format!(
                    "{argument} is nested deeper than {} levels, which the reference reader cannot read",
                    crate::protocol::message::MAX_PAYLOAD_DEPTH
                ))
            } else {
                invalid(format!("{argument} is not valid JSON text ({e})"))
            }
        }),
    }
}

/// A timeout argument in milliseconds: finite, not negative, at most what `setTimeout` allows.
pub fn parse_timeout(
    value: Option<f64>,
    default_ms: u64,
    argument: &str,
) -> JsResult<std::time::Duration> {
    const MAX_MS: f64 = 2_147_483_647.0;
    let ms = value.unwrap_or(default_ms as f64);
    if !ms.is_finite() || ms < 0.0 {
        return Err(invalid(format!(
            "{argument} must be a finite number of milliseconds >= 0, got {ms}"
        )));
    }
    Ok(std::time::Duration::from_millis(ms.min(MAX_MS) as u64))
}
