//! `Policy`: one named pipeline of an engine (breaker, limiter, bulkhead, adaptive
//! limit, chaos, retry, timeout), through `bw_policy_*`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use breakwater::ffi::codes::{
    BW_DURATION_UNKNOWN, BW_PRIORITY_CRITICAL, BW_PRIORITY_DEFAULT, BW_PRIORITY_SHEDDABLE,
};
use breakwater::ffi::keyed::{bw_keyed_permit, bw_policy_acquire_keyed, bw_policy_complete_keyed};
use breakwater::ffi::policy::{
    bw_permit, bw_policy, bw_policy_acquire, bw_policy_breaker_disable,
    bw_policy_breaker_force_open, bw_policy_breaker_reset, bw_policy_chaos_set_enabled,
    bw_policy_complete, bw_policy_free, bw_policy_get_stats, bw_policy_stats, bw_policy_timeout,
};
use breakwater::ffi::policy_retry::bw_policy_retry_on;
use breakwater::ffi::trace::{
    bw_policy_acquire_keyed_traced, bw_policy_acquire_traced, bw_policy_complete_keyed_traced,
    bw_policy_complete_traced, bw_trace_context,
};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict};

use crate::convert::seconds;
use crate::guard::{guard_methods, zeroed, Exclude, Guard, Refusal, Ticket};
use crate::handle::{Handle, SendPtr};
use crate::metrics::{set_fields, set_latency, transitions};
use crate::retry::RetryRun;
use crate::status;

/// A policy of an engine: a decorator and a (sync and async) context manager. Get one
/// with `engine["name"]`; it follows the engine's reloads. Thread-safe.
#[pyclass(frozen, module = "breakwater._breakwater")]
pub(crate) struct Policy {
    handle: Handle<bw_policy>,
    pub(crate) guard: Guard,
    /// The reloads of the engine this policy came from (see `Settings`).
    reloads: Arc<AtomicU64>,
    /// The `Settings` word read after the reload it names.
    settings: AtomicU64,
    /// The engine a standalone policy (`Policy.from_toml`) keeps alive; unset for a
    /// policy looked up from an engine the caller holds.
    owner: OnceLock<Py<crate::engine::Engine>>,
}

/// What a call needs from the policy's configuration beyond its permit, kept in one
/// word so a call reads it with one load, and read again from the C handle after every
/// reload of the engine (never per call: asking the handle for the bulkhead means a
/// stats snapshot).
///
/// | bits | meaning |
/// |---|---|
/// | 0 | the policy has a bulkhead, so an acquire may block (release the GIL) |
/// | 1 | the policy has a retry section |
/// | 2–63 | the engine's reload count the two flags were read after |
#[derive(Clone, Copy)]
pub(crate) struct Settings(u64);

impl Settings {
    const MAY_WAIT: u64 = 1;
    const HAS_RETRY: u64 = 1 << 1;
    const RELOADS_SHIFT: u32 = 2;
    /// No reload count fits this: the word of a policy never read yet.
    const UNREAD: u64 = u64::MAX;

    fn new(reloads: u64, may_wait: bool, has_retry: bool) -> Self {
        Settings(
            (reloads << Self::RELOADS_SHIFT)
                | if may_wait { Self::MAY_WAIT } else { 0 }
                | if has_retry { Self::HAS_RETRY } else { 0 },
        )
    }

    fn is_after(self, reloads: u64) -> bool {
        self.0 != Self::UNREAD && self.0 >> Self::RELOADS_SHIFT == reloads
    }

    pub(crate) fn may_wait(self) -> bool {
        self.0 & Self::MAY_WAIT != 0
    }

    pub(crate) fn has_retry(self) -> bool {
        self.0 & Self::HAS_RETRY != 0
    }
}

impl Policy {
    /// Takes ownership of one reference to a policy named `name`, of an engine whose
    /// reloads `reloads` counts.
    pub(crate) fn from_raw(
        py: Python<'_>,
        ptr: *mut bw_policy,
        name: String,
        reloads: Arc<AtomicU64>,
    ) -> PyResult<Self> {
        let policy = Policy {
            handle: Handle::new(ptr, bw_policy_free, "policy"),
            guard: Guard::new(py, name, Exclude::none())?,
            reloads,
            settings: AtomicU64::new(Settings::UNREAD),
            owner: OnceLock::new(),
        };
        policy.refresh(py)?;
        Ok(policy)
    }

