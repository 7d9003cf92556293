//! Reading a push body. Structural problems (unknown tables or columns, wrong types, ids that
//! are not UUIDs, an id twice) refuse the whole push with a 4xx; problems of one record's
//! values are that record's rejection (`invalid_record`), decided later.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{table, ColType};

/// A whole-push refusal: (error code, message).
pub type PushError = (&'static str, String);

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InspectionRec {
    pub id: String,
    pub task_id: String,
    pub establishment_id: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub gps_accuracy_m: Option<f64>,
    pub crs: Option<String>,
    pub team: String,
    pub representative_name: Option<String>,
    pub representative_signed: bool,
    pub representative_refused: bool,
    pub business_opinion: Option<String>,
    pub other_findings: Option<String>,
    pub declared_result: Option<String>,
    pub submitted: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnswerRec {
    pub id: String,
    pub inspection_id: String,
    pub item_code: String,
    pub status: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhotoRec {
    pub id: String,
    pub inspection_id: String,
    pub item_code: Option<String>,
    pub sha256: String,
    pub byte_size: i64,
    pub taken_at: i64,
}

/// A pushed 抽样单 (schema 6): the key columns (`sync::KEY_COLUMNS`) and the form read from the other columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRec {
    pub id: String,
    pub establishment_id: String,
    pub lab_id: String,
    pub category_code: String,
    /// The sampling task it is for (trimmed; null or empty: none).
    pub task_id: Option<String>,
    /// The form (`sampling::form` wire form, one column per field), or why a value of the
    /// right JSON type is outside its field's domain (an unknown enum code, a date that is not
    /// `YYYY-MM-DD`): that record's refusal (`invalid_record`).
    pub form: Result<crate::sampling::form::Form, String>,
}

/// A pushed custody event (schema 6).
#[derive(Debug, Clone, PartialEq)]
pub struct CustodyRec {
    pub id: String,
    pub sample_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub place: String,
    pub note: Option<String>,
    pub sample_condition: Option<String>,
    pub seal_intact: Option<bool>,
}

/// A pushed declaration of a sample's photo (schema 7): what
/// `ops::sample_attachments::declare_in` takes, and the sample it is of.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleAttachmentRec {
    pub id: String,
    pub sample_id: String,
    pub kind: String,
    pub sha256: String,
    pub byte_size: i64,
    pub taken_at: i64,
}

/// A person present at an inspection, as recorded on it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct TeamMember {
    pub user_id: Option<String>,
    pub name: String,
    pub badge_no: Option<String>,
    /// `officer` (the default), or a participant who is not an officer and never counts
    /// towards the team: `npc_deputy` (人大代表) or `consumer_rep` (消费者代表).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Roles of participants who are not officers.
pub const PARTICIPANT_ROLES: [&str; 2] = ["npc_deputy", "consumer_rep"];

impl TeamMember {
    pub fn is_officer(&self) -> bool {
        self.role.as_deref().is_none_or(|r| r == "officer")
    }
}

#[derive(Debug, Default)]
pub struct Push {
    pub inspections: Vec<InspectionRec>,
    pub answers: Vec<AnswerRec>,
    pub photos: Vec<PhotoRec>,
    /// Schema 6, create-only tables (`sync::CREATE_ONLY`).
    pub samples: Vec<SampleRec>,
    pub custody_events: Vec<CustodyRec>,
    /// Schema 7, create-only too.
    pub sample_attachments: Vec<SampleAttachmentRec>,
    /// (table, id) of deletions of inspections, answers and photos.
    pub deleted: Vec<(&'static str, String)>,
    /// (table, id) of deletions in the create-only tables: refused when the record is stored.
    pub create_only_deleted: Vec<(&'static str, String)>,
    /// (table, id) of changes to read-only tables: each is refused.
    pub read_only: Vec<(&'static str, String)>,
}

impl Push {
    pub fn is_empty(&self) -> bool {
        self.inspections.is_empty()
            && self.answers.is_empty()
            && self.photos.is_empty()
            && self.samples.is_empty()
            && self.custody_events.is_empty()
            && self.sample_attachments.is_empty()
            && self.deleted.is_empty()
            && self.create_only_deleted.is_empty()
            && self.read_only.is_empty()
    }
}

/// Default cap on records in one push. WatermelonDB 0.28 sends every unsynced record at once,
/// so the cap is sized for a week offline: 1,000 inspections × 35 answers plus their photo
/// records is about 40,000 records (configurable: `max_sync_records`).
pub const DEFAULT_MAX_RECORDS: usize = 60_000;
/// Default body limit of `POST /api/v1/sync` (configurable: `max_sync_body_bytes`). The week
/// above is about 10 MB of WatermelonDB JSON (full records with `_status`/`_changed`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 24 * 1024 * 1024;
/// The code of a refusal for too many records: the same as a body over the size limit, so a
/// client reacts the same way (split the push).
pub const TOO_LARGE: &str = "payload_too_large";
const MAX_TEXT: usize = 4000;

fn parse_id(v: &Value, table: &str) -> Result<String, PushError> {
    let s = v
        .as_str()
        .ok_or(("invalid_id", format!("{table}: an id is not a string")))?;
    let id = uuid::Uuid::parse_str(s)
        .map_err(|_| ("invalid_id", format!("{table}: id {s:?} is not a UUID")))?;
    // Stored in one canonical form so the same record is never written twice.
    Ok(id.hyphenated().to_string())
}

struct Fields<'a> {
    table: &'static str,
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }
    fn string(&self, name: &str) -> Result<String, PushError> {
        self.opt_string(name)?
            .ok_or(("invalid_body", format!("{}.{name} is required", self.table)))
    }
    fn opt_string(&self, name: &str) -> Result<Option<String>, PushError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err((
                "invalid_body",
                format!("{}.{name} must be a string", self.table),
            )),
        }
    }
    fn opt_f64(&self, name: &str) -> Result<Option<f64>, PushError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or((
                "invalid_body",
                format!("{}.{name} is not a number", self.table),
            )),
            Some(_) => Err((
                "invalid_body",
                format!("{}.{name} must be a number", self.table),
            )),
        }
    }
    fn opt_i64(&self, name: &str) -> Result<Option<i64>, PushError> {
        match self.opt_f64(name)? {
            None => Ok(None),
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            Some(_) => Err((
                "invalid_body",
                format!("{}.{name} must be an integer", self.table),
            )),
        }
    }
    fn i64(&self, name: &str) -> Result<i64, PushError> {
        self.opt_i64(name)?
            .ok_or(("invalid_body", format!("{}.{name} is required", self.table)))
    }
    fn opt_bool(&self, name: &str) -> Result<Option<bool>, PushError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err((
                "invalid_body",
                format!("{}.{name} must be a boolean", self.table),
            )),
        }
    }
    fn bool(&self, name: &str) -> Result<bool, PushError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err((
                "invalid_body",
                format!("{}.{name} must be a boolean", self.table),
            )),
        }
    }
}

