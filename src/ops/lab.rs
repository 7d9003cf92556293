//! The lab side of 食品安全抽检: labs (检验机构) and their accounts (admin), the samples sent
//! to a lab, and its results (检验结果), as JSON or from a CSV/XLSX file of items. The rules
//! of a report are `crate::sampling::results`; who may see a sample is
//! [`super::sampling::visible`] (another lab's sample is 404).

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::sampling::{self as sampling_ops, Viewer};
use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::clock::BureauZone;
use crate::establishment::import::{ImportError, RowProblem};
use crate::establishment::FieldError;
use crate::sampling::results::{self, Item, Report, Verdict};
use crate::sampling::results_import;
use crate::store::sampling::{self as q, ItemRow, LabRow, ResultRow};
use crate::store::{self, Db};

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

// ---- Labs --------------------------------------------------------------------------------

/// A lab (检验机构).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lab {
    pub id: String,
    pub name: String,
    /// Unique short code (e.g. `TJFDC`).
    pub code: String,
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
}

fn lab_of(r: LabRow) -> Lab {
    Lab {
        id: r.id,
        name: r.name,
        code: r.code,
        created_by: r.created_by,
        created_at: r.created_at,
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLab {
    /// 1–100 characters.
    pub name: String,
    /// 1–32 letters, digits, `-` or `_`; stored upper-case; unique.
    pub code: String,
}

fn check_text(field: &str, v: &str, max: usize, problems: &mut Vec<FieldError>) {
    let t = v.trim();
    if t.is_empty() {
        problems.push(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    } else if t.chars().count() > max {
        problems.push(FieldError::new(
            field,
            "too_long",
            format!("{field} is longer than {max} characters"),
        ));
    } else if crate::text::find_forbidden(t).is_some() {
        problems.push(FieldError::new(
            field,
            "forbidden_character",
            format!("{field} contains a control character"),
        ));
    }
}

/// Creates a lab (admin). 409 `duplicate` for a taken code.
pub async fn create_lab(db: &Db, ctx: &Ctx, n: &NewLab) -> Result<Lab> {
    access::require(ctx, &[Role::Admin])?;
    let mut problems = Vec::new();
    check_text("name", &n.name, 100, &mut problems);
    let code = n.code.trim().to_ascii_uppercase();
    if code.is_empty()
        || code.len() > 32
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        problems.push(FieldError::new(
            "code",
            "invalid_code",
            "code must be 1 to 32 letters, digits, '-' or '_'",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::validation_failed(problems));
    }
    let row = LabRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: n.name.trim().to_string(),
        code,
        created_by: access::author(ctx).to_string(),
        created_at: store::now_ms(),
    };
    let mut tx = db.begin_write().await?;
    q::insert_lab(tx.conn(), &row).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::conflict("duplicate", "a lab with this code already exists")
        } else {
            e.into()
        }
    })?;
    let lab = lab_of(row);
    let event = Event::new(Action::LabCreated, RecordKind::Lab, &lab.id).created(&lab);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(lab)
}

/// The labs, by code (admin, reviewer, inspector: samplers choose where a sample goes).
pub async fn list_labs(db: &Db, ctx: &Ctx) -> Result<Vec<Lab>> {
    access::require(ctx, &[Role::Admin, Role::Reviewer, Role::Inspector])?;
    let mut conn = db.acquire().await?;
    Ok(q::labs(&mut conn).await?.into_iter().map(lab_of).collect())
}

/// A lab account and its lab.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserLab {
    pub user_id: String,
    pub lab_id: String,
}

/// Sets the lab of a `lab` account (admin). 404 no such account; 422 `not_a_lab_account`,
/// `unknown_lab`.
pub async fn set_user_lab(db: &Db, ctx: &Ctx, user_id: &str, lab_id: &str) -> Result<UserLab> {
    access::require(ctx, &[Role::Admin])?;
    let mut tx = db.begin_write().await?;
    let user = store::users::by_id_in(tx.conn(), user_id)
        .await?
        .ok_or_else(|| Error::not_found("no such user"))?;
    if user.role != Role::Lab {
        return Err(Error::invalid(
            "not_a_lab_account",
            format!(
                "only lab accounts belong to a lab; this one is {}",
                user.role.as_str()
            ),
        ));
    }
    q::lab(tx.conn(), lab_id)
        .await?
        .ok_or_else(|| Error::invalid("unknown_lab", "no such lab"))?;
    let before = q::user_lab(tx.conn(), user_id).await?.flatten();
    q::set_user_lab(tx.conn(), user_id, lab_id, store::now_ms()).await?;
    let event =
        Event::new(Action::UserLabSet, RecordKind::User, user_id).change("lab_id", before, lab_id);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(UserLab {
        user_id: user_id.to_string(),
        lab_id: lab_id.to_string(),
    })
}

