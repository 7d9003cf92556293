//! Use cases that combine the pure domain with the store, shared by the HTTP edge and the CLI.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::establishment::import::{self, ImportError, RowProblem};
use crate::establishment::{EstablishmentInput, Warning};
use crate::store::{self, establishments::Upsert, Db};

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

pub enum ImportFailure {
    /// The file could not be read as a table (format, header).
    File(ImportError),
    /// Rows have errors; nothing was written.
    Rows(ImportReport),
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for ImportFailure {
    fn from(e: sqlx::Error) -> Self {
        ImportFailure::Internal(e.into())
    }
}

struct Valid {
    row: u32,
    input: EstablishmentInput,
    warnings: Vec<Warning>,
}

/// Parses, validates and upserts a CSV/XLSX registry file in one transaction: any error and
/// nothing is written. `progress(done, total)` is called as rows are processed.
pub async fn import_establishments(
    db: &Db,
    bytes: Vec<u8>,
    dry_run: bool,
    actor: Option<&str>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ImportReport, ImportFailure> {
    // Parsing is CPU-bound (unzipping, XML): keep it off the async threads.
    let parsed = tokio::task::spawn_blocking(move || import::parse(&bytes, MAX_IMPORT_ROWS))
        .await
        .map_err(|e| ImportFailure::Internal(e.into()))?
        .map_err(ImportFailure::File)?;
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
    let detail = format!("{{\"created\":{created},\"updated\":{updated}}}");
    store::audit(
        tx.conn(),
        actor,
        "establishment.import",
        "establishments",
        "-",
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Runs the draw of a plan (or a redraw, with a reason) and records it with its tasks, all in
/// one transaction.
pub async fn draw_plan(
    db: &Db,
    plan_id: &str,
    seed: &str,
    reason: Option<&str>,
    actor: &str,
) -> Result<(crate::store::plans::DrawRow, crate::plan::draw::DrawRecord), crate::error::AppError> {
    use crate::error::AppError;
    use crate::plan::draw::{self, Candidate, Conflict, DrawInput, Inspector};
    use crate::store::plans;

    let seed = seed.to_string();
    if seed.trim().is_empty() || seed.chars().count() > 200 {
        return Err(AppError::unprocessable(
            "validation_failed",
            "seed must be 1 to 200 characters",
        ));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut tx = db.begin_write().await?;
    let plan = plans::get_plan(tx.conn(), plan_id)
        .await?
        .ok_or_else(|| AppError::not_found("no such plan"))?;
    if let Some(current) = &plan.current_draw_id {
        let Some(_) = reason else {
            return Err(AppError::conflict(
                "already_drawn",
                "this plan has been drawn; a redraw needs a reason and keeps the earlier draw on record",
            ));
        };
        let progressed = plans::progressed_tasks(tx.conn(), current).await?;
        if progressed > 0 {
            return Err(AppError::conflict(
                "draw_in_progress",
                format!("{progressed} task(s) of the current draw are in progress or submitted; it cannot be redrawn"),
            ));
        }
    }
    let plan_uuid = uuid::Uuid::parse_str(&plan.id).map_err(|e| AppError::Internal(e.into()))?;
    let filter: crate::plan::PoolFilter =
        serde_json::from_str(&plan.pool_filter).map_err(|e| AppError::Internal(e.into()))?;
    let quotas: draw::Quotas =
        serde_json::from_str(&plan.quotas).map_err(|e| AppError::Internal(e.into()))?;
    let inspector_ids: Vec<String> =
        serde_json::from_str(&plan.inspector_ids).map_err(|e| AppError::Internal(e.into()))?;
    let exclude_since_ms = plan
        .exclude_inspected_within_days
        .map(|d| store::now_ms() - d * 86_400_000);
    let t0 = std::time::Instant::now();
    let pool_rows = plans::candidate_pool(
        tx.conn(),
        &plans::PoolQuery {
            plan_id: &plan.id,
            categories: filter
                .categories
                .iter()
                .map(|c| c.code().to_string())
                .collect(),
            towns: filter.towns.clone(),
            risk_grades: filter
                .risk_grades
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            exclude_since_ms,
        },
    )
    .await?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        n = pool_rows.len(),
        "draw: pool loaded"
    );
    let inspectors = plans::active_inspectors(tx.conn(), &inspector_ids).await?;
    if (inspectors.len() as i64) < plan.team_size {
        return Err(AppError::unprocessable(
            "validation_failed",
            format!(
                "only {} of the plan's inspectors are active inspectors; a team needs {}",
                inspectors.len(),
                plan.team_size
            ),
        ));
    }
    let active_ids: Vec<String> = inspectors.iter().map(|(id, _, _)| id.clone()).collect();
    let conflicts = plans::conflicts_of(tx.conn(), &active_ids).await?;
    let parse = |s: &str| uuid::Uuid::parse_str(s).map_err(|e| AppError::Internal(e.into()));
    let mut candidates = Vec::with_capacity(pool_rows.len());
    for (id, grade) in &pool_rows {
        let grade = crate::establishment::RiskGrade::parse(grade)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("bad grade {grade}")))?;
        candidates.push(Candidate {
            id: parse(id)?,
            grade: crate::plan::grade_of(grade),
        });
    }
    let pool = draw::canonical_pool(candidates)
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?;
    let input = DrawInput {
        plan_id: plan_uuid,
        seed: seed.clone(),
        pool,
        quotas,
        inspectors: active_ids
            .iter()
            .map(|id| parse(id).map(|id| Inspector { id }))
            .collect::<Result<_, _>>()?,
        team_size: plan.team_size as u32,
        conflicts: conflicts
            .iter()
            .map(|(i, e)| {
                Ok(Conflict {
                    inspector_id: parse(i)?,
                    establishment_id: parse(e)?,
                })
            })
            .collect::<Result<_, AppError>>()?,
    };
    // The draw is CPU work (100k candidates: sorting, hashing): off the async threads.
    let (input, outcome) = tokio::task::spawn_blocking(move || {
        let out = draw::draw(&input);
        (input, out)
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let outcome = outcome.map_err(|e| AppError::unprocessable("draw_impossible", e.to_string()))?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        "draw: computed"
    );
    let drawn_ids: Vec<String> = outcome.drawn.iter().map(|u| u.to_string()).collect();
    let followups = plans::followups(tx.conn(), &drawn_ids).await?;
    let order: HashMap<uuid::Uuid, usize> = outcome
        .drawn
        .iter()
        .enumerate()
        .map(|(i, u)| (*u, i))
        .collect();
    let tasks: Vec<plans::NewTask> = outcome
        .teams
        .iter()
        .map(|t| {
            let eid = t.establishment_id.to_string();
            plans::NewTask {
                id: uuid::Uuid::new_v4().to_string(),
                must_check_items: followups.get(&eid).cloned().unwrap_or_else(|| "[]".into()),
                establishment_id: eid,
                draw_order: order.get(&t.establishment_id).copied().unwrap_or(0) as i64,
                members: t.inspector_ids.iter().map(|u| u.to_string()).collect(),
            }
        })
        .collect();
    let record = draw::DrawRecord { input, outcome };
    let record_json = serde_json::to_string(&record).map_err(|e| AppError::Internal(e.into()))?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        bytes = record_json.len(),
        "draw: record serialised"
    );
    let draw_id = uuid::Uuid::new_v4().to_string();
    let new = plans::NewDraw {
        id: &draw_id,
        plan_id: &plan.id,
        seed: &seed,
        algorithm: &record.outcome.algorithm,
        pool_hash: &record.outcome.pool_hash,
        pool_size: record.input.pool.len() as i64,
        drawn_count: record.outcome.drawn.len() as i64,
        record: &record_json,
        reason,
        drawn_by: actor,
    };
    if !plans::record_draw(
        tx.conn(),
        &new,
        plan.current_draw_id.as_deref(),
        &plan,
        &tasks,
    )
    .await?
    {
        return Err(AppError::conflict(
            "conflict",
            "the plan was drawn concurrently; reload it",
        ));
    }
    let detail =
        serde_json::json!({"seed": seed, "pool_hash": record.outcome.pool_hash, "reason": reason})
            .to_string();
    store::audit(
        tx.conn(),
        Some(actor),
        if plan.current_draw_id.is_some() {
            "plan.redraw"
        } else {
            "plan.draw"
        },
        "plan",
        &plan.id,
        Some(&detail),
    )
    .await?;
    let row = plans::get_draw(tx.conn(), &draw_id)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("draw vanished")))?;
    tx.commit().await?;
    tracing::debug!(
        elapsed_ms = t0.elapsed().as_millis() as u64,
        "draw: committed"
    );
    Ok((row, record))
}
mod error;
pub use crate::audit::Ctx;
pub use error::{Error, Result};

pub mod accounts;
pub mod audit;
pub mod bench;
pub mod checklists;
pub mod inspection_flags;
pub mod jobs;
pub mod photos;
pub mod sync;
pub mod uploads;
