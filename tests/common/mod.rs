//! Helpers shared by integration tests.

pub mod counting_alloc;
pub mod interleaving;
pub mod python;
