//! [`FleetLimiterSnapshot`], [`FleetConcurrencySnapshot`]: a fleet limit's state for
//! metrics and health (built
//! in every configuration, so a policy snapshot has the same shape with or without the
//! feature `fleet`).

/// A point-in-time view of a fleet rate limiter, for metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetLimiterSnapshot {
    /// Whether Redis is unavailable (the limit follows `on_unavailable`).
    pub unavailable: bool,
    /// Why, while unavailable.
    pub message: Option<String>,
    /// Tokens leased from Redis so far.
    pub leased: u64,
    /// Leased tokens not yet spent (stranded if the process stopped now).
    pub local_tokens: u64,
    /// The current batch size.
    pub batch: u64,
    /// The most tokens this process can hold unspent (`min(max_batch, burst)`); the
    /// fleet's stranded tokens are at most N times this.
    pub stranded_bound: u64,
    /// The quota's burst: the fleet admits at most `rate·T/period + burst` from a start
    /// with nothing leased.
    pub burst_bound: u64,
    /// Redis round trips made.
    pub round_trips: u64,
    /// Redis calls that failed.
    pub failures: u64,
    /// Returns to the fleet quota after a failure.
    pub recoveries: u64,
    /// Admitted by the `on_unavailable` fallback (`local` or `allow`).
    pub admitted_fallback: u64,
    /// Rejected calls.
    pub rejected: u64,
    /// The policy's fleet concurrency limit (`fleet.max_concurrent`), if it has one.
    pub concurrency: Option<FleetConcurrencySnapshot>,
}

impl FleetLimiterSnapshot {
    /// Calls admitted on leased tokens: leased minus still held.
    pub fn admitted_fleet(&self) -> u64 {
        self.leased - self.local_tokens
    }
}

/// A point-in-time view of a fleet concurrency limit, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConcurrencySnapshot {
    /// Whether Redis is unavailable (the limit follows `on_unavailable`).
    pub unavailable: bool,
    /// Why, while unavailable.
    pub message: Option<String>,
    /// Fleet slots this process holds.
    pub held: u64,
    /// Leases found expired at a refresh (a pause longer than the TTL).
    pub leases_lost: u64,
    /// Redis round trips made.
    pub round_trips: u64,
    /// Redis calls that failed.
    pub failures: u64,
    /// Returns to the fleet limit after a failure.
    pub recoveries: u64,
    /// Admitted by the fallback (`local` or `allow`).
    pub admitted_fallback: u64,
    /// Rejected calls.
    pub rejected: u64,
}
