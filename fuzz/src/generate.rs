//! A structure-aware generator of mostly-valid policy files, so the fuzzer gets past the
//! TOML parser and into the validators and the `explain` round trip. Sections and keys
//! come from the schema's own reference (`breakwater::config::reference()`), so a new
//! option is fuzzed as soon as it exists; the kind of each value is read off its default
//! and its documented range, and a short table names the kinds a default cannot show
//! (`none`, `off`, `required`).
//!
//! Validity is the point: each value is drawn from the key's valid range, policy names
//! are unique, and the keys that depend on each other (`scope` and `segment`, a `fleet`
//! rate limiter and its `fleet` section) are written together. At most one value per
//! file is deliberately wrong (a wrong type, an edge of a range, an unknown key, a bad
//! name), chosen for about one file in six, so the validators' refusals are searched
//! too without drowning the files that load. Every decision reads `false` (the common,
//! valid case) once the input is exhausted, so short inputs give short, valid files.

use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};

/// What a key's value looks like.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// A duration string from a microsecond to ten minutes (or `0s` when zero is allowed).
    Duration {
        zero: bool,
    },
    /// A duration string within these milliseconds (a range other keys depend on).
    Span(u64, u64),
    /// An integer in the range.
    Int(u64, u64),
    /// A float in the range.
    Float(f64, f64),
    Bool,
    /// One of these strings.
    Word(Vec<String>),
    /// A list of these strings.
    Words(&'static [&'static str]),
    /// An inline table of these keys.
    Table(&'static [(&'static str, Sub)]),
    /// A free string (fleet settings: addresses, names of variables and files).
    Text(&'static [&'static str]),
}

/// The value kinds of an inline table's keys.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sub {
    Duration,
    Span(u64, u64),
    Int(u64, u64),
    Float(f64, f64),
    Word(&'static [&'static str]),
}

/// One key of the schema.
struct Key {
    section: String,
    key: String,
    kind: Kind,
}

/// The kinds a default cannot show, by `section.key` (or `key` alone).
fn named_kind(section: &str, key: &str) -> Option<Kind> {
    Some(match (section, key) {
        ("", "timeout") | ("retry", "max_elapsed") | ("chaos", "latency") => {
            Kind::Duration { zero: false }
        }
        ("circuit_breaker", "slow_call_rate_threshold") => Kind::Float(1.0, 100.0),
        ("circuit_breaker", "consecutive_failures") => Kind::Int(1, 50),
        ("circuit_breaker", "window") => {
            // Either shape; `policy` picks one (see `window`).
            Kind::Table(&[])
        }
        ("circuit_breaker", "half_open_permits") => Kind::Int(1, 20),
        // At most the smallest count window's size (`window`).
        ("circuit_breaker", "minimum_calls") => Kind::Int(1, 20),
        ("circuit_breaker", "open_duration") => Kind::Span(1, 30_000),
        ("circuit_breaker", "max_open_duration") => Kind::Span(30_000, 600_000),
        ("throttle", "buckets") => Kind::Int(1, 64),
        // `sheddable_at <= default_at`, whichever of them is left at its default (0.8, 0.9).
        ("adaptive", "sheddable_at") => Kind::Float(0.05, 0.8),
        ("adaptive", "default_at") => Kind::Float(0.8, 1.0),
        ("fleet", "lease_ttl") => Kind::Span(3, 10_000),
        ("rate_limiter", "scope") => Kind::Word(vec!["local".into()]),
        ("rate_limiter" | "per_key", "rate") => Kind::Int(1, 1000),
        ("rate_limiter" | "per_key", "burst") => Kind::Int(1, 1000),
        ("bulkhead", "max_concurrent") | ("fleet", "max_concurrent") => Kind::Int(1, 1000),
        ("per_key", "max_concurrent") => Kind::Int(1, 65535),
        ("per_key", "max_keys") => Kind::Int(1, 4096),
        ("per_key", "top_keys") => Kind::Int(0, 64),
        ("adaptive", "initial_limit") => Kind::Int(20, 20),
        ("adaptive", "min_limit") => Kind::Int(1, 20),
        ("adaptive", "max_limit") => Kind::Int(20, 1000),
        ("adaptive", "aimd") => Kind::Table(&[
            ("increase", Sub::Int(1, 10)),
            ("backoff_ratio", Sub::Float(0.5, 0.99)),
            ("timeout", Sub::Duration),
        ]),
        ("adaptive", "gradient") => Kind::Table(&[
            ("smoothing", Sub::Float(0.01, 1.0)),
            ("tolerance", Sub::Float(1.0, 4.0)),
            ("long_window", Sub::Int(1, 1000)),
            ("queue_size", Sub::Int(0, 100)),
        ]),
        ("retry", "retry_on") => Kind::Words(breakwater::policy::RetryOn::NAMES),
        ("retry", "backoff") => Kind::Table(&[
            ("initial", Sub::Span(1, 999)),
            ("multiplier", Sub::Float(1.0, 4.0)),
            ("max", Sub::Span(1000, 60_000)),
            (
                "jitter",
                Sub::Word(&["none", "full", "equal", "decorrelated"]),
            ),
        ]),
        ("retry", "budget") => Kind::Table(&[
            ("ratio", Sub::Float(0.01, 1.0)),
            ("min_per_second", Sub::Int(0, 100)),
            ("window", Sub::Span(1000, 60_000)),
        ]),
        ("fleet", "address") => Kind::Text(&["127.0.0.1:6379", "redis://localhost:6379/0"]),
        ("fleet", "username") => Kind::Text(&["app"]),
        ("fleet", "password_env") => Kind::Text(&["REDIS_PASSWORD"]),
        ("fleet", "namespace") => Kind::Text(&["breakwater", "ns"]),
        ("fleet", "max_batch") => Kind::Int(1, 1000),
        _ => return None,
    })
}

