//! The file-channel protocol core: plain Rust, no Node-API.

pub mod error;
pub mod message;
pub mod files;
pub mod lock;
pub mod inbox;
pub mod outbox;
pub mod channel;
