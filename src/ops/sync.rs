//! The sync protocol's use cases: a scoped, consistent pull and an all-or-nothing push with
//! per-record refusals.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::ops::Error;
use crate::plan::TaskState;
use crate::review::ReviewState;
use crate::store::sync::{self as q, Author};
use crate::store::{self, Db};
use crate::sync::decide::{
    decide, result_code, Loaded, Officer, StoredAnswer, StoredInspection, StoredPhoto, TaskFacts,
    Writes,
};
use crate::sync::push::{self, AnswerRec};

/// Who syncs.
pub struct Syncer<'a> {
    pub user_id: &'a str,
    pub device_id: Option<&'a str>,
}

impl Syncer<'_> {
    /// Rows remember the user and device that created them (`user/device`): two users may
    /// name their phones alike.
    pub(crate) fn origin(&self) -> Option<String> {
        self.device_id.map(|d| format!("{}/{d}", self.user_id))
    }
}

fn num(v: Option<f64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

fn text(v: Option<&str>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

pub use super::sync_pull::{begin as begin_pull, pull, PreparedPull, Pull, UPDATED_BUFFER};

pub fn inspection_json(i: &q::InspectionRow) -> Value {
    json!({"id": i.id, "task_id": i.task_id, "establishment_id": i.establishment_id, "started_at": i.started_at,
        "finished_at": i.finished_at, "lng": num(i.lng), "lat": num(i.lat), "gps_accuracy_m": num(i.gps_accuracy_m),
        "crs": text(i.crs.as_deref()), "team": i.team, "representative_name": text(i.representative_name.as_deref()),
        "representative_signed": i.representative_signed != 0, "representative_refused": i.representative_refused != 0,
        "business_opinion": text(i.business_opinion.as_deref()), "other_findings": text(i.other_findings.as_deref()),
        "declared_result": text(i.declared_result.as_deref()), "submitted": i.submitted != 0,
        "computed_result": text(i.computed_result.as_deref()), "review_state": text(i.review_state.as_deref()),
        "server_flags": text(i.server_flags.as_deref()), "review_round": i.review_round,
        "override_result": text(i.override_result.as_deref()), "override_reason": text(i.override_reason.as_deref())})
}

pub use crate::sync::decide::Rejected;

fn conflict(table: &str, id: &str) -> Error {
    Error::conflict(
        "sync_conflict",
        format!(
            "{table} {id} changed on the server after last_pulled_at; pull, merge and push again"
        ),
    )
}

/// Applies a push in one transaction: load what it touches, decide (pure), write. Returns the
/// refused records (the rest is applied), or 409 `sync_conflict` with nothing applied.
///
/// On SQLite concurrent pushes share a commit ([`Db::grouped_write`]): each runs in its own
/// savepoint, so each keeps its own outcome, and an `Ok` comes only after the shared commit.
pub async fn push(
    db: &Db,
    ctx: &crate::audit::Ctx,
    who: &Syncer<'_>,
    last: i64,
    parsed: push::Push,
    geofence: &crate::photo::geofence::GeofenceConfig,
    samples: &crate::ops::sampling::SubmitSettings,
) -> Result<Vec<Rejected>, Error> {
    // Owned, for the write job.
    let (ctx, geofence, samples) = (ctx.clone(), *geofence, samples.clone());
    let published = db.published_contents();
    let (user_id, device_id) = (who.user_id.to_owned(), who.device_id.map(str::to_owned));
    db.grouped_write(move |conn| {
        Box::pin(async move {
            let who = Syncer {
                user_id: &user_id,
                device_id: device_id.as_deref(),
            };
            let mut tx = InTx(conn);
            let settings = PushSettings {
                geofence: &geofence,
                samples: &samples,
                published: &published,
            };
            push_in(&mut tx, &ctx, &who, last, parsed, &settings).await
        })
    })
    .await
}

/// The connection of a write in progress, with the same `conn()` as [`store::WriteTx`].
struct InTx<'c>(&'c mut sqlx::AnyConnection);

impl InTx<'_> {
    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.0
    }
}

/// What a push reads besides the database: the server's settings and published checklists.
#[derive(Clone, Copy)]
struct PushSettings<'a> {
    geofence: &'a crate::photo::geofence::GeofenceConfig,
    samples: &'a crate::ops::sampling::SubmitSettings,
    published: &'a store::checklists::PublishedContents,
}