/// Keys generated files leave out: `scope` and `segment` (written together by
/// `policy`), and the fleet's files (read when the policy is built; TLS needs
/// `rediss://`).
fn omitted(section: &str, key: &str) -> bool {
    matches!(
        (section, key),
        ("", "scope" | "segment")
            | (
                "fleet",
                "password_file" | "ca_file" | "cert_file" | "key_file"
            )
    )
}

/// The kind of a key that `named_kind` does not name, read off its default and its
/// documented range; `None` for a key whose kind cannot be told (it is left out).
fn inferred_kind(default: &str, meaning: &str) -> Option<Kind> {
    let d = default.trim();
    if let Some(inner) = d.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
        if inner.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(Kind::Duration {
                zero: inner.starts_with('0'),
            });
        }
        // The quoted words of the meaning are the choices (`"aimd"` or `"gradient2"`).
        let mut words: Vec<String> = meaning
            .split("`\"")
            .skip(1)
            .filter_map(|w| w.split_once("\"`").map(|(w, _)| w.to_string()))
            .collect();
        if words.is_empty() {
            words.push(inner.to_string());
        }
        return Some(Kind::Word(words));
    }
    if d == "true" || d == "false" {
        return Some(Kind::Bool);
    }
    if d.parse::<u64>().is_ok() {
        return Some(if meaning.contains("<= 64") {
            Kind::Int(0, 64)
        } else {
            Kind::Int(1, 100)
        });
    }
    if d.parse::<f64>().is_ok() {
        return Some(if meaning.contains("(0, 100]") {
            Kind::Float(1.0, 100.0)
        } else if meaning.contains("0..=1") || meaning.contains("(0, 1]") {
            Kind::Float(0.05, 1.0)
        } else {
            Kind::Float(1.0, 4.0)
        });
    }
    None
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
                let meaning = cells.get(2).copied().unwrap_or_default();
                if omitted(&section, &key) {
                    continue;
                }
                let kind = named_kind(&section, &key).or_else(|| inferred_kind(&default, meaning));
                if let Some(kind) = kind {
                    keys.push(Key {
                        section: section.clone(),
                        key,
                        kind,
                    });
                }
            }
        }
        keys
    })
}

