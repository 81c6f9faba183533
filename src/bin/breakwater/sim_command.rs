//! `breakwater simulate`: loads the scenario and the policy, plays both runs in virtual
//! time, prints the table (and why the policy did not help, when it did not), writes
//! the picture.

use std::path::Path;
use std::time::{Duration, Instant};

use breakwater::clock::{AnyClock, ManualClock};
use breakwater::policy::Policy;

use crate::scenario::{builtin, Scenario, Spec, BUILTIN};
use crate::simulate::{play, Protection};
use crate::{exit, SimulateArgs, TimeoutCuts};

/// The scenario `--scenario` names: a built-in one, or a file.
fn spec(name: &str, workers: u32) -> Result<Spec, i32> {
    if let Some(spec) = builtin(name, workers) {
        return Ok(spec);
    }
    let looks_like_file = name.ends_with(".toml") || name.contains('/');
    if !looks_like_file {
        let names: Vec<&str> = BUILTIN.iter().map(|b| b.0).collect();
        eprintln!(
            "breakwater: no built-in scenario `{name}` (built in: {}; or a FILE.toml)",
            names.join(", ")
        );
        return Err(exit::USAGE);
    }
    let text = match std::fs::read_to_string(Path::new(name)) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("breakwater: cannot read {name}: {e}");
            return Err(exit::IO);
        }
    };
    crate::scenario_file::parse(name, &text, workers).map_err(|errors| {
        for e in &errors {
            println!("{e}");
        }
        let n = errors.len();
        println!("{name}: {n} error{}", if n == 1 { "" } else { "s" });
        exit::ERRORS
    })
}

/// `breakwater simulate`.
pub(crate) fn run(args: &SimulateArgs) -> i32 {
    let out = match args.out.as_deref().map(crate::output::prepare).transpose() {
        Ok(out) => out,
        Err(code) => return code,
    };
    let spec = match spec(&args.scenario, args.workers) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    let source = match crate::policy_source::load(args.policy.as_deref()) {
        Ok(source) => source,
        Err(code) => return code,
    };
    if let Some(host) = &source.config.host {
        // Checked before anything is built: building it would create the segment.
        eprintln!(
            "breakwater: {} has scope = \"host\" (segment `{}`): host scope cannot be \
             simulated (its breaker, limiter and bulkhead live in a segment shared with this \
             machine's other processes, on the system clock). Remove `scope` and `segment` \
             to simulate the same settings in one process.",
            source.label, host.segment
        );
        return exit::ERRORS;
    }
    let began = Instant::now();
    let scenario = Scenario::new(spec, args.seed, 1.0);
    // The simulator waits for bulkhead slots in virtual time itself; the policy must
    // never block the (only) thread.
    let mut config = source.config.clone();
    let bulkhead_wait = config.bulkhead.as_mut().map_or(0.0, |b| {
        std::mem::replace(&mut b.max_wait, Duration::ZERO).as_secs_f64()
    });
    let clock = ManualClock::new();
    let policy = match Policy::with_clock(config, AnyClock::Manual(clock.clone())) {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("breakwater: {}: `{}`: {}", source.label, e.field, e.reason);
            return exit::ERRORS;
        }
    };
    let unprotected = play(&scenario, None);
    let protected = play(
        &scenario,
        Some(&Protection {
            policy: &policy,
            clock: &clock,
            bulkhead_wait,
            timeout_cuts: args.timeout_cuts == TimeoutCuts::Yes,
        }),
    );
    let spent = began.elapsed();

    let width = crate::terminal::stdout_width();
    let spec = &scenario.spec;
    let title = format!(
        "The {} incident, simulated: {}. {} requests in {} s, {} workers, clients give up \
         after {}, seed {}.",
        spec.name,
        spec.summary,
        scenario.requests.len(),
        spec.seconds,
        spec.workers,
        crate::table::human(spec.client_timeout),
        scenario.seed
    );
    print!(
        "{}",
        crate::table::render(
            &title,
            &source.label,
            spec.client_timeout,
            [&unprotected, &protected],
            width
        )
    );
    let why = crate::diagnosis::explain(&scenario, &source.config, &unprotected, &protected);
    if !why.is_empty() {
        println!();
    }
    for line in &why {
        crate::terminal::println_wrapped(line, width);
    }
    if bulkhead_wait > 0.0 {
        let note = format!(
            "The bulkhead's max_wait ({}) was waited in virtual time, in arrival order.",
            crate::table::human(bulkhead_wait)
        );
        crate::terminal::println_wrapped(&note, width);
    }
    if let (TimeoutCuts::No, Some(limit)) = (args.timeout_cuts, source.config.timeout) {
        let note = format!(
            "Timeouts did not cut the payment calls (--timeout-cuts no): a call slower \
             than {} ran to its end, holding its worker, and was then recorded as a timeout.",
            crate::table::human(limit.as_secs_f64())
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
    // Wall time is the one thing that differs between runs: stderr, not stdout.
    eprintln!(
        "simulated 2 × {} s of incident in {:.3} s",
        spec.seconds,
        spent.as_secs_f64()
    );
    exit::OK
}
