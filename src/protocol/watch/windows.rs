//! Windows: notify's ReadDirectoryChangesW watcher, one for the process. notify closes a
//! directory's handle on its own thread some time after `unwatch` returns, and until then the
//! directory cannot be removed (it stays behind, or removing it fails): callers remove it right
//! after `close()`, so `unwatch` here waits until notify reports the watch stopped.

use super::notify_hints::hints;
use super::Hint;
use notify::windows::MetaEvent;
use notify::{ReadDirectoryChangesWatcher, RecursiveMode, Watcher as _};
use std::cell::Cell;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest `unwatch` waits for notify's thread (it stops a watch in well under a millisecond;
/// a stop that notify made on its own, for a deleted directory, may leave nothing to wait for).
const UNWATCH_WAIT: Duration = Duration::from_secs(1);

thread_local! {
    /// Set on notify's thread: a watch dropped from there (a channel's last reference released
    /// by a hint it was handling) stops only after this thread returns, so it is not waited for.
    static ON_WATCHER_THREAD: Cell<bool> = const { Cell::new(false) };
}

pub struct Watcher {
    watcher: ReadDirectoryChangesWatcher,
    /// notify's reports of its thread's work: a stopped watch (its handle closed), a wake-up.
    reports: Receiver<MetaEvent>,
}

impl Watcher {
    pub fn start(route: fn(Vec<Hint>)) -> Result<Watcher, String> {
        let (report, reports) = channel();
        let handler = move |event| {
            ON_WATCHER_THREAD.with(|flag| flag.set(true));
            route(hints(event));
        };
        let watcher = ReadDirectoryChangesWatcher::create(Arc::new(Mutex::new(handler)), report)
            .map_err(|e| e.to_string())?;
        Ok(Watcher { watcher, reports })
    }

    pub fn watch(&mut self, dir: &Path) -> Result<(), String> {
        self.watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())
    }

    /// Stops watching `dir` and returns once its handle is closed (bounded by `UNWATCH_WAIT`).
    pub fn unwatch(&mut self, dir: &Path) {
        // Earlier reports (wake-ups, stops notify made itself) say nothing about this stop.
        while self.reports.try_recv().is_ok() {}
        if self.watcher.unwatch(dir).is_err() || ON_WATCHER_THREAD.with(Cell::get) {
            return;
        }
        // A deleted directory's watch is stopped by notify itself, maybe before this call.
        if !dir.is_dir() {
            return;
        }
        let deadline = Instant::now() + UNWATCH_WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.reports.recv_timeout(left) {
                Ok(MetaEvent::SingleWatchComplete) | Err(_) => return,
                Ok(MetaEvent::WatcherAwakened) => {}
            }
        }
    }
}
