//! The `breakwater` command end to end: the built binary, its output and exit codes.
#![cfg(all(feature = "cli", not(loom)))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use breakwater::config::{explain, PolicyFile};

fn breakwater(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_breakwater"))
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .expect("the breakwater binary runs")
}

/// The two values of the table row called `name`.
fn row(table: &str, name: &str) -> [String; 2] {
    let line = table
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"));
    let cells: Vec<&str> = line[name.len()..]
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells.len(), 2, "{line}");
    [cells[0].to_string(), cells[1].to_string()]
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
        "all workers busy",
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
    for sub in ["simulate", "demo", "check", "explain", "bench"] {
        let out = breakwater(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(
            text.contains("Exit codes:") && text.contains("2  usage error"),
            "{sub}: {text}"
        );
    }
}

#[test]
fn simulate_repeats_byte_for_byte() {
    let args = ["simulate", "--scenario", "checkout", "--seed", "9"];
    let first = breakwater(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = breakwater(&args);
    assert_eq!(stdout(&first), stdout(&second));
    assert!(stderr(&first).contains("simulated 2 × 10 s of incident in"));
}

/// The rows of the table `simulate` prints, in order.
const ROWS: [&str; 7] = [
    "requests offered",
    "requests served OK",
    "checkout success",
    "  … during the incident",
    "checkouts failed fast",
    "breaker opened / retries",
    "time to recover after healing",
];

/// The exact numbers of each built-in scenario with the embedded policy, for two seeds:
/// `(scenario, seed, values)` with each row's two values (unprotected, with breakwater),
/// in the order of [`ROWS`].
const EXPECTED: &[(&str, u64, [[&str; 2]; 7])] = &[
    (
        "checkout",
        42,
        [
            ["2046", "2046"],
            ["1333 (65.2 %)", "1837 (89.8 %)"],
            ["65.0 %", "65.7 %"],
            ["9.7 %", "100.0 %"],
            ["0", "187"],
            ["–", "4 / 2"],
            ["212 ms", "90 ms"],
        ],
    ),
    (
        "checkout",
        7,
        [
            ["2096", "2096"],
            ["1384 (66.0 %)", "1862 (88.8 %)"],
            ["63.6 %", "63.3 %"],
            ["10.6 %", "100.0 %"],
            ["0", "210"],
            ["–", "4 / 2"],
            ["209 ms", "132 ms"],
        ],
    ),
    (
        "hard-down",
        42,
        [
            ["2046", "2046"],
            ["1404 (68.6 %)", "1837 (89.8 %)"],
            ["67.2 %", "65.7 %"],
            ["18.4 %", "100.0 %"],
            ["0", "187"],
            ["–", "4 / 2"],
            ["135 ms", "90 ms"],
        ],
    ),
    (
        "hard-down",
        7,
        [
            ["2096", "2096"],
            ["1486 (70.9 %)", "1862 (88.8 %)"],
            ["66.2 %", "63.3 %"],
            ["24.0 %", "100.0 %"],
            ["0", "210"],
            ["–", "4 / 2"],
            ["72 ms", "132 ms"],
        ],
    ),
    (
        "error-burst",
        42,
        [
            ["2046", "2046"],
            ["1886 (92.2 %)", "1845 (90.2 %)"],
            ["73.7 %", "67.0 %"],
            ["100.0 %", "100.0 %"],
            ["0", "194"],
            ["–", "6 / 19"],
            ["0 ms", "90 ms"],
        ],
    ),
    (
        "error-burst",
        7,
        [
            ["2096", "2096"],
            ["1922 (91.7 %)", "1882 (89.8 %)"],
            ["72.7 %", "66.4 %"],
            ["100.0 %", "100.0 %"],
            ["0", "206"],
            ["–", "6 / 18"],
            ["0 ms", "0 ms"],
        ],
    ),
    (
        "spike",
        42,
        [
            ["19293", "19293"],
            ["7199 (37.3 %)", "9602 (49.8 %)"],
            ["37.2 %", "23.6 %"],
            ["32.8 %", "58.2 %"],
            ["0", "2197"],
            ["–", "0 / 15"],
            ["0 ms", "22 ms"],
        ],
    ),
    (
        "spike",
        7,
        [
            ["18560", "18560"],
            ["7228 (38.9 %)", "9527 (51.3 %)"],
            ["38.4 %", "24.0 %"],
            ["34.7 %", "60.3 %"],
            ["0", "2184"],
            ["–", "0 / 15"],
            ["0 ms", "23 ms"],
        ],
    ),
    (
        "slow-recovery",
        42,
        [
            ["2046", "2046"],
            ["882 (43.1 %)", "1638 (80.1 %)"],
            ["41.2 %", "33.0 %"],
            ["21.1 %", "100.0 %"],
            ["0", "373"],
            ["–", "8 / 1"],
            ["0 ms", "0 ms"],
        ],
    ),
    (
        "slow-recovery",
        7,
        [
            ["2096", "2096"],
            ["825 (39.4 %)", "1658 (79.1 %)"],
            ["36.3 %", "31.2 %"],
            ["15.9 %", "100.0 %"],
            ["0", "403"],
            ["–", "8 / 0"],
            ["0 ms", "0 ms"],
        ],
    ),
];

#[test]
fn simulate_gives_the_exact_numbers_of_every_builtin_scenario() {
    for (scenario, seed, values) in EXPECTED {
        let out = breakwater(&[
            "simulate",
            "--scenario",
            scenario,
            "--seed",
            &seed.to_string(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let table = stdout(&out);
        for (name, values) in ROWS.into_iter().zip(values) {
            assert_eq!(
                row(&table, name),
                values.map(str::to_string),
                "{scenario} seed {seed}, row {name:?}:\n{table}"
            );
        }
    }
}

#[test]
fn simulate_with_timeouts_that_do_not_cut_the_call() {
    // The embedded policy's 250 ms timeout, as a synchronous Rust or C call sees it: a
    // slow payment call holds its worker to its end and is recorded as a timeout then.
    // Nothing is cut; the bulkhead alone keeps the healthy endpoints whole, and the
    // breaker hears of each timeout only when the call ends (1.6–2.4 s late), so it
    // opens once instead of 4 times.
    let out = breakwater(&["simulate", "--timeout-cuts", "no"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    for (name, values) in [
        ("requests served OK", ["1333 (65.2 %)", "1789 (87.4 %)"]),
        ("checkout success", ["65.0 %", "57.8 %"]),
        ("  … during the incident", ["9.7 %", "100.0 %"]),
        ("client timeouts (> 1.00 s)", ["141", "12"]),
        ("payment calls cut at timeout", ["0", "0"]),
        ("checkouts failed fast", ["0", "245"]),
        ("  … bulkhead_full", ["0", "215"]),
        ("breaker opened / retries", ["–", "1 / 1"]),
        ("time to recover after healing", ["212 ms", "1.01 s"]),
    ] {
        assert_eq!(
            row(&table, name),
            values.map(str::to_string),
            "{name}:\n{table}"
        );
    }
    assert!(
        flat(&table).contains(
            "Timeouts did not cut the payment calls (--timeout-cuts no): a call slower than \
             250 ms ran to its end, holding its worker, and was then recorded as a timeout."
        ),
        "{table}"
    );
    // The default cuts (the numbers of EXPECTED), and says nothing of it.
    let cut = stdout(&breakwater(&["simulate", "--timeout-cuts", "yes"]));
    assert_eq!(cut, stdout(&breakwater(&["simulate"])));
    assert_eq!(row(&cut, "payment calls cut at timeout"), ["0", "22"]);
    assert!(!cut.contains("Timeouts did not cut"));
    assert_eq!(
        breakwater(&["simulate", "--timeout-cuts", "maybe"])
            .status
            .code(),
        Some(2)
    );
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn simulate_says_why_the_reference_policy_did_not_help() {
    let out = breakwater(&[
        "simulate",
        "--policy",
        &example("policies.toml"),
        "payments",
        "--scenario",
        "checkout",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("breakwater did not help here"), "{text}");
    for reason in [
        "- timeout 3s is not below the clients' 1s deadline:",
        "- the breaker never opened: failures peaked at",
        "- bulkhead max_concurrent 32 is not below the gateway's 16 workers:",
    ] {
        assert!(text.contains(reason), "missing {reason:?} in\n{text}");
    }
}

#[test]
fn simulate_the_tuned_example_policy_helps() {
    for (policy, scenario) in [
        ("payment", "checkout"),
        ("payment", "hard-down"),
        ("payment", "slow-recovery"),
        ("payment-errors", "error-burst"),
        ("payment-errors", "checkout"),
        ("payment-errors", "hard-down"),
    ] {
        let out = breakwater(&[
            "simulate",
            "--policy",
            &example("payment.toml"),
            policy,
            "--scenario",
            scenario,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.contains("did not help"),
            "{policy}, {scenario}:\n{text}"
        );
        let healthy = row(&text, "  … during the incident");
        assert_eq!(healthy[1], "100.0 %", "{policy}, {scenario}:\n{text}");
        if scenario == "error-burst" {
            // The numbers examples/payment.toml quotes.
            assert_eq!(row(&text, "checkout success"), ["73.7 %", "82.9 %"]);
            let comment = include_str!("../examples/payment.toml");
            assert!(comment.contains("(73.7 % → 82.9 % in the simulator, seed 42)"));
        }
    }
}

/// `text` with every run of blanks and line breaks made one space (wrapping undone).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn simulate_names_only_the_phases_no_policy_could_save() {
    let out = breakwater(&[
        "simulate",
        "--policy",
        &example("policies.toml"),
        "payments",
        "--scenario",
        "slow-recovery",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = flat(&stdout(&out));
    // The degraded phase (2–4 s): every answer slower than the clients' deadline, the
    // fastest as recorded. The ramp after it recovers to 10–30 ms: not named.
    assert!(
        text.contains(
            "- from 2s to 4s payment answered in no less than 1s 636ms, after the clients' \
             1s deadline"
        ),
        "{text}"
    );
    assert!(!text.contains("from 4s to 9s payment answered"), "{text}");
    assert!(!text.contains("from 2s to 9s"), "{text}");
}

#[test]
fn simulate_of_a_calm_scenario_does_not_blame_the_policy() {
    let dir = temp_dir("calm");
    let calm = write(&dir, "calm.toml", "[scenario]\nname = \"calm\"\n");
    let out = breakwater(&["simulate", "--scenario", &calm]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = flat(&stdout(&out));
    assert!(!text.contains("did not help"), "{text}");
    assert!(
        text.contains(
            "Nothing goes wrong in this scenario (it has no [[phase]]): there was nothing \
             for a policy to help with (served OK 99.8 % unprotected, 100.0 % with breakwater)."
        ),
        "{text}"
    );
}

#[test]
fn simulate_says_when_injected_faults_dominate() {
    let dir = temp_dir("chaos");
    let chaos = write(
        &dir,
        "chaos.toml",
        "[policies.c.chaos]\nenabled = true\nfailure_probability = 0.3\n\
         rejection_probability = 0.1\nlatency_probability = 0.5\n\
         latency = { min = \"10ms\", max = \"2s\" }\n",
    );
    for scenario in ["checkout", "error-burst"] {
        let out = breakwater(&["simulate", "--policy", &chaos, "c", "--scenario", scenario]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = flat(&stdout(&out));
        assert!(text.contains("breakwater did not help here"), "{text}");
        assert!(
            text.contains("- chaos is on and its faults dominate: of "),
            "{scenario}: {text}"
        );
        assert!(text.contains("set `chaos.enabled = false` to judge the other stages"));
    }
    // Chaos switched off: not blamed.
    let off = write(
        &dir,
        "off.toml",
        "[policies.c.chaos]\nenabled = false\nfailure_probability = 0.3\n",
    );
    let out = breakwater(&["simulate", "--policy", &off, "c"]);
    assert!(!stdout(&out).contains("chaos is on"), "{}", stdout(&out));
}

#[test]
fn simulate_reads_a_scenario_file_and_reports_its_errors_by_line() {
    let dir = temp_dir("scenario");
    let good = write(
        &dir,
        "brownout.toml",
        "[scenario]\nname = \"brownout\"\nduration = \"5s\"\nrate = 100\n\n[[phase]]\nfrom = \"1s\"\nto = \"3s\"\npayment = { latency = [\"1.2s\", \"1.5s\"], errors = 0.2 }\n",
    );
    let out = breakwater(&["simulate", "--scenario", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("The brownout incident, simulated"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        stdout(&out),
        stdout(&breakwater(&["simulate", "--scenario", &good]))
    );

    let bad = write(&dir, "bad.toml", "[scenario]\nrate = \"fast\"\n");
    let out = breakwater(&["simulate", "--scenario", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!("{bad}:2: `scenario.rate`: must be a number\n{bad}: 1 error\n")
    );

    let unknown = breakwater(&["simulate", "--scenario", "meteor"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("built in: checkout, hard-down"));
}

#[test]
fn simulate_fits_80_and_60_columns() {
    for columns in ["80", "60"] {
        for scenario in [
            "checkout",
            "hard-down",
            "error-burst",
            "spike",
            "slow-recovery",
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_breakwater"))
                .args(["simulate", "--scenario", scenario])
                .args(["--policy", &example("policies.toml"), "payments"])
                .env("COLUMNS", columns)
                .output()
                .expect("runs");
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let width: usize = columns.parse().expect("a number");
            for line in stdout(&out).lines() {
                assert!(
                    line.chars().count() <= width,
                    "{scenario}, {columns} columns: {line:?}"
                );
            }
        }
    }
}

/// What a terminal of `width` columns shows after receiving `bytes`: carriage returns,
/// newlines, "erase line" and automatic wrapping are applied; colours are dropped.
fn screen(bytes: &[u8], width: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                let mut code = String::new();
                if chars.next_if_eq(&'[').is_some() {
                    while let Some(&n) = chars.peek() {
                        chars.next();
                        code.push(n);
                        if n.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                if code == "2K" {
                    rows[row].clear();
                }
            }
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            c => {
                if col == width {
                    row += 1;
                    col = 0;
                }
                while rows.len() <= row {
                    rows.push(Vec::new());
                }
                let line = &mut rows[row];
                while line.len() <= col {
                    line.push(' ');
                }
                line[col] = c;
                col += 1;
            }
        }
        while rows.len() <= row {
            rows.push(Vec::new());
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_string())
        .collect()
}

#[test]
fn demo_screen_on_an_80_column_terminal() {
    // No skipping: without `script` this test cannot see the screen, so it fails
    // (scripts/test.sh installs it where missing).
    let script = Command::new("script").arg("--version").output();
    assert!(
        script.is_ok_and(|o| o.status.success()),
        "`script` is needed to run the demo on a terminal: install it (Debian: apt-get \
         install bsdutils; elsewhere util-linux)"
    );
    let bin = env!("CARGO_BIN_EXE_breakwater");
    let out = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "stty cols 80 rows 60; exec {bin} demo --duration 2s --seed 3"
        ))
        .arg("/dev/null")
        .env_remove("COLUMNS")
        .output()
        .expect("script runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = screen(&out.stdout, 80);
    let shown = rows.join("\n");
    eprintln!("{shown}");
    assert!(rows.iter().all(|r| r.chars().count() <= 80), "{shown}");
    // The live bars were redrawn in place and replaced by one closing line each.
    assert!(
        !shown.contains('░') && !shown.contains('█'),
        "stale bar:\n{shown}"
    );
    for label in ["unprotected ", "with breakwater "] {
        let closing = rows
            .iter()
            .filter(|r| r.starts_with(label) && r.contains("done:"));
        assert_eq!(closing.count(), 1, "{label}:\n{shown}");
    }
    let title = rows
        .iter()
        .filter(|r| r.starts_with("The checkout incident"));
    assert_eq!(title.count(), 1, "the title once:\n{shown}");
    assert!(shown.contains("requests served OK"), "{shown}");
}

#[test]
fn out_problems_are_reported_before_the_run() {
    let dir = temp_dir("out");
    for args in [
        &["simulate", "--out", "/nonexistent/dir/x.svg"][..],
        &[
            "demo",
            "--duration",
            "20s",
            "--out",
            "/nonexistent/dir/x.svg",
        ],
    ] {
        let out = breakwater(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}: no run");
        assert!(stderr(&out).contains("cannot write /nonexistent/dir/x.svg"));
    }
    let txt = dir.join("x.txt");
    let out = breakwater(&[
        "demo",
        "--duration",
        "20s",
        "--out",
        txt.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("SVG (FILE.svg) or PNG (FILE.png)"));
    assert!(!txt.exists());
}

#[test]
fn simulate_writes_svg_or_png_as_the_extension_says() {
    let dir = temp_dir("png");
    let png = dir.join("incident.png");
    let svg = dir.join("incident.svg");
    for path in [&png, &svg] {
        let out = breakwater(&["simulate", "--out", path.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let bytes = std::fs::read(&png).expect("png written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert_balanced(&text);
    assert!(text.contains("data-note=\"headline\""));
    for unit in ["0 s", "10 s", "100 %", "1 ms", "5 s"] {
        assert!(text.contains(&format!(">{unit}<")), "no tick {unit}");
    }
}

/// The drawing of series `name` in an SVG of `simulate` (between its group's tags).
fn series<'a>(svg: &'a str, name: &str) -> &'a str {
    let open = format!("data-series=\"{name}\">");
    let start = svg
        .find(&open)
        .unwrap_or_else(|| panic!("no series {name}"))
        + open.len();
    &svg[start..start + svg[start..].find("</g>").expect("closed")]
}

/// The y coordinates of a series' points (polyline points and dots).
fn ys(drawing: &str) -> Vec<f64> {
    let mut ys = Vec::new();
    for part in drawing.split("points=\"").skip(1) {
        let points = &part[..part.find('"').expect("closed")];
        ys.extend(
            points
                .split(' ')
                .map(|p| p.split(',').nth(1).expect("x,y").parse::<f64>().expect("y")),
        );
    }
    for part in drawing.split("cy=\"").skip(1) {
        ys.push(part[..part.find('"').expect("closed")].parse().expect("cy"));
    }
    ys
}

#[test]
fn the_picture_leaves_a_gap_where_there_was_no_traffic() {
    let dir = temp_dir("lowrate");
    let quiet = write(
        &dir,
        "quiet.toml",
        "[scenario]\nname = \"quiet\"\nrate = 8\n",
    );
    let svg = dir.join("quiet.svg");
    let out = breakwater(&[
        "simulate",
        "--scenario",
        &quiet,
        "--out",
        svg.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).expect("written");
    assert_balanced(&text);
    // Every request succeeds: every point drawn is at 100 % (y 184: the panel's top at
    // 140, 220 high, 0..125 %), none at 0 % (y 360), and nothing is marked as stuck.
    for name in [
        "unprotected-checkout-success",
        "protected-checkout-success",
        "unprotected-healthy-success",
        "protected-healthy-success",
    ] {
        let ys = ys(series(&text, name));
        assert!(!ys.is_empty(), "{name}: nothing drawn");
        assert!(ys.iter().all(|&y| y == 184.0), "{name}: {ys:?}");
    }
    assert!(!text.contains("data-mark=\"unanswered\""));
    assert!(!text.contains("no admitted request finished"));

    // No checkouts at all: no checkout line (not a flat 0 %).
    let none = write(&dir, "none.toml", "[scenario]\ncheckout_share = 0\n");
    let out = breakwater(&[
        "simulate",
        "--scenario",
        &none,
        "--out",
        svg.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).expect("written");
    for name in ["unprotected-checkout-success", "protected-checkout-success"] {
        assert_eq!(ys(series(&text, name)), Vec::<f64>::new(), "{name}");
    }

    // A real stall is still drawn as one: the checkout incident unprotected, at 0 %
    // with marks, and its healthy line drawn over the checkout line, marked.
    let out = breakwater(&["simulate", "--out", svg.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).expect("written");
    assert!(text.contains("data-mark=\"unanswered\""));
    for name in [
        "unprotected-checkout-success",
        "unprotected-healthy-success",
    ] {
        assert!(ys(series(&text, name)).contains(&360.0), "{name}");
    }
    let healthy = series(&text, "unprotected-healthy-success");
    assert!(healthy.contains("<circle"), "the healthy line is marked");
    let (checkout_at, healthy_at) = (
        text.find("data-series=\"unprotected-checkout-success\"")
            .expect("drawn"),
        text.find("data-series=\"unprotected-healthy-success\"")
            .expect("drawn"),
    );
    assert!(checkout_at < healthy_at, "healthy drawn over checkout");
}

#[test]
fn demo_accepts_exactly_1s_to_10m() {
    for bad in ["999ms", "10m1s"] {
        let out = breakwater(&["demo", "--duration", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("outside 1s..=10m"),
            "{}",
            stderr(&out)
        );
    }
    // The shortest accepted run really runs (the longest is checked without waiting
    // 10 minutes: every accepted duration scales the embedded policy validly, see the
    // unit tests of src/bin/breakwater/policy_source.rs).
    let out = breakwater(&["demo", "--duration", "1s", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("requests served OK"));
}

#[test]
fn demo_caps_a_backoff_longer_than_the_run() {
    let dir = temp_dir("backoff");
    let file = write(
        &dir,
        "slow.toml",
        "[policies.slow.retry]\nbackoff = { initial = \"100s\", max = \"200s\" }\n",
    );
    let out = breakwater(&[
        "demo",
        "--duration",
        "2s",
        "--quiet",
        "--policy",
        &file,
        "slow",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Scaled for the demo: `retry.backoff.initial` 10s capped at the run's 1s."),
        "{text}"
    );
}

#[test]
fn bench_with_more_threads_than_cores_counts_only_timed_operations() {
    let out = breakwater(&["bench", "--duration-ms", "20", "--threads", "64"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 64 {
        assert!(
            text.contains(&format!("64 threads on {cores} cores")),
            "{text}"
        );
    }
    // What is counted: whole batches of 64 operations, each ending inside the timed
    // window (a batch that ends after it is dropped, not cut short and counted in
    // part), on 64 threads as on 1.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| matches!(l.split_whitespace().rev().nth(4), Some("1" | "64")))
        .collect();
    assert_eq!(rows.len(), 10, "{text}");
    for line in rows {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let n = cells.len();
        let ops: u64 = cells[n - 4].parse().expect("ops");
        assert_eq!(ops % 64, 0, "{line}");
    }
    assert!(
        stderr(&out).contains("slowest case took"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_shortens_a_huge_echoed_value_and_keeps_the_rest() {
    let dir = temp_dir("huge");
    let huge = "x".repeat(50 << 20);
    let file = write(
        &dir,
        "huge.toml",
        &format!("[policies.a]\ntimeout = \"{huge}\"\n"),
    );
    drop(huge);
    let out = breakwater(&["check", &file]);
    std::fs::remove_file(&file).expect("remove the 50 MB file");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_eq!(
        text,
        format!(
            "{file}:2: policy `a`: `timeout`: invalid duration \"{}… ({} more characters)\": \
             expected number at 0\n{file}: 1 error\n",
            "x".repeat(40),
            (50 << 20) - 40
        )
    );
}

/// `check`'s only line for `body`, without the file name.
fn check_line(name: &str, body: &str) -> String {
    let dir = temp_dir(name);
    let file = write(&dir, "p.toml", body);
    let out = breakwater(&["check", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let first = text.lines().next().expect("a diagnostic");
    first
        .strip_prefix(&file)
        .unwrap_or_else(|| panic!("{first}"))
        .to_string()
}

#[test]
fn check_keeps_the_suggestions_of_an_ordinary_typo_whole() {
    assert_eq!(
        check_line(
            "typo-breaker",
            "[policies.a.circuit_breaker]\nfailure_rate_treshold = 5\n"
        ),
        ":2: policy `a`: `circuit_breaker.failure_rate_treshold`: unknown field (expected one \
         of: failure_rate_threshold, slow_call_rate_threshold, slow_call_duration, \
         consecutive_failures, window, minimum_calls, open_duration, open_backoff_multiplier, \
         open_jitter, max_open_duration, half_open_permits, half_open_max_wait, seed, \
         initial_state); did you mean `failure_rate_threshold`?"
    );
    let fleet = check_line("typo-fleet", "[policies.a.fleet]\nadress = \"x\"\n");
    assert!(
        fleet.starts_with(
            ":2: policy `a`: `fleet.adress`: unknown field (expected one of: address,"
        ),
        "{fleet}"
    );
    assert!(fleet.ends_with("); did you mean `address`?"), "{fleet}");
    // A long bad value is shortened; the values allowed are still listed.
    let z = "z".repeat(300);
    assert_eq!(
        check_line(
            "typo-retry-on",
            &format!("[policies.a.retry]\nretry_on = [\"{z}\"]\n")
        ),
        format!(
            ":2: policy `a`: `retry.retry_on`: unknown value \"{}… (260 more characters)\" \
             (expected any of: failure, timeout, circuit_open, rate_limited, bulkhead_full, \
             load_shed, retry_budget_exhausted, injected)",
            "z".repeat(40)
        )
    );
    // A long key too.
    let k = "k".repeat(1000);
    let line = check_line("typo-key", &format!("[policies.a]\n{k} = 1\n"));
    assert_eq!(
        line,
        format!(
            ":2: policy `a`: `{}… (960 more characters)`: unknown field (expected one of: \
             timeout, scope, segment, circuit_breaker, rate_limiter, throttle, bulkhead, \
             adaptive, chaos, retry, fleet, per_key)",
            "k".repeat(40)
        )
    );
}

/// A host-scoped policy file whose segment name is this test's own.
fn host_policy(dir: &Path, test: &str) -> (String, PathBuf) {
    let segment = format!("cli-{test}-{}", std::process::id());
    let file = write(
        dir,
        "host.toml",
        &format!(
            "[policies.h]\nscope = \"host\"\nsegment = \"{segment}\"\n\
             [policies.h.circuit_breaker]\nminimum_calls = 5\n"
        ),
    );
    let shm = PathBuf::from(format!("/dev/shm/breakwater.{segment}"));
    let _ = std::fs::remove_file(&shm);
    (file, shm)
}

#[test]
fn check_validates_a_host_scoped_policy_without_creating_its_segment() {
    let dir = temp_dir("host-check");
    let (file, shm) = host_policy(&dir, "check");
    let out = breakwater(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!shm.exists(), "{} was created", shm.display());
    // The layout is still checked: a bulkhead too large for a segment is an error.
    let big = write(
        &dir,
        "big.toml",
        "[policies.h]\nscope = \"host\"\nsegment = \"cli-never\"\n\
         [policies.h.bulkhead]\nmax_concurrent = 100000000\n",
    );
    let out = breakwater(&["check", &big]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("`bulkhead.max_concurrent`: must be at most"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn simulate_refuses_host_scope_before_creating_anything() {
    let dir = temp_dir("host-simulate");
    let (file, shm) = host_policy(&dir, "simulate");
    let out = breakwater(&["simulate", "--policy", &file, "h"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("host scope cannot be simulated"),
        "{}",
        stderr(&out)
    );
    assert!(!shm.exists(), "{} was created", shm.display());
}

#[test]
fn a_failed_run_leaves_an_existing_out_file_as_it_was() {
    let dir = temp_dir("out-kept");
    let old = write(&dir, "old.svg", "<svg>the old picture</svg>");
    let out = breakwater(&["simulate", "--out", &old, "--scenario", "meteor"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&old).expect("still there"),
        "<svg>the old picture</svg>"
    );
    let bad_policy = write(&dir, "bad.toml", "[policies.a]\ntimeout = \"soon\"\n");
    let out = breakwater(&["simulate", "--out", &old, "--policy", &bad_policy, "a"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&old).expect("still there"),
        "<svg>the old picture</svg>"
    );
    // No temporary file is left beside it; a run that succeeds replaces it.
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("the dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(), ["bad.toml", "old.svg"]);
    let out = breakwater(&["simulate", "--out", &old]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&old)
        .expect("written")
        .starts_with("<svg "));
    assert_eq!(names(), ["bad.toml", "old.svg"]);
}

#[test]
fn the_readme_scenario_file_runs() {
    let readme = include_str!("../README.md");
    let block = readme
        .split_once("A scenario file (`--scenario FILE.toml`)")
        .and_then(|(_, rest)| rest.split_once("```toml\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("the README documents the scenario file");
    let dir = temp_dir("readme-scenario");
    let file = write(&dir, "brownout.toml", block);
    let out = breakwater(&["simulate", "--scenario", &file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("The payment-brownout incident, simulated: payment slows"),
        "{}",
        stdout(&out)
    );
}

/// The README's ```text block that follows `intro`.
fn readme_block(intro: &str) -> &'static str {
    include_str!("../README.md")
        .split_once(intro)
        .and_then(|(_, rest)| rest.split_once("```text\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .unwrap_or_else(|| panic!("no text block after {intro:?} in the README"))
}

#[test]
fn the_readme_shows_the_simulator_output_exactly() {
    let out = breakwater(&["simulate"]);
    assert_eq!(
        stdout(&out),
        readme_block("`breakwater simulate` prints (the whole output")
    );
    let out = breakwater(&[
        "simulate",
        "--policy",
        &example("policies.toml"),
        "payments",
        "--scenario",
        "checkout",
    ]);
    let text = stdout(&out);
    let why = &text[text.find("breakwater did not help").expect("reasons")..];
    assert_eq!(why, readme_block("and the simulator says why:"));
}
