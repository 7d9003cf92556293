//! The public pages (一公开), server-rendered HTML in Chinese: mobile-first, printable,
//! readable without JavaScript (there is none), with landmarks, table captions and header
//! scopes for screen readers, and no resource from any other origin (styles inline, no fonts,
//! no scripts). Built from [`crate::public`] types only; every text is HTML-escaped.
//!
//! - `/public/lists`: the index of published red/black list issues;
//! - `/public/lists/{id}`: an issue, its red and black tables and the disclaimer;
//! - `/public/establishments/{id}`: an establishment's public history (the QR code on the
//!   printed result record opens it);
//! - `/public/plans/{id}/draw`: a round's draw, with what anyone needs to re-run it.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, ApiQuery};
use super::public_data::PageParams;
use super::record::{escape, or_slash};
use super::AppState;
use crate::checklist::rule::ResultCode;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::establishment::Category;
use crate::public::{self, ListType, PublicEntry, PublicIssue};
use crate::store::public as q;

/// Most entries of one list shown on an issue page (the exports hold all).
const PAGE_ENTRIES: u32 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index_page))
        .routes(routes!(issue_page))
        .routes(routes!(establishment_page))
        .routes(routes!(draw_page))
}

const STYLE: &str = "\
:root{color-scheme:light}\
body{font-family:system-ui,-apple-system,\"PingFang SC\",\"Noto Sans CJK SC\",\"Microsoft YaHei\",\"WenQuanYi Micro Hei\",sans-serif;\
margin:0;color:#1a1a1a;background:#fff;line-height:1.6;font-size:16px}\
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}\
header,main,footer{max-width:1100px;margin:0 auto;padding:12px 16px}\
header{border-bottom:3px solid #b3000c}header p{margin:0;color:#555}\
h1{font-size:1.4rem;margin:.4rem 0}h2{font-size:1.15rem;margin:1.2rem 0 .4rem}\
a{color:#0645ad}a:focus{outline:3px solid #ffbf47}\
.meta{color:#444}.disclaimer{background:#f4f4f4;border-left:4px solid #666;padding:8px 12px}\
.table{overflow-x:auto}table{border-collapse:collapse;width:100%;min-width:640px}\
caption{text-align:left;font-weight:bold;padding:4px 0}\
th,td{border:1px solid #999;padding:6px 8px;vertical-align:top;text-align:left}\
.photos{margin-top:4px}.photos img{margin:2px 4px 0 0;height:auto;border:1px solid #ccc}\
th{background:#eee}.red caption{color:#8a0000}.black caption{color:#000}\
.revoked{color:#8a0000;font-weight:bold}.rectified{color:#005a00;font-weight:bold}\
.muted{color:#555}footer{border-top:1px solid #ccc;color:#555;font-size:.9rem}\
@media print{a{color:#000;text-decoration:none}.skip,nav{display:none}table{min-width:0}\
th,td{font-size:10pt}header{border-bottom:2px solid #000}}";

pub(super) fn layout(title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">跳到正文</a>\n\
         <header><p>食品安全监督检查信息公开</p>\n<nav aria-label=\"导航\"><a href=\"/public/lists\">红黑榜</a> <a href=\"/public/announcements\">抽检信息公告</a></nav></header>\n\
         <main id=\"main\">\n{body}\n</main>\n\
         <footer><p>{licence}</p></footer>\n</body>\n</html>\n",
        title = escape(title),
        licence = escape(public::LICENCE),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn category(code: &str) -> String {
    escape(Category::parse(code).map(|c| c.label_zh()).unwrap_or(code))
}

fn result(r: Option<ResultCode>) -> &'static str {
    r.map(ResultCode::label_zh).unwrap_or("/")
}

/// The page navigation of an index page at `path` (`?page=` links to the previous and next
/// pages); nothing when everything fits on one page.
pub(super) fn pager(path: &str, page: u32, total_pages: u32) -> String {
    if total_pages <= 1 {
        return String::new();
    }
    let mut s = format!("<nav aria-label=\"分页\"><p>第 {page} 页，共 {total_pages} 页。");
    if page > 1 {
        s.push_str(&format!(" <a href=\"{path}?page={}\">上一页</a>", page - 1));
    }
    if page < total_pages {
        s.push_str(&format!(" <a href=\"{path}?page={}\">下一页</a>", page + 1));
    }
    s.push_str("</p></nav>\n");
    s
}

