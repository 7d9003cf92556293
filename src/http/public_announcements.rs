//! The public sampling announcement (抽检信息公告), no login: `/public/v1/announcements` (paged
//! index), `/public/v1/announcements/{id}` (the 合格 and 不合格 tables), its export as JSON, CSV
//! (UTF-8 BOM) or XLSX, and the HTML pages `/public/announcements` and
//! `/public/announcements/{id}`. Built from [`crate::public::announcement`] types only; a draft
//! is 404 everywhere. ETag/304, Cache-Control and CORS come from [`super::public_cache`].

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery};
use super::public_data::{attachment, PageParams};
use super::public_pages::{bureau_day, layout, pager};
use super::record::escape;
use super::AppState;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::export::ExportFormat;
use crate::public::announcement::{PublicAnnouncement, PublicSample, DISCLAIMER};
use crate::public::{self, PageMeta};
use crate::store::announcements as q;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_announcements))
        .routes(routes!(get_announcement))
        .routes(routes!(export_announcement))
        .routes(routes!(index_page))
        .routes(routes!(announcement_page))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAnnouncementPage {
    pub meta: PageMeta,
    pub items: Vec<PublicAnnouncement>,
}

/// Published sampling announcements, newest first.
#[utoipa::path(get, path = "/public/v1/announcements", tag = "public", params(PageParams),
    responses((status = 200, body = PublicAnnouncementPage), (status = 304, description = "Not modified (If-None-Match)"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope)))]
