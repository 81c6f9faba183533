//! `bw_policy`: acquire and complete through a named pipeline, with permits passed by
//! value (no allocation per call).

use std::time::Duration;

use super::boundary::{
    check_permit, clone_or_null, ensure_non_null, ffi_status, release, value_or, write_out,
    ArcHandle, PERMIT_LIVE, PERMIT_USED,
};
use super::codes::{known_duration, parse_outcome, parse_priority, BW_PERMIT_INJECTED_LATENCY};
use super::status::{bw_status, fail, write_rejection};
use crate::adaptive::Priority;
use crate::policy::{Policy, RawPolicyPermit};

/// A policy (opaque, shared, thread-safe): one named pipeline of an engine.
#[derive(Debug)]
pub struct bw_policy {
    _private: [u8; 0],
}

impl ArcHandle for bw_policy {
    type Rust = Policy;
}

/// A permit of a policy, passed by value: plain data, 64 bytes, no allocation. Fill it
/// with `bw_policy_acquire` and give it back exactly once to `bw_policy_complete` of
/// the same policy (complete with `BW_OUTCOME_IGNORED` when the call was not made).
/// The library marks a completed permit, so completing the same struct twice returns
/// `BW_PERMIT_ALREADY_USED`; a copy of the struct cannot be told from the original, so
/// never complete a copy.
///
/// Callers read `flags` and `injected_latency_ns` only; zero-initialising the struct
/// before `bw_policy_acquire` is fine. `opaque` is the library's, its meaning may change
/// between releases: never write it. A struct the library did not fill (zeroed,
/// garbage), a permit of another policy and one completed before are refused with a
/// status (`BW_INVALID_ARGUMENT`, `BW_WRONG_HANDLE`, `BW_PERMIT_ALREADY_USED`); changed
/// words are never undefined behaviour. `reserved` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bw_permit {
    /// The library's words (the issuing policy object, what each stage granted, the
    /// live/used marker). Never read or change them.
    pub opaque: [u64; 6],
    /// Latency to inject before the call, in nanoseconds (0 for none; then
    /// `BW_PERMIT_INJECTED_LATENCY` is clear).
    pub injected_latency_ns: u64,
    /// `BW_PERMIT_*` bits, for the caller; completion does not read them.
    pub flags: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

/// The opaque words of a `bw_permit`: the only place that knows them, and the only
/// conversion between a `bw_permit` and a [`RawPolicyPermit`].
///
/// | word | meaning |
/// |------|---------|
/// | 0 | the issuing object's identity ([`RawPolicyPermit::instance`]) |
/// | 1 | breaker generation |
/// | 2 | breaker permit start (ns) |
/// | 3 | adaptive permit start (ns) |
/// | 4 | the policy's own call start (ns; 0 when it does not time calls) |
/// | 5 | packed, below |
///
/// Word 5: bits 0–31 adaptive in-flight count at admission; 32–33 adaptive priority;
/// 34–38 the stage bits, in the order of the `BW_PERMIT_*` flags they become (breaker
/// permit held, probe, adaptive permit held, bulkhead slot held, injected failure);
/// 39 set in the permit of a `bw_keyed_permit` that holds a key's slot (`ffi/keyed.rs`;
/// only `bw_policy_complete_keyed` completes it); 40–47 reserved (0); 48–63 live/used
/// marker.
pub(super) mod words {
    use super::super::codes::{
        BW_PERMIT_ADAPTIVE, BW_PERMIT_BREAKER, BW_PERMIT_BULKHEAD, BW_PERMIT_INJECTED_FAILURE,
        BW_PERMIT_PROBE,
    };

