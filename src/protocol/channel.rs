//! One end of a channel: our outbox, the peer's outbox as our inbox, and the routing of every
//! incoming message to exactly one place: the wait for it, else the listeners, else the queue
//! that `recv()` drains.

use super::ack::AckPublisher;
use super::error::{ChannelError, Result};
use super::files::{create_new_with, read_message_file, stat};
use super::inbox::{InboxReader, ReadOutcome};
use super::message::REFERENCE_CAP;
use super::message::{decode_file, depth, Entry, Message, MessageType, MAX_PAYLOAD_DEPTH};
pub use super::options::ChannelOptions;
use super::outbox::{Outbox, Withdrawals};
use super::platform;
use super::platform::FileIdentity;
use super::presence::{PeerInfo, PeerState, Presence};
use super::reactor;
use super::replies::{self, EarlierSession, Replies, ReplyStats};
use super::watch;
use crate::protocol::sync::lock;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

pub const BACKEND_OUTBOX: &str = "backend_to_frontend.json";
pub const FRONTEND_OUTBOX: &str = "frontend_to_backend.json";
pub const CHANNEL_INFO: &str = ".channel_info";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Frontend,
    Backend,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Frontend => "frontend",
            Role::Backend => "backend",
        }
    }

    fn outbox_and_inbox(self) -> (&'static str, &'static str) {
        match self {
            Role::Frontend => (FRONTEND_OUTBOX, BACKEND_OUTBOX),
            Role::Backend => (BACKEND_OUTBOX, FRONTEND_OUTBOX),
        }
    }
}

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

pub trait DeliverySink: Send + Sync {
    /// Returns false once the receiving side is gone for good.
    fn deliver(&self, batch: Vec<Delivery>) -> bool;
}

struct Waiter {
    token: u64,
    started: Instant,
    deadline: Instant,
    /// A `request()`: its `task.progress` events are delivered to it, not to listeners.
    follows: bool,
}

