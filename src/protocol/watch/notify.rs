//! macOS (and other Unixes without inotify): the `notify` crate (FSEvents, kqueue), one watcher
//! for the process.

use super::notify_hints::hints;
use super::Hint;
use notify::{RecursiveMode, Watcher as _};
use std::path::Path;

pub struct Watcher(notify::RecommendedWatcher);

impl Watcher {
    pub fn start(route: fn(Vec<Hint>)) -> Result<Watcher, String> {
        let watcher = notify::recommended_watcher(move |event| route(hints(event)))
            .map_err(|e| e.to_string())?;
        Ok(Watcher(watcher))
    }

    pub fn watch(&mut self, dir: &Path) -> Result<(), String> {
        self.0
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| e.to_string())
    }

    /// Watches `dir` afresh (it was re-created, or the OS ended the watch).
    pub fn rewatch(&mut self, dir: &Path) -> Result<(), String> {
        self.unwatch(dir);
        self.watch(dir)
    }

    pub fn unwatch(&mut self, dir: &Path) {
        let _ = self.0.unwatch(dir);
    }
}
