//! Acknowledgements: a protocol extension between our peers that makes delivery lossless.
//!
//! Each of our readers publishes how far it has read in `<inbox stem>.<reader id>.ack` beside
//! the inbox, replaced atomically. Our writer, when trimming its outbox to `maxMessages`, keeps
//! every message a live reader has not consumed. The reference peers never look at these files,
//! and read message arrays of any length, so they are unaffected.

use super::error::{ChannelError, Result};
use super::files::{remove_if_exists, replace_file};
use super::message::now_ms;
use super::platform::{host_name, process_alive};
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
}

impl AckRecord {
    /// Whether its reader was a process of this host that no longer runs.
    pub fn is_orphan(&self) -> bool {
        self.host == host_name() && !process_alive(self.pid)
    }

    /// Whether a writer honours this acknowledgement at `now_ms`: fresh, and (same host) its
    /// process exists.
    pub fn is_live(&self, now_ms: u64, ack_timeout: Duration) -> bool {
        let fresh = now_ms.saturating_sub(self.updated) <= ack_timeout.as_millis() as u64;
        fresh && (self.host != host_name() || process_alive(self.pid))
    }
}

/// How long publishing an acknowledgement waits for a writer that holds the file open: the next
/// publication comes soon anyway.
const ACK_REPLACE_PATIENCE: Duration = Duration::from_millis(50);

/// The reader's side: publishes its position, at most every `interval`, and at least every
/// `heartbeat` while it is alive.
#[derive(Debug)]
pub struct AckPublisher {
    path: PathBuf,
    tmp_path: PathBuf,
    file_mode: u32,
    published: Option<String>,
    consumed: Option<String>,
    last_write: Option<Instant>,
    interval: Duration,
    heartbeat: Duration,
}

impl AckPublisher {
    pub fn new(inbox: &Path, reader_id: &str, ack_timeout: Duration, file_mode: u32) -> Self {
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
            interval: Duration::from_millis(20),
            heartbeat: ack_timeout / 3,
        }
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
        let since = self.last_write.map(|t| now.duration_since(t));
        let moved = self.consumed != self.published;
        let due = match since {
            None => true,
            Some(elapsed) => (moved && elapsed >= self.interval) || elapsed >= self.heartbeat,
        };
        if due {
            self.write(now)?;
        }
        Ok(())
    }

    /// Writes the position now if it moved.
    pub fn flush(&mut self, now: Instant) -> Result<()> {
        if self.last_write.is_none() || self.consumed != self.published {
            self.write(now)?;
        }
        Ok(())
    }

    fn write(&mut self, now: Instant) -> Result<()> {
        let record = AckRecord {
            last_id: self.consumed.clone(),
            updated: now_ms(),
            pid: std::process::id(),
            host: host_name().to_owned(),
        };
        let bytes = serde_json::to_vec_pretty(&record).expect("an ack record always serializes");
        replace_file(
            &self.tmp_path,
            &self.path,
            &bytes,
            self.file_mode,
            ACK_REPLACE_PATIENCE,
        )?;
        self.published = self.consumed.clone();
        self.last_write = Some(now);
        Ok(())
    }

    pub fn remove(&self) {
        let _ = remove_if_exists(&self.path);
        let _ = remove_if_exists(&self.tmp_path);
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
            let record: AckRecord = serde_json::from_slice(&fs::read(&path).ok()?).ok()?;
            if record.is_orphan() {
                // Its reader was killed: nobody will remove it, and every scan would read it.
                remove_orphan(&path);
                return None;
            }
            record.is_live(now, ack_timeout).then_some(record.last_id)
        })
        .collect()
}

/// Removes an acknowledgement whose reader is gone, unless that reader replaced it meanwhile.
fn remove_orphan(path: &Path) {
    let Ok(still) = fs::read(path) else {
        return;
    };
    if serde_json::from_slice::<AckRecord>(&still).is_ok_and(|record| record.is_orphan()) {
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

    #[test]
    fn published_positions_are_seen_by_the_writer_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("backend_to_frontend.json");
        let mut publisher = AckPublisher::new(&inbox, "r1", Duration::from_secs(10), 0o600);
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
            },
        );
        write(
            "x.old.ack",
            AckRecord {
                last_id: None,
                updated: now_ms() - 60_000,
                pid: std::process::id(),
                host: host_name().to_owned(),
            },
        );
        write(
            "x.far.ack",
            AckRecord {
                last_id: Some("a".into()),
                updated: now_ms(),
                pid: 1,
                host: "elsewhere".into(),
            },
        );
        assert_eq!(
            live_positions(&inbox, Duration::from_secs(10)),
            vec![Some("a".to_string())]
        );
    }

    #[test]
    fn positions_are_published_no_more_often_than_needed() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("x.json");
        let mut publisher = AckPublisher::new(&inbox, "r", Duration::from_secs(30), 0o600);
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
        };
        let remote_path = dir.path().join("backend_to_frontend.remote.ack");
        fs::write(&remote_path, serde_json::to_vec(&remote).unwrap()).unwrap();
        let mut live = AckPublisher::new(&inbox, "live", Duration::from_secs(10), 0o600);
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
