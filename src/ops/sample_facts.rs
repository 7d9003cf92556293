//! The later facts of a 不合格 sample (issue 13 items 5 and 6): recording one at a time
//! (`crate::sampling::facts::decide` is the rule), recomputing the sample's deadlines in the
//! same transaction, and the sample's 核查处置 follow-up in the follow-up machinery (opened
//! when the bureau is notified, due 90 calendar days later; closed by `disposal_done`).
//!
//! Who records: admins and reviewers every fact; a lab account only the lab's own facts —
//! `bureau_notified` for a sample sent to its lab (the lab reports the 不合格 result to the
//! bureau), `retest_received` and `retest_reported` when its lab is the sample's 复检 lab
//! (named with the 复检 request). Any other lab, like a caller who may not see the sample,
//! gets the 404 of a sample that does not exist; a lab that may see the sample but records a
//! fact that is not its own gets 403.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sampling as sampling_ops;
use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::BureauZone;
use crate::establishment::FieldError;
use crate::followup::{Followup, FollowupState};
use crate::sampling::deadlines::{Deadline, Periods};
use crate::sampling::facts::{self, Decision, FactKind, LabRole, Request};
use crate::sampling::results::{FailedItem, Verdict};
use crate::store::sample_facts::{self as fq, FactRow};
use crate::store::sampling::{self as q, SampleRow};
use crate::store::{self, Db};

/// The longest note of a fact.
pub const MAX_NOTE_CHARS: usize = 500;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

fn not_found() -> Error {
    Error::not_found("no such sample")
}

/// One fact to record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFact {
    pub kind: FactKind,
    /// The day it happened, `YYYY-MM-DD` (the bureau's day): not after today, not before the
    /// fact it follows.
    pub on: NaiveDate,
    /// At most 500 characters, no control characters.
    pub note: Option<String>,
    /// `retest_requested` only: the 复检 lab (another lab than the sample's); its lab accounts
    /// then record `retest_received` and `retest_reported`.
    pub retest_lab_id: Option<String>,
    /// `retest_requested` only: the 不合格 items to retest (names as reported); absent or empty:
    /// every 不合格 item.
    pub items: Option<Vec<String>>,
}

/// A recorded fact.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FactView {
    pub kind: FactKind,
    /// `YYYY-MM-DD`.
    pub on: String,
    pub note: Option<String>,
    /// User id of who recorded it.
    pub recorded_by: String,
    /// Unix ms.
    pub recorded_at: i64,
}

/// A sample's later facts with its deadlines.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SampleFacts {
    pub sample_id: String,
    /// In the order recorded.
    pub facts: Vec<FactView>,
    /// The 复检 lab, once a 复检 was requested with one.
    pub retest_lab_id: Option<String>,
    /// The items the 复检 covers, once requested.
    pub retest_items: Option<Vec<String>>,
    /// The sample's 核查处置 follow-up (`GET /api/v1/followups/{id}`), once the bureau is
    /// notified.
    pub followup_id: Option<String>,
    /// The legal deadlines as recomputed, in rule order, with their status today.
    pub deadlines: Vec<Deadline>,
}

fn fact_view(r: FactRow) -> Result<FactView> {
    Ok(FactView {
        kind: FactKind::parse(&r.kind).ok_or_else(|| internal(&r.kind))?,
        on: r.on_date,
        note: r.note,
        recorded_by: r.recorded_by,
        recorded_at: r.recorded_at,
    })
}

async fn view(conn: &mut sqlx::AnyConnection, zone: BureauZone, id: &str) -> Result<SampleFacts> {
    let facts = fq::facts_of(conn, id)
        .await?
        .into_iter()
        .map(fact_view)
        .collect::<Result<Vec<_>>>()?;
    let (retest_lab_id, items) = fq::retest_of(conn, id).await?;
    let retest_items = items
        .as_deref()
        .map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(internal)?;
    let followup_id = store::followup::of_sample(conn, id).await?.map(|f| f.id);
    Ok(SampleFacts {
        sample_id: id.to_string(),
        facts,
        retest_lab_id,
        retest_items,
        followup_id,
        deadlines: sampling_ops::stored_deadlines(conn, id, sampling_ops::today(zone)).await?,
    })
}

