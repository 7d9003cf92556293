//! Checklist templates and their versions (draft → published, published is immutable).
//!
//! Callers validate content ([`TemplateContent::validate`]) before handing it here; this module
//! only stores it. Immutability is enforced twice: every UPDATE is conditioned on
//! `status = 'draft'`, and the migration adds triggers that refuse any change to a published row.

use sqlx::{AnyConnection, FromRow};

use super::{audit, is_unique_violation, now_ms, Db};
use crate::checklist::{self, TemplateContent};

/// Fixed id of the default template (the 2016 national catering table), the same on every
/// installation so that it can be referred to in documentation and seed data.
pub const DEFAULT_TEMPLATE_ID: &str = "00000000-0000-4000-8000-000000002016";
/// Code of the default template.
pub const DEFAULT_TEMPLATE_CODE: &str = "catering-2016";
/// Name of the default template.
pub const DEFAULT_TEMPLATE_NAME: &str = "餐饮服务日常监督检查要点表（2016 国家版）";

/// Lifecycle of a template version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStatus {
    Draft,
    Published,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Published => "published",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "draft" => Ok(VersionStatus::Draft),
            "published" => Ok(VersionStatus::Published),
            other => Err(sqlx::Error::Decode(
                format!("unknown checklist version status {other:?}").into(),
            )),
        }
    }
}

