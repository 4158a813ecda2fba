//! File-system helpers shared by the reader and the writer. Whatever differs between operating
//! systems is in `platform`.

use super::error::{ChannelError, Result};
use super::platform::{self, FileIdentity};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Reads a message file, refusing anything that is not a regular file or is over `limit` bytes
/// before reading it whole. `Ok(None)` when the file does not exist. The file is open only while
/// it is read, and shared for replacing (Windows), so we never make a writer's rename fail.
pub fn read_message_file(path: &Path, limit: u64) -> Result<Option<(Vec<u8>, FileIdentity)>> {
    read_message_file_once(path, limit, false)
        .map(|read| read.map(|(bytes, identity, _)| (bytes, identity)))
}

/// How many times a cut-off read is tried again before giving up.
const CUT_OFF_READS: u32 = 6;

/// `read_message_file` for a file system that caches sizes (network shares, FUSE): the size is
/// asked of the file system itself before the read, and a read that comes out shorter than the
/// file is (a cut-off copy) is tried again, up to a few times over some 100 ms; still short:
/// `ShortRead` (`EAGAIN`). Never a cut-off copy taken for the whole file.
pub fn read_message_file_fresh(path: &Path, limit: u64) -> Result<Option<(Vec<u8>, FileIdentity)>> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let Some((bytes, identity, size)) = read_message_file_once(path, limit, true)? else {
            return Ok(None);
        };
        if bytes.len() as u64 >= size {
            return Ok(Some((bytes, identity)));
        }
        if attempts >= CUT_OFF_READS {
            return Err(ChannelError::ShortRead {
                path: path.into(),
                read: bytes.len() as u64,
                size,
                attempts,
            });
        }
        std::thread::sleep(Duration::from_millis(5) * attempts);
    }
}

/// One read of a message file, with the size the file system gave (asked afresh when `fresh`).
fn read_message_file_once(
    path: &Path,
    limit: u64,
    fresh: bool,
) -> Result<Option<(Vec<u8>, FileIdentity, u64)>> {
    let mut file = match platform::open_for_reading(path) {
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
    let size = if fresh {
        platform::fresh_len(&file).map_err(|e| ChannelError::io("reading", path, e))?
    } else {
        metadata.len()
    };
    if size > limit {
        return Err(ChannelError::TooLarge {
            path: path.into(),
            size,
            limit,
        });
    }
    let identity =
        platform::identity_of(&file).map_err(|e| ChannelError::io("reading", path, e))?;
    let mut bytes = Vec::with_capacity(size as usize + 1);
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
    Ok(Some((bytes, identity, size)))
}

/// Reads a message file larger than `limit` the only way that cannot exhaust memory: streamed,
/// each message that does not fit replaced by a stand-in (`message::compact_oversized`), so the
/// reader still gets the messages around it and reports the one it skipped.
pub fn read_oversized_message_file(path: &Path, limit: u64) -> Result<(Vec<u8>, FileIdentity)> {
    let file =
        platform::open_for_reading(path).map_err(|e| ChannelError::io("opening", path, e))?;
    let identity =
        platform::identity_of(&file).map_err(|e| ChannelError::io("reading", path, e))?;
    let bytes = super::message::compact_oversized(&file, limit).map_err(|reason| {
        ChannelError::BadFile {
            path: path.into(),
            reason,
        }
    })?;
    Ok((bytes, identity))
}

/// The identity of what is at `path` (a link is not followed), `None` when nothing is there.
pub fn stat(path: &Path) -> Result<Option<FileIdentity>> {
    match platform::identity_at(path) {
        Ok((identity, _)) => Ok(Some(identity)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ChannelError::io("checking", path, e)),
    }
}

/// Creates `path` afresh (never through a link planted there) with `mode`, writes `bytes`.
pub fn create_new_with(path: &Path, bytes: &[u8], mode: u32) -> io::Result<File> {
    let mut file = platform::create_new_file(path, mode)?;
    file.write_all(bytes)?;
    Ok(file)
}

pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `tmp` and puts it in place of `target` (`platform::replace`): readers see
/// the old or the new content, never a mix. A replace refused because another process holds the target open (Windows) is
/// retried for up to `patience`; `tmp` never outlives a failure.
pub fn replace_file(
    tmp: &Path,
    target: &Path,
    bytes: &[u8],
    mode: u32,
    patience: Duration,
) -> Result<()> {
    let file = match create_new_with(tmp, bytes, mode) {
        // Left over by a writer that died before its rename, or planted: we hold the lock.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_if_exists(tmp).map_err(|e| ChannelError::io("removing", tmp, e))?;
            create_new_with(tmp, bytes, mode)
        }
        other => other,
    }
    .map_err(|e| ChannelError::io("writing", tmp, e))?;
    let written = platform::identity_of(&file);
    drop(file);
    let written = written.map_err(|e| {
        let _ = fs::remove_file(tmp);
        ChannelError::io("writing", tmp, e)
    })?;
    // Rename only the file we wrote: someone may have swapped the temp path for a link.
    let (about_to_rename, is_file) =
        platform::identity_at(tmp).map_err(|e| ChannelError::io("checking", tmp, e))?;
    if !is_file || !about_to_rename.same_file(&written) {
        return Err(ChannelError::BadFile {
            path: tmp.into(),
            reason: "was replaced by another file or link while we wrote it; not renaming it"
                .into(),
        });
    }
    rename_with_retry(tmp, target, patience, |from, to| {
        platform::replace(from, to).map(drop)
    })
}

