//! Acknowledgements: a protocol extension between our peers that makes delivery lossless.
//!
//! Each of our readers publishes how far it has read in `<inbox stem>.<reader id>.ack` beside
//! the inbox, replaced atomically. Our writer, when trimming its outbox to `maxMessages`, keeps
//! every message a live reader has not consumed. The reference peers never look at these files,
//! and read message arrays of any length, so they are unaffected.
//!
//! A reader that names its process (`pid` and its start stamp `started`) is judged on this host
//! by whether that very process runs, so it does not rewrite the file while idle. A heartbeat
//! (a rewrite every `ackTimeoutMs / 3`) is kept where a writer on another host may judge it by
//! age (a directory on a network file system, a peer seen on another host), and for a reader that
//! reads only when asked (`recv()`), which lapses when it is no longer asked.

use super::error::{ChannelError, Result};
use super::files::{read_message_file, remove_if_exists, replace_file};
use super::message::now_ms;
use super::platform::{host_name, process_alive, process_started};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Serialize, Deserialize)]
pub struct AckRecord {
    /// Id of the newest message the reader has consumed (every older one is consumed too);
    /// `null` before it has consumed anything.
    pub last_id: Option<String>,
    /// Wall-clock milliseconds of the last update: a reader silent for longer than the
    /// writer's `ackTimeoutMs` no longer holds messages back.
    pub updated: u64,
    pub pid: u32,
    pub host: String,
    /// Start stamp of process `pid` (`platform::process_started`): absent in records of readers
    /// that always heartbeat (older versions, the Python companion, OSes that cannot tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

impl AckRecord {
    /// A record of this process's reader; `names_process`: with the start stamp.
    fn own(last_id: Option<String>, names_process: bool) -> AckRecord {
        AckRecord {
            last_id,
            updated: now_ms(),
            pid: std::process::id(),
            host: host_name().to_owned(),
            started: own_start().filter(|_| names_process),
        }
    }

    /// Whether its reader's process, on this host, runs (the same process, not a later one that
    /// reuses its id, when the record says when it started).
    pub fn process_runs(&self) -> bool {
        match self.started {
            Some(started) => process_started(self.pid) == Some(started),
            None => process_alive(self.pid),
        }
    }

    /// Whether its reader was a process of this host that no longer runs.
    pub fn is_orphan(&self) -> bool {
        self.host == host_name() && !self.process_runs()
    }

    /// Whether a writer honours this acknowledgement at `now_ms`. On this host: while its process
    /// runs, and (records without a start stamp) while fresh. From another host: while fresh.
    pub fn is_live(&self, now_ms: u64, ack_timeout: Duration) -> bool {
        self.judge(now_ms, ack_timeout) == Judged::Live
    }

    /// `is_orphan` and `is_live` at once, asking the OS about the reader's process once.
    fn judge(&self, now_ms: u64, ack_timeout: Duration) -> Judged {
        let fresh = now_ms.saturating_sub(self.updated) <= ack_timeout.as_millis() as u64;
        let live = if self.host != host_name() {
            fresh
        } else if !self.process_runs() {
            return Judged::Orphan;
        } else {
            fresh || self.started.is_some()
        };
        if live {
            Judged::Live
        } else {
            Judged::Lapsed
        }
    }
}

/// What a writer makes of an acknowledgement.
#[derive(Debug, PartialEq, Eq)]
enum Judged {
    Live,
    /// Honoured no more, but its reader may come back (another host's, or a silent one).
    Lapsed,
    /// Its reader was a process of this host that no longer runs.
    Orphan,
}

/// This process's start stamp, when the OS tells it.
fn own_start() -> Option<u64> {
    static OWN_START: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *OWN_START.get_or_init(|| process_started(std::process::id()))
}

/// How long publishing an acknowledgement waits for a writer that holds the file open: the next
/// publication comes soon anyway.
const ACK_REPLACE_PATIENCE: Duration = Duration::from_millis(50);

/// The least time between two writes of a reader's position.
pub const ACK_INTERVAL: Duration = Duration::from_millis(20);

/// The reader's side: publishes its position, at most every `interval`, and, unless the record
/// names its process, at least every `heartbeat` while it is alive.
#[derive(Debug)]
pub struct AckPublisher {
    path: PathBuf,
    tmp_path: PathBuf,
    file_mode: u32,
    published: Option<String>,
    consumed: Option<String>,
    last_write: Option<Instant>,
    /// The last write tried, written or not: the next waits `interval` after it (a directory
    /// that is gone is not written to in a loop).
    last_attempt: Option<Instant>,
    /// The last write failed (and was reported): further failures are not, until one succeeds.
    failing: bool,
    interval: Duration,
    heartbeat: Duration,
    /// The directory is on a file system of this host only.
    local: bool,
    /// The reader reads by itself (a dispatcher runs for it), not only when asked (`recv()`).
    active: bool,
    /// A peer announced itself from another host.
    peer_elsewhere: bool,
    /// Whether the last record written named the process.
    published_by_process: bool,
}

impl AckPublisher {
    /// A publisher for the reader of `inbox`; `local` says whether the directory is on a file
    /// system of this host only (else another host's writer may judge the record by its age).
    pub fn new(
        inbox: &Path,
        reader_id: &str,
        ack_timeout: Duration,
        file_mode: u32,
        local: bool,
    ) -> Self {
        let stem = inbox
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = inbox.parent().unwrap_or(Path::new("."));
        AckPublisher {
            path: dir.join(format!("{stem}.{reader_id}.ack")),
            tmp_path: dir.join(format!("{stem}.{reader_id}.ack.tmp")),
            file_mode,
            published: None,
            consumed: None,
            last_write: None,
            last_attempt: None,
            failing: false,
            interval: ACK_INTERVAL,
            heartbeat: ack_timeout / 3,
            local,
            active: false,
            peer_elsewhere: false,
            published_by_process: false,
        }
    }