    pub(super) const IN_FLIGHT_MASK: u64 = 0xFFFF_FFFF;
    pub(super) const PRIORITY_SHIFT: u32 = 32;
    pub(super) const PRIORITY_MASK: u64 = 0b11;
    /// Where the stage bits start: shifted down by this, they are the flags.
    pub(super) const FLAGS_SHIFT: u32 = 34;
    pub(super) const FLAGS_MASK: u64 = 0x1F;
    pub(super) const HAS_BREAKER: u64 = (BW_PERMIT_BREAKER as u64) << FLAGS_SHIFT;
    pub(super) const PROBE: u64 = (BW_PERMIT_PROBE as u64) << FLAGS_SHIFT;
    pub(super) const HAS_ADAPTIVE: u64 = (BW_PERMIT_ADAPTIVE as u64) << FLAGS_SHIFT;
    pub(super) const HAS_BULKHEAD: u64 = (BW_PERMIT_BULKHEAD as u64) << FLAGS_SHIFT;
    pub(super) const INJECTED_FAILURE: u64 = (BW_PERMIT_INJECTED_FAILURE as u64) << FLAGS_SHIFT;
    pub(in crate::ffi) const KEYED: u64 = 1 << 39;
    pub(super) const RESERVED: u64 = 0xFF << 40;
    pub(super) const MARKER_SHIFT: u32 = 48;

    // The stage bits fit between the priority and the reserved bits.
    const _: () = assert!(
        (FLAGS_MASK << FLAGS_SHIFT) & (RESERVED | KEYED | PRIORITY_MASK << PRIORITY_SHIFT) == 0
    );
    const _: () = assert!(
        FLAGS_MASK << FLAGS_SHIFT
            == HAS_BREAKER | PROBE | HAS_ADAPTIVE | HAS_BULKHEAD | INJECTED_FAILURE
    );
    // A Rust permit's `held` bits are these flags: `issue` and `redeem` shift them
    // whole.
    const _: () = assert!(
        FLAGS_MASK == crate::policy::held::ALL as u64
            && HAS_BREAKER == (crate::policy::held::BREAKER as u64) << FLAGS_SHIFT
            && PROBE == (crate::policy::held::PROBE as u64) << FLAGS_SHIFT
            && HAS_ADAPTIVE == (crate::policy::held::ADAPTIVE as u64) << FLAGS_SHIFT
            && HAS_BULKHEAD == (crate::policy::held::BULKHEAD as u64) << FLAGS_SHIFT
            && INJECTED_FAILURE == (crate::policy::held::INJECTED_FAILURE as u64) << FLAGS_SHIFT
    );
}

impl bw_permit {
    /// The permit C receives for `raw`, marked live: its words as they are, the stage
    /// bits shifted into place (they are the `BW_PERMIT_*` flags already).
    #[inline]
    pub(super) fn issue(raw: RawPolicyPermit) -> bw_permit {
        use words::*;
        debug_assert_eq!(raw.held & crate::policy::held::COPIED, 0, "a fresh permit");
        let stages = u64::from(raw.held);
        let packed = u64::from(PERMIT_LIVE) << MARKER_SHIFT
            | stages << FLAGS_SHIFT
            | u64::from(raw.adaptive_in_flight)
            | (raw.adaptive_priority as u64) << PRIORITY_SHIFT;
        let flags = raw.held as u32
            | (u32::from(raw.injected_latency_ns != 0) * BW_PERMIT_INJECTED_LATENCY);
        bw_permit {
            opaque: [
                raw.instance,
                raw.breaker_generation,
                raw.breaker_started,
                raw.adaptive_start,
                raw.started_at,
                packed,
            ],
            injected_latency_ns: raw.injected_latency_ns,
            flags,
            reserved: 0,
        }
    }

    /// The common case of [`redeem`](Self::redeem), with no call out of line: a live
    /// permit with no bit an acquire does not set (the caller checked that the stages in
    /// force issued it, see [`Policy::complete_current`]). Marks it used and returns what
    /// it holds; `None` (the permit untouched) for everything else, which `redeem` then
    /// sorts out with the same checks and a status.
    #[inline(always)]
    pub(super) fn redeem_current(&mut self) -> Option<RawPolicyPermit> {
        use words::*;
        let packed = self.opaque[5];
        let priority = (packed >> PRIORITY_SHIFT) & PRIORITY_MASK;
        // One comparison for the marker, the keyed bit and the reserved bits together.
        let fixed = packed & (u64::MAX << MARKER_SHIFT | KEYED | RESERVED);
        if fixed != u64::from(PERMIT_LIVE) << MARKER_SHIFT || priority == PRIORITY_MASK {
            return None;
        }
        let raw = self.words_to_raw(packed, priority);
        // The marker is live (checked above): one xor makes it used.
        self.opaque[5] = packed ^ (u64::from(PERMIT_LIVE ^ PERMIT_USED) << MARKER_SHIFT);
        Some(raw)
    }

