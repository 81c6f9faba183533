//! How stress tests treat the scheduler.
//!
//! A stress test runs real threads and asserts exact counts. Whether those threads
//! actually overlapped is up to the machine's scheduler: on a loaded machine two
//! threads can run one after the other. Concurrency is proved by the loom models; a
//! stress test therefore retries its rounds to give overlap every chance, asserts only
//! what must hold whatever the interleaving, and says (never fails on) whether it saw
//! the threads overlap.

/// Prints whether `test`'s threads were seen to overlap, with `detail`.
#[allow(dead_code)] // not every test file that shares `common` runs threads
pub fn report(test: &str, overlapped: bool, detail: impl std::fmt::Display) {
    if overlapped {
        eprintln!("{test}: threads overlapped ({detail})");
    } else {
        eprintln!(
            "{test}: note: the scheduler ran the threads without overlap ({detail}); \
             counts were still checked, the loom models cover the races"
        );
    }
}
