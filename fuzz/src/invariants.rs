//! What must hold for any input. Each function panics (the fuzzer's "crash") when an
//! invariant is broken, and returns normally otherwise.

use breakwater::config::{explain, PolicyFile};

/// The policy-file reader on arbitrary bytes: an error, or a configuration whose
/// `explain` re-parses to itself (and explains to the same text again).
pub fn policy_file(data: &[u8]) {
    let Ok(file) = PolicyFile::from_bytes(data) else {
        return;
    };
    let explained = explain(&file.policies);
    let reparsed = match PolicyFile::parse(&explained) {
        Ok(reparsed) => reparsed,
        Err(error) => panic!("explain wrote a file that does not load: {error}\n{explained}"),
    };
    assert_eq!(reparsed, file, "explain changed the meaning:\n{explained}");
    assert_eq!(
        explain(&reparsed.policies),
        explained,
        "explain is not stable"
    );
}

/// The policy-file reader and `explain` on a mostly-valid file the generator
/// (`generate.rs`) builds from `data`: the same invariant as [`policy_file`], reached
/// past the TOML parser.
pub fn policy_file_structured(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    if let Ok(text) = crate::generate::policy_file(&mut u) {
        policy_file(text.as_bytes());
    }
}

/// The segment `shm_segment` writes its inputs to, and what a fresh one holds.
struct ShmFixture {
    name: String,
    config: breakwater::policy::PolicyConfig,
    header: Vec<u8>,
    total: usize,
}

fn shm_fixture() -> &'static ShmFixture {
    use breakwater::breaker::BreakerConfig;
    use breakwater::bulkhead::BulkheadConfig;
    use breakwater::limiter::RateLimiterConfig;
    use breakwater::policy::{Policy, PolicyConfig};
    use std::time::Duration;

    static FIXTURE: std::sync::OnceLock<ShmFixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let name = shm_segment_name();
        let _ = breakwater::shm::remove_segment(&name);
        let config = PolicyConfig::new("p")
            .with_circuit_breaker(
                BreakerConfig::default()
                    .with_minimum_calls(2)
                    .with_half_open_permits(2)
                    .with_open_duration(Duration::from_millis(1)),
            )
            .with_rate_limiter(RateLimiterConfig::new(1000, Duration::from_secs(1)))
            .with_bulkhead(BulkheadConfig::new(3))
            .with_host_scope(name.clone());
        drop(Policy::new(config.clone()).expect("a fresh segment attaches"));
        let bytes = std::fs::read(format!("/dev/shm/breakwater.{name}")).unwrap();
        ShmFixture {
            name,
            config,
            header: bytes[..128].to_vec(),
            total: bytes.len(),
        }
    })
}

/// The name of the segment [`shm_segment`] writes its inputs to: this process's own
/// (remove it with `breakwater::shm::remove_segment` when done).
pub fn shm_segment_name() -> String {
    format!("fuzz-{}", std::process::id())
}

