//! The live progress bar of `breakwater demo`: one line on stderr, redrawn with `\r`.

use std::io::{IsTerminal, Write};

/// Draws the progress of one run, or only a closing line when stderr is not a terminal
/// (or `--quiet` was given).
pub(crate) struct Progress {
    live: bool,
    label: &'static str,
}

/// What the bar shows.
pub(crate) struct Status {
    /// Incident seconds elapsed.
    pub(crate) now: f64,
    /// Incident seconds of the whole run.
    pub(crate) total: f64,
    /// The incident's phase.
    pub(crate) phase: &'static str,
    /// Requests answered successfully so far.
    pub(crate) ok: u64,
    /// Requests finished so far.
    pub(crate) done: u64,
    /// Workers busy / all.
    pub(crate) busy: (u32, u32),
    /// Requests waiting / capacity.
    pub(crate) queued: (u32, usize),
    /// The breaker's state, if any.
    pub(crate) breaker: Option<&'static str>,
}

const WIDTH: usize = 16;

impl Progress {
    /// A bar for the run called `label`.
    pub(crate) fn new(label: &'static str, quiet: bool) -> Progress {
        Progress {
            live: !quiet && std::io::stderr().is_terminal(),
            label,
        }
    }

    /// Redraws the bar.
    pub(crate) fn update(&self, s: &Status) {
        if !self.live {
            return;
        }
        let filled = ((s.now / s.total).clamp(0.0, 1.0) * WIDTH as f64) as usize;
        let bar: String = "█".repeat(filled) + &"░".repeat(WIDTH - filled);
        let phase = if s.phase == "DEGRADED" {
            format!("\x1b[31m{:<8}\x1b[0m", s.phase)
        } else {
            format!("{:<8}", s.phase)
        };
        let breaker = s
            .breaker
            .map(|b| format!(" breaker {b}"))
            .unwrap_or_default();
        let ok = if s.done == 0 {
            100.0
        } else {
            100.0 * s.ok as f64 / s.done as f64
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{:<15} {bar} {:>4.1}s {phase} ok {ok:>3.0}% busy {:>2}/{} queue {:>2}/{}{breaker}",
            self.label,
            s.now.min(s.total),
            s.busy.0,
            s.busy.1,
            s.queued.0,
            s.queued.1
        );
        let _ = err.flush();
    }

    /// Ends the bar with a summary line.
    pub(crate) fn finish(&self, wall_secs: f64, requests: usize) {
        let mut err = std::io::stderr().lock();
        if self.live {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(
            err,
            "{:<16} done: {requests} requests in {wall_secs:.1} s",
            self.label
        );
    }
}
