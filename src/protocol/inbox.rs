//! The reader side: each message of the inbox exactly once, in file order.
//!
//! The writer appends and trims from the front, so a message still in the file was also in every
//! snapshot since we first saw it: remembering the ids of the last snapshot is enough to tell new
//! messages from old ones, whatever their timestamps (the reference compares timestamps and
//! repeats messages that share a millisecond). For the same reason a new version usually begins
//! with the last version's tail byte for byte: those elements are not scanned or parsed again.

use super::error::ChannelError;
use super::files::{
    now_ns, read_message_file, read_message_file_fresh, read_oversized_message_file, stat,
};
use super::message::{
    decode_entry, first_element_at, oversized_size, peek_id, split_file, split_rest, Entry,
    Message, RawElement,
};
use super::platform::FileIdentity;
use serde_json::value::RawValue;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub messages: Vec<Message>,
    pub problems: Vec<ChannelError>,
    /// The newest message read so far: this reader has consumed it and all before it.
    pub last_id: Option<String>,
}

#[derive(Debug)]
pub struct InboxReader {
    path: PathBuf,
    max_file_bytes: u64,
    /// A file holding this many messages may have had older ones trimmed away.
    cap: usize,
    seen: Snapshot,
    /// The identity of the last version reported as broken, so each breakage is reported once.
    reported: Option<Option<FileIdentity>>,
    /// The version that failed to parse, when we read it, and why: not re-read while unchanged.
    broken: Option<(FileIdentity, i128, String)>,
    /// What the inbox held when the channel opened, before the first read: a loss between the
    /// opening and the first read is judged against it.
    baseline: Option<HashSet<String>>,
    /// We publish acknowledgements, so a writer of ours keeps what we have not read.
    acknowledging: bool,
    /// Our acknowledgement lapsed before this read: the writer may have trimmed what we had not
    /// read, so the next read is judged as a reader that does not acknowledge.
    lapsed: bool,
    /// Ids reported as reused, while they are in the file: each reuse is reported once.
    duplicates_reported: HashSet<String>,
    last_stat: Option<FileIdentity>,
    /// The file system caches attributes (a network share, FUSE): a version that looks like the
    /// last one may be another, so every read reads the content, and a copy that does not parse
    /// may only be cut off.
    remote: bool,
    /// On such a file system, the bytes of a read that did not parse: reported as broken only
    /// when the next read finds the very same bytes (a cut-off copy is whole next time).
    suspect: Option<Vec<u8>>,
    /// Whether the writer may write the file in place rather than replace it by rename: until
    /// new messages came in a replaced file, and again once they come in the same file.
    written_in_place: bool,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// Id of the newest entry: everything up to it is consumed once read.
    last_id: Option<String>,
    identity: Option<FileIdentity>,
    settled: bool,
    bytes: Vec<u8>,
    keys: HashSet<String>,
    /// Where each element lies in `bytes`, with its id and key (empty when one did not parse).
    spans: Vec<Span>,
}

/// An element of a version of the inbox: its bytes' place, its id and its key.
#[derive(Debug, Clone)]
struct Span {
    start: usize,
    end: usize,
    id: Option<String>,
    key: String,
}

impl Span {
    /// `raw`, which lies in `bytes`.
    fn of(bytes: &[u8], raw: &RawValue, id: Option<String>, key: String) -> Span {
        let start = raw.get().as_ptr() as usize - bytes.as_ptr() as usize;
        Span {
            start,
            end: start + raw.get().len(),
            id,
            key,
        }
    }
}

/// Where a new version of the inbox begins with the last version's elements: from its element
/// `first` (at `old_start` in the last version) on, at `begin` in the new one, up to `end`.
struct KnownPrefix {
    first: usize,
    old_start: usize,
    begin: usize,
    end: usize,
}

impl InboxReader {
    pub fn new(path: PathBuf, max_file_bytes: u64, cap: usize) -> Self {
        InboxReader {
            path,
            max_file_bytes,
            cap,
            seen: Snapshot::default(),
            reported: None,
            broken: None,
            baseline: None,
            acknowledging: false,
            lapsed: false,
            duplicates_reported: HashSet::new(),
            last_stat: None,
            remote: false,
            suspect: None,
            written_in_place: true,
        }
    }

    /// Whether the inbox's writer may write it in place (an in-place write raises no rename):
    /// no new messages yet, or the last came in the same file as the ones before.
    pub fn expects_in_place_writes(&self) -> bool {
        self.written_in_place
    }

