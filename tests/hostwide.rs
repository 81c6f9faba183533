//! Host scope with real processes: the test binary spawns itself as children (the
//! `child` test does nothing unless `BW_HOSTWIDE_ROLE` is set), and they share one
//! breaker, limiter or bulkhead through a segment named after this run (pid and a
//! counter), removed at the end of each test.
#![cfg(not(loom))]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use breakwater::breaker::{BreakerConfig, BreakerState, WindowConfig};
use breakwater::bulkhead::BulkheadConfig;
use breakwater::clock::{Clock, CoarseClock, ManualClock, MonotonicClock, COARSE_LAG_TICKS};
use breakwater::engine::Engine;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::shm::{self, HostError, Segment};
use breakwater::{Outcome, RejectReason};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A segment name unique to this run and test; the segment is removed on drop.
struct Seg(String);

impl Seg {
    fn new(tag: &str) -> Seg {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("bwtest-{}-{tag}-{n}", std::process::id());
        shm::remove_segment(&name).unwrap();
        Seg(name)
    }

    fn path(&self) -> String {
        format!("/dev/shm/breakwater.{}", self.0)
    }
}

impl Drop for Seg {
    fn drop(&mut self) {
        let _ = shm::remove_segment(&self.0);
    }
}

fn policy_text(segment: &str, body: &str) -> String {
    format!("[policies.p]\nscope = \"host\"\nsegment = \"{segment}\"\n{body}")
}

fn engine(segment: &str, body: &str) -> (Engine, std::sync::Arc<Policy>) {
    let engine = Engine::from_toml_str(&policy_text(segment, body)).unwrap();
    let policy = engine.policy("p").unwrap();
    (engine, policy)
}

fn now() -> u64 {
    MonotonicClock.now()
}

/// A child process running `role` on the policy `body` in `segment`.
struct Kid {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Kid {
    fn spawn(role: &str, segment: &str, body: &str, extra: &[(&str, String)]) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env("BW_HOSTWIDE_ROLE", role)
            .env("BW_SEGMENT", segment)
            .env("BW_BODY", body)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Kid {
            child,
            stdin,
            lines,
        }
    }

    /// The next line the child printed with the `BW ` prefix.
    fn said(&mut self) -> String {
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("BW ") {
                return rest.to_string();
            }
        }
        panic!("child exited without answering");
    }

    fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

