//! What the public may see (一公开), as types that cannot hold anything else: no field for an
//! inspector's name, badge, username or id, a phone, a contact person, a review comment, an
//! internal note or a redraw reason. `store::public` selects exactly these columns from
//! published records only; `/public/v1` and the public pages are built from these types.
//!
//! Published means: a red/black list issue in state `published` (its entries, the photos
//! attached to them, their lifecycle updates); the approved inspection results of a plan whose
//! results the section published (`plans.results_published_at`); a plan's draw.

pub mod announcement;
pub mod cache;

use serde::Serialize;
use utoipa::ToSchema;

use crate::checklist::rule::ResultCode;
pub use crate::export::rows::InspectionType;
pub use crate::lists::ListType;

/// Paging meta of every public list (after the FSA FHRS API's `meta`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PageMeta {
    /// Items matching the filters, on all pages.
    pub total_count: i64,
    /// From 1.
    pub page: u32,
    pub page_size: u32,
    pub total_pages: u32,
    /// The day this extract was made, `YYYY-MM-DD` in the bureau's zone (a day, not an
    /// instant, so unchanged data keeps its ETag).
    pub extract_date: String,
}

impl PageMeta {
    pub fn new(total_count: i64, page: u32, page_size: u32, extract_date: String) -> PageMeta {
        let size = i64::from(page_size.max(1));
        let pages = (total_count.max(0) + size - 1) / size;
        PageMeta {
            total_count,
            page,
            page_size,
            total_pages: u32::try_from(pages).unwrap_or(u32::MAX),
            extract_date,
        }
    }
}

/// Largest public page.
pub const MAX_PAGE_SIZE: u32 = 200;
/// Page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

/// `page` and `page_size` checked: page ≥ 1, 1 ≤ page_size ≤ [`MAX_PAGE_SIZE`]. The offset is
/// bounded too (a page past 100,000 rows is refused: use the exports for bulk).
pub fn paging(page: Option<u32>, page_size: Option<u32>) -> Result<(u32, u32, i64), String> {
    let page = page.unwrap_or(1);
    let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if page == 0 {
        return Err("page starts at 1".into());
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(format!("page_size must be 1 to {MAX_PAGE_SIZE}"));
    }
    let offset = i64::from(page - 1) * i64::from(size);
    if offset > 100_000 {
        return Err("pages beyond 100,000 rows are not served; use the exports".into());
    }
    Ok((page, size, offset))
}

/// A published red/black list issue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicIssue {
    pub id: String,
    /// 期号.
    pub issue_no: String,
    /// 1, then 2, 3 … for corrections.
    pub revision: i64,
    /// The issue this revision corrects.
    pub revises_id: Option<String>,
    /// What the correction changed (public).
    pub revision_note: Option<String>,
    /// Set when a later revision replaced this one.
    pub superseded_by: Option<String>,
    pub title: String,
    pub theme: String,
    pub district: String,
    /// `YYYY-MM-DD`.
    pub period_start: String,
    pub period_end: String,
    /// RFC 3339.
    pub published_at: String,
    pub red_count: i64,
    pub black_count: i64,
    /// The signed audit-log checkpoint taken when the issue was published (a transparency-log
    /// note: origin, tree size, root hash, signature), so anyone holding a later checkpoint can
    /// ask for a consistency proof.
    pub audit_checkpoint: Option<String>,
}

/// A lifecycle step published on an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PublicUpdate {
    /// `YYYY-MM-DD`.
    pub occurred_on: String,
    pub text: String,
    /// RFC 3339.
    pub published_at: String,
}

/// A photo made public with an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PublicPhoto {
    pub id: String,
    /// 1600 px JPEG without EXIF.
    pub preview_url: String,
    /// 320 px JPEG without EXIF.
    pub thumbnail_url: String,
}

