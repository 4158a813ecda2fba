//! Late and duplicate replies, and the extension events that belong to a wait or a handler
//! (PROTOCOL-EXTENSIONS.md, "progress, cancellation and presence").
//!
//! A wait that ends (answered, timed out, cancelled) leaves its request id here, in a bounded
//! memory of the newest ids. A response to one of them is late (the caller stopped waiting) or a
//! duplicate (the reference `recv()` of upstream's example backend answers some requests twice):
//! it never reaches another wait, `recv()` or a listener; it is dropped and counted. Responses
//! to requests this channel never waited for (`sendRequest()` read with `recv()`) are not
//! affected.
//!
//! A channel that opens on files an earlier session left behind (a reopened frontend, a
//! restarted backend) also remembers what belongs to that session: its requests still in our
//! outbox, the replies already in our inbox, and the requests we had answered. Replies to the
//! earlier session are dropped and counted like late ones; a request we already answered is not
//! handed out again (PROTOCOL-EXTENSIONS.md, "Restarts").

use super::message::{Message, MessageType};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};

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
    /// Requests not handed out: answered by an earlier session of ours, or cancelled by their
    /// sender in the very batch that brought them.
    pub dropped_requests: u64,
}

/// What the files held when the channel opened, from an earlier session.
#[derive(Debug, Default)]
pub struct EarlierSession {
    /// Ids of the requests in our outbox: their replies are not for us.
    pub requests: HashSet<String>,
    /// Ids of the responses and progress events already in our inbox.
    pub replies: HashSet<String>,
    /// Ids of the requests our outbox holds a response to: answered already.
    pub answered: HashSet<String>,
    /// Ids of every message in our inbox: what the peer wrote before we opened.
    pub inbox: HashSet<String>,
}

impl EarlierSession {
    /// Sorts out the messages of the two files as they are at opening.
    pub fn from_files(outbox: &[Message], inbox: &[Message]) -> Self {
        let mut earlier = EarlierSession::default();
        for message in outbox {
            match message.kind {
                MessageType::Request => {
                    earlier.requests.insert(message.id.clone());
                }
                MessageType::Response => {
                    if let Some(id) = &message.reply_to {
                        earlier.answered.insert(id.clone());
                    }
                }
                MessageType::Event => {}
            }
        }
        for message in inbox {
            if message.kind == MessageType::Response || progress_token(message).is_some() {
                earlier.replies.insert(message.id.clone());
            }
            earlier.inbox.insert(message.id.clone());
        }
        earlier
    }

    fn owns_reply(&self, message: &Message, request_id: &str) -> bool {
        self.replies.contains(&message.id) || self.requests.contains(request_id)
    }
}

#[derive(Debug, Default)]
pub struct Replies {
    /// Request id -> whether its wait followed progress (a `request()`).
    ended: HashMap<String, bool>,
    order: VecDeque<String>,
    earlier: EarlierSession,
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

    pub fn with_earlier_session(earlier: EarlierSession) -> Self {
        Replies {
            earlier,
            ..Replies::default()
        }
    }

    /// Whether `message` is a response to an ended wait or to an earlier session (and nobody
    /// waits for it now: `waiting`); counts it when it is.
    pub fn take_late_response(&mut self, message: &Message, waiting: bool) -> bool {
        let late = message.kind == MessageType::Response
            && message.reply_to.as_deref().is_some_and(|id| {
                self.ended.contains_key(id) || (!waiting && self.earlier.owns_reply(message, id))
            });
        if late {
            self.stats.dropped_responses += 1;
        }
        late
    }

    /// Whether `message`, progress on `request_id` that no wait follows, belongs to a
    /// `request()` that ended or to an earlier session; counts it.
    pub fn take_late_progress(&mut self, message: &Message, request_id: &str) -> bool {
        let late = self.ended.get(request_id).copied().unwrap_or(false)
            || self.earlier.owns_reply(message, request_id);
        if late {
            self.stats.dropped_progress += 1;
        }
        late
    }

