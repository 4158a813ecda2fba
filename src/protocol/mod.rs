//! The file-channel protocol core: plain Rust, no Node-API.

pub mod ack;
pub mod channel;
pub mod error;
pub mod files;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod inbox;
pub mod inspect;
pub mod lock;
pub mod message;
pub mod options;
pub mod outbox;
pub mod platform;
pub mod presence;
pub mod reactor;
pub mod replies;
pub mod sync;
pub mod watch;
