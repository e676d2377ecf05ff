//! Ordered, embedded migrations.
//!
//! Each migration is a file in `migrations/` compiled into the binary and a function that
//! applies it inside one write transaction. The store records the schema version it has
//! reached; a store whose version is above the newest known here was written by a newer
//! incidentd and is refused rather than misread.

use chrono::{DateTime, Utc};
use redb::{Database, Durability, ReadableDatabase, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::access::{self, Reader};
use super::error::StoreError;
use super::keys::{Key, id_from_key, id_key};
use super::tables;
use crate::domain::identity::Role;
use crate::domain::priority::PriorityMatrix;
use crate::domain::service::Service;

/// The META key holding the schema version.
const VERSION_KEY: &[u8] = b"schema_version";

/// The META key holding the priority matrix in force.
pub const PRIORITY_MATRIX_KEY: &[u8] = b"settings/priority_matrix";

/// One migration.
pub struct Migration {
    /// Its position: 1, 2, ...
    pub version: u64,
    /// Short name (the file name without number and extension).
    pub name: &'static str,
    /// The embedded file.
    pub source: &'static str,
    apply: fn(&WriteTransaction, &'static str) -> Result<(), StoreError>,
}

/// Every migration, in order. A test checks this list against the `migrations/` folder.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        source: include_str!("../../migrations/0001_initial.toml"),
        apply: apply_initial,
    },
    Migration {
        version: 2,
        name: "binary_alerts",
        source: include_str!("../../migrations/0002_binary_alerts.toml"),
        apply: apply_binary_alerts,
    },
    Migration {
        version: 3,
        name: "escalation_refs",
        source: include_str!("../../migrations/0003_escalation_refs.toml"),
        apply: apply_escalation_refs,
    },
    Migration {
        version: 4,
        name: "heartbeat_permissions",
        source: include_str!("../../migrations/0004_heartbeat_permissions.toml"),
        apply: apply_heartbeat_permissions,
    },
    Migration {
        version: 5,
        name: "silenced_alert_index",
        source: include_str!("../../migrations/0005_silenced_alert_index.toml"),
        apply: apply_silenced_alert_index,
    },
    Migration {
        version: 6,
        name: "known_error_is_a_status",
        source: include_str!("../../migrations/0006_known_error_is_a_status.toml"),
        apply: apply_known_error_is_a_status,
    },
    Migration {
        version: 7,
        name: "audit_person_index",
        source: include_str!("../../migrations/0007_audit_person_index.toml"),
        apply: apply_audit_person_index,
    },
];

/// The newest schema version this binary knows.
pub fn latest_version() -> u64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What `migrate --status` shows for one migration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MigrationStatus {
    /// Version.
    pub version: u64,
    /// Name.
    pub name: String,
    /// When it was applied, if it was.
    pub applied_at: Option<DateTime<Utc>>,
}

/// The schema version recorded in the store (0 for a new store).
pub fn current_version(r: &impl Reader) -> Result<u64, StoreError> {
    Ok(r.get_raw(tables::META, VERSION_KEY)?
        .and_then(|b| id_from_key(&b))
        .unwrap_or(0))
}

/// Applied and pending migrations, plus any version in the store this binary does not know.
pub fn status(db: &Database) -> Result<(u64, Vec<MigrationStatus>), StoreError> {
    status_from(&db.begin_read()?)
}

/// Like [`status`], from an open snapshot.
pub fn status_from(r: &impl Reader) -> Result<(u64, Vec<MigrationStatus>), StoreError> {
    let version = current_version(r)?;
    let mut out = Vec::new();
    for m in MIGRATIONS {
        let applied_at =
            access::get_json::<AppliedRecord>(r, tables::META, &applied_key(m.version))?
                .map(|a| a.applied_at);
        out.push(MigrationStatus {
            version: m.version,
            name: m.name.to_owned(),
            applied_at,
        });
    }
    Ok((version, out))
}

#[derive(Debug, Serialize, Deserialize)]
struct AppliedRecord {
    name: String,
    applied_at: DateTime<Utc>,
}

fn applied_key(version: u64) -> Vec<u8> {
    Key::new().str("migration").u64(version).into_bytes()
}

