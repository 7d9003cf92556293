//! Checklist templates and their versions: installing the built-in table, creating templates
//! and versions, editing drafts, publishing. Each in one write transaction with its audit
//! events; content is validated here, so every caller (API, CLI, seed data) gets the same rules.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::accounts::require_admin;
use super::{Error, Result};
use crate::audit::{Action, Ctx, Event, RecordKind};
use crate::checklist::version::{record_id, Template, Version, VersionMeta, VersionStatus};
use crate::checklist::{self, TemplateContent, TemplateProblem};
use crate::store::{self, checklists as db, Db};

/// Most sections in one template version.
pub const MAX_SECTIONS: usize = 100;
/// Most items in one template version.
pub const MAX_ITEMS: usize = 1000;
/// Longest template code and name, in characters.
const MAX_CODE_CHARS: usize = 64;
const MAX_NAME_CHARS: usize = 100;

fn problem(path: &str, code: &str, message: String) -> TemplateProblem {
    TemplateProblem {
        path: path.to_owned(),
        code: code.to_owned(),
        message,
    }
}

/// Size limits and [`TemplateContent::validate`], with paths prefixed by `content.` so they
/// point into the request body.
pub fn content_problems(content: &TemplateContent) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    if content.sections.len() > MAX_SECTIONS {
        problems.push(problem(
            "content.sections",
            "too_many_sections",
            format!(
                "{} sections; at most {MAX_SECTIONS} allowed",
                content.sections.len()
            ),
        ));
    }
    let items = content.items().count();
    if items > MAX_ITEMS {
        problems.push(problem(
            "content.sections",
            "too_many_items",
            format!("{items} items; at most {MAX_ITEMS} allowed"),
        ));
    }
    if let Err(found) = content.validate() {
        problems.extend(found.into_iter().map(|mut p| {
            p.path = format!("content.{}", p.path);
            p
        }));
    }
    problems
}

/// 422 `validation_failed` with the problems in `details`.
fn validation_failed(problems: Vec<TemplateProblem>) -> Error {
    let message = match problems.as_slice() {
        [one] => format!("the checklist is not valid: {one}"),
        many => format!("the checklist has {} problems; see details", many.len()),
    };
    Error::invalid_with("validation_failed", message, problems)
}

fn check_content(content: &TemplateContent) -> Result<()> {
    let problems = content_problems(content);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(validation_failed(problems))
    }
}

/// Normalises a template code, or says what is wrong with it.
fn parse_code(raw: &str) -> std::result::Result<String, TemplateProblem> {
    let code = raw.trim().to_ascii_lowercase();
    let ok = !code.is_empty()
        && code.chars().count() <= MAX_CODE_CHARS
        && code.starts_with(|c: char| c.is_ascii_alphanumeric())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(code)
    } else {
        Err(problem(
            "code",
            "invalid_template_code",
            format!(
                "code {raw:?} must be 1–{MAX_CODE_CHARS} ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
            ),
        ))
    }
}

/// The draft `version` of `template_id`, with the template row locked (touched) for the rest of
/// the caller's transaction: 404 for an unknown template or version, 409 `version_published`
/// when it is no longer a draft.
async fn lock_draft(
    conn: &mut sqlx::AnyConnection,
    template_id: &str,
    version: i64,
    now: i64,
) -> Result<Version> {
    if !db::touch_template(conn, template_id, now).await? {
        return Err(no_template());
    }
    let draft = db::version_in(conn, template_id, version)
        .await?
        .ok_or_else(no_version)?;
    if draft.meta.status == VersionStatus::Published {
        return Err(published_error(version));
    }
    Ok(draft)
}

fn no_template() -> Error {
    Error::not_found("no such checklist template")
}

fn no_version() -> Error {
    Error::not_found("no such checklist version")
}

fn published_error(version: i64) -> Error {
    Error::conflict(
        "version_published",
        format!(
            "version {version} is published and cannot be changed; create a new version instead"
        ),
    )
}

/// What audit events say about a version's content: its derived columns and a SHA-256 of the
/// stored JSON, not the whole document (the version itself is immutable once published).
#[derive(Debug, Serialize)]
struct ContentSummary<'a> {
    title: &'a str,
    rule_kind: &'a str,
    item_count: i64,
    key_count: i64,
    content_sha256: String,
}

