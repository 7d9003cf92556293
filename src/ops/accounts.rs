//! Accounts and sessions: creating, disabling and enabling users; login, refresh and logout.
//! Each runs in one write transaction with its audit events. Login is the one exception, and
//! on purpose: the throttle's reservation is its own committed write *before* the (slow)
//! password check, so parallel guesses cannot all pass; the outcome is the second.

use std::net::IpAddr;

use super::{Error, Result};
use crate::audit::{Action, Actor, Ctx, Event, RecordKind};
use crate::auth::token::{hash_refresh_token, new_refresh_token};
use crate::auth::{check_password_policy, password, DeviceId, NewUser, Role, User, Username};
use crate::state::AppState;
use crate::store::throttle::{Outcome, Reservation, Verdict};
use crate::store::tokens::{Family, Presentation, Rotation};
use crate::store::users::UserKey;
use crate::store::{self, Db};

/// Account management is for admins, and for the system itself (the CLI on the server).
pub fn require_admin(ctx: &Ctx) -> Result<()> {
    match (ctx.user_id(), ctx.actor.role) {
        (None, _) | (Some(_), Some(Role::Admin)) => Ok(()),
        _ => Err(Error::forbidden("this action needs the role admin")),
    }
}

fn duplicate_user() -> Error {
    Error::conflict(
        "duplicate",
        "a user with that username or badge number already exists",
    )
}

/// Creates an account with a password (checked against the policy, then hashed).
pub async fn create_user(db: &Db, ctx: &Ctx, new: &NewUser, password: String) -> Result<User> {
    require_admin(ctx)?;
    check_password_policy(&password).map_err(|m| Error::invalid("validation_failed", m))?;
    let hash = password::hash_password(password).await?;
    create_user_with_hash(db, ctx, new, &hash).await
}

/// Creates an account with a ready password hash (seed data, benchmarks: hashing hundreds of
/// passwords would only measure argon2). Records `UserCreated` with the account's fields;
/// the hash is not one of them.
pub async fn create_user_with_hash(
    db: &Db,
    ctx: &Ctx,
    new: &NewUser,
    password_hash: &str,
) -> Result<User> {
    require_admin(ctx)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = store::now_ms();
    let mut tx = db.begin_write().await?;
    let user = match store::users::insert(tx.conn(), &id, new, password_hash, now).await {
        Ok(user) => user,
        Err(e) if store::is_unique_violation(&e) => return Err(duplicate_user()),
        Err(e) => return Err(e.into()),
    };
    let event = Event::new(Action::UserCreated, RecordKind::User, &user.id).created(&user);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(user)
}

/// Which account: the API names it by id, the CLI by username.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Id(&'a str),
    Username(&'a str),
}

/// The store's key of a target (usernames normalised; an impossible one matches nothing).
fn key_of<'a>(target: Target<'a>, normalised: &'a mut String) -> UserKey<'a> {
    match target {
        Target::Id(id) => UserKey::Id(id),
        Target::Username(name) => {
            *normalised = Username::parse(name)
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default();
            UserKey::Username(normalised)
        }
    }
}

fn session_revoked(session_id: &str, reason: &str) -> Event {
    Event::new(Action::SessionRevoked, RecordKind::Session, session_id)
        .change("revoked", false, true)
        .set("reason", reason)
}

/// Disables an account and revokes every session it holds, in one transaction: refresh tokens
/// are revoked, and access tokens issued before now are refused from the next request on.
/// Disabling a disabled account changes nothing (and records nothing). An admin cannot
/// disable their own account (409 `conflict`).
pub async fn disable_user(db: &Db, ctx: &Ctx, target: Target<'_>) -> Result<User> {
    require_admin(ctx)?;
    let now = store::now_ms();
    let mut buf = String::new();
    let key = key_of(target, &mut buf);
    let mut tx = db.begin_write().await?;
    // Write first: on SQLite a transaction that reads before it writes fails at once when
    // another process (the server, beside this CLI) wrote in between.
    let changed = store::users::disable(tx.conn(), key, now).await?;
    let mut user = store::users::by_key(tx.conn(), key)
        .await?
        .ok_or_else(|| Error::not_found("no such user"))?;
    if ctx.user_id() == Some(user.id.as_str()) {
        // Dropping the transaction undoes the write.
        return Err(Error::conflict(
            "conflict",
            "an admin cannot disable their own account",
        ));
    }
    if changed {
        let sessions = store::tokens::revoke_sessions_of(tx.conn(), &user.id, None, now).await?;
        let mut events = vec![Event::new(Action::UserDisabled, RecordKind::User, &user.id)
            .change("disabled", false, true)];
        events.extend(
            sessions
                .iter()
                .map(|s| session_revoked(s, "account_disabled")),
        );
        store::audit::append(tx.conn(), ctx, &events).await?;
        tx.commit().await?;
    }
    user.disabled = true;
    Ok(user)
}