struct State {
    queue: VecDeque<Message>,
    waiters: HashMap<String, Vec<Waiter>>,
    listening: Listening,
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

impl State {
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
    fn has_room(&self) -> bool {
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
    fn requeue_front(&mut self, messages: Vec<Message>) {
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

    /// JavaScript took `count` more messages (a listener batch, a `recv()`).
    fn note_taken(&mut self, mut count: usize) {
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
}

pub struct Channel {
    /// This channel, for the jobs it hands to the process's dispatcher and writer threads.
    me: Weak<Channel>,
    /// Its key in their schedules.
    key: u64,
    /// The dispatcher's state for this channel: its watch and safety re-reads.
    dispatch: Mutex<DispatchState>,
    /// The directory as the caller named it.
    dir: PathBuf,
    /// The directory itself, links on the way resolved once, at opening.
    real_dir: PathBuf,
    /// Which directory that was: before each write we check it is still the same one.
    dir_identity: Mutex<Option<FileIdentity>>,
    role: Role,
    options: ChannelOptions,
    outbox: Mutex<Outbox>,
    inbox_path: PathBuf,
    /// The inbox's reader, read with the delivery-order lock held but not the state lock: a
    /// long read never holds up the JavaScript thread's calls, which take the state lock.
    reader: Mutex<InboxReader>,
    state: Mutex<State>,
    /// Set once, by `close()` under the state lock: a check under that lock sees a close that
    /// is complete; a check without it (a promise call) never waits for the lock.
    closed: AtomicBool,
    sink: Mutex<Option<Arc<dyn DeliverySink>>>,
    next_token: AtomicU64,
    /// Our published read position, when acknowledgements are on; written after deliveries
    /// are dispatched and outside the state lock, so it never delays a message.
    ack: Mutex<Option<AckPublisher>>,
    /// The peer announced itself from another host (see `note_peer_changed`).
    peer_elsewhere: AtomicBool,
    /// The directory was found replaced by one that is not private: its inbox is not read.
    dir_refused: AtomicBool,
    /// Sends waiting for the writer thread (the promise API).
    sends: Mutex<SendQueue>,
    /// Held from routing a batch until the sink has it. The watcher, the dispatcher and the JS
    /// thread all read the inbox; without this, a later batch could overtake an earlier one.
    delivery_order: Mutex<()>,
}

/// A send queued for the writer thread.
struct QueuedSend {
    message: Message,
    /// Settles the caller's promise (`Delivery::Sent`); a request's shows through its wait.
    token: Option<u64>,
    /// The response wait of a request, failed with the send.
    wait: Option<u64>,
    deadline: Instant,
}

#[derive(Default)]
struct SendQueue {
    queued: VecDeque<QueuedSend>,
    /// Why the last attempt did not get through (lock held, file held open, backlog full).
    last_refusal: Option<ChannelError>,
    /// The next retry's pause.
    backoff: Duration,
    /// Sends taken from `queued` by a write in progress (they go back if it does not get through).
    in_flight: usize,
}

const MAX_PENDING_PROBLEMS: usize = 64;
/// How soon after an answer the outbox is rewritten without the answered request, when no send
/// does it first: a backend that crashes and restarts meanwhile would find it.
const PRUNE_DELAY: Duration = Duration::from_secs(1);
const DISPATCHER_LINGER: Duration = Duration::from_secs(2);

static NEXT_CHANNEL_KEY: AtomicU64 = AtomicU64::new(1);
/// Marks a channel's close job in the writer's schedule, apart from its send job.
const CLOSE_JOB_KEY: u64 = 1 << 63;

/// How often a watched inbox is re-read anyway (a watcher can miss a change, or go silent): idle
/// channels cost a stat every two seconds, not ten reads a second.
const SAFETY_READ_WHILE_WATCHING: Duration = Duration::from_secs(2);

/// What the safety re-reads of all the process's watched channels may cost together: beyond 400
/// channels their period grows instead (1,000 channels: a stat each every 5 s).
const SAFETY_READS_PER_SECOND: u32 = 200;

/// What the dispatcher keeps for a channel between its rounds.
#[derive(Default)]
struct DispatchState {
    /// Whether the watch was started (the channel is served by the dispatcher).
    started: bool,
    watch: DirWatch,
    /// When the next safety re-read is due.
    next_safety: Option<Instant>,
}

impl Channel {
    /// Opens or creates the channel as the reference does: the directory, `.channel_info`, and
    /// both message files as `[]` when missing.
    pub fn open(dir: &Path, role: Role, options: ChannelOptions) -> Result<Arc<Channel>> {
        if options.max_messages == 0 {
            return Err(ChannelError::Invalid(
                "options.maxMessages must be at least 1".into(),
            ));
        }
        let given = dir;
        if !options.allow_insecure {
            refuse_foreign_links(given)?;
        }
        create_channel_dir(given, options.dir_mode)?;
        // Work on the directory that was checked, wherever a link on the way points later.
        let dir =
            &platform::resolve_links(given).map_err(|e| ChannelError::io("resolving", given, e))?;
        if !options.allow_insecure {
            check_dir_is_private(dir)?;
        }
        let dir_identity = stat(dir)?.map(FileIdentity::without_times);
        let info = format!(
            "{{\n  \"created\": {},\n  \"protocol\": \"file-ipc\",\n  \"version\": \"1.0\"\n}}",
            super::message::now_ms()
        );
        create_if_missing(&dir.join(CHANNEL_INFO), info.as_bytes(), options.file_mode)?;
        let (outbox_name, inbox_name) = role.outbox_and_inbox();
        for name in [outbox_name, inbox_name] {
            create_if_missing(&dir.join(name), b"[]", options.file_mode)?;
        }
        let inbox_path = dir.join(inbox_name);
        let earlier = EarlierSession::from_files(
            &messages_in(&dir.join(outbox_name), options.max_file_bytes),
            &messages_in(&inbox_path, options.max_file_bytes),
        );
        // The peer's cap is not ours to know: judge loss by the reference's.
        let mut reader =
            InboxReader::new(inbox_path.clone(), options.max_file_bytes, REFERENCE_CAP);
        reader.set_acknowledging(options.acknowledge);
        reader.note_baseline();
        let mut ack = options.acknowledge.then(|| {
            let reader_id = uuid::Uuid::new_v4().simple().to_string();
            AckPublisher::new(
                &inbox_path,
                &reader_id,
                options.ack_timeout,
                options.file_mode,
                platform::is_local_file_system(dir),
            )
        });
        if let Some(publisher) = &mut ack {
            // From now on the writer keeps what we have not read.
            publisher.flush(Instant::now())?;
        }
        let outbox = Outbox::new(dir.join(outbox_name), options.outbox_settings());
        let withdrawals = outbox.withdrawals();
        Ok(Arc::new_cyclic(|me| Channel {
            me: me.clone(),
            key: NEXT_CHANNEL_KEY.fetch_add(1, Ordering::Relaxed),
            dispatch: Mutex::new(DispatchState::default()),
            dir: given.to_path_buf(),
            real_dir: dir.to_path_buf(),
            dir_identity: Mutex::new(dir_identity),
            role,
            outbox: Mutex::new(outbox),
            inbox_path,
            options,
            reader: Mutex::new(reader),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                waiters: HashMap::new(),
                listening: Listening::default(),
                problems: VecDeque::new(),
                dispatcher_running: false,
                dispatcher_idle_since: None,
                replies: Replies::with_earlier_session(earlier),
                withdrawals,
                presence: Presence::new(role.as_str()),
                untaken_reads: VecDeque::new(),
                taken_upto: None,
                pulls: false,
                queue_uncounted: 0,
                taken_credit: 0,
            }),
            sink: Mutex::new(None),
            next_token: AtomicU64::new(1),
            ack: Mutex::new(ack),
            peer_elsewhere: AtomicBool::new(false),
            dir_refused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            sends: Mutex::new(SendQueue::default()),
            delivery_order: Mutex::new(()),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Before a write: the directory must still be the one that was checked. One replaced since
    /// (the peer re-created the channel, or someone swapped it) is checked again and refused if
    /// it is not private: our messages would go where others can read or plant them.
    fn check_dir_unchanged(&self) -> Result<()> {
        let Some((now, true)) = platform::identity_at(&self.real_dir)
            .ok()
            .map(|(identity, is_file)| (identity.without_times(), !is_file))
        else {
            return Ok(()); // gone or not a directory: the write itself fails and says so
        };
        let mut checked = lock(&self.dir_identity);
        if *checked != Some(now) {
            if !self.options.allow_insecure {
                check_dir_is_private(&self.real_dir)?;
            }
            *checked = Some(now);
        }
        Ok(())
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn inbox_path(&self) -> &Path {
        &self.inbox_path
    }

    pub fn set_sink(&self, sink: Arc<dyn DeliverySink>) {
        *lock(&self.sink) = Some(sink);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    // ---- sending ----

    pub fn send(&self, message: &Message) -> Result<()> {
        self.check_open()?;
        check_sendable(message)?;
        let patience = self.options.lock_timeout;
        self.write_outbox(&mut lock(&self.outbox), &[message], patience)
            .map(|_| ())
    }

    /// The one way into the outbox, for the synchronous sends and the writer thread alike: the
    /// directory must still be the one checked at opening, then the messages are appended under
    /// the lock (none: only settled requests are left out). Returns whether it wrote.
    fn write_outbox(
        &self,
        outbox: &mut Outbox,
        messages: &[&Message],
        patience: Duration,
    ) -> Result<bool> {
        self.check_dir_unchanged()?;
        if messages.is_empty() {
            outbox.prune()
        } else {
            outbox.append_with(messages, patience).map(|()| true)
        }
    }

    pub fn send_request(&self, method: &str, params: Value) -> Result<String> {
        let message = Message::request(method, params);
        self.send(&message)?;
        Ok(message.id)
    }

    pub fn send_response(&self, request_id: &str, result: Value) -> Result<()> {
        self.send(&Message::response(request_id, result))
    }

    pub fn send_error(&self, request_id: &str, error: &str) -> Result<()> {
        self.send(&Message::error_response(request_id, error))
    }

    pub fn send_event(&self, name: &str, payload: Value) -> Result<()> {
        self.send(&Message::event(name, payload))
    }

    /// Empties both files. Unlike the reference, each under its writer's lock and by rename.
    pub fn clear(&self) -> Result<()> {
        self.check_open()?;
        self.check_dir_unchanged()?;
        lock(&self.outbox).clear()?;
        Outbox::new(self.inbox_path.clone(), self.options.outbox_settings()).clear()?;
        let (order, mut state) = self.lock_open_ordered()?;
        let cleared = state.queue.len();
        state.take_queued(cleared);
        drop(state);
        // Whatever the peer wrote since the inbox was emptied is new, not cleared.
        let outcome = lock(&self.reader).read_new();
        let mut state = self.lock_open()?;
        // (Read directly: the directory was checked above, and JavaScript asked for this read.)
        let mut deliveries = Vec::new();
        self.route(&mut state, outcome, &mut deliveries);
        drop(state);
        self.dispatch(order, deliveries);
        Ok(())
    }

    // ---- receiving ----

    /// New messages not claimed by a wait or the listeners. A pending problem (a malformed
    /// inbox, loss) is returned first, once; the messages stay queued for the next call.
    pub fn recv(&self, limit: usize) -> Result<Vec<Message>> {
        let order = lock(&self.delivery_order);
        let outcome = self.read_inbox()?;
        let mut state = self.lock_open()?;
        let mut deliveries = Vec::new();
        self.route(&mut state, outcome, &mut deliveries);
        let result = match state.problems.pop_front() {
            Some(problem) => Err(problem),
            None => {
                state.pulls = true;
                let take = limit.min(state.queue.len());
                Ok(state.take_queued(take))
            }
        };
        drop(state);
        self.dispatch(order, deliveries);
        result
    }

    /// Registers a wait for the response to `request_id`; the response is delivered as
    /// `Delivery::Resolved` with the returned token, or `Expired` after `timeout`.
    pub fn wait_response(self: &Arc<Self>, request_id: &str, timeout: Duration) -> Result<u64> {
        self.register_wait(request_id, timeout, false)
    }

    /// `wait_response`; `follows`: the wait of a `request()`, which takes its progress events.
    fn register_wait(
        self: &Arc<Self>,
        request_id: &str,
        timeout: Duration,
        follows: bool,
    ) -> Result<u64> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        // Not the delivery-order lock: a read in flight holds it (a response found here was
        // queued by an earlier read, so it comes after nothing still being read).
        let mut state = self.lock_open()?;
        let mut deliveries = Vec::new();
        state.replies.reopen(request_id);
        let queued = state.queue.iter().position(|m| {
            m.kind == MessageType::Response && m.reply_to.as_deref() == Some(request_id)
        });
        // The inbox is not read here, on the JavaScript thread: a running dispatcher's watch has
        // queued what came already, and a dispatcher that starts now reads it first.
        let mut deadline = None;
        match queued.and_then(|index| state.take_queued_at(index)) {
            Some(message) => {
                state.replies.end(request_id, follows);
                deliveries.push(Delivery::Resolved { token, message })
            }
            None => {
                let started = Instant::now();
                let waiter = Waiter {
                    token,
                    started,
                    deadline: started + timeout,
                    follows,
                };
                deadline = Some(waiter.deadline);
                state
                    .waiters
                    .entry(request_id.to_owned())
                    .or_default()
                    .push(waiter);
            }
        }
        drop(state);
        self.deliver(deliveries);
        self.ensure_dispatcher();
        // A running dispatcher may be sleeping past this wait's deadline: it runs by then (and
        // is not woken when it runs earlier anyway).
        if let Some(deadline) = deadline {
            self.schedule_dispatcher(deadline);
        }
        Ok(token)
    }

    /// Sends a request with its wait already registered, so no listener can take the response.
    pub fn begin_request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<(String, u64)> {
        let message = Message::request(method, params);
        let token = self.register_wait(&message.id, timeout, true)?;
        if let Err(error) = self.send(&message) {
            self.cancel_token(token);
            return Err(error);
        }
        Ok((message.id, token))
    }

    /// Queues `message` for the writer thread and returns at once: the result comes as
    /// `Delivery::Sent` with the returned token. A send that finds the outbox locked, held open
    /// or full is retried until `timeout`, then fails with the last refusal.
    pub fn enqueue_send(self: &Arc<Self>, message: Message, timeout: Duration) -> Result<u64> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.enqueue(message, Some(token), None, timeout)?;
        Ok(token)
    }

    /// Sends a request through the writer thread, its response wait registered before this
    /// returns. Returns the request id and the wait's token; a send that fails fails the wait.
    pub fn begin_request_queued(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<(String, u64)> {
        let message = Message::request(method, params);
        let id = message.id.clone();
        let wait = self.register_wait(&id, timeout, true)?;
        if let Err(error) = self.enqueue(message, None, Some(wait), timeout) {
            self.cancel_token(wait);
            return Err(error);
        }
        Ok((id, wait))
    }

    fn enqueue(
        self: &Arc<Self>,
        message: Message,
        token: Option<u64>,
        wait: Option<u64>,
        timeout: Duration,
    ) -> Result<()> {
        self.check_open()?;
        check_sendable(&message)?;
        let mut sends = lock(&self.sends);
        sends.queued.push_back(QueuedSend {
            message,
            token,
            wait,
            deadline: Instant::now() + timeout,
        });
        drop(sends);
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || me.upgrade().and_then(|c| c.flush_sends()));
        reactor::writer().schedule(self.key, Instant::now(), job);
        Ok(())
    }

    /// The end of a queued send: its promise settles, and a failed request's wait with it.
    fn finish_send(&self, send: QueuedSend, result: Result<()>, deliveries: &mut Vec<Delivery>) {
        match (result, send.token, send.wait) {
            (Ok(()), Some(token), _) => deliveries.push(Delivery::Sent {
                token,
                result: Ok(send.message.id),
            }),
            (Err(error), Some(token), _) => deliveries.push(Delivery::Sent {
                token,
                result: Err(error),
            }),
            (Err(error), None, Some(wait)) => {
                if self.cancel_token(wait) {
                    deliveries.push(Delivery::Expired { token: wait, error });
                }
            }
            (Ok(()), None, _) | (Err(_), None, None) => {}
        }
    }

    /// JavaScript took `count` messages handed to its listeners (the delivery callback ran).
    pub fn note_taken(&self, count: usize) {
        if count > 0 {
            lock(&self.state).note_taken(count);
        }
    }

    /// Puts messages that were handed out but not consumed (an iterator that ended early) back
    /// at the front of the `recv()` queue, in order.
    pub fn requeue(&self, messages: Vec<Message>) -> Result<()> {
        self.lock_open()?.requeue_front(messages);
        Ok(())
    }

    /// Drops the wait `token`; returns whether it was pending.
    pub fn cancel_token(&self, token: u64) -> bool {
        let mut state = lock(&self.state);
        let mut found = None;
        state.waiters.retain(|request_id, waiters| {
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
            state.end_wait(request_id, *follows);
        }
        found.is_some()
    }

    pub fn pending_waits(&self) -> usize {
        lock(&self.state).waiters.values().map(Vec::len).sum()
    }

    /// What is known of the peer now: reads the inbox for its announcements and checks the
    /// heartbeats of our outbox's readers. A change is also delivered (`Delivery::Peer`).
    pub fn check_peer(&self) -> Result<PeerInfo> {
        self.poll()?;
        let outbox = self.real_dir.join(self.role.outbox_and_inbox().0);
        let readers = super::inspect::readers(&outbox, self.options.ack_timeout, None);
        let order = lock(&self.delivery_order);
        let mut state = self.lock_open()?;
        let mut deliveries = Vec::new();
        if let Some(info) = state.presence.check(&readers) {
            self.note_peer_changed(&info);
            deliveries.push(Delivery::Peer(info));
        }
        let info = state.presence.info().clone();
        drop(state);
        self.dispatch(order, deliveries);
        Ok(info)
    }

    /// Responses and progress dropped because their wait had ended.
    pub fn reply_stats(&self) -> ReplyStats {
        lock(&self.state).replies.stats
    }

    /// Says which listeners exist. Queued messages the new listeners want are handed to them.
    pub fn set_listening(self: &Arc<Self>, listening: Listening) -> Result<()> {
        let (order, mut state) = self.lock_open_ordered()?;
        state.listening = listening;
        let mut deliveries = Vec::new();
        let wanted = state.take_queued_for(listening);
        if !wanted.is_empty() {
            deliveries.push(Delivery::Messages(wanted.into()));
        }
        if listening.errors && !state.problems.is_empty() {
            deliveries.push(Delivery::Problems(state.problems.drain(..).collect()));
        }
        drop(state);
        self.dispatch(order, deliveries);
        self.ensure_dispatcher();
        Ok(())
    }

    /// Reads the inbox now and delivers what is new (the dispatcher does this on every change).
    pub fn poll(&self) -> Result<()> {
        let order = lock(&self.delivery_order);
        let outcome = self.read_inbox()?;
        let mut state = self.lock_open()?;
        let mut deliveries = Vec::new();
        self.route(&mut state, outcome, &mut deliveries);
        drop(state);
        self.dispatch(order, deliveries);
        Ok(())
    }

    /// Closes the channel: returns the tokens of the waits still pending, which the owner rejects.
    pub fn close(&self) -> Vec<u64> {
        if self.is_closed() {
            return Vec::new();
        }
        // What was handed to the writer before close() is written now (one attempt per batch:
        // a send that finds the outbox locked fails with ECLOSED instead of being retried).
        self.write_queued_now();
        let mut state = lock(&self.state);
        if self.closed.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        state.queue.clear();

        let tokens = state
            .waiters
            .drain()
            .flat_map(|(_, ws)| ws)
            .map(|w| w.token)
            .collect();
        drop(state);
        if let Some(ack) = lock(&self.ack).take() {
            ack.remove();
        }
        // The watch goes now, not at the dispatcher's next round: a directory still watched
        // cannot be removed on Windows, and callers remove it right after close().
        drop(std::mem::take(&mut *lock(&self.dispatch)));
        self.wake_dispatcher();
        lock(&self.sink).take();
        tokens
    }

    // ---- internals ----

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(ChannelError::Closed);
        }
        Ok(())
    }

    /// Reads what is new in the inbox, if JavaScript has room for it. The caller holds the
    /// delivery-order lock (reads and their deliveries keep file order); the state lock is not
    /// held while the file is read.
    fn read_inbox(&self) -> Result<ReadOutcome> {
        let room = self.lock_open()?.has_room();
        if !room {
            return Ok(ReadOutcome::default());
        }
        // What a replaced directory holds may be planted: it is not read (reported once).
        if let Err(problem) = self.check_dir_unchanged() {
            let first = !self.dir_refused.swap(true, Ordering::AcqRel);
            return Ok(ReadOutcome {
                problems: if first { vec![problem] } else { Vec::new() },
                ..ReadOutcome::default()
            });
        }
        self.dir_refused.store(false, Ordering::Release);
        let lapsed = lock(&self.ack)
            .as_ref()
            .is_some_and(|publisher| publisher.has_lapsed(Instant::now()));
        let mut reader = lock(&self.reader);
        if lapsed {
            reader.note_lapsed();
        }
        Ok(reader.read_new())
    }

    /// The delivery-order lock, then the state lock (always in that order).
    fn lock_open_ordered(&self) -> Result<(MutexGuard<'_, ()>, MutexGuard<'_, State>)> {
        let order = lock(&self.delivery_order);
        let state = self.lock_open()?;
        Ok((order, state))
    }

    fn lock_open(&self) -> Result<MutexGuard<'_, State>> {
        let state = lock(&self.state);
        if self.is_closed() {
            return Err(ChannelError::Closed);
        }
        Ok(state)
    }

    fn route(&self, state: &mut State, outcome: ReadOutcome, deliveries: &mut Vec<Delivery>) {
        let last_read = outcome.last_id;
        let mut for_listeners = Vec::new();
        let mut dropped = 0u64;
        let mut dropped_counted = 0;
        let mut queued = 0;
        let mut controls = Vec::new();
        // Our handlers never start a request that its sender cancelled in the same batch (a
        // restarted peer reads both at once).
        let cancelled: HashSet<String> = if state.listening.cancels {
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
                state.replies.note_cancelled_request();
                continue;
            }
            if let (MessageType::Response, Some(id)) = (message.kind, &message.reply_to) {
                // Answered: a peer that (re)starts must not run it again.
                state.withdrawals.add(id);
                answered = true;
            }
            let Some(message) = self.intercept(state, message, &mut controls) else {
                continue;
            };
            if message.kind == MessageType::Response {
                let waiters = message
                    .reply_to
                    .as_ref()
                    .and_then(|id| state.waiters.remove(id));
                if let Some(mut waiters) = waiters {
                    let follows = waiters.iter().any(|w| w.follows);
                    if let Some(id) = &message.reply_to {
                        state.replies.end(id, follows);
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
            if state.listening.wants(message.kind) {
                for_listeners.push(message);
            } else {
                if state.queue_for_recv(message) {
                    queued += 1;
                }
                if state.queue.len() > self.options.max_queued {
                    dropped_counted += usize::from(state.drop_oldest_queued());
                    dropped += 1;
                }
            }
        }
        if answered {
            self.schedule_prune(PRUNE_DELAY);
        }
        state.note_read(last_read, for_listeners.len() + queued);
        // Dropped from the queue: never to be taken.
        state.note_taken(dropped_counted);
        if !for_listeners.is_empty() {
            deliveries.push(Delivery::Messages(for_listeners));
        }
        deliveries.extend(controls);
        let mut problems = outcome.problems;
        if dropped > 0 {
            problems.push(ChannelError::QueueOverflow {
                count: dropped,
                limit: self.options.max_queued,
            });
        }
        self.report(state, problems, deliveries);
    }

    /// Before routing: late and repeated responses are dropped; the extension events that
    /// belong to a `request()` (its progress) or to our handlers (`task.cancel`) go to them
    /// alone; the peer's announcements update its presence and go on to the listeners.
    fn intercept(
        &self,
        state: &mut State,
        message: Message,
        controls: &mut Vec<Delivery>,
    ) -> Option<Message> {
        let waiting = message
            .reply_to
            .as_ref()
            .is_some_and(|id| state.waiters.contains_key(id));
        if state.replies.take_late_response(&message, waiting)
            || state.replies.take_answered_request(&message)
        {
            return None;
        }
        if let Some(request_id) = replies::progress_token(&message) {
            let following = state.waiters.get(request_id).map_or(Vec::new(), |waiters| {
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
            if state.replies.take_late_progress(&message, request_id) {
                return None;
            }
        } else if state.listening.cancels && replies::cancel_target(&message).is_some() {
            controls.push(Delivery::Cancel(message));
            return None;
        } else if let Some(info) = state
            .presence
            .observe(&message, !state.replies.is_new_since_open(&message))
        {
            self.note_peer_changed(&info);
            controls.push(Delivery::Peer(info));
        }
        if state.presence.info().state == PeerState::Unknown
            && !state.presence.is_announcement(&message)
            && state.replies.is_new_since_open(&message)
        {
            if let Some(info) = state.presence.observe_activity() {
                controls.push(Delivery::Peer(info));
            }
        }
        Some(message)
    }

    fn report(
        &self,
        state: &mut State,
        problems: Vec<ChannelError>,
        deliveries: &mut Vec<Delivery>,
    ) {
        if problems.is_empty() {
            return;
        }
        if state.listening.errors {
            deliveries.push(Delivery::Problems(problems));
        } else {
            state.problems.extend(problems);
            let excess = state.problems.len().saturating_sub(MAX_PENDING_PROBLEMS);
            state.problems.drain(..excess);
        }
    }

    /// Hands deliveries to the sink, lets the next batch go, then publishes how far we have read.
    fn dispatch(&self, order: MutexGuard<'_, ()>, deliveries: Vec<Delivery>) {
        self.deliver(deliveries);
        drop(order);
        self.publish_ack();
    }

    /// A peer on another host judges our acknowledgement by its age: it needs a heartbeat. A
    /// peer that is gone may be restarted: our settled requests leave the outbox now.
    fn note_peer_changed(&self, info: &PeerInfo) {
        if info.state == PeerState::Gone {
            self.schedule_prune(Duration::ZERO);
        }
        if info
            .host
            .as_deref()
            .is_some_and(|host| host != platform::host_name())
        {
            self.peer_elsewhere.store(true, Ordering::Relaxed);
        }
    }

    fn publish_ack(&self) {
        let mut ack = lock(&self.ack);
        let Some(publisher) = ack.as_mut() else {
            return;
        };
        // Nothing goes into a directory that was replaced by one that is not private.
        if self.dir_refused.load(Ordering::Acquire) {
            return;
        }
        if self.peer_elsewhere.load(Ordering::Relaxed) {
            publisher.note_peer_elsewhere();
        }
        let state = lock(&self.state);
        publisher.set_active(state.dispatcher_running);
        publisher.note_consumed(state.taken_upto.clone());
        drop(state);
        if let Err(problem) = publisher.flush_if_due(Instant::now()) {
            drop(ack);
            let mut deliveries = Vec::new();
            let _order = lock(&self.delivery_order);
            let mut state = lock(&self.state);
            self.report(&mut state, vec![problem], &mut deliveries);
            drop(state);
            self.deliver(deliveries);
        }
    }

    /// Hands deliveries to the sink. A sink that refuses (its JavaScript environment is going
    /// away) is dropped and the close runs later on the writer thread: the caller may hold the
    /// dispatch or delivery-order lock, which `close()` takes, so closing here would deadlock.
    fn deliver(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let sink = lock(&self.sink).clone();
        if let Some(sink) = sink {
            if !sink.deliver(deliveries) {
                lock(&self.sink).take();
                self.schedule_close();
            }
        }
    }

    /// Has the writer thread leave our settled requests out of the outbox `after` from now (or
    /// earlier, with a send).
    fn schedule_prune(&self, after: Duration) {
        if self.is_closed() {
            return;
        }
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || me.upgrade().and_then(|c| c.flush_sends()));
        reactor::writer().schedule(self.key, Instant::now() + after, job);
    }

    /// Closes the channel from the writer thread, which holds none of its locks.
    fn schedule_close(&self) {
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || {
            if let Some(channel) = me.upgrade() {
                channel.close();
            }
            None
        });
        reactor::writer().schedule(self.key | CLOSE_JOB_KEY, Instant::now(), job);
    }

    /// One round of the dispatcher: read, route, expire. Returns whether the dispatcher is still
    /// needed (if not, it is marked stopped under the same lock), the next deadline, and whether
    /// the read found new messages.
    fn tick(&self, deliveries: &mut Vec<Delivery>) -> (bool, Option<Instant>, bool) {
        let outcome = self.read_inbox().unwrap_or_default();
        let mut state = lock(&self.state);
        if self.is_closed() {
            state.dispatcher_running = false;
            return (false, None, false);
        }
        let found = !outcome.messages.is_empty();
        self.route(&mut state, outcome, deliveries);
        let now = Instant::now();
        let mut next_deadline: Option<Instant> = None;
        let mut ended = Vec::new();
        state.waiters.retain(|request_id, waiters| {
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
            state.end_wait(&request_id, follows);
        }
        let needed =
            !state.waiters.is_empty() || state.listening.any_messages() || state.listening.errors;
        let idle_since = match (needed, state.dispatcher_idle_since) {
            (true, _) => None,
            (false, since) => Some(since.unwrap_or(now)),
        };
        state.dispatcher_idle_since = idle_since;
        let keep_running = idle_since.is_none_or(|since| now - since < DISPATCHER_LINGER);
        if !keep_running {
            state.dispatcher_running = false;
            state.dispatcher_idle_since = None;
        }
        (keep_running, next_deadline, found)
    }

    fn ensure_dispatcher(self: &Arc<Self>) {
        let mut state = lock(&self.state);
        let needed =
            !state.waiters.is_empty() || state.listening.any_messages() || state.listening.errors;
        if self.is_closed() || state.dispatcher_running || !needed {
            return;
        }
        state.dispatcher_running = true;
        drop(state);
        self.wake_dispatcher();
    }

    /// Has the process's dispatcher run a round for this channel now (it re-plans its deadlines).
    fn wake_dispatcher(&self) {
        self.schedule_dispatcher(Instant::now());
    }

    /// Has the process's dispatcher run a round for this channel at `at`, or earlier if it does
    /// already.
    fn schedule_dispatcher(&self, at: Instant) {
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || me.upgrade().and_then(|c| c.dispatch_round()));
        reactor::dispatcher().schedule(self.key, at, job);
    }

    /// Reports, once per problem, that changes are found by polling instead of by the watcher.
    fn report_watch_problem(&self, reason: String) {
        let problem = ChannelError::Watch {
            dir: self.dir.clone(),
            reason,
            poll_ms: self.options.poll_interval.as_millis() as u64,
        };
        let mut deliveries = Vec::new();
        let order = lock(&self.delivery_order);
        let mut state = lock(&self.state);
        self.report(&mut state, vec![problem], &mut deliveries);
        drop(state);
        self.dispatch(order, deliveries);
    }

    /// One round of the process's dispatcher for this channel: read, route, expire waits, and
    /// on safety re-reads check the watch. Returns when the next round is due, if the channel
    /// still needs one.
    fn dispatch_round(&self) -> Option<Instant> {
        let mut dispatch = lock(&self.dispatch);
        let now = Instant::now();
        if !dispatch.started {
            dispatch.started = true;
            dispatch.next_safety = Some(now + self.options.poll_interval);
            if self.options.watch {
                if let Err(reason) = self.start_watch(&mut dispatch.watch) {
                    self.report_watch_problem(reason);
                }
            }
        }
        let safety_read = dispatch.next_safety.is_none_or(|due| due <= now);
        let mut deliveries = Vec::new();
        let order = lock(&self.delivery_order);
        let (needed, next_deadline, found) = self.tick(&mut deliveries);
        self.dispatch(order, deliveries);
        if !needed {
            // Idle (or closed): the watch goes; a later need starts a new one.
            *dispatch = DispatchState::default();
            return None;
        }
        if safety_read {
            dispatch.next_safety = Some(self.next_safety_read(&dispatch.watch, now));
            if self.options.watch {
                if let Some(reason) = dispatch.watch.check_missed(found) {
                    // Stopped by the OS (ReadDirectoryChangesW's buffer overflow ends notify's
                    // watch) or silent: re-arm it; the safety re-reads go on meanwhile.
                    let _ = self.start_watch(&mut dispatch.watch);
                    if let Some(reason) = reason {
                        self.report_watch_problem(reason);
                    }
                }
                // The watch dies with its directory; re-arm it when the directory is back (a
                // directory replaced has no inbox or another one: only then is it looked at).
                let inbox_version = lock(&self.reader).last_stat();
                if dispatch.watch.inbox_moved(inbox_version) && dispatch.watch.is_stale(&self.dir) {
                    let _ = self.start_watch(&mut dispatch.watch);
                }
            }
        }
        let safety = dispatch.next_safety.unwrap_or(now);
        Some(next_deadline.map_or(safety, |deadline| deadline.min(safety)))
    }

    /// When the next safety re-read is due. While the watch is healthy, events bring changes and
    /// the re-read is a slow check, on a grid shared by every channel so that one wake-up serves
    /// them all; without a watch, it is the polling period.
    fn next_safety_read(&self, watch: &DirWatch, now: Instant) -> Instant {
        if !self.options.watch || !watch.is_healthy() {
            return now + self.options.poll_interval;
        }
        static GRID_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *GRID_START.get_or_init(Instant::now);
        let watched = u32::try_from(watch::watched_inboxes()).unwrap_or(u32::MAX);
        let spread = Duration::from_secs(1) * watched / SAFETY_READS_PER_SECOND;
        let period = SAFETY_READ_WHILE_WATCHING
            .max(spread)
            .max(self.options.poll_interval);
        let periods = (now - start).as_nanos() / period.as_nanos() + 1;
        start + period * periods as u32
    }

    /// Starts (or re-arms) the watch of our directory. A change of our inbox is handled right
    /// on the shared watcher's thread (one thread hop less per message).
    fn start_watch(&self, watch: &mut DirWatch) -> std::result::Result<(), String> {
        let me = self.me.clone();
        let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            if let Some(channel) = me.upgrade() {
                let _ = channel.poll();
            }
        });
        watch.start(&self.real_dir, &self.inbox_path, &on_change)
    }
}

impl Channel {
    /// Writes the queued sends on this thread, batch after batch, while they get through.
    fn write_queued_now(&self) {
        loop {
            let before = lock(&self.sends).queued.len();
            if before == 0 {
                return;
            }
            self.flush_sends();
            if lock(&self.sends).queued.len() >= before {
                return;
            }
        }
    }

    /// The process is exiting: writes what the writer thread has not written yet, on the calling
    /// thread (the writer thread dies with the process), trying again for up to `lockTimeoutMs`
    /// (at least 2 s) while the outbox is locked, held open (Windows) or full. Returns how many
    /// sends are left unwritten.
    pub fn flush_before_exit(&self) -> usize {
        let deadline = Instant::now() + self.options.lock_timeout.max(Duration::from_secs(2));
        loop {
            self.write_queued_now();
            // Also those the writer thread has taken and not written yet: it dies with us.
            let left = {
                let sends = lock(&self.sends);
                sends.queued.len() + sends.in_flight
            };
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// One write of the queued sends (the writer thread calls it): as many as one write may
    /// carry, under one lock. Returns when to try again, if anything is left.
    fn flush_sends(&self) -> Option<Instant> {
        let mut deliveries = Vec::new();
        // The batch size may need a scan of the readers' acknowledgements: done before taking
        // the queue, which the JavaScript thread takes to enqueue and must find free.
        let mut outbox = lock(&self.outbox);
        let limit = outbox.batch_limit();
        let mut sends = lock(&self.sends);
        let now = Instant::now();
        let closed = self.is_closed();
        // Past their deadline (or closed): fail with why they could not get through.
        let mut index = 0;
        while index < sends.queued.len() {
            if closed || sends.queued[index].deadline <= now {
                let send = sends.queued.remove(index).expect("index is in range");
                let error = match (&sends.last_refusal, closed) {
                    (_, true) => ChannelError::Closed,
                    // Waiting for room is what the promise sends do: running out of time is
                    // a timeout, saying why.
                    (Some(refusal @ ChannelError::Backlog { .. }), _) => ChannelError::Relayed {
                        code: "ETIMEDOUT",
                        text: format!("timed out waiting for room in the backlog: {refusal}"),
                    },
                    (Some(refusal), _) => refusal.relay(),
                    (None, _) => ChannelError::Relayed {
                        code: "ETIMEDOUT",
                        text: "timed out waiting for the writer thread".into(),
                    },
                };
                self.finish_send(send, Err(error), &mut deliveries);
            } else {
                index += 1;
            }
        }
        let take = limit.min(sends.queued.len());
        let batch: Vec<QueuedSend> = sends.queued.drain(..take).collect();
        sends.in_flight += batch.len();
        drop(sends);
        let messages: Vec<&Message> = batch.iter().map(|send| &send.message).collect();
        // Nothing to send: only settled requests are left out, if the file still holds any.
        let result = self
            .write_outbox(&mut outbox, &messages, Duration::ZERO)
            .map(|_| ());
        drop(outbox);
        let mut sends = lock(&self.sends);
        sends.in_flight -= batch.len();
        let retry_at = match result {
            Ok(()) => {
                sends.last_refusal = None;
                sends.backoff = Duration::ZERO;
                for send in batch {
                    self.finish_send(send, Ok(()), &mut deliveries);
                }
                None
            }
            // One message too large for any reader: it fails alone, the rest go again at once.
            Err(
                error @ ChannelError::SendTooLarge {
                    index: Some(index), ..
                },
            ) if index < batch.len() => {
                let mut batch = batch;
                let refused = batch.remove(index);
                self.finish_send(refused, Err(error.relay()), &mut deliveries);
                for send in batch.into_iter().rev() {
                    sends.queued.push_front(send);
                }
                Some(now)
            }
            // Locked, held open or full: nothing was written; the batch goes back, in order.
            Err(
                error @ (ChannelError::Locked { .. }
                | ChannelError::Busy { .. }
                | ChannelError::Backlog { .. }),
            ) => {
                for send in batch.into_iter().rev() {
                    sends.queued.push_front(send);
                }
                sends.last_refusal = Some(error);
                sends.backoff =
                    (sends.backoff * 2).clamp(Duration::from_millis(1), Duration::from_millis(20));
                Some(now + sends.backoff)
            }
            Err(error) => {
                for send in batch {
                    self.finish_send(send, Err(error.relay()), &mut deliveries);
                }
                None
            }
        };
        let again = match retry_at {
            Some(at) => Some(at),
            None if !sends.queued.is_empty() => Some(Instant::now()),
            None => None,
        };
        // The earliest deadline wakes us too, to fail what cannot get through in time.
        let again = again.map(|at| {
            sends
                .queued
                .iter()
                .map(|send| send.deadline)
                .min()
                .map_or(at, |deadline| at.min(deadline))
        });
        drop(sends);
        self.deliver(deliveries);
        again
    }
}

/// A watch on the channel directory (the files themselves are replaced by rename, so watching
/// them would lose track after the first write). Events are only hints to re-read the inbox.
#[derive(Default)]
struct DirWatch {
    watcher: Option<watch::Registration>,
    dir_identity: Option<FileIdentity>,
    /// Set by the watcher on every inbox hint, taken by the safety re-read.
    hinted: Arc<AtomicBool>,
    /// Safety re-reads in a row that found messages the watcher had not announced.
    missed_in_a_row: u32,
    reported_silence: bool,
    /// The inbox's version at the last safety re-read.
    inbox_at_safety_read: Option<Option<FileIdentity>>,
}

/// Safety re-reads in a row that find unannounced messages before the watcher is reported.
const MISSES_BEFORE_REPORT: u32 = 3;

impl DirWatch {
    fn start(
        &mut self,
        dir: &Path,
        inbox: &Path,
        on_change: &Arc<dyn Fn() + Send + Sync>,
    ) -> std::result::Result<(), String> {
        self.dir_identity = stat(dir)
            .ok()
            .flatten()
            .map(|identity| identity.without_times());
        // Re-armed (the directory came back, or the OS ended the watch): watch it afresh.
        if let Some(registration) = &self.watcher {
            return registration.rearm();
        }
        let on_change = Arc::clone(on_change);
        let hinted = Arc::clone(&self.hinted);
        let hint: watch::OnChange = Arc::new(move || {
            hinted.store(true, Ordering::Relaxed);
            on_change();
        });
        self.watcher = Some(watch::register(dir, inbox, hint)?);
        Ok(())
    }

    /// Whether the watch is up and has not been found missing changes.
    fn is_healthy(&self) -> bool {
        self.watcher.is_some() && !self.reported_silence
    }

    /// After a safety re-read: whether the watcher missed the change the read found (it should
    /// be re-armed), and the first time it keeps missing, why to report it.
    fn check_missed(&mut self, found: bool) -> Option<Option<String>> {
        if self.hinted.swap(false, Ordering::Relaxed) || !found || self.watcher.is_none() {
            self.missed_in_a_row = 0;
            return None;
        }
        self.missed_in_a_row += 1;
        let report = self.missed_in_a_row >= MISSES_BEFORE_REPORT && !self.reported_silence;
        self.reported_silence |= report;
        Some(report.then(|| {
            format!(
                "the watcher missed {} changes in a row (the file system may not report changes)",
                self.missed_in_a_row
            )
        }))
    }

    /// Whether the inbox is missing or another version than at the last safety re-read.
    fn inbox_moved(&mut self, version: Option<FileIdentity>) -> bool {
        let moved = version.is_none() || self.inbox_at_safety_read != Some(version);
        self.inbox_at_safety_read = Some(version);
        moved
    }

    fn is_stale(&self, dir: &Path) -> bool {
        let current = stat(dir)
            .ok()
            .flatten()
            .map(|identity| identity.without_times());
        current.is_some() && (self.watcher.is_none() || current != self.dir_identity)
    }
}

/// Refuses what the reference reader could not read back.
fn check_sendable(message: &Message) -> Result<()> {
    if depth(&message.payload) > MAX_PAYLOAD_DEPTH {
        return Err(ChannelError::Invalid(format!(
            "payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels, which the reference reader cannot read"
        )));
    }
    Ok(())
}

/// The valid messages of a message file, or none when it cannot be read.
fn messages_in(path: &Path, max_file_bytes: u64) -> Vec<Message> {
    let Ok(Some((bytes, _))) = read_message_file(path, max_file_bytes) else {
        return Vec::new();
    };
    decode_file(&bytes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Valid(message) => Some(message),
            Entry::Invalid { .. } => None,
        })
        .collect()
}

fn create_channel_dir(dir: &Path, mode: u32) -> Result<()> {
    match platform::create_dir_all_private(dir, mode) {
        Ok(()) if dir.is_dir() => Ok(()),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(ChannelError::io("creating directory", dir, e))
        }
        // A file where the directory should be: say so, not "File exists".
        _ => Err(ChannelError::io(
            "creating directory",
            dir,
            platform::not_a_directory(),
        )),
    }
}

/// Refuses a path with a symbolic link on the way that another user owns: they could re-point
/// it at a directory of theirs.
fn refuse_foreign_links(dir: &Path) -> Result<()> {
    match platform::foreign_link_on_the_way(dir) {
        Some((link, reason)) => Err(ChannelError::Insecure { path: link, reason }),
        None => Ok(()),
    }
}

/// Refuses a directory that other local users could write to or that belongs to someone else,
/// the way ssh treats `~/.ssh`: they could inject messages or swap our files.
pub fn check_dir_is_private(dir: &Path) -> Result<()> {
    match platform::dir_privacy_problem(dir) {
        Ok(None) => Ok(()),
        Ok(Some(reason)) => Err(ChannelError::Insecure {
            path: dir.to_path_buf(),
            reason,
        }),
        Err(e) => Err(ChannelError::io("checking", dir, e)),
    }
}

fn create_if_missing(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    match create_new_with(path, content, mode) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ChannelError::io("creating", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex as StdMutex;

    #[derive(Default)]
    struct Collect(StdMutex<Vec<Delivery>>);

    impl DeliverySink for Collect {
        fn deliver(&self, batch: Vec<Delivery>) -> bool {
            self.0.lock().unwrap().extend(batch);
            true
        }
    }

    fn open(dir: &Path, role: Role) -> Arc<Channel> {
        Channel::open(dir, role, ChannelOptions::default()).unwrap()
    }

    #[test]
    fn open_creates_what_the_reference_creates_privately() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b/chan");
        open(&dir, Role::Frontend);
        assert_eq!(
            std::fs::read_to_string(dir.join(FRONTEND_OUTBOX)).unwrap(),
            "[]"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(BACKEND_OUTBOX)).unwrap(),
            "[]"
        );
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(CHANNEL_INFO)).unwrap())
                .unwrap();
        assert_eq!(info["protocol"], "file-ipc");
        assert_eq!(info["version"], "1.0");
        // The reference opens what we created.
        let mut reference = ipckit::FileChannel::backend(&dir).unwrap();
        assert!(reference.recv().unwrap().is_empty());
    }

