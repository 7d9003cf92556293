//! Plans, conflicts of interest (回避) and draws: each use case one write transaction with its
//! audit events.

use std::collections::HashMap;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::establishment::FieldError;
use crate::plan::draw::{self, Candidate, Conflict, DrawInput, DrawRecord, Inspector};
use crate::plan::{Plan, PlanStatus, RawPlan, TaskState};
use crate::store::{self, plans, Db};

fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

/// Creates a plan (admin): validated, with a published checklist version and an inspector
/// pool of active inspectors.
pub async fn create_plan(db: &Db, ctx: &Ctx, raw: RawPlan) -> Result<Plan> {
    access::require(ctx, &[Role::Admin])?;
    let spec = raw.validate().map_err(Error::validation_failed)?;
    // The checklist store reads through the pool; a version never changes once published.
    let version = store::checklists::version(db, &spec.template_id, spec.template_version).await?;
    let mut errors = Vec::new();
    match version {
        Some(v) if v.meta.status.as_str() == "published" => {}
        Some(_) => errors.push(FieldError::new(
            "template_version",
            "not_published",
            "the checklist version is a draft; publish it first",
        )),
        None => errors.push(FieldError::new(
            "template_id",
            "unknown_template",
            "no such checklist template version",
        )),
    }
    let ids: Vec<String> = spec.inspector_ids.iter().map(|u| u.to_string()).collect();
    let mut tx = db.begin_write().await?;
    let active = plans::active_inspectors(tx.conn(), &ids).await?;
    if active.len() != ids.len() {
        let known: std::collections::HashSet<&str> =
            active.iter().map(|(id, _, _)| id.as_str()).collect();
        let missing: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|i| !known.contains(i))
            .collect();
        errors.push(FieldError::new(
            "inspector_ids",
            "not_an_inspector",
            format!("not active inspectors: {}", missing.join(", ")),
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation_failed(errors));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let filter = to_json(&spec.filter)?;
    let quotas = to_json(&spec.quotas)?;
    let inspectors = to_json(&ids)?;
    let (ps, pe, dd) = (
        spec.period_start.to_string(),
        spec.period_end.to_string(),
        spec.due_date.to_string(),
    );
    let new = plans::NewPlan {
        id: &id,
        name: &spec.name,
        round_title: &spec.round_title,
        theme: &spec.theme,
        period_start: &ps,
        period_end: &pe,
        due_date: &dd,
        template_id: &spec.template_id,
        template_version: spec.template_version,
        pool_filter: &filter,
        quotas: &quotas,
        exclude_inspected_within_days: spec.exclude_inspected_within_days.map(i64::from),
        inspector_ids: &inspectors,
        team_size: i64::from(spec.team_size),
        created_by: access::author(ctx),
    };
    plans::insert_plan(tx.conn(), &new).await?;
    let plan = plans::get_plan(tx.conn(), &id)
        .await?
        .ok_or_else(|| internal(anyhow::anyhow!("plan vanished")))?;
    let event = Event::new(Action::PlanCreated, RecordKind::Plan, &id).created(&plan);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(plan)
}

/// JSON text of the plan fields stored as JSON.
fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(internal)
}

/// A conflict of interest to declare: the inspector must not inspect the establishment.
#[derive(Debug, Clone)]
pub struct NewConflict {
    pub inspector_id: String,
    pub establishment_id: String,
    /// Why (e.g. 亲属关系); 1–500 characters, trimmed.
    pub reason: String,
}

/// Declares one conflict of interest (admin).
pub async fn declare_conflict(
    db: &Db,
    ctx: &Ctx,
    conflict: NewConflict,
) -> Result<plans::ConflictRow> {
    let mut rows = declare_conflicts(db, ctx, std::slice::from_ref(&conflict)).await?;
    rows.pop()
        .ok_or_else(|| internal(anyhow::anyhow!("no conflict recorded")))
}

