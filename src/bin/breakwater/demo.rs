//! `breakwater demo`: the checkout incident, played twice in real threads.
//!
//! A dispatcher thread releases the requests at their arrival times into a bounded
//! queue; a pool of worker threads serves them (sleeping for the simulated work, so the
//! threads are really held); a sampler records the pool and the breaker. In the
//! protected run each payment call goes through [`Policy::call_when`], and a call that
//! would outlast the policy's timeout is abandoned at the timeout: the worker waits
//! `min(latency, timeout)` and the attempt is recorded as a timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use breakwater::engine::Engine;
use breakwater::policy::{CallError, Policy};

use crate::progress::{Progress, Status};
use crate::scenario::{self, Kind, Request, Scenario, CLIENT_TIMEOUT, RUN_SECONDS};
use crate::trace::{Fate, Record, Sample, Trace};
use crate::{exit, DemoArgs};

/// Why a payment attempt did not succeed (inside the protected run).
#[derive(Debug)]
enum PaymentFailure {
    Error,
    Timeout,
}

/// The state shared by the threads of one run.
struct Gateway<'a> {
    scenario: &'a Scenario,
    policy: Option<&'a Policy>,
    start: Instant,
    queue: Mutex<VecDeque<usize>>,
    ready: Condvar,
    closed: AtomicBool,
    busy: AtomicU32,
    queued: AtomicU32,
    ok: AtomicU64,
    done: AtomicU64,
}

impl Gateway<'_> {
    /// Incident seconds since the run started.
    fn now(&self) -> f64 {
        self.scenario.incident(self.start.elapsed())
    }

    fn finish(&self, request: &Request, end: f64, fate: Fate) -> Record {
        // A client that waited longer than its timeout has gone: it saw a failure then.
        let (end, fate) = if end - request.at > CLIENT_TIMEOUT {
            (request.at + CLIENT_TIMEOUT, Fate::ClientTimeout)
        } else {
            (end, fate)
        };
        // Relaxed: progress counters, read only for display.
        self.done.fetch_add(1, Ordering::Relaxed);
        if fate == Fate::Ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        }
        Record {
            kind: request.kind,
            arrival: request.at,
            end,
            fate,
        }
    }

    /// Releases every request at its arrival time; returns those turned away.
    fn dispatch(&self) -> Vec<Record> {
        let mut turned_away = Vec::new();
        for (i, request) in self.scenario.requests.iter().enumerate() {
            let due = self.scenario.wall(request.at);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                thread::sleep(due - elapsed);
            }
            let mut queue = self.queue.lock().expect("queue lock");
            if queue.len() >= self.scenario.queue_capacity {
                drop(queue);
                turned_away.push(self.finish(request, request.at, Fate::QueueFull));
            } else {
                queue.push_back(i);
                self.queued.store(queue.len() as u32, Ordering::Relaxed);
                drop(queue);
                self.ready.notify_one();
            }
        }
        self.closed.store(true, Ordering::Release);
        self.ready.notify_all();
        turned_away
    }

    /// One worker: serves requests until the dispatcher is done and the queue empty.
    fn work(&self) -> Vec<Record> {
        let mut records = Vec::new();
        loop {
            let next = {
                let mut queue = self.queue.lock().expect("queue lock");
                loop {
                    if let Some(i) = queue.pop_front() {
                        self.queued.store(queue.len() as u32, Ordering::Relaxed);
                        break Some(i);
                    }
                    // Acquire: pairs with the dispatcher's Release store, after its last push.
                    if self.closed.load(Ordering::Acquire) {
                        break None;
                    }
                    queue = self
                        .ready
                        .wait_timeout(queue, Duration::from_millis(50))
                        .expect("queue lock")
                        .0;
                }
            };
            let Some(i) = next else { return records };
            let request = &self.scenario.requests[i];
            self.busy.fetch_add(1, Ordering::Relaxed);
            let fate = match request.kind {
                Kind::Healthy => {
                    thread::sleep(self.scenario.wall(self.scenario.healthy_work(request)));
                    Fate::Ok
                }
                Kind::Checkout => self.checkout(request),
            };
            self.busy.fetch_sub(1, Ordering::Relaxed);
            records.push(self.finish(request, self.now(), fate));
        }
    }

    /// A checkout: call the payment service, directly or through the policy.
    fn checkout(&self, request: &Request) -> Fate {
        let Some(policy) = self.policy else {
            let answer = self.scenario.payment(request, 1, self.now());
            thread::sleep(self.scenario.wall(answer.latency));
            return if answer.error {
                Fate::PaymentError
            } else {
                Fate::Ok
            };
        };
        let timeout = policy.config().timeout;
        let result = policy.call_when(
            |attempt| {
                let answer = self.scenario.payment(request, attempt, self.now());
                let latency = self.scenario.wall(answer.latency);
                match timeout {
                    Some(limit) if latency > limit => {
                        // Abandon the call at the deadline (the worker is freed).
                        thread::sleep(limit);
                        Err(PaymentFailure::Timeout)
                    }
                    _ => {
                        thread::sleep(latency);
                        if answer.error {
                            Err(PaymentFailure::Error)
                        } else {
                            Ok(())
                        }
                    }
                }
            },
            |_| true,
        );
        match result {
            Ok(()) => Fate::Ok,
            Err(CallError::Rejected(r)) => Fate::Rejected(r.reason),
            Err(CallError::Failed(PaymentFailure::Timeout)) => Fate::PaymentTimeout,
            Err(CallError::Failed(PaymentFailure::Error) | CallError::Injected) => {
                Fate::PaymentError
            }
        }
    }

    fn sample(&self) -> Sample {
        Sample {
            t: self.now(),
            // Relaxed: gauges for the picture; a sample a few calls stale is fine.
            busy: self.busy.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            breaker: self.policy.and_then(|p| p.breaker()).map(|b| b.state()),
        }
    }
}

