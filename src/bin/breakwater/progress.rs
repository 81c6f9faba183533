//! The live progress bar of `breakwater demo`: one line on stderr, redrawn with `\r`,
//! never wider than the terminal (a wrapped line could not be redrawn in place).

use std::io::Write;

/// Draws the progress of one run, or only a closing line when stderr is not a terminal
/// (or `--quiet` was given).
pub(crate) struct Progress {
    /// The terminal's width, when drawing live.
    live: Option<usize>,
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
            live: if quiet {
                None
            } else {
                crate::terminal::stderr_width()
            },
            label,
        }
    }

    /// Redraws the bar.
    pub(crate) fn update(&self, s: &Status) {
        let Some(width) = self.live else {
            return;
        };
        let filled = ((s.now / s.total).clamp(0.0, 1.0) * WIDTH as f64) as usize;
        let bar: String = "█".repeat(filled) + &"░".repeat(WIDTH - filled);
        let breaker = s
            .breaker
            .map(|b| format!(" breaker {b}"))
            .unwrap_or_default();
        let ok = if s.done == 0 {
            100.0
        } else {
            100.0 * s.ok as f64 / s.done as f64
        };
        let line = format!(
            "{:<15} {bar} {:>4.1}s {:<8} ok {ok:>3.0}% busy {:>2}/{} queue {:>2}/{}{breaker}",
            self.label,
            s.now.min(s.total),
            s.phase,
            s.busy.0,
            s.busy.1,
            s.queued.0,
            s.queued.1
        );
        // One column short of the width: a line that fills the last column wraps on
        // some terminals, and `\r` would then redraw only its second half.
        let line = crate::terminal::clip(&line, width.saturating_sub(1))
            .replace("DEGRADED", "\x1b[31mDEGRADED\x1b[0m");
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Ends the bar with a summary line.
    pub(crate) fn finish(&self, wall_secs: f64, requests: usize) {
        let mut err = std::io::stderr().lock();
        if self.live.is_some() {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(
            err,
            "{:<16} done: {requests} requests in {wall_secs:.1} s",
            self.label
        );
    }
}