    /// What the (checked) words hold; `packed` is word 5, `priority` its priority code.
    #[inline(always)]
    fn words_to_raw(&self, packed: u64, priority: u64) -> RawPolicyPermit {
        use words::*;
        RawPolicyPermit {
            instance: self.opaque[0],
            breaker_generation: self.opaque[1],
            breaker_started: self.opaque[2],
            adaptive_start: self.opaque[3],
            started_at: self.opaque[4],
            // Completion reads nothing of the chaos decision but the failure (the caller
            // already acted on the latency).
            injected_latency_ns: 0,
            keyed: None,
            adaptive_in_flight: (packed & IN_FLIGHT_MASK) as u32,
            // Five bits (`FLAGS_MASK`): the truncation keeps them all. Words a caller
            // may have copied: its bulkhead slot goes back by the checked release.
            held: ((packed >> FLAGS_SHIFT) & FLAGS_MASK) as u8 | crate::policy::held::COPIED,
            // Codes 0–2 are all priorities (checked by the callers and in the tests).
            adaptive_priority: Priority::from_code(priority as i64).unwrap_or_default(),
        }
    }

    /// Checks that this permit is a live one of `policy`, marks it used and returns
    /// what it holds; on error the permit is untouched and the status says why.
    #[inline]
    pub(super) fn redeem(&mut self, policy: &Policy) -> Result<RawPolicyPermit, bw_status> {
        use words::*;
        let packed = self.opaque[5];
        if packed & KEYED != 0 {
            return Err(fail(
                bw_status::BW_INVALID_ARGUMENT,
                "this permit holds a key's slot: complete its bw_keyed_permit with \
                 bw_policy_complete_keyed",
            ));
        }
        let marker = (packed >> MARKER_SHIFT) as u32;
        // The handle follows reloads: a permit of stages it replaced but still keeps
        // belongs to it too (it completes against those stages).
        let owner = if policy.issued(self.opaque[0]) {
            self.opaque[0]
        } else {
            policy.instance()
        };
        check_permit(marker, self.opaque[0], owner, "permit")?;
        // Bits no acquire sets: reserved ones, or priority code 3 (no `Priority` has it).
        let priority = (packed >> PRIORITY_SHIFT) & PRIORITY_MASK;
        if packed & RESERVED != 0 || priority == PRIORITY_MASK {
            return Err(fail(
                bw_status::BW_INVALID_ARGUMENT,
                "the permit's words were changed after bw_policy_acquire",
            ));
        }
        let raw = self.words_to_raw(packed, priority);
        // The marker is live (checked above): one xor makes it used.
        self.opaque[5] = packed ^ (u64::from(PERMIT_LIVE ^ PERMIT_USED) << MARKER_SHIFT);
        Ok(raw)
    }
}

/// Asks every stage of `policy` for a permit, at `priority` (`BW_PRIORITY_*`).
///
/// - `BW_OK`: `*out_permit` is filled; complete it exactly once.
/// - a rejection status (`BW_CIRCUIT_OPEN`, `BW_RATE_LIMITED`, `BW_BULKHEAD_FULL`,
///   `BW_LOAD_SHED`, `BW_INJECTED_REJECTION`): `*out_permit` is untouched and, when
///   `out_retry_after_ns` is not NULL, it receives the wait after which a new attempt
///   may pass (0 when unknown). A rejection is an answer, not an error: no message is
///   recorded and nothing is allocated.
/// - `BW_NULL_POINTER` (policy or out_permit NULL), `BW_INVALID_ARGUMENT` (unknown
///   priority): nothing written.
///
/// Thread-safe; may block only if the policy's bulkhead has a `max_wait`.
///
/// # Safety
/// `policy` must be NULL or live; `out_permit` and `out_retry_after_ns` NULL or valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_acquire(
    policy: *const bw_policy,
    priority: i32,
    out_permit: *mut bw_permit,
    out_retry_after_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_permit);
        let priority = match parse_priority(priority) {
            Ok(p) => p,
            Err(status) => return status,
        };
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        // The permit goes straight from the stage that granted it to C: no `Result`
        // to build and take apart.
        policy.acquire_raw_then(
            priority,
            |raw| {
                // SAFETY: non-NULL and writable by contract.
                unsafe { write_out(out_permit, bw_permit::issue(raw)) };
                bw_status::BW_OK
            },
            // SAFETY: NULL or writable by contract.
            |rejection| unsafe { write_rejection(&rejection, out_retry_after_ns) },
        )
    })
}

