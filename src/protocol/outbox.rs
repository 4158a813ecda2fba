//! The writer side: append a message to our outbox under the reference's lock.
//!
//! The reference re-reads, re-parses and re-serializes the whole outbox for every send. We keep
//! the bytes we last wrote and the text of each message; when the file still holds exactly those
//! bytes, the send only appends one pre-serialized text. The bytes on disk are the same either way.

use super::ack::{backlog_full, live_positions};
use super::error::{ChannelError, Result};
use super::files::{read_message_file, read_message_file_fresh, replace_file};
use super::lock::{LockGuard, LockTiming};
use super::message::{decode_file, encode_file, encode_value, now_ms, Entry, Message};
use super::platform;
use super::sync::lock;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub max_messages: usize,
    pub lock: LockTiming,
    pub max_file_bytes: u64,
    pub file_mode: u32,
    /// Honour our readers' acknowledgements: keep what a live reader has not consumed, up to
    /// `max_backlog` messages.
    pub acknowledgements: Option<AckSettings>,
}

#[derive(Debug, Clone, Copy)]
pub struct AckSettings {
    pub reader_timeout: std::time::Duration,
    pub max_backlog: usize,
}

/// How long a scan of the readers' acknowledgements is reused.
const POSITIONS_MAX_AGE: Duration = Duration::from_millis(10);

/// One element of the outbox: the message id (when it has one), its timestamp (0 when it has
/// none) and its text.
#[derive(Debug)]
struct Element {
    id: Option<String>,
    timestamp: u64,
    text: String,
}

impl Element {
    /// Sets the timestamp in the message's text, which holds it right after the id.
    fn restamp(&mut self, timestamp: u64) {
        if timestamp != self.timestamp {
            let old = format!("\"timestamp\": {},", self.timestamp);
            let new = format!("\"timestamp\": {timestamp},");
            self.text = self.text.replacen(&old, &new, 1);
            self.timestamp = timestamp;
        }
    }
}

/// Requests of ours that are settled (answered, or given up by their caller): each write of the
/// outbox leaves them out, so that a peer that (re)starts and reads the file never runs them.
/// Shared with the reader side, which settles them; a leaf lock, held for a moment.
#[derive(Debug, Default)]
pub struct Withdrawals(Mutex<HashSet<String>>);

/// More settled ids than this between two writes are not all remembered (a writer that never
/// writes again cannot leave them in the file anyway for long: its next write drops them).
const MAX_WITHDRAWALS: usize = 16_384;

impl Withdrawals {
    pub fn add(&self, request_id: &str) {
        let mut ids = lock(&self.0);
        if ids.len() < MAX_WITHDRAWALS {
            ids.insert(request_id.to_owned());
        }
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.0).is_empty()
    }

    fn snapshot(&self) -> HashSet<String> {
        lock(&self.0).clone()
    }

    /// Forgets the ids that `file` no longer holds (written without them, or never there).
    fn forget_absent(&self, file: &VecDeque<Element>) {
        let mut ids = lock(&self.0);
        if ids.is_empty() {
            return;
        }
        let present: HashSet<&str> = file.iter().filter_map(|e| e.id.as_deref()).collect();
        ids.retain(|id| present.contains(id.as_str()));
    }
}

#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    lock_path: PathBuf,
    tmp_path: PathBuf,
    settings: OutboxSettings,
    written: Option<WrittenFile>,
    /// The readers' positions from a recent scan of their acknowledgement files.
    positions: Option<(Instant, Vec<Option<String>>)>,
    withdrawals: Arc<Withdrawals>,
    /// The file system caches attributes (a network share, FUSE): what we read of the outbox may
    /// be a cut-off copy, which must never be taken for the whole file.
    remote: bool,
}

/// How long a writer on a network file system keeps re-reading an outbox that does not parse
/// before it gives up without writing (longer than the usual 1 s attribute cache).
const REMOTE_REREAD_PATIENCE: Duration = Duration::from_millis(1500);

/// The outbox as it is on disk: its bytes and its elements.
#[derive(Debug)]
struct WrittenFile {
    bytes: Vec<u8>,
    entries: VecDeque<Element>,
}

