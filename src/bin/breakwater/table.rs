//! The side-by-side table `breakwater demo` prints after both runs.

use breakwater::RejectReason;

use crate::scenario::{Kind, DEGRADE_AT, HEAL_AT};
use crate::trace::{quantile, Fate, Trace};

/// An incident duration for people: `850 ms`, `1.42 s`.
pub(crate) fn human(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

fn percent(part: usize, all: usize) -> String {
    if all == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / all as f64)
    }
}

/// One row per measure: its name and the value of each run.
fn rows(runs: [&Trace; 2]) -> Vec<(String, [String; 2])> {
    let each = |f: &dyn Fn(&Trace) -> String| [f(runs[0]), f(runs[1])];
    let checkout = |t: &Trace| t.count(|r| r.kind == Kind::Checkout);
    let healthy = |t: &Trace| t.count(|r| r.kind == Kind::Healthy);
    let ok = |t: &Trace, k: Kind| t.count(|r| r.kind == k && r.fate == Fate::Ok);
    let incident = |t: &Trace, k: Option<Kind>| {
        t.latencies(|r| (DEGRADE_AT..HEAL_AT).contains(&r.arrival) && k.is_none_or(|k| r.kind == k))
    };
    let admitted = |r: &crate::trace::Record| r.fate != Fate::QueueFull;
    let q = |l: Vec<f64>, p: f64| quantile(&l, p).map_or("–".into(), human);
    let out = vec![
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
                let during = |r: &crate::trace::Record| {
                    r.kind == Kind::Healthy && (DEGRADE_AT..HEAL_AT).contains(&r.arrival)
                };
                percent(
                    t.count(|r| during(r) && r.fate == Fate::Ok),
                    t.count(during),
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
            "workers saturated (all busy)".into(),
            each(&|t| {
                let full = t.samples.iter().filter(|s| s.busy >= t.workers).count();
                format!("{} of the time", percent(full, t.samples.len()))
            }),
        ),
        (
            "turned away (queue full)".into(),
            each(&|t| t.count(|r| r.fate == Fate::QueueFull).to_string()),
        ),
        (
            "client timeouts (> 1 s)".into(),
            each(&|t| t.count(|r| r.fate == Fate::ClientTimeout).to_string()),
        ),
        (
            "payment calls cut at timeout".into(),
            each(&|t| t.count(|r| r.fate == Fate::PaymentTimeout).to_string()),
        ),
        (
            "checkouts failed fast".into(),
            each(&|t| {
                let all = t.count(|r| matches!(r.fate, Fate::Rejected(_)));
                let parts: Vec<String> = RejectReason::ALL
                    .iter()
                    .map(|&reason| (reason, t.count(|r| r.fate == Fate::Rejected(reason))))
                    .filter(|&(_, n)| n > 0)
                    .map(|(reason, n)| format!("{} {n}", reason.as_str()))
                    .collect();
                if all == 0 {
                    "0".into()
                } else {
                    format!("{all} ({})", parts.join(", "))
                }
            }),
        ),
        (
            "breaker opened / retries".into(),
            each(&|t| match &t.policy {
                Some(m) => format!("{} / {}", m.transitions[1], m.retries),
                None => "–".into(),
            }),
        ),
        (
            "time to recover after healing".into(),
            each(&|t| human(t.recovery())),
        ),
    ];
    out
}

/// Prints the table to stdout.
pub(crate) fn print(title: &str, policy: &str, unprotected: &Trace, protected: &Trace) {
    println!("{title}\n");
    let rows = rows([unprotected, protected]);
    let name_w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let width = |i: usize, head: &str| {
        rows.iter()
            .map(|r| r.1[i].chars().count())
            .chain([head.len()])
            .max()
            .unwrap_or(0)
    };
    let (a_w, b_w) = (width(0, "unprotected"), width(1, "with breakwater"));
    let rule = "─".repeat(name_w + a_w + b_w + 6);
    println!(
        "{:name_w$}   {:>a_w$}   {:>b_w$}",
        "", "unprotected", "with breakwater"
    );
    println!("{rule}");
    for (name, [a, b]) in &rows {
        println!("{name:name_w$}   {a:>a_w$}   {b:>b_w$}");
    }
    println!("{rule}");
    println!("Protected run: {policy}.");
    println!("Times are incident times; latencies leave out requests turned away at the door.");
    println!("Recovery: from healing to the last burst (≥ 2 in 250 ms) of failures other than");
    println!("the payment service's usual 1 % errors.");
}
