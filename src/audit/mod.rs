//! The audit log's domain, pure (no I/O): typed events (what happened to which record, by whom,
//! from what to what) and, in submodules, the hash chain, the Merkle tree and signed
//! checkpoints that make the log tamper-evident.
//!
//! Every use case in [`crate::ops`] records its events with `store::audit::append` inside its
//! own write transaction, so a change and its audit entry commit together or not at all.
//! Entries are *sequenced* later, in batches, by the integrator (see `ops::audit`): the write
//! path never waits on the chain.

pub mod chain;
pub mod checkpoint;
pub mod merkle;
pub mod verify;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Role;

/// Declares a stored enum: the variants, their stored snake_case names (also their serde
/// names), `ALL`, `as_str` (an exhaustive match) and `parse`.
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident => $n:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $(#[serde(rename = $n)] $v),*
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            /// The stored name (the serde name).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $n),* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($n => Some($name::$v),)* _ => None }
            }
        }
    };
}

stored_enum! {
    /// What happened. Stored as its snake_case name; never renamed (old entries keep theirs).
    Action {
        // Accounts and sessions.
        UserCreated => "user_created",
        UserDisabled => "user_disabled",
        UserEnabled => "user_enabled",
        LoginSucceeded => "login_succeeded",
        LoginFailed => "login_failed",
        SessionRefreshed => "session_refreshed",
        SessionRevoked => "session_revoked",
        RefreshTokenReused => "refresh_token_reused",
        // Registry.
        EstablishmentCreated => "establishment_created",
        EstablishmentUpdated => "establishment_updated",
        EstablishmentsImported => "establishments_imported",
        // Checklists.
        ChecklistTemplateCreated => "checklist_template_created",
        ChecklistVersionCreated => "checklist_version_created",
        ChecklistDraftUpdated => "checklist_draft_updated",
        ChecklistVersionPublished => "checklist_version_published",
        // Plans, draws, tasks.
        PlanCreated => "plan_created",
        PlanUpdated => "plan_updated",
        ConflictDeclared => "conflict_declared",
        ConflictRemoved => "conflict_removed",
        DrawMade => "draw_made",
        TaskCancelled => "task_cancelled",
        TaskStateChanged => "task_state_changed",
        TaskReassigned => "task_reassigned",
        // Field work (sync and uploads).
        InspectionCreated => "inspection_created",
        InspectionUpdated => "inspection_updated",
        InspectionSubmitted => "inspection_submitted",
        InspectionDeleted => "inspection_deleted",
        AnswersChanged => "answers_changed",
        PhotoRecorded => "photo_recorded",
        PhotoDeleted => "photo_deleted",
        PhotoUploaded => "photo_uploaded",
        PhotoUploadRefused => "photo_upload_refused",
        PhotoProcessed => "photo_processed",
        TombstonesPurged => "tombstones_purged",
        UploadsExpired => "uploads_expired",
        // Review and follow-up (整改 → 复查), and the working-day calendar.
        InspectionReviewed => "inspection_reviewed",
        FollowupOpened => "followup_opened",
        RecheckTaskCreated => "recheck_task_created",
        FollowupClosed => "followup_closed",
        FollowupEscalated => "followup_escalated",
        FollowupReopened => "followup_reopened",
        CalendarYearSet => "calendar_year_set",
        // The red/black list (红黑榜) and 一公开 of a plan's results.
        ListIssueCreated => "list_issue_created",
        ListEntryAdded => "list_entry_added",
        ListEntryUpdated => "list_entry_updated",
        ListEntryRemoved => "list_entry_removed",
        ListIssuePublished => "list_issue_published",
        ListIssueSuperseded => "list_issue_superseded",
        ListRevisionCreated => "list_revision_created",
        ListEntryRectified => "list_entry_rectified",
        ListEntryRevoked => "list_entry_revoked",
        PublicPhotoTakenDown => "public_photo_taken_down",
        PlanResultsPublished => "plan_results_published",
        // Campaign statistics (3·15 活动统计表).
        CampaignCreated => "campaign_created",
        ReportingUnitCreated => "reporting_unit_created",
        CampaignReportSaved => "campaign_report_saved",
        // 食品安全抽检: labs, the category tree, samples, custody, lab results.
        LabCreated => "lab_created",
        UserLabSet => "user_lab_set",
        FoodCategoriesImported => "food_categories_imported",
        SampleSubmitted => "sample_submitted",
        CustodyRecorded => "custody_recorded",
        LabResultReported => "lab_result_reported",
        SampleFactRecorded => "sample_fact_recorded",
        // The public sampling announcement (抽检信息公告).
        AnnouncementCreated => "announcement_created",
        AnnouncementSampleExcluded => "announcement_sample_excluded",
        AnnouncementSampleIncluded => "announcement_sample_included",
        AnnouncementPublished => "announcement_published",
        SamplingTeamAssigned => "sampling_team_assigned",
        SampleAttachmentDeclared => "sample_attachment_declared",
        SampleAttachmentUploaded => "sample_attachment_uploaded",
        SampleAttachmentUploadRefused => "sample_attachment_upload_refused",
        SampleAttachmentProcessed => "sample_attachment_processed",
        // Reads that matter.
        PersonalDataExported => "personal_data_exported",
        EvidenceDownloaded => "evidence_downloaded",
        AuditLogRead => "audit_log_read",
        // Entries from before typed events (migrated from the old audit_log table).
        Legacy => "legacy",
        // Demo data (development only).
        DemoFilled => "demo_filled",
    }
}

