//! Human durations in the policy file: `"250ms"`, `"3s"`, `"1m 30s"`, `"1.5s"`.
//!
//! Parsing uses `humantime` (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, …); a
//! decimal number with one unit (`"1.5s"`, `"0.25ms"`) is accepted too, because it is how
//! people write durations in config files. A bare number is an error: a duration without
//! a unit is a classic source of outages (was it seconds or milliseconds?).

use std::time::Duration;

/// Parses a human duration; the error says what was wrong, for a field error.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write a number with a unit, like \"250ms\"".into());
    }
    if trimmed.starts_with('-') {
        return Err(format!("negative duration \"{text}\""));
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "duration \"{text}\" has no unit; write e.g. \"{trimmed}ms\" or \"{trimmed}s\""
        ));
    }
    if let Some(d) = parse_decimal(trimmed) {
        return d;
    }
    humantime::parse_duration(trimmed).map_err(|e| format!("invalid duration \"{text}\": {e}"))
}

/// `"1.5s"`-style: one decimal number and one unit.
fn parse_decimal(text: &str) -> Option<Result<Duration, String>> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    if !number.contains('.') {
        return None;
    }
    let nanos_per_unit: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    let value: f64 = match number.parse() {
        Ok(v) => v,
        Err(_) => return Some(Err(format!("invalid duration \"{text}\""))),
    };
    let nanos = value * nanos_per_unit;
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Some(Err(format!("duration \"{text}\" is too large")));
    }
    Some(Ok(Duration::from_nanos(nanos.round() as u64)))
}

/// Formats a duration the way the policy file writes it (`"250ms"`, `"1m 30s"`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25ms"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_forms_with_reasons() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("250").unwrap_err().contains("no unit"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("3 parsecs")
            .unwrap_err()
            .contains("invalid duration"));
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn formats_back_to_parseable_text() {
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::ZERO,
            Duration::from_nanos(1_500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
