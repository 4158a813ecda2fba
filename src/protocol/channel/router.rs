//! Where each incoming message goes: the wait for it, else the listeners, else the queue that
//! `recv()` drains; and what JavaScript has taken, which is what we acknowledge. Plain state:
//! no locks of its own (the withdrawals it shares with the outbox are a leaf lock), no I/O, no
//! threads. The channel holds it under its state lock and feeds it what the reader read; the
//! tests below drive it alone.

use super::super::error::{ChannelError, Result};
use super::super::inbox::ReadOutcome;
use super::super::message::{Message, MessageType};
use super::super::outbox::Withdrawals;
use super::super::presence::{PeerInfo, PeerState, Presence};
use super::super::replies::{self, EarlierSession, Replies};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which kinds of incoming message have listeners, and whether problems do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listening {
    pub requests: bool,
    pub responses: bool,
    pub events: bool,
    pub errors: bool,
    /// Someone follows the peer's presence: keep reading the inbox for its announcements.
    pub presence: bool,
    /// Request handlers run here: `task.cancel` events go to them, not to listeners or `recv()`.
    pub cancels: bool,
}

impl Listening {
    fn wants(&self, kind: MessageType) -> bool {
        match kind {
            MessageType::Request => self.requests,
            MessageType::Response => self.responses,
            MessageType::Event => self.events,
        }
    }

    /// Listens to what either listens to.
    fn with(self, other: Listening) -> Listening {
        Listening {
            requests: self.requests || other.requests,
            responses: self.responses || other.responses,
            events: self.events || other.events,
            errors: self.errors || other.errors,
            presence: self.presence || other.presence,
            cancels: self.cancels || other.cancels,
        }
    }

    fn any_messages(&self) -> bool {
        self.requests || self.responses || self.events || self.presence
    }
}

/// What the channel hands to its owner (the JS binding) from whichever thread found it.
#[derive(Debug)]
pub enum Delivery {
    Resolved {
        token: u64,
        message: Message,
    },
    /// A send queued for the writer thread is written (the message id) or has failed.
    Sent {
        token: u64,
        result: Result<String>,
    },
    Expired {
        token: u64,
        error: ChannelError,
    },
    Messages(Vec<Message>),
    Problems(Vec<ChannelError>),
    /// A `task.progress` event for the `request()` waiting with `token`.
    Progress {
        token: u64,
        message: Message,
    },
    /// A `task.cancel` event, for our request handlers.
    Cancel(Message),
    /// What is known of the peer changed.
    Peer(PeerInfo),
}

/// A pending wait for a response.
struct Waiter {
    token: u64,
    started: Instant,
    deadline: Instant,
    /// A `request()`: its `task.progress` events are delivered to it, not to listeners.
    follows: bool,
}

/// How a new wait starts: its response was queued already, or it waits until `deadline`.
pub(super) enum WaitStart {
    Answered(Message),
    Pending { deadline: Instant },
}

pub(super) struct Router {
    queue: VecDeque<Message>,
    /// Beyond this many queued messages the oldest are dropped and reported (`maxQueued`).
    max_queued: usize,
    waiters: HashMap<String, Vec<Waiter>>,
    listening: Listening,
    /// Messages handed to JavaScript's listeners in batches it has not run yet.
    handed_out: usize,
    /// What the listeners took before their last change, while batches handed to them are still
    /// on their way: messages of those kinds follow them (JavaScript keeps what nobody takes for
    /// `recv()`), so that none queued here overtakes them.
    lingering: Listening,
    /// Problems found while nobody listens for them; `recv()` throws them one at a time.
    problems: VecDeque<ChannelError>,
    dispatcher_running: bool,
    /// Since when the dispatcher has had nothing to wait for; it lingers a little before
    /// stopping, so back-to-back requests do not start a thread and a watch each time.
    dispatcher_idle_since: Option<Instant>,
    /// Request ids whose wait ended: their late or repeated responses are dropped.
    replies: Replies,
    /// Our settled requests, which the outbox's next write leaves out.
    withdrawals: Arc<Withdrawals>,
    /// When the outbox should leave answered requests out even if nothing is sent by then: a
    /// deadline of the dispatcher's rounds (which run anyway while requests are in flight), so
    /// that an answer does not wake the writer thread just to set a timer.
    prune_due: Option<Instant>,
    presence: Presence,
    /// Reads whose messages JavaScript has not all taken yet (handed to listeners, or queued
    /// for `recv()`), oldest first: each read's last id and how many of its messages are left.
    untaken_reads: VecDeque<(Option<String>, usize)>,
    /// The newest message up to which JavaScript has taken everything: what we acknowledge, so
    /// that a busy JavaScript thread makes the writer wait instead of our memory grow.
    taken_upto: Option<String>,
    /// JavaScript pulls messages with `recv()` (it called it once): from then on the messages
    /// queued for it hold the writer back until taken. Before, nobody may ever take them (a
    /// channel used only for `request()`): they wait in the bounded queue, acknowledged.
    pulls: bool,
    /// How many of the oldest queued messages are not counted in `untaken_reads`.
    queue_uncounted: usize,
    /// Messages counted as taken already that JavaScript will still report taken (queued ones
    /// handed to new listeners): that many of its next reports are not counted again.
    taken_credit: usize,
}

