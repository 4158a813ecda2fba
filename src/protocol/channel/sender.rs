//! Sending: the synchronous sends and the writer thread's queue share one path into the outbox
//! (`write_outbox`: the directory check, the lock, the write), so a rule added there holds for
//! every send.

use super::super::error::{ChannelError, Result};
use super::super::message::{depth, Message, MAX_PAYLOAD_DEPTH};
use super::super::outbox::Outbox;
use super::super::reactor;
use super::router::Delivery;
use super::Channel;
use crate::protocol::sync::lock;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A send queued for the writer thread.
pub(super) struct QueuedSend {
    message: Message,
    /// Settles the caller's promise (`Delivery::Sent`); a request's shows through its wait.
    token: Option<u64>,
    /// Whether writing it settles `token`: the last of a group sent with one promise (the
    /// first failure in the group settles it too).
    settles: bool,
    /// The response wait of a request, failed with the send. With neither a token nor a wait
    /// (a handler's reply), writing it delivers nothing and a failure is reported as a problem.
    wait: Option<u64>,
    deadline: Instant,
}

#[derive(Default)]
pub(super) struct SendQueue {
    queued: VecDeque<QueuedSend>,
    /// Why the last attempt did not get through (lock held, file held open, backlog full).
    last_refusal: Option<ChannelError>,
    /// The next retry's pause.
    backoff: Duration,
    /// Sends taken from `queued` by a write in progress (they go back if it does not get through).
    in_flight: usize,
}

/// How soon after an answer the outbox is rewritten without the answered request, when no send
/// does it first: a backend that crashes and restarts meanwhile would find it.
pub(super) const PRUNE_DELAY: Duration = Duration::from_secs(1);

/// Refuses what the reference reader could not read back.
fn check_sendable(message: &Message) -> Result<()> {
    if depth(&message.payload) > MAX_PAYLOAD_DEPTH {
        return Err(ChannelError::Invalid(format!(
            "payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels, which the reference reader cannot read"
        )));
    }
    Ok(())
}

