//! Priority classes for load shedding.

use crate::error::ConfigError;
use std::str::FromStr;

crate::codes::code_enum! {
    /// How important a call is when the dependency is under pressure.
    ///
    /// The numeric values are part of the C ABI (`BW_PRIORITY_*`) and never change; a
    /// smaller code is more important.
    ///
    /// ```
    /// use breakwater::adaptive::Priority;
    /// assert_eq!(Priority::from_code(2), Some(Priority::Sheddable));
    /// assert_eq!("critical".parse::<Priority>().unwrap(), Priority::Critical);
    /// assert_eq!(Priority::default(), Priority::Default);
    /// ```
    ///
    /// Each acquire may carry a [`Priority`]. As pressure rises the lowest class is shed
    /// first; [`Priority::Critical`] is shed only at the hard limit. The exact thresholds are
    /// documented on [`AdaptiveConfig::admits`](super::AdaptiveConfig::admits).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
    pub enum Priority: u8 {
        /// Shed only at the hard limit (`in_flight >= limit`).
        Critical = 0 => "critical",
        /// Ordinary traffic; shed when pressure reaches `default_at`.
        #[default]
        Default = 1 => "default",
        /// Best-effort traffic (prefetches, batch jobs); shed first, when pressure
        /// reaches `sheddable_at`.
        Sheddable = 2 => "sheddable",
    }
}

impl FromStr for Priority {
    type Err = ConfigError;

    /// Parses the lowercase name; anything else is a [`ConfigError`] on field `priority`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::from_name(s).ok_or_else(|| {
            ConfigError::new(
                "priority",
                format!("unknown priority {s:?}; expected critical, default or sheddable"),
            )
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_code(p as i64), Some(p));
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
        }
        assert_eq!(Priority::from_code(3), None);
        assert_eq!(Priority::from_code(-1), None);
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert_eq!(err.field, "priority");
    }
}
