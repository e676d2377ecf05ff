//! Silences (mute alerts matching label matchers for a time window) and routing rules (send
//! alerts matching label matchers to a service, policy and priority).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actor::ActorRef;
use super::matcher::{Matcher, MatcherSet};
use super::priority::Level;

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// In force.
    Active,
    /// Over.
    Expired,
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Silence {
    /// Id.
    pub id: u64,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub comment: String,
    /// Who.
    pub created_by: ActorRef,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Silence {
    /// The state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// A routing rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingRule {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Evaluation order: lower first, then by id.
    pub position: i64,
    /// All must match (empty: every alert).
    pub matchers: Vec<Matcher>,
    /// Only alerts from these integrations (empty: any).
    #[serde(default)]
    pub integration_ids: Vec<u64>,
    /// Send to this service.
    #[serde(default)]
    pub service_id: Option<u64>,
    /// Page with this policy.
    #[serde(default)]
    pub escalation_policy_id: Option<u64>,
    /// Override the severity-mapped impact.
    #[serde(default)]
    pub impact: Option<Level>,
    /// Override the severity-mapped urgency.
    #[serde(default)]
    pub urgency: Option<Level>,
    /// Keep evaluating later rules after this one matched (they fill what is still unset).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The outcome of routing one alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Service chosen by a rule.
    pub service_id: Option<u64>,
    /// Policy chosen by a rule.
    pub escalation_policy_id: Option<u64>,
    /// Impact override.
    pub impact: Option<Level>,
    /// Urgency override.
    pub urgency: Option<Level>,
    /// The rules that matched, in order.
    pub matched: Vec<u64>,
}

/// Rules compiled for evaluation.
#[derive(Debug, Clone, Default)]
pub struct Router {
    rules: Vec<(RoutingRule, MatcherSet)>,
}

impl Router {
    /// Compiles `rules` (sorted by position, then id); rules whose matchers do not compile
    /// (impossible through the API) are skipped.
    pub fn new(mut rules: Vec<RoutingRule>) -> Self {
        rules.sort_by_key(|r| (r.position, r.id));
        Self {
            rules: rules
                .into_iter()
                .filter_map(|r| MatcherSet::compile(&r.matchers).ok().map(|m| (r, m)))
                .collect(),
        }
    }

    /// Routes an alert from `integration_id` with `labels`: the first matching rule sets its
    /// fields; with `continue`, later matching rules fill the fields still unset.
    pub fn route(&self, integration_id: u64, labels: &BTreeMap<String, String>) -> Route {
        let mut route = Route::default();
        for (rule, set) in &self.rules {
            if !(rule.integration_ids.is_empty() || rule.integration_ids.contains(&integration_id))
                || !set.matches(labels)
            {
                continue;
            }
            route.matched.push(rule.id);
            route.service_id = route.service_id.or(rule.service_id);
            route.escalation_policy_id = route.escalation_policy_id.or(rule.escalation_policy_id);
            route.impact = route.impact.or(rule.impact);
            route.urgency = route.urgency.or(rule.urgency);
            if !rule.continue_matching {
                break;
            }
        }
        route
    }
}

/// Active silences compiled for evaluation.
#[derive(Debug, Clone, Default)]
pub struct Silencer {
    silences: Vec<(u64, MatcherSet)>,
}

impl Silencer {
    /// Compiles the silences active at `now`.
    pub fn new(silences: &[Silence], now: DateTime<Utc>) -> Self {
        Self {
            silences: silences
                .iter()
                .filter(|s| s.state(now) == SilenceState::Active)
                .filter_map(|s| MatcherSet::compile(&s.matchers).ok().map(|m| (s.id, m)))
                .collect(),
        }
    }

    /// Whether silence `id` is in force and mutes `labels`.
    pub fn mutes(&self, id: u64, labels: &BTreeMap<String, String>) -> bool {
        self.silences
            .iter()
            .any(|(s, m)| *s == id && m.matches(labels))
    }

    /// The first silence that mutes `labels`.
    pub fn silenced_by(&self, labels: &BTreeMap<String, String>) -> Option<u64> {
        self.silences
            .iter()
            .find(|(_, m)| m.matches(labels))
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::{ActorKind, ActorRef};
    use crate::domain::clock::at;

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

    fn rule(
        id: u64,
        position: i64,
        matchers: Vec<Matcher>,
        service: Option<u64>,
        urgency: Option<Level>,
        cont: bool,
    ) -> RoutingRule {
        RoutingRule {
            id,
            name: format!("r{id}"),
            position,
            matchers,
            integration_ids: vec![],
            service_id: service,
            escalation_policy_id: None,
            impact: None,
            urgency,
            continue_matching: cont,
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn silence_states_and_matching() {
        let s = Silence {
            id: 4,
            matchers: vec![
                m("env", "prod", false, true),
                m("instance", "db-.*", true, true),
            ],
            starts_at: at("2026-01-01T10:00:00Z"),
            ends_at: at("2026-01-01T12:00:00Z"),
            comment: "maintenance".into(),
            created_by: ActorRef {
                kind: ActorKind::User,
                id: 1,
                name: "admin".into(),
            },
            created_at: at("2026-01-01T09:00:00Z"),
            updated_at: at("2026-01-01T09:00:00Z"),
        };
        assert_eq!(s.state(at("2026-01-01T09:59:59Z")), SilenceState::Pending);
        assert_eq!(s.state(at("2026-01-01T10:00:00Z")), SilenceState::Active);
        assert_eq!(s.state(at("2026-01-01T12:00:00Z")), SilenceState::Expired);
        let active = Silencer::new(std::slice::from_ref(&s), at("2026-01-01T11:00:00Z"));
        assert_eq!(
            active.silenced_by(&labels(&[("env", "prod"), ("instance", "db-1")])),
            Some(4)
        );
        assert_eq!(
            active.silenced_by(&labels(&[("env", "prod"), ("instance", "web-1")])),
            None
        );
        assert!(active.mutes(4, &labels(&[("env", "prod"), ("instance", "db-1")])));
        assert!(!active.mutes(4, &labels(&[("env", "prod"), ("instance", "web-1")])));
        assert!(
            !active.mutes(5, &labels(&[("env", "prod"), ("instance", "db-1")])),
            "only the silence named"
        );
        let later = Silencer::new(&[s], at("2026-01-01T13:00:00Z"));
        assert!(!later.mutes(4, &labels(&[("env", "prod"), ("instance", "db-1")])));
        assert_eq!(
            later.silenced_by(&labels(&[("env", "prod"), ("instance", "db-1")])),
            None
        );
    }

    #[test]
    fn routing_order_and_continue() {
        let router = Router::new(vec![
            rule(
                3,
                20,
                vec![m("team", "payments", false, true)],
                Some(9),
                Some(Level::Low),
                false,
            ),
            rule(
                1,
                10,
                vec![m("env", "prod", false, true)],
                None,
                Some(Level::High),
                true,
            ),
            rule(2, 30, vec![], Some(1), None, false),
        ]);
        let r = router.route(1, &labels(&[("env", "prod"), ("team", "payments")]));
        assert_eq!(r.matched, vec![1, 3]);
        assert_eq!(r.service_id, Some(9));
        assert_eq!(
            r.urgency,
            Some(Level::High),
            "the first rule to set a field wins"
        );
        let r = router.route(1, &labels(&[("env", "dev")]));
        assert_eq!(r.matched, vec![2]);
        assert_eq!(r.service_id, Some(1));
        let mut only_other = rule(5, 0, vec![], Some(7), None, false);
        only_other.integration_ids = vec![42];
        let r = Router::new(vec![only_other]).route(1, &labels(&[]));
        assert!(r.matched.is_empty());
    }
}
