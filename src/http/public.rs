//! `/public/v1`: published data for anyone, without login (一公开). Never personal data:
//! no inspector names, badge numbers, phone numbers or contact persons, and no redraw reasons
//! (free text written for the file, which may name an informant).

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiPath;
use super::{rfc3339, AppState};
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::plan::draw::DrawRecord;
use crate::plan::PublicDrawRecord;
use crate::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public_draw))
        .routes(routes!(public_draw_record))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicDrawn {
    /// Position in draw order, from 1.
    pub order: usize,
    pub establishment_id: String,
    /// 牌匾名称.
    pub sign_name: String,
    /// 营业执照名称.
    pub licensed_name: String,
    /// 经营地址.
    pub address: String,
    pub town: String,
    pub risk_grade: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicDrawInfo {
    /// 1 for the first draw, 2 for the first redraw, ...
    pub seq: i64,
    pub seed: String,
    /// The versioned algorithm, e.g. `foodcheck-draw-v1` (specified in the source, module
    /// `plan::draw`).
    pub algorithm: String,
    /// SHA-256 of the canonical candidate pool.
    pub pool_hash: String,
    pub pool_size: i64,
    /// RFC 3339.
    pub drawn_at: String,
    /// Whether this draw replaced an earlier one. The redraw reason itself is internal
    /// (`GET /api/v1/plans/{id}`): it can name people and carry phone numbers.
    pub redraw: bool,
    /// Set on earlier draws that a redraw replaced.
    pub superseded_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicDraw {
    pub plan_id: String,
    /// `inspection` (随机查餐厅 round) or `sampling` (食品安全抽检 plan: the drawn premises are
    /// sampled; its title is in `round_title`).
    pub plan_kind: crate::plan::PlanKind,
    pub round_title: String,
    pub theme: String,
    pub period_start: String,
    pub period_end: String,
    /// The current draw.
    pub draw: PublicDrawInfo,
    /// Establishments drawn per risk grade.
    #[schema(value_type = Object)]
    pub allocation: std::collections::BTreeMap<crate::plan::draw::Grade, u32>,
    pub drawn: Vec<PublicDrawn>,
    /// Earlier draws replaced by redraws (kept on record).
    pub earlier_draws: Vec<PublicDrawInfo>,
    /// Where to fetch the record that re-runs the draw.
    pub record_url: String,
}

/// A plan of either kind with its current draw record.
pub(super) async fn load(
    state: &AppState,
    plan_id: &str,
) -> AppResult<(store::plans::PlanHead, DrawRecord)> {
    let mut conn = state.db.acquire().await?;
    let plan = store::plans::plan_head(&mut conn, plan_id)
        .await?
        .ok_or_else(|| AppError::not_found("no such plan"))?;
    let draw_id = plan
        .current_draw_id
        .clone()
        .ok_or_else(|| AppError::not_found("the plan has not been drawn"))?;
    let json = store::plans::draw_record(&mut conn, &draw_id)
        .await?
        .ok_or_else(|| AppError::not_found("no draw record"))?;
    let record = serde_json::from_str(&json).map_err(|e| AppError::Internal(e.into()))?;
    Ok((plan, record))
}

/// The published draw of a round (or of a sampling plan, `plan_kind`): seed, pool hash, algorithm, pool size and the drawn
/// establishments. No inspector data.
#[utoipa::path(get, path = "/public/v1/plans/{id}/draw", tag = "public",
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = PublicDraw), (status = 404, description = "No such plan, or not drawn yet", body = ErrorEnvelope)))]
async fn public_draw(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<PublicDraw>> {
    let (plan, record) = load(&state, &id).await?;
    let mut conn = state.db.acquire().await?;
    let draws = store::plans::draws_of(&mut conn, &plan.id).await?;
    let info = |d: &store::plans::DrawRow| PublicDrawInfo {
        seq: d.seq,
        seed: d.seed.clone(),
        algorithm: d.algorithm.clone(),
        pool_hash: d.pool_hash.clone(),
        pool_size: d.pool_size,
        drawn_at: rfc3339(d.drawn_at),
        redraw: d.seq > 1,
        superseded_at: d.superseded_at.map(rfc3339),
    };
    let current = draws
        .iter()
        .find(|d| Some(&d.id) == plan.current_draw_id.as_ref())
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("current draw missing")))?;
    let ids: Vec<String> = record.outcome.drawn.iter().map(|u| u.to_string()).collect();
    let rows: HashMap<String, crate::establishment::Establishment> =
        store::establishments::by_ids(&mut conn, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    let drawn = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            rows.get(id).map(|e| PublicDrawn {
                order: i + 1,
                establishment_id: e.id.clone(),
                sign_name: e.sign_name.clone(),
                licensed_name: e.licensed_name.clone(),
                address: e.address.clone(),
                town: e.town.clone(),
                risk_grade: e.risk_grade.as_str().to_string(),
            })
        })
        .collect();
    Ok(Json(PublicDraw {
        record_url: format!("/public/v1/plans/{}/draw/record", plan.id),
        plan_id: plan.id.clone(),
        plan_kind: plan.kind,
        round_title: plan.round_title,
        theme: plan.theme,
        period_start: plan.period_start,
        period_end: plan.period_end,
        draw: info(current),
        allocation: record.outcome.allocation.clone(),
        drawn,
        earlier_draws: draws
            .iter()
            .filter(|d| d.superseded_at.is_some())
            .map(info)
            .collect(),
    }))
}

/// The published record of the current draw: plan id, seed, algorithm, the canonical pool
/// (establishment ids with their grades), quotas and the drawn ids. Enough to re-run the
/// selection with `foodcheck draw verify --record FILE` or any implementation of the
/// documented algorithm. Team assignments are not published (conflicts of interest are
/// personal); the bureau verifies them with the internal record.
#[utoipa::path(get, path = "/public/v1/plans/{id}/draw/record", tag = "public",
    params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, body = PublicDrawRecord), (status = 404, body = ErrorEnvelope)))]
async fn public_draw_record(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<PublicDrawRecord>> {
    let (plan, record) = load(&state, &id).await?;
    Ok(Json(PublicDrawRecord::from_record(&record, plan.kind)))
}
