//! Logging in, refreshing and revoking tokens, and who am I.

use std::net::IpAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{App, AppError, AppResult, FieldErrors};
use crate::auth::refresh::{Presented, RefreshFamily, RefreshToken};
use crate::auth::secret::{random_hex, sha256_hex};
use crate::domain::actor::Actor;
use crate::domain::identity::{self, User, UserView};
use crate::domain::permission::{Permission, PermissionSet};
use crate::store::access;
use crate::store::tables;

/// Tokens handed to a client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at `/api/v1/auth/refresh` before the access token expires; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The one message for every failed login, so that it does not tell which part was wrong.
pub const LOGIN_FAILED: &str = "invalid username or password";

/// Checks a username and password and starts a session.
pub async fn login(
    app: &App,
    username: &str,
    password: &str,
    client: IpAddr,
) -> AppResult<TokenPair> {
    let username = username.trim().to_owned();
    if let Err(wait) = app.throttle.check(&username, client, Instant::now()) {
        return Err(AppError::Throttled { retry_after: wait });
    }
    let user = super::users::find_by_username(&app.store.read()?, &username)?;
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| crate::auth::password::decoy_hash().to_owned());
    let candidate = password.to_owned();
    let matches =
        tokio::task::spawn_blocking(move || crate::auth::password::verify(&candidate, &stored))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    let user = match user {
        Some(u) if matches && u.active => u,
        other => {
            app.throttle.failure(&username, client, Instant::now());
            // On the record for an existing account (the throttle bounds how often); not
            // for unknown names, which anyone could send by the million.
            if let Some(u) = other {
                let (now, id, name) = (app.clock.now(), u.id, u.username.clone());
                let why = if u.active {
                    "wrong password"
                } else {
                    "account deactivated"
                };
                // Not waited for: an answer that took a store write longer for existing
                // names would tell which names exist, which the decoy hash hides.
                let store = app.store.clone();
                tokio::spawn(async move {
                    let recorded = store
                        .write(move |tx| {
                            super::audit::record(
                                tx,
                                now,
                                &Actor::system().reference,
                                "auth.login_failed",
                                ("user", id),
                                format!("failed login as {name} from {client} ({why})"),
                                serde_json::json!({"client": client.to_string()}),
                            )
                        })
                        .await;
                    if let Err(e) = recorded {
                        tracing::warn!(error = %e, user = id, "cannot record a failed login");
                    }
                });
            }
            return Err(AppError::Unauthorized(LOGIN_FAILED.into()));
        }
    };
    app.throttle.success(&username);
    start_session(app, &user, client).await
}

/// Issues an access token and a new refresh family for `user`, on the audit record.
async fn start_session(app: &App, user: &User, client: IpAddr) -> AppResult<TokenPair> {
    let now = app.clock.now();
    let secret = random_hex(32);
    let ttl = chrono::Duration::seconds(
        i64::try_from(app.config.auth.refresh_token_ttl_secs).unwrap_or(i64::MAX / 2),
    );
    let (user_id, version) = (user.id, user.token_version);
    let who = Actor::user(user.id, &user.username, PermissionSet::none()).reference;
    let secret_hash = sha256_hex(&secret);
    let family = app
        .store
        .write(move |tx| {
            let id = access::next_id(tx, tables::REFRESH_FAMILIES)?;
            let family = RefreshFamily {
                id,
                user_id,
                generation: 0,
                secret_hash: secret_hash.clone(),
                token_version: version,
                created_at: now,
                expires_at: now + ttl,
                revoked: false,
                retired: Vec::new(),
            };
            access::put(tx, &family)?;
            super::audit::record(
                tx,
                now,
                &who,
                "auth.login",
                ("user", user_id),
                format!("{} logged in from {client} (session {id})", who.name),
                serde_json::json!({"session": id, "client": client.to_string()}),
            )?;
            Ok::<_, AppError>(family)
        })
        .await?;
    pair(
        app,
        user_id,
        version,
        RefreshToken {
            family: family.id,
            generation: 0,
            secret,
        },
    )
}

