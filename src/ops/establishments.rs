//! The registry's use cases: register and replace an establishment, bulk-import a file. Each
//! runs in one write transaction that also records its audit events.

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{access, Ctx, Error, Result};
use crate::audit::{Action, Event, RecordKind};
use crate::auth::Role;
use crate::establishment::import::{self, ImportError, RowProblem};
use crate::establishment::{Establishment, EstablishmentInput, RawEstablishment, Warning};
use crate::store::{self, establishments::Upsert, Db};

/// A unique violation on the registry's codes, as the caller's conflict.
fn duplicate(e: sqlx::Error) -> Error {
    if !store::is_unique_violation(&e) {
        return e.into();
    }
    let which = if e.to_string().contains("uscc") {
        "统一社会信用代码 (uscc)"
    } else {
        "许可证编号 (license_no)"
    };
    Error::conflict(
        "duplicate",
        format!("another establishment already has this {which}"),
    )
}

fn vanished(what: &str) -> Error {
    Error::Internal(anyhow::anyhow!(
        "{what} vanished inside its own transaction"
    ))
}

/// Registers an establishment (admin).
pub async fn create(db: &Db, ctx: &Ctx, raw: RawEstablishment) -> Result<Establishment> {
    access::require(ctx, &[Role::Admin])?;
    let (input, warnings) = raw.validate().map_err(Error::validation_failed)?;
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.begin_write().await?;
    let upsert = Upsert {
        id: &id,
        input: &input,
        warnings: &warnings,
    };
    store::establishments::upsert_many(tx.conn(), &[upsert], store::now_ms())
        .await
        .map_err(duplicate)?;
    let after = store::establishments::get(tx.conn(), &id)
        .await?
        .ok_or_else(|| vanished("the new establishment"))?;
    let event =
        Event::new(Action::EstablishmentCreated, RecordKind::Establishment, &id).created(&after);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(after)
}

/// Replaces an establishment's record (admin). The event lists the fields that changed, with
/// their values before and after.
pub async fn update(db: &Db, ctx: &Ctx, id: &str, raw: RawEstablishment) -> Result<Establishment> {
    access::require(ctx, &[Role::Admin])?;
    let (input, warnings) = raw.validate().map_err(Error::validation_failed)?;
    let mut tx = db.begin_write().await?;
    let before = store::establishments::get(tx.conn(), id)
        .await?
        .ok_or_else(|| Error::not_found("no such establishment"))?;
    store::establishments::update(tx.conn(), id, &input, &warnings, store::now_ms())
        .await
        .map_err(duplicate)?;
    let after = store::establishments::get(tx.conn(), id)
        .await?
        .ok_or_else(|| vanished("the establishment"))?;
    let event = Event::new(Action::EstablishmentUpdated, RecordKind::Establishment, id)
        .diff(&before, &after);
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    Ok(after)
}

/// Rows accepted in one import (memory stays bounded; 100k rows is a whole city).
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// At most this many problems are listed; `errors_total` says how many there were.
const MAX_LISTED: usize = 1000;

/// The outcome of a bulk import (or of a dry run).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    /// True when nothing was written (requested dry run).
    pub dry_run: bool,
    /// `csv` or `xlsx`, sniffed from the bytes.
    pub format: String,
    /// Data rows read (blank rows skipped).
    pub rows: u32,
    /// Establishments created (or that would be, on a dry run).
    pub created: u32,
    /// Establishments updated, matched by uscc, else by license_no.
    pub updated: u32,
    /// Non-fatal findings (e.g. a USCC failing its check character); the rows are imported.
    pub warnings: Vec<RowProblem>,
    /// Problems that refuse the whole import (at most 1,000 listed).
    pub errors: Vec<RowProblem>,
    /// Number of errors in total (may exceed the listed ones).
    pub errors_total: u32,
}

/// Why an import wrote nothing.
#[derive(Debug)]
pub enum ImportFailure {
    /// The file could not be read as a table (format, header).
    File(ImportError),
    /// Rows have errors; nothing was written.
    Rows(ImportReport),
    /// Not allowed, or the database failed.
    Failed(Error),
}