impl WrittenFile {
    /// A file whose content is taken for no messages (missing, or replaced as unreadable).
    fn empty(bytes: Vec<u8>) -> Self {
        WrittenFile {
            bytes,
            entries: VecDeque::new(),
        }
    }

    /// A file that parsed as a whole array.
    fn decoded(bytes: Vec<u8>, decoded: Vec<Entry>) -> Self {
        WrittenFile {
            entries: elements_of(decoded),
            bytes,
        }
    }
}

/// Whether the outbox still holds exactly what we wrote, checked without reading it whole: every
/// writer appends, so any change by another writer alters the size or the tail, and the tail
/// holds the id of the newest message.
fn still_holds(path: &Path, written: &WrittenFile, remote: bool) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let tail_len = written
        .entries
        .back()
        .map_or(0, |element| element.text.len())
        + 64;
    let check = || -> std::io::Result<bool> {
        let mut file = platform::open_for_reading(path)?;
        let metadata = file.metadata()?;
        let size = written.bytes.len();
        // A size cached by a network file system may be an older version's.
        let len = if remote {
            platform::fresh_len(&file)?
        } else {
            metadata.len()
        };
        if !metadata.is_file() || len != size as u64 {
            return Ok(false);
        }
        let start = size.saturating_sub(tail_len);
        let mut tail = vec![0; size - start];
        file.seek(SeekFrom::Start(start as u64))?;
        file.read_exact(&mut tail)?;
        Ok(tail == written.bytes[start..])
    };
    check().unwrap_or(false)
}

impl Outbox {
    pub fn new(path: PathBuf, settings: OutboxSettings) -> Self {
        Outbox {
            lock_path: path.with_extension("lock"),
            tmp_path: path.with_extension("tmp"),
            path,
            settings,
            written: None,
            positions: None,
            withdrawals: Arc::default(),
            remote: false,
        }
    }

    /// The outbox is on a file system that caches attributes (see `remote`).
    pub fn set_remote(&mut self, remote: bool) {
        self.remote = remote;
    }

    /// The settled requests this outbox leaves out of its next write.
    pub fn withdrawals(&self) -> Arc<Withdrawals> {
        Arc::clone(&self.withdrawals)
    }