/// An access token in the session of `refresh` (its family), and `refresh` itself.
fn pair(app: &App, user_id: u64, version: u64, refresh: RefreshToken) -> AppResult<TokenPair> {
    let ttl = app.config.auth.access_token_ttl_secs;
    let access_token = app
        .tokens
        .issue(
            user_id,
            version,
            refresh.family,
            app.clock.now().timestamp(),
            ttl,
        )
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(TokenPair {
        access_token,
        refresh_token: refresh.encode(),
        token_type: "Bearer".into(),
        expires_in: ttl,
    })
}

enum Rotation {
    Rotated {
        user_id: u64,
        version: u64,
        token: RefreshToken,
    },
    Refused,
}

/// Exchanges a refresh token for a new pair; the presented token stops working. Presenting
/// an already-rotated token revokes its whole family.
pub async fn refresh(app: &App, token: &str) -> AppResult<TokenPair> {
    let invalid = || AppError::Unauthorized("the refresh token is invalid or expired".into());
    let presented = RefreshToken::parse(token).ok_or_else(invalid)?;
    let now = app.clock.now();
    let secret = random_hex(32);
    let outcome = app
        .store
        .write(move |tx| {
            let Some(mut family) = access::get::<RefreshFamily>(tx, presented.family)? else {
                return Ok(Rotation::Refused);
            };
            let user = access::get::<User>(tx, family.user_id)?;
            let version = user.as_ref().filter(|u| u.active).map(|u| u.token_version);
            let verdict = match version {
                Some(v) => family.judge(&presented, now, v),
                None => Presented::Invalid,
            };
            match verdict {
                Presented::Current => {
                    family.rotate(sha256_hex(&secret));
                    access::put(tx, &family)?;
                    Ok::<_, AppError>(Rotation::Rotated {
                        user_id: family.user_id,
                        version: family.token_version,
                        token: RefreshToken {
                            family: family.id,
                            generation: family.generation,
                            secret: secret.clone(),
                        },
                    })
                }
                Presented::Reused => {
                    family.revoked = true;
                    access::put(tx, &family)?;
                    tracing::warn!(
                        family = family.id,
                        user = family.user_id,
                        "refresh token reused; family revoked"
                    );
                    super::audit::record(
                        tx,
                        now,
                        &Actor::system().reference,
                        "auth.session_revoked",
                        ("user", family.user_id),
                        format!(
                            "session {} ended: a refresh token of generation {} was presented again after it was used (a copy?)",
                            family.id, presented.generation
                        ),
                        serde_json::json!({"session": family.id}),
                    )?;
                    Ok(Rotation::Refused)
                }
                Presented::Invalid => Ok(Rotation::Refused),
            }
        })
        .await?;
    match outcome {
        Rotation::Rotated {
            user_id,
            version,
            token,
        } => pair(app, user_id, version, token),
        Rotation::Refused => Err(invalid()),
    }
}

/// Ends the session a refresh token belongs to (logout): the refresh token and every
/// access token issued in the session stop working. Unknown tokens are ignored.
pub async fn logout(app: &App, token: &str) -> AppResult<()> {
    let Some(presented) = RefreshToken::parse(token) else {
        return Ok(());
    };
    let now = app.clock.now();
    app.store
        .write(move |tx| {
            if let Some(family) = access::get::<RefreshFamily>(tx, presented.family)?
                && crate::auth::secret::constant_time_eq(
                    sha256_hex(&presented.secret).as_bytes(),
                    family.secret_hash.as_bytes(),
                )
            {
                log_out_in_tx(tx, now, family)?;
            }
            Ok::<_, AppError>(())
        })
        .await
}

/// Ends session `sid` (a refresh family) at the request of one of its access tokens: the
/// refresh token and every access token of the session stop working.
pub async fn end_session(app: &App, sid: u64) -> AppResult<()> {
    let now = app.clock.now();
    app.store
        .write(move |tx| {
            if let Some(family) = access::get::<RefreshFamily>(tx, sid)? {
                log_out_in_tx(tx, now, family)?;
            }
            Ok::<_, AppError>(())
        })
        .await
}

