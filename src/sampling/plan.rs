//! 食品安全抽检 plans and tasks, pure: the plan as it arrives and its validation, how the
//! plan's category batches are dealt to the drawn premises ([`allot`]), a task's states, and
//! the team rule ([`decide_team`]).
//!
//! ## Why a sampling plan is a plan of another kind, not a parallel copy
//! The premises are drawn with exactly the inspection plans' draw (`plan::draw`, algorithm
//! `foodcheck-draw-v1`): the same pool filter over the registry, the same quotas per risk
//! grade, seed and pool-hash commitment, the same stored [`crate::plan::draw::DrawRecord`].
//! So a sampling plan is a row of `plans` with `kind = 'sampling'` (its extra fields in
//! `sampling_plans`), and its draws are rows of `draws`: `draw verify --plan`, the internal and
//! public draw records, `/public/v1/plans/{id}/draw…` and the public draw page work unchanged
//! and say which kind of plan they belong to. A parallel copy would have needed a second
//! draws table, verify path and public page that could drift apart.
//!
//! What differs is kept apart: sampling plans have no checklist and no inspector pool, and the
//! draw selects premises only ([`crate::plan::draw`]'s selection-only form: no teams). Its
//! tasks are not inspection tasks (no checklist, batches instead, a lab, teams assigned by a
//! reviewer after the draw, synced to samplers, not in the inspection sync), so they live in
//! `sampling_tasks`, with the same sync position columns as `tasks`.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::form::{Purpose, Stage};
use crate::establishment::FieldError;
use crate::followup::{self, TeamFacts};
use crate::plan::draw;
use crate::plan::{PoolFilter, MAX_DRAW};

/// Most batches of one category in a plan.
pub const MAX_BATCHES_PER_CATEGORY: u32 = 10_000;
/// Most categories in one plan.
pub const MAX_CATEGORIES: usize = 200;
/// Default working days from the draw to a task's due date.
pub const DEFAULT_TASK_DUE_WORKING_DAYS: u32 = 15;
/// The stored rule of a task's due date.
pub const DUE_RULE: &str = "working_days_after_draw";

/// A number of batches (批次) of one food category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Batch {
    /// A code of the stored food category tree (any level).
    pub category_code: String,
    /// How many batches, at least 1.
    pub batches: u32,
}

/// A sampling plan as it arrives (rules checked by [`RawSamplingPlan::validate`]).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSamplingPlan {
    /// e.g. `2026年第四季度流通环节监督抽检`; 1–200 characters.
    pub title: String,
    /// 检验目的.
    pub purpose: Purpose,
    /// 抽样环节.
    pub stage: Stage,
    /// First day of the period, `YYYY-MM-DD`.
    pub period_start: String,
    /// Last day of the period, `YYYY-MM-DD`.
    pub period_end: String,
    /// The lab the samples go to (a task may be given another when its team is assigned).
    pub lab_id: String,
    /// The batches per food category, dealt over the drawn premises in draw order.
    pub batches: Vec<Batch>,
    /// Which premises are candidates (as for inspection plans).
    #[serde(default)]
    pub filter: PoolFilter,
    /// How many premises to draw per risk grade, as for inspection plans; at most the total
    /// number of batches (every task samples at least one batch).
    pub quotas: draw::Quotas,
    /// A task is due this many working days after the draw day (1–120, default 15).
    pub task_due_working_days: Option<u32>,
}

/// A validated sampling plan.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingPlanSpec {
    pub title: String,
    pub purpose: Purpose,
    pub stage: Stage,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub lab_id: String,
    pub batches: Vec<Batch>,
    pub filter: PoolFilter,
    pub quotas: draw::Quotas,
    pub task_due_working_days: u32,
}

fn date(field: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let d = NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok();
    if d.is_none() {
        errors.push(FieldError::new(
            field,
            "invalid_date",
            format!("{field} must be a date YYYY-MM-DD"),
        ));
    }
    d
}

/// The number of premises the quotas draw (explicit: their sum; weighted: the total).
pub fn quota_total(q: &draw::Quotas) -> u64 {
    match q {
        draw::Quotas::Explicit(m) => m.values().map(|v| u64::from(*v)).sum(),
        draw::Quotas::Weighted { total, .. } => u64::from(*total),
    }
}

