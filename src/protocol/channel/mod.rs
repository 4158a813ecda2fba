//! One end of a channel: our outbox, the peer's outbox as our inbox, and the routing of every
//! incoming message to exactly one place: the wait for it, else the listeners, else the queue
//! that `recv()` drains.
//!
//! Rooms: `layout` (which file is whose, the directory checks), `router` (where each message
//! goes; plain state, no locks or I/O), `sender` (the one path into the outbox, the writer
//! thread's queue), `dispatch` (the dispatcher's rounds, the watch, the safety re-reads). This
//! file is the facade: opening, the public calls, closing, and the one sequence by which read
//! messages reach their owners (`read_and_deliver`).
//!
//! **Threads.** The JavaScript thread calls the public functions. The process's dispatcher
//! thread runs `dispatch_round`; its writer thread runs `flush_sends` and the close of a channel
//! whose sink refused a batch; the watcher thread runs `poll` on an inbox hint. Each function
//! below names its threads and the locks it takes.
//!
//! **Lock order** (a lock is only ever taken after those to its left, never while holding one to
//! its right): `dispatch` → `reader` → `state`; `reader` → `ack`; `ack` → `state`;
//! `outbox` → `sends`; `reader` or `outbox` → the directory guard; `reader` or `dispatch` → the
//! process's watcher (`watch`, whose callbacks run with none of these held). The `reader` lock
//! is also the delivery order: it is held from reading a batch until the sink has it. Nothing
//! that holds a lock calls out of the channel in a way that could re-enter it: a sink that
//! refuses is never closed from inside `deliver`; its close is scheduled on the writer thread.

mod dispatch;
mod layout;
mod router;
mod sender;
#[cfg(test)]
mod tests;

use self::dispatch::DispatchState;
use self::layout::{messages_in, DirGuard, Layout};
use self::router::{Router, WaitStart};
use self::sender::{SendQueue, PRUNE_DELAY};
use super::ack::{AckPublisher, ACK_INTERVAL};
use super::error::{ChannelError, Result};
use super::inbox::{InboxReader, ReadOutcome};
use super::message::{Message, REFERENCE_CAP};
use super::outbox::Outbox;
use super::platform;
use super::presence::{PeerInfo, PeerState};
use super::replies::{EarlierSession, ReplyStats};
use crate::protocol::sync::lock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

pub use self::layout::{check_dir_is_private, Role, BACKEND_OUTBOX, CHANNEL_INFO, FRONTEND_OUTBOX};
pub use self::router::{Delivery, Listening};
pub use super::options::ChannelOptions;

/// Where a channel's deliveries go (the JS binding's threadsafe function), from any thread.
pub trait DeliverySink: Send + Sync {
    /// Returns false once the receiving side is gone for good.
    fn deliver(&self, batch: Vec<Delivery>) -> bool;
}

/// The sink of a channel nobody listens to (tools, tests): deliveries are dropped.
struct NoSink;

impl DeliverySink for NoSink {
    fn deliver(&self, _batch: Vec<Delivery>) -> bool {
        true
    }
}

