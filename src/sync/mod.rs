//! Offline sync with mobile clients, in the WatermelonDB protocol: what syncs (the schema,
//! per client schema version), and how a pushed record is read and checked. Pure; the store
//! does the SQL and `ops::sync` applies the rules.

pub mod decide;
pub mod doc;
pub mod events;
pub mod push;

/// The client schema version the server is built for; older ones down to
/// [`OLDEST_SCHEMA_VERSION`] are served too (tables and columns they lack are left out).
pub const CURRENT_SCHEMA_VERSION: u32 = 7;
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    String,
    Number,
    Boolean,
}

impl ColType {
    pub fn name(self) -> &'static str {
        match self {
            ColType::String => "string",
            ColType::Number => "number",
            ColType::Boolean => "boolean",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    /// Nullable (WatermelonDB `isOptional`).
    pub optional: bool,
    pub indexed: bool,
    /// Set by the server only; pushed values are ignored.
    pub server_only: bool,
    /// First client schema version that has the column.
    pub since: u32,
    /// Meaning, unit and enumeration, for api-spec/sync.md.
    pub doc: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// Server → device only: pushed changes are refused per record (`read_only`).
    pub read_only: bool,
    pub since: u32,
    pub doc: &'static str,
    pub columns: &'static [Column],
}

const fn col(name: &'static str, ty: ColType, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        optional: false,
        indexed: false,
        server_only: false,
        since: 1,
        doc,
    }
}
const fn opt(name: &'static str, ty: ColType, doc: &'static str) -> Column {
    Column {
        name,
        ty,
        optional: true,
        indexed: false,
        server_only: false,
        since: 1,
        doc,
    }
}
const fn idx(c: Column) -> Column {
    Column { indexed: true, ..c }
}
const fn server(c: Column) -> Column {
    Column {
        server_only: true,
        ..c
    }
}
const fn since(v: u32, c: Column) -> Column {
    Column { since: v, ..c }
}

use ColType::{Boolean as B, Number as N, String as S};

