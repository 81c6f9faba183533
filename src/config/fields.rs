//! How a policy-file section is described: once, as a table of fields, each with its
//! key, its documentation and how to read it into and write it out of the
//! configuration struct.
//!
//! The reader ([`read_section`]), `explain` ([`write_section`]) and the generated
//! reference (`docs/policy-file.md`, [`reference_section`]) all walk the same table, so
//! a new option is one [`Field`] in `schema.rs` plus its behaviour, nothing else.

use std::fmt::Write;
use std::time::Duration;

use toml_edit::TableLike;

use super::duration::format_duration;
use super::reader::{join, Reader};
use crate::ConfigError;

/// One key of a section.
pub(crate) struct Field<T: 'static> {
    /// The key in the policy file.
    pub(crate) key: &'static str,
    /// One sentence for the reference: what it does, its unit and range.
    pub(crate) doc: &'static str,
    /// How it is read and written.
    pub(crate) kind: Kind<T>,
}

/// The shape of a field's value, with the accessors that move it in and out of `T`.
pub(crate) enum Kind<T: 'static> {
    Bool(fn(&T) -> bool, fn(&mut T, bool)),
    U32(fn(&T) -> u32, fn(&mut T, u32)),
    U64(fn(&T) -> u64, fn(&mut T, u64)),
    F64(fn(&T) -> f64, fn(&mut T, f64)),
    Duration(fn(&T) -> Duration, fn(&mut T, Duration)),
    /// A rule that may be off; `off` says what leaving it out means.
    MaybeU32 {
        get: fn(&T) -> Option<u32>,
        set: fn(&mut T, u32),
        off: &'static str,
    },
    MaybeF64 {
        get: fn(&T) -> Option<f64>,
        set: fn(&mut T, f64),
        off: &'static str,
    },
    MaybeDuration {
        get: fn(&T) -> Option<Duration>,
        set: fn(&mut T, Duration),
        off: &'static str,
    },
    /// A string naming one of `choices`.
    Choice {
        choices: &'static [&'static str],
        get: fn(&T) -> &'static str,
        set: fn(&mut T, &'static str),
    },
    /// An array of strings, each one of `choices`.
    Choices {
        choices: &'static [&'static str],
        get: fn(&T) -> Vec<&'static str>,
        set: fn(&mut T, &[&'static str]),
    },
    /// A value of several shapes or a nested table: its own reader and writer.
    Custom {
        read: fn(&mut Reader<'_>, &dyn TableLike, &str, &mut T),
        write: fn(&T) -> Rendered,
    },
}

/// How `explain` writes one field.
pub(crate) enum Rendered {
    /// `key = value`.
    Value(String),
    /// `# key: why it is absent`.
    Off(String),
    /// Nothing (the field does not apply to this configuration).
    Skip,
}

/// A section: its fields and how a configuration is started, finished and checked.
pub(crate) struct Section<T: 'static> {
    /// One sentence for the reference.
    pub(crate) doc: &'static str,
    pub(crate) fields: &'static [Field<T>],
    /// The configuration before any field is read: the Rust API's defaults.
    pub(crate) start: fn() -> T,
    /// Keys that have no default, with the message for leaving one out.
    pub(crate) required: &'static [(&'static str, &'static str)],
    /// Derives what depends on other fields once all are read (a limiter's burst
    /// defaults to its rate); gets the section's table to see what was written.
    pub(crate) finish: fn(&mut T, &dyn TableLike),
    /// The configuration's own validation (the same as the Rust constructors').
    pub(crate) validate: fn(&T) -> Result<(), ConfigError>,
}

/// Leaves a configuration as its fields made it.
pub(crate) fn no_finish<T>(_: &mut T, _: &dyn TableLike) {}

/// Reads `section`'s table `t` (at path `prefix`) into a validated configuration, or
/// records every error found and returns `None`. The one validation path of the file.
pub(crate) fn read_section<T>(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    prefix: &str,
    section: &Section<T>,
) -> Option<T> {
    let before = r.errors.len();
    let mut config = (section.start)();
    read_fields(r, t, prefix, section.fields, &mut config);
    // Only when nothing else is wrong: after `rte = 5` the typo is the error to show.
    if r.errors.len() == before {
        for (key, message) in section.required {
            if !t.contains_key(key) {
                r.error(join(prefix, key), None, *message);
            }
        }
    }
    (section.finish)(&mut config, t);
    if r.errors.len() > before {
        return None;
    }
    match (section.validate)(&config) {
        Ok(()) => Some(config),
        Err(e) => {
            r.config_error(t, prefix, e, None);
            None
        }
    }
}

/// Reads `fields` of table `t` into `config`, reporting unknown keys.
pub(crate) fn read_fields<T>(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    prefix: &str,
    fields: &[Field<T>],
    config: &mut T,
) {
    let keys: Vec<&str> = fields.iter().map(|f| f.key).collect();
    r.only_keys(t, prefix, &keys);
    for field in fields {
        read_field(r, t, prefix, field, config);
    }
}