/// Checks every key of a record against the table's columns and their JSON types.
fn check_record(table: &'static super::Table, obj: &Map<String, Value>) -> Result<(), PushError> {
    for (key, value) in obj {
        if matches!(key.as_str(), "id" | "_status" | "_changed") {
            continue;
        }
        let Some(col) = table.column(key) else {
            return Err((
                "unknown_column",
                format!("{}.{key} is not a column of the sync schema", table.name),
            ));
        };
        let ok = match (col.ty, value) {
            (_, Value::Null) => true,
            (ColType::String, Value::String(s)) => {
                s.chars().count() <= MAX_TEXT || col.name == "team"
            }
            (ColType::Number, Value::Number(n)) => n.as_f64().is_some_and(f64::is_finite),
            (ColType::Boolean, Value::Bool(_)) => true,
            _ => false,
        };
        if !ok {
            return Err((
                "invalid_body",
                format!(
                    "{}.{key} must be a {} (or too long)",
                    table.name,
                    col.ty.name()
                ),
            ));
        }
    }
    Ok(())
}

/// The form of a pushed `samples` record: every device column but the keys (`KEY_COLUMNS`), as the
/// form's wire object (server columns are ignored). An integral number is read as an integer
/// (`sampled_at`: JSON from some clients spells 1.7e12).
fn sample_form(
    table: &'static super::Table,
    rec: &Map<String, Value>,
) -> Result<crate::sampling::form::Form, String> {
    let mut form = Map::new();
    for (key, value) in rec {
        let Some(col) = table.column(key) else {
            continue;
        };
        if col.server_only || super::KEY_COLUMNS.contains(&col.name) {
            continue;
        }
        let value = match value.as_f64() {
            Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Value::from(f as i64)
            }
            _ => value.clone(),
        };
        form.insert(key.clone(), value);
    }
    serde_json::from_value(Value::Object(form)).map_err(|e| format!("samples: {e}"))
}