/// Revokes `family` at its user's request, on the audit record (once).
fn log_out_in_tx(
    tx: &redb::WriteTransaction,
    now: chrono::DateTime<chrono::Utc>,
    mut family: RefreshFamily,
) -> AppResult<()> {
    if family.revoked {
        return Ok(());
    }
    family.revoked = true;
    access::put(tx, &family)?;
    let name = access::get::<User>(tx, family.user_id)?
        .map(|u| u.username)
        .unwrap_or_default();
    let who = Actor::user(family.user_id, &name, PermissionSet::none()).reference;
    super::audit::record(
        tx,
        now,
        &who,
        "auth.logout",
        ("user", family.user_id),
        format!("{name} logged out (session {})", family.id),
        serde_json::json!({"session": family.id}),
    )?;
    Ok(())
}

/// One step of the clean-up of ended sessions: deletes, among at most `limit` families
/// after id `after`, those that expired before `dead_before` (by then no access token of
/// theirs is valid either). Returns how many went and where the next step starts (`None`:
/// the table is done).
pub fn prune_sessions(
    tx: &redb::WriteTransaction,
    dead_before: chrono::DateTime<chrono::Utc>,
    after: Option<u64>,
    limit: usize,
) -> AppResult<(u64, Option<u64>)> {
    let families =
        access::list::<RefreshFamily>(tx, after, crate::store::access::Order::Asc, limit)?;
    let mut deleted = 0;
    for f in &families {
        if f.expires_at < dead_before {
            access::delete::<RefreshFamily>(tx, f.id)?;
            deleted += 1;
        }
    }
    let next = (families.len() >= limit)
        .then(|| families.last().map(|f| f.id))
        .flatten();
    Ok((deleted, next))
}

/// Who the caller is, with their effective permissions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// Everything the user may do.
    pub permissions: Vec<String>,
}

/// The calling user.
pub fn me(app: &App, actor: &Actor) -> AppResult<Me> {
    let id = actor
        .user_id
        .ok_or_else(|| AppError::Unauthorized("not a user".into()))?;
    let r = app.store.read()?;
    let user = access::get::<User>(&r, id)?
        .ok_or_else(|| AppError::Unauthorized("the user no longer exists".into()))?;
    Ok(Me {
        user: super::users::view(&r, &user)?,
        permissions: actor
            .permissions
            .list()
            .iter()
            .map(|p: &Permission| p.as_str().to_owned())
            .collect(),
    })
}

/// A password change by its owner.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new one, at least 8 characters.
    pub new_password: String,
}

/// Changes the caller's own password; every existing token of theirs stops working.
pub async fn change_own_password(
    app: &App,
    actor: &Actor,
    change: PasswordChange,
    client: IpAddr,
) -> AppResult<()> {
    let id = actor
        .user_id
        .ok_or_else(|| AppError::Unauthorized("not a user".into()))?;
    identity::check_password(&change.new_password)
        .map_err(|m| FieldErrors::single("new_password", m))?;
    if change.new_password == change.current_password {
        return Err(FieldErrors::single(
            "new_password",
            "must differ from the current password",
        ));
    }
    let user = access::get::<User>(&app.store.read()?, id)?
        .ok_or_else(|| AppError::Unauthorized("the user no longer exists".into()))?;
    // Guessing the current password through a stolen access token is throttled like a
    // login: the same counters, so neither route multiplies the other's guesses.
    if let Err(wait) = app.throttle.check(&user.username, client, Instant::now()) {
        return Err(AppError::Throttled { retry_after: wait });
    }
    let stored = user.password_hash.clone();
    let current = change.current_password.clone();
    let ok = tokio::task::spawn_blocking(move || crate::auth::password::verify(&current, &stored))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    if !ok {
        app.throttle.failure(&user.username, client, Instant::now());
        return Err(FieldErrors::single(
            "current_password",
            "is not your current password",
        ));
    }
    app.throttle.success(&user.username);
    let hash = super::users::hash_password(change.new_password).await?;
    let now = app.clock.now();
    let who = actor.reference.clone();
    app.store
        .write(move |tx| {
            let mut user =
                access::get::<User>(tx, id)?.ok_or_else(|| AppError::not_found("user", id))?;
            user.password_hash = hash.clone();
            user.token_version += 1;
            user.updated_at = now;
            access::put(tx, &user)?;
            super::audit::record(
                tx,
                now,
                &who,
                "user.password",
                ("user", id),
                format!("{} changed their password", user.username),
                serde_json::json!({"password": crate::domain::audit::redacted_change()}),
            )?;
            Ok(())
        })
        .await
}
