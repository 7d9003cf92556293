//! `/api/v1/checklists`: checklist templates (检查要点表), their versions (draft → published;
//! published is immutable, edits make a new version) and evaluation of answers against a
//! version's result rule (检查结果判定).
//!
//! Visibility: admins see everything; reviewers and inspectors see published versions only (a
//! draft answers 404 to them, and templates with nothing published are not listed). The lab role
//! has no access.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, AuthUser, Authorized, Staff};
use super::{rfc3339, AppState};
use crate::auth::Role;
use crate::checklist::rule::{self, Answer, Evaluation};
pub use crate::checklist::version::VersionStatus;
use crate::checklist::TemplateContent;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::checklists as ops;
use crate::store::checklists as db;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template))
        .routes(routes!(create_version))
        .routes(routes!(get_version, update_version))
        .routes(routes!(publish_version))
        .routes(routes!(evaluate_version))
}

/// Most answers accepted by one evaluation.
pub const MAX_ANSWERS: usize = 1000;
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 100;

/// A checklist template: a stable code and name. The content lives in its numbered versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistTemplate {
    /// Template id (UUID). The built-in 2016 national catering table always has the id
    /// `00000000-0000-4000-8000-000000002016` (code `catering-2016`).
    pub id: String,
    /// Stable, unique code, e.g. `catering-2016`: 1–64 characters, lower-case ASCII letters,
    /// digits, `.`, `_`, `-`, starting with a letter or digit.
    pub code: String,
    /// Display name, 1–100 characters.
    pub name: String,
    /// Number of the newest published version: the one new inspections should use. Null while
    /// nothing is published yet (admins only see such templates).
    pub latest_published_version: Option<i64>,
    /// Whether the template has a draft version. Always false for non-admins.
    pub has_draft: bool,
    /// Number of the draft version, if any. Always null for non-admins.
    pub draft_version: Option<i64>,
    /// User id of the creator; null for the built-in template.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339. Changes whenever a version is added, edited or published.
    pub updated_at: String,
}

/// A page of templates, ordered by code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistTemplateList {
    pub items: Vec<ChecklistTemplate>,
    /// Number of templates visible to the caller, across all pages.
    pub total_count: u64,
    /// Page number, from 1.
    pub page: u32,
    /// Page size used.
    pub page_size: u32,
}

/// Paging of the template list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number, from 1. Default 1.
    pub page: Option<u32>,
    /// Items per page, 1–100. Default 50.
    pub page_size: Option<u32>,
}

/// One version of a template, without its content.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionSummary {
    /// Version number: 1, 2, 3… in order of creation. With the template id it identifies the
    /// exact checklist an inspection used.
    pub version: i64,
    pub status: VersionStatus,
    /// Title printed on the form (`content.title`).
    pub title: String,
    /// Kind of result rule (`content.rule.kind`): `pass_rate_2016` or `general_fail_count`.
    pub rule_kind: String,
    /// Number of items (检查内容).
    pub item_count: i64,
    /// Number of key items (重点项).
    pub key_count: i64,
    /// User id of the creator; null for the built-in template.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: the last content change of a draft, or the publication.
    pub updated_at: String,
    /// RFC 3339; null for a draft.
    pub published_at: Option<String>,
    /// User id of the publisher; null for a draft and for the built-in template.
    pub published_by: Option<String>,
}

impl From<db::VersionMeta> for VersionSummary {
    fn from(m: db::VersionMeta) -> Self {
        VersionSummary {
            version: m.version,
            status: m.status,
            title: m.title,
            rule_kind: m.rule_kind,
            item_count: m.item_count,
            key_count: m.key_count,
            created_by: m.created_by,
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
            published_at: m.published_at.map(rfc3339),
            published_by: m.published_by,
        }
    }
}

/// A template with its versions (without content), oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistTemplateDetail {
    #[serde(flatten)]
    pub template: ChecklistTemplate,
    /// The versions visible to the caller (non-admins: published only), oldest first.
    pub versions: Vec<VersionSummary>,
}

