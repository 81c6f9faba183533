//! The names table: every OpenTelemetry instrument breakwater offers, its unit and its
//! attributes, once for every language.
//!
//! There is no OpenTelemetry convention for resilience policies yet (the proposal for
//! one is open), so the names follow Polly's shape: one meter, `breakwater`; instrument
//! names under `breakwater.`; a few attributes whose values are bounded — `policy`
//! takes the policy names of the loaded file (the application's own, finite list), the
//! others take the fixed value lists of [`ATTRIBUTES`]. Every instrument is
//! *observable*: its callback reads the policies' exact snapshots at collection time,
//! so recording costs nothing per call.
//!
//! The call duration is not an OpenTelemetry instrument: the API has no observable
//! histogram, and a synchronous one would cost a recording per call. The latency
//! histogram stays in the snapshot and in the Prometheus exposition
//! (`breakwater_call_duration_seconds`).
//!
//! `docs/telemetry.md` shows this table and `docs/telemetry-names.json` carries it for
//! the Go and Python tests; both are generated from here (`BW_BLESS=1 cargo test --lib
//! telemetry` rewrites them) and a test fails when they are stale.

use crate::breaker::BreakerState;
use crate::{Outcome, RejectReason};

/// The meter (instrumentation scope) name.
pub const METER_NAME: &str = "breakwater";

/// What an instrument is; all are observable (asynchronous).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrumentKind {
    /// A monotonic sum, observed as the running total.
    Counter,
    /// A sum that goes up and down, observed as its current value.
    UpDownCounter,
    /// A value observed as it is now.
    Gauge,
}

impl InstrumentKind {
    /// The name used in the table and the JSON: `counter`, `updowncounter`, `gauge`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InstrumentKind::Counter => "counter",
            InstrumentKind::UpDownCounter => "updowncounter",
            InstrumentKind::Gauge => "gauge",
        }
    }
}

/// One instrument of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instrument {
    /// The instrument name.
    pub name: &'static str,
    /// Its kind.
    pub kind: InstrumentKind,
    /// Its UCUM unit.
    pub unit: &'static str,
    /// Its description.
    pub description: &'static str,
    /// The attribute keys of each data point, in this order.
    pub attributes: &'static [&'static str],
    /// The snapshot field (Rust `MetricsSnapshot`, C `bw_policy_stats`) it reports.
    pub source: &'static str,
}

/// The attribute key naming the policy.
pub const ATTR_POLICY: &str = "policy";
/// The attribute key naming a call's outcome.
pub const ATTR_OUTCOME: &str = "outcome";
/// The attribute key naming a rejection's reason.
pub const ATTR_REASON: &str = "reason";
/// The attribute key naming a breaker state.
pub const ATTR_STATE: &str = "state";

/// `breakwater.permits`: calls let through by every stage.
pub const PERMITS: Instrument = Instrument {
    name: "breakwater.permits",
    kind: InstrumentKind::Counter,
    unit: "{call}",
    description: "Calls let through by every stage of the policy.",
    attributes: &[ATTR_POLICY],
    source: "permitted",
};

/// `breakwater.calls`: completed calls by outcome.
pub const CALLS: Instrument = Instrument {
    name: "breakwater.calls",
    kind: InstrumentKind::Counter,
    unit: "{call}",
    description: "Completed calls, by outcome.",
    attributes: &[ATTR_POLICY, ATTR_OUTCOME],
    source: "success, failure, timeout, ignored",
};

/// `breakwater.slow_calls`: completions slower than the breaker's slow-call duration.
pub const SLOW_CALLS: Instrument = Instrument {
    name: "breakwater.slow_calls",
    kind: InstrumentKind::Counter,
    unit: "{call}",
    description: "Completed calls slower than the circuit breaker's slow-call duration.",
    attributes: &[ATTR_POLICY],
    source: "slow",
};

/// `breakwater.active_calls`: permits out, not yet completed.
pub const ACTIVE_CALLS: Instrument = Instrument {
    name: "breakwater.active_calls",
    kind: InstrumentKind::UpDownCounter,
    unit: "{call}",
    description: "Calls permitted and not yet completed.",
    attributes: &[ATTR_POLICY],
    source: "permitted - completed",
};