/// What a child does (run by `child` in the child process).
fn run_child(role: &str) {
    let segment = std::env::var("BW_SEGMENT").unwrap();
    let body = std::env::var("BW_BODY").unwrap();
    let (_engine, policy) = engine(&segment, &body);
    let stdin = std::io::stdin();
    let mut input = stdin.lock().lines();
    match role {
        // Waits for "START END" (monotonic ns), then hammers the limiter from threads.
        "limiter" => {
            println!("BW ready");
            let line = input.next().unwrap().unwrap();
            let mut words = line.split(' ').map(|w| w.parse::<u64>().unwrap());
            let (start, end) = (words.next().unwrap(), words.next().unwrap());
            let threads: usize = std::env::var("BW_THREADS").unwrap().parse().unwrap();
            while now() < start {
                std::hint::spin_loop();
            }
            let admitted: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            let mut n = 0;
                            while now() < end {
                                if let Ok(p) = policy.acquire() {
                                    n += 1;
                                    p.record(Outcome::Success);
                                }
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            n
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            println!("BW {admitted}");
        }
        // Fails `BW_N` calls in a row, reports the state.
        "trip" => {
            let n: usize = std::env::var("BW_N").unwrap().parse().unwrap();
            for _ in 0..n {
                policy.acquire().unwrap().record(Outcome::Failure);
            }
            println!("BW {:?}", policy.breaker().unwrap().state());
        }
        // One acquire: says whether it was admitted (and why not).
        "check" => match policy.acquire() {
            Ok(p) => {
                println!("BW admitted");
                p.record(Outcome::Success);
            }
            Err(r) => println!("BW {:?}", r.reason),
        },
        // After "go", one acquire; holds the permit until stdin closes.
        "probe" => {
            println!("BW ready");
            let _ = input.next();
            let permit = policy.acquire();
            println!(
                "BW {}",
                if permit.is_ok() {
                    "admitted"
                } else {
                    "rejected"
                }
            );
            while input.next().is_some() {}
            if let Ok(p) = permit {
                p.record(Outcome::Success);
            }
        }
        // Takes `BW_N` permits, says so, and waits to be killed.
        "hold" => {
            let n: usize = std::env::var("BW_N").unwrap().parse().unwrap();
            let permits: Vec<_> = (0..n).map(|_| policy.acquire().unwrap()).collect();
            println!("BW held {}", permits.len());
            std::thread::sleep(Duration::from_secs(60));
            drop(permits);
        }
        // Takes a bulkhead permit, forks, and releases it in the forked child: reports
        // what each side saw (see `a_permit_taken_before_fork_is_given_back_by_its_taker_only`).
        "fork" => {
            let bulkhead = policy.bulkhead().unwrap();
            bulkhead.try_acquire_raw().unwrap();
            std::io::stdout().flush().unwrap();
            // SAFETY: fork in a process whose only other thread (the test harness's)
            // waits on a channel; the child only takes locks glibc and std reset or
            // never hold across fork (malloc, /proc reads), then leaves by `_exit`.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let released = bulkhead.release_raw();
                let seen = bulkhead.in_flight().min(63);
                // SAFETY: ends the forked child without running the parent's atexit
                // handlers or flushing its copied buffers.
                unsafe { libc::_exit(i32::from(released) | ((seen as i32) << 1)) };
            }
            let mut status = 0;
            // SAFETY: `pid` is our child; `status` is writable.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status));
            let code = libc::WEXITSTATUS(status);
            let after_child = bulkhead.in_flight();
            let reclaimed = bulkhead.reclaim_dead_owners();
            let after_reclaim = bulkhead.in_flight();
            let released = bulkhead.release_raw();
            let again = bulkhead.release_raw();
            println!(
                "BW child released {} saw {}; parent saw {after_child}, reclaimed {reclaimed} \
                 and saw {after_reclaim}, released {released}, again {again}, left {}",
                code & 1 == 1,
                code >> 1,
                bulkhead.in_flight()
            );
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn child() {
    if let Ok(role) = std::env::var("BW_HOSTWIDE_ROLE") {
        run_child(&role);
    }
}

/// PyrateLimiter #90: a 7/s limit let 281/s through with 40 processes. Here 40
/// processes × 2 threads share one limiter: at most burst + rate · T pass in total.
#[test]
fn forty_processes_share_one_rate_limit() {
    let seg = Seg::new("limiter");
    let body = "[policies.p.rate_limiter]\nrate = 7\nperiod = \"1s\"\nburst = 7\n";
    let (_engine, _policy) = engine(&seg.0, body); // creates the segment: bucket full
    let mut kids: Vec<Kid> = (0..40)
        .map(|_| Kid::spawn("limiter", &seg.0, body, &[("BW_THREADS", "2".into())]))
        .collect();
    for kid in &mut kids {
        assert_eq!(kid.said(), "ready");
    }
    let window = Duration::from_millis(1200);
    let start = now() + 20_000_000;
    let end = start + window.as_nanos() as u64;
    for kid in &mut kids {
        kid.tell(&format!("{start} {end}"));
    }
    let per_child: Vec<u64> = kids.iter_mut().map(|k| k.said().parse().unwrap()).collect();
    for kid in kids {
        kid.finish();
    }
    let total: u64 = per_child.iter().sum();
    // The limiter runs on CLOCK_MONOTONIC_COARSE (this quota's rule), which may lag the
    // precise clock by a few ticks: allow rate × 20 ms more.
    let bound = 7.0 + 7.0 * (window.as_secs_f64() + 0.02);
    assert!(
        (total as f64) <= bound,
        "{total} admitted in {window:?} by 40 processes, bound {bound}: {per_child:?}"
    );
    assert!(
        total >= 7,
        "the full bucket is there for the first comers: {total}"
    );
}

const BREAKER: &str = "[policies.p.circuit_breaker]\nminimum_calls = 4\n\
    window = { type = \"count\", size = 4 }\nopen_duration = \"300ms\"\n\
    half_open_permits = 1\nhalf_open_max_wait = \"60s\"\n";

#[test]
fn a_breaker_tripped_in_one_process_rejects_in_all_and_admits_one_probe() {
    let seg = Seg::new("breaker");
    let (_engine, policy) = engine(&seg.0, BREAKER);
    let mut tripper = Kid::spawn("trip", &seg.0, BREAKER, &[("BW_N", "4".into())]);
    assert_eq!(tripper.said(), "Open");
    tripper.finish();
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Open);
    assert_eq!(
        policy.acquire().unwrap_err().reason,
        RejectReason::CircuitOpen
    );
    let mut other = Kid::spawn("check", &seg.0, BREAKER, &[]);
    assert_eq!(other.said(), "CircuitOpen");
    other.finish();

    // After open_duration, eight processes race for the one probe.
    let mut kids: Vec<Kid> = (0..8)
        .map(|_| Kid::spawn("probe", &seg.0, BREAKER, &[]))
        .collect();
    for kid in &mut kids {
        assert_eq!(kid.said(), "ready");
    }
    std::thread::sleep(Duration::from_millis(350));
    for kid in &mut kids {
        kid.tell("go");
    }
    let answers: Vec<String> = kids.iter_mut().map(|k| k.said()).collect();
    assert_eq!(
        answers.iter().filter(|a| *a == "admitted").count(),
        1,
        "one half-open probe host-wide: {answers:?}"
    );
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::HalfOpen);
    assert!(policy.acquire().is_err(), "the probe is out");
    for kid in kids {
        kid.finish(); // the probe completes as a success
    }
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Closed);

    // A manual switch writes the shared state word: it acts in every process.
    policy.breaker().unwrap().force_open();
    let mut other = Kid::spawn("check", &seg.0, BREAKER, &[]);
    assert_eq!(other.said(), "CircuitOpen");
    other.finish();
    policy.breaker().unwrap().reset();
    let mut other = Kid::spawn("check", &seg.0, BREAKER, &[]);
    assert_eq!(other.said(), "admitted");
    other.finish();
}

