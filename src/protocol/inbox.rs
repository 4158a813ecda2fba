//! The reader side: each message of the inbox exactly once, in file order.
//!
//! The writer appends and trims from the front, so a message still in the file was also in every
//! snapshot since we first saw it: remembering the ids of the last snapshot is enough to tell new
//! messages from old ones, whatever their timestamps (the reference compares timestamps and
//! repeats messages that share a millisecond).

use super::error::ChannelError;
use super::files::{now_ns, read_message_file, stat, FileIdentity};
use super::message::{decode_entry, peek_id, split_file, Entry, Message};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub messages: Vec<Message>,
    pub problems: Vec<ChannelError>,
}

#[derive(Debug)]
pub struct InboxReader {
    path: PathBuf,
    max_file_bytes: u64,
    /// A file holding this many messages may have had older ones trimmed away.
    cap: usize,
    /// We publish acknowledgements, so a writer of ours keeps what we have not read.
    acknowledging: bool,
    seen: Snapshot,
    /// The identity of the last version reported as broken, so each breakage is reported once.
    reported: Option<Option<FileIdentity>>,
    /// The version that failed to parse, when we read it, and why: not re-read while unchanged.
    broken: Option<(FileIdentity, i128, String)>,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// Id of the newest entry: everything up to it is consumed once read.
    last_id: Option<String>,
    identity: Option<FileIdentity>,
    settled: bool,
    bytes: Vec<u8>,
    keys: HashSet<String>,
}