/// Messages read but not yet taken by JavaScript, beyond which the inbox is not read: the rest
/// stays in the file, and a writer of ours waits (`ENOBUFS`) until they are taken.
const READ_AHEAD: usize = 1000;
/// Problems kept for `recv()` while nobody listens for them; older ones are dropped.
const MAX_PENDING_PROBLEMS: usize = 64;
/// How long the dispatcher stays after its last need (see `dispatcher_idle_since`).
const DISPATCHER_LINGER: Duration = Duration::from_secs(2);

impl Router {
    pub(super) fn new(
        role: &str,
        earlier: EarlierSession,
        withdrawals: Arc<Withdrawals>,
        max_queued: usize,
    ) -> Self {
        Router {
            queue: VecDeque::new(),
            max_queued,
            waiters: HashMap::new(),
            listening: Listening::default(),
            handed_out: 0,
            lingering: Listening::default(),
            problems: VecDeque::new(),
            dispatcher_running: false,
            dispatcher_idle_since: None,
            prune_due: None,
            replies: Replies::with_earlier_session(earlier),
            withdrawals,
            presence: Presence::new(role),
            untaken_reads: VecDeque::new(),
            taken_upto: None,
            pulls: false,
            queue_uncounted: 0,
            taken_credit: 0,
        }
    }

    /// A wait for `request_id` gave up (timeout, cancel). A `request()`'s replies are late from
    /// now on, once no other waits for it; a `waitResponse()`'s stay for `recv()` or a new wait.
    fn end_wait(&mut self, request_id: &str, follows: bool) {
        if follows && !self.waiters.contains_key(request_id) {
            self.replies.end(request_id, follows);
            // Its caller settled it: a peer that (re)starts must not run it.
            self.withdrawals.add(request_id);
        }
    }

    /// Whether to read the inbox: not while JavaScript has not taken what was read already. A
    /// pending wait reads on regardless: its response may be behind what is not taken (the queue
    /// for `recv()` stays bounded by `maxQueued`).
    pub(super) fn has_room(&self) -> bool {
        self.untaken() < READ_AHEAD || !self.waiters.is_empty()
    }

    // The `recv()` queue: its oldest `queue_uncounted` messages are not counted in
    // `untaken_reads`; these methods alone change it.

    /// Queues a message for `recv()`; returns whether it counts as untaken (JavaScript pulls).
    fn queue_for_recv(&mut self, message: Message) -> bool {
        self.queue.push_back(message);
        if !self.pulls {
            self.queue_uncounted += 1;
        }
        self.pulls
    }

    /// Drops the oldest queued message (beyond `maxQueued`): never to be taken. Returns whether
    /// it was counted, for the caller to note taken once the read it routes is noted.
    fn drop_oldest_queued(&mut self) -> bool {
        self.queue.pop_front();
        let counted = self.queue_uncounted == 0;
        if !counted {
            self.queue_uncounted -= 1;
        }
        counted
    }

    /// Takes `count` messages from the front of the queue for JavaScript.
    fn take_queued(&mut self, count: usize) -> Vec<Message> {
        let uncounted = count.min(self.queue_uncounted);
        self.queue_uncounted -= uncounted;
        self.note_taken(count - uncounted);
        self.queue.drain(..count).collect()
    }

