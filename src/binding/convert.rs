//! Conversions between protocol types and JavaScript values.

use crate::protocol::error::ChannelError;
use crate::protocol::message::Message;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use std::ptr;

/// A message as JavaScript sees it. On disk `replyTo` is `reply_to`; the other names are the same.
/// Optional fields are absent (not `undefined`-valued) when the message does not carry them.
#[napi(object, object_from_js = false)]
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
    #[napi(ts_type = "any")]
    pub payload: JsonPayload,
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
            payload: JsonPayload(message.payload),
            error: message.error,
        }
    }
}

/// A JSON value as JavaScript's `JSON.parse` would give it: every number a `number` (napi-rs's
/// own conversion would turn integers beyond 2^53 into `BigInt`, which JSON code cannot handle).
pub struct JsonPayload(pub serde_json::Value);

impl ToNapiValue for JsonPayload {
    unsafe fn to_napi_value(env: sys::napi_env, payload: Self) -> Result<sys::napi_value> {
        use serde_json::Value;
        match payload.0 {
            Value::Null => Null::to_napi_value(env, Null),
            Value::Bool(flag) => bool::to_napi_value(env, flag),
            Value::Number(number) => f64::to_napi_value(env, number.as_f64().unwrap_or(f64::NAN)),
            Value::String(text) => String::to_napi_value(env, text),
            composite => json_parse(env, &composite.to_string()),
        }
    }
}

/// Calls the global `JSON.parse` on `text`.
unsafe fn json_parse(env: sys::napi_env, text: &str) -> Result<sys::napi_value> {
    let mut global = ptr::null_mut();
    check_status!(sys::napi_get_global(env, &mut global))?;
    let mut json = ptr::null_mut();
    check_status!(sys::napi_get_named_property(
        env,
        global,
        c"JSON".as_ptr(),
        &mut json
    ))?;
    let mut parse = ptr::null_mut();
    check_status!(sys::napi_get_named_property(
        env,
        json,
        c"parse".as_ptr(),
        &mut parse
    ))?;
    let argument = String::to_napi_value(env, text.to_owned())?;
    let mut result = ptr::null_mut();
    check_status!(sys::napi_call_function(
        env,
        json,
        parse,
        1,
        &argument,
        &mut result
    ))?;
    Ok(result)
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

/// A timeout argument in milliseconds: finite and not negative; longer than `setTimeout` allows
/// (about 24.8 days) is capped there.
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
