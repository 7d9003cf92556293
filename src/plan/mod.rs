//! 随机查餐厅 rounds: the plan a draw runs on, and the auditable draw itself ([`draw`]).
//! Pure logic, no I/O.

pub mod draw;
pub mod reassign;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::establishment::{Category, FieldError, RiskGrade};

/// Which establishments are candidates. Empty lists mean "any". Only `open` establishments are
/// ever candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolFilter {
    /// 业态 codes (see `Category`); empty = all.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// 街道/乡镇 names; empty = all.
    #[serde(default)]
    pub towns: Vec<String>,
    /// Risk grades; empty = all.
    #[serde(default)]
    pub risk_grades: Vec<RiskGrade>,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSpec {
    pub name: String,
    pub round_title: String,
    pub theme: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub due_date: NaiveDate,
    pub template_id: String,
    pub template_version: i64,
    pub filter: PoolFilter,
    pub quotas: draw::Quotas,
    pub exclude_inspected_within_days: Option<u32>,
    pub inspector_ids: Vec<Uuid>,
    pub team_size: u32,
}

/// The plan as it arrives (types already checked by serde; rules checked by [`RawPlan::validate`]).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RawPlan {
    /// Internal name, e.g. `2024-03 宝坻 随机查餐厅`.
    pub name: String,
    /// 期 title, e.g. `2024年3·15 随机查餐厅 第3期`.
    pub round_title: String,
    /// The round's theme, e.g. `餐饮具清洗消毒`.
    pub theme: String,
    /// First day of the inspection period, `YYYY-MM-DD`.
    pub period_start: String,
    /// Last day of the period, `YYYY-MM-DD`.
    pub period_end: String,
    /// Tasks are due by this day, `YYYY-MM-DD` (on or after period_start).
    pub due_date: String,
    /// Checklist template id; the version must be published.
    pub template_id: String,
    pub template_version: i64,
    #[serde(default)]
    pub filter: PoolFilter,
    /// How many to draw per risk grade: `{"explicit": {"A": 2, "D": 5}}`, or a total split by
    /// per-establishment weights so that higher grades are drawn more often:
    /// `{"weighted": {"total": 50, "weights": {"A": 1, "B": 2, "C": 3, "D": 4}}}`.
    pub quotas: draw::Quotas,
    /// Leave out establishments inspected (a task submitted) within this many days, and those
    /// with an open task in another round.
    pub exclude_inspected_within_days: Option<u32>,
    /// The inspector pool (user ids of active inspectors).
    pub inspector_ids: Vec<Uuid>,
    /// Inspectors per team, at least 2 (the law requires two officers).
    pub team_size: u32,
}

fn text(field: &str, v: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = v.trim();
    if v.is_empty() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("{field} is longer than {max} characters"),
        ));
    }
    v.to_string()
}

fn date(field: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_date",
                format!("{field} must be a date YYYY-MM-DD"),
            ));
            None
        }
    }
}

/// Upper bound on one round (a district has a few thousand establishments).
pub const MAX_DRAW: u32 = 10_000;

