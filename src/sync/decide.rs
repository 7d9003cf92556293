//! The decision of a push, pure: from what was loaded (the stored records the push touches,
//! their tasks and templates, tombstones) and what was pushed, the writes to make and the
//! records refused, or a conflict. `ops::sync::push` loads, calls [`decide`], and writes.
//!
//! Rules, each checked against the **stored** record as well as the pushed one:
//! - a record never moves: an answer's `inspection_id`/`item_code`, a photo's `inspection_id`
//!   (and once uploaded its `sha256`/`byte_size`), an inspection's `task_id` are immutable;
//! - a submitted, approved or rejected inspection and its answers and photos never change
//!   (refused per record with the lock's code, `review::device_lock`); a returned one does,
//!   but it is never deleted (its review history stays);
//! - any change to a record changed or deleted after the cursor is a conflict, except where
//!   the record is locked anyway: then it is refused per record, and the rest of the push
//!   applies.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::push::{AnswerRec, InspectionRec, PhotoRec, Push, TeamMember};
use crate::checklist::rule::{evaluate, Answer, Evaluation, ItemStatus, ResultCode};
use crate::checklist::TemplateContent;
use crate::plan::draw::MIN_TEAM_SIZE;
use crate::plan::TaskState;
use crate::review::{device_lock, Lock, ReviewState};

/// An inspection as stored.
#[derive(Debug, Clone)]
pub struct StoredInspection {
    pub rec: InspectionRec,
    pub submitted: bool,
    pub review_state: Option<ReviewState>,
    /// Submissions so far.
    pub review_round: i64,
    /// Sequence number of its last change.
    pub seq: i64,
}

impl StoredInspection {
    /// Why devices may not change it, if they may not.
    pub fn lock(&self) -> Option<Lock> {
        device_lock(self.submitted, self.review_state)
    }
    /// The read-only rule: submitted (waiting for review), approved or rejected.
    pub fn locked(&self) -> bool {
        self.lock().is_some()
    }
    /// Returned by a reviewer: editable, to be resubmitted, never deleted.
    pub fn returned(&self) -> bool {
        self.review_state == Some(ReviewState::Returned)
    }
}

#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub rec: AnswerRec,
    pub seq: i64,
}

#[derive(Debug, Clone)]
pub struct StoredPhoto {
    pub rec: PhotoRec,
    /// The bytes arrived: `sha256` and `byte_size` are then facts, not claims.
    pub uploaded: bool,
    pub seq: i64,
}

/// An officer of a task's drawn team, as the account says.
#[derive(Debug, Clone, PartialEq)]
pub struct Officer {
    pub user_id: String,
    pub name: String,
    pub badge_no: Option<String>,
    /// An enabled inspector account.
    pub active: bool,
}

/// What a push needs to know of a task.
#[derive(Debug, Clone)]
pub struct TaskFacts {
    pub id: String,
    pub establishment_id: String,
    pub state: TaskState,
    pub template: (String, i64),
    /// The pusher is in its team.
    pub is_member: bool,
    /// The drawn team.
    pub team: Vec<Officer>,
}

/// Everything `decide` may look at, loaded in the push's transaction.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every inspection involved: pushed, deleted, parent of a pushed or stored answer/photo.
    pub inspections: HashMap<String, StoredInspection>,
    /// Pushed or deleted answers, and every answer of the inspections involved.
    pub answers: HashMap<String, StoredAnswer>,
    /// Pushed or deleted photos, and every photo of the deleted inspections.
    pub photos: HashMap<String, StoredPhoto>,
    /// Sequence of the deletion of (table, id), for pushed records and their parents.
    pub tombstones: HashMap<(String, String), i64>,
    pub tasks: HashMap<String, TaskFacts>,
    /// Shared with the process's copy of published versions.
    pub templates: HashMap<(String, i64), std::sync::Arc<TemplateContent>>,
}

/// One refused record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rejected {
    pub table: String,
    pub id: String,
    /// See the refusal codes in api-spec/sync.md.
    pub code: String,
    pub message: String,
}

/// A pushed change to a record changed on the server after the cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub table: &'static str,
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub inspection_id: String,
    pub task_id: String,
    pub establishment_id: String,
    pub evaluation: Evaluation,
    pub flags: Vec<String>,
    /// The round this submission opens (`review_round` after it: 1 for the first).
    pub round: i64,
}

/// The writes of a push, in the order they are made.
#[derive(Debug, Clone, Default)]
pub struct Writes {
    /// Inspections to upsert, with their WGS-84 point.
    pub inspections: Vec<(InspectionRec, Option<(f64, f64)>)>,
    /// Tasks that move assigned → in progress.
    pub started_tasks: Vec<String>,
    pub answers: Vec<AnswerRec>,
    pub photos: Vec<PhotoRec>,
    /// (table, id, task id) to delete with a tombstone, children before parents.
    pub deletes: Vec<(&'static str, String, String)>,
    pub submissions: Vec<Submission>,
}

#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub writes: Writes,
    pub rejected: Vec<Rejected>,
}

