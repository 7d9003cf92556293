//! `/api/v1/stats`: campaign statistics counted from the records, as JSON and XLSX; and the
//! 3·15 活动统计表: campaigns, reporting units, each unit's form per campaign (prefilled from
//! the records where they can tell), the total across units, and the form as XLSX.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Authorized, Office};
use super::{rfc3339, AppState};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops;
use crate::stats::xlsx::{self, FormHeader};
use crate::stats::{Stats, UnitKind, FORM, FORM_HEADER_FIELDS, FORM_TITLE};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_stats))
        .routes(routes!(get_stats_xlsx))
        .routes(routes!(get_form))
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(create_unit, list_units))
        .routes(routes!(get_report, put_report))
        .routes(routes!(get_prefill))
        .routes(routes!(get_report_xlsx))
        .routes(routes!(get_total))
        .routes(routes!(get_total_xlsx))
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn xlsx_response(bytes: Vec<u8>, filename: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, XLSX.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
}

fn xlsx_failed(e: rust_xlsxwriter::XlsxError) -> AppError {
    AppError::Internal(anyhow::anyhow!("writing XLSX: {e}"))
}

/// The range counted: the bureau's days `from` to `to`, both included.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`, not before `from`, at most 400 days after it (both counted).
    pub to: String,
}

async fn stats_of(
    state: &AppState,
    user: &Authorized<Office>,
    p: &RangeParams,
) -> AppResult<Stats> {
    let range = ops::stats::range(&p.from, &p.to)?;
    Ok(ops::stats::stats(&state.db, &user.ctx(), &state.config.time_zone, range).await?)
}

/// Campaign statistics over a range (admin, reviewer), counted from the records by the
/// database, never typed in. Days are the bureau's.
///
/// - `inspections`: routine (drawn) inspections submitted in the range, by review state now,
///   and the approved ones by effective result (the override if any, else the computed one).
/// - `coverage`: distinct establishments with a submitted, not rejected, routine inspection in
///   the range, by town and by risk grade (the registry's now).
/// - `list_entries`: entries of the current revisions of list issues published in the range.
/// - `rectifications`: follow-ups (整改) opened in the range; of those, closed, closed on time
///   (the recheck inspection submitted on or before the deadline day), escalated.
/// - `rechecks`: recheck tasks created in the range; of those, submitted.
///
/// Sampling counts are not included: sampling does not exist yet.
#[utoipa::path(get, path = "/api/v1/stats", tag = "stats", security(("bearer" = [])),
    params(RangeParams),
    responses((status = 200, body = Stats), (status = 403, body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`: `invalid_date`, `reversed_range`, `range_too_long` over 400 days)", body = ErrorEnvelope)))]
async fn get_stats(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> AppResult<Json<Stats>> {
    Ok(Json(stats_of(&state, &user, &p).await?))
}

/// The same figures as `GET /api/v1/stats`, as XLSX (admin, reviewer): one sheet per table
/// (检查结果, 按街道覆盖, 按风险等级覆盖, 红黑榜, 整改, 复查), Chinese headers.
#[utoipa::path(get, path = "/api/v1/stats.xlsx", tag = "stats", security(("bearer" = [])),
    params(RangeParams),
    responses((status = 200, description = "XLSX workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 403, body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`: `invalid_date`, `reversed_range`, `range_too_long` over 400 days)", body = ErrorEnvelope)))]
async fn get_stats_xlsx(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> AppResult<impl IntoResponse> {
    let s = stats_of(&state, &user, &p).await?;
    let bytes = xlsx::stats_xlsx(&s).map_err(xlsx_failed)?;
    Ok(xlsx_response(
        bytes,
        format!("stats-{}-{}.xlsx", s.from, s.to),
    ))
}

/// One row of the 3·15 活动统计表.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormRowView {
    /// The key of the row in a report's `values`.
    pub code: String,
    /// The printed number, 1–14; absent for the sub-row.
    pub number: Option<u8>,
    /// The label (without its unit).
    pub label: String,
    /// The label as printed in the XLSX (the sub-row reads 其中：主题宣传活动).
    pub printed_label: String,
    /// The unit as printed.
    pub unit: String,
    /// The row this one is part of: its figure may not exceed the parent's.
    pub parent: Option<String>,
    /// Whether `.../prefill` proposes a figure for it.
    pub prefilled: bool,
}

/// The layout of the 3·15 活动统计表.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormView {
    pub title: String,
    /// The header fields above the rows: 填报单位, 联系人, 电话.
    pub header_fields: Vec<String>,
    /// In printed order.
    pub rows: Vec<FormRowView>,
}