/// True with probability `n / d`; `false` once the input is exhausted.
fn chance(u: &mut Unstructured<'_>, n: u8, d: u8) -> Result<bool> {
    Ok(u.int_in_range(0..=d - 1)? >= d - n)
}

/// The one deliberately wrong value of a file: which value it replaces (counting the
/// values written so far), if any.
struct Plan {
    wrong_at: Option<u32>,
    written: u32,
}

impl Plan {
    /// Whether the value about to be written is the wrong one.
    fn wrong_now(&mut self) -> bool {
        let now = self.wrong_at == Some(self.written);
        self.written += 1;
        now
    }
}

fn int_in(u: &mut Unstructured<'_>, lo: u64, hi: u64) -> Result<u64> {
    // Small values are the interesting ones; a draw from the whole range is rarer.
    if hi - lo > 16 && chance(u, 1, 4)? {
        return u.int_in_range(lo..=hi);
    }
    u.int_in_range(lo..=hi.min(lo + 16))
}

fn float_in(u: &mut Unstructured<'_>, lo: f64, hi: f64) -> Result<String> {
    let steps = u.int_in_range(0..=1000u32)?;
    let x = lo + (hi - lo) * f64::from(steps) / 1000.0;
    Ok(format!("{x:?}"))
}

fn duration(u: &mut Unstructured<'_>, zero: bool) -> Result<String> {
    let (amount, unit) = match u.int_in_range(0..=5u8)? {
        0 if zero => (0, "s"),
        0 | 1 => (u.int_in_range(1..=999u32)?, "ms"),
        2 => (u.int_in_range(1..=59u32)?, "s"),
        3 => (u.int_in_range(1..=10u32)?, "m"),
        4 => (u.int_in_range(1..=900u32)?, "us"),
        _ => (u.int_in_range(1..=30u32)?, "s"),
    };
    Ok(format!("\"{amount}{unit}\""))
}

fn span(u: &mut Unstructured<'_>, lo: u64, hi: u64) -> Result<String> {
    let ms = int_in(u, lo, hi)?;
    Ok(if ms % 1000 == 0 {
        format!("\"{}s\"", ms / 1000)
    } else {
        format!("\"{ms}ms\"")
    })
}

fn sub_value(u: &mut Unstructured<'_>, sub: Sub) -> Result<String> {
    Ok(match sub {
        Sub::Duration => duration(u, false)?,
        Sub::Span(lo, hi) => span(u, lo, hi)?,
        Sub::Int(lo, hi) => int_in(u, lo, hi)?.to_string(),
        Sub::Float(lo, hi) => float_in(u, lo, hi)?,
        Sub::Word(words) => format!("\"{}\"", u.choose(words)?),
    })
}

/// A valid value of `kind`.
fn value(u: &mut Unstructured<'_>, kind: &Kind) -> Result<String> {
    Ok(match kind {
        Kind::Duration { zero } => duration(u, *zero)?,
        Kind::Span(lo, hi) => span(u, *lo, *hi)?,
        Kind::Int(lo, hi) => int_in(u, *lo, *hi)?.to_string(),
        Kind::Float(lo, hi) => float_in(u, *lo, *hi)?,
        Kind::Bool => u.arbitrary::<bool>()?.to_string(),
        Kind::Word(words) => format!("\"{}\"", u.choose(words)?),
        Kind::Text(texts) => format!("\"{}\"", u.choose(texts)?),
        Kind::Words(words) => {
            let mut chosen: Vec<&str> = Vec::new();
            for w in *words {
                if chance(u, 1, 3)? {
                    chosen.push(w);
                }
            }
            let items: Vec<String> = chosen.iter().map(|w| format!("\"{w}\"")).collect();
            format!("[{}]", items.join(", "))
        }
        Kind::Table(subs) => {
            let mut parts = Vec::new();
            for (key, sub) in *subs {
                if chance(u, 2, 3)? {
                    parts.push(format!("{key} = {}", sub_value(u, *sub)?));
                }
            }
            format!("{{ {} }}", parts.join(", "))
        }
    })
}

