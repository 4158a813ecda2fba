//! Errors of the file-channel core. Each variant maps to a stable `code` that the binding exposes
//! to JavaScript unchanged, and each message names the file or argument at fault.

use std::io;
use std::path::PathBuf;

/// Every failure of the protocol core.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("timed out after {waited_ms} ms waiting for the response to request {request_id}")]
    Timeout { request_id: String, waited_ms: u64 },

    #[error(
        "lock {} is held by {} (waited {waited_ms} ms); it is taken over once older than the stale-lock age",
        path.display(),
        holder_text(*holder)
    )]
    Locked {
        path: PathBuf,
        holder: Option<u32>,
        waited_ms: u64,
    },

    #[error(
        "replacing {}: another process holds the file open and would not let it be replaced for {waited_ms} ms ({source}); nothing was written",
        path.display()
    )]
    Busy {
        path: PathBuf,
        waited_ms: u64,
        source: io::Error,
    },

    /// A read of a message file came out shorter than the file is (a network or FUSE file
    /// system that cached an older size), again and again: nothing was written from it.
    #[error(
        "reading {}: {read} of its {size} bytes came through in {attempts} reads (the file system served a cut-off copy, as network shares do while they cache an older size); nothing was written, so no other writer's messages were dropped",
        path.display()
    )]
    ShortRead {
        path: PathBuf,
        read: u64,
        size: u64,
        attempts: u32,
    },

    /// Another error, passed on to one more caller (the sends of one batch share its failure).
    #[error("{text}")]
    Relayed { code: &'static str, text: String },

    #[error("lock {} cannot be used: {reason}", path.display())]
    BadLock { path: PathBuf, reason: String },

    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },

    #[error("{}: message {index}{}: {reason}", path.display(), id_text(id))]
    BadMessage {
        path: PathBuf,
        index: usize,
        id: Option<String>,
        reason: String,
    },

    #[error("{}: {size} bytes is larger than the {limit}-byte limit (maxFileBytes)", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    /// A message larger than this reader accepts, skipped (the messages around it are read).
    #[error("{}: message {index}{} is {size} bytes, more than this reader accepts ({limit} bytes for the whole file, maxFileBytes); skipped", path.display(), id.as_ref().map(|id| format!(" (id {id})")).unwrap_or_default())]
    MessageTooLarge {
        path: PathBuf,
        index: usize,
        id: Option<String>,
        size: u64,
        limit: u64,
    },

    /// A send that would make the outbox larger than its readers accept: refused before writing,
    /// since a reader that refuses the file would never get past it.
    #[error("{}: not sent: {}", path.display(), send_too_large_text(*message_bytes, *file_bytes, *limit))]
    SendTooLarge {
        path: PathBuf,
        /// The message at this index of the batch is too large by itself.
        index: Option<usize>,
        message_bytes: u64,
        file_bytes: u64,
        limit: u64,
    },

    #[error("{}: {}", path.display(), lost_text(*count, *certain))]
    Lost {
        path: PathBuf,
        count: Option<u64>,
        /// Whether messages were surely dropped, or only may have been (`EMAYBELOST`).
        certain: bool,
    },

    #[error("{}: {} sent before close() could not be written ({reason})", path.display(), messages(*count))]
    Unsent {
        path: PathBuf,
        count: usize,
        reason: String,
    },

    #[error("cannot watch {} for changes ({reason}); polling every {poll_ms} ms instead", dir.display())]
    Watch {
        dir: PathBuf,
        reason: String,
        poll_ms: u64,
    },

    #[error("{count} queued messages were dropped: more than {limit} were waiting for recv() (maxQueued)")]
    QueueOverflow { count: u64, limit: usize },

    #[error(
        "{} {reason}: other local users could read, inject or replace messages; fix the permissions or pass allowInsecure: true",
        path.display()
    )]
    Insecure { path: PathBuf, reason: String },

    #[error(
        "{}: the readers have not consumed {held} messages and the backlog limit is {limit} (maxBacklog); wait for them (sendAsync) or raise the limit",
        path.display()
    )]
    Backlog {
        path: PathBuf,
        held: usize,
        limit: usize,
    },

    #[error("the channel is closed")]
    Closed,

    #[error("{0}")]
    Invalid(String),

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("process {pid}"),
        None => "an unknown process".to_string(),
    }
}

