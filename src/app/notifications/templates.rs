//! Message templates (minijinja): one per channel part, shipped in `config/templates/`,
//! overridable per event and channel through the API. A template that does not compile is
//! refused with its line.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::app::{App, AppError, AppResult, FieldErrors, require};
use crate::domain::actor::Actor;
use crate::domain::event::{DomainEvent, EventKind};
use crate::domain::identity::User;
use crate::domain::incident::Incident;
use crate::domain::notification::ChannelKind;
use crate::domain::permission::Permission;
use crate::domain::problem::Problem;
use crate::domain::service::Service;
use crate::store::access::{self, Order, Reader};
use crate::store::keys::Key;
use crate::store::{StoreError, tables};

/// The shipped templates: (channel, part, source).
pub const DEFAULTS: &[(ChannelKind, &str, &str)] = &[
    (
        ChannelKind::Email,
        "subject",
        include_str!("../../../config/templates/email.subject.j2"),
    ),
    (
        ChannelKind::Email,
        "body",
        include_str!("../../../config/templates/email.body.j2"),
    ),
    (
        ChannelKind::Sms,
        "body",
        include_str!("../../../config/templates/sms.j2"),
    ),
    (
        ChannelKind::Voice,
        "body",
        include_str!("../../../config/templates/voice.j2"),
    ),
];

/// "Every event" in an override's `event`.
pub const ANY_EVENT: &str = "*";

/// A template override as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateOverride {
    /// An event name, or `*` for every event.
    pub event: String,
    /// The channel.
    pub channel: ChannelKind,
    /// `subject` (e-mail) or `body`.
    pub part: String,
    /// minijinja source.
    pub source: String,
    /// Who set it.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// A template as the API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateView {
    /// An event name, or `*`.
    pub event: String,
    /// The channel.
    pub channel: ChannelKind,
    /// `subject` or `body`.
    pub part: String,
    /// minijinja source.
    pub source: String,
    /// Shipped with incidentd (not overridden).
    pub builtin: bool,
}

/// Setting an override.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTemplate {
    /// An event name, or `*` (default) for every event.
    #[serde(default)]
    pub event: Option<String>,
    /// `email`, `sms` or `voice`.
    pub channel: ChannelKind,
    /// `subject` (e-mail only) or `body`.
    pub part: String,
    /// minijinja source.
    pub source: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// E-mail subject.
    pub subject: Option<String>,
    /// The text.
    pub body: String,
}

fn key(event: &str, channel: ChannelKind, part: &str) -> Vec<u8> {
    Key::new()
        .str(event)
        .str(channel.as_str())
        .str(part)
        .into_bytes()
}

fn shipped(channel: ChannelKind, part: &str) -> Option<&'static str> {
    DEFAULTS
        .iter()
        .find(|(c, p, _)| *c == channel && *p == part)
        .map(|(_, _, s)| *s)
}

/// The work one render may do (minijinja fuel: about one per instruction and one per 64
/// bytes of data made): the shipped templates use a few hundred; a loop of a hundred million
/// steps in an override fails after about a millisecond and a few MiB instead of holding a
/// thread (and the deliveries behind it) forever. Playbook texts get the same budget.
pub(crate) const RENDER_FUEL: u64 = 200_000;

/// Why a template failed, with its line.
fn describe(e: &minijinja::Error) -> String {
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("{}{line}", e.detail().unwrap_or(&e.kind().to_string()))
}