impl Channel {
    /// Writes `message` now. JS thread; takes the outbox lock (and the lock file, up to
    /// `lockTimeoutMs`).
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
        self.dir_guard.check_unchanged()?;
        if messages.is_empty() {
            outbox.prune()
        } else {
            outbox.append_with(messages, patience).map(|()| true)
        }
    }

    /// The synchronous sends below: JS thread; as `send`.
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

    /// Sends a request with its wait already registered, so no listener can take the response.
    /// Returns the request id and the wait's token. JS thread; state, then outbox.
    pub fn begin_request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<(String, u64)> {
        self.start_request(method, params, timeout, false)
    }

    /// Queues `message` for the writer thread and returns at once: the result comes as
    /// `Delivery::Sent` with the returned token. A send that finds the outbox locked, held open
    /// or full is retried until `timeout`, then fails with the last refusal. JS thread; sends.
    pub fn enqueue_send(self: &Arc<Self>, message: Message, timeout: Duration) -> Result<u64> {
        self.enqueue_sends(vec![message], timeout)
    }

    /// `enqueue_send` for several messages with one token, settled once the last is written or
    /// at the first that fails (the others are still written). One crossing for a burst of
    /// small sends (handler progress). JS thread; sends.
    pub fn enqueue_sends(
        self: &Arc<Self>,
        messages: Vec<Message>,
        timeout: Duration,
    ) -> Result<u64> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.enqueue(messages, Some(token), None, timeout)?;
        Ok(token)
    }

    /// `enqueue_send` with no promise: a handler's reply. It is written like any queued send;
    /// a failure to write it in `timeout` is reported as a problem (`'error'`), and a success
    /// costs JavaScript nothing. JS thread; sends.
    pub fn enqueue_reported(self: &Arc<Self>, message: Message, timeout: Duration) -> Result<()> {
        self.enqueue(vec![message], None, None, timeout)
    }

    /// `begin_request` through the writer thread: a send that fails fails the wait. JS thread;
    /// state, then sends.
    pub fn begin_request_queued(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<(String, u64)> {
        self.start_request(method, params, timeout, true)
    }

    fn start_request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        timeout: Duration,
        queued: bool,
    ) -> Result<(String, u64)> {
        let message = Message::request(method, params);
        let id = message.id.clone();
        let wait = self.register_wait(&id, timeout, true)?;
        let sent = if queued {
            self.enqueue(vec![message], None, Some(wait), timeout)
        } else {
            self.send(&message)
        };
        if let Err(error) = sent {
            self.cancel_token(wait);
            return Err(error);
        }
        Ok((id, wait))
    }

    fn enqueue(
        self: &Arc<Self>,
        messages: Vec<Message>,
        token: Option<u64>,
        wait: Option<u64>,
        timeout: Duration,
    ) -> Result<()> {
        self.check_open()?;
        for message in &messages {
            check_sendable(message)?;
        }
        let deadline = Instant::now() + timeout;
        let last = messages.len().saturating_sub(1);
        let mut sends = lock(&self.sends);
        for (index, message) in messages.into_iter().enumerate() {
            sends.queued.push_back(QueuedSend {
                message,
                token,
                settles: index == last,
                wait,
                deadline,
            });
        }
        drop(sends);
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || me.upgrade().and_then(|c| c.flush_sends()));
        reactor::writer().schedule(self.key, Instant::now(), job);
        Ok(())
    }

    /// The end of a queued send: its promise settles, and a failed request's wait with it.
    fn finish_send(&self, send: QueuedSend, result: Result<()>, deliveries: &mut Vec<Delivery>) {
        match (result, send.token, send.wait) {
            (Ok(()), Some(_), _) if !send.settles => {}
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
            (Err(error), None, None) => deliveries.push(Delivery::Problems(vec![error])),
            (Ok(()), None, _) => {}
        }
    }

    /// Has the writer thread leave our settled requests out of the outbox `after` from now (or
    /// earlier, with a send). Any thread; no channel lock (the writer's schedule only).
    pub(super) fn schedule_prune(&self, after: Duration) {
        if self.is_closed() {
            return;
        }
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || me.upgrade().and_then(|c| c.flush_sends()));
        reactor::writer().schedule(self.key, Instant::now() + after, job);
    }

    /// Writes the queued sends on this thread, batch after batch, while they get through (one
    /// attempt each: a locked outbox leaves them queued). JS thread (close, exit); as
    /// `flush_sends`.
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

    /// Before close(): writes on this thread what was sent and is not written yet (queued, or
    /// taken by the writer thread), waiting for a locked or held-open outbox as a synchronous
    /// send does (`lockTimeoutMs`), not for room in a full one. What is left unwritten fails
    /// (`ELOST`, saying why). JS thread; outbox → sends.
    pub fn write_sent_before_close(&self) -> Result<()> {
        let left = self.write_sent_until(Instant::now() + self.options.lock_timeout, false);
        if left == 0 {
            return Ok(());
        }
        let reason = lock(&self.sends).last_refusal.as_ref().map_or_else(
            || "the writer thread did not finish in time".into(),
            |e| e.to_string(),
        );
        Err(ChannelError::Unsent {
            path: self.outbox_path.clone(),
            count: left,
            reason,
        })
    }

    /// The process is exiting: writes what the writer thread has not written yet, on the calling
    /// thread (the writer thread dies with the process), trying again for up to `lockTimeoutMs`
    /// (at least 2 s) while the outbox is locked, held open (Windows) or full. Returns how many
    /// sends are left unwritten. JS thread at exit; outbox → sends.
    pub fn flush_before_exit(&self) -> usize {
        let patience = self.options.lock_timeout.max(Duration::from_secs(2));
        self.write_sent_until(Instant::now() + patience, true)
    }

    /// close(): one attempt at what is queued. JS or writer thread; outbox → sends.
    pub(super) fn write_sent_once(&self) {
        self.write_sent_until(Instant::now(), false);
    }

    /// close(): the sends still queued will not be written; returns the tokens of their promises
    /// (to reject with ECLOSED), each once. JS thread; sends.
    pub(super) fn take_unsent(&self) -> Vec<u64> {
        let mut tokens: Vec<u64> = lock(&self.sends)
            .queued
            .drain(..)
            .filter_map(|send| send.token)
            .collect();
        tokens.dedup();
        tokens
    }

    fn write_sent_until(&self, deadline: Instant, wait_for_room: bool) -> usize {
        loop {
            self.write_queued_now();
            // Holding the outbox, no write is under way: one the writer thread had taken has
            // ended (whatever the deadline: it ends by itself), written or back in the queue.
            let outbox = lock(&self.outbox);
            let sends = lock(&self.sends);
            let left = sends.queued.len();
            let no_room = matches!(sends.last_refusal, Some(ChannelError::Backlog { .. }));
            drop((sends, outbox));
            if left == 0 || Instant::now() >= deadline || (no_room && !wait_for_room) {
                return left;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// One write of the queued sends (the writer thread calls it): as many as one write may
    /// carry, under one lock. Returns when to try again, if anything is left. Writer thread;
    /// outbox → sends (the sends lock is let go while the file is written).
    pub(super) fn flush_sends(&self) -> Option<Instant> {
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
        // Closed: what was queued failed above (and goes nowhere: a closed channel delivers
        // nothing), and the directory is touched no more (its owner may be removing it).
        if closed {
            return None;
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
        // The queue is taken before the outbox is let go: a batch that did not get through goes
        // back to the front before another thread (`flush_before_exit`) can write what was
        // queued after it.
        let mut sends = lock(&self.sends);
        drop(outbox);
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
            // Locked, held open, full or read cut off (a network share): nothing was written; the batch goes back, in order.
            Err(
                error @ (ChannelError::Locked { .. }
                | ChannelError::Busy { .. }
                | ChannelError::ShortRead { .. }
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
