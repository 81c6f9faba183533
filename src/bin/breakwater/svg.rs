//! The picture of `breakwater demo --out FILE.svg`, written by hand: four panels over
//! the same time axis (success rate, latency, busy workers, breaker state), both runs.

use std::fmt::Write;

use breakwater::breaker::BreakerState;

use crate::scenario::Scenario;
use crate::trace::{Series, Trace};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const BUCKET: f64 = 0.25;

const UNPROTECTED: &str = "#d62728";
const PROTECTED: &str = "#1f77b4";
/// The healthy endpoints' lines: darker shades of the runs' colours, dashed and marked
/// at every point, so that one lying on a checkout line (both at 0 % while every worker
/// is stuck) still shows.
const UNPROTECTED_HEALTHY: &str = "#7a0f10";
const PROTECTED_HEALTHY: &str = "#0b3c66";
const STATE_COLORS: [(BreakerState, &str); 5] = [
    (BreakerState::Closed, "#2ca02c"),
    (BreakerState::Open, "#d62728"),
    (BreakerState::HalfOpen, "#ff9f1c"),
    (BreakerState::ForcedOpen, "#7f0000"),
    (BreakerState::Disabled, "#999999"),
];

/// A panel: its vertical place and how values map onto it.
struct Panel {
    top: f64,
    height: f64,
    /// Maps a value to 0..=1 of the panel's height.
    map: fn(f64) -> f64,
    /// Incident seconds across the panel.
    seconds: f64,
    /// Shaded stretches (the incident's phases).
    shaded: Vec<(f64, f64)>,
}

impl Panel {
    fn x(&self, t: f64) -> f64 {
        LEFT + PLOT_W * (t / self.seconds).clamp(0.0, 1.0)
    }

    /// Whole seconds to put a grid line and a tick at: at most 10 ticks.
    fn ticks(&self) -> Vec<f64> {
        let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
            .into_iter()
            .find(|s| self.seconds / s <= 10.0)
            .unwrap_or(600.0);
        (0..=(self.seconds / step) as u32)
            .map(|i| f64::from(i) * step)
            .collect()
    }

    fn y(&self, v: f64) -> f64 {
        self.top + self.height * (1.0 - (self.map)(v).clamp(0.0, 1.0))
    }

    /// The frame, the degraded phase, the x grid, the title and y ticks.
    fn frame(&self, out: &mut String, title: &str, ticks: &[(f64, &str)]) {
        let (top, h) = (self.top, self.height);
        for &(from, to) in &self.shaded {
            let (x0, x1) = (self.x(from), self.x(to));
            let _ = writeln!(
                out,
                r##"<rect x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="#f3e0e0"/>"##,
                x1 - x0
            );
        }
        for s in self.ticks() {
            let x = self.x(s);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/>"##,
                top + h
            );
        }
        for (v, label) in ticks {
            let y = self.y(*v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
                LEFT + PLOT_W
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{label}</text>"##,
                LEFT - 6.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{PLOT_W}" height="{h:.1}" fill="none" stroke="#555"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" class="panel">{title}</text>"##,
            LEFT,
            top - 8.0
        );
    }

    /// A line through the bucket centres; gaps where there is no value, and a dot for a
    /// value alone between two gaps (a line needs two points).
    fn line(
        &self,
        out: &mut String,
        values: &[Option<f64>],
        color: &str,
        dash: &str,
        width: f64,
        name: &str,
    ) {
        self.marked_line(out, values, (color, dash, width), false, name);
    }