stored_enum! {
    /// The kind of record an event is about. Stored as its snake_case name.
    RecordKind {
        User => "user",
        Session => "session",
        Establishment => "establishment",
        ChecklistTemplate => "checklist_template",
        ChecklistVersion => "checklist_version",
        Plan => "plan",
        Conflict => "conflict",
        Draw => "draw",
        Task => "task",
        Inspection => "inspection",
        Answer => "answer",
        Photo => "photo",
        Upload => "upload",
        Followup => "followup",
        CalendarYear => "calendar_year",
        ListIssue => "list_issue",
        ListEntry => "list_entry",
        Campaign => "campaign",
        ReportingUnit => "reporting_unit",
        CampaignReport => "campaign_report",
        Lab => "lab",
        Sample => "sample",
        Announcement => "announcement",
        SamplingTask => "sampling_task",
        SampleAttachment => "sample_attachment",
        AuditLog => "audit_log",
        // Housekeeping over many records (sweeps, imports, demo data).
        Batch => "batch",
    }
}

impl RecordKind {
    /// Whether a reviewer may read the history of records of this kind: the field work they
    /// review (registry, checklists, plans, draws, tasks, inspections, answers, photos). Not
    /// accounts and sessions (colleagues' logins, devices and addresses), conflict-of-interest
    /// declarations (admin only, like the records themselves), reads of the log or housekeeping.
    pub fn reviewer_may_read(self) -> bool {
        matches!(
            self,
            RecordKind::Establishment
                | RecordKind::ChecklistTemplate
                | RecordKind::ChecklistVersion
                | RecordKind::Plan
                | RecordKind::Draw
                | RecordKind::Task
                | RecordKind::Inspection
                | RecordKind::Answer
                | RecordKind::Photo
                | RecordKind::Followup
                | RecordKind::CalendarYear
                | RecordKind::ListIssue
                | RecordKind::ListEntry
                | RecordKind::Lab
                | RecordKind::Sample
                | RecordKind::Announcement
                | RecordKind::SamplingTask
                | RecordKind::SampleAttachment
        )
    }
}

/// Who acted: a user (with the role they had at the time and the device of their session),
/// or the system itself (background jobs, CLI without a user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<String>,
    pub role: Option<Role>,
    pub device_id: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor::default()
    }
    pub fn user(user_id: &str, role: Role, device_id: Option<&str>) -> Actor {
        Actor {
            user_id: Some(user_id.to_owned()),
            role: Some(role),
            device_id: device_id.map(str::to_owned),
        }
    }
}