/// The layout of the 3·15 活动统计表 (admin, reviewer): its rows, in order, with their codes.
#[utoipa::path(get, path = "/api/v1/campaign-form", tag = "stats", security(("bearer" = [])),
    responses((status = 200, body = FormView), (status = 403, body = ErrorEnvelope)))]
async fn get_form(_user: Authorized<Office>) -> Json<FormView> {
    Json(FormView {
        title: FORM_TITLE.into(),
        header_fields: FORM_HEADER_FIELDS.iter().map(|s| s.to_string()).collect(),
        rows: FORM
            .iter()
            .map(|r| FormRowView {
                code: r.code.into(),
                number: r.number,
                label: r.label.into(),
                printed_label: xlsx::printed_label(r),
                unit: r.unit.into(),
                parent: r.parent.map(Into::into),
                prefilled: r.prefilled,
            })
            .collect(),
    })
}

// ---- campaigns and units ----

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    /// `YYYY-MM-DD`
    pub period_start: String,
    /// `YYYY-MM-DD`
    pub period_end: String,
    pub created_by: String,
    /// RFC 3339
    pub created_at: String,
}

impl From<ops::stats::Campaign> for CampaignView {
    fn from(c: ops::stats::Campaign) -> Self {
        CampaignView {
            id: c.id,
            name: c.name,
            period_start: c.period_start,
            period_end: c.period_end,
            created_by: c.created_by,
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// e.g. `2026年3·15国际消费者权益日活动` (at most 200 characters, unique).
    pub name: String,
    /// `YYYY-MM-DD`
    pub period_start: String,
    /// `YYYY-MM-DD`, not before the start, at most 400 days in all.
    pub period_end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    /// Newest period first, at most 1000.
    pub items: Vec<CampaignView>,
}

/// Create a campaign (admin).
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "stats", security(("bearer" = [])),
    request_body = CampaignBody,
    responses((status = 201, body = CampaignView), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: the name is taken", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: empty or over-long name, bad, reversed or over-long period", body = ErrorEnvelope)))]
async fn create_campaign(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(b): ApiJson<CampaignBody>,
) -> AppResult<(StatusCode, Json<CampaignView>)> {
    let c = ops::stats::create_campaign(
        &state.db,
        &user.ctx(),
        &b.name,
        &b.period_start,
        &b.period_end,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// Campaigns (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "stats", security(("bearer" = [])),
    responses((status = 200, body = CampaignList), (status = 403, body = ErrorEnvelope)))]
