//! Health JSON is valid JSON whose strings decode to exactly what was written (checked
//! with Python's standard `json` module).
#![cfg(not(loom))]

mod common;

use breakwater::metrics::{HealthReport, HealthStatus, PolicyHealth, ReasonKind, Usage};

const SCRIPT: &str = r#"
import json, sys
doc = json.loads(sys.stdin.read())
h = lambda s: s.encode("utf-8").hex() or "-"
print(h(doc["status"]))
for r in doc["reasons"]:
    assert set(r) == {"policy", "kind", "detail"}, r
    print(h(r["policy"]), h(r["kind"]), h(r["detail"]))
"#;

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
            fleet_unavailable: None,
        },
    ]);
    report.add_reason("custom", ReasonKind::Saturated, tricky);
    assert_eq!(report.status, HealthStatus::Unhealthy);

    let json = report.to_json();
    let text = common::python::run(
        "python3",
        SCRIPT,
        &json,
        "Python's json rejected the health JSON",
    );
    let mut lines = text.lines();
    assert_eq!(common::python::unhex(lines.next().unwrap()), "unhealthy");
    let parsed: Vec<Vec<String>> = lines
        .map(|l| l.split(' ').map(common::python::unhex).collect())
        .collect();
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
