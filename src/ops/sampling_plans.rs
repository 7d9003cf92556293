//! 食品安全抽检 plans and tasks: create a sampling plan, draw its premises, give a task its team
//! of samplers (and lab), and read plans and tasks. One write transaction each, with its audit
//! events.
//!
//! A sampling plan is a `plans` row of kind `sampling` and is drawn with the inspection plans'
//! draw into the same `draws` records (why: `crate::sampling::plan`). The draw is
//! selection-only (`plan::draw`, "Selection only"): the premises come out of the auditable
//! draw, and a reviewer then assigns each task a team of at least two samplers with the 回避
//! rule of inspection teams (`sampling::plan::decide_team`).
//!
//! Who sees a task: admins and reviewers every task; an inspector the tasks whose team includes
//! them (any other is answered exactly as a task that does not exist, 404).

use std::collections::HashMap;

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::BureauZone;
use crate::establishment::FieldError;
use crate::plan::draw::{self, Candidate, DrawInput, DrawRecord};
use crate::plan::{PlanKind, PlanStatus, PoolFilter, TeamMember};
use crate::sampling::form::{Purpose, Stage};
use crate::sampling::plan::{
    self as rules, Batch, RawSamplingPlan, SamplingTaskState, TeamChange, TeamFactsOfTask,
};
use crate::store::sampling_plans::{self as q, SamplingPlanRow, TaskFilter, TaskRow};
use crate::store::{self, plans, Db};

const OFFICE: &[Role] = &[Role::Admin, Role::Reviewer];

/// The cancel reason of the tasks a redraw replaces.
pub const REDRAW_CANCEL_REASON: &str = "superseded by a redraw";

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

fn task_not_found() -> Error {
    Error::not_found("no such sampling task")
}

/// A sampling plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SamplingPlanView {
    pub id: String,
    /// Always `sampling`.
    pub kind: PlanKind,
    pub title: String,
    /// 检验目的.
    pub purpose: Purpose,
    /// 抽样环节.
    pub stage: Stage,
    /// `YYYY-MM-DD`.
    pub period_start: String,
    pub period_end: String,
    /// The lab the plan's samples go to (a task may have another).
    pub lab_id: String,
    /// Batches per food category, dealt over the drawn premises in draw order.
    pub batches: Vec<Batch>,
    pub filter: PoolFilter,
    /// Premises drawn per risk grade: `{"explicit": {...}}` or `{"weighted": {...}}`.
    #[schema(value_type = Object)]
    pub quotas: draw::Quotas,
    /// Smallest team of samplers (2).
    pub team_size: i64,
    /// Tasks are due this many working days after the draw day.
    pub task_due_working_days: i64,
    /// `draft` (not drawn yet) or `drawn`.
    pub status: PlanStatus,
    pub current_draw_id: Option<String>,
    /// User id of the creator.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
}

fn plan_view(r: SamplingPlanRow) -> Result<SamplingPlanView> {
    Ok(SamplingPlanView {
        purpose: Purpose::parse(&r.purpose).ok_or_else(|| internal(&r.purpose))?,
        stage: Stage::parse(&r.stage).ok_or_else(|| internal(&r.stage))?,
        batches: serde_json::from_str(&r.batches).map_err(internal)?,
        filter: serde_json::from_str(&r.pool_filter).map_err(internal)?,
        quotas: serde_json::from_str(&r.quotas).map_err(internal)?,
        status: PlanStatus::parse(&r.status).ok_or_else(|| internal(&r.status))?,
        kind: PlanKind::Sampling,
        id: r.id,
        title: r.title,
        period_start: r.period_start,
        period_end: r.period_end,
        lab_id: r.lab_id,
        team_size: r.team_size,
        task_due_working_days: r.task_due_working_days,
        current_draw_id: r.current_draw_id,
        created_by: r.created_by,
        created_at: r.created_at,
    })
}