/// How the caller stands to the sample: `None` for admins and reviewers, the lab's role for a
/// lab account; 404 for anyone else.
async fn recorder(
    conn: &mut sqlx::AnyConnection,
    ctx: &Ctx,
    s: &SampleRow,
) -> Result<Option<LabRole>> {
    let Some(user) = ctx.user_id() else {
        return Ok(None);
    };
    match ctx.actor.role {
        Some(Role::Admin | Role::Reviewer) => Ok(None),
        Some(Role::Lab) => {
            let Some(Some(lab)) = q::user_lab(conn, user).await? else {
                return Err(not_found());
            };
            let (retest_lab, _) = fq::retest_of(conn, &s.id).await?;
            match (lab == s.lab_id, retest_lab.as_deref() == Some(lab.as_str())) {
                (true, true) => Ok(Some(LabRole::Both)),
                (true, false) => Ok(Some(LabRole::SampleLab)),
                (false, true) => Ok(Some(LabRole::RetestLab)),
                (false, false) => Err(not_found()),
            }
        }
        _ => Err(not_found()),
    }
}

/// 404 unless the caller may record some fact of the sample (for the edge, before the body).
pub async fn ensure_recorder(db: &Db, ctx: &Ctx, id: &str) -> Result<()> {
    access::require(ctx, &[Role::Admin, Role::Reviewer, Role::Lab])?;
    let mut conn = db.acquire().await?;
    let s = q::sample(&mut conn, id).await?.ok_or_else(not_found)?;
    recorder(&mut conn, ctx, &s).await?;
    Ok(())
}

