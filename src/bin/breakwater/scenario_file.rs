//! Scenario files for `breakwater simulate --scenario FILE.toml`: an incident of your
//! own, in a few lines. Every key is optional; a missing one keeps the value of the
//! built-in checkout incident. Unknown keys and bad values are errors with their line.
//!
//! ```toml
//! [scenario]
//! name = "payment-brownout"
//! summary = "payment slows to 800 ms for 4 s"
//! duration = "10s"          # length of one run (at most 10m)
//! rate = 200                # requests per second
//! checkout_share = 0.3      # share of requests that call payment
//! client_timeout = "1s"     # clients give up after this
//! workers = 16              # worker threads of the gateway (default: --workers)
//! queue = 64                # requests that may wait for a worker (default 4 × workers)
//! healthy_work = ["2.5ms", "7.5ms"]                        # work per healthy request
//! payment = { latency = ["10ms", "30ms"], errors = 0.01 }  # payment when healthy
//!
//! [[phase]]                 # what goes wrong, and when (any number of phases)
//! from = "3s"
//! to = "7s"
//! payment = { latency = ["600ms", "1s"], errors = 0.1 }
//! traffic = 1.0             # traffic as a multiple of `rate`
//! ramp = false              # true: move linearly back to normal by `to`
//! ```

use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use crate::scenario::{builtin, Behaviour, Phase, Spec};

/// The most requests a scenario may offer in one run (memory stays small).
const MAX_REQUESTS: f64 = 2_000_000.0;

struct Reader<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn line(&self, item: &Item) -> Option<usize> {
        item.span().map(|s| {
            self.text[..s.start.min(self.text.len())]
                .matches('\n')
                .count()
                + 1
        })
    }

    fn error(&mut self, line: Option<usize>, field: &str, reason: impl std::fmt::Display) {
        let at = line.map_or(String::new(), |l| format!(":{l}"));
        // A huge value echoed back is shortened where it stands (see `shorten`).
        self.errors.push(format!(
            "{}{at}: `{}`: {}",
            self.file,
            crate::shorten::shorten_part(field),
            crate::shorten::shorten(&reason.to_string())
        ));
    }

    fn known(&mut self, table: &dyn TableLike, prefix: &str, keys: &[&str]) {
        for (key, item) in table.iter() {
            if !keys.contains(&key) {
                let line = self.line(item);
                self.error(
                    line,
                    &format!("{prefix}.{key}"),
                    format!("unknown field (known: {})", keys.join(", ")),
                );
            }
        }
    }

    fn value<'t>(
        &mut self,
        table: &'t dyn TableLike,
        key: &str,
    ) -> Option<(&'t Item, Option<usize>)> {
        let item = table.get(key)?;
        Some((item, self.line(item)))
    }

    fn number(
        &mut self,
        table: &dyn TableLike,
        field: &str,
        key: &str,
        range: (f64, f64),
    ) -> Option<f64> {
        let (item, line) = self.value(table, key)?;
        let n = match item.as_value() {
            Some(Value::Float(f)) => *f.value(),
            Some(Value::Integer(i)) => *i.value() as f64,
            _ => {
                self.error(line, field, "must be a number");
                return None;
            }
        };
        if !(range.0..=range.1).contains(&n) {
            self.error(
                line,
                field,
                format!("{n} is outside {}..={}", range.0, range.1),
            );
            return None;
        }
        Some(n)
    }

    fn seconds_of(
        &mut self,
        item: Option<&Value>,
        line: Option<usize>,
        field: &str,
        max: Duration,
    ) -> Option<f64> {
        let Some(text) = item.and_then(Value::as_str) else {
            self.error(line, field, "must be a duration string, like \"250ms\"");
            return None;
        };
        match breakwater::config::parse_duration(text) {
            Ok(d) if d <= max => Some(d.as_secs_f64()),
            Ok(_) => {
                self.error(
                    line,
                    field,
                    format!("must be at most {}", humantime::format_duration(max)),
                );
                None
            }
            Err(e) => {
                self.error(line, field, e);
                None
            }
        }
    }

    fn seconds(
        &mut self,
        table: &dyn TableLike,
        field: &str,
        key: &str,
        max: Duration,
    ) -> Option<f64> {
        let (item, line) = self.value(table, key)?;
        self.seconds_of(item.as_value(), line, field, max)
    }

    fn range(&mut self, table: &dyn TableLike, field: &str, key: &str) -> Option<(f64, f64)> {
        let (item, line) = self.value(table, key)?;
        let Some(array) = item
            .as_value()
            .and_then(Value::as_array)
            .filter(|a| a.len() == 2)
        else {
            self.error(
                line,
                field,
                "must be [lowest, highest], like [\"10ms\", \"30ms\"]",
            );
            return None;
        };
        let max = Duration::from_secs(600);
        let lo = self.seconds_of(array.get(0), line, field, max)?;
        let hi = self.seconds_of(array.get(1), line, field, max)?;
        if lo > hi {
            self.error(line, field, "the lowest is above the highest");
            return None;
        }
        Some((lo, hi))
    }

    fn behaviour(
        &mut self,
        table: &dyn TableLike,
        field: &str,
        base: Behaviour,
    ) -> Option<Behaviour> {
        let (item, line) = self.value(table, "payment")?;
        let Some(t) = item.as_table_like() else {
            self.error(
                line,
                field,
                "must be a table, like { latency = [\"10ms\", \"30ms\"], errors = 0.01 }",
            );
            return None;
        };
        self.known(t, field, &["latency", "errors"]);
        let mut b = base;
        if let Some(l) = self.range(t, &format!("{field}.latency"), "latency") {
            b.latency = l;
        }
        if let Some(e) = self.number(t, &format!("{field}.errors"), "errors", (0.0, 1.0)) {
            b.errors = e;
        }
        Some(b)
    }
}