/// One version with its full content.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistVersion {
    /// Template id (UUID).
    pub template_id: String,
    /// Template code, e.g. `catering-2016`.
    pub template_code: String,
    /// Template name.
    pub template_name: String,
    #[serde(flatten)]
    pub summary: VersionSummary,
    /// Sections, items and result rule.
    pub content: TemplateContent,
}

/// Body of `POST /api/v1/checklists`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTemplate {
    /// Stable, unique code: 1–64 characters, ASCII letters, digits, `.`, `_`, `-`, starting with
    /// a letter or digit; stored lower-case. E.g. `tianjin-catering-2024`.
    pub code: String,
    /// Display name, 1–100 characters.
    pub name: String,
    /// Content of version 1 (created as a draft). Validated as for publishing.
    pub content: TemplateContent,
}

/// Body of `POST /api/v1/checklists/{id}/versions` and `PUT …/versions/{version}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VersionContent {
    /// The full content of the version (not a patch). Validated as for publishing.
    pub content: TemplateContent,
}

/// Body of `POST …/versions/{version}/evaluate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EvaluateRequest {
    /// The inspector's answers, at most 1000. Items without an answer count as not checked.
    /// Unknown item codes, repeated items and not-applicable answers where the item does not
    /// allow them are reported in `problems` and left out of every count.
    pub answers: Vec<Answer>,
}

/// The result of applying the version's rule to the answers, with the counts behind it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistEvaluation {
    /// Template id (UUID).
    pub template_id: String,
    /// Version whose items and rule were used.
    pub version: i64,
    /// Kind of result rule applied, e.g. `pass_rate_2016`.
    pub rule_kind: String,
    /// The result as printed on the form: 符合, 基本符合 or 不符合.
    pub result_label_zh: String,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

fn template_view(t: db::Template, latest: Option<i64>, draft: Option<i64>) -> ChecklistTemplate {
    ChecklistTemplate {
        id: t.id,
        code: t.code,
        name: t.name,
        latest_published_version: latest,
        has_draft: draft.is_some(),
        draft_version: draft,
        created_by: t.created_by,
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
    }
}

fn version_view(
    t: &db::Template,
    meta: db::VersionMeta,
    content: TemplateContent,
) -> ChecklistVersion {
    ChecklistVersion {
        template_id: t.id.clone(),
        template_code: t.code.clone(),
        template_name: t.name.clone(),
        summary: meta.into(),
        content,
    }
}

fn is_admin(user: &AuthUser) -> bool {
    user.role == Role::Admin
}

fn no_template() -> AppError {
    AppError::not_found("no such checklist template")
}

fn no_version() -> AppError {
    AppError::not_found("no such checklist version")
}

/// A version the caller may see (non-admins: published only) or 404.
async fn visible_version(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    version: i64,
) -> AppResult<db::Version> {
    db::version(&state.db, id, version)
        .await?
        .filter(|v| is_admin(user) || v.meta.status == db::VersionStatus::Published)
        .ok_or_else(no_version)
}

/// List checklist templates (admin, reviewer, inspector).
///
/// Each with its newest published version and, for admins, its draft. Non-admins see only
/// templates with at least one published version.
#[utoipa::path(get, path = "/api/v1/checklists", tag = "checklists", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = ChecklistTemplateList),
        (status = 400, description = "`bad_request`: page or page_size out of range", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)))]
