//! The side-by-side table `breakwater demo` prints after both runs.

use breakwater::RejectReason;

use crate::scenario::Kind;
use crate::trace::{quantile, Fate, Record, Trace};

/// An incident duration for people: `850 ms`, `1.42 s`.
pub(crate) fn human(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

pub(crate) fn percent(part: usize, all: usize) -> String {
    if all == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / all as f64)
    }
}

/// One row per measure: its name and the value of each run.
fn rows(runs: [&Trace; 2], client_timeout: f64) -> Vec<(String, [String; 2])> {
    let each = |f: &dyn Fn(&Trace) -> String| [f(runs[0]), f(runs[1])];
    let checkout = |t: &Trace| t.count(|r| r.kind == Kind::Checkout);
    let healthy = |t: &Trace| t.count(|r| r.kind == Kind::Healthy);
    let ok = |t: &Trace, k: Kind| t.count(|r| r.kind == k && r.fate == Fate::Ok);
    let during = |t: &Trace, r: &Record| {
        t.incident
            .is_some_and(|(from, to)| (from..to).contains(&r.arrival))
    };
    let incident =
        |t: &Trace, k: Option<Kind>| t.latencies(|r| during(t, r) && k.is_none_or(|k| r.kind == k));
    let admitted = |r: &Record| r.fate != Fate::QueueFull;
    let q = |l: Vec<f64>, p: f64| quantile(&l, p).map_or("–".into(), human);
    let mut out = vec![
        (
            "requests offered".into(),
            each(&|t| t.records.len().to_string()),
        ),
        (
            "requests served OK".into(),
            each(&|t| {
                let n = t.count(|r| r.fate == Fate::Ok);
                format!("{n} ({})", percent(n, t.records.len()))
            }),
        ),
        (
            "checkout success".into(),
            each(&|t| percent(ok(t, Kind::Checkout), checkout(t))),
        ),
        (
            "healthy endpoints success".into(),
            each(&|t| percent(ok(t, Kind::Healthy), healthy(t))),
        ),
        (
            "  … during the incident".into(),
            each(&|t| {
                let healthy = |r: &Record| r.kind == Kind::Healthy && during(t, r);
                percent(
                    t.count(|r| healthy(r) && r.fate == Fate::Ok),
                    t.count(healthy),
                )
            }),
        ),
        (
            "latency p50 (admitted requests)".into(),
            each(&|t| q(t.latencies(admitted), 0.5)),
        ),
        (
            "latency p99 (admitted requests)".into(),
            each(&|t| q(t.latencies(admitted), 0.99)),
        ),
        (
            "healthy p99 during the incident".into(),
            each(&|t| q(incident(t, Some(Kind::Healthy)), 0.99)),
        ),
        (
            "all workers busy (share of time)".into(),
            each(&|t| {
                let full = t.samples.iter().filter(|s| s.busy >= t.workers).count();
                percent(full, t.samples.len())
            }),
        ),
        (
            "turned away (queue full)".into(),
            each(&|t| t.count(|r| r.fate == Fate::QueueFull).to_string()),
        ),
        (
            format!("client timeouts (> {})", human(client_timeout)),
            each(&|t| t.count(|r| r.fate == Fate::ClientTimeout).to_string()),
        ),
        (
            "payment calls cut at timeout".into(),
            each(&|t| t.count(|r| r.fate == Fate::PaymentTimeout).to_string()),
        ),
        (
            "checkouts failed fast".into(),
            each(&|t| t.count(|r| matches!(r.fate, Fate::Rejected(_))).to_string()),
        ),
        (
            "breaker opened / retries".into(),
            each(&|t| match (&t.policy, &t.seen) {
                (Some(m), Some(seen)) => format!("{} / {}", m.transitions[1], seen.retries),
                (Some(m), None) => format!("{} / {}", m.transitions[1], m.retries),
                (None, _) => "–".into(),
            }),
        ),
        (
            "time to recover after healing".into(),
            each(&|t| human(t.recovery())),
        ),
    ];
    // One row per reason a checkout was failed fast, under their total.
    let reasons: Vec<(String, [String; 2])> = RejectReason::ALL
        .into_iter()
        .map(|reason| {
            let n = |t: &Trace| t.count(|r| r.fate == Fate::Rejected(reason));
            (reason, [n(runs[0]), n(runs[1])])
        })
        .filter(|(_, n)| n[0] + n[1] > 0)
        .map(|(reason, n)| (format!("  … {}", reason.as_str()), n.map(|n| n.to_string())))
        .collect();
    let at = out
        .iter()
        .position(|r| r.0 == "checkouts failed fast")
        .map_or(out.len(), |i| i + 1);
    out.splice(at..at, reasons);
    out
}

/// The table under `title`, at most `width` columns wide: side by side when it fits,
/// otherwise one block per row.
pub(crate) fn render(
    title: &str,
    policy: &str,
    client_timeout: f64,
    runs: [&Trace; 2],
    width: usize,
) -> String {
    use std::fmt::Write;
    let heads = ["unprotected", "with breakwater"];
    let rows = rows(runs, client_timeout);
    let name_w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let col = |i: usize| {
        rows.iter()
            .map(|r| r.1[i].chars().count())
            .chain([heads[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (a_w, b_w) = (col(0), col(1));
    let total = name_w + a_w + b_w + 6;
    let mut out = String::new();
    for line in crate::terminal::wrap(title, width) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    if total <= width {
        let rule = "─".repeat(total);
        let _ = writeln!(
            out,
            "{:name_w$}   {:>a_w$}   {:>b_w$}",
            "", heads[0], heads[1]
        );
        let _ = writeln!(out, "{rule}");
        for (name, [a, b]) in &rows {
            let _ = writeln!(out, "{name:name_w$}   {a:>a_w$}   {b:>b_w$}");
        }
        let _ = writeln!(out, "{rule}");
    } else {
        for (name, [a, b]) in &rows {
            let _ = writeln!(out, "{}", name.trim_start());
            let _ = writeln!(out, "  {}: {a}", heads[0]);
            let _ = writeln!(out, "  {}: {b}", heads[1]);
        }
    }
    let notes = format!(
        "Protected run: {policy}. Times are incident times; latencies leave out requests \
         turned away at the door. Recovery: from healing to the last burst (≥ 2 in 250 ms) \
         of failures other than the payment service's ordinary errors."
    );
    for line in crate::terminal::wrap(&notes, width) {
        let _ = writeln!(out, "{line}");
    }
    out
}
