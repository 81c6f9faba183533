//! [`Scope`]: whether a limit counts this process's calls or the whole fleet's.

/// Where a limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// In this process alone (the default).
    #[default]
    Local,
    /// Across every process sharing the policy's `fleet` Redis (feature `fleet`).
    Fleet,
}

impl Scope {
    /// The policy-file names, in declaration order.
    pub const NAMES: &'static [&'static str] = &["local", "fleet"];

    /// The policy-file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Fleet => "fleet",
        }
    }

    /// The scope named `name`, if any.
    pub fn from_name(name: &str) -> Option<Scope> {
        [Scope::Local, Scope::Fleet]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Scope::NAMES {
            assert_eq!(Scope::from_name(name).map(Scope::as_str), Some(*name));
        }
        assert_eq!(Scope::from_name("global"), None);
    }
}