/// Checks that a template compiles, and that it renders example events without a mistake
/// that no event could avoid: an unknown function, filter, test or method, or more work
/// than a render may do, on any example; any error at all on every example (an incident
/// event and a problem event: `range(100000000)` fails on both, `problem.title | upper`
/// only where there is no problem). The error names the line. Mistakes that depend on the
/// event's data are left to the delivery, which fails permanently and says so.
pub fn compile_check(source: &str) -> Result<(), String> {
    use minijinja::ErrorKind::*;
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| format!("does not compile: {}", describe(&e)))?;
    let mut first_error = None;
    let mut rendered_one = false;
    for example in example_contexts() {
        match template.render(minijinja::value::Serde(example)) {
            Err(e)
                if matches!(
                    e.kind(),
                    UnknownFunction | UnknownFilter | UnknownTest | UnknownMethod | OutOfFuel
                ) =>
            {
                return Err(format!("fails on an example event: {}", describe(&e)));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(_) => rendered_one = true,
        }
    }
    match first_error {
        Some(e) if !rendered_one => Err(format!("fails on every example event: {}", describe(&e))),
        _ => Ok(()),
    }
}

/// Events as templates see them ([`context`]), for [`compile_check`]: an incident's, a
/// problem's and an approval's (whose data the others lack).
fn example_contexts() -> [Value; 3] {
    let site = json!({"name": "incidentd", "url": "http://localhost:8080"});
    [
        json!({
            "event": {"kind": "incident.opened", "headline": "opened", "actor": "admin",
                "data": {}},
            "incident": {"id": 1, "number": "INC-1", "title": "Checkout is slow", "priority": "P1",
                "priority_rank": 1, "impact": "high", "urgency": "high", "status": "new",
                "service": "Default", "url": "http://localhost:8080/api/v1/incidents/1",
                "alert_count": 1, "firing_alerts": 1},
            "problem": null,
            "site": site,
        }),
        json!({
            "event": {"kind": "problem.opened", "headline": "recorded", "actor": "admin",
                "data": {}},
            "incident": null,
            "problem": {"id": 1, "number": "PRB-1", "title": "Disk fills up", "status": "open",
                "root_cause": null, "workaround": null,
                "url": "http://localhost:8080/api/v1/problems/1"},
            "site": site,
        }),
        json!({
            "event": {"kind": "approval.requested", "headline": "APR-1 requested by admin",
                "actor": "admin",
                "data": {"approval_id": 1, "number": "APR-1", "title": "Fail over",
                    "status": "pending", "level": 1, "level_name": "lead", "workflow": "Change",
                    "summary": "APR-1 requested by admin", "expires_at": "2026-01-01T00:00:00Z"}},
            "incident": null,
            "problem": null,
            "site": site,
        }),
    ]
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(RENDER_FUEL));
    // Jinja's `truncate`, which the shipped SMS template uses; minijinja only has it in
    // its contrib crate.
    env.add_filter("truncate", truncate);
    env
}

/// Jinja's `truncate(s, length=255, killwords=false, end='...', leeway=5)`: text at most
/// `leeway` characters too long is kept; longer text is cut (at a word boundary unless
/// `killwords`) so that with `end` it is `length` characters.
fn truncate(
    s: String,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    leeway: Option<usize>,
) -> String {
    let length = length.unwrap_or(255);
    let end = end.unwrap_or_else(|| "...".into());
    if s.chars().count() <= length + leeway.unwrap_or(5) {
        return s;
    }
    let keep: String = s
        .chars()
        .take(length.saturating_sub(end.chars().count()))
        .collect();
    let cut = if killwords.unwrap_or(false) {
        keep.as_str()
    } else {
        keep.rsplit_once(' ')
            .map_or(keep.as_str(), |(head, _)| head)
    };
    format!("{cut}{end}")
}

fn validate(input: &SetTemplate) -> AppResult<(String, String)> {
    let mut e = FieldErrors::new();
    let event = input.event.clone().unwrap_or_else(|| ANY_EVENT.to_owned());
    if event != ANY_EVENT && event.parse::<EventKind>().is_err() {
        e.add("event", format!("'{event}' is not an event name (or '*')"));
    }
    let part = input.part.trim().to_ascii_lowercase();
    if shipped(input.channel, &part).is_none() {
        e.add(
            "part",
            format!(
                "{} has no template part '{part}' (e-mail: subject, body; sms, voice: body)",
                input.channel
            ),
        );
    }
    if input.source.len() > 64 * 1024 {
        e.add("source", "must be at most 64 KiB");
    } else if let Err(m) = compile_check(&input.source) {
        e.add("source", m);
    }
    e.into_result()?;
    Ok((event, part))
}

