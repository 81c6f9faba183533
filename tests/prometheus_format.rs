//! The Prometheus exposition follows the text format 0.0.4: checked line by line in Rust,
//! and parsed by a real parser (Python's `prometheus_client.parser`), whose families,
//! samples, labels and values must equal what was written.
//!
//! The parser comes from `target/venv` (or a system `python3` that has it). If neither has
//! it, this test *installs it* with `python3 -m venv target/venv &&
//! target/venv/bin/pip install prometheus_client`.
#![cfg(not(loom))]

mod common;

use breakwater::metrics::{
    write_adaptive, write_bulkhead, write_circuit_state, write_limiter_available,
    write_policy_metrics, Exposition, LatencyHistogram, MetricsSnapshot, PolicyMetrics,
};
use breakwater::{Outcome, RejectReason};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};

type Labels = BTreeMap<String, String>;

/// One sample as the parser saw it.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

/// One family as the parser saw it.
#[derive(Debug, Clone)]
struct ParsedFamily {
    name: String,
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

const TRICKY: &str = "pay\"ments\\eu\nwest €";

/// Durations recorded per policy (nanoseconds): sub-µs, edges, overflow.
fn durations(policy: usize) -> Vec<u64> {
    let mut v = vec![0, 999, 1024, 1025, 10_240, 10_241, 1_015_808, 1_015_809];
    v.extend((1..200u64).map(|i| i * i * 12_345 + policy as u64 * 777));
    v.extend([
        59_000_000_000,
        60_129_542_144,
        60_129_542_145,
        3_600_000_000_000,
    ]);
    v
}

fn metrics_for(policy: usize) -> (MetricsSnapshot, Vec<u64>) {
    let m = PolicyMetrics::new();
    let ds = durations(policy);
    for (i, &d) in ds.iter().enumerate() {
        m.on_permitted();
        m.on_complete(Outcome::ALL[(i + policy) % 4], Some(d), i % 9 == 0);
    }
    m.on_permitted(); // one in flight
    for (i, r) in RejectReason::ALL.into_iter().enumerate() {
        for _ in 0..(i + policy) {
            m.on_rejected(r);
        }
    }
    m.on_retry();
    m.on_budget_refused();
    m.on_transition(1);
    m.on_transition(2);
    (m.snapshot(), ds)
}

/// A policy name, its snapshot and the raw durations recorded.
type Written = (&'static str, MetricsSnapshot, Vec<u64>);

fn build() -> (String, Vec<Written>) {
    let mut exp = Exposition::new();
    let mut policies = Vec::new();
    for (i, name) in ["search", TRICKY].into_iter().enumerate() {
        let (snap, ds) = metrics_for(i);
        write_policy_metrics(&mut exp, name, &snap).unwrap();
        write_circuit_state(&mut exp, name, i as u8 + 1).unwrap();
        write_limiter_available(&mut exp, name, 2.5 + i as f64).unwrap();
        write_bulkhead(&mut exp, name, 3, 32).unwrap();
        write_adaptive(&mut exp, name, 17, 4).unwrap();
        policies.push((name, snap, ds));
    }
    let special = exp
        .gauge_family("breakwater_test_special", "Special \\ values\nsecond line.")
        .unwrap();
    for (label, v) in [
        ("nan", f64::NAN),
        ("pinf", f64::INFINITY),
        ("ninf", f64::NEG_INFINITY),
        ("tiny", 1e-9),
        ("huge", 1.5e20),
        ("neg", -0.125),
    ] {
        special.sample(&[("v", label)], v).unwrap();
    }
    exp.gauge_family("breakwater_test_unlabelled", "No labels.")
        .unwrap()
        .sample(&[], 7u64)
        .unwrap();
    (exp.render(), policies)
}

// ---------------------------------------------------------------------------------------
// Rule checks in Rust.

/// Splits a sample line into name, labels (unescaped) and value text.
fn split_sample(line: &str) -> (String, Labels, String) {
    let name_end = line.find(['{', ' ']).expect("name then labels or value");
    let name = line[..name_end].to_owned();
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        let mut chars = rest[1..].char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next().expect("unterminated labels");
            match c {
                '}' => {
                    rest = &rest[i + 2..];
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|x| x.1), Some('"'), "quoted value: {line}");
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next().expect("unterminated value");
                        match c {
                            '"' => break,
                            '\\' => match chars.next().map(|x| x.1) {
                                Some('\\') => value.push('\\'),
                                Some('"') => value.push('"'),
                                Some('n') => value.push('\n'),
                                other => panic!("bad escape {other:?} in {line}"),
                            },
                            '\n' => panic!("raw newline in a label value"),
                            c => value.push(c),
                        }
                    }
                    assert!(is_label_name(&key), "label name {key:?}");
                    assert!(
                        labels.insert(std::mem::take(&mut key), value).is_none(),
                        "dup label"
                    );
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.trim_start_matches(' ').to_owned();
    (name, labels, value)
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    !s.starts_with("__")
        && matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn unescape_help(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                other => panic!("bad help escape {other:?} in {s:?}"),
            },
            c => out.push(c),
        }
    }
    out
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => {
            assert!(!v.is_empty() && !v.contains(' '), "value {v:?}");
            v.parse().unwrap_or_else(|_| panic!("value {v:?}"))
        }
    }
}