/// A host-wide segment with arbitrary bytes: whatever another process (or a bug, or a
/// stray write) left in it, attaching it gives `Ok` or a named error, and using a
/// segment whose header is valid but whose state words are garbage never panics, never
/// hangs, and never hands out more bulkhead permits than it has slots.
///
/// Input: byte 0 chooses whether the valid header is written over the input (bit 0),
/// whether the segment is cut short (bit 1: a truncated segment of the input's length)
/// and which operations run (the rest); the remaining bytes are the segment's contents,
/// cycled to the layout's size.
pub fn shm_segment(data: &[u8]) {
    use breakwater::policy::Policy;
    use breakwater::Outcome;

    let f = shm_fixture();
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut image: Vec<u8> = if body.is_empty() {
        vec![0; f.total]
    } else {
        body.iter().copied().cycle().take(f.total).collect()
    };
    if mode & 1 != 0 {
        image[..128].copy_from_slice(&f.header);
    }
    if mode & 2 != 0 {
        image.truncate(body.len().min(f.total));
    }
    std::fs::write(format!("/dev/shm/breakwater.{}", f.name), &image).unwrap();
    let policy = match Policy::new(f.config.clone()) {
        Ok(policy) => policy,
        Err(e) => {
            assert!(
                e.host_error().is_some(),
                "a segment error is a named one: {e}"
            );
            return;
        }
    };
    let mut permits = Vec::new();
    for step in 0..8u8 {
        match (mode >> 2).wrapping_add(step) % 4 {
            0 | 1 => {
                if let Ok(p) = policy.acquire() {
                    permits.push(p);
                }
            }
            2 => {
                if let Some(p) = permits.pop() {
                    p.record(Outcome::Failure);
                }
            }
            _ => {
                policy.breaker().unwrap().reclaim_dead_owners();
            }
        }
    }
    // Each permit holds its own slot word: never more than the bulkhead's size, whatever
    // the words held before (a reclaim may free garbage tokens of "dead" owners).
    assert!(
        permits.len() <= 3,
        "{} permits out of 3 slots",
        permits.len()
    );
    for p in permits {
        p.record(Outcome::Success);
    }
}

