//! The inspection as a reviewer reads it in one call, and the printable result record
//! (监督检查结果记录表) derived from it. Pure: built from domain types the store decoded.
//!
//! Two read models, on purpose: [`InspectionDetail`] is the section's own view (review history,
//! internal notes for reviewers); [`ResultRecord`] is what is posted at the premises and has no
//! field for the reviewer's comments, internal notes or the override reason, so it cannot leak
//! them (the `PublicUser` pattern).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queues::ReviewFlag;
use super::ReviewState;
use crate::checklist::rule::{Evaluation, ItemStatus, ResultCode};
use crate::checklist::TemplateContent;
use crate::followup::FollowupState;
use crate::geo::{distance_m, Crs, Location};
use crate::plan::MemberRole;

/// How many earlier inspections of the same establishment the detail lists (newest first).
pub const PREVIOUS_RESULTS_LIMIT: usize = 10;

/// The result that counts: the reviewer's override when there is one, else the computed one.
pub fn effective_result(
    computed: Option<ResultCode>,
    override_result: Option<ResultCode>,
) -> Option<ResultCode> {
    override_result.or(computed)
}

/// A point as reported or registered, with its coordinate system and the WGS-84 point used for
/// distances.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PointView {
    /// As given, in `crs`.
    pub lng: f64,
    pub lat: f64,
    pub crs: Crs,
    /// Normalised to WGS-84.
    pub wgs84_lng: f64,
    pub wgs84_lat: f64,
}

impl From<&Location> for PointView {
    fn from(l: &Location) -> Self {
        PointView {
            lng: l.raw().x(),
            lat: l.raw().y(),
            crs: l.crs(),
            wgs84_lng: l.wgs84().x(),
            wgs84_lat: l.wgs84().y(),
        }
    }
}

/// Great-circle distance between two points in metres (WGS-84), to 0.1 m; None when either is
/// missing.
pub fn distance(a: Option<&Location>, b: Option<&Location>) -> Option<f64> {
    let (a, b) = (a?, b?);
    Some((distance_m(a.wgs84(), b.wgs84()) * 10.0).round() / 10.0)
}

/// One answer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub item_code: String,
    pub status: ItemStatus,
    pub note: Option<String>,
}

/// One answered item with the checklist's wording.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnswerLine {
    /// Item number, e.g. "3.1".
    pub item_code: String,
    /// Section number and title, e.g. "3" / "制度管理"; None for an item the version lacks.
    pub section_code: Option<String>,
    pub section_title: Option<String>,
    /// The requirement as printed; None for an item the version lacks.
    pub text: Option<String>,
    /// 重点项 (printed with `*`).
    pub key: bool,
    pub status: ItemStatus,
    /// The inspector's note.
    pub note: Option<String>,
}

/// Answers with the checklist's wording, failed items first; within each group, in the
/// checklist's printed order (answers to items the version lacks last, by code).
pub fn arrange_answers(template: &TemplateContent, answers: &[StoredAnswer]) -> Vec<AnswerLine> {
    let mut position = std::collections::HashMap::new();
    let mut n = 0usize;
    for s in &template.sections {
        for item in &s.items {
            position.entry(item.code.as_str()).or_insert((n, s, item));
            n += 1;
        }
    }
    let mut lines: Vec<(bool, usize, AnswerLine)> = answers
        .iter()
        .map(|a| {
            let found = position.get(a.item_code.as_str());
            let line = AnswerLine {
                item_code: a.item_code.clone(),
                section_code: found.map(|(_, s, _)| s.code.clone()),
                section_title: found.map(|(_, s, _)| s.title.clone()),
                text: found.map(|(_, _, i)| i.text.clone()),
                key: found.is_some_and(|(_, _, i)| i.key),
                status: a.status,
                note: a.note.clone(),
            };
            (
                a.status != ItemStatus::Fail,
                found.map(|(p, _, _)| *p).unwrap_or(usize::MAX),
                line,
            )
        })
        .collect();
    lines.sort_by(|a, b| (a.0, a.1, &a.2.item_code).cmp(&(b.0, b.1, &b.2.item_code)));
    lines.into_iter().map(|(_, _, l)| l).collect()
}

/// A person on the inspection's team, as the submission recorded them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamEntry {
    /// The account, for officers; None for participants without one.
    #[serde(default)]
    pub user_id: Option<String>,
    pub name: String,
    /// 执法证号.
    #[serde(default)]
    pub badge_no: Option<String>,
    #[serde(default = "officer")]
    pub role: MemberRole,
}

fn officer() -> MemberRole {
    MemberRole::Officer
}