/// A wrong value: the wrong type, or an edge just outside (or on) a range.
fn wrong_value(u: &mut Unstructured<'_>, kind: &Kind) -> Result<String> {
    const ANY: &[&str] = &[
        "0",
        "-1",
        "18446744073709551615",
        "9223372036854775807",
        "4294967296",
        "nan",
        "inf",
        "-0.5",
        "1e300",
        "\"\"",
        "\"0s\"",
        "\"18446744073709551615s\"",
        "\"5\"",
        "\"1ms 5s\"",
        "\"µs\"",
        "true",
        "[]",
        "{ }",
        "{ type = \"time\" }",
        "{ a = 1 }",
    ];
    Ok(match (kind, u.arbitrary::<bool>()?) {
        (Kind::Int(lo, hi), true) => {
            let edge = [lo.wrapping_sub(1), hi.saturating_add(1), *lo, *hi, u64::MAX];
            u.choose(&edge)?.to_string()
        }
        (Kind::Float(lo, hi), true) => {
            let edge = [lo - 0.001, hi + 0.001, *lo, *hi, 0.0];
            format!("{:?}", u.choose(&edge)?)
        }
        _ => u.choose(ANY)?.to_string(),
    })
}

/// A segment name for `scope = "host"`.
fn segment(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(u.choose(&["app", "a.b_c-d", "svc-1"])?.to_string())
}

/// The circuit breaker's window: count or time.
fn window(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(if u.arbitrary::<bool>()? {
        format!(
            "{{ type = \"time\", duration = \"{}s\", buckets = {} }}",
            u.int_in_range(1..=60u32)?,
            u.int_in_range(1..=16u32)?
        )
    } else {
        // At least `minimum_calls`' largest value, at most the largest window.
        format!("{{ type = \"count\", size = {} }}", int_in(u, 20, 500)?)
    })
}

/// The sections of the schema, in the reference's order (`""` is the policy's own).
fn sections() -> &'static [String] {
    static SECTIONS: OnceLock<Vec<String>> = OnceLock::new();
    SECTIONS.get_or_init(|| {
        let mut sections: Vec<String> = schema().iter().map(|k| k.section.clone()).collect();
        sections.dedup();
        if !sections.contains(&String::new()) {
            sections.insert(0, String::new());
        }
        sections
    })
}

fn policy(u: &mut Unstructured<'_>, out: &mut String, name: &str, plan: &mut Plan) -> Result<()> {
    let keys = schema();
    // A fleet section only where the library has the feature; a `fleet` limiter only
    // with its section.
    let fleet = cfg!(feature = "fleet") && chance(u, 1, 8)?;
    for section in sections() {
        let wanted = match section.as_str() {
            "" => true,
            "fleet" => fleet,
            _ => chance(u, 1, 3)?,
        };
        if !wanted {
            continue;
        }
        if section.is_empty() {
            let _ = writeln!(out, "[policies.\"{name}\"]");
        } else {
            let _ = writeln!(out, "[policies.\"{name}\".{section}]");
        }
        if section.is_empty() && chance(u, 1, 6)? {
            let _ = writeln!(out, "scope = \"host\"");
            if chance(u, 1, 2)? {
                let _ = writeln!(out, "segment = \"{}\"", segment(u)?);
            }
        }
        if section == "fleet" {
            let _ = writeln!(out, "address = \"127.0.0.1:6379\"");
        }
        // The tuning table of the algorithm chosen, not the other one's.
        let mut algorithm = "";
        if section == "adaptive" {
            algorithm = *u.choose(&["aimd", "gradient2"])?;
            let _ = writeln!(out, "algorithm = \"{algorithm}\"");
        }
        for key in keys.iter().filter(|k| &k.section == section) {
            let required = matches!(
                (section.as_str(), key.key.as_str()),
                ("rate_limiter" | "per_key", "rate") | ("bulkhead", "max_concurrent")
            );
            let tuning = match key.key.as_str() {
                "aimd" => Some("aimd"),
                "gradient" => Some("gradient2"),
                _ => None,
            };
            let written_first = (section == "fleet" && key.key == "address")
                || (section == "adaptive" && key.key == "algorithm");
            if written_first || (section == "adaptive" && tuning.is_some_and(|t| t != algorithm)) {
                continue;
            }
            // Injected latency needs its duration; writing it always keeps that simple.
            let required = required || (section == "chaos" && key.key == "latency");
            if !required && !chance(u, 1, 3)? {
                continue;
            }
            let text = if plan.wrong_now() {
                wrong_value(u, &key.kind)?
            } else if (section.as_str(), key.key.as_str()) == ("circuit_breaker", "window") {
                window(u)?
            } else if (section.as_str(), key.key.as_str()) == ("rate_limiter", "scope") {
                let words = if fleet {
                    &["local", "fleet"][..]
                } else {
                    &["local"]
                };
                format!("\"{}\"", u.choose(words)?)
            } else {
                value(u, &key.kind)?
            };
            let _ = writeln!(out, "{} = {text}", key.key);
        }
    }
    Ok(())
}