    /// Rewrites the outbox without the settled requests it still holds, if there are any (one
    /// attempt: `Locked` or `Busy` when the lock or the file is held). Returns whether it wrote.
    pub fn prune(&mut self) -> Result<bool> {
        if self.withdrawals.is_empty() {
            return Ok(false);
        }
        let withdrawn = self.withdrawals.snapshot();
        if let Some(written) = &self.written {
            let holds_settled = written
                .entries
                .iter()
                .any(|e| e.id.as_ref().is_some_and(|id| withdrawn.contains(id)));
            // Known without taking the lock: the file is ours as we wrote it, and holds none.
            if !holds_settled && still_holds(&self.path, written, self.remote) {
                self.withdrawals.forget_absent(&written.entries);
                return Ok(false);
            }
        }
        self.write_with(&[], Duration::ZERO)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends messages in order, keeping the newest `max_messages`, and, with
    /// acknowledgements, every message a live reader has not consumed yet.
    pub fn append(&mut self, messages: &[&Message]) -> Result<()> {
        self.append_with(messages, self.settings.lock.timeout)
    }

    /// `append`, waiting at most `patience` for the lock and for a holder of the file to let
    /// go (zero: one attempt, for a caller that retries later instead of sleeping).
    pub fn append_with(&mut self, messages: &[&Message], patience: Duration) -> Result<()> {
        self.write_with(messages, patience).map(|_| ())
    }

    /// Appends `messages` (none: only leaves out settled requests); returns whether it wrote.
    fn write_with(&mut self, messages: &[&Message], patience: Duration) -> Result<bool> {
        let withdrawn = self.withdrawals.snapshot();
        let mut new = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            if withdrawn.contains(&message.id) {
                continue;
            }
            let text = message.encode();
            // `[\n`, the indentation and `\n]`: a file holding only this message.
            let alone = text.len() as u64 + 4;
            if alone > self.settings.max_file_bytes {
                return Err(ChannelError::SendTooLarge {
                    path: self.path.clone(),
                    index: Some(index),
                    message_bytes: text.len() as u64,
                    file_bytes: alone,
                    limit: self.settings.max_file_bytes,
                });
            }
            new.push(Element {
                id: Some(message.id.clone()),
                timestamp: message.timestamp,
                text,
            });
        }
        let new_bytes: u64 = new.iter().map(|e| e.text.len() as u64).sum();
        let timing = LockTiming {
            timeout: patience,
            ..self.settings.lock
        };
        let _lock = LockGuard::acquire(&self.lock_path, timing, self.settings.file_mode)?;
        let mut current = self.current_file()?;
        let left_out = self.leave_out(&mut current.entries, &withdrawn);
        if new.is_empty() && left_out == 0 {
            self.withdrawals.forget_absent(&current.entries);
            self.written = Some(current);
            return Ok(false);
        }
        let total = current.entries.len() + new.len();
        let mut drop = total.saturating_sub(self.settings.max_messages);
        if let (Some(acks), true) = (self.settings.acknowledgements, drop > 0) {
            drop = drop.min(self.first_unconsumed(&current.entries, acks));
            let kept = total - drop;
            if kept > acks.max_backlog.max(self.settings.max_messages) {
                // Refused: the file is untouched, so what we know of it stays valid.
                self.written = Some(current);
                return Err(backlog_full(&self.path, kept, acks.max_backlog));
            }
        }
        // Stamped under the lock, never below the newest timestamp in the file: the reference
        // reader skips messages older than the newest it has seen.
        let newest = current.entries.iter().map(|e| e.timestamp).max();
        let stamp = now_ms().max(newest.unwrap_or(0));
        for element in &mut new {
            element.restamp(stamp);
        }
        let mut entries = current.entries;
        entries.extend(new);
        entries.drain(..drop);
        let bytes = encode_file(entries.iter().map(|element| element.text.as_str()));
        if bytes.len() as u64 > self.settings.max_file_bytes {
            return Err(ChannelError::SendTooLarge {
                path: self.path.clone(),
                index: None,
                message_bytes: new_bytes,
                file_bytes: bytes.len() as u64,
                limit: self.settings.max_file_bytes,
            });
        }
        self.write_bytes_locked(entries, bytes, patience)?;
        if let Some(written) = &self.written {
            self.withdrawals.forget_absent(&written.entries);
        }
        Ok(true)
    }

    /// Removes the settled requests from `entries`, except a live reader's last consumed
    /// message (its anchor, see `first_unconsumed`); returns how many it removed.
    fn leave_out(&mut self, entries: &mut VecDeque<Element>, withdrawn: &HashSet<String>) -> usize {
        let settled = |e: &Element| e.id.as_ref().is_some_and(|id| withdrawn.contains(id));
        if !entries.iter().any(settled) {
            return 0;
        }
        let anchors: HashSet<String> = match self.settings.acknowledgements {
            Some(acks) => self.positions(acks).iter().flatten().cloned().collect(),
            None => HashSet::new(),
        };
        let before = entries.len();
        entries.retain(|e| !settled(e) || e.id.as_ref().is_some_and(|id| anchors.contains(id)));
        before - entries.len()
    }

    /// How many queued messages one write may carry. Toward readers that acknowledge, as many as
    /// make sense at once; toward a reader that does not (the reference), a small batch, so that
    /// a burst enters the file at about the pace single sends would, and a reader polling the
    /// file still sees every message before the cap trims it.
    pub fn batch_limit(&mut self) -> usize {
        const ACKNOWLEDGED_BATCH: usize = 256;
        let acknowledged = match self.settings.acknowledgements {
            Some(acks) => !self.positions(acks).is_empty(),
            None => false,
        };
        if acknowledged {
            ACKNOWLEDGED_BATCH
        } else {
            (self.settings.max_messages / 10).max(1)
        }
    }

