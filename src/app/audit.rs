//! Writing and querying the audit log.

use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde_json::Value;

use super::page::{Page, PageRequest, Take, walk};
use super::{AppError, AppResult, FieldErrors, require};
use crate::domain::actor::{Actor, ActorKind, ActorRef};
use crate::domain::audit::{AuditEntry, AuditTarget};
use crate::domain::permission::Permission;
use crate::store::access::{self, Reader};
use crate::store::keys::Key;
use crate::store::tables::audit_actor::{person as person_key, prefix as actor_key};
use crate::store::{StoreError, tables};

/// Records one mutation inside `tx`.
pub fn record(
    tx: &WriteTransaction,
    at: DateTime<Utc>,
    actor: &ActorRef,
    action: &str,
    target: (&str, u64),
    summary: String,
    changes: Value,
) -> Result<u64, StoreError> {
    let id = access::next_id(tx, tables::AUDIT)?;
    let entry = AuditEntry {
        id,
        at,
        actor: actor.clone(),
        action: action.to_owned(),
        target: AuditTarget {
            kind: target.0.to_owned(),
            id: target.1,
        },
        summary,
        changes,
    };
    access::put(tx, &entry)?;
    access::put_raw(
        tx,
        tables::AUDIT_BY_ACTOR,
        &actor_key(actor.kind, actor.id).u64(id).into_bytes(),
        &[],
    )?;
    // A chat actor is the incidentd user of that id acting from Slack or Discord: the
    // entry is indexed under the person too, so that `?actor=alice` finds it.
    if actor.kind == ActorKind::Chat {
        access::put_raw(tx, tables::AUDIT_BY_ACTOR, &person_key(actor.id, id), &[])?;
    }
    access::put_raw(
        tx,
        tables::AUDIT_BY_TARGET,
        &Key::new().str(target.0).u64(target.1).u64(id).into_bytes(),
        &[],
    )?;
    Ok(id)
}

/// Whom `?actor=` asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActorFilter {
    /// `user:2`, `chat:2`, `system`...: that kind of actor exactly.
    Exactly(ActorKind, u64),
    /// `alice` or `2`: the person, from the API and from chat alike.
    Person(u64),
}

impl ActorFilter {
    fn matches(self, a: &ActorRef) -> bool {
        match self {
            ActorFilter::Exactly(kind, id) => a.kind == kind && a.id == id,
            ActorFilter::Person(id) => {
                matches!(a.kind, ActorKind::User | ActorKind::Chat) && a.id == id
            }
        }
    }

    /// The actor index prefix holding every entry it matches.
    fn index_prefix(self) -> Vec<u8> {
        match self {
            ActorFilter::Exactly(kind, id) => actor_key(kind, id).into_bytes(),
            ActorFilter::Person(id) => actor_key(ActorKind::User, id).into_bytes(),
        }
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// `system`, `<kind>:<id>` (that kind exactly), or a user id or username (the
    /// person: what they did through the API and from chat).
    pub actor: Option<String>,
    /// `<kind>` or `<kind>:<id>`, e.g. `incident:42`, or a number: `INC-42`.
    pub target: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
}

fn parse_actor(r: &impl Reader, s: &str) -> AppResult<ActorFilter> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("system") {
        return Ok(ActorFilter::Exactly(ActorKind::System, 0));
    }
    if let Some((kind, id)) = s.split_once(':') {
        let kind: ActorKind = serde_json::from_value(Value::String(kind.to_ascii_lowercase()))
            .map_err(|_| {
                FieldErrors::single(
                    "actor",
                    "kind must be user, chat, integration, playbook or system",
                )
            })?;
        let id = id
            .parse()
            .map_err(|_| FieldErrors::single("actor", "id must be a number"))?;
        return Ok(ActorFilter::Exactly(kind, id));
    }
    if let Ok(id) = s.parse::<u64>() {
        return Ok(ActorFilter::Person(id));
    }
    match access::get_id(r, tables::USERS_BY_NAME, s.to_lowercase().as_bytes())? {
        Some(id) => Ok(ActorFilter::Person(id)),
        None => Err(FieldErrors::single("actor", format!("no user named '{s}'"))),
    }
}

/// `<kind>`, `<kind>:<id>`, or the number people use (`INC-42`, `PRB-7`, `APR-12`).
fn parse_target(s: &str) -> AppResult<(String, Option<u64>)> {
    let s = s.trim();
    let numbered = [
        (
            "incident",
            crate::domain::incident::parse_incident_ref as fn(&str) -> Option<u64>,
        ),
        ("problem", crate::domain::problem::parse_problem_ref),
        ("approval", crate::domain::approval::parse_approval_ref),
    ];
    for (kind, parse) in numbered {
        if s.contains('-')
            && let Some(id) = parse(s)
        {
            return Ok((kind.to_owned(), Some(id)));
        }
    }
    match s.split_once(':') {
        Some((kind, id)) => {
            let id = id
                .parse()
                .map_err(|_| FieldErrors::single("target", "must be <kind> or <kind>:<id>"))?;
            Ok((kind.to_ascii_lowercase(), Some(id)))
        }
        None if !s.is_empty() => Ok((s.to_ascii_lowercase(), None)),
        None => Err(FieldErrors::single(
            "target",
            "must be <kind> or <kind>:<id>",
        )),
    }
}

/// Lists audit entries, newest first.
pub fn list(
    app: &super::App,
    actor: &Actor,
    query: &AuditQuery,
    page: PageRequest,
) -> AppResult<Page<AuditEntry>> {
    require(actor, Permission::AuditRead)?;
    let r = app.store.read()?;
    let by_actor = query
        .actor
        .as_deref()
        .map(|a| parse_actor(&r, a))
        .transpose()?;
    let by_target = query.target.as_deref().map(parse_target).transpose()?;
    let since = query.since;
    // Candidate ids come from the most selective index whose keys end in the entry id (so
    // it walks in log order); every other filter is checked on the entry. Ids grow with
    // time, so `since` ends the walk.
    let index: Option<(crate::store::tables::Table, Vec<u8>)> = match (&by_target, by_actor) {
        (Some((kind, Some(id))), _) => Some((
            tables::AUDIT_BY_TARGET,
            Key::new().str(kind).u64(*id).into_bytes(),
        )),
        (_, Some(who)) => Some((tables::AUDIT_BY_ACTOR, who.index_prefix())),
        _ => None,
    };
    let take = |entry: &AuditEntry| {
        if since.is_some_and(|s| entry.at < s) {
            return Take::Stop;
        }
        let actor_ok = by_actor.is_none_or(|who| who.matches(&entry.actor));
        let target_ok = by_target.as_ref().is_none_or(|(k, id)| {
            entry.target.kind == *k && id.is_none_or(|id| entry.target.id == id)
        });
        if actor_ok && target_ok {
            Take::Yes
        } else {
            Take::No
        }
    };
    Ok(walk(
        &r,
        index.as_ref().map(|(t, p)| (*t, p.as_slice())),
        page,
        take,
    )?)
}

/// Parses an RFC 3339 `since` parameter.
pub fn parse_since(s: &str) -> AppResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            FieldErrors::single(
                "since",
                "must be an RFC 3339 time such as 2026-01-01T00:00:00Z",
            )
        })
}

/// Not found if the entry is missing (for completeness of the error mapping).
pub fn get(app: &super::App, actor: &Actor, id: u64) -> AppResult<AuditEntry> {
    require(actor, Permission::AuditRead)?;
    let r = app.store.read()?;
    access::get(&r, id)?.ok_or_else(|| AppError::not_found("audit entry", id))
}