/// A template: a stable code and name; the content lives in its versions.
#[derive(Debug, Clone, FromRow)]
pub struct Template {
    pub id: String,
    pub code: String,
    pub name: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A template with the numbers of its latest published version and of its draft, if any.
#[derive(Debug, Clone)]
pub struct TemplateSummary {
    pub template: Template,
    pub latest_published: Option<i64>,
    pub draft_version: Option<i64>,
}

#[derive(FromRow)]
struct SummaryRow {
    id: String,
    code: String,
    name: String,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    latest_published: Option<i64>,
    draft_version: Option<i64>,
}

/// One version without its content.
#[derive(Debug, Clone)]
pub struct VersionMeta {
    pub template_id: String,
    pub version: i64,
    pub status: VersionStatus,
    pub title: String,
    pub rule_kind: String,
    pub item_count: i64,
    pub key_count: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    pub published_by: Option<String>,
}

#[derive(FromRow)]
struct MetaRow {
    template_id: String,
    version: i64,
    status: String,
    title: String,
    rule_kind: String,
    item_count: i64,
    key_count: i64,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    published_at: Option<i64>,
    published_by: Option<String>,
}

impl TryFrom<MetaRow> for VersionMeta {
    type Error = sqlx::Error;
    fn try_from(r: MetaRow) -> Result<Self, Self::Error> {
        Ok(VersionMeta {
            template_id: r.template_id,
            version: r.version,
            status: VersionStatus::parse(&r.status)?,
            title: r.title,
            rule_kind: r.rule_kind,
            item_count: r.item_count,
            key_count: r.key_count,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
            published_by: r.published_by,
        })
    }
}

/// One version with its content.
#[derive(Debug, Clone)]
pub struct Version {
    pub meta: VersionMeta,
    pub content: TemplateContent,
    /// The content exactly as stored, to publish only what was validated.
    pub content_json: String,
}

#[derive(FromRow)]
struct VersionRow {
    #[sqlx(flatten)]
    meta: MetaRow,
    content: String,
}

impl TryFrom<VersionRow> for Version {
    type Error = sqlx::Error;
    fn try_from(r: VersionRow) -> Result<Self, Self::Error> {
        let content: TemplateContent =
            serde_json::from_str(&r.content).map_err(|e| sqlx::Error::Decode(e.into()))?;
        Ok(Version {
            meta: r.meta.try_into()?,
            content,
            content_json: r.content,
        })
    }
}

const TEMPLATE_COLUMNS: &str = "id, code, name, created_by, created_at, updated_at";
const META_COLUMNS: &str = "template_id, version, status, title, rule_kind, item_count, \
                            key_count, created_by, created_at, updated_at, published_at, \
                            published_by";

/// Serialized content and the columns derived from it.
struct Stored {
    json: String,
    title: String,
    rule_kind: &'static str,
    item_count: i64,
    key_count: i64,
}

impl Stored {
    fn of(content: &TemplateContent) -> Result<Stored, sqlx::Error> {
        Ok(Stored {
            json: serde_json::to_string(content).map_err(|e| sqlx::Error::Encode(e.into()))?,
            title: content.title.clone(),
            rule_kind: content.rule.version_label(),
            item_count: i64::try_from(content.items().count()).unwrap_or(i64::MAX),
            key_count: i64::try_from(content.key_count()).unwrap_or(i64::MAX),
        })
    }
}

async fn insert_version(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
    status: VersionStatus,
    stored: &Stored,
    actor: Option<&str>,
    now: i64,
) -> Result<VersionMeta, sqlx::Error> {
    let published = status == VersionStatus::Published;
    let row: MetaRow = sqlx::query_as(&format!(
        "INSERT INTO checklist_versions (template_id, version, status, title, content, \
         rule_kind, item_count, key_count, created_by, created_at, updated_at, published_at, \
         published_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) RETURNING {META_COLUMNS}"
    ))
    .bind(template_id)
    .bind(version)
    .bind(status.as_str())
    .bind(&stored.title)
    .bind(&stored.json)
    .bind(stored.rule_kind)
    .bind(stored.item_count)
    .bind(stored.key_count)
    .bind(actor)
    .bind(now)
    .bind(published.then_some(now))
    .bind(if published { actor } else { None })
    .fetch_one(conn)
    .await?;
    row.try_into()
}

async fn touch_template(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE checklist_templates SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Installs the 2016 national catering table ([`checklist::catering_2016`]) as published
/// version 1 of template [`DEFAULT_TEMPLATE_CODE`] with id [`DEFAULT_TEMPLATE_ID`].
///
/// Idempotent and safe for several instances starting at once: both inserts are
/// `ON CONFLICT DO NOTHING`, so the first instance installs it and the others (and every later
/// start) change nothing. An existing version 1 is never touched, even if the embedded table
/// changes in a later release; such a change needs a new version. If an admin already created
/// another template with the code `catering-2016`, nothing is installed (and a warning logged).
pub async fn ensure_default(db: &Db) -> Result<(), sqlx::Error> {
    let content = checklist::catering_2016();
    let stored = Stored::of(&content)?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO checklist_templates (id, code, name, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, $4, $4) ON CONFLICT DO NOTHING",
    )
    .bind(DEFAULT_TEMPLATE_ID)
    .bind(DEFAULT_TEMPLATE_CODE)
    .bind(DEFAULT_TEMPLATE_NAME)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let ours: Option<(String,)> =
        sqlx::query_as("SELECT id FROM checklist_templates WHERE id = $1")
            .bind(DEFAULT_TEMPLATE_ID)
            .fetch_optional(tx.conn())
            .await?;
    if ours.is_none() {
        tracing::warn!(
            code = DEFAULT_TEMPLATE_CODE,
            "a different template already uses the default template's code; not installing the 2016 catering table"
        );
        return Ok(());
    }
    let version_inserted = sqlx::query(
        "INSERT INTO checklist_versions (template_id, version, status, title, content, \
         rule_kind, item_count, key_count, created_by, created_at, updated_at, published_at, \
         published_by) \
         VALUES ($1, 1, 'published', $2, $3, $4, $5, $6, NULL, $7, $7, $7, NULL) \
         ON CONFLICT DO NOTHING",
    )
    .bind(DEFAULT_TEMPLATE_ID)
    .bind(&stored.title)
    .bind(&stored.json)
    .bind(stored.rule_kind)
    .bind(stored.item_count)
    .bind(stored.key_count)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted > 0 || version_inserted > 0 {
        audit(
            tx.conn(),
            None,
            "checklist.install_default",
            "checklist_template",
            DEFAULT_TEMPLATE_ID,
            Some(DEFAULT_TEMPLATE_CODE),
        )
        .await?;
    }
    tx.commit().await
}

/// Every template with its latest published version and its draft, ordered by code.
pub async fn list(db: &Db) -> Result<Vec<TemplateSummary>, sqlx::Error> {
    let rows: Vec<SummaryRow> = sqlx::query_as(
        "SELECT t.id, t.code, t.name, t.created_by, t.created_at, t.updated_at, \
         (SELECT MAX(v.version) FROM checklist_versions v \
          WHERE v.template_id = t.id AND v.status = 'published') AS latest_published, \
         (SELECT MAX(v.version) FROM checklist_versions v \
          WHERE v.template_id = t.id AND v.status = 'draft') AS draft_version \
         FROM checklist_templates t ORDER BY t.code",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TemplateSummary {
            template: Template {
                id: r.id,
                code: r.code,
                name: r.name,
                created_by: r.created_by,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
            latest_published: r.latest_published,
            draft_version: r.draft_version,
        })
        .collect())
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<Template>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM checklist_templates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await
}

/// All versions of a template, oldest first, without content.
pub async fn versions(db: &Db, template_id: &str) -> Result<Vec<VersionMeta>, sqlx::Error> {
    let rows: Vec<MetaRow> = sqlx::query_as(&format!(
        "SELECT {META_COLUMNS} FROM checklist_versions WHERE template_id = $1 ORDER BY version"
    ))
    .bind(template_id)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// One version with its content.
pub async fn version(
    db: &Db,
    template_id: &str,
    version: i64,
) -> Result<Option<Version>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    version_in(&mut conn, template_id, version).await
}

/// [`version`] on a given connection (inside a transaction that must not wait for a second
/// pooled connection).
pub async fn version_in(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
) -> Result<Option<Version>, sqlx::Error> {
    let row: Option<VersionRow> = sqlx::query_as(&format!(
        "SELECT {META_COLUMNS}, content FROM checklist_versions \
         WHERE template_id = $1 AND version = $2"
    ))
    .bind(template_id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

async fn status_of(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
) -> Result<Option<VersionStatus>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT status FROM checklist_versions WHERE template_id = $1 AND version = $2",
    )
    .bind(template_id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    row.map(|(s,)| VersionStatus::parse(&s)).transpose()
}

pub struct NewTemplate<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub content: &'a TemplateContent,
    pub actor: Option<&'a str>,
}

/// Creates a template with version 1 as a draft. A taken code is a unique violation
/// ([`is_unique_violation`]).
pub async fn create(db: &Db, new: NewTemplate<'_>) -> Result<(Template, VersionMeta), sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let stored = Stored::of(new.content)?;
    let mut tx = db.begin_write().await?;
    let template: Template = sqlx::query_as(&format!(
        "INSERT INTO checklist_templates (id, code, name, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {TEMPLATE_COLUMNS}"
    ))
    .bind(&id)
    .bind(new.code)
    .bind(new.name)
    .bind(new.actor)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    let meta = insert_version(
        tx.conn(),
        &id,
        1,
        VersionStatus::Draft,
        &stored,
        new.actor,
        now,
    )
    .await?;
    audit(
        tx.conn(),
        new.actor,
        "checklist.create",
        "checklist_template",
        &id,
        Some(new.code),
    )
    .await?;
    tx.commit().await?;
    Ok((template, meta))
}

pub enum NewVersion {
    Created(VersionMeta),
    NoTemplate,
    /// The template already has a draft (its number, when known).
    DraftExists(Option<i64>),
}

/// Adds a draft version numbered one above the highest existing version.
pub async fn create_version(
    db: &Db,
    template_id: &str,
    content: &TemplateContent,
    actor: Option<&str>,
) -> Result<NewVersion, sqlx::Error> {
    let now = now_ms();
    let stored = Stored::of(content)?;
    let mut tx = db.begin_write().await?;
    // Write first (SQLite takes the write lock at once; PostgreSQL locks the template row, so
    // concurrent version creations for one template queue up here).
    let touched = sqlx::query("UPDATE checklist_templates SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(template_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if touched == 0 {
        return Ok(NewVersion::NoTemplate);
    }
    let (max, draft): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MAX(version), MAX(CASE WHEN status = 'draft' THEN version END) \
         FROM checklist_versions WHERE template_id = $1",
    )
    .bind(template_id)
    .fetch_one(tx.conn())
    .await?;
    if draft.is_some() {
        return Ok(NewVersion::DraftExists(draft));
    }
    let next = max.unwrap_or(0).saturating_add(1);
    let meta = match insert_version(
        tx.conn(),
        template_id,
        next,
        VersionStatus::Draft,
        &stored,
        actor,
        now,
    )
    .await
    {
        Ok(meta) => meta,
        // The one-draft index or the primary key: another draft got in first.
        Err(e) if is_unique_violation(&e) => return Ok(NewVersion::DraftExists(None)),
        Err(e) => return Err(e),
    };
    audit(
        tx.conn(),
        actor,
        "checklist.version_create",
        "checklist_template",
        template_id,
        Some(&format!("version {next}")),
    )
    .await?;
    tx.commit().await?;
    Ok(NewVersion::Created(meta))
}

