//! Windows: notify's ReadDirectoryChangesW watcher, one for the process. notify closes a
//! directory's handle on its own thread some time after `unwatch` returns, and until then the
//! directory cannot be removed (it stays behind, or removing it fails): callers remove it right
//! after `close()`, so `unwatch` here waits until notify reports the watch stopped.

use super::notify_hints::hints;
use super::Hint;
use crate::protocol::files::stat;
use crate::protocol::platform::FileIdentity;
use notify::windows::MetaEvent;
use notify::{ReadDirectoryChangesWatcher, RecursiveMode, Watcher as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest `unwatch` waits for notify's thread (it stops a watch in well under a millisecond).
const UNWATCH_WAIT: Duration = Duration::from_secs(1);

pub struct Watcher {
    watcher: ReadDirectoryChangesWatcher,
    /// notify's reports of its thread's work: a stopped watch (its handle closed), a wake-up.
    reports: Receiver<MetaEvent>,
    /// The directory each watch was started on. notify ends the watch of a directory deleted
    /// meanwhile itself, so only a watch of the same directory still there is waited for.
    started_on: HashMap<PathBuf, Option<FileIdentity>>,
}

impl Watcher {
    pub fn start(route: fn(Vec<Hint>)) -> Result<Watcher, String> {
        let (report, reports) = channel();
        let handler = move |event| route(hints(event));
        let watcher = ReadDirectoryChangesWatcher::create(Arc::new(Mutex::new(handler)), report)
            .map_err(|e| e.to_string())?;
        Ok(Watcher {
            watcher,
            reports,
            started_on: HashMap::new(),
        })
    }

    pub fn watch(&mut self, dir: &Path) -> Result<(), String> {
        self.watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())?;
        self.started_on.insert(dir.to_path_buf(), directory_at(dir));
        Ok(())
    }

    /// Watches `dir` afresh (it was re-created, or the OS ended the watch). The old watch ends
    /// first: notify's thread takes the two in order and acknowledges the new one.
    pub fn rewatch(&mut self, dir: &Path) -> Result<(), String> {
        self.started_on.remove(dir);
        let _ = self.watcher.unwatch(dir);
        self.watch(dir)
    }

    /// Stops watching `dir` and returns once its handle is closed (bounded by `UNWATCH_WAIT`).
    pub fn unwatch(&mut self, dir: &Path) {
        // Earlier reports (wake-ups, stops notify made itself) say nothing about this stop.
        while self.reports.try_recv().is_ok() {}
        let started_on = self.started_on.remove(dir).flatten();
        if self.watcher.unwatch(dir).is_err() {
            return;
        }
        if started_on.is_none() || directory_at(dir) != started_on {
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

/// What identifies the directory at `dir` now, if one is there.
fn directory_at(dir: &Path) -> Option<FileIdentity> {
    stat(dir).ok().flatten().map(FileIdentity::without_times)
}