/// The bureau's day of an RFC 3339 instant (a published date as the bureau dates it).
pub(super) fn bureau_day(zone: crate::clock::BureauZone, at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| zone.date_at(t.with_timezone(&chrono::Utc)).to_string())
        .unwrap_or_default()
}

fn issue_line(zone: crate::clock::BureauZone, i: &PublicIssue) -> String {
    let mut s = format!(
        "<li><a href=\"/public/lists/{id}\">{no} {title}</a> <span class=\"meta\">（{start} 至 {end}，红榜 {red} 户、黑榜 {black} 户，发布于 {at}）</span>",
        id = escape(&i.id),
        no = escape(&i.issue_no),
        title = escape(&i.title),
        start = escape(&i.period_start),
        end = escape(&i.period_end),
        red = i.red_count,
        black = i.black_count,
        at = bureau_day(zone, &i.published_at),
    );
    if i.revision > 1 {
        s.push_str(&format!(
            " <span class=\"meta\">第{}次更正</span>",
            i.revision - 1
        ));
    }
    if i.superseded_by.is_some() {
        s.push_str(" <span class=\"muted\">（已被更正版本替代）</span>");
    }
    s.push_str("</li>");
    s
}

/// The index of published red/black list issues, newest first.
#[utoipa::path(get, path = "/public/lists", tag = "public", params(PageParams),
    responses((status = 200, description = "HTML page", content_type = "text/html"),
        (status = 400, description = "`invalid_paging`", body = ErrorEnvelope)))]
async fn index_page(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> AppResult<Response> {
    let (page, size, offset) = p.paging()?;
    let mut conn = state.db.acquire().await?;
    let (issues, total) = q::issues(&mut conn, offset, size).await?;
    let meta = public::PageMeta::new(total, page, size, String::new());
    let mut body = String::from("<h1>食品安全红黑榜</h1>\n");
    if issues.is_empty() {
        body.push_str("<p>尚无已发布的红黑榜。</p>\n");
    } else {
        body.push_str("<ul>\n");
        for i in &issues {
            body.push_str(&issue_line(state.config.time_zone, i));
            body.push('\n');
        }
        body.push_str("</ul>\n");
    }
    body.push_str(&pager("/public/lists", page, meta.total_pages));
    Ok(layout("食品安全红黑榜", &body))
}

fn entry_rows(entries: &[PublicEntry], list: ListType) -> String {
    let mut rows = String::new();
    for (n, e) in entries.iter().enumerate() {
        let mut after = String::new();
        if let Some(r) = &e.rectification {
            after.push_str(&format!(
                "<span class=\"rectified\">已整改（{}）</span>：{}",
                escape(&r.occurred_on),
                escape(&r.text)
            ));
        }
        if let Some(r) = &e.revocation {
            after.push_str(&format!(
                "<span class=\"revoked\">红榜已撤销（{}）</span>：{}",
                escape(&r.occurred_on),
                escape(&r.text)
            ));
        }
        if after.is_empty() {
            after.push('/');
        }
        let measures = match list {
            ListType::Black => format!("<td>{}</td>", or_slash(e.measures.as_deref())),
            ListType::Red => String::new(),
        };
        // The photos published with the entry (only those ever are): thumbnails that open the
        // EXIF-free preview, same origin.
        let mut reason = escape(&e.reason).to_string();
        if !e.photos.is_empty() {
            reason.push_str("<div class=\"photos\">");
            for (k, p) in e.photos.iter().enumerate() {
                reason.push_str(&format!(
                    "<a href=\"{}\"><img src=\"{}\" alt=\"{}现场照片{}\" width=\"96\" loading=\"lazy\"></a>",
                    escape(&p.preview_url),
                    escape(&p.thumbnail_url),
                    escape(&e.sign_name),
                    k + 1
                ));
            }
            reason.push_str("</div>");
        }
        rows.push_str(&format!(
            "<tr data-entry=\"{id}\"><td>{n}</td><td><a href=\"/public/establishments/{est}\">{sign}</a></td><td>{licensed}</td>\
             <td>{address}</td><td>{reason}</td>{measures}<td>{after}</td></tr>\n",
            id = escape(&e.id),
            n = n + 1,
            est = escape(&e.establishment_id),
            sign = escape(&e.sign_name),
            licensed = escape(&e.licensed_name),
            address = escape(&e.address),
        ));
    }
    rows
}

fn entry_table(entries: &[PublicEntry], list: ListType, total: i64) -> String {
    let measures = match list {
        ListType::Black => "<th scope=\"col\">处理措施</th>",
        ListType::Red => "",
    };
    let class = list.as_str();
    let mut s = format!(
        "<div class=\"table\"><table class=\"{class}\" id=\"{class}\">\n<caption>{label}（{total} 户）</caption>\n\
         <thead><tr><th scope=\"col\">序号</th><th scope=\"col\">牌匾名称</th><th scope=\"col\">营业执照名称</th>\
         <th scope=\"col\">经营地址</th><th scope=\"col\">上榜理由</th>{measures}<th scope=\"col\">整改后信息</th></tr></thead>\n<tbody>\n",
        label = list.label_zh(),
    );
    if entries.is_empty() {
        let cols = if list == ListType::Black { 7 } else { 6 };
        s.push_str(&format!("<tr><td colspan=\"{cols}\">本期无</td></tr>\n"));
    }
    s.push_str(&entry_rows(entries, list));
    s.push_str("</tbody></table></div>\n");
    if total > entries.len() as i64 {
        s.push_str(&format!(
            "<p class=\"muted\">仅显示前 {} 户，完整名单请下载数据。</p>\n",
            entries.len()
        ));
    }
    s
}

/// A published issue: title, period, theme, the red and black tables (牌匾名称, 营业执照名称,
/// 经营地址, 上榜理由, 处理措施, 整改后信息) and the disclaimer. 404 for a draft or unknown id.
#[utoipa::path(get, path = "/public/lists/{id}", tag = "public",
    params(("id" = String, Path, description = "Issue id")),
    responses((status = 200, description = "HTML page", content_type = "text/html"),
        (status = 404, description = "No such published issue", body = ErrorEnvelope)))]