/// Reports how the call of `permit` went (`outcome`: `BW_OUTCOME_*`) and frees what
/// the permit holds. `duration_ns` is the call's duration, or `BW_DURATION_UNKNOWN` to
/// let the policy use its own measurement (it times calls when it has a timeout).
///
/// Returns `BW_OK`; `BW_NULL_POINTER`; `BW_INVALID_ARGUMENT` for an unknown outcome
/// (the permit stays live: complete it again with a valid one) or a struct that
/// `bw_policy_acquire` did not fill (zeroed, or its `opaque` words changed);
/// `BW_PERMIT_ALREADY_USED` if this permit was completed before; `BW_WRONG_HANDLE` if
/// it came from another policy (the permit stays live). On success the permit is
/// marked used; on any error nothing is completed. Thread-safe, allocation-free on
/// success.
///
/// # Safety
/// `policy` must be NULL or live; `permit` NULL or a permit filled by
/// `bw_policy_acquire`, not accessed by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_complete(
    policy: *const bw_policy,
    permit: *mut bw_permit,
    outcome: i32,
    duration_ns: u64,
) -> bw_status {
    ffi_status!({
        // SAFETY: the caller's contract is `completion`'s.
        let (policy, permit, outcome, duration) =
            match unsafe { completion(policy, permit, outcome, duration_ns) } {
                Ok(args) => args,
                Err(status) => return status,
            };
        let instance = permit.opaque[0];
        if policy.complete_current(instance, || permit.redeem_current(), outcome, duration) {
            return bw_status::BW_OK;
        }
        complete_checked(policy, permit, outcome, duration)
    })
}

/// What a completion (`bw_policy_complete`, `bw_policy_complete_keyed`) takes from its
/// arguments, checked in the order both document: the NULL pointers, then the outcome
/// (`BW_INVALID_ARGUMENT`, the permit untouched); the duration as the policy reads it.
///
/// # Safety
/// `policy` must be NULL or live; `permit` NULL or valid and not accessed by another
/// thread while the returned borrow lives.
#[inline(always)]
pub(super) unsafe fn completion<'a, P>(
    policy: *const bw_policy,
    permit: *mut P,
    outcome: i32,
    duration_ns: u64,
) -> Result<(&'a Policy, &'a mut P, crate::Outcome, Option<Duration>), bw_status> {
    let checked = || -> bw_status {
        ensure_non_null!(policy, permit);
        bw_status::BW_OK
    };
    match checked() {
        bw_status::BW_OK => {}
        status => return Err(status),
    }
    let outcome = parse_outcome(outcome)?;
    // SAFETY: non-NULL (checked) and live by this function's contract.
    let policy = unsafe { bw_policy::borrow(policy) };
    // SAFETY: non-NULL (checked), valid and not shared while borrowed, by this
    // function's contract.
    let permit = unsafe { &mut *permit };
    let duration = known_duration(duration_ns).map(Duration::from_nanos);
    Ok((policy, permit, outcome, duration))
}

