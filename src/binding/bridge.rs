//! Carries deliveries from any thread to the JavaScript thread through one threadsafe function
//! per channel, and settles the promises of pending waits there, in Rust, without a JS hop.

use super::convert::{channel_error_value, create_error, message_value};
use super::extensions::{set_extensions, Extensions};
use crate::protocol::channel::{Delivery, DeliverySink};
use crate::protocol::error::ChannelError;
use crate::protocol::message::Message;
use crate::protocol::sync::lock;
use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use std::collections::HashMap;
use std::ptr;
use std::sync::{Arc, Mutex, Weak};

struct PendingWait {
    deferred: sys::napi_deferred,
}

// A napi_deferred is only ever touched on the JavaScript thread that created it.
unsafe impl Send for PendingWait {}

/// Messages for the listeners and problems for `'error'`, as the JS layer receives them.
#[derive(Default)]
pub struct DeliveryBatch {
    pub messages: Vec<Message>,
    pub problems: Vec<ChannelError>,
    /// Progress of requests, cancels for handlers, presence changes (see `extensions`).
    pub extensions: Extensions,
}

impl ToNapiValue for DeliveryBatch {
    unsafe fn to_napi_value(env: sys::napi_env, batch: Self) -> Result<sys::napi_value> {
        let mut messages = ptr::null_mut();
        check_status!(sys::napi_create_array_with_length(
            env,
            batch.messages.len(),
            &mut messages
        ))?;
        for (index, message) in batch.messages.into_iter().enumerate() {
            check_status!(sys::napi_set_element(
                env,
                messages,
                index as u32,
                message_value(env, message)?
            ))?;
        }
        let mut errors = ptr::null_mut();
        check_status!(sys::napi_create_array_with_length(
            env,
            batch.problems.len(),
            &mut errors
        ))?;
        for (index, problem) in batch.problems.iter().enumerate() {
            check_status!(sys::napi_set_element(
                env,
                errors,
                index as u32,
                channel_error_value(env, problem)?
            ))?;
        }
        let mut object = ptr::null_mut();
        check_status!(sys::napi_create_object(env, &mut object))?;
        check_status!(sys::napi_set_named_property(
            env,
            object,
            c"messages".as_ptr(),
            messages
        ))?;
        check_status!(sys::napi_set_named_property(
            env,
            object,
            c"errors".as_ptr(),
            errors
        ))?;
        set_extensions(env, object, batch.extensions)?;
        Ok(object)
    }
}

type TakenHook = Arc<dyn Fn(usize) + Send + Sync>;

pub type DeliveryFunction =
    ThreadsafeFunction<Vec<Delivery>, Unknown<'static>, DeliveryBatch, Status, false>;

#[derive(Default)]
struct RefState {
    listening: bool,
    unref_requested: bool,
    referenced: bool,
}

#[derive(Default)]
pub struct Bridge {
    function: Mutex<Option<Arc<DeliveryFunction>>>,
    /// Told how many messages each batch hands to JavaScript: the channel acknowledges only
    /// what JavaScript has taken.
    on_taken: Mutex<Option<TakenHook>>,
    pending: Mutex<HashMap<u64, PendingWait>>,
    ref_state: Mutex<RefState>,
}