/// The context of one use case: who, and which request (for correlation with the logs).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl Ctx {
    pub fn system() -> Ctx {
        Ctx::default()
    }
    pub fn new(actor: Actor, request_id: Option<String>) -> Ctx {
        Ctx { actor, request_id }
    }
    /// The acting user's id, when a user acts.
    pub fn user_id(&self) -> Option<&str> {
        self.actor.user_id.as_deref()
    }
}

/// One changed field: its value before and after (JSON; `null` for "absent").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// The field. For `answers_changed`: `status` or `note`, whose before/after map each
    /// changed item code to its value (`null`: no answer).
    pub field: String,
    /// Its value before, any JSON value; `null` when it was absent (a creation).
    pub before: Value,
    /// Its value after, any JSON value; `null` when it is gone (a deletion).
    pub after: Value,
}

/// One audit event, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: Action,
    pub record: RecordKind,
    pub record_id: String,
    pub changes: Vec<Change>,
}

impl Event {
    pub fn new(action: Action, record: RecordKind, record_id: impl Into<String>) -> Event {
        Event {
            action,
            record,
            record_id: record_id.into(),
            changes: Vec::new(),
        }
    }

    /// Adds a field change when `before` and `after` differ.
    pub fn change(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Event {
        let before = serde_json::to_value(before).unwrap_or(Value::Null);
        let after = serde_json::to_value(after).unwrap_or(Value::Null);
        if before != after {
            self.changes.push(Change {
                field: field.to_owned(),
                before,
                after,
            });
        }
        self
    }

    /// Adds a field that was set (no value before).
    pub fn set(self, field: &str, after: impl Serialize) -> Event {
        self.change(field, Value::Null, after)
    }

    /// Adds the top-level fields that differ between two serialisations of a record (for
    /// updates: the domain value before and after).
    pub fn diff(mut self, before: &impl Serialize, after: &impl Serialize) -> Event {
        self.changes.extend(diff(before, after));
        self
    }

    /// Every top-level field of a new record (for creations).
    pub fn created(self, after: &impl Serialize) -> Event {
        self.diff(&Value::Null, after)
    }

    /// The changes as the stored JSON text (an array of `{field, before, after}`).
    pub fn changes_json(&self) -> String {
        serde_json::to_string(&self.changes).unwrap_or_else(|_| "[]".into())
    }
}

/// Top-level fields of two JSON objects that differ, in field order of `after` then of
/// `before`. A non-object side counts as an empty object.
pub fn diff(before: &impl Serialize, after: &impl Serialize) -> Vec<Change> {
    let before = serde_json::to_value(before).unwrap_or(Value::Null);
    let after = serde_json::to_value(after).unwrap_or(Value::Null);
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    for (k, av) in a {
        let bv = b.get(k).cloned().unwrap_or(Value::Null);
        if &bv != av {
            out.push(Change {
                field: k.clone(),
                before: bv,
                after: av.clone(),
            });
        }
    }
    for (k, bv) in b {
        if !a.contains_key(k) && !bv.is_null() {
            out.push(Change {
                field: k.clone(),
                before: bv.clone(),
                after: Value::Null,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip_and_match_serde() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
            assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
        }
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
        }
        assert_eq!(Action::parse("nope"), None);
    }

    #[test]
    fn diff_lists_only_changed_fields() {
        let before = json!({"name": "A", "town": "X", "gone": 1});
        let after = json!({"name": "B", "town": "X", "new": true});
        let d = diff(&before, &after);
        let fields: Vec<_> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["name", "new", "gone"]);
        assert_eq!(d[0].before, json!("A"));
        assert_eq!(d[0].after, json!("B"));
        let e = Event::new(Action::UserDisabled, RecordKind::User, "u1")
            .change("disabled", false, true);
        assert_eq!(e.changes.len(), 1);
        let same =
            Event::new(Action::UserDisabled, RecordKind::User, "u1").change("disabled", true, true);
        assert!(same.changes.is_empty());
    }
}