    /// Takes the queued message at `index` for JavaScript (a wait found it).
    fn take_queued_at(&mut self, index: usize) -> Option<Message> {
        if index < self.queue_uncounted {
            self.queue_uncounted -= 1;
        } else {
            self.note_taken(1);
        }
        self.queue.remove(index)
    }

    /// Takes the queued messages new listeners want; the listeners report them taken, so the
    /// uncounted ones among them are credited against those reports.
    fn take_queued_for(&mut self, listening: Listening) -> VecDeque<Message> {
        let uncounted_wanted = self
            .queue
            .iter()
            .take(self.queue_uncounted)
            .filter(|m| listening.wants(m.kind))
            .count();
        self.queue_uncounted -= uncounted_wanted;
        self.taken_credit += uncounted_wanted;
        let (wanted, kept) = self.queue.drain(..).partition(|m| listening.wants(m.kind));
        self.queue = kept;
        wanted
    }

    /// Puts messages handed out but not consumed back at the front, in order: counted as taken
    /// when handed out, they are uncounted now.
    pub(super) fn requeue_front(&mut self, messages: Vec<Message>) {
        self.queue_uncounted += messages.len();
        for message in messages.into_iter().rev() {
            self.queue.push_front(message);
        }
    }

    fn untaken(&self) -> usize {
        self.untaken_reads.iter().map(|(_, left)| left).sum()
    }

    /// A read whose `left` messages went to JavaScript (the rest to waits).
    fn note_read(&mut self, last_id: Option<String>, left: usize) {
        if last_id.is_none() {
            return;
        }
        match self.untaken_reads.back_mut() {
            // Nothing new for JavaScript: the position moves with the read before it.
            Some(back) if left == 0 => back.0 = last_id,
            _ => self.untaken_reads.push_back((last_id, left)),
        }
        self.settle_taken();
    }

    /// JavaScript ran a batch of `count` messages handed to its listeners (what nobody took
    /// there it keeps for `recv()`): once all have run, the lingering kinds are queued here again.
    pub(super) fn note_handed_over(&mut self, count: usize) {
        self.handed_out = self.handed_out.saturating_sub(count);
        if self.handed_out == 0 {
            self.lingering = Listening::default();
        }
        self.note_taken(count);
    }

    /// JavaScript took `count` more messages (a listener batch, a `recv()`).
    pub(super) fn note_taken(&mut self, mut count: usize) {
        let credited = count.min(self.taken_credit);
        self.taken_credit -= credited;
        count -= credited;
        for (_, left) in self.untaken_reads.iter_mut() {
            let taken = count.min(*left);
            *left -= taken;
            count -= taken;
            if count == 0 {
                break;
            }
        }
        self.settle_taken();
    }

    fn settle_taken(&mut self) {
        while let Some((_, 0)) = self.untaken_reads.front() {
            let (last_id, _) = self.untaken_reads.pop_front().expect("front exists");
            self.taken_upto = last_id;
        }
    }

    // ---- waits ----

    /// Starts a wait for the response to `request_id`: one queued already answers it at once.
    pub(super) fn add_wait(
        &mut self,
        request_id: &str,
        token: u64,
        timeout: Duration,
        follows: bool,
    ) -> WaitStart {
        self.replies.reopen(request_id);
        let queued = self.queue.iter().position(|m| {
            m.kind == MessageType::Response && m.reply_to.as_deref() == Some(request_id)
        });
        if let Some(message) = queued.and_then(|index| self.take_queued_at(index)) {
            self.replies.end(request_id, follows);
            return WaitStart::Answered(message);
        }
        let started = Instant::now();
        let deadline = started + timeout;
        self.waiters
            .entry(request_id.to_owned())
            .or_default()
            .push(Waiter {
                token,
                started,
                deadline,
                follows,
            });
        WaitStart::Pending { deadline }
    }

    /// Drops the wait `token`; returns whether it was pending.
    pub(super) fn cancel_wait(&mut self, token: u64) -> bool {
        let mut found = None;
        self.waiters.retain(|request_id, waiters| {
            waiters.retain(|w| {
                let matches = w.token == token;
                if matches {
                    found = Some((request_id.clone(), w.follows));
                }
                !matches
            });
            !waiters.is_empty()
        });
        if let Some((request_id, follows)) = &found {
            self.end_wait(request_id, *follows);
        }
        found.is_some()
    }

