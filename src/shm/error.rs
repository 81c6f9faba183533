//! Why a host-wide segment could not be used: one named variant per cause, each naming
//! the segment and, for a mismatch, both values.

use std::fmt;

/// A host-wide segment that cannot be attached (or a process that cannot register in it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// The segment name is not 1–200 characters of `A-Z a-z 0-9 . _ -`.
    InvalidName {
        /// The name as given.
        segment: String,
    },
    /// A system call failed.
    Io {
        /// The segment.
        segment: String,
        /// What was being done (`shm_open`, `mmap`, …).
        action: &'static str,
        /// The system's reason.
        reason: String,
    },
    /// The segment belongs to another user.
    NotOwner {
        /// The segment.
        segment: String,
        /// Its owner's uid.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// The segment is readable or writable by group or others (it must be 0600).
    Permissions {
        /// The segment.
        segment: String,
        /// Its mode bits.
        mode: u32,
    },
    /// The segment is shorter than its layout says.
    Truncated {
        /// The segment.
        segment: String,
        /// Its size in bytes.
        size: u64,
        /// The size its layout needs.
        expected: u64,
    },
    /// The segment does not start with breakwater's magic number.
    WrongMagic {
        /// The segment.
        segment: String,
        /// The first word found.
        found: u64,
    },
    /// The segment was laid out by another version of the layout.
    VersionMismatch {
        /// The segment.
        segment: String,
        /// The version in the segment.
        found: u64,
        /// The version this library writes.
        expected: u64,
    },
    /// Another configuration uses this segment name.
    ConfigMismatch {
        /// The segment.
        segment: String,
        /// The configuration hash in the segment.
        found: u64,
        /// The hash of the configuration being loaded.
        expected: u64,
    },
    /// A size or offset in the header differs from the one this configuration needs.
    LayoutMismatch {
        /// The segment.
        segment: String,
        /// The header field.
        field: &'static str,
        /// The value in the segment.
        found: u64,
        /// The value this configuration needs.
        expected: u64,
    },
    /// A state word of the segment holds a value its stage never writes (see
    /// `validate.rs` for what is checked).
    CorruptState {
        /// The segment.
        segment: String,
        /// The word (`breaker.state`, `breaker.timing`, `breaker.probes`,
        /// `breaker.consecutive`, `breaker.window`).
        field: &'static str,
        /// The value found.
        found: u64,
    },
    /// Every process entry of the segment belongs to a live process.
    ProcessTableFull {
        /// The segment.
        segment: String,
        /// Its number of entries.
        entries: u64,
    },
    /// Host scope cannot be used here (a manual or custom clock, a loom build).
    Unsupported {
        /// The segment.
        segment: String,
        /// Why.
        reason: &'static str,
    },
}

impl HostError {
    /// A stable, machine-readable name of the variant (`config_mismatch`, …), the one the
    /// C ABI's message starts with.
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::InvalidName { .. } => "invalid_name",
            HostError::Io { .. } => "io",
            HostError::NotOwner { .. } => "not_owner",
            HostError::Permissions { .. } => "permissions",
            HostError::Truncated { .. } => "truncated",
            HostError::WrongMagic { .. } => "wrong_magic",
            HostError::VersionMismatch { .. } => "version_mismatch",
            HostError::ConfigMismatch { .. } => "config_mismatch",
            HostError::LayoutMismatch { .. } => "layout_mismatch",
            HostError::CorruptState { .. } => "corrupt_state",
            HostError::ProcessTableFull { .. } => "process_table_full",
            HostError::Unsupported { .. } => "unsupported",
        }
    }
}

/// Every variant's [`HostError::kind`].
const KINDS: [&str; 12] = [
    "invalid_name",
    "io",
    "not_owner",
    "permissions",
    "truncated",
    "wrong_magic",
    "version_mismatch",
    "config_mismatch",
    "layout_mismatch",
    "corrupt_state",
    "process_table_full",
    "unsupported",
];