pub static TABLES: &[Table] = &[
    Table {
        name: "tasks",
        read_only: true,
        since: 1,
        doc: "The user's team's tasks: one per drawn establishment, and (since version 5) rechecks (复查) of follow-ups. `state` goes back from `submitted` to `in_progress` when a reviewer returns the inspection, and to `assigned` when a reviewer rejects it (redo it with a new inspection).",
        columns: &[
            col("plan_id", S, "The round (plan) id."),
            idx(col("establishment_id", S, "Id of the establishment to inspect (`establishments`).")),
            col("template_id", S, "Checklist template to use."),
            col("template_version", N, "Exact checklist version to use (integer)."),
            col("due_date", S, "`YYYY-MM-DD`."),
            col("state", S, "`assigned`, `in_progress`, `submitted` or `cancelled`."),
            col("must_check_items", S, "JSON array of item codes failed at the previous inspection: they must be checked."),
            col("round_title", S, "期 title, e.g. `2024年3·15 随机查餐厅 第3期`."),
            since(4, col("team", S, "JSON array of the drawn team's officers in draw order, `[{user_id, name, badge_no, role: \"officer\"}]`, the same shape as `inspections.team`: the app can fill an inspection's team offline (badges as the accounts hold them; the server checks the submitted team against the accounts).")),
            since(5, col("kind", S, "`inspection` (drawn in a round) or `recheck` (复查 of a follow-up: `must_check_items` are the items to recheck).")),
        ],
    },
    Table {
        name: "establishments",
        read_only: true,
        since: 1,
        doc: "The establishments of the user's tasks (no contact data).",
        columns: &[
            col("sign_name", S, "牌匾名称."),
            col("licensed_name", S, "营业执照名称."),
            col("address", S, "经营地址."),
            col("town", S, "街道/乡镇."),
            col("category", S, "业态 code, e.g. `small_restaurant`."),
            col("risk_grade", S, "`A`–`D`."),
            opt("lng", N, "Longitude as registered, degrees (see `crs`)."),
            opt("lat", N, "Latitude as registered, degrees."),
            opt("crs", S, "`wgs84`, `gcj02` or `bd09`."),
        ],
    },
    Table {
        name: "checklist_versions",
        read_only: true,
        since: 1,
        doc: "The checklist versions the user's tasks use. Id: `<template_id>:<version>`. Immutable.",
        columns: &[
            col("template_id", S, "Template id."),
            col("version", N, "Version number (integer)."),
            col("title", S, "Title of the table."),
            col("content", S, "JSON: `{title, sections: [{code, title, items: [{code, text, key, na_allowed, photo_required_on_fail}]}], rule}`."),
        ],
    },
    Table {
        name: "inspections",
        read_only: false,
        since: 1,
        doc: "An inspection of a task, written on the device. Read-only once submitted, unless a reviewer returns it (`review_state` `returned`, `submitted` false again): then the team fixes it and submits it again, a new round. Approved and rejected inspections stay read-only for good.",
        columns: &[
            idx(col("task_id", S, "The task (`tasks`); the user must be in its team.")),
            col("establishment_id", S, "Must be the task's establishment."),
            col("started_at", N, "Device clock when the inspection started, Unix milliseconds (integer)."),
            opt("finished_at", N, "Device clock when it finished, Unix milliseconds (integer)."),
            opt("lng", N, "GPS longitude, degrees (−180..180), in `crs`."),
            opt("lat", N, "GPS latitude, degrees (−90..90), in `crs`."),
            opt("gps_accuracy_m", N, "Horizontal accuracy of the fix, metres (≥ 0)."),
            opt("crs", S, "`wgs84` (raw GPS, iOS, WeChat), `gcj02` (AMap, Tencent) or `bd09` (Baidu). Required with lng/lat."),
            col("team", S, "JSON array of the people present: `[{\"user_id\", \"name\", \"badge_no\", \"role\"}]`. `role` is `officer` (default) or, for participants who are not officers, `npc_deputy` (人大代表) or `consumer_rep` (消费者代表). To submit, at least 2 officers must be members of the task's drawn team (`user_id`) with active inspector accounts; badge numbers are taken from the accounts, participants never count."),
            opt("representative_name", S, "Name of the establishment's representative."),
            col("representative_signed", B, "The representative signed the record."),
            col("representative_refused", B, "The representative refused to sign (recorded by the inspectors)."),
            opt("business_opinion", S, "被检查单位意见, the business's opinion."),
            opt("other_findings", S, "Other findings (其他需要记录的问题)."),
            opt("declared_result", S, "The inspectors' declared result: `compliant`, `basically_compliant` or `non_compliant`."),
            col("submitted", B, "Set true to submit; the server then checks coverage, computes the result and locks the record."),
            server(opt("computed_result", S, "Server: result by the template's rule at submission: `compliant` (符合), `basically_compliant` (基本符合), `non_compliant` (不符合).")),
            server(opt("review_state", S, "Server: review state: null while the team works on it, `submitted` (waiting for review), then `approved` (final), `returned` (sent back with comments, see `reviews`: editable and to be submitted again) or `rejected` (voided; the task goes back to `assigned`).")),
            since(2, server(opt("server_flags", S, "Server: JSON array of flags for reviewers, e.g. `declared_result_differs`."))),
            since(5, server(col("review_round", N, "Server: submissions so far (integer; 0 before the first, 1 after it, 2 after a resubmission of a returned inspection...)."))),
            since(5, server(opt("override_result", S, "Server: the reviewer's overriding result (`compliant`, `basically_compliant`, `non_compliant`), shown beside `computed_result`; the result that stands is this one if set."))),
            since(5, server(opt("override_reason", S, "Server: why the reviewer overrode the computed result."))),
        ],
    },
    Table {
        name: "answers",
        read_only: false,
        since: 1,
        doc: "Checklist answers. One per (inspection, item): use id = UUIDv5(namespace `6ba7b811-9dad-11d1-80b4-00c04fd430c8`, `<inspection_id>:<item_code>`) so two devices answering the same item write the same record.",
        columns: &[
            idx(col("inspection_id", S, "The inspection.")),
            col("item_code", S, "Item code of the inspection's checklist version, e.g. `3.1`."),
            col("status", S, "`pass`, `fail` or `not_applicable` (合理缺项, where the item allows it)."),
            opt("note", S, "Free text."),
        ],
    },
    Table {
        name: "photos",
        read_only: false,
        since: 2,
        doc: "Photo records; the bytes are uploaded separately (resumable upload) and matched by sha256.",
        columns: &[
            idx(col("inspection_id", S, "The inspection.")),
            opt("item_code", S, "The checklist item the photo documents, if any."),
            col("sha256", S, "SHA-256 of the file, 64 lowercase hex characters."),
            col("byte_size", N, "File size in bytes (integer, 1 to 26,214,400)."),
            col("taken_at", N, "Capture time on the device, Unix milliseconds (integer)."),
            server(opt("processing_status", S, "Server: `awaiting_upload` → `uploaded` (bytes received and verified) → `processed` (EXIF read, renditions made) or `failed` (the file cannot be decoded).")),
            since(3, server(opt("width", N, "Server: width in pixels after EXIF orientation."))),
            since(3, server(opt("height", N, "Server: height in pixels after EXIF orientation."))),
            since(3, server(opt("exif_taken_at", N, "Server: EXIF capture time, Unix milliseconds (UTC+8 assumed when the EXIF has no offset)."))),
            since(3, server(opt("exif_lng", N, "Server: EXIF GPS longitude, WGS-84 degrees."))),
            since(3, server(opt("exif_lat", N, "Server: EXIF GPS latitude, WGS-84 degrees."))),
            since(3, server(opt("flags", S, "Server: JSON array of geofence flags for reviewers: `outside_radius` (farther than the configured radius, default 300 m, from the establishment), `captured_outside_inspection` (capture time outside the inspection's start–finish window ± 30 min), `no_location` (nothing to compare)."))),
            since(4, server(opt("processing_error", S, "Server: why processing failed when `processing_status` is `failed` (e.g. the file is not a decodable JPEG or exceeds the decode limits), so the inspector can take the photo again; `null` otherwise."))),
        ],
    },
    Table {
        name: "reviews",
        read_only: true,
        since: 5,
        doc: "Reviewers' decisions on the team's inspections, one record per decision, never changed: the history of every round. A return's comments arrive here with the inspection they concern (the section's internal notes never do).",
        columns: &[
            idx(col("inspection_id", S, "The inspection (`inspections`).")),
            col("round", N, "The submission round decided (integer, 1 = the first submission); equals the inspection's `review_round` at the decision."),
            col("decision", S, "`approved`, `returned` or `rejected`."),
            opt("comment", S, "The general comment to the team; for `rejected`, the reason."),
            col("item_comments", S, "JSON array of comments on checklist items, `[{item_code, comment}]` (empty `[]` if none)."),
            opt("override_result", S, "The result the reviewer set instead of the computed one (approvals only): `compliant`, `basically_compliant` or `non_compliant`."),
            opt("override_reason", S, "Why the computed result was overridden."),
            col("decided_at", N, "When the decision was made, Unix milliseconds (integer)."),
            col("reviewer_name", S, "The reviewer's name."),
        ],
    },
    // ---- 食品安全抽检 (schema 6): samplers' tasks (pulled), 抽样单 and custody events ------
    Table {
        name: "sampling_tasks",
        read_only: true,
        since: 6,
        doc: "The user's sampling tasks (抽检任务): one per premises drawn in a sampling plan, pulled by each sampler on its team (a task with no team yet reaches nobody). A sampler taken off the team gets the task deleted at their next pull; one put on it gets it as new. `state` becomes `cancelled` when a redraw replaces the task's draw. A 抽样单 against the task names it in `samples.task_id` and must have its premises, lab, 检验目的 and 抽样环节, with both samplers on its team.",
        columns: &[
            since(6, col("plan_id", S, "The sampling plan's id.")),
            since(6, col("plan_title", S, "The plan's title, e.g. `2026年流通环节小麦粉监督抽检` (for `samples.task_source`).")),
            since(6, col("purpose", S, "检验目的 of the plan: `supervision` (监督抽检) or `risk_monitoring` (风险监测); a sample against the task must have it.")),
            since(6, col("stage", S, "抽样环节 of the plan: `production` (生产), `circulation` (流通) or `catering` (餐饮); a sample against the task must have it.")),
            since(6, idx(col("establishment_id", S, "The premises to sample (被抽样单位), an establishment id: a sample against the task must name it."))),
            since(6, col("premises_sign_name", S, "Its 牌匾名称 as the registry holds it now (follows registry changes).")),
            since(6, col("premises_licensed_name", S, "Its 营业执照名称.")),
            since(6, col("premises_address", S, "Its 经营地址.")),
            since(6, col("premises_town", S, "Its 街道/乡镇.")),
            since(6, opt("premises_licence_no", S, "Its 食品经营许可证编号 or 备案编号, as registered (null if none).")),
            since(6, opt("premises_credit_code", S, "Its 统一社会信用代码, as registered (null if none).")),
            since(6, col("lab_id", S, "The lab (检验机构) the task's samples go to: a sample against the task must name it.")),
            since(6, col("lab_name", S, "The lab's name.")),
            since(6, col("batches", S, "JSON array of the task's share of the plan's batches: `[{category_code, batches}]` (food category codes of the stored tree, batches ≥ 1).")),
            since(6, col("due_date", S, "`YYYY-MM-DD`: the plan's working days after the draw day (on the bureau's working-day calendar).")),
            since(6, col("state", S, "`assigned` (a team is set; it may change until a sample is submitted) or `cancelled` (a redraw replaced it: no sample may be submitted against it).")),
            since(6, col("team", S, "JSON array of the task's samplers in team order, the user included, `[{user_id, name, badge_no, role: \"officer\"}]` (the shape of `tasks.team`): `samples.sampler_1` and `sampler_2` are two of these `user_id`s.")),
        ],
    },
    // ---- 食品安全抽检 (schema 6): samplers' 抽样单 and custody events, create-only ----------
    Table {
        name: "samples",
        read_only: false,
        since: 6,
        doc: "抽样单 (sampling forms) the user is one of the two samplers of, written on the device and submitted by pushing them **once**: a pushed record is checked and stored exactly as `POST /api/v1/samples` does (every field named on refusal), then read-only for good. One column per field of the paper form: a text column holds the value, `\"/\"` (or `\"／\"`) for not applicable, `null` for missing; every field needs a value or `\"/\"` where the form allows it. Enumerations are their code (the Chinese label is accepted too and comes back as the code). Lab results are not synced (the bureau serves them); `state` says how far the sample got.",
        columns: &[
            since(6, col("establishment_id", S, "The sampled premises (被抽样单位) in the registry (an establishment id).")),
            since(6, col("lab_id", S, "The lab (检验机构) the sample goes to (a lab id).")),
            since(6, col("category_code", S, "The sample's food category code, level 3 or 4 of the stored tree; `food_category_1`..`_4` must name its path.")),
            since(6, idx(opt("task_id", S, "The sampling task (`sampling_tasks`) the sample is for, or null: the pushing user and the other sampler must be on its team, and `establishment_id`, `lab_id`, `purpose` and `stage` must be the task's (refused `unknown_task` for a task that is not the user's, `task_cancelled`, or `validation_failed` naming what disagrees)."))),
            since(6, opt("sampling_no", S, "抽样单编号 from the national system (2 letters, 17 digits), or null: the server generates one (`sample_no`).")),
            since(6, opt("task_source", S, "任务来源.")),
            since(6, opt("purpose", S, "检验目的: `supervision` (监督抽检) or `risk_monitoring` (风险监测).")),
            since(6, opt("stage", S, "抽样环节: `production` (生产), `circulation` (流通) or `catering` (餐饮).")),
            since(6, opt("food_category_1", S, "食品大类 (level-1 name of `category_code`).")),
            since(6, opt("food_category_2", S, "食品亚类 (level 2).")),
            since(6, opt("food_category_3", S, "食品品种 (level 3).")),
            since(6, opt("food_category_4", S, "食品细类 (level 4), `\"/\"` for a level-3 category.")),
            since(6, opt("premises_name", S, "被抽样单位名称 at sampling time.")),
            since(6, opt("premises_address", S, "被抽样单位地址.")),
            since(6, opt("premises_credit_code", S, "统一社会信用代码, or `\"/\"`.")),
            since(6, opt("premises_licence_no", S, "许可证编号 (JY/YB/SC), or `\"/\"`.")),
            since(6, opt("premises_legal_representative", S, "法定代表人 (负责人), or `\"/\"`.")),
            since(6, opt("premises_contact", S, "联系电话, or `\"/\"`.")),
            since(6, opt("producer_name", S, "标称生产者, or `\"/\"`.")),
            since(6, opt("producer_address", S, "生产者地址, or `\"/\"`.")),
            since(6, opt("producer_sc_licence", S, "食品生产许可证编号: `SC` + 14 digits, or `\"/\"`.")),
            since(6, opt("sample_name", S, "样品名称.")),
            since(6, opt("sample_brand", S, "商标, or `\"/\"`.")),
            since(6, opt("sample_specification", S, "规格型号, or `\"/\"`.")),
            since(6, opt("sample_production_date", S, "生产（加工/购进）日期 `YYYY-MM-DD`, or `\"/\"`.")),
            since(6, opt("sample_batch", S, "批号, or `\"/\"`.")),
            since(6, opt("sample_shelf_life", S, "保质期 as printed, or `\"/\"`.")),
            since(6, opt("sample_standard", S, "执行标准/技术文件, or `\"/\"`.")),
            since(6, opt("sample_price", S, "单价 in yuan as decimal text (`\"12.50\"`), or `\"/\"`.")),
            since(6, opt("sample_imported", B, "是否进口.")),
            since(6, opt("sample_storage", S, "贮存条件.")),
            since(6, opt("sampling_method", S, "抽样方式: `aseptic` (无菌抽样) or `non_aseptic` (非无菌抽样).")),
            since(6, opt("sampling_base", N, "抽样基数 (> 0).")),
            since(6, opt("sampling_base_unit", S, "Its unit.")),
            since(6, opt("sample_quantity", N, "抽样数量 (> 0).")),
            since(6, opt("sample_quantity_unit", S, "Its unit.")),
            since(6, opt("backup_quantity", N, "备样数量 (≥ 0).")),
            since(6, opt("backup_quantity_unit", S, "Its unit.")),
            since(6, opt("sampled_at", N, "抽样时间, Unix milliseconds (integer).")),
            since(6, opt("lng", N, "GPS longitude of the sampling, degrees, in `crs`.")),
            since(6, opt("lat", N, "GPS latitude, degrees.")),
            since(6, opt("crs", S, "`wgs84`, `gcj02` or `bd09`.")),
            since(6, opt("gps_accuracy_m", N, "Accuracy the device reported, metres.")),
            since(6, opt("sampler_1", S, "First sampler's user id; the pushing user must be one of the two.")),
            since(6, opt("sampler_2", S, "Second sampler's user id (enabled inspector accounts, without a declared conflict (回避) at the premises).")),
            since(6, opt("premises_opinion", S, "被抽样单位意见: `no_objection` (无异议) or `objection` (有异议).")),
            since(6, opt("premises_opinion_text", S, "The objection as written; required with `objection`.")),
            since(6, server(opt("sample_no", S, "Server: the 抽样单编号 that stands: the national number, or the one generated (`FC-20260302-0007`)."))),
            since(6, server(opt("state", S, "Server: how far the sample got: `submitted`, then the latest custody event: `sealed`, `dispatched`, `received`, `testing`, `reported`."))),
            since(6, server(col("seal_broken", B, "Server: the lab received the sample with its seal broken."))),
        ],
    },
    Table {
        name: "custody_events",
        read_only: false,
        since: 6,
        doc: "The chain of custody of the user's samples, append-only: sealed → dispatched (pushed by the samplers) → received → testing → reported (recorded by the lab, pulled). Each kind once, in this order, none before the previous event's time; a pushed event is checked as `POST /api/v1/samples/{id}/custody` checks it. Never changed or deleted, so never a conflict.",
        columns: &[
            since(6, idx(col("sample_id", S, "The sample (`samples`): one of the user's, on the server or earlier in the same push."))),
            since(6, col("kind", S, "`sealed` (封样) or `dispatched` (寄送) from a device; `received`, `testing`, `reported` come from the lab.")),
            since(6, col("occurred_at", N, "When it happened, Unix milliseconds (integer); not before the previous event.")),
            since(6, col("place", S, "Where (the premises, the courier office, the lab), 1–500 characters.")),
            since(6, opt("note", S, "Free text, at most 500 characters.")),
            since(6, opt("sample_condition", S, "`received` only (the lab's receipt): the sample's condition as found.")),
            since(6, opt("seal_intact", B, "`received` only: whether the seal was intact; `false` flags the sample.")),
            since(6, server(opt("actor_id", S, "Server: user id of who recorded it."))),
            since(6, server(opt("actor_role", S, "Server: `inspector` (a sampler) or `lab`."))),
            since(6, server(opt("recorded_at", N, "Server: when the server stored it, Unix milliseconds."))),
        ],
    },
    // ---- 食品安全抽检 (schema 7): the samplers' photos of a sample, declared offline --------
    Table {
        name: "sample_attachments",
        read_only: false,
        since: 7,
        doc: "The site, sample and seal photos of the user's samples (抽样单 they are one of the two samplers of), declared on the device as `photos` are for inspections: the record is the declaration, the bytes follow by resumable upload (tus, `attachment_id` in `Upload-Metadata`) and are matched by sha256; the server's processing status comes back by pull. A pushed record is declared exactly as `POST /api/v1/samples/{id}/attachments` declares it, then never changes: the same declaration again is a no-op, another one under its id is refused `attachment_id_conflict`, a deletion of a stored one is refused `append_only`. A sample that is not the user's (or not on the server, or refused in the same push) is refused `unknown_sample`, whether named by the record or by the one stored under its id. The lab report (`report`) is the lab's: never declared from a device (refused `report_not_from_device`) and never pulled.",
        columns: &[
            since(7, idx(col("sample_id", S, "The sample (`samples`): one of the user's, on the server or earlier in the same push."))),
            since(7, col("kind", S, "`site` (现场照片), `sample` (样品照片) or `seal` (封样照片).")),
            since(7, col("sha256", S, "SHA-256 of the file, 64 hexadecimal characters (stored in lower case).")),
            since(7, col("byte_size", N, "File size in bytes (integer, 1 to the upload limit `max_photo_bytes`, default 26,214,400).")),
            since(7, col("taken_at", N, "Capture time on the device, Unix milliseconds (integer, 2000 to now).")),
            since(7, server(opt("processing_status", S, "Server: `awaiting_upload` → `uploaded` (bytes received and verified) → `processed` (EXIF read, renditions made) or `failed` (refused or not decodable: see `processing_error`)."))),
            since(7, server(opt("processing_error", S, "Server: why the upload or processing failed when `processing_status` is `failed` (e.g. not a JPEG/PNG/WebP, not decodable), so the sampler can take the photo again; `null` otherwise."))),
            since(7, server(opt("width", N, "Server: width in pixels after EXIF orientation, once processed."))),
            since(7, server(opt("height", N, "Server: height in pixels after EXIF orientation, once processed."))),
        ],
    },
];