    /// [`Panel::line`], with an open circle at every point when `marked`.
    fn marked_line(
        &self,
        out: &mut String,
        values: &[Option<f64>],
        (color, dash, width): (&str, &str, f64),
        marked: bool,
        name: &str,
    ) {
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let t = (i as f64 + 0.5) * BUCKET;
                    let point = (self.x(t), self.y(*v));
                    segments.last_mut().expect("one segment").push(point);
                }
                None => segments.push(Vec::new()),
            }
        }
        let _ = writeln!(out, r#"<g class="series" data-series="{name}">"#);
        for seg in segments.iter().filter(|s| !s.is_empty()) {
            let points: Vec<String> = seg.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}" stroke-linejoin="round"/>"#,
                points.join(" ")
            );
            if seg.len() == 1 && !marked {
                let (x, y) = seg[0];
                let _ = writeln!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="{:.1}" fill="{color}"/>"#,
                    width.max(2.0)
                );
            }
            if marked {
                for (x, y) in seg {
                    let _ = writeln!(
                        out,
                        r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#ffffff" stroke="{color}" stroke-width="1.5"/>"##
                    );
                }
            }
        }
        out.push_str("</g>\n");
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Latency axis: log scale from 1 ms to 5 s.
fn log_latency(secs: f64) -> f64 {
    let (lo, hi) = (1e-3f64.ln(), 5.0f64.ln());
    (secs.max(1e-3).ln() - lo) / (hi - lo)
}

fn linear(v: f64) -> f64 {
    v
}

/// The legend: a short line sample and its label per entry, in one row.
fn legend(out: &mut String, y: f64, entries: &[(&str, &str, &str, f64)]) {
    let mut x = LEFT;
    for (label, color, dash, width) in entries {
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="{width}" stroke-dasharray="{dash}"/>"#,
            x + 28.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="legend">{label}</text>"#,
            x + 34.0,
            y + 4.0
        );
        x += 44.0 + 7.0 * label.len() as f64;
    }
}

/// Success-rate axis: 0 to 125 %, so a run at 100 % is drawn inside the frame, with
/// room above it for the headline numbers.
fn success_axis(v: f64) -> f64 {
    v / 1.25
}

/// Share of `pred` among the records matching `of`, as "66.4 %".
fn share(t: &Trace, of: impl Fn(&crate::trace::Record) -> bool, ok: bool) -> String {
    let all = t.count(&of);
    let good = t.count(|r| of(r) && (!ok || r.fate == crate::trace::Fate::Ok));
    crate::table::percent(good, all)
}