/// The push itself, inside its write (the caller begins and commits it).
async fn push_in(
    tx: &mut InTx<'_>,
    ctx: &crate::audit::Ctx,
    who: &Syncer<'_>,
    last: i64,
    parsed: push::Push,
    settings: &PushSettings<'_>,
) -> Result<Vec<Rejected>, Error> {
    let PushSettings {
        geofence,
        samples,
        published,
    } = *settings;
    // Taken first (PostgreSQL; SQLite has one writer at a time): the locks on what the push
    // decides about, so the decision stays true until it commits. Then its position.
    let mut locked = lock_touched(tx.conn(), &parsed).await?;
    let seq = q::next_seq(tx.conn()).await?;
    if last < 0 || last >= seq {
        return Err(Error::bad_request(
            "invalid_cursor",
            format!("last_pulled_at {last} is not a cursor this server gave out"),
        ));
    }
    let loaded = loop {
        let loaded = load(tx.conn(), published, who.user_id, &parsed).await?;
        if store::backend_of(tx.conn()) == store::Backend::Sqlite {
            break loaded; // one writer at a time: nothing to lock
        }
        // A stored record found under a task not locked yet (created between the locking and
        // the reading): lock it too and read again.
        let extra: Vec<String> = loaded
            .tasks
            .keys()
            .cloned()
            .chain(loaded.inspections.values().map(|i| i.rec.task_id.clone()))
            .filter(|t| !locked.contains(t))
            .collect();
        if extra.is_empty() {
            break loaded;
        }
        q::lock_tasks(tx.conn(), &extra).await?;
        locked.extend(extra);
    };
    let decision = decide(&loaded, &parsed, last).map_err(|c| conflict(c.table, &c.id))?;
    let origin = who.origin();
    let by = Author {
        user_id: who.user_id,
        device_id: origin.as_deref(),
        seq,
    };
    write(tx.conn(), &decision.writes, &by).await?;
    // Recorded in the push's own transaction: the change and its audit entries commit together.
    if bench::push_audit_on() {
        let events = crate::sync::events::events(&loaded, &decision.writes);
        store::audit::append(tx.conn(), ctx, &events).await?;
    }
    // After the submission writes, which set `server_flags`: the inspection's own point
    // against the shop.
    let written: Vec<String> = decision
        .writes
        .inspections
        .iter()
        .map(|(r, _)| r.id.clone())
        .collect();
    crate::ops::inspection_flags::refresh(tx.conn(), &written, geofence).await?;
    // A submitted recheck (复查) closes or escalates its follow-up in the same transaction.
    let submitted: Vec<String> = decision
        .writes
        .submissions
        .iter()
        .map(|s| s.inspection_id.clone())
        .collect();
    crate::ops::followup::on_submissions(tx.conn(), ctx, &submitted).await?;
    // Schema 6 and 7: pushed 抽样单, custody events and sample photos, by the online routes' rules, in this
    // transaction (each record in a savepoint; refusals are per record, never a conflict).
    let mut rejected = decision.rejected;
    rejected.extend(crate::ops::sample_sync::push(tx.conn(), ctx, samples, seq, &parsed).await?);
    #[cfg(debug_assertions)]
    debug::maybe_panic(who.device_id);
    Ok(rejected)
}

/// The answer and photo ids a push names (pushed or deleted), each once.
fn named_ids(parsed: &push::Push) -> (Vec<String>, Vec<String>) {
    let answers = parsed.answers.iter().map(|a| a.id.clone());
    let photos = parsed.photos.iter().map(|p| p.id.clone());
    (
        unique(answers.chain(ids_of(&parsed.deleted, "answers"))),
        unique(photos.chain(ids_of(&parsed.deleted, "photos"))),
    )
}