impl RawSamplingPlan {
    pub fn validate(self) -> Result<SamplingPlanSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = self.title.trim().to_string();
        if title.is_empty() || title.chars().count() > 200 {
            errors.push(FieldError::new(
                "title",
                "invalid_title",
                "title must be 1 to 200 characters",
            ));
        }
        let start = date("period_start", &self.period_start, &mut errors);
        let end = date("period_end", &self.period_end, &mut errors);
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                errors.push(FieldError::new(
                    "period_end",
                    "invalid_period",
                    "period_end is before period_start",
                ));
            }
        }
        let lab_id = self.lab_id.trim().to_string();
        if lab_id.is_empty() {
            errors.push(FieldError::new("lab_id", "required", "lab_id is required"));
        }
        let mut batches = Vec::with_capacity(self.batches.len());
        let mut seen = HashSet::new();
        if self.batches.is_empty() || self.batches.len() > MAX_CATEGORIES {
            errors.push(FieldError::new(
                "batches",
                "invalid_batches",
                format!("list 1 to {MAX_CATEGORIES} food categories with their batches"),
            ));
        }
        for (i, b) in self.batches.iter().enumerate() {
            let code = b.category_code.trim().to_string();
            let f = format!("batches[{i}]");
            if code.is_empty() {
                errors.push(FieldError::new(&f, "required", "category_code is required"));
            } else if !seen.insert(code.clone()) {
                errors.push(FieldError::new(
                    &f,
                    "duplicate_category",
                    format!("category {code} is listed twice"),
                ));
            }
            if b.batches == 0 || b.batches > MAX_BATCHES_PER_CATEGORY {
                errors.push(FieldError::new(
                    &f,
                    "invalid_batches",
                    format!("batches must be 1 to {MAX_BATCHES_PER_CATEGORY}"),
                ));
            }
            batches.push(Batch {
                category_code: code,
                batches: b.batches,
            });
        }
        let total_batches: u64 = batches.iter().map(|b| u64::from(b.batches)).sum();
        let drawn = quota_total(&self.quotas);
        if let draw::Quotas::Weighted { weights, .. } = &self.quotas {
            if weights.values().all(|w| *w == 0) {
                errors.push(FieldError::new(
                    "quotas",
                    "invalid_quotas",
                    "at least one weight must be positive",
                ));
            }
        }
        if drawn == 0 || drawn > u64::from(MAX_DRAW) {
            errors.push(FieldError::new(
                "quotas",
                "invalid_quotas",
                format!("draw between 1 and {MAX_DRAW} premises"),
            ));
        } else if drawn > total_batches && total_batches > 0 {
            errors.push(FieldError::new(
                "quotas",
                "more_premises_than_batches",
                format!(
                    "the quotas draw {drawn} premises but the plan has {total_batches} batches; every task samples at least one"
                ),
            ));
        }
        let due_days = self
            .task_due_working_days
            .unwrap_or(DEFAULT_TASK_DUE_WORKING_DAYS);
        if !(1..=120).contains(&due_days) {
            errors.push(FieldError::new(
                "task_due_working_days",
                "out_of_range",
                "task_due_working_days must be 1 to 120",
            ));
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
        match (start, end) {
            (Some(period_start), Some(period_end)) if errors.is_empty() => Ok(SamplingPlanSpec {
                title,
                purpose: self.purpose,
                stage: self.stage,
                period_start,
                period_end,
                lab_id,
                batches,
                filter: PoolFilter {
                    towns,
                    ..self.filter
                },
                quotas: self.quotas,
                task_due_working_days: due_days,
            }),
            _ => Err(errors),
        }
    }
}

/// Deals the plan's batches to `tasks` tasks in draw order: batch units are taken category by
/// category in the plan's order, unit `k` going to task `k mod tasks`; each task's share lists
/// its categories in the plan's order. Every batch is dealt once, and two tasks' totals differ
/// by at most one. `tasks = 0` deals nothing.
pub fn allot(batches: &[Batch], tasks: usize) -> Vec<Vec<Batch>> {
    let mut out: Vec<Vec<Batch>> = vec![Vec::new(); tasks];
    if tasks == 0 {
        return out;
    }
    let mut k: usize = 0;
    for b in batches {
        let n = b.batches as usize;
        // Units k..k+n: each task gets n / tasks, and the next n % tasks tasks one more.
        let base = n / tasks;
        let extra = n % tasks;
        for (offset, share) in out.iter_mut().enumerate() {
            // The position of this task after k in the round, 0-based.
            let pos = (offset + tasks - k % tasks) % tasks;
            let count = base + usize::from(pos < extra);
            if count > 0 {
                share.push(Batch {
                    category_code: b.category_code.clone(),
                    batches: count as u32,
                });
            }
        }
        k += n;
    }
    out
}