fn check_request(n: &NewFact, s: &SampleRow) -> Result<Option<String>> {
    let note = n
        .note
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let mut problems = Vec::new();
    if let Some(t) = &note {
        if t.chars().count() > MAX_NOTE_CHARS || crate::text::find_forbidden(t).is_some() {
            problems.push(FieldError::new(
                "note",
                "too_long",
                format!("note is at most {MAX_NOTE_CHARS} characters, without control characters"),
            ));
        }
    }
    if n.kind != FactKind::RetestRequested && n.retest_lab_id.is_some() {
        problems.push(FieldError::new(
            "retest_lab_id",
            "not_allowed",
            "retest_lab_id is given with retest_requested only",
        ));
    }
    if n.retest_lab_id.as_deref() == Some(s.lab_id.as_str()) {
        problems.push(FieldError::new(
            "retest_lab_id",
            "retest_lab_same",
            "the 复检 lab must be another lab than the one that tested the sample",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::validation_failed(problems));
    }
    Ok(note)
}

/// Records one later fact of a sample (see the module doc for who). Returns the sample's
/// facts and deadlines, and whether the fact was recorded now (`false`: the same fact with the
/// same date again, nothing changed). Refusals: 409 `sample_not_unqualified`,
/// `fact_out_of_order`, `fact_already_recorded` (another date), `retest_not_available`;
/// 422 `fact_in_future`, `fact_before_predecessor`, `retest_window_closed`,
/// `objection_window_closed`, `retest_microbiological` (the items named),
/// `retest_item_not_failed`, `retest_items_not_allowed`, `unknown_lab`, `validation_failed`,
/// `calendar_year_missing`. Deadlines are recomputed, the 核查处置 follow-up opened or closed
/// and the audit events written in the same transaction.
pub async fn record_fact(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    sample_id: &str,
    n: &NewFact,
) -> Result<(SampleFacts, bool)> {
    access::require(ctx, &[Role::Admin, Role::Reviewer, Role::Lab])?;
    let mut tx = db.begin_write().await?;
    let s = q::sample(tx.conn(), sample_id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(lab) = recorder(tx.conn(), ctx, &s).await? {
        if !n.kind.lab_may_record(lab) {
            return Err(Error::forbidden(
                "a lab records only its own facts: bureau_notified for its samples, \
                 retest_received and retest_reported as the 复检 lab",
            ));
        }
    }
    let note = check_request(n, &s)?;
    if let Some(lab) = &n.retest_lab_id {
        if q::lab(tx.conn(), lab).await?.is_none() {
            return Err(Error::invalid("unknown_lab", format!("no lab {lab:?}")));
        }
    }
    let facts = sampling_ops::facts_of(tx.conn(), zone, &s).await?;
    let items = q::result_items(tx.conn(), &s.id).await?;
    let failed: Vec<FailedItem> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.verdict == Verdict::Unqualified.code())
        .map(|(index, i)| FailedItem {
            index,
            name: i.name.clone(),
            microbiological: i.microbiological != 0,
        })
        .collect();
    let calendar = super::followup::effective_calendar(tx.conn()).await?;
    let periods = Periods::default();
    let req = Request {
        kind: n.kind,
        on: n.on,
        retest_items: n.items.clone().unwrap_or_default(),
    };
    let state = facts::SampleState {
        facts,
        failed: &failed,
        today: sampling_ops::today(zone),
    };
    let decision = facts::decide(&state, &req, &periods, &calendar).map_err(|r| {
        if r.is_conflict() {
            Error::conflict(r.code(), r.to_string())
        } else {
            Error::invalid(r.code(), r.to_string())
        }
    })?;
    let Decision::Record {
        retest_items,
        open_disposal_due,
        close_disposal,
        ..
    } = decision
    else {
        return Ok((view(tx.conn(), zone, &s.id).await?, false));
    };
    let now = store::now_ms();
    let row = FactRow {
        sample_id: s.id.clone(),
        kind: n.kind.code().to_string(),
        on_date: n.on.to_string(),
        note: note.clone(),
        recorded_by: access::author(ctx).to_string(),
        recorded_at: now,
    };
    if !fq::record(tx.conn(), &row, n.kind).await? {
        // A concurrent recorder got there first: answer as for its fact.
        let stored = fq::stored_on(tx.conn(), &s.id, n.kind).await?;
        return if stored.as_deref() == Some(row.on_date.as_str()) {
            Ok((view(tx.conn(), zone, &s.id).await?, false))
        } else {
            Err(Error::conflict(
                "fact_already_recorded",
                format!(
                    "{} is already recorded on {}; a recorded fact is not changed",
                    n.kind.code(),
                    stored.unwrap_or_default()
                ),
            ))
        };
    }
    let mut event = Event::new(Action::SampleFactRecorded, RecordKind::Sample, &s.id)
        .set("kind", n.kind)
        .set("on", n.on.to_string())
        .set("note", &note);
    if let Some(items) = &retest_items {
        fq::set_retest(
            tx.conn(),
            &s.id,
            n.retest_lab_id.as_deref(),
            &serde_json::to_string(items).map_err(internal)?,
        )
        .await?;
        event = event
            .set("retest_lab_id", &n.retest_lab_id)
            .set("retest_items", items);
    }
    let mut events = vec![event];
    sampling_ops::recompute_deadlines(tx.conn(), zone, &s.id).await?;
    if let Some(due) = open_disposal_due {
        let followup = Followup {
            id: uuid::Uuid::new_v4().to_string(),
            inspection_id: None,
            sample_id: Some(s.id.clone()),
            establishment_id: s.establishment_id.clone(),
            plan_id: None,
            origin_result: None,
            state: FollowupState::Open,
            order_text: None,
            ordered_on: n.on,
            period_working_days: None,
            period_calendar_days: Some(periods.disposal_calendar_days),
            deadline: due,
            failed_items: failed.iter().map(|f| f.name.clone()).collect(),
            stop_operating: false,
            case_opened: false,
            recheck_team: Vec::new(),
            recheck_task_id: None,
            recheck_inspection_id: None,
            outcome_result: None,
            closed_at: None,
            created_by: access::author(ctx).to_string(),
            created_at: now,
            updated_at: now,
        };
        store::followup::insert(tx.conn(), &followup).await?;
        events.push(
            Event::new(Action::FollowupOpened, RecordKind::Followup, &followup.id)
                .created(&followup),
        );
    }
    if close_disposal {
        if let Some(f) = store::followup::of_sample(tx.conn(), &s.id).await? {
            if store::followup::close_sample_followup(tx.conn(), &f.id, now).await? {
                events.push(
                    Event::new(Action::FollowupClosed, RecordKind::Followup, &f.id)
                        .change("state", f.state, FollowupState::Closed)
                        .set("sample_id", &s.id)
                        .set("disposal_done_on", n.on.to_string()),
                );
            }
        }
    }
    store::audit::append(tx.conn(), ctx, &events).await?;
    let out = view(tx.conn(), zone, &s.id).await?;
    tx.commit().await?;
    Ok((out, true))
}