    pub(super) fn pending_waits(&self) -> usize {
        self.waiters.values().map(Vec::len).sum()
    }

    /// Fails the waits whose deadline passed; returns the next deadline among those left.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        deliveries: &mut Vec<Delivery>,
    ) -> Option<Instant> {
        let mut next_deadline: Option<Instant> = None;
        let mut ended = Vec::new();
        self.waiters.retain(|request_id, waiters| {
            waiters.retain(|w| {
                if w.deadline <= now {
                    ended.push((request_id.clone(), w.follows));
                    let error = ChannelError::Timeout {
                        request_id: request_id.clone(),
                        waited_ms: (now - w.started).as_millis() as u64,
                    };
                    deliveries.push(Delivery::Expired {
                        token: w.token,
                        error,
                    });
                    false
                } else {
                    next_deadline = Some(next_deadline.map_or(w.deadline, |d| d.min(w.deadline)));
                    true
                }
            });
            !waiters.is_empty()
        });
        for (request_id, follows) in ended {
            self.end_wait(&request_id, follows);
        }
        next_deadline
    }

    /// The channel closes: what was queued goes, and the pending waits' tokens are handed back.
    pub(super) fn close(&mut self) -> Vec<u64> {
        self.queue.clear();
        self.waiters
            .drain()
            .flat_map(|(_, waiters)| waiters)
            .map(|w| w.token)
            .collect()
    }

    // ---- what JavaScript takes ----

    /// `recv()`: a pending problem first, once; else up to `limit` queued messages.
    pub(super) fn take_for_recv(&mut self, limit: usize) -> Result<Vec<Message>> {
        if let Some(problem) = self.problems.pop_front() {
            return Err(problem);
        }
        self.pulls = true;
        let take = limit.min(self.queue.len());
        Ok(self.take_queued(take))
    }

    /// Drops everything queued for `recv()` (the files were cleared).
    pub(super) fn clear_queue(&mut self) {
        let cleared = self.queue.len();
        self.take_queued(cleared);
    }

    /// New listeners: queued messages they want, and pending problems if they take errors,
    /// are handed to them.
    pub(super) fn set_listening(&mut self, listening: Listening, deliveries: &mut Vec<Delivery>) {
        if self.handed_out > 0 {
            self.lingering = self.lingering.with(self.listening);
        }
        self.listening = listening;
        let wanted = self.take_queued_for(listening);
        if !wanted.is_empty() {
            self.handed_out += wanted.len();
            deliveries.push(Delivery::Messages(wanted.into()));
        }
        if listening.errors && !self.problems.is_empty() {
            deliveries.push(Delivery::Problems(self.problems.drain(..).collect()));
        }
    }

    /// The newest message up to which JavaScript took everything (what we acknowledge).
    pub(super) fn taken_upto(&self) -> Option<String> {
        self.taken_upto.clone()
    }

    pub(super) fn presence(&mut self) -> &mut Presence {
        &mut self.presence
    }

    pub(super) fn reply_stats(&self) -> replies::ReplyStats {
        self.replies.stats
    }

    // ---- the dispatcher's lifecycle ----

    fn needs_dispatcher(&self) -> bool {
        !self.waiters.is_empty()
            || self.listening.any_messages()
            || self.listening.errors
            || self.prune_due.is_some()
    }

    /// Notes that requests of ours were answered: the outbox leaves them out by `now + after`
    /// (or at the next send). Returns the deadline when it is a new one.
    pub(super) fn note_answered(&mut self, now: Instant, after: Duration) -> Option<Instant> {
        if self.prune_due.is_some() {
            return None;
        }
        self.prune_due = Some(now + after);
        self.prune_due
    }

    /// The pruning deadline, taken (cleared) when it has come: `(due now, still ahead)`.
    pub(super) fn take_prune_due(&mut self, now: Instant) -> (bool, Option<Instant>) {
        match self.prune_due {
            Some(at) if at <= now => {
                self.prune_due = None;
                (true, None)
            }
            ahead => (false, ahead),
        }
    }

    /// Whether a dispatcher must be started now (needed and not running); if so it counts as
    /// running from now on.
    pub(super) fn start_dispatcher(&mut self) -> bool {
        if self.dispatcher_running || !self.needs_dispatcher() {
            return false;
        }
        self.dispatcher_running = true;
        true
    }

    /// After a round: whether the dispatcher stays (it lingers a while after its last need); if
    /// not, it counts as stopped from now on.
    pub(super) fn keep_dispatching(&mut self, now: Instant) -> bool {
        let idle_since = match (self.needs_dispatcher(), self.dispatcher_idle_since) {
            (true, _) => None,
            (false, since) => Some(since.unwrap_or(now)),
        };
        self.dispatcher_idle_since = idle_since;
        let keep = idle_since.is_none_or(|since| now - since < DISPATCHER_LINGER);
        if !keep {
            self.dispatcher_running = false;
            self.dispatcher_idle_since = None;
        }
        keep
    }

    /// Whether someone follows the peer's presence: listeners (or `ready()`), or `request()`s
    /// in flight, which fail with `EPEERGONE` when it goes.
    pub(super) fn follows_peer(&self) -> bool {
        self.listening.presence || self.waiters.values().flatten().any(|w| w.follows)
    }

    pub(super) fn dispatcher_running(&self) -> bool {
        self.dispatcher_running
    }

    // ---- routing ----

    /// Routes what a read found. Returns whether it held answers to our requests (the outbox
    /// can leave them out now).
    pub(super) fn route(&mut self, outcome: ReadOutcome, deliveries: &mut Vec<Delivery>) -> bool {
        let last_read = outcome.last_id;
        let mut for_listeners = Vec::new();
        let mut dropped = 0u64;
        let mut dropped_counted = 0;
        let mut queued = 0;
        let mut controls = Vec::new();
        // Our handlers never start a request that its sender cancelled in the same batch (a
        // restarted peer reads both at once).
        let cancelled: HashSet<String> = if self.listening.cancels {
            outcome
                .messages
                .iter()
                .filter_map(replies::cancel_target)
                .map(str::to_owned)
                .collect()
        } else {
            HashSet::new()
        };
        let mut answered = false;
        for message in outcome.messages {
            if message.kind == MessageType::Request && cancelled.contains(&message.id) {
                self.replies.note_cancelled_request();
                continue;
            }
            if let (MessageType::Response, Some(id)) = (message.kind, &message.reply_to) {
                // Answered: a peer that (re)starts must not run it again.
                self.withdrawals.add(id);
                answered = true;
            }
            let Some(message) = self.intercept(message, &mut controls) else {
                continue;
            };
            if message.kind == MessageType::Response {
                let waiters = message
                    .reply_to
                    .as_ref()
                    .and_then(|id| self.waiters.remove(id));
                if let Some(mut waiters) = waiters {
                    let follows = waiters.iter().any(|w| w.follows);
                    if let Some(id) = &message.reply_to {
                        self.replies.end(id, follows);
                    }
                    let last = waiters.pop().expect("waiter lists are never empty");
                    for waiter in waiters {
                        let message = message.clone();
                        deliveries.push(Delivery::Resolved {
                            token: waiter.token,
                            message,
                        });
                    }
                    deliveries.push(Delivery::Resolved {
                        token: last.token,
                        message,
                    });
                    continue;
                }
            }
            if self.listening.wants(message.kind) || self.lingering.wants(message.kind) {
                for_listeners.push(message);
            } else {
                if self.queue_for_recv(message) {
                    queued += 1;
                }
                if self.queue.len() > self.max_queued {
                    dropped_counted += usize::from(self.drop_oldest_queued());
                    dropped += 1;
                }
            }
        }
        self.note_read(last_read, for_listeners.len() + queued);
        // Dropped from the queue: never to be taken.
        self.note_taken(dropped_counted);
        if !for_listeners.is_empty() {
            self.handed_out += for_listeners.len();
            deliveries.push(Delivery::Messages(for_listeners));
        }
        deliveries.extend(controls);
        let mut problems = outcome.problems;
        if dropped > 0 {
            problems.push(ChannelError::QueueOverflow {
                count: dropped,
                limit: self.max_queued,
            });
        }
        self.report(problems, deliveries);
        answered
    }

    /// Before routing: late and repeated responses are dropped; the extension events that
    /// belong to a `request()` (its progress) or to our handlers (`task.cancel`) go to them
    /// alone; the peer's announcements update its presence and go on to the listeners.
    fn intercept(&mut self, message: Message, controls: &mut Vec<Delivery>) -> Option<Message> {
        let waiting = message
            .reply_to
            .as_ref()
            .is_some_and(|id| self.waiters.contains_key(id));
        if self.replies.take_late_response(&message, waiting)
            || self.replies.take_answered_request(&message)
        {
            return None;
        }
        if let Some(request_id) = replies::progress_token(&message) {
            let following = self.waiters.get(request_id).map_or(Vec::new(), |waiters| {
                waiters
                    .iter()
                    .filter(|w| w.follows)
                    .map(|w| w.token)
                    .collect()
            });
            if !following.is_empty() {
                for token in following {
                    let message = message.clone();
                    controls.push(Delivery::Progress { token, message });
                }
                return None;
            }
            if self.replies.take_late_progress(&message, request_id) {
                return None;
            }
        } else if self.listening.cancels && replies::cancel_target(&message).is_some() {
            controls.push(Delivery::Cancel(message));
            return None;
        } else if let Some(info) = self
            .presence
            .observe(&message, !self.replies.is_new_since_open(&message))
        {
            controls.push(Delivery::Peer(info));
        }
        if self.presence.info().state == PeerState::Unknown
            && !self.presence.is_announcement(&message)
            && self.replies.is_new_since_open(&message)
        {
            if let Some(info) = self.presence.observe_activity() {
                controls.push(Delivery::Peer(info));
            }
        }
        Some(message)
    }

    /// Problems go to the `'error'` listeners, else wait for `recv()` (the newest 64).
    pub(super) fn report(&mut self, problems: Vec<ChannelError>, deliveries: &mut Vec<Delivery>) {
        if problems.is_empty() {
            return;
        }
        if self.listening.errors {
            deliveries.push(Delivery::Problems(problems));
        } else {
            self.problems.extend(problems);
            let excess = self.problems.len().saturating_sub(MAX_PENDING_PROBLEMS);
            self.problems.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn router() -> Router {
        Router::new(
            "frontend",
            EarlierSession::default(),
            Arc::new(Withdrawals::default()),
            3,
        )
    }

    fn read(messages: Vec<Message>) -> ReadOutcome {
        ReadOutcome {
            last_id: messages.last().map(|m| m.id.clone()),
            messages,
            problems: Vec::new(),
        }
    }

    fn pending(start: WaitStart) -> Instant {
        match start {
            WaitStart::Pending { deadline } => deadline,
            WaitStart::Answered(message) => panic!("answered at once by {message:?}"),
        }
    }

    const LONG: Duration = Duration::from_secs(60);

    /// Sets the listeners named (`"events"`, `"requests"`, `"cancels"`); what that delivers.
    fn listen(router: &mut Router, kinds: &[&str]) -> Vec<Delivery> {
        let listening = Listening {
            requests: kinds.contains(&"requests"),
            events: kinds.contains(&"events"),
            cancels: kinds.contains(&"cancels"),
            ..Listening::default()
        };
        let mut deliveries = Vec::new();
        router.set_listening(listening, &mut deliveries);
        deliveries
    }

    /// The deliveries apart from presence changes (the first messages of a peer never seen
    /// make it `ready`).
    fn routed(deliveries: &[Delivery]) -> Vec<&Delivery> {
        deliveries
            .iter()
            .filter(|d| !matches!(d, Delivery::Peer(_)))
            .collect()
    }

    #[test]
    fn a_response_goes_to_its_wait_and_the_rest_to_the_recv_queue() {
        let mut router = router();
        let request = Message::request("q", json!(null));
        pending(router.add_wait(&request.id, 7, LONG, false));
        let event = Message::event("note", json!(1));
        let mut deliveries = Vec::new();
        let answered = router.route(
            read(vec![
                event.clone(),
                Message::response(&request.id, json!(2)),
            ]),
            &mut deliveries,
        );
        assert!(answered);
        assert!(matches!(
            routed(&deliveries).as_slice(),
            [Delivery::Resolved { token: 7, message }] if message.payload == json!(2)
        ));
        assert!(deliveries
            .iter()
            .any(|d| matches!(d, Delivery::Peer(info) if info.state == PeerState::Ready)));
        assert_eq!(router.pending_waits(), 0);
        let queued = router.take_for_recv(10).unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].id, event.id);
    }

    #[test]
    fn a_later_wait_finds_its_response_in_the_queue_and_a_repeat_is_dropped() {
        let mut router = router();
        let request = Message::request("q", json!(null));
        let response = Message::response(&request.id, json!(1));
        router.route(read(vec![response.clone()]), &mut Vec::new());
        match router.add_wait(&request.id, 1, LONG, true) {
            WaitStart::Answered(message) => assert_eq!(message.id, response.id),
            WaitStart::Pending { .. } => panic!("the queued response was not found"),
        }
        // The same answer again, or a second one: late, dropped and counted.
        let mut deliveries = Vec::new();
        router.route(
            read(vec![Message::response(&request.id, json!(2))]),
            &mut deliveries,
        );
        assert!(deliveries.is_empty(), "{deliveries:?}");
        assert!(router.take_for_recv(10).unwrap().is_empty());
        assert_eq!(router.reply_stats().dropped_responses, 1);
    }

    #[test]
    fn listeners_take_what_they_want_including_what_was_queued_before_them() {
        let mut router = router();
        let early = Message::event("early", json!(null));
        router.route(read(vec![early.clone()]), &mut Vec::new());
        let deliveries = listen(&mut router, &["events"]);
        assert!(matches!(
            deliveries.as_slice(),
            [Delivery::Messages(messages)] if messages[0].id == early.id
        ));
        let late = Message::event("late", json!(null));
        let mut deliveries = Vec::new();
        router.route(read(vec![late.clone()]), &mut deliveries);
        assert!(matches!(
            deliveries.as_slice(),
            [Delivery::Messages(messages)] if messages[0].id == late.id
        ));
    }

    #[test]
    fn messages_follow_batches_still_on_their_way_to_listeners_that_left() {
        let mut router = router();
        listen(&mut router, &["events"]);
        let event = |name: &str| Message::event(name, json!(null));
        let mut deliveries = Vec::new();
        router.route(read(vec![event("1"), event("2")]), &mut deliveries);
        // The listeners leave before JavaScript ran that batch: what comes meanwhile follows it
        // (JavaScript keeps for recv() what nobody takes), never queued ahead of it.
        assert!(listen(&mut router, &[]).is_empty());
        let mut deliveries = Vec::new();
        router.route(read(vec![event("3")]), &mut deliveries);
        assert!(matches!(
            deliveries.as_slice(),
            [Delivery::Messages(messages)] if messages[0].method.as_deref() == Some("3")
        ));
        assert!(router.take_for_recv(10).unwrap().is_empty());
        // Both batches ran: later messages are queued here again.
        router.note_handed_over(3);
        let mut deliveries = Vec::new();
        router.route(read(vec![event("4")]), &mut deliveries);
        assert!(deliveries.is_empty(), "{deliveries:?}");
        let queued = router.take_for_recv(10).unwrap();
        assert_eq!(queued[0].method.as_deref(), Some("4"));
    }

    #[test]
    fn progress_goes_to_the_request_that_follows_it_and_late_progress_is_dropped() {
        let mut router = router();
        let request = Message::request("render", json!(null));
        pending(router.add_wait(&request.id, 3, LONG, true));
        let progress = || {
            Message::event(
                replies::PROGRESS_EVENT,
                json!({"progressToken": request.id}),
            )
        };
        let mut deliveries = Vec::new();
        router.route(read(vec![progress()]), &mut deliveries);
        assert!(matches!(
            deliveries.as_slice(),
            [Delivery::Progress { token: 3, .. }]
        ));
        assert!(router.cancel_wait(3));
        let mut deliveries = Vec::new();
        router.route(read(vec![progress()]), &mut deliveries);
        assert!(deliveries.is_empty(), "{deliveries:?}");
        assert_eq!(router.reply_stats().dropped_progress, 1);
    }

    #[test]
    fn handlers_get_cancels_and_never_see_a_request_cancelled_in_the_same_read() {
        let mut router = router();
        let mut deliveries = listen(&mut router, &["requests", "cancels"]);
        let doomed = Message::request("slow", json!(null));
        let kept = Message::request("quick", json!(null));
        let cancel = Message::event(replies::CANCEL_EVENT, json!({"requestId": doomed.id}));
        router.route(
            read(vec![doomed.clone(), kept.clone(), cancel]),
            &mut deliveries,
        );
        let ids: Vec<_> = routed(&deliveries)
            .into_iter()
            .map(|d| match d {
                Delivery::Messages(messages) => format!("messages {}", messages[0].id),
                Delivery::Cancel(_) => "cancel".to_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [format!("messages {}", kept.id), "cancel".to_owned()]);
        assert_eq!(router.reply_stats().dropped_requests, 1);
    }

    #[test]
    fn waits_expire_at_their_deadline_and_tell_the_next_one() {
        let mut router = router();
        let soon = pending(router.add_wait("a", 1, Duration::ZERO, false));
        let later = pending(router.add_wait("b", 2, LONG, false));
        let mut deliveries = Vec::new();
        let next = router.expire(soon, &mut deliveries);
        assert_eq!(next, Some(later));
        assert!(matches!(
            deliveries.as_slice(),
            [Delivery::Expired {
                token: 1,
                error: ChannelError::Timeout { .. }
            }]
        ));
        assert_eq!(router.close(), vec![2]);
    }

    #[test]
    fn an_overfull_queue_drops_the_oldest_and_says_so() {
        let mut router = router();
        let events: Vec<_> = (0..5).map(|n| Message::event("e", json!(n))).collect();
        router.route(read(events.clone()), &mut Vec::new());
        // Problems wait for recv() while nobody listens for them, and come first.
        let problem = router.take_for_recv(10).unwrap_err();
        assert!(
            matches!(problem, ChannelError::QueueOverflow { count: 2, limit: 3 }),
            "{problem:?}"
        );
        let kept: Vec<_> = router
            .take_for_recv(10)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        let newest: Vec<_> = events[2..].iter().map(|m| m.id.clone()).collect();
        assert_eq!(kept, newest);
    }

    #[test]
    fn only_what_javascript_took_is_acknowledged() {
        let mut router = router();
        listen(&mut router, &["events"]);
        let first = Message::event("e", json!(1));
        let second = Message::event("e", json!(2));
        router.route(read(vec![first.clone()]), &mut Vec::new());
        router.route(read(vec![second.clone()]), &mut Vec::new());
        assert_eq!(router.taken_upto(), None);
        router.note_taken(1);
        assert_eq!(router.taken_upto(), Some(first.id));
        router.note_taken(1);
        assert_eq!(router.taken_upto(), Some(second.id));
    }

    #[test]
    fn the_dispatcher_starts_once_when_needed_and_lingers_before_stopping() {
        let mut router = router();
        assert!(!router.start_dispatcher(), "nothing needs it yet");
        pending(router.add_wait("a", 1, LONG, false));
        assert!(router.start_dispatcher());
        assert!(!router.start_dispatcher(), "already running");
        router.cancel_wait(1);
        let now = Instant::now();
        assert!(router.keep_dispatching(now), "lingers");
        assert!(!router.keep_dispatching(now + DISPATCHER_LINGER));
        assert!(!router.dispatcher_running());
    }

    #[test]
    fn an_answer_sets_one_pruning_deadline_that_keeps_the_dispatcher_until_it_is_taken() {
        let mut router = router();
        let now = Instant::now();
        let after = Duration::from_secs(1);
        assert_eq!(router.note_answered(now, after), Some(now + after));
        // Later answers keep the first deadline (and schedule nothing new).
        assert_eq!(router.note_answered(now + after / 2, after), None);
        assert!(router.start_dispatcher(), "a deadline needs the dispatcher");
        assert_eq!(router.take_prune_due(now), (false, Some(now + after)));
        assert!(
            router.keep_dispatching(now + DISPATCHER_LINGER),
            "kept for the deadline"
        );
        assert_eq!(router.take_prune_due(now + after), (true, None));
        assert_eq!(router.take_prune_due(now + after * 2), (false, None));
        let later = now + after + DISPATCHER_LINGER;
        assert!(
            router.keep_dispatching(later),
            "lingers once the deadline is taken"
        );
        assert!(!router.keep_dispatching(later + DISPATCHER_LINGER));
    }
}
