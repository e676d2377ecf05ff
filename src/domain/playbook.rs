//! Triage playbooks: "when an incident like this opens, do these steps", written by the
//! team as YAML files and run by `engine::playbooks` as the playbook's own actor. A
//! playbook names the events it reacts to, conditions on the incident (service, priority,
//! title, the labels of the alert that opened it) and an ordered list of steps, each one
//! use case the REST API also offers: comment, assign, set impact and urgency, move the
//! status, link a problem, escalate, request an approval.
//!
//! This module is the pure part: the format, its validation (every mistake named with its
//! place, so `incidentd playbook test` and start-up can point at it) and the matching.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::event::EventKind;
use super::incident::IncidentStatus;
use super::matcher::{Matcher, MatcherSet};
use super::priority::{Level, Priority};

/// The most steps a playbook may have.
pub const MAX_STEPS: usize = 20;

/// A playbook as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSpec {
    /// Unique name; the actor's name on the timeline.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The events it reacts to (default `incident.opened`).
    #[serde(default = "opened")]
    pub on: Vec<EventKind>,
    /// What the incident must be like.
    #[serde(default)]
    pub when: Conditions,
    /// What it does, in order.
    pub steps: Vec<Step>,
}

fn opened() -> Vec<EventKind> {
    vec![EventKind::IncidentOpened]
}

/// Conditions on the incident; all that are given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Service names (any of them; case-insensitive).
    #[serde(default)]
    pub services: Vec<String>,
    /// Priorities (any of them).
    #[serde(default)]
    pub priorities: Vec<Priority>,
    /// A regular expression the title must contain a match of (`(?i)` for any case).
    #[serde(default)]
    pub title: Option<String>,
    /// Alertmanager-style matchers on the labels of the alert that opened the incident
    /// (an incident opened by hand has none, so `=` matchers fail on it).
    #[serde(default)]
    pub labels: Vec<Matcher>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Comment on the incident; `{{ incident.title }}`, `{{ incident.number }}`,
    /// `{{ incident.priority }}`, `{{ service }}` and `{{ labels.<name> }}` are filled in.
    Comment(String),
    /// Assign to a user and/or a group, by name.
    Assign {
        /// Username.
        #[serde(default)]
        user: Option<String>,
        /// Group name.
        #[serde(default)]
        group: Option<String>,
    },
    /// Set impact and/or urgency (the priority follows).
    Set {
        /// New impact.
        #[serde(default)]
        impact: Option<Level>,
        /// New urgency.
        #[serde(default)]
        urgency: Option<Level>,
    },
    /// Move the incident to a status.
    Transition {
        /// Target status.
        to: IncidentStatus,
        /// Note on the timeline.
        #[serde(default)]
        note: Option<String>,
    },
    /// Link the incident to a problem (a known error, typically).
    LinkProblem(u64),
    /// Page the next escalation level at once.
    Escalate {
        /// Why.
        #[serde(default)]
        note: Option<String>,
    },
    /// Ask for an approval through a workflow, by name.
    RequestApproval {
        /// Workflow name.
        workflow: String,
        /// The request's title (default: the incident's number and title).
        #[serde(default)]
        title: Option<String>,
    },
}

impl Step {
    /// A short name for logs and the timeline.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Comment(_) => "comment",
            Step::Assign { .. } => "assign",
            Step::Set { .. } => "set",
            Step::Transition { .. } => "transition",
            Step::LinkProblem(_) => "link_problem",
            Step::Escalate { .. } => "escalate",
            Step::RequestApproval { .. } => "request_approval",
        }
    }
}

/// A checked playbook, ready to match.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// As written.
    pub spec: PlaybookSpec,
    title: Option<Regex>,
    labels: MatcherSet,
}

/// What a playbook looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<'a> {
    /// The event.
    pub event: EventKind,
    /// The incident's service name.
    pub service: &'a str,
    /// Its priority.
    pub priority: Priority,
    /// Its title.
    pub title: &'a str,
    /// The labels of the alert that opened it (empty when opened by hand).
    pub labels: &'a BTreeMap<String, String>,
}

