//! Linux: one inotify instance and one thread for every watched directory. The mask asks only
//! for what puts new messages into an inbox, a file renamed over it (every writer of the
//! protocol replaces the file by rename), and for the directory's own end: opens, reads, writes
//! of lock and temporary files and attribute changes do not wake the thread (notify's fixed mask
//! includes them all: six or more wake-ups per message, a round trip's most frequent). What the
//! mask leaves out (a file written in place, such as the reference's `clear()`) is found by the
//! channels' safety re-reads, unless it is a watched inbox: a channel whose inbox's writer may
//! write in place (until a read finds new messages in a replaced file, and again once they come
//! in the same file) also watches the inbox file for close-after-write (`watch_file`). Not for a
//! writer that renames: replacing a watched file makes the kernel tear its watch down through a
//! worker thread on every rename, a wake-up measured at 40-85 µs of a round trip.

use super::Hint;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MASK: WatchMask = WatchMask::MOVED_TO
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::EXCL_UNLINK);

/// What a watched inbox file raises when written in place.
const FILE_MASK: WatchMask = WatchMask::CLOSE_WRITE;

/// What each watch descriptor watches, and whether it is an inbox file (else a directory).
type Directories = Arc<Mutex<HashMap<WatchDescriptor, (PathBuf, bool)>>>;

pub struct Watcher {
    watches: Watches,
    /// What each watch descriptor watches (a directory, or an inbox file), shared with the
    /// event thread.
    directories: Directories,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

impl Watcher {
    pub fn start(route: fn(Vec<Hint>)) -> Result<Watcher, String> {
        let mut inotify = Inotify::init().map_err(|e| format!("inotify_init1: {e}"))?;
        // Blocking reads on the thread below: `read_events_blocking` would switch the
        // descriptor to blocking and back around every read (four system calls per wake-up).
        crate::protocol::platform::set_blocking(inotify.as_raw_fd())
            .map_err(|e| format!("fcntl: {e}"))?;
        let watches = inotify.watches();
        let directories = Directories::default();
        let known = Arc::clone(&directories);
        std::thread::Builder::new()
            .name("ipckit-watch".into())
            .spawn(move || {
                crate::protocol::platform::give_way_to_javascript();
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let events = match inotify.read_events(&mut buffer) {
                        Ok(events) => events,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        // The instance is unusable: every channel re-reads, and their safety
                        // re-reads find what this watcher no longer announces.
                        Err(_) => return route(vec![Hint::Everything]),
                    };
                    let mut hints = Vec::new();
                    let mut directories = super::lock(&known);
                    for event in events {
                        if event.mask.contains(EventMask::Q_OVERFLOW) {
                            hints.push(Hint::Everything);
                            continue;
                        }
                        let Some((path, is_file)) = directories.get(&event.wd).cloned() else {
                            continue;
                        };
                        let ended = event.mask.contains(EventMask::IGNORED);
                        if ended {
                            directories.remove(&event.wd);
                        }
                        // A watched inbox replaced by rename ends its file watch: the rename
                        // itself tells of the change.
                        if is_file && ended {
                            continue;
                        }
                        hints.push(Hint::Path(match event.name {
                            Some(name) => path.join(name),
                            None => path,
                        }));
                    }
                    drop(directories);
                    if !hints.is_empty() {
                        route(hints);
                    }
                }
            })
            .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        Ok(Watcher {
            watches,
            directories,
            by_path: HashMap::new(),
        })
    }

    pub fn watch(&mut self, dir: &Path) -> Result<(), String> {
        // Under the map's lock, so that the first events find the directory.
        let mut directories = super::lock(&self.directories);
        let wd = self
            .watches
            .add(dir, MASK)
            .map_err(|e| format!("inotify_add_watch: {e}"))?;
        directories.insert(wd.clone(), (dir.to_path_buf(), false));
        self.by_path.insert(dir.to_path_buf(), wd);
        Ok(())
    }

    /// Watches `dir` afresh (it was re-created, or the OS ended the watch).
    pub fn rewatch(&mut self, dir: &Path) -> Result<(), String> {
        self.unwatch(dir);
        self.watch(dir)
    }

    pub fn unwatch(&mut self, dir: &Path) {
        // The inbox files of the directory go with it.
        let files: Vec<PathBuf> = self
            .by_path
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .cloned()
            .collect();
        for path in files.iter().map(PathBuf::as_path).chain([dir]) {
            if let Some(wd) = self.by_path.remove(path) {
                super::lock(&self.directories).remove(&wd);
                // Fails when the OS ended the watch already (the file or directory is gone).
                let _ = self.watches.remove(wd);
            }
        }
    }

    /// Watches the file now at `inbox` for close-after-write (a writer that does not rename).
    /// Cheap to repeat: the same file keeps its watch.
    pub fn watch_file(&mut self, inbox: &Path) {
        let mut directories = super::lock(&self.directories);
        let Ok(wd) = self.watches.add(inbox, FILE_MASK) else {
            return; // gone meanwhile: the directory's watch sees what comes next
        };
        directories.insert(wd.clone(), (inbox.to_path_buf(), true));
        self.by_path.insert(inbox.to_path_buf(), wd);
    }
}