async fn issue_page(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    let mut conn = state.db.acquire().await?;
    let issue = q::issue(&mut conn, &id)
        .await?
        .ok_or_else(|| AppError::not_found("no such published issue"))?;
    let mut tables = String::new();
    for list in [ListType::Red, ListType::Black] {
        let (entries, total) = q::entries(
            &mut conn,
            &q::EntryFilter {
                issue_id: Some(issue.id.clone()),
                list_type: Some(list),
                ..q::EntryFilter::default()
            },
            0,
            PAGE_ENTRIES,
        )
        .await?;
        tables.push_str(&format!("<h2>{}</h2>\n", list.label_zh()));
        tables.push_str(&entry_table(&entries, list, total));
    }
    let mut body = format!(
        "<h1>{no} {title}</h1>\n<p class=\"meta\">主题：{theme}　检查期间：{start} 至 {end}　{district}　发布日期：{at}</p>\n",
        no = escape(&issue.issue_no),
        title = escape(&issue.title),
        theme = escape(&issue.theme),
        start = escape(&issue.period_start),
        end = escape(&issue.period_end),
        district = escape(&issue.district),
        at = bureau_day(state.config.time_zone, &issue.published_at),
    );
    if let Some(note) = &issue.revision_note {
        body.push_str(&format!(
            "<p class=\"disclaimer\">更正说明（第{}次更正）：{}</p>\n",
            issue.revision - 1,
            escape(note)
        ));
    }
    if let Some(newer) = &issue.superseded_by {
        body.push_str(&format!(
            "<p class=\"disclaimer\">本期已更正，请以<a href=\"/public/lists/{}\">更正版本</a>为准。</p>\n",
            escape(newer)
        ));
    }
    body.push_str(&format!(
        "<p class=\"disclaimer\" id=\"disclaimer\">{}</p>\n",
        escape(public::DISCLAIMER)
    ));
    body.push_str(&tables);
    body.push_str(&format!(
        "<p class=\"muted\">数据：<a href=\"/public/v1/lists/{id}\">JSON</a>、<a href=\"/public/v1/lists/{id}/entries\">名单 JSON</a></p>\n",
        id = escape(&issue.id)
    ));
    Ok(layout(
        &format!("{} {}", issue.issue_no, issue.title),
        &body,
    ))
}

/// An establishment's public page: its published inspection results, list entries and
/// rectifications. The QR code on the printed result record opens it. 404 when nothing about
/// it is published.
#[utoipa::path(get, path = "/public/establishments/{id}", tag = "public",
    params(("id" = String, Path, description = "Establishment id")),
    responses((status = 200, description = "HTML page", content_type = "text/html"),
        (status = 404, description = "Nothing published about this establishment", body = ErrorEnvelope)))]