/// `bw_policy_complete` for every permit `redeem_current` leaves: one of replaced
/// stages, or one to refuse with the status that says why.
#[cold]
#[inline(never)]
fn complete_checked(
    policy: &Policy,
    permit: &mut bw_permit,
    outcome: crate::Outcome,
    duration: Option<Duration>,
) -> bw_status {
    match permit.redeem(policy) {
        Ok(raw) => {
            policy.complete_raw(raw, outcome, duration);
            bw_status::BW_OK
        }
        Err(status) => status,
    }
}

/// Adds a reference to `policy` and returns it (NULL gives NULL). Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_clone(policy: *const bw_policy) -> *mut bw_policy {
    // SAFETY: NULL or live by contract.
    unsafe { clone_or_null(policy) }
}

/// Drops one reference to `policy`; NULL is a no-op. Must not be called twice with the
/// same reference. Permits of the policy must be completed before its last reference
/// is dropped.
///
/// # Safety
/// `policy` must be NULL or a live reference owned by the caller.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_free(policy: *const bw_policy) {
    // SAFETY: NULL or a live, owned reference, by contract.
    unsafe { release(policy) }
}

/// Whether a reload removed this policy from its engine: the reference keeps working
/// with its last configuration and no longer follows reloads. A policy whose
/// configuration a reload changed is not superseded: the reference follows the change
/// by itself. False for NULL. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_is_superseded(policy: *const bw_policy) -> bool {
    // SAFETY: NULL or live by contract.
    unsafe { value_or(policy, false, |h| h.is_superseded()) }
}

/// Writes the policy's per-attempt `timeout` (nanoseconds; 0 when it has none) to
/// `*out_timeout_ns`, so a binding that can cancel a call (Go `context`, Python
/// `asyncio`) cuts it at the same deadline after which the policy records `Timeout`.
/// A held handle reads the configuration it follows now. Returns `BW_OK` or
/// `BW_NULL_POINTER` (nothing written). Thread-safe, allocation-free.
///
/// # Safety
/// `policy` must be NULL or live; `out_timeout_ns` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_timeout(
    policy: *const bw_policy,
    out_timeout_ns: *mut u64,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out_timeout_ns);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        let timeout = policy
            .config()
            .timeout
            .map_or(0, crate::clock::duration_to_nanos);
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out_timeout_ns, timeout) };
        bw_status::BW_OK
    })
}

/// A policy's counters and the state of its stages, filled by `bw_policy_get_stats`.
/// Counters are exact and monotonic; `success + failure + timeout + ignored ≤
/// permitted` always holds. Fields of stages the policy does not have read as noted.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct bw_policy_stats {
    /// Permits handed out.
    pub permitted: u64,
    /// Completed calls by outcome.
    pub success: u64,
    /// Failed calls.
    pub failure: u64,
    /// Timed-out calls.
    pub timeout: u64,
    /// Ignored calls (cancelled, released).
    pub ignored: u64,
    /// Calls slower than the breaker's slow-call duration.
    pub slow: u64,
    /// Retry attempts started by `call` loops.
    pub retries: u64,
    /// Rejections by an open breaker.
    pub rejected_circuit_open: u64,
    /// Rejections by the rate limiter.
    pub rejected_rate_limited: u64,
    /// Rejections by the bulkhead.
    pub rejected_bulkhead_full: u64,
    /// Rejections by the adaptive limit or the throttle.
    pub rejected_load_shed: u64,
    /// Retries the retry budget refused (see `BW_EVENT_BUDGET_EXHAUSTED`).
    pub rejected_retry_budget_exhausted: u64,
    /// Rejections injected by chaos.
    pub rejected_injected: u64,
    /// Breaker transitions into closed.
    pub transitions_to_closed: u64,
    /// Breaker transitions into open.
    pub transitions_to_open: u64,
    /// Breaker transitions into half-open.
    pub transitions_to_half_open: u64,
    /// Breaker transitions into forced-open.
    pub transitions_to_forced_open: u64,
    /// Breaker transitions into disabled.
    pub transitions_to_disabled: u64,
    /// Calls with a known duration (in the latency histogram).
    pub latency_count: u64,
    /// Sum of those durations, ns.
    pub latency_sum_ns: u64,
    /// Median latency, ns (0 when no call was timed).
    pub latency_p50_ns: u64,
    /// 90th percentile latency, ns.
    pub latency_p90_ns: u64,
    /// 99th percentile latency, ns.
    pub latency_p99_ns: u64,
    /// 99.9th percentile latency, ns.
    pub latency_p999_ns: u64,
    /// Breaker generation (0 without a breaker).
    pub breaker_generation: u64,
    /// Tokens the rate limiter would grant now; -1 without a limiter.
    pub limiter_available: i64,
    /// `BW_BREAKER_*`, or -1 without a breaker.
    pub breaker_state: i32,
    /// Bulkhead permits out (0 without a bulkhead).
    pub bulkhead_in_flight: u32,
    /// Bulkhead limit; 0 without a bulkhead.
    pub bulkhead_max_concurrent: u32,
    /// Adaptive limit now; 0 without an adaptive stage.
    pub adaptive_limit: u32,
    /// Adaptive permits out.
    pub adaptive_in_flight: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// Fills `*out` with the policy's counters and stage states. Returns `BW_OK` or