static NEXT_CHANNEL_KEY: AtomicU64 = AtomicU64::new(1);

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
    /// The directory is on a network share or FUSE: changes made through another mount (another
    /// machine) raise no watcher event, so the inbox is read every `pollIntervalMs` anyway.
    remote: bool,
    /// Which directory was checked: it must still be the same one before each write and read.
    dir_guard: DirGuard,
    role: Role,
    options: ChannelOptions,
    outbox: Mutex<Outbox>,
    /// Where the outbox is, for what is said of it without its lock.
    outbox_path: PathBuf,
    inbox_path: PathBuf,
    /// The inbox's reader. Its lock is held from reading a batch until the sink has it: the
    /// watcher, the dispatcher and the JS thread all read, and a later batch must not overtake
    /// an earlier one. The state lock is not held during the read, so a long read never holds
    /// up the JS thread's calls that take only the state lock (waits, sends).
    reader: Mutex<InboxReader>,
    state: Mutex<Router>,
    /// Set once, by `close()` under the state lock: a check under that lock sees a close that
    /// is complete; a check without it (a promise call) never waits for the lock.
    closed: AtomicBool,
    sink: Arc<dyn DeliverySink>,
    /// The sink refused a batch: nothing more goes to it, and the close is scheduled.
    sink_gone: AtomicBool,
    next_token: AtomicU64,
    /// Our published read position, when acknowledgements are on; written after deliveries
    /// are handed over and outside the state lock, so it never delays a message.
    ack: Mutex<Option<AckPublisher>>,
    /// The peer announced itself from another host (see `note_peer_changes`).
    peer_elsewhere: AtomicBool,
    /// The directory was found replaced by one that is not private: its inbox is not read.
    dir_refused: AtomicBool,
    /// The dispatcher watches the directory: each read first watches the inbox file for
    /// writes in place, while its writer may write so (see `watch::watch_file`).
    watching: AtomicBool,
    /// Sends waiting for the writer thread (the promise API).
    sends: Mutex<SendQueue>,
}

impl Channel {
    /// Opens or creates the channel with no one to deliver to (tools, tests).
    pub fn open(dir: &Path, role: Role, options: ChannelOptions) -> Result<Arc<Channel>> {
        Self::open_with_sink(dir, role, options, Arc::new(NoSink))
    }