fn id_text(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" (id {id})"),
        None => String::new(),
    }
}

fn messages(count: usize) -> String {
    match count {
        1 => "1 message".to_string(),
        n => format!("{n} messages"),
    }
}

fn lost_text(count: Option<u64>, certain: bool) -> String {
    match (count, certain) {
        (Some(1), _) => "1 message was dropped by the writer's cap before it was read".to_string(),
        (Some(n), _) => format!("{n} messages were dropped by the writer's cap before they were read"),
        (None, true) => "messages were dropped before they were read: nothing this reader had seen is left, and the writer had stopped keeping them for it (its acknowledgement had lapsed)".to_string(),
        (None, false) => "messages may have been dropped by the writer's cap before they were read: nothing this reader had seen is left and the file is full (as many new messages as the cap arrived, or more)".to_string(),
    }
}

impl ChannelError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ChannelError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The same failure, for another caller.
    pub fn relay(&self) -> ChannelError {
        ChannelError::Relayed {
            code: self.code(),
            text: self.to_string(),
        }
    }

    /// The stable code JavaScript sees as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Timeout { .. } => "ETIMEDOUT",
            ChannelError::Locked { .. } | ChannelError::BadLock { .. } => "ELOCKED",
            ChannelError::BadFile { .. } | ChannelError::BadMessage { .. } => "EBADMSG",
            ChannelError::TooLarge { .. }
            | ChannelError::SendTooLarge { .. }
            | ChannelError::MessageTooLarge { .. } => "EFBIG",
            ChannelError::Lost { certain: false, .. } => "EMAYBELOST",
            ChannelError::Lost { .. }
            | ChannelError::QueueOverflow { .. }
            | ChannelError::Unsent { .. } => "ELOST",
            ChannelError::Watch { .. } => "EWATCH",
            ChannelError::Closed => "ECLOSED",
            ChannelError::Insecure { .. } => "EPERM",
            ChannelError::Backlog { .. } => "ENOBUFS",
            ChannelError::Invalid(_) => "EINVAL",
            ChannelError::Busy { .. } => "EBUSY",
            ChannelError::ShortRead { .. } => "EAGAIN",
            ChannelError::Relayed { code, .. } => code,
            ChannelError::Io { source, .. } => io_code(source),
        }
    }
}

/// The POSIX name of an I/O error, as Node's own `fs` errors carry it.
pub fn io_code(error: &io::Error) -> &'static str {
    super::platform::error_code(error).unwrap_or(match error.kind() {
        io::ErrorKind::NotFound => "ENOENT",
        io::ErrorKind::PermissionDenied => "EACCES",
        io::ErrorKind::AlreadyExists => "EEXIST",
        io::ErrorKind::TimedOut => "ETIMEDOUT",
        _ => "EIO",
    })
}

pub type Result<T, E = ChannelError> = std::result::Result<T, E>;

/// Why a send was refused for its size, naming both sizes.
fn send_too_large_text(message_bytes: u64, file_bytes: u64, limit: u64) -> String {
    if message_bytes > limit {
        format!("the message is {message_bytes} bytes, larger than the {limit}-byte file limit its readers accept (maxFileBytes)")
    } else {
        format!("the file would be {file_bytes} bytes with this {message_bytes}-byte send, over the {limit}-byte limit its readers accept (maxFileBytes); wait until its readers consumed more")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_carry_posix_codes_and_the_path() {
        let error = ChannelError::io(
            "reading",
            "/x/inbox.json",
            super::super::platform::not_a_directory(),
        );
        assert_eq!(error.code(), "ENOTDIR");
        assert!(error.to_string().starts_with("reading /x/inbox.json: "));
    }

    #[test]
    fn locked_names_the_lock_file_and_the_holder() {
        let error = ChannelError::Locked {
            path: "/c/frontend_to_backend.lock".into(),
            holder: Some(4242),
            waited_ms: 500,
        };
        assert_eq!(error.code(), "ELOCKED");
        let text = error.to_string();
        assert!(text.contains("/c/frontend_to_backend.lock"), "{text}");
        assert!(text.contains("process 4242"), "{text}");
    }
}
