//! The rows an export writes. Each type holds only what is public about a published list issue
//! or an establishment's history: there is no field for a user, an inspector, a team, a phone,
//! a contact, an internal comment or reason, so a writer cannot leak one whatever it is given.
//! The read side fills these from the public columns of `list_*` and `inspections`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use crate::checklist::rule::ResultCode;

/// Which list an entry is on (the list module's type; `label_zh` names the sheet).
pub use crate::lists::ListType;

/// Whether an inspection was the round's routine one or a recheck after a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InspectionType {
    Routine,
    Recheck,
}

impl InspectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            InspectionType::Routine => "routine",
            InspectionType::Recheck => "recheck",
        }
    }

    pub fn parse(s: &str) -> Option<InspectionType> {
        [InspectionType::Routine, InspectionType::Recheck]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    /// From a task's stored `kind` (`inspection`: a drawn task; `recheck`: 复查).
    pub fn of_task_kind(kind: &str) -> Option<InspectionType> {
        match kind {
            "inspection" => Some(InspectionType::Routine),
            "recheck" => Some(InspectionType::Recheck),
            _ => None,
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            InspectionType::Routine => "日常检查",
            InspectionType::Recheck => "复查",
        }
    }
}

/// A published list issue (期), as the 说明 sheet and the JSON `meta` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportIssue {
    /// 期号
    pub issue_no: String,
    pub revision: u32,
    /// What a correction changed (revisions after the first).
    pub revision_note: Option<String>,
    pub title: String,
    pub theme: String,
    pub district: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub published_on: NaiveDate,
    /// The criteria in words, for the 说明 sheet.
    pub criteria: String,
}

/// A dated public note on an entry: 整改后信息 or a red entry's revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedNote {
    pub text: String,
    pub on: NaiveDate,
}

/// One entry of a published list, with its public lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportEntry {
    pub list_type: ListType,
    pub position: u32,
    pub establishment_id: String,
    /// 牌匾名称
    pub sign_name: String,
    /// 营业执照名称
    pub licensed_name: String,
    pub license_no: Option<String>,
    /// 经营地址
    pub address: String,
    pub town: String,
    pub category: String,
    pub inspected_on: Option<NaiveDate>,
    pub result: Option<ResultCode>,
    /// 上榜理由
    pub reason: String,
    /// 处理措施 (black entries)
    pub measures: Option<String>,
    /// 整改后信息
    pub rectification: Option<DatedNote>,
    pub revocation: Option<DatedNote>,
    /// WGS-84 degrees.
    pub lng: Option<f64>,
    pub lat: Option<f64>,
}

/// A checklist item that failed, by its code on the national table and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedItem {
    pub code: String,
    pub text: String,
}

/// One approved inspection of an establishment, as its public history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInspection {
    pub establishment_id: String,
    pub date: NaiveDate,
    pub result: ResultCode,
    #[serde(rename = "type")]
    pub kind: InspectionType,
    pub failed_items: Vec<FailedItem>,
}

/// The Chinese label of an optional result (empty when none).
pub fn result_label(r: Option<ResultCode>) -> &'static str {
    r.map_or("", ResultCode::label_zh)
}

/// A point if both coordinates are present, finite and inside WGS-84's range; anything else
/// is no point (never a guessed one).
pub fn wgs84_point(lng: Option<f64>, lat: Option<f64>) -> Option<(f64, f64)> {
    match (lng, lat) {
        (Some(x), Some(y))
            if x.is_finite()
                && y.is_finite()
                && (-180.0..=180.0).contains(&x)
                && (-90.0..=90.0).contains(&y) =>
        {
            Some((x, y))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for &t in ListType::ALL {
            assert_eq!(ListType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for t in [InspectionType::Routine, InspectionType::Recheck] {
            assert_eq!(InspectionType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(ListType::parse("grey"), None);
    }

    #[test]
    fn points_are_range_checked() {
        assert_eq!(wgs84_point(Some(117.3), Some(39.7)), Some((117.3, 39.7)));
        assert_eq!(wgs84_point(Some(117.3), None), None);
        assert_eq!(wgs84_point(Some(181.0), Some(39.7)), None);
        assert_eq!(wgs84_point(Some(117.3), Some(-90.5)), None);
        assert_eq!(wgs84_point(Some(f64::NAN), Some(1.0)), None);
    }
}