/// Locks (PostgreSQL) the inspection tasks a push touches: those of its inspections, and of the
/// stored inspections, answers and photos it names (pushed or deleted); then the sampling tasks
/// and the samples of its 抽样单, custody events and sample photos. Each kind in byte order of
/// the id, kinds in this order, as every other use case takes them. Returns the locked tasks.
async fn lock_touched(
    conn: &mut sqlx::AnyConnection,
    parsed: &push::Push,
) -> Result<HashSet<String>, Error> {
    if store::backend_of(conn) == store::Backend::Sqlite {
        return Ok(HashSet::new());
    }
    let insp_ids = unique(
        parsed
            .inspections
            .iter()
            .map(|i| i.id.clone())
            .chain(parsed.answers.iter().map(|a| a.inspection_id.clone()))
            .chain(parsed.photos.iter().map(|p| p.inspection_id.clone()))
            .chain(ids_of(&parsed.deleted, "inspections")),
    );
    let (answer_ids, photo_ids) = named_ids(parsed);
    let tasks: HashSet<String> = q::tasks_of_records(conn, &insp_ids, &answer_ids, &photo_ids)
        .await?
        .into_iter()
        .chain(parsed.inspections.iter().map(|i| i.task_id.clone()))
        .collect();
    let list: Vec<String> = tasks.iter().cloned().collect();
    q::lock_tasks(conn, &list).await?;
    let sampling_tasks: Vec<String> = parsed
        .samples
        .iter()
        .filter_map(|s| s.task_id.clone())
        .collect();
    q::lock_rows(conn, "sampling_tasks", &sampling_tasks).await?;
    let samples: Vec<String> = parsed
        .samples
        .iter()
        .map(|s| s.id.clone())
        .chain(parsed.custody_events.iter().map(|c| c.sample_id.clone()))
        .chain(
            parsed
                .sample_attachments
                .iter()
                .map(|a| a.sample_id.clone()),
        )
        .collect();
    q::lock_keys(conn, "sample", &samples).await?;
    let numbers: Vec<String> = parsed
        .samples
        .iter()
        .filter_map(|s| s.form.as_ref().ok())
        .filter_map(|f| f.sampling_no.as_deref().map(str::trim))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    q::lock_keys(conn, "sample_no", &numbers).await?;
    Ok(tasks)
}

fn ids_of<'a>(
    deleted: &'a [(&'static str, String)],
    table: &'a str,
) -> impl Iterator<Item = String> + 'a {
    deleted
        .iter()
        .filter(move |(t, _)| *t == table)
        .map(|(_, id)| id.clone())
}

fn unique(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = ids.collect::<HashSet<_>>().into_iter().collect();
    v.sort();
    v
}

