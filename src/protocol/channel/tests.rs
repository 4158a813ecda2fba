//! The channel end to end, on temporary directories.

use super::*;
use crate::protocol::message::{MessageType, MAX_PAYLOAD_DEPTH};
use crate::protocol::replies;
use serde_json::json;
use serde_json::Value;
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

fn open_to(dir: &Path, role: Role, sink: Arc<dyn DeliverySink>) -> Arc<Channel> {
    Channel::open_with_sink(dir, role, ChannelOptions::default(), sink).unwrap()
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
        serde_json::from_str(&std::fs::read_to_string(dir.join(CHANNEL_INFO)).unwrap()).unwrap();
    assert_eq!(info["protocol"], "file-ipc");
    assert_eq!(info["version"], "1.0");
    // The reference opens what we created.
    let mut reference = ipckit::FileChannel::backend(&dir).unwrap();
    assert!(reference.recv().unwrap().is_empty());
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
    while !crate::protocol::ack::live_positions(&outbox, Duration::from_millis(300)).is_empty() {
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
    let sink = Arc::new(Collect::default());
    let front = open_to(dir.path(), Role::Frontend, sink.clone());
    let back = open(dir.path(), Role::Backend);
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
    let sink = Arc::new(Collect::default());
    let front = open_to(dir.path(), Role::Frontend, sink.clone());
    let back = open(dir.path(), Role::Backend);
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
    let sink = Arc::new(Collect::default());
    let front = open_to(dir.path(), Role::Frontend, sink.clone());
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
    let gone = open_to(gone_dir.path(), Role::Frontend, Arc::new(Refuse));
    // Its expiry is delivered (and refused) by the process's dispatcher, inside a round.
    gone.wait_response("nobody", Duration::from_millis(10))
        .unwrap();
    wait_until("the refusing channel to close", || gone.is_closed());
    let sink = Arc::new(Collect::default());
    let healthy = open_to(healthy_dir.path(), Role::Frontend, sink.clone());
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
    let front = open_to(dir.path(), Role::Frontend, Arc::new(Collect::default()));
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

/// A frontend whose request the backend (then closed) answered, and that has read the answer;
/// returns it and the request's id.
fn frontend_with_an_answered_request(dir: &Path) -> (Arc<Channel>, String) {
    let front = open_to(dir, Role::Frontend, Arc::new(Collect::default()));
    let answered = front.send_request("add_cube", json!(null)).unwrap();
    let back = open(dir, Role::Backend);
    back.recv(10).unwrap();
    back.send_response(&answered, json!(1)).unwrap();
    back.close();
    front.recv(10).unwrap();
    (front, answered)
}

#[test]
fn without_a_send_the_writer_prunes_settled_requests_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (_front, answered) = frontend_with_an_answered_request(dir.path());
    let outbox = dir.path().join(FRONTEND_OUTBOX);
    wait_until("the answered request to leave the outbox", || {
        !ids_in(&outbox).contains(&answered)
    });
}

/// Callers remove the directory right after close() (the testing kit does): a round or a
/// write planned before it must not watch, read or write there afterwards (on Windows, a handle
/// still open keeps the directory there).
#[test]
fn a_closed_channel_neither_watches_nor_writes_its_directory_again() {
    let dir = tempfile::tempdir().unwrap();
    let (front, answered) = frontend_with_an_answered_request(dir.path());
    front.close();
    // (close() waits for a round under way, which may have watched the directory meanwhile.)
    let watched = crate::protocol::watch::registrations_of(&front.real_dir);
    // The dispatcher's round that close() asks for, and the writer's prune of the answered
    // request, both due after it.
    assert_eq!(front.dispatch_round(), None);
    assert_eq!(front.flush_sends(), None);
    assert_eq!(
        crate::protocol::watch::registrations_of(&front.real_dir),
        watched
    );
    assert!(ids_in(&dir.path().join(FRONTEND_OUTBOX)).contains(&answered));
}

/// A reply handed to the writer thread just before close() (a handler's answer, then the
/// backend closes) is in the file when close() returns: the peer, seeing our acknowledgement
/// go or our process end, reads what we wrote and loses no answer.
#[test]
fn what_was_sent_before_close_is_written_when_close_returns() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join(BACKEND_OUTBOX);
    for round in 0..300 {
        let back = open(dir.path(), Role::Backend);
        let reply = Message::event("reply", json!(round));
        let id = reply.id.clone();
        back.enqueue_reported(reply, Duration::from_secs(10))
            .unwrap();
        // Give the writer thread 0-500 µs to take it: in some rounds its write is under way
        // when close() is called.
        let spin = Instant::now() + Duration::from_micros(round % 50 * 10);
        while Instant::now() < spin {
            std::hint::spin_loop();
        }
        back.close();
        assert!(ids_in(&outbox).contains(&id), "round {round}: not written");
    }
}