type Refusal = (&'static str, String);

/// An inspection accepted for writing: the record, its WGS-84 point, the officers counted.
type Accepted = (InspectionRec, Option<(f64, f64)>, usize);

fn locked(lock: Lock) -> Refusal {
    (lock.code(), lock.message().into())
}

impl Decision {
    fn reject(&mut self, table: &str, id: &str, (code, message): Refusal) {
        self.rejected.push(Rejected {
            table: table.into(),
            id: id.into(),
            code: code.into(),
            message,
        });
    }
}

pub fn item_status(s: &str) -> Option<ItemStatus> {
    match s {
        "pass" => Some(ItemStatus::Pass),
        "fail" => Some(ItemStatus::Fail),
        "not_applicable" => Some(ItemStatus::NotApplicable),
        _ => None,
    }
}

pub fn result_code(r: ResultCode) -> &'static str {
    match r {
        ResultCode::Compliant => "compliant",
        ResultCode::BasicallyCompliant => "basically_compliant",
        ResultCode::NonCompliant => "non_compliant",
    }
}

/// Decides a push at cursor `last`. Pure.
pub fn decide(loaded: &Loaded, push: &Push, last: i64) -> Result<Decision, Conflict> {
    let mut out = Decision::default();
    for (table, id) in &push.read_only {
        out.reject(
            table,
            id,
            ("read_only", format!("{table} is read-only on devices")),
        );
    }

    // --- conflicts: a change (or deletion) after the cursor, nothing applied ------------
    let deleted_after = |table: &str, id: &str| {
        loaded
            .tombstones
            .get(&(table.to_string(), id.to_string()))
            .is_some_and(|s| *s > last)
    };
    let conflict = |table: &'static str, id: &str| Conflict {
        table,
        id: id.to_string(),
    };
    // A change that could never apply (its stored inspection is locked, e.g. approved after
    // the cursor) is refused per record below instead: a 409 would only make the device pull
    // and push the same refused change again, holding up the rest of its push.
    let locked_inspection = |id: &str| loaded.inspections.get(id).is_some_and(|e| e.locked());
    let mut noop: HashSet<(&str, &str)> = HashSet::new();
    for r in &push.inspections {
        if deleted_after("inspections", &r.id) {
            return Err(conflict("inspections", &r.id));
        }
        if let Some(e) = loaded.inspections.get(&r.id) {
            if e.rec == *r {
                noop.insert(("inspections", &r.id));
            } else if e.seq > last && !e.locked() {
                return Err(conflict("inspections", &r.id));
            }
        }
    }
    for r in &push.answers {
        if deleted_after("answers", &r.id) || deleted_after("inspections", &r.inspection_id) {
            return Err(conflict("answers", &r.id));
        }
        if let Some(e) = loaded.answers.get(&r.id) {
            if e.rec == *r {
                noop.insert(("answers", &r.id));
            } else if e.seq > last
                && !locked_inspection(&e.rec.inspection_id)
                && !locked_inspection(&r.inspection_id)
            {
                return Err(conflict("answers", &r.id));
            }
        }
    }
    for r in &push.photos {
        if deleted_after("photos", &r.id) || deleted_after("inspections", &r.inspection_id) {
            return Err(conflict("photos", &r.id));
        }
        if let Some(e) = loaded.photos.get(&r.id) {
            if e.rec == *r {
                noop.insert(("photos", &r.id));
            } else if e.seq > last
                && !locked_inspection(&e.rec.inspection_id)
                && !locked_inspection(&r.inspection_id)
            {
                return Err(conflict("photos", &r.id));
            }
        }
    }
    for (table, id) in &push.deleted {
        let changed = match *table {
            "inspections" => loaded
                .inspections
                .get(id)
                .map(|e| (e.seq, e.rec.id.as_str())),
            "answers" => loaded
                .answers
                .get(id)
                .map(|e| (e.seq, e.rec.inspection_id.as_str())),
            _ => loaded
                .photos
                .get(id)
                .map(|e| (e.seq, e.rec.inspection_id.as_str())),
        };
        if changed.is_some_and(|(s, parent)| s > last && !locked_inspection(parent)) {
            return Err(conflict(table, id));
        }
    }

    // Is a task writable by the pusher?
    let writable_task = |task_id: &str| -> Result<&TaskFacts, Refusal> {
        match loaded.tasks.get(task_id) {
            Some(t) if t.is_member => {
                if t.state == TaskState::Cancelled {
                    Err(("task_cancelled", "the task was cancelled".into()))
                } else {
                    Ok(t)
                }
            }
            _ => Err((
                "not_your_task",
                "the task does not exist or you are not in its team".into(),
            )),
        }
    };

    // --- inspections --------------------------------------------------------------------
    // Accepted for writing: the record (team as the accounts say), WGS-84 point, officers.
    let mut accepted: HashMap<&str, Accepted> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for r in &push.inspections {
        if noop.contains(&("inspections", r.id.as_str())) {
            continue;
        }
        let task = match writable_task(&r.task_id) {
            Ok(t) => t,
            Err(refusal) => {
                out.reject("inspections", &r.id, refusal);
                continue;
            }
        };
        if let Some(e) = loaded.inspections.get(&r.id) {
            // The stored record's task decides who may write it, not the pushed one.
            if let Err(refusal) = writable_task(&e.rec.task_id) {
                out.reject("inspections", &r.id, refusal);
                continue;
            }
            if let Some(lock) = e.lock() {
                out.reject("inspections", &r.id, locked(lock));
                continue;
            }
            if e.rec.task_id != r.task_id {
                out.reject(
                    "inspections",
                    &r.id,
                    (
                        "invalid_record",
                        "an inspection cannot move to another task".into(),
                    ),
                );
                continue;
            }
        }
        if r.establishment_id != task.establishment_id {
            out.reject(
                "inspections",
                &r.id,
                (
                    "invalid_record",
                    "establishment_id is not the task's establishment".into(),
                ),
            );
            continue;
        }
        let team = match r.check() {
            Ok(t) => t,
            Err(m) => {
                out.reject("inspections", &r.id, ("invalid_record", m));
                continue;
            }
        };
        let wgs84 = match (
            r.lng,
            r.lat,
            r.crs
                .as_deref()
                .and_then(|c| c.parse::<crate::geo::Crs>().ok()),
        ) {
            (Some(lng), Some(lat), Some(crs)) => Some(crate::geo::to_wgs84(lng, lat, crs)),
            _ => None,
        };
        accepted.insert(&r.id, (r.clone(), wgs84, officers(&team, task)));
        order.push(&r.id);
    }
    // The task of the inspection an answer or photo belongs to, if it may be written.
    let parent = |inspection_id: &str| -> Result<&TaskFacts, Refusal> {
        if let Some(e) = loaded.inspections.get(inspection_id) {
            let t = writable_task(&e.rec.task_id)?;
            // A pushed (accepted) inspection is unlocked; a refused one stays as stored.
            if let Some(lock) = e.lock() {
                return Err(locked(lock));
            }
            return Ok(t);
        }
        if let Some((r, _, _)) = accepted.get(inspection_id) {
            return writable_task(&r.task_id);
        }
        Err((
            "unknown_inspection",
            "the inspection is not on the server (or was refused)".into(),
        ))
    };

    // --- answers ------------------------------------------------------------------------
    let pushed_deleted: HashSet<(&str, &str)> = push
        .deleted
        .iter()
        .map(|(t, id)| (*t, id.as_str()))
        .collect();
    let mut answer_by_item: HashMap<(&str, &str), &str> = loaded
        .answers
        .values()
        .filter(|a| !pushed_deleted.contains(&("answers", a.rec.id.as_str())))
        .map(|a| {
            (
                (a.rec.inspection_id.as_str(), a.rec.item_code.as_str()),
                a.rec.id.as_str(),
            )
        })
        .collect();
    let mut answers: Vec<&AnswerRec> = Vec::new();
    for r in &push.answers {
        if noop.contains(&("answers", r.id.as_str())) {
            continue;
        }
        let stored = loaded.answers.get(&r.id);
        // Both the stored and the pushed parent must be writable.
        let task = match stored
            .map(|e| parent(&e.rec.inspection_id))
            .transpose()
            .and_then(|_| parent(&r.inspection_id))
        {
            Ok(t) => t,
            Err(refusal) => {
                out.reject("answers", &r.id, refusal);
                continue;
            }
        };
        if stored.is_some_and(|e| {
            e.rec.inspection_id != r.inspection_id || e.rec.item_code != r.item_code
        }) {
            out.reject(
                "answers",
                &r.id,
                (
                    "immutable_field",
                    "an answer's inspection_id and item_code cannot change".into(),
                ),
            );
            continue;
        }
        if let Err(m) = r.check() {
            out.reject("answers", &r.id, ("invalid_record", m));
            continue;
        }
        let Some(template) = loaded.templates.get(&task.template) else {
            out.reject(
                "answers",
                &r.id,
                (
                    "unknown_item",
                    "the task's checklist version is missing".into(),
                ),
            );
            continue;
        };
        let Some(item) = template.item(&r.item_code) else {
            out.reject(
                "answers",
                &r.id,
                (
                    "unknown_item",
                    format!(
                        "item {:?} is not in checklist version {}",
                        r.item_code, task.template.1
                    ),
                ),
            );
            continue;
        };
        if r.status == "not_applicable" && !item.na_allowed {
            out.reject(
                "answers",
                &r.id,
                (
                    "not_applicable_not_allowed",
                    format!("item {} does not allow 合理缺项", r.item_code),
                ),
            );
            continue;
        }
        let key = (r.inspection_id.as_str(), r.item_code.as_str());
        match answer_by_item.get(&key) {
            Some(other) if *other != r.id => {
                out.reject(
                    "answers",
                    &r.id,
                    (
                        "duplicate_answer",
                        format!("answer {other} already records item {}", r.item_code),
                    ),
                );
                continue;
            }
            _ => {
                answer_by_item.insert(key, &r.id);
            }
        }
        answers.push(r);
    }

    // --- photos -------------------------------------------------------------------------
    let mut photos: Vec<&PhotoRec> = Vec::new();
    for r in &push.photos {
        if noop.contains(&("photos", r.id.as_str())) {
            continue;
        }
        let stored = loaded.photos.get(&r.id);
        if let Err(refusal) = stored
            .map(|e| parent(&e.rec.inspection_id))
            .transpose()
            .and_then(|_| parent(&r.inspection_id))
        {
            out.reject("photos", &r.id, refusal);
            continue;
        }
        if stored.is_some_and(|e| {
            e.rec.inspection_id != r.inspection_id
                || (e.uploaded && (e.rec.sha256 != r.sha256 || e.rec.byte_size != r.byte_size))
        }) {
            out.reject("photos", &r.id, ("immutable_field", "a photo's inspection_id, and once uploaded its sha256 and byte_size, cannot change".into()));
            continue;
        }
        match r.check() {
            Err(m) => out.reject("photos", &r.id, ("invalid_record", m)),
            Ok(()) => photos.push(r),
        }
    }

    // --- submissions: coverage and team, with the answers as they will be ---------------
    let mut refused: HashSet<&str> = HashSet::new();
    for id in &order {
        let (r, _, officer_count) = &accepted[id];
        let already = loaded.inspections.get(*id).is_some_and(|e| e.submitted);
        if !r.submitted || already {
            continue;
        }
        let Some(task) = loaded.tasks.get(&r.task_id) else {
            continue;
        };
        let Some(template) = loaded.templates.get(&task.template) else {
            continue;
        };
        let mut by_item: HashMap<&str, ItemStatus> = loaded
            .answers
            .values()
            .filter(|a| {
                a.rec.inspection_id == **id
                    && !pushed_deleted.contains(&("answers", a.rec.id.as_str()))
            })
            .filter_map(|a| item_status(&a.rec.status).map(|s| (a.rec.item_code.as_str(), s)))
            .collect();
        for a in answers.iter().filter(|a| a.inspection_id == **id) {
            if let Some(s) = item_status(&a.status) {
                by_item.insert(&a.item_code, s);
            }
        }
        let mut list: Vec<Answer> = by_item
            .into_iter()
            .map(|(item_code, status)| Answer {
                item_code: item_code.to_string(),
                status,
            })
            .collect();
        list.sort_by(|a, b| a.item_code.cmp(&b.item_code));
        let evaluation = evaluate(template, &list);
        if !evaluation.coverage_ok {
            let m = evaluation
                .problems
                .iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            out.reject("inspections", id, ("coverage_below_minimum", m));
            refused.insert(id);
        } else if *officer_count < MIN_TEAM_SIZE as usize {
            out.reject("inspections", id, ("team_too_small", format!(
                "a submitted inspection names at least {MIN_TEAM_SIZE} officers of the task's team with active inspector accounts and badge numbers"
            )));
            refused.insert(id);
        } else {
            let mut flags = Vec::new();
            if r.declared_result
                .as_deref()
                .is_some_and(|d| d != result_code(evaluation.result))
            {
                flags.push("declared_result_differs".to_string());
            }
            out.writes.submissions.push(Submission {
                inspection_id: id.to_string(),
                task_id: r.task_id.clone(),
                establishment_id: r.establishment_id.clone(),
                evaluation,
                flags,
                round: loaded.inspections.get(*id).map_or(0, |e| e.review_round) + 1,
            });
        }
    }

    // --- writes -------------------------------------------------------------------------
    for id in &order {
        if refused.contains(id) {
            continue;
        }
        let (r, wgs84, _) = &accepted[id];
        out.writes.inspections.push((r.clone(), *wgs84));
        if loaded
            .tasks
            .get(&r.task_id)
            .is_some_and(|t| t.state == TaskState::Assigned)
            && !out.writes.started_tasks.contains(&r.task_id)
        {
            out.writes.started_tasks.push(r.task_id.clone());
        }
    }
    // A refused new inspection takes its new answers and photos with it.
    let orphaned = |inspection_id: &str| {
        refused.contains(inspection_id) && !loaded.inspections.contains_key(inspection_id)
    };
    for a in answers {
        if orphaned(&a.inspection_id) {
            out.reject(
                "answers",
                &a.id,
                (
                    "unknown_inspection",
                    "its inspection was refused in this push".into(),
                ),
            );
        } else {
            out.writes.answers.push(a.clone());
        }
    }
    for p in photos {
        if orphaned(&p.inspection_id) {
            out.reject(
                "photos",
                &p.id,
                (
                    "unknown_inspection",
                    "its inspection was refused in this push".into(),
                ),
            );
        } else {
            out.writes.photos.push(p.clone());
        }
    }
    // Deletions: children first; an inspection's deletion takes its answers and photos.
    let mut deletes: Vec<&(&'static str, String)> = push.deleted.iter().collect();
    deletes.sort_by_key(|(t, _)| if *t == "inspections" { 1 } else { 0 });
    let mut gone: HashSet<(&str, String)> = HashSet::new();
    for (table, id) in deletes {
        let inspection_id = match *table {
            "inspections" => loaded.inspections.get(id).map(|e| e.rec.id.as_str()),
            "answers" => loaded.answers.get(id).map(|e| e.rec.inspection_id.as_str()),
            _ => loaded.photos.get(id).map(|e| e.rec.inspection_id.as_str()),
        };
        // Already gone: a no-op.
        let Some(inspection_id) = inspection_id else {
            continue;
        };
        let Some(e) = loaded.inspections.get(inspection_id) else {
            continue;
        };
        let task = match writable_task(&e.rec.task_id) {
            Ok(t) => t,
            Err(refusal) => {
                out.reject(table, id, refusal);
                continue;
            }
        };
        if let Some(lock) = e.lock() {
            out.reject(table, id, locked(lock));
            continue;
        }
        if *table == "inspections" && e.returned() {
            out.reject(
                table,
                id,
                (
                    "inspection_returned",
                    "a returned inspection keeps its review history and cannot be deleted; fix it and submit it again".into(),
                ),
            );
            continue;
        }
        if *table == "inspections" {
            let mut children: Vec<(&'static str, &str)> = loaded
                .answers
                .values()
                .filter(|a| a.rec.inspection_id == *id)
                .map(|a| ("answers", a.rec.id.as_str()))
                .chain(
                    loaded
                        .photos
                        .values()
                        .filter(|p| p.rec.inspection_id == *id)
                        .map(|p| ("photos", p.rec.id.as_str())),
                )
                .collect();
            children.sort();
            for (t, c) in children {
                if gone.insert((t, c.to_string())) {
                    out.writes.deletes.push((t, c.to_string(), task.id.clone()));
                }
            }
        }
        if gone.insert((table, id.clone())) {
            out.writes
                .deletes
                .push((table, id.clone(), task.id.clone()));
        }
    }
    Ok(out)
}

/// Officers who count towards a submission: distinct members of the task's drawn team with
/// an active inspector account and a badge number on the account. Whatever the device says
/// about badges, and participants who are not officers, never count.
fn officers(team: &[TeamMember], task: &TaskFacts) -> usize {
    let named: HashSet<&str> = team
        .iter()
        .filter(|m| m.is_officer())
        .filter_map(|m| m.user_id.as_deref())
        .collect();
    task.team
        .iter()
        .filter(|o| named.contains(o.user_id.as_str()))
        .filter(|o| o.active && o.badge_no.as_deref().is_some_and(|b| !b.trim().is_empty()))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ITEMS: [&str; 8] = ["1.1", "2.1", "3.1", "3.2", "4.1", "5.1", "6.1", "9.3"];
    /// The pusher is `u1`, in team 1 (task `t1`); team 2 (`u3`, `u4`) has task `t2`.
    const PUSHER: &str = "u1";

    fn officer(id: &str, badge: Option<&str>, active: bool) -> Officer {
        Officer {
            user_id: id.into(),
            name: id.into(),
            badge_no: badge.map(String::from),
            active,
        }
    }

    fn team_json(ids: &[&str]) -> String {
        let v: Vec<TeamMember> = ids
            .iter()
            .map(|u| TeamMember {
                user_id: Some(u.to_string()),
                name: u.to_string(),
                badge_no: Some(format!("TJ-{u}")),
                role: None,
            })
            .collect();
        serde_json::to_string(&v).unwrap()
    }

    fn insp(id: &str, task: &str, submitted: bool, findings: u8) -> InspectionRec {
        InspectionRec {
            id: id.into(),
            task_id: task.into(),
            establishment_id: format!("e-{task}"),
            started_at: 1_710_000_000_000,
            finished_at: None,
            lng: None,
            lat: None,
            gps_accuracy_m: None,
            crs: None,
            team: team_json(if task == "t1" {
                &["u1", "u2"]
            } else {
                &["u3", "u4"]
            }),
            representative_name: None,
            representative_signed: false,
            representative_refused: false,
            business_opinion: None,
            other_findings: Some(format!("f{findings}")),
            declared_result: None,
            submitted,
        }
    }

    fn world() -> Loaded {
        let mut l = Loaded::default();
        let template = crate::checklist::catering_2016();
        l.templates
            .insert(("tpl".into(), 1), std::sync::Arc::new(template));
        for (task, members, member) in [("t1", ["u1", "u2"], true), ("t2", ["u3", "u4"], false)] {
            l.tasks.insert(
                task.into(),
                TaskFacts {
                    id: task.into(),
                    establishment_id: format!("e-{task}"),
                    state: TaskState::InProgress,
                    template: ("tpl".into(), 1),
                    is_member: member,
                    team: members
                        .iter()
                        .map(|u| officer(u, Some(&format!("TJ-{u}")), true))
                        .collect(),
                },
            );
        }
        l
    }

    /// A stored record: (task 0/1, submitted, seq, review state index into [`STATES`]).
    type StoredInsp = (u8, bool, i64, u8);
    const STATES: [Option<ReviewState>; 5] = [
        None,
        Some(ReviewState::Submitted),
        Some(ReviewState::Approved),
        Some(ReviewState::Returned),
        Some(ReviewState::Rejected),
    ];
    /// (inspection index, item index, seq).
    type StoredChild = (u8, u8, i64);

    #[derive(Debug, Clone)]
    enum Op {
        /// Upsert inspection of the pool index, on task 0/1, submitted, findings variant.
        Inspection(u8, u8, bool, u8),
        /// Upsert answer of the pool index, into inspection pool index, item, status.
        Answer(u8, u8, u8, u8),
        /// Upsert photo of the pool index, into inspection pool index, sha variant.
        Photo(u8, u8, u8),
        /// Delete from table 0/1/2 the pool index.
        Delete(u8, u8),
    }

    #[derive(Debug, Clone)]
    struct Case {
        inspections: Vec<StoredInsp>,
        answers: Vec<StoredChild>,
        photos: Vec<(u8, bool, i64)>,
        /// Deleted ids (pool indices past the stored ones) per table and their deletion seq.
        tombstones: Vec<(u8, u8, i64)>,
        last: i64,
        ops: Vec<Op>,
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        let op = prop_oneof![
            (0u8..8, 0u8..2, any::<bool>(), 0u8..3)
                .prop_map(|(a, b, c, d)| Op::Inspection(a, b, c, d)),
            (0u8..10, 0u8..8, 0u8..8, 0u8..3).prop_map(|(a, b, c, d)| Op::Answer(a, b, c, d)),
            (0u8..6, 0u8..8, 0u8..2).prop_map(|(a, b, c)| Op::Photo(a, b, c)),
            (0u8..3, 0u8..10).prop_map(|(a, b)| Op::Delete(a, b)),
        ];
        (
            prop::collection::vec((0u8..2, any::<bool>(), 1i64..10, 0u8..5), 0..5),
            prop::collection::vec((0u8..5, 0u8..8, 1i64..10), 0..8),
            prop::collection::vec((0u8..5, any::<bool>(), 1i64..10), 0..4),
            prop::collection::vec((0u8..3, 0u8..10, 1i64..10), 0..4),
            0i64..10,
            prop::collection::vec(op, 1..12),
        )
            .prop_map(
                |(inspections, answers, photos, tombstones, last, ops)| Case {
                    inspections,
                    answers,
                    photos,
                    tombstones,
                    last,
                    ops,
                },
            )
    }

    fn insp_id(i: u8) -> String {
        format!("i{i}")
    }
    fn answer_id(i: u8) -> String {
        format!("a{i}")
    }
    fn photo_id(i: u8) -> String {
        format!("p{i}")
    }
    const TABLES: [&str; 3] = ["inspections", "answers", "photos"];

    fn build(case: &Case) -> (Loaded, Push) {
        let mut l = world();
        for (n, (task, submitted, seq, state)) in case.inspections.iter().enumerate() {
            let id = insp_id(n as u8);
            let task = if *task == 0 { "t1" } else { "t2" };
            l.inspections.insert(
                id.clone(),
                StoredInspection {
                    rec: insp(&id, task, *submitted, 0),
                    submitted: *submitted,
                    review_state: STATES[*state as usize],
                    review_round: i64::from(*state > 0),
                    seq: *seq,
                },
            );
        }
        let n_insp = case.inspections.len() as u8;
        for (n, (parent, item, seq)) in case.answers.iter().enumerate() {
            if *parent >= n_insp {
                continue;
            }
            let id = answer_id(n as u8);
            l.answers.insert(
                id.clone(),
                StoredAnswer {
                    rec: AnswerRec {
                        id,
                        inspection_id: insp_id(*parent),
                        item_code: ITEMS[*item as usize].into(),
                        status: "pass".into(),
                        note: None,
                    },
                    seq: *seq,
                },
            );
        }
        for (n, (parent, uploaded, seq)) in case.photos.iter().enumerate() {
            if *parent >= n_insp {
                continue;
            }
            let id = photo_id(n as u8);
            l.photos.insert(
                id.clone(),
                StoredPhoto {
                    rec: PhotoRec {
                        id,
                        inspection_id: insp_id(*parent),
                        item_code: None,
                        sha256: "a".repeat(64),
                        byte_size: 100,
                        taken_at: 1_710_000_000_000,
                    },
                    uploaded: *uploaded,
                    seq: *seq,
                },
            );
        }
        for (table, idx, seq) in &case.tombstones {
            let id = match table {
                0 => insp_id(*idx),
                1 => answer_id(*idx),
                _ => photo_id(*idx),
            };
            let stored = match table {
                0 => l.inspections.contains_key(&id),
                1 => l.answers.contains_key(&id),
                _ => l.photos.contains_key(&id),
            };
            if !stored {
                l.tombstones
                    .insert((TABLES[*table as usize].to_string(), id), *seq);
            }
        }
        let mut p = Push::default();
        let mut seen: HashSet<(u8, String)> = HashSet::new();
        for op in &case.ops {
            match op {
                Op::Inspection(i, task, submitted, f) => {
                    if seen.insert((0, insp_id(*i))) {
                        let task = if *task == 0 { "t1" } else { "t2" };
                        p.inspections.push(insp(&insp_id(*i), task, *submitted, *f));
                    }
                }
                Op::Answer(a, i, item, status) => {
                    if seen.insert((1, answer_id(*a))) {
                        p.answers.push(AnswerRec {
                            id: answer_id(*a),
                            inspection_id: insp_id(*i),
                            item_code: ITEMS[*item as usize].into(),
                            status: ["pass", "fail", "not_applicable"][*status as usize].into(),
                            note: None,
                        });
                    }
                }
                Op::Photo(ph, i, sha) => {
                    if seen.insert((2, photo_id(*ph))) {
                        p.photos.push(PhotoRec {
                            id: photo_id(*ph),
                            inspection_id: insp_id(*i),
                            item_code: None,
                            sha256: if *sha == 0 { "a" } else { "b" }.repeat(64),
                            byte_size: 100,
                            taken_at: 1_710_000_000_000,
                        });
                    }
                }
                Op::Delete(t, x) => {
                    let id = match t {
                        0 => insp_id(*x),
                        1 => answer_id(*x),
                        _ => photo_id(*x),
                    };
                    if seen.insert((*t, id.clone())) {
                        p.deleted.push((TABLES[*t as usize], id));
                    }
                }
            }
        }
        (l, p)
    }

    /// The task an inspection lives on, as stored or as written in this decision.
    fn task_of<'a>(l: &'a Loaded, w: &'a Writes, inspection: &str) -> Option<&'a str> {
        l.inspections
            .get(inspection)
            .map(|e| e.rec.task_id.as_str())
            .or_else(|| {
                w.inspections
                    .iter()
                    .find(|(r, _)| r.id == inspection)
                    .map(|(r, _)| r.task_id.as_str())
            })
    }

    fn check(l: &Loaded, p: &Push, last: i64) -> Result<(), TestCaseError> {
        let deleted_after = |t: &str, id: &str| {
            l.tombstones
                .get(&(t.to_string(), id.to_string()))
                .is_some_and(|s| *s > last)
        };
        let undoes_deletion = p
            .inspections
            .iter()
            .any(|r| deleted_after("inspections", &r.id))
            || p.answers.iter().any(|r| {
                deleted_after("answers", &r.id) || deleted_after("inspections", &r.inspection_id)
            })
            || p.photos.iter().any(|r| {
                deleted_after("photos", &r.id) || deleted_after("inspections", &r.inspection_id)
            });
        let locked = |inspection: &str| l.inspections.get(inspection).is_some_and(|e| e.locked());
        // The inspection a pushed or deleted record belongs to, as pushed and as stored.
        let parents = |table: &str, id: &str| -> Vec<String> {
            let pushed = match table {
                "inspections" => Some(id.to_string()),
                "answers" => p
                    .answers
                    .iter()
                    .find(|a| a.id == id)
                    .map(|a| a.inspection_id.clone()),
                _ => p
                    .photos
                    .iter()
                    .find(|a| a.id == id)
                    .map(|a| a.inspection_id.clone()),
            };
            let stored = match table {
                "inspections" => None,
                "answers" => l.answers.get(id).map(|a| a.rec.inspection_id.clone()),
                _ => l.photos.get(id).map(|a| a.rec.inspection_id.clone()),
            };
            pushed.into_iter().chain(stored).collect()
        };
        let d = match decide(l, p, last) {
            Err(c) => {
                // A 409 is never for a change a lock refuses anyway (unless it would undo a
                // deletion made after the cursor).
                let undoes = deleted_after(c.table, &c.id)
                    || parents(c.table, &c.id)
                        .iter()
                        .any(|i| deleted_after("inspections", i));
                prop_assert!(
                    undoes || parents(c.table, &c.id).iter().all(|i| !locked(i)),
                    "a conflict on {} {} whose inspection is locked",
                    c.table,
                    c.id
                );
                return Ok(());
            }
            Ok(d) => d,
        };
        // No deletion is undone without a 409.
        prop_assert!(!undoes_deletion, "a deletion after the cursor was undone");
        let w = &d.writes;
        let member = |task: Option<&str>| {
            task.and_then(|t| l.tasks.get(t))
                .is_some_and(|t| t.is_member && t.team.iter().any(|o| o.user_id == PUSHER))
        };
        // No record changes owner; only the pusher's team's records change.
        for (r, _) in &w.inspections {
            if let Some(e) = l.inspections.get(&r.id) {
                prop_assert_eq!(&e.rec.task_id, &r.task_id);
                prop_assert!(e.seq <= last || e.rec == *r);
            }
            prop_assert!(member(Some(&r.task_id)));
            prop_assert!(!locked(&r.id), "a submitted inspection changed");
        }
        for a in &w.answers {
            if let Some(e) = l.answers.get(&a.id) {
                prop_assert_eq!(&e.rec.inspection_id, &a.inspection_id);
                prop_assert_eq!(&e.rec.item_code, &a.item_code);
                prop_assert!(e.seq <= last);
            }
            prop_assert!(member(task_of(l, w, &a.inspection_id)));
            prop_assert!(
                !locked(&a.inspection_id),
                "a submitted inspection's answer changed"
            );
        }
        for ph in &w.photos {
            if let Some(e) = l.photos.get(&ph.id) {
                prop_assert_eq!(&e.rec.inspection_id, &ph.inspection_id);
                prop_assert!(e.seq <= last);
                if e.uploaded {
                    prop_assert_eq!(&e.rec.sha256, &ph.sha256);
                }
            }
            prop_assert!(member(task_of(l, w, &ph.inspection_id)));
            prop_assert!(!locked(&ph.inspection_id));
        }
        for (table, id, task) in &w.deletes {
            prop_assert!(member(Some(task)));
            let parent = match *table {
                "inspections" => Some(id.clone()),
                "answers" => l.answers.get(id).map(|a| a.rec.inspection_id.clone()),
                _ => l.photos.get(id).map(|a| a.rec.inspection_id.clone()),
            };
            let parent = parent.expect("only stored records are deleted");
            prop_assert_eq!(task_of(l, w, &parent), Some(task.as_str()));
            prop_assert!(!locked(&parent), "a submitted inspection lost a record");
            if *table == "inspections" {
                prop_assert!(
                    !l.inspections[id].returned(),
                    "a returned inspection was deleted"
                );
            }
        }
        for s in &w.submissions {
            prop_assert!(!locked(&s.inspection_id));
            prop_assert!(member(Some(&s.task_id)));
        }
        // Every pushed record is written, refused, a no-op or (deletions) already gone.
        let refused: HashSet<(&str, &str)> = d
            .rejected
            .iter()
            .map(|r| (r.table.as_str(), r.id.as_str()))
            .collect();
        for r in &p.answers {
            let written = w.answers.iter().any(|a| a.id == r.id);
            let noop = l.answers.get(&r.id).is_some_and(|e| e.rec == *r);
            prop_assert!(written || noop || refused.contains(&("answers", r.id.as_str())));
        }
        // A change to a locked inspection is refused, with the lock's code when the pusher
        // may write the task at all.
        for r in &p.inspections {
            if let Some(e) = l.inspections.get(&r.id).filter(|e| e.rec != *r) {
                if let Some(lock) = e.lock() {
                    let got = d
                        .rejected
                        .iter()
                        .find(|x| x.table == "inspections" && x.id == r.id);
                    prop_assert!(
                        got.is_some(),
                        "a change to a locked inspection was not refused"
                    );
                    let code = got.map(|x| x.code.as_str()).unwrap_or_default();
                    prop_assert!(
                        code == lock.code() || code == "not_your_task",
                        "refused with {}, not {}",
                        code,
                        lock.code()
                    );
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decide_never_moves_undoes_or_unlocks(case in arb_case()) {
            let (l, p) = build(&case);
            check(&l, &p, case.last)?;
        }
    }

    #[test]
    fn submission_counts_only_active_officers_of_the_drawn_team() {
        let mut l = world();
        let t1 = l.tasks.get_mut("t1").unwrap();
        t1.team.push(officer("u5", None, true));
        t1.team.push(officer("u6", Some("TJ-u6"), false));
        let mut r = insp("i0", "t1", true, 0);
        let mut p = Push {
            answers: crate::checklist::catering_2016()
                .items()
                .map(|item| AnswerRec {
                    id: format!("a{}", item.code),
                    inspection_id: "i0".into(),
                    item_code: item.code.clone(),
                    status: "pass".into(),
                    note: None,
                })
                .collect(),
            ..Push::default()
        };
        let team = |members: &[(Option<&str>, Option<&str>, Option<&str>)]| {
            serde_json::to_string(
                &members
                    .iter()
                    .map(|(u, b, role)| TeamMember {
                        user_id: u.map(String::from),
                        name: "x".into(),
                        badge_no: b.map(String::from),
                        role: role.map(String::from),
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let code = |team_json: String, p: &mut Push, r: &mut InspectionRec| {
            r.team = team_json;
            p.inspections = vec![r.clone()];
            let d = decide(&l, p, 0).unwrap();
            d.rejected
                .iter()
                .find(|x| x.table == "inspections")
                .map(|x| x.code.clone())
        };
        let bad = [
            // Invented officers.
            team(&[(None, Some("TJ-1"), None), (Some("u9"), Some("TJ-2"), None)]),
            // One real officer and a consumer representative.
            team(&[
                (Some("u1"), None, None),
                (Some("u2"), Some("TJ-u2"), Some("consumer_rep")),
            ]),
            // The same officer twice.
            team(&[(Some("u1"), None, None), (Some("u1"), None, None)]),
            // No badge on the account, whatever the device says; a disabled account.
            team(&[(Some("u1"), None, None), (Some("u5"), Some("TJ-5"), None)]),
            team(&[(Some("u1"), None, None), (Some("u6"), Some("TJ-u6"), None)]),
            // Officers of another team.
            team(&[(Some("u1"), None, None), (Some("u3"), Some("TJ-u3"), None)]),
        ];
        for t in bad {
            assert_eq!(
                code(t.clone(), &mut p, &mut r).as_deref(),
                Some("team_too_small"),
                "{t}"
            );
        }
        // Two officers of the drawn team (badges from the accounts), plus a deputy.
        let ok = team(&[
            (Some("u1"), None, None),
            (Some("u2"), None, Some("officer")),
            (None, None, Some("npc_deputy")),
        ]);
        assert_eq!(code(ok, &mut p, &mut r), None);
        let d = decide(&l, &p, 0).unwrap();
        assert_eq!(d.writes.submissions.len(), 1);
    }
}