fn read_field<T>(r: &mut Reader<'_>, t: &dyn TableLike, p: &str, field: &Field<T>, c: &mut T) {
    let key = field.key;
    match &field.kind {
        Kind::Bool(_, set) => r.bool(t, p, key).map(|v| set(c, v)),
        Kind::U32(_, set) => r.u32(t, p, key).map(|v| set(c, v)),
        Kind::U64(_, set) => r.u64(t, p, key).map(|v| set(c, v)),
        Kind::F64(_, set) => r.f64(t, p, key).map(|v| set(c, v)),
        Kind::Duration(_, set) => r.duration(t, p, key).map(|v| set(c, v)),
        Kind::MaybeU32 { set, .. } => r.u32(t, p, key).map(|v| set(c, v)),
        Kind::MaybeF64 { set, .. } => r.f64(t, p, key).map(|v| set(c, v)),
        Kind::MaybeDuration { set, .. } => r.duration(t, p, key).map(|v| set(c, v)),
        Kind::Choice { choices, set, .. } => r.choice(t, p, key, choices).map(|v| set(c, v)),
        Kind::Choices { choices, set, .. } => r.choices(t, p, key, choices).map(|v| set(c, &v)),
        Kind::Custom { read, .. } => {
            read(r, t, p, c);
            Some(())
        }
    };
}

/// A duration as the file writes it.
pub(crate) fn duration_value(d: Duration) -> String {
    format!("\"{}\"", format_duration(d))
}

/// A float as the file writes it (always with a decimal point, so it reads back as one).
pub(crate) fn float_value(v: f64) -> String {
    format!("{v:?}")
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// How `explain` writes one field of `c`.
pub(crate) fn render<T>(field: &Field<T>, c: &T) -> Rendered {
    match &field.kind {
        Kind::Bool(get, _) => Rendered::Value(get(c).to_string()),
        Kind::U32(get, _) => Rendered::Value(get(c).to_string()),
        Kind::U64(get, _) => Rendered::Value(get(c).to_string()),
        Kind::F64(get, _) => Rendered::Value(float_value(get(c))),
        Kind::Duration(get, _) => Rendered::Value(duration_value(get(c))),
        Kind::MaybeU32 { get, off, .. } => match get(c) {
            Some(v) => Rendered::Value(v.to_string()),
            None => Rendered::Off(off.to_string()),
        },
        Kind::MaybeF64 { get, off, .. } => match get(c) {
            Some(v) => Rendered::Value(float_value(v)),
            None => Rendered::Off(off.to_string()),
        },
        Kind::MaybeDuration { get, off, .. } => match get(c) {
            Some(v) => Rendered::Value(duration_value(v)),
            None => Rendered::Off(off.to_string()),
        },
        Kind::Choice { get, .. } => Rendered::Value(format!("\"{}\"", get(c))),
        Kind::Choices { get, .. } => Rendered::Value(quoted_list(&get(c))),
        Kind::Custom { write, .. } => write(c),
    }
}

/// Writes every field of `c` as lines of a TOML table body.
pub(crate) fn write_fields<T>(out: &mut String, fields: &[Field<T>], c: &T) {
    for field in fields {
        match render(field, c) {
            Rendered::Value(v) => {
                let _ = writeln!(out, "{} = {v}", field.key);
            }
            Rendered::Off(why) => {
                let _ = writeln!(out, "# {}: {why}", field.key);
            }
            Rendered::Skip => {}
        }
    }
}

/// Writes `c` as a TOML inline table (`{ a = 1, b = "2s" }`); fields that are off are
/// left out, which reads back as the same configuration.
pub(crate) fn inline_table<T>(fields: &[Field<T>], c: &T) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|f| match render(f, c) {
            Rendered::Value(v) => Some(format!("{} = {v}", f.key)),
            Rendered::Off(_) | Rendered::Skip => None,
        })
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

/// Reads the inline or standard table at `key` of `t` into `target` with `fields`;
/// returns whether the table was there.
pub(crate) fn read_nested<S>(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    prefix: &str,
    key: &str,
    fields: &[Field<S>],
    target: &mut S,
) -> bool {
    match r.section(t, prefix, key) {
        Some(nested) => {
            read_fields(r, nested, &join(prefix, key), fields, target);
            true
        }
        None => false,
    }
}

/// The reference rows of a section: `| key | default | meaning |`, one per field.
pub(crate) fn reference_section<T>(out: &mut String, title: &str, section: &Section<T>) {
    let _ = writeln!(out, "## `{title}`\n\n{}\n", section.doc);
    let _ = writeln!(out, "| key | default | meaning |\n|---|---|---|");
    let start = (section.start)();
    for field in section.fields {
        let default = if section.required.iter().any(|(k, _)| *k == field.key) {
            "required".to_string()
        } else {
            match render(field, &start) {
                Rendered::Value(v) => format!("`{}`", v.replace('|', "\\|")),
                Rendered::Off(why) => why,
                Rendered::Skip => "—".to_string(),
            }
        };
        let _ = writeln!(out, "| `{}` | {default} | {} |", field.key, field.doc);
    }
    out.push('\n');
}