    #[test]
    fn a_watcher_that_misses_changes_is_rearmed_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = DirWatch::default();
        let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {});
        watch
            .start(dir.path(), &dir.path().join(BACKEND_OUTBOX), &on_change)
            .unwrap();
        // Nothing new, or announced by the watcher: fine.
        assert_eq!(watch.check_missed(false), None);
        watch.hinted.store(true, Ordering::Relaxed);
        assert_eq!(watch.check_missed(true), None);
        // Found by the safety re-read alone: re-arm; the third time in a row, report.
        assert_eq!(watch.check_missed(true), Some(None));
        assert_eq!(watch.check_missed(true), Some(None));
        let reason = watch.check_missed(true).unwrap().unwrap();
        assert!(reason.contains("missed 3 changes"), "{reason}");
        assert_eq!(watch.check_missed(true), Some(None), "reported once");
        // A real hint ends the streak.
        watch.hinted.store(true, Ordering::Relaxed);
        assert_eq!(watch.check_missed(true), None);
    }

    #[test]
    fn the_watcher_announces_inbox_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = DirWatch::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = lock(&tx).send(());
        });
        let inbox = dir.path().join(BACKEND_OUTBOX);
        watch.start(dir.path(), &inbox, &on_change).unwrap();
        std::fs::write(dir.path().join("x.tmp"), "[]").unwrap();
        std::fs::rename(dir.path().join("x.tmp"), &inbox).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(watch.check_missed(true), None);
    }

    /// Longer than the writer reuses a scan of the acknowledgements.
    const POSITIONS_SCAN_REUSE: Duration = Duration::from_millis(20);

    #[test]
    fn a_reader_whose_acknowledgement_lapsed_is_told_of_its_loss() {
        let dir = tempfile::tempdir().unwrap();
        let short = ChannelOptions {
            ack_timeout: Duration::from_millis(300),
            ..ChannelOptions::default()
        };
        let back = Channel::open(dir.path(), Role::Backend, short.clone()).unwrap();
        let lapsing = Channel::open(dir.path(), Role::Frontend, short).unwrap();
        back.send_event("e", json!(0)).unwrap();
        assert_eq!(lapsing.recv(usize::MAX).unwrap().len(), 1);
        // `lapsing` is judged by its age (as a writer on another host judges it) and goes silent
        // for longer than the writer's ackTimeoutMs.
        let own_ack = lock(&lapsing.ack).as_ref().unwrap().path().to_path_buf();
        let mut record: Value =
            serde_json::from_str(&std::fs::read_to_string(&own_ack).unwrap()).unwrap();
        record["host"] = json!(format!("not-{}", platform::host_name()));
        std::fs::write(&own_ack, record.to_string()).unwrap();
        let outbox = dir.path().join(BACKEND_OUTBOX);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !crate::protocol::ack::live_positions(&outbox, Duration::from_millis(300)).is_empty()
        {
            assert!(Instant::now() < deadline, "the silent reader never lapsed");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Another reader keeps a backlog alive: an acknowledgement file, dated ahead so that it
        // stays live however slow this machine is, holding everything at first.
        let keeper = dir.path().join("backend_to_frontend.keeper.ack");
        let keep_from = |last_id: Option<&str>| {
            let record = json!({
                "last_id": last_id,
                "updated": crate::protocol::message::now_ms() + 3_600_000,
                "pid": std::process::id(),
                "host": platform::host_name(),
            });
            std::fs::write(&keeper, record.to_string()).unwrap();
        };
        keep_from(None);
        for i in 1..=150 {
            back.send_event("e", json!(i)).unwrap();
        }
        let file: Vec<Message> =
            serde_json::from_str(&std::fs::read_to_string(&outbox).unwrap()).unwrap();
        assert_eq!(file.len(), 151);
        // The keeper has read up to message 50: the next send trims what is before it, including
        // `lapsing`'s anchor, and keeps more than the cap.
        keep_from(Some(&file[50].id));
        std::thread::sleep(POSITIONS_SCAN_REUSE);
        back.send_event("e", json!(151)).unwrap();
        let error = lapsing.recv(usize::MAX).unwrap_err();
        assert_eq!(error.code(), "ELOST", "{error}");
        assert!(error.to_string().contains("acknowledgement had lapsed"));
        let rest = lapsing.recv(usize::MAX).unwrap();
        assert_eq!(rest[0].payload, json!(50));
        assert_eq!(rest.len(), 102);
    }

    #[test]
    fn a_readers_own_cap_is_not_taken_for_the_peers() {
        let dir = tempfile::tempdir().unwrap();
        let big = ChannelOptions {
            max_messages: 1000,
            ..ChannelOptions::default()
        };
        let front = Channel::open(dir.path(), Role::Frontend, big).unwrap();
        let reference = ipckit::FileChannel::backend(dir.path()).unwrap();
        for i in 0..300 {
            reference.send_event("e", json!(i)).unwrap();
        }
        assert_eq!(front.recv(usize::MAX).unwrap_err().code(), "EMAYBELOST");
        assert_eq!(front.recv(usize::MAX).unwrap().len(), 100);
    }

    #[test]
    fn responses_go_to_their_wait_and_the_rest_to_recv() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        let back = open(dir.path(), Role::Backend);
        let sink = Arc::new(Collect::default());
        front.set_sink(sink.clone());
        let (id, token) = front
            .begin_request("m", json!(1), Duration::from_secs(5))
            .unwrap();
        let request = back.recv(usize::MAX).unwrap().pop().unwrap();
        assert_eq!(request.id, id);
        back.send_event("before", json!(null)).unwrap();
        back.send_response(&id, json!("answer")).unwrap();
        back.send_event("after", json!(null)).unwrap();
        let rest = front.recv(usize::MAX).unwrap();
        let names: Vec<_> = rest.iter().map(|m| m.method.clone().unwrap()).collect();
        assert_eq!(names, ["before", "after"]);
        let delivered = sink.0.lock().unwrap();
        assert!(delivered.iter().any(|d| matches!(d, Delivery::Resolved { token: t, message } if *t == token && message.payload == json!("answer"))));
        front.close();
    }

    #[test]
    fn a_response_already_queued_is_found_by_a_later_wait() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        let back = open(dir.path(), Role::Backend);
        let sink = Arc::new(Collect::default());
        front.set_sink(sink.clone());
        let id = front.send_request("m", json!(1)).unwrap();
        back.send_response(&id, json!(2)).unwrap();
        back.send_event("other", json!(3)).unwrap();
        // A poll queues both before anyone waits.
        front.poll().unwrap();
        let token = front.wait_response(&id, Duration::from_secs(5)).unwrap();
        // (The backend writing made it known as ready: a Peer delivery, not looked at here.)
        let resolved: Vec<u64> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|d| match d {
                Delivery::Resolved { token, .. } => Some(*token),
                _ => None,
            })
            .collect();
        assert_eq!(resolved, [token]);
        assert_eq!(front.recv(usize::MAX).unwrap().len(), 1);
        front.close();
    }

    #[test]
    fn waits_expire_and_close_hands_back_pending_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        let sink = Arc::new(Collect::default());
        front.set_sink(sink.clone());
        let quick = front
            .wait_response("nobody", Duration::from_millis(30))
            .unwrap();
        let slow = front
            .wait_response("nobody-either", Duration::from_secs(60))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(sink.0.lock().unwrap().iter().any(|d| matches!(d, Delivery::Expired { token, error } if *token == quick && error.code() == "ETIMEDOUT")));
        assert_eq!(front.close(), vec![slow]);
        assert_eq!(
            front.send_event("x", json!(1)).unwrap_err().code(),
            "ECLOSED"
        );
    }

    /// A sink whose JavaScript environment went away.
    struct Refuse;

    impl DeliverySink for Refuse {
        fn deliver(&self, _batch: Vec<Delivery>) -> bool {
            false
        }
    }

    fn wait_until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_refused_delivery_closes_its_channel_without_stalling_the_dispatcher() {
        let (gone_dir, healthy_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let gone = open(gone_dir.path(), Role::Frontend);
        gone.set_sink(Arc::new(Refuse));
        // Its expiry is delivered (and refused) by the process's dispatcher, inside a round.
        gone.wait_response("nobody", Duration::from_millis(10))
            .unwrap();
        wait_until("the refusing channel to close", || gone.is_closed());
        let healthy = open(healthy_dir.path(), Role::Frontend);
        let sink = Arc::new(Collect::default());
        healthy.set_sink(sink.clone());
        let token = healthy
            .wait_response("nobody-either", Duration::from_millis(50))
            .unwrap();
        wait_until("the healthy channel's wait to expire", || {
            sink.0
                .lock()
                .unwrap()
                .iter()
                .any(|d| matches!(d, Delivery::Expired { token: t, .. } if *t == token))
        });
    }

    fn ids_in(path: &Path) -> Vec<String> {
        messages_in(path, 1 << 20)
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn settled_requests_leave_the_outbox_so_a_restarted_backend_never_runs_them() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        front.set_sink(Arc::new(Collect::default()));
        let back = open(dir.path(), Role::Backend);
        let answered = front.send_request("add_cube", json!(null)).unwrap();
        let (abandoned, wait) = front
            .begin_request("render", json!(null), Duration::from_secs(60))
            .unwrap();
        let pending = front.send_request("query", json!(null)).unwrap();
        assert_eq!(back.recv(10).unwrap().len(), 3);
        back.send_response(&answered, json!(1)).unwrap();
        // The backend dies (its acknowledgement goes with it) and the caller gives up.
        back.close();
        assert_eq!(front.recv(10).unwrap()[0].reply_to, Some(answered.clone()));
        assert!(front.cancel_token(wait));
        // The next write leaves both out; the request still awaited stays.
        front.send_event("tick", json!(null)).unwrap();
        let outbox = dir.path().join(FRONTEND_OUTBOX);
        let held = ids_in(&outbox);
        assert!(held.contains(&pending));
        assert!(!held.contains(&answered) && !held.contains(&abandoned));
        let restarted = open(dir.path(), Role::Backend);
        let methods: Vec<_> = restarted
            .recv(10)
            .unwrap()
            .into_iter()
            .filter_map(|m| m.method)
            .collect();
        assert_eq!(methods, ["query", "tick"]);
    }

    #[test]
    fn without_a_send_the_writer_prunes_settled_requests_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        front.set_sink(Arc::new(Collect::default()));
        let answered = front.send_request("add_cube", json!(null)).unwrap();
        let back = open(dir.path(), Role::Backend);
        back.recv(10).unwrap();
        back.send_response(&answered, json!(1)).unwrap();
        back.close();
        front.recv(10).unwrap();
        let outbox = dir.path().join(FRONTEND_OUTBOX);
        wait_until("the answered request to leave the outbox", || {
            !ids_in(&outbox).contains(&answered)
        });
    }

    #[test]
    fn a_restarted_backend_skips_what_it_answered_and_what_was_cancelled_with_it() {
        let dir = tempfile::tempdir().unwrap();
        // Files as a crashed backend leaves them: it answered `done`; `dropped` was cancelled.
        let done = Message::request("add_cube", json!(null));
        let dropped = Message::request("render", json!(null));
        let cancel = Message::event(replies::CANCEL_EVENT, json!({"requestId": dropped.id}));
        let fresh = Message::request("query", json!(null));
        let mut inbox = Outbox::new(dir.path().join(FRONTEND_OUTBOX), options_settings());
        inbox.append(&[&done, &dropped, &cancel, &fresh]).unwrap();
        let mut outbox = Outbox::new(dir.path().join(BACKEND_OUTBOX), options_settings());
        outbox
            .append(&[&Message::response(&done.id, json!(1))])
            .unwrap();
        let back = open(dir.path(), Role::Backend);
        let sink = Arc::new(Collect::default());
        back.set_sink(sink.clone());
        back.set_listening(Listening {
            requests: true,
            cancels: true,
            ..Listening::default()
        })
        .unwrap();
        wait_until("the fresh request", || {
            sink.0
                .lock()
                .unwrap()
                .iter()
                .any(|d| matches!(d, Delivery::Messages(m) if m.iter().any(|m| m.id == fresh.id)))
        });
        let handed: Vec<String> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|d| match d {
                Delivery::Messages(m) => m.iter().map(|m| m.id.clone()).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(handed, std::slice::from_ref(&fresh.id));
        assert_eq!(back.reply_stats().dropped_requests, 2);
    }

    fn options_settings() -> crate::protocol::outbox::OutboxSettings {
        ChannelOptions::default().outbox_settings()
    }

    #[test]
    fn a_reopened_frontend_drops_the_replies_of_its_earlier_session() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = open(dir.path(), Role::Frontend);
        let first = earlier.send_request("a", json!(null)).unwrap();
        let second = earlier.send_request("b", json!(null)).unwrap();
        let back = open(dir.path(), Role::Backend);
        back.recv(10).unwrap();
        back.send_response(&first, json!(1)).unwrap();
        earlier.close();
        let front = open(dir.path(), Role::Frontend);
        // Answers to the earlier session, before and after the reopening.
        back.send_event(
            replies::PROGRESS_EVENT,
            json!({"progressToken": second, "progress": 1}),
        )
        .unwrap();
        back.send_response(&second, json!(2)).unwrap();
        back.send_event("note", json!(null)).unwrap();
        let mine = front.send_request("c", json!(null)).unwrap();
        back.send_response(&mine, json!(3)).unwrap();
        let got: Vec<_> = front.recv(10).unwrap();
        let shapes: Vec<_> = got
            .iter()
            .map(|m| (m.kind, m.method.clone(), m.reply_to.clone()))
            .collect();
        assert_eq!(
            shapes,
            [
                (MessageType::Event, Some("note".to_owned()), None),
                (MessageType::Response, None, Some(mine)),
            ]
        );
        let stats = front.reply_stats();
        assert_eq!((stats.dropped_responses, stats.dropped_progress), (2, 1));
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_swapped_for_a_public_one_is_neither_read_nor_written_on_any_path() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("chan");
        let back = open(&dir, Role::Backend);
        let sink = Arc::new(Collect::default());
        back.set_sink(sink.clone());
        // Someone swaps the directory for a world-writable one and plants a request in it.
        std::fs::rename(&dir, base.path().join("moved")).unwrap();
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let planted = Message::request("rm_rf", json!(null));
        let text = String::from_utf8(crate::protocol::message::encode_file(
            [planted.encode()].iter().map(String::as_str),
        ))
        .unwrap();
        std::fs::write(dir.join(FRONTEND_OUTBOX), text).unwrap();
        back.set_listening(Listening {
            requests: true,
            errors: true,
            ..Listening::default()
        })
        .unwrap();
        back.poll().unwrap();
        let delivered = std::mem::take(&mut *sink.0.lock().unwrap());
        assert!(!delivered.iter().any(|d| matches!(d, Delivery::Messages(_))));
        assert!(delivered
            .iter()
            .any(|d| matches!(d, Delivery::Problems(p) if p.iter().any(|e| e.code() == "EPERM"))));
        // Synchronous and writer-thread sends alike are refused.
        assert_eq!(back.send_event("x", json!(1)).unwrap_err().code(), "EPERM");
        let token = back
            .enqueue_send(Message::event("y", json!(2)), Duration::from_secs(5))
            .unwrap();
        wait_until("the queued send to fail", || {
            sink.0.lock().unwrap().iter().any(|d| matches!(d, Delivery::Sent { token: t, result: Err(e) } if *t == token && e.code() == "EPERM"))
        });
        assert_eq!(
            messages_in(&dir.join(BACKEND_OUTBOX), 1 << 20).len(),
            0,
            "nothing was written into the planted directory"
        );
        back.close();
    }

    #[test]
    fn too_deep_payloads_are_refused_at_send_time() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        let nested = |levels: usize| (0..levels).fold(json!(0), |inner, _| json!([inner]));
        assert!(front.send_event("ok", nested(MAX_PAYLOAD_DEPTH)).is_ok());
        assert_eq!(
            front
                .send_event("deep", nested(MAX_PAYLOAD_DEPTH + 1))
                .unwrap_err()
                .code(),
            "EINVAL"
        );
    }

    /// Sleeps in every delivery, so batches read on different threads would overtake each
    /// other if routing and delivery were not one step.
    #[derive(Default)]
    struct SlowCollect(StdMutex<Vec<u64>>);

    impl DeliverySink for SlowCollect {
        fn deliver(&self, batch: Vec<Delivery>) -> bool {
            std::thread::sleep(Duration::from_micros(300));
            let mut seen = self.0.lock().unwrap();
            for delivery in batch {
                if let Delivery::Messages(messages) = delivery {
                    seen.extend(messages.iter().map(|m| m.payload["seq"].as_u64().unwrap()));
                }
            }
            true
        }
    }

    #[test]
    fn batches_read_on_different_threads_reach_the_sink_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let front = open(dir.path(), Role::Frontend);
        // Three threads reading in a loop keep the inbox open nearly all the time; where an open
        // file cannot be replaced (Wine), the writer needs patience to get its renames in.
        let patient = ChannelOptions {
            lock_timeout: Duration::from_secs(30),
            ..ChannelOptions::default()
        };
        let back = Channel::open(dir.path(), Role::Backend, patient).unwrap();
        let sink = Arc::new(SlowCollect::default());
        front.set_sink(sink.clone());
        front
            .set_listening(Listening {
                events: true,
                ..Listening::default()
            })
            .unwrap();
        let total = 400u64;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pollers: Vec<_> = (0..3)
            .map(|_| {
                let (front, done) = (Arc::clone(&front), Arc::clone(&done));
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        front.poll().unwrap();
                        // Still racing each other (a delivery takes 300 µs), but leave the
                        // writer moments with the inbox closed: under Wine an open file cannot
                        // be replaced, and back-to-back reads made 400 sends take minutes.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        for seq in 0..total {
            back.send_event("tick", json!({ "seq": seq })).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().len() < total as usize && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        done.store(true, Ordering::Relaxed);
        for poller in pollers {
            poller.join().unwrap();
        }
        front.close();
        let seen = sink.0.lock().unwrap().clone();
        assert_eq!(seen, (0..total).collect::<Vec<_>>());
    }

    #[test]
    fn acknowledging_readers_lose_nothing_beyond_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let back = open(dir.path(), Role::Backend);
        let front = open(dir.path(), Role::Frontend);
        for i in 0..250 {
            back.send_event("e", json!(i)).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(BACKEND_OUTBOX)).unwrap();
        let on_disk: Vec<ipckit::FileMessage> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            on_disk.len(),
            250,
            "the unread messages are kept for the acknowledging reader"
        );
        let got: Vec<i64> = front
            .recv(usize::MAX)
            .unwrap()
            .iter()
            .map(|m| m.payload.as_i64().unwrap())
            .collect();
        assert_eq!(got, (0..250).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(30));
        front.recv(usize::MAX).unwrap();
        back.send_event("e", json!(250)).unwrap();
        let text = std::fs::read_to_string(dir.path().join(BACKEND_OUTBOX)).unwrap();
        let on_disk: Vec<ipckit::FileMessage> = serde_json::from_str(&text).unwrap();
        assert_eq!(
            on_disk.len(),
            100,
            "once read, the reference cap applies again"
        );
    }

    #[test]
    fn a_full_backlog_refuses_sends_with_enobufs() {
        let dir = tempfile::tempdir().unwrap();
        let options = ChannelOptions {
            max_backlog: 150,
            ..ChannelOptions::default()
        };
        let back = Channel::open(dir.path(), Role::Backend, options).unwrap();
        let _front = open(dir.path(), Role::Frontend);
        for i in 0..150 {
            back.send_event("e", json!(i)).unwrap();
        }
        let error = back.send_event("e", json!(150)).unwrap_err();
        assert_eq!(error.code(), "ENOBUFS");
        assert!(
            error.to_string().contains("backend_to_frontend.json"),
            "{error}"
        );
        // Nothing was written by the refused send.
        let text = std::fs::read_to_string(dir.path().join(BACKEND_OUTBOX)).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<Value>>(&text).unwrap().len(),
            150
        );
    }

    #[test]
    fn without_acknowledging_readers_the_reference_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let back = open(dir.path(), Role::Backend);
        let quiet = ChannelOptions {
            acknowledge: false,
            ..ChannelOptions::default()
        };
        let front = Channel::open(dir.path(), Role::Frontend, quiet).unwrap();
        let mut reference = ipckit::FileChannel::frontend(dir.path()).unwrap();
        for i in 0..150 {
            back.send_event("e", json!(i)).unwrap();
        }
        assert_eq!(reference.recv().unwrap().len(), 100);
        // 50 were trimmed before the first read: reported, as possible (it cannot be told from
        // exactly 100 new ones).
        assert_eq!(front.recv(usize::MAX).unwrap_err().code(), "EMAYBELOST");
        assert_eq!(front.recv(usize::MAX).unwrap().len(), 100);
        // The closed reader's acknowledgement is gone, so it holds nothing back either.
        let acked = open(dir.path(), Role::Frontend);
        acked.close();
        back.send_event("e", json!(150)).unwrap();
        let text = std::fs::read_to_string(dir.path().join(BACKEND_OUTBOX)).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<Value>>(&text).unwrap().len(),
            100
        );
    }
}