    /// Opens or creates the channel as the reference does (see `Layout::prepare`); deliveries
    /// go to `sink`. JS thread; no channel locks.
    pub fn open_with_sink(
        dir: &Path,
        role: Role,
        options: ChannelOptions,
        sink: Arc<dyn DeliverySink>,
    ) -> Result<Arc<Channel>> {
        if options.max_messages == 0 {
            return Err(ChannelError::Invalid(
                "options.maxMessages must be at least 1".into(),
            ));
        }
        let layout = Layout::prepare(
            dir,
            role,
            options.allow_insecure,
            options.dir_mode,
            options.file_mode,
        )?;
        let dir_guard = DirGuard::new(&layout.real, options.allow_insecure)?;
        let earlier = EarlierSession::from_files(
            &messages_in(&layout.outbox, options.max_file_bytes),
            &messages_in(&layout.inbox, options.max_file_bytes),
        );
        // The peer's cap is not ours to know: judge loss by the reference's.
        let mut reader =
            InboxReader::new(layout.inbox.clone(), options.max_file_bytes, REFERENCE_CAP);
        // A network share or FUSE: cached attributes can hide a change or cut a read short.
        let local = platform::is_local_file_system(&layout.real);
        reader.set_remote(!local);
        reader.set_acknowledging(options.acknowledge);
        reader.note_baseline();
        let mut ack = options.acknowledge.then(|| {
            let reader_id = uuid::Uuid::new_v4().simple().to_string();
            AckPublisher::new(
                &layout.inbox,
                &reader_id,
                options.ack_timeout,
                options.file_mode,
                local,
            )
        });
        if let Some(publisher) = &mut ack {
            // From now on the writer keeps what we have not read.
            publisher.flush(Instant::now())?;
        }
        let mut outbox = Outbox::new(layout.outbox.clone(), options.outbox_settings());
        outbox.set_remote(!local);
        let router = Router::new(
            role.as_str(),
            earlier,
            outbox.withdrawals(),
            options.max_queued,
        );
        Ok(Arc::new_cyclic(|me| Channel {
            me: me.clone(),
            key: NEXT_CHANNEL_KEY.fetch_add(1, Ordering::Relaxed),
            dispatch: Mutex::new(DispatchState::default()),
            dir: layout.given,
            real_dir: layout.real,
            remote: !local,
            dir_guard,
            role,
            outbox: Mutex::new(outbox),
            outbox_path: layout.outbox,
            inbox_path: layout.inbox,
            options,
            reader: Mutex::new(reader),
            state: Mutex::new(router),
            sink,
            sink_gone: AtomicBool::new(false),
            next_token: AtomicU64::new(1),
            ack: Mutex::new(ack),
            peer_elsewhere: AtomicBool::new(false),
            dir_refused: AtomicBool::new(false),
            watching: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            sends: Mutex::new(SendQueue::default()),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn inbox_path(&self) -> &Path {
        &self.inbox_path
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Empties both files, each under its writer's lock and by rename (unlike the reference).
    /// JS thread; outbox, then reader → state.
    pub fn clear(&self) -> Result<()> {
        self.check_open()?;
        self.dir_guard.check_unchanged()?;
        lock(&self.outbox).clear()?;
        Outbox::new(self.inbox_path.clone(), self.options.outbox_settings()).clear()?;
        self.read_and_deliver(false, |router, _, _| router.clear_queue())?;
        // Whatever the peer wrote since the inbox was emptied is new, not cleared.
        self.poll()
    }

    // ---- receiving ----

    /// New messages not claimed by a wait or the listeners. A pending problem (a malformed
    /// inbox, loss) is returned first, once; the messages stay queued for the next call.
    /// JS thread; reader → state.
    pub fn recv(&self, limit: usize) -> Result<Vec<Message>> {
        self.read_and_deliver(true, |router, _, _| router.take_for_recv(limit))?
    }

    /// Registers a wait for the response to `request_id`; the response is delivered as
    /// `Delivery::Resolved` with the returned token, or `Expired` after `timeout`.
    /// JS thread; state only (never waits for a read in flight).
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
        // Not the reader lock: a read in flight holds it (a response found here was queued by
        // an earlier read, so it comes after nothing still being read). The inbox is not read
        // here either: a running dispatcher's watch has queued what came already, and a
        // dispatcher that starts now reads it first.
        let start = self
            .lock_open()?
            .add_wait(request_id, token, timeout, follows);
        let deadline = match start {
            WaitStart::Answered(message) => {
                self.deliver(vec![Delivery::Resolved { token, message }]);
                None
            }
            WaitStart::Pending { deadline } => Some(deadline),
        };
        self.ensure_dispatcher();
        // A running dispatcher may be sleeping past this wait's deadline: it runs by then (and
        // is not woken when it runs earlier anyway).
        if let Some(deadline) = deadline {
            self.schedule_dispatcher(deadline);
        }
        Ok(token)
    }

    /// JavaScript took `count` messages handed to its listeners (the delivery callback ran).
    /// JS thread; state.
    pub fn note_taken(&self, count: usize) {
        if count == 0 {
            return;
        }
        let mut router = lock(&self.state);
        router.note_handed_over(count);
        let active = router.dispatcher_running();
        drop(router);
        // The new position is published by a round of the dispatcher soon, not by the next read
        // (which may not come for a while): writers keep and anchor by where the reader is.
        if active && self.options.acknowledge {
            self.schedule_dispatcher(Instant::now() + ACK_INTERVAL);
        }
    }

    /// Puts messages that were handed out but not consumed (an iterator that ended early) back
    /// at the front of the `recv()` queue, in order. JS thread; state.
    pub fn requeue(&self, messages: Vec<Message>) -> Result<()> {
        self.lock_open()?.requeue_front(messages);
        Ok(())
    }

    /// Drops the wait `token`; returns whether it was pending. JS or writer thread; state.
    pub fn cancel_token(&self, token: u64) -> bool {
        lock(&self.state).cancel_wait(token)
    }

    /// JS thread; state.
    pub fn pending_waits(&self) -> usize {
        lock(&self.state).pending_waits()
    }

    /// What is known of the peer now: reads the inbox for its announcements and checks the
    /// heartbeats of our outbox's readers. A change is also delivered (`Delivery::Peer`).
    /// JS thread; reader → state.
    pub fn check_peer(&self) -> Result<PeerInfo> {
        // The peer's heartbeat and process are looked at before the read: what it wrote before
        // it stopped or ended is in the inbox by then, and reaches its owners before the news.
        let process = lock(&self.state).presence().look_at_process();
        let looked = Instant::now();
        let mut readers =
            super::inspect::readers(&self.outbox_path, self.options.ack_timeout, None);
        let ack_timeout = self.options.ack_timeout;
        self.read_and_deliver(true, |router, deliveries, _| {
            let presence = router.presence();
            presence.judge_other_hosts(&mut readers, ack_timeout, looked);
            if let Some(info) = presence.check(&readers, process) {
                deliveries.push(Delivery::Peer(info));
            }
            router.presence().info().clone()
        })
    }

    /// Responses and progress dropped because their wait had ended. JS thread; state.
    pub fn reply_stats(&self) -> ReplyStats {
        lock(&self.state).reply_stats()
    }

    /// Says which listeners exist. Queued messages the new listeners want are handed to them.
    /// JS thread; reader → state.
    pub fn set_listening(self: &Arc<Self>, listening: Listening) -> Result<()> {
        self.read_and_deliver(false, |router, deliveries, _| {
            router.set_listening(listening, deliveries)
        })?;
        self.ensure_dispatcher();
        Ok(())
    }

    /// Reads the inbox now and delivers what is new (the dispatcher does this on every change).
    /// JS, dispatcher or watcher thread; reader → state.
    pub fn poll(&self) -> Result<()> {
        self.read_and_deliver(true, |_, _, _| ())
    }

    /// Closes the channel: returns the tokens of the waits and queued sends still pending, which
    /// the owner rejects. Call `write_sent_before_close` first to wait for a locked outbox.
    /// JS thread, or the writer thread for a sink that refused; outbox → sends, then state,
    /// then reader, outbox, ack and dispatch, one at a time.
    pub fn close(&self) -> Vec<u64> {
        if self.is_closed() {
            return Vec::new();
        }
        // What was sent before close() gets one more attempt (the binding has waited for the
        // outbox with `write_sent_before_close`; this may be the shared writer thread, for a
        // sink that is gone); what still cannot be written fails with ECLOSED.
        self.write_sent_once();
        let mut router = lock(&self.state);
        if self.closed.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let mut tokens = router.close();
        drop(router);
        // A write the writer thread has under way (what was sent before close()) ends before
        // our acknowledgement goes: the peer, seeing it go, reads what we wrote up to then.
        drop(lock(&self.outbox));
        // What could not be written in time is not written later: its promises fail now.
        tokens.extend(self.take_unsent());
        // Where an open file keeps its directory (Windows), a read already under way ends too
        // (later ones find the channel closed): callers remove the directory right after.
        // Elsewhere close() does not wait for a large one.
        if platform::OPEN_FILES_PIN_THEIR_DIRECTORY {
            drop(lock(&self.reader));
        }
        if let Some(ack) = lock(&self.ack).take() {
            ack.remove();
        }
        // The watch goes now, not at the dispatcher's next round: a directory still watched
        // cannot be removed on Windows, and callers remove it right after close().
        drop(std::mem::take(&mut *lock(&self.dispatch)));
        self.watching.store(false, Ordering::Relaxed);
        self.wake_dispatcher();
        tokens
    }

    // ---- internals ----

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(ChannelError::Closed);
        }
        Ok(())
    }

    /// The state lock, if the channel is open.
    fn lock_open(&self) -> Result<MutexGuard<'_, Router>> {
        let router = lock(&self.state);
        if self.is_closed() {
            return Err(ChannelError::Closed);
        }
        Ok(router)
    }

    /// The one sequence by which messages reach their owners: take the reader (which keeps
    /// batches in file order), read what is new if `read` asks for it, route it under the state
    /// lock, let `then` add its part (it is told whether the read found messages), hand the
    /// batch to the sink, then publish how far we have read. Fails only when closed.
    fn read_and_deliver<T>(
        &self,
        read: bool,
        then: impl FnOnce(&mut Router, &mut Vec<Delivery>, bool) -> T,
    ) -> Result<T> {
        let result = self.route_in_order(read, then);
        self.publish_ack();
        result
    }

    /// `read_and_deliver` without publishing the acknowledgement (for what `publish_ack`
    /// itself reports).
    fn route_in_order<T>(
        &self,
        read: bool,
        then: impl FnOnce(&mut Router, &mut Vec<Delivery>, bool) -> T,
    ) -> Result<T> {
        let mut reader = lock(&self.reader);
        let outcome = if read {
            self.read_inbox(&mut reader)?
        } else {
            ReadOutcome::default()
        };
        let mut router = self.lock_open()?;
        let found = !outcome.messages.is_empty();
        let mut deliveries = Vec::new();
        // Answered: the outbox leaves those requests out soon, even without a send.
        let prune_at = if router.route(outcome, &mut deliveries) {
            router.note_answered(Instant::now(), PRUNE_DELAY)
        } else {
            None
        };
        let result = then(&mut router, &mut deliveries, found);
        drop(router);
        self.note_peer_changes(&deliveries);
        self.deliver(deliveries);
        drop(reader);
        if let Some(at) = prune_at {
            self.plan_prune(at);
        }
        Ok(result)
    }

    /// Reads what is new in the inbox, if JavaScript has room for it. The caller holds the
    /// reader lock; the state lock is taken only briefly, not while the file is read.
    fn read_inbox(&self, reader: &mut InboxReader) -> Result<ReadOutcome> {
        // Armed even when nothing is read now: the next change must be announced. Only for a
        // writer that may write in place: the watch of a file that is then replaced costs the
        // kernel a teardown of the watch (a worker thread's wake-up) on every rename.
        let watching = self.watching.load(Ordering::Relaxed);
        let armed = watching && reader.expects_in_place_writes();
        if armed {
            super::watch::watch_file(&self.inbox_path);
        }
        let room = self.lock_open()?.has_room();
        if !room {
            return Ok(ReadOutcome::default());
        }
        // What a replaced directory holds may be planted: it is not read (reported once).
        if let Err(problem) = self.dir_guard.check_unchanged() {
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
        if lapsed {
            reader.note_lapsed();
        }
        let outcome = reader.read_new();
        if watching && !armed && reader.expects_in_place_writes() {
            // The writer turned out to write in place: its file is watched from now on, and
            // read once more for what it wrote before the watch.
            super::watch::watch_file(&self.inbox_path);
            self.wake_dispatcher();
        }
        Ok(outcome)
    }

    /// Reports a problem to the `'error'` listeners, or keeps it for `recv()`. Any thread;
    /// reader → state.
    fn report(&self, problem: ChannelError) {
        let _ = self.route_in_order(false, |router, deliveries, _| {
            router.report(vec![problem], deliveries)
        });
    }

    /// What a change of the peer means here: a peer on another host judges our acknowledgement
    /// by its age, so it needs a heartbeat; a peer that is gone may be restarted, so our
    /// settled requests leave the outbox now.
    fn note_peer_changes(&self, deliveries: &[Delivery]) {
        for delivery in deliveries {
            let Delivery::Peer(info) = delivery else {
                continue;
            };
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
    }

    /// Publishes how far JavaScript has taken, when due. Any thread, with no channel lock held;
    /// ack → state, then (for a problem) reader → state.
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
        let router = lock(&self.state);
        publisher.set_active(router.dispatcher_running());
        publisher.note_consumed(router.taken_upto());
        drop(router);
        let flushed = publisher.flush_if_due(Instant::now());
        let held_back_until = publisher.held_back_until();
        drop(ack);
        if let Some(due) = held_back_until {
            self.schedule_dispatcher(due);
        }
        if let Err(problem) = flushed {
            self.report(problem);
        }
    }

    /// Hands deliveries to the sink. Any thread; holds the reader lock at most, never the state
    /// lock. A sink that refuses (its JavaScript environment is going away) gets nothing more,
    /// and the close runs later on the writer thread: closing here would re-enter the channel
    /// with the reader (or dispatch) lock held.
    fn deliver(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() || self.is_closed() || self.sink_gone.load(Ordering::Acquire) {
            return;
        }
        if !self.sink.deliver(deliveries) && !self.sink_gone.swap(true, Ordering::AcqRel) {
            self.schedule_close();
        }
    }
}