async fn list_campaigns(
    State(state): State<AppState>,
    user: Authorized<Office>,
) -> AppResult<Json<CampaignList>> {
    let items = ops::stats::campaigns(&state.db, &user.ctx()).await?;
    Ok(Json(CampaignList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
    /// 科室, 所 or 中心.
    pub kind_label: String,
    /// RFC 3339
    pub created_at: String,
}

impl From<ops::stats::Unit> for UnitView {
    fn from(u: ops::stats::Unit) -> Self {
        UnitView {
            id: u.id,
            name: u.name,
            kind: u.kind,
            kind_label: u.kind.label_zh().into(),
            created_at: rfc3339(u.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    /// e.g. `食品经营安全监督管理科` (at most 100 characters, unique).
    pub name: String,
    pub kind: UnitKind,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitList {
    /// By name, at most 1000.
    pub items: Vec<UnitView>,
}

/// Create a reporting unit (admin): a 科室, 所 or 中心 that fills the 3·15 form.
#[utoipa::path(post, path = "/api/v1/reporting-units", tag = "stats", security(("bearer" = [])),
    request_body = UnitBody,
    responses((status = 201, body = UnitView), (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: the name is taken; `conflict`: 1000 units exist", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: empty or over-long name; `invalid_body`: unknown kind", body = ErrorEnvelope)))]
async fn create_unit(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(b): ApiJson<UnitBody>,
) -> AppResult<(StatusCode, Json<UnitView>)> {
    let u = ops::stats::create_unit(&state.db, &user.ctx(), &b.name, b.kind).await?;
    Ok((StatusCode::CREATED, Json(u.into())))
}

/// Reporting units (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/reporting-units", tag = "stats", security(("bearer" = [])),
    responses((status = 200, body = UnitList), (status = 403, body = ErrorEnvelope)))]
async fn list_units(
    State(state): State<AppState>,
    user: Authorized<Office>,
) -> AppResult<Json<UnitList>> {
    let items = ops::stats::units(&state.db, &user.ctx()).await?;
    Ok(Json(UnitList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

// ---- reports ----

/// A unit's form for a campaign. Internal: the contact is personal data, never public.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub campaign: CampaignView,
    pub unit: UnitView,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    /// Row code → figure, every row of the form (0 when not filled).
    pub values: BTreeMap<String, i64>,
    /// Absent until the form is first saved.
    pub updated_by: Option<String>,
    /// RFC 3339; absent until the form is first saved.
    pub updated_at: Option<String>,
}

impl From<ops::stats::Report> for ReportView {
    fn from(r: ops::stats::Report) -> Self {
        ReportView {
            campaign: r.campaign.into(),
            unit: r.unit.into(),
            contact_name: r.contact_name,
            contact_phone: r.contact_phone,
            values: r.values,
            updated_by: r.updated_by,
            updated_at: r.updated_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// 联系人 (at most 50 characters).
    pub contact_name: Option<String>,
    /// 电话 (digits, spaces, `+`, `-`; 3 to 30 characters).
    pub contact_phone: Option<String>,
    /// Row code (see `GET /api/v1/campaign-form`) → a non-negative integer; rows left out are
    /// 0. The whole form is replaced.
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReportPath {
    /// The campaign's id.
    pub id: String,
    /// The reporting unit's id.
    pub unit_id: String,
}

/// A unit's 3·15 form for a campaign (admin, reviewer); every row 0 and no contact until the
/// unit saves it.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/reports/{unit_id}", tag = "stats", security(("bearer" = [])),
    params(ReportPath),
    responses((status = 200, body = ReportView), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such campaign or unit", body = ErrorEnvelope)))]
async fn get_report(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(p): ApiPath<ReportPath>,
) -> AppResult<Json<ReportView>> {
    let r = ops::stats::report(&state.db, &user.ctx(), &p.id, &p.unit_id).await?;
    Ok(Json(r.into()))
}

/// Save a unit's 3·15 form for a campaign (admin, reviewer): the whole form, replaced.
#[utoipa::path(put, path = "/api/v1/campaigns/{id}/reports/{unit_id}", tag = "stats", security(("bearer" = [])),
    params(ReportPath),
    request_body = ReportBody,
    responses((status = 200, body = ReportView), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such campaign or unit", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed` (`details`): `unknown_row`, `invalid_value` (not an integer 0–10¹²), `sub_row_exceeds_parent`, `too_long`, `invalid_phone`. Nothing is saved.", body = ErrorEnvelope)))]
async fn put_report(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(p): ApiPath<ReportPath>,
    ApiJson(b): ApiJson<ReportBody>,
) -> AppResult<Json<ReportView>> {
    let input = ops::stats::ReportInput {
        contact_name: b.contact_name,
        contact_phone: b.contact_phone,
        values: b.values,
    };
    let r = ops::stats::put_report(&state.db, &user.ctx(), &p.id, &p.unit_id, &input).await?;
    Ok(Json(r.into()))
}

/// What the records propose for a unit's form.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrefillView {
    /// `YYYY-MM-DD`, the campaign's period.
    pub period_start: String,
    pub period_end: String,
    /// Only the prefilled rows: `business_participants`, `typical_cases`.
    pub values: BTreeMap<String, i64>,
}

/// What the records tell for the campaign's period (admin, reviewer), to prefill a unit's form:
///
/// - `business_participants` (经营者或企业参与数(户次)): distinct establishments with a
///   submitted, not rejected, routine inspection in the period;
/// - `typical_cases` (发布典型案例(个)): black-list entries of the current revisions of list
///   issues published in the period.
///
/// Every other row is for the unit. The figures are the bureau's (the records do not say which
/// unit did the work); nothing is saved.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/reports/{unit_id}/prefill", tag = "stats", security(("bearer" = [])),
    params(ReportPath),
    responses((status = 200, body = PrefillView), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such campaign or unit", body = ErrorEnvelope)))]
async fn get_prefill(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(p): ApiPath<ReportPath>,
) -> AppResult<Json<PrefillView>> {
    let ctx = user.ctx();
    let values =
        ops::stats::prefill(&state.db, &ctx, &state.config.time_zone, &p.id, &p.unit_id).await?;
    let r = ops::stats::report(&state.db, &ctx, &p.id, &p.unit_id).await?;
    Ok(Json(PrefillView {
        period_start: r.campaign.period_start,
        period_end: r.campaign.period_end,
        values,
    }))
}

/// A unit's 3·15 活动统计表 as XLSX, in the form's layout (admin, reviewer): the title, 填报单位,
/// 联系人, 电话, then 序号 | 统计项目 | 单位 | 数量 for the 14 numbered rows and the sub-row.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/reports/{unit_id}/form.xlsx", tag = "stats", security(("bearer" = [])),
    params(ReportPath),
    responses((status = 200, description = "XLSX workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such campaign or unit", body = ErrorEnvelope)))]
async fn get_report_xlsx(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(p): ApiPath<ReportPath>,
) -> AppResult<impl IntoResponse> {
    let r = ops::stats::report(&state.db, &user.ctx(), &p.id, &p.unit_id).await?;
    let header = FormHeader {
        unit: &r.unit.name,
        contact_name: r.contact_name.as_deref().unwrap_or(""),
        contact_phone: r.contact_phone.as_deref().unwrap_or(""),
    };
    let bytes = xlsx::form_xlsx(header, &r.values).map_err(xlsx_failed)?;
    Ok(xlsx_response(
        bytes,
        format!("campaign-{}-unit-{}.xlsx", r.campaign.id, r.unit.id),
    ))
}

/// The campaign's forms summed across units.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalView {
    pub campaign: CampaignView,
    /// Units that saved a form.
    pub units_reported: i64,
    /// Row code → the sum across units, every row of the form.
    pub values: BTreeMap<String, i64>,
}

/// The 3·15 form summed across every unit that reported (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/total", tag = "stats", security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, body = TotalView), (status = 403, body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorEnvelope)))]
async fn get_total(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<TotalView>> {
    let (campaign, values, units_reported) = ops::stats::total(&state.db, &user.ctx(), &id).await?;
    Ok(Json(TotalView {
        campaign: campaign.into(),
        units_reported,
        values,
    }))
}

/// The total 3·15 活动统计表 as XLSX, in the form's layout (admin, reviewer): 填报单位 reads
/// 合计, the contact fields are empty.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/total/form.xlsx", tag = "stats", security(("bearer" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, description = "XLSX workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorEnvelope)))]
async fn get_total_xlsx(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    let (campaign, values, _) = ops::stats::total(&state.db, &user.ctx(), &id).await?;
    let header = FormHeader {
        unit: "合计",
        contact_name: "",
        contact_phone: "",
    };
    let bytes = xlsx::form_xlsx(header, &values).map_err(xlsx_failed)?;
    Ok(xlsx_response(
        bytes,
        format!("campaign-{}-total.xlsx", campaign.id),
    ))
}