    /// The settings of the configuration the handle follows now.
    #[inline]
    pub(crate) fn settings(&self, py: Python<'_>) -> PyResult<Settings> {
        // Acquire: pairs with the Release increment in `Engine::reload`, which comes
        // after the engine published the new configuration, so a refresh that sees the
        // new count reads that configuration.
        let reloads = self.reloads.load(Ordering::Acquire);
        // Relaxed: the word is self-contained (flags and the count they belong to).
        let cached = Settings(self.settings.load(Ordering::Relaxed));
        if cached.is_after(reloads) {
            return Ok(cached);
        }
        self.refresh(py)
    }

    #[cold]
    fn refresh(&self, py: Python<'_>) -> PyResult<Settings> {
        let reloads = self.reloads.load(Ordering::Acquire);
        let ptr = self.handle.raw();
        let mut stats: bw_policy_stats = zeroed();
        // SAFETY: live handle (held until this object goes), valid out-pointer.
        status::check(py, unsafe { bw_policy_get_stats(ptr, &mut stats) })?;
        let mut mask = 0u32;
        // SAFETY: live handle, valid out-pointer. BW_NO_STAGE means no retry section.
        let has_retry = unsafe { bw_policy_retry_on(ptr, &mut mask) } as i32 == status::OK;
        let settings = Settings::new(reloads, stats.bulkhead_max_concurrent > 0, has_retry);
        // Relaxed: see `settings`. Two threads refreshing at once store equal words
        // (or the later reload's, which the next call then keeps).
        self.settings.store(settings.0, Ordering::Relaxed);
        Ok(settings)
    }

    /// Runs `call` (one acquire through the C ABI: `(status, permit, retry after ns)`)
    /// with the GIL released when it may block (a bulkhead with `max_wait`).
    #[inline]
    fn call_acquire<P: Send>(
        &self,
        py: Python<'_>,
        wait: bool,
        call: impl FnOnce() -> (i32, P, u64) + Send,
    ) -> PyResult<(i32, P, u64)> {
        if wait && self.settings(py)?.may_wait() {
            Ok(py.allow_threads(call))
        } else {
            Ok(call())
        }
    }

    /// A permit of the policy, carrying the current span's trace context when the
    /// telemetry hooks are set (`breakwater.otel.install()`); its completion carries the
    /// same context, so the hook runs once per call.
    #[inline]
    pub(crate) fn acquire_ticket(
        &self,
        py: Python<'_>,
        wait: bool,
        priority: i32,
    ) -> Result<Ticket, Refusal> {
        let p = SendPtr(self.handle.get()?);
        let trace = crate::trace::current(py);
        let (code, permit, after) = self.call_acquire(py, wait, move || {
            let p = p;
            let mut permit: bw_permit = zeroed();
            let mut after = 0u64;
            let code = match &trace {
                // SAFETY: live handle (the Python object holds it), valid out-pointers.
                None => unsafe { bw_policy_acquire(p.0, priority, &mut permit, &mut after) },
                // SAFETY: as above, and a valid trace context.
                Some(t) => unsafe {
                    bw_policy_acquire_traced(p.0, priority, t, &mut permit, &mut after)
                },
            } as i32;
            (code, permit, after)
        })?;
        self.answer(py, code, after, || Ticket::Policy(permit, trace))
    }

    /// A permit of the policy for `key` (its `per_key` limits first; a policy without
    /// them ignores the key), traced as `acquire_ticket` is.
    #[inline]
    pub(crate) fn acquire_keyed_ticket(
        &self,
        py: Python<'_>,
        wait: bool,
        priority: i32,
        key: &[u8],
    ) -> Result<Ticket, Refusal> {
        let p = SendPtr(self.handle.get()?);
        let trace = crate::trace::current(py);
        let (code, permit, after) = self.call_acquire(py, wait, move || {
            let p = p;
            let mut permit: bw_keyed_permit = zeroed();
            let mut after = 0u64;
            let (k, len) = (key.as_ptr(), key.len());
            let code = match &trace {
                // SAFETY: live handle, `key` valid for reads of `key.len()` bytes (a
                // dangling but non-NULL pointer when empty, which is never read), valid
                // out-pointers.
                None => unsafe {
                    bw_policy_acquire_keyed(p.0, k, len, priority, &mut permit, &mut after)
                },
                // SAFETY: as above, and a valid trace context.
                Some(t) => unsafe {
                    bw_policy_acquire_keyed_traced(
                        p.0,
                        k,
                        len,
                        priority,
                        t,
                        &mut permit,
                        &mut after,
                    )
                },
            } as i32;
            (code, permit, after)
        })?;
        self.answer(py, code, after, || Ticket::Keyed(permit, trace))
    }