/// Parses `{"changes": {...}}` from a parsed JSON value (default record cap).
pub fn parse(body: &Value) -> Result<Push, PushError> {
    let changes = body.get("changes").and_then(Value::as_object).ok_or((
        "invalid_body",
        "the body must be {\"changes\": {...}}".to_string(),
    ))?;
    let mut ctx = Ctx::new(DEFAULT_MAX_RECORDS);
    for (name, value) in changes {
        let table = ctx.table(name)?;
        let obj = value
            .as_object()
            .ok_or(("invalid_body", format!("changes.{name} must be an object")))?;
        for (kind, list) in obj {
            let deleted = kind_is_deleted(name, kind)?;
            let list = list.as_array().ok_or((
                "invalid_body",
                format!("changes.{name}.{kind} must be an array"),
            ))?;
            for item in list {
                ctx.add(table, deleted, item)?;
            }
        }
    }
    Ok(ctx.push)
}

/// Parses a push body straight from its bytes, one record at a time: only the body, the typed
/// records and the record being read are in memory (never a `Value` tree of the whole push),
/// and reading stops at the first record over `max_records`.
///
/// Errors: `invalid_json` for malformed JSON, [`TOO_LARGE`] over `max_records`, else the
/// structural codes of [`parse`].
pub fn parse_slice(body: &[u8], max_records: usize) -> Result<Push, PushError> {
    use serde::de::DeserializeSeed;
    let mut ctx = Ctx::new(max_records);
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = BodySeed(&mut ctx)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) if ctx.saw_changes => Ok(ctx.push),
        Ok(()) => Err(("invalid_body", BODY_SHAPE.to_string())),
        Err(e) => Err(ctx.err.take().unwrap_or_else(|| {
            let code = match e.classify() {
                serde_json::error::Category::Data => "invalid_body",
                _ => "invalid_json",
            };
            (code, e.to_string())
        })),
    }
}

const BODY_SHAPE: &str = "the body must be {\"changes\": {...}}";

fn kind_is_deleted(name: &str, kind: &str) -> Result<bool, PushError> {
    match kind {
        "created" | "updated" => Ok(false),
        "deleted" => Ok(true),
        _ => Err((
            "invalid_body",
            format!("changes.{name}.{kind}: expected created, updated or deleted"),
        )),
    }
}

/// What has been read so far, shared by both parsers.
struct Ctx {
    push: Push,
    count: usize,
    max: usize,
    /// Ids seen per table (a table may be named twice in a streamed body).
    seen: std::collections::HashMap<&'static str, HashSet<String>>,
    /// The refusal that stopped the streamed parse (serde errors carry only text).
    err: Option<PushError>,
    saw_changes: bool,
}

impl Ctx {
    fn new(max: usize) -> Ctx {
        Ctx {
            push: Push::default(),
            count: 0,
            max,
            seen: Default::default(),
            err: None,
            saw_changes: false,
        }
    }