/// What a listener took is published soon by the dispatcher, not by the next read (which may
/// not come for a while): the writer keeps and anchors by where the reader is, not where it was.
#[test]
fn what_an_active_reader_took_is_published_even_when_nothing_more_arrives() {
    let dir = tempfile::tempdir().unwrap();
    // Safety re-reads far apart: only the publication's own round can write it.
    let options = ChannelOptions {
        poll_interval: Duration::from_secs(60),
        ..ChannelOptions::default()
    };
    let sink = Arc::new(Collect::default());
    let back = Channel::open_with_sink(dir.path(), Role::Backend, options, sink.clone()).unwrap();
    back.set_listening(Listening {
        events: true,
        ..Listening::default()
    })
    .unwrap();
    let front = open(dir.path(), Role::Frontend);
    let outbox = dir.path().join(FRONTEND_OUTBOX);
    let position = || crate::protocol::ack::live_positions(&outbox, Duration::from_secs(10));
    let delivered = || {
        sink.0
            .lock()
            .unwrap()
            .iter()
            .map(|d| match d {
                Delivery::Messages(batch) => batch.len(),
                _ => 0,
            })
            .sum::<usize>()
    };
    for (sent, name) in ["first", "second", "third"].into_iter().enumerate() {
        front.send_event(name, json!(sent)).unwrap();
        wait_until("the delivery", || delivered() > sent);
        // The listener ran (JavaScript took the batch).
        back.note_taken(delivered() - sent);
        let last = ids_in(&outbox).pop();
        wait_until("the position of what was taken", || {
            position() == vec![last.clone()]
        });
    }
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
    let sink = Arc::new(Collect::default());
    let back = open_to(dir.path(), Role::Backend, sink.clone());
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
    let sink = Arc::new(Collect::default());
    let back = open_to(&dir, Role::Backend, sink.clone());
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
    let sink = Arc::new(SlowCollect::default());
    let front = open_to(dir.path(), Role::Frontend, sink.clone());
    // Three threads reading in a loop keep the inbox open nearly all the time; where an open
    // file cannot be replaced (Wine), the writer needs patience to get its renames in.
    let patient = ChannelOptions {
        lock_timeout: Duration::from_secs(30),
        ..ChannelOptions::default()
    };
    let back = Channel::open(dir.path(), Role::Backend, patient).unwrap();
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

#[test]
fn a_group_of_queued_sends_is_written_in_order_and_settles_its_one_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Collect::default());
    let back = open_to(dir.path(), Role::Backend, sink.clone());
    let events: Vec<Message> = (0..5)
        .map(|n| Message::event("task.progress", json!({ "progress": n })))
        .collect();
    let ids: Vec<String> = events.iter().map(|m| m.id.clone()).collect();
    let token = back.enqueue_sends(events, Duration::from_secs(10)).unwrap();
    let settled = || {
        let deliveries = sink.0.lock().unwrap();
        let results: Vec<std::result::Result<String, String>> = deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Sent { token: t, result } if *t == token => match result {
                    Ok(id) => Some(Ok(id.clone())),
                    Err(error) => Some(Err(error.to_string())),
                },
                _ => None,
            })
            .collect();
        results
    };
    wait_until("the group's token to settle", || !settled().is_empty());
    // Settled by the last send, after all were written, in order.
    assert_eq!(ids_in(&dir.path().join(BACKEND_OUTBOX)), ids);
    let results = settled();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].as_ref().unwrap(), ids.last().unwrap());
}

#[test]
fn a_reply_delivers_nothing_when_written_and_a_problem_naming_the_lock_when_it_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Collect::default());
    let back = open_to(dir.path(), Role::Backend, sink.clone());
    let written = Message::response("a-request", json!(1));
    let written_id = written.id.clone();
    back.enqueue_reported(written, Duration::from_secs(10))
        .unwrap();
    wait_until("the reply to be written", || {
        ids_in(&dir.path().join(BACKEND_OUTBOX)) == vec![written_id.clone()]
    });
    // A live holder (this process) keeps the outbox locked past the reply's timeout.
    let lock_path = dir.path().join("backend_to_frontend.lock");
    std::fs::write(&lock_path, format!("{}\n", std::process::id())).unwrap();
    back.enqueue_reported(
        Message::response("b-request", json!(2)),
        Duration::from_millis(50),
    )
    .unwrap();
    let problems = || -> Vec<String> {
        let deliveries = sink.0.lock().unwrap();
        deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Problems(problems) => {
                    Some(problems.iter().map(|p| format!("{} {p}", p.code())))
                }
                Delivery::Sent { .. } => panic!("a reply settles no promise"),
                _ => None,
            })
            .flatten()
            .collect()
    };
    wait_until("the failed reply to be reported", || !problems().is_empty());
    let reported = problems();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].starts_with("ELOCKED "), "{reported:?}");
    assert!(
        reported[0].contains("backend_to_frontend.lock"),
        "{reported:?}"
    );
    assert_eq!(ids_in(&dir.path().join(BACKEND_OUTBOX)), vec![written_id]);
}