impl From<sqlx::Error> for ImportFailure {
    fn from(e: sqlx::Error) -> Self {
        ImportFailure::Failed(e.into())
    }
}

impl From<Error> for ImportFailure {
    fn from(e: Error) -> Self {
        ImportFailure::Failed(e)
    }
}

struct Valid {
    row: u32,
    input: EstablishmentInput,
    warnings: Vec<Warning>,
}

/// Parses, validates and upserts a CSV/XLSX registry file in one transaction (admin): any
/// error and nothing is written. `progress(done, total)` is called as rows are processed. The
/// event records the counts and the file's SHA-256, not every row: the file itself is the
/// evidence of what was imported.
pub async fn import(
    db: &Db,
    ctx: &Ctx,
    bytes: Vec<u8>,
    dry_run: bool,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> std::result::Result<ImportReport, ImportFailure> {
    access::require(ctx, &[Role::Admin])?;
    // Parsing is CPU-bound (unzipping, XML): keep it off the async threads.
    let (parsed, sha256) = tokio::task::spawn_blocking(move || {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        (import::parse(&bytes, MAX_IMPORT_ROWS), sha256)
    })
    .await
    .map_err(|e| ImportFailure::Failed(Error::Internal(e.into())))?;
    let parsed = parsed.map_err(ImportFailure::File)?;
    if parsed.rows.is_empty() {
        return Err(ImportFailure::File(ImportError::NoRows));
    }
    let total = parsed.rows.len() as u64;
    let mut errors: Vec<RowProblem> = Vec::new();
    let mut warnings: Vec<RowProblem> = Vec::new();
    let mut valid: Vec<Valid> = Vec::with_capacity(parsed.rows.len());
    for (i, row) in parsed.rows.iter().enumerate() {
        let mut row_errors = row.problems.clone();
        match row.raw.validate() {
            Ok((input, ws)) => {
                for w in &ws {
                    warnings.push(RowProblem {
                        row: row.row,
                        column: parsed.column_for(&w.field),
                        code: w.code.clone(),
                        message: w.message.clone(),
                    });
                }
                if row_errors.is_empty() {
                    valid.push(Valid {
                        row: row.row,
                        input,
                        warnings: ws,
                    });
                }
            }
            Err(es) => row_errors.extend(es.iter().map(|e| parsed.row_problem(row.row, e))),
        }
        errors.extend(row_errors);
        if i % 500 == 0 {
            progress(i as u64, total);
        }
    }

    // The same code twice in one file is ambiguous: which row wins?
    let mut seen_uscc: HashMap<String, u32> = HashMap::new();
    let mut seen_license: HashMap<String, u32> = HashMap::new();
    for v in &valid {
        if let Some(u) = &v.input.uscc {
            if let Some(first) = seen_uscc.insert(u.as_str().to_string(), v.row) {
                errors.push(RowProblem {
                    row: v.row,
                    column: parsed.column_for("uscc"),
                    code: "duplicate_in_file".into(),
                    message: format!(
                        "统一社会信用代码 {} also appears in row {first}",
                        u.as_str()
                    ),
                });
            }
        }
        if let Some(l) = &v.input.license_no {
            if let Some(first) = seen_license.insert(l.as_str().to_string(), v.row) {
                errors.push(RowProblem {
                    row: v.row,
                    column: parsed.column_for("license_no"),
                    code: "duplicate_in_file".into(),
                    message: format!("许可证编号 {} also appears in row {first}", l.as_str()),
                });
            }
        }
    }

    let mut tx = db.begin_write().await?;
    let usccs: Vec<String> = seen_uscc.into_keys().collect();
    let licenses: Vec<String> = seen_license.into_keys().collect();
    let owners = store::establishments::owners_of_codes(tx.conn(), &usccs, &licenses).await?;
    let mut by_uscc: HashMap<&str, &store::establishments::CodeOwner> = HashMap::new();
    let mut by_license: HashMap<&str, &store::establishments::CodeOwner> = HashMap::new();
    for o in &owners {
        if let Some(u) = &o.uscc {
            by_uscc.insert(u, o);
        }
        if let Some(l) = &o.license_no {
            by_license.insert(l, o);
        }
    }
    let mut ids: Vec<(String, bool)> = Vec::with_capacity(valid.len());
    let mut claimed: HashMap<String, u32> = HashMap::new();
    for v in &valid {
        let u = v.input.uscc.as_ref().map(|c| c.as_str());
        let l = v.input.license_no.as_ref().map(|c| c.as_str());
        let owner_u = u.and_then(|u| by_uscc.get(u));
        let owner_l = l.and_then(|l| by_license.get(l));
        let target = match (owner_u, owner_l) {
            (Some(a), Some(b)) if a.id != b.id => Err(format!(
                "许可证编号 {} belongs to another establishment than 统一社会信用代码 {}",
                l.unwrap_or_default(),
                u.unwrap_or_default()
            )),
            (Some(a), _) => Ok(Some(a.id.clone())),
            (None, Some(b)) => match (&b.uscc, u) {
                (Some(existing), Some(new)) if existing != new => Err(format!(
                    "许可证编号 {} is registered with 统一社会信用代码 {existing}, not {new}",
                    l.unwrap_or_default()
                )),
                _ => Ok(Some(b.id.clone())),
            },
            (None, None) => Ok(None),
        };
        match target {
            Ok(Some(id)) => {
                if let Some(first) = claimed.insert(id.clone(), v.row) {
                    errors.push(RowProblem {
                        row: v.row,
                        column: None,
                        code: "duplicate_in_file".into(),
                        message: format!("this row and row {first} update the same establishment"),
                    });
                }
                ids.push((id, false));
            }
            Ok(None) => ids.push((uuid::Uuid::new_v4().to_string(), true)),
            Err(message) => {
                errors.push(RowProblem {
                    row: v.row,
                    column: parsed.column_for("license_no"),
                    code: "code_conflict".into(),
                    message,
                });
                ids.push((String::new(), false));
            }
        }
    }
    let created = ids.iter().filter(|(_, new)| *new).count() as u32;
    let updated = ids
        .iter()
        .filter(|(id, new)| !*new && !id.is_empty())
        .count() as u32;
    errors.sort_by_key(|e| e.row);
    let errors_total = errors.len() as u32;
    errors.truncate(MAX_LISTED);
    warnings.truncate(MAX_LISTED);
    let report = ImportReport {
        dry_run,
        format: match parsed.format {
            import::Format::Csv => "csv".into(),
            import::Format::Xlsx => "xlsx".into(),
        },
        rows: total as u32,
        created,
        updated,
        warnings,
        errors,
        errors_total,
    };
    if errors_total > 0 {
        return Err(ImportFailure::Rows(ImportReport {
            created: 0,
            updated: 0,
            ..report
        }));
    }
    if dry_run {
        // Dropping the transaction rolls it back.
        progress(total, total);
        return Ok(report);
    }
    let upserts: Vec<Upsert> = valid
        .iter()
        .zip(&ids)
        .map(|(v, (id, _))| Upsert {
            id,
            input: &v.input,
            warnings: &v.warnings,
        })
        .collect();
    let now = store::now_ms();
    for (i, chunk) in upserts.chunks(1000).enumerate() {
        store::establishments::upsert_many(tx.conn(), chunk, now).await?;
        progress(((i + 1) * 1000).min(upserts.len()) as u64, total);
    }
    let event = Event::new(Action::EstablishmentsImported, RecordKind::Batch, &sha256)
        .set("file_sha256", &sha256)
        .set("format", &report.format)
        .set("rows", report.rows)
        .set("created", created)
        .set("updated", updated)
        .set("warnings", report.warnings.len());
    store::audit::append(tx.conn(), ctx, &[event]).await?;
    tx.commit().await?;
    db.refresh_statistics(&["establishments"]).await;
    Ok(report)
}