impl InboxReader {
    pub fn new(path: PathBuf, max_file_bytes: u64, cap: usize) -> Self {
        InboxReader {
            path,
            max_file_bytes,
            cap,
            acknowledging: false,
            seen: Snapshot::default(),
            reported: None,
            broken: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn set_acknowledging(&mut self, acknowledging: bool) {
        self.acknowledging = acknowledging;
    }

    /// Id of the newest message read so far: this reader has consumed it and all before it.
    pub fn last_consumed(&self) -> Option<String> {
        self.seen.last_id.clone()
    }

    /// Reads whatever is new. Cheap when the file has not changed: one `stat`. A broken file is
    /// reported once per version, not once per read.
    pub fn read_new(&mut self) -> ReadOutcome {
        let mut outcome = ReadOutcome::default();
        match self.read_into(&mut outcome) {
            Ok(()) => self.reported = None,
            Err(broken) => {
                let BrokenVersion(version, problem) = *broken;
                if self.reported != Some(version) {
                    self.reported = Some(version);
                    outcome.problems.push(problem);
                }
            }
        }
        outcome
    }

    fn read_into(&mut self, outcome: &mut ReadOutcome) -> Result<(), Box<BrokenVersion>> {
        let identity = stat(&self.path).map_err(|e| BrokenVersion::boxed(None, e))?;
        if identity.is_some() && identity == self.seen.identity && self.seen.settled {
            return Ok(());
        }
        if let Some((version, read_at, reason)) = &self.broken {
            if identity == Some(*version) && version.is_settled(*read_at) {
                // Already reported; reading it again would only find the same problem.
                let error = ChannelError::BadFile {
                    path: self.path.clone(),
                    reason: reason.clone(),
                };
                return Err(BrokenVersion::boxed(identity, error));
            }
        }
        let read_at = now_ns();
        let (bytes, identity) = match read_message_file(&self.path, self.max_file_bytes) {
            Ok(Some(found)) => found,
            Ok(None) => {
                let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
                return Err(BrokenVersion::boxed(
                    None,
                    ChannelError::io("reading", &self.path, missing),
                ));
            }
            Err(e) => return Err(BrokenVersion::boxed(identity, e)),
        };
        let settled = identity.is_settled(read_at);
        if bytes == self.seen.bytes {
            self.seen.identity = Some(identity);
            self.seen.settled = settled;
            return Ok(());
        }
        let elements = match split_file(&bytes) {
            Ok(elements) => elements,
            Err(reason) => {
                self.broken = Some((identity, read_at, reason.clone()));
                let error = ChannelError::BadFile {
                    path: self.path.clone(),
                    reason,
                };
                return Err(BrokenVersion::boxed(Some(identity), error));
            }
        };
        self.broken = None;

        // Only elements with an id we have not seen are decoded in full.
        let mut keys = HashSet::with_capacity(elements.len());
        let mut fresh_from = None;
        let mut last_id = None;
        for (index, raw) in elements.into_iter().enumerate() {
            let id = peek_id(raw);
            let key = id.clone().unwrap_or_else(|| anonymous_key(raw.get()));
            last_id = id;
            let already_seen = self.seen.keys.contains(&key);
            if !keys.insert(key) || already_seen {
                continue;
            }
            fresh_from.get_or_insert(index);
            match decode_entry(raw) {
                Entry::Valid(message) => outcome.messages.push(message),
                Entry::Invalid { id, reason, .. } => {
                    outcome.problems.push(ChannelError::BadMessage {
                        path: self.path.clone(),
                        index,
                        id,
                        reason,
                    })
                }
            }
        }
        let len = keys.len();
        // We read this file before, nothing we saw is left, and it is full: the writer's cap may
        // have dropped messages between our last read and the first one now in the file.
        // A writer honouring our acknowledgements trims only what we consumed and may exceed the
        // cap; the reference never does. So for an acknowledging reader only a file at exactly
        // the cap is suspect.
        let full = if self.acknowledging {
            len == self.cap
        } else {
            len >= self.cap
        };
        let lost = self.seen.identity.is_some()
            && fresh_from == Some(0)
            && full
            && !self.seen.keys.iter().any(|k| keys.contains(k));
        if lost {
            outcome.problems.push(ChannelError::Lost {
                path: self.path.clone(),
                count: None,
            });
        }
        self.seen = Snapshot {
            last_id,
            identity: Some(identity),
            settled,
            bytes,
            keys,
        };
        Ok(())
    }
}

/// A problem with one version of the inbox (`None`: the file is missing or unreachable).
struct BrokenVersion(Option<FileIdentity>, ChannelError);

impl BrokenVersion {
    fn boxed(version: Option<FileIdentity>, error: ChannelError) -> Box<Self> {
        Box::new(BrokenVersion(version, error))
    }
}

fn anonymous_key(raw: &str) -> String {
    let mut hasher = DefaultHasher::new();
    raw.hash(&mut hasher);
    format!("#{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::lock::LockTiming;
    use crate::protocol::outbox::{Outbox, OutboxSettings};
    use serde_json::json;
    use std::fs;
    use std::time::Duration;

    fn outbox(path: &Path, cap: usize) -> Outbox {
        Outbox::new(
            path.to_path_buf(),
            OutboxSettings {
                max_messages: cap,
                lock: LockTiming {
                    timeout: Duration::from_millis(500),
                    stale_after: Duration::from_secs(5),
                },
                max_file_bytes: 64 << 20,
                file_mode: 0o600,
                acknowledgements: None,
            },
        )
    }

    fn payloads(outcome: &ReadOutcome) -> Vec<i64> {
        outcome
            .messages
            .iter()
            .map(|m| m.payload.as_i64().unwrap())
            .collect()
    }

    #[test]
    fn same_millisecond_bursts_are_delivered_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut writer = outbox(&path, 100);
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        let mut got = Vec::new();
        for batch in 0..10 {
            let messages: Vec<Message> = (0..7)
                .map(|i| {
                    let mut m = Message::event("burst", json!(batch * 7 + i));
                    m.timestamp = 1_700_000_000_000;
                    m
                })
                .collect();
            writer.append(&messages.iter().collect::<Vec<_>>()).unwrap();
            got.extend(payloads(&reader.read_new()));
            got.extend(payloads(&reader.read_new()));
        }
        assert_eq!(got, (0..70).collect::<Vec<_>>());
    }

    #[test]
    fn the_reference_repeats_what_we_deliver_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = ipckit::FileChannel::backend(dir.path()).unwrap();
        let mut reference_reader = ipckit::FileChannel::frontend(dir.path()).unwrap();
        let mut reader =
            InboxReader::new(dir.path().join("backend_to_frontend.json"), 64 << 20, 100);
        let (mut ours, mut theirs) = (0, 0);
        for i in 0..30 {
            backend.send_event("e", json!(i)).unwrap();
            ours += reader.read_new().messages.len();
            theirs += reference_reader.recv().unwrap().len();
        }
        assert_eq!(ours, 30);
        assert!(theirs >= 30);
    }

    #[test]
    fn overrun_of_the_cap_is_reported_as_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut writer = outbox(&path, 100);
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        writer.append(&[&Message::event("e", json!(0))]).unwrap();
        assert_eq!(reader.read_new().messages.len(), 1);
        for i in 1..=150 {
            writer.append(&[&Message::event("e", json!(i))]).unwrap();
        }
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), (51..=150).collect::<Vec<_>>());
        assert_eq!(outcome.problems.len(), 1);
        assert_eq!(outcome.problems[0].code(), "ELOST");
        // Keeping up is not loss.
        for i in 151..=160 {
            writer.append(&[&Message::event("e", json!(i))]).unwrap();
        }
        let outcome = reader.read_new();
        assert_eq!(outcome.messages.len(), 10);
        assert!(outcome.problems.is_empty());
    }

    #[test]
    fn a_broken_file_is_reported_once_and_reading_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut writer = outbox(&path, 100);
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        writer.append(&[&Message::event("e", json!(1))]).unwrap();
        assert_eq!(reader.read_new().messages.len(), 1);
        fs::write(&path, "[{\"id\": ").unwrap();
        let first = reader.read_new();
        assert_eq!(first.problems.len(), 1);
        assert_eq!(first.problems[0].code(), "EBADMSG");
        assert!(first.problems[0].to_string().contains("in.json"));
        for _ in 0..3 {
            let again = reader.read_new();
            assert!(again.problems.is_empty() && again.messages.is_empty());
        }
        fs::remove_file(&path).unwrap();
        writer.append(&[&Message::event("e", json!(2))]).unwrap();
        assert_eq!(payloads(&reader.read_new()), vec![2]);
    }

    #[test]
    fn bad_messages_are_skipped_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        fs::write(&path, r#"[{"id":"a","timestamp":1,"type":"event","payload":1},{"id":"b","type":"nope"},{"id":"c","timestamp":2,"type":"event","payload":3}]"#).unwrap();
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), vec![1, 3]);
        assert_eq!(outcome.problems.len(), 1);
        let text = outcome.problems[0].to_string();
        assert!(text.contains("message 1 (id b)"), "{text}");
        fs::write(&path, r#"[{"id":"a","timestamp":1,"type":"event","payload":1},{"id":"b","type":"nope"},{"id":"c","timestamp":2,"type":"event","payload":3},{"id":"d","timestamp":2,"type":"event","payload":4}]"#).unwrap();
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), vec![4]);
        assert!(outcome.problems.is_empty());
    }

    #[test]
    fn oversized_inbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        fs::write(&path, format!("[{}]", " ".repeat(4096))).unwrap();
        let mut reader = InboxReader::new(path, 1024, 100);
        let outcome = reader.read_new();
        assert_eq!(outcome.problems[0].code(), "EFBIG");
    }
}
