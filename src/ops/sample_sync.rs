//! 抽样单, custody events and sampling tasks through offline sync (schema 6), for `ops::sync`:
//! what a sampler's device pulls (their samples with their custody, and the sampling tasks
//! whose team includes them, read-only), and how their pushed records are applied inside the
//! push's transaction by the very rules of the online routes ([`sampling::submit_sample_in`],
//! [`sampling::record_custody_in`]).
//!
//! Both tables are create-only on the device (`sync::CREATE_ONLY`):
//! - a pushed sample that is not stored is submitted; one stored with the same content (a
//!   replay: the response was lost, or the device re-sends what it pulled back) is a no-op;
//!   one stored with other content is refused `sample_id_conflict` (a submitted 抽样单 never
//!   changes);
//! - a pushed custody event is recorded in order; the same event again is a no-op; another
//!   content under its id is refused `custody_event_edited`;
//! - the deletion of a stored record of the user's is refused `append_only`; of one that is
//!   not stored (a refused record the user discarded), or not theirs, a no-op;
//! - a pushed sample attachment (schema 7: the declaration of a site, sample or seal photo) is
//!   declared by [`sample_attachments::declare_in`], the online route's rule: the same
//!   declaration again is a no-op; another under its id is refused `attachment_id_conflict`;
//!   a sample that is not the pusher's (named by the record, or by the one stored under its
//!   id) is refused `unknown_sample`; the lab's `report` is refused `report_not_from_device`.
//!   Their processing status comes back by pull, as for inspection photos;
//! - nothing here is ever a conflict (409): every refusal is per record, and the rest of the
//!   push applies. Each record is applied in a savepoint, so a refused one leaves nothing.

use serde_json::{json, Map, Value};
use sqlx::AnyConnection;

use super::sample_attachments;
use super::sampling::{self, NewCustodyEvent, NewSample, SubmitSettings, Submitted};
use super::{Ctx, Error, Result};
use crate::sampling::attachment::{Declarer, Kind as AttachmentKind, NewAttachment};
use crate::sampling::custody::Kind as CustodyKind;
use crate::store::sampling as q;
use crate::sync::decide::Rejected;
use crate::sync::push::{CustodyRec, Push, SampleAttachmentRec, SampleRec};

/// The refusal of a custody event whose sample the pusher cannot write: the same whether it
/// does not exist, was refused in this push, or is someone else's.
const UNKNOWN_SAMPLE: &str =
    "the sample is neither on the server nor accepted in this push, or you are not one of its samplers";

fn reject(table: &str, id: &str, code: &str, message: impl Into<String>) -> Rejected {
    Rejected {
        table: table.into(),
        id: id.into(),
        code: code.into(),
        message: message.into(),
    }
}

/// A use-case refusal as a per-record refusal; failures (database, bugs) stay errors.
fn refusal(e: Error) -> Result<(&'static str, String)> {
    match e {
        Error::Invalid { code, message, .. }
        | Error::Conflict { code, message }
        | Error::BadRequest { code, message } => Ok((code, message)),
        Error::NotFound(_) => Ok(("unknown_sample", UNKNOWN_SAMPLE.into())),
        Error::Forbidden(m) => Ok(("forbidden", m)),
        other => Err(other),
    }
}

