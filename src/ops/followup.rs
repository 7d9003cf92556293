//! 整改 → 复查: follow-up orders, their recheck tasks, and the working-day calendar years.
//!
//! - [`open_on_approval`] runs inside the review's approval transaction (no transaction of its
//!   own): it opens the 书面限期整改 order with its working-day deadline.
//! - [`create_due_rechecks`] (background sweep, CLI) and [`schedule_recheck`] (a reviewer, early)
//!   create the recheck task of a follow-up, one write transaction each, bumping the sync
//!   counter so the team's devices pull the task.
//! - [`on_submissions`] runs inside the sync push's transaction: a submitted recheck closes or
//!   escalates its follow-up.
//!
//! The rules themselves are pure, in [`crate::followup`]; the calendar is
//! [`crate::calendar`], the bundled years merged with those admins added (loaded per use case:
//! it is a few hundred dates).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::AnyConnection;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::calendar::{Calendar, DateWarning, YearData};
use crate::checklist::rule::{ItemStatus, ResultCode};
use crate::followup::{self as rules, Followup, FollowupState, Refusal, Settings, TeamFacts};
use crate::store::{self, followup as q, Db};

pub use crate::followup::FollowupOrder;

fn internal(e: impl Into<anyhow::Error>) -> Error {
    Error::Internal(e.into())
}

fn refused(r: Refusal) -> Error {
    Error::invalid(r.code(), r.to_string())
}

/// The effective calendar: the bundled years, replaced or extended by the years admins added.
pub async fn effective_calendar(conn: &mut AnyConnection) -> Result<Calendar> {
    let mut cal = Calendar::default_cn();
    for row in store::calendar::years(conn).await? {
        let data: YearData = serde_json::from_str(&row.data).map_err(internal)?;
        let year = i32::try_from(row.year).map_err(internal)?;
        cal.merge(Calendar::from_year(year, &data).map_err(internal)?);
    }
    Ok(cal)
}

/// The first year from `from`'s to `until`'s that the calendar lacks, if any: a deadline counted
/// into it is refused (`calendar_year_missing`) until an admin adds the year, so the server
/// warns ahead (the recheck sweep checks the next 60 days).
pub async fn missing_calendar_year(
    db: &Db,
    from: chrono::NaiveDate,
    until: chrono::NaiveDate,
) -> Result<Option<i32>> {
    use chrono::Datelike;
    let mut conn = db.acquire().await?;
    let have: std::collections::BTreeSet<i32> =
        effective_calendar(&mut conn).await?.years().collect();
    Ok((from.year()..=until.year()).find(|y| !have.contains(y)))
}

/// The facts about a proposed team (recheck or reassigned) at an establishment.
pub(crate) async fn team_facts(
    conn: &mut AnyConnection,
    establishment_id: &str,
    team: &[String],
) -> Result<TeamFacts> {
    let active = store::plans::active_inspectors(conn, team)
        .await?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let conflicted = q::conflicted_at(conn, establishment_id, team)
        .await?
        .into_iter()
        .collect();
    Ok(TeamFacts { active, conflicted })
}

