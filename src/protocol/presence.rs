//! Presence of the peer (PROTOCOL-EXTENSIONS.md, "Presence"): whether the other side is up,
//! from its `*_ready` / `*_shutdown` announcements in our inbox and from the acknowledgement
//! heartbeat it publishes as a reader of our outbox.
//!
//! Up after `*_ready` or a live heartbeat; gone after `*_shutdown`, when the heartbeat it was
//! known by lapses or disappears, or when the announced process no longer exists on this host.
//! Plain state: the channel feeds it messages while routing and heartbeat listings from
//! `check()`; it says when the picture changed.

use super::inspect::ReaderState;
use super::message::{Message, MessageType};
use super::platform::{host_name, process_alive, process_start_ms};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Unknown,
    Ready,
    Gone,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Unknown => "unknown",
            PeerState::Ready => "ready",
            PeerState::Gone => "gone",
        }
    }
}

/// What is known of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub state: PeerState,
    pub pid: Option<u32>,
    pub host: Option<String>,
    /// `available_methods` of its last `*_ready`.
    pub methods: Option<Vec<String>>,
}

/// The announced process as seen before a read (`Presence::look_at_process`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSeen {
    /// The pid of the peer's process, if it had ended (or its id was taken by another).
    ended: Option<u32>,
}

#[derive(Debug)]
pub struct Presence {
    /// `backend_ready`, `backend_shutdown` (or the frontend's): the peer's announcements.
    ready_event: String,
    shutdown_event: String,
    info: PeerInfo,
    /// The acknowledgement (reader id) the peer is known by, when it publishes one.
    heartbeat: Option<String>,
    /// Acknowledgements of a peer that has gone: they no longer bring it back (one may linger
    /// for a moment after `*_shutdown`, or stay behind after a kill).
    spent: HashSet<String>,
    /// A shutdown was seen: spend the acknowledgements present at the next check.
    spend_pending: bool,
    /// When we opened (ms since the epoch): an acknowledgement written since is this session's.
    opened_ms: u64,
    /// When the peer's last `*_ready` was written (ms since the epoch): a process with its `pid`
    /// that started later is another one, which reuses the id of a peer that died.
    announced_ms: Option<u64>,
    /// Acknowledgements of readers on other hosts: the `updated` stamp last seen in each, and
    /// when (by our own clock) it last changed. Their age is judged by that, never by comparing
    /// their clock with ours.
    other_hosts: HashMap<String, (Option<u64>, Instant)>,
}

/// How much longer than `ackTimeoutMs` another host's heartbeat may seem to stand still: a network
/// file system may show a rewritten file late (attribute and entry caches, about a second).
const OTHER_HOST_SLACK: Duration = Duration::from_secs(2);

/// How much later than its announcement a process may seem to have started and still be the one
/// that announced (Linux tells start times to the second).
const PID_REUSE_SLACK_MS: u64 = 2000;

impl Presence {
    /// The presence of the other side of a channel whose own role is `own_role`
    /// (`"frontend"` watches `backend_*`).
    pub fn new(own_role: &str) -> Self {
        let peer = if own_role == "frontend" {
            "backend"
        } else {
            "frontend"
        };
        Presence {
            ready_event: format!("{peer}_ready"),
            shutdown_event: format!("{peer}_shutdown"),
            info: PeerInfo {
                state: PeerState::Unknown,
                pid: None,
                host: None,
                methods: None,
            },
            heartbeat: None,
            spent: HashSet::new(),
            spend_pending: false,
            opened_ms: super::message::now_ms(),
            announced_ms: None,
            other_hosts: HashMap::new(),
        }
    }

    /// Judges the acknowledgements of readers on other hosts by our own clock (`live` is set
    /// again): live while the record changed within `ack_timeout` (plus a slack for a share's
    /// caches) of our `now`, whatever the two clocks say. At first sight the record's own stamp
    /// is all there is (its `live` stays). A record that names its process does not heartbeat
    /// (its writer saw no other host): it cannot be judged from here, and is live while present.
    pub fn judge_other_hosts(
        &mut self,
        readers: &mut [ReaderState],
        ack_timeout: Duration,
        now: Instant,
    ) {
        let here = host_name();
        self.other_hosts
            .retain(|id, _| readers.iter().any(|r| &r.id == id));
        for reader in readers.iter_mut() {
            let elsewhere = reader.host.as_deref().is_some_and(|host| host != here);
            if !elsewhere || reader.error.is_some() || reader.updated.is_none() {
                continue;
            }
            let by_process = reader.by_process == Some(true);
            match self.other_hosts.get_mut(&reader.id) {
                None => {
                    self.other_hosts
                        .insert(reader.id.clone(), (reader.updated, now));
                    if by_process {
                        reader.live = Some(true);
                    }
                }
                Some(seen) if seen.0 != reader.updated => {
                    *seen = (reader.updated, now);
                    reader.live = Some(true);
                }
                Some(seen) => {
                    let still = now.duration_since(seen.1) <= ack_timeout + OTHER_HOST_SLACK;
                    reader.live = Some(by_process || still);
                }
            }
        }
    }