/// Applies the pushed samples, then custody events (per sample in custody order, whatever the
/// device's order), then refuses deletions of stored records, in the push's transaction
/// (`seq`: its change-counter value). Returns the refused records.
pub async fn push(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &SubmitSettings,
    seq: i64,
    parsed: &Push,
) -> Result<Vec<Rejected>> {
    let mut out = Vec::new();
    for r in &parsed.samples {
        if let Some(refused) = push_sample(conn, ctx, settings, seq, r).await? {
            out.push(refused);
        }
    }
    let mut events: Vec<(usize, &CustodyRec)> = parsed.custody_events.iter().enumerate().collect();
    let rank = |r: &CustodyRec| {
        CustodyKind::parse(&r.kind)
            .and_then(|k| CustodyKind::ORDER.iter().position(|o| *o == k))
            .unwrap_or(usize::MAX)
    };
    events.sort_by(|(i, a), (j, b)| (&a.sample_id, rank(a), i).cmp(&(&b.sample_id, rank(b), j)));
    for (_, r) in events {
        if let Some(refused) = push_custody(conn, ctx, settings, seq, r).await? {
            out.push(refused);
        }
    }
    // After the samples: an attachment may be of a sample of the same push.
    for r in &parsed.sample_attachments {
        if let Some(refused) = push_attachment(conn, ctx, settings, seq, r).await? {
            out.push(refused);
        }
    }
    for (table, id) in &parsed.create_only_deleted {
        // Stored and the pusher's: a sample they sample, an event or attachment of one.
        let sample_id = match *table {
            "samples" => Some(id.clone()),
            "sample_attachments" => crate::store::sample_attachments::get(conn, id)
                .await?
                .map(|a| a.sample_id),
            _ => q::custody_event(conn, id).await?.map(|e| e.sample_id),
        };
        let mine = match sample_id {
            None => false,
            Some(s) => match sampling::load_visible(conn, ctx, &s).await {
                Ok(_) => true,
                Err(Error::NotFound(_)) => false,
                Err(e) => return Err(e),
            },
        };
        if mine {
            out.push(reject(
                table,
                id,
                "append_only",
                format!("{table} are never deleted: a submitted 抽样单, its chain of custody and its photos stand as recorded"),
            ));
        }
    }
    Ok(out)
}

/// Runs `f` in a savepoint: kept if it succeeds, undone if it is refused.
macro_rules! in_savepoint {
    ($conn:expr, $table:expr, $id:expr, $body:expr) => {{
        q::savepoint($conn).await?;
        match $body {
            Ok(()) => {
                q::release_savepoint($conn).await?;
                None
            }
            Err(e) => {
                q::rollback_to_savepoint($conn).await?;
                let (code, message) = refusal(e)?;
                Some(reject($table, $id, code, message))
            }
        }
    }};
}

async fn push_sample(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &SubmitSettings,
    seq: i64,
    r: &SampleRec,
) -> Result<Option<Rejected>> {
    let form = match &r.form {
        Ok(f) => f.clone(),
        Err(m) => return Ok(Some(reject("samples", &r.id, "invalid_record", m.clone()))),
    };
    let n = NewSample {
        id: r.id.clone(),
        establishment_id: r.establishment_id.clone(),
        lab_id: r.lab_id.clone(),
        category_code: r.category_code.clone(),
        task_id: r.task_id.clone(),
        form,
    };
    Ok(in_savepoint!(
        &mut *conn,
        "samples",
        &r.id,
        sampling::submit_sample_in(&mut *conn, ctx, settings, &n, seq)
            .await
            .map(|_: Submitted| ())
    ))
}

async fn push_custody(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &SubmitSettings,
    seq: i64,
    r: &CustodyRec,
) -> Result<Option<Rejected>> {
    let Some(kind) = CustodyKind::parse(&r.kind) else {
        return Ok(Some(reject(
            "custody_events",
            &r.id,
            "invalid_record",
            format!(
                "kind {:?} is not sealed, dispatched, received, testing or reported",
                r.kind
            ),
        )));
    };
    let n = NewCustodyEvent {
        id: r.id.clone(),
        kind,
        occurred_at: r.occurred_at,
        place: r.place.clone(),
        note: r.note.clone(),
        sample_condition: r.sample_condition.clone(),
        seal_intact: r.seal_intact,
    };
    Ok(in_savepoint!(
        &mut *conn,
        "custody_events",
        &r.id,
        sampling::record_custody_in(&mut *conn, ctx, settings.zone, &r.sample_id, &n, seq)
            .await
            .map(|_| ())
    ))
}

async fn push_attachment(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &SubmitSettings,
    seq: i64,
    r: &SampleAttachmentRec,
) -> Result<Option<Rejected>> {
    const TABLE: &str = "sample_attachments";
    let Some(kind) = AttachmentKind::parse(&r.kind) else {
        return Ok(Some(reject(
            TABLE,
            &r.id,
            "invalid_record",
            format!("kind {:?} is not site, sample or seal", r.kind),
        )));
    };
    if kind.declarer() == Declarer::Lab {
        // The online route would answer a sampler 403; a device never declares the report.
        return Ok(Some(reject(
            TABLE,
            &r.id,
            "report_not_from_device",
            "the lab report is declared by the sample's lab (online), never from a device",
        )));
    }
    let n = NewAttachment {
        id: r.id.clone(),
        kind,
        sha256: r.sha256.clone(),
        byte_size: r.byte_size,
        taken_at: r.taken_at,
    };
    Ok(in_savepoint!(
        &mut *conn,
        TABLE,
        &r.id,
        sample_attachments::declare_in(
            &mut *conn,
            ctx,
            settings.max_photo_bytes,
            &r.sample_id,
            &n,
            seq
        )
        .await
        .map(|_| ())
    ))
}