/// A photo with its links and what the server read from it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PhotoLine {
    pub id: String,
    /// The item the photo documents, if any.
    pub item_code: Option<String>,
    /// Device capture time (RFC 3339).
    pub taken_at: String,
    pub processing_status: crate::photo::ProcessingStatus,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// EXIF capture time (RFC 3339), when the file has one.
    pub exif_taken_at: Option<String>,
    /// EXIF GPS, WGS-84.
    pub exif_lng: Option<f64>,
    pub exif_lat: Option<f64>,
    /// Geofence and time-window flags (empty until processed).
    pub flags: Vec<ReviewFlag>,
    /// `GET` links of the existing photo routes.
    pub thumbnail_url: String,
    pub preview_url: String,
    pub original_url: String,
}

/// One item comment of a return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemComment {
    pub item_code: String,
    pub comment: String,
}

/// A review decision as stored: one row of the history, never updated.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReview {
    pub id: String,
    pub round: i64,
    pub decision: ReviewState,
    pub comment: Option<String>,
    pub item_comments: Vec<ItemComment>,
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    pub internal_note: Option<String>,
    pub reviewer_id: String,
    pub reviewer_name: String,
    pub decided_at: String,
}

/// One decision of the review history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReviewLine {
    pub id: String,
    /// Submission round decided (1 = first submission).
    pub round: i64,
    /// `approved`, `returned` or `rejected`.
    pub decision: ReviewState,
    /// General comment (return) or reason (reject).
    pub comment: Option<String>,
    pub item_comments: Vec<ItemComment>,
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    /// The section's own note: only for reviewers and admins (omitted for inspectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_note: Option<String>,
    pub reviewer_id: String,
    pub reviewer_name: String,
    /// RFC 3339.
    pub decided_at: String,
}

/// Who reads the detail: inspectors never see internal notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Office,
    Inspector,
}

/// The review history for a reader, oldest first.
pub fn review_lines(reviews: Vec<StoredReview>, reader: Reader) -> Vec<ReviewLine> {
    reviews
        .into_iter()
        .map(|r| ReviewLine {
            id: r.id,
            round: r.round,
            decision: r.decision,
            comment: r.comment,
            item_comments: r.item_comments,
            override_result: r.override_result,
            override_reason: r.override_reason,
            internal_note: match reader {
                Reader::Office => r.internal_note,
                Reader::Inspector => None,
            },
            reviewer_id: r.reviewer_id,
            reviewer_name: r.reviewer_name,
            decided_at: r.decided_at,
        })
        .collect()
}

/// An earlier inspection of the same establishment.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PreviousResult {
    pub inspection_id: String,
    pub task_id: String,
    pub plan_id: String,
    pub round_title: String,
    /// RFC 3339.
    pub submitted_at: Option<String>,
    pub review_state: Option<ReviewState>,
    pub computed_result: Option<ResultCode>,
    pub override_result: Option<ResultCode>,
    pub effective_result: Option<ResultCode>,
}

/// The establishment as the detail and the record show it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EstablishmentView {
    pub id: String,
    /// 牌匾名称.
    pub sign_name: String,
    /// 营业执照名称.
    pub licensed_name: String,
    /// 食品经营许可证编号.
    pub license_no: Option<String>,
    pub address: String,
    pub town: String,
    /// The registered location, if any.
    pub location: Option<PointView>,
}

/// The 整改 order of an approved 基本符合 / 不符合 inspection, if one was opened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FollowupBrief {
    pub id: String,
    pub state: FollowupState,
    /// `YYYY-MM-DD` (bureau's local date).
    pub ordered_on: String,
    /// 整改期限, `YYYY-MM-DD`.
    pub deadline: String,
    pub period_working_days: i64,
    /// 整改要求.
    pub order_text: Option<String>,
    /// 立即停止经营.
    pub stop_operating: bool,
    /// 立案.
    pub case_opened: bool,
}