/// Declares conflicts of interest (admin), all or none, one event each.
pub async fn declare_conflicts(
    db: &Db,
    ctx: &Ctx,
    conflicts: &[NewConflict],
) -> Result<Vec<plans::ConflictRow>> {
    access::require(ctx, &[Role::Admin])?;
    for c in conflicts {
        let reason = c.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::invalid(
                "validation_failed",
                "reason must be 1 to 500 characters",
            ));
        }
    }
    let mut tx = db.begin_write().await?;
    let mut out = Vec::with_capacity(conflicts.len());
    let mut events = Vec::with_capacity(conflicts.len());
    for c in conflicts {
        let reason = c.reason.trim();
        let inspector =
            plans::active_inspectors(tx.conn(), std::slice::from_ref(&c.inspector_id)).await?;
        if inspector.is_empty() {
            return Err(Error::invalid(
                "validation_failed",
                "inspector_id is not an active inspector",
            ));
        }
        let est =
            store::establishments::by_ids(tx.conn(), std::slice::from_ref(&c.establishment_id))
                .await?;
        if est.is_empty() {
            return Err(Error::invalid("validation_failed", "no such establishment"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        if let Err(e) = plans::insert_conflict(
            tx.conn(),
            &id,
            &c.inspector_id,
            &c.establishment_id,
            reason,
            ctx.user_id(),
        )
        .await
        {
            if store::is_unique_violation(&e) {
                return Err(Error::conflict(
                    "duplicate",
                    "this conflict is already declared",
                ));
            }
            return Err(e.into());
        }
        let row = plans::get_conflict(tx.conn(), &id)
            .await?
            .ok_or_else(|| internal(anyhow::anyhow!("conflict vanished")))?;
        events.push(
            Event::new(Action::ConflictDeclared, RecordKind::Conflict, &id)
                .set("inspector_id", &row.inspector_id)
                .set("establishment_id", &row.establishment_id)
                .set("reason", &row.reason),
        );
        out.push(row);
    }
    store::audit::append(tx.conn(), ctx, &events).await?;
    tx.commit().await?;
    Ok(out)
}

/// Withdraws a declared conflict (admin). Draws already made keep the conflicts they used.
pub async fn remove_conflict(db: &Db, ctx: &Ctx, id: &str) -> Result<()> {
    access::require(ctx, &[Role::Admin])?;
    let mut tx = db.begin_write().await?;
    let before = plans::get_conflict(tx.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("no such conflict"))?;
    if !plans::delete_conflict(tx.conn(), id).await? {
        return Err(Error::not_found("no such conflict"));
    }
    let event = Event::new(Action::ConflictRemoved, RecordKind::Conflict, id)
        .change(
            "inspector_id",
            &before.inspector_id,
            serde_json::Value::Null,
        )
        .change(
            "establishment_id",
            &before.establishment_id,
            serde_json::Value::Null,
        )
        .change("reason", &before.reason, serde_json::Value::Null);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// The current draw of a plan of either kind (inspection or sampling): its id and stored
/// record.
pub async fn current_record(db: &Db, plan_id: &str) -> Result<(String, DrawRecord)> {
    let mut conn = db.acquire().await?;
    let plan = plans::plan_head(&mut conn, plan_id)
        .await?
        .ok_or_else(|| Error::not_found("no such plan"))?;
    let draw_id = plan
        .current_draw_id
        .ok_or_else(|| Error::not_found("the plan has not been drawn"))?;
    let json = plans::draw_record(&mut conn, &draw_id)
        .await?
        .ok_or_else(|| Error::not_found("no draw record"))?;
    let record: DrawRecord = serde_json::from_str(&json).map_err(internal)?;
    Ok((draw_id, record))
}

/// The full internal draw record (admin), for offline verification. It holds inspector ids and
/// declared conflicts (personal data), so handing it out is recorded as an export.
pub async fn export_draw_record(db: &Db, ctx: &Ctx, plan_id: &str) -> Result<DrawRecord> {
    access::require(ctx, &[Role::Admin])?;
    let (draw_id, record) = current_record(db, plan_id).await?;
    let mut tx = db.begin_write().await?;
    let event = Event::new(Action::PersonalDataExported, RecordKind::Draw, &draw_id)
        .set("plan_id", plan_id)
        .set("export", "internal_draw_record")
        .set("inspectors", record.input.inspectors.len())
        .set("conflicts", record.input.conflicts.len());
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(record)
}

/// Runs the draw of a plan (or a redraw, with a reason) and records it with its tasks, all in
/// one transaction.
///
/// Events: `DrawMade` (seed, pool hash, counts, redraw flag and reason), `PlanUpdated` (status
/// and current draw) and, on a redraw, `TaskCancelled` for each open task of the replaced draw.
pub async fn draw_plan(
    db: &Db,
    ctx: &Ctx,
    plan_id: &str,
    seed: &str,
    reason: Option<&str>,
) -> Result<(plans::DrawRow, DrawRecord)> {
    access::require(ctx, &[Role::Admin])?;
    let seed = seed.to_string();
    if seed.trim().is_empty() || seed.chars().count() > 200 {
        return Err(Error::invalid(
            "validation_failed",
            "seed must be 1 to 200 characters",
        ));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut tx = db.begin_write().await?;
    let plan = plans::get_plan(tx.conn(), plan_id)
        .await?
        .ok_or_else(|| Error::not_found("no such plan"))?;
    if let Some(current) = &plan.current_draw_id {
        let Some(_) = reason else {
            return Err(Error::conflict(
                "already_drawn",
                "this plan has been drawn; a redraw needs a reason and keeps the earlier draw on record",
            ));
        };
        let progressed = plans::progressed_tasks(tx.conn(), current).await?;
        if progressed > 0 {
            return Err(Error::conflict(
                "draw_in_progress",
                format!("{progressed} task(s) of the current draw are in progress or submitted; it cannot be redrawn"),
            ));
        }
    }
    let plan_uuid = uuid::Uuid::parse_str(&plan.id).map_err(|e| Error::Internal(e.into()))?;
    let filter = &plan.filter;
    let quotas = plan.quotas.clone();
    let inspector_ids = &plan.inspector_ids;
    let exclude_since_ms = plan
        .exclude_inspected_within_days
        .map(|d| store::now_ms() - d * 86_400_000);
    let t0 = std::time::Instant::now();
    // A redraw cancels the replaced draw's open tasks: note them for their events.
    let replaced = match &plan.current_draw_id {
        Some(current) => plans::open_tasks_of_draw(tx.conn(), current).await?,
        None => Vec::new(),
    };
    let pool_rows = plans::candidate_pool(
        tx.conn(),
        &plans::PoolQuery {
            plan_id: &plan.id,
            categories: filter
                .categories
                .iter()
                .map(|c| c.code().to_string())
                .collect(),
            towns: filter.towns.clone(),
            risk_grades: filter
                .risk_grades
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            exclude_since_ms,
        },
    )
    .await?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        n = pool_rows.len(),
        "draw: pool loaded"
    );
    let inspectors = plans::active_inspectors(tx.conn(), inspector_ids).await?;
    if (inspectors.len() as i64) < plan.team_size {
        return Err(Error::invalid(
            "validation_failed",
            format!(
                "only {} of the plan's inspectors are active inspectors; a team needs {}",
                inspectors.len(),
                plan.team_size
            ),
        ));
    }
    let active_ids: Vec<String> = inspectors.iter().map(|(id, _, _)| id.clone()).collect();
    let conflicts = plans::conflicts_of(tx.conn(), &active_ids).await?;
    let parse = |s: &str| uuid::Uuid::parse_str(s).map_err(|e| Error::Internal(e.into()));
    let mut candidates = Vec::with_capacity(pool_rows.len());
    for (id, grade) in &pool_rows {
        let grade = crate::establishment::RiskGrade::parse(grade)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("bad grade {grade}")))?;
        candidates.push(Candidate {
            id: parse(id)?,
            grade: crate::plan::grade_of(grade),
        });
    }
    let pool = draw::canonical_pool(candidates)
        .map_err(|e| Error::Internal(anyhow::anyhow!(e.to_string())))?;
    let input = DrawInput {
        plan_id: plan_uuid,
        seed: seed.clone(),
        pool,
        quotas,
        inspectors: active_ids
            .iter()
            .map(|id| parse(id).map(|id| Inspector { id }))
            .collect::<Result<_, _>>()?,
        team_size: plan.team_size as u32,
        conflicts: conflicts
            .iter()
            .map(|(i, e)| {
                Ok(Conflict {
                    inspector_id: parse(i)?,
                    establishment_id: parse(e)?,
                })
            })
            .collect::<Result<_, Error>>()?,
    };
    // The draw is CPU work (100k candidates: sorting, hashing): off the async threads.
    let (input, outcome) = tokio::task::spawn_blocking(move || {
        let out = draw::draw(&input);
        (input, out)
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let outcome = outcome.map_err(|e| Error::invalid("draw_impossible", e.to_string()))?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        "draw: computed"
    );
    let drawn_ids: Vec<String> = outcome.drawn.iter().map(|u| u.to_string()).collect();
    let followups = plans::followups(tx.conn(), &drawn_ids).await?;
    let order: HashMap<uuid::Uuid, usize> = outcome
        .drawn
        .iter()
        .enumerate()
        .map(|(i, u)| (*u, i))
        .collect();
    let tasks: Vec<plans::NewTask> = outcome
        .teams
        .iter()
        .map(|t| {
            let eid = t.establishment_id.to_string();
            plans::NewTask {
                id: uuid::Uuid::new_v4().to_string(),
                must_check_items: followups.get(&eid).cloned().unwrap_or_else(|| "[]".into()),
                establishment_id: eid,
                draw_order: order.get(&t.establishment_id).copied().unwrap_or(0) as i64,
                members: t.inspector_ids.iter().map(|u| u.to_string()).collect(),
            }
        })
        .collect();
    let record = draw::DrawRecord { input, outcome };
    let record_json = serde_json::to_string(&record).map_err(|e| Error::Internal(e.into()))?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        bytes = record_json.len(),
        "draw: record serialised"
    );
    let draw_id = uuid::Uuid::new_v4().to_string();
    let new = plans::NewDraw::of_record(
        &draw_id,
        &plan.id,
        &record,
        &record_json,
        reason,
        access::author(ctx),
    );
    if !plans::record_draw(
        tx.conn(),
        &new,
        plan.current_draw_id.as_deref(),
        &plan,
        &tasks,
    )
    .await?
    {
        return Err(Error::conflict(
            "conflict",
            "the plan was drawn concurrently; reload it",
        ));
    }
    let redraw = plan.current_draw_id.is_some();
    let mut events = vec![
        Event::new(Action::DrawMade, RecordKind::Draw, &draw_id)
            .set("plan_id", &plan.id)
            .set("seed", &seed)
            .set("algorithm", &record.outcome.algorithm)
            .set("pool_hash", &record.outcome.pool_hash)
            .set("pool_size", record.input.pool.len())
            .set("selected", record.outcome.drawn.len())
            .set("tasks", tasks.len())
            .set("unassignable", record.outcome.unassignable.len())
            .set("redraw", redraw)
            .set("reason", reason)
            .set("replaced_draw_id", &plan.current_draw_id),
        Event::new(Action::PlanUpdated, RecordKind::Plan, &plan.id)
            .change("status", plan.status, PlanStatus::Drawn)
            .change("current_draw_id", &plan.current_draw_id, &draw_id),
    ];
    events.extend(replaced.iter().map(|(task_id, state)| {
        Event::new(Action::TaskCancelled, RecordKind::Task, task_id)
            .change("state", state, TaskState::Cancelled)
            .set("cancel_reason", plans::REDRAW_CANCEL_REASON)
    }));
    store::audit::append(tx.conn(), ctx, &events).await?;
    let row = plans::get_draw(tx.conn(), &draw_id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("draw vanished")))?;
    tx.commit().await?;
    db.refresh_statistics(&["tasks", "task_members", "draws"])
        .await;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        "draw: committed"
    );
    Ok((row, record))
}