/// `BW_NULL_POINTER` (nothing written). Thread-safe; allocates the snapshot it reads
/// (the policy's name and latency histogram), freed before it returns.
///
/// # Safety
/// `policy` must be NULL or live; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_get_stats(
    policy: *const bw_policy,
    out: *mut bw_policy_stats,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy, out);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        let s = policy.snapshot();
        let m = &s.metrics;
        let nanos = |d: Option<Duration>| d.map_or(0, crate::clock::duration_to_nanos);
        let stats = bw_policy_stats {
            permitted: m.permitted,
            success: m.success,
            failure: m.failure,
            timeout: m.timeout,
            ignored: m.ignored,
            slow: m.slow,
            retries: m.retries,
            rejected_circuit_open: m.rejected[crate::RejectReason::CircuitOpen.index()],
            rejected_rate_limited: m.rejected[crate::RejectReason::RateLimited.index()],
            rejected_bulkhead_full: m.rejected[crate::RejectReason::BulkheadFull.index()],
            rejected_load_shed: m.rejected[crate::RejectReason::LoadShed.index()],
            rejected_retry_budget_exhausted: m.rejected
                [crate::RejectReason::RetryBudgetExhausted.index()],
            rejected_injected: m.rejected[crate::RejectReason::Injected.index()],
            transitions_to_closed: m.transitions[0],
            transitions_to_open: m.transitions[1],
            transitions_to_half_open: m.transitions[2],
            transitions_to_forced_open: m.transitions[3],
            transitions_to_disabled: m.transitions[4],
            latency_count: m.latency.count,
            latency_sum_ns: m.latency.sum_nanos,
            latency_p50_ns: nanos(m.latency.p50()),
            latency_p90_ns: nanos(m.latency.p90()),
            latency_p99_ns: nanos(m.latency.p99()),
            latency_p999_ns: nanos(m.latency.p999()),
            breaker_generation: s.breaker.as_ref().map_or(0, |b| b.generation),
            limiter_available: s
                .limiter
                .as_ref()
                .map_or(-1, |l| l.available.min(i64::MAX as u64) as i64),
            breaker_state: s.breaker.as_ref().map_or(-1, |b| b.state as i32),
            bulkhead_in_flight: s.bulkhead.as_ref().map_or(0, |b| b.in_flight),
            bulkhead_max_concurrent: s.bulkhead.as_ref().map_or(0, |b| b.max_concurrent),
            adaptive_limit: s.adaptive.as_ref().map_or(0, |a| a.limit),
            adaptive_in_flight: s.adaptive.as_ref().map_or(0, |a| a.in_flight),
            reserved: 0,
        };
        // SAFETY: non-NULL and writable by contract.
        unsafe { write_out(out, stats) };
        bw_status::BW_OK
    })
}

/// Runs `act` on the policy's breaker; `BW_NO_STAGE` when it has none.
///
/// # Safety
/// `policy` must be NULL or live.
unsafe fn with_breaker(
    policy: *const bw_policy,
    act: fn(&crate::breaker::CircuitBreaker<crate::clock::AnyClock>),
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy);
        // SAFETY: non-NULL and live by this function's contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match policy.breaker() {
            Some(breaker) => {
                act(breaker);
                bw_status::BW_OK
            }
            None => fail(
                bw_status::BW_NO_STAGE,
                format_args!("policy \"{}\" has no circuit_breaker", policy.name()),
            ),
        }
    })
}

