//! `NativeFileChannel`: the protocol core's `Channel` as a JavaScript class. The public
//! `FileChannel` (index.js) wraps it, turning payloads into JSON text and adding events.

use super::bridge::{Bridge, DeliveryBatch};
use super::convert::{
    invalid, parse_channel_options, parse_payload, parse_timeout, to_js_error, ChannelMessage, Code,
};
use super::extensions::{ChannelStats, PeerStatus};
use crate::protocol::channel::{Channel, Listening, Role};
use crate::protocol::error::ChannelError;
use crate::protocol::message::Message;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::path::PathBuf;
use std::sync::Arc;

/// Options of a channel. Every field is optional; the defaults are the reference's. (This
/// declares the type for TypeScript; the values are checked by the core, `protocol::options`,
/// and the defaults are exported as `DEFAULTS`.)
#[napi(object)]
#[allow(dead_code)]
pub struct ChannelOptions {
    /// Messages kept in our outbox; older ones are dropped when it is full. Default 100.
    pub max_messages: Option<u32>,
    /// How long a synchronous send (and `close()`, for what was sent before it) waits for the
    /// outbox lock before failing with `ELOCKED`. Default 500.
    pub lock_timeout_ms: Option<u32>,
    /// A lock file older than this is left by a dead writer and is taken over. Default 5000.
    pub stale_lock_ms: Option<u32>,
    /// The largest message file read whole (default 64 MiB): a larger inbox is read streamed, its
    /// messages that do not fit skipped with `EFBIG`; a send that would make our outbox larger is
    /// refused with `EFBIG`.
    pub max_file_bytes: Option<f64>,
    /// Watch the directory for changes (default `true`); `false` polls every `pollIntervalMs`.
    pub watch: Option<bool>,
    /// Polling period without a watcher. With one, the inbox is re-read anyway every 2 s (or
    /// `pollIntervalMs` if longer; longer still with hundreds of channels). Default 100.
    pub poll_interval_ms: Option<u32>,
    /// Messages kept for `recv()` when nobody takes them; beyond this the oldest are dropped
    /// and reported with `ELOST`. Default 10000.
    pub max_queued: Option<u32>,
    /// Permission bits of files this channel creates. Default `0o600`.
    pub mode: Option<u32>,
    /// Permission bits of directories this channel creates. Default `0o700`.
    pub dir_mode: Option<u32>,
    /// Open a directory owned by another user or writable by group or others (refused with
    /// `EPERM` by default, as ssh refuses a loose `~/.ssh`). Default `false`.
    pub allow_insecure: Option<bool>,
    /// Lossless delivery between ipckit-for-Node peers (see PROTOCOL-EXTENSIONS.md): as a reader,
    /// publish how far we have read; as a writer, keep what live readers have not read.
    /// Default `true`; the Python reference is unaffected either way.
    pub acknowledge: Option<bool>,
    /// An acknowledging reader silent for longer than this stops holding messages back.
    /// Default 10000.
    pub ack_timeout_ms: Option<u32>,
    /// Most messages our outbox may hold for slow acknowledging readers; beyond it a send
    /// throws `ENOBUFS` (`sendAsync` and `request` wait instead). Default 5000.
    pub max_backlog: Option<u32>,
}

/// Who listens on a channel; every field defaults to `false`.
#[napi(object)]
pub struct ListeningInput {
    /// Requests go to listeners (or handlers), not to `recv()`.
    pub requests: Option<bool>,
    /// Responses without a pending wait go to listeners.
    pub responses: Option<bool>,
    /// Events go to listeners.
    pub events: Option<bool>,
    /// Problems go to `'error'` listeners instead of being thrown by `recv()`.
    pub errors: Option<bool>,
    /// Someone follows the peer's presence: the inbox is read for its announcements.
    pub presence: Option<bool>,
    /// Request handlers run here: `task.cancel` events go to them.
    pub cancels: Option<bool>,
}

impl From<ListeningInput> for Listening {
    fn from(input: ListeningInput) -> Self {
        Listening {
            requests: input.requests.unwrap_or(false),
            responses: input.responses.unwrap_or(false),
            events: input.events.unwrap_or(false),
            errors: input.errors.unwrap_or(false),
            presence: input.presence.unwrap_or(false),
            cancels: input.cancels.unwrap_or(false),
        }
    }
}

