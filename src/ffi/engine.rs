//! `bw_engine`: policies from a policy file, looked up by name, reloaded atomically.

use std::os::raw::c_char;
use std::sync::Arc;

use super::boundary::{
    c_bytes, c_path, c_str, clone_or_null, ensure_non_null, ffi_status, into_c_string, release,
    write_out, ArcHandle,
};
use super::clock::{bw_clock, clock_or_system};
use super::policy::bw_policy;
use super::status::{bw_status, fail};
use crate::config::{PolicyFile, PolicyFileError};
use crate::engine::Engine;

/// An engine (opaque, shared, thread-safe): a registry of named policies.
#[derive(Debug)]
pub struct bw_engine {
    _private: [u8; 0],
}

impl ArcHandle for bw_engine {
    type Rust = Engine;
}

fn file_error(error: &PolicyFileError) -> bw_status {
    let io = error
        .errors
        .iter()
        .any(|e| e.reason.starts_with("cannot read "));
    let host = error
        .errors
        .iter()
        .any(|e| e.field == "segment" && crate::shm::is_host_error_text(&e.reason));
    let status = if io {
        bw_status::BW_IO_ERROR
    } else if host {
        bw_status::BW_HOST_SEGMENT
    } else {
        bw_status::BW_INVALID_CONFIG
    };
    fail(status, error)
}

