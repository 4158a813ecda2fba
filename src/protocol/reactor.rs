//! The process's two worker threads, shared by every channel (no thread per channel):
//!
//! - the **dispatcher** reads inboxes on deadlines and safety checks, expires waits and re-arms
//!   watches (inbox changes themselves are handled on the shared watcher's thread, `watch`);
//! - the **writer** writes sends queued by the promise API, never on the JavaScript thread or
//!   libuv's pool. Lock waits and retries are not slept through: a send that finds the outbox
//!   locked, held open, or full is tried again later while the thread serves other channels.
//!   Messages queued while a write is in flight go out together in the next write (group
//!   commit): one lock, one read, one replace for all of them, in order.
//!
//! Each is a deadline schedule: a job per key (a channel), run when due, that says when it wants
//! to run again. Scheduling a key that is already due later moves it earlier: a new, earlier
//! deadline wakes the thread exactly.

use crate::protocol::sync::lock;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// A job: runs, and returns when it wants to run again, if it does.
pub type Job = Arc<dyn Fn() -> Option<Instant> + Send + Sync>;

#[derive(Default)]
struct Schedule {
    due: BTreeMap<(Instant, u64), ()>,
    jobs: HashMap<u64, (Instant, Job)>,
}

pub struct Scheduler {
    schedule: Mutex<Schedule>,
    wake: Condvar,
}

/// The dispatcher thread.
pub fn dispatcher() -> &'static Scheduler {
    static DISPATCHER: OnceLock<&'static Scheduler> = OnceLock::new();
    DISPATCHER.get_or_init(|| Scheduler::start("ipckit-dispatch"))
}

/// The writer thread.
pub fn writer() -> &'static Scheduler {
    static WRITER: OnceLock<&'static Scheduler> = OnceLock::new();
    WRITER.get_or_init(|| Scheduler::start("ipckit-writer"))
}

impl Scheduler {
    fn start(name: &str) -> &'static Scheduler {
        let scheduler: &'static Scheduler = Box::leak(Box::new(Scheduler {
            schedule: Mutex::new(Schedule::default()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                super::platform::give_way_to_javascript();
                scheduler.run()
            })
            .expect("a worker thread starts");
        scheduler
    }

    /// Runs `job` for `key` at `at`, or earlier if it is already due earlier.
    pub fn schedule(&self, key: u64, at: Instant, job: Job) {
        let mut schedule = lock(&self.schedule);
        if !schedule.insert(key, at, job) {
            return;
        }
        // The thread sleeps until its earliest deadline: only a new earliest one needs it awake.
        let earliest = schedule.due.keys().next() == Some(&(at, key));
        drop(schedule);
        if earliest {
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        let mut schedule = lock(&self.schedule);
        loop {
            let Some(&(at, key)) = schedule.due.keys().next() else {
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
            schedule.due.remove(&(at, key));
            let Some((_, job)) = schedule.jobs.remove(&key) else {
                continue;
            };
            drop(schedule);
            let again = job();
            schedule = lock(&self.schedule);
            if let Some(at) = again {
                schedule.insert(key, at, job);
            }
        }
    }
}

impl Schedule {
    /// Whether the key's next run moved (it was not due, or due later).
    fn insert(&mut self, key: u64, at: Instant, job: Job) -> bool {
        if let Some((current, _)) = self.jobs.get(&key) {
            if *current <= at {
                return false;
            }
            let current = *current;
            self.due.remove(&(current, key));
        }
        self.jobs.insert(key, (at, job));
        self.due.insert((at, key), ());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn jobs_run_when_due_and_an_earlier_schedule_moves_them() {
        let scheduler = Scheduler::start("test-scheduler");
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let counted = Arc::clone(&runs);
        let job: Job = Arc::new(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = lock(&tx).send(Instant::now());
            // Twice: once more, 20 ms later, then no more.
            (n < 2).then(|| Instant::now() + Duration::from_millis(20))
        });
        let start = Instant::now();
        scheduler.schedule(7, start + Duration::from_secs(3600), Arc::clone(&job));
        // An earlier schedule of the same key replaces the far one; a later one does not.
        scheduler.schedule(7, start, Arc::clone(&job));
        scheduler.schedule(7, start + Duration::from_secs(60), job);
        let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let second = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(second - first >= Duration::from_millis(20));
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