/// The native half of `FileChannel`. Payload arguments are JSON text; use `FileChannel`.
#[napi]
pub struct NativeFileChannel {
    channel: Arc<Channel>,
    bridge: Arc<Bridge>,
}

#[napi]
impl NativeFileChannel {
    /// Opens or creates the channel in `dir` as `role` (`"frontend"` or `"backend"`).
    /// `onDelivery` receives messages for listeners and problems for `'error'`.
    #[napi(
        constructor,
        ts_args_type = "dir: string, role: 'frontend' | 'backend', onDelivery: (batch: { messages: ChannelMessage[]; errors: Error[] }) => void, options?: ChannelOptions | undefined | null"
    )]
    pub fn new(
        env: Env,
        dir: String,
        role: String,
        on_delivery: Function<'_, DeliveryBatch, Unknown<'static>>,
        options: Option<Unknown<'_>>,
    ) -> Result<Self, Code> {
        let role = match role.as_str() {
            "frontend" => Role::Frontend,
            "backend" => Role::Backend,
            other => {
                return Err(invalid(format!(
                    "role must be \"frontend\" or \"backend\", got {other:?}"
                )))
            }
        };
        if dir.is_empty() {
            return Err(invalid("dir must be a non-empty path"));
        }
        let options = parse_channel_options(options)?;
        let bridge = Arc::new(Bridge::default());
        bridge
            .connect(&env, on_delivery)
            .map_err(|e| invalid(format!("onDelivery: {}", e.reason)))?;
        let channel = Channel::open_with_sink(&PathBuf::from(dir), role, options, bridge.clone())
            .map_err(to_js_error)?;
        let taker = Arc::downgrade(&channel);
        bridge.on_taken(move |count| {
            if let Some(channel) = taker.upgrade() {
                channel.note_taken(count);
            }
        });
        Ok(NativeFileChannel { channel, bridge })
    }

    /// The channel directory, as given.
    #[napi(getter)]
    pub fn dir(&self) -> String {
        self.channel.dir().to_string_lossy().into_owned()
    }

    /// `"frontend"` or `"backend"`.
    #[napi(getter, ts_return_type = "'frontend' | 'backend'")]
    pub fn role(&self) -> &'static str {
        self.channel.role().as_str()
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.channel.is_closed()
    }

    /// Number of `waitResponse`/`request` promises not yet settled.
    #[napi(getter)]
    pub fn pending_waits(&self) -> u32 {
        self.channel.pending_waits() as u32
    }

    /// Sends a request; returns its id.
    #[napi]
    pub fn send_request(
        &self,
        method: String,
        params_json: Option<String>,
    ) -> Result<String, Code> {
        let params = parse_payload(params_json, "params")?;
        self.channel
            .send_request(&method, params)
            .map_err(to_js_error)
    }

    /// Sends the response to request `requestId`.
    #[napi]
    pub fn send_response(
        &self,
        request_id: String,
        result_json: Option<String>,
    ) -> Result<(), Code> {
        let result = parse_payload(result_json, "result")?;
        self.channel
            .send_response(&request_id, result)
            .map_err(to_js_error)
    }

    /// Sends an error response to request `requestId`, with the optional extension fields
    /// `error_code` and `error_data` (JSON text).
    #[napi]
    pub fn send_error(
        &self,
        request_id: String,
        message: String,
        code: Option<String>,
        data_json: Option<String>,
    ) -> Result<(), Code> {
        if code.is_none() && data_json.is_none() {
            return self
                .channel
                .send_error(&request_id, &message)
                .map_err(to_js_error);
        }
        let mut response = Message::error_response(&request_id, &message);
        response.error_code = code;
        response.error_data = data_json
            .map(|text| parse_payload(Some(text), "data"))
            .transpose()?;
        self.channel.send(&response).map_err(to_js_error)
    }

    /// Sends an event.
    #[napi]
    pub fn send_event(&self, name: String, payload_json: Option<String>) -> Result<(), Code> {
        let payload = parse_payload(payload_json, "payload")?;
        self.channel.send_event(&name, payload).map_err(to_js_error)
    }

    /// New messages not taken by a wait or a listener, oldest first, at most `max`.
    #[napi]
    pub fn recv(&self, max: Option<u32>) -> Result<Vec<ChannelMessage>, Code> {
        let limit = max.map_or(usize::MAX, |m| m as usize);
        let messages = self.channel.recv(limit).map_err(to_js_error)?;
        Ok(messages.into_iter().map(ChannelMessage::from).collect())
    }

    /// Resolves with the response to `requestId` (an error response too), or rejects with
    /// `ETIMEDOUT` after `timeoutMs` (default `DEFAULTS.timeoutMs`).
    #[napi(ts_return_type = "Promise<ChannelMessage>")]
    pub fn wait_response(
        &self,
        env: Env,
        request_id: String,
        timeout_ms: Option<Unknown<'_>>,
    ) -> Result<Unknown<'_>, Code> {
        let timeout = parse_timeout(timeout_ms, "timeoutMs")?;
        self.start_wait(&env, |channel| {
            channel
                .wait_response(&request_id, timeout)
                .map(|token| ((), token))
        })
        .map(|(promise, ())| promise)
    }

    /// Like `waitResponse`, but returns `{ token, response }` so that this one wait can be
    /// cancelled with `cancelWait(token, ...)`.
    #[napi(ts_return_type = "{ token: number; response: Promise<ChannelMessage> }")]
    pub fn begin_wait(
        &self,
        env: Env,
        request_id: String,
        timeout_ms: Option<Unknown<'_>>,
    ) -> Result<Object<'_>, Code> {
        let timeout = parse_timeout(timeout_ms, "timeoutMs")?;
        let (promise, token) = self.start_wait(&env, |channel| {
            channel
                .wait_response(&request_id, timeout)
                .map(|token| (token, token))
        })?;
        pending_object(&env, None, token, promise)
    }

    /// Sends a request with its wait registered first. Returns `{ id, token, response }` where
    /// `response` resolves with the response message (an error response too) or rejects
    /// (`ETIMEDOUT`, `ECLOSED`, ...).
    #[napi(ts_return_type = "{ id: string; token: number; response: Promise<ChannelMessage> }")]
    pub fn begin_request(
        &self,
        env: Env,
        method: String,
        params_json: Option<String>,
        timeout_ms: Option<Unknown<'_>>,
    ) -> Result<Object<'_>, Code> {
        let timeout = parse_timeout(timeout_ms, "timeoutMs")?;
        let params = parse_payload(params_json, "params")?;
        // Written by the writer thread: this returns at once, the wait already registered.
        let (promise, (id, token)) = self.start_wait(&env, |channel| {
            channel
                .begin_request_queued(&method, params, timeout)
                .map(|(id, token)| ((id, token), token))
        })?;
        pending_object(&env, Some(id), token, promise)
    }

    /// Queues a message for the writer thread and returns at once. The promise resolves with
    /// the message id once it is written, or rejects after `timeoutMs` with why it could not be
    /// (`ELOCKED`, `EBUSY`, `ENOBUFS`: retried until then), or at once with an error that
    /// retrying cannot mend. `kind`: `'request'` (target: the method), `'response'` or
    /// `'error'` (target: the request id; for `'error'` the payload is the error text, with
    /// the optional `errorCode` and `errorDataJson`), `'event'` (target: the name).
    #[napi(ts_return_type = "Promise<string>")]
    #[allow(clippy::too_many_arguments)]
    pub fn send_queued(
        &self,
        env: Env,
        kind: String,
        target: String,
        payload_json: Option<String>,
        timeout_ms: Option<Unknown<'_>>,
        error_code: Option<String>,
        error_data_json: Option<String>,
    ) -> Result<Unknown<'_>, Code> {
        let timeout = parse_timeout(timeout_ms, "timeoutMs")?;
        let message = queued_message(&kind, &target, payload_json, error_code, error_data_json)?;
        self.start_wait(&env, |channel| {
            channel
                .enqueue_send(message, timeout)
                .map(|token| ((), token))
        })
        .map(|(promise, ())| promise)
    }

    /// A request handler's answer (`kind` `'response'` or `'error'`, as `sendQueued`), queued
    /// for the writer thread with no promise: nothing comes back once it is written, so the
    /// JavaScript thread is not woken for it; a failure to write it within `timeoutMs` comes
    /// back as a problem (`'error'` listeners). Throws at once for a message that cannot be sent.
    #[napi]
    pub fn send_reply_queued(
        &self,
        kind: String,
        request_id: String,
        payload_json: Option<String>,
        timeout_ms: Option<Unknown<'_>>,
        error_code: Option<String>,
        error_data_json: Option<String>,
    ) -> Result<(), Code> {
        if kind != "response" && kind != "error" {
            return Err(invalid(format!(
                "kind must be 'response' or 'error', not '{kind}'"
            )));
        }
        let timeout = parse_timeout(timeout_ms, "timeoutMs")?;
        let message = queued_message(
            &kind,
            &request_id,
            payload_json,
            error_code,
            error_data_json,
        )?;
        self.channel
            .enqueue_reported(message, timeout)
            .map_err(to_js_error)
    }

    /// Queues one event `name` per payload of `payloadsJson` (a JSON array) for the writer
    /// thread, in order, with one promise: it resolves with the last id once all are written,
    /// or rejects with the first failure (as `sendQueued`).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn send_events_queued(
        &self,
        env: Env,
        name: String,
        payloads_json: String,
        timeout_ms: Option<Unknown<'_>>,
    ) -> Result<Unknown<'_>, Code> {
        let timeout = parse_timeout(timeout_ms, "timeoutMs")?;
        let payloads: Vec<serde_json::Value> = serde_json::from_str(&payloads_json)
            .map_err(|e| invalid(format!("payloads are not a JSON array ({e})")))?;
        if payloads.is_empty() {
            return Err(invalid("payloads must hold at least one payload"));
        }
        let messages = payloads
            .into_iter()
            .map(|payload| Message::event(&name, payload))
            .collect();
        self.start_wait(&env, |channel| {
            channel
                .enqueue_sends(messages, timeout)
                .map(|token| ((), token))
        })
        .map(|(promise, ())| promise)
    }

    /// Rejects the pending wait `token` (from `beginWait`/`beginRequest`) with `code` and
    /// `message`. Returns whether it was still pending.
    #[napi]
    pub fn cancel_wait(&self, env: Env, token: f64, code: String, message: String) -> bool {
        let token = token as u64;
        let pending = self.channel.cancel_token(token);
        if pending {
            self.bridge.reject(env.raw(), token, &code, &message);
        }
        pending
    }

    /// Puts messages (a JSON array in the on-disk form) back at the front of the `recv()` queue.
    #[napi]
    pub fn requeue(&self, messages_json: String) -> Result<(), Code> {
        let messages = serde_json::from_str(&messages_json)
            .map_err(|e| invalid(format!("messages are not a valid message array ({e})")))?;
        self.channel.requeue(messages).map_err(to_js_error)
    }

    /// Tells the core who listens (see `ListeningInput`): messages of the kinds with
    /// listeners bypass `recv()`.
    #[napi]
    pub fn set_listening(&self, env: Env, listening: ListeningInput) -> Result<(), Code> {
        let listening = Listening::from(listening);
        self.channel.set_listening(listening).map_err(to_js_error)?;
        let listens = listening.requests
            || listening.responses
            || listening.events
            || listening.errors
            || listening.presence;
        self.bridge.set_listening(env.raw(), listens);
        Ok(())
    }

    /// What is known of the peer now (reads the inbox and the heartbeats of our outbox's
    /// readers); a change is also delivered to `onDelivery` (`peers`).
    #[napi]
    pub fn check_peer(&self) -> Result<PeerStatus, Code> {
        let info = self.channel.check_peer().map_err(to_js_error)?;
        Ok(info.into())
    }

    /// Responses and progress updates dropped because their wait had ended.
    #[napi]
    pub fn stats(&self) -> ChannelStats {
        self.channel.reply_stats().into()
    }

    /// Keep the process alive while something waits or listens (the default).
    #[napi(js_name = "ref")]
    pub fn keep_alive(&self, env: Env) {
        self.bridge.set_unref(env.raw(), false);
    }

    /// Let the process exit even while something waits or listens.
    #[napi]
    pub fn unref(&self, env: Env) {
        self.bridge.set_unref(env.raw(), true);
    }

    /// Empties both message files (each under its writer's lock).
    #[napi]
    pub fn clear(&self) -> Result<(), Code> {
        self.channel.clear().map_err(to_js_error)
    }

    /// Before close(): writes what was sent and not written yet, on this thread, waiting for a
    /// locked outbox as a synchronous send does; throws `ELOST` for what could not be written.
    #[napi]
    pub fn write_sent_before_close(&self) -> Result<(), Code> {
        self.channel.write_sent_before_close().map_err(to_js_error)
    }

    /// Writes the sends still queued for the writer thread, now, on this thread (for the
    /// process's `'exit'`); returns how many could not be written.
    #[napi]
    pub fn flush_before_exit(&self) -> u32 {
        self.channel.flush_before_exit() as u32
    }

    /// Rejects pending waits with `ECLOSED`, stops watching and releases every native callback.
    /// Idempotent.
    #[napi]
    pub fn close(&self, env: Env) {
        let closed = ChannelError::Closed;
        for token in self.channel.close() {
            self.bridge
                .reject(env.raw(), token, closed.code(), &closed.to_string());
        }
        self.bridge.disconnect(env.raw());
    }

    fn start_wait<T>(
        &self,
        env: &Env,
        register: impl FnOnce(&Arc<Channel>) -> crate::protocol::error::Result<(T, u64)>,
    ) -> Result<(Unknown<'_>, T), Code> {
        let (value, token) = register(&self.channel).map_err(to_js_error)?;
        let promise = self.bridge.add_wait(env, token).map_err(|e| {
            self.channel.cancel_token(token);
            invalid(e.reason)
        })?;
        let promise = unsafe { Unknown::from_napi_value(env.raw(), promise) }
            .map_err(|e| invalid(e.reason))?;
        Ok((promise, value))
    }
}