/// Opens the policy's circuit breaker until `bw_policy_breaker_reset`: every call is
/// rejected with `BW_CIRCUIT_OPEN`. Returns `BW_OK`, `BW_NULL_POINTER`, or
/// `BW_NO_STAGE` if the policy has no circuit breaker. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_breaker_force_open(policy: *const bw_policy) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { with_breaker(policy, |b| b.force_open()) }
}

/// Lets every call through the policy's breaker until `bw_policy_breaker_reset`.
/// Statuses as for `bw_policy_breaker_force_open`. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_breaker_disable(policy: *const bw_policy) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { with_breaker(policy, |b| b.disable()) }
}

/// Puts the policy's breaker back to closed with an empty window. Statuses as for
/// `bw_policy_breaker_force_open`. Thread-safe.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_breaker_reset(policy: *const bw_policy) -> bw_status {
    // SAFETY: NULL or live by contract.
    unsafe { with_breaker(policy, |b| b.reset()) }
}

/// Turns the policy's fault injection on or off (its tuning is kept). Returns `BW_OK`,
/// `BW_NULL_POINTER`, or `BW_NO_STAGE` if the policy has no `chaos` section.
/// Thread-safe; takes effect for the next acquire.
///
/// # Safety
/// `policy` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn bw_policy_chaos_set_enabled(
    policy: *const bw_policy,
    enabled: bool,
) -> bw_status {
    ffi_status!({
        ensure_non_null!(policy);
        // SAFETY: non-NULL and live by contract.
        let policy = unsafe { bw_policy::borrow(policy) };
        match policy.chaos() {
            Some(chaos) => {
                chaos.set_enabled(enabled);
                bw_status::BW_OK
            }
            None => fail(
                bw_status::BW_NO_STAGE,
                format_args!("policy \"{}\" has no chaos stage", policy.name()),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{ChaosConfig, LatencyFault};
    use crate::clock::{AnyClock, ManualClock};
    use crate::ffi::codes::{
        BW_OUTCOME_SUCCESS, BW_PERMIT_INJECTED_FAILURE, BW_PERMIT_INJECTED_LATENCY,
        BW_PRIORITY_DEFAULT,
    };
    use crate::policy::PolicyConfig;

    /// A C handle of a policy with only `chaos`, enabled, on a manual clock.
    fn chaos_policy(chaos: ChaosConfig) -> *mut bw_policy {
        let config = PolicyConfig::new("chaos").with_chaos(chaos.with_enabled(true));
        let clock = AnyClock::Manual(ManualClock::new());
        bw_policy::into_handle(Policy::with_clock(config, clock).unwrap())
    }

    /// Acquires `n` permits of `policy` through the C ABI and completes each; returns
    /// each permit's (flags, injected latency) as C read them.
    fn acquire_and_complete(policy: *mut bw_policy, n: usize) -> Vec<(u32, u64)> {
        (0..n)
            .map(|_| {
                // SAFETY: all-zero bytes are a valid `bw_permit` (plain integers).
                let mut permit: bw_permit = unsafe { std::mem::zeroed() };
                // SAFETY: a live policy and valid out-pointers.
                let status = unsafe {
                    bw_policy_acquire(
                        policy,
                        BW_PRIORITY_DEFAULT,
                        &mut permit,
                        std::ptr::null_mut(),
                    )
                };
                assert_eq!(status, bw_status::BW_OK);
                let seen = (permit.flags, permit.injected_latency_ns);
                // SAFETY: as above; the permit was filled by the acquire.
                let status =
                    unsafe { bw_policy_complete(policy, &mut permit, BW_OUTCOME_SUCCESS, 0) };
                assert_eq!(status, bw_status::BW_OK);
                seen
            })
            .collect()
    }

    /// A C caller may copy a permit's words and complete both copies: the second
    /// finds its bulkhead slot already back and must change nothing (a Rust permit's
    /// slot goes back by a fetch-sub that would take it from the waiters' count).
    #[test]
    fn a_copied_permit_completed_twice_leaves_the_bulkhead_whole() {
        use crate::bulkhead::BulkheadConfig;
        use crate::ffi::codes::BW_OUTCOME_SUCCESS;
        let config = PolicyConfig::new("copied").with_bulkhead(BulkheadConfig::new(1));
        let policy = bw_policy::into_handle(Policy::new(config).unwrap());
        let acquire = |permit: &mut bw_permit| {
            // SAFETY: a live policy and valid out-pointers.
            unsafe { bw_policy_acquire(policy, BW_PRIORITY_DEFAULT, permit, std::ptr::null_mut()) }
        };
        let complete = |permit: &mut bw_permit| {
            // SAFETY: as above; the permit's words came from an acquire.
            unsafe { bw_policy_complete(policy, permit, BW_OUTCOME_SUCCESS, 0) }
        };
        // SAFETY: all-zero bytes are a valid `bw_permit` (plain integers).
        let mut permit: bw_permit = unsafe { std::mem::zeroed() };
        assert_eq!(acquire(&mut permit), bw_status::BW_OK);
        let mut copy = permit;
        assert_eq!(complete(&mut permit), bw_status::BW_OK);
        assert_eq!(complete(&mut copy), bw_status::BW_OK);
        for _ in 0..3 {
            assert_eq!(acquire(&mut permit), bw_status::BW_OK);
            assert_eq!(acquire(&mut copy), bw_status::BW_BULKHEAD_FULL, "one slot");
            assert_eq!(complete(&mut permit), bw_status::BW_OK);
        }
        // SAFETY: the handle came from `into_handle` and is freed once.
        unsafe { bw_policy_free(policy) };
    }

    #[test]
    fn the_injected_latency_flag_is_set_exactly_when_latency_is_injected() {
        let latency = LatencyFault::Fixed(Duration::from_millis(5));
        let always = chaos_policy(
            ChaosConfig::default()
                .with_latency_probability(1.0)
                .with_latency(latency),
        );
        for (flags, ns) in acquire_and_complete(always, 50) {
            assert_eq!(ns, 5_000_000);
            assert_eq!(
                flags & BW_PERMIT_INJECTED_LATENCY,
                BW_PERMIT_INJECTED_LATENCY
            );
            assert_eq!(flags & BW_PERMIT_INJECTED_FAILURE, 0);
        }
        let failing = chaos_policy(ChaosConfig::default().with_failure_probability(1.0));
        for (flags, ns) in acquire_and_complete(failing, 50) {
            assert_eq!(ns, 0);
            assert_eq!(flags & BW_PERMIT_INJECTED_LATENCY, 0);
            assert_eq!(
                flags & BW_PERMIT_INJECTED_FAILURE,
                BW_PERMIT_INJECTED_FAILURE
            );
        }
        // Half and half: the flag follows each permit's own draw, both ways.
        let half = chaos_policy(
            ChaosConfig::default()
                .with_latency_probability(0.5)
                .with_failure_probability(0.5)
                .with_latency(latency),
        );
        let seen = acquire_and_complete(half, 400);
        for &(flags, ns) in &seen {
            assert_eq!(
                flags & BW_PERMIT_INJECTED_LATENCY != 0,
                ns != 0,
                "{flags:#x}"
            );
        }
        let with_latency = seen.iter().filter(|(_, ns)| *ns != 0).count();
        let failed = seen
            .iter()
            .filter(|(f, _)| f & BW_PERMIT_INJECTED_FAILURE != 0)
            .count();
        assert!(
            with_latency > 0 && with_latency < seen.len(),
            "{with_latency}"
        );
        assert!(failed > 0 && failed < seen.len(), "{failed}");
        for policy in [always, failing, half] {
            // SAFETY: the reference made by `chaos_policy`, freed once.
            unsafe { bw_policy_free(policy) };
        }
    }
}