fn sha256_hex(json: &str) -> String {
    hex::encode(Sha256::digest(json.as_bytes()))
}

/// The SHA-256 of content as the store writes it.
fn content_sha256(content: &TemplateContent) -> String {
    sha256_hex(&serde_json::to_string(content).unwrap_or_default())
}

fn summary<'a>(meta: &'a VersionMeta, sha256: String) -> ContentSummary<'a> {
    ContentSummary {
        title: &meta.title,
        rule_kind: &meta.rule_kind,
        item_count: meta.item_count,
        key_count: meta.key_count,
        content_sha256: sha256,
    }
}

/// A new version's event: its number, status and content summary.
fn version_created(meta: &VersionMeta, content: &TemplateContent) -> Event {
    Event::new(
        Action::ChecklistVersionCreated,
        RecordKind::ChecklistVersion,
        meta.record_id(),
    )
    .set("template_id", &meta.template_id)
    .set("version", meta.version)
    .set("status", meta.status)
    .diff(
        &serde_json::Value::Null,
        &summary(meta, content_sha256(content)),
    )
}

/// Installs the 2016 national catering table ([`checklist::catering_2016`]) as published
/// version 1 of template [`db::DEFAULT_TEMPLATE_CODE`] with id [`db::DEFAULT_TEMPLATE_ID`].
///
/// Idempotent and safe for several instances starting at once (see
/// [`db::insert_default`]); only what was inserted now is recorded. An existing version 1 is
/// never touched, even if the embedded table changes in a later release; such a change needs a
/// new version. If an admin already created another template with the code `catering-2016`,
/// nothing is installed (and a warning logged).
pub async fn ensure_default(db: &Db) -> Result<()> {
    let content = checklist::catering_2016();
    let mut tx = db.begin_write().await?;
    let done = db::insert_default(tx.conn(), &content, store::now_ms()).await?;
    if done.code_taken {
        tracing::warn!(
            code = db::DEFAULT_TEMPLATE_CODE,
            "a different template already uses the default template's code; not installing the 2016 catering table"
        );
        return Ok(());
    }
    let mut events = Vec::new();
    if let Some(t) = &done.template {
        events.push(template_created(t));
    }
    if let Some(meta) = &done.version {
        events.push(version_created(meta, &content));
    }
    if !events.is_empty() {
        store::audit::append(tx.conn(), &Ctx::system(), &events).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn template_created(t: &Template) -> Event {
    Event::new(
        Action::ChecklistTemplateCreated,
        RecordKind::ChecklistTemplate,
        &t.id,
    )
    .set("code", &t.code)
    .set("name", &t.name)
}

/// Creates a template with version 1 as a draft (admin). 422 `validation_failed` lists every
/// problem of the code, the name and the content; 409 `duplicate` when the code is taken.
pub async fn create_template(
    db: &Db,
    ctx: &Ctx,
    code: &str,
    name: &str,
    content: &TemplateContent,
) -> Result<(Template, VersionMeta)> {
    require_admin(ctx)?;
    let mut problems = Vec::new();
    let code = parse_code(code).map_err(|p| problems.push(p)).ok();
    let name = name.trim();
    if name.is_empty() {
        problems.push(problem(
            "name",
            "name_empty",
            "name must not be empty".into(),
        ));
    } else if name.chars().count() > MAX_NAME_CHARS {
        problems.push(problem(
            "name",
            "name_too_long",
            format!("name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    problems.extend(content_problems(content));
    let Some(code) = code.filter(|_| problems.is_empty()) else {
        return Err(validation_failed(problems));
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = store::now_ms();
    let actor = ctx.user_id();
    let mut tx = db.begin_write().await?;
    let template = match db::insert_template(tx.conn(), &id, &code, name, actor, now).await {
        Ok(t) => t,
        Err(e) if store::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "duplicate",
                format!("a checklist template with the code {code:?} already exists"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let meta =
        db::insert_version(tx.conn(), &id, 1, VersionStatus::Draft, content, actor, now).await?;
    let events = [template_created(&template), version_created(&meta, content)];
    store::audit::append(tx.conn(), ctx, &events).await?;
    tx.commit().await?;
    Ok((template, meta))
}

/// Starts a new version (admin): a draft numbered one above the highest version. 409
/// `draft_exists` while the template has a draft.
pub async fn create_version(
    db: &Db,
    ctx: &Ctx,
    template_id: &str,
    content: &TemplateContent,
) -> Result<(Template, VersionMeta)> {
    require_admin(ctx)?;
    let now = store::now_ms();
    let mut tx = db.begin_write().await?;
    // Write first: concurrent version creations for one template queue up here.
    if !db::touch_template(tx.conn(), template_id, now).await? {
        return Err(no_template());
    }
    check_content(content)?;
    let draft_exists = |draft: Option<i64>| {
        Error::conflict(
            "draft_exists",
            match draft {
                Some(v) => {
                    format!("version {v} is already a draft; edit it with PUT or publish it first")
                }
                None => "the template already has a draft; edit it with PUT or publish it first"
                    .to_owned(),
            },
        )
    };
    let (max, draft) = db::version_numbers(tx.conn(), template_id).await?;
    if draft.is_some() {
        return Err(draft_exists(draft));
    }
    let next = max.unwrap_or(0).saturating_add(1);
    let meta = match db::insert_version(
        tx.conn(),
        template_id,
        next,
        VersionStatus::Draft,
        content,
        ctx.user_id(),
        now,
    )
    .await
    {
        Ok(meta) => meta,
        // The one-draft index or the primary key: another draft got in first.
        Err(e) if store::is_unique_violation(&e) => return Err(draft_exists(None)),
        Err(e) => return Err(e.into()),
    };
    let template = db::by_id_in(tx.conn(), template_id)
        .await?
        .ok_or_else(no_template)?;
    store::audit::append(tx.conn(), ctx, &[version_created(&meta, content)]).await?;
    tx.commit().await?;
    Ok((template, meta))
}

/// Replaces the content of a draft (admin). 409 `version_published` for a published version,
/// reported before any content problem (no content could be accepted). Records
/// `ChecklistDraftUpdated` with the summary fields that changed.
pub async fn update_draft(
    db: &Db,
    ctx: &Ctx,
    template_id: &str,
    version: i64,
    content: &TemplateContent,
) -> Result<(Template, VersionMeta)> {
    require_admin(ctx)?;
    let now = store::now_ms();
    let mut tx = db.begin_write().await?;
    let before = lock_draft(tx.conn(), template_id, version, now).await?;
    check_content(content)?;
    let after = db::update_draft(tx.conn(), template_id, version, content, now)
        .await?
        // The row is locked by our touch of the template: only a trigger could refuse here.
        .ok_or_else(|| published_error(version))?;
    let template = db::by_id_in(tx.conn(), template_id)
        .await?
        .ok_or_else(no_template)?;
    let event = Event::new(
        Action::ChecklistDraftUpdated,
        RecordKind::ChecklistVersion,
        after.record_id(),
    )
    .diff(
        &summary(&before.meta, sha256_hex(&before.content_json)),
        &summary(&after, content_sha256(content)),
    );
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok((template, after))
}

/// Publishes a draft (admin). Its stored content is validated again (422 `validation_failed`);
/// once published it never changes. 409 `version_published` when already published, 409
/// `conflict` when the draft changed while being published. Records
/// `ChecklistVersionPublished` with `status: draft → published`.
pub async fn publish(
    db: &Db,
    ctx: &Ctx,
    template_id: &str,
    version: i64,
) -> Result<(Template, Version)> {
    require_admin(ctx)?;
    let now = store::now_ms();
    let mut tx = db.begin_write().await?;
    let draft = lock_draft(tx.conn(), template_id, version, now).await?;
    check_content(&draft.content)?;
    let Some(meta) = db::publish(
        tx.conn(),
        template_id,
        version,
        &draft.content_json,
        ctx.user_id(),
        now,
    )
    .await?
    else {
        return Err(Error::conflict(
            "conflict",
            "the draft was changed while being published; review it and publish again",
        ));
    };
    let template = db::by_id_in(tx.conn(), template_id)
        .await?
        .ok_or_else(no_template)?;
    let event = Event::new(
        Action::ChecklistVersionPublished,
        RecordKind::ChecklistVersion,
        record_id(template_id, version),
    )
    .change("status", draft.meta.status, meta.status)
    .change("published_at", draft.meta.published_at, meta.published_at)
    .set("content_sha256", sha256_hex(&draft.content_json));
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok((
        template,
        Version {
            meta,
            content: draft.content,
            content_json: draft.content_json,
        },
    ))
}
