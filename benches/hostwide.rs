//! Host scope beside process scope: acquire + complete on the same stage, its state on
//! the heap or in a shared segment.
//!
//! - `hostwide_<stage>/{process,host}`: one process, one thread. Goal: host ≤ 1.5×
//!   process.
//! - `hostwide_<stage>_2/{process_2_threads,host_2_processes}`: two threads of one
//!   process on the heap state, beside two processes on one segment (this process and
//!   a child running this same binary). Each reports the slower side's time per call,
//!   as `common::threaded` does.
//!
//! The child is this binary started with `BW_HOSTWIDE_CHILD=<stage>:<segment>`: it
//! attaches the segment, then for each line `<iters>` on its stdin runs the operation
//! that many times and answers with the nanoseconds it took. It stops at end of input
//! (the parent closed the pipe or died), and after `CHILD_LIFETIME` in any case.
//!
//! `BW_HOSTWIDE_LOOP=<stage>:<process|host>:<iters>` runs one case `iters` times in
//! `measured_loop` and exits: for instruction counts,
//! `valgrind --tool=callgrind --toggle-collect='*measured_loop*' <bench binary>`.
//!
//! `BW_HOSTWIDE_MIN=1` prints, per stage on one process, the fastest of many short
//! batches of each scope, the two alternating, and exits: on a loaded machine a batch
//! that ran without being preempted shows the cost, where criterion's mean shows the
//! load.
//!
//! Run: `cargo bench --bench hostwide -- --warm-up-time 1 --measurement-time 3`

mod common;

use breakwater::breaker::BreakerConfig;
use breakwater::bulkhead::BulkheadConfig;
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::shm;
use criterion::{black_box, Criterion};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest a child process runs, whatever its parent does.
const CHILD_LIFETIME: Duration = Duration::from_secs(600);
/// The most iterations one request to a child may ask for.
const CHILD_MAX_ITERS: u64 = 1 << 32;

#[derive(Clone, Copy, Debug)]
enum Stage {
    Breaker,
    Limiter,
    Bulkhead,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Breaker, Stage::Limiter, Stage::Bulkhead];

    fn name(self) -> &'static str {
        match self {
            Stage::Breaker => "breaker",
            Stage::Limiter => "limiter",
            Stage::Bulkhead => "bulkhead",
        }
    }

    fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == text)
    }

    fn config(self) -> PolicyConfig {
        match self {
            Stage::Breaker => PolicyConfig::new("b").with_circuit_breaker(BreakerConfig::default()),
            Stage::Limiter => PolicyConfig::new("l").with_rate_limiter(RateLimiterConfig::new(
                1_000_000_000,
                Duration::from_secs(1),
            )),
            Stage::Bulkhead => PolicyConfig::new("k").with_bulkhead(BulkheadConfig::new(64)),
        }
    }

    fn host(self, segment: &str) -> Policy {
        Policy::new(self.config().with_host_scope(segment.to_string())).unwrap()
    }
}

/// One acquire + complete of `stage` on `p`.
#[inline(always)]
fn op(stage: Stage, p: &Policy) {
    match stage {
        Stage::Breaker => black_box(p.breaker().unwrap().try_acquire())
            .unwrap()
            .success(),
        Stage::Limiter => black_box(p.limiter().unwrap().try_acquire()).unwrap(),
        Stage::Bulkhead => {
            let k = p.bulkhead().unwrap();
            k.try_acquire_raw().unwrap();
            black_box(k.release_raw());
        }
    }
}

/// `iters` operations, timed; monomorphised per stage so the match folds away.
#[inline(never)]
fn measured_loop<const S: u8>(p: &Policy, iters: u64) -> Duration {
    let stage = Stage::ALL[S as usize];
    let start = Instant::now();
    for _ in 0..iters {
        op(stage, p);
    }
    start.elapsed()
}

fn run(stage: Stage, p: &Policy, iters: u64) -> Duration {
    match stage {
        Stage::Breaker => measured_loop::<0>(p, iters),
        Stage::Limiter => measured_loop::<1>(p, iters),
        Stage::Bulkhead => measured_loop::<2>(p, iters),
    }
}

/// A segment name for this run (removed first, in case a killed run left it).
fn segment(stage: Stage, what: &str) -> String {
    let s = format!("bench-{}-{}-{what}", std::process::id(), stage.name());
    let _ = shm::remove_segment(&s);
    s
}

/// The child side: see the module docs.
fn child_main(spec: &str) {
    let started = Instant::now();
    let (stage, segment) = spec.split_once(':').expect("stage:segment");
    let stage = Stage::parse(stage).expect("a stage name");
    let p = stage.host(segment);
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(iters) = line.trim().parse::<u64>() else {
            break;
        };
        if started.elapsed() > CHILD_LIFETIME {
            break;
        }
        let took = run(stage, &p, iters.min(CHILD_MAX_ITERS));
        if writeln!(out, "{}", took.as_nanos())
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
}

