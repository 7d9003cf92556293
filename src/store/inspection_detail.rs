//! SQL behind the inspection detail and the printable record: a fixed number of indexed
//! queries per inspection (the row with its task, plan and establishment; the checklist
//! version; answers; photos; earlier results at the establishment, bounded; the review history;
//! the follow-up), decoded into the domain's types.

use sqlx::{AnyConnection, FromRow};

use crate::checklist::rule::{ItemStatus, ResultCode};
use crate::followup::FollowupState;
use crate::geo::{Crs, Location};
use crate::review::detail::{
    DetailParts, FollowupBrief, InspectionCore, ItemComment, StoredAnswer, StoredPhoto,
    StoredPrevious, StoredReview, TeamEntry, PREVIOUS_RESULTS_LIMIT,
};
use crate::review::queues::{parse_result, ReviewFlag};
use crate::review::ReviewState;

#[derive(Debug, Clone, FromRow)]
struct CoreRow {
    id: String,
    task_id: String,
    plan_id: String,
    round_title: String,
    template_id: String,
    template_version: i64,
    due_date: String,
    started_at: i64,
    finished_at: Option<i64>,
    submitted: i64,
    submitted_at: Option<i64>,
    review_state: Option<String>,
    review_round: i64,
    reviewed_by: Option<String>,
    reviewed_at: Option<i64>,
    declared_result: Option<String>,
    computed_result: Option<String>,
    evaluation: Option<String>,
    override_result: Option<String>,
    override_reason: Option<String>,
    server_flags: Option<String>,
    lng: Option<f64>,
    lat: Option<f64>,
    crs: Option<String>,
    gps_accuracy_m: Option<f64>,
    team: String,
    representative_name: Option<String>,
    representative_signed: i64,
    representative_refused: i64,
    business_opinion: Option<String>,
    other_findings: Option<String>,
    establishment_id: String,
    sign_name: String,
    licensed_name: String,
    license_no: Option<String>,
    address: String,
    town: String,
    est_lng: Option<f64>,
    est_lat: Option<f64>,
    est_crs: Option<String>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("inspection detail: {what}: {e}").into())
}

fn result(what: &str, v: Option<String>) -> Result<Option<ResultCode>, sqlx::Error> {
    v.map(|s| parse_result(&s).ok_or_else(|| bad(what, format!("unknown result {s:?}"))))
        .transpose()
}

fn review_state(v: Option<String>) -> Result<Option<ReviewState>, sqlx::Error> {
    v.map(|s| ReviewState::parse(&s).ok_or_else(|| bad("review_state", format!("{s:?}"))))
        .transpose()
}

/// A stored point; an unreadable one (no CRS, out of range) counts as none.
fn location(lng: Option<f64>, lat: Option<f64>, crs: Option<&str>) -> Option<Location> {
    let crs = crs?.parse::<Crs>().ok()?;
    Location::new(lng?, lat?, crs).ok()
}

impl TryFrom<CoreRow> for InspectionCore {
    type Error = sqlx::Error;
    fn try_from(r: CoreRow) -> Result<InspectionCore, sqlx::Error> {
        Ok(InspectionCore {
            review_state: review_state(r.review_state)?,
            declared_result: result("declared_result", r.declared_result)?,
            computed_result: result("computed_result", r.computed_result)?,
            override_result: result("override_result", r.override_result)?,
            evaluation: r
                .evaluation
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| bad("evaluation", e))?,
            flags: ReviewFlag::decode_list(r.server_flags.as_deref()),
            point: location(r.lng, r.lat, r.crs.as_deref()),
            establishment_location: location(r.est_lng, r.est_lat, r.est_crs.as_deref()),
            team: serde_json::from_str::<Vec<TeamEntry>>(&r.team).map_err(|e| bad("team", e))?,
            id: r.id,
            task_id: r.task_id,
            plan_id: r.plan_id,
            round_title: r.round_title,
            template_id: r.template_id,
            template_version: r.template_version,
            due_date: r.due_date,
            started_at: r.started_at,
            finished_at: r.finished_at,
            submitted: r.submitted != 0,
            submitted_at: r.submitted_at,
            review_round: r.review_round,
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
            override_reason: r.override_reason,
            gps_accuracy_m: r.gps_accuracy_m,
            representative_name: r.representative_name,
            representative_signed: r.representative_signed != 0,
            representative_refused: r.representative_refused != 0,
            business_opinion: r.business_opinion,
            other_findings: r.other_findings,
            establishment_id: r.establishment_id,
            sign_name: r.sign_name,
            licensed_name: r.licensed_name,
            license_no: r.license_no,
            address: r.address,
            town: r.town,
        })
    }
}