/// Reads and checks a playbook from YAML; the error names the place and the reason.
///
/// The YAML is read as a plain tree first and mapped from there, so that a step is
/// written as a one-key map (`- comment: text`) rather than as a YAML tag, and a mistake
/// is reported with its path (`steps[1].assign: ...`).
pub fn parse(yaml: &str) -> Result<Playbook, String> {
    let tree: serde_json::Value = yaml_serde::from_str(yaml).map_err(|e| e.to_string())?;
    let spec: PlaybookSpec = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })?;
    Playbook::new(spec)
}

impl Playbook {
    /// Checks `spec`.
    pub fn new(spec: PlaybookSpec) -> Result<Playbook, String> {
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err("name: must be 1 to 100 characters".into());
        }
        if spec.on.is_empty() {
            return Err("on: name at least one event, such as incident.opened".into());
        }
        if let Some(e) = spec.on.iter().find(|e| !e.is_incident()) {
            return Err(format!("on: {e} is not about an incident"));
        }
        if spec.steps.is_empty() {
            return Err("steps: a playbook needs at least one step".into());
        }
        if spec.steps.len() > MAX_STEPS {
            return Err(format!("steps: at most {MAX_STEPS}"));
        }
        for (i, step) in spec.steps.iter().enumerate() {
            check_step(step).map_err(|e| format!("steps[{i}] ({}): {e}", step.kind()))?;
        }
        let title = match &spec.when.title {
            Some(t) => Some(
                Regex::new(t)
                    .map_err(|e| format!("when.title: invalid regular expression: {e}"))?,
            ),
            None => None,
        };
        let labels = MatcherSet::compile(&spec.when.labels)
            .map_err(|(i, e)| format!("when.labels[{i}]: {e}"))?;
        Ok(Playbook {
            spec,
            title,
            labels,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.spec.name.trim()
    }

    /// Whether it reacts to `facts`.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let w = &self.spec.when;
        self.spec.on.contains(&facts.event)
            && (w.services.is_empty()
                || w.services
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(facts.service)))
            && (w.priorities.is_empty() || w.priorities.contains(&facts.priority))
            && self.title.as_ref().is_none_or(|t| t.is_match(facts.title))
            && self.labels.matches(facts.labels)
    }
}