/// `breakwater.rejections`: refused calls by reason.
pub const REJECTIONS: Instrument = Instrument {
    name: "breakwater.rejections",
    kind: InstrumentKind::Counter,
    unit: "{call}",
    description: "Calls refused, by reason (a retry the budget refused is one).",
    attributes: &[ATTR_POLICY, ATTR_REASON],
    source: "rejected[reason]",
};

/// `breakwater.retries`: retry attempts started.
pub const RETRIES: Instrument = Instrument {
    name: "breakwater.retries",
    kind: InstrumentKind::Counter,
    unit: "{retry}",
    description: "Retry attempts started.",
    attributes: &[ATTR_POLICY],
    source: "retries",
};

/// `breakwater.breaker.transitions`: circuit breaker transitions by state entered.
pub const BREAKER_TRANSITIONS: Instrument = Instrument {
    name: "breakwater.breaker.transitions",
    kind: InstrumentKind::Counter,
    unit: "{transition}",
    description: "Circuit breaker transitions, by the state entered.",
    attributes: &[ATTR_POLICY, ATTR_STATE],
    source: "transitions[state] (policies with a breaker only)",
};

/// `breakwater.breaker.state`: 1 for the breaker's current state, 0 for the others.
pub const BREAKER_STATE: Instrument = Instrument {
    name: "breakwater.breaker.state",
    kind: InstrumentKind::Gauge,
    unit: "1",
    description: "1 for the circuit breaker's current state, 0 for the other states.",
    attributes: &[ATTR_POLICY, ATTR_STATE],
    source: "breaker state (policies with a breaker only)",
};

/// Every instrument, in table order.
pub const INSTRUMENTS: [Instrument; 8] = [
    PERMITS,
    CALLS,
    SLOW_CALLS,
    ACTIVE_CALLS,
    REJECTIONS,
    RETRIES,
    BREAKER_TRANSITIONS,
    BREAKER_STATE,
];

/// The values an enumerated attribute takes.
pub const OUTCOME_VALUES: [&str; Outcome::ALL.len()] = Outcome::NAMES;

/// The values of `reason`.
pub const REASON_VALUES: [&str; RejectReason::ALL.len()] = RejectReason::NAMES;

/// The values of `state`.
pub const STATE_VALUES: [&str; BreakerState::ALL.len()] = BreakerState::NAMES;

/// Every attribute key with its values (`policy`: the loaded policies' names).
pub const ATTRIBUTES: [(&str, &[&str]); 4] = [
    (ATTR_POLICY, &[]),
    (ATTR_OUTCOME, &OUTCOME_VALUES),
    (ATTR_REASON, &REASON_VALUES),
    (ATTR_STATE, &STATE_VALUES),
];

/// The fields of an event's log record (`tracing`, `log/slog`, `logging`), besides the
/// message: the caller's trace context and what happened.
pub const LOG_FIELDS: [&str; 6] = ["trace_id", "span_id", "policy", "from", "to", "reason"];

/// The name of the span event a binding adds to the active span on a rejection; its
/// attributes are `policy`, `reason` and `retry_after` (seconds, when known).
pub const REJECTION_SPAN_EVENT: &str = "breakwater.rejection";

/// The table as Markdown (the generated part of `docs/telemetry.md`).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Instrument | Kind (observable) | Unit | Attributes | Snapshot field |\n\
         |---|---|---|---|---|\n",
    );
    for i in INSTRUMENTS {
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} | {} |\n",
            i.name,
            i.kind.as_str(),
            i.unit,
            i.attributes
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            i.source
        ));
    }
    out.push_str("\n| Attribute | Values |\n|---|---|\n");
    for (key, values) in ATTRIBUTES {
        let values = if values.is_empty() {
            "the names of the loaded policies".to_string()
        } else {
            values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("| `{key}` | {values} |\n"));
    }
    out
}

