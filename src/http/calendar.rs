//! `/api/v1/calendar/years`: the working-day calendar (bundled 2024–2026 from the State
//! Council notices; admins add later years).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Admins, ApiJson, ApiPath, Authorized, Office};
use super::{rfc3339, AppState};
use crate::calendar::YearData;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::ops::{self, followup::YearOrigin};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_years))
        .routes(routes!(put_year))
}

/// Where a year's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalendarOrigin {
    /// The bundled State Council data.
    Bundled,
    /// Added or replaced by an admin (replaces a bundled year of the same number).
    Added,
}

/// One year of the calendar.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CalendarYearView {
    pub year: i32,
    pub origin: CalendarOrigin,
    /// The notice it was taken from, e.g. `国办发明电〔2024〕12号`.
    pub source: Option<String>,
    /// Holiday name → its days off (`YYYY-MM-DD`), the weekend days inside the block included.
    pub off: BTreeMap<String, Vec<String>>,
    /// Weekend days that are working days (调休上班), `YYYY-MM-DD`.
    pub workdays: Vec<String>,
    /// User id of the admin who added it (added years).
    pub added_by: Option<String>,
    /// RFC 3339 (added years).
    pub added_at: Option<String>,
}

impl From<ops::followup::CalendarYear> for CalendarYearView {
    fn from(y: ops::followup::CalendarYear) -> Self {
        CalendarYearView {
            year: y.year,
            origin: match y.origin {
                YearOrigin::Bundled => CalendarOrigin::Bundled,
                YearOrigin::Added => CalendarOrigin::Added,
            },
            source: y.source,
            off: y.data.off,
            workdays: y.data.workdays,
            added_by: y.added_by,
            added_at: y.added_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarYears {
    /// Every year the calendar holds, ascending. Deadlines in other years are refused with
    /// `calendar_year_missing`.
    pub years: Vec<CalendarYearView>,
}

/// The calendar's years, bundled and added (admin, reviewer).
#[utoipa::path(get, path = "/api/v1/calendar/years", tag = "calendar", security(("bearer" = [])),
    responses((status = 200, body = CalendarYears), (status = 403, body = ErrorEnvelope)))]
async fn list_years(
    State(state): State<AppState>,
    user: Authorized<Office>,
) -> AppResult<Json<CalendarYears>> {
    let years = ops::followup::calendar_years(&state.db, &user.ctx()).await?;
    Ok(Json(CalendarYears {
        years: years.into_iter().map(Into::into).collect(),
    }))
}

/// One year's holiday arrangement, in the shape of one year of the bundled
/// `cn-workday-calendar.json`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarYearBody {
    /// Holiday name → its days off (`YYYY-MM-DD`, all in the year), the weekend days inside
    /// the block included, e.g. `{"春节": ["2027-02-06", "2027-02-07"]}`.
    pub off: BTreeMap<String, Vec<String>>,
    /// Weekend days that are working days (调休上班), `YYYY-MM-DD`, all in the year, none also
    /// a day off.
    #[serde(default)]
    pub workdays: Vec<String>,
    /// The notice it was taken from (at most 500 characters).
    pub source: Option<String>,
}

/// Add or replace one year of the calendar (admin), from that year's State Council notice.
/// Follow-ups opened before keep their deadlines.
#[utoipa::path(put, path = "/api/v1/calendar/years/{year}", tag = "calendar", security(("bearer" = [])),
    params(("year" = i32, Path, description = "The year, e.g. 2027")),
    request_body = CalendarYearBody,
    responses((status = 200, body = CalendarYearView), (status = 403, body = ErrorEnvelope),
        (status = 422, description = "`invalid_calendar`: not a date, a date outside the year, a make-up working day that is not a weekend day, a date both off and a working day, a year outside 1949–9999; `validation_failed`: source too long", body = ErrorEnvelope)))]
async fn put_year(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    ApiPath(year): ApiPath<i32>,
    ApiJson(body): ApiJson<CalendarYearBody>,
) -> AppResult<Json<CalendarYearView>> {
    let data = YearData {
        off: body.off,
        workdays: body.workdays,
    };
    let ctx = user.ctx();
    ops::followup::set_calendar_year(&state.db, &ctx, year, &data, body.source.as_deref()).await?;
    let years = ops::followup::calendar_years(&state.db, &ctx).await?;
    years
        .into_iter()
        .find(|y| y.year == year)
        .map(|y| Json(y.into()))
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("calendar year {year} vanished")))
}