async fn establishment_page(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    let mut conn = state.db.acquire().await?;
    let h = q::history(&mut conn, &id, state.config.time_zone)
        .await?
        .ok_or_else(|| AppError::not_found("nothing is published about this establishment"))?;
    let e = &h.establishment;
    let mut body = format!(
        "<h1>{sign}</h1>\n<dl>\n<dt>营业执照名称</dt><dd>{licensed}</dd>\n<dt>许可证编号</dt><dd>{license}</dd>\n\
         <dt>经营地址</dt><dd>{address}</dd>\n<dt>所在街道</dt><dd>{town}</dd>\n<dt>业态</dt><dd>{category}</dd>\n\
         <dt>风险等级</dt><dd>{grade}</dd>\n</dl>\n<p class=\"disclaimer\">{disclaimer}</p>\n",
        sign = escape(&e.sign_name),
        licensed = escape(&e.licensed_name),
        license = or_slash(e.license_no.as_deref()),
        address = escape(&e.address),
        town = escape(&e.town),
        category = category(&e.category),
        grade = escape(&e.risk_grade),
        disclaimer = escape(public::DISCLAIMER),
    );
    body.push_str(
        "<h2>检查结果</h2>\n<div class=\"table\"><table id=\"results\">\n<caption>已公开的监督检查结果</caption>\n\
         <thead><tr><th scope=\"col\">检查日期</th><th scope=\"col\">类型</th><th scope=\"col\">期次</th><th scope=\"col\">检查结果</th></tr></thead>\n<tbody>\n",
    );
    if h.inspections.is_empty() {
        body.push_str("<tr><td colspan=\"4\">暂无已公开的检查结果</td></tr>\n");
    }
    for r in &h.inspections {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&r.inspected_on),
            r.kind.label_zh(),
            escape(&r.round_title),
            r.result.label_zh()
        ));
    }
    body.push_str("</tbody></table></div>\n");
    if !h.rectifications.is_empty() {
        body.push_str(
            "<h2>整改与复查</h2>\n<div class=\"table\"><table id=\"rectifications\">\n<caption>责令整改及复查情况</caption>\n\
             <thead><tr><th scope=\"col\">责令整改日期</th><th scope=\"col\">整改期限</th><th scope=\"col\">状态</th><th scope=\"col\">复查结果</th></tr></thead>\n<tbody>\n",
        );
        for r in &h.rectifications {
            let state = match r.state {
                crate::followup::FollowupState::Open => "整改中",
                crate::followup::FollowupState::RecheckAssigned => "待复查",
                crate::followup::FollowupState::Closed => "复查合格",
                crate::followup::FollowupState::Escalated => "复查仍不合格",
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{state}</td><td>{}</td></tr>\n",
                escape(&r.ordered_on),
                escape(&r.deadline),
                result(r.recheck_result)
            ));
        }
        body.push_str("</tbody></table></div>\n");
    }
    if !h.list_entries.is_empty() {
        body.push_str("<h2>红黑榜</h2>\n<ul id=\"entries\">\n");
        for e in &h.list_entries {
            let mut s = format!(
                "<li><a href=\"/public/lists/{issue}\">{no}</a> {label}：{reason}",
                issue = escape(&e.issue_id),
                no = escape(&e.issue_no),
                label = e.list_type.label_zh(),
                reason = escape(&e.reason),
            );
            if let Some(m) = &e.measures {
                s.push_str(&format!("；处理措施：{}", escape(m)));
            }
            if let Some(r) = &e.rectification {
                s.push_str(&format!(
                    " <span class=\"rectified\">已整改（{}）：{}</span>",
                    escape(&r.occurred_on),
                    escape(&r.text)
                ));
            }
            if let Some(r) = &e.revocation {
                s.push_str(&format!(
                    " <span class=\"revoked\">红榜已撤销（{}）：{}</span>",
                    escape(&r.occurred_on),
                    escape(&r.text)
                ));
            }
            s.push_str("</li>\n");
            body.push_str(&s);
        }
        body.push_str("</ul>\n");
    }
    body.push_str(&format!(
        "<p class=\"muted\">数据：<a href=\"/public/v1/establishments/{}\">JSON</a></p>\n",
        escape(&e.id)
    ));
    Ok(layout(&e.sign_name, &body))
}