/// A sampling task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SamplingTaskState {
    /// Drawn; no team yet.
    Unassigned,
    /// A team of samplers is assigned.
    Assigned,
    /// Replaced by a redraw.
    Cancelled,
}

impl SamplingTaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingTaskState::Unassigned => "unassigned",
            SamplingTaskState::Assigned => "assigned",
            SamplingTaskState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<SamplingTaskState> {
        [
            SamplingTaskState::Unassigned,
            SamplingTaskState::Assigned,
            SamplingTaskState::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl TryFrom<String> for SamplingTaskState {
    type Error = crate::plan::UnknownState;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SamplingTaskState::parse(&s).ok_or(crate::plan::UnknownState(s))
    }
}

/// What [`decide_team`] looks at.
#[derive(Debug, Clone)]
pub struct TeamFactsOfTask<'a> {
    pub state: SamplingTaskState,
    /// The team now, in order (empty when unassigned).
    pub current: &'a [String],
    /// Samples already submitted against the task.
    pub samples: usize,
    /// About the proposed people: enabled inspector accounts, declared conflicts (回避) at the
    /// task's premises.
    pub team: &'a TeamFacts,
}

/// A team change to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamChange {
    /// The new team, in order (duplicates dropped).
    pub team: Vec<String>,
    /// On the new team, not on the old.
    pub added: Vec<String>,
    /// On the old team, not on the new.
    pub removed: Vec<String>,
}

/// Why a team is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeamRefusal {
    #[error("the task is cancelled")]
    Cancelled,
    #[error("samples were submitted against this task by its team; its team cannot change")]
    HasSamples,
    #[error("the proposed team is the current team")]
    Unchanged,
    #[error("{0}")]
    Team(followup::Refusal),
}

impl TeamRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            TeamRefusal::Cancelled => "invalid_state",
            TeamRefusal::HasSamples => "task_has_samples",
            TeamRefusal::Unchanged => "team_unchanged",
            TeamRefusal::Team(followup::Refusal::TeamTooSmall(_)) => "team_too_small",
            TeamRefusal::Team(followup::Refusal::NotActive(_)) => "sampler_not_active",
            TeamRefusal::Team(followup::Refusal::Conflicted(_)) => "sampler_conflict",
            TeamRefusal::Team(other) => other.code(),
        }
    }

    /// A conflict with the task's state (409) rather than a bad request (422).
    pub fn is_conflict(&self) -> bool {
        matches!(self, TeamRefusal::Cancelled | TeamRefusal::HasSamples)
    }
}

/// Decides a team for a task: at least two distinct enabled inspector accounts, none with a
/// declared conflict (回避) at the premises (the rule of inspection and recheck teams,
/// [`followup::check_team`]); not on a cancelled task, and not once samples were submitted
/// against it.
pub fn decide_team(
    facts: &TeamFactsOfTask,
    proposed: &[String],
) -> Result<TeamChange, TeamRefusal> {
    if facts.state == SamplingTaskState::Cancelled {
        return Err(TeamRefusal::Cancelled);
    }
    let team = followup::check_team(proposed, facts.team).map_err(TeamRefusal::Team)?;
    if team == facts.current {
        return Err(TeamRefusal::Unchanged);
    }
    if facts.samples > 0 {
        return Err(TeamRefusal::HasSamples);
    }
    let old: HashSet<&String> = facts.current.iter().collect();
    let new: HashSet<&String> = team.iter().collect();
    let added = team.iter().filter(|m| !old.contains(m)).cloned().collect();
    let removed = facts
        .current
        .iter()
        .filter(|m| !new.contains(m))
        .cloned()
        .collect();
    Ok(TeamChange {
        team,
        added,
        removed,
    })
}

/// The task a sample is submitted against, as stored.
#[derive(Debug, Clone)]
pub struct TaskForSample<'a> {
    pub state: SamplingTaskState,
    /// The task's team, user ids.
    pub team: &'a [String],
    pub establishment_id: &'a str,
    pub lab_id: &'a str,
    pub purpose: Purpose,
    pub stage: Stage,
    /// The task's share of the plan's category batches.
    pub batches: &'a [Batch],
}