    #[inline]
    fn answer(
        &self,
        py: Python<'_>,
        code: i32,
        after: u64,
        ticket: impl FnOnce() -> Ticket,
    ) -> Result<Ticket, Refusal> {
        if code == status::OK {
            Ok(ticket())
        } else if status::is_rejection(code) {
            crate::trace::on_rejection(py, &self.guard.name, code, after);
            Err(Refusal::Rejected(code, after))
        } else {
            Err(Refusal::Error(status::error(py, code)))
        }
    }

    /// Completes a permit of `acquire_ticket` with the trace context it was taken
    /// with. Needs no GIL.
    #[inline]
    pub(crate) fn complete_permit(
        &self,
        permit: &mut bw_permit,
        trace: Option<&bw_trace_context>,
        outcome: i32,
    ) -> i32 {
        let status = match trace {
            // SAFETY: the pointer stays live while this object does (permits hold it);
            // the permit was filled by an acquire of this policy and is not shared.
            None => unsafe {
                bw_policy_complete(self.handle.raw(), permit, outcome, BW_DURATION_UNKNOWN)
            },
            // SAFETY: as above, with a valid trace context.
            Some(trace) => unsafe {
                bw_policy_complete_traced(
                    self.handle.raw(),
                    permit,
                    outcome,
                    BW_DURATION_UNKNOWN,
                    trace,
                )
            },
        };
        status as i32
    }

    /// Completes a permit of `acquire_keyed_ticket` (gives the key's slot back too)
    /// with the trace context it was taken with.
    #[inline]
    pub(crate) fn complete_keyed(
        &self,
        permit: &mut bw_keyed_permit,
        trace: Option<&bw_trace_context>,
        outcome: i32,
    ) -> i32 {
        let status = match trace {
            // SAFETY: live pointer (as in `complete_permit`); the permit was filled by
            // a keyed acquire of this policy and is not shared.
            None => unsafe {
                bw_policy_complete_keyed(self.handle.raw(), permit, outcome, BW_DURATION_UNKNOWN)
            },
            // SAFETY: as above, with a valid trace context.
            Some(trace) => unsafe {
                bw_policy_complete_keyed_traced(
                    self.handle.raw(),
                    permit,
                    outcome,
                    BW_DURATION_UNKNOWN,
                    trace,
                )
            },
        };
        status as i32
    }

    pub(crate) fn timeout_ns(&self) -> u64 {
        let mut ns = 0u64;
        // SAFETY: live handle, valid out-pointer; on failure `ns` stays 0 (no timeout).
        unsafe { bw_policy_timeout(self.handle.raw(), &mut ns) };
        ns
    }

    pub(crate) fn begin_retry(&self, py: Python<'_>, me: Py<Policy>) -> PyResult<Option<RetryRun>> {
        if !self.settings(py)?.has_retry() {
            return Ok(None);
        }
        RetryRun::for_policy(py, me, self.handle.get()?).map(Some)
    }

    /// Makes this policy keep `engine` alive (`Policy.from_toml`).
    pub(crate) fn set_owner(&self, engine: Py<crate::engine::Engine>) {
        let _ = self.owner.set(engine);
    }

    pub(crate) fn ptr(&self) -> PyResult<*const bw_policy> {
        self.handle.get()
    }

    pub(crate) fn raw(&self) -> *const bw_policy {
        self.handle.raw()
    }
}

/// A `BW_PRIORITY_*` code from its name.
pub(crate) fn priority_code(py: Python<'_>, priority: &str) -> PyResult<i32> {
    match priority {
        "critical" => Ok(BW_PRIORITY_CRITICAL),
        "default" => Ok(BW_PRIORITY_DEFAULT),
        "sheddable" => Ok(BW_PRIORITY_SHEDDABLE),
        other => Err(status::error_with(
            py,
            breakwater::ffi::status::bw_status::BW_INVALID_ARGUMENT as i32,
            &format!("unknown priority {other:?} (expected critical, default or sheddable)"),
        )),
    }
}

