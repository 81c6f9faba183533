//! Health: `healthy | degraded | unhealthy` with reasons, and JSON for a health endpoint.

/// Overall health, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum HealthStatus {
    /// Nothing to report.
    #[default]
    Healthy = 0,
    /// Working, with some protection engaged (see the module rule).
    Degraded = 1,
    /// No dependency reachable (see the module rule).
    Unhealthy = 2,
}

impl HealthStatus {
    /// `"healthy"`, `"degraded"` or `"unhealthy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a [`HealthReason`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonKind {
    /// A breaker is open.
    BreakerOpen,
    /// A breaker is half-open (probing).
    BreakerHalfOpen,
    /// A breaker was forced open by an operator.
    BreakerForcedOpen,
    /// A retry budget is exhausted.
    BudgetExhausted,
    /// A bulkhead or adaptive limit is at its limit.
    Saturated,
    /// Every enabled breaker is open or forced open.
    AllBreakersOpen,
    /// A fleet limit cannot reach its Redis and follows its `on_unavailable` mode.
    FleetUnavailable,
}

impl ReasonKind {
    /// The stable snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::BreakerOpen => "breaker_open",
            ReasonKind::BreakerHalfOpen => "breaker_half_open",
            ReasonKind::BreakerForcedOpen => "breaker_forced_open",
            ReasonKind::BudgetExhausted => "budget_exhausted",
            ReasonKind::Saturated => "saturated",
            ReasonKind::AllBreakersOpen => "all_breakers_open",
            ReasonKind::FleetUnavailable => "fleet_unavailable",
        }
    }

    /// The status this reason raises a report to: `Unhealthy` for
    /// [`ReasonKind::AllBreakersOpen`], `Degraded` for every other kind.
    pub fn severity(self) -> HealthStatus {
        match self {
            ReasonKind::AllBreakersOpen => HealthStatus::Unhealthy,
            _ => HealthStatus::Degraded,
        }
    }
}

/// One reason for a status other than healthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReason {
    /// The policy concerned (empty for engine-wide reasons).
    pub policy: String,
    /// What it is about.
    pub kind: ReasonKind,
    /// A human-readable detail.
    pub detail: String,
}

/// Current usage of a concurrency limit (bulkhead or adaptive limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Permits in use.
    pub in_use: u64,
    /// The limit.
    pub limit: u64,
}

/// What [`HealthReport::evaluate`] needs to know about one policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyHealth<'a> {
    /// The policy name.
    pub policy: &'a str,
    /// The breaker state code (`0..=4`, see [`crate::metrics::state_name`]), `None`
    /// without a breaker.
    pub breaker_state: Option<u8>,
    /// Whether the retry budget is exhausted right now.
    pub budget_exhausted: bool,
    /// The bulkhead's usage, if the policy has one.
    pub bulkhead: Option<Usage>,
    /// The adaptive limit's usage, if the policy has one.
    pub adaptive: Option<Usage>,
    /// Why a fleet limit of the policy cannot reach its Redis, while it cannot.
    pub fleet_unavailable: Option<&'a str>,
}

/// A health status with its reasons.
///
/// ```
/// use breakwater::metrics::{HealthReport, HealthStatus, PolicyHealth};
///
/// let report = HealthReport::evaluate([
///     PolicyHealth { policy: "payments", breaker_state: Some(1), ..Default::default() },
///     PolicyHealth { policy: "search", breaker_state: Some(0), ..Default::default() },
/// ]);
/// assert_eq!(report.status, HealthStatus::Degraded);
/// assert_eq!(
///     report.to_json(),
///     r#"{"status":"degraded","reasons":[{"policy":"payments","kind":"breaker_open","detail":"circuit breaker is open"}]}"#
/// );
/// ```
///
/// # The rule
///
/// Each [`ReasonKind`] has a severity ([`ReasonKind::severity`]); a report's status is the
/// highest severity among its reasons, `healthy` when it has none.
///
/// | status      | when                                                                 |
/// |-------------|----------------------------------------------------------------------|
/// | `healthy`   | no reason: every breaker closed or disabled, no retry budget exhausted, no bulkhead or adaptive limit saturated |
/// | `degraded`  | at least one breaker open, forced open or half-open; or a retry budget exhausted; or a bulkhead / adaptive limit at its limit (`in_use ≥ limit`); or a fleet limit that cannot reach its Redis |
/// | `unhealthy` | at least one policy has an enabled breaker and *every* enabled breaker is open or forced open: no dependency is reachable |
///
/// A breaker in `disabled` state counts as no breaker. Half-open is degraded, not
/// healthy: the dependency has just failed and is being probed. The rule is meant for a
/// status or readiness endpoint; a liveness probe should not restart a process because
/// its dependencies are down.
///
/// [`HealthReport::evaluate`] applies the whole rule to a list of [`PolicyHealth`]
/// inputs; [`HealthReport::add`] lets a caller add reasons of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// The highest severity among `reasons`.
    pub status: HealthStatus,
    /// Why the status is not healthy.
    pub reasons: Vec<HealthReason>,
}

impl HealthReport {
    /// A healthy report without reasons.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a reason and raises the status to its severity (never lowers it).
    pub fn add(&mut self, reason: HealthReason) {
        self.status = self.status.max(reason.kind.severity());
        self.reasons.push(reason);
    }

    /// Adds a reason built from its parts.
    pub fn add_reason(&mut self, policy: &str, kind: ReasonKind, detail: impl Into<String>) {
        self.add(HealthReason {
            policy: policy.to_owned(),
            kind,
            detail: detail.into(),
        });
    }