    pub fn info(&self) -> &PeerInfo {
        &self.info
    }

    /// Whether `message` is an announcement of the peer (it still goes to listeners).
    pub fn is_announcement(&self, message: &Message) -> bool {
        message.kind == MessageType::Event
            && message
                .method
                .as_deref()
                .is_some_and(|m| m == self.ready_event || m == self.shutdown_event)
    }

    /// Takes an announcement into account; returns the new picture when it changed. One that
    /// was in the file before we opened (`before_open`) can only show a peer that is still up:
    /// that an earlier peer shut down or died says nothing of the one that may be starting now.
    pub fn observe(&mut self, message: &Message, before_open: bool) -> Option<PeerInfo> {
        if !self.is_announcement(message) {
            return None;
        }
        let before = self.info.clone();
        let payload = &message.payload;
        let pid = payload
            .get("pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok());
        if message.method.as_deref() == Some(self.ready_event.as_str()) {
            let host = payload
                .get("host")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let methods = payload
                .get("available_methods")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                });
            // An announcement names its process; one of this host that has ended is not believed
            // over a peer known to be up (anyone may write the file: the peer is checked, not
            // the claim). With nothing better known, it says a peer was here and is gone.
            let dead_here = match (pid, host.as_deref()) {
                (Some(pid), Some(host)) => host == host_name() && !process_alive(pid),
                _ => false,
            };
            if dead_here {
                if self.info.state == PeerState::Ready || before_open {
                    return None;
                }
                self.info.host = host;
                self.info.methods = methods;
                self.go(pid);
                return (self.info != before).then(|| self.info.clone());
            }
            if pid != self.info.pid || host != self.info.host {
                // Another process (or one that did not say): tie the heartbeat again.
                self.heartbeat = None;
            }
            self.info = PeerInfo {
                state: PeerState::Ready,
                pid,
                host,
                methods,
            };
            self.announced_ms = Some(message.timestamp);
            self.spend_pending = false;
        } else {
            if before_open {
                return None;
            }
            // The shutdown of another process than the one we know (an old peer closing late)
            // says nothing about this one; nor does one that names no process, when we know
            // which process the peer is.
            match (pid, self.info.pid) {
                (Some(a), Some(b)) if a != b => return None,
                (None, Some(_)) => return None,
                _ => {}
            }
            self.go(pid);
            self.spend_pending = true;
        }
        (self.info != before).then(|| self.info.clone())
    }

    /// A message the peer wrote since we opened: a peer not known yet is up (a reference peer
    /// publishes no acknowledgement, and its `*_ready` may have been trimmed away by the 100
    /// messages it wrote since). Returns the new picture when it changed.
    pub fn observe_activity(&mut self) -> Option<PeerInfo> {
        if self.info.state != PeerState::Unknown {
            return None;
        }
        self.info.state = PeerState::Ready;
        Some(self.info.clone())
    }

    /// Looks at the announced process, before the inbox is read for the same check: whatever
    /// it wrote before it ended is in the file by then, so the read after sees it, and its
    /// answers are not lost to a judgement made after the read.
    pub fn look_at_process(&self) -> ProcessSeen {
        let pid = match (self.info.state, self.info.pid, &self.info.host) {
            (PeerState::Ready, Some(pid), Some(host)) if host == host_name() => pid,
            _ => return ProcessSeen::default(),
        };
        ProcessSeen {
            ended: Some(pid).filter(|&pid| !process_alive(pid) || self.pid_reused(pid)),
        }
    }

    /// Takes into account the acknowledging readers of our outbox and the announced process,
    /// both as seen before the inbox was read; returns the new picture when it changed.
    pub fn check(&mut self, readers: &[ReaderState], process: ProcessSeen) -> Option<PeerInfo> {
        let before = self.info.clone();
        if self.spend_pending {
            self.spend_pending = false;
            self.spent.extend(readers.iter().map(|r| r.id.clone()));
        }
        let live = |r: &&ReaderState| r.live == Some(true) && !self.spent.contains(&r.id);
        match self.info.state {
            PeerState::Ready => {
                if self.heartbeat.is_none() {
                    // Tie the announced process to its acknowledgement, when it publishes one.
                    self.heartbeat = match (self.info.pid, &self.info.host) {
                        (Some(pid), Some(host)) => readers
                            .iter()
                            .filter(live)
                            .find(|r| r.pid == Some(pid) && r.host.as_deref() == Some(host))
                            .map(|r| r.id.clone()),
                        _ => None,
                    };
                }
                // Seen ended before the read, and still the one we know (the read may have
                // brought another's announcement).
                let process_died = process.ended.is_some() && process.ended == self.info.pid;
                // Gone from the listing, or stale; one that could not be read this time (being
                // replaced) proves nothing.
                let heartbeat_lapsed = self.heartbeat.as_ref().is_some_and(|id| {
                    readers
                        .iter()
                        .find(|r| &r.id == id)
                        .is_none_or(|r| r.live == Some(false))
                });
                if process_died || heartbeat_lapsed {
                    let pid = self.info.pid;
                    self.go(pid);
                    self.spent.extend(readers.iter().map(|r| r.id.clone()));
                }
            }
            PeerState::Unknown | PeerState::Gone => {
                if let Some(reader) = readers.iter().filter(live).max_by_key(|r| r.updated) {
                    self.heartbeat = Some(reader.id.clone());
                    self.info = PeerInfo {
                        state: PeerState::Ready,
                        pid: reader.pid,
                        host: reader.host.clone(),
                        methods: None,
                    };
                } else if self.info.state == PeerState::Unknown {
                    // A peer that never announced itself and died before a check saw it live
                    // (within 250 ms of our request): its acknowledgement, written since we
                    // opened, names a process of this host that has ended. One left by an
                    // earlier session (written before) says nothing about the peer to come.
                    let died = readers.iter().find(|r| {
                        r.running == Some(Some(false))
                            && r.updated.is_some_and(|updated| updated >= self.opened_ms)
                            && !self.spent.contains(&r.id)
                    });
                    if let Some(reader) = died {
                        self.info.host = reader.host.clone();
                        self.go(reader.pid);
                        self.spent.extend(readers.iter().map(|r| r.id.clone()));
                    }
                }
            }
        }
        (self.info != before).then(|| self.info.clone())
    }

    /// Whether the process now running as `pid` started after the peer announced itself: the
    /// peer died and another process took its id (a reference backend publishes no
    /// acknowledgement that would tell).
    fn pid_reused(&self, pid: u32) -> bool {
        match (self.announced_ms, process_start_ms(pid)) {
            (Some(announced), Some(started)) => started > announced + PID_REUSE_SLACK_MS,
            _ => false,
        }
    }

    fn go(&mut self, pid: Option<u32>) {
        if let Some(id) = self.heartbeat.take() {
            self.spent.insert(id);
        }
        self.info.state = PeerState::Gone;
        self.info.pid = pid.or(self.info.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, payload: Value) -> Message {
        Message::event(name, payload)
    }

    impl Presence {
        /// An announcement written since we opened.
        fn observe_now(&mut self, message: &Message) -> Option<PeerInfo> {
            self.observe(message, false)
        }

        /// A check that judges only the readers (no announced process was seen ending).
        fn check_readers(&mut self, readers: &[ReaderState]) -> Option<PeerInfo> {
            self.check(readers, ProcessSeen::default())
        }
    }

    fn reader(id: &str, pid: u32, live: bool) -> ReaderState {
        ReaderState {
            id: id.into(),
            file: Default::default(),
            last_id: None,
            updated: Some(1),
            pid: Some(pid),
            host: Some(host_name().to_owned()),
            age_ms: None,
            running: None,
            live: Some(live),
            by_process: None,
            unread: None,
            error: None,
        }
    }

    #[test]
    fn announcements_make_the_peer_ready_then_gone() {
        let mut presence = Presence::new("frontend");
        assert_eq!(presence.info().state, PeerState::Unknown);
        let me = std::process::id();
        let ready = presence
            .observe_now(&event(
                "backend_ready",
                json!({"available_methods": ["a", "b"], "pid": me, "host": host_name()}),
            ))
            .expect("a change");
        assert_eq!(ready.state, PeerState::Ready);
        assert_eq!(ready.methods, Some(vec!["a".into(), "b".into()]));
        assert_eq!(ready.pid, Some(me));
        // Our own kind of announcement is not the peer's.
        assert!(presence
            .observe_now(&event("frontend_shutdown", json!({"pid": me})))
            .is_none());
        // Another process's shutdown says nothing about this one.
        assert!(presence
            .observe_now(&event("backend_shutdown", json!({"pid": me + 1})))
            .is_none());
        let gone = presence
            .observe_now(&event("backend_shutdown", json!({"pid": me})))
            .expect("a change");
        assert_eq!(gone.state, PeerState::Gone);
    }

    #[test]
    fn upstreams_ready_without_pid_is_accepted() {
        let mut presence = Presence::new("frontend");
        let info = presence
            .observe_now(&event(
                "backend_ready",
                json!({"available_methods": ["echo"], "timestamp": 1.5}),
            ))
            .expect("a change");
        assert_eq!(info.state, PeerState::Ready);
        assert_eq!(info.pid, None);
        // Nothing to check it against: it stays up.
        assert!(presence.check_readers(&[]).is_none());
    }

    #[test]
    fn a_heartbeat_brings_the_peer_up_and_its_lapse_takes_it_down() {
        let mut presence = Presence::new("backend");
        let me = std::process::id();
        let up = presence
            .check_readers(&[reader("a", me, true)])
            .expect("up");
        assert_eq!(up.state, PeerState::Ready);
        assert_eq!(up.pid, Some(me));
        assert!(presence.check_readers(&[reader("a", me, true)]).is_none());
        let down = presence
            .check_readers(&[reader("a", me, false)])
            .expect("down");
        assert_eq!(down.state, PeerState::Gone);
        // The same (stale, then refreshed) acknowledgement does not bring it back...
        assert!(presence.check_readers(&[reader("a", me, true)]).is_none());
        // ...a new reader does.
        let back = presence
            .check_readers(&[reader("b", me, true)])
            .expect("back");
        assert_eq!(back.state, PeerState::Ready);
    }

    #[test]
    fn a_peer_that_dies_before_any_check_saw_it_live_is_gone_but_not_one_of_an_earlier_session() {
        let mut presence = Presence::new("backend");
        let dead = |id: &str, updated: u64| ReaderState {
            running: Some(Some(false)),
            updated: Some(updated),
            ..reader(id, 4_000_000, false)
        };
        // Left by a session before we opened: the peer to come is not judged by it.
        assert!(presence
            .check_readers(&[dead("old", presence.opened_ms - 1)])
            .is_none());
        assert_eq!(presence.info().state, PeerState::Unknown);
        // Written since we opened, by a process that has ended.
        let gone = presence
            .check_readers(&[dead("old", 1), dead("new", presence.opened_ms)])
            .expect("gone");
        assert_eq!((gone.state, gone.pid), (PeerState::Gone, Some(4_000_000)));
    }

    #[test]
    fn a_lingering_acknowledgement_after_shutdown_does_not_revive_the_peer() {
        let mut presence = Presence::new("frontend");
        let me = std::process::id();
        presence.observe_now(&event(
            "backend_ready",
            json!({"available_methods": [], "pid": me, "host": host_name()}),
        ));
        assert!(presence.check_readers(&[reader("a", me, true)]).is_none());
        presence.observe_now(&event("backend_shutdown", json!({"pid": me})));
        assert!(presence.check_readers(&[reader("a", me, true)]).is_none());
        assert_eq!(presence.info().state, PeerState::Gone);
    }

    #[test]
    fn announcements_are_checked_against_the_process_they_name() {
        let mut presence = Presence::new("frontend");
        let me = std::process::id();
        presence.observe_now(&event(
            "backend_ready",
            json!({"available_methods": [], "pid": me, "host": host_name()}),
        ));
        // Written by anyone: a shutdown naming no process, a ready naming a dead one.
        assert!(presence
            .observe_now(&event("backend_shutdown", json!({})))
            .is_none());
        let dead = json!({"available_methods": [], "pid": 0x7fff_fff0u32, "host": host_name()});
        assert!(presence
            .observe_now(&event("backend_ready", dead))
            .is_none());
        assert_eq!(presence.info().state, PeerState::Ready);
        assert_eq!(presence.info().pid, Some(me));
        // The real one's shutdown is believed.
        let gone = presence.observe_now(&event("backend_shutdown", json!({"pid": me})));
        assert_eq!(gone.expect("gone").state, PeerState::Gone);
    }

    #[test]
    fn what_an_earlier_peer_announced_before_we_opened_shows_only_a_peer_that_is_up() {
        let mut presence = Presence::new("frontend");
        let me = std::process::id();
        let dead = json!({"available_methods": [], "pid": 0x7fff_fff0u32, "host": host_name()});
        assert!(presence
            .observe(&event("backend_ready", dead), true)
            .is_none());
        assert!(presence
            .observe(&event("backend_shutdown", json!({"pid": 1})), true)
            .is_none());
        assert_eq!(presence.info().state, PeerState::Unknown);
        let live = json!({"available_methods": ["m"], "pid": me, "host": host_name()});
        let up = presence
            .observe(&event("backend_ready", live), true)
            .expect("up");
        assert_eq!((up.state, up.pid), (PeerState::Ready, Some(me)));
    }

    #[test]
    fn a_process_that_reuses_the_id_of_the_announced_one_does_not_keep_the_peer_up() {
        let me = std::process::id();
        let ready = || {
            event(
                "backend_ready",
                json!({"available_methods": [], "pid": me, "host": host_name()}),
            )
        };
        // Announced now by this very process: up.
        let mut presence = Presence::new("frontend");
        presence.observe_now(&ready());
        let seen = presence.look_at_process();
        assert!(presence.check(&[], seen).is_none());
        assert_eq!(presence.info().state, PeerState::Ready);
        // Announced long before this process started: whoever announced it is gone.
        let mut presence = Presence::new("frontend");
        let mut old = ready();
        old.timestamp = 1_000_000_000_000; // 2001
        presence.observe_now(&old);
        let seen = presence.look_at_process();
        let gone = presence.check(&[], seen).expect("gone");
        assert_eq!(gone.state, PeerState::Gone);
    }

    #[test]
    fn a_process_is_judged_by_how_it_was_seen_before_the_read_not_after() {
        const AS_CHILD: &str = "IPCKIT_TEST_STAY_UNTIL_KILLED";
        if std::env::var_os(AS_CHILD).is_some() {
            // This test run again as the peer's process: it stays until killed.
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            return;
        }
        let ready = |pid: u32| {
            event(
                "backend_ready",
                json!({"available_methods": [], "pid": pid, "host": host_name()}),
            )
        };
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "protocol::presence::tests::a_process_is_judged_by_how_it_was_seen_before_the_read_not_after"])
            .env(AS_CHILD, "1")
            .stdout(std::process::Stdio::null())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("a child process");
        let pid = child.id();
        let mut presence = Presence::new("frontend");
        presence.observe_now(&ready(pid));
        let before_read = presence.look_at_process();
        child.kill().expect("kill");
        child.wait().expect("reaped");
        // It ended after it was looked at, perhaps after writing what the read did not see yet:
        // this check keeps it up, the next one (which reads again) takes it down.
        assert!(presence.check(&[], before_read).is_none());
        assert_eq!(presence.info().state, PeerState::Ready);
        let ended = presence.look_at_process();
        let gone = presence.check(&[], ended).expect("gone");
        assert_eq!((gone.state, gone.pid), (PeerState::Gone, Some(pid)));
        // Seen ended, then the read brought a new process's announcement: that one is up.
        let me = std::process::id();
        let mut presence = Presence::new("frontend");
        presence.observe_now(&ready(me));
        let stale = ProcessSeen { ended: Some(pid) };
        presence.observe_now(&ready(me + 1_000_000));
        assert!(presence.check(&[], stale).is_none());
        assert_eq!(presence.info().state, PeerState::Ready);
    }

    #[test]
    fn a_dead_announced_process_is_gone() {
        let mut presence = Presence::new("frontend");
        // Nothing better known: the announcement says a peer was here, and its process ended.
        let gone = presence
            .observe_now(&event(
                "backend_ready",
                json!({"available_methods": [], "pid": 0x7fff_fff0u32, "host": host_name()}),
            ))
            .expect("gone");
        assert_eq!((gone.state, gone.pid), (PeerState::Gone, Some(0x7fff_fff0)));
    }
}