    /// The inbox is on a file system that caches attributes (see `remote`).
    pub fn set_remote(&mut self, remote: bool) {
        self.remote = remote;
    }

    pub fn set_acknowledging(&mut self, acknowledging: bool) {
        self.acknowledging = acknowledging;
    }

    /// Our acknowledgement lapsed: the next read that finds a change judges loss without it.
    pub fn note_lapsed(&mut self) {
        self.lapsed = true;
    }

    /// Notes what the inbox holds now, without consuming it (the first read still delivers it),
    /// so that messages trimmed away before the first read are reported.
    pub fn note_baseline(&mut self) {
        if let Ok(Some((bytes, _))) = read_message_file(&self.path, self.max_file_bytes) {
            if let Ok(elements) = split_file(&bytes) {
                let keys = elements.iter().map(element_key).collect();
                self.baseline = Some(keys);
            }
        }
    }

    /// Where `bytes` begins with the elements the last version ended with, byte for byte (as a
    /// writer leaves them when it appends and trims from the front). `None` when the last
    /// version's tail is not where `bytes` begins.
    fn known_prefix(&self, bytes: &[u8]) -> Option<KnownPrefix> {
        let (old, spans) = (&self.seen.bytes, &self.seen.spans);
        let old_end = spans.last()?.end;
        let begin = first_element_at(bytes)?;
        let first = spans.iter().position(|span| {
            let tail = &old[span.start..old_end];
            bytes.get(begin..begin + tail.len()) == Some(tail)
        })?;
        let old_start = spans[first].start;
        Some(KnownPrefix {
            first,
            old_start,
            begin,
            end: old_end - old_start + begin,
        })
    }

    /// The last version's elements that `prefix` finds again, placed in the new version, and
    /// their keys, taken over without copying them (a reader of a capped file finds all but the
    /// newest few again on every read). The keys of the elements trimmed from the front are
    /// returned apart: they were seen, so a message that comes back with one of them is no news.
    fn take_known(
        &mut self,
        prefix: &KnownPrefix,
    ) -> (Vec<Span>, HashSet<String>, HashSet<String>) {
        let mut spans = std::mem::take(&mut self.seen.spans);
        let mut keys = std::mem::take(&mut self.seen.keys);
        // Every element had a key of its own, unless an id was reused in the last version.
        let unique = keys.len() == spans.len();
        let trimmed: HashSet<String> = spans.drain(..prefix.first).map(|span| span.key).collect();
        if unique {
            for key in &trimmed {
                keys.remove(key);
            }
        } else {
            // A key reused further on stays: it is still in this version.
            let kept: HashSet<&str> = spans.iter().map(|span| span.key.as_str()).collect();
            for key in trimmed.iter().filter(|key| !kept.contains(key.as_str())) {
                keys.remove(key);
            }
        }
        for span in &mut spans {
            span.start = span.start - prefix.old_start + prefix.begin;
            span.end = span.end - prefix.old_start + prefix.begin;
        }
        (spans, keys, trimmed)
    }

