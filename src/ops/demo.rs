//! `foodcheck demo-data`: fills an empty database with the generated demo district
//! ([`crate::demo`]).

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::{password, Role};
use crate::demo::DemoUser;
use crate::establishment::{EstablishmentInput, Warning};
use crate::store::{self, establishments::Upsert, Db};

/// Creates the demo accounts and `n_establishments` establishments in an empty database
/// (refused otherwise) and returns the accounts with their passwords.
pub async fn fill(db: &Db, ctx: &Ctx, n_establishments: usize, seed: u64) -> Result<Vec<DemoUser>> {
    access::require(ctx, &[Role::Admin])?;
    let mut conn = db.acquire().await?;
    let registered = store::establishments::count(&mut conn).await?;
    drop(conn);
    if !store::users::list(db).await?.is_empty() || registered > 0 {
        return Err(Error::conflict(
            "not_empty",
            "the database is not empty; demo-data only fills a new database",
        ));
    }
    let accounts = crate::demo::accounts(seed);
    // Accounts are created by the user store, each in its own transaction (it owns that
    // write); the registry and the event follow in one.
    for a in &accounts {
        let hash = password::hash_password(a.password.clone()).await?;
        store::users::create(
            db,
            store::users::NewUser {
                username: &a.username,
                name: &a.name,
                role: a.role,
                badge_no: a.badge_no.as_deref(),
                phone: None,
                password_hash: &hash,
            },
        )
        .await?;
    }
    let rows =
        tokio::task::spawn_blocking(move || crate::demo::establishments(n_establishments, seed))
            .await
            .map_err(|e| Error::Internal(e.into()))??;
    add_establishments(db, ctx, &rows, seed, accounts.len()).await?;
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
    let mut tx = db.begin_write().await?;
    store::establishments::upsert_many(tx.conn(), &upserts, store::now_ms()).await?;
    let event = Event::new(Action::DemoFilled, RecordKind::Batch, "demo")
        .set("seed", seed)
        .set("establishments", rows.len())
        .set("accounts", accounts);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}