/// The inspection in one call.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InspectionDetail {
    pub id: String,
    pub task_id: String,
    pub plan_id: String,
    pub round_title: String,
    /// The checklist version the inspection used.
    pub template_id: String,
    pub template_version: i64,
    /// The checklist's title as printed.
    pub template_title: Option<String>,
    /// The task's due date, `YYYY-MM-DD`.
    pub due_date: String,
    /// Device times (RFC 3339).
    pub started_at: String,
    pub finished_at: Option<String>,
    pub submitted: bool,
    pub submitted_at: Option<String>,
    /// None while the team works on it.
    pub review_state: Option<ReviewState>,
    /// Submissions so far (1 = first).
    pub review_round: i64,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<String>,
    /// What the team declared on the device.
    pub declared_result: Option<ResultCode>,
    /// The server's result at submission.
    pub computed_result: Option<ResultCode>,
    /// The counts behind `computed_result`, with the failed items.
    pub evaluation: Option<Evaluation>,
    /// The result rule's edition (`pass_rate_2016`, `general_fail_count`).
    pub rule_edition: Option<String>,
    /// A reviewer's override, with its recorded reason.
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    /// `override_result`, else `computed_result`.
    pub effective_result: Option<ResultCode>,
    /// The inspection's own flags (geofence, `declared_result_differs`).
    pub flags: Vec<ReviewFlag>,
    /// Answers with item text and key flag, failed items first.
    pub answers: Vec<AnswerLine>,
    pub photos: Vec<PhotoLine>,
    /// Where the app reported the inspection.
    pub point: Option<PointView>,
    /// GPS accuracy the app reported, metres.
    pub gps_accuracy_m: Option<f64>,
    pub establishment: EstablishmentView,
    /// From `point` to the establishment's registered location, metres (WGS-84).
    pub distance_m: Option<f64>,
    pub team: Vec<TeamEntry>,
    /// 被检查单位: who signed for the business, and whether they signed or refused.
    pub representative_name: Option<String>,
    pub representative_signed: bool,
    pub representative_refused: bool,
    /// 被检查单位意见.
    pub business_opinion: Option<String>,
    pub other_findings: Option<String>,
    /// Earlier inspections of the establishment, newest first (at most 10).
    pub previous_results: Vec<PreviousResult>,
    /// The review history, oldest first.
    pub reviews: Vec<ReviewLine>,
    pub followup: Option<FollowupBrief>,
}

/// The business's signature on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Signed,
    Refused,
    Missing,
}

/// What the printed result record shows, and nothing else: no review comments, internal notes
/// or override reason (there is no field for them).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    pub inspection_id: String,
    pub establishment: EstablishmentView,
    /// 检查日期, `YYYY-MM-DD` in the bureau's zone.
    pub date: String,
    pub round_title: String,
    pub template_title: Option<String>,
    /// (code, text, key, status), failed first as in the detail.
    pub items: Vec<AnswerLine>,
    pub computed_result: Option<ResultCode>,
    pub override_result: Option<ResultCode>,
    pub effective_result: Option<ResultCode>,
    pub team: Vec<TeamEntry>,
    pub representative_name: Option<String>,
    pub signature: Signature,
    pub business_opinion: Option<String>,
    /// 整改期限, when a follow-up exists.
    pub rectification_deadline: Option<String>,
    pub stop_operating: bool,
    pub case_opened: bool,
    /// The public page the QR code points to.
    pub public_url: String,
}

impl ResultRecord {
    /// The record of an inspection; `date` is its inspection day in the bureau's zone.
    pub fn from_detail(d: &InspectionDetail, date: String, public_base_url: &str) -> ResultRecord {
        // Notes are the inspector's working notes, not printed either.
        let items = d
            .answers
            .iter()
            .cloned()
            .map(|mut a| {
                a.note = None;
                a
            })
            .collect();
        ResultRecord {
            inspection_id: d.id.clone(),
            establishment: d.establishment.clone(),
            date,
            round_title: d.round_title.clone(),
            template_title: d.template_title.clone(),
            items,
            computed_result: d.computed_result,
            override_result: d.override_result,
            effective_result: d.effective_result,
            team: d.team.clone(),
            representative_name: d.representative_name.clone(),
            signature: if d.representative_refused {
                Signature::Refused
            } else if d.representative_signed {
                Signature::Signed
            } else {
                Signature::Missing
            },
            business_opinion: d.business_opinion.clone(),
            rectification_deadline: d.followup.as_ref().map(|f| f.deadline.clone()),
            stop_operating: d.followup.as_ref().is_some_and(|f| f.stop_operating),
            case_opened: d.followup.as_ref().is_some_and(|f| f.case_opened),
            public_url: public_establishment_url(public_base_url, &d.establishment.id),
        }
    }
}

/// `{public_base_url}/public/establishments/{id}`, with one slash between: the establishment's
/// public page (its published results and list entries), what the QR code opens.
pub fn public_establishment_url(base: &str, id: &str) -> String {
    format!("{}/public/establishments/{id}", base.trim_end_matches('/'))
}

