//! Health JSON is valid JSON whose strings decode to exactly what was written (checked
//! with Python's standard `json` module).
#![cfg(not(loom))]

use breakwater::metrics::{HealthReport, HealthStatus, PolicyHealth, ReasonKind, Usage};
use std::io::Write;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
import json, sys
doc = json.loads(sys.stdin.read())
h = lambda s: s.encode("utf-8").hex() or "-"
print(h(doc["status"]))
for r in doc["reasons"]:
    assert set(r) == {"policy", "kind", "detail"}, r
    print(h(r["policy"]), h(r["kind"]), h(r["detail"]))
"#;

fn unhex(s: &str) -> String {
    if s == "-" {
        return String::new();
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn json_round_trips_through_a_real_parser() {
    let tricky = "a\"b\\c\nd\re\tf\u{0}\u{1}\u{1f}\u{7f}é\u{2028}😀/";
    let mut report = HealthReport::evaluate([
        PolicyHealth {
            policy: tricky,
            breaker_state: Some(1),
            ..Default::default()
        },
        PolicyHealth {
            policy: "bulk",
            breaker_state: Some(3),
            budget_exhausted: true,
            bulkhead: Some(Usage {
                in_use: 8,
                limit: 8,
            }),
            adaptive: None,
        },
    ]);
    report.add_reason("custom", ReasonKind::Saturated, tricky);
    assert_eq!(report.status, HealthStatus::Unhealthy);

    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    let json = report.to_json();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{json}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(unhex(lines.next().unwrap()), "unhealthy");
    let parsed: Vec<Vec<String>> = lines.map(|l| l.split(' ').map(unhex).collect()).collect();
    let want: Vec<Vec<String>> = report
        .reasons
        .iter()
        .map(|r| {
            vec![
                r.policy.clone(),
                r.kind.as_str().to_owned(),
                r.detail.clone(),
            ]
        })
        .collect();
    assert_eq!(parsed, want);
    let kinds: Vec<_> = report.reasons.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            ReasonKind::BreakerOpen,
            ReasonKind::BreakerForcedOpen,
            ReasonKind::BudgetExhausted,
            ReasonKind::Saturated,
            ReasonKind::AllBreakersOpen,
            ReasonKind::Saturated,
        ]
    );
}