async fn list_templates(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<Json<ChecklistTemplateList>> {
    let page = query.page.unwrap_or(1);
    let page_size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if page == 0 {
        return Err(AppError::bad_request("bad_request", "page starts at 1"));
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(AppError::bad_request(
            "bad_request",
            format!("page_size must be 1–{MAX_PAGE_SIZE}"),
        ));
    }
    let admin = is_admin(&user);
    let visible: Vec<ChecklistTemplate> = db::list(&state.db)
        .await?
        .into_iter()
        .filter(|s| admin || s.latest_published.is_some())
        .map(|s| {
            let draft = if admin { s.draft_version } else { None };
            template_view(s.template, s.latest_published, draft)
        })
        .collect();
    let total_count = visible.len() as u64;
    let skip = (u64::from(page) - 1).saturating_mul(u64::from(page_size));
    let items = visible
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(page_size as usize)
        .collect();
    Ok(Json(ChecklistTemplateList {
        items,
        total_count,
        page,
        page_size,
    }))
}

/// Create a template (admin). Version 1 is created as a draft; publish it to use it.
#[utoipa::path(post, path = "/api/v1/checklists", tag = "checklists", security(("bearer" = [])),
    request_body = CreateTemplate,
    responses(
        (status = 201, description = "Created, with version 1 as a draft", body = ChecklistTemplateDetail),
        (status = 400, description = "`invalid_json`", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 409, description = "`duplicate`: the code is taken", body = ErrorEnvelope),
        (status = 422, description = "`invalid_body`: wrong shape; `validation_failed`: `details` is the list of `TemplateProblem` (paths into the request body, e.g. `content.sections[2].items[0].code`, or `code`, `name`)", body = ErrorEnvelope)))]
async fn create_template(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiJson(req): ApiJson<CreateTemplate>,
) -> AppResult<(StatusCode, Json<ChecklistTemplateDetail>)> {
    let (template, meta) =
        ops::create_template(&state.db, &user.ctx(), &req.code, &req.name, &req.content).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChecklistTemplateDetail {
            template: template_view(template, None, Some(meta.version)),
            versions: vec![meta.into()],
        }),
    ))
}

/// Read a template and its versions, without content (admin, reviewer, inspector).
///
/// Non-admins see published versions only, and 404 for a template with none.
#[utoipa::path(get, path = "/api/v1/checklists/{id}", tag = "checklists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 200, body = ChecklistTemplateDetail),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
async fn get_template(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<ChecklistTemplateDetail>> {
    let template = db::by_id(&state.db, &id).await?.ok_or_else(no_template)?;
    let admin = is_admin(&user);
    let versions: Vec<db::VersionMeta> = db::versions(&state.db, &template.id)
        .await?
        .into_iter()
        .filter(|v| admin || v.status == db::VersionStatus::Published)
        .collect();
    let latest = versions
        .iter()
        .filter(|v| v.status == db::VersionStatus::Published)
        .map(|v| v.version)
        .max();
    if latest.is_none() && !admin {
        return Err(no_template());
    }
    let draft = versions
        .iter()
        .find(|v| v.status == db::VersionStatus::Draft)
        .map(|v| v.version);
    Ok(Json(ChecklistTemplateDetail {
        template: template_view(template, latest, draft),
        versions: versions.into_iter().map(Into::into).collect(),
    }))
}

/// Start a new version (admin): a draft numbered one above the highest version.
///
/// Refused while the template has a draft: edit that draft (`PUT`) or publish it first.
#[utoipa::path(post, path = "/api/v1/checklists/{id}/versions", tag = "checklists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id")),
    request_body = VersionContent,
    responses(
        (status = 201, description = "The new draft", body = ChecklistVersion),
        (status = 400, description = "`invalid_json`", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`draft_exists`: the template already has a draft", body = ErrorEnvelope),
        (status = 422, description = "`invalid_body`; `validation_failed` with `details` (list of `TemplateProblem`, paths like `content.title`)", body = ErrorEnvelope)))]
async fn create_version(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<VersionContent>,
) -> AppResult<(StatusCode, Json<ChecklistVersion>)> {
    let (template, meta) = ops::create_version(&state.db, &user.ctx(), &id, &req.content).await?;
    Ok((
        StatusCode::CREATED,
        Json(version_view(&template, meta, req.content)),
    ))
}

