//! The channel's place on disk: which file is whose, creating the directory and files as the
//! reference does, and the checks that keep them private (at opening, and before each write or
//! read: the directory must still be the one checked).

use super::super::error::{ChannelError, Result};
use super::super::files::{create_new_with, read_message_file, stat};
use super::super::message::{decode_file, Entry, Message};
use super::super::platform::{self, FileIdentity};
use crate::protocol::sync::lock;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const BACKEND_OUTBOX: &str = "backend_to_frontend.json";
pub const FRONTEND_OUTBOX: &str = "frontend_to_backend.json";
pub const CHANNEL_INFO: &str = ".channel_info";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Frontend,
    Backend,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Frontend => "frontend",
            Role::Backend => "backend",
        }
    }

    pub(super) fn outbox_and_inbox(self) -> (&'static str, &'static str) {
        match self {
            Role::Frontend => (FRONTEND_OUTBOX, BACKEND_OUTBOX),
            Role::Backend => (BACKEND_OUTBOX, FRONTEND_OUTBOX),
        }
    }
}

/// The channel directory, resolved and checked once at opening, with its files named.
pub(super) struct Layout {
    /// The directory as the caller named it.
    pub given: PathBuf,
    /// The directory itself, links on the way resolved once, at opening.
    pub real: PathBuf,
    pub outbox: PathBuf,
    pub inbox: PathBuf,
}

impl Layout {
    /// Opens or creates the channel as the reference does: the directory, `.channel_info`, and
    /// both message files as `[]` when missing; refuses a directory that is not private.
    pub(super) fn prepare(
        given: &Path,
        role: Role,
        allow_insecure: bool,
        dir_mode: u32,
        file_mode: u32,
    ) -> Result<Layout> {
        if !allow_insecure {
            refuse_foreign_links(given)?;
        }
        create_channel_dir(given, dir_mode)?;
        // Work on the directory that was checked, wherever a link on the way points later.
        let real =
            platform::resolve_links(given).map_err(|e| ChannelError::io("resolving", given, e))?;
        if !allow_insecure {
            check_dir_is_private(&real)?;
        }
        let info = format!(
            "{{\n  \"created\": {},\n  \"protocol\": \"file-ipc\",\n  \"version\": \"1.0\"\n}}",
            super::super::message::now_ms()
        );
        create_if_missing(&real.join(CHANNEL_INFO), info.as_bytes(), file_mode)?;
        let (outbox_name, inbox_name) = role.outbox_and_inbox();
        for name in [outbox_name, inbox_name] {
            create_if_missing(&real.join(name), b"[]", file_mode)?;
        }
        Ok(Layout {
            given: given.to_path_buf(),
            outbox: real.join(outbox_name),
            inbox: real.join(inbox_name),
            real,
        })
    }
}

/// Which directory was checked: before each write (and read) it must still be the same one.
pub(super) struct DirGuard {
    dir: PathBuf,
    checked: Mutex<Option<FileIdentity>>,
    allow_insecure: bool,
}

impl DirGuard {
    pub(super) fn new(dir: &Path, allow_insecure: bool) -> Result<Self> {
        Ok(DirGuard {
            dir: dir.to_path_buf(),
            checked: Mutex::new(stat(dir)?.map(FileIdentity::without_times)),
            allow_insecure,
        })
    }

    /// One replaced since (the peer re-created the channel, or someone swapped it) is checked
    /// again and refused if it is not private: our messages would go where others can read or
    /// plant them.
    pub(super) fn check_unchanged(&self) -> Result<()> {
        let Some((now, true)) = platform::identity_at(&self.dir)
            .ok()
            .map(|(identity, is_file)| (identity.without_times(), !is_file))
        else {
            return Ok(()); // gone or not a directory: the write itself fails and says so
        };
        let mut checked = lock(&self.checked);
        if *checked != Some(now) {
            if !self.allow_insecure {
                check_dir_is_private(&self.dir)?;
            }
            *checked = Some(now);
        }
        Ok(())
    }
}

/// The valid messages of a message file, or none when it cannot be read.
pub(super) fn messages_in(path: &Path, max_file_bytes: u64) -> Vec<Message> {
    let Ok(Some((bytes, _))) = read_message_file(path, max_file_bytes) else {
        return Vec::new();
    };
    decode_file(&bytes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Valid(message) => Some(message),
            Entry::Invalid { .. } => None,
        })
        .collect()
}

fn create_channel_dir(dir: &Path, mode: u32) -> Result<()> {
    match platform::create_dir_all_private(dir, mode) {
        Ok(()) if dir.is_dir() => Ok(()),
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(ChannelError::io("creating directory", dir, e))
        }
        // A file where the directory should be: say so, not "File exists".
        _ => Err(ChannelError::io(
            "creating directory",
            dir,
            platform::not_a_directory(),
        )),
    }
}

/// Refuses a path with a symbolic link on the way that another user owns: they could re-point
/// it at a directory of theirs.
fn refuse_foreign_links(dir: &Path) -> Result<()> {
    match platform::foreign_link_on_the_way(dir) {
        Some((link, reason)) => Err(ChannelError::Insecure { path: link, reason }),
        None => Ok(()),
    }
}

/// Refuses a directory that other local users could write to or that belongs to someone else,
/// the way ssh treats `~/.ssh`: they could inject messages or swap our files.
pub fn check_dir_is_private(dir: &Path) -> Result<()> {
    match platform::dir_privacy_problem(dir) {
        Ok(None) => Ok(()),
        Ok(Some(reason)) => Err(ChannelError::Insecure {
            path: dir.to_path_buf(),
            reason,
        }),
        Err(e) => Err(ChannelError::io("checking", dir, e)),
    }
}

fn create_if_missing(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    match create_new_with(path, content, mode) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ChannelError::io("creating", path, e)),
    }
}
