//! A structure-aware generator of mostly-valid policy files, so the fuzzer gets past the
//! TOML parser and into the validators. Sections and keys come from the schema's own
//! reference (`breakwater::config::reference()`), so a new option is fuzzed as soon as
//! it exists; the kind of each value is read off its default.

use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};

/// One key of the schema, with what its default says about its type.
struct Key {
    section: String,
    key: String,
    default: String,
}

fn schema() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let reference = breakwater::config::reference();
        let mut section = String::new();
        let mut keys = Vec::new();
        for line in reference.lines() {
            if let Some(title) = line.strip_prefix("## `") {
                section = title.trim_end_matches('`').replace("policies.NAME", "");
                section = section.trim_start_matches('.').to_string();
            } else if let Some(row) = line.strip_prefix("| `") {
                let cells: Vec<&str> = row.split(" | ").collect();
                let key = cells[0].trim_end_matches('`').to_string();
                let default = cells
                    .get(1)
                    .map(|d| d.trim_matches('`').replace("\\|", "|"))
                    .unwrap_or_default();
                keys.push(Key {
                    section: section.clone(),
                    key,
                    default,
                });
            }
        }
        keys
    })
}

const WORDS: &[&str] = &[
    "count",
    "time",
    "aimd",
    "gradient2",
    "none",
    "full",
    "equal",
    "decorrelated",
    "failure",
    "timeout",
    "circuit_open",
    "rate_limited",
    "bulkhead_full",
    "load_shed",
    "retry_budget_exhausted",
    "injected",
    "",
    "x",
];
const UNITS: &[&str] = &["ns", "us", "ms", "s", "m", "h", "d", "", "µs", "ms 5s"];
const SUB_KEYS: &[&str] = &[
    "type",
    "size",
    "duration",
    "buckets",
    "initial",
    "multiplier",
    "max",
    "jitter",
    "ratio",
    "min_per_second",
    "window",
    "increase",
    "backoff_ratio",
    "timeout",
    "smoothing",
    "tolerance",
    "long_window",
    "queue_size",
    "min",
];

fn integer(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0 => "0".into(),
        1 => "-1".into(),
        2 => u64::MAX.to_string(), // not even a TOML integer
        3 => i64::MAX.to_string(),
        4 => u32::MAX.to_string(),
        _ => u.int_in_range(1..=1000u32)?.to_string(),
    })
}

fn float(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=9)? {
        0 => "nan".into(),
        1 => "inf".into(),
        2 => "-0.5".into(),
        3 => "1e300".into(),
        _ => format!("{:.3}", f64::from(u.int_in_range(0..=12000u32)?) / 100.0),
    })
}

fn duration(u: &mut Unstructured<'_>) -> Result<String> {
    let amount = match u.int_in_range(0..=5)? {
        0 => 0,
        1 => u64::MAX,
        _ => u64::from(u.int_in_range(1..=5000u32)?),
    };
    Ok(format!("\"{amount}{}\"", u.choose(UNITS)?))
}

/// A value shaped like `default`, or now and then anything at all.
fn value_like(u: &mut Unstructured<'_>, default: &str, depth: u8) -> Result<String> {
    if u.ratio(1, 12)? {
        return any_value(u, depth);
    }
    let d = default.trim();
    if d.starts_with('{') && depth < 2 {
        return inline_table_like(u, d, depth);
    }
    if d.starts_with('[') {
        let n = u.int_in_range(0..=3)?;
        let items: Result<Vec<String>> = (0..n)
            .map(|_| Ok(format!("\"{}\"", u.choose(WORDS)?)))
            .collect();
        return Ok(format!("[{}]", items?.join(", ")));
    }
    if d.starts_with('"') {
        let inner = d.trim_matches('"');
        return if inner.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            duration(u)
        } else {
            Ok(format!("\"{}\"", u.choose(WORDS)?))
        };
    }
    if d == "true" || d == "false" {
        return Ok(u.arbitrary::<bool>()?.to_string());
    }
    if d.contains('.') {
        return float(u);
    }
    if d.chars().next().is_some_and(|c| c.is_ascii_digit()) || d == "required" {
        return integer(u);
    }
    any_value(u, depth)
}

fn inline_table_like(u: &mut Unstructured<'_>, default: &str, depth: u8) -> Result<String> {
    let body = default.trim_start_matches('{').trim_end_matches('}');
    let mut parts = Vec::new();
    for pair in body.split(", ") {
        let Some((key, value)) = pair.split_once(" = ") else {
            continue;
        };
        if u.ratio(1, 6)? {
            continue;
        }
        parts.push(format!(
            "{} = {}",
            key.trim(),
            value_like(u, value, depth + 1)?
        ));
    }
    if u.ratio(1, 4)? {
        let key = u.choose(SUB_KEYS)?;
        let value = if *key == "type" {
            format!("\"{}\"", u.choose(&["count", "time"])?)
        } else {
            any_value(u, depth + 1)?
        };
        parts.push(format!("{key} = {value}"));
    }
    Ok(format!("{{ {} }}", parts.join(", ")))
}

fn any_value(u: &mut Unstructured<'_>, depth: u8) -> Result<String> {
    match u.int_in_range(0..=5)? {
        0 => integer(u),
        1 => float(u),
        2 => duration(u),
        3 => Ok(u.arbitrary::<bool>()?.to_string()),
        4 if depth < 2 => inline_table_like(u, "{ a = 1 }", depth + 1),
        _ => Ok(format!("\"{}\"", u.choose(WORDS)?)),
    }
}

/// A policy file: a few policies, each with some of the schema's sections and keys.
pub fn policy_file(u: &mut Unstructured<'_>) -> Result<String> {
    let keys = schema();
    let mut out = String::new();
    let policies = u.int_in_range(1..=3)?;
    for i in 0..policies {
        let name = *u.choose(&["payments", "search", "a.b:c-d_e", "", "bad name"])?;
        let name = if u.ratio(1, 10)? {
            name.to_string()
        } else {
            format!("p{i}")
        };
        let mut sections: Vec<&str> = keys.iter().map(|k| k.section.as_str()).collect();
        sections.dedup();
        for section in sections {
            if !section.is_empty() && !u.ratio(1, 2)? {
                continue;
            }
            if section.is_empty() {
                let _ = writeln!(out, "[policies.\"{name}\"]");
            } else {
                let _ = writeln!(out, "[policies.\"{name}\".{section}]");
            }
            for key in keys.iter().filter(|k| k.section == section) {
                if u.ratio(1, 2)? {
                    let value = value_like(u, &key.default, 0)?;
                    let _ = writeln!(out, "{} = {value}", key.key);
                }
            }
            if u.ratio(1, 20)? {
                let _ = writeln!(out, "{} = 1", u.choose(SUB_KEYS)?);
            }
        }
    }
    Ok(out)
}
