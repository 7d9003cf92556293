//! Checklist templates and their versions (draft → published, published is immutable).
//!
//! Callers (`ops::checklists`) validate content ([`TemplateContent::validate`]) before handing
//! it here; this module only stores it. Immutability is enforced twice: every UPDATE is
//! conditioned on `status = 'draft'`, and the migration adds triggers that refuse any change to
//! a published row. Rows decode into the domain types of [`crate::checklist::version`].

use sqlx::{AnyConnection, FromRow};

use super::Db;
pub use crate::checklist::version::{Template, Version, VersionMeta, VersionStatus};
use crate::checklist::TemplateContent;

/// Fixed id of the default template (the 2016 national catering table), the same on every
/// installation so that it can be referred to in documentation and seed data.
pub const DEFAULT_TEMPLATE_ID: &str = "00000000-0000-4000-8000-000000002016";
/// Code of the default template.
pub const DEFAULT_TEMPLATE_CODE: &str = "catering-2016";
/// Name of the default template.
pub const DEFAULT_TEMPLATE_NAME: &str = "餐饮服务日常监督检查要点表（2016 国家版）";

#[derive(FromRow)]
struct TemplateRow {
    id: String,
    code: String,
    name: String,
    created_by: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Self {
        Template {
            id: r.id,
            code: r.code,
            name: r.name,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
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
            status: parse_status(&r.status)?,
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

fn parse_status(s: &str) -> Result<VersionStatus, sqlx::Error> {
    VersionStatus::parse(s).ok_or_else(|| {
        sqlx::Error::Decode(format!("unknown checklist version status {s:?}").into())
    })
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

/// Inserts a version; published versions get `published_at`/`published_by` at once. The
/// one-draft index and the primary key make a concurrent second draft a unique violation.
pub async fn insert_version(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
    status: VersionStatus,
    content: &TemplateContent,
    actor: Option<&str>,
    now: i64,
) -> Result<VersionMeta, sqlx::Error> {
    let stored = Stored::of(content)?;
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

/// Sets `updated_at`; false when there is no such template. Writing first also takes the
/// write lock (SQLite) or the template's row lock (PostgreSQL), so concurrent version changes
/// of one template queue up behind it.
pub async fn touch_template(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE checklist_templates SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// What [`insert_default`] did.
#[derive(Debug, Default)]
pub struct DefaultInstall {
    /// The template row was inserted now.
    pub template: Option<Template>,
    /// Version 1 was inserted now.
    pub version: Option<VersionMeta>,
    /// Another template holds the default code: nothing was installed.
    pub code_taken: bool,
}

/// Inserts the default template with `content` as published version 1, as far as missing.
///
/// Both inserts are `ON CONFLICT DO NOTHING`, so of several instances starting at once the
/// first installs it and the others (and every later start) change nothing. An existing
/// version 1 is never touched.
pub async fn insert_default(
    conn: &mut AnyConnection,
    content: &TemplateContent,
    now: i64,
) -> Result<DefaultInstall, sqlx::Error> {
    let stored = Stored::of(content)?;
    let template: Option<TemplateRow> = sqlx::query_as(&format!(
        "INSERT INTO checklist_templates (id, code, name, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, $4, $4) ON CONFLICT DO NOTHING RETURNING {TEMPLATE_COLUMNS}"
    ))
    .bind(DEFAULT_TEMPLATE_ID)
    .bind(DEFAULT_TEMPLATE_CODE)
    .bind(DEFAULT_TEMPLATE_NAME)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if template.is_none() && by_id_in(conn, DEFAULT_TEMPLATE_ID).await?.is_none() {
        return Ok(DefaultInstall {
            code_taken: true,
            ..DefaultInstall::default()
        });
    }
    let version: Option<MetaRow> = sqlx::query_as(&format!(
        "INSERT INTO checklist_versions (template_id, version, status, title, content, \
         rule_kind, item_count, key_count, created_by, created_at, updated_at, published_at, \
         published_by) \
         VALUES ($1, 1, 'published', $2, $3, $4, $5, $6, NULL, $7, $7, $7, NULL) \
         ON CONFLICT DO NOTHING RETURNING {META_COLUMNS}"
    ))
    .bind(DEFAULT_TEMPLATE_ID)
    .bind(&stored.title)
    .bind(&stored.json)
    .bind(stored.rule_kind)
    .bind(stored.item_count)
    .bind(stored.key_count)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(DefaultInstall {
        template: template.map(Into::into),
        version: version.map(TryInto::try_into).transpose()?,
        code_taken: false,
    })
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
    let mut conn = db.acquire().await?;
    by_id_in(&mut conn, id).await
}

pub async fn by_id_in(conn: &mut AnyConnection, id: &str) -> Result<Option<Template>, sqlx::Error> {
    let row: Option<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM checklist_templates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Into::into))
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

/// The contents of published checklist versions, parsed once per process. A published version
/// is immutable (triggers refuse any update or delete), so a copy never goes stale, on any
/// instance; drafts are never kept. A push reads its template on every request: this saves
/// the statement and the parse. Bounded: emptied when it outgrows [`MAX_CACHED_VERSIONS`]
/// (a bureau publishes a few versions a year).
#[derive(Default)]
pub struct PublishedContents(
    std::sync::Mutex<std::collections::HashMap<(String, i64), std::sync::Arc<TemplateContent>>>,
);

pub const MAX_CACHED_VERSIONS: usize = 256;

impl PublishedContents {
    /// The content of version `version` of `template_id`, on `conn` when it is not kept yet.
    pub async fn get(
        &self,
        conn: &mut AnyConnection,
        template_id: &str,
        version: i64,
    ) -> Result<Option<std::sync::Arc<TemplateContent>>, sqlx::Error> {
        let key = (template_id.to_string(), version);
        if let Some(c) = self.lock().get(&key) {
            return Ok(Some(c.clone()));
        }
        let Some(v) = version_in(conn, template_id, version).await? else {
            return Ok(None);
        };
        let content = std::sync::Arc::new(v.content);
        if v.meta.status == VersionStatus::Published {
            let mut kept = self.lock();
            if kept.len() >= MAX_CACHED_VERSIONS {
                kept.clear();
            }
            kept.insert(key, content.clone());
        }
        Ok(Some(content))
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<(String, i64), std::sync::Arc<TemplateContent>>,
    > {
        // A panic elsewhere while holding it leaves a consistent map (inserts are whole).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Inserts a template row. A taken code is a unique violation.
pub async fn insert_template(
    conn: &mut AnyConnection,
    id: &str,
    code: &str,
    name: &str,
    actor: Option<&str>,
    now: i64,
) -> Result<Template, sqlx::Error> {
    let row: TemplateRow = sqlx::query_as(&format!(
        "INSERT INTO checklist_templates (id, code, name, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {TEMPLATE_COLUMNS}"
    ))
    .bind(id)
    .bind(code)
    .bind(name)
    .bind(actor)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// The highest version number of a template and the number of its draft, if any.
pub async fn version_numbers(
    conn: &mut AnyConnection,
    template_id: &str,
) -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT MAX(version), MAX(CASE WHEN status = 'draft' THEN version END) \
         FROM checklist_versions WHERE template_id = $1",
    )
    .bind(template_id)
    .fetch_one(conn)
    .await
}

/// Replaces the content of a draft; `None` when there is no such draft (published versions
/// are left alone).
pub async fn update_draft(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
    content: &TemplateContent,
    now: i64,
) -> Result<Option<VersionMeta>, sqlx::Error> {
    let stored = Stored::of(content)?;
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
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// Publishes a draft, provided its stored content is still `expected_content` (the JSON the
/// caller read and validated); `None` when it is not such a draft (any more).
pub async fn publish(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
    expected_content: &str,
    actor: Option<&str>,
    now: i64,
) -> Result<Option<VersionMeta>, sqlx::Error> {
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
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}