/// Every `kill -9` of a process holding all the bulkhead's permits gives them back:
/// on demand (even cycles) or by the next full acquire at least the reclaim interval
/// later (odd cycles). Nothing leaks over 100 cycles: no slot, no process entry.
#[test]
fn killed_holders_bulkhead_permits_return_over_100_kill_cycles() {
    let seg = Seg::new("bulkhead");
    let body = "[policies.p.bulkhead]\nmax_concurrent = 4\n";
    let (_engine, policy) = engine(&seg.0, body);
    let bulkhead = policy.bulkhead().unwrap();
    let interval = Duration::from_nanos(shm::RECLAIM_INTERVAL_NANOS);
    for cycle in 0..100 {
        let mut kid = Kid::spawn("hold", &seg.0, body, &[("BW_N", "4".into())]);
        assert_eq!(kid.said(), "held 4");
        assert_eq!(bulkhead.in_flight(), 4, "cycle {cycle}");
        assert!(policy.acquire().is_err(), "cycle {cycle}: full");
        kid.kill9();
        if cycle % 2 == 0 {
            assert_eq!(bulkhead.reclaim_dead_owners(), 1, "cycle {cycle}");
            assert_eq!(bulkhead.in_flight(), 0, "cycle {cycle}");
        } else {
            std::thread::sleep(interval + Duration::from_millis(1));
            let permit = policy
                .acquire()
                .unwrap_or_else(|r| panic!("cycle {cycle}: {r:?} after the reclaim interval"));
            assert_eq!(bulkhead.in_flight(), 1, "cycle {cycle}");
            permit.record(Outcome::Success);
        }
    }
    assert_eq!(bulkhead.in_flight(), 0);
    let config = policy.config().clone();
    let segment = Segment::attach(
        &seg.0,
        shm::layout_for(&config).unwrap(),
        shm::config_hash(&config),
        now(),
    )
    .unwrap();
    assert_eq!(
        segment.leases().processes(&shm::is_alive),
        1,
        "only this process is registered"
    );
}

