//! One completed call, as the limit algorithms see it.

/// What a completion tells a limit algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Round-trip time of the call in nanoseconds.
    pub rtt_ns: u64,
    /// How many calls were in flight when this one was admitted, itself included
    /// (as Netflix concurrency-limits passes it). Algorithms use it for the
    /// "app limited" check: a limit that is not being used is not grown.
    pub in_flight: u32,
    /// Whether the call counts as a drop (a `Failure` or `Timeout` outcome).
    pub dropped: bool,
}