    /// Applies the module's rule to every policy, in the order given.
    pub fn evaluate<'a>(policies: impl IntoIterator<Item = PolicyHealth<'a>>) -> Self {
        let mut report = Self::new();
        let (mut breakers, mut open) = (0usize, 0usize);
        for p in policies {
            match p.breaker_state {
                Some(1) => {
                    breakers += 1;
                    open += 1;
                    report.add_reason(p.policy, ReasonKind::BreakerOpen, "circuit breaker is open");
                }
                Some(2) => {
                    breakers += 1;
                    report.add_reason(
                        p.policy,
                        ReasonKind::BreakerHalfOpen,
                        "circuit breaker is half-open (probing)",
                    );
                }
                Some(3) => {
                    breakers += 1;
                    open += 1;
                    report.add_reason(
                        p.policy,
                        ReasonKind::BreakerForcedOpen,
                        "circuit breaker is forced open",
                    );
                }
                Some(4) | None => {}
                // Closed (0), or a code this module does not know: an enabled breaker
                // that is not open.
                Some(_) => breakers += 1,
            }
            if p.budget_exhausted {
                report.add_reason(
                    p.policy,
                    ReasonKind::BudgetExhausted,
                    "retry budget is exhausted",
                );
            }
            if let Some(why) = p.fleet_unavailable {
                report.add_reason(p.policy, ReasonKind::FleetUnavailable, why);
            }
            for (what, usage) in [("bulkhead", p.bulkhead), ("adaptive limit", p.adaptive)] {
                if let Some(u) = usage {
                    if u.in_use >= u.limit {
                        report.add_reason(
                            p.policy,
                            ReasonKind::Saturated,
                            format!("{what} is full: {} of {} in use", u.in_use, u.limit),
                        );
                    }
                }
            }
        }
        if breakers > 0 && open == breakers {
            report.add_reason(
                "",
                ReasonKind::AllBreakersOpen,
                format!("all {breakers} circuit breakers are open"),
            );
        }
        report
    }

    /// The report as a JSON object:
    /// `{"status":"…","reasons":[{"policy":"…","kind":"…","detail":"…"},…]}`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(32 + 96 * self.reasons.len());
        out.push_str("{\"status\":");
        push_json_string(&mut out, self.status.as_str());
        out.push_str(",\"reasons\":[");
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"policy\":");
            push_json_string(&mut out, &r.policy);
            out.push_str(",\"kind\":");
            push_json_string(&mut out, r.kind.as_str());
            out.push_str(",\"detail\":");
            push_json_string(&mut out, &r.detail);
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// Appends `s` as a JSON string literal (RFC 8259): quotes, backslash and every control
/// character below U+0020 escaped; everything else as UTF-8.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn p(policy: &str, state: Option<u8>) -> PolicyHealth<'_> {
        PolicyHealth {
            policy,
            breaker_state: state,
            ..Default::default()
        }
    }

    #[test]
    fn healthy_when_nothing_engaged() {
        let r = HealthReport::evaluate([p("a", Some(0)), p("b", None), p("c", Some(4))]);
        assert_eq!(r.status, HealthStatus::Healthy);
        assert!(r.reasons.is_empty());
        assert_eq!(r.to_json(), r#"{"status":"healthy","reasons":[]}"#);
        assert_eq!(HealthReport::evaluate([]).status, HealthStatus::Healthy);
    }

    #[test]
    fn degraded_for_each_kind() {
        for (input, kind) in [
            (p("a", Some(1)), ReasonKind::BreakerOpen),
            (p("a", Some(2)), ReasonKind::BreakerHalfOpen),
            (p("a", Some(3)), ReasonKind::BreakerForcedOpen),
            (
                PolicyHealth {
                    budget_exhausted: true,
                    ..p("a", None)
                },
                ReasonKind::BudgetExhausted,
            ),
            (
                PolicyHealth {
                    bulkhead: Some(Usage {
                        in_use: 4,
                        limit: 4,
                    }),
                    ..p("a", None)
                },
                ReasonKind::Saturated,
            ),
            (
                PolicyHealth {
                    adaptive: Some(Usage {
                        in_use: 9,
                        limit: 8,
                    }),
                    ..p("a", None)
                },
                ReasonKind::Saturated,
            ),
        ] {
            // A second, closed breaker keeps "all open" false.
            let r = HealthReport::evaluate([input, p("b", Some(0))]);
            assert_eq!(r.status, HealthStatus::Degraded, "{kind:?}");
            assert_eq!(r.reasons.len(), 1);
            assert_eq!(r.reasons[0].kind, kind);
        }
    }

    #[test]
    fn unhealthy_when_every_enabled_breaker_is_open() {
        let r = HealthReport::evaluate([
            p("a", Some(1)),
            p("b", Some(3)),
            p("c", None),
            p("d", Some(4)),
        ]);
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert_eq!(r.reasons.last().unwrap().kind, ReasonKind::AllBreakersOpen);
        let r = HealthReport::evaluate([p("a", Some(1)), p("b", Some(2))]);
        assert_eq!(r.status, HealthStatus::Degraded);
    }

    #[test]
    fn add_never_lowers_the_status() {
        let mut r = HealthReport::new();
        r.add_reason("", ReasonKind::AllBreakersOpen, "x");
        r.add_reason("a", ReasonKind::Saturated, "y");
        assert_eq!(r.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\nd\re\tf\u{1}g\u{7f}é\u{2028}");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\u{7f}é\u{2028}\"");
    }
}
