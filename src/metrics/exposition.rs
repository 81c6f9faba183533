//! A writer of the Prometheus text exposition format, version 0.0.4.

use crate::metrics::histogram::{HistogramSnapshot, LatencyHistogram};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The kind of a metric family (`# TYPE` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A monotonically increasing count; the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets with `_sum` and `_count`.
    Histogram,
}

impl MetricType {
    /// `"counter"`, `"gauge"` or `"histogram"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }

    fn sample_suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter | MetricType::Gauge => &[""],
            MetricType::Histogram => &["_bucket", "_sum", "_count"],
        }
    }
}

/// Why a family or sample could not be added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpositionError {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// The label name does not match `[a-zA-Z_][a-zA-Z0-9_]*` or starts with `__`.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// A counter's name must end in `_total`.
    #[error("counter name {0:?} does not end in _total")]
    CounterWithoutTotal(String),
    /// The family exists with another type.
    #[error("metric family {name:?} is a {existing}, not a {requested}")]
    TypeConflict {
        /// The family name.
        name: String,
        /// Its registered type.
        existing: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// The family would produce a sample name that another family already produces.
    #[error("metric family {name:?} collides with the samples of family {other:?}")]
    NameCollision {
        /// The family being registered.
        name: String,
        /// The family already registered.
        other: String,
    },
    /// A label name is reserved in this family (`le` in histograms).
    #[error("label {label:?} is reserved in metric family {name:?}")]
    ReservedLabel {
        /// The family name.
        name: String,
        /// The label.
        label: String,
    },
    /// The same label name appears twice in one sample.
    #[error("label {label:?} appears twice in a sample of {name:?}")]
    DuplicateLabel {
        /// The family name.
        name: String,
        /// The label.
        label: String,
    },
    /// The same label set was already written in this family.
    #[error("series {labels} written twice in metric family {name:?}")]
    DuplicateSeries {
        /// The family name.
        name: String,
        /// The rendered label set.
        labels: String,
    },
    /// A plain sample was added to a histogram family or a histogram to another family.
    #[error("metric family {name:?} is a {kind}; wrong kind of sample")]
    WrongSampleKind {
        /// The family name.
        name: String,
        /// Its type.
        kind: &'static str,
    },
    /// Histogram bucket indices must be strictly increasing and below
    /// `LatencyHistogram::BUCKETS - 1` (the overflow bucket is `+Inf`).
    #[error("histogram bucket indices must be strictly increasing regular bucket indices")]
    InvalidBuckets,
}