    fn table(&self, name: &str) -> Result<&'static super::Table, PushError> {
        table(name).ok_or(("unknown_table", format!("{name:?} is not a synced table")))
    }

    fn add(
        &mut self,
        table: &'static super::Table,
        deleted: bool,
        item: &Value,
    ) -> Result<(), PushError> {
        self.count += 1;
        if self.count > self.max {
            return Err((
                TOO_LARGE,
                format!(
                    "more than {} records in one push; push in batches (see api-spec/sync.md)",
                    self.max
                ),
            ));
        }
        let name = table.name;
        let push = &mut self.push;
        let seen = self.seen.entry(name).or_default();
        if deleted {
            let id = parse_id(item, name)?;
            if !seen.insert(id.clone()) {
                return Err((
                    "duplicate_id",
                    format!("{name}: id {id} appears twice in one push"),
                ));
            }
            if table.read_only {
                push.read_only.push((table.name, id));
            } else if super::CREATE_ONLY.contains(&table.name) {
                push.create_only_deleted.push((table.name, id));
            } else {
                push.deleted.push((table.name, id));
            }
            return Ok(());
        }
        let rec = item.as_object().ok_or((
            "invalid_body",
            format!("changes.{name}: a record must be an object"),
        ))?;
        let id = parse_id(rec.get("id").unwrap_or(&Value::Null), name)?;
        if !seen.insert(id.clone()) {
            return Err((
                "duplicate_id",
                format!("{name}: id {id} appears twice in one push"),
            ));
        }
        check_record(table, rec)?;
        let f = Fields {
            table: table.name,
            obj: rec,
        };
        match table.name {
            "inspections" => push.inspections.push(InspectionRec {
                id,
                task_id: f.string("task_id")?,
                establishment_id: f.string("establishment_id")?,
                started_at: f.i64("started_at")?,
                finished_at: f.opt_i64("finished_at")?,
                lng: f.opt_f64("lng")?,
                lat: f.opt_f64("lat")?,
                gps_accuracy_m: f.opt_f64("gps_accuracy_m")?,
                crs: f.opt_string("crs")?.filter(|s| !s.is_empty()),
                team: f.opt_string("team")?.unwrap_or_else(|| "[]".into()),
                representative_name: f
                    .opt_string("representative_name")?
                    .filter(|s| !s.is_empty()),
                representative_signed: f.bool("representative_signed")?,
                representative_refused: f.bool("representative_refused")?,
                business_opinion: f.opt_string("business_opinion")?.filter(|s| !s.is_empty()),
                other_findings: f.opt_string("other_findings")?.filter(|s| !s.is_empty()),
                declared_result: f.opt_string("declared_result")?.filter(|s| !s.is_empty()),
                submitted: f.bool("submitted")?,
            }),
            "answers" => push.answers.push(AnswerRec {
                id,
                inspection_id: f.string("inspection_id")?,
                item_code: f.string("item_code")?,
                status: f.string("status")?,
                note: f.opt_string("note")?.filter(|s| !s.is_empty()),
            }),
            "photos" => push.photos.push(PhotoRec {
                id,
                inspection_id: f.string("inspection_id")?,
                item_code: f.opt_string("item_code")?.filter(|s| !s.is_empty()),
                sha256: f.string("sha256")?,
                byte_size: f.i64("byte_size")?,
                taken_at: f.i64("taken_at")?,
            }),
            "samples" => push.samples.push(SampleRec {
                id,
                establishment_id: f.string("establishment_id")?.trim().to_string(),
                lab_id: f.string("lab_id")?.trim().to_string(),
                category_code: f.string("category_code")?.trim().to_string(),
                task_id: f
                    .opt_string("task_id")?
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
                form: sample_form(table, rec),
            }),
            "custody_events" => push.custody_events.push(CustodyRec {
                id,
                sample_id: f.string("sample_id")?,
                kind: f.string("kind")?,
                occurred_at: f.i64("occurred_at")?,
                place: f.opt_string("place")?.unwrap_or_default(),
                note: f.opt_string("note")?.filter(|s| !s.is_empty()),
                sample_condition: f.opt_string("sample_condition")?.filter(|s| !s.is_empty()),
                seal_intact: f.opt_bool("seal_intact")?,
            }),
            "sample_attachments" => push.sample_attachments.push(SampleAttachmentRec {
                id,
                sample_id: f.string("sample_id")?.trim().to_string(),
                kind: f.string("kind")?,
                sha256: f.string("sha256")?,
                byte_size: f.i64("byte_size")?,
                taken_at: f.i64("taken_at")?,
            }),
            _ => push.read_only.push((table.name, id)),
        }
        Ok(())
    }

    /// Keeps `e` for the caller and gives serde an error to unwind with.
    fn fail<E: serde::de::Error>(&mut self, e: PushError) -> E {
        let msg = e.1.clone();
        self.err = Some(e);
        E::custom(msg)
    }
}

// Streaming seeds: body → changes → table → kind → list of records.

struct BodySeed<'a>(&'a mut Ctx);

impl<'de> serde::de::DeserializeSeed<'de> for BodySeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BodySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(BODY_SHAPE)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "changes" {
                self.0.saw_changes = true;
                map.next_value_seed(ChangesSeed(&mut *self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ChangesSeed<'a>(&'a mut Ctx);

impl<'de> serde::de::DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ChangesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(BODY_SHAPE)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let table = match self.0.table(&name) {
                Ok(t) => t,
                Err(e) => return Err(self.0.fail(e)),
            };
            map.next_value_seed(TableSeed(&mut *self.0, table))?;
        }
        Ok(())
    }
}

