//! The channel's share of the process's dispatcher: rounds that read, route and expire; the
//! watch of the directory and the safety re-reads that back it; and the jobs a channel hands to
//! the dispatcher and writer threads (which hold none of its locks when they run them).

use super::super::error::ChannelError;
use super::super::files::stat;
use super::super::platform::FileIdentity;
use super::super::reactor;
use super::super::watch;
use super::Channel;
use crate::protocol::sync::lock;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Marks a channel's close job in the writer's schedule, apart from its send job.
const CLOSE_JOB_KEY: u64 = 1 << 63;

/// How often a watched inbox is re-read anyway (a watcher can miss a change, or go silent): idle
/// channels cost a stat every two seconds, not ten reads a second.
const SAFETY_READ_WHILE_WATCHING: Duration = Duration::from_secs(2);

/// What the safety re-reads of all the process's watched channels may cost together: beyond 400
/// channels their period grows instead (1,000 channels: a stat each every 8 s).
const SAFETY_READS_PER_SECOND: u32 = 200;

/// The period of a watched channel's safety re-reads with `watched` channels in the process: the
/// base period doubled until the re-reads fit `SAFETY_READS_PER_SECOND` (and `pollIntervalMs`).
/// Only doublings, so that every channel's grid points are points of the base grid whatever the
/// count was when it computed its period: channels opened one after another (each seeing one
/// more) would otherwise each get a grid of their own and wake the dispatcher one at a time.
fn safety_period(watched: usize, poll_interval: Duration) -> Duration {
    let watched = u32::try_from(watched).unwrap_or(u32::MAX);
    let needed = (Duration::from_secs(1) * watched / SAFETY_READS_PER_SECOND).max(poll_interval);
    let mut period = SAFETY_READ_WHILE_WATCHING;
    while period < needed {
        period *= 2;
    }
    period
}

/// How often the peer's heartbeat and process are checked while someone follows the peer.
const PRESENCE_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// What one round found.
#[derive(Default)]
struct Round {
    /// Whether the dispatcher is still needed (if not, it was marked stopped under the lock).
    needed: bool,
    /// The earliest deadline of a pending wait.
    next_deadline: Option<Instant>,
    /// Whether the read found new messages.
    found: bool,
    /// Whether someone follows the peer's presence.
    follows_peer: bool,
    /// Whether answered requests are due to leave the outbox now; else when they are.
    prune_now: bool,
    next_prune: Option<Instant>,
}

/// What the dispatcher keeps for a channel between its rounds.
#[derive(Default)]
pub(super) struct DispatchState {
    /// Whether the watch was started (the channel is served by the dispatcher).
    started: bool,
    watch: DirWatch,
    /// When the next safety re-read is due.
    next_safety: Option<Instant>,
    /// When the peer is checked next, while someone follows it.
    next_presence_check: Option<Instant>,
}

impl Channel {
    /// Closes the channel from the writer thread, which holds none of its locks. Any thread;
    /// no channel lock.
    pub(super) fn schedule_close(&self) {
        let me = self.me.clone();
        let job: reactor::Job = Arc::new(move || {
            if let Some(channel) = me.upgrade() {
                channel.close();
            }
            None
        });
        reactor::writer().schedule(self.key | CLOSE_JOB_KEY, Instant::now(), job);
    }

    /// One round of the dispatcher: read, route, expire.
    fn tick(&self) -> Round {
        let round = self.read_and_deliver(true, |router, deliveries, found| {
            let now = Instant::now();
            let next_deadline = router.expire(now, deliveries);
            let (prune_now, next_prune) = router.take_prune_due(now);
            Round {
                needed: router.keep_dispatching(now),
                next_deadline,
                found,
                follows_peer: router.follows_peer(),
                prune_now,
                next_prune,
            }
        });
        // Closed: the dispatcher is not needed any more.
        round.unwrap_or_default()
    }

    /// Starts the dispatcher's rounds for this channel if something needs them and they are not
    /// running; returns whether it did. Any thread; takes the state lock.
    pub(super) fn ensure_dispatcher(&self) -> bool {
        let Ok(mut router) = self.lock_open() else {
            return false;
        };
        let start = router.start_dispatcher();
        drop(router);
        if start {
            self.wake_dispatcher();
        }
        start
    }

    /// Has the dispatcher's rounds leave answered requests out of the outbox at `at` (the
    /// rounds of a request in flight are due sooner anyway: this wakes no thread then). Any
    /// thread; takes the state lock.
    pub(super) fn plan_prune(&self, at: Instant) {
        if !self.ensure_dispatcher() {
            self.schedule_dispatcher(at);
        }
    }

    /// Has the process's dispatcher run a round for this channel now (it re-plans its deadlines).
    pub(super) fn wake_dispatcher(&self) {
        self.schedule_dispatcher(Instant::now());
    }

    /// Has the process's dispatcher run a round for this channel at `at`, or earlier if it does
    /// already.
    pub(super) fn schedule_dispatcher(&self, at: Instant) {
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
        self.report(problem);
    }