    /// Index of the oldest element to keep for the live readers (`len` if none): each reader's
    /// last consumed message and everything after it. Keeping that one message lets the reader
    /// tell a trim it allowed from a loss (it still sees a message it knows).
    fn first_unconsumed(&mut self, entries: &VecDeque<Element>, acks: AckSettings) -> usize {
        let first = self
            .positions(acks)
            .iter()
            .map(|last_id| match last_id {
                None => 0,
                Some(last_id) => entries
                    .iter()
                    .rposition(|element| element.id.as_deref() == Some(last_id.as_str()))
                    .unwrap_or(0),
            })
            .min()
            .unwrap_or(entries.len());
        first
    }

    /// The live readers' last consumed ids. Positions only move forward, so a scan a few
    /// milliseconds old can only hold back more than needed, never less; rescanning for every
    /// send would cost a tenth of a round trip.
    fn positions(&mut self, acks: AckSettings) -> &[Option<String>] {
        let now = Instant::now();
        let fresh =
            matches!(&self.positions, Some((scanned, _)) if now - *scanned < POSITIONS_MAX_AGE);
        if !fresh {
            self.positions = Some((now, live_positions(&self.path, acks.reader_timeout)));
        }
        self.positions
            .as_ref()
            .map_or(&[], |(_, positions)| positions)
    }

    /// Empties the outbox (under the lock, by rename, unlike the reference's plain write).
    pub fn clear(&mut self) -> Result<()> {
        let _lock =
            LockGuard::acquire(&self.lock_path, self.settings.lock, self.settings.file_mode)?;
        self.write_locked(VecDeque::new(), self.settings.lock.timeout)
    }

    fn write_locked(&mut self, entries: VecDeque<Element>, patience: Duration) -> Result<()> {
        let bytes = encode_file(entries.iter().map(|element| element.text.as_str()));
        self.write_bytes_locked(entries, bytes, patience)
    }

    fn write_bytes_locked(
        &mut self,
        entries: VecDeque<Element>,
        bytes: Vec<u8>,
        patience: Duration,
    ) -> Result<()> {
        self.written = None;
        replace_file(
            &self.tmp_path,
            &self.path,
            &bytes,
            self.settings.file_mode,
            patience,
        )?;
        self.written = Some(WrittenFile { bytes, entries });
        Ok(())
    }

    /// The outbox as it is now. Another writer of the same role may have changed the file since
    /// our last write, so the file is checked; it is read and parsed only if it differs.
    fn current_file(&mut self) -> Result<WrittenFile> {
        if let Some(written) = self.written.take() {
            if still_holds(&self.path, &written, self.remote) {
                return Ok(written);
            }
        }
        if self.remote {
            return self.read_remote();
        }
        let bytes = match read_message_file(&self.path, self.settings.max_file_bytes) {
            Ok(Some((bytes, _))) => bytes,
            Ok(None) => return Ok(WrittenFile::empty(Vec::new())),
            // Content nobody can read is replaced rather than blocking every later send.
            Err(ChannelError::TooLarge { .. } | ChannelError::BadFile { .. }) => {
                return Ok(WrittenFile::empty(Vec::new()))
            }
            Err(e) => return Err(e),
        };
        Ok(match decode_file(&bytes) {
            Ok(decoded) => WrittenFile::decoded(bytes, decoded),
            Err(_) => WrittenFile::empty(bytes),
        })
    }

