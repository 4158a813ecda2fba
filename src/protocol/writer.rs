//! The process's writer thread: sends made through the promise API are written here, never on
//! the JavaScript thread or libuv's pool. Lock waits and retries are not slept through: a send
//! that finds the outbox locked, held open, or full is tried again later while the thread serves
//! other channels. Messages queued while a write is in flight go out together in the next write
//! (group commit): one lock, one read, one replace for all of them, in order.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock, Weak};
use std::time::Instant;

/// Something with queued writes: returns when it wants to be called again, if it does.
pub trait Flush: Send + Sync {
    fn flush(&self) -> Option<Instant>;
}

struct Schedule {
    /// Channels due at an instant (ties broken by arrival).
    due: BTreeMap<(Instant, u64), Weak<dyn Flush>>,
    next_seq: u64,
}

struct Writer {
    schedule: Mutex<Schedule>,
    wake: Condvar,
}

fn writer() -> &'static Writer {
    static WRITER: OnceLock<&'static Writer> = OnceLock::new();
    WRITER.get_or_init(|| {
        let writer: &'static Writer = Box::leak(Box::new(Writer {
            schedule: Mutex::new(Schedule {
                due: BTreeMap::new(),
                next_seq: 0,
            }),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("ipckit-writer".into())
            .spawn(move || writer.run())
            .expect("the writer thread starts");
        writer
    })
}

/// Asks the writer thread to call `target.flush()` at `at` (now, for new sends).
pub fn schedule(target: Weak<dyn Flush>, at: Instant) {
    let writer = writer();
    let mut schedule = lock(&writer.schedule);
    let seq = schedule.next_seq;
    schedule.next_seq += 1;
    schedule.due.insert((at, seq), target);
    drop(schedule);
    writer.wake.notify_one();
}

impl Writer {
    fn run(&self) {
        let mut schedule = lock(&self.schedule);
        loop {
            let Some((&(at, seq), _)) = schedule.due.first_key_value() else {
                schedule = self
                    .wake
                    .wait(schedule)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            };
            let now = Instant::now();
            if at > now {
                schedule = self
                    .wake
                    .wait_timeout(schedule, at - now)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
                continue;
            }
            let Some(target) = schedule.due.remove(&(at, seq)) else {
                continue;
            };
            drop(schedule);
            let again = target.upgrade().and_then(|alive| alive.flush());
            schedule = lock(&self.schedule);
            if let Some(at) = again {
                let seq = schedule.next_seq;
                schedule.next_seq += 1;
                schedule.due.insert((at, seq), target);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