struct TableSeed<'a>(&'a mut Ctx, &'static super::Table);

impl<'de> serde::de::DeserializeSeed<'de> for TableSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TableSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "changes.{} to be an object", self.1.name)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(kind) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let deleted = match kind_is_deleted(self.1.name, &kind) {
                Ok(d) => d,
                Err(e) => return Err(self.0.fail(e)),
            };
            map.next_value_seed(ListSeed(&mut *self.0, self.1, deleted, kind.into_owned()))?;
        }
        Ok(())
    }
}

struct ListSeed<'a>(&'a mut Ctx, &'static super::Table, bool, String);

impl<'de> serde::de::DeserializeSeed<'de> for ListSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ListSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "changes.{}.{} to be an array", self.1.name, self.3)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // One record at a time: its `Value` is dropped once it is typed.
        while let Some(item) = seq.next_element::<Value>()? {
            if let Err(e) = self.0.add(self.1, self.2, &item) {
                return Err(self.0.fail(e));
            }
        }
        Ok(())
    }
}

impl InspectionRec {
    /// Value checks of one record; the message explains the refusal.
    pub fn check(&self) -> Result<Vec<TeamMember>, String> {
        if !(0..=4_102_444_800_000).contains(&self.started_at) {
            return Err("started_at is not a plausible Unix millisecond time".into());
        }
        if let Some(f) = self.finished_at {
            if f < self.started_at {
                return Err("finished_at is before started_at".into());
            }
        }
        match (self.lng, self.lat) {
            (None, None) => {}
            (Some(lng), Some(lat)) => {
                let crs = self.crs.as_deref().ok_or("crs is required with lng/lat")?;
                let crs: crate::geo::Crs = crs
                    .parse()
                    .map_err(|e: crate::geo::GeoError| e.to_string())?;
                crate::geo::Location::new(lng, lat, crs).map_err(|e| e.to_string())?;
            }
            _ => return Err("lng and lat go together".into()),
        }
        // The sync contract's enumeration exactly (the stored value is compared on replays).
        if let Some(c) = &self.crs {
            if !matches!(c.as_str(), "wgs84" | "gcj02" | "bd09") {
                return Err(format!("crs {c:?} is not wgs84, gcj02 or bd09"));
            }
        }
        if self.gps_accuracy_m.is_some_and(|a| a < 0.0) {
            return Err("gps_accuracy_m must not be negative".into());
        }
        if let Some(r) = &self.declared_result {
            if !matches!(
                r.as_str(),
                "compliant" | "basically_compliant" | "non_compliant"
            ) {
                return Err(format!(
                    "declared_result {r:?} is not compliant, basically_compliant or non_compliant"
                ));
            }
        }
        if self.representative_signed && self.representative_refused {
            return Err("the representative cannot both sign and refuse".into());
        }
        let team: Vec<TeamMember> = serde_json::from_str(&self.team)
            .map_err(|_| "team must be a JSON array of {user_id, name, badge_no}".to_string())?;
        if team.len() > 20 {
            return Err("team lists more than 20 people".into());
        }
        if let Some(r) = team
            .iter()
            .filter_map(|m| m.role.as_deref())
            .find(|r| *r != "officer" && !PARTICIPANT_ROLES.contains(r))
        {
            return Err(format!(
                "team role {r:?} is not officer, npc_deputy or consumer_rep"
            ));
        }
        Ok(team)
    }
}

impl AnswerRec {
    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.status.as_str(), "pass" | "fail" | "not_applicable") {
            return Err(format!(
                "status {:?} is not pass, fail or not_applicable",
                self.status
            ));
        }
        Ok(())
    }
}

/// Largest photo accepted, bytes (the upload limit).
pub const MAX_PHOTO_BYTES: i64 = 25 * 1024 * 1024;