#[test]
fn a_killed_probe_holder_gives_its_probe_back() {
    let seg = Seg::new("probe");
    let (_engine, policy) = engine(&seg.0, BREAKER);
    for _ in 0..4 {
        policy.acquire().unwrap().record(Outcome::Failure);
    }
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Open);
    std::thread::sleep(Duration::from_millis(310));
    for round in 0..3 {
        let mut kid = Kid::spawn("hold", &seg.0, BREAKER, &[("BW_N", "1".into())]);
        assert_eq!(kid.said(), "held 1", "round {round}");
        assert!(policy.acquire().is_err(), "the one probe is out");
        kid.kill9();
        if round == 0 {
            assert_eq!(policy.breaker().unwrap().reclaim_dead_owners(), 1);
        } else {
            // The breaker reads the coarse clock, which may lag by `COARSE_LAG_TICKS`
            // ticks: the reclaim interval on that clock (the documented bound).
            let lag = CoarseClock::resolution() * COARSE_LAG_TICKS as u32;
            let interval = Duration::from_nanos(shm::RECLAIM_INTERVAL_NANOS);
            std::thread::sleep(interval + lag + Duration::from_millis(1));
        }
        let probe = policy
            .acquire()
            .unwrap_or_else(|r| panic!("round {round}: the dead holder's probe: {r:?}"));
        if round == 2 {
            probe.record(Outcome::Success);
            assert_eq!(policy.breaker().unwrap().state(), BreakerState::Closed);
        } else {
            probe.record(Outcome::Ignored);
        }
    }
}

fn bulkhead_config(segment: &str, max: u32) -> PolicyConfig {
    PolicyConfig::new("p")
        .with_bulkhead(BulkheadConfig::new(max))
        .with_host_scope(segment)
}

fn host_error(config: PolicyConfig) -> HostError {
    let Err(error) = Policy::new(config) else {
        panic!("refused")
    };
    error
        .host_error()
        .cloned()
        .unwrap_or_else(|| panic!("{error}"))
}

fn write_word(seg: &Seg, index: u64, value: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(seg.path())
        .unwrap();
    file.write_all_at(&value.to_ne_bytes(), index * 8).unwrap();
}

#[test]
fn bad_segments_are_refused_with_named_errors() {
    let seg = Seg::new("errors");
    let good = bulkhead_config(&seg.0, 2);
    drop(Policy::new(good.clone()).unwrap()); // creates it

    // Another configuration under the same name: both hashes named.
    let other = bulkhead_config(&seg.0, 3);
    match host_error(other.clone()) {
        HostError::ConfigMismatch {
            found, expected, ..
        } => {
            assert_eq!(found, shm::config_hash(&good));
            assert_eq!(expected, shm::config_hash(&other));
        }
        e => panic!("{e}"),
    }

    write_word(&seg, 1, 99); // layout version
    assert!(matches!(
        host_error(good.clone()),
        HostError::VersionMismatch {
            found: 99,
            expected: shm::LAYOUT_VERSION,
            ..
        }
    ));
    write_word(&seg, 1, shm::LAYOUT_VERSION);
    write_word(&seg, 11, 1 << 40); // bulkhead slots: untrusted, never used as a length
    assert!(matches!(
        host_error(good.clone()),
        HostError::LayoutMismatch { field: "slots", .. }
    ));
    write_word(&seg, 11, 2);
    assert!(Policy::new(good.clone()).is_ok(), "repaired");

    write_word(&seg, 0, 0x1234_5678);
    assert!(matches!(
        host_error(good.clone()),
        HostError::WrongMagic {
            found: 0x1234_5678,
            ..
        }
    ));
    write_word(&seg, 0, shm::MAGIC);

    let total = std::fs::metadata(seg.path()).unwrap().len();
    for size in [total - 8, 64] {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(seg.path())
            .unwrap();
        file.set_len(size).unwrap();
        write_word(&seg, 0, shm::MAGIC);
        file.set_len(size).unwrap();
        let error = host_error(good.clone());
        assert!(
            matches!(error, HostError::Truncated { size: s, .. } if s == size),
            "size {size}: {error}"
        );
    }

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(seg.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        host_error(good.clone()),
        HostError::Permissions { mode: 0o644, .. }
    ));
    std::fs::set_permissions(seg.path(), std::fs::Permissions::from_mode(0o600)).unwrap();

    assert!(matches!(
        host_error(bulkhead_config("../etc", 2)),
        HostError::InvalidName { .. }
    ));
    let manual = Policy::with_clock(good.clone(), ManualClock::new().into()).err();
    assert!(matches!(
        manual.as_ref().and_then(|e| e.host_error()),
        Some(HostError::Unsupported { .. })
    ));
}