    /// Whether the record names the reader's process, so that a writer of this host judges it
    /// by that process instead of its age: only for an active reader (one that reads only when
    /// asked lapses when it is not asked), and only when no writer elsewhere may judge it by age.
    fn by_process(&self) -> bool {
        self.active && self.local && !self.peer_elsewhere && own_start().is_some()
    }

    /// Whether the reader reads by itself from now on (its next publication says so).
    pub fn set_active(&mut self, active: bool) {
        self.active = active;
    }

    /// A peer announced itself from another host: heartbeat from now on.
    pub fn note_peer_elsewhere(&mut self) {
        self.peer_elsewhere = true;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn note_consumed(&mut self, last_id: Option<String>) {
        if last_id.is_some() {
            self.consumed = last_id;
        }
    }

    /// Writes the position if it moved and `interval` has passed, or if the heartbeat is due.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<()> {
        let since = self.last_attempt.map(|t| now.duration_since(t));
        let moved = self.consumed != self.published;
        let by_process = self.by_process();
        let due = match since {
            None => true,
            Some(_) if by_process != self.published_by_process => true,
            Some(elapsed) => {
                (moved && elapsed >= self.interval) || (!by_process && elapsed >= self.heartbeat)
            }
        };
        if due {
            self.write(now)?;
        }
        Ok(())
    }

    /// When a position that moved, and waits for the interval since the last write, is due: an
    /// active reader's is written then (by its dispatcher) even if nothing more arrives, so that
    /// writers judge by where it is, not where it was a burst ago.
    pub fn held_back_until(&self) -> Option<Instant> {
        if !self.active || self.consumed == self.published {
            return None;
        }
        self.last_attempt.map(|tried| tried + self.interval)
    }

    /// Writes the position now if it moved.
    pub fn flush(&mut self, now: Instant) -> Result<()> {
        if self.last_write.is_none() || self.consumed != self.published {
            self.write(now)?;
        }
        Ok(())
    }

    fn write(&mut self, now: Instant) -> Result<()> {
        let by_process = self.by_process();
        let record = AckRecord::own(self.consumed.clone(), by_process);
        let bytes = serde_json::to_vec_pretty(&record).expect("an ack record always serializes");
        self.last_attempt = Some(now);
        let written = replace_file(
            &self.tmp_path,
            &self.path,
            &bytes,
            self.file_mode,
            ACK_REPLACE_PATIENCE,
        );
        if let Err(error) = written {
            // Reported once; tried again after `interval`, silently while it keeps failing.
            let first = !self.failing;
            self.failing = true;
            return if first { Err(error) } else { Ok(()) };
        }
        self.failing = false;
        self.published = self.consumed.clone();
        self.published_by_process = by_process;
        self.last_write = Some(now);
        Ok(())
    }

