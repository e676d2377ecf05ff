//! Personal paging rules: how each person wants to be reached when an escalation level
//! pages them, as in PagerDuty's and GoAlert's notification rules ("push now, SMS after
//! 5 minutes, call after 10"). A rule names one of the person's contact methods and a
//! delay from the page. Steps still waiting when the incident is acknowledged or resolved
//! are cancelled: nobody should be called for an incident somebody already has.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::IncidentStatus;
use super::notification::ContactMethod;

/// The longest delay a rule may have: a day.
pub const MAX_DELAY_MINUTES: u32 = 24 * 60;
/// The most rules one person may have.
pub const MAX_RULES_PER_USER: usize = 20;

/// One step of how a person is paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PagingRule {
    /// Id.
    pub id: u64,
    /// Whose.
    pub user_id: u64,
    /// The contact method to use (one of the person's).
    pub contact_method_id: u64,
    /// Minutes after the page.
    pub delay_minutes: u32,
}

/// Why a delay is not acceptable, if it is not.
pub fn check_delay(minutes: u32) -> Result<(), String> {
    if minutes <= MAX_DELAY_MINUTES {
        Ok(())
    } else {
        Err(format!(
            "must be at most {MAX_DELAY_MINUTES} minutes (a day)"
        ))
    }
}

/// Which contact methods a page reaches, and how long after it: each rule whose method
/// is enabled; without such a rule, every enabled method at once, so that a page always
/// reaches somebody who has a way to be reached. In order of delay, then method.
pub fn plan<'a>(
    rules: &[PagingRule],
    methods: &'a [ContactMethod],
) -> Vec<(&'a ContactMethod, Duration)> {
    let mut steps: Vec<(&ContactMethod, Duration)> = rules
        .iter()
        .filter_map(|r| {
            methods
                .iter()
                .find(|m| m.id == r.contact_method_id && m.enabled)
                .map(|m| (m, Duration::minutes(i64::from(r.delay_minutes))))
        })
        .collect();
    if steps.is_empty() {
        steps = methods
            .iter()
            .filter(|m| m.enabled)
            .map(|m| (m, Duration::zero()))
            .collect();
    }
    steps.sort_by_key(|(m, d)| (*d, m.id));
    steps.dedup_by_key(|(m, d)| (*d, m.id));
    steps
}

/// Why a change of an incident's status stops the page steps still waiting for it, if it
/// does: somebody acknowledged it (it left `new`), or it is over. Pages sent while it was
/// already acknowledged (a manual escalation) wait until it is over.
pub fn stops_pages(before: IncidentStatus, after: IncidentStatus) -> Option<&'static str> {
    match after {
        IncidentStatus::Resolved | IncidentStatus::Closed | IncidentStatus::Cancelled
            if before != after =>
        {
            Some("the incident was over before this step was due")
        }
        _ if before == IncidentStatus::New && after != IncidentStatus::New => {
            Some("somebody acknowledged the incident before this step was due")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notification::ChannelKind;
    use chrono::Utc;

    fn method(id: u64, kind: ChannelKind, enabled: bool) -> ContactMethod {
        ContactMethod {
            id,
            user_id: 1,
            kind,
            address: format!("addr-{id}"),
            label: String::new(),
            secret: None,
            enabled,
            created_at: Utc::now(),
        }
    }

    fn rule(id: u64, method: u64, delay: u32) -> PagingRule {
        PagingRule {
            id,
            user_id: 1,
            contact_method_id: method,
            delay_minutes: delay,
        }
    }

    fn ids(steps: &[(&ContactMethod, Duration)]) -> Vec<(u64, i64)> {
        steps.iter().map(|(m, d)| (m.id, d.num_minutes())).collect()
    }

    #[test]
    fn without_rules_every_enabled_method_is_paged_at_once() {
        let methods = [
            method(1, ChannelKind::Email, true),
            method(2, ChannelKind::Sms, false),
            method(3, ChannelKind::Voice, true),
        ];
        assert_eq!(ids(&plan(&[], &methods)), [(1, 0), (3, 0)]);
        assert!(plan(&[], &[]).is_empty());
    }

    #[test]
    fn rules_choose_methods_and_delays_and_may_repeat_a_method() {
        let methods = [
            method(1, ChannelKind::Email, true),
            method(2, ChannelKind::Sms, true),
            method(3, ChannelKind::Voice, true),
        ];
        let rules = [rule(1, 3, 10), rule(2, 2, 5), rule(3, 1, 0), rule(4, 3, 15)];
        assert_eq!(
            ids(&plan(&rules, &methods)),
            [(1, 0), (2, 5), (3, 10), (3, 15)]
        );
        // The same step twice is one step.
        let twice = [rule(1, 2, 5), rule(2, 2, 5)];
        assert_eq!(ids(&plan(&twice, &methods)), [(2, 5)]);
    }

    #[test]
    fn rules_on_disabled_or_missing_methods_fall_back_to_every_method() {
        let methods = [
            method(1, ChannelKind::Email, true),
            method(2, ChannelKind::Sms, false),
        ];
        let rules = [rule(1, 2, 0), rule(2, 9, 5)];
        assert_eq!(ids(&plan(&rules, &methods)), [(1, 0)]);
        // One usable rule is enough: the others are skipped, not filled in.
        let rules = [rule(1, 2, 0), rule(2, 1, 5)];
        assert_eq!(ids(&plan(&rules, &methods)), [(1, 5)]);
    }

    #[test]
    fn leaving_new_or_ending_stops_waiting_pages_and_nothing_else_does() {
        use IncidentStatus::*;
        let all = [
            New,
            Acknowledged,
            InProgress,
            OnHold,
            Resolved,
            Closed,
            Cancelled,
        ];
        for before in all {
            for after in all {
                let stops = stops_pages(before, after).is_some();
                let expected = before != after
                    && (before == New || matches!(after, Resolved | Closed | Cancelled));
                assert_eq!(stops, expected, "{before:?} -> {after:?}");
            }
        }
        assert!(stops_pages(New, Acknowledged).is_some_and(|r| r.contains("acknowledged")));
        assert!(stops_pages(InProgress, Resolved).is_some_and(|r| r.contains("over")));
        assert_eq!(check_delay(MAX_DELAY_MINUTES), Ok(()));
        assert!(check_delay(MAX_DELAY_MINUTES + 1).is_err());
    }
}
