//! Fleet quotas against a real `redis-server` (feature `fleet`): started on a free
//! loopback port with persistence off, stopped by a guard (also on panic). Several
//! processes are this test binary run again as children (`child_process`, ignored
//! unless called so).
//!
//! `tls.rs` (module `tls`): the same over `rediss://`, with certificates made at run
//! time.
//!
//! Time: about 18 s in all.
#![cfg(feature = "fleet")]

#[path = "fleet/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "common/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

use breakwater::fleet::{FleetConcurrencyLimiter, FleetConfig, FleetRateLimiter, OnUnavailable};
use breakwater::limiter::RateLimiterConfig;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn fleet(server: &RedisServer, namespace: &str) -> FleetConfig {
    let mut c = FleetConfig::new(server.address());
    c.namespace = namespace.into();
    // Generous: a loaded machine's Redis may answer slowly without being unavailable.
    c.timeout = Duration::from_millis(250);
    c.lease_horizon = Duration::from_millis(50);
    c.max_backoff = Duration::from_millis(500);
    c
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name).unwrap().parse().unwrap()
}

/// Runs `child_process` in a new process of this binary with `vars`.
fn spawn_child(vars: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    cmd.spawn().unwrap()
}

/// The `RESULT key=value …` line a child printed, as pairs.
fn child_result(child: Child) -> Vec<(String, u64)> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    // The harness prints `test child_process ... ` on the same line before it.
    let line = text
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no RESULT line in {text}"));
    line.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn field(result: &[(String, u64)], key: &str) -> u64 {
    result.iter().find(|(k, _)| k == key).unwrap().1
}