/// Breaker words no breaker writes are refused at attach, each named, instead of being
/// met by a decision (the breaker's retry bound stays as the net for later corruption).
#[test]
fn corrupt_breaker_words_are_refused_with_named_errors() {
    let seg = Seg::new("corrupt");
    let config = PolicyConfig::new("p")
        .with_circuit_breaker(
            BreakerConfig::default()
                .with_half_open_permits(2)
                .with_open_duration(Duration::from_secs(1)),
        )
        .with_host_scope(&seg.0);
    drop(Policy::new(config.clone()).unwrap()); // creates it
    let core = shm::layout_for(&config).unwrap().breaker as u64 / 8;
    let head = core + 16; // the count window's head, after the 128-byte core
    let generation_5_open = (5 << 19) | 1;
    let cases: [(u64, u64, u64, &str); 6] = [
        (core, (5 << 19) | 7, 0, "breaker.state"),
        (core + 1, 6, generation_5_open, "breaker.timing"),
        (core + 1, !0xFF_u64 | 5, generation_5_open, "breaker.timing"),
        (core + 2, (5 << 40) | 3, generation_5_open, "breaker.probes"),
        (core + 3, 6 << 32, generation_5_open, "breaker.consecutive"),
        (head, (6 << 32) | 3, generation_5_open, "breaker.window"),
    ];
    for (at, value, state, name) in cases {
        write_word(&seg, core, state);
        write_word(&seg, at, value);
        match host_error(config.clone()) {
            HostError::CorruptState { field, found, .. } => {
                assert_eq!((field, found), (name, value));
            }
            e => panic!("{name}: {e}"),
        }
        assert!(host_error(config.clone())
            .to_string()
            .starts_with("corrupt_state"));
        write_word(&seg, at, 0);
    }
    write_word(&seg, core, 0);
    assert!(Policy::new(config).is_ok(), "repaired");
}

/// A bulkhead permit taken before `fork` is a lease of the process that took it: the
/// forked child's release of it is refused (`release_raw` is false, nothing changes),
/// the taker's own release gives it back once, and the child's death frees its entry
/// without touching the taker's slot. No double release, no leak.
#[test]
fn a_breaker_segment_that_has_seen_more_calls_than_its_window_attaches() {
    // The count window's head counts claims past the window's size (a slot is the count
    // modulo the size): a busy, healthy segment must never look corrupt to a process
    // that attaches later.
    let seg = Seg::new("busy");
    let config = PolicyConfig::new("p")
        .with_circuit_breaker(
            BreakerConfig::default()
                .with_window(WindowConfig::Count { size: 10 })
                .with_minimum_calls(10),
        )
        .with_host_scope(&seg.0);
    let first = Policy::new(config.clone()).unwrap();
    for _ in 0..1_000 {
        first.acquire().unwrap().record(Outcome::Success);
    }
    let later = Policy::new(config).unwrap();
    later.acquire().unwrap().record(Outcome::Success);
}

#[test]
fn a_permit_taken_before_fork_is_given_back_by_its_taker_only() {
    let seg = Seg::new("fork");
    let body = "[policies.p.bulkhead]\nmax_concurrent = 2\n";
    let mut kid = Kid::spawn("fork", &seg.0, body, &[]);
    assert_eq!(
        kid.said(),
        "child released false saw 1; parent saw 1, reclaimed 1 and saw 1, \
         released true, again false, left 0"
    );
    kid.finish();
}