impl RawPlan {
    pub fn validate(self) -> Result<PlanSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = text("name", &self.name, 200, &mut errors);
        let round_title = text("round_title", &self.round_title, 200, &mut errors);
        let theme = text("theme", &self.theme, 200, &mut errors);
        let start = date("period_start", &self.period_start, &mut errors);
        let end = date("period_end", &self.period_end, &mut errors);
        let due = date("due_date", &self.due_date, &mut errors);
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                errors.push(FieldError::new(
                    "period_end",
                    "invalid_period",
                    "period_end is before period_start",
                ));
            }
        }
        if let (Some(s), Some(d)) = (start, due) {
            if d < s {
                errors.push(FieldError::new(
                    "due_date",
                    "invalid_period",
                    "due_date is before period_start",
                ));
            }
        }
        if self.team_size < draw::MIN_TEAM_SIZE || self.team_size > 10 {
            errors.push(FieldError::new(
                "team_size",
                "invalid_team_size",
                "team_size must be 2 to 10: inspections are done by at least two officers",
            ));
        }
        let mut ids = self.inspector_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.inspector_ids.len() {
            errors.push(FieldError::new(
                "inspector_ids",
                "duplicate_inspector",
                "an inspector is listed twice",
            ));
        }
        if (self.inspector_ids.len() as u32) < self.team_size {
            errors.push(FieldError::new(
                "inspector_ids",
                "not_enough_inspectors",
                format!(
                    "the pool has {} inspectors; a team needs {}",
                    self.inspector_ids.len(),
                    self.team_size
                ),
            ));
        }
        let total: u64 = match &self.quotas {
            draw::Quotas::Explicit(q) => q.values().map(|v| u64::from(*v)).sum(),
            draw::Quotas::Weighted { total, weights } => {
                if weights.values().all(|w| *w == 0) {
                    errors.push(FieldError::new(
                        "quotas",
                        "invalid_quotas",
                        "at least one weight must be positive",
                    ));
                }
                u64::from(*total)
            }
        };
        if total == 0 || total > u64::from(MAX_DRAW) {
            errors.push(FieldError::new(
                "quotas",
                "invalid_quotas",
                format!("draw between 1 and {MAX_DRAW} establishments"),
            ));
        }
        if let Some(days) = self.exclude_inspected_within_days {
            if days > 3650 {
                errors.push(FieldError::new(
                    "exclude_inspected_within_days",
                    "out_of_range",
                    "at most 3650 days",
                ));
            }
        }
        let mut towns: Vec<String> = self
            .filter
            .towns
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        towns.sort();
        towns.dedup();
        if self.template_version < 1 {
            errors.push(FieldError::new(
                "template_version",
                "invalid_version",
                "template_version starts at 1",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(period_start), Some(period_end), Some(due_date)) = (start, end, due) else {
            return Err(errors);
        };
        Ok(PlanSpec {
            name,
            round_title,
            theme,
            period_start,
            period_end,
            due_date,
            template_id: self.template_id.trim().to_string(),
            template_version: self.template_version,
            filter: PoolFilter {
                towns,
                ..self.filter
            },
            quotas: self.quotas,
            exclude_inspected_within_days: self.exclude_inspected_within_days,
            inspector_ids: self.inspector_ids,
            team_size: self.team_size,
        })
    }
}

/// What a plan is for. Both kinds are drawn by [`draw`] into the same `draws` records; see
/// `crate::sampling::plan` for why sampling plans are plans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// 随机查餐厅: establishments and inspector teams drawn; tasks are inspections.
    #[default]
    Inspection,
    /// 食品安全抽检: premises drawn (selection only); tasks are sampling tasks.
    Sampling,
}

impl PlanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Inspection => "inspection",
            PlanKind::Sampling => "sampling",
        }
    }
    pub fn parse(s: &str) -> Option<PlanKind> {
        [PlanKind::Inspection, PlanKind::Sampling]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl TryFrom<String> for PlanKind {
    type Error = UnknownState;
    fn try_from(s: String) -> Result<PlanKind, UnknownState> {
        PlanKind::parse(&s).ok_or(UnknownState(s))
    }
}

/// Whether a plan has been drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Not drawn yet.
    Draft,
    /// Has a current draw.
    Drawn,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Draft => "draft",
            PlanStatus::Drawn => "drawn",
        }
    }
    pub fn parse(s: &str) -> Option<PlanStatus> {
        [PlanStatus::Draft, PlanStatus::Drawn]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A stored plan: the one shape the API view and audit events are derived from. Serialises
/// the plan's own fields (what audit events diff), not its id or timestamps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub round_title: String,
    pub theme: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub due_date: NaiveDate,
    pub template_id: String,
    pub template_version: i64,
    pub filter: PoolFilter,
    pub quotas: draw::Quotas,
    pub exclude_inspected_within_days: Option<i64>,
    pub inspector_ids: Vec<String>,
    pub team_size: i64,
    pub status: PlanStatus,
    pub current_draw_id: Option<String>,
    pub created_by: String,
    /// Unix milliseconds.
    #[serde(skip)]
    pub created_at: i64,
    #[serde(skip)]
    pub updated_at: i64,
}

/// A stored state name that is not one of the known states.
#[derive(Debug, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct UnknownState(pub String);

pub fn grade_of(g: RiskGrade) -> draw::Grade {
    match g {
        RiskGrade::A => draw::Grade::A,
        RiskGrade::B => draw::Grade::B,
        RiskGrade::C => draw::Grade::C,
        RiskGrade::D => draw::Grade::D,
    }
}