async fn list_announcements(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Json<PublicAnnouncementPage>> {
    let (page, size, offset) = p.paging()?;
    let mut conn = state.db.acquire().await?;
    let (items, total) = q::published(&mut conn, offset, size).await?;
    Ok(Json(PublicAnnouncementPage {
        meta: PageMeta::new(total, page, size, state.config.time_zone.today()),
        items,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicAnnouncementView {
    #[serde(flatten)]
    pub announcement: PublicAnnouncement,
    /// A result holds for the sample tested only.
    pub disclaimer: &'static str,
    pub licence: &'static str,
    pub page_url: String,
    /// `YYYY-MM-DD`, the bureau's today.
    pub extract_date: String,
    /// 合格 table, by 序号.
    pub qualified: Vec<PublicSample>,
    /// 不合格 table, by 序号, each sample with its failed items.
    pub unqualified: Vec<PublicSample>,
}

async fn view(state: &AppState, id: &str) -> AppResult<PublicAnnouncementView> {
    let mut conn = state.db.acquire().await?;
    let announcement = q::published_one(&mut conn, id)
        .await?
        .ok_or_else(|| AppError::not_found("no such published announcement"))?;
    let (qualified, unqualified) = q::published_rows(&mut conn, id).await?;
    let strip = |rows: Vec<(String, PublicSample)>| rows.into_iter().map(|(_, r)| r).collect();
    Ok(PublicAnnouncementView {
        page_url: format!("/public/announcements/{}", announcement.id),
        announcement,
        disclaimer: DISCLAIMER,
        licence: public::LICENCE,
        extract_date: state.config.time_zone.today(),
        qualified: strip(qualified),
        unqualified: strip(unqualified),
    })
}

/// One published announcement with its 合格 and 不合格 tables (a draft or unknown id is 404).
#[utoipa::path(get, path = "/public/v1/announcements/{id}", tag = "public",
    params(("id" = String, Path, description = "Announcement id")),
    responses((status = 200, body = PublicAnnouncementView), (status = 304, description = "Not modified"),
        (status = 404, description = "No such published announcement", body = ErrorEnvelope)))]
async fn get_announcement(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<PublicAnnouncementView>> {
    Ok(Json(view(&state, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnnouncementExportParams {
    /// `json` (as `/public/v1/announcements/{id}`), `csv` (UTF-8 with BOM, RFC 4180,
    /// formula-like text neutralised; both tables, one line per qualified sample and per failed
    /// item of an unqualified one, column 结论) or `xlsx` (合格, 不合格 and 说明 sheets).
    pub format: String,
}

/// A published announcement as a file, with Content-Disposition.
#[utoipa::path(get, path = "/public/v1/announcements/{id}/export", tag = "public",
    params(("id" = String, Path, description = "Announcement id"), AnnouncementExportParams),
    responses((status = 200, description = "The file, with Content-Disposition"),
        (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_format`", body = ErrorEnvelope),
        (status = 404, description = "No such published announcement", body = ErrorEnvelope)))]
async fn export_announcement(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<AnnouncementExportParams>,
) -> AppResult<Response> {
    let format = ExportFormat::parse(&p.format)
        .filter(|f| {
            matches!(
                f,
                ExportFormat::Json | ExportFormat::Csv | ExportFormat::Xlsx
            )
        })
        .ok_or_else(|| AppError::bad_request("invalid_format", "format is json, csv or xlsx"))?;
    let v = view(&state, &id).await?;
    let published_on = bureau_day(state.config.time_zone, &v.announcement.published_at);
    let file_name = format!("announcement-{}.{}", v.announcement.id, format.extension());
    let bytes = tokio::task::spawn_blocking(move || -> crate::export::Result<Vec<u8>> {
        match format {
            ExportFormat::Csv => {
                crate::export::announcement::write_csv(Vec::new(), &v.qualified, &v.unqualified)
            }
            ExportFormat::Xlsx => crate::export::announcement::write_xlsx(
                Vec::new(),
                &v.announcement,
                &published_on,
                &v.qualified,
                &v.unqualified,
            ),
            _ => Ok(serde_json::to_vec(&v)?),
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(attachment(format, &file_name, Body::from(bytes)))
}

// ---- HTML --------------------------------------------------------------------------------

fn scope_text(a: &PublicAnnouncement) -> String {
    let stage = a.stage.map_or("全部环节", |s| s.label_zh());
    let category = a.category_name.as_deref().unwrap_or("全部食品类别");
    format!("{stage}，{}", escape(category))
}

/// The index of published sampling announcements, newest first.
#[utoipa::path(get, path = "/public/announcements", tag = "public", params(PageParams),
    responses((status = 200, description = "HTML page", content_type = "text/html"),
        (status = 304, description = "Not modified"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope)))]
async fn index_page(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Response> {
    let (page, size, offset) = p.paging()?;
    let mut conn = state.db.acquire().await?;
    let (items, total) = q::published(&mut conn, offset, size).await?;
    let meta = PageMeta::new(total, page, size, String::new());
    let zone = state.config.time_zone;
    let mut body = String::from("<h1>食品安全抽检信息公告</h1>\n");
    if items.is_empty() {
        body.push_str("<p>尚无已发布的抽检信息公告。</p>\n");
    } else {
        body.push_str("<ul id=\"announcements\">\n");
        for a in &items {
            body.push_str(&format!(
                "<li><a href=\"/public/announcements/{id}\">{no} {title}</a> <span class=\"meta\">（{start} 至 {end}，{scope}；合格 {ok} 批次、不合格 {bad} 批次，发布于 {at}）</span></li>\n",
                id = escape(&a.id),
                no = escape(&a.announcement_no),
                title = escape(&a.title),
                start = escape(&a.period_start),
                end = escape(&a.period_end),
                scope = scope_text(a),
                ok = a.qualified_count,
                bad = a.unqualified_count,
                at = bureau_day(zone, &a.published_at),
            ));
        }
        body.push_str("</ul>\n");
    }
    body.push_str(&pager("/public/announcements", page, meta.total_pages));
    Ok(layout("食品安全抽检信息公告", &body))
}

const SAMPLE_HEADS: [&str; 13] = [
    "序号",
    "抽样单编号",
    "被抽样单位名称",
    "被抽样单位地址",
    "样品名称",
    "商标",
    "规格型号",
    "生产日期/批号",
    "标称生产企业名称",
    "标称生产企业地址",
    "食品分类",
    "抽样环节",
    "检验机构",
];

fn sample_cells(s: &PublicSample) -> String {
    let premises = if s.premises_licensed_name != s.premises_name {
        format!(
            "{}<br><span class=\"muted\">（{}）</span>",
            escape(&s.premises_name),
            escape(&s.premises_licensed_name)
        )
    } else {
        escape(&s.premises_name)
    };
    format!(
        "<td>{}</td><td>{}</td><td>{premises}</td><td>{}（{}）</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        s.position,
        escape(&s.sample_no),
        escape(&s.premises_address),
        escape(&s.town),
        escape(&s.sample_name),
        escape(&s.brand),
        escape(&s.specification),
        escape(&s.production_date_or_batch),
        escape(&s.producer_name),
        escape(&s.producer_address),
        escape(&s.category_name),
        s.stage.label_zh(),
        escape(&s.lab_name),
    )
}

fn heads(extra: &[&str]) -> String {
    SAMPLE_HEADS
        .iter()
        .chain(extra)
        .map(|h| format!("<th scope=\"col\">{h}</th>"))
        .collect()
}

fn qualified_table(rows: &[PublicSample]) -> String {
    let mut s = format!(
        "<div class=\"table\"><table id=\"qualified\">\n<caption>合格产品信息（{} 批次）</caption>\n<thead><tr>{}</tr></thead>\n<tbody>\n",
        rows.len(),
        heads(&[])
    );
    if rows.is_empty() {
        s.push_str(&format!(
            "<tr><td colspan=\"{}\">本期无</td></tr>\n",
            SAMPLE_HEADS.len()
        ));
    }
    for r in rows {
        s.push_str(&format!("<tr>{}</tr>\n", sample_cells(r)));
    }
    s.push_str("</tbody></table></div>\n");
    s
}

fn unqualified_table(rows: &[PublicSample]) -> String {
    let extra = ["不合格项目｜检验结果｜标准值｜判定依据", "检验报告编号"];
    let mut s = format!(
        "<div class=\"table\"><table id=\"unqualified\" class=\"red\">\n<caption>不合格产品信息（{} 批次）</caption>\n<thead><tr>{}</tr></thead>\n<tbody>\n",
        rows.len(),
        heads(&extra)
    );
    if rows.is_empty() {
        s.push_str(&format!(
            "<tr><td colspan=\"{}\">本期无</td></tr>\n",
            SAMPLE_HEADS.len() + extra.len()
        ));
    }
    for r in rows {
        let items: Vec<String> = r
            .failed_items
            .iter()
            .map(|i| {
                let unit = i.unit.as_deref().unwrap_or("");
                format!(
                    "{}｜{}{}｜{}｜{}",
                    escape(&i.name),
                    escape(&i.value),
                    escape(unit),
                    escape(
                        i.limit
                            .as_deref()
                            .map(|l| format!("{l}{unit}"))
                            .as_deref()
                            .unwrap_or("/")
                    ),
                    escape(i.standard.as_deref().unwrap_or("/")),
                )
            })
            .collect();
        s.push_str(&format!(
            "<tr>{}<td>{}</td><td>{}</td></tr>\n",
            sample_cells(r),
            if items.is_empty() {
                "/".to_string()
            } else {
                items.join("<br>")
            },
            escape(&r.report_no),
        ));
    }
    s.push_str("</tbody></table></div>\n");
    s
}

/// A published announcement: its period and scope, the 合格 and 不合格 tables, the disclaimer
/// and links to the data. 404 for a draft or unknown id.
#[utoipa::path(get, path = "/public/announcements/{id}", tag = "public",
    params(("id" = String, Path, description = "Announcement id")),
    responses((status = 200, description = "HTML page", content_type = "text/html"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such published announcement", body = ErrorEnvelope)))]
async fn announcement_page(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    let v = view(&state, &id).await?;
    let a = &v.announcement;
    let mut body = format!(
        "<h1>{no} {title}</h1>\n<p class=\"meta\">报告期间：{start} 至 {end}　范围：{scope}　发布日期：{at}</p>\n\
         <p>本期公布食品安全监督抽检样品 {total} 批次，其中合格 {ok} 批次，不合格 {bad} 批次。</p>\n\
         <p class=\"disclaimer\" id=\"disclaimer\">{disclaimer}</p>\n",
        no = escape(&a.announcement_no),
        title = escape(&a.title),
        start = escape(&a.period_start),
        end = escape(&a.period_end),
        scope = scope_text(a),
        at = bureau_day(state.config.time_zone, &a.published_at),
        total = a.qualified_count + a.unqualified_count,
        ok = a.qualified_count,
        bad = a.unqualified_count,
        disclaimer = escape(DISCLAIMER),
    );
    body.push_str("<h2>不合格产品信息</h2>\n");
    body.push_str(&unqualified_table(&v.unqualified));
    body.push_str("<h2>合格产品信息</h2>\n");
    body.push_str(&qualified_table(&v.qualified));
    body.push_str(&format!(
        "<p class=\"muted\">数据下载：<a href=\"/public/v1/announcements/{id}/export?format=xlsx\">XLSX</a>、\
         <a href=\"/public/v1/announcements/{id}/export?format=csv\">CSV</a>、<a href=\"/public/v1/announcements/{id}\">JSON</a></p>\n",
        id = escape(&a.id)
    ));
    Ok(layout(&format!("{} {}", a.announcement_no, a.title), &body))
}