/// Every template: the shipped ones and the overrides (needs `notification:read`).
pub fn list(app: &App, actor: &Actor) -> AppResult<Vec<TemplateView>> {
    require(actor, Permission::NotificationRead)?;
    let r = app.store.read()?;
    let mut out: Vec<TemplateView> = DEFAULTS
        .iter()
        .map(|(c, p, s)| TemplateView {
            event: ANY_EVENT.into(),
            channel: *c,
            part: (*p).into(),
            source: (*s).into(),
            builtin: true,
        })
        .collect();
    r.scan_raw(
        tables::TEMPLATES,
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        Order::Asc,
        &mut |_, v| {
            let o: TemplateOverride = access::decode(tables::TEMPLATES, v)?;
            out.retain(|t| {
                !(t.builtin && t.event == o.event && t.channel == o.channel && t.part == o.part)
            });
            out.push(TemplateView {
                event: o.event,
                channel: o.channel,
                part: o.part,
                source: o.source,
                builtin: false,
            });
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    Ok(out)
}

/// Sets an override (needs `notification:write`); 422 with the line if it does not compile
/// or fails on any event ([`compile_check`]).
pub async fn set(app: &App, actor: &Actor, input: SetTemplate) -> AppResult<TemplateView> {
    require(actor, Permission::NotificationWrite)?;
    let (event, part) = validate(&input)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let channel = input.channel;
    let source = input.source.clone();
    let stored_part = part.clone();
    app.store
        .write(move |tx| {
            let k = key(&event, channel, &part);
            let before: Option<TemplateOverride> = access::get_json(tx, tables::TEMPLATES, &k)?;
            let o = TemplateOverride {
                event: event.clone(),
                channel,
                part: part.clone(),
                source: source.clone(),
                updated_by: who.name.clone(),
                updated_at: now,
            };
            access::put_json(tx, tables::TEMPLATES, &k, &o)?;
            let changes = json!({"source": {"from": before.map(|b| b.source), "to": source}});
            crate::app::audit::record(
                tx,
                now,
                &who,
                "notification_template.set",
                ("notification_template", 0),
                format!("set the {channel} {part} template for {event}"),
                changes,
            )?;
            Ok::<_, AppError>(())
        })
        .await?;
    Ok(TemplateView {
        event: input.event.unwrap_or_else(|| ANY_EVENT.into()),
        channel,
        // As stored (and as DELETE finds it): `Subject` is `subject`.
        part: stored_part,
        source: input.source,
        builtin: false,
    })
}

/// Removes an override, restoring the next more general template (needs
/// `notification:write`).
pub async fn reset(
    app: &App,
    actor: &Actor,
    event: String,
    channel: ChannelKind,
    part: String,
) -> AppResult<()> {
    require(actor, Permission::NotificationWrite)?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    let part = part.trim().to_ascii_lowercase();
    app.store
        .write(move |tx| {
            let k = key(&event, channel, &part);
            if !access::delete_raw(tx, tables::TEMPLATES, &k)? {
                return Err(AppError::not_found(
                    "template override",
                    format!("{event}/{channel}/{part}"),
                ));
            }
            crate::app::audit::record(
                tx,
                now,
                &who,
                "notification_template.reset",
                ("notification_template", 0),
                format!("reset the {channel} {part} template for {event}"),
                json!({}),
            )?;
            Ok(())
        })
        .await
}

/// The source in force for an event, channel and part.
fn source_for(
    r: &impl Reader,
    event: EventKind,
    channel: ChannelKind,
    part: &str,
) -> Result<Option<String>, StoreError> {
    for ev in [event.as_str(), ANY_EVENT] {
        if let Some(o) =
            access::get_json::<TemplateOverride>(r, tables::TEMPLATES, &key(ev, channel, part))?
        {
            return Ok(Some(o.source));
        }
    }
    Ok(shipped(channel, part).map(str::to_owned))
}

/// Renders the message of `channel` for a context built by [`context`].
pub fn render(
    r: &impl Reader,
    channel: ChannelKind,
    event: EventKind,
    ctx: &Value,
) -> Result<Result<Rendered, String>, StoreError> {
    let env = environment();
    let render_part = |part: &str| -> Result<Option<Result<String, String>>, StoreError> {
        Ok(source_for(r, event, channel, part)?.map(|src| {
            env.render_str(&src, minijinja::value::Serde(ctx))
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("the {channel} {part} template failed: {}", describe(&e)))
        }))
    };
    let subject = match render_part("subject")? {
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let body = match render_part("body")? {
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(b)) => b,
        None => String::new(),
    };
    Ok(Ok(Rendered { subject, body }))
}

/// What happened, in a few words, as of the event (a message sent late, after a retry or
/// a delayed page step, still says what this event did; `assigned` is the assignee the
/// event names).
fn headline(event: &DomainEvent, assigned: Option<&str>) -> String {
    let actor = &event.actor.name;
    let to = event.data.get("to").and_then(Value::as_str).unwrap_or("");
    match event.kind {
        EventKind::IncidentOpened => "opened".into(),
        EventKind::IncidentAcknowledged => format!("acknowledged by {actor}"),
        EventKind::IncidentResolved => format!("resolved by {actor}"),
        EventKind::IncidentReopened => format!("reopened by {actor}"),
        EventKind::IncidentClosed => {
            format!("{} by {actor}", if to.is_empty() { "closed" } else { to })
        }
        EventKind::IncidentStatusChanged => format!("moved to {to} by {actor}"),
        EventKind::IncidentAssigned => match assigned {
            Some(a) => format!("assigned to {a}"),
            None => format!("reassigned by {actor}"),
        },
        EventKind::IncidentCommented => format!("comment from {actor}"),
        EventKind::IncidentUpdated => format!("updated by {actor}"),
        EventKind::IncidentEscalated => "escalated".into(),
        EventKind::IncidentPaged => format!(
            "paging level {} of '{}'",
            event.data.get("level").and_then(Value::as_u64).unwrap_or(1),
            event
                .data
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        EventKind::IncidentAlertsChanged => format!(
            "{} of {} alerts firing",
            event
                .data
                .get("firing")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            event.data.get("total").and_then(Value::as_u64).unwrap_or(0)
        ),
        EventKind::ProblemOpened => "recorded".into(),
        EventKind::ProblemUpdated => format!("updated by {actor}"),
        EventKind::ProblemStatusChanged => format!("status changed by {actor}"),
        EventKind::ProblemKnownError => "is now a known error".into(),
        EventKind::ProblemLinked => format!("linked by {actor}"),
        EventKind::ProblemUnlinked => format!("unlinked by {actor}"),
        EventKind::ApprovalRequested
        | EventKind::ApprovalApproved
        | EventKind::ApprovalRejected
        | EventKind::ApprovalCancelled
        | EventKind::ApprovalExpired => event
            .data
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// What templates see: `event`, `incident`, `problem` and `site`.
pub fn context(r: &impl Reader, base_url: &str, event: &DomainEvent) -> Result<Value, StoreError> {
    let incident = match event.incident_id {
        Some(id) => access::get::<Incident>(r, id)?,
        None => None,
    };
    let problem = match event.problem_id {
        Some(id) => access::get::<Problem>(r, id)?,
        None => None,
    };
    let assignee = match incident.as_ref().and_then(|i| i.assignee_id) {
        Some(id) => access::get::<User>(r, id)?.map(|u| u.username),
        None => None,
    };
    // Whom the event assigned the incident to (it may have moved on since).
    let assigned = match event.data.get("assignee_id").and_then(Value::as_u64) {
        Some(id) if event.kind == EventKind::IncidentAssigned => {
            access::get::<User>(r, id)?.map(|u| u.username)
        }
        _ => None,
    };
    let incident_json = match &incident {
        Some(i) => {
            let service = access::get::<Service>(r, i.service_id)?
                .map(|s| s.name)
                .unwrap_or_default();
            let runbook = crate::app::alerts::runbook_of(r, i.id)?;
            json!({
                "id": i.id, "number": i.number(), "title": i.title, "description": i.description,
                "status": i.status, "priority": i.priority, "priority_rank": i.priority.rank(),
                "impact": i.impact, "urgency": i.urgency, "service": service, "service_id": i.service_id,
                "assignee": assignee, "alert_count": i.alert_count, "firing_alerts": i.firing_alerts,
                "created_at": i.created_at, "runbook": runbook,
                "url": format!("{base_url}/api/v1/incidents/{}", i.id),
            })
        }
        None => Value::Null,
    };
    let problem_json = match &problem {
        Some(p) => json!({
            "id": p.id, "number": p.number(), "title": p.title, "status": p.status,
            "root_cause": p.root_cause, "workaround": p.workaround,
            "url": format!("{base_url}/api/v1/problems/{}", p.id),
        }),
        None => Value::Null,
    };
    Ok(json!({
        "event": {
            "kind": event.kind, "at": event.at, "actor": event.actor.name, "seq": event.seq,
            "headline": headline(event, assigned.as_deref()),
            "note": event.data.get("note").and_then(Value::as_str),
            "comment": event.data.get("body").and_then(Value::as_str),
            "data": event.data,
        },
        "incident": incident_json,
        "problem": problem_json,
        "site": {"name": "incidentd", "url": base_url},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_compile() {
        for (c, p, s) in DEFAULTS {
            assert_eq!(compile_check(s), Ok(()), "{c} {p}");
        }
    }

    #[test]
    fn shipped_templates_render() {
        let ctx = json!({
            "event": {"kind": "incident.opened", "headline": "opened", "actor": "admin"},
            "incident": {"id": 7, "number": "INC-7", "title": "x ".repeat(80), "priority": "P1",
                "priority_rank": 1, "impact": "high", "urgency": "high", "status": "new",
                "service": "Default", "url": "http://h/api/v1/incidents/7",
                "alert_count": 0, "firing_alerts": 0},
            "problem": null,
            "site": {"name": "incidentd", "url": "http://h"},
        });
        let env = environment();
        for (c, p, s) in DEFAULTS {
            let out = env
                .render_str(s, minijinja::value::Serde(&ctx))
                .unwrap_or_else(|e| panic!("{c} {p}: {e:#}"));
            assert!(out.contains("7"), "{c} {p}: {out}");
        }
    }

    #[test]
    fn shipped_templates_say_which_approval_and_what_happened() {
        let summary = "APR-12 requested by alice: Fail over (level 1, 'manager')";
        for incident in [
            Value::Null,
            json!({"id": 7, "number": "INC-7", "title": "DB down",
            "url": "http://h/api/v1/incidents/7", "priority": "P1", "priority_rank": 1}),
        ] {
            let ctx = json!({
                "event": {"kind": "approval.requested", "headline": summary, "actor": "alice",
                    "data": {"approval_id": 12, "number": "APR-12", "title": "Fail over",
                        "status": "pending", "level": 1, "level_name": "manager", "workflow": "Failover"}},
                "incident": incident,
                "problem": null,
                "site": {"name": "incidentd", "url": "http://h"},
            });
            let env = environment();
            for (c, p, s) in DEFAULTS {
                let out = env
                    .render_str(s, minijinja::value::Serde(&ctx))
                    .unwrap_or_else(|e| panic!("{c} {p}: {e:#}"));
                assert!(out.contains("APR-12"), "{c} {p}: {out}");
                assert!(!out.contains("approval.requested"), "{c} {p}: {out}");
            }
        }
    }

    /// The requester of an expired (or decided) request is not told to decide; an approver
    /// asked is told by when.
    #[test]
    fn only_a_request_asks_for_a_decision_and_says_by_when() {
        let event = |kind: &str, status: &str| {
            json!({
                "event": {"kind": kind, "headline": "APR-12 ...", "actor": "system",
                    "data": {"approval_id": 12, "number": "APR-12", "title": "Fail over",
                        "status": status, "level": 1, "level_name": "manager", "workflow": "Failover",
                        "expires_at": "2026-12-02T10:00:00Z"}},
                "incident": null, "problem": null,
                "site": {"name": "incidentd", "url": "http://h"},
            })
        };
        let env = environment();
        let body = |ctx: Value| {
            let (_, _, source) = DEFAULTS
                .iter()
                .find(|(c, p, _)| *c == ChannelKind::Email && *p == "body")
                .expect("the e-mail body");
            env.render_str(source, minijinja::value::Serde(&ctx))
                .expect("renders")
        };
        let asked = body(event("approval.requested", "pending"));
        assert!(asked.contains("Decide with POST"), "{asked}");
        assert!(asked.contains("Deadline:  2026-12-02T10:00:00Z"), "{asked}");
        for (kind, status) in [
            ("approval.expired", "expired"),
            ("approval.approved", "approved"),
            ("approval.rejected", "rejected"),
            ("approval.cancelled", "cancelled"),
        ] {
            let told = body(event(kind, status));
            assert!(told.contains(&format!("Status:    {status}")), "{told}");
            assert!(
                !told.contains("Decide") && !told.contains("Deadline"),
                "{kind}: {told}"
            );
        }
    }

    #[test]
    fn truncate_is_jinjas() {
        let t = |s: &str, n| truncate(s.into(), Some(n), None, None, None);
        assert_eq!(t("short", 10), "short");
        assert_eq!(
            t("exactly within the leeway", 20),
            "exactly within the leeway"
        );
        assert_eq!(t("the quick brown fox jumps over", 16), "the quick...");
        assert_eq!(
            truncate(
                "abcdefghijklmnop".into(),
                Some(8),
                Some(true),
                Some("~".into()),
                Some(0)
            ),
            "abcdefg~"
        );
    }

    /// A template that no event could render is refused; one that fails only on some data
    /// is left to the delivery (which says why); a runaway one cannot hold a thread.
    #[test]
    fn templates_that_fail_on_every_event_are_refused() {
        for bad in [
            "{{ undefined_fn() }}",
            "{{ incident.title | no_such_filter }}",
            "{% if incident is no_such_test %}x{% endif %}",
            "a\n{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
        ] {
            let e = compile_check(bad).expect_err(bad);
            assert!(e.contains("example event"), "{bad}: {e}");
        }
        // Whatever the data, more than minijinja's range allows fails every render.
        let e = compile_check("{% for i in range(100000000) %}x{% endfor %}")
            .expect_err("too long a range");
        assert!(e.contains("every example event"), "{e}");
        assert!(compile_check("a\n{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}").is_err_and(|e| e.contains("line 2")));
        for data_dependent in [
            "{{ event.data.level + 1 }}",
            "{{ problem.title }}",
            "{{ problem.title | upper }}",
            "{{ incident.alert_count + 1 }}",
        ] {
            assert_eq!(compile_check(data_dependent), Ok(()), "{data_dependent}");
        }
        let started = std::time::Instant::now();
        let env = environment();
        let runaway = env.render_str(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            minijinja::value::Serde(&example_contexts()[0]),
        );
        assert_eq!(
            runaway.map_err(|e| e.kind()),
            Err(minijinja::ErrorKind::OutOfFuel)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = compile_check("fine\n{% if x %}\nno end").expect_err("unclosed");
        assert!(e.contains("line"), "{e}");
        let e = compile_check("a\nb {{ x | }}").expect_err("bad filter");
        assert!(e.contains("(line 2)"), "{e}");
    }
}