/// Read one version with its full content (admin, reviewer, inspector).
///
/// Drafts are visible to admins only (404 for others).
#[utoipa::path(get, path = "/api/v1/checklists/{id}/versions/{version}", tag = "checklists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id"), ("version" = i64, Path, description = "Version number")),
    responses(
        (status = 200, body = ChecklistVersion),
        (status = 400, description = "`bad_request`: version is not a number", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
async fn get_version(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath((id, version)): ApiPath<(String, i64)>,
) -> AppResult<Json<ChecklistVersion>> {
    let v = visible_version(&state, &user, &id, version).await?;
    let template = db::by_id(&state.db, &id).await?.ok_or_else(no_template)?;
    Ok(Json(version_view(&template, v.meta, v.content)))
}

/// Replace the content of a draft (admin). Published versions are immutable.
#[utoipa::path(put, path = "/api/v1/checklists/{id}/versions/{version}", tag = "checklists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id"), ("version" = i64, Path, description = "Version number of a draft")),
    request_body = VersionContent,
    responses(
        (status = 200, description = "The updated draft", body = ChecklistVersion),
        (status = 400, description = "`invalid_json`, or `bad_request`: version is not a number", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`version_published`: the version is published and cannot change; create a new version", body = ErrorEnvelope),
        (status = 422, description = "`invalid_body`; `validation_failed` with `details` (list of `TemplateProblem`)", body = ErrorEnvelope)))]
async fn update_version(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath((id, version)): ApiPath<(String, i64)>,
    ApiJson(req): ApiJson<VersionContent>,
) -> AppResult<Json<ChecklistVersion>> {
    let (template, meta) =
        ops::update_draft(&state.db, &user.ctx(), &id, version, &req.content).await?;
    Ok(Json(version_view(&template, meta, req.content)))
}

/// Publish a draft (admin). Its content is validated again; once published it never changes.
#[utoipa::path(post, path = "/api/v1/checklists/{id}/versions/{version}/publish", tag = "checklists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id"), ("version" = i64, Path, description = "Version number of a draft")),
    responses(
        (status = 200, description = "The published version", body = ChecklistVersion),
        (status = 400, description = "`bad_request`: version is not a number", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`version_published`: already published; `conflict`: the draft changed while being published, try again", body = ErrorEnvelope),
        (status = 422, description = "`validation_failed`: the draft is not valid; `details` lists the problems", body = ErrorEnvelope)))]
async fn publish_version(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath((id, version)): ApiPath<(String, i64)>,
) -> AppResult<Json<ChecklistVersion>> {
    let (template, v) = ops::publish(&state.db, &user.ctx(), &id, version).await?;
    Ok(Json(version_view(&template, v.meta, v.content)))
}

/// Evaluate answers against a version's rule (admin, reviewer, inspector). Stores nothing.
///
/// Works on published versions; admins may also evaluate drafts. The result is always
/// computed; `coverage_ok` is false (with problems listed) when fewer items were assessed than
/// the rule's minimums (3 key / 7 general on the 2016 table). On the 2016 rule, one failed key
/// item with every general item passing is 基本符合 (`gap_result`), a case the printed form
/// leaves open.
#[utoipa::path(post, path = "/api/v1/checklists/{id}/versions/{version}/evaluate", tag = "checklists", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id"), ("version" = i64, Path, description = "Version number")),
    request_body = EvaluateRequest,
    responses(
        (status = 200, body = ChecklistEvaluation),
        (status = 400, description = "`invalid_json`, or `bad_request`: version is not a number", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, description = "No such template or version (or a draft, for non-admins)", body = ErrorEnvelope),
        (status = 422, description = "`invalid_body`: wrong shape or unknown status; `validation_failed`: more than 1000 answers", body = ErrorEnvelope)))]
async fn evaluate_version(
    State(state): State<AppState>,
    user: Authorized<Staff>,
    ApiPath((id, version)): ApiPath<(String, i64)>,
    ApiJson(req): ApiJson<EvaluateRequest>,
) -> AppResult<Json<ChecklistEvaluation>> {
    if req.answers.len() > MAX_ANSWERS {
        return Err(AppError::unprocessable(
            "validation_failed",
            format!(
                "{} answers; at most {MAX_ANSWERS} are accepted",
                req.answers.len()
            ),
        ));
    }
    let v = visible_version(&state, &user, &id, version).await?;
    let evaluation = rule::evaluate(&v.content, &req.answers);
    Ok(Json(ChecklistEvaluation {
        template_id: v.meta.template_id,
        version: v.meta.version,
        rule_kind: v.meta.rule_kind,
        result_label_zh: evaluation.result.label_zh().to_owned(),
        evaluation,
    }))
}
