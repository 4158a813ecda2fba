//! The protocol floor of `npm run bench`: the least work the ipckit file protocol (PROTOCOL.md)
//! requires for a request and its response, in plain Rust, with none of the package's code.
//!
//! ```text
//! protocol-floor serve <dir> [--rename]                  the backend: answers every request with
//!                                                       a response carrying the request's
//!                                                       payload, until stdin closes
//! protocol-floor ping <dir> <count> <warmup> [--rename]  the frontend: `warmup + count` round
//!                                                       trips, one at a time; prints
//!                                                       {"samples_ms": [...]} (the last `count`)
//! ```
//!
//! A send is what the protocol asks of every writer: create `<stem>.lock` with O_EXCL and write
//! the PID into it, read and parse the outbox, append the message and keep the newest 100,
//! serialize the whole array (pretty, as the reference), write `<stem>.tmp`, put it in place of the
//! outbox, delete the lock. It is put in place as the package does: on Linux on ext4 or btrfs by
//! swapping the two (renameat2's `RENAME_EXCHANGE`) and removing the old one, which spares the
//! write-back these file systems start on a rename over a file (a swap refused there ends the
//! program, never a silent rename); elsewhere, and with `--rename`, by a rename. A receive: the reader blocks on the directory watcher (on Linux
//! inotify with only `IN_MOVED_TO`, the package's mask, read on a blocking descriptor; `notify`
//! elsewhere), and when its inbox was replaced it reads and parses the whole file and takes the
//! messages after the last one it saw (by id). Nothing else: no fsync, no acknowledgements, no presence, no threads in the way (the
//! thread that waits on the watcher does the work), and a payload is copied as the raw JSON text
//! it was read as (every message's envelope is decoded; the frontend decodes the response's
//! payload to check the echo).
//!
//! There is no polling fallback: if the watcher cannot be set up the process exits with code 3,
//! and a response not seen within 10 s (a missed wake-up) ends the frontend with code 4, so the
//! benchmark never reports a number from a slower mode.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::exit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The reference keeps the newest 100 messages of a file.
const CAP: usize = 100;
const FRONTEND_TO_BACKEND: &str = "frontend_to_backend.json";
const BACKEND_TO_FRONTEND: &str = "backend_to_frontend.json";

/// A message, its fields in the protocol's order; the payload stays the JSON text it was read as.
#[derive(Serialize, Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    timestamp: u64,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Payload<'a>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    error: Option<Cow<'a, str>>,
}