/// What the sample says about the same things.
#[derive(Debug, Clone)]
pub struct SampleForTask<'a> {
    /// `sampler_1`, `sampler_2` as given (user ids).
    pub samplers: &'a [String],
    pub establishment_id: &'a str,
    pub lab_id: &'a str,
    pub purpose: Option<Purpose>,
    pub stage: Option<Stage>,
    /// The sample's food category code and its ancestors' in the stored tree, most specific
    /// first (a batch of a coarser category covers its subcategories).
    pub category_path: &'a [String],
}

/// Why a sample does not fit its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleTaskRefusal {
    /// The task was cancelled (a redraw replaced it): 409 `task_cancelled`.
    Cancelled,
    /// Fields that disagree with the task (422 `validation_failed`).
    Fields(Vec<FieldError>),
}

/// A sample against a task: the task is open (assigned), both samplers are on its team, and
/// the premises, lab, 检验目的 and 抽样环节 are the task's, and the sample's category is (or is
/// under) one of the task's batches. (That the submitter is on the team
/// is checked before: a task of another team is answered as one that does not exist.)
pub fn check_sample_against_task(
    task: &TaskForSample,
    sample: &SampleForTask,
) -> Result<(), SampleTaskRefusal> {
    if task.state == SamplingTaskState::Cancelled {
        return Err(SampleTaskRefusal::Cancelled);
    }
    let mut errors = Vec::new();
    for (i, s) in sample.samplers.iter().enumerate() {
        if !task.team.iter().any(|m| m == s) {
            let f = format!("sampler_{}", i + 1);
            errors.push(FieldError::new(
                &f,
                "sampler_not_on_team",
                format!("{f} {s} is not on the task's team of samplers"),
            ));
        }
    }
    if sample.establishment_id != task.establishment_id {
        errors.push(FieldError::new(
            "establishment_id",
            "not_task_premises",
            "the sampled premises is not the task's premises",
        ));
    }
    if sample.lab_id != task.lab_id {
        errors.push(FieldError::new(
            "lab_id",
            "not_task_lab",
            "the lab is not the task's lab",
        ));
    }
    if sample.purpose != Some(task.purpose) {
        errors.push(FieldError::new(
            "purpose",
            "not_task_purpose",
            format!("检验目的 must be the plan's: {}", task.purpose.label_zh()),
        ));
    }
    if sample.stage != Some(task.stage) {
        errors.push(FieldError::new(
            "stage",
            "not_task_stage",
            format!("抽样环节 must be the plan's: {}", task.stage.label_zh()),
        ));
    }
    if !task
        .batches
        .iter()
        .any(|b| sample.category_path.contains(&b.category_code))
    {
        let codes: Vec<&str> = task
            .batches
            .iter()
            .map(|b| b.category_code.as_str())
            .collect();
        errors.push(FieldError::new(
            "category_code",
            "not_task_category",
            format!(
                "the sample's category {} is not in the task's batches ({})",
                sample.category_path.first().map_or("", String::as_str),
                codes.join(", ")
            ),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SampleTaskRefusal::Fields(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn raw() -> RawSamplingPlan {
        serde_json::from_value(serde_json::json!({
            "title": "2026年第四季度流通环节监督抽检",
            "purpose": "监督抽检", "stage": "circulation",
            "period_start": "2026-10-01", "period_end": "2026-12-31",
            "lab_id": "lab",
            "batches": [{"category_code": "010101", "batches": 3}, {"category_code": "0201", "batches": 2}],
            "quotas": {"explicit": {"B": 4}}
        }))
        .unwrap()
    }

    #[test]
    fn a_plan_validates_and_refuses_what_it_must() {
        let spec = raw().validate().unwrap();
        assert_eq!(spec.task_due_working_days, DEFAULT_TASK_DUE_WORKING_DAYS);
        let mut r = raw();
        r.quotas = draw::Quotas::Explicit([(draw::Grade::B, 6)].into_iter().collect());
        let codes: Vec<String> = r
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(codes, ["more_premises_than_batches"]);
        let mut r = raw();
        r.batches.push(Batch {
            category_code: "010101".into(),
            batches: 0,
        });
        r.period_end = "2026-09-01".into();
        r.title = " ".into();
        let codes: Vec<String> = r
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.code)
            .collect();
        for c in [
            "invalid_title",
            "invalid_period",
            "duplicate_category",
            "invalid_batches",
        ] {
            assert!(codes.iter().any(|x| x == c), "{c} missing from {codes:?}");
        }
    }

    fn facts(active: &[&str], conflicted: &[&str]) -> TeamFacts {
        TeamFacts {
            active: active.iter().map(|s| s.to_string()).collect(),
            conflicted: conflicted.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn team_rules() {
        let f = facts(&["a", "b", "c"], &["c"]);
        let t = |state, current: &'static [String], samples| TeamFactsOfTask {
            state,
            current,
            samples,
            team: &f,
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let un = t(SamplingTaskState::Unassigned, &[], 0);
        let ok = decide_team(&un, &ids(&["a", "b", "a"])).unwrap();
        assert_eq!(ok.team, ids(&["a", "b"]));
        assert_eq!(ok.added, ids(&["a", "b"]));
        assert_eq!(
            decide_team(&un, &ids(&["a"])).unwrap_err().code(),
            "team_too_small"
        );
        assert_eq!(
            decide_team(&un, &ids(&["a", "c"])).unwrap_err().code(),
            "sampler_conflict"
        );
        assert_eq!(
            decide_team(&un, &ids(&["a", "x"])).unwrap_err().code(),
            "sampler_not_active"
        );
        let cancelled = t(SamplingTaskState::Cancelled, &[], 0);
        assert_eq!(
            decide_team(&cancelled, &ids(&["a", "b"])).unwrap_err(),
            TeamRefusal::Cancelled
        );
    }

    proptest! {
        /// A sample fits its task exactly when the task is not cancelled, every sampler is on
        /// the team, premises, lab, purpose and stage agree and the sample's category is (or is
        /// under) one of the task's batches; each disagreement names its field.
        #[test]
        fn a_sample_fits_its_task_exactly_when_everything_agrees(
            state in 0u8..3,
            team in proptest::collection::btree_set(0u8..4, 0..4),
            samplers in proptest::collection::vec(0u8..4, 0..3),
            same_premises in any::<bool>(),
            same_lab in any::<bool>(),
            purpose in proptest::option::of(0usize..2),
            stage in proptest::option::of(0usize..3),
            // Which of the sample's category path (010101 under 0101 under 01) the task's
            // batches name, if any; 3: a sibling (010102), which does not cover it.
            batch_level in proptest::option::of(0usize..4),
        ) {
            let team: Vec<String> = team.iter().map(|i| format!("u{i}")).collect();
            let samplers: Vec<String> = samplers.iter().map(|i| format!("u{i}")).collect();
            let state = [SamplingTaskState::Unassigned, SamplingTaskState::Assigned, SamplingTaskState::Cancelled][state as usize];
            let path: Vec<String> = ["010101", "0101", "01"].iter().map(|c| c.to_string()).collect();
            let mut batches = vec![Batch { category_code: "0201".into(), batches: 1 }];
            if let Some(l) = batch_level {
                let code = path.get(l).cloned().unwrap_or_else(|| "010102".into());
                batches.push(Batch { category_code: code, batches: 2 });
            }
            let in_batches = batch_level.is_some_and(|l| l < path.len());
            let task = TaskForSample {
                state, team: &team, establishment_id: "e", lab_id: "l",
                purpose: Purpose::Supervision, stage: Stage::Circulation, batches: &batches,
            };
            let sample = SampleForTask {
                samplers: &samplers,
                establishment_id: if same_premises { "e" } else { "x" },
                lab_id: if same_lab { "l" } else { "y" },
                purpose: purpose.map(|i| Purpose::ALL[i]),
                stage: stage.map(|i| Stage::ALL[i]),
                category_path: &path,
            };
            let on_team = samplers.iter().all(|s| team.contains(s));
            let fits = on_team && same_premises && same_lab && in_batches
                && sample.purpose == Some(Purpose::Supervision) && sample.stage == Some(Stage::Circulation);
            match check_sample_against_task(&task, &sample) {
                Ok(()) => prop_assert!(state != SamplingTaskState::Cancelled && fits),
                Err(SampleTaskRefusal::Cancelled) => prop_assert_eq!(state, SamplingTaskState::Cancelled),
                Err(SampleTaskRefusal::Fields(f)) => {
                    prop_assert!(state != SamplingTaskState::Cancelled && !fits);
                    prop_assert_eq!(f.iter().any(|e| e.field == "establishment_id"), !same_premises);
                    prop_assert_eq!(f.iter().any(|e| e.field == "lab_id"), !same_lab);
                    prop_assert_eq!(f.iter().any(|e| e.code == "sampler_not_on_team"), !on_team);
                    prop_assert_eq!(f.iter().any(|e| e.field == "category_code"), !in_batches);
                }
            }
        }

        /// Every batch is dealt exactly once, per category; totals per task differ by at most
        /// one; every task gets a batch when there are at least as many batches as tasks; the
        /// deal is the same every time.
        #[test]
        fn allot_deals_every_batch_once_and_evenly(
            counts in proptest::collection::vec(1u32..40, 1..8),
            tasks in 0usize..30,
        ) {
            let batches: Vec<Batch> = counts.iter().enumerate()
                .map(|(i, n)| Batch { category_code: format!("c{i:02}"), batches: *n })
                .collect();
            let out = allot(&batches, tasks);
            prop_assert_eq!(out.len(), tasks);
            prop_assert_eq!(&out, &allot(&batches, tasks));
            if tasks == 0 {
                return Ok(());
            }
            let mut per_cat: BTreeMap<String, u32> = BTreeMap::new();
            for share in &out {
                let mut seen = HashSet::new();
                for b in share {
                    prop_assert!(b.batches > 0);
                    prop_assert!(seen.insert(b.category_code.clone()), "a category twice in one share");
                    *per_cat.entry(b.category_code.clone()).or_default() += b.batches;
                }
            }
            for b in &batches {
                prop_assert_eq!(per_cat.get(&b.category_code).copied(), Some(b.batches));
            }
            let totals: Vec<u32> = out.iter().map(|s| s.iter().map(|b| b.batches).sum()).collect();
            let (min, max) = (totals.iter().min().unwrap(), totals.iter().max().unwrap());
            prop_assert!(max - min <= 1, "totals {:?}", totals);
            let all: u32 = counts.iter().sum();
            if all as usize >= tasks {
                prop_assert!(*min >= 1);
            }
        }

        /// A team is accepted exactly when, duplicates dropped, it has at least two people, all
        /// active, none conflicted, it is not the current team, the task is open and has no
        /// samples; then added and removed are the set differences.
        #[test]
        fn decide_team_matches_its_rule(
            proposed in proptest::collection::vec(0u8..6, 0..6),
            current in proptest::collection::vec(0u8..6, 0..3),
            active in proptest::collection::btree_set(0u8..6, 0..6),
            conflicted in proptest::collection::btree_set(0u8..6, 0..3),
            state in 0u8..3,
            samples in 0usize..2,
        ) {
            let name = |i: &u8| format!("u{i}");
            let mut cur: Vec<String> = Vec::new();
            for c in current.iter().map(name) {
                if !cur.contains(&c) { cur.push(c); }
            }
            let f = TeamFacts {
                active: active.iter().map(name).collect(),
                conflicted: conflicted.iter().map(name).collect(),
            };
            let state = [SamplingTaskState::Unassigned, SamplingTaskState::Assigned, SamplingTaskState::Cancelled][state as usize];
            let proposed: Vec<String> = proposed.iter().map(name).collect();
            let facts = TeamFactsOfTask { state, current: &cur, samples, team: &f };
            let mut dedup: Vec<String> = Vec::new();
            for p in &proposed {
                if !dedup.contains(p) { dedup.push(p.clone()); }
            }
            let ok = state != SamplingTaskState::Cancelled
                && dedup.len() >= 2
                && dedup.iter().all(|p| f.active.contains(p) && !f.conflicted.contains(p))
                && dedup != cur
                && samples == 0;
            match decide_team(&facts, &proposed) {
                Ok(c) => {
                    prop_assert!(ok);
                    prop_assert_eq!(&c.team, &dedup);
                    for a in &c.added { prop_assert!(!cur.contains(a) && dedup.contains(a)); }
                    for r in &c.removed { prop_assert!(cur.contains(r) && !dedup.contains(r)); }
                    prop_assert_eq!(c.added.len(), dedup.iter().filter(|p| !cur.contains(p)).count());
                    prop_assert_eq!(c.removed.len(), cur.iter().filter(|p| !dedup.contains(p)).count());
                }
                Err(_) => prop_assert!(!ok),
            }
        }
    }
}
