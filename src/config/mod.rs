//! The policy file: one TOML file describing named policies, read the same way by every
//! language binding.
//!
//! - `file`: [`PolicyFile`], the parsed and validated file.
//! - `duration`: human durations (`"250ms"`).
//! - `error`: [`FieldError`] and [`PolicyFileError`], naming policy, field and line.
//! - `reader`: a span-aware reader of typed values.
//! - `fields`: how a section is described once (keys, docs, reader, writer).
//! - `schema`: every section and field, mapped onto the primitives.
//! - `explain`: the effective configuration, every default filled in, as TOML, and the
//!   generated reference of every key (`docs/policy-file.md`).
//!
//! Loading is all or nothing: a file with any error yields every error found and no
//! configuration. Unknown fields are errors, so a typo cannot silently become a default.
//!
//! ```
//! use breakwater::config::PolicyFile;
//!
//! let file = PolicyFile::parse(r#"
//!     [policies.payments]
//!     timeout = "3s"
//!     [policies.payments.circuit_breaker]
//!     failure_rate_threshold = 50
//!     window = { type = "time", duration = "10s", buckets = 10 }
//! "#).expect("valid");
//! assert_eq!(file.policies[0].name, "payments");
//!
//! let error = PolicyFile::parse(r#"
//!     [policies.payments.circuit_breaker]
//!     failure_rate_threshold = 150
//! "#).unwrap_err();
//! let first = error.first();
//! assert_eq!(first.policy.as_deref(), Some("payments"));
//! assert_eq!(first.field, "circuit_breaker.failure_rate_threshold");
//! assert_eq!(first.line, Some(3));
//! ```

mod duration;
mod error;
mod explain;
mod fields;
mod file;
mod reader;
mod schema;

pub use duration::{format_duration, parse_duration};
pub use error::{FieldError, PolicyFileError};
pub use explain::{explain, reference};
pub use file::PolicyFile;
