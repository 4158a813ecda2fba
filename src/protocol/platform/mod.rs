//! Everything that differs between operating systems, behind one interface: how files are opened
//! and created, what identifies a version of a file, whether a process is alive, the host name,
//! the privacy policy for the channel directory, and OS error codes. The rest of the core is
//! written once, against these functions.

mod identity;
pub use identity::FileIdentity;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

pub use os::{
    create_dir_all_private, create_new_file, dir_privacy_problem, error_code,
    foreign_link_on_the_way, fresh_len, give_way_to_javascript, host_name, identity_at,
    identity_of, is_local_file_system, is_sharing_conflict, not_a_directory, open_for_reading,
    open_or_create, process_alive, process_start_ms, process_started, replace, resolve_links,
    OPEN_FILES_PIN_THEIR_DIRECTORY,
};

/// How `replace` put a new file in place of an old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// Renamed over it.
    Renamed,
    /// Swapped with it (renameat2's `RENAME_EXCHANGE`), the old one then removed.
    Swapped,
}

#[cfg(target_os = "linux")]
pub use os::set_blocking;

#[cfg(test)]
pub use os::test_support;