/// The breaker states' names, indexed by their `bw_breaker_state` code: also the keys
/// of a snapshot's transition counts.
const BREAKER_STATES: [&str; 5] = ["closed", "open", "half_open", "forced_open", "disabled"];

pub(crate) fn breaker_state_name(code: i32) -> Option<&'static str> {
    usize::try_from(code)
        .ok()
        .and_then(|i| BREAKER_STATES.get(i))
        .copied()
}

guard_methods! {
    Policy, Policy, "Policy";
    /// A policy comes from a policy file: `Policy.from_toml(text)` for one on its own,
    /// or `engine["name"]`.
    /// (No arguments: PyO3's varargs do not survive `guard_methods!`'s hygiene; a
    /// call with some is refused by PyO3 itself, also with a `TypeError`.)
    #[new]
    fn new() -> PyResult<Self> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "a Policy is built from a policy file: Policy.from_toml(text, name=None) for a \
             policy on its own, or engine[\"name\"] for one of an Engine",
        ))
    }

    /// A policy on its own, from the text of a policy file: the policy `name`, or the
    /// file's only policy when `name` is None (`InvalidArgumentError` listing the names
    /// otherwise). It owns the engine built from the text (`policy.engine`: reload it,
    /// listen to its events, read its Prometheus text). `clock`: a `ManualClock` (tests).
    #[staticmethod]
    #[pyo3(signature = (text, /, name = None, *, clock = None))]
    fn from_toml(
        py: Python<'_>,
        text: &str,
        name: Option<&str>,
        clock: Option<&Bound<'_, crate::clock::ManualClock>>,
    ) -> PyResult<Py<Policy>> {
        crate::engine::standalone_policy(py, text, name, clock)
    }

    /// The engine a policy made by `Policy.from_toml` owns; `None` for a policy looked
    /// up from an engine (`engine["name"]`).
    #[getter]
    fn engine(&self, py: Python<'_>) -> Option<Py<crate::engine::Engine>> {
        self.owner.get().map(|e| e.clone_ref(py))
    }

    /// The policy's counters and stage states (`PolicySnapshot`).
    fn snapshot(&self, py: Python<'_>) -> PyResult<PyObject> {
        let mut s: bw_policy_stats = zeroed();
        // SAFETY: live handle, valid out-pointer.
        status::check(py, unsafe { bw_policy_get_stats(self.ptr()?, &mut s) })?;
        let d = PyDict::new(py);
        d.set_item("name", self.guard.name.object())?;
        set_fields!(d, s; permitted, success, failure, timeout, ignored, slow, retries);
        let rejected = [
            ("circuit_open", s.rejected_circuit_open),
            ("rate_limited", s.rejected_rate_limited),
            ("bulkhead_full", s.rejected_bulkhead_full),
            ("load_shed", s.rejected_load_shed),
            ("retry_budget_exhausted", s.rejected_retry_budget_exhausted),
            ("injected", s.rejected_injected),
        ];
        d.set_item("rejected", rejected.into_py_dict(py)?)?;
        let transitions = BREAKER_STATES.into_iter().zip(transitions!(s));
        d.set_item("transitions", transitions.into_py_dict(py)?)?;
        set_latency!(d, s);
        d.set_item("breaker_state", breaker_state_name(s.breaker_state))?;
        d.set_item(
            "limiter_available",
            (s.limiter_available >= 0).then_some(s.limiter_available),
        )?;
        d.set_item(
            "bulkhead_max_concurrent",
            (s.bulkhead_max_concurrent > 0).then_some(s.bulkhead_max_concurrent),
        )?;
        d.set_item(
            "adaptive_limit",
            (s.adaptive_limit > 0).then_some(s.adaptive_limit),
        )?;
        set_fields!(d, s; breaker_generation, bulkhead_in_flight, adaptive_in_flight);
        crate::guard::call_helper(py, "policy_snapshot", (d,))
    }

    /// Opens the breaker until `reset()` (raises `NoStageError` without a breaker).
    fn force_open(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_policy_breaker_force_open(self.ptr()?) })
    }

    /// Lets every call through the breaker until `reset()`.
    fn disable(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_policy_breaker_disable(self.ptr()?) })
    }

    /// Back to closed with an empty window.
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe { bw_policy_breaker_reset(self.ptr()?) })
    }

    /// Turns fault injection on or off (raises `NoStageError` without `chaos`).
    fn set_chaos(&self, py: Python<'_>, enabled: bool) -> PyResult<()> {
        // SAFETY: live handle.
        status::check(py, unsafe {
            bw_policy_chaos_set_enabled(self.ptr()?, enabled)
        })
    }

    /// The attempt timeout in seconds, or `None`.
    #[getter]
    fn timeout(&self) -> PyResult<Option<f64>> {
        let _ = self.ptr()?;
        let ns = self.timeout_ns();
        Ok((ns > 0).then(|| seconds(ns)))
    }

    /// Whether an acquire may block (the policy has a bulkhead).
    #[getter]
    fn _may_wait(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.settings(py)?.may_wait())
    }

    /// Starts the retry loop of one logical call by hand (what the decorator does at a
    /// call's first miss): `seed` seeds its jitter (default: a fresh one), `deadline_ns`
    /// is the caller's deadline on the policy's clock (`now_ns()` + time left; 0:
    /// none). One request is recorded in the retry budget. Raises `NoStageError`
    /// without a retry section.
    #[pyo3(signature = (*, seed = None, deadline_ns = 0))]
    fn retry_begin(
        slf: &Bound<'_, Self>,
        seed: Option<u64>,
        deadline_ns: u64,
    ) -> PyResult<RetryRun> {
        let py = slf.py();
        let ptr = slf.get().ptr()?;
        let seed = seed.unwrap_or_else(crate::guard::next_seed);
        RetryRun::for_policy_with(py, slf.clone().unbind(), ptr, seed, deadline_ns)
    }

    /// The two-step form (Go's `Allow`): a `Permit` now, or the rejection; report
    /// how the call went with `permit.complete(outcome)`. Waits only for a bulkhead's
    /// `max_wait` (the GIL released). Injected faults are the caller's to honour
    /// (`permit.injected_failure`, `permit.injected_latency`): nothing is slept or
    /// skipped here. `priority`: `"critical"`, `"default"` or `"sheddable"`.
    #[pyo3(signature = (*, priority = "default"))]
    fn acquire(slf: &Bound<'_, Self>, priority: &str) -> PyResult<crate::guard::Permit> {
        let py = slf.py();
        let code = priority_code(py, priority)?;
        let target = crate::guard::Target::Policy(slf.clone().unbind());
        crate::guard::acquire_permit(py, target, true, code)
    }

    /// `acquire` for `key` (`bytes`, or a `str` taken as its UTF-8 bytes): the
    /// policy's `per_key` limits for that key first, then every stage. A policy
    /// without a `per_key` section ignores the key. Complete the permit once.
    #[pyo3(signature = (key, *, priority = "default"))]
    fn acquire_key(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        priority: &str,
    ) -> PyResult<crate::guard::Permit> {
        let py = slf.py();
        let code = priority_code(py, priority)?;
        let ticket = crate::keyed::with_key(key, |key| {
            slf.get().acquire_keyed_ticket(py, true, code, key)
        })?;
        let target = crate::guard::Target::Policy(slf.clone().unbind());
        crate::guard::permit_of(py, target, ticket)
    }

    /// The policy's calls for one key, as a guard (decorator, `with`, `async with`):
    /// `with payments.key(b"tenant-1"): ...`.
    fn key(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<crate::keyed::KeyedPolicy> {
        crate::keyed::KeyedPolicy::new(slf, key)
    }

    /// The time on the policy's clock, in nanoseconds (the base of `deadline_ns`).
    fn now_ns(&self) -> PyResult<u64> {
        // SAFETY: live handle.
        Ok(unsafe { breakwater::ffi::policy_retry::bw_policy_now(self.ptr()?) })
    }

    /// A retry run for one logical call, or `None` without a retry section.
    fn _retry_begin(slf: &Bound<'_, Self>) -> PyResult<Option<RetryRun>> {
        slf.get().begin_retry(slf.py(), slf.clone().unbind())
    }
}

impl Policy {
    pub(crate) fn closed_flag(&self) -> bool {
        self.handle.is_closed()
    }

    pub(crate) fn close_flag(&self) {
        self.handle.close();
    }
}