/// Checks the format's rules on `text`; returns the families as written.
fn check_rules(text: &str) -> Vec<ParsedFamily> {
    assert!(text.ends_with('\n'));
    let mut families: Vec<ParsedFamily> = Vec::new();
    let mut seen = HashSet::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let help = line
            .strip_prefix("# HELP ")
            .expect("each family opens with HELP");
        let (name, help) = help.split_once(' ').expect("HELP name text");
        assert!(is_metric_name(name), "{name}");
        assert!(
            seen.insert(name.to_owned()),
            "family {name} appears twice (interleaved?)"
        );
        let ty = lines.next().expect("TYPE after HELP");
        let kind = ty
            .strip_prefix(&format!("# TYPE {name} "))
            .unwrap_or_else(|| panic!("TYPE for {name} right after its HELP: {ty}"));
        assert!(["counter", "gauge", "histogram"].contains(&kind), "{kind}");
        if kind == "counter" {
            assert!(name.ends_with("_total"), "counter {name} without _total");
        }
        let mut fam = ParsedFamily {
            name: name.to_owned(),
            kind: kind.to_owned(),
            help: unescape_help(help),
            samples: Vec::new(),
        };
        while let Some(line) = lines.next_if(|l| !l.starts_with('#')) {
            let (sname, labels, value) = split_sample(line);
            let suffixes: &[&str] = if kind == "histogram" {
                &["_bucket", "_sum", "_count"]
            } else {
                &[""]
            };
            assert!(
                suffixes.iter().any(|s| sname == format!("{name}{s}")),
                "sample {sname} outside its family {name}"
            );
            fam.samples.push(Sample {
                name: sname,
                labels,
                value: parse_value(&value),
            });
        }
        if kind == "histogram" {
            check_histogram_rules(&fam);
        }
        families.push(fam);
    }
    families
}

fn check_histogram_rules(fam: &ParsedFamily) {
    let mut series: BTreeMap<Labels, Vec<&Sample>> = BTreeMap::new();
    for s in &fam.samples {
        let mut l = s.labels.clone();
        if s.name.ends_with("_bucket") {
            assert!(l.remove("le").is_some(), "bucket without le");
        } else {
            assert!(!l.contains_key("le"));
        }
        series.entry(l).or_default().push(s);
    }
    for (labels, samples) in series {
        let (mut last_le, mut last_count) = (f64::NEG_INFINITY, 0.0);
        let buckets: Vec<_> = samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .collect();
        for b in &buckets {
            let le = parse_value(&b.labels["le"]);
            assert!(le > last_le, "le not increasing in {labels:?}");
            assert!(
                b.value >= last_count,
                "buckets not cumulative in {labels:?}"
            );
            (last_le, last_count) = (le, b.value);
        }
        assert_eq!(last_le, f64::INFINITY, "last bucket is +Inf");
        let count = samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .expect("_count");
        assert!(samples.iter().any(|s| s.name.ends_with("_sum")), "_sum");
        assert_eq!(count.value, last_count, "_count equals the +Inf bucket");
    }
}