/// A page of the caller lab's samples, newest first (lab accounts; one without a lab has
/// none).
pub async fn lab_samples(
    db: &Db,
    ctx: &Ctx,
    page: u32,
    page_size: u32,
) -> Result<(Vec<sampling_ops::SampleSummary>, i64)> {
    access::require(ctx, &[Role::Lab])?;
    let mut conn = db.acquire().await?;
    let Some(Some(lab)) = q::user_lab(&mut conn, ctx.user_id().unwrap_or_default()).await? else {
        return Ok((Vec::new(), 0));
    };
    let (rows, total) = q::lab_samples(&mut conn, &lab, page, page_size).await?;
    Ok((
        rows.iter()
            .map(sampling_ops::summary_of)
            .collect::<Result<_>>()?,
        total,
    ))
}

// ---- Results -----------------------------------------------------------------------------

/// One test item as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultItemView {
    #[serde(flatten)]
    pub item: Item,
    /// Our verdict from the value and the limit, where they are comparable.
    pub computed_verdict: Option<Verdict>,
    /// Our verdict differs from the lab's: flagged for a reviewer (not refused).
    pub disagrees: bool,
}

/// How a result came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultSource {
    Json,
    File,
}

/// A lab's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultView {
    pub lab_id: String,
    /// 报告编号.
    pub report_no: String,
    /// 检验结论: computed from the items (不合格 when any item is), equal to the lab's.
    pub overall: Verdict,
    pub source: ResultSource,
    pub items: Vec<ResultItemView>,
    /// The report PDF (a `report` attachment of the sample), when the result names it.
    pub report_attachment_id: Option<String>,
    /// User id of the lab account that reported.
    pub reported_by: String,
    /// Unix ms.
    pub reported_at: i64,
}

fn verdict(s: &str) -> Result<Verdict> {
    Verdict::parse(s).ok_or_else(|| internal(s))
}

