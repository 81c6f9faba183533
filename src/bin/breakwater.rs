//! `breakwater`: validate policy files, replay incidents against a policy (in virtual
//! time, or in real threads), measure the primitives on this machine.
//!
//! - `check`: `breakwater check FILE` and `breakwater explain FILE [POLICY]`.
//! - `scenario`, `scenario_file`: the incidents (built in, or from a TOML file).
//! - `sim_command`, `simulate`: `breakwater simulate`, the incident on a manual clock.
//! - `demo`, `progress`: `breakwater demo`, the incident in real threads.
//! - `policy_source`: the policy a run uses, and its scaling for the demo.
//! - `trace`, `table`, `diagnosis`, `svg`, `output`, `terminal`: what a run recorded and
//!   how it is shown.
//! - `bench`: `breakwater bench`.
//! - `exit`: the exit codes.

#[path = "breakwater/bench.rs"]
mod bench;
#[path = "breakwater/check.rs"]
mod check;
#[path = "breakwater/demo.rs"]
mod demo;
#[path = "breakwater/diagnosis.rs"]
mod diagnosis;
#[path = "breakwater/exit.rs"]
mod exit;
#[path = "breakwater/output.rs"]
mod output;
#[path = "breakwater/policy_source.rs"]
mod policy_source;
#[path = "breakwater/progress.rs"]
mod progress;
#[path = "breakwater/scenario.rs"]
mod scenario;
#[path = "breakwater/scenario_file.rs"]
mod scenario_file;
#[path = "breakwater/shorten.rs"]
mod shorten;
#[path = "breakwater/sim_command.rs"]
mod sim_command;
#[path = "breakwater/simulate.rs"]
mod simulate;
#[path = "breakwater/svg.rs"]
mod svg;
#[path = "breakwater/table.rs"]
mod table;
#[path = "breakwater/terminal.rs"]
mod terminal;
#[path = "breakwater/trace.rs"]
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (a valid policy file, a completed run)
  1  errors found in a policy file, unknown policy name, or a failed run
  2  usage error (unknown option, missing or malformed argument)
  3  I/O error (a file could not be read or written)";

/// breakwater: an embedded resilience runtime (circuit breakers, rate limiters,
/// bulkheads, adaptive limits, retries, chaos).
#[derive(Parser, Debug)]
#[command(name = "breakwater", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay an incident in virtual time, unprotected and through a policy, and compare:
    /// the tool to tune a policy file with.
    ///
    /// A gateway with a pool of workers serves checkouts, which call a payment service,
    /// and healthy endpoints, which do not. The incident (`--scenario`: a built-in one or
    /// a TOML file) makes the payment service or the traffic misbehave for a while. The
    /// same traffic runs twice on a manual clock (simulated arrivals, service times and
    /// workers; no threads, no sleeps): once calling payment directly, once through
    /// `--policy FILE NAME` (default: the embedded policy, `demo --print-policy`). The
    /// same seed prints the same bytes. Prints a side-by-side table, says why a policy
    /// did not help when it did not, and writes the picture with `--out`.
    #[command(after_help = SCENARIO_HELP)]
    Simulate(SimulateArgs),
    /// Replay the checkout incident in real threads, unprotected and through a policy.
    ///
    /// The checkout incident of `simulate`, played by real worker threads that sleep for
    /// the simulated work, so the policy runs under real scheduling. `--duration` sets the
    /// wall time of both runs; the incident and the policy's time settings are scaled to
    /// it. The seed repeats the traffic and the payment service's answers; which worker
    /// serves what, and so the exact numbers, vary from run to run (use `simulate` for
    /// runs that repeat exactly).
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
    /// Validate a policy file: print every error as `FILE:LINE: policy `NAME`: `field`: reason`.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Print the effective configuration of a policy file, every default filled in.
    ///
    /// The output is itself a valid policy file that loads to the same configuration.
    #[command(after_help = EXIT_CODES)]
    Explain {
        /// The policy file (TOML).
        file: PathBuf,
        /// Only this policy (default: every policy in the file).
        policy: Option<String>,
    },
    /// Measure acquire + complete of each primitive on this machine (ns/op, ops/s, on 1
    /// and N threads).
    ///
    /// A quick look at the cost on your hardware; the criterion benchmarks in `benches/`
    /// (`cargo bench`) are the reference numbers.
    #[command(after_help = EXIT_CODES)]
    Bench(BenchArgs),
}