/// Reads, in the push's transaction, everything `decide` looks at.
async fn load(
    conn: &mut sqlx::AnyConnection,
    published: &store::checklists::PublishedContents,
    user: &str,
    parsed: &push::Push,
) -> Result<Loaded, Error> {
    let (answer_ids, photo_ids) = named_ids(parsed);
    let named_answers = q::answers_by_ids(conn, &answer_ids).await?;
    let named_photos = q::photos_by_ids(conn, &photo_ids).await?;
    // Every inspection involved: pushed, parent of a pushed or stored answer/photo, deleted.
    let insp_ids = unique(
        parsed
            .inspections
            .iter()
            .map(|i| i.id.clone())
            .chain(parsed.answers.iter().map(|a| a.inspection_id.clone()))
            .chain(parsed.photos.iter().map(|p| p.inspection_id.clone()))
            .chain(named_answers.iter().map(|a| a.inspection_id.clone()))
            .chain(named_photos.iter().map(|p| p.inspection_id.clone()))
            .chain(ids_of(&parsed.deleted, "inspections")),
    );
    let inspections = q::inspections_by_ids(conn, &insp_ids).await?;
    let stored_ids: Vec<String> = inspections.iter().map(|i| i.id.clone()).collect();
    let deleted_insp: Vec<String> = ids_of(&parsed.deleted, "inspections").collect();
    let mut loaded = Loaded::default();
    for a in named_answers
        .into_iter()
        .chain(q::answers_of(conn, &stored_ids).await?)
    {
        let seq = a.seq;
        loaded.answers.insert(
            a.id.clone(),
            StoredAnswer {
                rec: a.as_rec(),
                seq,
            },
        );
    }
    for p in named_photos
        .into_iter()
        .chain(q::photos_of(conn, &deleted_insp).await?)
    {
        loaded.photos.insert(
            p.id.clone(),
            StoredPhoto {
                rec: p.as_rec(),
                uploaded: p.processing_status != "awaiting_upload",
                seq: p.seq,
            },
        );
    }
    let task_ids = unique(
        parsed
            .inspections
            .iter()
            .map(|i| i.task_id.clone())
            .chain(inspections.iter().map(|i| i.task_id.clone())),
    );
    for i in inspections {
        let review_state = i
            .review_state
            .as_deref()
            .map(|s| {
                ReviewState::parse(s).ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!(
                        "inspection {} has review_state {s:?}",
                        i.id
                    ))
                })
            })
            .transpose()?;
        loaded.inspections.insert(
            i.id.clone(),
            StoredInspection {
                rec: i.as_rec(),
                submitted: i.submitted != 0,
                review_state,
                review_round: i.review_round,
                seq: i.seq,
            },
        );
    }
    let mut teams: HashMap<String, Vec<Officer>> = HashMap::new();
    for o in q::team_officers(conn, &task_ids).await? {
        teams.entry(o.task_id).or_default().push(Officer {
            user_id: o.user_id,
            name: o.name,
            badge_no: o.badge_no,
            active: o.active != 0,
        });
    }
    for t in q::tasks_info(conn, user, &task_ids).await? {
        let key = (t.template_id.clone(), t.template_version);
        if !loaded.templates.contains_key(&key) {
            if let Some(content) = published
                .get(conn, &t.template_id, t.template_version)
                .await?
            {
                loaded.templates.insert(key.clone(), content);
            }
        }
        let state = TaskState::parse(&t.state).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("task {} has state {:?}", t.id, t.state))
        })?;
        loaded.tasks.insert(
            t.id.clone(),
            TaskFacts {
                team: teams.remove(&t.id).unwrap_or_default(),
                id: t.id,
                establishment_id: t.establishment_id,
                state,
                template: key,
                is_member: t.is_member == 1,
            },
        );
    }
    // Tombstones of the pushed records and of their parents: a deletion after the cursor
    // is a conflict.
    let wanted = [
        (
            "inspections",
            unique(
                parsed
                    .inspections
                    .iter()
                    .map(|r| r.id.clone())
                    .chain(parsed.answers.iter().map(|r| r.inspection_id.clone()))
                    .chain(parsed.photos.iter().map(|r| r.inspection_id.clone())),
            ),
        ),
        (
            "answers",
            parsed.answers.iter().map(|r| r.id.clone()).collect(),
        ),
        (
            "photos",
            parsed.photos.iter().map(|r| r.id.clone()).collect(),
        ),
    ];
    let wanted: Vec<(&'static str, &[String])> =
        wanted.iter().map(|(t, ids)| (*t, ids.as_slice())).collect();
    for (table, id, s) in q::tombstones_of(conn, &wanted).await? {
        loaded.tombstones.insert((table, id), s);
    }
    Ok(loaded)
}

/// Makes the decided writes.
async fn write(conn: &mut sqlx::AnyConnection, w: &Writes, by: &Author<'_>) -> Result<(), Error> {
    let seq = by.seq;
    for (r, wgs84) in &w.inspections {
        q::upsert_inspection(conn, r, *wgs84, by).await?;
    }
    for task in &w.started_tasks {
        q::advance_task(conn, task, TaskState::InProgress, seq).await?;
    }
    let answers: Vec<&AnswerRec> = w.answers.iter().collect();
    q::upsert_answers(conn, &answers, by).await?;
    for p in &w.photos {
        q::upsert_photo(conn, p, by).await?;
    }
    // Re-created ids lose their tombstones (one statement for the three tables).
    let inspection_ids: Vec<String> = w.inspections.iter().map(|(r, _)| r.id.clone()).collect();
    let answer_ids: Vec<String> = w.answers.iter().map(|a| a.id.clone()).collect();
    let photo_ids: Vec<String> = w.photos.iter().map(|p| p.id.clone()).collect();
    q::clear_tombstones(
        conn,
        &[
            ("inspections", &inspection_ids),
            ("answers", &answer_ids),
            ("photos", &photo_ids),
        ],
    )
    .await?;
    for (table, id, task) in &w.deletes {
        q::delete_with_tombstone(conn, table, id, task, by).await?;
    }
    for s in &w.submissions {
        let code = result_code(s.evaluation.result);
        let evaluation_json =
            serde_json::to_string(&s.evaluation).map_err(|e| Error::Internal(e.into()))?;
        let flags_json = serde_json::to_string(&s.flags).map_err(|e| Error::Internal(e.into()))?;
        q::submit_inspection(
            conn,
            &s.inspection_id,
            code,
            &evaluation_json,
            &flags_json,
            s.round,
            seq,
        )
        .await?;
        q::advance_task(conn, &s.task_id, TaskState::Submitted, seq).await?;
        let failed = serde_json::to_string(&s.evaluation.failed_items)
            .map_err(|e| Error::Internal(e.into()))?;
        store::plans::set_followup(conn, &s.establishment_id, &failed, Some(&s.task_id)).await?;
    }
    Ok(())
}