/// What a child process does, by `BW_FLEET_CHILD`: `rate` hammers a fleet rate limit
/// from 2 threads between `START_MS` and `START_MS + DURATION_MS`; `slots` does the same
/// on a fleet concurrency limit, checking the fleet-wide count in Redis; `hold` takes
/// every slot and waits to be killed.
#[test]
#[ignore = "run in child processes by the fleet tests"]
fn child_process() {
    let Ok(role) = std::env::var("BW_FLEET_CHILD") else {
        return;
    };
    let mut config = FleetConfig::new(format!("127.0.0.1:{}", env_u64("BW_FLEET_PORT")));
    config.namespace = std::env::var("BW_FLEET_NAMESPACE").unwrap();
    config.lease_horizon = Duration::from_millis(50);
    config.lease_ttl = Duration::from_millis(1000);
    config.timeout = Duration::from_millis(200);
    let start = env_u64("BW_FLEET_START_MS");
    let end = start + env_u64("BW_FLEET_DURATION_MS");
    let wait_until = |ms: u64| {
        let now = unix_ms();
        if ms > now {
            thread::sleep(Duration::from_millis(ms - now));
        }
    };
    match role.as_str() {
        "rate" => {
            wait_until(start);
            let quota = RateLimiterConfig::new(env_u64("BW_FLEET_RATE"), Duration::from_secs(1))
                .with_burst(env_u64("BW_FLEET_BURST"));
            let limiter = FleetRateLimiter::new("quota", quota, config).unwrap();
            let admitted = AtomicU64::new(0);
            thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        while unix_ms() < end {
                            match limiter.try_acquire() {
                                Ok(()) => {
                                    admitted.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => thread::sleep(Duration::from_micros(200)),
                            }
                        }
                    });
                }
            });
            let snap = limiter.snapshot();
            assert!(!snap.unavailable, "{:?}", snap.message);
            println!(
                "RESULT admitted={} round_trips={} leased={}",
                admitted.load(Ordering::Relaxed),
                snap.round_trips,
                snap.leased
            );
        }
        "slots" => {
            wait_until(start);
            let limit = env_u64("BW_FLEET_LIMIT") as u32;
            let limiter = FleetConcurrencyLimiter::new("slots", limit, config).unwrap();
            let check_key = format!("{}:check", std::env::var("BW_FLEET_NAMESPACE").unwrap());
            let admitted = AtomicU64::new(0);
            let max_seen = AtomicU64::new(0);
            thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        let port = env_u64("BW_FLEET_PORT");
                        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                            .unwrap()
                            .get_connection()
                            .unwrap();
                        while unix_ms() < end {
                            match limiter.try_acquire() {
                                Ok(slot) => {
                                    let n: u64 =
                                        redis::cmd("INCR").arg(&check_key).query(&mut con).unwrap();
                                    max_seen.fetch_max(n, Ordering::Relaxed);
                                    thread::sleep(Duration::from_millis(2));
                                    let _: i64 =
                                        redis::cmd("DECR").arg(&check_key).query(&mut con).unwrap();
                                    limiter.release(slot);
                                    admitted.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => thread::sleep(Duration::from_millis(1)),
                            }
                        }
                    });
                }
            });
            println!(
                "RESULT admitted={} max_in_flight={} fallback={}",
                admitted.load(Ordering::Relaxed),
                max_seen.load(Ordering::Relaxed),
                limiter.snapshot().admitted_fallback
            );
        }
        "hold" => {
            let limit = env_u64("BW_FLEET_LIMIT") as u32;
            let limiter = FleetConcurrencyLimiter::new("slots", limit, config).unwrap();
            let slots: Vec<_> = (0..limit).map(|_| limiter.try_acquire().unwrap()).collect();
            println!("HELD {}", slots.len());
            thread::sleep(Duration::from_secs(20));
            unreachable!("the test kills this process");
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn four_processes_share_one_rate_limit() {
    let server = RedisServer::start(&[]);
    let (rate, burst, duration_ms) = (1000u64, 100u64, 2000u64);
    let start = unix_ms() + 300;
    let children: Vec<Child> = (0..4)
        .map(|_| {
            spawn_child(&[
                ("BW_FLEET_CHILD", "rate".into()),
                ("BW_FLEET_PORT", server.port.to_string()),
                ("BW_FLEET_NAMESPACE", "rate4".into()),
                ("BW_FLEET_START_MS", start.to_string()),
                ("BW_FLEET_DURATION_MS", duration_ms.to_string()),
                ("BW_FLEET_RATE", rate.to_string()),
                ("BW_FLEET_BURST", burst.to_string()),
            ])
        })
        .collect();
    let results: Vec<_> = children.into_iter().map(child_result).collect();
    let admitted: u64 = results.iter().map(|r| field(r, "admitted")).sum();
    let round_trips: u64 = results.iter().map(|r| field(r, "round_trips")).sum();
    // Tokens are granted from `start` (the limiters are built then) until a grant
    // requested before the end returns (within the 200 ms timeout).
    let upper = rate * (duration_ms + 200) / 1000 + burst;
    let lower = rate * duration_ms / 1000 * 9 / 10;
    eprintln!("admitted {admitted} (bounds {lower}..={upper}), {round_trips} round trips");
    assert!(
        admitted <= upper,
        "admitted {admitted} > quota·T + burst = {upper}"
    );
    assert!(
        admitted >= lower,
        "admitted {admitted} < 90 % of quota·T = {lower}"
    );
}

#[test]
fn fleet_concurrency_holds_across_processes_and_a_killed_process_slots_return() {
    let server = RedisServer::start(&[]);
    let limit = 3u64;
    let start = unix_ms() + 300;
    let children: Vec<Child> = (0..4)
        .map(|_| {
            spawn_child(&[
                ("BW_FLEET_CHILD", "slots".into()),
                ("BW_FLEET_PORT", server.port.to_string()),
                ("BW_FLEET_NAMESPACE", "slots4".into()),
                ("BW_FLEET_START_MS", start.to_string()),
                ("BW_FLEET_DURATION_MS", "1500".into()),
                ("BW_FLEET_LIMIT", limit.to_string()),
            ])
        })
        .collect();
    let results: Vec<_> = children.into_iter().map(child_result).collect();
    let max_in_flight = results
        .iter()
        .map(|r| field(r, "max_in_flight"))
        .max()
        .unwrap();
    let admitted: u64 = results.iter().map(|r| field(r, "admitted")).sum();
    let fallback: u64 = results.iter().map(|r| field(r, "fallback")).sum();
    eprintln!("admitted {admitted}, at most {max_in_flight} in flight");
    assert!(
        max_in_flight <= limit,
        "{max_in_flight} in flight > {limit}"
    );
    assert_eq!(fallback, 0, "Redis was up: no fallback admission");

    // A process holding every slot is killed: its slots return after the lease TTL.
    let mut holder = spawn_child(&[
        ("BW_FLEET_CHILD", "hold".into()),
        ("BW_FLEET_PORT", server.port.to_string()),
        ("BW_FLEET_NAMESPACE", "hold".into()),
        ("BW_FLEET_START_MS", "0".into()),
        ("BW_FLEET_DURATION_MS", "0".into()),
        ("BW_FLEET_LIMIT", limit.to_string()),
    ]);
    let mut line = String::new();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    while !line.contains("HELD") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "holder exited early");
    }
    let mut config = fleet(&server, "hold");
    config.lease_ttl = Duration::from_millis(1000);
    let limiter = FleetConcurrencyLimiter::new("slots", limit as u32, config).unwrap();
    assert!(limiter.try_acquire().is_err(), "every slot is held");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let slot = loop {
        if let Ok(slot) = limiter.try_acquire() {
            break slot;
        }
        assert!(
            Instant::now() < deadline,
            "the killed process's slots never came back"
        );
        thread::sleep(Duration::from_millis(50));
    };
    limiter.release(slot);
    assert_eq!(limiter.snapshot().admitted_fallback, 0);
}

