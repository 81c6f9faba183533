//! The one place that names concurrency primitives.
//!
//! Under `--cfg loom` every atomic, `Arc`, `Mutex`, `Condvar`, `thread` and
//! `spin_loop` comes from [loom](https://docs.rs/loom), so the model checker sees every
//! interleaving of the lock-free code. Otherwise the same names come from `std` and
//! `parking_lot` with the same shape. Code elsewhere in the crate imports from here and
//! never from `std::sync` directly. What loom cannot model is named here too, so nothing
//! concurrent escapes unnoticed:
//!
//! - `OnceCell` and `Lazy` (once_cell, in both builds: loom has none) publish a value
//!   once: an event listener, the global engine. No decision a model checks goes
//!   through them.
//! - Thread-locals: the metrics' thread slot (`metrics/thread_slot.rs`) declares a
//!   `loom::thread_local!` and a `loom::lazy_static!` under loom and the std ones
//!   otherwise, and so does the cause of events (`telemetry/trace.rs`); the C ABI's
//!   last-error message (`ffi/status.rs`) is not built under loom.
//!
//! `Mutex` and `Condvar` have a poison-free, std-like shape in both builds:
//! `lock()` returns a guard, `Condvar::wait_timeout(&mut guard, dur)` returns whether the
//! wait timed out. Under loom a timed wait never times out by itself (loom has no time);
//! models that need a timeout express it as an explicit action of another thread.

// The shim keeps the full shape of both builds (atomics of every width, spin_loop,
// thread) even where no module uses a name yet, so new lock-free code never reaches
// around it to std.
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::hint::spin_loop;
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::hint::spin_loop;

/// Threads: `loom::thread` in models, `std::thread` otherwise.
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::thread;
/// Threads: `loom::thread` in models, `std::thread` otherwise.
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::thread;

/// Set-once cells (see the module docs for why they are once_cell's under loom too).
pub(crate) use once_cell::sync::{Lazy, OnceCell};

#[cfg(not(loom))]
mod blocking {
    use std::time::Duration;

    /// A mutex without poisoning (parking_lot).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    /// The guard of [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable paired with [`Mutex`] (parking_lot).
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }

        /// Waits for a notification; may wake spuriously.
        #[allow(dead_code)]
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.0.wait(guard);
        }

        /// Waits for a notification or `timeout`; returns `true` when it timed out.
        pub(crate) fn wait_timeout<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: Duration,
        ) -> bool {
            self.0.wait_for(guard, timeout).timed_out()
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one()
        }

        #[allow(dead_code)]
        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all()
        }
    }
}

#[cfg(loom)]
mod blocking {
    use std::time::Duration;

    /// A loom mutex with the poison-free shape of the normal build.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; an `Option` so a condvar wait can move it out and back.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present outside a wait")
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present outside a wait")
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Self::new(T::default())
        }
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }
    }

    /// A loom condition variable with the shape of the normal build.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        #[allow(dead_code)]
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        pub(crate) fn wait_timeout<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: Duration,
        ) -> bool {
            let inner = guard.0.take().expect("guard present");
            let (inner, result) = self
                .0
                .wait_timeout(inner, timeout)
                .unwrap_or_else(|e| e.into_inner());
            guard.0 = Some(inner);
            result.timed_out()
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        #[allow(dead_code)]
        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }
}

#[allow(unused_imports)]
pub(crate) use blocking::{Condvar, Mutex, MutexGuard};

/// A reader-writer lock without poisoning, for registries read far more than written
/// (never on a decision's hot path).
#[cfg(not(loom))]
pub(crate) type RwLock<T> = parking_lot::RwLock<T>;
/// A reader-writer lock (loom's, in models), with the poison-free shape of the normal
/// build.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

#[cfg(loom)]
impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}
