//! Read-only views of a channel for tools (`ipckit info`, `ipckit monitor`): the state of a
//! writer's lock, the acknowledging readers of a file, and what a message file holds, judged by
//! the same rules the writer and reader use. Nothing here takes a lock or writes a file.

use super::ack::AckRecord;
use super::files::read_message_file;
use super::lock::{is_stale, read_holder};
use super::message::{decode_file, now_ms, Entry, MessageType};
use super::platform::{host_name, process_alive};
use serde::Serialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The lock of one outbox (`<stem>.lock`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LockState {
    pub path: PathBuf,
    /// `None` when the lock could not be examined (see `error`).
    pub held: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// Older than the stale-lock age: the next writer takes it over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn lock_state(path: &Path, stale_after: Duration) -> LockState {
    let mut state = LockState {
        path: path.to_path_buf(),
        held: Some(false),
        pid: None,
        running: None,
        age_ms: None,
        stale: None,
        error: None,
    };
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return state,
        Err(e) => {
            state.held = None;
            state.error = Some(e.to_string());
            return state;
        }
    };
    state.held = Some(true);
    let age = metadata
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    state.age_ms = Some(age.as_millis() as u64);
    if !metadata.file_type().is_file() {
        state.error =
            Some("the lock is not a regular file: no writer can take it; remove it".into());
        return state;
    }
    state.pid = read_holder(path);
    state.running = state.pid.map(process_alive);
    state.stale = Some(is_stale(age, stale_after));
    state
}

/// One acknowledging reader of an inbox (`<stem>.<reader id>.ack`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderState {
    pub id: String,
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// Whether its process exists; `None` when it runs on another host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<Option<bool>>,
    /// Whether a writer honours it (see `AckRecord::is_live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
    /// Whether it names its process (it does not heartbeat: live while that process runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_process: Option<bool>,
    /// Messages after its position; `null` when its position is no longer in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<Option<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The readers of the file at `inbox` that publish acknowledgements, with how far each has read
/// when the ids of the file's messages are known.
pub fn readers(inbox: &Path, ack_timeout: Duration, ids: Option<&[String]>) -> Vec<ReaderState> {
    let dir = inbox.parent().unwrap_or(Path::new("."));
    let stem = inbox
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(listing) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = now_ms();
    let mut found: Vec<ReaderState> = listing
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name
                .strip_prefix(&format!("{stem}."))?
                .strip_suffix(".ack")?;
            if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some(reader_state(id, entry.path(), now, ack_timeout, ids))
        })
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

fn reader_state(
    id: &str,
    file: PathBuf,
    now: u64,
    ack_timeout: Duration,
    ids: Option<&[String]>,
) -> ReaderState {
    let mut state = ReaderState {
        id: id.to_owned(),
        file,
        last_id: None,
        updated: None,
        pid: None,
        host: None,
        age_ms: None,
        running: None,
        live: None,
        by_process: None,
        unread: None,
        error: None,
    };
    let record = match AckRecord::read(&state.file) {
        Ok(record) => record,
        Err(error) => {
            state.error = Some(error);
            return state;
        }
    };
    state.age_ms = Some(now.saturating_sub(record.updated));
    state.running = Some((record.host == host_name()).then(|| record.process_runs()));
    state.live = Some(record.is_live(now, ack_timeout));
    state.by_process = Some(record.started.is_some());
    if let Some(ids) = ids {
        state.unread = Some(match &record.last_id {
            None => Some(ids.len()),
            Some(last) => ids
                .iter()
                .position(|id| id == last)
                .map(|at| ids.len() - at - 1),
        });
    }
    state.last_id = Some(record.last_id);
    state.updated = Some(record.updated);
    state.pid = Some(record.pid);
    state.host = Some(record.host);
    state
}

/// What a message file holds, read as our reader reads it.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSummary {
    pub messages: usize,
    pub by_type: TypeCounts,
    pub error_responses: usize,
    /// Newest timestamp of a readable message.
    pub newest: Option<u64>,
    /// Ids of the messages, in file order (not serialized: used for readers' positions).
    #[serde(skip)]
    pub ids: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct TypeCounts {
    pub request: usize,
    pub response: usize,
    pub event: usize,
    /// Entries that are not messages our reader (or the reference's) accepts.
    #[serde(skip_serializing_if = "is_zero")]
    pub other: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Reads and summarizes the message file at `path`. `Ok(None)` when it does not exist; `Err`
/// with the reason when it cannot be read or is not a JSON array.
pub fn summarize(path: &Path, max_file_bytes: u64) -> Result<Option<FileSummary>, String> {
    let bytes = match read_message_file(path, max_file_bytes) {
        Ok(Some((bytes, _))) => bytes,
        Ok(None) => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    let entries = decode_file(&bytes)?;
    let mut summary = FileSummary {
        messages: entries.len(),
        ..FileSummary::default()
    };
    for entry in entries {
        match entry {
            Entry::Valid(message) => {
                match message.kind {
                    MessageType::Request => summary.by_type.request += 1,
                    MessageType::Response => summary.by_type.response += 1,
                    MessageType::Event => summary.by_type.event += 1,
                }
                if message.error.is_some() {
                    summary.error_responses += 1;
                }
                summary.newest = summary.newest.max(Some(message.timestamp));
                summary.ids.push(message.id);
            }
            Entry::Invalid { id, .. } => {
                summary.by_type.other += 1;
                summary.ids.extend(id);
            }
        }
    }
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ack::AckPublisher;
    use crate::protocol::message::{encode_file, Message};
    use std::time::Instant;

    #[test]
    fn a_free_a_held_and_a_stale_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        assert_eq!(lock_state(&lock, Duration::from_secs(5)).held, Some(false));
        fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
        let held = lock_state(&lock, Duration::from_secs(5));
        assert_eq!(
            (held.held, held.pid, held.running, held.stale),
            (
                Some(true),
                Some(std::process::id()),
                Some(true),
                Some(false)
            )
        );
        assert_eq!(lock_state(&lock, Duration::ZERO).stale, Some(true));
    }

    #[test]
    fn readers_and_their_unread_counts() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("backend_to_frontend.json");
        let messages = [Message::event("a", 1.into()), Message::event("b", 2.into())];
        let encoded: Vec<String> = messages.iter().map(Message::encode).collect();
        fs::write(&inbox, encode_file(encoded.iter().map(String::as_str))).unwrap();
        let mut publisher = AckPublisher::new(
            &inbox,
            &"ab".repeat(16),
            Duration::from_secs(10),
            0o600,
            true,
        );
        publisher.note_consumed(Some(messages[0].id.clone()));
        publisher.flush(Instant::now()).unwrap();
        let summary = summarize(&inbox, 1 << 20).unwrap().unwrap();
        assert_eq!((summary.messages, summary.by_type.event), (2, 2));
        let found = readers(&inbox, Duration::from_secs(10), Some(&summary.ids));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].live, Some(true));
        assert_eq!(found[0].unread, Some(Some(1)));
        assert_eq!(found[0].running, Some(Some(true)));
    }

    #[test]
    fn a_file_that_is_not_an_array_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        assert!(summarize(&path, 100).unwrap().is_none());
        fs::write(&path, "[{\"id\": ").unwrap();
        assert!(summarize(&path, 100).is_err());
    }
}