/// Called by `ops::review` inside its write transaction when an inspection is approved with
/// `result` (the override if any, else the computed one). Opens a follow-up for 基本符合 and
/// 不符合 and returns its id; nothing for 符合. Refusals (422): `followup_markers_not_allowed`,
/// `invalid_rectification_period`, `validation_failed` (order text), `recheck_team_too_small`,
/// `recheck_inspector_not_active`, `recheck_inspector_conflict`, `calendar_year_missing`; 409
/// `invalid_state` for an inspection that is not submitted, `duplicate` when it already has one.
pub async fn open_on_approval(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    inspection_id: &str,
    result: ResultCode,
    order: &FollowupOrder,
    settings: &Settings,
) -> Result<Option<String>> {
    access::require(ctx, &[Role::Reviewer, Role::Admin])?;
    if result == ResultCode::Compliant && !order.stop_operating && !order.case_opened {
        return Ok(None);
    }
    let facts = q::inspection_facts(conn, inspection_id)
        .await?
        .ok_or_else(|| Error::not_found("no such inspection"))?;
    if facts.submitted == 0 {
        return Err(Error::conflict(
            "invalid_state",
            "the inspection has not been submitted",
        ));
    }
    if q::of_inspection(conn, inspection_id).await?.is_some() {
        return Err(Error::conflict(
            "duplicate",
            "this inspection already has a follow-up",
        ));
    }
    // The items failed at submission (the evaluation the server computed then).
    let failed_items: Vec<String> = facts
        .evaluation
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .map_err(internal)?
        .and_then(|v| serde_json::from_value(v["failed_items"].clone()).ok())
        .unwrap_or_default();
    let inspection_team = q::team_of_task(conn, &facts.task_id).await?;
    let proposed: Vec<String> = order
        .recheck_team
        .clone()
        .unwrap_or_else(|| inspection_team.clone());
    let team = team_facts(conn, &facts.establishment_id, &proposed).await?;
    let calendar = effective_calendar(conn).await?;
    let ordered_on = settings.today();
    let opening = rules::decide_opening(
        order,
        &rules::OpeningFacts {
            result,
            ordered_on,
            failed_items: &failed_items,
            inspection_team: &inspection_team,
            team: &team,
            default_period: settings.rectification_period_working_days,
        },
        &calendar,
    )
    .map_err(refused)?;
    let Some(o) = opening else { return Ok(None) };
    let now = store::now_ms();
    let followup = Followup {
        id: uuid::Uuid::new_v4().to_string(),
        inspection_id: Some(facts.id),
        sample_id: None,
        establishment_id: facts.establishment_id,
        plan_id: Some(facts.plan_id),
        origin_result: Some(o.origin_result),
        state: FollowupState::Open,
        order_text: o.order_text,
        ordered_on: o.ordered_on,
        period_working_days: Some(o.period_working_days),
        period_calendar_days: None,
        deadline: o.deadline,
        failed_items: o.failed_items,
        stop_operating: o.stop_operating,
        case_opened: o.case_opened,
        recheck_team: o.recheck_team,
        recheck_task_id: None,
        recheck_inspection_id: None,
        outcome_result: None,
        closed_at: None,
        created_by: access::author(ctx).to_string(),
        created_at: now,
        updated_at: now,
    };
    q::insert(conn, &followup).await?;
    let event =
        Event::new(Action::FollowupOpened, RecordKind::Followup, &followup.id).created(&followup);
    store::audit::append(conn, ctx, &[event]).await?;
    Ok(Some(followup.id))
}

/// What a sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DueReport {
    /// (follow-up id, recheck task id) created.
    pub created: Vec<(String, String)>,
    /// (follow-up id, why) left open: its team is no longer valid, or the calendar lacks a year.
    /// It stays in the reviewers' "rechecks due" queue; `POST /api/v1/followups/{id}/recheck`
    /// with another team schedules it.
    pub skipped: Vec<(String, String)>,
}

/// Most follow-ups one sweep handles (the next sweep takes the rest).
const SWEEP_BATCH: i64 = 500;