/// Creates an engine from the text of a policy file (NUL-terminated UTF-8) and writes
/// it to `*out`. `clock` is a manual clock for every policy, or NULL for the system
/// clocks. Free the engine with `bw_engine_free`.
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_CONFIG` with a message naming every
/// error's policy, field and line (text that is not UTF-8 is such an error, naming the
/// line of the first invalid byte, as for a file). Nothing is written on failure.
///
/// # Safety
/// `toml` must be NULL or a NUL-terminated string; `clock` NULL or live; `out` NULL or
/// valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_from_toml(
    toml: *const c_char,
    clock: *const bw_clock,
    out: *mut *mut bw_engine,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        // SAFETY: `toml` NULL or NUL-terminated, `clock` NULL or live, `out` non-NULL
        // and writable, by contract.
        unsafe {
            with_file(
                || c_bytes(toml, "toml"),
                |text| new_engine(clock, out, PolicyFile::from_bytes(text)?),
            )
        }
    })
}

/// Creates an engine from the policy file at `path` (NUL-terminated; on Unix any bytes,
/// elsewhere UTF-8 or `BW_INVALID_ARGUMENT`). As `bw_engine_from_toml`, plus
/// `BW_IO_ERROR` when the file cannot be read.
///
/// # Safety
/// As for `bw_engine_from_toml`.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_from_path(
    path: *const c_char,
    clock: *const bw_clock,
    out: *mut *mut bw_engine,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        // SAFETY: `path` NULL or NUL-terminated, `clock` NULL or live, `out` non-NULL
        // and writable, by contract.
        unsafe {
            with_file(
                || c_path(path, "path"),
                |path| new_engine(clock, out, PolicyFile::load(path)?),
            )
        }
    })
}

/// The body the four functions that take a policy file from C share: `read` the
/// argument (its status when it cannot be read), then `act` on it; a policy-file error
/// becomes its status (`file_error`).
fn with_file<'a, S: ?Sized + 'a>(
    read: impl FnOnce() -> Result<&'a S, bw_status>,
    act: impl FnOnce(&'a S) -> Result<bw_status, PolicyFileError>,
) -> bw_status {
    match read() {
        Ok(source) => act(source).unwrap_or_else(|e| file_error(&e)),
        Err(status) => status,
    }
}

/// An engine on `clock` loaded with `file`, written to `*out`; nothing is written when
/// the file has errors.
///
/// # Safety
/// `clock` must be NULL or live; `out` non-NULL and valid for a pointer write.
unsafe fn new_engine(
    clock: *const bw_clock,
    out: *mut *mut bw_engine,
    file: PolicyFile,
) -> Result<bw_status, PolicyFileError> {
    // SAFETY: NULL or live by this function's contract.
    let engine = Engine::with_clock(unsafe { clock_or_system(clock) });
    engine.reload(file)?;
    // SAFETY: non-NULL and writable by this function's contract.
    unsafe { write_out(out, bw_engine::into_handle(engine)) };
    Ok(bw_status::BW_OK)
}

/// Writes a new reference to the process-wide engine to `*out` (free it with
/// `bw_engine_free`; the engine itself lives as long as the process). It starts with
/// no policies; configure it with `bw_engine_reload_toml` or `bw_engine_reload_path`.
///
/// # Safety
/// `out` must be NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_global(out: *mut *mut bw_engine) -> bw_status {
    ffi_status!({
        ensure_non_null!(out);
        let engine: Arc<Engine> = crate::engine::global().clone();
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, bw_engine::from_arc(engine)) };
        bw_status::BW_OK
    })
}

/// Replaces the engine's policies with those of a policy file's text, atomically:
/// on any error nothing changes. Unchanged policies keep their state; a changed policy
/// starts fresh, and every `bw_policy*` already looked up follows it at its next
/// `bw_policy_acquire` (permits taken before complete as usual). Thread-safe.
/// Statuses as for `bw_engine_from_toml`.
///
/// # Safety
/// `engine` must be NULL or live; `toml` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_reload_toml(
    engine: *const bw_engine,
    toml: *const c_char,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine);
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        // SAFETY: NULL or NUL-terminated by contract.
        unsafe {
            with_file(
                || c_bytes(toml, "toml"),
                |text| {
                    engine
                        .reload(PolicyFile::from_bytes(text)?)
                        .map(|_| bw_status::BW_OK)
                },
            )
        }
    })
}

/// `bw_engine_reload_toml` from the policy file at `path` (read as for
/// `bw_engine_from_path`); `BW_IO_ERROR` if it cannot be read.
///
/// # Safety
/// `engine` must be NULL or live; `path` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_reload_path(
    engine: *const bw_engine,
    path: *const c_char,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine);
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        // SAFETY: NULL or NUL-terminated by contract.
        unsafe {
            with_file(
                || c_path(path, "path"),
                |path| engine.reload_path(path).map(|_| bw_status::BW_OK),
            )
        }
    })
}

/// Looks up the policy `name` and writes a new reference to it to `*out` (free it with
/// `bw_policy_free`). Returns `BW_NOT_FOUND` when there is none (nothing written).
/// Look a policy up once and keep it: lookups take a short lock, and the reference
/// follows reloads of the engine (a removed policy keeps its last configuration).
/// Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live; `name` NULL or NUL-terminated; `out` NULL or valid
/// for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_policy(
    engine: *const bw_engine,
    name: *const c_char,
    out: *mut *mut bw_policy,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine, out);
        // SAFETY: NULL or NUL-terminated by contract.
        let name = match unsafe { c_str(name, "name") } {
            Ok(n) => n,
            Err(status) => return status,
        };
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        match engine.policy(name) {
            Ok(policy) => {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out, bw_policy::from_arc(policy)) };
                bw_status::BW_OK
            }
            Err(unknown) => fail(bw_status::BW_NOT_FOUND, format_args!("{unknown}")),
        }
    })
}

/// Writes the Prometheus text exposition of every policy of the engine to `*out`, as a
/// NUL-terminated string to free with `bw_string_free`. Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_prometheus(
    engine: *const bw_engine,
    out: *mut *mut c_char,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine, out);
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, into_c_string(engine.prometheus())) };
        bw_status::BW_OK
    })
}

/// Writes the engine's health as JSON (`{"status":"healthy|degraded|unhealthy",
/// "reasons":[…]}`) to `*out`, a string to free with `bw_string_free`. If `out_status`
/// is not NULL it receives the status code (0 healthy, 1 degraded, 2 unhealthy).
/// Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live; `out` NULL or valid for a pointer write;
/// `out_status` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_health(
    engine: *const bw_engine,
    out: *mut *mut c_char,
    out_status: *mut i32,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine, out);
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        let report = engine.health();
        if !out_status.is_null() {
            // SAFETY: non-NULL and writable by contract.
            unsafe { write_out(out_status, report.status as i32) };
        }
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, into_c_string(report.to_json())) };
        bw_status::BW_OK
    })
}

/// Adds a reference to `engine` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_clone(engine: *const bw_engine) -> *mut bw_engine {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(engine) }
}

/// Drops one reference to `engine`; NULL is a no-op. Policies looked up from it keep
/// their own references. Must not be called twice with the same reference.
///
/// # Safety
/// `engine` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_free(engine: *const bw_engine) {
    // SAFETY: NULL or a live, owned reference, by contract.
    unsafe { release(engine) }
}

/// Writes the names of the engine's policies, in file order, one per line (joined by
/// `'\n'`, no trailing newline; empty without policies) to `*out`, a string to free
/// with `bw_string_free`. Names never contain a newline (letters, digits, `_ - . :`).
/// Bindings use it to say which names exist when a lookup fails. Thread-safe.
///
/// # Safety
/// `engine` must be NULL or live; `out` NULL or valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn bw_engine_policy_names(
    engine: *const bw_engine,
    out: *mut *mut c_char,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(engine, out);
        // SAFETY: non-NULL and live by contract.
        let engine = unsafe { bw_engine::borrow(engine) };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, into_c_string(engine.names().join("\n"))) };
        bw_status::BW_OK
    })
}
