//! The outbox lock, exactly the reference's: `<stem>.lock` created with O_CREAT|O_EXCL holding the
//! writer's PID and a newline, removed after the rename. Unlike the reference, a lock path that
//! is not a file fails at once instead of hanging, and a held lock names its holder.

use super::error::{ChannelError, Result};
use super::files::{create_new_with, read_message_file, stat};
use super::platform;
use super::platform::FileIdentity;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Our writers' OS lock (flock, LockFileEx), held with the lock file; released by closing,
    /// or by the OS when the process dies.
    _writers: Option<File>,
}

/// The file beside the reference's lock whose OS lock our writers take first. Among our writers
/// it makes taking over a stale lock file atomic: only the holder of the OS lock may judge and
/// remove the lock file. The reference's writers never remove a lock file they did not create.
pub fn writers_lock_path(lock_path: &Path) -> PathBuf {
    let mut name = lock_path.file_name().unwrap_or_default().to_os_string();
    name.push(".flock");
    lock_path.with_file_name(name)
}

impl LockGuard {
    pub fn acquire(path: &Path, timing: LockTiming, mode: u32) -> Result<LockGuard> {
        let started = Instant::now();
        let mut pause = Duration::from_micros(200);
        let mut wait = |waited: Duration| -> Result<()> {
            if waited >= timing.timeout {
                return Err(ChannelError::Locked {
                    path: path.to_path_buf(),
                    holder: read_holder(path),
                    waited_ms: waited.as_millis() as u64,
                });
            }
            std::thread::sleep(pause.min(timing.timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(10));
            Ok(())
        };
        let writers = match platform::open_or_create(&writers_lock_path(path), mode) {
            Ok(file) => match file.try_lock() {
                Ok(()) => Some(file),
                Err(TryLockError::WouldBlock) if timing.timeout.is_zero() => {
                    return Err(wait(started.elapsed()).expect_err("no patience: refused"));
                }
                Err(TryLockError::WouldBlock) => match wait_in_line(file, timing.timeout) {
                    Some(file) => Some(file),
                    None => {
                        return Err(wait(started.elapsed().max(timing.timeout))
                            .expect_err("out of time: refused"))
                    }
                },
                // No OS locks on this file system: the lock file alone protects the outbox.
                Err(TryLockError::Error(_)) => None,
            },
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => None,
            Err(e) => return Err(ChannelError::io("opening lock", path, e)),
        };
        let content = pid_line();
        let mut refusals_without_lock = 0;
        loop {
            match create_new_with(path, content, mode) {
                Ok(file) => {
                    let identity = platform::identity_of(&file).ok();
                    return Ok(LockGuard {
                        path: path.to_path_buf(),
                        identity,
                        _writers: writers,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                // sshfs answers a losing exclusive create with EPERM: held, when the lock file
                // is there (or was a moment ago: it may be gone by the time we look).
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    if stat(path)?.is_none() {
                        refusals_without_lock += 1;
                        if refusals_without_lock > 3 {
                            return Err(ChannelError::io("creating lock", path, e));
                        }
                        continue;
                    }
                }
                Err(e) => return Err(ChannelError::io("creating lock", path, e)),
            }
            if take_over_if_abandoned(path, timing.stale_after)? {
                continue;
            }
            wait(started.elapsed())?;
        }
    }
}

/// What the lock file holds: our PID and a newline (asked of the OS once: a system call per send
/// otherwise).
fn pid_line() -> &'static [u8] {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| format!("{}\n", std::process::id()))
        .as_bytes()
}

/// Waits for our writers' OS lock in the kernel's line, not by polling it: a poller that sleeps
/// between tries loses to writers that take the lock again within its sleep (one synchronous send
/// in ~15,000 starved for the whole timeout). The blocking wait runs on a helper thread so that
/// it can end at `patience`; one that gets the lock after its caller gave up lets it go at once
/// (dropping the file releases it). A holder that never lets go would keep such helpers waiting:
/// beyond a few of them at once, waits poll instead. `None`: not granted in time.
fn wait_in_line(file: File, patience: Duration) -> Option<File> {
    static WAITING_HELPERS: AtomicUsize = AtomicUsize::new(0);
    const MAX_WAITING_HELPERS: usize = 8;
    if WAITING_HELPERS.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING_HELPERS {
        WAITING_HELPERS.fetch_sub(1, Ordering::AcqRel);
        return poll_for(file, patience);
    }
    let (granted, grant) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("ipckit-lock-wait".into())
        .spawn(move || {
            if file.lock().is_ok() {
                let _ = granted.send(file);
            }
            WAITING_HELPERS.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        WAITING_HELPERS.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    grant.recv_timeout(patience).ok()
}

/// Tries the OS lock until `patience` runs out, pausing longer and longer (up to 10 ms).
fn poll_for(file: File, patience: Duration) -> Option<File> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(_)) => return None,
        }
        let waited = started.elapsed();
        if waited >= patience {
            return None;
        }
        std::thread::sleep(pause.min(patience - waited));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// What a lock file says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockState {
    /// The PID written in the file, when it holds one.
    pub holder: Option<u32>,
    /// How far the file's modification time is from now (either way: a time in the future is
    /// as suspicious as one long past).
    pub age: Duration,
    /// Why the writer that made it is gone and it may be taken over, if it is.
    pub abandoned: Option<&'static str>,
}

/// Judges the lock file at `path`: abandoned when its holder is a process that no longer exists
/// on this host (on a local file system, where the PID must be ours to check), or when its time
/// is more than `stale_after` from now. `Ok(None)` when there is no lock file.
pub fn judge(path: &Path, stale_after: Duration) -> io::Result<Option<LockState>> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let modified = metadata.modified().unwrap_or(now);
    let age = now
        .duration_since(modified)
        .or_else(|_| modified.duration_since(now))
        .unwrap_or_default();
    let holder = read_holder(path);
    let dead = holder.is_some_and(|pid| {
        pid != std::process::id()
            && !platform::process_alive(pid)
            && path.parent().is_some_and(platform::is_local_file_system)
    });
    let abandoned = if dead {
        Some("its holder is no longer running")
    } else if is_stale(age, stale_after) {
        Some("it is older than the stale-lock age")
    } else {
        None
    };
    Ok(Some(LockState {
        holder,
        age,
        abandoned,
    }))
}