    /// Whether writers have stopped honouring our record: it heartbeats, and its last write is
    /// older than `ackTimeoutMs` (a reader read only by `recv()` that was not called for that
    /// long). What the writer trimmed meanwhile may be lost to us.
    pub fn has_lapsed(&self, now: Instant) -> bool {
        let ack_timeout = self.heartbeat * 3;
        !self.published_by_process
            && self
                .last_write
                .is_some_and(|written| now.duration_since(written) > ack_timeout)
    }

    pub fn remove(&self) {
        let _ = remove_if_exists(&self.path);
        let _ = remove_if_exists(&self.tmp_path);
    }
}

/// The largest acknowledgement read: a real one is about 200 bytes. Anything else at an `.ack`
/// path (a link to `/dev/zero`, a FIFO, a huge file) is refused without reading it.
const MAX_ACK_BYTES: u64 = 16 * 1024;

impl AckRecord {
    /// Reads the acknowledgement at `path` through the same no-follow, non-blocking, bounded
    /// open as the inbox.
    pub fn read(path: &Path) -> std::result::Result<AckRecord, String> {
        match read_message_file(path, MAX_ACK_BYTES) {
            Ok(Some((bytes, _))) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("not a valid acknowledgement ({e})")),
            Ok(None) => Err("closed while being read".into()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// The writer's side: where each live reader of `outbox` stands. `None` in the list is a reader
/// that has consumed nothing yet.
pub fn live_positions(outbox: &Path, ack_timeout: Duration) -> Vec<Option<String>> {
    let Some(dir) = outbox.parent() else {
        return Vec::new();
    };
    let stem = outbox
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{stem}.");
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = now_ms();
    listing
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".ack")
        })
        .filter_map(|entry| {
            let path = entry.path();
            let record = AckRecord::read(&path).ok()?;
            match record.judge(now, ack_timeout) {
                Judged::Live => Some(record.last_id),
                Judged::Lapsed => None,
                Judged::Orphan => {
                    // Its reader was killed: nobody will remove it, and every scan would read it.
                    remove_orphan(&path);
                    None
                }
            }
        })
        .collect()
}

/// Removes an acknowledgement whose reader is gone, unless that reader replaced it meanwhile.
fn remove_orphan(path: &Path) {
    if AckRecord::read(path).is_ok_and(|record| record.is_orphan()) {
        let _ = remove_if_exists(path);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let _ = remove_if_exists(Path::new(&tmp));
    }
}

/// Error for a writer whose live readers have not consumed enough to make room.
pub fn backlog_full(outbox: &Path, held: usize, limit: usize) -> ChannelError {
    ChannelError::Backlog {
        path: outbox.to_path_buf(),
        held,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn fifos_links_and_huge_files_at_ack_paths_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("backend_to_frontend.json");
        let ack = |n: u8| {
            dir.path().join(format!(
                "backend_to_frontend.{}.ack",
                format!("{n:x}").repeat(32)
            ))
        };
        let fifo = std::ffi::CString::new(ack(1).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", ack(2)).unwrap();
        let huge = fs::File::create(ack(3)).unwrap();
        huge.set_len(1 << 30).unwrap(); // sparse: 1 GiB that costs nothing to make
        let started = Instant::now();
        assert!(live_positions(&inbox, Duration::from_secs(10)).is_empty());
        let readers = crate::protocol::inspect::readers(&inbox, Duration::from_secs(10), None);
        assert_eq!(readers.len(), 3);
        assert!(readers
            .iter()
            .all(|r| r.error.is_some() && r.live.is_none()));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn published_positions_are_seen_by_the_writer_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("backend_to_frontend.json");
        let mut publisher = AckPublisher::new(&inbox, "r1", Duration::from_secs(10), 0o600, true);
        publisher.flush(Instant::now()).unwrap();
        assert_eq!(live_positions(&inbox, Duration::from_secs(10)), vec![None]);
        publisher.note_consumed(Some("m7".into()));
        publisher.flush(Instant::now()).unwrap();
        assert_eq!(
            live_positions(&inbox, Duration::from_secs(10)),
            vec![Some("m7".to_string())]
        );
        // Another inbox's acks are not ours.
        let other = dir.path().join("frontend_to_backend.json");
        assert!(live_positions(&other, Duration::from_secs(10)).is_empty());
        publisher.remove();
        assert!(live_positions(&inbox, Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn a_position_held_back_by_the_interval_is_due_at_its_end_for_an_active_reader() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("backend_to_frontend.json");
        let mut publisher = AckPublisher::new(&inbox, "r1", Duration::from_secs(10), 0o600, true);
        publisher.set_active(true);
        let start = Instant::now();
        publisher.note_consumed(Some("m1".into()));
        publisher.flush_if_due(start).unwrap();
        assert_eq!(
            publisher.held_back_until(),
            None,
            "written, nothing held back"
        );
        publisher.note_consumed(Some("m2".into()));
        publisher
            .flush_if_due(start + Duration::from_millis(1))
            .unwrap();
        let due = start + publisher.interval;
        assert_eq!(publisher.held_back_until(), Some(due));
        // A reader that reads only when asked publishes when it is asked next.
        publisher.set_active(false);
        assert_eq!(publisher.held_back_until(), None);
        publisher.set_active(true);
        publisher.flush_if_due(due).unwrap();
        assert_eq!(publisher.held_back_until(), None);
        assert_eq!(
            live_positions(&inbox, Duration::from_secs(10)),
            vec![Some("m2".to_string())]
        );
    }

    /// A directory that is gone (being re-created) is tried again at the interval, not in a
    /// loop, and its failure is reported once until a write succeeds again.
    #[test]
    fn a_failing_publication_is_paced_and_reported_once_per_failure() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("chan");
        fs::create_dir(&dir).unwrap();
        let inbox = dir.join("backend_to_frontend.json");
        let mut publisher = AckPublisher::new(&inbox, "r1", Duration::from_secs(10), 0o600, true);
        publisher.set_active(true);
        let start = Instant::now();
        publisher.note_consumed(Some("m1".into()));
        publisher.flush_if_due(start).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let interval = publisher.interval;
        publisher.note_consumed(Some("m2".into()));
        let first = start + interval;
        let error = publisher.flush_if_due(first).unwrap_err();
        assert_eq!(error.code(), "ENOENT", "{error}");
        // Not due again before the interval has passed since the failed try.
        assert_eq!(publisher.held_back_until(), Some(first + interval));
        // Failing again: tried, not reported again.
        publisher.flush_if_due(first + interval).unwrap();
        assert_eq!(publisher.held_back_until(), Some(first + interval * 2));
        // Back: written, and a new failure is reported again.
        fs::create_dir(&dir).unwrap();
        publisher.flush_if_due(first + interval * 2).unwrap();
        assert_eq!(publisher.held_back_until(), None);
        assert_eq!(
            live_positions(&inbox, Duration::from_secs(10)),
            vec![Some("m2".to_string())]
        );
        fs::remove_dir_all(&dir).unwrap();
        publisher.note_consumed(Some("m3".into()));
        assert!(publisher.flush_if_due(first + interval * 3).is_err());
    }

    #[test]
    fn acks_of_dead_processes_and_old_acks_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("x.json");
        let write = |name: &str, record: AckRecord| {
            fs::write(dir.path().join(name), serde_json::to_vec(&record).unwrap()).unwrap()
        };
        write(
            "x.dead.ack",
            AckRecord {
                last_id: None,
                updated: now_ms(),
                pid: i32::MAX as u32,
                host: host_name().to_owned(),
                started: None,
            },
        );
        write(
            "x.old.ack",
            AckRecord {
                last_id: None,
                updated: now_ms() - 60_000,
                pid: std::process::id(),
                host: host_name().to_owned(),
                started: None,
            },
        );
        write(
            "x.far.ack",
            AckRecord {
                last_id: Some("a".into()),
                updated: now_ms(),
                pid: 1,
                host: "elsewhere".into(),
                started: None,
            },
        );
        assert_eq!(
            live_positions(&inbox, Duration::from_secs(10)),
            vec![Some("a".to_string())]
        );
    }

    #[test]
    fn a_reader_named_by_its_process_is_live_while_that_process_runs_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("x.json");
        let own = own_start();
        assert!(own.is_some(), "this OS tells when a process started");
        let write = |name: &str, started: Option<u64>, last_id: &str| {
            let record = AckRecord {
                last_id: Some(last_id.into()),
                updated: now_ms() - 3_600_000,
                pid: std::process::id(),
                host: host_name().to_owned(),
                started,
            };
            fs::write(dir.path().join(name), serde_json::to_vec(&record).unwrap()).unwrap()
        };
        write("x.mine.ack", own, "mine");
        // The same id with another start stamp: a later process reusing the id of a dead reader.
        write("x.reused.ack", own.map(|s| s + 1), "reused");
        // Without a stamp the record must be fresh: an hour old is gone.
        write("x.unstamped.ack", None, "unstamped");
        assert_eq!(
            live_positions(&inbox, Duration::from_secs(10)),
            vec![Some("mine".to_string())]
        );
        assert!(
            !dir.path().join("x.reused.ack").exists(),
            "an orphan is removed"
        );
        assert!(
            dir.path().join("x.unstamped.ack").exists(),
            "its process runs"
        );
    }

    #[test]
    fn heartbeats_only_where_a_writer_may_judge_the_record_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("x.json");
        let hour_later = |start: Instant| start + Duration::from_secs(3600);
        let rewritten = |publisher: &mut AckPublisher, start: Instant| {
            fs::remove_file(publisher.path()).unwrap();
            publisher.flush_if_due(hour_later(start)).unwrap();
            publisher.path().exists()
        };
        let started = |publisher: &AckPublisher| {
            let record: AckRecord =
                serde_json::from_slice(&fs::read(publisher.path()).unwrap()).unwrap();
            record.started
        };
        let start = Instant::now();
        let mut local = AckPublisher::new(&inbox, "local", Duration::from_secs(10), 0o600, true);
        local.flush(start).unwrap();
        assert_eq!(started(&local), None, "a reader that reads only when asked");
        assert!(
            rewritten(&mut local, start),
            "heartbeats while it reads only when asked"
        );
        local.set_active(true);
        local.flush_if_due(start).unwrap();
        assert_eq!(started(&local), own_start(), "published at once");
        assert!(!rewritten(&mut local, start), "idle on a local file system");
        local.write(start).unwrap();
        local.note_peer_elsewhere();
        local.flush_if_due(start).unwrap();
        assert_eq!(started(&local), None, "published at once");
        assert!(rewritten(&mut local, start), "a peer on another host");
        let mut shared = AckPublisher::new(&inbox, "shared", Duration::from_secs(10), 0o600, false);
        shared.set_active(true);
        shared.flush(start).unwrap();
        assert_eq!(started(&shared), None);
        assert!(rewritten(&mut shared, start), "a network file system");
    }

