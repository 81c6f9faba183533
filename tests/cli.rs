//! The `breakwater` command end to end: the built binary, its output and exit codes.
#![cfg(all(feature = "cli", not(loom)))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use breakwater::config::{explain, PolicyFile};

fn breakwater(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakwater"))
        .args(args)
        .output()
        .expect("the breakwater binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// A fresh directory under the target dir for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_str().expect("utf-8 path").to_string()
}

const GOOD: &str = r#"
[policies.payments]
timeout = "2s"

[policies.payments.circuit_breaker]
failure_rate_threshold = 40
window = { type = "time", duration = "10s", buckets = 10 }

[policies.payments.bulkhead]
max_concurrent = 8

[policies.search.rate_limiter]
rate = 100
period = "1s"
"#;

#[test]
fn check_accepts_a_good_file() {
    let dir = temp_dir("good");
    let file = write(&dir, "good.toml", GOOD);
    let out = breakwater(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{file}: ok, 2 policies (payments, search)\n")
    );
}

#[test]
fn check_reports_every_error_with_policy_field_and_line() {
    let dir = temp_dir("bad");
    let file = write(
        &dir,
        "bad.toml",
        r#"[policies.payments]
timeout = "3s"

[policies.payments.circuit_breaker]
failure_rate_threshold = 150
minimum_calls = 10

[policies.search.rate_limiter]
rate = 100
period = "fast"
"#,
    );
    let out = breakwater(&["check", &file]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "{file}:5: policy `payments`: `circuit_breaker.failure_rate_threshold`: 150 is not a percentage in (0, 100]"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}:10: policy `search`: `rate_limiter.period`: "
        )),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], format!("{file}: 2 errors"));
}

#[test]
fn check_reports_syntax_errors_and_unknown_fields() {
    let dir = temp_dir("syntax");
    let broken = write(&dir, "broken.toml", "[policies.a]\ntimeout = \n");
    let out = breakwater(&["check", &broken]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(&format!("{broken}:2: invalid TOML")),
        "{}",
        stdout(&out)
    );

    let typo = write(
        &dir,
        "typo.toml",
        "[policies.a.bulkhead]\nmax_concurrent = 2\nmax_wiat = \"1s\"\n",
    );
    let out = breakwater(&["check", &typo]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(&format!(
            "{typo}:3: policy `a`: `bulkhead.max_wiat`: unknown field"
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_of_a_missing_file_is_an_io_error() {
    let out = breakwater(&["check", "/nonexistent/breakwater.toml"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("cannot read /nonexistent/breakwater.toml"));
}

#[test]
fn explain_round_trips_to_the_same_configuration() {
    let dir = temp_dir("explain");
    let file = write(&dir, "good.toml", GOOD);
    let out = breakwater(&["explain", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let original = PolicyFile::parse(GOOD).expect("valid");
    assert_eq!(
        PolicyFile::parse(&text).expect("explain output parses"),
        original
    );
    assert_eq!(text, explain(&original.policies));
    // Defaults are written out.
    assert!(text.contains("minimum_calls = 20"), "{text}");

    let one = breakwater(&["explain", &file, "search"]);
    assert_eq!(one.status.code(), Some(0));
    let parsed = PolicyFile::parse(&stdout(&one)).expect("parses");
    assert_eq!(
        parsed.policies,
        vec![original.policy("search").expect("search").clone()]
    );

    let unknown = breakwater(&["explain", &file, "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no policy `nope`"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn demo_runs_prints_the_table_and_writes_the_svg() {
    let dir = temp_dir("demo");
    let svg_path = dir.join("demo.svg");
    let out = breakwater(&[
        "demo",
        "--duration",
        "2s",
        "--seed",
        "7",
        "--out",
        svg_path.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for row in [
        "unprotected",
        "with breakwater",
        "requests served OK",
        "checkout success",
        "healthy endpoints success",
        "latency p50",
        "latency p99",
        "workers saturated",
        "time to recover after healing",
    ] {
        assert!(text.contains(row), "missing {row:?} in\n{text}");
    }
    let svg = std::fs::read_to_string(&svg_path).expect("svg written");
    assert!(svg.starts_with("<svg "), "{}", &svg[..40]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_balanced(&svg);
    for series in [
        "unprotected-checkout-success",
        "protected-checkout-success",
        "unprotected-healthy-success",
        "protected-healthy-success",
        "unprotected-p99",
        "protected-p99",
        "unprotected-busy",
        "protected-busy",
        "protected-breaker-state",
    ] {
        assert!(
            svg.contains(&format!("data-series=\"{series}\"")),
            "missing series {series}"
        );
    }
    assert!(svg.contains("<polyline"));
}

/// Every opening tag is closed, in order (a minimal well-formedness check).
fn assert_balanced(svg: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("tag name");
            stack.push(name.to_string());
        }
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
}

#[test]
fn demo_with_an_unknown_policy_fails() {
    let dir = temp_dir("demo-policy");
    let file = write(&dir, "good.toml", GOOD);
    let out = breakwater(&["demo", "--duration", "2s", "--policy", &file, "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no policy `nope`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bench_prints_a_row_per_primitive() {
    let out = breakwater(&["bench", "--duration-ms", "20", "--threads", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for primitive in [
        "circuit breaker",
        "rate limiter",
        "bulkhead",
        "adaptive limit",
        "policy",
    ] {
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(primitive)).collect();
        assert_eq!(
            rows.len(),
            2,
            "{primitive}: one row for 1 thread, one for 2\n{text}"
        );
        for row in rows {
            let ns: f64 = row
                .split_whitespace()
                .rev()
                .nth(2)
                .expect("ns/op")
                .parse()
                .expect("a number");
            assert!(ns > 0.0, "{row}");
        }
    }
    assert!(stderr(&out).contains("cargo bench"));
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    for args in [
        &["frobnicate"][..],
        &["check"],
        &["demo", "--duration", "soon"],
        &["demo", "--duration", "0s"],
        &["bench", "--duration-ms", "0"],
        &["explain"],
    ] {
        let out = breakwater(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    for sub in ["demo", "check", "explain", "bench"] {
        let out = breakwater(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(
            text.contains("Exit codes:") && text.contains("2  usage error"),
            "{sub}: {text}"
        );
    }
}
