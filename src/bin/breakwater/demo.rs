//! `breakwater demo`: the checkout incident, played twice in real threads.
//!
//! A dispatcher thread releases the requests at their arrival times into a bounded
//! queue; a pool of worker threads serves them (sleeping for the simulated work, so the
//! threads are really held); a sampler records the pool and the breaker. In the
//! protected run each payment call goes through [`Policy::call_when`], and a call that
//! would outlast the policy's timeout is abandoned at the timeout: the worker waits
//! `min(latency, timeout)` and the attempt is recorded as a timeout. With
//! `--timeout-cuts no` it is not: the worker waits the whole latency, as with a
//! synchronous call, and `call_when` records the attempt as a timeout when it returns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use breakwater::policy::{CallError, Policy};

use crate::progress::{Progress, Status};
use crate::scenario::{Kind, Request, Scenario};
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
    /// Whether the policy's timeout cuts a payment call (`--timeout-cuts`).
    timeout_cuts: bool,
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
        let client_timeout = self.scenario.spec.client_timeout;
        let (end, fate) = if end - request.at > client_timeout {
            (request.at + client_timeout, Fate::ClientTimeout)
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
            if queue.len() >= self.scenario.spec.queue {
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
                    // Not cut: the call sleeps its whole latency below, and
                    // `call_when` records it as a timeout after it returns.
                    Some(limit) if latency > limit && self.timeout_cuts => {
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
fn play(
    scenario: &Scenario,
    policy: Option<&Policy>,
    timeout_cuts: bool,
    progress: &Progress,
) -> Trace {
    let gateway = Gateway {
        scenario,
        policy,
        timeout_cuts,
        start: Instant::now(),
        queue: Mutex::new(VecDeque::with_capacity(scenario.spec.queue)),
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
        let workers: Vec<_> = (0..scenario.spec.workers)
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
                    total: scenario.spec.seconds,
                    phase: scenario.spec.phase_name(sample.t),
                    ok: g.ok.load(Ordering::Relaxed),
                    done: g.done.load(Ordering::Relaxed),
                    busy: (sample.busy, scenario.spec.workers),
                    queued: (sample.queued, scenario.spec.queue),
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
        workers: scenario.spec.workers,
        seconds: scenario.spec.seconds,
        incident: scenario.spec.incident(),
        policy: policy.map(|p| p.metrics().snapshot()),
        seen: None,
        answers: Vec::new(),
    }
}

/// `breakwater demo`.
pub(crate) fn run(args: &DemoArgs) -> i32 {
    if args.print_policy {
        print!("{}", crate::scenario::DEFAULT_POLICY);
        return exit::OK;
    }
    let out = match args.out.as_deref().map(crate::output::prepare).transpose() {
        Ok(out) => out,
        Err(code) => return code,
    };
    let mut source = match crate::policy_source::load(args.policy.as_deref()) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let spec = crate::scenario::builtin("checkout", args.workers)
        .expect("the checkout incident is built in");
    let scale = args.duration.as_secs_f64() / 2.0 / spec.seconds;
    let scenario = Scenario::new(spec, args.seed, scale);
    let notes = crate::policy_source::scale(&mut source.config, scale, args.duration / 2);
    let policy = match Policy::new(source.config.clone()) {
        Ok(policy) => policy,
        Err(e) if source.embedded => {
            eprintln!(
                "breakwater: internal error: the embedded policy scaled ×{scale:.2} for \
                 --duration {} is invalid: `{}`: {} (please report this)",
                humantime::format_duration(args.duration),
                e.field,
                e.reason
            );
            return exit::ERRORS;
        }
        Err(e) => {
            eprintln!(
                "breakwater: {} is valid, but scaled ×{scale:.2} to a {} demo its `{}` is \
                 not: {}. `breakwater simulate` runs it unscaled, in virtual time.",
                source.label,
                humantime::format_duration(args.duration),
                e.field,
                e.reason
            );
            return exit::ERRORS;
        }
    };
    let width = crate::terminal::stdout_width();
    let title = format!(
        "The checkout incident in real threads: {} requests in {:.0} s, {}; {} workers, \
         seed {}, played at ×{:.2} speed. The seed repeats the traffic and the payment \
         service's answers; which worker serves what, and so the numbers, vary with the \
         scheduler (`breakwater simulate` repeats exactly).",
        scenario.requests.len(),
        scenario.spec.seconds,
        scenario.spec.summary,
        scenario.spec.workers,
        args.seed,
        1.0 / scale,
    );
    let cuts = args.timeout_cuts == crate::TimeoutCuts::Yes;
    let unprotected = play(
        &scenario,
        None,
        cuts,
        &Progress::new("unprotected", args.quiet),
    );
    let protected = play(
        &scenario,
        Some(&policy),
        cuts,
        &Progress::new("with breakwater", args.quiet),
    );
    print!(
        "{}",
        crate::table::render(
            &title,
            &source.label,
            scenario.spec.client_timeout,
            [&unprotected, &protected],
            width
        )
    );
    if !crate::diagnosis::helped(&unprotected, &protected) {
        crate::terminal::println_wrapped(
            "breakwater did not help here; `breakwater simulate` with the same --policy \
             replays this incident exactly and says why.",
            width,
        );
    }
    for note in &notes {
        crate::terminal::println_wrapped(&format!("Scaled for the demo: {note}."), width);
    }
    if let (false, Some(limit)) = (cuts, policy.config().timeout) {
        let note = format!(
            "Timeouts did not cut the payment calls (--timeout-cuts no): a call slower \
             than {} ran to its end, holding its worker, and was then recorded as a timeout.",
            crate::table::human(limit.as_secs_f64() / scale)
        );
        crate::terminal::println_wrapped(&note, width);
    }
    if let Some(out) = out {
        if let Err(code) =
            out.write_chart(&scenario, &source.label, [&unprotected, &protected], width)
        {
            return code;
        }
    }
    exit::OK
}