/// Housekeeping: drops sync tombstones deleted before `before_ms` (devices whose cursor is
/// older then get a full replacement). Idempotent; several instances may run it at once.
pub async fn purge_tombstones(
    db: &Db,
    ctx: &crate::audit::Ctx,
    before_ms: i64,
) -> crate::ops::Result<u64> {
    use crate::audit::{Action, Event, RecordKind};
    let mut tx = db.begin_write().await?;
    let n = q::purge_tombstones(tx.conn(), before_ms).await?;
    if n > 0 {
        let event = Event::new(
            Action::TombstonesPurged,
            RecordKind::Batch,
            "sync_tombstones",
        )
        .set("purged", n)
        .set("deleted_before_ms", before_ms);
        crate::store::audit::append(tx.conn(), ctx, &[event]).await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// A benchmark's switch for the push's audit events, so `benches/sync.rs` can measure their
/// cost against pushes without them in the same run. Compiled only with the `bench-switches`
/// feature (never in a normal build, where the events are always recorded).
pub mod bench {
    #[cfg(feature = "bench-switches")]
    pub static PUSH_AUDIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

    #[inline]
    pub(super) fn push_audit_on() -> bool {
        #[cfg(feature = "bench-switches")]
        return PUSH_AUDIT.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(feature = "bench-switches"))]
        true
    }
}

/// Debug builds only (absent from release builds): pushes from the devices named here panic
/// after their writes, inside their transaction, so tests can prove that a panicking push
/// applies nothing and never takes the pushes sharing its commit down.
#[cfg(debug_assertions)]
pub mod debug {
    use std::sync::Mutex;

    static PANIC_DEVICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Makes every later push from `device` (the token's device id) panic.
    pub fn panic_on_push_from(device: &str) {
        PANIC_DEVICES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(device.to_string());
    }

    /// A pull hook: (device, `updated` buffer bound, fail the body after this many bytes).
    type PullHook = (String, Option<usize>, Option<u64>);
    static PULL_HOOKS: Mutex<Vec<PullHook>> = Mutex::new(Vec::new());

    /// Makes every later pull from `device` keep at most `bytes` of `updated` rows before it
    /// reads a table a second time (instead of [`super::UPDATED_BUFFER`]).
    pub fn pull_updated_buffer(device: &str, bytes: usize) {
        let mut hooks = PULL_HOOKS.lock().unwrap_or_else(|p| p.into_inner());
        hooks.push((device.to_string(), Some(bytes), None));
    }

    /// Makes every later pull from `device` fail after writing `bytes` of its answer.
    pub fn fail_pull_after(device: &str, bytes: u64) {
        let mut hooks = PULL_HOOKS.lock().unwrap_or_else(|p| p.into_inner());
        hooks.push((device.to_string(), None, Some(bytes)));
    }

    pub(in crate::ops) fn pull_hooks(
        device: Option<&str>,
        default_buffer: usize,
    ) -> (usize, Option<u64>) {
        let hooks = PULL_HOOKS.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = (default_buffer, None);
        for (d, buffer, fail) in hooks.iter() {
            if Some(d.as_str()) == device {
                out.0 = buffer.unwrap_or(out.0);
                out.1 = fail.or(out.1);
            }
        }
        out
    }

    pub(super) fn maybe_panic(device: Option<&str>) {
        let hit = device.is_some_and(|d| {
            PANIC_DEVICES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|x| x == d)
        });
        if hit {
            panic!("injected panic in a push from device {device:?}");
        }
    }
}
