//! notify's events (Windows and macOS) as hints.

use super::Hint;
use notify::EventKind;

pub fn hints(event: notify::Result<notify::Event>) -> Vec<Hint> {
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