/// The columns of `samples` that are not fields of the form: the keys the submission names
/// beside it.
pub const KEY_COLUMNS: &[&str] = &["establishment_id", "lab_id", "category_code", "task_id"];

/// Tables whose records a device creates but never changes or deletes (schema 6 and 7): a
/// pushed change of a stored record, or its deletion, is refused per record.
pub const CREATE_ONLY: &[&str] = &["samples", "custody_events", "sample_attachments"];

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

impl Table {
    /// The columns a client of `version` has.
    pub fn columns_at(&self, version: u32) -> impl Iterator<Item = &'static Column> + '_ {
        self.columns.iter().filter(move |c| c.since <= version)
    }
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The tables a client of `version` has.
pub fn tables_at(version: u32) -> impl Iterator<Item = &'static Table> {
    TABLES.iter().filter(move |t| t.since <= version)
}

/// A migration pull request (`migration` query parameter), as WatermelonDB sends it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationRequest {
    pub from: u32,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub columns: Vec<MigrationColumns>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MigrationColumns {
    pub table: String,
    pub columns: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions() {
        let v1: Vec<&str> = tables_at(1).map(|t| t.name).collect();
        assert!(!v1.contains(&"photos"));
        assert!(tables_at(2).any(|t| t.name == "photos"));
        let insp = table("inspections").unwrap();
        assert!(insp.columns_at(1).all(|c| c.name != "server_flags"));
        assert!(insp.columns_at(2).any(|c| c.name == "server_flags"));
        assert!(tables_at(4).all(|t| t.name != "reviews"));
        assert!(tables_at(5).any(|t| t.name == "reviews" && t.read_only));
        assert!(insp.columns_at(4).all(|c| c.name != "review_round"));
        assert!(insp
            .columns_at(5)
            .any(|c| c.name == "override_result" && c.server_only));
        assert!(table("tasks")
            .unwrap()
            .columns_at(5)
            .any(|c| c.name == "kind"));
        assert!(tables_at(5).all(|t| t.name != "sampling_tasks"));
        assert!(tables_at(6).any(|t| t.name == "sampling_tasks" && t.read_only));
        assert!(table("samples")
            .unwrap()
            .columns_at(6)
            .any(|c| c.name == "task_id" && c.optional && !c.server_only));
        // Schema 7: sample attachments, create-only, with the server's processing status.
        assert!(tables_at(6).all(|t| t.name != "sample_attachments"));
        let att = table("sample_attachments").unwrap();
        assert!(tables_at(7).any(|t| t.name == "sample_attachments" && !t.read_only));
        assert!(CREATE_ONLY.contains(&"sample_attachments"));
        assert!(att
            .columns_at(7)
            .any(|c| c.name == "processing_status" && c.server_only));
        assert!(att.columns.iter().all(|c| c.since == 7));
    }

    #[test]
    fn sample_columns_are_the_form_fields() {
        use std::collections::BTreeSet;
        let t = table("samples").unwrap();
        assert!(tables_at(5).all(|t| !CREATE_ONLY.contains(&t.name)));
        assert!(CREATE_ONLY
            .iter()
            .all(|n| table(n).is_some_and(|t| t.since >= 6)));
        let device: BTreeSet<&str> = t
            .columns
            .iter()
            .filter(|c| !c.server_only)
            .map(|c| c.name)
            .filter(|n| !KEY_COLUMNS.contains(n))
            .collect();
        let fields: BTreeSet<&str> = crate::sampling::form::FIELDS
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(device, fields);
        // Every form field is optional on the device (a draft may miss any), and its type is
        // the one the form's wire value takes.
        for c in t.columns.iter().filter(|c| fields.contains(c.name)) {
            assert!(c.optional, "{}", c.name);
            let want = match c.name {
                "sample_imported" => ColType::Boolean,
                "sampling_base" | "sample_quantity" | "backup_quantity" | "sampled_at" | "lng"
                | "lat" | "gps_accuracy_m" => ColType::Number,
                _ => ColType::String,
            };
            assert_eq!(c.ty, want, "{}", c.name);
        }
    }

    #[test]
    fn column_names_are_unique_and_not_reserved() {
        for t in TABLES {
            let mut names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "{}", t.name);
            assert!(names
                .iter()
                .all(|c| !["id", "_status", "_changed"].contains(c)));
        }
    }
}
