//! Seeding for `foodcheck bench` (scratch databases only): bulk writes that set up a benchmark
//! before it is timed. Each is one write transaction recording one `DemoFilled` batch event,
//! like other generated data.

use crate::audit::{Action, Ctx, Event, RecordKind};
use crate::ops::Result;
use crate::store::establishments::Upsert;
use crate::store::plans::NewPlan;
use crate::store::{self, Db};

fn seeded(what: &str, n: usize) -> Event {
    Event::new(Action::DemoFilled, RecordKind::Batch, "bench")
        .set("seeded", what)
        .set("count", n)
}

/// Establishments, upserted in one statement batch.
pub async fn seed_registry(db: &Db, ctx: &Ctx, rows: &[Upsert<'_>]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    store::establishments::upsert_many(tx.conn(), rows, store::now_ms()).await?;
    store::audit::append(tx.conn(), ctx, &[seeded("establishments", rows.len())]).await?;
    tx.commit().await?;
    Ok(())
}

/// A draft plan, ready to draw.
pub async fn seed_plan(db: &Db, ctx: &Ctx, plan: &NewPlan<'_>) -> Result<()> {
    let mut tx = db.begin_write().await?;
    store::plans::insert_plan(tx.conn(), plan).await?;
    store::audit::append(tx.conn(), ctx, &[seeded("plan", 1)]).await?;
    tx.commit().await?;
    Ok(())
}

/// Declared conflicts, as (inspector id, establishment id).
pub async fn seed_conflicts(db: &Db, ctx: &Ctx, pairs: &[(&str, &str)]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    for (inspector, establishment) in pairs {
        store::plans::insert_conflict(
            tx.conn(),
            &uuid::Uuid::new_v4().to_string(),
            inspector,
            establishment,
            "bench",
            "bench",
        )
        .await?;
    }
    store::audit::append(tx.conn(), ctx, &[seeded("conflicts", pairs.len())]).await?;
    tx.commit().await?;
    Ok(())
}