/// Task states. `assigned` → `in_progress` → `submitted`; `cancelled` with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Assigned,
    InProgress,
    Submitted,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Assigned => "assigned",
            TaskState::InProgress => "in_progress",
            TaskState::Submitted => "submitted",
            TaskState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<TaskState> {
        [
            TaskState::Assigned,
            TaskState::InProgress,
            TaskState::Submitted,
            TaskState::Cancelled,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
    /// Whether a move from `self` to `to` is allowed.
    pub fn can_move_to(self, to: TaskState) -> bool {
        matches!(
            (self, to),
            (TaskState::Assigned, TaskState::InProgress)
                | (TaskState::InProgress, TaskState::Submitted)
                | (TaskState::Assigned, TaskState::Submitted)
                | (TaskState::Assigned, TaskState::Cancelled)
                | (TaskState::InProgress, TaskState::Cancelled)
        )
    }
}

impl TryFrom<String> for TaskState {
    type Error = UnknownState;
    fn try_from(s: String) -> Result<TaskState, UnknownState> {
        TaskState::parse(&s).ok_or(UnknownState(s))
    }
}

/// The part of a draw record that is published (一公开): enough to re-run the selection of
/// establishments. Inspector assignments stay internal (conflicts of interest are personal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicDrawRecord {
    pub plan_id: Uuid,
    /// The kind of plan drawn: `inspection` (随机查餐厅) or `sampling` (食品安全抽检). Not an
    /// input of the draw; absent from records published before sampling plans (inspection).
    #[serde(default)]
    pub plan_kind: PlanKind,
    pub seed: String,
    pub algorithm: String,
    pub pool_hash: String,
    /// Candidates in canonical order (id ascending) with their risk grade.
    #[schema(value_type = Vec<Object>)]
    pub pool: Vec<draw::Candidate>,
    #[schema(value_type = Object)]
    pub quotas: draw::Quotas,
    /// Establishments per grade actually drawn.
    #[schema(value_type = Object)]
    pub allocation: BTreeMap<draw::Grade, u32>,
    /// Drawn establishment ids, in draw order.
    pub drawn: Vec<Uuid>,
    /// Commitment to the conflict-of-interest list the draw used ([`draw::conflicts_hash`]).
    /// Absent from records published before it existed.
    #[serde(default)]
    pub conflicts_hash: String,
}

impl PublicDrawRecord {
    pub fn from_record(r: &draw::DrawRecord, plan_kind: PlanKind) -> PublicDrawRecord {
        PublicDrawRecord {
            plan_id: r.input.plan_id,
            plan_kind,
            seed: r.input.seed.clone(),
            algorithm: r.outcome.algorithm.clone(),
            pool_hash: r.outcome.pool_hash.clone(),
            pool: r.input.pool.clone(),
            quotas: r.input.quotas.clone(),
            allocation: r.outcome.allocation.clone(),
            drawn: r.outcome.drawn.clone(),
            conflicts_hash: draw::conflicts_hash(&r.input.conflicts),
        }
    }

