//! The outbox lock, exactly the reference's: `<stem>.lock` created with O_CREAT|O_EXCL holding the
//! writer's PID and a newline, removed after the rename. Unlike the reference, a lock path that
//! is not a file fails at once instead of hanging, and a held lock names its holder.

use super::error::{ChannelError, Result};
use super::files::{create_new_with, stat, FileIdentity};
use super::platform;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy)]
pub struct LockTiming {
    /// How long to keep retrying a lock held by a live writer.
    pub timeout: Duration,
    /// A lock file older than this is left over by a dead writer and is taken over.
    pub stale_after: Duration,
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    identity: Option<FileIdentity>,
}

impl LockGuard {
    pub fn acquire(path: &Path, timing: LockTiming, mode: u32) -> Result<LockGuard> {
        let started = Instant::now();
        let content = format!("{}\n", std::process::id());
        let mut pause = Duration::from_micros(200);
        loop {
            match create_new_with(path, content.as_bytes(), mode) {
                Ok(file) => {
                    let identity = platform::identity_of(&file).ok();
                    return Ok(LockGuard {
                        path: path.to_path_buf(),
                        identity,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(ChannelError::io("creating lock", path, e)),
            }
            if take_over_if_stale(path, timing.stale_after)? {
                continue;
            }
            let waited = started.elapsed();
            if waited >= timing.timeout {
                return Err(ChannelError::Locked {
                    path: path.to_path_buf(),
                    holder: read_holder(path),
                    waited_ms: waited.as_millis() as u64,
                });
            }
            std::thread::sleep(pause.min(timing.timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

/// Removes a lock whose writer is gone. Returns whether the caller should retry at once.
fn take_over_if_stale(path: &Path, stale_after: Duration) -> Result<bool> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(ChannelError::io("checking lock", path, e)),
    };
    let judged = match platform::identity_at(path) {
        Ok((identity, _)) => identity,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(ChannelError::io("checking lock", path, e)),
    };
    if !metadata.file_type().is_file() {
        return Err(ChannelError::BadLock {
            path: path.to_path_buf(),
            reason: "it is not a regular file (a directory or a link is in the way); remove it"
                .into(),
        });
    }
    let age = metadata
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age <= stale_after {
        return Ok(false);
    }
    // Only remove the very lock we judged stale, not a fresh one another writer just made.
    if stat(path)? != Some(judged) {
        return Ok(true);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(ChannelError::BadLock {
            path: path.to_path_buf(),
            reason: format!("it is stale but cannot be removed ({e})"),
        }),
    }
}

fn read_holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // A writer that outlived the stale age may have lost its lock: leave the new holder's.
        if self.identity.is_none() || stat(&self.path).ok().flatten() == self.identity {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const QUICK: LockTiming = LockTiming {
        timeout: Duration::from_millis(100),
        stale_after: Duration::from_secs(5),
    };

    #[test]
    fn lock_file_holds_pid_and_newline_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let guard = LockGuard::acquire(&path, QUICK, 0o600).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn held_lock_times_out_naming_file_and_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::write(&path, "4242\n").unwrap();
        let started = Instant::now();
        let err = LockGuard::acquire(&path, QUICK, 0o600).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(err.code(), "ELOCKED");
        let text = err.to_string();
        assert!(
            text.contains("x.lock") && text.contains("process 4242"),
            "{text}"
        );
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::write(&path, "1\n").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let guard = LockGuard::acquire(&path, QUICK, 0o600).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(guard);
    }

    #[test]
    fn a_directory_in_the_way_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::create_dir(&path).unwrap();
        let started = Instant::now();
        let err = LockGuard::acquire(
            &path,
            LockTiming {
                timeout: Duration::from_secs(30),
                ..QUICK
            },
            0o600,
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(err.code(), "ELOCKED");
        assert!(err.to_string().contains("not a regular file"));
    }

    #[test]
    fn lock_gives_mutual_exclusion_between_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("x.lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside) = (path.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let timing = LockTiming {
                            timeout: Duration::from_secs(10),
                            ..QUICK
                        };
                        let _guard = LockGuard::acquire(&path, timing, 0o600).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    }
}