impl Drop for NativeFileChannel {
    fn drop(&mut self) {
        // The delivery callback keeps this object reachable until close(), so this runs after
        // close() or when the environment is torn down (a terminated worker): stop the
        // dispatcher; promises still pending die with their environment.
        self.channel.close();
    }
}

/// `{ id?, token, response }` for the `begin*` methods.
fn pending_object<'a>(
    env: &Env,
    id: Option<String>,
    token: u64,
    response: Unknown<'_>,
) -> Result<Object<'a>, Code> {
    let convert = |e: napi::Error| invalid(e.reason);
    let mut object = Object::new(env).map_err(convert)?;
    if let Some(id) = id {
        object.set("id", id).map_err(convert)?;
    }
    object.set("token", token as f64).map_err(convert)?;
    object.set("response", response).map_err(convert)?;
    Ok(object)
}

/// The message of a queued send: `kind` ('request', 'response', 'error' or 'event') to
/// `target` (a method, request id or event name), its payload as JSON text.
fn queued_message(
    kind: &str,
    target: &str,
    payload_json: Option<String>,
    error_code: Option<String>,
    error_data_json: Option<String>,
) -> Result<Message, Code> {
    Ok(match kind {
        "request" => Message::request(target, parse_payload(payload_json, "params")?),
        "response" => Message::response(target, parse_payload(payload_json, "result")?),
        "event" => Message::event(target, parse_payload(payload_json, "payload")?),
        "error" => {
            let text: String = match parse_payload(payload_json, "message")? {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            let mut response = Message::error_response(target, &text);
            response.error_code = error_code;
            response.error_data = error_data_json
                .map(|text| parse_payload(Some(text), "data"))
                .transpose()?;
            response
        }
        other => {
            return Err(invalid(format!(
                "kind must be 'request', 'response', 'error' or 'event', not '{other}'"
            )))
        }
    })
}