/// A value of a sample, written exactly.
pub trait SampleValue {
    /// Appends the value in exposition form.
    fn write_value(&self, out: &mut String);
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl SampleValue for $t {
            fn write_value(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl SampleValue for f64 {
    fn write_value(&self, out: &mut String) {
        push_float(out, *self);
    }
}

impl SampleValue for f32 {
    fn write_value(&self, out: &mut String) {
        push_float(out, f64::from(*self));
    }
}

impl SampleValue for bool {
    fn write_value(&self, out: &mut String) {
        out.push(if *self { '1' } else { '0' });
    }
}

/// Appends `v`: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back as `v`
/// (exponent form outside `1e-6 ≤ |v| < 1e15`).
pub(crate) fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == 0.0 || (1e-6..1e15).contains(&v.abs()) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}

/// Appends `nanos` as exact decimal seconds (`1500000000` → `1.5`, `1024` → `0.000001024`).
pub(crate) fn push_seconds(out: &mut String, nanos: u64) {
    let (secs, frac) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn push_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The default histogram buckets: the fine buckets holding 10, 25, 50, 100, 250, 500 µs,
/// 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30 and 60 s. Their exact upper
/// bounds are the `le` values (each at most 10 % above the round number).
pub const STANDARD_BUCKETS: [usize; 21] = {
    const TARGETS: [u64; 21] = [
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
        10_000_000_000,
        30_000_000_000,
        60_000_000_000,
    ];
    let mut out = [0usize; 21];
    let mut i = 0;
    while i < TARGETS.len() {
        out[i] = LatencyHistogram::bucket_index(TARGETS[i]);
        i += 1;
    }
    out
};

/// One metric family: its name, help, type and rendered samples.
#[derive(Debug)]
pub struct Family {
    name: String,
    help: String,
    kind: MetricType,
    body: String,
    series: HashSet<String>,
}

impl Family {
    /// The family name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family type.
    pub fn kind(&self) -> MetricType {
        self.kind
    }

    /// Validates and renders `labels` as `{a="x",b="y"}` without braces (empty for none).
    fn render_labels(&self, labels: &[(&str, &str)]) -> Result<String, ExpositionError> {
        let mut out = String::new();
        for (i, (name, value)) in labels.iter().enumerate() {
            if !is_label_name(name) {
                return Err(ExpositionError::InvalidLabelName((*name).to_owned()));
            }
            if self.kind == MetricType::Histogram && *name == "le" {
                return Err(ExpositionError::ReservedLabel {
                    name: self.name.clone(),
                    label: "le".to_owned(),
                });
            }
            if labels[..i].iter().any(|(n, _)| n == name) {
                return Err(ExpositionError::DuplicateLabel {
                    name: self.name.clone(),
                    label: (*name).to_owned(),
                });
            }
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            push_label_value(&mut out, value);
            out.push('"');
        }
        Ok(out)
    }

    /// Claims the series `labels` once.
    fn claim(&mut self, labels: &str) -> Result<(), ExpositionError> {
        if self.series.insert(labels.to_owned()) {
            Ok(())
        } else {
            Err(ExpositionError::DuplicateSeries {
                name: self.name.clone(),
                labels: format!("{{{labels}}}"),
            })
        }
    }

    fn push_line(&mut self, suffix: &str, labels: &str, extra: Option<(&str, &str)>) {
        self.body.push_str(&self.name);
        self.body.push_str(suffix);
        if !labels.is_empty() || extra.is_some() {
            self.body.push('{');
            self.body.push_str(labels);
            if let Some((name, value)) = extra {
                if !labels.is_empty() {
                    self.body.push(',');
                }
                self.body.push_str(name);
                self.body.push_str("=\"");
                self.body.push_str(value);
                self.body.push('"');
            }
            self.body.push('}');
        }
        self.body.push(' ');
    }

    /// Adds one sample to a counter or gauge family.
    pub fn sample<V: SampleValue>(
        &mut self,
        labels: &[(&str, &str)],
        value: V,
    ) -> Result<&mut Self, ExpositionError> {
        if self.kind == MetricType::Histogram {
            return Err(ExpositionError::WrongSampleKind {
                name: self.name.clone(),
                kind: self.kind.as_str(),
            });
        }
        let rendered = self.render_labels(labels)?;
        self.claim(&rendered)?;
        self.push_line("", &rendered, None);
        value.write_value(&mut self.body);
        self.body.push('\n');
        Ok(self)
    }

    /// Adds one histogram (in seconds) over [`STANDARD_BUCKETS`].
    pub fn histogram_sample(
        &mut self,
        labels: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
    ) -> Result<&mut Self, ExpositionError> {
        self.histogram_sample_with_buckets(labels, snapshot, &STANDARD_BUCKETS)
    }

    /// Adds one histogram (in seconds) with one `le` per fine bucket index in `buckets`
    /// (strictly increasing, regular buckets only), then `le="+Inf"`, `_sum`, `_count`.
    /// Each cumulative count is exact: the number of values `≤` that bucket's upper bound.
    pub fn histogram_sample_with_buckets(
        &mut self,
        labels: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
        buckets: &[usize],
    ) -> Result<&mut Self, ExpositionError> {
        if self.kind != MetricType::Histogram {
            return Err(ExpositionError::WrongSampleKind {
                name: self.name.clone(),
                kind: self.kind.as_str(),
            });
        }
        let regular = LatencyHistogram::BUCKETS - 1;
        if buckets.iter().any(|&b| b >= regular) || buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ExpositionError::InvalidBuckets);
        }
        let rendered = self.render_labels(labels)?;
        self.claim(&rendered)?;
        // Cumulate the fine buckets once, walking the chosen indices in order.
        let total: u64 = snapshot.counts.iter().fold(0u64, |a, &c| a.wrapping_add(c));
        let (mut cumulative, mut next) = (0u64, 0usize);
        let mut le = String::new();
        for &b in buckets {
            while next <= b {
                cumulative =
                    cumulative.wrapping_add(snapshot.counts.get(next).copied().unwrap_or(0));
                next += 1;
            }
            le.clear();
            push_seconds(&mut le, LatencyHistogram::upper_bound_nanos(b));
            self.push_line("_bucket", &rendered, Some(("le", &le)));
            cumulative.write_value(&mut self.body);
            self.body.push('\n');
        }
        self.push_line("_bucket", &rendered, Some(("le", "+Inf")));
        total.write_value(&mut self.body);
        self.body.push('\n');
        self.push_line("_sum", &rendered, None);
        push_seconds(&mut self.body, snapshot.sum_nanos);
        self.body.push('\n');
        self.push_line("_count", &rendered, None);
        total.write_value(&mut self.body);
        self.body.push('\n');
        Ok(self)
    }
}

/// A set of metric families, rendered once as Prometheus text (format 0.0.4).
///
/// Families are looked up by name, so code that writes many policies can ask for the
/// same family again and again; all of a family's samples are rendered together.
///
/// ```
/// use breakwater::metrics::Exposition;
///
/// let mut exp = Exposition::new();
/// for (policy, n) in [("a", 1u64), ("b", 2)] {
///     exp.counter_family("demo_calls_total", "Calls.")?.sample(&[("policy", policy)], n)?;
///     exp.gauge_family("demo_up", "Up.")?.sample(&[("policy", policy)], 1.0)?;
/// }
/// let text = exp.render();
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(
///     lines,
///     [
///         "# HELP demo_calls_total Calls.",
///         "# TYPE demo_calls_total counter",
///         "demo_calls_total{policy=\"a\"} 1",
///         "demo_calls_total{policy=\"b\"} 2",
///         "# HELP demo_up Up.",
///         "# TYPE demo_up gauge",
///         "demo_up{policy=\"a\"} 1",
///         "demo_up{policy=\"b\"} 1",
///     ]
/// );
/// # Ok::<(), breakwater::metrics::ExpositionError>(())
/// ```
///
/// [`Exposition`] collects metric *families*; each family gets its samples from any
/// number of policies, and [`Exposition::render`] writes every family once, in the
/// order the families were first registered:
///
/// ```text
/// # HELP breakwater_calls_total Completed calls by outcome.
/// # TYPE breakwater_calls_total counter
/// breakwater_calls_total{policy="payments",outcome="success"} 12
/// breakwater_calls_total{policy="search",outcome="success"} 40
/// ```
///
/// The rules it enforces (an [`ExpositionError`] otherwise, never a panic):
/// - one `# HELP` and one `# TYPE` line per family, all of a family's samples together;
/// - metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`
///   and do not start with `__`; no label twice in one sample; no series twice;
/// - counter names end in `_total`; a histogram's samples are `<name>_bucket{…,le="…"}`
///   (cumulative, ending with `le="+Inf"`), `<name>_sum` and `<name>_count`, and user
///   labels may not be called `le`; no family may produce a sample name another family
///   produces (a gauge `x_count` next to a histogram `x`);
/// - label values escape `\` as `\\`, `"` as `\"` and newline as `\n`; help text escapes
///   `\` and newline;
/// - values: integers exactly as integers, floats in shortest round-trip form, `+Inf`,
///   `-Inf`, `NaN`.
///
/// Histograms are written in seconds from a [`HistogramSnapshot`] over a subset of its
/// fine buckets ([`STANDARD_BUCKETS`] by default). Each `le` is the *exact* upper bound of
/// a fine bucket (for example `le="0.001048576"`, the fine bucket holding 1 ms), so the
/// cumulative counts are exact rather than interpolated; `_sum` is the exact nanosecond
/// sum written as decimal seconds.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
    /// Family name → index.
    by_name: HashMap<String, usize>,
    /// Every sample name a family produces → that family's index.
    sample_names: HashMap<String, usize>,
}

impl Exposition {
    /// The content type to serve the rendered text with.
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";

