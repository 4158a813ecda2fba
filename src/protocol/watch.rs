//! One directory watcher for the whole process (one inotify instance on Linux, however many
//! channels are open: the per-user limit is 128, shared with the user's other programs). Each
//! channel registers its directory and inbox; events are hints routed to the channels whose
//! inbox they may concern, which then re-read it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub type OnChange = Arc<dyn Fn() + Send + Sync>;

struct Interest {
    id: u64,
    inbox_name: Option<OsString>,
    on_change: OnChange,
}

/// The watcher, behind its own lock: notify's `watch()` waits for its event thread, which runs
/// `route`, so the lock `route` takes (the interests) is never held while calling the watcher.
fn watcher() -> &'static Mutex<Option<notify::RecommendedWatcher>> {
    static WATCHER: OnceLock<Mutex<Option<notify::RecommendedWatcher>>> = OnceLock::new();
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
    use notify::{RecursiveMode, Watcher};
    let mut watcher = lock(watcher());
    if watcher.is_none() {
        *watcher = Some(notify::recommended_watcher(route).map_err(|e| e.to_string())?);
    }
    if !lock(interests()).dirs.contains_key(dir) {
        let watching = watcher.as_mut().expect("created above");
        watching
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())?;
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
    Ok(Registration {
        id,
        dir: dir.to_path_buf(),
    })
}

impl Registration {
    /// Watches the directory afresh (it was re-created, or the OS ended the watch).
    pub fn rearm(&self) -> Result<(), String> {
        use notify::{RecursiveMode, Watcher};
        let mut watcher = lock(watcher());
        let Some(watching) = watcher.as_mut() else {
            return Err("no watcher".into());
        };
        let _ = watching.unwatch(&self.dir);
        watching
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        use notify::Watcher;
        let mut watcher = lock(watcher());
        let mut interests = lock(interests());
        let Some(list) = interests.dirs.get_mut(&self.dir) else {
            return;
        };
        list.retain(|interest| interest.id != self.id);
        if !list.is_empty() {
            return;
        }
        interests.dirs.remove(&self.dir);
        drop(interests);
        if let Some(watching) = watcher.as_mut() {
            let _ = watching.unwatch(&self.dir);
        }
    }
}

/// Hands an event to the channels it may concern (outside the registry's lock: they read their
/// inbox, and may register or drop registrations meanwhile).
fn route(event: notify::Result<notify::Event>) {
    let callbacks = interested(&event);
    for on_change in callbacks {
        on_change();
    }
}

fn interested(event: &notify::Result<notify::Event>) -> Vec<OnChange> {
    let registry = lock(interests());
    let everyone = || {
        registry
            .dirs
            .values()
            .flatten()
            .map(|interest| Arc::clone(&interest.on_change))
            .collect()
    };
    let event = match event {
        // Our own reads of the inbox show up as access events: waking on them would make the
        // readers read in a loop.
        Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => return Vec::new(),
        Ok(event) => event,
        // A watcher error may have lost events of any directory.
        Err(_) => return everyone(),
    };
    // A rescan (inotify's queue overflow) may hide any change.
    if event.need_rescan() || event.paths.is_empty() {
        return everyone();
    }
    let mut callbacks = Vec::new();
    for path in &event.paths {
        // An event naming a watched directory itself (ReadDirectoryChangesW's overflow comes as
        // an empty file name) may hide a change of any of its files.
        if let Some(interests) = registry.dirs.get(path) {
            callbacks.extend(interests.iter().map(|i| Arc::clone(&i.on_change)));
            continue;
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        if let Some(interests) = registry.dirs.get(dir) {
            callbacks.extend(
                interests
                    .iter()
                    .filter(|i| i.inbox_name.as_deref() == Some(name))
                    .map(|i| Arc::clone(&i.on_change)),
            );
        }
    }
    callbacks
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
