//! ITIL priority: impact x urgency through a matrix.
//!
//! The default matrix is CONTRACT's; a deployment may replace it (config or the settings
//! API). Incidents store the priority computed when impact or urgency last changed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A three-step level, used for impact and urgency. Accepts any case on input, always
/// written lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Level {
    /// Wide or severe.
    High,
    /// Noticeable.
    Medium,
    /// Minor.
    Low,
}

impl Level {
    /// Every level, highest first.
    pub const ALL: [Level; 3] = [Level::High, Level::Medium, Level::Low];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        }
    }

    const fn index(self) -> usize {
        match self {
            Level::High => 0,
            Level::Medium => 1,
            Level::Low => 2,
        }
    }
}

/// An unknown level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of high, medium, low (got '{0}')")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "high" => Ok(Level::High),
            "medium" => Ok(Level::Medium),
            "low" => Ok(Level::Low),
            _ => Err(UnknownLevel(s.to_owned())),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incident priority, P1 (most urgent) to P5.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Priority {
    /// Critical.
    P1,
    /// High.
    P2,
    /// Moderate.
    P3,
    /// Low.
    P4,
    /// Planning.
    P5,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [
        Priority::P1,
        Priority::P2,
        Priority::P3,
        Priority::P4,
        Priority::P5,
    ];

    /// 1 for P1 ... 5 for P5.
    pub const fn rank(self) -> u8 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
            Priority::P5 => 5,
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }

    /// The priority of a rank, if it is one.
    pub fn from_rank(rank: u8) -> Option<Priority> {
        Priority::ALL
            .get(usize::from(rank).checked_sub(1)?)
            .copied()
    }
}

/// An unknown priority name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of P1, P2, P3, P4, P5 (got '{0}')")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t.strip_prefix(['P', 'p']).unwrap_or(t);
        digits
            .parse::<u8>()
            .ok()
            .and_then(Priority::from_rank)
            .ok_or_else(|| UnknownPriority(s.to_owned()))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The impact x urgency table. Rows are impact (high, medium, low), columns urgency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriorityMatrix {
    /// `cells[impact][urgency]`, high first.
    pub cells: [[Priority; 3]; 3],
}

impl Default for PriorityMatrix {
    /// CONTRACT's matrix: high/high P1; high/medium, medium/high P2; high/low,
    /// medium/medium, low/high P3; medium/low, low/medium P4; low/low P5.
    fn default() -> Self {
        use Priority::*;
        Self {
            cells: [[P1, P2, P3], [P2, P3, P4], [P3, P4, P5]],
        }
    }
}

impl PriorityMatrix {
    /// The priority of an impact and an urgency.
    pub fn priority(&self, impact: Level, urgency: Level) -> Priority {
        self.cells[impact.index()][urgency.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;
    use Priority::*;

    #[test]
    fn default_matrix_all_nine_cells() {
        let m = PriorityMatrix::default();
        let expected = [
            (High, High, P1),
            (High, Medium, P2),
            (High, Low, P3),
            (Medium, High, P2),
            (Medium, Medium, P3),
            (Medium, Low, P4),
            (Low, High, P3),
            (Low, Medium, P4),
            (Low, Low, P5),
        ];
        for (impact, urgency, priority) in expected {
            assert_eq!(m.priority(impact, urgency), priority, "{impact}/{urgency}");
        }
    }

    #[test]
    fn a_replaced_matrix_is_used() {
        let mut m = PriorityMatrix::default();
        m.cells[2][2] = P4;
        assert_eq!(m.priority(Low, Low), P4);
    }

    #[test]
    fn levels_parse_any_case_and_print_lowercase() {
        assert_eq!("HIGH".parse::<Level>(), Ok(High));
        assert_eq!(" Medium ".parse::<Level>(), Ok(Medium));
        assert_eq!("low".parse::<Level>(), Ok(Low));
        assert!("urgent".parse::<Level>().is_err());
        let json = serde_json::to_string(&High).expect("serialize");
        assert_eq!(json, "\"high\"");
        let back: Level = serde_json::from_str("\"High\"").expect("deserialize");
        assert_eq!(back, High);
    }

    #[test]
    fn priorities_parse_and_rank() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert_eq!("p2".parse::<Priority>(), Ok(P2));
        assert_eq!("3".parse::<Priority>(), Ok(P3));
        assert!("P0".parse::<Priority>().is_err());
        assert!("P6".parse::<Priority>().is_err());
        assert!(P1 < P5);
    }
}