/// The C ABI as a sequence of operations against one engine on a manual clock: create,
/// acquire, complete (with arbitrary outcome codes and durations, and with permits made
/// of arbitrary bytes), reload with arbitrary text, clock moves (also backwards), the
/// breaker switches, chaos, the retry loop, the text outputs, free. Every status is one
/// the header documents and never `BW_PANIC`; a policy's counters stay consistent
/// (`completions <= permitted`); nothing leaks (LeakSanitizer, in the fuzzer).
#[cfg(feature = "capi")]
pub fn ffi_ops(data: &[u8]) {
    use arbitrary::Unstructured;
    use breakwater::ffi::clock::*;
    use breakwater::ffi::engine::*;
    use breakwater::ffi::keyed::*;
    use breakwater::ffi::limiter::*;
    use breakwater::ffi::policy::*;
    use breakwater::ffi::policy_retry::*;
    use breakwater::ffi::retry::*;
    use breakwater::ffi::status::{bw_status, bw_status_str};
    use breakwater::ffi::strings::bw_string_free;
    use std::ffi::{CStr, CString};
    use std::ptr;

    const FILES: &[&str] = &[
        "[policies.a.circuit_breaker]\nminimum_calls = 2\nwindow = { type = \"count\", size = 4 }\n\
         [policies.a.rate_limiter]\nrate = 5\nburst = 2\n[policies.a.bulkhead]\nmax_concurrent = 2\n\
         [policies.a.retry]\nmax_attempts = 3\nbudget = { ratio = 0.5 }\n\
         [policies.a.per_key]\nrate = 3\nburst = 2\nmax_concurrent = 1\nmax_keys = 2\n",
        "[policies.a]\ntimeout = \"1ms\"\n[policies.a.adaptive]\nalgorithm = \"aimd\"\n\
         [policies.a.chaos]\nenabled = true\nfailure_probability = 0.3\nrejection_probability = 0.2\n\
         latency_probability = 0.5\nlatency = \"1ms\"\n[policies.b.throttle]\nk = 1.5\n",
        "[policies.b.circuit_breaker]\nconsecutive_failures = 1\nopen_duration = \"1ms\"\n",
    ];

    fn check(code: bw_status) -> bw_status {
        assert_ne!(code, bw_status::BW_PANIC, "a panic reached the C boundary");
        // SAFETY: bw_status_str returns a static NUL-terminated string for any code.
        let text = unsafe { CStr::from_ptr(bw_status_str(code as i32)) };
        assert_ne!(
            text.to_bytes(),
            b"unknown status",
            "undocumented status {}",
            code as i32
        );
        code
    }

    let mut u = Unstructured::new(data);
    let mut clock = ptr::null_mut();
    // SAFETY: valid out-pointer.
    check(unsafe { bw_clock_new_manual(1, &mut clock) });
    let first = CString::new(FILES[0]).unwrap();
    let mut engine = ptr::null_mut();
    // SAFETY: valid NUL-terminated text, a live clock, a valid out-pointer.
    check(unsafe { bw_engine_from_toml(first.as_ptr(), clock, &mut engine) });
    let mut policies: Vec<*mut bw_policy> = Vec::new();
    let mut permits: Vec<(usize, bw_permit)> = Vec::new();
    let mut keyed: Vec<(usize, bw_keyed_permit)> = Vec::new();

    // A standalone limiter on its own clock, which only goes forward (the quota's bound
    // holds for a clock that does not run backwards): 10 a second, burst 4.
    const BURST: u64 = 4;
    const INTERVAL_NS: u64 = 100_000_000;
    let mut lclock = ptr::null_mut();
    // SAFETY: valid out-pointer.
    check(unsafe { bw_clock_new_manual(1, &mut lclock) });
    let mut limiter = ptr::null_mut();
    // SAFETY: valid out-pointers, live builder and clock; the builder freed once.
    unsafe {
        let mut config = ptr::null_mut();
        check(bw_limiter_config_new(&mut config));
        check(bw_limiter_config_set_rate(config, 10, 1_000_000_000));
        check(bw_limiter_config_set_burst(config, BURST));
        assert_eq!(
            check(bw_limiter_new(config, lclock, &mut limiter)),
            bw_status::BW_OK
        );
        bw_limiter_config_free(config);
    }
    // Every reservation the limiter issued (so a "forgery" equal to one is not taken
    // for one: a copy of a real reservation is the caller's to cancel at most once),
    // those still live, and the permits granted and given back.
    let mut issued: Vec<[u64; 5]> = Vec::new();
    let mut reservations: Vec<bw_reservation> = Vec::new();
    // `horizon`: the latest instant (since the start) a granted permit falls due.
    let (mut granted, mut given_back, mut elapsed, mut horizon) = (0u64, 0u64, 0u64, 0u64);
    let words = |r: &bw_reservation| {
        [
            r.instance,
            r.wait_ns,
            r.permits,
            r.tat,
            u64::from(r.reserved) | u64::from(r.state) << 32,
        ]
    };
    // The quota: the permits kept (granted, less at most what the cancels that went
    // through gave back), all due by `horizon`, never exceed `burst + horizon / interval`
    // (one more for rounding).
    let within_quota = |granted: u64, given_back: u64, horizon: u64| {
        let kept = granted.saturating_sub(given_back);
        assert!(
            kept <= BURST + horizon / INTERVAL_NS + 1,
            "{kept} permits kept, due within {horizon} ns (granted {granted}, given back at most {given_back})"
        );
    };
    let consistent = |policies: &[*mut bw_policy]| {
        for &p in policies {
            let mut s = bw_policy_stats::default();
            // SAFETY: live policy, valid out-pointer.
            check(unsafe { bw_policy_get_stats(p, &mut s) });
            let completed = s.success + s.failure + s.timeout + s.ignored;
            assert!(
                completed <= s.permitted,
                "{completed} completions > {} permitted",
                s.permitted
            );
        }
    };
    // An exhausted input reads as zeroes: stop there rather than repeat op 0.
    let mut ops = 0u32;
    let mut renders = 0u8;
    while !u.is_empty() && ops < 512 {
        ops += 1;
        let Ok(op) = u.int_in_range(0..=17u8) else {
            break;
        };
        match op {
            0 => {
                let name = CString::new(*u.choose(&["a", "b", "c"]).unwrap_or(&"a")).unwrap();
                let mut p = ptr::null_mut();
                // SAFETY: live engine, NUL-terminated name, valid out-pointer.
                if check(unsafe { bw_engine_policy(engine, name.as_ptr(), &mut p) })
                    == bw_status::BW_OK
                {
                    if policies.len() < 8 {
                        policies.push(p);
                    } else {
                        // SAFETY: the reference just taken, freed once.
                        unsafe { bw_policy_free(p) };
                    }
                }
            }
            1 | 2 if !policies.is_empty() => {
                let i = u.choose_index(policies.len()).unwrap_or(0);
                let priority = u.arbitrary::<i32>().unwrap_or(1) % 4;
                // SAFETY: bw_permit is plain integers; all zeroes is a value (an empty permit).
                let mut permit: bw_permit = unsafe { std::mem::zeroed() };
                let mut after = 0;
                // SAFETY: live policy, valid out-pointers.
                let code = check(unsafe {
                    bw_policy_acquire(policies[i], priority, &mut permit, &mut after)
                });
                if code == bw_status::BW_OK && permits.len() < 32 {
                    permits.push((i, permit));
                } else if code == bw_status::BW_OK {
                    // SAFETY: the permit this policy just issued.
                    check(unsafe { bw_policy_complete(policies[i], &mut permit, 0, 0) });
                }
            }
            3 if !permits.is_empty() => {
                let (i, mut permit) =
                    permits.swap_remove(u.choose_index(permits.len()).unwrap_or(0));
                let outcome = u.arbitrary::<i32>().unwrap_or(0) % 6;
                let duration = u.arbitrary::<u64>().unwrap_or(u64::MAX);
                // SAFETY: a permit issued by this policy (completing twice is refused).
                let first = check(unsafe {
                    bw_policy_complete(policies[i], &mut permit, outcome, duration)
                });
                if first != bw_status::BW_OK {
                    // Refused (an outcome code out of range): the permit is still out and
                    // must still complete.
                    // SAFETY: as above.
                    let code = check(unsafe { bw_policy_complete(policies[i], &mut permit, 3, 0) });
                    assert_eq!(
                        code,
                        bw_status::BW_OK,
                        "a refused completion used the permit"
                    );
                } else if u.ratio(1, 8).unwrap_or(false) {
                    // SAFETY: as above; a second completion must be refused, not counted.
                    let again =
                        check(unsafe { bw_policy_complete(policies[i], &mut permit, 0, 0) });
                    assert_ne!(again, bw_status::BW_OK, "a permit completed twice");
                }
            }
            4 if !policies.is_empty() => {
                // A permit of arbitrary bytes: refused or completed, never UB.
                let mut bytes = [0u8; std::mem::size_of::<bw_permit>()];
                let _ = u.fill_buffer(&mut bytes);
                // SAFETY: bw_permit is plain data (integers only): any bytes are a value.
                let mut permit: bw_permit = unsafe { std::mem::transmute(bytes) };
                let i = u.choose_index(policies.len()).unwrap_or(0);
                // SAFETY: live policy; a forged permit is what this exercises.
                check(unsafe { bw_policy_complete(policies[i], &mut permit, 0, 5) });
            }
            5 => {
                let text = if u.ratio(1, 2).unwrap_or(true) {
                    FILES[u.choose_index(FILES.len()).unwrap_or(0)]
                        .as_bytes()
                        .to_vec()
                } else {
                    let n = u.int_in_range(0..=200).unwrap_or(0);
                    u.bytes(n).unwrap_or_default().to_vec()
                };
                if let Ok(text) = CString::new(text) {
                    // SAFETY: live engine, NUL-terminated text.
                    check(unsafe { bw_engine_reload_toml(engine, text.as_ptr()) });
                }
            }
            6 => {
                let step = u.arbitrary::<u32>().unwrap_or(0) as u64;
                let status = if u.ratio(1, 10).unwrap_or(false) {
                    // SAFETY: live clock.
                    unsafe { bw_clock_set(clock, step) }
                } else {
                    // SAFETY: live clock.
                    unsafe { bw_clock_advance(clock, step * 1000) }
                };
                check(status);
            }
            7 if !policies.is_empty() => {
                let p = policies[u.choose_index(policies.len()).unwrap_or(0)];
                let action = u.int_in_range(0..=3u8).unwrap_or(0);
                let enable = u.arbitrary().unwrap_or(false);
                // SAFETY: live policy (each arm).
                let status = unsafe {
                    match action {
                        0 => bw_policy_breaker_force_open(p),
                        1 => bw_policy_breaker_disable(p),
                        2 => bw_policy_breaker_reset(p),
                        _ => bw_policy_chaos_set_enabled(p, enable),
                    }
                };
                check(status);
            }
            8 if !policies.is_empty() => {
                let p = policies[u.choose_index(policies.len()).unwrap_or(0)];
                let mut state = ptr::null_mut();
                let deadline = u.arbitrary::<u64>().unwrap_or(0);
                // SAFETY: live policy, valid out-pointer.
                if check(unsafe { bw_policy_retry_begin(p, 7, deadline, &mut state) })
                    == bw_status::BW_OK
                {
                    for _ in 0..u.int_in_range(0..=4).unwrap_or(0) {
                        let (mut delay, mut reason) = (0, 0);
                        let what = u.arbitrary::<u32>().unwrap_or(1);
                        let after = u.arbitrary::<u64>().unwrap_or(0);
                        // SAFETY: live policy and state, valid out-pointers.
                        check(unsafe {
                            bw_policy_retry_next(p, state, what, after, &mut delay, &mut reason)
                        });
                    }
                    // SAFETY: the state begun above, freed once.
                    unsafe { bw_retry_state_free(state) };
                }
            }
            // The text outputs cost more than all the rest of an input (half the time
            // went to the Prometheus text): a few renderings per input are enough.
            9 if renders < 3 => {
                renders += 1;
                let mut text = ptr::null_mut();
                let mut status = 0;
                // SAFETY: live engine, valid out-pointer.
                if check(unsafe { bw_engine_prometheus(engine, &mut text) }) == bw_status::BW_OK {
                    // SAFETY: the string just returned, freed once.
                    unsafe { bw_string_free(text) };
                }
                // SAFETY: live engine, valid out-pointers.
                if check(unsafe { bw_engine_health(engine, &mut text, &mut status) })
                    == bw_status::BW_OK
                {
                    // SAFETY: the string just returned, freed once.
                    unsafe { bw_string_free(text) };
                }
            }
            10 if !policies.is_empty() => {
                let i = u.choose_index(policies.len()).unwrap_or(0);
                permits.retain(|(p, _)| *p != i);
                permits.iter_mut().for_each(|(p, _)| {
                    if *p > i {
                        *p -= 1
                    }
                });
                keyed.retain(|(p, _)| *p != i);
                keyed.iter_mut().for_each(|(p, _)| {
                    if *p > i {
                        *p -= 1
                    }
                });
                // SAFETY: a reference this loop owns, freed once; its permits went first.
                unsafe { bw_policy_free(policies.remove(i)) };
            }
            11 if !policies.is_empty() => {
                let i = u.choose_index(policies.len()).unwrap_or(0);
                let key = *u
                    .choose(&[&b"k1"[..], b"k2", b"k3", b"", b"\0\xff"])
                    .unwrap_or(&&b"k1"[..]);
                let priority = u.arbitrary::<i32>().unwrap_or(1) % 4;
                // SAFETY: all zeroes is a value of these plain-integer structs.
                let mut permit: bw_keyed_permit = unsafe { std::mem::zeroed() };
                let mut after = 0;
                // SAFETY: live policy, `key` valid for `key.len()` bytes, valid out-pointers.
                let code = check(unsafe {
                    bw_policy_acquire_keyed(
                        policies[i],
                        key.as_ptr(),
                        key.len(),
                        priority,
                        &mut permit,
                        &mut after,
                    )
                });
                if code == bw_status::BW_OK && keyed.len() < 16 {
                    keyed.push((i, permit));
                } else if code == bw_status::BW_OK {
                    // SAFETY: the permit this policy just issued.
                    let done =
                        check(unsafe { bw_policy_complete_keyed(policies[i], &mut permit, 0, 0) });
                    assert_eq!(done, bw_status::BW_OK);
                }
            }
            12 if !keyed.is_empty() => {
                let (i, mut permit) = keyed.swap_remove(u.choose_index(keyed.len()).unwrap_or(0));
                let outcome = u.arbitrary::<i32>().unwrap_or(0) % 6;
                let duration = u.arbitrary::<u64>().unwrap_or(0);
                if u.ratio(1, 3).unwrap_or(false) {
                    // The binding scribbled on it: the key's words, or the stage words.
                    let mut scribbled = permit;
                    let at = u.int_in_range(0..=7usize).unwrap_or(0);
                    let value = u.arbitrary::<u64>().unwrap_or(0);
                    match at {
                        0 | 1 => scribbled.key_opaque[at] = value,
                        _ => scribbled.permit.opaque[at - 2] = value,
                    }
                    // SAFETY: live policy; a changed permit is what this exercises.
                    let code = check(unsafe {
                        bw_policy_complete_keyed(policies[i], &mut scribbled, outcome, duration)
                    });
                    if code == bw_status::BW_OK {
                        continue; // accepted (a word it does not read): completed
                    }
                }
                // SAFETY: a permit this policy issued (completing twice is refused).
                let first = check(unsafe {
                    bw_policy_complete_keyed(policies[i], &mut permit, outcome, duration)
                });
                if first != bw_status::BW_OK {
                    // Refused (an outcome out of range, or a scribbled copy refused above):
                    // nothing was completed, so the permit itself still completes.
                    // SAFETY: as above.
                    let code =
                        check(unsafe { bw_policy_complete_keyed(policies[i], &mut permit, 3, 0) });
                    assert_eq!(
                        code,
                        bw_status::BW_OK,
                        "a refused keyed completion used the permit"
                    );
                } else if u.ratio(1, 8).unwrap_or(false) {
                    // SAFETY: as above; a second completion must be refused.
                    let again =
                        check(unsafe { bw_policy_complete_keyed(policies[i], &mut permit, 0, 0) });
                    assert_ne!(again, bw_status::BW_OK, "a keyed permit completed twice");
                }
            }
            13 if !policies.is_empty() => {
                // A keyed permit of arbitrary bytes: refused or completed, never UB.
                let mut bytes = [0u8; std::mem::size_of::<bw_keyed_permit>()];
                let _ = u.fill_buffer(&mut bytes);
                // SAFETY: bw_keyed_permit is plain integers: any bytes are a value.
                let mut permit: bw_keyed_permit = unsafe { std::mem::transmute(bytes) };
                let i = u.choose_index(policies.len()).unwrap_or(0);
                // SAFETY: live policy; a forged permit is what this exercises.
                check(unsafe { bw_policy_complete_keyed(policies[i], &mut permit, 0, 5) });
            }
            14 => {
                let n = u.int_in_range(0..=BURST + 1).unwrap_or(1);
                let max_wait = u64::from(u.arbitrary::<u32>().unwrap_or(0)) * 1000;
                let mut after = 0;
                if u.ratio(1, 3).unwrap_or(false) {
                    // SAFETY: live limiter, valid out-pointer.
                    let code = check(unsafe { bw_limiter_try_acquire(limiter, n, &mut after) });
                    if code == bw_status::BW_OK {
                        granted += n;
                    }
                } else {
                    // SAFETY: all zeroes is a value of this plain-integer struct.
                    let mut r: bw_reservation = unsafe { std::mem::zeroed() };
                    // SAFETY: live limiter, valid out-pointers.
                    let code = check(unsafe {
                        bw_limiter_reserve(limiter, n, max_wait, &mut r, &mut after)
                    });
                    if code == bw_status::BW_OK {
                        granted += n;
                        horizon = horizon.max(elapsed.saturating_add(r.wait_ns));
                        issued.push(words(&r));
                        if reservations.len() < 16 {
                            reservations.push(r);
                        }
                    }
                }
                within_quota(granted, given_back, horizon);
            }
            15 if !reservations.is_empty() => {
                let mut r =
                    reservations.swap_remove(u.choose_index(reservations.len()).unwrap_or(0));
                let mut cancelled = false;
                // SAFETY: live limiter, a reservation it issued, valid out-pointer.
                let code = check(unsafe { bw_limiter_cancel(limiter, &mut r, &mut cancelled) });
                assert_eq!(code, bw_status::BW_OK, "a live reservation's cancel");
                if cancelled {
                    given_back += r.permits;
                }
                // SAFETY: as above; cancelled twice must be refused.
                let again = check(unsafe { bw_limiter_cancel(limiter, &mut r, &mut cancelled) });
                assert_eq!(again, bw_status::BW_PERMIT_ALREADY_USED);
            }
            16 => {
                // A reservation of arbitrary bytes, or a real one with some words
                // changed: refused, and nothing goes back.
                let mut bytes = [0u8; std::mem::size_of::<bw_reservation>()];
                let _ = u.fill_buffer(&mut bytes);
                // SAFETY: bw_reservation is plain integers: any bytes are a value.
                let mut r: bw_reservation = unsafe { std::mem::transmute(bytes) };
                if let (Some(real), true) = (reservations.first(), u.arbitrary().unwrap_or(false)) {
                    let forged = r;
                    r = *real;
                    match u.int_in_range(0..=3u8).unwrap_or(0) {
                        0 => r.permits = forged.permits,
                        1 => r.tat = forged.tat,
                        2 => r.wait_ns = forged.wait_ns,
                        _ => (r.permits, r.tat) = (forged.permits % (BURST + 1), forged.tat),
                    }
                }
                if !issued.contains(&words(&r)) {
                    let mut cancelled = false;
                    // SAFETY: live limiter, a reservation valid for reads and writes.
                    let code = check(unsafe { bw_limiter_cancel(limiter, &mut r, &mut cancelled) });
                    assert_ne!(
                        code,
                        bw_status::BW_OK,
                        "a forged reservation was cancelled: {r:?}"
                    );
                    assert!(!cancelled);
                    within_quota(granted, given_back, horizon);
                }
            }
            17 => {
                let step = u64::from(u.arbitrary::<u16>().unwrap_or(0)) * 10_000;
                elapsed += step;
                horizon = horizon.max(elapsed);
                // SAFETY: live clock.
                check(unsafe { bw_clock_advance(lclock, step) });
            }
            _ => {}
        }
        // A snapshot reads every shard and histogram: every 16 operations is enough.
        if ops % 16 == 0 {
            consistent(&policies);
        }
    }
    consistent(&policies);
    for (i, mut permit) in permits {
        // SAFETY: an outstanding permit of a live policy.
        check(unsafe { bw_policy_complete(policies[i], &mut permit, 3, 0) });
    }
    for (i, mut permit) in keyed {
        // SAFETY: an outstanding keyed permit of a live policy.
        check(unsafe { bw_policy_complete_keyed(policies[i], &mut permit, 3, 0) });
    }
    // SAFETY: the limiter and its clock made above, freed once.
    unsafe {
        bw_limiter_free(limiter);
        bw_clock_free(lclock);
    }
    for p in policies {
        // SAFETY: references this loop owns, freed once.
        unsafe { bw_policy_free(p) };
    }
    // SAFETY: the engine and clock created above, freed once.
    unsafe {
        bw_engine_free(engine);
        bw_clock_free(clock);
    }
}
