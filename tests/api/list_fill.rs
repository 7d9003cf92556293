//! Published list issues filled by SQL through the migrated schema, for tests that need more
//! entries than the review scenario makes (exports of hundreds of rows, filter grids). The
//! publication itself goes through `store::lists::publish`, which stores the counts.

use sqlx::AnyConnection;

/// One entry to insert: its issue, list and place in it, and where the shop is.
pub struct Fill<'a> {
    pub issue: &'a str,
    pub black: bool,
    pub position: i64,
    pub sign_name: &'a str,
    pub town: &'a str,
    pub category: &'a str,
}

/// A draft issue (published later by `store::lists::publish`).
pub async fn issue(
    conn: &mut AnyConnection,
    id: &str,
    no: &str,
    period: (&str, &str),
    by: &str,
    now: i64,
) {
    let criteria = serde_json::to_string(&foodcheck::lists::Criteria::default()).unwrap();
    sqlx::query(
        "INSERT INTO list_issues (id, issue_no, revision, title, theme, district, period_start, \
         period_end, criteria, state, created_by, created_at, updated_at) \
         VALUES ($1, $2, 1, '大名单', '压力', '宝坻区', $3, $4, $5, 'draft', $6, $7, $8)",
    )
    .bind(id)
    .bind(no)
    .bind(period.0)
    .bind(period.1)
    .bind(&criteria)
    .bind(by)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .unwrap();
}

/// An establishment and its entry; returns the entry's id.
pub async fn entry(conn: &mut AnyConnection, f: &Fill<'_>, by: &str, now: i64) -> String {
    let est = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO establishments (id, search_text, sign_name, licensed_name, license_no, \
         category, address, town, risk_grade, status, crs, raw_lng, raw_lat, lng, lat, created_at, updated_at) \
         VALUES ($1, $2, $3, '天津市宝坻区老王餐饮管理有限公司', NULL, 'small_restaurant', \
         '天津市宝坻区钰华街道南关大街1-3号底商', $4, 'B', 'open', 'wgs84', 117.3, 39.7, 117.3, 39.7, $5, $6)",
    )
    .bind(&est)
    .bind(f.sign_name)
    .bind(f.sign_name)
    .bind(f.town)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await
    .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO list_entries (id, issue_id, list_type, position, establishment_id, inspected_on, \
         result, sign_name, licensed_name, address, town, category, lng, lat, reason, measures, \
         created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, '2026-10-12', $6, $7, '天津市宝坻区老王餐饮管理有限公司', \
         '天津市宝坻区钰华街道南关大街1-3号底商', $8, $9, 117.3, 39.7, \
         '后厨整洁，台账齐全，从业人员持健康证明上岗', $10, $11, $12, $13)",
    )
    .bind(&id)
    .bind(f.issue)
    .bind(if f.black { "black" } else { "red" })
    .bind(f.position)
    .bind(&est)
    .bind(if f.black { "non_compliant" } else { "compliant" })
    .bind(f.sign_name)
    .bind(f.town)
    .bind(f.category)
    .bind(f.black.then_some("责令改正通知书"))
    .bind(by)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .unwrap();
    id
}
