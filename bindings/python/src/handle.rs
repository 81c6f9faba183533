//! An owned reference to a C handle, and the closed flag that `close()` sets.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use breakwater::ffi::status::bw_status;
use pyo3::{PyResult, Python};

use crate::status;

/// One reference to a `bw_*` runtime handle, dropped with its `_free` function.
///
/// `close()` only marks the handle closed: every later use raises, while calls already
/// running (or permits still out) keep a valid pointer, because the reference is given
/// back only when the Python object itself goes away. So a close racing a call on
/// another thread can never free memory under it.
pub(crate) struct Handle<T> {
    ptr: NonNull<T>,
    closed: AtomicBool,
    free: unsafe extern "C" fn(*const T),
    what: &'static str,
}

// SAFETY: every `bw_*` runtime handle (engine, policy, breaker, limiter, bulkhead,
// clock, retry budget) is documented thread-safe: one handle may be used from many
// threads at once, and freed from any thread.
unsafe impl<T> Send for Handle<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for Handle<T> {}

impl<T> Handle<T> {
    /// Takes ownership of one reference. `ptr` must be a live handle that `free`
    /// releases; a NULL pointer is a bug in the caller (a `BW_OK` always writes it).
    pub(crate) fn new(
        ptr: *mut T,
        free: unsafe extern "C" fn(*const T),
        what: &'static str,
    ) -> Self {
        let ptr = NonNull::new(ptr).expect("a bw_* constructor returned BW_OK with NULL");
        Handle {
            ptr,
            closed: AtomicBool::new(false),
            free,
            what,
        }
    }

    /// The pointer, or the closed error once `close()` was called.
    #[inline]
    pub(crate) fn get(&self) -> PyResult<*const T> {
        // Relaxed: the flag guards no other memory (the pointer stays valid until
        // drop); a call that races `close()` may still pass, which is the same as
        // having started just before it.
        if self.closed.load(Ordering::Relaxed) {
            return Err(status::closed(self.what));
        }
        Ok(self.ptr.as_ptr())
    }

    /// The pointer even after `close()`: for completing permits already out.
    #[inline]
    pub(crate) fn raw(&self) -> *const T {
        self.ptr.as_ptr()
    }

    pub(crate) fn close(&self) {
        // Relaxed: see `get`.
        self.closed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl<T> Drop for Handle<T> {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference (taken in `new`) and give it back once.
        unsafe { (self.free)(self.ptr.as_ptr()) }
    }
}

/// A pointer moved into `allow_threads`: the handles are thread-safe (see `Handle`).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *const T);
// SAFETY: only `bw_*` runtime handles are wrapped, and they are thread-safe.
unsafe impl<T> Send for SendPtr<T> {}

/// A `bw_*_config` builder of this thread, freed with its `_free` function when
/// dropped, so a setter that fails half-way leaks nothing.
pub(crate) struct Config<T> {
    ptr: *mut T,
    free: unsafe extern "C" fn(*mut T),
}

impl<T> Config<T> {
    /// A fresh builder from its `_config_new` function.
    pub(crate) fn new(
        py: Python<'_>,
        new: unsafe extern "C" fn(*mut *mut T) -> bw_status,
        free: unsafe extern "C" fn(*mut T),
    ) -> PyResult<Self> {
        // SAFETY: `new` is a `bw_*_config_new`, given a valid out-pointer.
        let ptr = status::out_ptr(py, |out| unsafe { new(out) })?;
        Ok(Config { ptr, free })
    }

    /// The live builder, for its setters and the constructor that reads it.
    pub(crate) fn ptr(&self) -> *mut T {
        self.ptr
    }
}

impl<T> Drop for Config<T> {
    fn drop(&mut self) {
        // SAFETY: we own the builder (made in `new`) and free it once.
        unsafe { (self.free)(self.ptr) }
    }
}
