//! The sync protocol's use cases: a scoped, consistent pull and an all-or-nothing push with
//! per-record refusals.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::checklist::rule::{evaluate, Answer, ItemStatus};
use crate::error::AppError;
use crate::store::sync::{self as q, Author};
use crate::store::{self, Db};
use crate::sync::push::{self, AnswerRec, InspectionRec, PhotoRec};
use crate::sync::{self as schema, MigrationRequest};

/// Who syncs.
pub struct Syncer<'a> {
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
}

impl Syncer<'_> {
    /// Rows remember the user and device that created them (`user/device`): two users may
    /// name their phones alike.
    fn origin(&self) -> Option<String> {
        self.device_id.map(|d| format!("{}/{d}", self.user_id))
    }
}

#[derive(Default)]
struct TableChanges {
    created: Vec<Value>,
    updated: Vec<Value>,
    deleted: Vec<String>,
}

fn num(v: Option<f64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

fn text(v: Option<&str>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

/// Keeps only the columns a client of `version` has.
fn shape(table: &str, version: u32, mut rec: Map<String, Value>) -> Value {
    if let Some(t) = schema::table(table) {
        rec.retain(|k, _| k == "id" || t.columns_at(version).any(|c| c.name == k));
    }
    Value::Object(rec)
}

/// The answer to a pull.
pub struct Pull {
    pub body: Value,
}

/// Reads the user's changes since `last` from one snapshot.
pub async fn pull(
    db: &Db,
    who: &Syncer<'_>,
    last: Option<i64>,
    version: u32,
    migration: Option<MigrationRequest>,
) -> Result<Pull, AppError> {
    let mut tx = db.begin_snapshot().await?;
    let now = q::current_seq(&mut tx).await?;
    if let Some(l) = last {
        if l > now {
            return Err(AppError::bad_request(
                "invalid_cursor",
                format!("last_pulled_at {l} is ahead of the server ({now})"),
            ));
        }
    }
    let purged = q::purged_through(&mut tx).await?;
    // Tombstones after the cursor may be gone: send everything, as a replacement.
    let replacement = last.is_some_and(|l| l < purged);
    let since = if replacement { None } else { last };
    let base = since.unwrap_or(-1);
    let migrated_tables: HashSet<String> = migration
        .as_ref()
        .map(|m| {
            m.tables
                .iter()
                .cloned()
                .chain(m.columns.iter().map(|c| c.table.clone()))
                .collect()
        })
        .unwrap_or_default();
    // Tables the app did not have before its upgrade: every row is new to it.
    let new_tables: HashSet<String> = migration
        .as_ref()
        .map(|m| m.tables.iter().cloned().collect())
        .unwrap_or_default();
    let since_for = |table: &str| {
        if migrated_tables.contains(table) {
            -1
        } else {
            base
        }
    };
    let mut changes: HashMap<&'static str, TableChanges> = schema::tables_at(version)
        .map(|t| (t.name, TableChanges::default()))
        .collect();
    let user = who.user_id;
    let origin = who.origin();
    let device = origin.as_deref();
    // New to the device: created after the cursor, by someone else's device.
    let is_new = |created_seq: i64, origin: Option<&str>| {
        since.is_none_or(|s| created_seq > s && (origin.is_none() || origin != device))
    };

    // Nothing at all has changed since the cursor: answer at once.
    let unchanged = since == Some(now) && migrated_tables.is_empty();
    if !unchanged {
        for t in q::pull_tasks(&mut tx, user, since_for("tasks")).await? {
            let new = is_new(t.created_seq, None);
            let rec = json!({"id": t.id, "plan_id": t.plan_id, "establishment_id": t.establishment_id, "template_id": t.template_id,
                "template_version": t.template_version, "due_date": t.due_date, "state": t.state,
                "must_check_items": t.must_check_items, "round_title": t.round_title});
            push_rec(&mut changes, "tasks", version, new, rec);
        }
        for e in q::pull_establishments(&mut tx, user, since_for("establishments")).await? {
            let new = is_new(e.first_seq, None);
            let rec = json!({"id": e.id, "sign_name": e.sign_name, "licensed_name": e.licensed_name, "address": e.address,
                "town": e.town, "category": e.category, "risk_grade": e.risk_grade, "lng": num(e.raw_lng), "lat": num(e.raw_lat),
                "crs": text(e.crs.as_deref())});
            push_rec(&mut changes, "establishments", version, new, rec);
        }
        for v in q::pull_versions(&mut tx, user, since_for("checklist_versions")).await? {
            let new = is_new(v.first_seq, None);
            let rec = json!({"id": format!("{}:{}", v.template_id, v.version), "template_id": v.template_id, "version": v.version,
                "title": v.title, "content": v.content});
            push_rec(&mut changes, "checklist_versions", version, new, rec);
        }
        for i in q::pull_inspections(&mut tx, user, since_for("inspections")).await? {
            let new = is_new(i.created_seq, i.origin_device.as_deref());
            push_rec(
                &mut changes,
                "inspections",
                version,
                new,
                inspection_json(&i),
            );
        }
        for a in q::pull_answers(&mut tx, user, since_for("answers")).await? {
            let new = is_new(a.created_seq, a.origin_device.as_deref());
            let rec = json!({"id": a.id, "inspection_id": a.inspection_id, "item_code": a.item_code, "status": a.status, "note": text(a.note.as_deref())});
            push_rec(&mut changes, "answers", version, new, rec);
        }
        if changes.contains_key("photos") {
            for p in q::pull_photos(&mut tx, user, since_for("photos")).await? {
                let new = new_tables.contains("photos")
                    || is_new(p.created_seq, p.origin_device.as_deref());
                let rec = json!({"id": p.id, "inspection_id": p.inspection_id, "item_code": text(p.item_code.as_deref()),
                    "sha256": p.sha256, "byte_size": p.byte_size, "taken_at": p.taken_at, "processing_status": p.processing_status,
                    "width": p.width, "height": p.height, "exif_taken_at": p.exif_taken_at, "exif_lng": num(p.exif_lng),
                    "exif_lat": num(p.exif_lat), "flags": text(p.flags.as_deref())});
                push_rec(&mut changes, "photos", version, new, rec);
            }
        }
        if let Some(s) = since {
            for (table, id) in q::pull_tombstones(&mut tx, user, s, device).await? {
                if let Some(c) = changes.get_mut(table.as_str()) {
                    c.deleted.push(id);
                }
            }
        }
    }
    drop(tx);
    let mut out = Map::new();
    for (name, c) in changes {
        out.insert(
            name.to_string(),
            json!({"created": c.created, "updated": c.updated, "deleted": c.deleted}),
        );
    }
    let mut body = json!({"changes": out, "timestamp": now});
    if replacement {
        body["experimentalStrategy"] = json!("replacement");
    }
    Ok(Pull { body })
}

fn push_rec(
    changes: &mut HashMap<&'static str, TableChanges>,
    table: &'static str,
    version: u32,
    new: bool,
    rec: Value,
) {
    let Some(c) = changes.get_mut(table) else {
        return;
    };
    let Value::Object(map) = rec else { return };
    let shaped = shape(table, version, map);
    if new {
        c.created.push(shaped);
    } else {
        c.updated.push(shaped);
    }
}

pub fn inspection_json(i: &q::InspectionRow) -> Value {
    json!({"id": i.id, "task_id": i.task_id, "establishment_id": i.establishment_id, "started_at": i.started_at,
        "finished_at": i.finished_at, "lng": num(i.lng), "lat": num(i.lat), "gps_accuracy_m": num(i.gps_accuracy_m),
        "crs": text(i.crs.as_deref()), "team": i.team, "representative_name": text(i.representative_name.as_deref()),
        "representative_signed": i.representative_signed != 0, "representative_refused": i.representative_refused != 0,
        "business_opinion": text(i.business_opinion.as_deref()), "other_findings": text(i.other_findings.as_deref()),
        "declared_result": text(i.declared_result.as_deref()), "submitted": i.submitted != 0,
        "computed_result": text(i.computed_result.as_deref()), "review_state": text(i.review_state.as_deref()),
        "server_flags": text(i.server_flags.as_deref())})
}

/// One refused record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejected {
    pub table: String,
    pub id: String,
    /// See the refusal codes in api-spec/sync.md.
    pub code: String,
    pub message: String,
}

fn reject(out: &mut Vec<Rejected>, table: &str, id: &str, code: &str, message: impl Into<String>) {
    out.push(Rejected {
        table: table.into(),
        id: id.into(),
        code: code.into(),
        message: message.into(),
    });
}

fn conflict(table: &str, id: &str) -> AppError {
    AppError::conflict(
        "sync_conflict",
        format!(
            "{table} {id} changed on the server after last_pulled_at; pull, merge and push again"
        ),
    )
}

/// Applies a push in one transaction. Returns the refused records (the rest is applied), or
/// 409 `sync_conflict` with nothing applied.
pub async fn push(
    db: &Db,
    who: &Syncer<'_>,
    last: i64,
    parsed: push::Push,
    geofence: &crate::photo::geofence::GeofenceConfig,
) -> Result<Vec<Rejected>, AppError> {
    let mut rejected = Vec::new();
    let mut tx = db.begin_write().await?;
    // Taken first: it orders this push after every earlier commit, and (on PostgreSQL) holds
    // off concurrent pushes until this one commits, so the checks below stay true.
    let seq = q::next_seq(tx.conn()).await?;
    if last < 0 || last >= seq {
        return Err(AppError::bad_request(
            "invalid_cursor",
            format!("last_pulled_at {last} is not a cursor this server gave out"),
        ));
    }
    for (table, id) in &parsed.read_only {
        reject(
            &mut rejected,
            table,
            id,
            "read_only",
            format!("{table} is read-only on devices"),
        );
    }
    let origin = who.origin();
    let by = Author {
        user_id: who.user_id,
        device_id: origin.as_deref(),
        seq,
    };

    // --- context -------------------------------------------------------------------------
    let answer_ids: Vec<String> = parsed
        .answers
        .iter()
        .map(|a| a.id.clone())
        .chain(
            parsed
                .deleted
                .iter()
                .filter(|(t, _)| *t == "answers")
                .map(|(_, id)| id.clone()),
        )
        .collect();
    let existing_answers: HashMap<String, q::AnswerRow> = q::answers_by_ids(tx.conn(), &answer_ids)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let photo_ids: Vec<String> = parsed
        .photos
        .iter()
        .map(|p| p.id.clone())
        .chain(
            parsed
                .deleted
                .iter()
                .filter(|(t, _)| *t == "photos")
                .map(|(_, id)| id.clone()),
        )
        .collect();
    let existing_photos: HashMap<String, q::PhotoRow> = q::photos_by_ids(tx.conn(), &photo_ids)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    // Every inspection involved: pushed, parent of a pushed or stored answer/photo, deleted.
    let insp_ids: Vec<String> = parsed
        .inspections
        .iter()
        .map(|i| i.id.clone())
        .chain(parsed.answers.iter().map(|a| a.inspection_id.clone()))
        .chain(parsed.photos.iter().map(|p| p.inspection_id.clone()))
        .chain(existing_answers.values().map(|a| a.inspection_id.clone()))
        .chain(existing_photos.values().map(|p| p.inspection_id.clone()))
        .chain(
            parsed
                .deleted
                .iter()
                .filter(|(t, _)| *t == "inspections")
                .map(|(_, id)| id.clone()),
        )
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let existing_insp: HashMap<String, q::InspectionRow> =
        q::inspections_by_ids(tx.conn(), &insp_ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    let task_ids: Vec<String> = parsed
        .inspections
        .iter()
        .map(|i| i.task_id.clone())
        .chain(existing_insp.values().map(|i| i.task_id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let tasks: HashMap<String, q::TaskInfo> = q::tasks_info(tx.conn(), who.user_id, &task_ids)
        .await?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();

    // --- conflicts: any pushed change to a record changed since the cursor ---------------
    let mut noop: HashSet<(&str, String)> = HashSet::new();
    for r in &parsed.inspections {
        if let Some(e) = existing_insp.get(&r.id) {
            if e.as_rec() == *r {
                noop.insert(("inspections", r.id.clone()));
            } else if e.seq > last {
                return Err(conflict("inspections", &r.id));
            }
        }
    }
    for r in &parsed.answers {
        if let Some(e) = existing_answers.get(&r.id) {
            if e.as_rec() == *r {
                noop.insert(("answers", r.id.clone()));
            } else if e.seq > last {
                return Err(conflict("answers", &r.id));
            }
        }
    }
    for r in &parsed.photos {
        if let Some(e) = existing_photos.get(&r.id) {
            if e.as_rec() == *r {
                noop.insert(("photos", r.id.clone()));
            } else if e.seq > last {
                return Err(conflict("photos", &r.id));
            }
        }
    }
    for (table, id) in &parsed.deleted {
        let changed = match *table {
            "inspections" => existing_insp.get(id).map(|e| e.seq),
            "answers" => existing_answers.get(id).map(|e| e.seq),
            _ => existing_photos.get(id).map(|e| e.seq),
        };
        if changed.is_some_and(|s| s > last) {
            return Err(conflict(table, id));
        }
    }

    // --- templates of the inspections involved --------------------------------------------
    let mut templates: HashMap<(String, i64), crate::checklist::TemplateContent> = HashMap::new();
    for t in tasks.values() {
        let key = (t.template_id.clone(), t.template_version);
        if let std::collections::hash_map::Entry::Vacant(slot) = templates.entry(key) {
            if let Some(v) =
                store::checklists::version_in(tx.conn(), &t.template_id, t.template_version).await?
            {
                slot.insert(v.content);
            }
        }
    }
    // Is an inspection (existing, or pushed) writable by this user, and what is its task?
    let writable_task = |task_id: &str| -> Result<&q::TaskInfo, (&'static str, String)> {
        match tasks.get(task_id) {
            Some(t) if t.is_member == 1 => {
                if t.state == "cancelled" {
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

    // --- inspections: decide ------------------------------------------------------------
    let mut accepted_insp: HashMap<String, Accepted> = HashMap::new();
    for r in &parsed.inspections {
        if noop.contains(&("inspections", r.id.clone())) {
            continue;
        }
        let task = match writable_task(&r.task_id) {
            Ok(t) => t,
            Err((code, m)) => {
                reject(&mut rejected, "inspections", &r.id, code, m);
                continue;
            }
        };
        if let Some(e) = existing_insp.get(&r.id) {
            if e.submitted != 0 && e.review_state.as_deref() != Some("returned") {
                reject(
                    &mut rejected,
                    "inspections",
                    &r.id,
                    "read_only",
                    "the inspection is submitted and read-only",
                );
                continue;
            }
            if e.task_id != r.task_id {
                reject(
                    &mut rejected,
                    "inspections",
                    &r.id,
                    "invalid_record",
                    "an inspection cannot move to another task",
                );
                continue;
            }
        }
        if r.establishment_id != task.establishment_id {
            reject(
                &mut rejected,
                "inspections",
                &r.id,
                "invalid_record",
                "establishment_id is not the task's establishment",
            );
            continue;
        }
        let team = match r.check() {
            Ok(t) => t,
            Err(m) => {
                reject(&mut rejected, "inspections", &r.id, "invalid_record", m);
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
        accepted_insp.insert(r.id.clone(), (r, wgs84, team));
    }
    // The inspection an answer or photo belongs to, if it can be written.
    let parent = |inspection_id: &str| -> Result<(&q::TaskInfo, bool), (&'static str, String)> {
        if let Some((r, _, _)) = accepted_insp.get(inspection_id) {
            return writable_task(&r.task_id).map(|t| (t, false));
        }
        match existing_insp.get(inspection_id) {
            Some(e) => {
                let t = writable_task(&e.task_id)?;
                let locked = e.submitted != 0 && e.review_state.as_deref() != Some("returned");
                Ok((t, locked))
            }
            None => Err((
                "unknown_inspection",
                "the inspection is not on the server (or was refused)".into(),
            )),
        }
    };

    // --- answers: decide ------------------------------------------------------------------
    let mut accepted_answers: Vec<&AnswerRec> = Vec::new();
    let pushed_deleted: HashSet<&str> = parsed.deleted.iter().map(|(_, id)| id.as_str()).collect();
    let all_inspections: Vec<String> = accepted_insp
        .keys()
        .cloned()
        .chain(existing_insp.keys().cloned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let stored_answers = q::answers_of(tx.conn(), &all_inspections).await?;
    let mut answer_by_item: HashMap<(String, String), String> = stored_answers
        .iter()
        .filter(|a| !pushed_deleted.contains(a.id.as_str()))
        .map(|a| ((a.inspection_id.clone(), a.item_code.clone()), a.id.clone()))
        .collect();
    for r in &parsed.answers {
        if noop.contains(&("answers", r.id.clone())) {
            continue;
        }
        let (task, locked) = match parent(&r.inspection_id) {
            Ok(p) => p,
            Err((code, m)) => {
                reject(&mut rejected, "answers", &r.id, code, m);
                continue;
            }
        };
        if locked {
            reject(
                &mut rejected,
                "answers",
                &r.id,
                "read_only",
                "the inspection is submitted and read-only",
            );
            continue;
        }
        if let Err(m) = r.check() {
            reject(&mut rejected, "answers", &r.id, "invalid_record", m);
            continue;
        }
        let Some(template) = templates.get(&(task.template_id.clone(), task.template_version))
        else {
            reject(
                &mut rejected,
                "answers",
                &r.id,
                "unknown_item",
                "the task's checklist version is missing",
            );
            continue;
        };
        let Some(item) = template.item(&r.item_code) else {
            reject(
                &mut rejected,
                "answers",
                &r.id,
                "unknown_item",
                format!(
                    "item {:?} is not in checklist version {}",
                    r.item_code, task.template_version
                ),
            );
            continue;
        };
        if r.status == "not_applicable" && !item.na_allowed {
            reject(
                &mut rejected,
                "answers",
                &r.id,
                "not_applicable_not_allowed",
                format!("item {} does not allow 合理缺项", r.item_code),
            );
            continue;
        }
        let key = (r.inspection_id.clone(), r.item_code.clone());
        match answer_by_item.get(&key) {
            Some(other) if *other != r.id => {
                reject(
                    &mut rejected,
                    "answers",
                    &r.id,
                    "duplicate_answer",
                    format!("answer {other} already records item {}", r.item_code),
                );
                continue;
            }
            _ => {
                answer_by_item.insert(key, r.id.clone());
            }
        }
        accepted_answers.push(r);
    }

    // --- photos: decide -------------------------------------------------------------------
    let mut accepted_photos: Vec<&PhotoRec> = Vec::new();
    for r in &parsed.photos {
        if noop.contains(&("photos", r.id.clone())) {
            continue;
        }
        match parent(&r.inspection_id) {
            Err((code, m)) => reject(&mut rejected, "photos", &r.id, code, m),
            Ok((_, true)) => reject(
                &mut rejected,
                "photos",
                &r.id,
                "read_only",
                "the inspection is submitted and read-only",
            ),
            Ok((_, false)) => match r.check() {
                Err(m) => reject(&mut rejected, "photos", &r.id, "invalid_record", m),
                Ok(()) => accepted_photos.push(r),
            },
        }
    }

    // --- submissions: coverage with the answers as they will be -------------------------
    let mut submissions: Vec<(String, crate::checklist::rule::Evaluation, Vec<String>)> =
        Vec::new();
    let mut refused_insp: HashSet<String> = HashSet::new();
    for (id, (r, _, team)) in &accepted_insp {
        let already = existing_insp.get(id).is_some_and(|e| e.submitted != 0);
        if !r.submitted || already {
            continue;
        }
        let Some(task) = tasks.get(&r.task_id) else {
            continue;
        };
        let Some(template) = templates.get(&(task.template_id.clone(), task.template_version))
        else {
            continue;
        };
        let mut by_item: HashMap<String, ItemStatus> = stored_answers
            .iter()
            .filter(|a| a.inspection_id == *id && !pushed_deleted.contains(a.id.as_str()))
            .filter_map(|a| status(&a.status).map(|s| (a.item_code.clone(), s)))
            .collect();
        for a in accepted_answers.iter().filter(|a| a.inspection_id == *id) {
            if let Some(s) = status(&a.status) {
                by_item.insert(a.item_code.clone(), s);
            }
        }
        let answers: Vec<Answer> = by_item
            .into_iter()
            .map(|(item_code, status)| Answer { item_code, status })
            .collect();
        let evaluation = evaluate(template, &answers);
        let officers = team
            .iter()
            .filter(|m| m.badge_no.as_deref().is_some_and(|b| !b.trim().is_empty()))
            .count();
        if !evaluation.coverage_ok {
            let m = evaluation
                .problems
                .iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            reject(
                &mut rejected,
                "inspections",
                id,
                "coverage_below_minimum",
                m,
            );
            refused_insp.insert(id.clone());
        } else if officers < 2 {
            reject(
                &mut rejected,
                "inspections",
                id,
                "team_too_small",
                "a submitted inspection names at least two officers with badge numbers",
            );
            refused_insp.insert(id.clone());
        } else {
            let mut flags = Vec::new();
            if r.declared_result
                .as_deref()
                .is_some_and(|d| d != result_code(evaluation.result))
            {
                flags.push("declared_result_differs");
            }
            submissions.push((
                id.clone(),
                evaluation,
                flags.into_iter().map(String::from).collect(),
            ));
        }
    }
    // A refused new inspection takes its new answers and photos with it.
    let orphaned = |inspection_id: &str| {
        refused_insp.contains(inspection_id) && !existing_insp.contains_key(inspection_id)
    };
    let mut writes_answers = Vec::new();
    for a in accepted_answers {
        if orphaned(&a.inspection_id) {
            reject(
                &mut rejected,
                "answers",
                &a.id,
                "unknown_inspection",
                "its inspection was refused in this push",
            );
        } else {
            writes_answers.push(a);
        }
    }
    let mut writes_photos = Vec::new();
    for p in accepted_photos {
        if orphaned(&p.inspection_id) {
            reject(
                &mut rejected,
                "photos",
                &p.id,
                "unknown_inspection",
                "its inspection was refused in this push",
            );
        } else {
            writes_photos.push(p);
        }
    }

    // --- write ----------------------------------------------------------------------------
    for (id, (r, wgs84, _)) in &accepted_insp {
        if refused_insp.contains(id) {
            continue;
        }
        q::upsert_inspection(tx.conn(), r, *wgs84, &by).await?;
        if tasks.get(&r.task_id).is_some_and(|t| t.state == "assigned") {
            q::advance_task(tx.conn(), &r.task_id, "in_progress", seq).await?;
        }
    }
    let written: Vec<String> = accepted_insp
        .keys()
        .filter(|id| !refused_insp.contains(*id))
        .cloned()
        .collect();
    q::clear_tombstones(tx.conn(), "inspections", &written).await?;
    q::upsert_answers(tx.conn(), &writes_answers, &by).await?;
    let answer_ids: Vec<String> = writes_answers.iter().map(|a| a.id.clone()).collect();
    q::clear_tombstones(tx.conn(), "answers", &answer_ids).await?;
    for p in &writes_photos {
        q::upsert_photo(tx.conn(), p, &by).await?;
    }
    let photo_ids: Vec<String> = writes_photos.iter().map(|p| p.id.clone()).collect();
    q::clear_tombstones(tx.conn(), "photos", &photo_ids).await?;
    // Deletions: children first; an inspection's deletion takes its answers and photos.
    let mut deletes: Vec<&(&'static str, String)> = parsed.deleted.iter().collect();
    deletes.sort_by_key(|(t, _)| if *t == "inspections" { 1 } else { 0 });
    for (table, id) in deletes {
        let inspection_id = match *table {
            "inspections" => existing_insp.get(id).map(|e| e.id.clone()),
            "answers" => existing_answers.get(id).map(|e| e.inspection_id.clone()),
            _ => existing_photos.get(id).map(|e| e.inspection_id.clone()),
        };
        let Some(inspection_id) = inspection_id else {
            continue;
        }; // already gone: a no-op
        let (task, locked) = match existing_insp.get(&inspection_id) {
            Some(e) => match writable_task(&e.task_id) {
                Ok(t) => (
                    t,
                    e.submitted != 0 && e.review_state.as_deref() != Some("returned"),
                ),
                Err((code, m)) => {
                    reject(&mut rejected, table, id, code, m);
                    continue;
                }
            },
            None => continue,
        };
        if locked {
            reject(
                &mut rejected,
                table,
                id,
                "read_only",
                "the inspection is submitted and read-only",
            );
            continue;
        }
        if *table == "inspections" {
            for a in q::answers_of(tx.conn(), std::slice::from_ref(id)).await? {
                q::delete_with_tombstone(tx.conn(), "answers", &a.id, &task.id, &by).await?;
            }
            for p in q::photos_of(tx.conn(), std::slice::from_ref(id)).await? {
                q::delete_with_tombstone(tx.conn(), "photos", &p.id, &task.id, &by).await?;
            }
        }
        q::delete_with_tombstone(tx.conn(), table, id, &task.id, &by).await?;
    }
    for (id, evaluation, flags) in submissions {
        let Some((r, _, _)) = accepted_insp.get(&id) else {
            continue;
        };
        let evaluation_json =
            serde_json::to_string(&evaluation).map_err(|e| AppError::Internal(e.into()))?;
        let flags_json = serde_json::to_string(&flags).map_err(|e| AppError::Internal(e.into()))?;
        q::submit_inspection(
            tx.conn(),
            &id,
            result_code(evaluation.result),
            &evaluation_json,
            &flags_json,
            seq,
        )
        .await?;
        q::advance_task(tx.conn(), &r.task_id, "submitted", seq).await?;
        let failed = serde_json::to_string(&evaluation.failed_items)
            .map_err(|e| AppError::Internal(e.into()))?;
        store::plans::set_followup(tx.conn(), &r.establishment_id, &failed, Some(&r.task_id))
            .await?;
        store::audit(
            tx.conn(),
            Some(who.user_id),
            "inspection.submit",
            "inspection",
            &id,
            Some(result_code(evaluation.result)),
        )
        .await?;
    }
    crate::ops::inspection_flags::refresh(tx.conn(), &written, geofence).await?;
    tx.commit().await?;
    Ok(rejected)
}

/// An inspection accepted for writing: the record, its WGS-84 point, its team.
type Accepted<'a> = (&'a InspectionRec, Option<(f64, f64)>, Vec<push::TeamMember>);

fn status(s: &str) -> Option<ItemStatus> {
    match s {
        "pass" => Some(ItemStatus::Pass),
        "fail" => Some(ItemStatus::Fail),
        "not_applicable" => Some(ItemStatus::NotApplicable),
        _ => None,
    }
}

fn result_code(r: crate::checklist::rule::ResultCode) -> &'static str {
    use crate::checklist::rule::ResultCode;
    match r {
        ResultCode::Compliant => "compliant",
        ResultCode::BasicallyCompliant => "basically_compliant",
        ResultCode::NonCompliant => "non_compliant",
    }
}