impl PhotoRec {
    pub fn check(&self) -> Result<(), String> {
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("sha256 must be 64 lowercase hex characters".into());
        }
        if !(1..=MAX_PHOTO_BYTES).contains(&self.byte_size) {
            return Err(format!("byte_size must be 1 to {MAX_PHOTO_BYTES}"));
        }
        if !(0..=4_102_444_800_000).contains(&self.taken_at) {
            return Err("taken_at is not a plausible Unix millisecond time".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn insp(id: &str) -> Value {
        json!({"id": id, "_status": "created", "_changed": "", "task_id": "t", "establishment_id": "e", "started_at": 1.7e12,
               "finished_at": null, "lng": null, "lat": null, "gps_accuracy_m": null, "crs": null, "team": "[]",
               "representative_name": null, "representative_signed": false, "representative_refused": false,
               "business_opinion": null, "other_findings": null, "declared_result": null, "submitted": false,
               "computed_result": "compliant", "review_state": null, "server_flags": null})
    }

    const ID: &str = "7d3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f";

    #[test]
    fn parses_a_watermelon_push() {
        let body = json!({"changes": {"inspections": {"created": [insp(ID)], "updated": [], "deleted": []},
                                      "tasks": {"created": [], "updated": [], "deleted": []}}});
        let p = parse(&body).unwrap();
        assert_eq!(p.inspections.len(), 1);
        assert_eq!(p.inspections[0].started_at, 1_700_000_000_000);
        assert!(p.read_only.is_empty());
    }

    #[test]
    fn structural_errors() {
        let cases = [
            (json!({"nope": {}}), "invalid_body"),
            (
                json!({"changes": {"robots": {"created": []}}}),
                "unknown_table",
            ),
            (
                json!({"changes": {"inspections": {"created": [insp("not-a-uuid")]}}}),
                "invalid_id",
            ),
            (
                json!({"changes": {"inspections": {"created": [insp(ID)], "updated": [insp(ID)]}}}),
                "duplicate_id",
            ),
            (
                json!({"changes": {"inspections": {"created": [{"id": ID, "colour": "red"}]}}}),
                "unknown_column",
            ),
            (
                json!({"changes": {"inspections": {"created": [{"id": ID, "started_at": "yesterday"}]}}}),
                "invalid_body",
            ),
            (
                json!({"changes": {"inspections": {"created": [{"id": ID, "task_id": "t", "establishment_id": "e", "started_at": 1.5}]}}}),
                "invalid_body",
            ),
            (
                json!({"changes": {"answers": {"deleted": [7]}}}),
                "invalid_id",
            ),
            (
                json!({"changes": {"answers": {"removed": []}}}),
                "invalid_body",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(parse(&body).unwrap_err().0, code, "{body}");
        }
    }

    #[test]
    fn streamed_parse_agrees_with_the_value_parse() {
        let body = json!({"other": [1, {"x": null}], "changes": {
            "inspections": {"created": [insp(ID)], "updated": [], "deleted": []},
            "answers": {"created": [{"id": "0a3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f", "inspection_id": ID, "item_code": "3.1", "status": "pass", "note": ""}],
                        "deleted": ["1a3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f"]},
            "tasks": {"updated": [{"id": ID, "state": "submitted"}]}}});
        let a = parse(&body).unwrap();
        let b = parse_slice(&serde_json::to_vec(&body).unwrap(), DEFAULT_MAX_RECORDS).unwrap();
        assert_eq!(a.inspections, b.inspections);
        assert_eq!(a.answers, b.answers);
        assert_eq!(a.deleted, b.deleted);
        assert_eq!(a.read_only, b.read_only);
        assert_eq!(b.answers[0].note, None);
    }

    #[test]
    fn streamed_parse_errors() {
        let cases: Vec<(&str, &str)> = vec![
            (r#"{"changes": {"#, "invalid_json"),
            (r#"{"changes": {}} trailing"#, "invalid_json"),
            ("", "invalid_json"),
            (r#"[1, 2]"#, "invalid_body"),
            (r#"{"nope": {}}"#, "invalid_body"),
            (r#"{"changes": null}"#, "invalid_body"),
            (
                r#"{"changes": {"robots": {"created": []}}}"#,
                "unknown_table",
            ),
            (
                r#"{"changes": {"inspections": "everything"}}"#,
                "invalid_body",
            ),
            (
                r#"{"changes": {"answers": {"removed": []}}}"#,
                "invalid_body",
            ),
            (
                r#"{"changes": {"answers": {"deleted": {}}}}"#,
                "invalid_body",
            ),
            (
                r#"{"changes": {"answers": {"deleted": [7]}}}"#,
                "invalid_id",
            ),
            (
                r#"{"changes": {"inspections": {"created": [{"id": "7d3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f", "colour": "red"}]}}}"#,
                "unknown_column",
            ),
            // The same table twice: ids are still checked across both.
            (
                r#"{"changes": {"answers": {"deleted": ["7d3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f"]}, "answers": {"deleted": ["7d3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f"]}}}"#,
                "duplicate_id",
            ),
        ];
        for (body, code) in cases {
            let got = parse_slice(body.as_bytes(), DEFAULT_MAX_RECORDS).unwrap_err();
            assert_eq!(got.0, code, "{body}: {got:?}");
            assert!(!got.1.is_empty());
        }
    }

    #[test]
    fn record_cap_stops_the_parse() {
        let ids: Vec<String> = (0..5)
            .map(|i| format!("7d3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6{i}"))
            .collect();
        let body = serde_json::to_vec(&json!({"changes": {"answers": {"deleted": ids}}})).unwrap();
        assert_eq!(parse_slice(&body, 5).unwrap().deleted.len(), 5);
        let e = parse_slice(&body, 4).unwrap_err();
        assert_eq!(e.0, TOO_LARGE, "{e:?}");
    }

    #[test]
    fn sample_attachments_are_read_as_declarations() {
        let rec = json!({"id": ID.to_uppercase(), "sample_id": " 0a3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f ",
            "kind": "seal", "sha256": "ab".repeat(32), "byte_size": 1000, "taken_at": 1.7e12,
            "processing_status": "processed", "processing_error": null, "width": 9, "height": 9,
            "_status": "created", "_changed": ""});
        let body = json!({"changes": {"sample_attachments": {"created": [rec.clone()], "updated": [],
            "deleted": ["1a3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f"]}}});
        let p = parse(&body).unwrap();
        // Server columns are ignored; the id is canonical, the sample id trimmed.
        assert_eq!(
            p.sample_attachments,
            vec![SampleAttachmentRec {
                id: ID.to_string(),
                sample_id: "0a3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f".into(),
                kind: "seal".into(),
                sha256: "ab".repeat(32),
                byte_size: 1000,
                taken_at: 1_700_000_000_000,
            }]
        );
        // Create-only: a deletion is kept for the per-record refusal, never applied.
        assert_eq!(
            p.create_only_deleted,
            vec![(
                "sample_attachments",
                "1a3a1c1e-2f44-4e6c-9d6b-1a2b3c4d5e6f".to_string()
            )]
        );
        assert!(p.deleted.is_empty());
        let streamed =
            parse_slice(&serde_json::to_vec(&body).unwrap(), DEFAULT_MAX_RECORDS).unwrap();
        assert_eq!(streamed.sample_attachments, p.sample_attachments);
        // A declaration without its hash, or with a size that is not an integer, is malformed.
        for (key, value) in [("sha256", Value::Null), ("byte_size", json!(1.5))] {
            let mut bad = rec.clone();
            bad[key] = value;
            let body = json!({"changes": {"sample_attachments": {"created": [bad]}}});
            assert_eq!(parse(&body).unwrap_err().0, "invalid_body", "{key}");
        }
    }

    #[test]
    fn read_only_tables_are_collected_for_refusal() {
        let body = json!({"changes": {"tasks": {"updated": [{"id": ID, "state": "submitted"}]}}});
        let p = parse(&body).unwrap();
        assert_eq!(p.read_only, vec![("tasks", ID.to_string())]);
    }

    #[test]
    fn record_value_checks() {
        let mut r = parse(&json!({"changes": {"inspections": {"created": [insp(ID)]}}}))
            .unwrap()
            .inspections
            .remove(0);
        assert!(r.check().is_ok());
        r.lng = Some(117.2);
        assert!(r.check().is_err(), "lat missing");
        r.lat = Some(39.1);
        assert!(r.check().is_err(), "crs missing");
        r.crs = Some("gcj02".into());
        assert!(r.check().is_ok());
        r.declared_result = Some("great".into());
        assert!(r.check().is_err());
        r.declared_result = None;
        r.crs = Some("GCJ-02".into());
        assert!(r.check().is_err(), "only the documented spellings");
    }
}