    /// One round of the process's dispatcher for this channel: read, route, expire waits, and
    /// on safety re-reads check the watch. Returns when the next round is due, if the channel
    /// still needs one. Dispatcher thread; dispatch → reader → state.
    pub(super) fn dispatch_round(&self) -> Option<Instant> {
        let mut dispatch = lock(&self.dispatch);
        // The round that close() asks for (and any planned before) touches the directory no
        // more: a watch started now would hold it open while its owner removes it (Windows).
        if self.is_closed() {
            *dispatch = DispatchState::default();
            return None;
        }
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
        let Round {
            needed,
            next_deadline,
            found,
            follows_peer,
            prune_now,
            next_prune,
        } = self.tick();
        if prune_now {
            self.schedule_prune(Duration::ZERO);
        }
        if !needed {
            // Idle (or closed): the watch goes; a later need starts a new one.
            *dispatch = DispatchState::default();
            self.watching.store(false, Ordering::Relaxed);
            return None;
        }
        // Messages found by any round of ours (the presence checks' too), not by the watcher.
        dispatch.watch.found_unhinted |= found;
        if safety_read {
            dispatch.next_safety = Some(self.next_safety_read(&dispatch.watch, now));
            if self.options.watch {
                let found = std::mem::take(&mut dispatch.watch.found_unhinted);
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
        // Someone follows the peer (a 'peer' listener, ready(), request()s in flight): its
        // heartbeat and process are judged here, not by a timer on the JavaScript thread.
        dispatch.next_presence_check = match (follows_peer, dispatch.next_presence_check) {
            (false, _) => None,
            (true, Some(due)) if due > now => Some(due),
            (true, _) => {
                let _ = self.check_peer();
                Some(now + PRESENCE_CHECK_INTERVAL)
            }
        };
        let safety = dispatch.next_safety.unwrap_or(now);
        let due = [next_deadline, dispatch.next_presence_check, next_prune]
            .into_iter()
            .flatten();
        Some(due.fold(safety, Instant::min))
    }

    /// When the next safety re-read is due. While the watch is healthy, events bring changes and
    /// the re-read is a slow check, on a grid shared by every channel so that one wake-up serves
    /// them all; without a watch, it is the polling period. On a network share or FUSE the
    /// watcher sees only the changes made through this mount (this machine), never the peer's on
    /// another: it is the polling period too.
    fn next_safety_read(&self, watch: &DirWatch, now: Instant) -> Instant {
        if !self.options.watch || !watch.is_healthy() || self.remote {
            return now + self.options.poll_interval;
        }
        static GRID_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *GRID_START.get_or_init(Instant::now);
        let period = safety_period(watch::watched_inboxes(), self.options.poll_interval);
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
        let started = watch.start(&self.real_dir, &self.inbox_path, &on_change);
        self.watching.store(started.is_ok(), Ordering::Relaxed);
        started
    }
}

/// A watch on the channel directory (the files themselves are replaced by rename, so watching
/// them would lose track after the first write). Events are only hints to re-read the inbox.
#[derive(Default)]
pub(super) struct DirWatch {
    watcher: Option<watch::Registration>,
    dir_identity: Option<FileIdentity>,
    /// Set by the watcher on every inbox hint, taken by the safety re-read.
    hinted: Arc<AtomicBool>,
    /// Safety re-reads in a row that found messages the watcher had not announced.
    missed_in_a_row: u32,
    reported_silence: bool,
    /// The inbox's version at the last safety re-read.
    inbox_at_safety_read: Option<Option<FileIdentity>>,
    /// Whether a round of the dispatcher (not the watcher) found messages since the last safety
    /// re-read: rounds run for other reasons too (presence checks, deadlines), and what they find
    /// unannounced counts as missed, whatever listeners there are.
    found_unhinted: bool,
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
        if self.hinted.swap(false, Ordering::Relaxed) || self.watcher.is_none() {
            self.missed_in_a_row = 0;
            return None;
        }
        // A re-read that found nothing says nothing of the watcher: only an announced change
        // ends a streak (otherwise one quiet re-read between the peer's messages, as on a share
        // polled faster than the peer writes, would hide a watcher that never announces any).
        if !found {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::channel::BACKEND_OUTBOX;
    use std::sync::Mutex;

    #[test]
    fn safety_periods_share_the_base_grid_whatever_the_channel_count() {
        let base = SAFETY_READ_WHILE_WATCHING;
        let poll = Duration::from_millis(100);
        assert_eq!(safety_period(1, poll), base);
        assert_eq!(safety_period(400, poll), base);
        // At most SAFETY_READS_PER_SECOND re-reads a second in all.
        assert_eq!(safety_period(1000, poll), base * 4);
        for watched in [0, 401, 555, 799, 800, 1000, 5000] {
            let period = safety_period(watched, poll);
            assert_eq!(
                period.as_nanos() % base.as_nanos(),
                0,
                "{watched}: {period:?}"
            );
            assert!((period.as_nanos() / base.as_nanos()).is_power_of_two());
            assert!(period.as_secs_f64() * f64::from(SAFETY_READS_PER_SECOND) >= watched as f64);
        }
        assert_eq!(safety_period(1, Duration::from_secs(60)), base * 32);
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
        // Found by the safety re-read alone: re-arm; the third time in a row, report. Re-reads
        // that found nothing in between do not end the streak.
        assert_eq!(watch.check_missed(true), Some(None));
        assert_eq!(watch.check_missed(false), None);
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
}
