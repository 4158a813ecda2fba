//! Arbitrary bytes as an inbox: the parser and the reader must never panic, must deliver each
//! valid message once, and whatever they accept must re-encode to something they read back.
#![no_main]

use ipckit::protocol::inbox::InboxReader;
use ipckit::protocol::message::{decode_file, encode_file, Entry};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(entries) = decode_file(bytes) {
        let valid: Vec<_> = entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Valid(message) => Some(message.clone()),
                Entry::Invalid { .. } => None,
            })
            .collect();
        let texts: Vec<String> = valid.iter().map(|m| m.encode()).collect();
        let again = decode_file(&encode_file(texts.iter().map(String::as_str))).expect("re-encoded file parses");
        assert_eq!(again.len(), valid.len());
        for (entry, original) in again.iter().zip(&valid) {
            match entry {
                Entry::Valid(message) => assert_eq!(message, original),
                Entry::Invalid { reason, .. } => panic!("re-encoded message is invalid: {reason}"),
            }
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.json");
    std::fs::write(&path, bytes).unwrap();
    let mut reader = InboxReader::new(path.clone(), 1 << 20, 100);
    let first = reader.read_new();
    let ids: HashSet<_> = first.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids.len(), first.messages.len(), "a message delivered twice in one read");
    let second = reader.read_new();
    assert!(second.messages.is_empty(), "an unchanged file delivered messages again");
});