/// Brings the store up to date; refuses a store from a newer version.
pub fn run(db: &Database) -> Result<u64, StoreError> {
    let found = current_version(&db.begin_read()?)?;
    let supported = latest_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    // Tables added by a newer build of the same schema version are created here too, so
    // that readers never meet a missing table.
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    for table in tables::ALL {
        tx.open_table(*table)?;
    }
    tx.commit()?;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        (m.apply)(&tx, m.source)?;
        access::put_raw(&tx, tables::META, VERSION_KEY, &id_key(m.version))?;
        access::put_json(
            &tx,
            tables::META,
            &applied_key(m.version),
            &AppliedRecord {
                name: m.name.to_owned(),
                applied_at: Utc::now(),
            },
        )?;
        tx.commit()?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(supported)
}

/// Writes `version` as the store's schema version; for tests of the newer-store refusal.
pub fn force_version(db: &Database, version: u64) -> Result<(), StoreError> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    access::put_raw(&tx, tables::META, VERSION_KEY, &id_key(version))?;
    tx.commit()?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InitialData {
    #[allow(dead_code)]
    description: String,
    roles: Vec<SeedRole>,
    services: Vec<SeedService>,
    priority_matrix: PriorityMatrix,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRole {
    name: String,
    description: String,
    permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedService {
    id: u64,
    name: String,
    description: String,
}

fn apply_initial(tx: &WriteTransaction, source: &'static str) -> Result<(), StoreError> {
    let data: InitialData = toml::from_str(source)
        .map_err(|e| StoreError::Internal(format!("migration 0001 is malformed: {e}")))?;
    let now = Utc::now();
    for seed in data.roles {
        crate::domain::permission::validate_names(&seed.permissions)
            .map_err(|e| StoreError::Internal(format!("migration 0001: {e}")))?;
        let id = access::next_id(tx, tables::ROLES)?;
        let role = Role {
            id,
            name: seed.name,
            description: seed.description,
            permissions: seed.permissions,
            builtin: true,
            created_at: now,
            updated_at: now,
        };
        access::put_id(
            tx,
            tables::ROLES_BY_NAME,
            role.name.to_lowercase().as_bytes(),
            id,
        )?;
        access::put(tx, &role)?;
    }
    for seed in data.services {
        let service = Service {
            id: seed.id,
            name: seed.name,
            description: seed.description,
            owner_group_id: None,
            escalation_policy_id: None,
            tier: None,
            chat_channel: None,
            discord_channel: None,
            created_at: now,
            updated_at: now,
        };
        access::bump_sequence(tx, tables::SERVICES, service.id)?;
        access::put_id(
            tx,
            tables::SERVICES_BY_NAME,
            service.name.to_lowercase().as_bytes(),
            service.id,
        )?;
        access::put(tx, &service)?;
    }
    access::put_json(tx, tables::META, PRIORITY_MATRIX_KEY, &data.priority_matrix)?;
    Ok(())
}

/// Rewrites every alert stored as JSON in the binary layout, a slice of the table at a
/// time (a scan may not write to the table it walks).
fn apply_binary_alerts(tx: &WriteTransaction, _source: &'static str) -> Result<(), StoreError> {
    use super::access::Record;
    use crate::domain::alert::Alert;
    const SLICE: usize = 4096;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut rewrites: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        let mut seen = 0;
        let start = after
            .as_deref()
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        tx.scan_raw(
            tables::ALERTS,
            start,
            std::ops::Bound::Unbounded,
            access::Order::Asc,
            &mut |k, v| {
                if v.first() == Some(&b'{') {
                    rewrites.push((k.to_vec(), Alert::from_bytes(v)?.to_bytes()?));
                }
                last = Some(k.to_vec());
                seen += 1;
                Ok(if seen >= SLICE {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                })
            },
        )?;
        for (k, v) in &rewrites {
            access::put_raw(tx, tables::ALERTS, k, v)?;
        }
        match last {
            Some(k) if seen >= SLICE => after = Some(k),
            _ => return Ok(()),
        }
    }
}

/// Clears `escalation_policy_id` wherever it names no escalation policy.
fn apply_escalation_refs(tx: &WriteTransaction, _source: &'static str) -> Result<(), StoreError> {
    use crate::domain::escalation::EscalationPolicy;
    let dangling = |id: Option<u64>| -> Result<bool, StoreError> {
        Ok(match id {
            Some(id) => access::get::<EscalationPolicy>(tx, id)?.is_none(),
            None => false,
        })
    };
    // A slice at a time: a store may hold millions of incidents.
    const SLICE: usize = 4096;
    macro_rules! clear {
        ($t:ty) => {
            let mut after = None;
            loop {
                let slice = access::list::<$t>(tx, after, access::Order::Asc, SLICE)?;
                for r in &slice {
                    if dangling(r.escalation_policy_id)? {
                        let mut r = r.clone();
                        r.escalation_policy_id = None;
                        access::put(tx, &r)?;
                    }
                }
                match slice.last() {
                    Some(last) if slice.len() == SLICE => after = Some(last.id),
                    _ => break,
                }
            }
        };
    }
    clear!(crate::domain::service::Service);
    clear!(crate::domain::integration::Integration);
    clear!(crate::domain::silence::RoutingRule);
    clear!(crate::domain::incident::Incident);
    Ok(())
}

/// Files every audit entry indexed under a chat actor under the user of that id as well
/// (see the migration's file). Reads only the index: `(kind, actor id, entry id)` keys.
fn apply_audit_person_index(
    tx: &WriteTransaction,
    _source: &'static str,
) -> Result<(), StoreError> {
    use crate::domain::actor::ActorKind;
    use std::ops::ControlFlow;
    let mut found = Vec::new();
    access::scan_prefix(
        tx,
        tables::AUDIT_BY_ACTOR,
        &[ActorKind::Chat.code()],
        None,
        access::Order::Asc,
        &mut |k, _| {
            let mut key = crate::store::keys::KeyReader::new(&k[1..]);
            if let (Some(user), Some(entry)) = (key.u64(), key.u64()) {
                found.push((user, entry));
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    for (user, entry) in found {
        access::put_raw(
            tx,
            tables::AUDIT_BY_ACTOR,
            &tables::audit_actor::person(user, entry),
            &[],
        )?;
    }
    Ok(())
}

/// Indexes every firing alert muted by a silence that has not ended under that silence
/// (field [`tables::alert_field::SILENCE`]), as `app::alerts` does for alerts it stores.
/// Alerts of silences that ended before the upgrade are left as they were (released on
/// their sender's next repeat, as before): releasing months of them at once would page
/// for what nobody has watched since.
fn apply_silenced_alert_index(
    tx: &WriteTransaction,
    _source: &'static str,
) -> Result<(), StoreError> {
    use crate::domain::alert::{Alert, AlertState};
    use crate::domain::silence::Silence;
    use tables::alert_field as field;
    let now = Utc::now();
    let mut not_ended_silences = std::collections::HashMap::new();
    let prefix = Key::new()
        .u8(field::STATE)
        .u64(u64::from(AlertState::Firing.code()))
        .into_bytes();
    for id in access::ids_with_prefix(tx, tables::ALERT_INDEX, &prefix, usize::MAX)? {
        if let Some(a) = access::get::<Alert>(tx, id)?
            && a.state == AlertState::Firing
            && let Some(silence) = a.silenced_by
        {
            let not_ended = match not_ended_silences.get(&silence) {
                Some(known) => *known,
                None => {
                    let live =
                        access::get::<Silence>(tx, silence)?.is_some_and(|s| s.ends_at > now);
                    not_ended_silences.insert(silence, live);
                    live
                }
            };
            if !not_ended {
                continue;
            }
            let key = Key::new()
                .u8(field::SILENCE)
                .u64(silence)
                .u64(id)
                .into_bytes();
            access::put_raw(tx, tables::ALERT_INDEX, &key, &[])?;
        }
    }
    Ok(())
}

/// Problems that were known errors only by having a workaround leave the known-error
/// index and counter (see the migration's file).
fn apply_known_error_is_a_status(
    tx: &WriteTransaction,
    _source: &'static str,
) -> Result<(), StoreError> {
    use crate::domain::problem::{Problem, ProblemStatus};
    use tables::problem_field as field;
    for p in access::list::<Problem>(tx, None, access::Order::Asc, usize::MAX)? {
        let was = p.status.is_open()
            && p.workaround
                .as_deref()
                .is_some_and(|w| !w.trim().is_empty());
        if was && p.status != ProblemStatus::KnownError {
            let key = Key::new()
                .u8(field::KNOWN_ERROR)
                .u64(1)
                .u64(p.id)
                .into_bytes();
            if access::delete_raw(tx, tables::PROBLEM_INDEX, &key)? {
                access::add_counter(tx, "prb/known_errors", -1)?;
            }
        }
    }
    Ok(())
}

/// Roles holding `integration:read|write` get `heartbeat:read|write`.
fn apply_heartbeat_permissions(
    tx: &WriteTransaction,
    _source: &'static str,
) -> Result<(), StoreError> {
    for mut role in access::list::<Role>(tx, None, access::Order::Asc, usize::MAX)? {
        let before = role.permissions.len();
        for (held, added) in [
            ("integration:read", "heartbeat:read"),
            ("integration:write", "heartbeat:write"),
        ] {
            if role.permissions.iter().any(|p| p == held) {
                role.permissions.push(added.to_owned());
            }
        }
        role.permissions.sort();
        role.permissions.dedup();
        if role.permissions.len() != before {
            access::put(tx, &role)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_matches_the_migrations_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let expected: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.toml", m.version, m.name))
            .collect();
        assert_eq!(files, expected);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.version,
                i as u64 + 1,
                "versions are 1, 2, ... without gaps"
            );
        }
    }

    #[test]
    fn initial_data_parses() {
        let data: InitialData = toml::from_str(MIGRATIONS[0].source).expect("parses");
        let names: Vec<&str> = data.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Admin", "Manager", "Engineer", "Viewer"]);
        assert_eq!(data.priority_matrix, PriorityMatrix::default());
        assert_eq!(
            data.services[0].id,
            crate::domain::service::DEFAULT_SERVICE_ID
        );
        for role in &data.roles {
            crate::domain::permission::validate_names(&role.permissions).expect("valid names");
        }
    }

    #[test]
    fn alerts_stored_as_json_are_rewritten_in_the_binary_layout() {
        use crate::domain::alert::Alert;
        use crate::store::access::Record;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("db");
        run(&db).expect("migrate");
        // A store as version 1 left it: alerts as JSON, more than one slice of them.
        let alerts: Vec<Alert> = (1..=5000)
            .map(|id| Alert {
                id,
                fingerprint: format!("fp{id}"),
                ..crate::store::codec::sample_alert()
            })
            .collect();
        let tx = db.begin_write().expect("tx");
        for a in &alerts {
            access::put_json(&tx, tables::ALERTS, &id_key(a.id), a).expect("put");
        }
        tx.commit().expect("commit");
        force_version(&db, 1).expect("version 1");

        assert_eq!(run(&db).expect("migrate"), latest_version());

        let r = db.begin_read().expect("read");
        assert_eq!(current_version(&r).expect("version"), latest_version());
        for a in &alerts {
            let raw = r
                .get_raw(tables::ALERTS, &id_key(a.id))
                .expect("get")
                .expect("present");
            assert_ne!(raw[0], b'{', "alert {} is still JSON", a.id);
            assert_eq!(&Alert::from_bytes(&raw).expect("decode"), a);
        }
    }

    #[test]
    fn firing_silenced_alerts_are_indexed_under_their_silence() {
        use crate::domain::alert::{Alert, AlertState};
        use crate::store::access::Record;
        use crate::store::keys::KeyReader;
        use tables::alert_field as field;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("db");
        run(&db).expect("migrate");
        // A store as version 4 left it: state entries only.
        let alert = |id, state: AlertState, silenced_by| Alert {
            id,
            fingerprint: format!("fp{id}"),
            state,
            silenced_by,
            incident_id: None,
            ..crate::store::codec::sample_alert()
        };
        let alerts = [
            alert(1, AlertState::Firing, Some(7)),
            alert(2, AlertState::Firing, None),
            alert(3, AlertState::Resolved, Some(7)),
            alert(4, AlertState::Firing, Some(9)),
            alert(5, AlertState::Firing, Some(8)),
            alert(6, AlertState::Firing, Some(404)),
        ];
        let tx = db.begin_write().expect("tx");
        // Silences 7 and 9 have not ended; 8 ended before the upgrade; 404 is gone.
        for (id, ends) in [(7, 1), (8, -1), (9, 2)] {
            let silence = crate::domain::silence::Silence {
                id,
                matchers: vec![],
                starts_at: Utc::now() - chrono::Duration::days(1),
                ends_at: Utc::now() + chrono::Duration::days(ends),
                comment: "maintenance".into(),
                created_by: crate::domain::actor::Actor::system().reference,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            };
            access::put(&tx, &silence).expect("silence");
        }
        for a in &alerts {
            access::put_raw(
                &tx,
                tables::ALERTS,
                &id_key(a.id),
                &a.to_bytes().expect("bytes"),
            )
            .expect("put");
            let state = Key::new()
                .u8(field::STATE)
                .u64(u64::from(a.state.code()))
                .u64(a.id)
                .into_bytes();
            access::put_raw(&tx, tables::ALERT_INDEX, &state, &[]).expect("index");
        }
        tx.commit().expect("commit");
        force_version(&db, 4).expect("version 4");

        run(&db).expect("migrate");

        let r = db.begin_read().expect("read");
        let mut entries = Vec::new();
        let prefix = Key::new().u8(field::SILENCE).into_bytes();
        access::scan_prefix(
            &r,
            tables::ALERT_INDEX,
            &prefix,
            None,
            access::Order::Asc,
            &mut |k, _| {
                let mut kr = KeyReader::new(&k[1..]);
                entries.push((kr.u64().expect("silence"), kr.u64().expect("alert")));
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )
        .expect("scan");
        assert_eq!(entries, [(7, 1), (9, 4)]);
    }

    #[test]
    fn audit_entries_of_chat_actors_are_filed_under_their_user() {
        use crate::domain::actor::ActorKind;
        use tables::audit_actor::prefix;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("db");
        run(&db).expect("migrate");
        force_version(&db, 6).expect("version 6");
        // As version 6 indexed them: entry 10 by chat:2, entry 11 by user:2, 12 by chat:3.
        let tx = db.begin_write().expect("tx");
        for (kind, actor, entry) in [
            (ActorKind::Chat, 2, 10),
            (ActorKind::User, 2, 11),
            (ActorKind::Chat, 3, 12),
        ] {
            let key = prefix(kind, actor).u64(entry).into_bytes();
            access::put_raw(&tx, tables::AUDIT_BY_ACTOR, &key, &[]).expect("index");
        }
        tx.commit().expect("commit");

        run(&db).expect("migrate");

        let r = db.begin_read().expect("read");
        let under = |user: u64| {
            access::ids_with_prefix(
                &r,
                tables::AUDIT_BY_ACTOR,
                &prefix(ActorKind::User, user).into_bytes(),
                usize::MAX,
            )
            .expect("ids")
        };
        assert_eq!(under(2), [10, 11]);
        assert_eq!(under(3), [12]);
        assert!(under(1).is_empty());
    }

    #[test]
    fn roles_that_manage_integrations_manage_heartbeats_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("db");
        run(&db).expect("migrate");
        let perms = |db: &Database, name: &str| -> Vec<String> {
            let r = db.begin_read().expect("read");
            access::list::<Role>(&r, None, access::Order::Asc, usize::MAX)
                .expect("roles")
                .into_iter()
                .find(|role| role.name == name)
                .expect("role")
                .permissions
        };
        let has = |p: &[String], name: &str| p.iter().any(|x| x == name);
        let manager = perms(&db, "Manager");
        assert!(has(&manager, "heartbeat:read") && has(&manager, "heartbeat:write"));
        let engineer = perms(&db, "Engineer");
        assert!(has(&engineer, "heartbeat:read") && !has(&engineer, "heartbeat:write"));
        let viewer = perms(&db, "Viewer");
        assert!(
            !has(&viewer, "heartbeat:read"),
            "no integration:read, no heartbeat:read"
        );
        assert_eq!(perms(&db, "Admin"), ["*"]);

        // A store at version 3 with a custom role: it gains what follows from its grants.
        let tx = db.begin_write().expect("tx");
        let mut custom = access::get::<Role>(&tx, 3).expect("get").expect("Engineer");
        custom.id = 99;
        custom.name = "Pipeline".into();
        custom.builtin = false;
        custom.permissions = vec!["integration:write".into(), "incident:read".into()];
        access::put(&tx, &custom).expect("put");
        tx.commit().expect("commit");
        force_version(&db, 3).expect("version 3");
        run(&db).expect("migrate");
        assert_eq!(
            perms(&db, "Pipeline"),
            ["heartbeat:write", "incident:read", "integration:write"]
        );
    }

    #[test]
    fn problems_with_a_workaround_but_not_in_known_error_leave_the_database() {
        use crate::domain::actor::{ActorKind, ActorRef};
        use crate::domain::problem::{Problem, ProblemStatus};
        use tables::problem_field as field;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("db");
        run(&db).expect("migrate");
        let at = Utc::now();
        let problem = |id: u64, status: ProblemStatus| Problem {
            id,
            title: format!("problem {id}"),
            description: String::new(),
            status,
            impact: None,
            urgency: None,
            priority: None,
            service_id: None,
            assignee_id: None,
            root_cause: None,
            impact_analysis: None,
            workaround: Some("restart it".into()),
            incident_ids: vec![],
            created_by: ActorRef {
                kind: ActorKind::System,
                id: 0,
                name: "system".into(),
            },
            created_at: at,
            updated_at: at,
            known_error_at: None,
            resolved_at: None,
            closed_at: None,
        };
        let key = |id: u64| {
            Key::new()
                .u8(field::KNOWN_ERROR)
                .u64(1)
                .u64(id)
                .into_bytes()
        };
        // As version 5 left them: both counted, both indexed.
        let tx = db.begin_write().expect("tx");
        for p in [
            problem(1, ProblemStatus::Investigating),
            problem(2, ProblemStatus::KnownError),
        ] {
            access::put(&tx, &p).expect("put");
            access::put_raw(&tx, tables::PROBLEM_INDEX, &key(p.id), &[]).expect("index");
            access::add_counter(&tx, "prb/known_errors", 1).expect("count");
        }
        tx.commit().expect("commit");
        force_version(&db, 5).expect("version 5");
        run(&db).expect("migrate");
        let r = db.begin_read().expect("read");
        assert_eq!(access::counter(&r, "prb/known_errors").expect("counter"), 1);
        assert!(
            r.get_raw(tables::PROBLEM_INDEX, &key(1))
                .expect("get")
                .is_none()
        );
        assert!(
            r.get_raw(tables::PROBLEM_INDEX, &key(2))
                .expect("get")
                .is_some()
        );
        let kept = access::get::<Problem>(&r, 1)
            .expect("get")
            .expect("problem 1");
        assert_eq!(kept.workaround.as_deref(), Some("restart it"));
    }

    #[test]
    fn escalation_references_to_no_policy_are_cleared() {
        use crate::domain::escalation::EscalationPolicy;
        use crate::domain::service::Service;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("s.redb")).expect("db");
        run(&db).expect("migrate");
        let now = chrono::Utc::now();
        let service = |id, policy| Service {
            id,
            name: format!("s{id}"),
            description: String::new(),
            owner_group_id: None,
            escalation_policy_id: policy,
            tier: None,
            chat_channel: None,
            discord_channel: None,
            created_at: now,
            updated_at: now,
        };
        let tx = db.begin_write().expect("tx");
        access::put(&tx, &service(10, Some(1))).expect("stale");
        access::put(&tx, &service(11, Some(5))).expect("valid");
        access::put(
            &tx,
            &EscalationPolicy {
                id: 5,
                name: "ops".into(),
                description: String::new(),
                steps: vec![],
                repeat: 0,
                created_at: now,
                updated_at: now,
            },
        )
        .expect("policy");
        tx.commit().expect("commit");
        force_version(&db, 2).expect("version 2");

        run(&db).expect("migrate");

        let r = db.begin_read().expect("read");
        assert_eq!(current_version(&r).expect("version"), latest_version());
        let got = |id| {
            access::get::<Service>(&r, id)
                .expect("get")
                .expect("present")
        };
        assert_eq!(
            got(10).escalation_policy_id,
            None,
            "stale reference cleared"
        );
        assert_eq!(got(11).escalation_policy_id, Some(5), "a real policy stays");
    }
}