// ---------------------------------------------------------------------------------------
// The real parser.

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn has_client(python: &str) -> bool {
    Command::new(python)
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python with `prometheus_client`, installing it into `target/venv` if needed.
fn python() -> String {
    let venv = manifest_dir().join("target/venv");
    let venv_python = venv.join("bin/python").to_string_lossy().into_owned();
    if has_client(&venv_python) {
        return venv_python;
    }
    if has_client("python3") {
        return "python3".to_owned();
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "prometheus_client"])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok && has_client(&venv_python),
        "could not install prometheus_client into {}",
        venv.display()
    );
    venv_python
}

const SCRIPT: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
h = lambda s: s.encode("utf-8").hex() or "-"
for f in text_string_to_metric_families(sys.stdin.read()):
    print("F", h(f.name), h(f.type), h(f.documentation))
    for s in f.samples:
        print("S", h(s.name), repr(float(s.value)))
        for k, v in sorted(s.labels.items()):
            print("L", h(k), h(v))
"#;

fn parse_with_python(text: &str) -> Vec<ParsedFamily> {
    let stdout = common::python::run(
        &python(),
        SCRIPT,
        text,
        "prometheus_client rejected the exposition",
    );
    let mut families: Vec<ParsedFamily> = Vec::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "F" => families.push(ParsedFamily {
                name: common::python::unhex(f[1]),
                kind: common::python::unhex(f[2]),
                help: common::python::unhex(f[3]),
                samples: Vec::new(),
            }),
            "S" => families.last_mut().unwrap().samples.push(Sample {
                name: common::python::unhex(f[1]),
                labels: Labels::new(),
                value: f[2].parse().unwrap(),
            }),
            "L" => {
                let s = families.last_mut().unwrap().samples.last_mut().unwrap();
                s.labels
                    .insert(common::python::unhex(f[1]), common::python::unhex(f[2]));
            }
            other => panic!("unexpected {other}"),
        }
    }
    families
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn find<'a>(fams: &'a [ParsedFamily], name: &str) -> &'a ParsedFamily {
    fams.iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("family {name}"))
}

fn value(fam: &ParsedFamily, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let want: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let hits: Vec<_> = fam
        .samples
        .iter()
        .filter(|s| s.name == sample && s.labels == want)
        .collect();
    assert_eq!(hits.len(), 1, "{sample}{want:?} in {}", fam.name);
    hits[0].value
}

/// Exact nanoseconds of a decimal seconds string such as `0.001015808`.
fn decimal_seconds_to_nanos(s: &str) -> u64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 9, "{s}");
    int.parse::<u64>().unwrap() * 1_000_000_000 + format!("{frac:0<9}").parse::<u64>().unwrap()
}

