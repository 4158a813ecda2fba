//! Windows and macOS: the `notify` crate (ReadDirectoryChangesW, FSEvents), one watcher for the
//! process.

use super::Hint;
use notify::{EventKind, RecursiveMode, Watcher as _};
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

    pub fn unwatch(&mut self, dir: &Path) {
        let _ = self.0.unwatch(dir);
    }
}

fn hints(event: notify::Result<notify::Event>) -> Vec<Hint> {
    match event {
        // Our own reads of the inbox show up as access events: waking on them would make the
        // readers read in a loop.
        Ok(event) if matches!(event.kind, EventKind::Access(_)) => Vec::new(),
        // A rescan (a queue overflow) may hide any change.
        Ok(event) if event.need_rescan() || event.paths.is_empty() => vec![Hint::Everything],
        Ok(event) => event.paths.into_iter().map(Hint::Path).collect(),
        // A watcher error may have lost events of any directory.
        Err(_) => vec![Hint::Everything],
    }
}