    /// Whether messages were trimmed away before we read them, judged from the version we saw
    /// last (or the baseline at opening) and this one: nothing we saw is left, and the file is
    /// long enough that its writer trims it.
    /// - At exactly the reference's cap it is undecidable (that many new messages, or more): a
    ///   possible loss (`EMAYBELOST`).
    /// - Beyond the cap only a writer of ours honouring acknowledgements keeps a file. It keeps
    ///   an acknowledging reader's last message as an anchor; with the anchor gone, it had
    ///   stopped counting this reader (its acknowledgement lapsed): a certain loss (`ELOST`).
    ///   With nothing read yet there is no anchor, and such a writer keeps everything for us.
    fn judge_loss(
        &self,
        keys: &HashSet<String>,
        fresh_from: Option<usize>,
    ) -> Option<ChannelError> {
        let previous = if self.seen.identity.is_some() {
            &self.seen.keys
        } else {
            self.baseline.as_ref()?
        };
        let len = keys.len();
        let nothing_left = fresh_from == Some(0) && !previous.iter().any(|k| keys.contains(k));
        if !nothing_left || len < self.cap {
            return None;
        }
        let had_anchor = !previous.is_empty() && self.acknowledging;
        // Nothing read yet: a writer of ours keeps everything for us, unless we had lapsed.
        if len > self.cap && previous.is_empty() && self.acknowledging && !self.lapsed {
            return None;
        }
        Some(ChannelError::Lost {
            path: self.path.clone(),
            count: None,
            certain: len > self.cap && had_anchor,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        outcome.last_id = self.seen.last_id.clone();
        outcome
    }

    /// The inbox's version found by the last read (`None`: missing or unreadable).
    pub fn last_stat(&self) -> Option<FileIdentity> {
        self.last_stat
    }

    fn read_into(&mut self, outcome: &mut ReadOutcome) -> Result<(), Box<BrokenVersion>> {
        self.last_stat = None;
        let identity = stat(&self.path).map_err(|e| BrokenVersion::boxed(None, e))?;
        self.last_stat = identity;
        if identity.is_some() && identity == self.seen.identity && self.seen.settled && !self.remote
        {
            return Ok(());
        }
        if let Some((version, read_at, reason)) = &self.broken {
            if identity == Some(*version) && version.is_settled(*read_at) && !self.remote {
                // Already reported; reading it again would only find the same problem.
                let error = ChannelError::BadFile {
                    path: self.path.clone(),
                    reason: reason.clone(),
                };
                return Err(BrokenVersion::boxed(identity, error));
            }
        }
        let read_at = now_ns();
        let read = if self.remote {
            read_message_file_fresh(&self.path, self.max_file_bytes)
        } else {
            read_message_file(&self.path, self.max_file_bytes)
        };
        let (bytes, identity) = match read {
            Ok(Some(found)) => found,
            // Cut off every time for now: nothing is new yet; the next read tries again.
            Err(ChannelError::ShortRead { .. }) => return Ok(()),
            Ok(None) => {
                let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
                return Err(BrokenVersion::boxed(
                    None,
                    ChannelError::io("reading", &self.path, missing),
                ));
            }
            // Too large to read whole: read streamed, the messages that do not fit left out.
            Err(ChannelError::TooLarge { .. }) => {
                read_oversized_message_file(&self.path, self.max_file_bytes)
                    .map_err(|e| BrokenVersion::boxed(identity, e))?
            }
            Err(e) => return Err(BrokenVersion::boxed(identity, e)),
        };
        if bytes.trim_ascii().is_empty() {
            // No version of the protocol (an empty inbox is `[]`): a writer that rewrites the file
            // in place (fs.writeFileSync, the reference's clear()) between truncating and writing.
            // Nothing is new, nothing left; the next read looks again.
            return Ok(());
        }
        let settled = identity.is_settled(read_at);
        if bytes == self.seen.bytes {
            self.seen.identity = Some(identity);
            self.seen.settled = settled;
            return Ok(());
        }
        // What the last version held byte for byte (a writer appends and trims from the front)
        // is known already: only the rest is scanned and checked.
        let prefix = self.known_prefix(&bytes);
        let rest = prefix
            .as_ref()
            .and_then(|prefix| split_rest(&bytes, prefix.end));
        let (prefix, elements) = match (prefix, rest) {
            (Some(prefix), Some(rest)) => (Some(prefix), Ok(rest)),
            _ => (None, split_file(&bytes)),
        };
        let elements = match elements {
            Ok(elements) => elements,
            // Perhaps only cut off: broken if the next read finds the same bytes.
            Err(_) if self.remote && self.suspect.as_ref() != Some(&bytes) => {
                self.suspect = Some(bytes);
                return Ok(());
            }
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
        self.suspect = None;

        // The known elements were all seen (and any id they reuse reported) with the last
        // version: they are carried over as they are. Only elements with an id we have not seen
        // are decoded in full.
        let (mut spans, mut keys, trimmed_keys, mut last_id) = match &prefix {
            Some(prefix) => {
                let (spans, keys, trimmed) = self.take_known(prefix);
                let last_id = spans.iter().rev().find_map(|span| span.id.clone());
                (spans, keys, trimmed, last_id)
            }
            None => (
                Vec::with_capacity(elements.len()),
                HashSet::with_capacity(elements.len()),
                HashSet::new(),
                None,
            ),
        };
        let known = spans.len();
        let seen_before = |keys: &HashSet<String>, key: &String| match &prefix {
            // Taken over: the last version's keys are the known ones and the trimmed ones.
            Some(_) => keys.contains(key) || trimmed_keys.contains(key),
            None => self.seen.keys.contains(key),
        };
        let mut spans_whole = true;
        let mut fresh_from = None;
        for (index, element) in elements.into_iter().enumerate() {
            let index = known + index;
            let (id, key) = match &element {
                Ok(raw) => {
                    let id = peek_id(raw);
                    let key = id
                        .clone()
                        .unwrap_or_else(|| anonymous_key(raw.get().as_bytes()));
                    spans.push(Span::of(&bytes, raw, id.clone(), key.clone()));
                    (id, key)
                }
                Err(broken) => {
                    spans_whole = false;
                    (None, anonymous_key(&broken.bytes))
                }
            };
            last_id = id.clone().or(last_id);
            let already_seen = seen_before(&keys, &key);
            let repeated_here = !keys.insert(key.clone());
            // Writers only append: an id twice in one version, or a known id after new
            // messages, is another message reusing the id. Report it once; deliver the first.
            if repeated_here || (already_seen && fresh_from.is_some()) {
                if id.is_some() && self.duplicates_reported.insert(key) {
                    outcome.problems.push(ChannelError::BadMessage {
                        path: self.path.clone(),
                        index,
                        id,
                        reason: "repeats the id of an earlier message; not delivered".into(),
                    });
                }
                continue;
            }
            if already_seen {
                continue;
            }
            fresh_from.get_or_insert(index);
            if let Some(size) = element.as_ref().ok().and_then(|raw| oversized_size(raw)) {
                outcome.problems.push(ChannelError::MessageTooLarge {
                    path: self.path.clone(),
                    index,
                    id,
                    size,
                    limit: self.max_file_bytes,
                });
                continue;
            }
            let entry = match element {
                Ok(raw) => decode_entry(raw),
                Err(broken) => Entry::Invalid {
                    id: broken.id,
                    reason: broken.reason,
                    value: None,
                },
            };
            match entry {
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
        if let Some(problem) = self.judge_loss(&keys, fresh_from) {
            outcome.problems.push(problem);
        }
        if fresh_from.is_some() {
            if let Some(previous) = &self.seen.identity {
                self.written_in_place = previous.same_file(&identity);
            }
        }
        self.lapsed = false;
        self.baseline = None;
        self.duplicates_reported.retain(|key| keys.contains(key));
        self.seen = Snapshot {
            last_id,
            identity: Some(identity),
            settled,
            bytes,
            keys,
            spans: if spans_whole { spans } else { Vec::new() },
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

fn element_key(element: &RawElement<'_>) -> String {
    match element {
        Ok(raw) => peek_id(raw).unwrap_or_else(|| anonymous_key(raw.get().as_bytes())),
        Err(broken) => anonymous_key(&broken.bytes),
    }
}

fn anonymous_key(raw: &[u8]) -> String {
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
        // 150 or exactly 100 new messages look alike: a possible loss, never a certain one.
        assert_eq!(outcome.problems[0].code(), "EMAYBELOST");
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
    fn a_message_larger_than_the_limit_is_skipped_and_reported_once_and_the_rest_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let big = Message {
            id: "big".into(),
            ..Message::event("e", json!("x".repeat(4000)))
        };
        write_elements(
            &path,
            &[event_text("a", 1), big.encode(), event_text("c", 3)],
        );
        let mut reader = InboxReader::new(path.clone(), 1024, 100);
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), [1, 3]);
        let problems: Vec<_> = outcome
            .problems
            .iter()
            .map(|p| (p.code(), p.to_string()))
            .collect();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "EFBIG");
        assert!(
            problems[0].1.contains("message 1 (id big)") && problems[0].1.contains("1024 bytes"),
            "{}",
            problems[0].1
        );
        // A later version: only what is new, and the big one not reported again.
        write_elements(
            &path,
            &[
                event_text("a", 1),
                big.encode(),
                event_text("c", 3),
                event_text("d", 4),
            ],
        );
        let outcome = reader.read_new();
        assert_eq!((payloads(&outcome), outcome.problems.len()), (vec![4], 0));
        // Blanks, however many, are no message.
        fs::write(&path, format!("[{}]", " ".repeat(4096))).unwrap();
        let mut reader = InboxReader::new(path, 1024, 100);
        let outcome = reader.read_new();
        assert!(outcome.messages.is_empty() && outcome.problems.is_empty());
    }

    fn write_elements(path: &Path, elements: &[String]) {
        let bytes = crate::protocol::message::encode_file(elements.iter().map(String::as_str));
        std::fs::write(path, bytes).unwrap();
    }

    fn event_text(id: &str, n: i64) -> String {
        Message {
            id: id.into(),
            timestamp: 1,
            ..Message::event("e", json!(n))
        }
        .encode()
    }

    #[test]
    fn reading_only_what_follows_the_last_version_finds_what_reading_everything_finds() {
        // Versions a writer (or a hostile one) may leave: appends, trims, removals from the
        // middle (prunes), compact and pretty elements, broken elements, reused ids, elements
        // with no id, blanks, cut-off files. Each is read by a reader that knows the last
        // version's elements and by one that does not.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        write_elements(&path, &[]);
        let mut fast = InboxReader::new(path.clone(), 1 << 20, 20);
        let mut slow = InboxReader::new(path.clone(), 1 << 20, 20);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let mut elements: Vec<String> = Vec::new();
        let mut next = 0;
        let mut fast_reads = 0;
        for _ in 0..600 {
            for _ in 0..random(3) + u64::from(elements.len() > 25) {
                if !elements.is_empty() {
                    elements.remove(0);
                }
            }
            for _ in 0..random(4) {
                next += 1;
                elements.push(match random(60) {
                    0 => "{\"id\": \"broken\", ".into(),
                    1 => "{\"timestamp\": 1, \"type\": \"event\", \"payload\": 1}".into(),
                    2 if !elements.is_empty() => elements[random(elements.len() as u64) as usize].clone(),
                    3 => format!("{{\"id\":\"c{next}\",\"timestamp\":1,\"type\":\"event\",\"method\":\"e\",\"payload\":{next}}}"),
                    _ => event_text(&format!("m{next}"), next),
                });
            }
            if random(10) == 0 && elements.len() > 2 {
                let middle = random(elements.len() as u64) as usize;
                elements.remove(middle);
            }
            let mut bytes =
                crate::protocol::message::encode_file(elements.iter().map(String::as_str));
            match random(10) {
                0 => bytes.extend_from_slice(b"\n  "),
                1 => bytes.insert(0, b' '),
                2 => bytes.truncate(bytes.len().saturating_sub(1 + random(3) as usize)),
                _ => {}
            }
            std::fs::write(&path, &bytes).unwrap();
            fast_reads += usize::from(fast.known_prefix(&bytes).is_some());
            slow.seen.spans.clear();
            let (a, b) = (fast.read_new(), slow.read_new());
            assert_eq!(
                format!("{a:?}"),
                format!("{b:?}"),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        assert!(
            fast_reads > 200,
            "the known prefix served {fast_reads} reads"
        );
    }

    #[test]
    fn a_writer_is_taken_for_an_in_place_writer_until_new_messages_come_in_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        write_elements(&path, &[]);
        let mut reader = InboxReader::new(path.clone(), 1 << 20, 100);
        reader.read_new();
        assert!(reader.expects_in_place_writes(), "nothing known yet");
        // Replaced by rename (what every writer of the protocol does).
        let replace = |elements: &[String]| {
            let tmp = dir.path().join("in.tmp");
            write_elements(&tmp, elements);
            std::fs::rename(&tmp, &path).unwrap();
        };
        let mut elements = vec![event_text("a", 1)];
        replace(&elements);
        assert_eq!(payloads(&reader.read_new()), [1]);
        assert!(!reader.expects_in_place_writes());
        // Replaced with nothing new (a prune): still a renaming writer.
        replace(&elements);
        assert!(reader.read_new().messages.is_empty());
        assert!(!reader.expects_in_place_writes());
        // Written in place, as fs.writeFileSync does: new messages in the same file.
        elements.push(event_text("b", 2));
        write_elements(&path, &elements);
        assert_eq!(payloads(&reader.read_new()), [2]);
        assert!(reader.expects_in_place_writes());
        elements.push(event_text("c", 3));
        replace(&elements);
        assert_eq!(payloads(&reader.read_new()), [3]);
        assert!(!reader.expects_in_place_writes());
    }

    #[test]
    fn an_inbox_caught_between_truncate_and_write_delivers_nothing_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut elements = vec![event_text("a", 1), event_text("b", 2)];
        write_elements(&path, &elements);
        let mut reader = InboxReader::new(path.clone(), 1 << 20, 100);
        assert_eq!(payloads(&reader.read_new()), [1, 2]);
        // An in-place writer has truncated the file and not written yet (empty, or blank).
        for blank in ["", "\n  \r\n"] {
            std::fs::write(&path, blank).unwrap();
            let outcome = reader.read_new();
            assert!(outcome.messages.is_empty() && outcome.problems.is_empty());
            assert_eq!(outcome.last_id.as_deref(), Some("b"));
        }
        elements.push(event_text("c", 3));
        write_elements(&path, &elements);
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), [3], "a and b were delivered already");
        assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
        // An empty inbox of the protocol (`[]`) is a version: what follows it is new.
        write_elements(&path, &[]);
        assert!(reader.read_new().messages.is_empty());
        write_elements(&path, &elements[2..]);
        assert_eq!(payloads(&reader.read_new()), [3]);
    }

    #[test]
    fn messages_trimmed_before_the_first_read_are_reported_as_possibly_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        std::fs::write(&path, "[]").unwrap();
        let mut writer = outbox(&path, 100);
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        reader.note_baseline();
        for i in 0..150 {
            writer.append(&[&Message::event("e", json!(i))]).unwrap();
        }
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), (50..150).collect::<Vec<_>>());
        let codes: Vec<_> = outcome.problems.iter().map(|p| p.code()).collect();
        assert_eq!(codes, ["EMAYBELOST"]);
        // Fewer than the cap since the opening: nothing can have been trimmed.
        let other = dir.path().join("other.json");
        std::fs::write(&other, "[]").unwrap();
        let mut writer = outbox(&other, 100);
        let mut reader = InboxReader::new(other.clone(), 64 << 20, 100);
        reader.note_baseline();
        for i in 0..99 {
            writer.append(&[&Message::event("e", json!(i))]).unwrap();
        }
        assert!(reader.read_new().problems.is_empty());
    }

    #[test]
    fn an_acknowledging_reader_that_lapsed_after_reading_an_empty_inbox_is_told_of_its_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        std::fs::write(&path, "[]").unwrap();
        let reader = || {
            let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
            reader.set_acknowledging(true);
            assert!(reader.read_new().messages.is_empty());
            reader
        };
        let (mut live, mut lapsed) = (reader(), reader());
        // A writer of ours keeps a backlog beyond the cap: for a live reader with no position
        // yet, everything since its opening; for one that lapsed, nothing in particular.
        let kept: Vec<String> = (0..150).map(|i| event_text(&format!("k{i}"), i)).collect();
        write_elements(&path, &kept);
        let outcome = live.read_new();
        assert_eq!((outcome.messages.len(), outcome.problems.len()), (150, 0));
        lapsed.note_lapsed();
        let outcome = lapsed.read_new();
        assert_eq!(outcome.messages.len(), 150);
        let codes: Vec<_> = outcome.problems.iter().map(|p| p.code()).collect();
        assert_eq!(codes, ["EMAYBELOST"]);
    }

    #[test]
    fn a_reused_id_is_reported_once_and_the_first_message_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        write_elements(&path, &[event_text("a", 1), event_text("a", 2)]);
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), [1]);
        assert_eq!(outcome.problems.len(), 1);
        let text = outcome.problems[0].to_string();
        assert!(
            text.contains("message 1 (id a)") && text.contains("repeats the id"),
            "{text}"
        );
        // Read again with a new message: the reuse is not reported twice.
        write_elements(
            &path,
            &[event_text("a", 1), event_text("a", 2), event_text("b", 3)],
        );
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), [3]);
        assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
        // An id we read before, appended again after new messages, is a reuse too.
        write_elements(
            &path,
            &[event_text("b", 3), event_text("c", 4), event_text("b", 5)],
        );
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), [4]);
        assert_eq!(outcome.problems.len(), 1);
        assert_eq!(outcome.problems[0].code(), "EBADMSG");
    }

    #[test]
    fn a_message_that_is_not_json_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.json");
        let mut reader = InboxReader::new(path.clone(), 64 << 20, 100);
        let mut bytes = b"[\n".to_vec();
        bytes.extend_from_slice(event_text("a", 1).as_bytes());
        bytes.extend_from_slice(b",\n  {\"id\": \"nan\", \"timestamp\": 1, \"type\": \"event\", \"method\": \"e\", \"payload\": NaN},\n");
        bytes.extend_from_slice(b"  {\"id\": \"bytes\", \"payload\": \"\xc3\x28\"},\n");
        bytes.extend_from_slice(event_text("b", 2).as_bytes());
        bytes.extend_from_slice(b"\n]");
        std::fs::write(&path, &bytes).unwrap();
        let outcome = reader.read_new();
        assert_eq!(payloads(&outcome), [1, 2]);
        let problems: Vec<_> = outcome.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("message 1 (id nan)"), "{problems:?}");
        assert!(problems[1].contains("message 2 (id bytes)") && problems[1].contains("UTF-8"));
        // Unchanged: nothing delivered or reported again.
        let again = reader.read_new();
        assert!(again.messages.is_empty() && again.problems.is_empty());
    }
}
