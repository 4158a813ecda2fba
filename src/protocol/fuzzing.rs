//! Invariants checked on arbitrary inbox bytes, shared by the fuzz target (`fuzz/`) and the test
//! that replays its committed corpus.

use super::inbox::InboxReader;
use super::message::{decode_file, encode_file, Entry};
use std::collections::HashSet;

/// Panics if parsing or reading `bytes` as an inbox breaks an invariant: a panic inside, a
/// valid message that does not survive re-encoding, or a message delivered twice.
pub fn check_inbox_bytes(bytes: &[u8]) {
    if let Ok(entries) = decode_file(bytes) {
        let valid: Vec<_> = entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Valid(message) => Some(message.clone()),
                Entry::Invalid { .. } => None,
            })
            .collect();
        let texts: Vec<String> = valid.iter().map(|m| m.encode()).collect();
        let again = decode_file(&encode_file(texts.iter().map(String::as_str)))
            .expect("a re-encoded file parses");
        assert_eq!(again.len(), valid.len());
        for (entry, original) in again.iter().zip(&valid) {
            match entry {
                Entry::Valid(message) => assert_eq!(message, original),
                Entry::Invalid { reason, .. } => {
                    panic!("a re-encoded message is invalid: {reason}")
                }
            }
        }
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("inbox.json");
    std::fs::write(&path, bytes).expect("writing the inbox");
    let mut reader = InboxReader::new(path, 1 << 20, 100);
    let first = reader.read_new();
    let ids: HashSet<_> = first.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        ids.len(),
        first.messages.len(),
        "a message delivered twice in one read"
    );
    assert!(
        reader.read_new().messages.is_empty(),
        "an unchanged file delivered again"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/inbox");
        let mut replayed = 0;
        for entry in std::fs::read_dir(corpus).expect("the committed corpus") {
            super::check_inbox_bytes(&std::fs::read(entry.unwrap().path()).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 3, "only {replayed} corpus files");
    }
}