/// Outcome of a change to one version.
pub enum Change {
    Done(VersionMeta),
    NotFound,
    /// The version is published, hence immutable.
    Published,
    /// Publishing only: the draft's content changed since it was read and validated.
    ContentChanged,
}

/// Replaces the content of a draft. Published versions are left alone ([`Change::Published`]).
pub async fn update_draft(
    db: &Db,
    template_id: &str,
    version: i64,
    content: &TemplateContent,
    actor: Option<&str>,
) -> Result<Change, sqlx::Error> {
    let now = now_ms();
    let stored = Stored::of(content)?;
    let mut tx = db.begin_write().await?;
    let row: Option<MetaRow> = sqlx::query_as(&format!(
        "UPDATE checklist_versions SET content = $1, title = $2, rule_kind = $3, \
         item_count = $4, key_count = $5, updated_at = $6 \
         WHERE template_id = $7 AND version = $8 AND status = 'draft' RETURNING {META_COLUMNS}"
    ))
    .bind(&stored.json)
    .bind(&stored.title)
    .bind(stored.rule_kind)
    .bind(stored.item_count)
    .bind(stored.key_count)
    .bind(now)
    .bind(template_id)
    .bind(version)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(match status_of(tx.conn(), template_id, version).await? {
            None => Change::NotFound,
            Some(_) => Change::Published,
        });
    };
    touch_template(tx.conn(), template_id, now).await?;
    audit(
        tx.conn(),
        actor,
        "checklist.version_update",
        "checklist_template",
        template_id,
        Some(&format!("version {version}")),
    )
    .await?;
    tx.commit().await?;
    Ok(Change::Done(row.try_into()?))
}

/// Publishes a draft, provided its stored content is still `expected_content` (the JSON the
/// caller read and validated).
pub async fn publish(
    db: &Db,
    template_id: &str,
    version: i64,
    expected_content: &str,
    actor: Option<&str>,
) -> Result<Change, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let row: Option<MetaRow> = sqlx::query_as(&format!(
        "UPDATE checklist_versions SET status = 'published', published_at = $1, \
         published_by = $2, updated_at = $1 \
         WHERE template_id = $3 AND version = $4 AND status = 'draft' AND content = $5 \
         RETURNING {META_COLUMNS}"
    ))
    .bind(now)
    .bind(actor)
    .bind(template_id)
    .bind(version)
    .bind(expected_content)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(match status_of(tx.conn(), template_id, version).await? {
            None => Change::NotFound,
            Some(VersionStatus::Published) => Change::Published,
            Some(VersionStatus::Draft) => Change::ContentChanged,
        });
    };
    touch_template(tx.conn(), template_id, now).await?;
    audit(
        tx.conn(),
        actor,
        "checklist.publish",
        "checklist_template",
        template_id,
        Some(&format!("version {version}")),
    )
    .await?;
    tx.commit().await?;
    Ok(Change::Done(row.try_into()?))
}