const SCENARIO_HELP: &str = "\
Built-in scenarios (--scenario NAME):
  checkout       payment degrades 3–6.5 s: latency 20 ms → 1.6–2.4 s, 50 % errors
  hard-down      payment is down 3–6.5 s: every call fails after a 1–1.5 s connect timeout
  error-burst    payment answers 80 % errors 3–6.5 s, at its usual speed
  spike          traffic jumps to 3× the gateway's capacity 3–6.5 s
  slow-recovery  payment degrades 2–4 s, then recovers slowly until 9 s
A scenario file (--scenario FILE.toml) describes its own; the format is in the README.

Exit codes:
  0  success (a valid policy file, a completed run)
  1  errors found in a policy file, unknown policy name, or a failed run
  2  usage error (unknown option, missing or malformed argument)
  3  I/O error (a file could not be read or written)";

/// Whether a policy's `timeout` cuts the payment call (`--timeout-cuts`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeoutCuts {
    /// The call is abandoned at the timeout and its worker freed (the Go and Python
    /// bindings, through the context's deadline or asyncio; the tower layer).
    Yes,
    /// The call runs to its end, holding its worker, and is then recorded as a timeout
    /// (its value still returned): a synchronous Rust or C call.
    No,
}

const TIMEOUT_CUTS_HELP: &str = "Whether the policy's `timeout` cuts a payment call: \
    `yes` (the default) abandons it at the timeout and frees the worker, as the Go and \
    Python bindings and the tower layer do; `no` lets it run to its end, holding the \
    worker, and records it as a timeout then (its value still returned), as a \
    synchronous Rust or C call does";

/// Options of `breakwater simulate`.
#[derive(Args, Debug, Clone)]
pub(crate) struct SimulateArgs {
    /// Run the payment calls through policy NAME of FILE instead of the embedded default.
    #[arg(long, num_args = 2, value_names = ["FILE", "NAME"])]
    pub(crate) policy: Option<Vec<String>>,
    /// The incident: a built-in name (see below) or a scenario file (FILE.toml).
    #[arg(long, default_value = "checkout", value_name = "NAME|FILE.toml")]
    pub(crate) scenario: String,
    /// Seed of every random choice (arrivals, request kinds, latencies, errors).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Write the picture to this file: FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub(crate) out: Option<PathBuf>,
    /// Worker threads of the gateway (a scenario file's `workers` wins).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=1024))]
    pub(crate) workers: u32,
    #[arg(long, value_enum, default_value = "yes", value_name = "yes|no", help = TIMEOUT_CUTS_HELP)]
    pub(crate) timeout_cuts: TimeoutCuts,
}

/// Options of `breakwater demo`.
#[derive(Args, Debug, Clone)]
pub(crate) struct DemoArgs {
    /// Total wall time of both runs (each run takes half), 1s..=10m. The whole incident is
    /// scaled: traffic, latencies, phases and the policy's time settings (each kept within
    /// its valid range; waits longer than a run are capped). Examples: 20s, 6s, 1m.
    #[arg(long, default_value = "20s", value_parser = parse_demo_duration)]
    pub(crate) duration: Duration,
    /// Seed of the traffic and of the payment service's answers. It repeats those; the
    /// numbers still vary with how the threads are scheduled.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Run the payment calls through policy NAME of FILE instead of the embedded default.
    #[arg(long, num_args = 2, value_names = ["FILE", "NAME"])]
    pub(crate) policy: Option<Vec<String>>,
    /// Write the picture to this file: FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub(crate) out: Option<PathBuf>,
    /// Worker threads of the gateway.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=256))]
    pub(crate) workers: u32,
    #[arg(long, value_enum, default_value = "yes", value_name = "yes|no", help = TIMEOUT_CUTS_HELP)]
    pub(crate) timeout_cuts: TimeoutCuts,
    /// Print the embedded default policy file and exit.
    #[arg(long)]
    pub(crate) print_policy: bool,
    /// No live progress bar on stderr.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Options of `breakwater bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// Timed window of each case (primitive × thread count), in milliseconds, 1..=10000.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) duration_ms: u64,
    /// The "N threads" rows use this many threads (default: the cores available).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) threads: Option<u32>,
}

fn parse_demo_duration(text: &str) -> Result<Duration, String> {
    let d = breakwater::config::parse_duration(text)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(600) {
        return Err(format!("{text} is outside 1s..=10m"));
    }
    Ok(d)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Simulate(args) => sim_command::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Check { file } => check::check(&file),
        Command::Explain { file, policy } => check::explain(&file, policy.as_deref()),
        Command::Bench(args) => bench::run(&args),
    };
    ExitCode::from(code as u8)
}