/// Re-enables an account. Tokens revoked while it was disabled stay revoked.
pub async fn enable_user(db: &Db, ctx: &Ctx, target: Target<'_>) -> Result<User> {
    require_admin(ctx)?;
    let now = store::now_ms();
    let mut buf = String::new();
    let key = key_of(target, &mut buf);
    let mut tx = db.begin_write().await?;
    let changed = store::users::enable(tx.conn(), key, now).await?;
    let mut user = store::users::by_key(tx.conn(), key)
        .await?
        .ok_or_else(|| Error::not_found("no such user"))?;
    if changed {
        let event = Event::new(Action::UserEnabled, RecordKind::User, &user.id)
            .change("disabled", true, false);
        store::audit::append(tx.conn(), ctx, &[event]).await?;
        tx.commit().await?;
    }
    user.disabled = false;
    Ok(user)
}

/// What a client presents to log in.
pub struct Credentials {
    /// As typed; matched case-insensitively.
    pub username: String,
    pub password: String,
    pub device: DeviceId,
    /// The client's address, for the per-address throttle and the audit entry.
    pub client_ip: Option<IpAddr>,
}

/// A session's tokens, as login and refresh hand them out.
#[derive(Debug)]
pub struct Tokens {
    pub user: User,
    pub session_id: String,
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use refresh token.
    pub refresh_token: String,
    /// Lifetimes, seconds.
    pub expires_in: u64,
    pub refresh_expires_in: u64,
}

fn invalid_credentials() -> Error {
    Error::unauthenticated("invalid_credentials", "wrong username or password")
}

fn account_disabled() -> Error {
    Error::unauthenticated("account_disabled", "the account has been disabled")
}

/// Expiry (Unix ms) of a refresh token issued at `now`.
fn refresh_expiry(state: &AppState, now: i64) -> i64 {
    now + (state.config.refresh_token_ttl_days * 86_400) as i64 * 1000
}

fn issue(
    state: &AppState,
    user: User,
    device_id: &str,
    session_id: String,
    refresh_token: String,
) -> Result<Tokens> {
    let access_token = state.keys.issue_for_session(
        &user.id,
        user.role,
        Some((device_id, &session_id)),
        store::now_ms(),
        state.config.access_token_ttl_secs,
    )?;
    Ok(Tokens {
        user,
        session_id,
        access_token,
        refresh_token,
        expires_in: state.config.access_token_ttl_secs,
        refresh_expires_in: state.config.refresh_token_ttl_days * 86_400,
    })
}

/// Reserves a login attempt with the throttle, committed before the password is checked.
/// Blocked only by attempts still in flight (parallel logins), it waits for them to settle, a
/// few seconds at most; blocked by settled failures, it is 429.
async fn reserve_attempt(db: &Db, limits: &[(&str, u32)], window_ms: i64) -> Result<Reservation> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(20);
    const MAX_POLLS: u32 = 250;
    for _ in 0..MAX_POLLS {
        let mut tx = db.begin_write().await?;
        match store::throttle::reserve(tx.conn(), limits, window_ms, store::now_ms()).await? {
            Ok(reservation) => {
                tx.commit().await?;
                return Ok(reservation);
            }
            Err(Verdict::Refuse { retry_after_secs }) => {
                return Err(Error::Throttled {
                    message: "too many failed logins; try again later".into(),
                    retry_after_secs,
                })
            }
            // Dropping the transaction rolls back: nothing was reserved.
            Err(Verdict::Wait | Verdict::Allow) => {
                drop(tx);
                tokio::time::sleep(POLL).await
            }
        }
    }
    Err(Error::Throttled {
        message: "too many logins in progress for this account; try again".into(),
        retry_after_secs: 1,
    })
}