/// The inspection's task id, to check team membership before loading anything else.
pub async fn task_of(conn: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT task_id FROM inspections WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Everything the detail shows; None for an unknown id.
pub async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<DetailParts>, sqlx::Error> {
    let core: Option<CoreRow> = sqlx::query_as(
        "SELECT i.id, i.task_id, t.plan_id, p.round_title, t.template_id, t.template_version, t.due_date, \
         i.started_at, i.finished_at, i.submitted, i.submitted_at, i.review_state, i.review_round, i.reviewed_by, \
         i.reviewed_at, i.declared_result, i.computed_result, i.evaluation, i.override_result, i.override_reason, \
         i.server_flags, i.lng, i.lat, i.crs, i.gps_accuracy_m, i.team, i.representative_name, i.representative_signed, \
         i.representative_refused, i.business_opinion, i.other_findings, e.id AS establishment_id, e.sign_name, \
         e.licensed_name, e.license_no, e.address, e.town, e.raw_lng AS est_lng, e.raw_lat AS est_lat, e.crs AS est_crs \
         FROM inspections i JOIN tasks t ON t.id = i.task_id JOIN plans p ON p.id = t.plan_id \
         JOIN establishments e ON e.id = i.establishment_id WHERE i.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(core) = core else {
        return Ok(None);
    };
    let core = InspectionCore::try_from(core)?;
    let template = super::checklists::version_in(conn, &core.template_id, core.template_version)
        .await?
        .map(|v| v.content);

    let answers: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT item_code, status, note FROM answers WHERE inspection_id = $1 ORDER BY item_code",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let answers = answers
        .into_iter()
        .map(|(item_code, status, note)| {
            let status = match status.as_str() {
                "pass" => ItemStatus::Pass,
                "fail" => ItemStatus::Fail,
                "not_applicable" => ItemStatus::NotApplicable,
                other => return Err(bad("answers.status", format!("{other:?}"))),
            };
            Ok(StoredAnswer {
                item_code,
                status,
                note,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;

    type PhotoTuple = (
        String,
        Option<String>,
        i64,
        String,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<f64>,
        Option<f64>,
        Option<String>,
    );
    let photos: Vec<PhotoTuple> = sqlx::query_as(
        "SELECT id, item_code, taken_at, processing_status, width, height, exif_taken_at, exif_lng, exif_lat, flags \
         FROM photos WHERE inspection_id = $1 ORDER BY taken_at, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let photos = photos
        .into_iter()
        .map(|p| {
            let processing_status =
                crate::photo::ProcessingStatus::parse(&p.3).ok_or_else(|| {
                    sqlx::Error::Decode(
                        format!("photo {} has processing_status {:?}", p.0, p.3).into(),
                    )
                })?;
            Ok(StoredPhoto {
                id: p.0,
                item_code: p.1,
                taken_at: p.2,
                processing_status,
                width: p.4,
                height: p.5,
                exif_taken_at: p.6,
                exif_lng: p.7,
                exif_lat: p.8,
                flags: ReviewFlag::decode_list(p.9.as_deref()),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;

    // Through tasks (tasks_establishment index), then each task's inspections: bounded.
    type PreviousTuple = (
        String,
        String,
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let previous: Vec<PreviousTuple> = sqlx::query_as(&format!(
        "SELECT i.id, i.task_id, t.plan_id, p.round_title, i.submitted_at, i.review_state, i.computed_result, \
         i.override_result FROM tasks t JOIN inspections i ON i.task_id = t.id JOIN plans p ON p.id = t.plan_id \
         WHERE t.establishment_id = $1 AND i.id <> $2 AND i.submitted_at IS NOT NULL \
         ORDER BY i.submitted_at DESC, i.id DESC LIMIT {PREVIOUS_RESULTS_LIMIT}"
    ))
    .bind(&core.establishment_id)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let previous = previous
        .into_iter()
        .map(|p| {
            Ok(StoredPrevious {
                inspection_id: p.0,
                task_id: p.1,
                plan_id: p.2,
                round_title: p.3,
                submitted_at: p.4,
                review_state: review_state(p.5)?,
                computed_result: result("previous.computed_result", p.6)?,
                override_result: result("previous.override_result", p.7)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;

    type ReviewTuple = (
        String,
        i64,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        i64,
    );
    let reviews: Vec<ReviewTuple> = sqlx::query_as(
        "SELECT r.id, r.round, r.decision, r.comment, r.item_comments, r.override_result, r.override_reason, \
         r.internal_note, r.reviewer_id, u.name, r.decided_at FROM reviews r LEFT JOIN users u ON u.id = r.reviewer_id \
         WHERE r.inspection_id = $1 ORDER BY r.decided_at, r.round, r.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let reviews = reviews
        .into_iter()
        .map(|r| {
            Ok(StoredReview {
                id: r.0,
                round: r.1,
                decision: ReviewState::parse(&r.2)
                    .ok_or_else(|| bad("reviews.decision", format!("{:?}", r.2)))?,
                comment: r.3,
                item_comments: serde_json::from_str::<Vec<ItemComment>>(&r.4)
                    .map_err(|e| bad("reviews.item_comments", e))?,
                override_result: result("reviews.override_result", r.5)?,
                override_reason: r.6,
                internal_note: r.7,
                reviewer_id: r.8,
                reviewer_name: r.9.unwrap_or_default(),
                decided_at: crate::clock::rfc3339(r.10),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;

    type FollowupTuple = (
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        i64,
        i64,
    );
    let followup: Option<FollowupTuple> = sqlx::query_as(
        "SELECT id, state, ordered_on, deadline, period_working_days, order_text, stop_operating, case_opened \
         FROM followups WHERE inspection_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let followup = followup
        .map(|f| {
            // Decoded into the enum here, so an unknown stored state fails loudly.
            let state = FollowupState::parse(&f.1)
                .ok_or_else(|| bad("follow-up state", format!("{:?}", f.1)))?;
            Ok::<_, sqlx::Error>(FollowupBrief {
                id: f.0,
                state,
                ordered_on: f.2,
                deadline: f.3,
                period_working_days: f.4,
                order_text: f.5,
                stop_operating: f.6 != 0,
                case_opened: f.7 != 0,
            })
        })
        .transpose()?;

    Ok(Some(DetailParts {
        core,
        template,
        answers,
        photos,
        previous,
        reviews,
        followup,
    }))
}