/// Renders the picture of both runs.
pub(crate) fn render(
    scenario: &Scenario,
    policy: &str,
    unprotected: &Trace,
    protected: &Trace,
) -> String {
    use crate::scenario::Kind;
    let spec = &scenario.spec;
    let u = unprotected.series(BUCKET);
    let p = protected.series(BUCKET);
    let shaded: Vec<(f64, f64)> = spec.phases.iter().map(|p| (p.from, p.to)).collect();
    let panel = |top, height, map: fn(f64) -> f64| Panel {
        top,
        height,
        map,
        seconds: spec.seconds,
        shaded: shaded.clone(),
    };
    let success = panel(140.0, 220.0, success_axis);
    let latency = panel(420.0, 180.0, log_latency);
    let busy = panel(660.0, 110.0, linear);
    let breaker = panel(830.0, 26.0, linear);
    let height = 950.0;
    let client = spec.client_timeout;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    out.push_str(
        "<style>.title{font-size:20px;font-weight:bold}.sub{font-size:12px;fill:#444}\
         .panel{font-size:14px;font-weight:bold}.tick{font-size:11px;fill:#444}\
         .legend{font-size:12px}.note{font-size:12px;font-weight:bold}</style>\n",
    );
    let _ = writeln!(
        out,
        r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="32" class="title">The {} incident: unprotected vs. with breakwater</text>"#,
        escape(&spec.name)
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="52" class="sub">{} requests per run, {} worker threads, seed {}. Shaded: {}.</text>"#,
        scenario.requests.len(),
        spec.workers,
        scenario.seed,
        escape(&spec.summary),
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="68" class="sub">The same traffic runs twice: calling the payment service directly, and through {}.</text>"#,
        escape(policy)
    );
    legend(
        &mut out,
        92.0,
        &[
            ("unprotected", UNPROTECTED, "none", 3.0),
            ("with breakwater", PROTECTED, "none", 3.0),
        ],
    );
    let _ = writeln!(
        out,
        r##"<rect x="{:.1}" y="85" width="28" height="14" fill="#f3e0e0"/><text x="{:.1}" y="96" class="legend">incident</text>"##,
        LEFT + 300.0,
        LEFT + 334.0
    );
    // Which success line is which: solid for checkouts, dashed and marked (in a darker
    // shade) for the healthy endpoints.
    let x = LEFT + 430.0;
    let _ = writeln!(
        out,
        r##"<line x1="{x:.1}" y1="92" x2="{:.1}" y2="92" stroke="#555" stroke-width="2.5"/><text x="{:.1}" y="96" class="legend">checkout success</text>"##,
        x + 28.0,
        x + 34.0
    );
    let x = x + 160.0;
    let _ = writeln!(
        out,
        r##"<line x1="{x:.1}" y1="92" x2="{:.1}" y2="92" stroke="#222" stroke-width="2" stroke-dasharray="6 4"/><circle cx="{:.1}" cy="92" r="3" fill="#ffffff" stroke="#222" stroke-width="1.5"/><text x="{:.1}" y="96" class="legend">healthy endpoints success</text>"##,
        x + 28.0,
        x + 14.0,
        x + 34.0
    );

    success.frame(
        &mut out,
        &format!(
            "Success rate (%): answered OK within the client's {} timeout   (a gap: no request then)",
            crate::table::human(client)
        ),
        &[(0.0, "0 %"), (0.25, "25 %"), (0.5, "50 %"), (0.75, "75 %"), (1.0, "100 %")],
    );
    // Drawn so that lines at the same height stay visible: the checkouts first, then the
    // healthy endpoints (darker, dashed, marked) over them, the headline (healthy
    // endpoints with breakwater) last, on top. A bucket where no request ended is 0 %
    // if some were in flight (no client got an answer then), a gap if none was.
    for (values, style, marked, name) in [
        (
            &p.checkout,
            (PROTECTED, "none", 2.5),
            false,
            "protected-checkout-success",
        ),
        (
            &u.checkout,
            (UNPROTECTED, "none", 2.5),
            false,
            "unprotected-checkout-success",
        ),
        (
            &u.healthy,
            (UNPROTECTED_HEALTHY, "6 4", 2.0),
            true,
            "unprotected-healthy-success",
        ),
        (
            &p.healthy,
            (PROTECTED_HEALTHY, "6 4", 2.5),
            true,
            "protected-healthy-success",
        ),
    ] {
        success.marked_line(&mut out, values, style, marked, name);
    }
    // The headline numbers, in the panel's top-left corner.
    let during = |r: &crate::trace::Record| {
        r.kind == Kind::Healthy
            && spec
                .incident()
                .is_none_or(|(from, to)| (from..to).contains(&r.arrival))
    };
    let when = if spec.incident().is_some() {
        " during the incident"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" class="note" data-note="headline">Healthy endpoints{when}: <tspan fill="{UNPROTECTED}">{} unprotected</tspan>, <tspan fill="{PROTECTED}">{} with breakwater</tspan></text>"##,
        LEFT + 8.0,
        success.top + 17.0,
        share(unprotected, during, true),
        share(protected, during, true),
    );
    let checkout = |r: &crate::trace::Record| r.kind == Kind::Checkout;
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" class="note" data-note="checkout">Checkouts: <tspan fill="{UNPROTECTED}">{} unprotected</tspan>, <tspan fill="{PROTECTED}">{} with breakwater</tspan></text>"##,
        LEFT + 8.0,
        success.top + 34.0,
        share(unprotected, checkout, true),
        share(protected, checkout, true),
    );

    latency.frame(
        &mut out,
        "Latency seen by clients (log scale)   (solid: p99, dotted: p50; requests turned away at the door left out)",
        &[(0.001, "1 ms"), (0.01, "10 ms"), (0.1, "100 ms"), (1.0, "1 s"), (5.0, "5 s")],
    );
    // A bucket where no admitted request finished has no latency: it is drawn at the
    // clients' timeout (the least those requests waited) and marked.
    let filled = |values: &[Option<f64>], unanswered: &[bool]| -> Vec<Option<f64>> {
        values
            .iter()
            .zip(unanswered)
            .map(|(v, &none)| if none { Some(client) } else { *v })
            .collect()
    };
    latency.line(
        &mut out,
        &filled(&u.p50, &u.unanswered),
        UNPROTECTED,
        "2 3",
        1.5,
        "unprotected-p50",
    );
    latency.line(
        &mut out,
        &filled(&p.p50, &p.unanswered),
        PROTECTED,
        "2 3",
        1.5,
        "protected-p50",
    );
    latency.line(
        &mut out,
        &filled(&u.p99, &u.unanswered),
        UNPROTECTED,
        "none",
        2.5,
        "unprotected-p99",
    );
    latency.line(
        &mut out,
        &filled(&p.p99, &p.unanswered),
        PROTECTED,
        "none",
        2.5,
        "protected-p99",
    );
    let mut marked = false;
    for (series, color) in [(&u, UNPROTECTED), (&p, PROTECTED)] {
        for (i, _) in series.unanswered.iter().enumerate().filter(|(_, &n)| n) {
            let (x, y) = (latency.x((i as f64 + 0.5) * BUCKET), latency.y(client));
            let _ = writeln!(
                out,
                r#"<path d="M{:.1},{:.1}l8,8m0,-8l-8,8" stroke="{color}" stroke-width="2" data-mark="unanswered"/>"#,
                x - 4.0,
                y - 4.0
            );
            marked = true;
        }
    }
    if marked {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="legend">× no admitted request finished in that ¼ s (drawn at the clients' {} timeout)</text>"#,
            LEFT + 8.0,
            latency.top + 16.0,
            crate::table::human(client)
        );
    }

    busy.frame(
        &mut out,
        &format!("Workers busy (% of {})", spec.workers),
        &[(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")],
    );
    busy.line(
        &mut out,
        &u.busy,
        UNPROTECTED,
        "none",
        2.0,
        "unprotected-busy",
    );
    busy.line(&mut out, &p.busy, PROTECTED, "none", 2.0, "protected-busy");

    breaker.frame(&mut out, "Circuit breaker state (with breakwater)", &[]);
    breaker_strip(&mut out, &breaker, &p);
    // Time ticks, with their unit, under every panel.
    for panel in [&success, &latency, &busy, &breaker] {
        for s in panel.ticks() {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{s} s</text>"#,
                panel.x(s),
                panel.top + panel.height + 14.0
            );
        }
    }
    let axis_y = breaker.top + breaker.height + 30.0;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{axis_y:.1}" text-anchor="middle" class="tick">incident time (s)</text>"#,
        LEFT + PLOT_W / 2.0,
    );
    let mut x = LEFT;
    let legend_y = axis_y + 24.0;
    for (state, color) in STATE_COLORS.iter().take(3) {
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="14" height="10" fill="{color}"/><text x="{:.1}" y="{legend_y:.1}" class="legend">breaker {}</text>"#,
            legend_y - 9.0,
            x + 19.0,
            state.as_str().replace('_', "-")
        );
        x += 130.0;
    }
    out.push_str("</svg>\n");
    out
}

/// The breaker's state over time: one coloured span per run of equal samples.
fn breaker_strip(out: &mut String, panel: &Panel, series: &Series) {
    let color = |s: BreakerState| {
        STATE_COLORS
            .iter()
            .find(|(st, _)| *st == s)
            .map_or("#000", |(_, c)| c)
    };
    let _ = writeln!(
        out,
        r#"<g class="series" data-series="protected-breaker-state">"#
    );
    let samples = &series.breaker;
    let mut i = 0;
    while i < samples.len() {
        let (start, state) = samples[i];
        let mut j = i + 1;
        while j < samples.len() && samples[j].1 == state {
            j += 1;
        }
        let end = samples.get(j).map_or(panel.seconds, |s| s.0);
        let (x0, x1) = (panel.x(start), panel.x(end));
        let _ = writeln!(
            out,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {start:.2}–{end:.2} s</title></rect>"#,
            panel.top,
            (x1 - x0).max(0.5),
            panel.height,
            color(state),
            state.as_str()
        );
        i = j;
    }
    out.push_str("</g>\n");
}
