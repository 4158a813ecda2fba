//! Arbitrary bytes as an inbox: see `ipckit::protocol::fuzzing::check_inbox_bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    ipckit::protocol::fuzzing::check_inbox_bytes(bytes);
});