    /// No families.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter family `name` (which must end in `_total`), registered on first use.
    pub fn counter_family(
        &mut self,
        name: &str,
        help: &str,
    ) -> Result<&mut Family, ExpositionError> {
        self.family(name, help, MetricType::Counter)
    }

    /// The gauge family `name`, registered on first use.
    pub fn gauge_family(&mut self, name: &str, help: &str) -> Result<&mut Family, ExpositionError> {
        self.family(name, help, MetricType::Gauge)
    }

    /// The histogram family `name`, registered on first use.
    pub fn histogram_family(
        &mut self,
        name: &str,
        help: &str,
    ) -> Result<&mut Family, ExpositionError> {
        self.family(name, help, MetricType::Histogram)
    }

    /// The family `name` of type `kind`, registered with `help` on first use (later calls
    /// keep the first help text).
    pub fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
    ) -> Result<&mut Family, ExpositionError> {
        if let Some(&index) = self.by_name.get(name) {
            let family = &mut self.families[index];
            if family.kind != kind {
                return Err(ExpositionError::TypeConflict {
                    name: name.to_owned(),
                    existing: family.kind.as_str(),
                    requested: kind.as_str(),
                });
            }
            return Ok(family);
        }
        if !is_metric_name(name) {
            return Err(ExpositionError::InvalidMetricName(name.to_owned()));
        }
        if kind == MetricType::Counter && !name.ends_with("_total") {
            return Err(ExpositionError::CounterWithoutTotal(name.to_owned()));
        }
        let produced: Vec<String> = kind
            .sample_suffixes()
            .iter()
            .map(|s| format!("{name}{s}"))
            .chain(std::iter::once(name.to_owned()))
            .collect();
        for sample_name in &produced {
            let other = self
                .sample_names
                .get(sample_name)
                .or_else(|| self.by_name.get(sample_name));
            if let Some(&other) = other {
                return Err(ExpositionError::NameCollision {
                    name: name.to_owned(),
                    other: self.families[other].name.clone(),
                });
            }
        }
        let index = self.families.len();
        for sample_name in produced {
            self.sample_names.insert(sample_name, index);
        }
        self.by_name.insert(name.to_owned(), index);
        self.families.push(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            body: String::new(),
            series: HashSet::new(),
        });
        Ok(&mut self.families[index])
    }

    /// The families, in registration order.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// Writes every family: `# HELP`, `# TYPE`, then its samples.
    pub fn write_to<W: std::fmt::Write>(&self, out: &mut W) -> std::fmt::Result {
        let mut help = String::new();
        for f in &self.families {
            help.clear();
            push_help(&mut help, &f.help);
            writeln!(out, "# HELP {} {}", f.name, help)?;
            writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str())?;
            out.write_str(&f.body)?;
        }
        Ok(())
    }

    /// The whole exposition as text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.families.iter().map(|f| f.body.len() + 128).sum());
        let _ = self.write_to(&mut out);
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn floats_and_seconds() {
        let f = |v: f64| {
            let mut s = String::new();
            push_float(&mut s, v);
            s
        };
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(3.0), "3");
        assert_eq!(f(0.25), "0.25");
        assert_eq!(f(1e-9), "1e-9");
        assert_eq!(f(1.5e20), "1.5e20");
        let s = |n: u64| {
            let mut s = String::new();
            push_seconds(&mut s, n);
            s
        };
        assert_eq!(s(0), "0");
        assert_eq!(s(1_500_000_000), "1.5");
        assert_eq!(s(1024), "0.000001024");
        assert_eq!(s(60_129_542_144), "60.129542144");
    }

    #[test]
    fn names_are_validated() {
        let mut e = Exposition::new();
        assert!(matches!(
            e.gauge_family("1x", ""),
            Err(ExpositionError::InvalidMetricName(_))
        ));
        assert!(matches!(
            e.gauge_family("", ""),
            Err(ExpositionError::InvalidMetricName(_))
        ));
        assert!(matches!(
            e.gauge_family("a-b", ""),
            Err(ExpositionError::InvalidMetricName(_))
        ));
        assert!(e.gauge_family("ns:x_y", "").is_ok());
        assert!(matches!(
            e.counter_family("calls", ""),
            Err(ExpositionError::CounterWithoutTotal(_))
        ));
        let g = e.gauge_family("g", "").unwrap();
        for bad in ["", "__x", "a b", "9a", "é"] {
            assert!(
                matches!(
                    g.sample(&[(bad, "v")], 1),
                    Err(ExpositionError::InvalidLabelName(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            g.sample(&[("a", "1"), ("a", "2")], 1),
            Err(ExpositionError::DuplicateLabel { .. })
        ));
        g.sample(&[("a", "1")], 1).unwrap();
        assert!(matches!(
            g.sample(&[("a", "1")], 2),
            Err(ExpositionError::DuplicateSeries { .. })
        ));
        assert!(matches!(
            e.counter_family("g", ""),
            Err(ExpositionError::TypeConflict { .. })
        ));
        let h = e.histogram_family("h", "").unwrap();
        assert!(matches!(
            h.histogram_sample(&[("le", "1")], &HistogramSnapshot::default()),
            Err(ExpositionError::ReservedLabel { .. })
        ));
        assert!(matches!(
            h.sample(&[], 1),
            Err(ExpositionError::WrongSampleKind { .. })
        ));
        assert!(matches!(
            h.histogram_sample_with_buckets(&[], &HistogramSnapshot::default(), &[3, 3]),
            Err(ExpositionError::InvalidBuckets)
        ));
        assert!(matches!(
            h.histogram_sample_with_buckets(
                &[],
                &HistogramSnapshot::default(),
                &[LatencyHistogram::BUCKETS - 1]
            ),
            Err(ExpositionError::InvalidBuckets)
        ));
        assert!(matches!(
            e.gauge_family("h_count", ""),
            Err(ExpositionError::NameCollision { .. })
        ));
        assert!(matches!(
            e.histogram_family("g", ""),
            Err(ExpositionError::TypeConflict { .. })
        ));
        e.gauge_family("x_sum", "").unwrap();
        assert!(matches!(
            e.histogram_family("x", ""),
            Err(ExpositionError::NameCollision { .. })
        ));
    }

    #[test]
    fn escaping() {
        let mut e = Exposition::new();
        e.gauge_family("g", "a \\ b\nc \"q\"")
            .unwrap()
            .sample(&[("l", "x\\y\"z\nw")], 1)
            .unwrap();
        assert_eq!(
            e.render(),
            "# HELP g a \\\\ b\\nc \"q\"\n# TYPE g gauge\ng{l=\"x\\\\y\\\"z\\nw\"} 1\n"
        );
    }

    #[test]
    fn histogram_is_cumulative_and_exact() {
        let h = LatencyHistogram::new();
        for ns in [
            500,
            10_650,
            10_651,
            1_000_000,
            7_000_000_000,
            100_000_000_000,
        ] {
            h.record_nanos(ns);
        }
        let mut e = Exposition::new();
        let b = [
            LatencyHistogram::bucket_index(10_650),
            LatencyHistogram::bucket_index(1_000_000),
        ];
        e.histogram_family("d_seconds", "D.")
            .unwrap()
            .histogram_sample_with_buckets(&[("p", "a")], &h.snapshot(), &b)
            .unwrap();
        assert_eq!(
            e.render(),
            "# HELP d_seconds D.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{p=\"a\",le=\"0.00001065\"} 2\n\
             d_seconds_bucket{p=\"a\",le=\"0.001048576\"} 4\n\
             d_seconds_bucket{p=\"a\",le=\"+Inf\"} 6\n\
             d_seconds_sum{p=\"a\"} 107.001021801\n\
             d_seconds_count{p=\"a\"} 6\n"
        );
    }

    #[test]
    fn standard_buckets_are_increasing_and_close_to_their_targets() {
        assert!(STANDARD_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(*STANDARD_BUCKETS.last().unwrap() < LatencyHistogram::BUCKETS - 1);
    }
}
