//! One directory watcher for the whole process (one inotify instance on Linux, however many
//! channels are open: the per-user limit is 128, shared with the user's other programs). Each
//! channel registers its directory and inbox; the OS backend (`inotify` on Linux, notify's
//! ReadDirectoryChangesW on Windows, `notify` elsewhere) reports paths that may have changed, and
//! these hints go to the channels whose inbox they may concern, which then re-read it.

#[cfg(target_os = "linux")]
mod inotify;
#[cfg(target_os = "linux")]
use self::inotify as backend;

#[cfg(not(target_os = "linux"))]
mod notify_hints;

#[cfg(all(not(target_os = "linux"), not(windows)))]
mod notify;
#[cfg(all(not(target_os = "linux"), not(windows)))]
use self::notify as backend;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use self::windows as backend;

use crate::protocol::sync::lock;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub type OnChange = Arc<dyn Fn() + Send + Sync>;

/// What a backend reports: a path that may have changed (a file of a watched directory, or the
/// directory itself), or that any change may have been missed (a queue overflow, an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    Path(PathBuf),
    Everything,
}

struct Interest {
    id: u64,
    inbox_name: Option<OsString>,
    on_change: OnChange,
}

/// The watcher, behind its own lock: a backend may wait for its event thread, which runs
/// `route`, so the lock `route` takes (the interests) is never held while calling the watcher.
fn watcher() -> &'static Mutex<Option<backend::Watcher>> {
    static WATCHER: OnceLock<Mutex<Option<backend::Watcher>>> = OnceLock::new();
    WATCHER.get_or_init(Mutex::default)
}

#[derive(Default)]
struct Interests {
    dirs: HashMap<PathBuf, Vec<Interest>>,
    next_id: u64,
}

fn interests() -> &'static Mutex<Interests> {
    static INTERESTS: OnceLock<Mutex<Interests>> = OnceLock::new();
    INTERESTS.get_or_init(Mutex::default)
}

/// A channel's interest in changes of its inbox; dropping it ends the interest (and the watch of
/// the directory with the last one).
pub struct Registration {
    id: u64,
    dir: PathBuf,
}

/// Calls `on_change` (on the watcher's thread) whenever something may have changed `inbox` in
/// `dir`. Fails with why the directory cannot be watched.
pub fn register(dir: &Path, inbox: &Path, on_change: OnChange) -> Result<Registration, String> {
    let mut watcher = lock(watcher());
    if watcher.is_none() {
        *watcher = Some(backend::Watcher::start(route)?);
    }
    if !lock(interests()).dirs.contains_key(dir) {
        watcher.as_mut().expect("created above").watch(dir)?;
    }
    let mut interests = lock(interests());
    let id = interests.next_id;
    interests.next_id += 1;
    interests
        .dirs
        .entry(dir.to_path_buf())
        .or_default()
        .push(Interest {
            id,
            inbox_name: inbox.file_name().map(|n| n.to_os_string()),
            on_change,
        });
    WATCHED.fetch_add(1, Ordering::Relaxed);
    #[cfg(test)]
    lock(&REGISTERED).push(dir.to_path_buf());
    Ok(Registration {
        id,
        dir: dir.to_path_buf(),
    })
}

impl Registration {
    /// Watches the directory afresh (it was re-created, or the OS ended the watch).
    pub fn rearm(&self) -> Result<(), String> {
        let mut watcher = lock(watcher());
        let Some(watching) = watcher.as_mut() else {
            return Err("no watcher".into());
        };
        watching.rewatch(&self.dir)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // On the watcher's thread (a channel's last reference released by a hint it handled),
        // the watcher's lock may be held by a thread that waits for this very thread: notify's
        // `watch` waits for its thread's acknowledgement (Windows), or joins it (macOS). The
        // interest ends on a thread of its own, which waits for the lock instead.
        if ROUTING.with(Cell::get) {
            let (id, dir) = (self.id, self.dir.clone());
            let spawned = std::thread::Builder::new()
                .name("ipckit-unwatch".into())
                .spawn(move || unregister(id, &dir));
            if spawned.is_ok() {
                return;
            }
        }
        unregister(self.id, &self.dir);
    }
}

/// Ends the interest `id` in `dir`, and the watch of `dir` with its last interest.
fn unregister(id: u64, dir: &Path) {
    let mut watcher = lock(watcher());
    let mut interests = lock(interests());
    let Some(list) = interests.dirs.get_mut(dir) else {
        return;
    };
    let before = list.len();
    list.retain(|interest| interest.id != id);
    WATCHED.fetch_sub(before - list.len(), Ordering::Relaxed);
    if !list.is_empty() {
        return;
    }
    interests.dirs.remove(dir);
    drop(interests);
    if let Some(watching) = watcher.as_mut() {
        watching.unwatch(dir);
    }
}

