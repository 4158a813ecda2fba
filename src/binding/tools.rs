//! Constants, option defaults and limits, and the read-only channel views the CLI uses, exported
//! from the core so that JavaScript defines none of them again.
// Everything here is called from JavaScript only (registered by #[napi]); test builds of the crate
// see no caller.
#![allow(dead_code)]

use super::bridge::DeliveryBatch;
use super::convert::{invalid, parse_timeout, to_js_error, Code};
use crate::protocol::channel::{BACKEND_OUTBOX, CHANNEL_INFO, FRONTEND_OUTBOX};
use crate::protocol::inbox::InboxReader;
use crate::protocol::inspect::{
    lock_state, readers, summarize, FileSummary, LockState, ReaderState,
};
use crate::protocol::options::{self, OptionKind, OPTIONS};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Deepest payload nesting the reference (Python) reader can still parse.
#[napi]
pub const MAX_PAYLOAD_DEPTH: u32 = options::MAX_PAYLOAD_DEPTH as u32;

/// How long `request()` and `waitResponse()` wait when no `timeoutMs` is given.
#[napi]
pub const DEFAULT_TIMEOUT_MS: u32 = options::DEFAULT_TIMEOUT_MS as u32;

/// The longest timeout a wait accepts; longer ones are capped to it.
#[napi]
pub const MAX_TIMEOUT_MS: u32 = options::MAX_TIMEOUT_MS as u32;

/// A timeout in milliseconds as the waits take it: `undefined` is the default, longer than
/// `MAX_TIMEOUT_MS` is capped; anything but a finite number >= 0 is `EINVAL` naming `argument`.
#[napi]
pub fn resolve_timeout_ms(value: Option<Unknown<'_>>, argument: String) -> Result<f64, Code> {
    parse_timeout(value, &argument).map(|timeout| timeout.as_millis() as f64)
}

/// One channel option as the core defines it.
#[napi(object, object_from_js = false)]
pub struct OptionSpec {
    /// The option's name in `ChannelOptions`.
    pub name: String,
    /// `"integer"`, `"boolean"` or `"mode"` (permission bits).
    #[napi(ts_type = "'integer' | 'boolean' | 'mode'")]
    pub kind: String,
    /// Smallest accepted value (integers and modes).
    pub min: f64,
    /// Largest accepted value (integers and modes).
    pub max: f64,
    /// The default value.
    #[napi(js_name = "default", ts_type = "number | boolean")]
    pub default_value: Either<f64, bool>,
}

/// Every channel option with its type, range and default, in documentation order.
#[napi]
pub fn channel_option_specs() -> Vec<OptionSpec> {
    OPTIONS
        .iter()
        .map(|spec| OptionSpec {
            name: spec.name.to_owned(),
            kind: match spec.kind {
                OptionKind::Integer => "integer",
                OptionKind::Boolean => "boolean",
                OptionKind::Mode => "mode",
            }
            .to_owned(),
            min: spec.min,
            max: spec.max,
            default_value: match spec.kind {
                OptionKind::Boolean => Either::B(spec.default != 0.0),
                _ => Either::A(spec.default),
            },
        })
        .collect()
}

/// The channel's file names: `{ frontendOutbox, backendOutbox, channelInfo }`.
#[napi(object, object_from_js = false)]
pub struct ChannelFileNames {
    pub frontend_outbox: String,
    pub backend_outbox: String,
    pub channel_info: String,
}

#[napi]
pub fn channel_file_names() -> ChannelFileNames {
    ChannelFileNames {
        frontend_outbox: FRONTEND_OUTBOX.to_owned(),
        backend_outbox: BACKEND_OUTBOX.to_owned(),
        channel_info: CHANNEL_INFO.to_owned(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<FileSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_error: Option<String>,
    lock: LockState,
    readers: Vec<ReaderState>,
}

/// What the message file `file` holds and who reads and writes it, as JSON text:
/// `{ summary?, parseError?, lock, readers }`. Read-only: takes no lock, writes nothing.
#[napi]
pub fn inspect_message_file(file: String) -> String {
    let path = PathBuf::from(&file);
    let defaults = crate::protocol::channel::ChannelOptions::default();
    let (summary, parse_error) = match summarize(&path, defaults.max_file_bytes) {
        Ok(summary) => (summary, None),
        Err(reason) => (None, Some(reason)),
    };
    let ids = summary.as_ref().map(|s| s.ids.as_slice());
    let report = FileReport {
        lock: lock_state(&path.with_extension("lock"), defaults.stale_lock),
        readers: readers(&path, defaults.ack_timeout, ids),
        summary,
        parse_error,
    };
    serde_json::to_string(&report).unwrap_or_default()
}

/// A bystander's reader of one message file: each message once, in file order, with the
/// channel's own reader (its dedupe and loss rules); publishes no acknowledgement.
#[napi]
pub struct NativeFileReader {
    reader: Mutex<InboxReader>,
}

#[napi]
impl NativeFileReader {
    #[napi(constructor)]
    pub fn new(file: String) -> Result<Self, Code> {
        if file.is_empty() {
            return Err(invalid("file must be a non-empty path"));
        }
        let defaults = crate::protocol::channel::ChannelOptions::default();
        Ok(NativeFileReader {
            reader: Mutex::new(InboxReader::new(
                Path::new(&file).to_path_buf(),
                defaults.max_file_bytes,
                defaults.max_messages,
            )),
        })
    }

    /// The messages that are new since the last call, and problems (`EBADMSG`, `ELOST`, ...).
    #[napi(ts_return_type = "{ messages: ChannelMessage[]; errors: Error[] }")]
    pub fn read(&self) -> DeliveryBatch {
        let outcome = self
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .read_new();
        DeliveryBatch {
            messages: outcome.messages,
            problems: outcome.problems,
            ..DeliveryBatch::default()
        }
    }
}

/// Throws `EPERM` when `dir` is owned by another user or writable by group or others (the
/// check a channel makes when it opens, unless `allowInsecure`).
#[napi]
pub fn check_channel_dir(dir: String) -> Result<(), Code> {
    crate::protocol::channel::check_dir_is_private(Path::new(&dir)).map_err(to_js_error)
}

/// How a channel in `dir` replaces its files: `'swap'` (Linux on ext4 and btrfs: renameat2's
/// `RENAME_EXCHANGE`, then the old file removed, which spares the write-back these file systems
/// start on a rename over a file) or `'rename'`. Found by replacing a scratch file there.
#[napi(ts_return_type = "'swap' | 'rename'")]
pub fn probe_replace(dir: String) -> Result<&'static str, Code> {
    use crate::protocol::platform::Replaced;
    match crate::protocol::files::probe_replace(Path::new(&dir)).map_err(to_js_error)? {
        Replaced::Swapped => Ok("swap"),
        Replaced::Renamed => Ok("rename"),
    }
}
