//! The one place that names concurrency primitives.
//!
//! Under `--cfg loom` every atomic, `Arc`, `Mutex`, `Condvar`, `thread` and
//! `spin_loop` comes from [loom](https://docs.rs/loom), so the model checker sees every
//! interleaving of the lock-free code. Otherwise the same names come from `std` and
//! `parking_lot` with the same shape. Code elsewhere in the crate imports from here and
//! never from `std::sync` directly. What loom cannot model is named here too, so nothing
//! concurrent escapes unnoticed:
//!
//! - Set-once values: [`OnceCell`] is once_cell's normally and, in models, a cell of
//!   one pointer published by a compare-exchange on the shim's `AtomicPtr` (as
//!   `once_cell::race::OnceBox`), so loom checks what a `get` sees of a `set`. Statics
//!   initialized on first use are declared with [`lazy_static!`]: once_cell's `Lazy`
//!   (or a plain static, for a `const { .. }` initializer) normally, `loom::lazy_static!`
//!   in models, which gives each execution its own value. `Lazy` itself is exported only
//!   outside loom, for statics no model reaches (the fleet's scripts).
//! - Thread-locals are declared with [`thread_locals!`]: std's normally, loom's in
//!   models (one value per model thread). The C ABI's last-error message
//!   (`ffi/status.rs`) is not built under loom.
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

#[cfg(loom)]
pub(crate) use once::OnceCell;
/// Statics initialized on first use, for code no model builds (see [`lazy_static!`]).
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use once_cell::sync::Lazy;
/// A cell set at most once, read without a lock (once_cell's).
#[cfg(not(loom))]
pub(crate) use once_cell::sync::OnceCell;

/// once_cell's `OnceCell` for models: `new`, `get`, `set`, built on the shim's atomics.
#[cfg(loom)]
mod once {
    use super::{AtomicPtr, Ordering};
    use std::marker::PhantomData;

    /// A value set at most once: a pointer to it, published by one compare-exchange. A
    /// `set` that loses the race returns its value, and the winner's is already visible
    /// (no thread waits for another, unlike once_cell's blocking cell, which the code
    /// using it never relies on: it only `set`s and `get`s).
    pub(crate) struct OnceCell<T> {
        value: AtomicPtr<T>,
        // An `AtomicPtr` is `Send` and `Sync` whatever it points to; the cell owns a `T`
        // and hands it between threads (`set` on one, `get` or drop on another), so it is
        // `Send` only if `T: Send` and `Sync` only if `T: Send + Sync`, as once_cell's.
        _owns: PhantomData<(T, std::sync::Mutex<T>)>,
    }

    impl<T> OnceCell<T> {
        pub(crate) fn new() -> Self {
            Self {
                value: AtomicPtr::new(std::ptr::null_mut()),
                _owns: PhantomData,
            }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            // Acquire: pairs with the Release of the `set` that published the pointer,
            // so the value it points to is seen whole.
            let value = self.value.load(Ordering::Acquire);
            // SAFETY: (1) a non-null pointer here came from `Box::into_raw` in `set` and
            // is valid and aligned; (2) it is never replaced once published and freed
            // only in `drop`, which needs `&mut self`, so it outlives this `&self`;
            // (3) nothing mutates the value after publication, so shared references are
            // all there are.
            unsafe { value.as_ref() }
        }

        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            let boxed = Box::into_raw(Box::new(value));
            // Release on success: publishes the boxed value to `get`'s Acquire. Failure
            // reads nothing through the pointer it sees: Relaxed.
            match self.value.compare_exchange(
                std::ptr::null_mut(),
                boxed,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => Ok(()),
                // SAFETY: `boxed` came from `Box::into_raw` just above and, the exchange
                // having failed, was never published: this is its only owner.
                Err(_) => Err(*unsafe { Box::from_raw(boxed) }),
            }
        }
    }

    impl<T> Default for OnceCell<T> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T> Drop for OnceCell<T> {
        fn drop(&mut self) {
            // Relaxed: `&mut self` means every `set` happened-before this drop.
            let value = self.value.load(Ordering::Relaxed);
            if !value.is_null() {
                // SAFETY: a non-null pointer came from `Box::into_raw` in `set`; no
                // reference from `get` outlives `&mut self`, and this is the only free.
                drop(unsafe { Box::from_raw(value) });
            }
        }
    }
}

/// A static initialized on first use: `static ref NAME: T = init;` (once_cell's `Lazy`)
/// or, where `init` is const in the normal build, `static ref NAME: T = const { init };`
/// (a plain static). In models both are `loom::lazy_static!`: loom's atomics are not
/// const, and each execution needs its own value.
#[cfg(not(loom))]
macro_rules! lazy_static {
    ($(#[$attr:meta])* static ref $name:ident: $t:ty = const { $init:expr };) => {
        $(#[$attr])* static $name: $t = $init;
    };
    ($(#[$attr:meta])* static ref $name:ident: $t:ty = $init:expr;) => {
        $(#[$attr])* static $name: once_cell::sync::Lazy<$t> = once_cell::sync::Lazy::new(|| $init);
    };
}
/// A static initialized on first use (see the normal build's doc): `loom::lazy_static!`.
#[cfg(loom)]
macro_rules! lazy_static {
    ($(#[$attr:meta])* static ref $name:ident: $t:ty = const { $init:expr };) => {
        loom::lazy_static! { $(#[$attr])* static ref $name: $t = $init; }
    };
    ($(#[$attr:meta])* static ref $name:ident: $t:ty = $init:expr;) => {
        loom::lazy_static! { $(#[$attr])* static ref $name: $t = $init; }
    };
}
pub(crate) use lazy_static;

/// Thread-locals, declared in std's `const { .. }` form: `std::thread_local!`, or in
/// models `loom::thread_local!` (which has no const form, and runs no destructor once
/// the thread left the model: models call what a destructor would do themselves).
#[cfg(not(loom))]
macro_rules! thread_locals {
    ($($(#[$attr:meta])* static $name:ident: $t:ty = const { $init:expr };)+) => {
        std::thread_local! { $($(#[$attr])* static $name: $t = const { $init };)+ }
    };
}
/// Thread-locals (see the normal build's doc): `loom::thread_local!`.
#[cfg(loom)]
macro_rules! thread_locals {
    ($($(#[$attr:meta])* static $name:ident: $t:ty = const { $init:expr };)+) => {
        loom::thread_local! { $($(#[$attr])* static $name: $t = $init;)+ }
    };
}
pub(crate) use thread_locals;

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