/// A payload read from a file (written back as the same text), or a new one.
#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Raw(&'a RawValue),
    New(serde_json::Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(deserializer).map(Payload::Raw)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// v4 UUIDs from a xorshift generator seeded once: the protocol asks for the format, not for a
/// system call per id.
struct Ids(u64);

impl Ids {
    fn new() -> Ids {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Ids(nanos ^ ((std::process::id() as u64) << 32) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn next(&mut self) -> String {
        let hi = (self.next_u64() & !0xf000) | 0x4000; // version 4
        let lo = (self.next_u64() & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

/// One end's files: the outbox it writes (with its lock and temporary file) and the inbox it reads.
struct Channel {
    outbox: PathBuf,
    lock: PathBuf,
    tmp: PathBuf,
    inbox: PathBuf,
    inbox_name: &'static str,
    pid_line: String,
    /// Whether the outbox is put in place by a swap (see the crate's documentation).
    swap: bool,
}

impl Channel {
    /// Opens one end as the protocol says: the directory, `.channel_info` and both files if missing.
    fn open(dir: &Path, frontend: bool, rename_only: bool) -> io::Result<Channel> {
        fs::create_dir_all(dir)?;
        let info = dir.join(".channel_info");
        if !info.exists() {
            let text = format!(
                "{{\n  \"created\": {},\n  \"protocol\": \"file-ipc\",\n  \"version\": \"1.0\"\n}}",
                now_ms()
            );
            fs::write(&info, text)?;
        }
        for name in [FRONTEND_TO_BACKEND, BACKEND_TO_FRONTEND] {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(name))
            {
                Ok(mut file) => file.write_all(b"[]")?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let (outbox, inbox) = if frontend {
            (FRONTEND_TO_BACKEND, BACKEND_TO_FRONTEND)
        } else {
            (BACKEND_TO_FRONTEND, FRONTEND_TO_BACKEND)
        };
        let stem = outbox.trim_end_matches(".json");
        Ok(Channel {
            outbox: dir.join(outbox),
            lock: dir.join(format!("{stem}.lock")),
            tmp: dir.join(format!("{stem}.tmp")),
            inbox: dir.join(inbox),
            inbox_name: inbox,
            pid_line: format!("{}\n", std::process::id()),
            swap: !rename_only && swap::flushes_on_rename(dir),
        })
    }

    /// Appends `new` to the outbox: lock, read + parse, append, keep 100, serialize, tmp, rename, unlock.
    fn send(&self, new: Vec<Message<'_>>) -> io::Result<()> {
        self.take_lock()?;
        let result = self.replace_outbox(new);
        let unlocked = fs::remove_file(&self.lock);
        result.and(unlocked)
    }

    fn replace_outbox(&self, new: Vec<Message<'_>>) -> io::Result<()> {
        let text = fs::read(&self.outbox)?;
        let mut list: Vec<Message<'_>> = serde_json::from_slice(&text)?;
        list.extend(new);
        if list.len() > CAP {
            list.drain(..list.len() - CAP);
        }
        let mut bytes = Vec::with_capacity(text.len() + 1024);
        serde_json::to_writer_pretty(&mut bytes, &list)?;
        fs::write(&self.tmp, &bytes)?;
        if self.swap {
            swap::exchange(&self.tmp, &self.outbox)?;
            fs::remove_file(&self.tmp)
        } else {
            fs::rename(&self.tmp, &self.outbox)
        }
    }

    /// The reference's lock: create-new, the PID inside; 50 tries 10 ms apart. (Nobody else writes
    /// this outbox here, so the stale-lock rule never comes into play.)
    fn take_lock(&self) -> io::Result<()> {
        let mut tries = 0;
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.lock)
            {
                Ok(mut file) => return file.write_all(self.pid_line.as_bytes()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads and parses the whole inbox into `buffer`'s messages.
    fn read_inbox<'b>(&self, buffer: &'b mut Vec<u8>) -> io::Result<Vec<Message<'b>>> {
        buffer.clear();
        fs::File::open(&self.inbox)?.read_to_end(buffer)?;
        Ok(serde_json::from_slice(buffer)?)
    }
}

/// The messages of `list` after the one with id `last` (all of them if it is not there).
fn after<'l, 'a>(list: &'l [Message<'a>], last: &str) -> &'l [Message<'a>] {
    match list.iter().rposition(|m| m.id == last) {
        Some(i) => &list[i + 1..],
        None => list,
    }
}

#[cfg(target_os = "linux")]
mod watcher {
    //! inotify on the directory, only `IN_MOVED_TO` (every writer of the protocol renames its file
    //! into place, and nothing else wakes the reader), on a blocking descriptor: one `read` per
    //! wake-up, nothing else.
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub struct Watcher {
        fd: libc::c_int,
        buffer: Vec<u8>,
    }

    impl Watcher {
        pub fn new(dir: &Path) -> io::Result<Watcher> {
            let path = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
            // SAFETY: plain system calls on a descriptor this struct owns.
            unsafe {
                let fd = libc::inotify_init1(libc::IN_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let mask = libc::IN_MOVED_TO | libc::IN_ONLYDIR;
                if libc::inotify_add_watch(fd, path.as_ptr(), mask) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(Watcher {
                    fd,
                    buffer: vec![0; 64 * 1024],
                })
            }
        }

        /// Blocks until `name` was renamed into the directory (or the queue overflowed).
        pub fn wait(&mut self, name: &str) -> io::Result<()> {
            const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
            loop {
                // SAFETY: reads into a buffer of the length given.
                let n = unsafe {
                    libc::read(self.fd, self.buffer.as_mut_ptr().cast(), self.buffer.len())
                };
                if n < 0 {
                    let error = io::Error::last_os_error();
                    if error.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(error);
                }
                let events = &self.buffer[..n as usize];
                let mut at = 0;
                let mut hit = false;
                while at + HEADER <= events.len() {
                    // SAFETY: the kernel wrote a whole event header here (unaligned read).
                    let event: libc::inotify_event =
                        unsafe { std::ptr::read_unaligned(events[at..].as_ptr().cast()) };
                    let names = &events[at + HEADER..at + HEADER + event.len as usize];
                    let event_name = names.split(|&b| b == 0).next().unwrap_or(&[]);
                    if event.mask & libc::IN_Q_OVERFLOW != 0 || event_name == name.as_bytes() {
                        hit = true;
                    }
                    at += HEADER + event.len as usize;
                }
                if hit {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod watcher {
    //! notify's watcher for the platform (FSEvents, ReadDirectoryChangesW, kqueue).
    use notify::{RecursiveMode, Watcher as _};
    use std::io;
    use std::path::Path;
    use std::sync::mpsc;

    pub struct Watcher {
        _watcher: notify::RecommendedWatcher,
        events: mpsc::Receiver<notify::Result<notify::Event>>,
    }

    impl Watcher {
        pub fn new(dir: &Path) -> io::Result<Watcher> {
            let (tx, events) = mpsc::channel();
            let mut watcher = notify::recommended_watcher(tx).map_err(io::Error::other)?;
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(io::Error::other)?;
            Ok(Watcher {
                _watcher: watcher,
                events,
            })
        }

        pub fn wait(&mut self, name: &str) -> io::Result<()> {
            loop {
                let event = self
                    .events
                    .recv()
                    .map_err(io::Error::other)?
                    .map_err(io::Error::other)?;
                if event.need_rescan() || event.paths.iter().any(|p| p.ends_with(name)) {
                    return Ok(());
                }
            }
        }
    }
}

fn watch(dir: &Path) -> watcher::Watcher {
    match watcher::Watcher::new(dir) {
        Ok(watcher) => watcher,
        Err(e) => {
            eprintln!(
                "protocol-floor: cannot watch {}: {e}; not reporting a polling number",
                dir.display()
            );
            exit(3)
        }
    }
}

/// The backend: answers each new request with a response that carries its payload.
fn serve(dir: &Path, rename_only: bool) -> io::Result<()> {
    let channel = Channel::open(dir, false, rename_only)?;
    let mut watcher = watch(dir);
    // Ends when the benchmark closes stdin.
    std::thread::spawn(|| {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        exit(0)
    });
    println!("ready");
    let mut ids = Ids::new();
    let mut buffer = Vec::new();
    let mut last = String::new();
    loop {
        watcher.wait(channel.inbox_name)?;
        let list = channel.read_inbox(&mut buffer)?;
        let fresh = after(&list, &last);
        let Some(newest) = fresh.last() else {
            continue;
        };
        let responses: Vec<Message<'_>> = fresh
            .iter()
            .filter(|m| m.kind == "request")
            .map(|request| Message {
                id: Cow::Owned(ids.next()),
                timestamp: now_ms(),
                kind: Cow::Borrowed("response"),
                reply_to: Some(request.id.clone()),
                method: None,
                payload: match &request.payload {
                    Payload::Raw(raw) => Payload::Raw(raw),
                    Payload::New(value) => Payload::New(value.clone()),
                },
                error: None,
            })
            .collect();
        last = newest.id.to_string();
        if !responses.is_empty() {
            channel.send(responses)?;
        }
    }
}

/// The frontend: `warmup + count` round trips; the times of the last `count`, in ms.
fn ping(dir: &Path, count: usize, warmup: usize, rename_only: bool) -> io::Result<Vec<f64>> {
    let channel = Channel::open(dir, true, rename_only)?;
    let mut watcher = watch(dir);
    let done = Arc::new(AtomicU64::new(0));
    let progress = Arc::clone(&done);
    std::thread::spawn(move || {
        let mut seen = u64::MAX;
        loop {
            std::thread::sleep(Duration::from_secs(10));
            let now = progress.load(Ordering::Relaxed);
            if now == seen {
                eprintln!("protocol-floor: no response within 10 s (a missed wake-up; this floor never polls)");
                exit(4)
            }
            seen = now;
        }
    });
    let mut ids = Ids::new();
    let mut buffer = Vec::new();
    let mut samples = Vec::with_capacity(count);
    for seq in 0..warmup + count {
        let started = Instant::now();
        let id = ids.next();
        let request = Message {
            id: Cow::Borrowed(&id),
            timestamp: now_ms(),
            kind: Cow::Borrowed("request"),
            reply_to: None,
            method: Some(Cow::Borrowed("echo")),
            payload: Payload::New(serde_json::json!({ "text": "hello", "n": 42, "seq": seq })),
            error: None,
        };
        channel.send(vec![request])?;
        loop {
            watcher.wait(channel.inbox_name)?;
            let list = channel.read_inbox(&mut buffer)?;
            let Some(response) = list
                .iter()
                .rev()
                .find(|m| m.reply_to.as_deref() == Some(&id))
            else {
                continue;
            };
            let Payload::Raw(raw) = &response.payload else {
                unreachable!("read from a file")
            };
            let echo: serde_json::Value = serde_json::from_str(raw.get())?;
            if echo["seq"] != seq {
                return Err(io::Error::other(format!("bad echo for {seq}: {echo}")));
            }
            break;
        }
        if seq >= warmup {
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(samples)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let rename_only = args.iter().any(|a| a == "--rename");
    args.retain(|a| a != "--rename");
    let number = |i: usize| -> usize {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            eprintln!("usage: protocol-floor ping <dir> <count> <warmup>");
            exit(2)
        })
    };
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("serve"), Some(dir)) => serve(Path::new(dir), rename_only),
        (Some("ping"), Some(dir)) => {
            ping(Path::new(dir), number(2), number(3), rename_only).map(|samples| {
                let list: Vec<String> = samples.iter().map(|s| format!("{s:.6}")).collect();
                println!("{{\"samples_ms\": [{}]}}", list.join(", "));
            })
        }
        _ => {
            eprintln!(
                "usage: protocol-floor serve <dir> | protocol-floor ping <dir> <count> <warmup>"
            );
            exit(2)
        }
    };
    if let Err(e) = result {
        eprintln!("protocol-floor: {e}");
        exit(1)
    }
}

/// Replacing by swapping (Linux): see the crate's documentation.
mod swap {
    use std::io;
    use std::path::Path;

    /// Whether the file system of `path` is ext2/3/4 or btrfs.
    #[cfg(target_os = "linux")]
    pub fn flushes_on_rename(path: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return false;
        };
        let mut info: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(path.as_ptr(), &mut info) } != 0 {
            return false;
        }
        matches!(info.f_type as u64 & 0xFFFF_FFFF, 0xEF53 | 0x9123_683E)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn flushes_on_rename(_path: &Path) -> bool {
        false
    }

    #[cfg(target_os = "linux")]
    pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
        let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
        let flags = libc::RENAME_EXCHANGE;
        let done = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                flags,
            )
        };
        if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
        unreachable!("only Linux swaps")
    }
}
