//! Late and duplicate replies, and the extension events that belong to a wait or a handler
//! (PROTOCOL-EXTENSIONS.md, "progress, cancellation and presence").
//!
//! A wait that ends (answered, timed out, cancelled) leaves its request id here, in a bounded
//! memory of the newest ids. A response to one of them is late (the caller stopped waiting) or a
//! duplicate (the reference `recv()` of upstream's example backend answers some requests twice):
//! it never reaches another wait, `recv()` or a listener; it is dropped and counted. Responses
//! to requests this channel never waited for (`sendRequest()` read with `recv()`) are not
//! affected.

use super::message::{Message, MessageType};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// How many ended request ids are remembered (the oldest are forgotten first).
pub const REMEMBERED_REQUESTS: usize = 4096;

/// The event a handler sends while it works on a request.
pub const PROGRESS_EVENT: &str = "task.progress";
/// The event a requester sends to stop a request.
pub const CANCEL_EVENT: &str = "task.cancel";

/// Counters of what was dropped, for `channel.stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplyStats {
    /// Responses to requests whose wait had ended (late, or a second answer).
    pub dropped_responses: u64,
    /// `task.progress` for requests whose `request()` had ended.
    pub dropped_progress: u64,
}

#[derive(Debug, Default)]
pub struct Replies {
    /// Request id -> whether its wait followed progress (a `request()`).
    ended: HashMap<String, bool>,
    order: VecDeque<String>,
    pub stats: ReplyStats,
}

impl Replies {
    /// The wait for `request_id` ended; `followed`: it took the request's progress.
    pub fn end(&mut self, request_id: &str, followed: bool) {
        if let Some(was) = self.ended.get_mut(request_id) {
            *was |= followed;
            return;
        }
        self.ended.insert(request_id.to_owned(), followed);
        self.order.push_back(request_id.to_owned());
        while self.order.len() > REMEMBERED_REQUESTS {
            if let Some(oldest) = self.order.pop_front() {
                self.ended.remove(&oldest);
            }
        }
    }

    /// A new wait for `request_id` (a retry after a timeout): its response is welcome again.
    pub fn reopen(&mut self, request_id: &str) {
        if self.ended.remove(request_id).is_some() {
            self.order.retain(|id| id != request_id);
        }
    }

    /// Whether `message` is a response to an ended wait; counts it when it is.
    pub fn take_late_response(&mut self, message: &Message) -> bool {
        let late = message.kind == MessageType::Response
            && message
                .reply_to
                .as_deref()
                .is_some_and(|id| self.ended.contains_key(id));
        if late {
            self.stats.dropped_responses += 1;
        }
        late
    }

    /// Whether `request_id` is the progress token of a `request()` that ended; counts it.
    pub fn take_late_progress(&mut self, request_id: &str) -> bool {
        let late = self.ended.get(request_id).copied().unwrap_or(false);
        if late {
            self.stats.dropped_progress += 1;
        }
        late
    }
}

/// The request id a `task.progress` event reports on.
pub fn progress_token(message: &Message) -> Option<&str> {
    extension_target(message, PROGRESS_EVENT, "progressToken")
}

/// The request id a `task.cancel` event asks to stop.
pub fn cancel_target(message: &Message) -> Option<&str> {
    extension_target(message, CANCEL_EVENT, "requestId")
}

fn extension_target<'a>(message: &'a Message, event: &str, key: &str) -> Option<&'a str> {
    if message.kind != MessageType::Event || message.method.as_deref() != Some(event) {
        return None;
    }
    message.payload.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn responses_to_ended_waits_are_dropped_and_counted() {
        let mut replies = Replies::default();
        let answer = Message::response("r1", json!(1));
        assert!(!replies.take_late_response(&answer));
        replies.end("r1", false);
        assert!(replies.take_late_response(&answer));
        assert!(replies.take_late_response(&answer));
        assert_eq!(replies.stats.dropped_responses, 2);
        replies.reopen("r1");
        assert!(!replies.take_late_response(&answer));
    }

    #[test]
    fn late_progress_is_dropped_only_for_waits_that_followed_it() {
        let mut replies = Replies::default();
        replies.end("plain", false);
        replies.end("followed", true);
        assert!(!replies.take_late_progress("plain"));
        assert!(replies.take_late_progress("followed"));
        assert!(!replies.take_late_progress("unknown"));
        assert_eq!(replies.stats.dropped_progress, 1);
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut replies = Replies::default();
        for n in 0..REMEMBERED_REQUESTS + 10 {
            replies.end(&format!("r{n}"), false);
        }
        assert_eq!(replies.ended.len(), REMEMBERED_REQUESTS);
        assert!(!replies.take_late_response(&Message::response("r0", json!(null))));
        let newest = format!("r{}", REMEMBERED_REQUESTS + 9);
        assert!(replies.take_late_response(&Message::response(&newest, json!(null))));
    }

    #[test]
    fn extension_targets() {
        let progress = Message::event(
            PROGRESS_EVENT,
            json!({"progressToken": "r1", "progress": 1}),
        );
        assert_eq!(progress_token(&progress), Some("r1"));
        assert_eq!(cancel_target(&progress), None);
        let cancel = Message::event(CANCEL_EVENT, json!({"requestId": "r2"}));
        assert_eq!(cancel_target(&cancel), Some("r2"));
        assert_eq!(
            cancel_target(&Message::event(CANCEL_EVENT, json!("r2"))),
            None
        );
    }
}