/// A round's draw: seed, algorithm, pool hash and size, the conflict-list commitment, the
/// drawn establishments, and links to the records that re-run it.
#[utoipa::path(get, path = "/public/plans/{id}/draw", tag = "public",
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, description = "HTML page", content_type = "text/html"),
        (status = 404, description = "No such plan, or not drawn yet", body = ErrorEnvelope)))]
async fn draw_page(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    let (plan, record) = super::public::load(&state, &id).await?;
    let public = crate::plan::PublicDrawRecord::from_record(&record, plan.kind);
    let (what, period_label) = match plan.kind {
        crate::plan::PlanKind::Inspection => ("随机抽取结果", "检查期间"),
        crate::plan::PlanKind::Sampling => ("食品安全抽检 随机抽取结果", "抽检期间"),
    };
    let ids: Vec<String> = record.outcome.drawn.iter().map(|u| u.to_string()).collect();
    let mut conn = state.db.acquire().await?;
    let mut known: std::collections::HashMap<String, public::PublicEstablishment> =
        q::establishments(&mut conn, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
    let mut rows = String::new();
    for (n, id) in ids.iter().enumerate() {
        if let Some(e) = known.remove(id) {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                n + 1,
                escape(&e.sign_name),
                escape(&e.licensed_name),
                escape(&e.address),
                escape(&e.town),
                escape(&e.risk_grade)
            ));
        }
    }
    let id = escape(&plan.id);
    let body = format!(
        "<h1>{round} {what}</h1>\n<p class=\"meta\" id=\"plan-kind\" data-kind=\"{kind}\">主题：{theme}　{period_label}：{start} 至 {end}</p>\n\
         <h2>抽取方法</h2>\n<dl id=\"draw\">\n<dt>随机种子</dt><dd><code>{seed}</code></dd>\n<dt>算法</dt><dd><code>{algorithm}</code></dd>\n\
         <dt>候选库</dt><dd>{pool} 户，哈希 <code>{pool_hash}</code></dd>\n<dt>回避名单承诺值</dt><dd><code>{conflicts}</code></dd>\n</dl>\n\
         <p>任何人可用<a href=\"/public/v1/plans/{id}/draw/record\">抽取记录</a>和<a href=\"/public/v1/plans/{id}/draw/pool\">候选库名单</a>重新运行抽取并核对结果。</p>\n\
         <h2>抽中单位</h2>\n<div class=\"table\"><table id=\"drawn\">\n<caption>抽中单位（{count} 户，按抽取顺序）</caption>\n\
         <thead><tr><th scope=\"col\">序号</th><th scope=\"col\">牌匾名称</th><th scope=\"col\">营业执照名称</th><th scope=\"col\">经营地址</th>\
         <th scope=\"col\">所在街道</th><th scope=\"col\">风险等级</th></tr></thead>\n<tbody>\n{rows}</tbody></table></div>\n",
        round = escape(&plan.round_title),
        kind = plan.kind.as_str(),
        theme = escape(&plan.theme),
        start = escape(&plan.period_start),
        end = escape(&plan.period_end),
        seed = escape(&public.seed),
        algorithm = escape(&public.algorithm),
        pool = public.pool.len(),
        pool_hash = escape(&public.pool_hash),
        conflicts = escape(&public.conflicts_hash),
        count = ids.len(),
    );
    Ok(layout(&format!("{} {what}", plan.round_title), &body))
}

#[cfg(test)]
mod tests {
    use super::pager;

    #[test]
    fn pager_links_the_neighbouring_pages_only_when_there_are_several() {
        assert_eq!(pager("/public/lists", 1, 0), "");
        assert_eq!(pager("/public/lists", 1, 1), "");
        assert_eq!(
            pager("/public/lists", 1, 3),
            "<nav aria-label=\"分页\"><p>第 1 页，共 3 页。 <a href=\"/public/lists?page=2\">下一页</a></p></nav>\n"
        );
        assert_eq!(
            pager("/public/announcements", 2, 3),
            "<nav aria-label=\"分页\"><p>第 2 页，共 3 页。 <a href=\"/public/announcements?page=1\">上一页</a> \
             <a href=\"/public/announcements?page=3\">下一页</a></p></nav>\n"
        );
        assert_eq!(
            pager("/public/lists", 3, 3),
            "<nav aria-label=\"分页\"><p>第 3 页，共 3 页。 <a href=\"/public/lists?page=2\">上一页</a></p></nav>\n"
        );
    }
}