/// The table as JSON (`docs/telemetry-names.json`), which the Go and Python tests read.
pub fn json() -> String {
    fn list(items: &[&str]) -> String {
        let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", quoted.join(", "))
    }
    let mut out = format!("{{\n  \"meter\": \"{METER_NAME}\",\n  \"instruments\": [\n");
    for (n, i) in INSTRUMENTS.iter().enumerate() {
        out.push_str(&format!(
            "    {{\"name\": \"{}\", \"kind\": \"{}\", \"unit\": \"{}\", \"attributes\": {}}}{}\n",
            i.name,
            i.kind.as_str(),
            i.unit,
            list(i.attributes),
            if n + 1 < INSTRUMENTS.len() { "," } else { "" }
        ));
    }
    out.push_str("  ],\n  \"attributes\": {\n");
    for (n, (key, values)) in ATTRIBUTES.iter().enumerate() {
        out.push_str(&format!(
            "    \"{key}\": {}{}\n",
            list(values),
            if n + 1 < ATTRIBUTES.len() { "," } else { "" }
        ));
    }
    out.push_str(&format!(
        "  }},\n  \"log_fields\": {},\n  \"rejection_span_event\": \"{REJECTION_SPAN_EVENT}\"\n}}\n",
        list(&LOG_FIELDS)
    ));
    out
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const TABLE_START: &str = "<!-- names table: generated, see src/telemetry/names.rs -->\n";
    const TABLE_END: &str = "<!-- end of names table -->";

    fn fresh_doc(doc: &str) -> Option<String> {
        let start = doc.find(TABLE_START)? + TABLE_START.len();
        let end = doc[start..].find(TABLE_END)? + start;
        Some(format!(
            "{}{}{}",
            &doc[..start],
            markdown_table(),
            &doc[end..]
        ))
    }

    /// The committed doc table and JSON are what this file says.
    #[test]
    fn docs_telemetry_names_are_generated_from_the_table() {
        let root = env!("CARGO_MANIFEST_DIR");
        let doc_path = format!("{root}/docs/telemetry.md");
        let json_path = format!("{root}/docs/telemetry-names.json");
        let doc = std::fs::read_to_string(&doc_path).expect("docs/telemetry.md is committed");
        let fresh = fresh_doc(&doc).expect("docs/telemetry.md has the table markers");
        if std::env::var_os("BW_BLESS").is_some() {
            std::fs::write(&doc_path, &fresh).expect("write docs/telemetry.md");
            std::fs::write(&json_path, json()).expect("write docs/telemetry-names.json");
        }
        let stale = "stale: run `BW_BLESS=1 cargo test --lib telemetry` and commit it";
        assert!(
            doc == fresh || std::env::var_os("BW_BLESS").is_some(),
            "docs/telemetry.md is {stale}"
        );
        let committed = std::fs::read_to_string(&json_path).unwrap_or_default();
        assert!(committed == json(), "docs/telemetry-names.json is {stale}");
    }

    /// The console examples on the page are the files the telemetry suite runs.
    #[test]
    fn docs_telemetry_shows_the_tested_console_examples() {
        let read = |path: &str| {
            std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let doc = read("docs/telemetry.md");
        for path in [
            "tests/otel-it/examples/console.rs",
            "bindings/go/otel/example/main.go",
            "bindings/python/examples/otel_console.py",
        ] {
            assert!(
                doc.contains(&read(path)),
                "docs/telemetry.md does not show {path}"
            );
        }
    }

    #[test]
    fn names_are_unique_and_no_name_is_a_namespace_of_another() {
        for a in INSTRUMENTS {
            assert!(a.name.starts_with("breakwater."), "{}", a.name);
            for b in INSTRUMENTS {
                if a.name != b.name {
                    assert!(
                        !b.name.starts_with(&format!("{}.", a.name)),
                        "{} / {}",
                        a.name,
                        b.name
                    );
                }
            }
            for key in a.attributes {
                assert!(ATTRIBUTES.iter().any(|(k, _)| k == key), "{key} undeclared");
            }
        }
        assert_eq!(OUTCOME_VALUES, ["success", "failure", "timeout", "ignored"]);
        assert_eq!(REASON_VALUES.len(), RejectReason::ALL.len());
    }
}