/// How `replace_file` puts a new version of a file in place in `dir`, found by doing it to two
/// scratch files there (a file system or sandbox may refuse a swap that should work).
pub fn probe_replace(dir: &Path) -> Result<platform::Replaced> {
    let stem = format!(".ipckit-replace-probe-{}", std::process::id());
    let (new, old) = (
        dir.join(format!("{stem}.tmp")),
        dir.join(format!("{stem}.json")),
    );
    let probe = || -> io::Result<platform::Replaced> {
        create_new_with(&old, b"[]", 0o600)?;
        create_new_with(&new, b"[]", 0o600)?;
        platform::replace(&new, &old)
    };
    let how = probe();
    let _ = remove_if_exists(&new);
    let _ = remove_if_exists(&old);
    how.map_err(|e| ChannelError::io("replacing", &old, e))
}

/// Renames `from` over `to`, retrying with a short backoff for up to `patience` while another
/// process holds `to` in a way that forbids replacing it. On failure `from` is removed and the
/// error is `EBUSY` (held) or the OS error.
pub fn rename_with_retry(
    from: &Path,
    to: &Path,
    patience: Duration,
    mut rename: impl FnMut(&Path, &Path) -> io::Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let error = match rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let held = platform::is_sharing_conflict(&error) && to.is_file();
        let waited = started.elapsed();
        if held && waited < patience {
            std::thread::sleep(pause.min(patience - waited));
            pause = (pause * 2).min(Duration::from_millis(16));
            continue;
        }
        let _ = fs::remove_file(from);
        return Err(if held {
            ChannelError::Busy {
                path: to.into(),
                waited_ms: waited.as_millis() as u64,
                source: error,
            }
        } else {
            ChannelError::io("replacing", to, error)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_millis(500);

    #[test]
    fn the_replace_probe_says_how_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let how = probe_replace(dir.path()).unwrap();
        // The same answer as a real replace there.
        fs::write(dir.path().join("a.json"), "[]").unwrap();
        fs::write(dir.path().join("a.tmp"), "[1]").unwrap();
        assert_eq!(
            platform::replace(&dir.path().join("a.tmp"), &dir.path().join("a.json")).unwrap(),
            how
        );
        fs::remove_file(dir.path().join("a.json")).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let err = probe_replace(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn reading_refuses_oversized_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        fs::write(&big, vec![b' '; 2048]).unwrap();
        let err = read_message_file(&big, 1024).unwrap_err();
        assert_eq!(err.code(), "EFBIG");
        assert!(err.to_string().contains("big.json"), "{err}");
        assert_eq!(
            read_message_file(&big, 4096).unwrap().unwrap().0.len(),
            2048
        );
        assert!(read_message_file(&dir.path().join("none"), 10)
            .unwrap()
            .is_none());
    }

    #[test]
    fn rename_retries_while_the_target_is_held_then_fails_with_ebusy() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&from, "new").unwrap();
        fs::write(&to, "old").unwrap();
        let mut failures = 3;
        rename_with_retry(&from, &to, PATIENCE, |a: &Path, b: &Path| {
            if failures > 0 {
                failures -= 1;
                return Err(platform::test_support::sharing_violation());
            }
            fs::rename(a, b)
        })
        .unwrap();
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");

        fs::write(&from, "newer").unwrap();
        let started = Instant::now();
        let err = rename_with_retry(
            &from,
            &to,
            Duration::from_millis(50),
            |_: &Path, _: &Path| Err(platform::test_support::sharing_violation()),
        )
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(err.code(), "EBUSY");
        assert!(err.to_string().contains(&to.display().to_string()), "{err}");
        assert!(!from.exists(), "the temporary file is removed");
        assert_eq!(fs::read_to_string(&to).unwrap(), "new");
    }

    #[test]
    fn other_rename_errors_fail_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        fs::write(&from, "x").unwrap();
        let started = Instant::now();
        let err = rename_with_retry(&from, &dir.path().join("no/such/dir"), PATIENCE, |a, b| {
            fs::rename(a, b)
        })
        .unwrap_err();
        assert!(started.elapsed() < PATIENCE);
        assert_eq!(err.code(), "ENOENT");
    }
}
