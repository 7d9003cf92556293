//! The audit events of a push, derived (pure) from what was stored before and what the push
//! writes: the same loaded state `decide` looked at, so before/after are exact. A replayed push
//! writes nothing new and records nothing.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::audit::{Action, Change, Event, RecordKind};
use crate::review::ReviewState;
use crate::sync::decide::{result_code, Loaded, Writes};
use crate::sync::push::AnswerRec;

/// Events for `w`, in a stable order: inspections, answers (one event per inspection, one
/// change per item), photos, deletions, task starts, submissions.
pub fn events(loaded: &Loaded, w: &Writes) -> Vec<Event> {
    let mut out = Vec::new();
    for (rec, _) in &w.inspections {
        match loaded.inspections.get(&rec.id) {
            Some(stored) => {
                let e = Event::new(Action::InspectionUpdated, RecordKind::Inspection, &rec.id)
                    .diff(&stored.rec, rec);
                if !e.changes.is_empty() {
                    out.push(e);
                }
            }
            None => out.push(
                Event::new(Action::InspectionCreated, RecordKind::Inspection, &rec.id).created(rec),
            ),
        }
    }

    // Answers, grouped by inspection; a change per item code: {status, note} before and after.
    let mut answers: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
    for a in &w.answers {
        let before = loaded
            .answers
            .get(&a.id)
            .map(|s| answer_state(&s.rec))
            .unwrap_or(Value::Null);
        let after = answer_state(a);
        if before != after {
            answers.entry(&a.inspection_id).or_default().push(Change {
                field: a.item_code.clone(),
                before,
                after,
            });
        }
    }
    for (table, id, _) in &w.deletes {
        if *table != "answers" {
            continue;
        }
        if let Some(s) = loaded.answers.get(id) {
            answers
                .entry(&s.rec.inspection_id)
                .or_default()
                .push(Change {
                    field: s.rec.item_code.clone(),
                    before: answer_state(&s.rec),
                    after: Value::Null,
                });
        }
    }
    for (inspection, changes) in answers {
        let mut e = Event::new(Action::AnswersChanged, RecordKind::Inspection, inspection);
        e.changes = changes;
        out.push(e);
    }

    for p in &w.photos {
        match loaded.photos.get(&p.id) {
            Some(stored) => {
                let e = Event::new(Action::PhotoRecorded, RecordKind::Photo, &p.id)
                    .diff(&stored.rec, p);
                if !e.changes.is_empty() {
                    out.push(e);
                }
            }
            None => {
                out.push(Event::new(Action::PhotoRecorded, RecordKind::Photo, &p.id).created(p))
            }
        }
    }

    for (table, id, _) in &w.deletes {
        match *table {
            "inspections" => {
                if let Some(s) = loaded.inspections.get(id) {
                    out.push(
                        Event::new(Action::InspectionDeleted, RecordKind::Inspection, id)
                            .diff(&s.rec, &Value::Null),
                    );
                }
            }
            "photos" => {
                if let Some(s) = loaded.photos.get(id) {
                    out.push(
                        Event::new(Action::PhotoDeleted, RecordKind::Photo, id)
                            .diff(&s.rec, &Value::Null),
                    );
                }
            }
            _ => {}
        }
    }

    for task in &w.started_tasks {
        out.push(
            Event::new(Action::TaskStateChanged, RecordKind::Task, task).change(
                "state",
                "assigned",
                "in_progress",
            ),
        );
    }

    for s in &w.submissions {
        let stored = loaded.inspections.get(&s.inspection_id);
        out.push(
            Event::new(
                Action::InspectionSubmitted,
                RecordKind::Inspection,
                &s.inspection_id,
            )
            .change("submitted", false, true)
            .change(
                "review_state",
                stored.and_then(|i| i.review_state),
                ReviewState::Submitted,
            )
            .change(
                "review_round",
                stored.map_or(0, |i| i.review_round),
                s.round,
            )
            .set("computed_result", result_code(s.evaluation.result))
            .set("evaluation", &s.evaluation)
            .set("flags", &s.flags)
            .set("task_id", &s.task_id)
            .change("task_state", "in_progress", "submitted"),
        );
    }
    out
}

/// What an answer change records of an answer: its status and note.
fn answer_state(a: &AnswerRec) -> Value {
    json!({"status": a.status, "note": a.note})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::decide::{StoredAnswer, StoredInspection};
    use crate::sync::push::InspectionRec;

    fn inspection(id: &str, opinion: Option<&str>) -> InspectionRec {
        InspectionRec {
            id: id.into(),
            task_id: "t1".into(),
            establishment_id: "e1".into(),
            started_at: 1,
            finished_at: None,
            lng: None,
            lat: None,
            gps_accuracy_m: None,
            crs: None,
            team: "[]".into(),
            representative_name: None,
            representative_signed: false,
            representative_refused: false,
            business_opinion: opinion.map(str::to_owned),
            other_findings: None,
            declared_result: None,
            submitted: false,
        }
    }

    fn answer(id: &str, item: &str, status: &str) -> AnswerRec {
        AnswerRec {
            id: id.into(),
            inspection_id: "i1".into(),
            item_code: item.into(),
            status: status.into(),
            note: None,
        }
    }

    #[test]
    fn new_records_are_created_changes_are_diffed_and_a_replay_records_nothing() {
        let mut loaded = Loaded::default();
        let mut w = Writes::default();
        w.inspections.push((inspection("i1", None), None));
        w.answers.push(answer("a1", "1.1", "pass"));
        let first = events(&loaded, &w);
        let kinds: Vec<_> = first.iter().map(|e| e.action).collect();
        assert_eq!(kinds, [Action::InspectionCreated, Action::AnswersChanged]);
        assert_eq!(first[1].changes[0].field, "1.1");
        assert_eq!(first[1].changes[0].before, Value::Null);

        // The same push again, now stored: nothing changed, nothing recorded.
        loaded.inspections.insert(
            "i1".into(),
            StoredInspection {
                rec: inspection("i1", None),
                submitted: false,
                review_state: None,
                review_round: 0,
                seq: 1,
            },
        );
        loaded.answers.insert(
            "a1".into(),
            StoredAnswer {
                rec: answer("a1", "1.1", "pass"),
                seq: 1,
            },
        );
        assert!(events(&loaded, &w).is_empty());

        // A changed opinion and a changed answer: exactly those fields, from → to.
        let mut w2 = Writes::default();
        w2.inspections
            .push((inspection("i1", Some("无异议")), None));
        w2.answers.push(answer("a1", "1.1", "fail"));
        let e = events(&loaded, &w2);
        assert_eq!(e[0].action, Action::InspectionUpdated);
        assert_eq!(e[0].changes.len(), 1);
        assert_eq!(e[0].changes[0].field, "business_opinion");
        assert_eq!(e[0].changes[0].after, json!("无异议"));
        assert_eq!(e[1].changes[0].before["status"], json!("pass"));
        assert_eq!(e[1].changes[0].after["status"], json!("fail"));

        // A deleted answer: before is kept, after is null.
        let mut w3 = Writes::default();
        w3.deletes.push(("answers", "a1".into(), "t1".into()));
        let e = events(&loaded, &w3);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].changes[0].after, Value::Null);
    }
}
