//! `foodcheck demo-data`: fills an empty database with the generated demo district
//! ([`crate::demo`]).

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::{password, NewUser, Role};
use crate::demo::DemoUser;
use crate::establishment::{EstablishmentInput, Warning};
use crate::store::{self, establishments::Upsert, Db};

/// Creates the demo accounts and `n_establishments` establishments in an empty database
/// (refused otherwise), all in one transaction with their events, and returns the accounts with
/// their passwords.
pub async fn fill(db: &Db, ctx: &Ctx, n_establishments: usize, seed: u64) -> Result<Vec<DemoUser>> {
    access::require(ctx, &[Role::Admin])?;
    let accounts = crate::demo::accounts(seed);
    // Hashing (argon2, on the blocking pool) and generating happen before the transaction.
    let mut users = Vec::with_capacity(accounts.len());
    for a in &accounts {
        let new = NewUser::parse(&a.username, a.role, &a.name, a.badge_no.as_deref(), None)
            .map_err(|m| Error::invalid("validation_failed", m))?;
        users.push((new, password::hash_password(a.password.clone()).await?));
    }
    let rows =
        tokio::task::spawn_blocking(move || crate::demo::establishments(n_establishments, seed))
            .await
            .map_err(|e| Error::Internal(e.into()))??;
    let mut tx = db.begin_write().await?;
    if store::users::count(tx.conn()).await? > 0
        || store::establishments::count(tx.conn()).await? > 0
    {
        return Err(Error::conflict(
            "not_empty",
            "the database is not empty; demo-data only fills a new database",
        ));
    }
    let now = store::now_ms();
    let mut events = Vec::with_capacity(users.len() + 1);
    for (new, hash) in &users {
        let id = uuid::Uuid::new_v4().to_string();
        let user = store::users::insert(tx.conn(), &id, new, hash, now).await?;
        events.push(Event::new(Action::UserCreated, RecordKind::User, &user.id).created(&user));
    }
    events.push(write_establishments(tx.conn(), &rows, seed, users.len()).await?);
    store::audit::append(tx.conn(), ctx, &events).await?;
    tx.commit().await?;
    Ok(accounts)
}

/// Writes generated establishments (fresh ids) in one transaction with a `DemoFilled` event:
/// the demo fill, and the benchmarks' registries.
pub async fn add_establishments(
    db: &Db,
    ctx: &Ctx,
    rows: &[(EstablishmentInput, Vec<Warning>)],
    seed: u64,
    accounts: usize,
) -> Result<()> {
    access::require(ctx, &[Role::Admin])?;
    let mut tx = db.begin_write().await?;
    let event = write_establishments(tx.conn(), rows, seed, accounts).await?;
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// The establishments (fresh ids) inside the caller's transaction, and their `DemoFilled` event.
async fn write_establishments(
    conn: &mut sqlx::AnyConnection,
    rows: &[(EstablishmentInput, Vec<Warning>)],
    seed: u64,
    accounts: usize,
) -> Result<Event> {
    let ids: Vec<String> = (0..rows.len())
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let upserts: Vec<Upsert> = rows
        .iter()
        .zip(&ids)
        .map(|((input, warnings), id)| Upsert {
            id,
            input,
            warnings,
        })
        .collect();
    store::establishments::upsert_many(conn, &upserts, store::now_ms()).await?;
    Ok(Event::new(Action::DemoFilled, RecordKind::Batch, "demo")
        .set("seed", seed)
        .set("establishments", rows.len())
        .set("accounts", accounts))
}
