//! Priority classes for load shedding.
//!
//! Each acquire may carry a [`Priority`]. As pressure rises the lowest class is shed
//! first; [`Priority::Critical`] is shed only at the hard limit. The exact thresholds are
//! documented on [`AdaptiveConfig::admits`](super::AdaptiveConfig::admits).

use crate::error::ConfigError;
use std::fmt;
use std::str::FromStr;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Priority {
    /// Shed only at the hard limit (`in_flight >= limit`).
    Critical = 0,
    /// Ordinary traffic; shed when pressure reaches `default_at`.
    #[default]
    Default = 1,
    /// Best-effort traffic (prefetches, batch jobs); shed first, when pressure reaches
    /// `sheddable_at`.
    Sheddable = 2,
}

impl Priority {
    /// Every class, in code order (most important first).
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::Default, Priority::Sheddable];

    /// Decodes the numeric code used across the C ABI; `None` for anything else.
    #[inline]
    pub fn from_code(code: i64) -> Option<Priority> {
        match code {
            0 => Some(Priority::Critical),
            1 => Some(Priority::Default),
            2 => Some(Priority::Sheddable),
            _ => None,
        }
    }

    /// The stable lowercase name (`"critical"`, `"default"`, `"sheddable"`), as written in
    /// the policy file and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Default => "default",
            Priority::Sheddable => "sheddable",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ConfigError;

    /// Parses the lowercase name; anything else is a [`ConfigError`] on field `priority`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
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
