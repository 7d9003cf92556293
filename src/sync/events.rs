//! The audit events of a push, derived (pure) from what was stored before and what the push
//! writes: the same loaded state `decide` looked at, so before/after are exact. A replayed push
//! writes nothing new and records nothing.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::audit::{Action, Change, Event, RecordKind};
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

    // Answers, grouped by inspection: one event per inspection with (at most) two changes,
    // `status` and `note`, each mapping only the item codes that changed to their value before
    // and after (null: no answer). Compact on purpose: a full checklist is one small map, not
    // 35 objects (the push's throughput, BENCHMARKS.md).
    let mut answers: BTreeMap<&str, AnswerChanges> = BTreeMap::new();
    for a in &w.answers {
        let before = loaded.answers.get(&a.id).map(|s| &s.rec);
        answers
            .entry(&a.inspection_id)
            .or_default()
            .record(&a.item_code, before, Some(a));
    }
    for (table, id, _) in &w.deletes {
        if *table != "answers" {
            continue;
        }
        if let Some(s) = loaded.answers.get(id) {
            answers.entry(&s.rec.inspection_id).or_default().record(
                &s.rec.item_code,
                Some(&s.rec),
                None,
            );
        }
    }
    for (inspection, c) in answers {
        let mut e = Event::new(Action::AnswersChanged, RecordKind::Inspection, inspection);
        for (field, (before, after)) in [("status", c.status), ("note", c.note)] {
            if !after.is_empty() {
                e.changes.push(Change {
                    field: field.into(),
                    before: Value::Object(before),
                    after: Value::Object(after),
                });
            }
        }
        if !e.changes.is_empty() {
            out.push(e);
        }
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
        out.push(
            Event::new(
                Action::InspectionSubmitted,
                RecordKind::Inspection,
                &s.inspection_id,
            )
            .change("submitted", false, true)
            .set("computed_result", result_code(s.evaluation.result))
            .set("evaluation", &s.evaluation)
            .set("flags", &s.flags)
            .set("task_id", &s.task_id)
            .change("task_state", "in_progress", "submitted"),
        );
    }
    out
}

type Map = serde_json::Map<String, Value>;

/// The changed item codes of one inspection's answers: (before, after) per field.
#[derive(Default)]
struct AnswerChanges {
    status: (Map, Map),
    note: (Map, Map),
}

impl AnswerChanges {
    fn record(&mut self, code: &str, before: Option<&AnswerRec>, after: Option<&AnswerRec>) {
        let status = |a: Option<&AnswerRec>| a.map_or(Value::Null, |a| json!(a.status));
        let note = |a: Option<&AnswerRec>| {
            a.and_then(|a| a.note.as_deref())
                .map_or(Value::Null, |n| json!(n))
        };
        for ((b, a), (bv, av)) in [
            (&mut self.status, (status(before), status(after))),
            (&mut self.note, (note(before), note(after))),
        ] {
            if bv != av {
                b.insert(code.to_owned(), bv);
                a.insert(code.to_owned(), av);
            }
        }
    }
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
        // A new answer without a note: its status, from nothing; no note change.
        assert_eq!(first[1].changes.len(), 1);
        assert_eq!(first[1].changes[0].field, "status");
        assert_eq!(first[1].changes[0].before, json!({"1.1": null}));
        assert_eq!(first[1].changes[0].after, json!({"1.1": "pass"}));

        // The same push again, now stored: nothing changed, nothing recorded.
        loaded.inspections.insert(
            "i1".into(),
            StoredInspection {
                rec: inspection("i1", None),
                submitted: false,
                review_state: None,
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
        assert_eq!(e[1].changes[0].field, "status");
        assert_eq!(e[1].changes[0].before, json!({"1.1": "pass"}));
        assert_eq!(e[1].changes[0].after, json!({"1.1": "fail"}));

        // Only the note changed: one `note` change, no `status` change.
        let mut w4 = Writes::default();
        let mut noted = answer("a1", "1.1", "pass");
        noted.note = Some("记录不全".into());
        w4.answers.push(noted);
        let e = events(&loaded, &w4);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].changes.len(), 1);
        assert_eq!(e[0].changes[0].field, "note");
        assert_eq!(e[0].changes[0].after, json!({"1.1": "记录不全"}));

        // A deleted answer: before is kept, after is null.
        let mut w3 = Writes::default();
        w3.deletes.push(("answers", "a1".into(), "t1".into()));
        let e = events(&loaded, &w3);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].changes[0].before, json!({"1.1": "pass"}));
        assert_eq!(e[0].changes[0].after, json!({"1.1": null}));
    }
}