    /// Re-runs the establishment selection. Teams do not depend on anything the selection
    /// uses, so two placeholder inspectors stand in for the unpublished pool.
    pub fn verify(&self) -> Vec<String> {
        let input = draw::DrawInput {
            plan_id: self.plan_id,
            seed: self.seed.clone(),
            pool: self.pool.clone(),
            quotas: self.quotas.clone(),
            inspectors: vec![
                draw::Inspector {
                    id: Uuid::from_u128(1),
                },
                draw::Inspector {
                    id: Uuid::from_u128(2),
                },
            ],
            team_size: draw::MIN_TEAM_SIZE,
            conflicts: Vec::new(),
        };
        let mut diffs = Vec::new();
        if self.algorithm != draw::ALGORITHM {
            diffs.push(format!(
                "unknown algorithm {:?}; this program implements {}",
                self.algorithm,
                draw::ALGORITHM
            ));
            return diffs;
        }
        let hash = draw::pool_hash(&self.pool);
        if hash != self.pool_hash {
            diffs.push(format!(
                "pool hash: recorded {}, recomputed {hash}",
                self.pool_hash
            ));
        }
        match draw::draw(&input) {
            Ok(out) => {
                if out.drawn != self.drawn {
                    let first = out.drawn.iter().zip(&self.drawn).position(|(a, b)| a != b);
                    diffs.push(format!(
                        "drawn establishments differ (recorded {}, recomputed {}; first difference at position {})",
                        self.drawn.len(),
                        out.drawn.len(),
                        first.map(|i| i.to_string()).unwrap_or_else(|| "end".into())
                    ));
                }
                if out.allocation != self.allocation {
                    diffs.push("allocation per grade differs".into());
                }
            }
            Err(e) => diffs.push(format!("the draw cannot be re-run: {e}")),
        }
        diffs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawPlan {
        serde_json::from_value(serde_json::json!({
            "name": "n", "round_title": "第3期", "theme": "餐饮具清洗消毒",
            "period_start": "2024-03-01", "period_end": "2024-03-31", "due_date": "2024-03-31",
            "template_id": "t", "template_version": 1,
            "quotas": {"explicit": {"D": 2}},
            "inspector_ids": [Uuid::from_u128(1), Uuid::from_u128(2)],
            "team_size": 2
        }))
        .unwrap()
    }

    #[test]
    fn valid_plan() {
        assert!(raw().validate().is_ok());
    }

    #[test]
    fn team_of_one_is_refused() {
        let mut r = raw();
        r.team_size = 1;
        let e = r.validate().unwrap_err();
        assert!(e.iter().any(|e| e.code == "invalid_team_size"));
    }

    #[test]
    fn bad_dates_and_pool() {
        let mut r = raw();
        r.period_end = "2024-02-01".into();
        r.due_date = "31/03/2024".into();
        r.inspector_ids = vec![Uuid::from_u128(1), Uuid::from_u128(1)];
        r.quotas = draw::Quotas::Explicit(BTreeMap::new());
        let codes: Vec<String> = r
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.code)
            .collect();
        for c in [
            "invalid_period",
            "invalid_date",
            "duplicate_inspector",
            "invalid_quotas",
        ] {
            assert!(codes.iter().any(|x| x == c), "{c} missing from {codes:?}");
        }
    }

    #[test]
    fn task_state_machine() {
        assert!(TaskState::Assigned.can_move_to(TaskState::InProgress));
        assert!(TaskState::InProgress.can_move_to(TaskState::Cancelled));
        assert!(!TaskState::Submitted.can_move_to(TaskState::Cancelled));
        assert!(!TaskState::Cancelled.can_move_to(TaskState::Assigned));
    }

    #[test]
    fn public_record_verifies_and_detects_tampering() {
        let cands: Vec<draw::Candidate> = (1..=50u128)
            .map(|i| draw::Candidate {
                id: Uuid::from_u128(i * 7919),
                grade: [draw::Grade::A, draw::Grade::D][(i % 2) as usize],
            })
            .collect();
        let input = draw::DrawInput {
            plan_id: Uuid::from_u128(42),
            seed: "2024-03-15 福彩3D 123".into(),
            pool: draw::canonical_pool(cands).unwrap(),
            quotas: draw::Quotas::Explicit(
                [(draw::Grade::D, 5), (draw::Grade::A, 2)]
                    .into_iter()
                    .collect(),
            ),
            inspectors: (1..=6u128)
                .map(|i| draw::Inspector {
                    id: Uuid::from_u128(1000 + i),
                })
                .collect(),
            team_size: 2,
            conflicts: vec![],
        };
        let outcome = draw::draw(&input).unwrap();
        let record = draw::DrawRecord { input, outcome };
        let public = PublicDrawRecord::from_record(&record, PlanKind::Inspection);
        assert!(public.verify().is_empty());
        let mut tampered = public.clone();
        tampered.drawn.swap(0, 1);
        assert!(!tampered.verify().is_empty());
        let mut tampered = public.clone();
        tampered.pool[3].grade = draw::Grade::B;
        assert!(!tampered.verify().is_empty());
    }
}

/// A member of a task's drawn team, as the accounts hold it. The same shape (and field names)
/// as a member of `inspections.team` in sync, so an app can copy it: `GET /api/v1/tasks` and
/// the synced `tasks.team` both list these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamMember {
    /// The inspector's account id.
    pub user_id: String,
    pub name: String,
    /// 执法证号, from the account.
    pub badge_no: Option<String>,
    /// Always `officer` for a drawn team. Participants who are not officers (`npc_deputy`
    /// 人大代表, `consumer_rep` 消费者代表) appear only on an inspection's own team.
    pub role: MemberRole,
}

/// The role of a person on an inspection team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Officer,
    NpcDeputy,
    ConsumerRep,
}

impl TeamMember {
    pub fn officer(user_id: String, name: String, badge_no: Option<String>) -> TeamMember {
        TeamMember {
            user_id,
            name,
            badge_no,
            role: MemberRole::Officer,
        }
    }
}