/// Creates the recheck task of every open follow-up whose deadline is `today` or past, one
/// write transaction each. Idempotent and safe with several instances: a follow-up another
/// sweep took meanwhile is left alone.
pub async fn create_due_rechecks(
    db: &Db,
    ctx: &Ctx,
    settings: &Settings,
    today: NaiveDate,
) -> Result<DueReport> {
    access::require(ctx, &[Role::Admin, Role::Reviewer])?;
    let ids = {
        let mut conn = db.acquire().await?;
        q::due_ids(&mut conn, today, SWEEP_BATCH).await?
    };
    let mut report = DueReport::default();
    for id in ids {
        match assign(db, ctx, settings, &id, None, today, true).await {
            Ok(Some(task)) => report.created.push((id, task)),
            Ok(None) => {}
            Err(Error::Invalid { message, .. }) => report.skipped.push((id, message)),
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// A reviewer schedules a follow-up's recheck now, before its deadline, optionally with another
/// team. 409 `invalid_state` unless the follow-up is open.
pub async fn schedule_recheck(
    db: &Db,
    ctx: &Ctx,
    settings: &Settings,
    id: &str,
    team: Option<Vec<String>>,
) -> Result<Followup> {
    access::require(ctx, &[Role::Admin, Role::Reviewer])?;
    let today = settings.today();
    match assign(db, ctx, settings, id, team, today, false).await? {
        Some(_) => {}
        None => {
            return Err(Error::conflict(
                "invalid_state",
                "the follow-up is no longer open; its recheck exists",
            ))
        }
    }
    let mut conn = db.acquire().await?;
    q::get(&mut conn, id)
        .await?
        .ok_or_else(|| internal(anyhow::anyhow!("follow-up {id} vanished")))
}

/// Creates one follow-up's recheck task in its own write transaction. `Ok(None)` when the
/// follow-up is not (or no longer) to be assigned: not open, or (for a sweep) not due.
async fn assign(
    db: &Db,
    ctx: &Ctx,
    settings: &Settings,
    id: &str,
    team: Option<Vec<String>>,
    today: NaiveDate,
    only_if_due: bool,
) -> Result<Option<String>> {
    let mut tx = db.begin_write().await?;
    // The follow-up, locked first (PostgreSQL), so the state read below stays current.
    store::sync::lock_rows(tx.conn(), "followups", &[id.to_string()]).await?;
    let seq = store::sync::next_seq(tx.conn()).await?;
    let followup = q::get(tx.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("no such follow-up"))?;
    if followup.state != FollowupState::Open
        || (only_if_due && !rules::is_due(followup.state, followup.deadline, today))
    {
        return Ok(None);
    }
    let Some(inspection_id) = followup.inspection_id.clone() else {
        return Err(Error::conflict(
            "invalid_state",
            "a sample's 核查处置 follow-up has no recheck: it closes with the sample's disposal_done",
        ));
    };
    let team = team.unwrap_or_else(|| followup.recheck_team.clone());
    let facts = team_facts(tx.conn(), &followup.establishment_id, &team).await?;
    let team = rules::check_team(&team, &facts).map_err(refused)?;
    let calendar = effective_calendar(tx.conn()).await?;
    let due_date = rules::recheck_due_date(&calendar, today, settings.recheck_due_working_days)
        .map_err(refused)?;
    let origin = q::inspection_facts(tx.conn(), &inspection_id)
        .await?
        .ok_or_else(|| internal(anyhow::anyhow!("follow-up {id} lost its inspection")))?;
    let task_id = uuid::Uuid::new_v4().to_string();
    let created = q::assign_recheck(
        tx.conn(),
        &q::NewRecheckTask {
            id: &task_id,
            followup: &followup,
            template_id: &origin.template_id,
            template_version: origin.template_version,
            due_date,
            team: &team,
        },
        seq,
    )
    .await?;
    if !created {
        return Ok(None);
    }
    let events = [
        Event::new(Action::RecheckTaskCreated, RecordKind::Task, &task_id)
            .set("kind", "recheck")
            .set("followup_id", &followup.id)
            .set("plan_id", &followup.plan_id)
            .set("establishment_id", &followup.establishment_id)
            .set("template_id", &origin.template_id)
            .set("template_version", origin.template_version)
            .set("due_date", due_date.to_string())
            .set("must_check_items", &followup.failed_items)
            .set("team", &team),
        Event::new(
            Action::RecheckTaskCreated,
            RecordKind::Followup,
            &followup.id,
        )
        .change("state", followup.state, FollowupState::RecheckAssigned)
        .set("recheck_task_id", &task_id)
        .change("recheck_team", &followup.recheck_team, &team),
    ];
    store::audit::append(tx.conn(), ctx, &events).await?;
    tx.commit().await?;
    Ok(Some(task_id))
}

/// Called inside the sync push's transaction after the submission writes, with the pushed
/// inspections' ids: each newly submitted inspection of a recheck task closes or escalates its
/// follow-up by the closing rule ([`rules::decide_closing`]). Others are ignored.
pub async fn on_submissions(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    inspection_ids: &[String],
) -> Result<()> {
    if inspection_ids.is_empty() {
        return Ok(());
    }
    let rechecks = q::submitted_rechecks(conn, inspection_ids).await?;
    if rechecks.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = rechecks.iter().map(|r| r.inspection_id.clone()).collect();
    let mut answers: HashMap<String, HashMap<String, ItemStatus>> = HashMap::new();
    for a in store::sync::answers_of(conn, &ids).await? {
        let status: Option<ItemStatus> =
            serde_json::from_value(serde_json::Value::String(a.status)).ok();
        if let Some(s) = status {
            answers
                .entry(a.inspection_id)
                .or_default()
                .insert(a.item_code, s);
        }
    }
    let mut events = Vec::new();
    let mut done = HashSet::new();
    for r in rechecks {
        if !done.insert(r.followup_id.clone()) {
            continue;
        }
        let Some(f) = q::get(conn, &r.followup_id).await? else {
            continue;
        };
        let outcome = r.computed_result.as_deref().and_then(q::parse_result);
        let empty = HashMap::new();
        let given = answers.get(&r.inspection_id).unwrap_or(&empty);
        // A submitted inspection always has its computed result; without one nothing passes.
        let closing = match outcome {
            Some(result) => rules::decide_closing(&f.failed_items, given, result),
            None => rules::Closing::Escalated,
        };
        let state = closing.state();
        if !q::finish(conn, &f.id, state, &r.inspection_id, outcome).await? {
            continue;
        }
        let action = match closing {
            rules::Closing::Closed => Action::FollowupClosed,
            rules::Closing::Escalated => Action::FollowupEscalated,
        };
        let not_passed: Vec<&String> = f
            .failed_items
            .iter()
            .filter(|i| given.get(*i) != Some(&ItemStatus::Pass))
            .collect();
        events.push(
            Event::new(action, RecordKind::Followup, &f.id)
                .change("state", f.state, state)
                .set("recheck_inspection_id", &r.inspection_id)
                .set("outcome_result", outcome)
                .set("must_check_not_passed", not_passed),
        );
    }
    if !events.is_empty() {
        store::audit::append(conn, ctx, &events).await?;
    }
    Ok(())
}

/// Called by `ops::review` inside its write transaction when a reviewer returns or rejects an
/// inspection: when it is the recheck that closed or escalated a follow-up, the follow-up waits
/// for its recheck again, and the resubmission (or, after a rejection, the task's next
/// inspection) decides it anew. Returns the follow-up reopened.
pub async fn on_recheck_undone(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    task_id: &str,
    inspection_id: &str,
    review_id: &str,
) -> Result<Option<String>> {
    let Some(id) = store::plans::followup_of_task(conn, task_id).await? else {
        return Ok(None);
    };
    let Some(f) = q::get(conn, &id).await? else {
        return Ok(None);
    };
    if !q::reopen(conn, &id, inspection_id).await? {
        return Ok(None);
    }
    let event = Event::new(Action::FollowupReopened, RecordKind::Followup, &id)
        .change("state", f.state, FollowupState::RecheckAssigned)
        .change(
            "recheck_inspection_id",
            &f.recheck_inspection_id,
            None::<String>,
        )
        .change("outcome_result", f.outcome_result, None::<ResultCode>)
        .set("review_id", review_id);
    store::audit::append(conn, ctx, &[event]).await?;
    Ok(Some(id))
}

/// One follow-up, for admins, reviewers and inspectors of its origin or recheck team (others
/// are answered as if it did not exist).
pub async fn get(db: &Db, ctx: &Ctx, id: &str) -> Result<Followup> {
    access::require(ctx, &[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let mut conn = db.acquire().await?;
    let f = q::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::not_found("no such follow-up"))?;
    if ctx.actor.role == Some(Role::Inspector) {
        let user = ctx.user_id().unwrap_or_default();
        if !q::on_team(&mut conn, &f, user).await? {
            return Err(Error::not_found("no such follow-up"));
        }
    }
    Ok(f)
}

/// Where a calendar year comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearOrigin {
    /// The bundled State Council data.
    Bundled,
    /// Added (or replaced) by an admin.
    Added,
}

/// One year of the effective calendar.
#[derive(Debug, Clone)]
pub struct CalendarYear {
    pub year: i32,
    pub origin: YearOrigin,
    pub source: Option<String>,
    pub data: YearData,
    /// Who added it and when (Unix ms), for added years.
    pub added_by: Option<String>,
    pub added_at: Option<i64>,
}

/// The years of the effective calendar, ascending (admin, reviewer).
pub async fn calendar_years(db: &Db, ctx: &Ctx) -> Result<Vec<CalendarYear>> {
    access::require(ctx, &[Role::Admin, Role::Reviewer])?;
    let sources = Calendar::default_sources();
    let mut years: std::collections::BTreeMap<i32, CalendarYear> = Calendar::default_year_data()
        .into_iter()
        .map(|(year, data)| {
            (
                year,
                CalendarYear {
                    year,
                    origin: YearOrigin::Bundled,
                    source: sources.get(&year).cloned(),
                    data,
                    added_by: None,
                    added_at: None,
                },
            )
        })
        .collect();
    let mut conn = db.acquire().await?;
    for row in store::calendar::years(&mut conn).await? {
        let year = i32::try_from(row.year).map_err(internal)?;
        years.insert(
            year,
            CalendarYear {
                year,
                origin: YearOrigin::Added,
                source: row.source,
                data: serde_json::from_str(&row.data).map_err(internal)?,
                added_by: Some(row.created_by),
                added_at: Some(row.created_at),
            },
        );
    }
    Ok(years.into_values().collect())
}

/// Adds or replaces one year of the calendar (admin), validated: real dates inside that year,
/// make-up working days on weekends only, no date both a holiday and a working day (422
/// `invalid_calendar`). Follow-ups opened before keep their deadlines.
pub async fn set_calendar_year(
    db: &Db,
    ctx: &Ctx,
    year: i32,
    data: &YearData,
    source: Option<&str>,
) -> Result<()> {
    access::require(ctx, &[Role::Admin])?;
    Calendar::from_year(year, data)
        .map_err(|e| Error::invalid("invalid_calendar", e.to_string()))?;
    let source = source.map(str::trim).filter(|s| !s.is_empty());
    if source.is_some_and(|s| s.chars().count() > 500) {
        return Err(Error::invalid(
            "validation_failed",
            "source must be at most 500 characters",
        ));
    }
    let json = serde_json::to_string(data).map_err(internal)?;
    let mut tx = db.begin_write().await?;
    let before = store::calendar::year(tx.conn(), i64::from(year)).await?;
    store::calendar::put_year(
        tx.conn(),
        i64::from(year),
        &json,
        source,
        access::author(ctx),
    )
    .await?;
    let before_data: Option<serde_json::Value> = before
        .as_ref()
        .and_then(|b| serde_json::from_str(&b.data).ok());
    let event = Event::new(
        Action::CalendarYearSet,
        RecordKind::CalendarYear,
        year.to_string(),
    )
    .change("data", before_data, data)
    .change(
        "source",
        before.as_ref().and_then(|b| b.source.clone()),
        source,
    );
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(())
}

/// Warnings for a plan due on `due`: in the past, or not a working day (or in a year the
/// calendar lacks). The plan is not refused.
pub async fn due_date_warnings(
    db: &Db,
    settings: &Settings,
    due: NaiveDate,
) -> Result<Vec<DateWarning>> {
    let mut conn = db.acquire().await?;
    let calendar = effective_calendar(&mut conn).await?;
    Ok(calendar.due_date_warnings(due, settings.today()))
}