/// Removes a lock whose writer is gone. Returns whether the caller should retry at once.
fn take_over_if_abandoned(path: &Path, stale_after: Duration) -> Result<bool> {
    let identity = match platform::identity_at(path) {
        Ok((_, false)) => {
            return Err(ChannelError::BadLock {
                path: path.to_path_buf(),
                reason: "it is not a regular file (a directory or a link is in the way); remove it"
                    .into(),
            })
        }
        Ok((identity, true)) => identity,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(ChannelError::io("checking lock", path, e)),
    };
    let state = match judge(path, stale_after) {
        Ok(Some(state)) => state,
        Ok(None) => return Ok(true),
        Err(e) => return Err(ChannelError::io("checking lock", path, e)),
    };
    if state.abandoned.is_none() {
        return Ok(false);
    }
    // Only remove the very lock we judged, not a fresh one a reference writer just made.
    if stat(path)? != Some(identity) {
        return Ok(true);
    }
    #[cfg(test)]
    tests::widen_the_takeover_race();
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(ChannelError::BadLock {
            path: path.to_path_buf(),
            reason: format!("it is abandoned but cannot be removed ({e})"),
        }),
    }
}

/// Whether a lock file whose time is this far from now was left by a dead writer.
pub fn is_stale(age: Duration, stale_after: Duration) -> bool {
    age > stale_after
}