/// Hammers `limiter` from 2 threads until `stop`, recording the slowest call.
fn hammer(
    limiter: &Arc<FleetRateLimiter>,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<(u64, Duration)>> {
    (0..2)
        .map(|_| {
            let (l, stop) = (limiter.clone(), stop.clone());
            thread::spawn(move || {
                let (mut admitted, mut slowest) = (0u64, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = l.try_acquire();
                    slowest = slowest.max(t.elapsed());
                    match r {
                        Ok(()) => admitted += 1,
                        Err(_) => thread::sleep(Duration::from_micros(200)),
                    }
                }
                (admitted, slowest)
            })
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_killed_and_restarted_then_paused() {
    let mut server = RedisServer::start(&[]);
    let (rate, burst, share) = (2000u64, 100u64, 0.25);
    let mut config = fleet(&server, "outage");
    config.local_share = share;
    config.on_unavailable = OnUnavailable::Local;
    // Long, so that a call that waited on the paused Redis (a whole timeout) stands far
    // apart from a thread the loaded machine's scheduler kept waiting.
    config.timeout = Duration::from_secs(1);
    let quota = RateLimiterConfig::new(rate, Duration::from_secs(1)).with_burst(burst);
    let limiter = Arc::new(FleetRateLimiter::new("quota", quota, config.clone()).unwrap());
    let slots = FleetConcurrencyLimiter::new("slots", 2, config.clone()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let threads = hammer(&limiter, &stop);

    thread::sleep(Duration::from_millis(300));
    server.kill();
    wait_for("the limit to fall back", Duration::from_secs(3), || {
        limiter.snapshot().unavailable
    });
    let message = limiter
        .unavailable_message()
        .expect("a message while unavailable");
    assert!(message.contains("unavailable"), "{message}");
    // The concurrency limit falls back too, at once or after one refused connect. Its
    // wait is at most `timeout` (docs/design.md, "Fleet quotas"); the bound below adds a
    // wide margin for the scheduler, so only a call that hung fails it.
    let slot_bound = config.timeout + Duration::from_secs(2);
    let t = Instant::now();
    let slot = slots.try_acquire().expect("local share admits");
    assert!(
        t.elapsed() < slot_bound,
        "slot acquire took {:?}",
        t.elapsed()
    );
    slots.release(slot);
    thread::sleep(Duration::from_millis(500));
    server.restart();
    wait_for(
        "the return to the fleet quota",
        Duration::from_secs(5),
        || !limiter.snapshot().unavailable,
    );

    // Paused: connections open but nothing answers; every call times out.
    thread::sleep(Duration::from_millis(200));
    server.signal("-STOP");
    wait_for(
        "the limit to fall back on a paused Redis",
        Duration::from_secs(5),
        || limiter.snapshot().unavailable,
    );
    let t = Instant::now();
    let slot = slots.try_acquire();
    let waited = t.elapsed();
    // The connect, the command and a `NOSCRIPT` retry share one `timeout`; the margin
    // is the scheduler's (see `slot_bound`).
    assert!(
        waited < slot_bound,
        "slot acquire on a paused Redis took {waited:?}"
    );
    if let Ok(slot) = slot {
        slots.release(slot);
    }
    thread::sleep(Duration::from_millis(500));
    server.signal("-CONT");
    wait_for("the return after the pause", Duration::from_secs(5), || {
        !limiter.snapshot().unavailable
    });
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let mut admitted = 0;
    let mut slowest = Duration::ZERO;
    for t in threads {
        let (a, s) = t.join().unwrap();
        admitted += a;
        slowest = slowest.max(s);
    }
    let elapsed_ms = began.elapsed().as_millis() as u64 + 200;
    let snap = limiter.snapshot();
    // Fleet: quota·T + burst, one more burst per restart (nothing persisted); local
    // fallback: the share's quota over the whole run (a loose T) plus its burst, once
    // per outage.
    let fleet_bound = rate * elapsed_ms / 1000 + 2 * burst;
    let local_rate = (rate as f64 * share) as u64;
    let local_burst = (burst as f64 * share) as u64;
    let bound = fleet_bound + local_rate * elapsed_ms / 1000 + local_burst;
    eprintln!("admitted {admitted} ≤ {bound}; slowest try_acquire {slowest:?}; {snap:?}");
    assert!(admitted <= bound, "admitted {admitted} > {bound}");
    assert!(
        snap.admitted_fallback > 0,
        "the local share admitted during the outages"
    );
    assert!(snap.recoveries >= 2, "{snap:?}");
    // The hot path never waits on the network. A call that did would wait the whole
    // 1 s timeout on the paused Redis; anything shorter is the scheduler (2 threads
    // spinning on a loaded 2-core machine), so only such a wait, or a hang, fails this.
    assert!(slowest < config.timeout, "slowest try_acquire {slowest:?}");
}

/// A fleet rate limit through a policy file with `on_unavailable = mode`, called from
/// 2 threads (a call a millisecond each, below the quota, so that leased tokens are held
/// when Redis goes) while Redis is killed and restarted. Checks what both modes share (health
/// degraded while Redis is gone, back on leased tokens once it returns) and hands each
/// mode's own checks the snapshot at the kill, the one before the restart, and the
/// admissions in between.
fn rate_outage(mode: &str, check: impl FnOnce(&Outage)) {
    let mut server = RedisServer::start(&[]);
    let (rate, burst) = (5000u64, 500u64);
    let toml = format!(
        r#"
[policies.q.rate_limiter]
rate = {rate}
period = "1s"
burst = {burst}
scope = "fleet"

[policies.q.fleet]
address = "{}"
namespace = "outage-{mode}"
on_unavailable = "{mode}"
timeout = "250ms"
max_backoff = "200ms"
lease_horizon = "50ms"
"#,
        server.address()
    );
    let engine = breakwater::engine::Engine::from_toml_str(&toml).unwrap();
    let policy = engine.policy("q").unwrap();
    let fleet = || policy.snapshot().fleet_limiter.unwrap();
    let admitted = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(permit) = policy.acquire() {
                        permit.success();
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            });
        }
        wait_for("a first grant", Duration::from_secs(3), || {
            fleet().leased > 0
        });
        thread::sleep(Duration::from_millis(300));
        server.kill();
        // The snapshot first: a call counted after this load may have taken its token
        // before the snapshot, one per thread at most (the `+ 2` of the checks).
        let at_kill = fleet();
        let admitted_at_kill = admitted.load(Ordering::Relaxed);
        wait_for("the fallback", Duration::from_secs(3), || {
            fleet().unavailable
        });
        let fell_back = fleet();
        let health = engine.health();
        let json = health.to_json();
        assert_eq!(health.status.as_str(), "degraded", "{json}");
        assert!(json.contains("\"kind\":\"fleet_unavailable\""), "{json}");
        thread::sleep(Duration::from_millis(400));
        let before_restart = fleet();
        let outage = Outage {
            at_kill,
            fell_back,
            admitted: admitted.load(Ordering::Relaxed) - admitted_at_kill,
            before_restart,
        };
        eprintln!("{mode}: {outage:?}");
        assert!(outage.before_restart.unavailable, "{outage:?}");
        check(&outage);

        server.restart();
        wait_for(
            "the return to the fleet quota",
            Duration::from_secs(5),
            || !fleet().unavailable,
        );
        assert_eq!(engine.health().status.as_str(), "healthy");
        let back = fleet();
        let admitted_back = admitted.load(Ordering::Relaxed);
        thread::sleep(Duration::from_millis(500));
        let later = fleet();
        let since = admitted.load(Ordering::Relaxed) - admitted_back;
        stop.store(true, Ordering::Relaxed);
        eprintln!("{mode}: back {back:?}, {since} admitted in 500 ms after");
        // On the fleet quota again: every admission spends a token leased from the
        // restarted Redis (or one held when it came back), none is the fallback's.
        assert_eq!(later.admitted_fallback, back.admitted_fallback, "{later:?}");
        assert!(
            later.leased > back.leased,
            "no grant after the restart: {later:?}"
        );
        assert!(
            since <= back.local_tokens + (later.leased - back.leased) + 2,
            "{since} admitted beyond the tokens leased: {back:?} {later:?}"
        );
        assert!(since > 0, "nothing admitted after the restart");
    });
}

/// What [`rate_outage`] saw while Redis was down.
#[derive(Debug)]
struct Outage {
    /// Right after the kill returned.
    at_kill: breakwater::fleet::FleetLimiterSnapshot,
    /// Once the limit had fallen back (the refill thread's call failed).
    fell_back: breakwater::fleet::FleetLimiterSnapshot,
    /// Calls admitted from the kill to `before_restart`.
    admitted: u64,
    /// 400 ms into the fallback.
    before_restart: breakwater::fleet::FleetLimiterSnapshot,
}

/// `deny`: with Redis gone, only the tokens leased before the outage are spent.
#[test]
fn redis_killed_under_deny_admits_only_tokens_leased_before() {
    rate_outage("deny", |o| {
        // No grant once the refill thread has failed (Redis is gone); between the kill
        // and that failure, at most one grant whose reply was already on its way.
        assert_eq!(o.before_restart.leased, o.fell_back.leased, "{o:?}");
        let in_flight_grant = o.fell_back.leased - o.at_kill.leased;
        assert!(
            o.admitted <= o.at_kill.local_tokens + in_flight_grant + 2,
            "deny admitted {} with {} tokens held at the kill: {o:?}",
            o.admitted,
            o.at_kill.local_tokens
        );
        assert_eq!(o.before_restart.admitted_fallback, 0, "{o:?}");
        assert!(o.before_restart.rejected > o.at_kill.rejected, "{o:?}");
    });
}

/// `allow`: with Redis gone, calls are admitted without tokens and counted as such.
#[test]
fn redis_killed_under_allow_admits_through_the_fallback() {
    rate_outage("allow", |o| {
        assert!(o.before_restart.admitted_fallback > 0, "{o:?}");
        assert_eq!(o.before_restart.leased, o.fell_back.leased, "{o:?}");
    });
}

/// A holder keeps its slots for three lease TTLs: the refresh keeps them in Redis, so
/// another process's acquire (which first drops expired slots) is refused all along.
#[test]
fn held_fleet_slots_are_refreshed_past_their_ttl() {
    let server = RedisServer::start(&[]);
    let mut config = fleet(&server, "refresh");
    config.lease_ttl = Duration::from_millis(600);
    let holder = FleetConcurrencyLimiter::new("slots", 2, config.clone()).unwrap();
    let other = FleetConcurrencyLimiter::new("slots", 2, config.clone()).unwrap();
    let held = [holder.try_acquire().unwrap(), holder.try_acquire().unwrap()];
    let mut con = server.client();
    let mut in_redis = || -> u64 {
        redis::cmd("ZCARD")
            .arg("refresh:slots:slots")
            .query(&mut con)
            .unwrap()
    };
    let began = Instant::now();
    while began.elapsed() < config.lease_ttl * 3 {
        assert!(
            other.try_acquire().is_err(),
            "a slot was free after {:?}",
            began.elapsed()
        );
        assert_eq!(in_redis(), 2, "after {:?}", began.elapsed());
        thread::sleep(Duration::from_millis(50));
    }
    let snap = holder.snapshot();
    assert_eq!((snap.held, snap.leases_lost), (2, 0), "{snap:?}");
    for slot in held {
        holder.release(slot);
    }
    assert_eq!(in_redis(), 0);
    other.release(other.try_acquire().expect("released slots are free"));
}

/// A slot whose lease is gone is counted lost once and no longer refreshed (it used to
/// be counted again at every refresh until released).
#[test]
fn a_lost_lease_is_counted_once() {
    let server = RedisServer::start(&[]);
    let mut config = fleet(&server, "lost");
    config.lease_ttl = Duration::from_millis(150); // a refresh every 50 ms
    let limiter = FleetConcurrencyLimiter::new("slots", 2, config.clone()).unwrap();
    let kept = limiter.try_acquire().unwrap();
    let lost = limiter.try_acquire().unwrap();
    // As if the lease had expired: the member is gone from the set.
    let mut con = server.client();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("lost:slots:slots")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(members.len(), 2);
    let last = members
        .iter()
        .max_by_key(|m| m.rsplit(':').next().unwrap().parse::<u64>().unwrap());
    let _: u64 = redis::cmd("ZREM")
        .arg("lost:slots:slots")
        .arg(last.unwrap())
        .query(&mut con)
        .unwrap();
    wait_for(
        "the refresh to find it lost",
        Duration::from_secs(3),
        || limiter.snapshot().leases_lost > 0,
    );
    thread::sleep(config.lease_ttl * 2); // six more refreshes
    let snap = limiter.snapshot();
    assert_eq!((snap.leases_lost, snap.held), (1, 1), "{snap:?}");
    let card: u64 = redis::cmd("ZCARD")
        .arg("lost:slots:slots")
        .query(&mut con)
        .unwrap();
    assert_eq!(card, 1, "the kept slot is still refreshed");
    limiter.release(lost);
    limiter.release(kept);
    assert_eq!(limiter.snapshot().leases_lost, 1);
}

#[test]
fn bad_address_and_bad_credentials_are_reported() {
    let quota = RateLimiterConfig::new(100, Duration::from_secs(1));
    let e = FleetRateLimiter::new("q", quota, FleetConfig::new("no-port-here")).unwrap_err();
    assert_eq!(e.field, "address");

    let mut missing = FleetConfig::new("127.0.0.1:6379");
    missing.password_env = Some("BW_FLEET_TEST_SURELY_UNSET".into());
    let e = FleetRateLimiter::new("q", quota, missing).unwrap_err();
    assert_eq!(e.field, "password_env");

    // Nothing listens: degraded, with a message naming the refusal.
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nobody = FleetConfig::new(format!("127.0.0.1:{closed_port}"));
    nobody.timeout = Duration::from_millis(100);
    let limiter = FleetRateLimiter::new("q", quota, nobody).unwrap();
    let _ = limiter.try_acquire();
    wait_for("a refused connection", Duration::from_secs(3), || {
        limiter.unavailable_message().is_some()
    });
    let message = limiter.unavailable_message().unwrap();
    assert!(message.contains("refused"), "{message}");

    // A server with a password: the wrong one is degraded, the right one works.
    let server = RedisServer::start(&["--requirepass", "right-password"]);
    let dir = std::env::temp_dir().join(format!("bw-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "wrong-password\n").unwrap();
    let mut config = fleet(&server, "auth");
    config.password_file = Some(wrong);
    let limiter = FleetRateLimiter::new("q", quota, config.clone()).unwrap();
    let _ = limiter.try_acquire();
    wait_for("an authentication failure", Duration::from_secs(3), || {
        limiter.unavailable_message().is_some()
    });
    let message = limiter.unavailable_message().unwrap();
    assert!(message.contains("authentication failed"), "{message}");
    drop(limiter);

    let right = dir.join("right");
    std::fs::write(&right, "right-password\n").unwrap();
    config.password_file = Some(right);
    let limiter = FleetRateLimiter::new("q", quota, config).unwrap();
    wait_for(
        "a token under the right password",
        Duration::from_secs(3),
        || limiter.try_acquire().is_ok(),
    );
    assert!(limiter.unavailable_message().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flushed_script_cache_is_reloaded() {
    let server = RedisServer::start(&[]);
    let quota = RateLimiterConfig::new(1000, Duration::from_secs(1)).with_burst(1000);
    let limiter = FleetRateLimiter::new("q", quota, fleet(&server, "noscript")).unwrap();
    wait_for("a first token", Duration::from_secs(3), || {
        limiter.try_acquire().is_ok()
    });
    let mut con = server.client();
    let _: String = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    let before = limiter.snapshot().leased;
    wait_for("a grant after SCRIPT FLUSH", Duration::from_secs(3), || {
        let _ = limiter.try_acquire();
        limiter.snapshot().leased > before
    });
    let snap = limiter.snapshot();
    assert_eq!(
        snap.failures, 0,
        "NOSCRIPT is handled, not a failure: {snap:?}"
    );
}

#[test]
fn a_policy_file_shares_its_quota_across_engines_and_reports_health() {
    let mut server = RedisServer::start(&[]);
    let toml = format!(
        r#"
[policies.payments.rate_limiter]
rate = 50
period = "1s"
burst = 10
scope = "fleet"

[policies.payments.fleet]
address = "{}"
namespace = "policyfile"
on_unavailable = "deny"
timeout = "100ms"
max_backoff = "200ms"
"#,
        server.address()
    );
    // Two engines: two processes' worth of the same policy file.
    let engines = [
        breakwater::engine::Engine::from_toml_str(&toml).unwrap(),
        breakwater::engine::Engine::from_toml_str(&toml).unwrap(),
    ];
    let began = Instant::now();
    let mut admitted = 0u64;
    while began.elapsed() < Duration::from_millis(600) {
        for engine in &engines {
            if let Ok(permit) = engine.policy("payments").unwrap().acquire() {
                permit.success();
                admitted += 1;
            }
        }
        thread::sleep(Duration::from_micros(500));
    }
    let elapsed_ms = began.elapsed().as_millis() as u64 + 100;
    assert!(
        admitted <= 50 * elapsed_ms / 1000 + 10,
        "admitted {admitted} in {elapsed_ms} ms"
    );
    assert!(
        admitted >= 20,
        "admitted {admitted}: the fleet quota admits"
    );
    let snap = engines[0].policy("payments").unwrap().snapshot();
    assert!(snap.limiter.is_none(), "the local limiter is replaced");
    assert!(snap.fleet_limiter.is_some());
    assert_eq!(engines[0].health().status.as_str(), "healthy");
    let text = engines[0].prometheus();
    for line in [
        "breakwater_fleet_unavailable{policy=\"payments\"} 0",
        "breakwater_fleet_stranded_bound{policy=\"payments\"} 10",
        "breakwater_fleet_burst_bound{policy=\"payments\"} 10",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(text.contains("breakwater_fleet_round_trips_total{policy=\"payments\"}"));

    server.kill();
    wait_for("degraded health", Duration::from_secs(3), || {
        let _ = engines[0]
            .policy("payments")
            .unwrap()
            .acquire()
            .map(|p| p.success());
        engines[0].health().status.as_str() == "degraded"
    });
    let json = engines[0].health().to_json();
    assert!(json.contains("\"kind\":\"fleet_unavailable\""), "{json}");
    assert!(json.contains("unavailable: "), "{json}");
}

/// `fleet.max_concurrent` in a policy file: permits of two engines (two processes'
/// worth) share one in-flight limit; a completed permit gives its slot back; the slots
/// live in Redis (`NAMESPACE:POLICY:slots`) and none is left when all completed; with
/// Redis gone, `deny` refuses and health is degraded.
#[test]
fn a_policy_file_fleet_concurrency_limit_holds_across_engines() {
    let mut server = RedisServer::start(&[]);
    let toml = format!(
        r#"
[policies.db.rate_limiter]
rate = 1000
period = "1s"

[policies.db.fleet]
address = "{}"
namespace = "policyslots"
max_concurrent = 3
on_unavailable = "deny"
timeout = "250ms"
max_backoff = "200ms"
"#,
        server.address()
    );
    let engines = [
        breakwater::engine::Engine::from_toml_str(&toml).unwrap(),
        breakwater::engine::Engine::from_toml_str(&toml).unwrap(),
    ];
    let policies = [
        engines[0].policy("db").unwrap(),
        engines[1].policy("db").unwrap(),
    ];
    let db = |i: usize| &policies[i];
    let mut con = server.client();
    let in_redis = |con: &mut redis::Connection| -> u64 {
        redis::cmd("ZCARD")
            .arg("policyslots:db:slots")
            .query(con)
            .unwrap()
    };
    let first = db(0).acquire().unwrap();
    let second = db(1).acquire().unwrap();
    let third = db(0).acquire().unwrap();
    assert_eq!(in_redis(&mut con), 3);
    for i in 0..2 {
        let refused = db(i).acquire().map(|p| p.success()).unwrap_err();
        assert_eq!(refused.reason, breakwater::RejectReason::BulkheadFull);
    }
    let snap = db(0).snapshot();
    assert!(snap.limiter.is_some(), "the rate limiter stays local");
    let slots = snap.fleet_limiter.unwrap().concurrency.unwrap();
    assert_eq!(slots.held, 2, "{slots:?}");
    assert!(slots.rejected >= 1, "{slots:?}");

    second.success();
    assert_eq!(in_redis(&mut con), 2);
    let fourth = db(0).acquire().expect("a slot given back is taken again");
    first.failure();
    third.success();
    drop(fourth); // completes as ignored: its slot goes back too
    assert_eq!(in_redis(&mut con), 0);
    assert_eq!(engines[0].health().status.as_str(), "healthy");

    // Redis gone: `deny` admits nothing, and health says why.
    server.kill();
    let refused = db(0).acquire().map(|p| p.success()).unwrap_err();
    assert_eq!(refused.reason, breakwater::RejectReason::BulkheadFull);
    let json = engines[0].health().to_json();
    assert_eq!(engines[0].health().status.as_str(), "degraded", "{json}");
    assert!(json.contains("\"kind\":\"fleet_unavailable\""), "{json}");
}
