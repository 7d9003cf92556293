//! The public sampling announcement (抽检信息公告): what the public may see of a published
//! announcement and of each sample in it. No field can hold a sampler, a premises' contact or
//! legal representative, an exclusion or its reason: these types have no room for them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::sampling::form::Stage;
use crate::sampling::results::Verdict;

/// Shown with every announcement (page, JSON, 说明 sheet).
pub const DISCLAIMER: &str =
    "抽检结果仅对所抽检样品负责，不代表同一生产者、经营者的其他批次或其他产品的质量状况。";

/// A published announcement's head.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicAnnouncement {
    pub id: String,
    /// 期号.
    pub announcement_no: String,
    pub title: String,
    /// First bureau day of the period, `YYYY-MM-DD` (results reported from this day).
    pub period_start: String,
    /// Last bureau day of the period, `YYYY-MM-DD`.
    pub period_end: String,
    /// The 抽样环节 the announcement is limited to; null: every stage.
    pub stage: Option<Stage>,
    /// The food category (with everything under it) the announcement is limited to; null:
    /// every category.
    pub category_code: Option<String>,
    pub category_name: Option<String>,
    /// RFC 3339.
    pub published_at: String,
    /// Rows of the 合格 table.
    pub qualified_count: i64,
    /// Samples in the 不合格 table.
    pub unqualified_count: i64,
}

/// A failed test item of an unqualified sample, as the lab reported it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicFailedItem {
    /// 不合格项目.
    pub name: String,
    /// 检验结果.
    pub value: String,
    pub unit: Option<String>,
    /// 标准值 (the limit as written, e.g. `≤0.2`).
    pub limit: Option<String>,
    /// 判定依据 (e.g. `GB 2762-2022`).
    pub standard: Option<String>,
}

/// One sample of an announcement, as published.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicSample {
    /// 序号 within its table, from 1.
    pub position: i64,
    pub verdict: Verdict,
    /// 抽样单编号.
    pub sample_no: String,
    /// 被抽样单位名称 as on the sampling form (the name on the sign).
    pub premises_name: String,
    /// 营业执照名称.
    pub premises_licensed_name: String,
    /// 被抽样单位地址.
    pub premises_address: String,
    /// 乡镇街道.
    pub town: String,
    /// 样品名称.
    pub sample_name: String,
    /// 商标 ("/" when none).
    pub brand: String,
    /// 规格型号.
    pub specification: String,
    /// 生产日期/批号.
    pub production_date_or_batch: String,
    /// 标称生产企业名称 ("/" when none).
    pub producer_name: String,
    /// 标称生产企业地址.
    pub producer_address: String,
    pub category_code: String,
    /// 食品分类.
    pub category_name: String,
    /// 抽样环节.
    pub stage: Stage,
    /// 检验机构.
    pub lab_name: String,
    /// 检验报告编号.
    pub report_no: String,
    /// The failed items (unqualified samples only; empty for qualified ones).
    pub failed_items: Vec<PublicFailedItem>,
}