/// Creates a sampling plan (admin, reviewer): validated, with an existing lab and categories
/// of the stored tree. Refusals: 422 `validation_failed` naming the fields.
pub async fn create_plan(db: &Db, ctx: &Ctx, raw: RawSamplingPlan) -> Result<SamplingPlanView> {
    access::require(ctx, OFFICE)?;
    let spec = raw.validate().map_err(Error::validation_failed)?;
    let mut tx = db.begin_write().await?;
    let mut errors = Vec::new();
    if store::sampling::lab(tx.conn(), &spec.lab_id)
        .await?
        .is_none()
    {
        errors.push(FieldError::new("lab_id", "unknown_lab", "no such lab"));
    }
    for (i, b) in spec.batches.iter().enumerate() {
        if store::sampling::category(tx.conn(), &b.category_code)
            .await?
            .is_none()
        {
            errors.push(FieldError::new(
                &format!("batches[{i}]"),
                "unknown_category",
                format!(
                    "no food category {}; an admin imports the category tree",
                    b.category_code
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::validation_failed(errors));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let theme = format!("{}·{}环节", spec.purpose.label_zh(), spec.stage.label_zh());
    let (filter, quotas, batches) = (
        to_json(&spec.filter)?,
        to_json(&spec.quotas)?,
        to_json(&spec.batches)?,
    );
    let (ps, pe) = (spec.period_start.to_string(), spec.period_end.to_string());
    q::insert_plan(
        tx.conn(),
        &q::NewSamplingPlan {
            id: &id,
            title: &spec.title,
            theme: &theme,
            period_start: &ps,
            period_end: &pe,
            pool_filter: &filter,
            quotas: &quotas,
            team_size: i64::from(draw::MIN_TEAM_SIZE),
            purpose: spec.purpose.code(),
            stage: spec.stage.code(),
            lab_id: &spec.lab_id,
            batches: &batches,
            task_due_working_days: i64::from(spec.task_due_working_days),
            created_by: access::author(ctx),
            now: store::now_ms(),
        },
    )
    .await?;
    let row = q::get_plan(tx.conn(), &id)
        .await?
        .ok_or_else(|| internal("plan vanished"))?;
    let view = plan_view(row)?;
    let event = Event::new(Action::PlanCreated, RecordKind::Plan, &id).created(&view);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(view)
}

/// JSON text of a value stored as JSON.
fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(internal)
}

/// One sampling plan (admin, reviewer) with its draws.
pub async fn get_plan(
    db: &Db,
    ctx: &Ctx,
    id: &str,
) -> Result<(SamplingPlanView, Vec<plans::DrawRow>)> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let row = q::get_plan(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("no such sampling plan"))?;
    let draws = plans::draws_of(&mut conn, id).await?;
    Ok((plan_view(row)?, draws))
}

/// Sampling plans, newest first (admin, reviewer).
pub async fn list_plans(
    db: &Db,
    ctx: &Ctx,
    page: u32,
    page_size: u32,
) -> Result<(Vec<SamplingPlanView>, i64)> {
    access::require(ctx, OFFICE)?;
    let mut conn = db.acquire().await?;
    let (rows, total) = q::list_plans(&mut conn, page, page_size).await?;
    Ok((
        rows.into_iter().map(plan_view).collect::<Result<_>>()?,
        total,
    ))
}

/// Draws a sampling plan's premises (admin, reviewer) with the inspection plans' draw, selection
/// only, and creates one unassigned task per drawn premises with its share of the batches
/// ([`rules::allot`]) and its due date (`task_due_working_days` working days after the bureau's
/// today). A redraw needs a reason, keeps the earlier draw on record and cancels its tasks;
/// refused once a sample was submitted against one.
///
/// Events: `DrawMade`, `PlanUpdated` (status, current draw), `TaskCancelled` per replaced task.
pub async fn draw_plan(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    plan_id: &str,
    seed: &str,
    reason: Option<&str>,
) -> Result<(plans::DrawRow, DrawRecord)> {
    access::require(ctx, OFFICE)?;
    if seed.trim().is_empty() || seed.chars().count() > 200 {
        return Err(Error::invalid(
            "validation_failed",
            "seed must be 1 to 200 characters",
        ));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut tx = db.begin_write().await?;
    // Taken first: it orders this transaction after every earlier commit.
    let seq = store::sync::next_seq(tx.conn()).await?;
    let row = q::get_plan(tx.conn(), plan_id)
        .await?
        .ok_or_else(|| Error::not_found("no such sampling plan"))?;
    let plan = plan_view(row)?;
    if let Some(current) = &plan.current_draw_id {
        if reason.is_none() {
            return Err(Error::conflict(
                "already_drawn",
                "this plan has been drawn; a redraw needs a reason and keeps the earlier draw on record",
            ));
        }
        // Its tasks locked (PostgreSQL): no sample is submitted against them meanwhile.
        store::sync::lock_tasks_of_draw(tx.conn(), "sampling_tasks", current).await?;
        let sampled = q::samples_of_draw(tx.conn(), current).await?;
        if sampled > 0 {
            return Err(Error::conflict(
                "draw_in_progress",
                format!("{sampled} sample(s) were submitted against the current draw's tasks; it cannot be redrawn"),
            ));
        }
    }
    let pool_rows = plans::candidate_pool(
        tx.conn(),
        &plans::PoolQuery {
            plan_id: &plan.id,
            categories: plan
                .filter
                .categories
                .iter()
                .map(|c| c.code().to_string())
                .collect(),
            towns: plan.filter.towns.clone(),
            risk_grades: plan
                .filter
                .risk_grades
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            exclude_since_ms: None,
        },
    )
    .await?;
    let parse = |s: &str| uuid::Uuid::parse_str(s).map_err(internal);
    let mut candidates = Vec::with_capacity(pool_rows.len());
    for (id, grade) in &pool_rows {
        let grade = crate::establishment::RiskGrade::parse(grade)
            .ok_or_else(|| internal(format!("bad grade {grade}")))?;
        candidates.push(Candidate {
            id: parse(id)?,
            grade: crate::plan::grade_of(grade),
        });
    }
    let pool = draw::canonical_pool(candidates).map_err(internal)?;
    let input = DrawInput {
        plan_id: parse(&plan.id)?,
        seed: seed.to_string(),
        pool,
        quotas: plan.quotas.clone(),
        // Selection only: the teams of samplers are assigned after the draw.
        inspectors: Vec::new(),
        team_size: 0,
        conflicts: Vec::new(),
    };
    let (input, outcome) = tokio::task::spawn_blocking(move || {
        let out = draw::draw(&input);
        (input, out)
    })
    .await
    .map_err(internal)?;
    let outcome = outcome.map_err(|e| Error::invalid("draw_impossible", e.to_string()))?;

    let calendar = super::followup::effective_calendar(tx.conn()).await?;
    let now = store::now_ms();
    let start = zone.date_at(Utc::now());
    let days = u32::try_from(plan.task_due_working_days).map_err(internal)?;
    let due = calendar.add_working_days(start, days).map_err(|e| {
        Error::invalid(
            "calendar_year_missing",
            format!(
                "the working-day calendar has no data for {}; an admin must add that year (PUT /api/v1/calendar/years/{})",
                e.year, e.year
            ),
        )
    })?;
    let shares = rules::allot(&plan.batches, outcome.drawn.len());
    let tasks: Vec<q::NewTask> = outcome
        .drawn
        .iter()
        .zip(&shares)
        .enumerate()
        .map(|(i, (est, share))| {
            Ok(q::NewTask {
                id: uuid::Uuid::new_v4().to_string(),
                establishment_id: est.to_string(),
                draw_order: i as i64 + 1,
                batches: serde_json::to_string(share).map_err(internal)?,
            })
        })
        .collect::<Result<_>>()?;
    let record = DrawRecord { input, outcome };
    let record_json = serde_json::to_string(&record).map_err(internal)?;
    let draw_id = uuid::Uuid::new_v4().to_string();
    let new = plans::NewDraw::of_record(
        &draw_id,
        &plan.id,
        &record,
        &record_json,
        reason,
        access::author(ctx),
    );
    if !plans::claim_draw(tx.conn(), &new, plan.current_draw_id.as_deref(), now).await? {
        return Err(Error::conflict(
            "conflict",
            "the plan was drawn concurrently; reload it",
        ));
    }
    let replaced = match &plan.current_draw_id {
        Some(prev) => {
            q::cancel_tasks_of_draw(tx.conn(), prev, REDRAW_CANCEL_REASON, now, seq).await?
        }
        None => Vec::new(),
    };
    let (due_s, start_s) = (due.to_string(), start.to_string());
    q::insert_tasks(
        tx.conn(),
        &plan.id,
        &draw_id,
        &plan.lab_id,
        &q::Due {
            date: &due_s,
            rule: rules::DUE_RULE,
            period_days: i64::from(days),
            start_on: &start_s,
        },
        &tasks,
        now,
        seq,
    )
    .await?;
    let mut events = vec![
        Event::new(Action::DrawMade, RecordKind::Draw, &draw_id)
            .set("plan_id", &plan.id)
            .set("plan_kind", PlanKind::Sampling)
            .set("seed", seed)
            .set("algorithm", &record.outcome.algorithm)
            .set("pool_hash", &record.outcome.pool_hash)
            .set("pool_size", record.input.pool.len())
            .set("selected", record.outcome.drawn.len())
            .set("tasks", tasks.len())
            .set("due_date", &due_s)
            .set("redraw", plan.current_draw_id.is_some())
            .set("reason", reason)
            .set("replaced_draw_id", &plan.current_draw_id),
        Event::new(Action::PlanUpdated, RecordKind::Plan, &plan.id)
            .change("status", plan.status, PlanStatus::Drawn)
            .change("current_draw_id", &plan.current_draw_id, &draw_id),
    ];
    events.extend(replaced.iter().map(|(id, state)| {
        Event::new(Action::TaskCancelled, RecordKind::SamplingTask, id)
            .change("state", state, SamplingTaskState::Cancelled)
            .set("cancel_reason", REDRAW_CANCEL_REASON)
    }));
    store::audit::append(tx.conn(), ctx, &events).await?;
    let row = plans::get_draw(tx.conn(), &draw_id)
        .await?
        .ok_or_else(|| internal("draw vanished"))?;
    tx.commit().await?;
    db.refresh_statistics(&["sampling_tasks", "sampling_task_members", "draws"])
        .await;
    Ok((row, record))
}

/// The premises of a task: what samplers need to find and identify it (no contact data).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SamplingPremises {
    pub id: String,
    /// 牌匾名称.
    pub sign_name: String,
    /// 营业执照名称.
    pub licensed_name: String,
    pub address: String,
    pub town: String,
    /// 食品经营许可证编号 or 备案编号, as registered.
    pub license_no: Option<String>,
    /// 统一社会信用代码, as registered.
    pub uscc: Option<String>,
}

/// A task's due date with the rule it was computed by.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskDue {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `working_days_after_draw`: `period_days` working days (on the bureau's working-day
    /// calendar, 调休 included) after `start_on`, which is not counted.
    pub rule: String,
    pub period_days: i64,
    /// The draw day, `YYYY-MM-DD`.
    pub start_on: String,
    /// Not cancelled and past the date (the bureau's today).
    pub overdue: bool,
}

/// A sampling task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SamplingTaskView {
    pub id: String,
    pub plan_id: String,
    pub plan_title: String,
    /// The draw that made it.
    pub draw_id: String,
    /// False once a redraw replaced the draw (the task is then cancelled).
    pub current: bool,
    /// Position of the premises in draw order, from 1.
    pub draw_order: i64,
    /// `unassigned` → `assigned` (a team is set; it may be changed until a sample is
    /// submitted); `cancelled` by a redraw.
    pub state: SamplingTaskState,
    pub cancel_reason: Option<String>,
    /// 检验目的 and 抽样环节 of the plan: a sample against the task must have them.
    pub purpose: Purpose,
    pub stage: Stage,
    /// The lab its samples go to.
    pub lab_id: String,
    /// Its share of the plan's batches.
    pub batches: Vec<Batch>,
    pub due: TaskDue,
    pub premises: SamplingPremises,
    /// The samplers, in order (empty while unassigned).
    pub team: Vec<TeamMember>,
    /// The change position of its last change (the sync cursor space).
    pub seq: i64,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

fn task_view(t: TaskRow, team: Vec<TeamMember>, today: &str) -> Result<SamplingTaskView> {
    Ok(SamplingTaskView {
        purpose: Purpose::parse(&t.purpose).ok_or_else(|| internal(&t.purpose))?,
        stage: Stage::parse(&t.stage).ok_or_else(|| internal(&t.stage))?,
        batches: serde_json::from_str(&t.batches).map_err(internal)?,
        current: t.current_draw_id.as_deref() == Some(t.draw_id.as_str()),
        due: TaskDue {
            overdue: t.state != SamplingTaskState::Cancelled && t.due_date.as_str() < today,
            date: t.due_date,
            rule: t.due_rule,
            period_days: t.due_period_days,
            start_on: t.due_start_on,
        },
        premises: SamplingPremises {
            id: t.establishment_id,
            sign_name: t.sign_name,
            licensed_name: t.licensed_name,
            address: t.address,
            town: t.town,
            license_no: t.license_no,
            uscc: t.uscc,
        },
        id: t.id,
        plan_id: t.plan_id,
        plan_title: t.plan_title,
        draw_id: t.draw_id,
        draw_order: t.draw_order,
        state: t.state,
        cancel_reason: t.cancel_reason,
        lab_id: t.lab_id,
        team,
        seq: t.seq,
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

async fn views(
    conn: &mut sqlx::AnyConnection,
    zone: BureauZone,
    rows: Vec<TaskRow>,
) -> Result<Vec<SamplingTaskView>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut teams: HashMap<String, Vec<TeamMember>> = HashMap::new();
    for (task, user, name, badge, _) in q::members_of(conn, &ids).await? {
        teams
            .entry(task)
            .or_default()
            .push(TeamMember::officer(user, name, badge));
    }
    let today = zone.date_at(Utc::now()).to_string();
    rows.into_iter()
        .map(|r| {
            let team = teams.remove(&r.id).unwrap_or_default();
            task_view(r, team, &today)
        })
        .collect()
}

/// A page of tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SamplingTaskPage {
    pub items: Vec<SamplingTaskView>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

/// Tasks, earliest due first: every task for admins and reviewers (optionally of one plan and
/// state); an inspector's own (`mine`) for an inspector.
pub async fn list_tasks(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    mut filter: TaskFilter,
    mine: bool,
) -> Result<SamplingTaskPage> {
    if mine {
        access::require(ctx, &[Role::Inspector])?;
        filter.member = Some(ctx.user_id().unwrap_or_default().to_string());
    } else {
        access::require(ctx, OFFICE)?;
    }
    let mut conn = db.acquire().await?;
    let (rows, total) = q::list_tasks(&mut conn, &filter).await?;
    Ok(SamplingTaskPage {
        items: views(&mut conn, zone, rows).await?,
        total_count: total,
        page: filter.page.max(1),
        page_size: filter.page_size,
    })
}

/// One task: admins and reviewers; an inspector of its team. Anyone else: 404.
pub async fn get_task(db: &Db, ctx: &Ctx, zone: BureauZone, id: &str) -> Result<SamplingTaskView> {
    access::require(ctx, &[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let mut conn = db.acquire().await?;
    let row = q::get_task(&mut conn, id)
        .await?
        .ok_or_else(task_not_found)?;
    if ctx.actor.role == Some(Role::Inspector) {
        let me = ctx.user_id().unwrap_or_default();
        if !q::team_of(&mut conn, id).await?.iter().any(|m| m == me) {
            return Err(task_not_found());
        }
    }
    let mut v = views(&mut conn, zone, vec![row]).await?;
    v.pop().ok_or_else(task_not_found)
}

/// Assigns (or changes) a task's team of samplers, and optionally its lab (admin, reviewer).
/// One write at one change position: removed samplers' devices will be told to delete the task,
/// added ones get it as new. Refusals: 422 `team_too_small`, `sampler_not_active`,
/// `sampler_conflict` (回避), `team_unchanged`, `unknown_lab`; 409 `invalid_state` (cancelled),
/// `task_has_samples`.
pub async fn assign_team(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    id: &str,
    proposed: &[String],
    lab_id: Option<&str>,
) -> Result<SamplingTaskView> {
    access::require(ctx, OFFICE)?;
    let mut tx = db.begin_write().await?;
    // The task, locked first (PostgreSQL): its samples and team stay as read until commit.
    store::sync::lock_rows(tx.conn(), "sampling_tasks", &[id.to_string()]).await?;
    let seq = store::sync::next_seq(tx.conn()).await?;
    let task = q::get_task(tx.conn(), id)
        .await?
        .ok_or_else(task_not_found)?;
    let current = q::team_of(tx.conn(), id).await?;
    let lab = match lab_id.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => {
            if store::sampling::lab(tx.conn(), l).await?.is_none() {
                return Err(Error::validation_failed(vec![FieldError::new(
                    "lab_id",
                    "unknown_lab",
                    "no such lab",
                )]));
            }
            l.to_string()
        }
        None => task.lab_id.clone(),
    };
    let facts = super::followup::team_facts(tx.conn(), &task.establishment_id, proposed).await?;
    let samples = q::samples_of_task(tx.conn(), id).await?;
    let decided = rules::decide_team(
        &TeamFactsOfTask {
            state: task.state,
            current: &current,
            samples: usize::try_from(samples).unwrap_or(usize::MAX),
            team: &facts,
        },
        proposed,
    );
    let change = match decided {
        Ok(c) => c,
        // Only the lab changes.
        Err(rules::TeamRefusal::Unchanged) if lab != task.lab_id && samples == 0 => TeamChange {
            team: current.clone(),
            added: Vec::new(),
            removed: Vec::new(),
        },
        Err(e) if e.is_conflict() => return Err(Error::conflict(e.code(), e.to_string())),
        Err(e) => return Err(Error::invalid(e.code(), e.to_string())),
    };
    let now = store::now_ms();
    q::change_team(
        tx.conn(),
        id,
        &change.team,
        &change.added,
        &change.removed,
        &lab,
        now,
        seq,
    )
    .await?;
    let event = Event::new(Action::SamplingTeamAssigned, RecordKind::SamplingTask, id)
        .change("team", &current, &change.team)
        .set("added", &change.added)
        .set("removed", &change.removed)
        .change("lab_id", &task.lab_id, &lab)
        .change("state", task.state, SamplingTaskState::Assigned);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    let row = q::get_task(tx.conn(), id)
        .await?
        .ok_or_else(task_not_found)?;
    let mut v = views(tx.conn(), zone, vec![row]).await?;
    tx.commit().await?;
    v.pop().ok_or_else(task_not_found)
}

/// For a sample submitted against `task_id` by `submitter` (inside the submission's
/// transaction): the task, if the submitter is on its team, checked against the sample
/// ([`rules::check_sample_against_task`]). A task of another team is answered as one that does
/// not exist: 422 `unknown_task`. 409 `task_cancelled`; 422 `validation_failed` naming the
/// fields that disagree.
pub(super) async fn check_sample_task(
    conn: &mut sqlx::AnyConnection,
    task_id: &str,
    submitter: Option<&str>,
    sample: &rules::SampleForTask<'_>,
) -> Result<()> {
    let unknown = || Error::invalid("unknown_task", "no such sampling task");
    let task = q::get_task(conn, task_id).await?.ok_or_else(unknown)?;
    let team = q::team_of(conn, task_id).await?;
    if let Some(me) = submitter {
        if !team.iter().any(|m| m == me) {
            return Err(unknown());
        }
    }
    let batches: Vec<Batch> = serde_json::from_str(&task.batches).map_err(internal)?;
    let facts = rules::TaskForSample {
        state: task.state,
        batches: &batches,
        team: &team,
        establishment_id: &task.establishment_id,
        lab_id: &task.lab_id,
        purpose: Purpose::parse(&task.purpose).ok_or_else(|| internal(&task.purpose))?,
        stage: Stage::parse(&task.stage).ok_or_else(|| internal(&task.stage))?,
    };
    match rules::check_sample_against_task(&facts, sample) {
        Ok(()) => Ok(()),
        Err(rules::SampleTaskRefusal::Cancelled) => Err(Error::conflict(
            "task_cancelled",
            "the sampling task was cancelled (a redraw replaced it)",
        )),
        Err(rules::SampleTaskRefusal::Fields(f)) => Err(Error::validation_failed(f)),
    }
}
