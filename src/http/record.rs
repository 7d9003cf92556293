//! `GET /api/v1/inspections/{id}/record`: the printable result record (监督检查结果记录表) of
//! an approved inspection, server-rendered HTML for A4, posted at the premises. Built from
//! [`ResultRecord`], which has no field for review comments, internal notes or the override
//! reason; every text is HTML-escaped.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, Authorized, Office};
use super::AppState;
use crate::auth::Role;
use crate::checklist::rule::{ItemStatus, ResultCode};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::review::detail::{ResultRecord, Signature};
use crate::review::ReviewState;

const TEMPLATE: &str = include_str!("../../templates/record.html");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_record))
}

/// Text as HTML: the five special characters escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A missing value is written "/" on the paper form, never left blank.
pub(super) fn or_slash(v: Option<&str>) -> String {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => escape(s),
        None => "/".into(),
    }
}

/// The QR code of `url` as inline SVG (no XML declaration), or nothing if it cannot be made.
fn qr_svg(url: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(url.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => String::new(),
    }
}

fn measures(r: &ResultRecord) -> String {
    let mut out: Vec<&str> = Vec::new();
    match r.effective_result {
        Some(ResultCode::Compliant) => out.push("通过"),
        Some(ResultCode::BasicallyCompliant) => out.push("书面限期整改"),
        Some(ResultCode::NonCompliant) => out.push("限期整改"),
        None => {}
    }
    if r.stop_operating {
        out.push("立即停止经营");
    }
    if r.case_opened {
        out.push("立案调查");
    }
    if out.is_empty() {
        "/".into()
    } else {
        out.join("；")
    }
}

/// The record as HTML.
pub fn render(r: &ResultRecord) -> String {
    let mut rows = String::new();
    for item in &r.items {
        let (status, class) = match item.status {
            ItemStatus::Pass => ("是", "pass"),
            ItemStatus::Fail => ("否 ✗", "failed"),
            ItemStatus::NotApplicable => ("合理缺项", "na"),
        };
        let code = if item.key {
            format!("<span class=\"key\">*{}</span>", escape(&item.item_code))
        } else {
            escape(&item.item_code)
        };
        rows.push_str(&format!(
            "    <tr class=\"{class}\" data-item=\"{}\"><td class=\"code\">{code}</td><td>{}</td><td>{}</td><td class=\"status\">{status}</td></tr>\n",
            escape(&item.item_code),
            or_slash(item.section_title.as_deref()),
            or_slash(item.text.as_deref()),
        ));
    }
    let failed = r
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Fail)
        .count();
    let result_boxes = [
        ResultCode::Compliant,
        ResultCode::BasicallyCompliant,
        ResultCode::NonCompliant,
    ]
    .iter()
    .map(|c| {
        let mark = if r.effective_result == Some(*c) {
            "☑"
        } else {
            "☐"
        };
        format!("<span class=\"box\">{mark}{}</span>", c.label_zh())
    })
    .collect::<String>();
    // The override is printed with the computed result beside it; its reason is the section's
    // own and is not on the record.
    let override_row = match (r.override_result, r.computed_result) {
        (Some(o), computed) => format!(
            "  <tr><th>复核结果</th><td id=\"override\">复核认定：{}（系统判定：{}）</td></tr>",
            o.label_zh(),
            computed.map(|c| c.label_zh()).unwrap_or("/")
        ),
        (None, _) => String::new(),
    };
    let team = if r.team.is_empty() {
        "/".to_string()
    } else {
        r.team
            .iter()
            .map(|m| {
                format!(
                    "<span class=\"member\">{}（{}）</span>",
                    escape(&m.name),
                    or_slash(m.badge_no.as_deref())
                )
            })
            .collect::<Vec<_>>()
            .join("　")
    };
    let signature = match r.signature {
        Signature::Signed => format!("已签字：{}", or_slash(r.representative_name.as_deref())),
        Signature::Refused => "拒绝签字（检查人员已记录）".to_string(),
        Signature::Missing => "/".to_string(),
    };
    let e = &r.establishment;
    let fills: [(&str, String); 20] = [
        ("sign_name", escape(&e.sign_name)),
        ("licensed_name", or_slash(Some(&e.licensed_name))),
        ("license_no", or_slash(e.license_no.as_deref())),
        ("address", or_slash(Some(&e.address))),
        ("date", escape(&r.date)),
        ("round_title", escape(&r.round_title)),
        ("template_title", or_slash(r.template_title.as_deref())),
        ("item_rows", rows),
        ("checked_count", r.items.len().to_string()),
        ("failed_count", failed.to_string()),
        ("result_boxes", result_boxes),
        ("override_row", override_row),
        ("measures", measures(r)),
        ("deadline", or_slash(r.rectification_deadline.as_deref())),
        ("team", team),
        ("opinion", or_slash(r.business_opinion.as_deref())),
        ("signature", signature),
        ("qr_svg", qr_svg(&r.public_url)),
        ("public_url", escape(&r.public_url)),
        ("inspection_id", escape(&r.inspection_id)),
    ];
    // One pass over the template: filled values are never scanned for placeholders again.
    let mut out = String::with_capacity(TEMPLATE.len() + 8192);
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = &after[..end];
                if let Some((_, v)) = fills.iter().find(|(k, _)| *k == key) {
                    out.push_str(v);
                }
                rest = &after[end + 2..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The printable result record (监督检查结果记录表) of an approved inspection: HTML with an A4
/// print stylesheet, in Chinese: the establishment (牌匾名称, licence number, address), the date,
/// the items with their result (failed first, key items marked `*`), the result (符合 / 基本符合 /
/// 不符合, and the override beside the computed result), the team's names and badges, the
/// business's opinion and signature state, the 整改期限 when a follow-up exists, and a QR code
/// of the establishment's public page `{public_base_url}/public/establishments/{id}`. No review comments, internal
/// notes or override reason appear on it.
#[utoipa::path(get, path = "/api/v1/inspections/{id}/record", tag = "review", security(("bearer" = [])),
    params(("id" = String, Path, description = "Inspection id")),
    responses((status = 200, description = "The record as HTML", content_type = "text/html", body = String),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "`forbidden`: not an admin or reviewer", body = ErrorEnvelope),
        (status = 404, description = "`not_found`: no such inspection", body = ErrorEnvelope),
        (status = 409, description = "`not_approved`: the inspection is not approved", body = ErrorEnvelope)))]
async fn get_record(
    State(state): State<AppState>,
    user: Authorized<Office>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    user.require(&[Role::Admin, Role::Reviewer])?;
    let detail = super::inspections::visible_detail(&state, &user, &id).await?;
    if detail.review_state != Some(ReviewState::Approved) {
        return Err(AppError::conflict(
            "not_approved",
            "the result record is printed only for approved inspections",
        ));
    }
    let started = chrono::DateTime::parse_from_rfc3339(&detail.started_at)
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    let date = state
        .config
        .time_zone
        .date_at(started)
        .format("%Y-%m-%d")
        .to_string();
    let record = ResultRecord::from_detail(&detail, date, &state.config.public_base_url);
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Defence in depth beside the escaping: no script runs, nothing loads.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        render(&record),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_the_special_characters() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn qr_is_inline_svg() {
        let s = qr_svg("https://example.gov.cn/public/establishments/abc");
        assert!(s.starts_with("<svg"), "{s}");
        assert!(!s.contains("<?xml"));
    }
}