/// A policy file: one to three policies with unique names, each with some of the
/// schema's sections and keys, mostly valid (module docs).
pub fn policy_file(u: &mut Unstructured<'_>) -> Result<String> {
    let mut names = vec!["payments", "search", "a.b:c-d_e", "p0", "p1", "p2"];
    let mut plan = Plan {
        wrong_at: None,
        written: 0,
    };
    if chance(u, 1, 6)? {
        plan.wrong_at = Some(u.int_in_range(0..=12)?);
    }
    let mut out = String::new();
    let policies = 1 + usize::from(chance(u, 1, 3)?) + usize::from(chance(u, 1, 4)?);
    for _ in 0..policies {
        let mut name = names.remove(u.choose_index(names.len())?).to_string();
        if plan.wrong_now() {
            // A name the reader refuses, or the same policy twice.
            name = u
                .choose(&["", "bad name", "x\u{7f}", "payments"])?
                .to_string();
            if name == "payments" {
                let _ = writeln!(out, "[policies.payments]");
            }
        }
        policy(u, &mut out, &name, &mut plan)?;
    }
    if plan.wrong_now() {
        let _ = writeln!(out, "[policies.p0.unknown]\nx = 1");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakwater::config::PolicyFile;

    /// xorshift64*, so the inputs are the same on every run.
    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    /// The point of the generator: most of what it writes loads, so the fuzzer spends
    /// its time in the validators and `explain`, not in refusals of the first key.
    #[test]
    fn most_generated_files_are_valid() {
        let (mut valid, total) = (0, 400);
        let mut first_errors = Vec::new();
        for seed in 0..total {
            let data = bytes(seed, 1024);
            let text = policy_file(&mut Unstructured::new(&data)).expect("1 KB is enough");
            match PolicyFile::parse(&text) {
                Ok(_) => valid += 1,
                Err(e) if first_errors.len() < 8 => first_errors.push(format!("{e}\n{text}")),
                Err(_) => {}
            }
        }
        assert!(
            valid * 10 >= total * 6,
            "{valid} of {total} valid; some errors:\n{}",
            first_errors.join("\n---\n")
        );
    }

    /// An exhausted input still writes a valid file (every decision reads `false`).
    #[test]
    fn an_empty_input_gives_a_valid_file() {
        let text = policy_file(&mut Unstructured::new(&[])).unwrap();
        PolicyFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }

    #[test]
    fn every_schema_section_is_generated() {
        let sections = sections();
        for expected in [
            "circuit_breaker",
            "rate_limiter",
            "retry",
            "per_key",
            "chaos",
        ] {
            assert!(sections.iter().any(|s| s == expected), "{sections:?}");
        }
        assert!(schema().len() > 40, "{} keys", schema().len());
    }
}