/// Parses scenario file `text` (named `file` in errors); `workers` is the default worker
/// count. Errors are complete lines: `FILE:LINE: `field`: reason`.
pub(crate) fn parse(file: &str, text: &str, workers: u32) -> Result<Spec, Vec<String>> {
    let document = toml_edit::ImDocument::parse(text).map_err(|e| {
        let reason = crate::shorten::shorten(e.message());
        vec![format!("{file}: invalid TOML: {reason}")]
    })?;
    let mut r = Reader {
        file,
        text,
        errors: Vec::new(),
    };
    let mut spec = builtin("checkout", workers).expect("the checkout incident is built in");
    spec.name = std::path::Path::new(file)
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    spec.summary = "a scenario file".into();
    spec.phases.clear();
    let root = document.as_table();
    r.known(root, "", &["scenario", "phase"]);
    if let Some(item) = root.get("scenario") {
        match item.as_table_like() {
            None => {
                let line = r.line(item);
                r.error(line, "scenario", "must be a table");
            }
            Some(t) => {
                r.known(
                    t,
                    "scenario",
                    &[
                        "name",
                        "summary",
                        "duration",
                        "rate",
                        "checkout_share",
                        "client_timeout",
                        "workers",
                        "queue",
                        "healthy_work",
                        "payment",
                    ],
                );
                for (key, slot) in [("name", &mut spec.name), ("summary", &mut spec.summary)] {
                    if let Some((item, line)) = r.value(t, key) {
                        match item.as_str() {
                            Some(s) => *slot = s.to_string(),
                            None => r.error(line, &format!("scenario.{key}"), "must be a string"),
                        }
                    }
                }
                let ten_minutes = Duration::from_secs(600);
                if let Some(d) = r.seconds(t, "scenario.duration", "duration", ten_minutes) {
                    spec.seconds = d;
                }
                if let Some(v) = r.number(t, "scenario.rate", "rate", (0.001, 100_000.0)) {
                    spec.rate = v;
                }
                if let Some(v) =
                    r.number(t, "scenario.checkout_share", "checkout_share", (0.0, 1.0))
                {
                    spec.checkout_share = v;
                }
                if let Some(v) =
                    r.seconds(t, "scenario.client_timeout", "client_timeout", ten_minutes)
                {
                    if v > 0.0 {
                        spec.client_timeout = v;
                    } else {
                        let line = r.value(t, "client_timeout").and_then(|(_, line)| line);
                        r.error(line, "scenario.client_timeout", "must be greater than 0");
                    }
                }
                if let Some(v) = r.number(t, "scenario.workers", "workers", (1.0, 1024.0)) {
                    spec.workers = v as u32;
                    spec.queue = spec.workers as usize * 4;
                }
                if let Some(v) = r.number(t, "scenario.queue", "queue", (0.0, 1_000_000.0)) {
                    spec.queue = v as usize;
                }
                if let Some(v) = r.range(t, "scenario.healthy_work", "healthy_work") {
                    spec.healthy_work = v;
                }
                if let Some(b) = r.behaviour(t, "scenario.payment", spec.payment) {
                    spec.payment = b;
                }
                if spec.seconds <= 0.0 {
                    let line = r.value(t, "duration").and_then(|v| v.1);
                    r.error(line, "scenario.duration", "must be longer than zero");
                }
            }
        }
    }
    if let Some(item) = root.get("phase") {
        match item.as_array_of_tables() {
            None => {
                let line = r.line(item);
                r.error(line, "phase", "must be an array of tables: [[phase]]");
            }
            Some(phases) => {
                for (i, t) in phases.iter().enumerate() {
                    let field = format!("phase[{i}]");
                    r.known(t, &field, &["from", "to", "payment", "traffic", "ramp"]);
                    let max = Duration::from_secs(600);
                    let from = r
                        .seconds(t, &format!("{field}.from"), "from", max)
                        .unwrap_or(0.0);
                    let to = r
                        .seconds(t, &format!("{field}.to"), "to", max)
                        .unwrap_or(spec.seconds);
                    let line = t
                        .span()
                        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                    if from >= to {
                        r.error(line, &field, "`from` must be before `to`");
                    }
                    let payment = r
                        .behaviour(t, &format!("{field}.payment"), spec.payment)
                        .unwrap_or(spec.payment);
                    let traffic = r
                        .number(t, &format!("{field}.traffic"), "traffic", (0.0, 1000.0))
                        .unwrap_or(1.0);
                    let ramp = match r.value(t, "ramp") {
                        None => false,
                        Some((item, line)) => item.as_bool().unwrap_or_else(|| {
                            r.error(line, &format!("{field}.ramp"), "must be true or false");
                            false
                        }),
                    };
                    spec.phases.push(Phase {
                        from,
                        to,
                        payment,
                        traffic,
                        ramp,
                    });
                }
            }
        }
    }
    let peak = spec.phases.iter().map(|p| p.traffic).fold(1.0, f64::max);
    if spec.rate * peak * spec.seconds > MAX_REQUESTS {
        r.errors.push(format!(
            "{file}: rate × traffic × duration offers more than {MAX_REQUESTS} requests in a run"
        ));
    }
    if r.errors.is_empty() {
        Ok(spec)
    } else {
        Err(r.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_to_what_it_says() {
        let module = include_str!("scenario_file.rs");
        let example: String = module
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .map(|l| format!("{l}\n"))
            .collect();
        let spec = parse("brownout.toml", &example, 16).expect("the example parses");
        assert_eq!(spec.name, "payment-brownout");
        assert_eq!(spec.queue, 64);
        assert_eq!(spec.phases.len(), 1);
        assert_eq!(spec.phases[0].payment.latency, (0.6, 1.0));
        assert_eq!(spec.phases[0].payment.errors, 0.1);
    }

    /// A zero client timeout would time every request out at its arrival; it is refused
    /// with the line it is on (the simulator_scenario fuzz target's invariant that an
    /// accepted scenario has `client_timeout > 0`).
    #[test]
    fn a_zero_client_timeout_is_refused_with_its_line() {
        let text = "[scenario]\nrate = 10\n\nclient_timeout = \"0s\"\n";
        let errors = parse("s.toml", text, 16).expect_err("invalid");
        assert_eq!(
            errors,
            ["s.toml:4: `scenario.client_timeout`: must be greater than 0"]
        );
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let text = "[scenario]\nrate = -1\nworkrs = 3\n\n[[phase]]\nfrom = \"5s\"\nto = \"2s\"\n";
        let errors = parse("s.toml", text, 16).expect_err("invalid");
        assert_eq!(
            errors,
            [
                "s.toml:3: `scenario.workrs`: unknown field (known: name, summary, duration, rate, checkout_share, client_timeout, workers, queue, healthy_work, payment)",
                "s.toml:2: `scenario.rate`: -1 is outside 0.001..=100000",
                "s.toml:5: `phase[0]`: `from` must be before `to`",
            ]
        );
    }
}