    /// `current_file` on a network file system: a read that is shorter than the file or does not
    /// parse as a whole array is read again (for up to `REMOTE_REREAD_PATIENCE`), never taken for
    /// an empty outbox: another writer's messages would be dropped. Still unreadable: an error,
    /// and nothing is written.
    fn read_remote(&mut self) -> Result<WrittenFile> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        let mut reads = 0u32;
        loop {
            reads += 1;
            let bytes = match read_message_file_fresh(&self.path, self.settings.max_file_bytes) {
                Ok(Some((bytes, _))) => bytes,
                // Missing; or too large or not a regular file: replaced, as on a local file system.
                Ok(None) | Err(ChannelError::TooLarge { .. } | ChannelError::BadFile { .. }) => {
                    return Ok(WrittenFile::empty(Vec::new()))
                }
                Err(e @ ChannelError::ShortRead { .. })
                    if started.elapsed() >= REMOTE_REREAD_PATIENCE =>
                {
                    return Err(e)
                }
                Err(ChannelError::ShortRead { .. }) => {
                    std::thread::sleep(pause);
                    continue;
                }
                Err(e) => return Err(e),
            };
            match decode_file(&bytes) {
                Ok(decoded) => return Ok(WrittenFile::decoded(bytes, decoded)),
                Err(reason) if started.elapsed() >= REMOTE_REREAD_PATIENCE => {
                    return Err(ChannelError::BadFile {
                        path: self.path.clone(),
                        reason: format!(
                            "does not parse as a whole JSON array in {reads} reads over {} ms ({reason}); on a network share this is a cut-off copy of a newer version, so the file was not replaced and nothing was written (no other writer's messages were dropped); if the file is really broken, clear() the channel",
                            started.elapsed().as_millis()
                        ),
                    })
                }
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
}

/// The elements of a decoded outbox, kept as the writer will write them again.
fn elements_of(decoded: Vec<Entry>) -> VecDeque<Element> {
    decoded
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Valid(message) => Some(Element {
                id: Some(message.id.clone()),
                timestamp: message.timestamp,
                text: message.encode(),
            }),
            // Keep what the peer wrote even if it is not a message: its reader reports it.
            // An element that is not even JSON is dropped: it would break every reader.
            Entry::Invalid { id, value, .. } => value.as_ref().map(|v| Element {
                id,
                timestamp: v.get("timestamp").and_then(|t| t.as_u64()).unwrap_or(0),
                text: encode_value(v),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs;
    use std::time::Duration;

    fn settings(max_messages: usize) -> OutboxSettings {
        OutboxSettings {
            max_messages,
            lock: LockTiming {
                timeout: Duration::from_millis(500),
                stale_after: Duration::from_secs(5),
            },
            max_file_bytes: 64 << 20,
            file_mode: 0o600,
            acknowledgements: None,
        }
    }

    fn read_reference(path: &Path) -> Vec<ipckit::FileMessage> {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn on_a_share_a_copy_that_does_not_parse_is_read_again_and_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mut other = Outbox::new(path.clone(), settings(100));
        other.append(&[&Message::event("n", json!(1))]).unwrap();
        let whole = fs::read(&path).unwrap();
        // What a mount holding an older size serves: the newer file, cut off.
        fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let mut ours = Outbox::new(path.clone(), settings(100));
        ours.set_remote(true);
        // The whole file comes back while we re-read (the cache expired): nothing is lost.
        let restore = std::thread::spawn({
            let (path, whole) = (path.clone(), whole.clone());
            move || {
                std::thread::sleep(Duration::from_millis(100));
                fs::write(path, whole).unwrap();
            }
        });
        ours.append(&[&Message::event("n", json!(2))]).unwrap();
        restore.join().unwrap();
        let payloads: Vec<_> = read_reference(&path)
            .iter()
            .map(|m| m.payload.clone())
            .collect();
        assert_eq!(payloads, [json!(1), json!(2)]);
        // Never whole: the send fails, with the file as it was.
        fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let err = ours.append(&[&Message::event("n", json!(3))]).unwrap_err();
        assert_eq!(err.code(), "EBADMSG");
        assert!(err.to_string().contains("not replaced"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), &whole[..whole.len() / 2]);
        // On a local file system a broken outbox is replaced, as before.
        let mut local = Outbox::new(path.clone(), settings(100));
        local.append(&[&Message::event("n", json!(4))]).unwrap();
        assert_eq!(read_reference(&path).len(), 1);
    }

    #[test]
    fn appends_keep_the_newest_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::new(dir.path().join("out.json"), settings(100));
        for i in 0..150 {
            outbox.append(&[&Message::event("n", json!(i))]).unwrap();
        }
        let on_disk = read_reference(outbox.path());
        assert_eq!(on_disk.len(), 100);
        assert_eq!(on_disk[0].payload, json!(50));
        assert_eq!(on_disk[99].payload, json!(149));
        assert!(!dir.path().join("out.lock").exists());
        assert!(!dir.path().join("out.tmp").exists());
    }

    #[test]
    fn interleaves_with_the_reference_writer_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let reference = ipckit::FileChannel::frontend(dir.path()).unwrap();
        let mut ours = Outbox::new(dir.path().join("frontend_to_backend.json"), settings(100));
        for i in 0..20 {
            ours.append(&[&Message::event("ours", json!(i))]).unwrap();
            reference.send_event("theirs", json!(i)).unwrap();
        }
        let on_disk = read_reference(ours.path());
        assert_eq!(on_disk.len(), 40);
        let methods: Vec<_> = on_disk.iter().map(|m| m.method.clone().unwrap()).collect();
        assert_eq!(methods[..4], ["ours", "theirs", "ours", "theirs"]);
        // The reference's bytes and ours agree: re-serializing what is on disk changes nothing.
        assert_eq!(
            fs::read_to_string(ours.path()).unwrap(),
            serde_json::to_string_pretty(&on_disk).unwrap()
        );
    }

    #[test]
    fn concurrent_writers_in_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let handles: Vec<_> = (0..3)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // The lock is not fair: on a loaded machine one writer can wait out the
                    // default 500 ms. This test is about losing nothing, so give it time.
                    let mut patient = settings(1000);
                    patient.lock.timeout = Duration::from_secs(20);
                    let mut outbox = Outbox::new(path, patient);
                    for i in 0..100 {
                        outbox
                            .append(&[&Message::event("w", json!([w, i]))])
                            .unwrap_or_else(|e| panic!("writer {w}, send {i}: {e}"));
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(read_reference(&path).len(), 300);
    }

    #[test]
    fn a_corrupt_outbox_does_not_block_sending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        fs::write(&path, "{ garbage").unwrap();
        let mut outbox = Outbox::new(path.clone(), settings(100));
        outbox.append(&[&Message::event("ok", json!(1))]).unwrap();
        assert_eq!(read_reference(&path).len(), 1);
    }

    #[test]
    fn foreign_non_message_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        fs::write(&path, r#"[{"id": "x", "weird": true}]"#).unwrap();
        let mut outbox = Outbox::new(path.clone(), settings(100));
        outbox.append(&[&Message::event("ok", json!(1))]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("[\n  {\n    \"id\": \"x\",\n    \"weird\": true\n  },\n  {\n"),
            "{text}"
        );
    }

    #[test]
    fn a_send_keeps_the_good_messages_around_one_that_is_not_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let good = |id: &str| {
            Message {
                id: id.into(),
                ..Message::event("e", json!(id))
            }
            .encode()
        };
        let text = format!(
            "[\n{},\n  {{\"id\": \"bad\", \"payload\": NaN}},\n{}\n]",
            good("a"),
            good("b")
        );
        fs::write(&path, text).unwrap();
        let mut outbox = Outbox::new(path.clone(), settings(100));
        outbox.append(&[&Message::event("e", json!("c"))]).unwrap();
        let written: Vec<Message> =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let payloads: Vec<_> = written.iter().map(|m| m.payload.clone()).collect();
        assert_eq!(payloads, [json!("a"), json!("b"), json!("c")]);
    }

    #[test]
    fn messages_are_stamped_under_the_lock_never_below_the_newest_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let mut outbox = Outbox::new(path.clone(), settings(100));
        // Another writer's message from the future (its clock runs ahead).
        let ahead = now_ms() + 60_000;
        let foreign = Message {
            timestamp: ahead,
            ..Message::event("theirs", json!(1))
        };
        fs::write(&path, encode_file([foreign.encode().as_str()])).unwrap();
        // Made long ago, sent now.
        let old = Message {
            timestamp: 5,
            ..Message::event("ours", json!(2))
        };
        outbox.append(&[&old]).unwrap();
        let written: Vec<Message> =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written[1].timestamp, ahead);
        assert_eq!(written[1].id, old.id);
        // Without a newer one in the file, the stamp is the time of the write.
        fs::write(&path, "[]").unwrap();
        let before = now_ms();
        outbox.append(&[&old]).unwrap();
        let written: Vec<Message> =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert!(written[0].timestamp >= before);
    }
}