/// A record for the pull, with what tells whether it is new to the device.
pub struct Pulled {
    pub table: &'static str,
    pub created_seq: i64,
    /// `user/device` that created it, if a device did.
    pub origin: Option<String>,
    pub rec: Value,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

/// A pulled 抽样单 as its sync record.
pub fn sample_rec(s: crate::store::sampling::SampleSync) -> Result<Pulled> {
    // The form as stored is the wire form: one column per field.
    let mut rec: Map<String, Value> = serde_json::from_str(&s.form).map_err(internal)?;
    for (k, v) in [
        ("id", json!(s.id)),
        ("establishment_id", json!(s.establishment_id)),
        ("lab_id", json!(s.lab_id)),
        ("category_code", json!(s.category_code)),
        ("task_id", json!(s.task_id)),
        ("sample_no", json!(s.sample_no)),
        ("state", json!(s.state)),
        ("seal_broken", json!(s.seal_broken != 0)),
    ] {
        rec.insert(k.into(), v);
    }
    Ok(Pulled {
        table: "samples",
        created_seq: s.created_seq,
        origin: s.origin_device,
        rec: Value::Object(rec),
    })
}

/// A pulled custody event as its sync record.
pub fn custody_rec(c: q::CustodySync) -> Pulled {
    let e = c.row;
    Pulled {
        table: "custody_events",
        created_seq: c.seq,
        origin: c.origin_device,
        rec: json!({"id": e.id, "sample_id": e.sample_id, "kind": e.kind, "occurred_at": e.occurred_at,
            "place": e.place, "note": e.note, "sample_condition": e.sample_condition,
            "seal_intact": e.seal_intact.map(|b| b != 0), "actor_id": e.actor_id,
            "actor_role": e.actor_role, "recorded_at": e.recorded_at}),
    }
}

/// A pulled sample photo (schema 7) as its sync record.
pub fn attachment_rec(a: crate::store::sample_attachments::SyncAttachment) -> Pulled {
    Pulled {
        table: "sample_attachments",
        created_seq: a.created_seq,
        origin: a.origin_device,
        rec: json!({"id": a.id, "sample_id": a.sample_id, "kind": a.kind, "sha256": a.sha256,
            "byte_size": a.byte_size, "taken_at": a.taken_at, "processing_status": a.processing_status,
            "processing_error": a.processing_error, "width": a.width, "height": a.height}),
    }
}

/// A pulled sampling task (schema 6, read-only) as its sync record, with its team: its plan's
/// title, purpose and stage, its premises' registry identity, its lab.
pub fn task_rec(
    t: crate::store::sampling_plans::TaskSync,
    team: &[crate::plan::TeamMember],
) -> Result<Value> {
    let team = serde_json::to_string(team).map_err(internal)?;
    Ok(
        json!({"id": t.id, "plan_id": t.plan_id, "plan_title": t.plan_title, "purpose": t.purpose,
        "stage": t.stage, "establishment_id": t.establishment_id, "premises_sign_name": t.sign_name,
        "premises_licensed_name": t.licensed_name, "premises_address": t.address,
        "premises_town": t.town, "premises_licence_no": t.license_no, "premises_credit_code": t.uscc,
        "lab_id": t.lab_id, "lab_name": t.lab_name, "batches": t.batches, "due_date": t.due_date,
        "state": t.state.as_str(), "team": team}),
    )
}

/// The sampling tasks `user` was taken off after `since` (and is not on again), as
/// (`sampling_tasks`, id) deletions: their devices drop them. Their samples stay (a task with
/// samples keeps its team).
pub async fn removed_tasks(
    conn: &mut AnyConnection,
    user: &str,
    since: i64,
    upto: i64,
) -> Result<Vec<(String, String)>> {
    Ok(
        crate::store::sampling_plans::removed_for_sampler(conn, user, since, upto)
            .await?
            .into_iter()
            .map(|id| ("sampling_tasks".to_string(), id))
            .collect(),
    )
}
