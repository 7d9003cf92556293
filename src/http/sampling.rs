//! 食品安全抽检 over HTTP: labs and lab accounts (admin), the food category tree (admin
//! import), samples (抽样单) submitted online by their samplers, custody events, lab results
//! (JSON or a CSV/XLSX of items), a lab's samples and the reviewers' deadline queue. Thin
//! handlers over `ops::sampling` and `ops::lab`.

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::establishments::RawBody;
use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Authorized, Office, Roles};
use super::AppState;
use crate::auth::Role;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::establishment::import::ImportError;
use crate::ops::lab::{self, ItemsFileFailure, Lab, NewLab, ResultSource, ResultView, UserLab};
use crate::ops::sampling::{
    self as uc, CategoryImportFailure, CategoryImportReport, CategoryView, CustodyView,
    DeadlinePage, DeadlineQueue, NewCustodyEvent, NewSample, SampleDetail, SampleSummary,
    SubmitSettings,
};
use crate::sampling::number::Prefix;
use crate::sampling::results::{Report, Verdict};

/// Lab accounts only.
pub struct Labs;
impl Roles for Labs {
    const ROLES: &'static [Role] = &[Role::Lab];
}

/// Inspectors and lab accounts (custody events).
pub struct CustodyRecorders;
impl Roles for CustodyRecorders {
    const ROLES: &'static [Role] = &[Role::Inspector, Role::Lab];
}

/// Admins, reviewers and inspectors (reference data samplers choose from).
pub struct Readers;
impl Roles for Readers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Reviewer, Role::Inspector];
}

/// Inspectors only.
pub struct Samplers;
impl Roles for Samplers {
    const ROLES: &'static [Role] = &[Role::Inspector];
}

/// Everyone who may see some sample.
pub struct SampleReaders;
impl Roles for SampleReaders {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Reviewer, Role::Inspector, Role::Lab];
}

pub fn router(import_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_labs, create_lab))
        .routes(routes!(set_user_lab))
        .routes(routes!(list_categories))
        .routes(routes!(submit_sample))
        .routes(routes!(get_sample))
        .routes(routes!(record_custody))
        .routes(routes!(put_result))
        .routes(routes!(lab_samples))
        .routes(routes!(deadline_queue))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_categories))
                .routes(routes!(post_items_file))
                .layer(DefaultBodyLimit::max(import_limit)),
        )
}

/// A JSON body parsed only after the caller may see the sample: a sample the caller may not
/// see is 404 whatever the body.
fn parse_body<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> AppResult<T> {
    serde_json::from_value(v).map_err(|e| AppError::unprocessable("invalid_body", e.to_string()))
}

// ---- Labs --------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct LabList {
    pub items: Vec<Lab>,
}

/// The labs (admin, reviewer, inspector).
#[utoipa::path(get, path = "/api/v1/labs", tag = "sampling", security(("bearer" = [])),
    responses((status = 200, body = LabList), (status = 403, body = ErrorEnvelope)))]
async fn list_labs(
    State(state): State<AppState>,
    user: Authorized<Readers>,
) -> AppResult<Json<LabList>> {
    Ok(Json(LabList {
        items: lab::list_labs(&state.db, &user.ctx()).await?,
    }))
}

/// Create a lab (检验机构) (admin).
#[utoipa::path(post, path = "/api/v1/labs", tag = "sampling", security(("bearer" = [])),
    request_body = NewLab,
    responses((status = 201, body = Lab), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: a lab with this code exists", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`required`, `too_long`, `forbidden_character`, `invalid_code`), `invalid_body`", body = ErrorEnvelope)))]
async fn create_lab(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(n): ApiJson<NewLab>,
) -> AppResult<(StatusCode, Json<Lab>)> {
    let l = lab::create_lab(&state.db, &user.ctx(), &n).await?;
    Ok((StatusCode::CREATED, Json(l)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserLab {
    /// The lab the account belongs to.
    pub lab_id: String,
}

/// Set the lab a `lab` account belongs to (admin).
#[utoipa::path(put, path = "/api/v1/users/{id}/lab", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = SetUserLab,
    responses((status = 200, body = UserLab), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
        (status = 422, description = "`not_a_lab_account`, `unknown_lab`, `invalid_body`", body = ErrorEnvelope)))]
async fn set_user_lab(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SetUserLab>,
) -> AppResult<Json<UserLab>> {
    Ok(Json(
        lab::set_user_lab(&state.db, &user.ctx(), &id, &b.lab_id).await?,
    ))
}

// ---- Food categories ---------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<CategoryView>,
}