/// Whether `text` is a [`HostError`]'s message (it starts with a kind and a colon): how
/// the C ABI tells a segment error in a policy file's error list.
pub fn is_host_error_text(text: &str) -> bool {
    text.split_once(':')
        .is_some_and(|(kind, _)| KINDS.contains(&kind))
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            HostError::InvalidName { segment } => write!(
                f,
                "{kind}: segment name \"{segment}\" must be 1-200 characters of A-Z a-z 0-9 . _ -"
            ),
            HostError::Io {
                segment,
                action,
                reason,
            } => write!(f, "{kind}: segment \"{segment}\": {action} failed: {reason}"),
            HostError::NotOwner {
                segment,
                owner,
                uid,
            } => write!(
                f,
                "{kind}: segment \"{segment}\" belongs to uid {owner}, not to this process's uid {uid}"
            ),
            HostError::Permissions { segment, mode } => write!(
                f,
                "{kind}: segment \"{segment}\" has mode {mode:o}; it must be 600 (owner only)"
            ),
            HostError::Truncated {
                segment,
                size,
                expected,
            } => write!(
                f,
                "{kind}: segment \"{segment}\" is {size} bytes, its layout needs {expected}"
            ),
            HostError::WrongMagic { segment, found } => write!(
                f,
                "{kind}: segment \"{segment}\" is not a breakwater segment (first word {found:#018x})"
            ),
            HostError::VersionMismatch {
                segment,
                found,
                expected,
            } => write!(
                f,
                "{kind}: segment \"{segment}\" has layout version {found}, this library uses {expected}"
            ),
            HostError::ConfigMismatch {
                segment,
                found,
                expected,
            } => write!(
                f,
                "{kind}: segment \"{segment}\" holds configuration {found:#018x}, this policy's is {expected:#018x} \
                 (another configuration uses this segment name: give this one its own `segment`)"
            ),
            HostError::LayoutMismatch {
                segment,
                field,
                found,
                expected,
            } => write!(
                f,
                "{kind}: segment \"{segment}\" header field {field} is {found}, expected {expected}"
            ),
            HostError::CorruptState {
                segment,
                field,
                found,
            } => write!(
                f,
                "{kind}: segment \"{segment}\" word {field} is {found:#018x}, a value no breakwater process writes \
                 (remove the segment to start afresh)"
            ),
            HostError::ProcessTableFull { segment, entries } => write!(
                f,
                "{kind}: segment \"{segment}\": all {entries} process entries belong to live processes"
            ),
            HostError::Unsupported { segment, reason } => {
                write!(f, "{kind}: segment \"{segment}\": {reason}")
            }
        }
    }
}

impl std::error::Error for HostError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_recognised_in_a_message() {
        let s = || "s".to_string();
        let all = [
            HostError::InvalidName { segment: s() },
            HostError::Io {
                segment: s(),
                action: "a",
                reason: "r".into(),
            },
            HostError::NotOwner {
                segment: s(),
                owner: 1,
                uid: 2,
            },
            HostError::Permissions {
                segment: s(),
                mode: 0o644,
            },
            HostError::Truncated {
                segment: s(),
                size: 1,
                expected: 2,
            },
            HostError::WrongMagic {
                segment: s(),
                found: 3,
            },
            HostError::VersionMismatch {
                segment: s(),
                found: 1,
                expected: 2,
            },
            HostError::ConfigMismatch {
                segment: s(),
                found: 1,
                expected: 2,
            },
            HostError::LayoutMismatch {
                segment: s(),
                field: "slots",
                found: 1,
                expected: 2,
            },
            HostError::CorruptState {
                segment: s(),
                field: "breaker.state",
                found: 7,
            },
            HostError::ProcessTableFull {
                segment: s(),
                entries: 1,
            },
            HostError::Unsupported {
                segment: s(),
                reason: "r",
            },
        ];
        assert_eq!(all.len(), KINDS.len());
        for e in &all {
            assert!(is_host_error_text(&e.to_string()), "{e}");
        }
        assert!(!is_host_error_text("must be at least 1"));
        let mismatch = all[7].to_string();
        assert!(mismatch.contains("0x0000000000000001") && mismatch.contains("0x0000000000000002"));
    }
}
