//! Mutex locking shared by the core's modules.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, also after a thread panicked while holding it: the data it guards is left
/// consistent between statements, and one panicking callback must not stop every channel.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
