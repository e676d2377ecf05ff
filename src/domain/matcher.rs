//! Alertmanager-style label matchers: `=`, `!=`, `=~`, `!~`, used by silences and routing
//! rules.
//!
//! Regular expressions are anchored at both ends, as in Alertmanager: `=~"web|db"` matches
//! exactly `web` or `db`, not `webserver`. A missing label matches as the empty string.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One matcher as stored and sent over the API (Alertmanager's silence format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The value or regular expression.
    pub value: String,
    /// `value` is a regular expression.
    #[serde(default, rename = "is_regex", alias = "isRegex")]
    pub is_regex: bool,
    /// `true`: equal / matching; `false`: not equal / not matching.
    #[serde(default = "yes", rename = "is_equal", alias = "isEqual")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// Why a matcher is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// The label name is not a valid Prometheus label name.
    #[error("'{0}' is not a valid label name")]
    BadName(String),
    /// The regular expression does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
}

/// A matcher ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    name: String,
    test: Test,
    is_equal: bool,
}

#[derive(Debug, Clone)]
enum Test {
    Exact(String),
    Regex(Regex),
}

/// Whether `name` can be a label name: any non-empty text without control characters, as
/// Prometheus 3 and Alertmanager 0.27 accept them (UTF-8 names such as OpenTelemetry's
/// `service.name`), since ingestion stores whatever names the sources send and a silence,
/// a route or a grouping must be able to name each of them.
pub fn is_label_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

impl Matcher {
    /// Compiles the matcher (anchoring a regular expression).
    pub fn compile(&self) -> Result<CompiledMatcher, MatcherError> {
        if !is_label_name(&self.name) {
            return Err(MatcherError::BadName(self.name.clone()));
        }
        let test = if self.is_regex {
            let anchored = format!("^(?:{})$", self.value);
            Test::Regex(
                regex::RegexBuilder::new(&anchored)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        MatcherError::BadRegex(
                            e.to_string()
                                .lines()
                                .last()
                                .unwrap_or_default()
                                .trim()
                                .to_owned(),
                        )
                    })?,
            )
        } else {
            Test::Exact(self.value.clone())
        };
        Ok(CompiledMatcher {
            name: self.name.clone(),
            test,
            is_equal: self.is_equal,
        })
    }

    /// The operator as Alertmanager writes it.
    pub fn operator(&self) -> &'static str {
        match (self.is_regex, self.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.operator(), self.value)
    }
}

impl CompiledMatcher {
    /// Whether the label set satisfies this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map(String::as_str).unwrap_or("");
        self.matches_value(value)
    }

    fn matches_value(&self, value: &str) -> bool {
        let hit = match &self.test {
            Test::Exact(v) => v == value,
            Test::Regex(r) => r.is_match(value),
        };
        hit == self.is_equal
    }

    /// Whether the matcher accepts a missing label (the empty string).
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// A conjunction of matchers.
#[derive(Debug, Clone, Default)]
pub struct MatcherSet(Vec<CompiledMatcher>);

impl MatcherSet {
    /// Compiles all matchers; the error names the index of the first bad one.
    pub fn compile(matchers: &[Matcher]) -> Result<MatcherSet, (usize, MatcherError)> {
        matchers
            .iter()
            .enumerate()
            .map(|(i, m)| m.compile().map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()
            .map(MatcherSet)
    }

    /// Whether every matcher accepts the labels (an empty set matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    /// Whether every matcher accepts the empty string, i.e. the set would match alerts
    /// that lack all its labels (Alertmanager refuses such silences).
    pub fn matches_everything_empty(&self) -> bool {
        self.0.iter().all(CompiledMatcher::matches_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn the_four_operators() {
        let l = labels(&[("env", "prod"), ("service", "checkout-api")]);
        let cases = [
            (m("env", "prod", false, true), true),
            (m("env", "dev", false, true), false),
            (m("env", "dev", false, false), true),
            (m("env", "prod", false, false), false),
            (m("service", "checkout-.*", true, true), true),
            (m("service", "checkout", true, true), false),
            (m("service", "web|db", true, false), true),
            (m("service", ".*api", true, false), false),
            (m("team", "", false, true), true),
            (m("team", ".+", true, true), false),
            (m("team", ".+", true, false), true),
        ];
        for (matcher, expected) in cases {
            assert_eq!(
                matcher.compile().expect("compiles").matches(&l),
                expected,
                "{matcher}"
            );
        }
    }

    #[test]
    fn anchoring_and_errors() {
        let c = m("x", "a|b", true, true).compile().expect("compiles");
        assert!(c.matches(&labels(&[("x", "a")])));
        assert!(!c.matches(&labels(&[("x", "ab")])));
        assert!(matches!(
            m("x", "(", true, true).compile(),
            Err(MatcherError::BadRegex(_))
        ));
        assert!(matches!(
            m("", "a", false, true).compile(),
            Err(MatcherError::BadName(_))
        ));
        assert!(matches!(
            m("a\nb", "a", false, true).compile(),
            Err(MatcherError::BadName(_))
        ));
        for name in ["_a1", "service.name", "1x", "a-b", "größe", "has space"] {
            assert!(is_label_name(name), "{name}");
        }
        let dotted = m("service.name", "checkout", false, true)
            .compile()
            .expect("a UTF-8 label name");
        let labels: BTreeMap<String, String> =
            [("service.name".to_owned(), "checkout".to_owned())].into();
        assert!(dotted.matches(&labels));
    }

    #[test]
    fn sets() {
        let set = MatcherSet::compile(&[
            m("env", "prod", false, true),
            m("sev", "crit.*", true, true),
        ])
        .expect("compiles");
        assert!(set.matches(&labels(&[("env", "prod"), ("sev", "critical")])));
        assert!(!set.matches(&labels(&[("env", "prod"), ("sev", "warning")])));
        assert!(!set.matches_everything_empty());
        let empty_ok = MatcherSet::compile(&[m("env", "", false, true), m("x", ".*", true, true)])
            .expect("compiles");
        assert!(empty_ok.matches_everything_empty());
        assert_eq!(
            MatcherSet::compile(&[m("a", "b", false, true), m("c", "(", true, true)])
                .err()
                .map(|e| e.0),
            Some(1)
        );
        assert_eq!(m("a", "b", true, false).to_string(), "a!~\"b\"");
    }
}
