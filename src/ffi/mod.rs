//! The C ABI (`bw_` prefix), mirroring the core file for file.
//!
//! - `boundary`: panic catching, NULL checks, handle ownership (Arc vs Box).
//! - `status`: `bw_status` codes and the thread-local last-error message.
//! - `version`: library and ABI versions.
//!
//! The core never imports this module. Every function here is documented for C
//! callers: who owns what, what NULL does, thread-safety, and that outputs are written
//! only on success. The generated header is `include/breakwater.h`.
#![allow(non_camel_case_types)]

pub(crate) mod boundary;
pub mod status;
pub mod version;