/// The inspection's own row, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionCore {
    pub id: String,
    pub task_id: String,
    pub plan_id: String,
    pub round_title: String,
    pub template_id: String,
    pub template_version: i64,
    pub due_date: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub submitted: bool,
    pub submitted_at: Option<i64>,
    pub review_state: Option<ReviewState>,
    pub review_round: i64,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub declared_result: Option<ResultCode>,
    pub computed_result: Option<ResultCode>,
    pub evaluation: Option<Evaluation>,
    pub override_result: Option<ResultCode>,
    pub override_reason: Option<String>,
    pub flags: Vec<ReviewFlag>,
    pub point: Option<Location>,
    pub gps_accuracy_m: Option<f64>,
    pub team: Vec<TeamEntry>,
    pub representative_name: Option<String>,
    pub representative_signed: bool,
    pub representative_refused: bool,
    pub business_opinion: Option<String>,
    pub other_findings: Option<String>,
    pub establishment_id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub license_no: Option<String>,
    pub address: String,
    pub town: String,
    pub establishment_location: Option<Location>,
}

/// A photo row, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPhoto {
    pub id: String,
    pub item_code: Option<String>,
    pub taken_at: i64,
    pub processing_status: crate::photo::ProcessingStatus,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub exif_taken_at: Option<i64>,
    pub exif_lng: Option<f64>,
    pub exif_lat: Option<f64>,
    pub flags: Vec<ReviewFlag>,
}

/// An earlier inspection of the establishment, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPrevious {
    pub inspection_id: String,
    pub task_id: String,
    pub plan_id: String,
    pub round_title: String,
    pub submitted_at: Option<i64>,
    pub review_state: Option<ReviewState>,
    pub computed_result: Option<ResultCode>,
    pub override_result: Option<ResultCode>,
}

/// Everything the detail is built from, as the store loaded it (a bounded number of queries).
#[derive(Debug, Clone, PartialEq)]
pub struct DetailParts {
    pub core: InspectionCore,
    /// The checklist version the inspection used (None if it vanished).
    pub template: Option<TemplateContent>,
    pub answers: Vec<StoredAnswer>,
    pub photos: Vec<StoredPhoto>,
    pub previous: Vec<StoredPrevious>,
    pub reviews: Vec<StoredReview>,
    pub followup: Option<FollowupBrief>,
}

use crate::clock::rfc3339 as time;