#[test]
fn exposition_follows_the_rules_and_parses_with_prometheus_client() {
    let (text, policies) = build();
    let written = check_rules(&text);
    let parsed = parse_with_python(&text);

    // Same families, same order, same types and help; no family parsed twice.
    let names: Vec<_> = parsed.iter().map(|f| f.name.clone()).collect();
    let unique: HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a family was split: {names:?}");
    assert_eq!(parsed.len(), written.len());
    for (p, w) in parsed.iter().zip(&written) {
        // The parser reports a counter `x_total` as family `x` with samples `x_total`.
        let expected = if w.kind == "counter" {
            w.name.strip_suffix("_total").unwrap().to_owned()
        } else {
            w.name.clone()
        };
        assert_eq!(p.name, expected);
        assert_eq!(p.kind, w.kind);
        assert_eq!(p.help, w.help);
        assert_eq!(p.samples.len(), w.samples.len(), "{}", w.name);
        for (ps, ws) in p.samples.iter().zip(&w.samples) {
            assert_eq!(ps.name, ws.name);
            assert_eq!(ps.labels, ws.labels);
            assert!(same_value(ps.value, ws.value), "{ps:?} vs {ws:?}");
        }
    }

    // The values equal what was recorded, independently of the writer.
    let calls = find(&parsed, "breakwater_calls");
    let rejections = find(&parsed, "breakwater_rejections");
    let permits = find(&parsed, "breakwater_permits");
    let state = find(&parsed, "breakwater_circuit_state");
    let duration = find(&parsed, "breakwater_call_duration_seconds");
    for (i, (policy, snap, ds)) in policies.iter().enumerate() {
        let p = ("policy", *policy);
        assert_eq!(
            value(permits, "breakwater_permits_total", &[p]),
            (ds.len() + 1) as f64
        );
        for (k, o) in Outcome::ALL.into_iter().enumerate() {
            let want = (0..ds.len()).filter(|j| (j + i) % 4 == k).count();
            let got = value(
                calls,
                "breakwater_calls_total",
                &[p, ("outcome", o.as_str())],
            );
            assert_eq!(got, want as f64, "{policy} {o}");
            assert_eq!(snap.outcome(o), want as u64);
        }
        for (k, r) in RejectReason::ALL.into_iter().enumerate() {
            let got = value(
                rejections,
                "breakwater_rejections_total",
                &[p, ("reason", r.as_str())],
            );
            // The budget refusal recorded above is one more `retry_budget_exhausted`.
            let refusals = usize::from(r == RejectReason::RetryBudgetExhausted);
            assert_eq!(got, (k + i + refusals) as f64);
        }
        for (code, s) in ["closed", "open", "half_open", "forced_open", "disabled"]
            .iter()
            .enumerate()
        {
            let got = value(state, "breakwater_circuit_state", &[p, ("state", s)]);
            assert_eq!(got, if code == i + 1 { 1.0 } else { 0.0 });
        }
        let avail = value(
            find(&parsed, "breakwater_limiter_available"),
            "breakwater_limiter_available",
            &[p],
        );
        assert_eq!(avail, 2.5 + i as f64);
        // Histogram: every le is an exact bucket bound; counts are exact cumulations of
        // the raw durations.
        let mut buckets = 0;
        for s in duration.samples.iter().filter(|s| {
            s.name == "breakwater_call_duration_seconds_bucket" && s.labels["policy"] == *policy
        }) {
            let le = &s.labels["le"];
            let want = if le == "+Inf" {
                ds.len()
            } else {
                let bound = decimal_seconds_to_nanos(le);
                let index = LatencyHistogram::bucket_index(bound);
                assert_eq!(LatencyHistogram::upper_bound_nanos(index), bound, "le={le}");
                ds.iter().filter(|&&d| d <= bound).count()
            };
            assert_eq!(s.value, want as f64, "{policy} le={le}");
            buckets += 1;
        }
        assert_eq!(buckets, 22);
        let sum: u64 = ds.iter().sum();
        let got = value(duration, "breakwater_call_duration_seconds_sum", &[p]);
        assert!(same_value(got, sum as f64 / 1e9), "{got} vs {sum}");
        assert_eq!(
            value(duration, "breakwater_call_duration_seconds_count", &[p]),
            ds.len() as f64
        );
    }
    let special = find(&parsed, "breakwater_test_special");
    assert_eq!(special.help, "Special \\ values\nsecond line.");
    assert!(value(special, "breakwater_test_special", &[("v", "nan")]).is_nan());
    assert_eq!(
        value(special, "breakwater_test_special", &[("v", "pinf")]),
        f64::INFINITY
    );
    assert_eq!(
        value(special, "breakwater_test_special", &[("v", "ninf")]),
        f64::NEG_INFINITY
    );
    assert_eq!(
        value(special, "breakwater_test_special", &[("v", "tiny")]),
        1e-9
    );
    assert_eq!(
        value(special, "breakwater_test_special", &[("v", "huge")]),
        1.5e20
    );
    assert_eq!(
        value(special, "breakwater_test_special", &[("v", "neg")]),
        -0.125
    );
    let unlabelled = find(&parsed, "breakwater_test_unlabelled");
    assert_eq!(value(unlabelled, "breakwater_test_unlabelled", &[]), 7.0);
}

#[test]
fn families_group_samples_of_every_policy() {
    let (text, _) = build();
    // The two policies' samples of one family are adjacent: the family's HELP appears once.
    assert_eq!(text.matches("# HELP breakwater_calls_total ").count(), 1);
    let calls: Vec<_> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("breakwater_calls_total{"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(calls.len(), 8);
    assert!(calls.windows(2).all(|w| w[1] == w[0] + 1));
}
