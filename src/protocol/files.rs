//! File-system helpers shared by the reader and the writer.

use super::error::{ChannelError, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// What identifies one version of a file without reading it. A file replaced by rename gets a
/// new inode, and any write changes size or times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileIdentity {
    pub fn of(metadata: &fs::Metadata) -> Self {
        FileIdentity {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.len(),
            mtime_ns: metadata.mtime() as i128 * 1_000_000_000 + metadata.mtime_nsec() as i128,
            ctime_ns: metadata.ctime() as i128 * 1_000_000_000 + metadata.ctime_nsec() as i128,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The identity of the inode alone (for directories, whose times change with every write).
    pub fn without_times(self) -> Self {
        FileIdentity {
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            ..self
        }
    }

    /// Whether a later change is sure to show in the identity. File times have a coarse clock, so
    /// a file changed within the same tick as our read could keep its identity (git's "racily
    /// clean" problem); such a version is re-read next time instead of trusted.
    pub fn is_settled(&self, read_at_ns: i128) -> bool {
        const CLOCK_SLACK_NS: i128 = 50_000_000;
        read_at_ns - self.mtime_ns.max(self.ctime_ns) > CLOCK_SLACK_NS
    }
}

pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Reads a message file, refusing anything that is not a regular file or is over `limit` bytes
/// before reading it whole. `Ok(None)` when the file does not exist.
pub fn read_message_file(path: &Path, limit: u64) -> Result<Option<(Vec<u8>, FileIdentity)>> {
    let mut file = match open_no_follow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ChannelError::io("opening", path, e)),
    };
    let metadata = file
        .metadata()
        .map_err(|e| ChannelError::io("reading", path, e))?;
    if !metadata.is_file() {
        return Err(ChannelError::BadFile {
            path: path.into(),
            reason: "is not a regular file".into(),
        });
    }
    if metadata.len() > limit {
        return Err(ChannelError::TooLarge {
            path: path.into(),
            size: metadata.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize + 1);
    // Read one byte past the limit so a file growing under us is still refused.
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ChannelError::io("reading", path, e))?;
    if bytes.len() as u64 > limit {
        return Err(ChannelError::TooLarge {
            path: path.into(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(Some((bytes, FileIdentity::of(&metadata))))
}

pub fn stat(path: &Path) -> Result<Option<FileIdentity>> {
    match fs::symlink_metadata(path) {
        Ok(metadata) => Ok(Some(FileIdentity::of(&metadata))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ChannelError::io("checking", path, e)),
    }
}

fn open_no_follow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Creates `path` afresh (never through a symlink planted there) with `mode`, writes `bytes`.
pub fn create_new_with(path: &Path, bytes: &[u8], mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(file)
}

pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `tmp` and renames it over `target`: readers see the old or the new content,
/// never a mix. A rename refused with EPERM/EACCES (Windows, while a reader holds the target open)
/// is retried briefly.
pub fn replace_file(tmp: &Path, target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let file = match create_new_with(tmp, bytes, mode) {
        // Left over by a writer that died before its rename, or planted: we hold the lock.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_if_exists(tmp).map_err(|e| ChannelError::io("removing", tmp, e))?;
            create_new_with(tmp, bytes, mode)
        }
        other => other,
    }
    .map_err(|e| ChannelError::io("writing", tmp, e))?;
    let written = file
        .metadata()
        .map_err(|e| ChannelError::io("writing", tmp, e))?;
    drop(file);
    // Rename only the file we wrote: someone may have swapped the temp path for a link.
    let about_to_rename =
        fs::symlink_metadata(tmp).map_err(|e| ChannelError::io("checking", tmp, e))?;
    if !about_to_rename.file_type().is_file() || about_to_rename.ino() != written.ino() {
        return Err(ChannelError::BadFile {
            path: tmp.into(),
            reason: "was replaced by another file or link while we wrote it; not renaming it"
                .into(),
        });
    }
    rename_with_retry(tmp, target, |from, to| fs::rename(from, to))
}

pub fn rename_with_retry(
    from: &Path,
    to: &Path,
    mut rename: impl FnMut(&Path, &Path) -> io::Result<()>,
) -> Result<()> {
    const ATTEMPTS: u32 = 20;
    let mut attempt = 0;
    loop {
        match rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e)
                if attempt + 1 < ATTEMPTS
                    && matches!(e.kind(), io::ErrorKind::PermissionDenied)
                    && to.is_file() =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                let _ = fs::remove_file(from);
                return Err(ChannelError::io("replacing", to, e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_refuses_to_write_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let tmp = dir.path().join("out.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        replace_file(&tmp, &dir.path().join("out.json"), b"[]", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            fs::read_to_string(dir.path().join("out.json")).unwrap(),
            "[]"
        );
    }

    #[test]
    fn reading_refuses_symlinks_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        fs::write(&big, vec![b' '; 2048]).unwrap();
        let err = read_message_file(&big, 1024).unwrap_err();
        assert_eq!(err.code(), "EFBIG");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert_eq!(read_message_file(&link, 4096).unwrap_err().code(), "ELOOP");
        assert!(read_message_file(&dir.path().join("none"), 10)
            .unwrap()
            .is_none());
    }

    #[test]
    fn rename_retries_transient_permission_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&from, "new").unwrap();
        fs::write(&to, "old").unwrap();
        let mut failures = 3;
        rename_with_retry(&from, &to, |a: &Path, b: &Path| {
            if failures > 0 {
                failures -= 1;
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            fs::rename(a, b)
        })
        .unwrap();
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");
        let err = rename_with_retry(&to, &from, |_: &Path, _: &Path| {
            Err(io::Error::from_raw_os_error(libc::EACCES))
        })
        .unwrap_err();
        assert_eq!(err.code(), "EACCES");
    }
}
