//! Host scope: one breaker, limiter and bulkhead shared by every process on a machine.
//!
//! - `scope.rs`: [`HostScope`] (the configuration), the configuration hash, the layout a
//!   configuration needs, attaching its segment.
//! - `segment.rs`: the shared-memory object, its header and its checks ([`Segment`],
//!   [`check_header`], [`remove_segment`]).
//! - `lease.rs`: process entries, bulkhead slots and probe leases, and the reclaim of
//!   dead processes' permits ([`Leases`]).
//! - `process.rs`: owner words (pid and start time) and liveness ([`owner_word`],
//!   [`is_alive`], [`current_owner`]).
//! - `place.rs`: where a state block lives (heap or segment).
//! - `validate.rs`: the breaker words of a segment being attached, checked
//!   ([`check_breaker_words`]).
//! - `error.rs`: [`HostError`].
//!
//! What is shared and what is not, how fast a dead process's permits come back, and what
//! a reload does are in the README's "Pre-fork servers" section and in
//! `docs/design.md` §7.

mod error;
mod lease;
mod place;
mod process;
mod scope;
mod segment;
mod validate;

pub use error::{is_host_error_text, HostError};
pub use lease::{Leases, MAX_ENTRIES};
pub(crate) use place::Place;
pub use process::{current_owner, is_alive, owner_word};
pub(crate) use scope::attach;
pub use scope::{config_hash, layout_for, HostScope};
pub use segment::{
    check_header, check_name, remove_segment, Layout, Segment, Unregistered, ENTRIES, HEADER_WORDS,
    LAYOUT_VERSION, MAGIC, RECLAIM_INTERVAL_NANOS,
};
pub use validate::check_breaker_words;
