//! `breakwater`: validate policy files, replay the checkout incident, measure the
//! primitives on this machine.
//!
//! - `check`: `breakwater check FILE` and `breakwater explain FILE [POLICY]`.
//! - `demo`, `scenario`, `trace`, `progress`, `table`, `svg`: `breakwater demo`.
//! - `bench`: `breakwater bench`.
//! - `exit`: the exit codes.

#[path = "breakwater/bench.rs"]
mod bench;
#[path = "breakwater/check.rs"]
mod check;
#[path = "breakwater/demo.rs"]
mod demo;
#[path = "breakwater/exit.rs"]
mod exit;
#[path = "breakwater/progress.rs"]
mod progress;
#[path = "breakwater/scenario.rs"]
mod scenario;
#[path = "breakwater/svg.rs"]
mod svg;
#[path = "breakwater/table.rs"]
mod table;
#[path = "breakwater/trace.rs"]
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

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
    /// Replay the checkout incident twice, unprotected and through a breakwater policy,
    /// and compare.
    ///
    /// A checkout gateway with a pool of worker threads serves two kinds of requests:
    /// checkouts, which call a simulated payment service, and healthy endpoints, which
    /// do not. A third of the way in, the payment service degrades (latency 20 ms -> 2 s,
    /// 50 % errors); later it heals. The same traffic (same arrivals, same random draws)
    /// runs twice: once calling the payment service directly, once through a policy
    /// (the embedded default: timeout + circuit breaker + bulkhead + retry with budget,
    /// or `--policy FILE NAME`). Prints a side-by-side table and optionally writes an
    /// SVG plotting success rate, latency, worker use and breaker state over time.
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

/// Options of `breakwater demo`.
#[derive(Args, Debug, Clone)]
pub(crate) struct DemoArgs {
    /// Total wall time of both runs (each run takes half). The whole incident is scaled:
    /// traffic, latencies, phases and the policy's time settings. Examples: 20s, 6s, 1m.
    #[arg(long, default_value = "20s", value_parser = parse_demo_duration)]
    pub(crate) duration: Duration,
    /// Seed of every random choice (arrivals, request kinds, latencies, errors).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Run the payment calls through policy NAME of FILE instead of the embedded default.
    #[arg(long, num_args = 2, value_names = ["FILE", "NAME"])]
    pub(crate) policy: Option<Vec<String>>,
    /// Write the picture to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) out: Option<PathBuf>,
    /// Worker threads of the gateway.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=256))]
    pub(crate) workers: u32,
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
    /// Measured time of each case (primitive × thread count), in milliseconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub(crate) duration_ms: u64,
    /// The "N threads" rows use this many threads (default: available parallelism).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
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
        Command::Demo(args) => demo::run(&args),
        Command::Check { file } => check::check(&file),
        Command::Explain { file, policy } => check::explain(&file, policy.as_deref()),
        Command::Bench(args) => bench::run(&args),
    };
    ExitCode::from(code as u8)
}