/// An entry of a published issue, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicEntry {
    pub id: String,
    pub issue_id: String,
    pub issue_no: String,
    pub list_type: ListType,
    /// Order within its list, from 1.
    pub position: i64,
    pub establishment_id: String,
    /// 牌匾名称.
    pub sign_name: String,
    /// 营业执照名称.
    pub licensed_name: String,
    /// 食品经营许可证编号 (displayed at the premises by law).
    pub license_no: Option<String>,
    /// 经营地址.
    pub address: String,
    pub town: String,
    /// 业态 code.
    pub category: String,
    /// Date of the inspection the entry rests on, `YYYY-MM-DD`.
    pub inspected_on: Option<String>,
    pub result: Option<ResultCode>,
    /// 上榜理由.
    pub reason: String,
    /// 处理措施 (black entries).
    pub measures: Option<String>,
    /// WGS-84.
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub photos: Vec<PublicPhoto>,
    /// 整改后信息: the shop fixed its problems and passed a recheck.
    pub rectification: Option<PublicUpdate>,
    /// A red entry revoked because the shop later failed (visible, with date and reason).
    pub revocation: Option<PublicUpdate>,
}

/// An establishment as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PublicEstablishment {
    pub id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub license_no: Option<String>,
    pub address: String,
    pub town: String,
    pub category: String,
    /// A–D.
    pub risk_grade: String,
}

/// A published inspection result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicResult {
    pub inspection_id: String,
    pub plan_id: String,
    /// 期, e.g. 2026年第11期 随机查餐厅.
    pub round_title: String,
    pub kind: InspectionType,
    /// The day the inspection reached the server (`submitted_at`), `YYYY-MM-DD` in the
    /// bureau's zone: the server's clock, not the device's (as list entries date it).
    pub inspected_on: String,
    /// The result as approved (a reviewer's override if any, else the computed one).
    pub result: ResultCode,
    pub establishment: PublicEstablishment,
}

/// A follow-up (整改 → 复查) as the public sees it: dates and outcome only.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicRectification {
    /// 整改 ordered on, `YYYY-MM-DD`.
    pub ordered_on: String,
    /// The working-day deadline.
    pub deadline: String,
    /// `open`, `recheck_assigned`, `closed` (passed), `escalated` (failed again).
    pub state: crate::followup::FollowupState,
    /// The recheck's result, once rechecked.
    pub recheck_result: Option<ResultCode>,
}

/// An establishment's public history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicHistory {
    pub establishment: PublicEstablishment,
    /// Published results, newest first.
    pub inspections: Vec<PublicResult>,
    /// Its entries in published issues, newest first.
    pub list_entries: Vec<PublicEntry>,
    /// Rectification orders of its published inspections, newest first.
    pub rectifications: Vec<PublicRectification>,
}

/// A drawn plan in the public index.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicPlan {
    pub id: String,
    /// `inspection` (随机查餐厅 round) or `sampling` (食品安全抽检 plan).
    pub plan_kind: crate::plan::PlanKind,
    pub round_title: String,
    pub theme: String,
    pub period_start: String,
    pub period_end: String,
    /// RFC 3339 of the current draw.
    pub drawn_at: String,
    pub pool_size: i64,
    pub drawn_count: i64,
    /// When the round's results were published (RFC 3339), if they are.
    pub results_published_at: Option<String>,
    pub draw_url: String,
    pub results_url: Option<String>,
}

/// The disclaimer every public list carries (Tianjin practice; the FSA's rating disclaimer).
pub const DISCLAIMER: &str = "检查结果仅反映检查当时被检查单位的食品安全状况。";

/// The open licence of the data.
pub const LICENCE: &str = "本数据依法公开，可自由使用、转载，请注明来源。";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_bounded() {
        assert_eq!(paging(None, None), Ok((1, DEFAULT_PAGE_SIZE, 0)));
        assert_eq!(paging(Some(3), Some(20)), Ok((3, 20, 40)));
        assert!(paging(Some(0), None).is_err());
        assert!(paging(None, Some(0)).is_err());
        assert!(paging(None, Some(MAX_PAGE_SIZE + 1)).is_err());
        assert!(paging(Some(10_000), Some(200)).is_err());
    }

    #[test]
    fn total_pages_rounds_up() {
        let m = |n| PageMeta::new(n, 1, 50, String::new()).total_pages;
        assert_eq!((m(0), m(1), m(50), m(51), m(100)), (0, 1, 1, 2, 2));
    }
}