/// Logs in: on success a new session for the device (replacing the device's earlier one).
///
/// `ctx` is the request's (no user yet). Events: `LoginSucceeded` with the user as actor;
/// `LoginFailed` for an existing account (wrong password, or disabled), whose actor is left
/// unauthenticated because the password did not prove who is asking; none for unknown
/// usernames (nothing to attach it to; the throttle counts them). The password is never
/// recorded.
pub async fn login(state: &AppState, ctx: &Ctx, c: Credentials) -> Result<Tokens> {
    // An invalid username cannot exist; it still counts as a failed attempt.
    let username = Username::parse(&c.username)
        .map(|u| u.as_str().to_string())
        .unwrap_or_else(|_| c.username.trim().to_lowercase());
    let ip = c.client_ip.map(|i| i.to_string());
    let user_key = format!("user:{username}");
    let ip_key = format!("ip:{}", ip.as_deref().unwrap_or("unknown"));
    let cfg = &state.config;
    let window_ms = (cfg.login_window_secs * 1000) as i64;
    let limits = [
        (user_key.as_str(), cfg.login_max_failures_per_user),
        (ip_key.as_str(), cfg.login_max_failures_per_ip),
    ];
    let reservation = reserve_attempt(&state.db, &limits, window_ms).await?;

    let found = {
        let mut conn = state.db.acquire().await?;
        store::users::credentials(&mut conn, &username).await?
    };
    let (user, hash) = found.unzip();
    let ok = password::verify_password(c.password, hash).await?;

    let device = c.device.as_str();
    let now = store::now_ms();
    // The outcome's transaction writes first (the settlement): on SQLite a transaction that
    // reads before it writes fails at once when another instance wrote in between.
    let mut tx = state.db.begin_write().await?;
    let failed = |user: &User, reason: &str| {
        Event::new(Action::LoginFailed, RecordKind::User, &user.id)
            .set("reason", reason)
            .set("device_id", device)
            .set("client_ip", &ip)
    };
    let (outcome, result) = match user {
        Some(user) if ok && !user.disabled => (Outcome::Succeeded, Ok(user)),
        Some(user) if ok => (
            Outcome::Neutral,
            Err((Some(failed(&user, "account_disabled")), account_disabled())),
        ),
        Some(user) => (
            Outcome::Failed,
            Err((Some(failed(&user, "wrong_password")), invalid_credentials())),
        ),
        None => (Outcome::Failed, Err((None, invalid_credentials()))),
    };
    store::throttle::settle(tx.conn(), reservation, outcome, window_ms, now).await?;
    let user = match result {
        Ok(user) => user,
        Err((event, error)) => {
            // The failure is counted and recorded: commit before refusing.
            if let Some(event) = event {
                store::audit::append(tx.conn(), ctx, &[event]).await?;
            }
            tx.commit().await?;
            return Err(error);
        }
    };
    let replaced =
        store::tokens::revoke_sessions_of(tx.conn(), &user.id, Some(device), now).await?;
    let refresh = new_refresh_token();
    let session = store::tokens::start_family(
        tx.conn(),
        &user.id,
        device,
        &hash_refresh_token(&refresh),
        refresh_expiry(state, now),
        now,
    )
    .await?;
    let actor = Ctx::new(
        Actor::user(&user.id, user.role, Some(device)),
        ctx.request_id.clone(),
    );
    let mut events = vec![
        Event::new(Action::LoginSucceeded, RecordKind::User, &user.id)
            .set("session_id", &session)
            .set("device_id", device)
            .set("client_ip", &ip),
    ];
    events.extend(replaced.iter().map(|s| session_revoked(s, "new_login")));
    store::audit::append(tx.conn(), &actor, &events).await?;
    tx.commit().await?;
    issue(state, user, device, session, refresh)
}

fn invalid_refresh_token(message: &str) -> Error {
    Error::unauthenticated("invalid_refresh_token", message)
}

/// The context of a refresh or logout: the session's owner (who holds its token) with the
/// role they have now and the session's device.
fn owner_ctx(user: &User, family: &Family, ctx: &Ctx) -> Ctx {
    Ctx::new(
        Actor::user(&user.id, user.role, Some(&family.device_id)),
        ctx.request_id.clone(),
    )
}