/// Watches the file now at `inbox` (of a registered directory) for changes made in place, by a
/// writer that does not replace it by rename. Call it before each read of such an inbox: a
/// change after it is announced, one before it is found by the read.
///
/// Only Linux needs it (notify's watches report such writes), and there it may wait for the
/// watcher's lock even on the watcher's own thread (a change read from there): the inotify
/// backend never waits for its thread while the lock is held, and a thread holding the lock
/// takes no channel's lock. Skipping the watch when the lock was busy left an in-place writer's
/// next writes to the safety re-read.
pub fn watch_file(inbox: &Path) {
    #[cfg(target_os = "linux")]
    if let Some(watching) = lock(watcher()).as_mut() {
        watching.watch_file(inbox);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = inbox;
}

/// How many inboxes the process watches (one per open channel with a watch).
pub fn watched_inboxes() -> usize {
    WATCHED.load(Ordering::Relaxed)
}

static WATCHED: AtomicUsize = AtomicUsize::new(0);

/// Every directory registered in this process so far (tests: who watched what, when).
#[cfg(test)]
static REGISTERED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How many times `dir` was registered in this process.
#[cfg(test)]
pub fn registrations_of(dir: &Path) -> usize {
    lock(&REGISTERED).iter().filter(|d| *d == dir).count()
}

/// Hands a batch of hints to the channels they may concern, each once (outside the registry's
/// lock: they read their inbox, and may register or drop registrations meanwhile).
fn route(hints: Vec<Hint>) {
    ROUTING.with(|routing| routing.set(true));
    for on_change in interested(&hints) {
        on_change();
    }
}

thread_local! {
    /// Set on the backend's event thread, the one that runs `route`.
    static ROUTING: Cell<bool> = const { Cell::new(false) };
}

fn interested(hints: &[Hint]) -> Vec<OnChange> {
    let registry = lock(interests());
    let mut called = HashSet::new();
    let mut callbacks = Vec::new();
    let mut call = |interest: &Interest| {
        if called.insert(interest.id) {
            callbacks.push(Arc::clone(&interest.on_change));
        }
    };
    for hint in hints {
        let path = match hint {
            Hint::Path(path) => path,
            Hint::Everything => {
                registry.dirs.values().flatten().for_each(&mut call);
                continue;
            }
        };
        // A watched directory itself (deleted, moved, or ReadDirectoryChangesW's overflow, which
        // comes as an empty file name) may hide a change of any of its files.
        if let Some(interests) = registry.dirs.get(path) {
            interests.iter().for_each(&mut call);
            continue;
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        if let Some(interests) = registry.dirs.get(dir) {
            interests
                .iter()
                .filter(|i| i.inbox_name.as_deref() == Some(name))
                .for_each(&mut call);
        }
    }
    callbacks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn counting() -> (Arc<AtomicUsize>, OnChange) {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        (
            count,
            Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    fn wait_for(count: &AtomicUsize, at_least: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while count.load(Ordering::SeqCst) < at_least {
            assert!(Instant::now() < deadline, "no hint came");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn hints_reach_the_channels_of_the_inbox_they_name_once_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("in.json");
        let (mine, on_mine) = counting();
        let (other, on_other) = counting();
        let _a = register(dir.path(), &inbox, on_mine).unwrap();
        let _b = register(dir.path(), &dir.path().join("out.json"), on_other).unwrap();
        let hints = vec![Hint::Path(inbox.clone()), Hint::Path(inbox.clone())];
        assert_eq!(interested(&hints).len(), 1);
        assert_eq!(interested(&[Hint::Path(dir.path().join("x.tmp"))]).len(), 0);
        // The directory itself, or everything: both channels.
        assert_eq!(interested(&[Hint::Path(dir.path().to_path_buf())]).len(), 2);
        assert!(interested(&[Hint::Everything]).len() >= 2);
        // A replace of the inbox by rename is announced; reads, and writes of other files (the
        // lock and temporary files of every write), are not.
        let replace = |name: &str| {
            std::fs::write(dir.path().join("x.tmp"), "[]").unwrap();
            std::fs::rename(dir.path().join("x.tmp"), dir.path().join(name)).unwrap();
        };
        replace("in.json");
        wait_for(&mine, 1);
        let after_replace = mine.load(Ordering::SeqCst);
        for _ in 0..20 {
            std::fs::read(&inbox).unwrap();
        }
        std::fs::write(dir.path().join("in.lock"), "1\n").unwrap();
        std::fs::remove_file(dir.path().join("in.lock")).unwrap();
        replace("out.json");
        replace("in.json");
        wait_for(&mine, after_replace + 1);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            mine.load(Ordering::SeqCst),
            after_replace + 1,
            "other changes woke it"
        );
        assert_eq!(other.load(Ordering::SeqCst), 1, "its own inbox, once");
    }

    /// Registers an interest in `inbox` that its own first hint releases (as a channel's last
    /// reference dropped on the watcher's thread); the receiver hears when that callback returned.
    fn released_by_its_first_hint(dir: &Path, inbox: &Path) -> std::sync::mpsc::Receiver<()> {
        let slot: Arc<Mutex<Option<Registration>>> = Arc::default();
        let (returned_tx, returned) = std::sync::mpsc::channel();
        let on_change: OnChange = {
            let slot = Arc::clone(&slot);
            Arc::new(move || {
                drop(lock(&slot).take());
                let _ = returned_tx.send(());
            })
        };
        *lock(&slot) = Some(register(dir, inbox, on_change).unwrap());
        returned
    }

    fn replace_by_rename(path: &Path) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, "[]").unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// A thread holding the watcher's lock may wait for the watcher's thread (notify's `watch`
    /// waits for its thread's acknowledgement): the last reference of a channel, dropped by a
    /// hint on that thread, must not wait for the lock (the Windows CI run that hung).
    #[test]
    fn a_registration_dropped_by_a_hint_does_not_wait_for_the_watchers_lock() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("in.json");
        let returned = released_by_its_first_hint(dir.path(), &inbox);
        let busy = lock(watcher());
        replace_by_rename(&inbox);
        let callback_returned = returned.recv_timeout(Duration::from_secs(10));
        drop(busy);
        assert!(
            callback_returned.is_ok(),
            "the watcher's thread waited for the watcher's lock"
        );
        // The interest still ends, and with it the watch of the directory.
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(interests()).dirs.contains_key(dir.path()) {
            assert!(Instant::now() < deadline, "the interest never ended");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The same with the real backend: hints drop registrations on the watcher's thread while
    /// another thread starts and ends watches (on Windows each start waits for that thread).
    #[test]
    fn registrations_dropped_by_hints_while_others_watch_and_unwatch_never_deadlock() {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut rounds = 0;
                while !done.load(Ordering::SeqCst) {
                    let dir = tempfile::tempdir().unwrap();
                    let (_, on_change) = counting();
                    drop(register(dir.path(), &dir.path().join("in.json"), on_change).unwrap());
                    rounds += 1;
                }
                rounds
            })
        };
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("in.json");
        for _ in 0..40 {
            let returned = released_by_its_first_hint(dir.path(), &inbox);
            replace_by_rename(&inbox);
            let callback_returned = returned.recv_timeout(Duration::from_secs(20));
            assert!(callback_returned.is_ok(), "the watcher's thread is stuck");
        }
        done.store(true, Ordering::SeqCst);
        assert!(churn.join().unwrap() > 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_inbox_watched_while_the_watcher_is_busy_still_announces_in_place_writes() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("in.json");
        std::fs::write(&inbox, "[]").unwrap();
        let (count, on_change) = counting();
        let _registration = register(dir.path(), &inbox, on_change).unwrap();
        // Another thread holds the watcher's lock (a channel opening or closing) meanwhile.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _busy = lock(watcher());
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        });
        held_rx.recv().unwrap();
        watch_file(&inbox);
        holder.join().unwrap();
        std::fs::write(&inbox, "[1]").unwrap();
        wait_for(&count, 1);
    }

    /// notify closes a directory's handle on its own thread after `unwatch`; until it has, the
    /// directory cannot be removed (a caller's `close()` then `rm -r` left it behind). A handle
    /// still open anywhere in the process makes an open that shares nothing fail.
    #[cfg(windows)]
    #[test]
    fn a_directory_no_longer_watched_is_let_go_at_once() {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let (_, on_change) = counting();
            drop(register(dir.path(), &dir.path().join("in.json"), on_change).unwrap());
            let alone = std::fs::OpenOptions::new()
                .read(true)
                .share_mode(0)
                .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
                .open(dir.path());
            assert!(alone.is_ok(), "still held: {alone:?}");
        }
    }
}