/// The stored result of a sample, if any.
pub(super) async fn result_view(
    conn: &mut AnyConnection,
    sample_id: &str,
) -> Result<Option<ResultView>> {
    let Some(r) = q::result(conn, sample_id).await? else {
        return Ok(None);
    };
    let items = q::result_items(conn, sample_id)
        .await?
        .into_iter()
        .map(|i| {
            Ok(ResultItemView {
                computed_verdict: i.computed_verdict.as_deref().map(verdict).transpose()?,
                disagrees: i.disagrees != 0,
                item: Item {
                    verdict: verdict(&i.verdict)?,
                    name: i.name,
                    value: i.value,
                    unit: i.unit,
                    limit: i.limit_text,
                    standard: i.standard,
                    method: i.method,
                    microbiological: i.microbiological != 0,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let report_attachment_id = store::sample_attachments::result_report(conn, sample_id).await?;
    Ok(Some(ResultView {
        report_attachment_id,
        overall: verdict(&r.overall)?,
        source: if r.source == "file" {
            ResultSource::File
        } else {
            ResultSource::Json
        },
        lab_id: r.lab_id,
        report_no: r.report_no,
        items,
        reported_by: r.reported_by,
        reported_at: r.reported_at,
    }))
}

fn refusal(r: results::Refusal, rows: Option<&results_import::Parsed>) -> Error {
    use results::Refusal as R;
    match &r {
        R::Items(problems) => {
            let details: Vec<serde_json::Value> = problems
                .iter()
                .map(|p| {
                    serde_json::json!({"index": p.index, "row": rows.and_then(|x| x.row_of(p.index)),
                        "field": p.field, "code": p.code, "message": p.message})
                })
                .collect();
            Error::invalid_with(r.code(), r.to_string(), details)
        }
        R::OverallMismatch {
            stated,
            computed,
            failed,
        } => Error::invalid_with(
            r.code(),
            r.to_string(),
            serde_json::json!({"stated": stated, "computed": computed, "failed_items": failed}),
        ),
        _ => Error::invalid(r.code(), r.to_string()),
    }
}

/// Records the lab's result of a sample (the sample's lab only; any other caller 404 or
/// 403). The overall verdict is computed from the items and must equal the stated one (422
/// `overall_verdict_mismatch` naming the 不合格 items). The lab must have recorded receiving
/// the sample (409 `invalid_state`). The same report again is answered as the first time
/// (`false`); another report when one is stored is 409 `result_exists`. Deadlines are
/// recomputed in the same transaction.
pub async fn report_result(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    sample_id: &str,
    report: &Report,
    source: ResultSource,
    parsed: Option<&results_import::Parsed>,
) -> Result<(ResultView, bool)> {
    report_result_with_pdf(db, ctx, zone, sample_id, report, None, source, parsed).await
}

/// [`report_result`] naming the report PDF: `report_attachment` must be a `report` attachment
/// of this sample with its PDF uploaded (422 `invalid_report_attachment`). A replay must name
/// the same PDF (else 409 `result_exists`).
#[allow(clippy::too_many_arguments)]
pub async fn report_result_with_pdf(
    db: &Db,
    ctx: &Ctx,
    zone: BureauZone,
    sample_id: &str,
    report: &Report,
    report_attachment: Option<&str>,
    source: ResultSource,
    parsed: Option<&results_import::Parsed>,
) -> Result<(ResultView, bool)> {
    access::require(ctx, &[Role::Lab])?;
    let mut tx = db.begin_write().await?;
    let (sample, viewer) = sampling_ops::load_visible(tx.conn(), ctx, sample_id).await?;
    if viewer != Viewer::Lab {
        return Err(Error::forbidden("only the sample's lab reports its result"));
    }
    let events = q::custody_events(tx.conn(), &sample.id).await?;
    if !events.iter().any(|e| e.kind == "received") {
        return Err(Error::conflict(
            "invalid_state",
            "the lab has not recorded receiving this sample (custody `received`)",
        ));
    }
    let checked = results::check(report).map_err(|r| refusal(r, parsed))?;
    if let Some(aid) = report_attachment {
        super::sample_attachments::check_report_in(tx.conn(), &sample.id, aid).await?;
    }
    let sha = sampling_ops::sha256_hex(&serde_json::to_vec(report).map_err(internal)?);
    if let Some(stored) = q::result(tx.conn(), &sample.id).await? {
        let stored_pdf = store::sample_attachments::result_report(tx.conn(), &sample.id).await?;
        if stored.report_sha256 == sha && stored_pdf.as_deref() == report_attachment {
            let view = result_view(tx.conn(), &sample.id)
                .await?
                .ok_or_else(|| internal("lost result"))?;
            return Ok((view, false));
        }
        return Err(Error::conflict(
            "result_exists",
            "this sample's result is already reported; a stored result is not replaced",
        ));
    }
    let now = store::now_ms();
    let row = ResultRow {
        sample_id: sample.id.clone(),
        lab_id: sample.lab_id.clone(),
        report_no: report.report_no.trim().to_string(),
        overall: checked.overall.code().to_string(),
        source: match source {
            ResultSource::Json => "json",
            ResultSource::File => "file",
        }
        .to_string(),
        report_sha256: sha,
        reported_by: access::author(ctx).to_string(),
        reported_at: now,
    };
    let trim = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let items: Vec<ItemRow> = report
        .items
        .iter()
        .zip(&checked.items)
        .enumerate()
        .map(|(i, (item, c))| ItemRow {
            sample_id: sample.id.clone(),
            position: i as i64,
            name: item.name.trim().to_string(),
            value: item.value.trim().to_string(),
            unit: trim(&item.unit),
            limit_text: trim(&item.limit),
            standard: trim(&item.standard),
            method: trim(&item.method),
            verdict: item.verdict.code().to_string(),
            computed_verdict: c.computed.map(|v| v.code().to_string()),
            disagrees: store::flag(c.disagrees),
            microbiological: store::flag(item.microbiological),
        })
        .collect();
    q::insert_result(tx.conn(), &row, &items).await?;
    if let Some(aid) = report_attachment {
        store::sample_attachments::set_result_report(tx.conn(), &sample.id, aid).await?;
    }
    sampling_ops::recompute_deadlines(tx.conn(), zone, &sample.id).await?;
    let view = result_view(tx.conn(), &sample.id)
        .await?
        .ok_or_else(|| internal("lost result"))?;
    let event = Event::new(Action::LabResultReported, RecordKind::Sample, &sample.id)
        .set("report_no", &view.report_no)
        .set("overall", view.overall)
        .set("items", view.items.len())
        .set(
            "failed_items",
            checked.failed.iter().map(|f| &f.name).collect::<Vec<_>>(),
        )
        .set("disagreements", &checked.disagreements);
    let event = match report_attachment {
        Some(aid) => event.set("report_attachment_id", aid),
        None => event,
    };
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok((view, true))
}

/// Why a result file was refused before its report was checked.
#[derive(Debug)]
pub enum ItemsFileFailure {
    /// The file is not a readable table (format, header, size).
    File(ImportError),
    /// Rows have problems (`row` as in Excel/WPS).
    Rows(Vec<RowProblem>),
}

/// Parses a CSV/XLSX file of result items (see `sampling::results_import`).
pub fn parse_items_file(
    bytes: &[u8],
) -> std::result::Result<results_import::Parsed, ItemsFileFailure> {
    let parsed =
        results_import::parse(bytes, results::MAX_ITEMS).map_err(ItemsFileFailure::File)?;
    let problems = parsed.problems();
    if !problems.is_empty() {
        return Err(ItemsFileFailure::Rows(problems));
    }
    Ok(parsed)
}