/// The PID a lock file names, when it names one (read like the inbox: no link followed, no wait
/// on a FIFO, at most a few bytes).
pub fn read_holder(path: &Path) -> Option<u32> {
    let (bytes, _) = read_message_file(path, 64).ok()??;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
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

    thread_local! {
        static TAKEOVER_PAUSE: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
    }

    /// Fault injection: lets a test stretch the moment between judging a lock and removing it,
    /// where two writers taking over at once could both get in.
    pub(super) fn widen_the_takeover_race() {
        let pause = TAKEOVER_PAUSE.with(|p| p.get());
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }

    const QUICK: LockTiming = LockTiming {
        timeout: Duration::from_millis(100),
        stale_after: Duration::from_secs(5),
    };

    #[test]
    fn a_waiting_writer_is_not_starved_by_one_that_takes_the_lock_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("out.lock"));
        let timing = LockTiming {
            timeout: Duration::from_millis(500),
            stale_after: Duration::from_secs(5),
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        // A writer that holds the lock 5 ms at a time and takes it again at once.
        let hog = {
            let (path, stop, rounds) = (Arc::clone(&path), Arc::clone(&stop), Arc::clone(&rounds));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(guard) = LockGuard::acquire(&path, timing, 0o600) {
                        rounds.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(5));
                        drop(guard);
                    }
                }
            })
        };
        while rounds.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut refused = 0;
        for _ in 0..20 {
            match LockGuard::acquire(&path, timing, 0o600) {
                Ok(guard) => drop(guard),
                Err(_) => refused += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
        assert_eq!(
            refused, 0,
            "the waiting writer was starved {refused} times in 20"
        );
    }

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
        // A live holder: this very process (as another thread of it would be).
        let pid = std::process::id();
        fs::write(&path, format!("{pid}\n")).unwrap();
        let started = Instant::now();
        let err = LockGuard::acquire(&path, QUICK, 0o600).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(err.code(), "ELOCKED");
        let text = err.to_string();
        assert!(
            text.contains("x.lock") && text.contains(&format!("process {pid}")),
            "{text}"
        );
    }

    /// The PID of a process that has exited: this test binary, run to list its tests.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let dead = dead_pid();
        fs::write(&path, format!("{dead}\n")).unwrap();
        let patient = LockTiming {
            timeout: Duration::from_secs(30),
            stale_after: Duration::from_secs(60),
        };
        let started = Instant::now();
        let guard = LockGuard::acquire(&path, patient, 0o600).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let state = judge(&path, patient.stale_after).unwrap().unwrap();
        assert_eq!(state.holder, Some(std::process::id()));
        assert_eq!(state.abandoned, None);
        drop(guard);
        assert_eq!(judge(&path, patient.stale_after).unwrap(), None);
    }

    #[test]
    fn a_lock_dated_in_the_future_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        fs::write(&path, "garbage\n").unwrap();
        let future = SystemTime::now() + Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(future)
            .unwrap();
        let state = judge(&path, QUICK.stale_after).unwrap().unwrap();
        assert!(state.age > Duration::from_secs(3000));
        assert_eq!(state.abandoned, Some("it is older than the stale-lock age"));
        drop(LockGuard::acquire(&path, QUICK, 0o600).unwrap());
    }

    /// Writers that die holding the lock, over and over, while four threads take turns: taking
    /// over an abandoned lock must never let two writers in.
    #[test]
    fn concurrent_takeovers_of_abandoned_locks_keep_mutual_exclusion() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("x.lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dead = format!("{}\n", dead_pid());
        let saboteur = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut planted = 0;
                while !done.load(Ordering::Relaxed) {
                    if create_new_with(&path, dead.as_bytes(), 0o600).is_ok() {
                        planted += 1;
                    }
                    // Paced: a saboteur re-planting without pause could win every race against
                    // the writers' own creation and starve them (not what this test is about).
                    std::thread::sleep(Duration::from_micros(500));
                }
                planted
            })
        };
        let patient = LockTiming {
            timeout: Duration::from_secs(30),
            stale_after: Duration::from_secs(60),
        };
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside) = (path.clone(), inside.clone());
                std::thread::spawn(move || {
                    TAKEOVER_PAUSE.with(|p| p.set(Duration::from_micros(300)));
                    for _ in 0..300 {
                        let _guard = LockGuard::acquire(&path, patient, 0o600).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two writers in");
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, Ordering::Relaxed);
        assert!(
            saboteur.join().unwrap() > 0,
            "no abandoned lock was planted"
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