/// The food category tree, by code (admin, reviewer, inspector).
#[utoipa::path(get, path = "/api/v1/food-categories", tag = "sampling", security(("bearer" = [])),
    responses((status = 200, body = CategoryList), (status = 403, body = ErrorEnvelope)))]
async fn list_categories(
    State(state): State<AppState>,
    user: Authorized<Readers>,
) -> AppResult<Json<CategoryList>> {
    Ok(Json(CategoryList {
        items: uc::list_categories(&state.db, &user.ctx()).await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `true`: check and report only, write nothing.
    pub dry_run: Option<bool>,
}

fn file_error(e: ImportError) -> AppError {
    match e {
        ImportError::UnsupportedFormat(m) => AppError::UnsupportedMediaType(m),
        e @ ImportError::TooLarge(_) => AppError::PayloadTooLarge(e.to_string()),
        e @ ImportError::TooManyRows(_) => AppError::unprocessable("invalid_table", e.to_string()),
        ImportError::Template(m) => AppError::Internal(anyhow::anyhow!(m)),
        other => AppError::unprocessable("invalid_table", other.to_string()),
    }
}

/// Import the food category tree from CSV (UTF-8 with or without BOM, or GB18030) or XLSX
/// (admin). Columns: 分类编码 `code`, 级别 `level` (1–4), 上级编码 `parent_code` (empty for
/// level 1), 分类名称 `name`, 微生物 `microbiological` (是/否, optional). Rows are created or
/// updated by code. Any problem (a cell, a missing parent, a level that is not its parent's
/// plus one, a duplicate code, a stored code changing level) → 422 `import_failed` with the
/// report (each error with its row) and nothing written.
#[utoipa::path(post, path = "/api/v1/food-categories/import", tag = "sampling", security(("bearer" = [])),
    params(ImportParams),
    request_body(content = Vec<u8>, description = "The CSV or XLSX file as the raw body; the format is sniffed from the bytes",
        content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Imported (or checked, on a dry run)", body = CategoryImportReport),
        (status = 403, body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`: over `max_import_body_bytes`, or an XLSX unpacking past the import limits", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: neither CSV nor XLSX", body = ErrorEnvelope),
        (status = 422, description = "`import_failed` (`details` is the CategoryImportReport) or `invalid_table` (missing columns, empty file, too many rows)", body = ErrorEnvelope)))]
async fn import_categories(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiQuery(p): ApiQuery<ImportParams>,
    RawBody(body): RawBody,
) -> AppResult<Json<CategoryImportReport>> {
    match uc::import_categories(&state.db, &user.ctx(), &body, p.dry_run.unwrap_or(false)).await {
        Ok(r) => Ok(Json(r)),
        Err(CategoryImportFailure::Rows(r)) => Err(AppError::unprocessable_with(
            "import_failed",
            format!(
                "{} problem(s) found (first: row {}: {}); nothing was written",
                r.errors_total,
                r.errors.first().map_or(0, |e| e.row),
                r.errors.first().map_or("", |e| e.message.as_str())
            ),
            r,
        )),
        Err(CategoryImportFailure::File(e)) => Err(file_error(e)),
        Err(CategoryImportFailure::Failed(e)) => Err(e.into()),
    }
}

// ---- Samples -----------------------------------------------------------------------------

pub(super) fn settings(state: &AppState) -> AppResult<SubmitSettings> {
    Ok(SubmitSettings {
        zone: state.config.time_zone,
        sample_no_prefix: Prefix::parse(&state.config.sample_no_prefix)
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?,
        max_photo_bytes: i64::try_from(state.config.max_photo_bytes).unwrap_or(i64::MAX),
    })
}

/// Submit a 抽样单 (inspector, one of its samplers). Idempotent on the client's `id`: the same
/// body again is answered 200 with the same sample; another body for the same id is 409.
///
/// Every form field needs a value or `"/"` (not applicable) where the paper form allows it;
/// a missing one is 422 `validation_failed` naming it (`details`: `{field, code, message}`).
/// `form.sampling_no`: a national-system number (2 letters and 17 digits), unique; absent, the
/// server generates `{sample_no_prefix}-{YYYYMMDD}-{seq}`. The samplers (`sampler_1`,
/// `sampler_2`) are enabled inspector accounts without a declared conflict (回避) at the
/// premises, the submitter among them. The sample's deadlines start (`delivery`).
#[utoipa::path(post, path = "/api/v1/samples", tag = "sampling", security(("bearer" = [])),
    request_body = NewSample,
    responses(
        (status = 201, description = "Submitted", body = SampleDetail),
        (status = 200, description = "The same submission again: the stored sample, unchanged", body = SampleDetail),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`sample_no_taken`: the national number is another sample's; `sample_id_conflict`: this id was submitted with another body; `task_cancelled`: the `task_id` was cancelled by a redraw", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (form fields: `required`, `not_applicable_not_allowed`, `invalid_sampling_no`, `invalid_sc_licence`, …; `category_code`: `unknown_category`, `category_too_coarse`; `food_category_N`: `category_mismatch`; `sampler_N`: `submitter_not_sampler`, `sampler_not_active`, `sampler_conflict`, `sampler_not_on_team`; with a `task_id`: `establishment_id` `not_task_premises`, `lab_id` `not_task_lab`, `purpose` `not_task_purpose`, `stage` `not_task_stage`), `unknown_establishment`, `unknown_lab`, `unknown_task` (no such task, or not the submitter's team's), `invalid_id`, `calendar_year_missing`, `invalid_body`", body = ErrorEnvelope)))]
async fn submit_sample(
    State(state): State<AppState>,
    user: Authorized<Samplers>,
    ApiJson(n): ApiJson<NewSample>,
) -> AppResult<(StatusCode, Json<SampleDetail>)> {
    let (detail, created) =
        uc::submit_sample(&state.db, &user.ctx(), &settings(&state)?, &n).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(detail)))
}

/// One sample with its custody, result and deadlines: admins and reviewers everything, its
/// samplers everything, its lab (and the lab named for its requested 复检, read only) everything
/// but the premises' legal representative and phone (`form.premises_legal_representative`,
/// `form.premises_contact` left out). Anyone else: 404.
#[utoipa::path(get, path = "/api/v1/samples/{id}", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id")),
    responses((status = 200, body = SampleDetail), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one the caller may see", body = ErrorEnvelope)))]
async fn get_sample(
    State(state): State<AppState>,
    user: Authorized<SampleReaders>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<SampleDetail>> {
    Ok(Json(
        uc::get(&state.db, &user.ctx(), state.config.time_zone, &id).await?,
    ))
}

/// Record a custody event (samplers: `sealed`, `dispatched`; the sample's lab: `received`
/// with `sample_condition` and `seal_intact`, `testing`, `reported`). Append-only: in order,
/// each kind once, never before the previous event. The same event (id and content) again is
/// answered 200 with it; a broken seal is stored and flags the sample (`seal_broken`).
#[utoipa::path(post, path = "/api/v1/samples/{id}/custody", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id")),
    request_body = NewCustodyEvent,
    responses(
        (status = 201, description = "Appended", body = CustodyView),
        (status = 200, description = "The same event again: as stored", body = CustodyView),
        (status = 403, description = "`forbidden`: not an inspector or lab account", body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one the caller samples or tests", body = ErrorEnvelope),
        (status = 409, description = "`custody_out_of_order` (a kind before its predecessor), `custody_already_recorded`, `custody_time_before_previous`, `custody_event_edited` (this event id with other content)", body = ErrorEnvelope),
        (status = 422, description = "`custody_wrong_role` (samplers record sealed/dispatched, the lab the rest), `validation_failed` (place, condition, seal, time), `invalid_id`, `calendar_year_missing`, `invalid_body`", body = ErrorEnvelope)))]
async fn record_custody(
    State(state): State<AppState>,
    user: Authorized<CustodyRecorders>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> AppResult<(StatusCode, Json<CustodyView>)> {
    let ctx = user.ctx();
    uc::ensure_visible(&state.db, &ctx, &id).await?;
    let n: NewCustodyEvent = parse_body(body)?;
    let (view, appended) =
        uc::record_custody(&state.db, &ctx, state.config.time_zone, &id, &n).await?;
    let status = if appended {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

fn result_status(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// A lab result as JSON: the report, and optionally its PDF.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResultBody {
    #[serde(flatten)]
    pub report: Report,
    /// The report PDF: a `report` attachment of this sample whose PDF is uploaded
    /// (`POST /api/v1/samples/{id}/attachments`, then the tus upload).
    pub report_attachment_id: Option<String>,
}

/// Report the lab's result as JSON (the sample's lab only; another lab: 404). The overall
/// 合格/不合格 is computed from the item verdicts and must equal the stated `overall`; each
/// item's value is also judged against its limit where both can be read, and a disagreement
/// is stored as a flag (`disagrees`), not refused. The lab must have recorded receiving the
/// sample. `report_attachment_id` may name the report PDF. The same report (and PDF) again is
/// answered 200 as stored.
#[utoipa::path(put, path = "/api/v1/samples/{id}/result", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id")),
    request_body = ResultBody,
    responses(
        (status = 201, description = "Recorded", body = ResultView),
        (status = 200, description = "The same report again: as stored", body = ResultView),
        (status = 403, description = "`forbidden`: not a lab account", body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one sent to the caller's lab", body = ErrorEnvelope),
        (status = 409, description = "`result_exists`: another report is stored; `invalid_state`: the sample's receipt is not recorded", body = ErrorEnvelope),
        (status = 422, description = "`overall_verdict_mismatch` (the message names the 不合格 items; `details`: `stated`, `computed`, `failed_items`), `invalid_result_items` (`details`: per item `index`, `field`, `code`, `message`), `invalid_report_no`, `invalid_report_attachment` (not a report of this sample with its PDF uploaded), `calendar_year_missing`, `invalid_body`", body = ErrorEnvelope)))]
async fn put_result(
    State(state): State<AppState>,
    user: Authorized<Labs>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> AppResult<(StatusCode, Json<ResultView>)> {
    let ctx = user.ctx();
    uc::ensure_visible(&state.db, &ctx, &id).await?;
    let b: ResultBody = parse_body(body)?;
    let (view, created) = lab::report_result_with_pdf(
        &state.db,
        &ctx,
        state.config.time_zone,
        &id,
        &b.report,
        b.report_attachment_id.as_deref(),
        ResultSource::Json,
        None,
    )
    .await?;
    Ok((result_status(created), Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsFileParams {
    /// 报告编号.
    pub report_no: String,
    /// The lab's stated 检验结论: `qualified`/`合格` or `unqualified`/`不合格`.
    pub overall: String,
    /// The report PDF: a `report` attachment of this sample whose PDF is uploaded.
    pub report_attachment_id: Option<String>,
}

/// Report the lab's result with its items from a CSV/XLSX file (the sample's lab only). Columns:
/// 检验项目 `name`, 检验结果 `value`, 单项判定 `verdict` (required), 计量单位 `unit`, 标准指标
/// `limit`, 判定依据 `standard`, 检验方法 `method`, 微生物 `microbiological` (是/否). Otherwise
/// as `PUT …/result`; item problems name their spreadsheet row.
#[utoipa::path(post, path = "/api/v1/samples/{id}/result/items-file", tag = "sampling", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sample id"), ItemsFileParams),
    request_body(content = Vec<u8>, description = "The CSV or XLSX file as the raw body; the format is sniffed from the bytes",
        content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Recorded", body = ResultView),
        (status = 200, description = "The same report again: as stored", body = ResultView),
        (status = 400, description = "`bad_request`: `overall` is not a verdict", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not a lab account", body = ErrorEnvelope),
        (status = 404, description = "No such sample, or not one sent to the caller's lab", body = ErrorEnvelope),
        (status = 409, description = "`result_exists`, `invalid_state`", body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: neither CSV nor XLSX", body = ErrorEnvelope),
        (status = 422, description = "`import_failed` (`details`: row problems with `row`, `column`, `code`, `message`), `invalid_table`, `overall_verdict_mismatch`, `invalid_result_items` (with `row`), `invalid_report_no`, `invalid_report_attachment`, `calendar_year_missing`", body = ErrorEnvelope)))]
async fn post_items_file(
    State(state): State<AppState>,
    user: Authorized<Labs>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<ItemsFileParams>,
    RawBody(body): RawBody,
) -> AppResult<(StatusCode, Json<ResultView>)> {
    let ctx = user.ctx();
    uc::ensure_visible(&state.db, &ctx, &id).await?;
    let overall = Verdict::parse(&p.overall).ok_or_else(|| {
        AppError::bad_request(
            "bad_request",
            format!(
                "overall {:?} is not qualified/合格 or unqualified/不合格",
                p.overall
            ),
        )
    })?;
    let parsed = match lab::parse_items_file(&body) {
        Ok(p) => p,
        Err(ItemsFileFailure::File(e)) => return Err(file_error(e)),
        Err(ItemsFileFailure::Rows(problems)) => {
            return Err(AppError::unprocessable_with(
                "import_failed",
                format!(
                    "{} problem(s) in the file (first: row {}: {}); nothing was recorded",
                    problems.len(),
                    problems[0].row,
                    problems[0].message
                ),
                problems,
            ))
        }
    };
    let report = Report {
        report_no: p.report_no,
        items: parsed.items().unwrap_or_default(),
        overall,
    };
    let (view, created) = lab::report_result_with_pdf(
        &state.db,
        &ctx,
        state.config.time_zone,
        &id,
        &report,
        p.report_attachment_id.as_deref(),
        ResultSource::File,
        Some(&parsed),
    )
    .await?;
    Ok((result_status(created), Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From 1 (default 1).
    pub page: Option<u32>,
    /// 1–200 (default 50).
    pub page_size: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SamplePage {
    pub items: Vec<SampleSummary>,
    pub total_count: i64,
    pub page: u32,
    pub page_size: u32,
}

/// The samples sent to the caller's lab, newest first (lab accounts; an account without a lab
/// has none).
#[utoipa::path(get, path = "/api/v1/lab/samples", tag = "sampling", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = SamplePage),
        (status = 400, description = "`bad_request`: page size out of range", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not a lab account", body = ErrorEnvelope)))]
async fn lab_samples(
    State(state): State<AppState>,
    user: Authorized<Labs>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<SamplePage>> {
    let page_size = p.page_size.unwrap_or(50);
    if !(1..=200).contains(&page_size) {
        return Err(AppError::bad_request(
            "bad_request",
            "page_size must be between 1 and 200",
        ));
    }
    let page = p.page.unwrap_or(1).max(1);
    let (items, total) = lab::lab_samples(&state.db, &user.ctx(), page, page_size).await?;
    Ok(Json(SamplePage {
        items,
        total_count: total,
        page,
        page_size,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadlineParams {
    /// `due` (default: open, due today or later) or `overdue` (open, past the due date), in
    /// the bureau's days.
    pub status: Option<String>,
    /// `next_cursor` of the previous page (opaque).
    pub cursor: Option<String>,
    /// Entries per page, 1–200 (default 50).
    pub limit: Option<u32>,
}

/// The samples' open legal deadlines, earliest due first (admin, reviewer): each with its rule
/// (`delivery`, `lab_report`, `unqualified_to_bureau`, `service`, `retest_or_objection`,
/// `retest_report`, `disposal`), period, start, due date and status. Cursor paging.
#[utoipa::path(get, path = "/api/v1/sampling/deadlines", tag = "sampling", security(("bearer" = [])),
    params(DeadlineParams),
    responses((status = 200, body = DeadlinePage),
        (status = 400, description = "`invalid_filter` (unknown `status`, `limit` out of range), `invalid_cursor`", body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not an admin or reviewer", body = ErrorEnvelope)))]
async fn deadline_queue(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<DeadlineParams>,
) -> AppResult<Json<DeadlinePage>> {
    let queue = match p.status.as_deref().map(str::trim) {
        None | Some("") | Some("due") => DeadlineQueue::Due,
        Some("overdue") => DeadlineQueue::Overdue,
        Some(other) => {
            return Err(AppError::bad_request(
                "invalid_filter",
                format!("status {other:?} is not due or overdue"),
            ))
        }
    };
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::bad_request(
            "invalid_filter",
            "limit must be between 1 and 200",
        ));
    }
    let cursor = p.cursor.as_deref().filter(|c| !c.trim().is_empty());
    Ok(Json(
        uc::deadline_queue(
            &state.db,
            &user.ctx(),
            state.config.time_zone,
            queue,
            cursor,
            limit,
        )
        .await?,
    ))
}
