//! Sigma severity levels.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Sigma's levels, lowest first, so `>=` compares severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Level, String> {
        Level::ALL
            .into_iter()
            .find(|level| {
                level.as_str().eq_ignore_ascii_case(text)
                    || (text.eq_ignore_ascii_case("info") && *level == Level::Informational)
            })
            .ok_or_else(|| format!("unknown level {text:?} (expected informational, low, medium, high or critical)"))
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert_eq!("HIGH".parse(), Ok(Level::High));
        assert_eq!("info".parse(), Ok(Level::Informational));
        assert!("severe".parse::<Level>().is_err());
        assert!(Level::Critical > Level::High && Level::Low > Level::Informational);
    }
}