    #[test]
    fn positions_are_published_no_more_often_than_needed() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("x.json");
        let mut publisher = AckPublisher::new(&inbox, "r", Duration::from_secs(30), 0o600, true);
        let start = Instant::now();
        publisher.flush_if_due(start).unwrap();
        let first = fs::metadata(publisher.path()).unwrap().modified().unwrap();
        publisher.note_consumed(Some("a".into()));
        publisher
            .flush_if_due(start + Duration::from_millis(1))
            .unwrap();
        assert_eq!(
            fs::metadata(publisher.path()).unwrap().modified().unwrap(),
            first
        );
        std::thread::sleep(Duration::from_millis(5));
        publisher
            .flush_if_due(start + Duration::from_millis(25))
            .unwrap();
        assert!(fs::read_to_string(publisher.path())
            .unwrap()
            .contains("\"a\""));
    }

    #[test]
    fn acknowledgements_of_killed_readers_are_removed_by_the_next_scan() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("backend_to_frontend.json");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let dead = child.id();
        child.wait().unwrap();
        for n in 0..50 {
            let record = AckRecord {
                last_id: None,
                updated: now_ms(),
                pid: dead,
                host: host_name().to_owned(),
                started: None,
            };
            let name = format!("backend_to_frontend.dead{n}.ack");
            fs::write(dir.path().join(name), serde_json::to_vec(&record).unwrap()).unwrap();
        }
        // One from another host is judged by its age alone, and kept.
        let remote = AckRecord {
            last_id: Some("x".into()),
            updated: now_ms(),
            pid: dead,
            host: format!("not-{}", host_name()),
            started: None,
        };
        let remote_path = dir.path().join("backend_to_frontend.remote.ack");
        fs::write(&remote_path, serde_json::to_vec(&remote).unwrap()).unwrap();
        let mut live = AckPublisher::new(&inbox, "live", Duration::from_secs(10), 0o600, true);
        live.flush(Instant::now()).unwrap();

        let mut positions = live_positions(&inbox, Duration::from_secs(10));
        positions.sort();
        assert_eq!(positions, vec![None, Some("x".to_string())]);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".ack"))
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(remote_path.exists() && live.path().exists());
    }
}