impl InspectionDetail {
    /// The detail for a reader (inspectors get no internal notes).
    pub fn build(parts: DetailParts, reader: Reader) -> InspectionDetail {
        let c = parts.core;
        let empty = TemplateContent {
            title: String::new(),
            sections: Vec::new(),
            rule: Default::default(),
        };
        let template = parts.template.as_ref().unwrap_or(&empty);
        let answers = arrange_answers(template, &parts.answers);
        let photos = parts
            .photos
            .into_iter()
            .map(|p| PhotoLine {
                thumbnail_url: format!("/api/v1/photos/{}/thumbnail", p.id),
                preview_url: format!("/api/v1/photos/{}/preview", p.id),
                original_url: format!("/api/v1/photos/{}/original", p.id),
                id: p.id,
                item_code: p.item_code,
                taken_at: time(p.taken_at),
                processing_status: p.processing_status,
                width: p.width,
                height: p.height,
                exif_taken_at: p.exif_taken_at.map(time),
                exif_lng: p.exif_lng,
                exif_lat: p.exif_lat,
                flags: p.flags,
            })
            .collect();
        let previous_results = parts
            .previous
            .into_iter()
            .take(PREVIOUS_RESULTS_LIMIT)
            .map(|p| PreviousResult {
                effective_result: effective_result(p.computed_result, p.override_result),
                inspection_id: p.inspection_id,
                task_id: p.task_id,
                plan_id: p.plan_id,
                round_title: p.round_title,
                submitted_at: p.submitted_at.map(time),
                review_state: p.review_state,
                computed_result: p.computed_result,
                override_result: p.override_result,
            })
            .collect();
        InspectionDetail {
            distance_m: distance(c.point.as_ref(), c.establishment_location.as_ref()),
            point: c.point.as_ref().map(PointView::from),
            establishment: EstablishmentView {
                id: c.establishment_id,
                sign_name: c.sign_name,
                licensed_name: c.licensed_name,
                license_no: c.license_no,
                address: c.address,
                town: c.town,
                location: c.establishment_location.as_ref().map(PointView::from),
            },
            effective_result: effective_result(c.computed_result, c.override_result),
            rule_edition: parts
                .template
                .as_ref()
                .map(|t| t.rule.version_label().to_string()),
            template_title: parts.template.map(|t| t.title),
            id: c.id,
            task_id: c.task_id,
            plan_id: c.plan_id,
            round_title: c.round_title,
            template_id: c.template_id,
            template_version: c.template_version,
            due_date: c.due_date,
            started_at: time(c.started_at),
            finished_at: c.finished_at.map(time),
            submitted: c.submitted,
            submitted_at: c.submitted_at.map(time),
            review_state: c.review_state,
            review_round: c.review_round,
            reviewed_by: c.reviewed_by,
            reviewed_at: c.reviewed_at.map(time),
            declared_result: c.declared_result,
            computed_result: c.computed_result,
            evaluation: c.evaluation,
            override_result: c.override_result,
            override_reason: c.override_reason,
            flags: c.flags,
            answers,
            photos,
            gps_accuracy_m: c.gps_accuracy_m,
            team: c.team,
            representative_name: c.representative_name,
            representative_signed: c.representative_signed,
            representative_refused: c.representative_refused,
            business_opinion: c.business_opinion,
            other_findings: c.other_findings,
            previous_results,
            reviews: review_lines(parts.reviews, reader),
            followup: parts.followup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklist::catering_2016;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = ItemStatus> {
        prop_oneof![
            Just(ItemStatus::Pass),
            Just(ItemStatus::Fail),
            Just(ItemStatus::NotApplicable)
        ]
    }

    proptest! {
        /// Every answer appears once; failed ones come first; within each group the
        /// checklist's order holds; unknown items come last in their group.
        #[test]
        fn failed_first_then_checklist_order(
            picks in proptest::collection::btree_map(0usize..30, status(), 0..30),
            extra in proptest::collection::vec(("9[0-9]\\.[0-9]", status()), 0..3),
        ) {
            let t = catering_2016();
            let codes: Vec<String> = t.items().map(|i| i.code.clone()).collect();
            let mut answers: Vec<StoredAnswer> = picks
                .iter()
                .rev()
                .map(|(i, s)| StoredAnswer { item_code: codes[*i].clone(), status: *s, note: None })
                .collect();
            let mut seen = std::collections::HashSet::new();
            for (c, s) in extra {
                if seen.insert(c.clone()) {
                    answers.push(StoredAnswer { item_code: c, status: s, note: None });
                }
            }
            let lines = arrange_answers(&t, &answers);
            prop_assert_eq!(lines.len(), answers.len());
            let first_other = lines.iter().position(|l| l.status != ItemStatus::Fail).unwrap_or(lines.len());
            prop_assert!(lines[first_other..].iter().all(|l| l.status != ItemStatus::Fail));
            for group in [&lines[..first_other], &lines[first_other..]] {
                let pos: Vec<usize> = group
                    .iter()
                    .map(|l| codes.iter().position(|c| *c == l.item_code).unwrap_or(usize::MAX))
                    .collect();
                prop_assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{:?}", pos);
            }
            for l in &lines {
                let item = t.item(&l.item_code);
                prop_assert_eq!(l.text.as_deref(), item.map(|i| i.text.as_str()));
                prop_assert_eq!(l.key, item.is_some_and(|i| i.key));
            }
        }

        #[test]
        fn override_wins(c in proptest::option::of(0u8..3), o in proptest::option::of(0u8..3)) {
            let r = |n: u8| [ResultCode::Compliant, ResultCode::BasicallyCompliant, ResultCode::NonCompliant][n as usize];
            let (c, o) = (c.map(r), o.map(r));
            prop_assert_eq!(effective_result(c, o), if o.is_some() { o } else { c });
        }
    }

    #[test]
    fn inspectors_never_get_internal_notes() {
        let review = StoredReview {
            id: "r".into(),
            round: 1,
            decision: ReviewState::Returned,
            comment: Some("fix 3.1".into()),
            item_comments: vec![],
            override_result: None,
            override_reason: None,
            internal_note: Some("secret".into()),
            reviewer_id: "u".into(),
            reviewer_name: "n".into(),
            decided_at: "t".into(),
        };
        assert_eq!(
            review_lines(vec![review.clone()], Reader::Inspector)[0].internal_note,
            None
        );
        assert_eq!(
            review_lines(vec![review], Reader::Office)[0]
                .internal_note
                .as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn distance_and_urls() {
        let a = Location::new(117.29, 39.71, Crs::Gcj02).unwrap();
        let b = Location::new(117.29, 39.71, Crs::Gcj02).unwrap();
        assert_eq!(distance(Some(&a), Some(&b)), Some(0.0));
        assert_eq!(distance(Some(&a), None), None);
        let c = Location::new(a.wgs84().x(), a.wgs84().y(), Crs::Wgs84).unwrap();
        // The same place in two systems is the same place.
        assert!(distance(Some(&a), Some(&c)).unwrap() < 1.0);
        assert_eq!(
            public_establishment_url("https://x.gov.cn/", "abc"),
            "https://x.gov.cn/public/establishments/abc"
        );
    }
}
