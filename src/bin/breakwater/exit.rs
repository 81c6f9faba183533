//! The exit codes of `breakwater` (also listed in every `--help`).

/// Everything went well.
pub(crate) const OK: i32 = 0;
/// Errors in a policy file, an unknown policy name, or a run that failed.
pub(crate) const ERRORS: i32 = 1;
/// A usage error (clap exits with it for malformed command lines).
pub(crate) const USAGE: i32 = 2;
/// A file could not be read or written.
pub(crate) const IO: i32 = 3;
