//! Conversions between protocol types and JavaScript values.

use crate::protocol::error::ChannelError;
use crate::protocol::message::Message;
use crate::protocol::options::{self, RawOption};
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
    /// Error responses only, when the peer sent one: a machine-readable code (`error_code` on
    /// disk; an extension, see PROTOCOL-EXTENSIONS.md).
    pub error_code: Option<String>,
    /// Error responses only, when the peer sent it: any JSON detail (`error_data` on disk).
    #[napi(ts_type = "any")]
    pub error_data: Option<JsonPayload>,
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
            error_code: message.error_code,
            error_data: message.error_data.map(JsonPayload),
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

/// A short description of a JavaScript value for error messages: `"100" (a string)`, `null`,
/// `a function`.
pub fn describe_value(value: &Unknown<'_>) -> String {
    let described = (|| -> Result<String> {
        Ok(match value.get_type()? {
            ValueType::Undefined => "undefined".into(),
            ValueType::Null => "null".into(),
            ValueType::Boolean => unsafe { value.cast::<bool>()? }.to_string(),
            ValueType::Number => format!("{}", unsafe { value.cast::<f64>()? }),
            ValueType::String => {
                let text: String = unsafe { value.cast()? };
                let mut quoted = serde_json::to_string(&text).unwrap_or_default();
                if quoted.len() > 40 {
                    quoted.truncate(37);
                    quoted.push_str("...");
                }
                format!("{quoted} (a string)")
            }
            ValueType::Object if value.is_array()? => "an array".into(),
            ValueType::Object => "an object".into(),
            ValueType::Function => "a function".into(),
            ValueType::Symbol => "a symbol".into(),
            ValueType::BigInt => "a BigInt".into(),
            _ => "a value of another type".into(),
        })
    })();
    described.unwrap_or_else(|_| "an unreadable value".into())
}

/// A number argument that may be left out (`undefined` or `null`); anything else but a number
/// is refused by `check` with its description.
pub fn optional_number(
    value: Option<Unknown<'_>>,
    refuse: impl FnOnce(String) -> Error<Code>,
) -> JsResult<Option<f64>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.get_type() {
        Ok(ValueType::Undefined | ValueType::Null) => Ok(None),
        Ok(ValueType::Number) => Ok(Some(
            unsafe { value.cast::<f64>() }.map_err(|e| invalid(e.reason))?,
        )),
        _ => Err(refuse(describe_value(&value))),
    }
}

/// A timeout argument in milliseconds (`undefined`: the default), checked by the core.
pub fn parse_timeout(value: Option<Unknown<'_>>, argument: &str) -> JsResult<std::time::Duration> {
    let ms = optional_number(value, |got| {
        invalid(format!(
            "{argument} must be a finite number of milliseconds >= 0, got {got}"
        ))
    })?;
    options::parse_timeout(ms, argument).map_err(to_js_error)
}

/// Channel options as the caller passed them, checked by the core (one place for every rule).
pub fn parse_channel_options(
    value: Option<Unknown<'_>>,
) -> JsResult<crate::protocol::channel::ChannelOptions> {
    let Some(value) = value else {
        return Ok(Default::default());
    };
    let kind = value.get_type().map_err(|e| invalid(e.reason))?;
    match kind {
        ValueType::Undefined | ValueType::Null => return Ok(Default::default()),
        ValueType::Object if !value.is_array().unwrap_or(false) => {}
        _ => {
            return Err(invalid(format!(
                "options must be an object, got {}",
                describe_value(&value)
            )))
        }
    }
    let object: Object = unsafe { value.cast() }.map_err(|e| invalid(e.reason))?;
    let names = Object::keys(&object).map_err(|e| invalid(e.reason))?;
    let mut raw = Vec::with_capacity(names.len());
    for name in names {
        let item: Unknown = object
            .get_named_property(&name)
            .map_err(|e| invalid(e.reason))?;
        let option = match item.get_type().map_err(|e| invalid(e.reason))? {
            ValueType::Undefined => RawOption::Missing,
            ValueType::Number => {
                RawOption::Number(unsafe { item.cast::<f64>() }.map_err(|e| invalid(e.reason))?)
            }
            ValueType::Boolean => {
                RawOption::Bool(unsafe { item.cast::<bool>() }.map_err(|e| invalid(e.reason))?)
            }
            _ => RawOption::Other(describe_value(&item)),
        };
        raw.push((name, option));
    }
    options::parse_options(raw).map_err(to_js_error)
}