    /// Whether `message` is a request an earlier session of ours answered; counts it.
    pub fn take_answered_request(&mut self, message: &Message) -> bool {
        let answered =
            message.kind == MessageType::Request && self.earlier.answered.contains(&message.id);
        if answered {
            self.stats.dropped_requests += 1;
        }
        answered
    }

    /// Whether the peer wrote `message` after we opened.
    pub fn is_new_since_open(&self, message: &Message) -> bool {
        !self.earlier.inbox.contains(&message.id)
    }

    /// Counts a request that was not handed out because its sender cancelled it.
    pub fn note_cancelled_request(&mut self) {
        self.stats.dropped_requests += 1;
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
        assert!(!replies.take_late_response(&answer, false));
        replies.end("r1", false);
        assert!(replies.take_late_response(&answer, false));
        assert!(replies.take_late_response(&answer, true));
        assert_eq!(replies.stats.dropped_responses, 2);
        replies.reopen("r1");
        assert!(!replies.take_late_response(&answer, false));
    }

    #[test]
    fn late_progress_is_dropped_only_for_waits_that_followed_it() {
        let mut replies = Replies::default();
        replies.end("plain", false);
        replies.end("followed", true);
        let progress = |token: &str| {
            Message::event(
                PROGRESS_EVENT,
                json!({"progressToken": token, "progress": 1}),
            )
        };
        assert!(!replies.take_late_progress(&progress("plain"), "plain"));
        assert!(replies.take_late_progress(&progress("followed"), "followed"));
        assert!(!replies.take_late_progress(&progress("unknown"), "unknown"));
        assert_eq!(replies.stats.dropped_progress, 1);
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut replies = Replies::default();
        for n in 0..REMEMBERED_REQUESTS + 10 {
            replies.end(&format!("r{n}"), false);
        }
        assert_eq!(replies.ended.len(), REMEMBERED_REQUESTS);
        assert!(!replies.take_late_response(&Message::response("r0", json!(null)), false));
        let newest = format!("r{}", REMEMBERED_REQUESTS + 9);
        assert!(replies.take_late_response(&Message::response(&newest, json!(null)), false));
    }

    #[test]
    fn an_earlier_sessions_replies_and_answered_requests_are_dropped_and_counted() {
        let old_request = Message::request("render", json!(null));
        let answered = Message::request("add_cube", json!(null));
        let outbox = [
            old_request.clone(),
            Message::response(&answered.id, json!(1)),
        ];
        let old_reply = Message::response("gone-before", json!(1));
        let old_progress = Message::event(
            PROGRESS_EVENT,
            json!({"progressToken": "gone-before", "progress": 1}),
        );
        let inbox = [old_reply.clone(), old_progress.clone(), answered.clone()];
        let mut replies =
            Replies::with_earlier_session(EarlierSession::from_files(&outbox, &inbox));
        // Replies already in the inbox, and those to requests of the earlier session.
        assert!(replies.take_late_response(&old_reply, false));
        assert!(replies.take_late_response(&Message::response(&old_request.id, json!(2)), false));
        assert!(replies.take_late_progress(&old_progress, "gone-before"));
        let later_progress = Message::event(
            PROGRESS_EVENT,
            json!({"progressToken": old_request.id, "progress": 2}),
        );
        assert!(replies.take_late_progress(&later_progress, &old_request.id));
        // Someone waiting for it now takes it after all; new replies are ours.
        assert!(!replies.take_late_response(&old_reply, true));
        assert!(!replies.take_late_response(&Message::response("new", json!(3)), false));
        // A request we answered before is not handed out again; a new one is.
        assert!(replies.take_answered_request(&answered));
        assert!(!replies.take_answered_request(&Message::request("add_cube", json!(null))));
        assert_eq!(
            replies.stats,
            ReplyStats {
                dropped_responses: 2,
                dropped_progress: 2,
                dropped_requests: 1,
            }
        );
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