/// Exchanges a refresh token for new tokens (see `POST /api/v1/auth/refresh` for the rules).
/// `claimed_device` is the `device_id` sent with it, if any.
///
/// Events: `SessionRefreshed` (actor: the session's owner; `retry` true for a same-device retry
/// within the window); `RefreshTokenReused` or, for a wrong device, `SessionRevoked` with the
/// session's owner in the changes: their actor stays unauthenticated (whoever presented a
/// spent token proved nothing).
pub async fn refresh(
    state: &AppState,
    ctx: &Ctx,
    presented: &str,
    claimed_device: Option<&DeviceId>,
) -> Result<Tokens> {
    let presented = presented.trim();
    // The successor is derived from the presented token, so a retry names the same one.
    let successor = state.keys.successor_refresh_token(presented);
    let grace_ms = (state.config.refresh_retry_grace_secs * 1000) as i64;
    let now = store::now_ms();
    let claimed = claimed_device.map(DeviceId::as_str);
    let mut tx = state.db.begin_write().await?;
    let rotation = store::tokens::rotate(
        tx.conn(),
        &Presentation {
            token_hash: &hash_refresh_token(presented),
            successor_hash: &hash_refresh_token(&successor),
            device_id: claimed,
        },
        grace_ms,
        refresh_expiry(state, now),
        now,
    )
    .await?;
    let revocation = |action: Action, family: &Family, revoked: bool, reason: &str| {
        Event::new(action, RecordKind::Session, &family.session_id)
            .change("revoked", !revoked, true)
            .set("reason", reason)
            .set("user_id", &family.user_id)
            .set("device_id", &family.device_id)
            .set("presented_device_id", claimed)
    };
    match rotation {
        Rotation::Issued { family, retry } => {
            // The role is re-read: a changed role applies from the next access token on.
            let user = store::users::by_id_in(tx.conn(), &family.user_id)
                .await?
                .filter(|u| !u.disabled)
                // Dropping the transaction undoes the rotation.
                .ok_or_else(|| invalid_refresh_token("the refresh token is not valid"))?;
            let event = Event::new(
                Action::SessionRefreshed,
                RecordKind::Session,
                &family.session_id,
            )
            .set("retry", retry);
            store::audit::append(tx.conn(), &owner_ctx(&user, &family, ctx), &[event]).await?;
            tx.commit().await?;
            issue(state, user, &family.device_id, family.session_id, successor)
        }
        Rotation::Reused { family, revoked } => {
            let event = revocation(Action::RefreshTokenReused, &family, revoked, "token_reused");
            store::audit::append(tx.conn(), ctx, &[event]).await?;
            tx.commit().await?;
            Err(Error::unauthenticated(
                "refresh_token_reused",
                "this refresh token was already used; the session is revoked, log in again",
            ))
        }
        Rotation::WrongDevice { family, revoked } => {
            let event = revocation(Action::SessionRevoked, &family, revoked, "wrong_device");
            store::audit::append(tx.conn(), ctx, &[event]).await?;
            tx.commit().await?;
            Err(invalid_refresh_token(
                "the refresh token belongs to another device; the session is revoked, log in again",
            ))
        }
        Rotation::Contended => Err(Error::unauthenticated(
            "refresh_token_reused",
            "this refresh token was already used; the session is revoked, log in again",
        )),
        Rotation::Invalid => Err(invalid_refresh_token(
            "the refresh token is unknown, expired or revoked",
        )),
    }
}

/// Logs out: revokes the session of the presented refresh token (used or not), and with it
/// its access tokens. Unknown tokens and ended sessions change nothing: logout is idempotent
/// and reveals nothing. Records `SessionRevoked` (reason `logout`) when a live session ended.
pub async fn logout(db: &Db, ctx: &Ctx, presented: &str) -> Result<()> {
    let hash = hash_refresh_token(presented.trim());
    let now = store::now_ms();
    let mut tx = db.begin_write().await?;
    let Some(family) = store::tokens::family_of(tx.conn(), &hash).await? else {
        return Ok(());
    };
    if !store::tokens::revoke_family(tx.conn(), &family.session_id, now).await? {
        // Its refresh tokens may have been live still; revoking them is all there is to do.
        tx.commit().await?;
        return Ok(());
    }
    let actor = match store::users::by_id_in(tx.conn(), &family.user_id).await? {
        Some(user) => owner_ctx(&user, &family, ctx),
        None => ctx.clone(),
    };
    let event = session_revoked(&family.session_id, "logout");
    store::audit::append(tx.conn(), &actor, &[event]).await?;
    tx.commit().await?;
    Ok(())
}