impl DeliverySink for Bridge {
    fn deliver(&self, batch: Vec<Delivery>) -> bool {
        let function = lock(&self.function).clone();
        match function {
            Some(function) => {
                function.call(batch, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
            }
            None => false,
        }
    }
}

impl Bridge {
    /// Wraps the JS delivery callback. The threadsafe function starts unreferenced: an idle
    /// channel does not keep the process alive.
    pub fn connect(
        self: &Arc<Self>,
        env: &Env,
        callback: Function<'_, DeliveryBatch, Unknown<'static>>,
    ) -> Result<()> {
        let bridge: Weak<Bridge> = Arc::downgrade(self);
        let function = callback
            .build_threadsafe_function::<Vec<Delivery>>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                let mut batch = DeliveryBatch::default();
                let Some(bridge) = bridge.upgrade() else {
                    return Ok(batch);
                };
                let env = ctx.env.raw();
                for delivery in ctx.value {
                    match delivery {
                        Delivery::Resolved { token, message } => {
                            bridge.settle(env, token, Ok(message))
                        }
                        Delivery::Expired { token, error } => bridge.settle(env, token, Err(error)),
                        Delivery::Sent { token, result } => bridge.settle_sent(env, token, result),
                        Delivery::Messages(messages) => batch.messages.extend(messages),
                        Delivery::Problems(problems) => batch.problems.extend(problems),
                        other => batch.extensions.add(other),
                    }
                }
                bridge.update_ref(env);
                let hook = lock(&bridge.on_taken).clone();
                if let (Some(hook), false) = (hook, batch.messages.is_empty()) {
                    hook(batch.messages.len());
                }
                Ok(batch)
            })?;
        #[allow(deprecated)]
        check_status!(unsafe { sys::napi_unref_threadsafe_function(env.raw(), function.raw()) })?;
        *lock(&self.function) = Some(Arc::new(function));
        Ok(())
    }

    /// Sets what is told of each batch JavaScript takes.
    pub fn on_taken(&self, hook: impl Fn(usize) + Send + Sync + 'static) {
        *lock(&self.on_taken) = Some(Arc::new(hook));
    }

    /// A promise for wait `token`, resolved with the response message (error responses too:
    /// the JS layer makes `EREMOTE` errors, with the caller's stack).
    pub fn add_wait(&self, env: &Env, token: u64) -> Result<sys::napi_value> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
        lock(&self.pending).insert(token, PendingWait { deferred });
        self.update_ref(env.raw());
        Ok(promise)
    }

    /// Settles one pending promise; unknown tokens (already settled) are ignored.
    pub fn settle(
        &self,
        env: sys::napi_env,
        token: u64,
        outcome: std::result::Result<Message, ChannelError>,
    ) {
        self.settle_with(env, token, |env| match outcome {
            Ok(message) => message_value(env, message).map(|v| (true, v)),
            Err(error) => channel_error_value(env, &error).map(|v| (false, v)),
        });
    }

    /// Settles the promise of a queued send: the message id, or why it was not written.
    pub fn settle_sent(
        &self,
        env: sys::napi_env,
        token: u64,
        result: std::result::Result<String, ChannelError>,
    ) {
        self.settle_with(env, token, |env| match result {
            Ok(id) => unsafe { String::to_napi_value(env, id) }.map(|v| (true, v)),
            Err(error) => channel_error_value(env, &error).map(|v| (false, v)),
        });
    }

    /// Resolves (`true`) or rejects promise `token` with the value `build` makes; if building
    /// it fails, the promise still settles, with that failure.
    fn settle_with(
        &self,
        env: sys::napi_env,
        token: u64,
        build: impl FnOnce(sys::napi_env) -> Result<(bool, sys::napi_value)>,
    ) {
        let Some(wait) = lock(&self.pending).remove(&token) else {
            return;
        };
        let (resolve, value) = build(env).unwrap_or_else(|error| {
            let text = format!("cannot convert the result: {}", error.reason);
            (
                false,
                create_error(env, "EINVAL", &text).unwrap_or(ptr::null_mut()),
            )
        });
        unsafe {
            if resolve {
                sys::napi_resolve_deferred(env, wait.deferred, value);
            } else {
                sys::napi_reject_deferred(env, wait.deferred, value);
            }
        }
    }

    pub fn reject(&self, env: sys::napi_env, token: u64, code: &str, message: &str) {
        let Some(wait) = lock(&self.pending).remove(&token) else {
            return;
        };
        if let Ok(error) = create_error(env, code, message) {
            unsafe { sys::napi_reject_deferred(env, wait.deferred, error) };
        }
    }

    pub fn set_listening(&self, env: sys::napi_env, listening: bool) {
        lock(&self.ref_state).listening = listening;
        self.update_ref(env);
    }

    pub fn set_unref(&self, env: sys::napi_env, unref: bool) {
        lock(&self.ref_state).unref_requested = unref;
        self.update_ref(env);
    }

    /// Keeps the event loop alive exactly while something waits or listens, unless unref'd.
    fn update_ref(&self, env: sys::napi_env) {
        let busy = !lock(&self.pending).is_empty();
        let function = lock(&self.function).clone();
        let Some(function) = function else {
            return;
        };
        let mut state = lock(&self.ref_state);
        let wanted = !state.unref_requested && (busy || state.listening);
        if wanted == state.referenced {
            return;
        }
        let status = unsafe {
            if wanted {
                sys::napi_ref_threadsafe_function(env, function.raw())
            } else {
                sys::napi_unref_threadsafe_function(env, function.raw())
            }
        };
        if status == sys::Status::napi_ok {
            state.referenced = wanted;
        }
    }

    /// Releases the threadsafe function; the loop no longer waits for this channel.
    pub fn disconnect(&self, env: sys::napi_env) {
        let function = lock(&self.function).take();
        if let Some(function) = function {
            let mut state = lock(&self.ref_state);
            if state.referenced {
                unsafe { sys::napi_unref_threadsafe_function(env, function.raw()) };
                state.referenced = false;
            }
        }
    }
}