/// A child process running `stage` on `segment`.
struct Peer {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(stage: Stage, segment: &str) -> Peer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("BW_HOSTWIDE_CHILD", format!("{}:{segment}", stage.name()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let to = child.stdin.take();
        let from = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Peer { child, to, from };
        peer.start(0);
        peer.finish(); // attached and ready
        peer
    }

    fn start(&mut self, iters: u64) {
        let to = self.to.as_mut().unwrap();
        writeln!(to, "{iters}").and_then(|()| to.flush()).unwrap();
    }

    fn finish(&mut self) -> Duration {
        let mut line = String::new();
        self.from.read_line(&mut line).unwrap();
        Duration::from_nanos(line.trim().parse().expect("the child's time"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.to.take()); // end of input: the child returns
        let _ = self.child.wait();
    }
}

fn one_process(c: &mut Criterion, stage: Stage) {
    let seg = segment(stage, "1");
    let local = Policy::new(stage.config()).unwrap();
    let host = stage.host(&seg);
    let mut g = c.benchmark_group(format!("hostwide_{}", stage.name()));
    for (label, p) in [("process", &local), ("host", &host)] {
        g.bench_function(label, |b| b.iter_custom(|iters| run(stage, p, iters)));
    }
    g.finish();
    shm::remove_segment(&seg).unwrap();
}

fn two(c: &mut Criterion, stage: Stage) {
    let seg = segment(stage, "2");
    let local = Policy::new(stage.config()).unwrap();
    let host = stage.host(&seg);
    let mut peer = Peer::spawn(stage, &seg);
    let mut g = c.benchmark_group(format!("hostwide_{}_2", stage.name()));
    g.bench_function("process_2_threads", |b| {
        b.iter_custom(|iters| common::threaded(2, iters, &|| op(stage, &local)))
    });
    g.bench_function("host_2_processes", |b| {
        b.iter_custom(|iters| {
            peer.start(iters);
            let mine = run(stage, &host, iters);
            mine.max(peer.finish())
        })
    });
    g.finish();
    drop(peer);
    shm::remove_segment(&seg).unwrap();
}

/// `BW_HOSTWIDE_LOOP`: see the module docs.
fn loop_main(spec: &str) {
    let mut parts = spec.split(':');
    let stage = parts.next().and_then(Stage::parse).expect("a stage name");
    let scope = parts.next().expect("process or host");
    let iters: u64 = parts.next().and_then(|n| n.parse().ok()).expect("iters");
    let seg = segment(stage, "loop");
    let p = match scope {
        "process" => Policy::new(stage.config()).unwrap(),
        "host" => stage.host(&seg),
        other => panic!("scope {other}: process or host"),
    };
    let took = run(stage, &p, iters);
    let per_call = took.as_nanos() as f64 / iters.max(1) as f64;
    println!("{} {scope}: {per_call:.1} ns per call", stage.name());
    drop(p);
    shm::remove_segment(&seg).unwrap();
}

/// `BW_HOSTWIDE_MIN`: see the module docs.
fn min_main() {
    const BATCH: u64 = 20_000;
    for stage in Stage::ALL {
        let seg = segment(stage, "min");
        let local = Policy::new(stage.config()).unwrap();
        let host = stage.host(&seg);
        let batch_ns = |p: &Policy| run(stage, p, BATCH).as_nanos() as f64 / BATCH as f64;
        let (mut process, mut shared) = (f64::MAX, f64::MAX);
        for _ in 0..300 {
            process = process.min(batch_ns(&local));
            shared = shared.min(batch_ns(&host));
        }
        println!(
            "min/hostwide/{}: process {process:.2} ns, host {shared:.2} ns, ratio {:.2}",
            stage.name(),
            shared / process
        );
        drop(host);
        shm::remove_segment(&seg).unwrap();
    }
}

fn main() {
    if let Ok(spec) = std::env::var("BW_HOSTWIDE_CHILD") {
        return child_main(&spec);
    }
    if std::env::var_os("BW_HOSTWIDE_MIN").is_some() {
        return min_main();
    }
    if let Ok(spec) = std::env::var("BW_HOSTWIDE_LOOP") {
        return loop_main(&spec);
    }
    let mut c = Criterion::default().configure_from_args();
    for stage in Stage::ALL {
        one_process(&mut c, stage);
    }
    for stage in Stage::ALL {
        two(&mut c, stage);
    }
    c.final_summary();
}
