//! The deliveries of the progress, cancellation and presence conventions
//! (PROTOCOL-EXTENSIONS.md) as the JS layer receives them, beside a batch's messages:
//! `progress: [{ token, message }]`, `cancels: [message]`, `peers: [PeerStatus]`, each present
//! only when not empty.

use super::convert::message_value;
use crate::protocol::channel::Delivery;
use crate::protocol::message::Message;
use crate::protocol::presence::PeerInfo;
use crate::protocol::replies::ReplyStats;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use std::ptr;

/// What is known of the other side of the channel (PROTOCOL-EXTENSIONS.md, "Presence").
#[napi(object, object_from_js = false)]
pub struct PeerStatus {
    /// `'unknown'` until it announces itself or its heartbeat is seen; `'ready'`; `'gone'`
    /// after its shutdown, a lapsed heartbeat, or (same host) its process ended.
    #[napi(ts_type = "'unknown' | 'ready' | 'gone'")]
    pub state: String,
    /// Its process id, when it said (announcement or acknowledgement file).
    pub pid: Option<u32>,
    /// Its host name, when it said.
    pub host: Option<String>,
    /// The request methods it announced (`available_methods` of its `*_ready`).
    pub methods: Option<Vec<String>>,
}

impl From<PeerInfo> for PeerStatus {
    fn from(info: PeerInfo) -> Self {
        PeerStatus {
            state: info.state.as_str().to_owned(),
            pid: info.pid,
            host: info.host,
            methods: info.methods,
        }
    }
}

/// What the channel dropped instead of handing out: replies whose wait had ended or that belong
/// to an earlier session, and requests that must not run again.
#[napi(object, object_from_js = false)]
pub struct ChannelStats {
    /// Responses to requests whose wait had ended (cancelled, timed out, or already answered:
    /// a late reply or a duplicate), or to an earlier session's requests (a reopened channel),
    /// dropped instead of resolving anything or reaching `recv()`.
    pub dropped_responses: f64,
    /// `task.progress` updates for `request()` calls that had ended or for an earlier
    /// session's requests, dropped.
    pub dropped_progress: f64,
    /// Requests not handed out: this channel's earlier session had answered them (a restarted
    /// backend), or their sender cancelled them in the same read.
    pub dropped_requests: f64,
}

impl From<ReplyStats> for ChannelStats {
    fn from(stats: ReplyStats) -> Self {
        ChannelStats {
            dropped_responses: stats.dropped_responses as f64,
            dropped_progress: stats.dropped_progress as f64,
            dropped_requests: stats.dropped_requests as f64,
        }
    }
}

#[derive(Default)]
pub struct Extensions {
    progress: Vec<(u64, Message)>,
    cancels: Vec<Message>,
    peers: Vec<PeerInfo>,
}

impl Extensions {
    /// Takes a delivery that is none of the base kinds.
    pub fn add(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Progress { token, message } => self.progress.push((token, message)),
            Delivery::Cancel(message) => self.cancels.push(message),
            Delivery::Peer(info) => self.peers.push(info),
            _ => {}
        }
    }
}

fn array(env: sys::napi_env, values: Vec<sys::napi_value>) -> Result<sys::napi_value> {
    let mut array = ptr::null_mut();
    check_status!(unsafe { sys::napi_create_array_with_length(env, values.len(), &mut array) })?;
    for (index, value) in values.into_iter().enumerate() {
        check_status!(unsafe { sys::napi_set_element(env, array, index as u32, value) })?;
    }
    Ok(array)
}

fn set(
    env: sys::napi_env,
    object: sys::napi_value,
    name: &std::ffi::CStr,
    value: sys::napi_value,
) -> Result<()> {
    check_status!(unsafe { sys::napi_set_named_property(env, object, name.as_ptr(), value) })
}

/// Sets the non-empty extension arrays on a delivery batch object.
pub fn set_extensions(
    env: sys::napi_env,
    object: sys::napi_value,
    extensions: Extensions,
) -> Result<()> {
    if !extensions.progress.is_empty() {
        let mut values = Vec::with_capacity(extensions.progress.len());
        for (token, message) in extensions.progress {
            let mut entry = ptr::null_mut();
            check_status!(unsafe { sys::napi_create_object(env, &mut entry) })?;
            set(env, entry, c"token", unsafe {
                f64::to_napi_value(env, token as f64)
            }?)?;
            set(env, entry, c"message", message_value(env, message)?)?;
            values.push(entry);
        }
        set(env, object, c"progress", array(env, values)?)?;
    }
    if !extensions.cancels.is_empty() {
        let values = extensions
            .cancels
            .into_iter()
            .map(|message| message_value(env, message))
            .collect::<Result<Vec<_>>>()?;
        set(env, object, c"cancels", array(env, values)?)?;
    }
    if !extensions.peers.is_empty() {
        let values = extensions
            .peers
            .into_iter()
            .map(|info| unsafe { PeerStatus::to_napi_value(env, info.into()) })
            .collect::<Result<Vec<_>>>()?;
        set(env, object, c"peers", array(env, values)?)?;
    }
    Ok(())
}

/// This host's name, as peers announce it (`host` of `*_ready` and of acknowledgement files;
/// Python's `socket.gethostname()`).
#[napi]
#[cfg_attr(test, allow(dead_code))]
pub fn host_name() -> String {
    crate::protocol::platform::host_name().to_owned()
}