/// Plays the incident once; `policy` protects the payment calls when given.
fn play(scenario: &Scenario, policy: Option<&Policy>, progress: &Progress) -> Trace {
    let gateway = Gateway {
        scenario,
        policy,
        start: Instant::now(),
        queue: Mutex::new(VecDeque::with_capacity(scenario.queue_capacity)),
        ready: Condvar::new(),
        closed: AtomicBool::new(false),
        busy: AtomicU32::new(0),
        queued: AtomicU32::new(0),
        ok: AtomicU64::new(0),
        done: AtomicU64::new(0),
    };
    let finished = AtomicBool::new(false);
    let sample_every = scenario.wall(0.02).max(Duration::from_millis(1));
    let (mut records, samples) = thread::scope(|s| {
        let g = &gateway;
        let dispatcher = s.spawn(move || g.dispatch());
        let workers: Vec<_> = (0..scenario.workers)
            .map(|_| s.spawn(move || g.work()))
            .collect();
        let finished = &finished;
        let sampler = s.spawn(move || {
            let mut samples = Vec::new();
            // Acquire: pairs with the Release store once every worker has returned.
            while !finished.load(Ordering::Acquire) {
                samples.push(g.sample());
                thread::sleep(sample_every);
            }
            samples
        });
        let mut last_draw = Instant::now() - Duration::from_secs(1);
        while !dispatcher.is_finished() || workers.iter().any(|w| !w.is_finished()) {
            if last_draw.elapsed() >= Duration::from_millis(100) {
                last_draw = Instant::now();
                let sample = g.sample();
                progress.update(&Status {
                    now: sample.t,
                    total: RUN_SECONDS,
                    phase: Scenario::phase(sample.t),
                    ok: g.ok.load(Ordering::Relaxed),
                    done: g.done.load(Ordering::Relaxed),
                    busy: (sample.busy, scenario.workers),
                    queued: (sample.queued, scenario.queue_capacity),
                    breaker: sample.breaker.map(|b| b.as_str()),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
        let mut records = dispatcher.join().expect("dispatcher thread");
        for w in workers {
            records.extend(w.join().expect("worker thread"));
        }
        finished.store(true, Ordering::Release);
        (records, sampler.join().expect("sampler thread"))
    });
    records.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
    progress.finish(gateway.start.elapsed().as_secs_f64(), records.len());
    Trace {
        records,
        samples,
        workers: scenario.workers,
        policy: policy.map(|p| p.metrics().snapshot()),
    }
}

/// Loads the policy to protect the payment calls with, scaled to the incident.
fn load_policy(args: &DemoArgs, scale: f64) -> Result<(String, Arc<Policy>), i32> {
    let (origin, file, name) = match &args.policy {
        Some(v) => {
            let path = std::path::Path::new(&v[0]);
            (v[0].clone(), crate::check::load(path)?, v[1].clone())
        }
        None => {
            let file = breakwater::config::PolicyFile::parse(scenario::DEFAULT_POLICY)
                .expect("the embedded default policy is valid");
            (
                "the embedded default".to_string(),
                file,
                scenario::DEFAULT_POLICY_NAME.to_string(),
            )
        }
    };
    let Some(config) = file.policy(&name) else {
        eprintln!("breakwater: {origin}: no policy `{name}`");
        return Err(exit::ERRORS);
    };
    let mut config = config.clone();
    scenario::scale_policy(&mut config, scale);
    let engine = Engine::new();
    match engine.insert(config) {
        Ok(policy) => Ok((format!("policy `{name}` of {origin}"), policy)),
        Err(e) => {
            eprintln!(
                "breakwater: policy `{name}` scaled ×{scale:.2} to the demo is invalid: `{}`: {}",
                e.field, e.reason
            );
            Err(exit::ERRORS)
        }
    }
}

/// `breakwater demo`.
pub(crate) fn run(args: &DemoArgs) -> i32 {
    if args.print_policy {
        print!("{}", scenario::DEFAULT_POLICY);
        return exit::OK;
    }
    let scenario = Scenario::new(args.duration, args.workers, args.seed);
    let (policy_name, policy) = match load_policy(args, scenario.scale) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let title = format!(
        "The checkout incident: {} requests in {RUN_SECONDS:.0} s, payment degraded {:.1}–{:.1} s; {} workers, seed {}{}.",
        scenario.requests.len(),
        scenario::DEGRADE_AT,
        scenario::HEAL_AT,
        scenario.workers,
        args.seed,
        if (scenario.scale - 1.0).abs() > 1e-9 {
            format!(", played at ×{:.2} speed", 1.0 / scenario.scale)
        } else {
            String::new()
        }
    );
    eprintln!("{title}");
    let unprotected = play(&scenario, None, &Progress::new("unprotected", args.quiet));
    let protected = play(
        &scenario,
        Some(&policy),
        &Progress::new("with breakwater", args.quiet),
    );
    eprintln!();
    crate::table::print(&title, &policy_name, &unprotected, &protected);
    if let Some(out) = &args.out {
        let svg = crate::svg::render(&scenario, &policy_name, &unprotected, &protected);
        if let Err(e) = std::fs::write(out, svg) {
            eprintln!("breakwater: cannot write {}: {e}", out.display());
            return exit::IO;
        }
        println!(
            "\nWrote {} (success rate, latency, busy workers and breaker state over time).",
            out.display()
        );
    }
    exit::OK
}
