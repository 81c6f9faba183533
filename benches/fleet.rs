//! The fleet rate limit's hot path beside the local limiter's (goal ≤ 2×), and Redis
//! round trips per 1,000 admissions at steady state beside a naive GCRA that makes one
//! round trip per call (goal ≤ 10), in the same run, against a `redis-server` the bench
//! starts on a free loopback port.
//!
//! `BW_FLEET_MIN=1` prints the fastest of many short batches of `try_acquire` on each
//! limiter, the two alternating, and exits: on a loaded machine a batch that ran without
//! being preempted shows the cost, where criterion's mean shows the load.
//!
//! The round-trip counts are printed as `fleet round trips per 1000 admissions: …` (not
//! times, so outside criterion's groups): the fleet limit's from its snapshot, the naive
//! GCRA's as the server counted them.

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use breakwater::fleet::{FleetConfig, FleetRateLimiter};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use redis_server::RedisServer;
use std::time::{Duration, Instant};

/// The naive GCRA: redis-cell's one call per admission, the same TAT arithmetic.
const NAIVE_GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat + interval - now > tolerance then return 0 end
redis.call('SET', KEYS[1], tat + interval, 'PX', 60000)
return 1
"#;

fn quota() -> RateLimiterConfig {
    // Never the limit here: the hot path's cost, not its rejections.
    RateLimiterConfig::new(1_000_000_000, Duration::from_secs(1)).with_burst(1_000_000_000)
}

fn fleet_config(server: &RedisServer, namespace: &str) -> FleetConfig {
    let mut c = FleetConfig::new(server.address());
    c.namespace = namespace.into();
    c.max_batch = 1_000_000;
    c
}

fn wait_for_tokens(limiter: &FleetRateLimiter) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while limiter.try_acquire().is_err() {
        assert!(Instant::now() < deadline, "no token from Redis");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Admits at `per_sec` (paced in steps of 100) for `seconds`, and returns the round
/// trips per 1,000 admissions after the first second (the batch has adapted by then).
fn round_trips_per_1000(server: &RedisServer, per_sec: u64, seconds: u64) -> (f64, u64) {
    let quota = RateLimiterConfig::new(per_sec * 4, Duration::from_secs(1));
    let mut config = fleet_config(server, "steady");
    config.max_batch = 1000;
    let limiter = FleetRateLimiter::new("steady", quota, config).unwrap();
    wait_for_tokens(&limiter);
    let start = Instant::now();
    let mut admitted = 0u64;
    let mut counted_from = None;
    let mut attempts = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        if counted_from.is_none() && start.elapsed() >= Duration::from_secs(1) {
            counted_from = Some((admitted, limiter.snapshot().round_trips));
        }
        for _ in 0..100 {
            attempts += 1;
            if limiter.try_acquire().is_ok() {
                admitted += 1;
            }
        }
        let due = Duration::from_secs_f64(attempts as f64 / per_sec as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    let (a0, rt0) = counted_from.unwrap();
    let rts = limiter.snapshot().round_trips - rt0;
    (
        rts as f64 * 1000.0 / (admitted - a0).max(1) as f64,
        admitted - a0,
    )
}

/// Script calls the server has answered so far (`INFO commandstats`: `EVALSHA`, `EVAL`
/// and `SCRIPT …`, each one round trip; the commands a script runs inside are counted
/// under their own names and left out).
fn script_calls(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| l.starts_with("eval") || l.starts_with("script"))
        .filter_map(|l| {
            l.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The naive GCRA paced like [`round_trips_per_1000`] (as fast as one connection goes
/// if it cannot keep up): round trips per 1,000 admissions, counted by the server.
fn naive_round_trips_per_1000(server: &RedisServer, per_sec: u64, seconds: u64) -> (f64, u64) {
    let mut con = server.client();
    let naive = redis::Script::new(NAIVE_GCRA);
    let interval_us = (1_000_000 / (per_sec * 4)).max(1);
    let before = script_calls(&mut con);
    let start = Instant::now();
    let (mut admitted, mut attempts) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(seconds) {
        attempts += 1;
        let ok: u64 = naive
            .key("bench:naive-steady")
            .arg(interval_us)
            .arg(interval_us * 100)
            .invoke(&mut con)
            .unwrap();
        admitted += ok;
        let due = Duration::from_secs_f64(attempts as f64 / per_sec as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    let round_trips = script_calls(&mut con) - before;
    (
        round_trips as f64 * 1000.0 / admitted.max(1) as f64,
        admitted,
    )
}

/// `BW_FLEET_MIN`: see the module docs.
fn min_batches(server: &RedisServer) {
    const BATCH: u32 = 20_000;
    let local = RateLimiter::new(quota()).unwrap();
    let fleet = FleetRateLimiter::new("min", quota(), fleet_config(server, "min")).unwrap();
    wait_for_tokens(&fleet);
    let batch_ns = |op: &dyn Fn() -> bool| {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(op());
        }
        start.elapsed().as_nanos() as f64 / f64::from(BATCH)
    };
    let (mut l, mut f) = (f64::MAX, f64::MAX);
    for _ in 0..300 {
        l = l.min(batch_ns(&|| local.try_acquire().is_ok()));
        f = f.min(batch_ns(&|| fleet.try_acquire().is_ok()));
    }
    let snap = fleet.snapshot();
    println!(
        "min/fleet: local limiter {l:.2} ns, fleet limiter {f:.2} ns, ratio {:.2} ({} rejected: refill behind)",
        f / l,
        snap.rejected
    );
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start(&[]);
    if std::env::var_os("BW_FLEET_MIN").is_some() {
        min_batches(&server);
        std::process::exit(0);
    }
    let mut group = c.benchmark_group("fleet_vs_local");
    let local = RateLimiter::new(quota()).unwrap();
    group.bench_function("local_limiter", |b| {
        b.iter(|| black_box(local.try_acquire().is_ok()))
    });
    let fleet = FleetRateLimiter::new("hot", quota(), fleet_config(&server, "hot")).unwrap();
    wait_for_tokens(&fleet);
    group.bench_function("fleet_limiter", |b| {
        b.iter(|| black_box(fleet.try_acquire().is_ok()))
    });
    let snap = fleet.snapshot();
    eprintln!(
        "fleet hot path: {} leased, {} rejected (refill behind), {} round trips",
        snap.leased, snap.rejected, snap.round_trips
    );
    drop(fleet);

    let mut con = server.client();
    let naive = redis::Script::new(NAIVE_GCRA);
    group.bench_function("naive_redis_gcra", |b| {
        b.iter(|| {
            let ok: u64 = naive
                .key("bench:naive")
                .arg(1u64) // 1 µs interval: 10^6 per second, never the limit here
                .arg(1_000_000u64)
                .invoke(&mut con)
                .unwrap();
            black_box(ok)
        })
    });
    group.finish();

    let (per_1000, admitted) = round_trips_per_1000(&server, 20_000, 3);
    let (naive_per_1000, naive_admitted) = naive_round_trips_per_1000(&server, 20_000, 2);
    println!(
        "fleet round trips per 1000 admissions: {per_1000:.2} ({admitted} admissions at 20000/s); \
         naive GCRA: {naive_per_1000:.2} ({naive_admitted} admissions)"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