/// The owner check on a real segment, which needs root to give a segment away. The
/// check itself is unit-tested with injected uids, as any user
/// (`shm::segment::tests::another_users_or_a_shared_segment_is_refused_for_any_uid`).
#[test]
fn another_users_segment_is_refused() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipped: changing a segment's owner needs root (the unit test covers the check)"
        );
        return;
    }
    let seg = Seg::new("owner");
    let config = bulkhead_config(&seg.0, 2);
    drop(Policy::new(config.clone()).unwrap());
    std::os::unix::fs::chown(seg.path(), Some(65534), Some(65534)).unwrap();
    assert!(matches!(
        host_error(config),
        HostError::NotOwner {
            owner: 65534,
            uid: 0,
            ..
        }
    ));
}

/// Reload: a changed shared configuration under the same segment name is refused (the
/// whole reload, nothing half-loaded: processes still on the old configuration keep
/// sharing it); under a new segment name it loads with fresh state; a change of
/// per-process settings only keeps the shared state.
#[test]
fn reload_of_a_host_policy() {
    let (a, b) = (Seg::new("reload-a"), Seg::new("reload-b"));
    let body = "[policies.p.bulkhead]\nmax_concurrent = 2\n";
    let (engine, policy) = engine(&a.0, body);
    let held = policy.acquire().unwrap();

    let changed = policy_text(&a.0, "[policies.p.bulkhead]\nmax_concurrent = 3\n");
    let error = engine.reload_str(&changed).unwrap_err();
    assert!(
        error.first().reason.starts_with("config_mismatch"),
        "{error}"
    );
    assert_eq!(
        policy.bulkhead().unwrap().in_flight(),
        1,
        "old configuration kept"
    );

    let timeout_only = policy_text(&a.0, &format!("timeout = \"2s\"\n{body}"));
    engine.reload_str(&timeout_only).unwrap();
    assert_eq!(
        policy.bulkhead().unwrap().in_flight(),
        1,
        "per-process change: same shared state"
    );

    let renamed = policy_text(&b.0, "[policies.p.bulkhead]\nmax_concurrent = 3\n");
    engine.reload_str(&renamed).unwrap();
    assert_eq!(
        policy.bulkhead().unwrap().in_flight(),
        0,
        "new segment, fresh"
    );
    assert_eq!(policy.bulkhead().unwrap().available(), 3);
    held.record(Outcome::Success); // completes against the stages that issued it
}

/// Breaker words that never agree, written after attach (a stray write: the attach check
/// refuses them in a segment being attached): half-open in generation 5 with its trial
/// deadline an hour ahead, but a probe word of generation 6. No probe can be admitted
/// (the trial is "newer"), and no transition will come to change the state word, so the
/// slow path would wait for progress forever; its bounded retries (1,024) refuse the
/// caller instead, as an open circuit. Without the bound this test never returns.
#[test]
fn a_breaker_whose_words_never_agree_refuses_instead_of_spinning() {
    let seg = Seg::new("disagree");
    let config = PolicyConfig::new("p")
        .with_circuit_breaker(BreakerConfig::default().with_half_open_permits(2))
        .with_host_scope(&seg.0);
    let policy = Policy::new(config.clone()).unwrap();
    policy.acquire().unwrap().record(Outcome::Success);
    let core = shm::layout_for(&config).unwrap().breaker as u64 / 8;
    let generation = 5;
    let deadline = now() + 3_600_000_000_000;
    write_word(&seg, core, (generation << 19) | 2); // half-open, generation 5
    write_word(&seg, core + 1, (deadline & !0xFF) | generation); // its trial deadline
    write_word(&seg, core + 2, (generation + 1) << 40); // a trial of generation 6
    for _ in 0..3 {
        assert_eq!(
            policy.acquire().unwrap_err().reason,
            RejectReason::CircuitOpen
        );
    }
    // Words that agree again admit again: the refusal came from the words, not a latch.
    write_word(&seg, core, 0);
    write_word(&seg, core + 1, 0);
    write_word(&seg, core + 2, 0);
    policy.acquire().unwrap().record(Outcome::Success);
}