fn check_step(step: &Step) -> Result<(), String> {
    let text = |s: &str, what: &str| {
        if s.trim().is_empty() || s.chars().count() > 10_000 {
            Err(format!("{what} must be 1 to 10000 characters"))
        } else {
            Ok(())
        }
    };
    match step {
        Step::Comment(t) => text(t, "the comment"),
        Step::Assign { user, group } => {
            if user.is_none() && group.is_none() {
                Err("give a user, a group or both".into())
            } else {
                Ok(())
            }
        }
        Step::Set { impact, urgency } => {
            if impact.is_none() && urgency.is_none() {
                Err("give an impact, an urgency or both".into())
            } else {
                Ok(())
            }
        }
        Step::Transition { note, .. } | Step::Escalate { note } => {
            note.as_deref().map_or(Ok(()), |n| text(n, "the note"))
        }
        Step::LinkProblem(id) => {
            if *id == 0 {
                Err("a problem id is a positive number".into())
            } else {
                Ok(())
            }
        }
        Step::RequestApproval { workflow, title } => {
            text(workflow, "the workflow name")?;
            title.as_deref().map_or(Ok(()), |t| text(t, "the title"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: &str = r#"
name: database triage
description: Database alerts go to the DBAs, with the runbook.
on: [incident.opened, incident.reopened]
when:
  services: [Payments]
  priorities: [P1, P2]
  title: "(?i)postgres|replication"
  labels:
    - {name: team, value: "db|storage", is_regex: true}
    - {name: env, value: staging, is_equal: false}
steps:
  - comment: "Runbook for {{ incident.number }}: https://runbooks.example.com/db"
  - assign: {group: dba}
  - set: {urgency: high}
  - transition: {to: in_progress, note: triaged by playbook}
  - link_problem: 7
  - escalate: {}
  - request_approval: {workflow: failover}
"#;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_full_playbook_parses_and_matches_only_what_it_says() {
        let p = parse(DB).expect("valid");
        assert_eq!(p.name(), "database triage");
        assert_eq!(p.spec.steps.len(), 7);
        assert_eq!(p.spec.steps[5], Step::Escalate { note: None });
        let l = labels(&[("team", "db"), ("env", "prod")]);
        let facts = Facts {
            event: EventKind::IncidentOpened,
            service: "payments",
            priority: Priority::P1,
            title: "Postgres replication lag",
            labels: &l,
        };
        assert!(p.matches(&facts));
        assert!(!p.matches(&Facts {
            event: EventKind::IncidentAcknowledged,
            ..facts.clone()
        }));
        assert!(!p.matches(&Facts {
            service: "search",
            ..facts.clone()
        }));
        assert!(!p.matches(&Facts {
            priority: Priority::P3,
            ..facts.clone()
        }));
        assert!(!p.matches(&Facts {
            title: "Disk full",
            ..facts.clone()
        }));
        let staging = labels(&[("team", "storage"), ("env", "staging")]);
        assert!(!p.matches(&Facts {
            labels: &staging,
            ..facts.clone()
        }));
        let none = BTreeMap::new();
        assert!(!p.matches(&Facts {
            labels: &none,
            ..facts
        }));
    }

    #[test]
    fn defaults_react_to_every_opened_incident() {
        let p = parse("name: all\nsteps:\n  - comment: hello\n").expect("valid");
        let none = BTreeMap::new();
        assert!(p.matches(&Facts {
            event: EventKind::IncidentOpened,
            service: "x",
            priority: Priority::P5,
            title: "t",
            labels: &none,
        }));
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        let bad = |yaml: &str, wanted: &str| {
            let e = parse(yaml).expect_err(yaml);
            assert!(e.contains(wanted), "{yaml}\n=> {e}\n(wanted '{wanted}')");
        };
        bad("name: x\nsteps: []\n", "at least one step");
        bad("steps:\n  - comment: x\n", "name");
        bad("name: ''\nsteps:\n  - comment: x\n", "name");
        bad("name: x\non: []\nsteps:\n  - comment: x\n", "on:");
        bad(
            "name: x\non: [incident.exploded]\nsteps:\n  - comment: x\n",
            "incident.exploded",
        );
        bad(
            "name: x\non: [problem.opened]\nsteps:\n  - comment: x\n",
            "not about an incident",
        );
        bad(
            "name: x\nsteps:\n  - comment: x\n  - assign: {}\n",
            "steps[1] (assign)",
        );
        bad("name: x\nsteps:\n  - set: {}\n", "steps[0] (set)");
        bad("name: x\nsteps:\n  - link_problem: 0\n", "positive");
        bad("name: x\nsteps:\n  - reboot: prod\n", "reboot");
        bad("name: x\nsteps:\n  - set: {impact: huge}\n", "huge");
        bad("name: x\nsteps:\n  - transition: {to: done}\n", "done");
        bad(
            "name: x\nwhen: {title: '('}\nsteps:\n  - comment: x\n",
            "when.title",
        );
        bad(
            "name: x\nwhen: {labels: [{name: '', value: a}]}\nsteps:\n  - comment: x\n",
            "when.labels[0]",
        );
        bad(
            "name: x\nwhen: {sevice: a}\nsteps:\n  - comment: x\n",
            "sevice",
        );
        bad(
            "name: x\nsteps:\n  - request_approval: {workflow: ' '}\n",
            "workflow",
        );
        let many = format!(
            "name: x\nsteps:\n{}",
            "  - comment: x\n".repeat(MAX_STEPS + 1)
        );
        bad(&many, "at most");
        bad(": : :", "");
    }
}
