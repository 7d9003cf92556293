//! Campaign statistics and the 3·15 活动统计表 (issue 12 item 7), on both backends. The figures
//! are checked against a scene made through the real paths (tests/api/review_fixture.rs: a
//! plan drawn, inspections pushed by sync, decided by the review use case, rechecks pushed by
//! sync), and list issues composed and published through the list endpoints (create, add
//! entries, publish, revise).

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use foodcheck::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_error, Kind, TestApp};
use crate::review_fixture::{scene, Scene, Submission, GENERAL, KEY};

async fn spawn(kind: Kind) -> TestApp {
    TestApp::spawn_with(kind, |c| c.run_workers = false).await
}

both_backends!(@spawn spawn;
    figures_are_counted_from_the_records,
    bad_ranges_are_422,
    campaign_forms_are_filled_prefilled_summed_and_exported,
    the_form_layout_is_the_bureaus,
    bad_forms_change_nothing,
    stats_endpoints_check_roles,
);

const TOWNS: [&str; 2] = ["周良街道", "钰华街道"];
const PAST: &str = "2024-03-11";
const FUTURE: &str = "2099-01-05";

/// Today and its neighbours in the bureau's zone (UTC+8), `YYYY-MM-DD`.
fn around_today() -> (String, String) {
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let f = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    (
        f(today - chrono::Duration::days(1)),
        f(today + chrono::Duration::days(1)),
    )
}

/// GET returning the raw bytes.
async fn bytes(app: &TestApp, path: &str, token: &str) -> (StatusCode, Vec<u8>, String) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, res.bytes().await.unwrap().to_vec(), ct)
}

/// Every cell of a sheet as text ("" for empty), row by row.
fn sheet(xlsx: &[u8], name: &str) -> Vec<Vec<String>> {
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(xlsx.to_vec())).unwrap();
    let range = wb.worksheet_range(name).unwrap();
    let (h, w) = range.get_size();
    let start = range.start().unwrap_or((0, 0));
    assert_eq!(start, (0, 0), "{name} starts at A1");
    (0..h)
        .map(|r| {
            (0..w)
                .map(|c| match range.get((r, c)) {
                    Some(Data::String(s)) => s.clone(),
                    Some(Data::Float(f)) => format!("{f}"),
                    Some(Data::Int(i)) => format!("{i}"),
                    Some(Data::Empty) | None => String::new(),
                    Some(other) => format!("{other}"),
                })
                .collect()
        })
        .collect()
}

fn sheet_names(xlsx: &[u8]) -> Vec<String> {
    let wb: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(xlsx.to_vec())).unwrap();
    wb.sheet_names().to_vec()
}

/// A recheck of `task` (a recheck task at `est`) pushed by sync by the first of `members`,
/// every item passed except `failed`. It carries a location like the scene's pushes: on
/// PostgreSQL a push without one, then one with, failed intermittently with "incorrect binary
/// data format in bind parameter 6" (a sync-push issue outside this module, left for its owner).
async fn push_recheck(s: &Scene, task: &str, est: &str, members: &[String], failed: &[&str]) {
    let token = s.token(&members[0]).await;
    let (st, p) = s
        .app
        .get(
            "/api/v1/sync?last_pulled_at=null&schema_version=2&migration=null",
            &token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let cursor = p["timestamp"].as_i64().unwrap();
    let iid = Uuid::new_v4().to_string();
    let team: Vec<Value> = members
        .iter()
        .map(|n| json!({"user_id": s.user_id(n), "name": format!("Name of {n}"), "badge_no": format!("TJ-{n}")}))
        .collect();
    let rec = json!({"id": iid, "task_id": task, "establishment_id": est, "started_at": 1_710_000_000_000i64,
        "finished_at": 1_710_000_600_000i64, "lng": 117.2903, "lat": 39.7102, "gps_accuracy_m": 12.5, "crs": "gcj02",
        "team": serde_json::to_string(&team).unwrap(), "representative_name": "王店长",
        "representative_signed": true, "representative_refused": false, "declared_result": "compliant", "submitted": true});
    let answers: Vec<Value> = KEY
        .iter()
        .chain(GENERAL.iter())
        .map(|c| {
            let status = if failed.contains(c) { "fail" } else { "pass" };
            json!({"id": Uuid::new_v4(), "inspection_id": iid, "item_code": c, "status": status})
        })
        .collect();
    let (st, r) = s
        .app
        .post(
            &format!("/api/v1/sync?last_pulled_at={cursor}"),
            &token,
            json!({"changes": {"inspections": {"created": [rec]}, "answers": {"created": answers}}}),
        )
        .await;
    assert_eq!((st, &r), (StatusCode::OK, &json!({})), "recheck push: {r}");
}

/// A draft list issue over the last 30 days (the scene's inspections were submitted today),
/// created by the reviewer through `POST /api/v1/lists`; returns its id.
async fn create_issue(s: &Scene, issue_no: &str) -> String {
    let today = foodcheck::clock::BureauZone::SHANGHAI.date_at(chrono::Utc::now());
    let (st, i) = s
        .app
        .post(
            "/api/v1/lists",
            &s.reviewer,
            json!({"issue_no": issue_no, "title": "红黑榜", "theme": "主题", "district": "宝坻区",
                   "period_start": (today - chrono::Days::new(30)).to_string(), "period_end": today.to_string()}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{i}");
    i["id"].as_str().unwrap().to_string()
}

/// Adds entries `(list type, establishment id, basis inspection id)` to a draft issue through
/// `POST /api/v1/lists/{id}/entries` (the server checks each basis qualifies).
async fn add_entries(s: &Scene, issue: &str, entries: &[(&str, &str, &str)]) {
    for (list_type, est, inspection) in entries {
        let measures = (*list_type == "black").then_some("下达责令改正通知书");
        let (st, e) = s
            .app
            .post(
                &format!("/api/v1/lists/{issue}/entries"),
                &s.reviewer,
                json!({"establishment_id": est, "list_type": list_type, "inspection_id": inspection,
                       "reason": "理由", "measures": measures}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{list_type} {est}: {e}");
    }
}

async fn publish_issue(s: &Scene, issue: &str) {
    let (st, p) = s
        .app
        .post(
            &format!("/api/v1/lists/{issue}/publish"),
            &s.reviewer,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
}

/// The scene: 8 establishments in two towns, one plan over them; tasks
/// 0 approved 符合; 1 approved 基本符合 (a general item failed), its follow-up ordered far ahead
/// and rechecked now (on time); 2 approved 不符合 (two key items), ordered in 2024, rechecked now
/// (late); 3 不符合 overridden to 基本符合, ordered in 2024, its recheck failed (escalated);
/// 4 returned; 5 rejected; 6 waiting; 7 never submitted. List issues, all published today: a
/// first revision (black: 2) superseded by its correction (red: 0; black: 2, 3), and a draft
/// (black: 3).
struct World {
    s: Scene,
    /// Establishment ids by task index.
    est: Vec<String>,
}

async fn world(app: TestApp) -> World {
    let signs = ["甲", "乙", "丙", "丁", "戊", "己", "庚", "辛"];
    let s = scene(app, &signs, &TOWNS).await;
    s.add_calendar_year(2099).await;
    let est: Vec<String> = s.plans[0].tasks.iter().map(|t| t.1.clone()).collect();
    let members = |t: usize| s.plans[0].tasks[t].2.clone();

    let i0 = s.submit(0, 0, Submission::default()).await;
    s.review(&i0, json!({"decision": "approved"})).await;

    let basic = Submission {
        failed: &["1.1"],
        declared: "basically_compliant",
        ..Submission::default()
    };
    let i1 = s.submit(0, 1, basic).await;
    let f1 = s
        .approve_on(&i1, json!({"decision": "approved"}), FUTURE)
        .await
        .expect("a follow-up");
    let r1 = s.schedule_recheck_on(&f1, FUTURE).await;
    push_recheck(&s, &r1, &est[1], &members(1), &[]).await;

    // Two key items failed: 不符合.
    let key = || Submission {
        failed: &["3.1", "3.2"],
        declared: "non_compliant",
        ..Submission::default()
    };
    let i2 = s.submit(0, 2, key()).await;
    let f2 = s
        .approve_on(&i2, json!({"decision": "approved"}), PAST)
        .await
        .expect("a follow-up");
    let r2 = s.schedule_recheck_on(&f2, PAST).await;
    push_recheck(&s, &r2, &est[2], &members(2), &[]).await;

    let i3 = s.submit(0, 3, key()).await;
    let f3 = s
        .approve_on(
            &i3,
            json!({"decision": "approved", "override_result": "basically_compliant",
                   "override_reason": "现场已当场整改"}),
            PAST,
        )
        .await
        .expect("a follow-up");
    let r3 = s.schedule_recheck_on(&f3, PAST).await;
    push_recheck(&s, &r3, &est[3], &members(3), &["3.1"]).await;

    let i4 = s.submit(0, 4, Submission::default()).await;
    s.review(
        &i4,
        json!({"decision": "returned", "comment": "请补拍照片"}),
    )
    .await;
    let i5 = s.submit(0, 5, Submission::default()).await;
    s.review(
        &i5,
        json!({"decision": "rejected", "reason": "检查对象有误"}),
    )
    .await;
    s.submit(0, 6, Submission::default()).await;

    // The first revision lists task 2's shop black; its correction adds task 0's red and task
    // 3's black and supersedes it, so only the correction counts (1 red, 2 black), not the
    // first revision's black nor the draft's.
    let first = create_issue(&s, "2026年第1期").await;
    add_entries(&s, &first, &[("black", &est[2], &i2)]).await;
    publish_issue(&s, &first).await;
    let (st, r) = s
        .app
        .post(
            &format!("/api/v1/lists/{first}/revisions"),
            &s.reviewer,
            json!({"note": "补充红榜和黑榜"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let correction = r["id"].as_str().unwrap().to_string();
    add_entries(
        &s,
        &correction,
        &[("red", &est[0], &i0), ("black", &est[3], &i3)],
    )
    .await;
    publish_issue(&s, &correction).await;
    let draft = create_issue(&s, "2026年第2期").await;
    add_entries(&s, &draft, &[("black", &est[3], &i3)]).await;
    World { s, est }
}

impl World {
    async fn town_of(&self, est: &str) -> String {
        let (st, e) = self
            .s
            .app
            .get(&format!("/api/v1/establishments/{est}"), &self.s.admin)
            .await;
        assert_eq!(st, StatusCode::OK, "{e}");
        e["town"].as_str().unwrap().to_string()
    }
}

async fn figures_are_counted_from_the_records(app: TestApp) {
    let w = world(app).await;
    let (from, to) = around_today();
    let q = format!("from={from}&to={to}");
    let (st, v) =
        w.s.app
            .get(&format!("/api/v1/stats?{q}"), &w.s.reviewer)
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Towns of the covered establishments (tasks 0–4 and 6; 5 was rejected, 7 never done).
    let mut by_town = std::collections::BTreeMap::<String, i64>::new();
    for t in [0, 1, 2, 3, 4, 6] {
        *by_town.entry(w.town_of(&w.est[t]).await).or_default() += 1;
    }
    let by_town: Vec<Value> = by_town
        .iter()
        .map(|(k, n)| json!({"key": k, "count": n}))
        .collect();
    assert_eq!(
        v,
        json!({
            "from": from, "to": to,
            "inspections": {"submitted": 7,
                "by_review_state": {"submitted": 1, "approved": 4, "returned": 1, "rejected": 1},
                "approved_by_result": {"compliant": 1, "basically_compliant": 2, "non_compliant": 1}},
            "coverage": {"establishments": 6, "by_town": by_town, "by_risk_grade": [{"key": "C", "count": 6}]},
            "list_entries": {"red": 1, "black": 2},
            "rectifications": {"opened": 3, "closed": 2, "closed_on_time": 1, "escalated": 1},
            "rechecks": {"created": 3, "done": 3},
        })
    );

    // The range counts: nothing of this happened in 2024, list issues included (published today).
    let (st, old) =
        w.s.app
            .get("/api/v1/stats?from=2024-01-01&to=2024-12-31", &w.s.admin)
            .await;
    assert_eq!(st, StatusCode::OK, "{old}");
    assert_eq!(old["inspections"]["submitted"], 0);
    assert_eq!(old["coverage"]["establishments"], 0);
    assert_eq!(old["rectifications"]["opened"], 0);
    assert_eq!(old["rechecks"]["created"], 0);
    assert_eq!(old["list_entries"], json!({"red": 0, "black": 0}));

    // The XLSX holds the same figures, one sheet per table.
    let (st, x, ct) = bytes(&w.s.app, &format!("/api/v1/stats.xlsx?{q}"), &w.s.admin).await;
    assert_eq!(st, StatusCode::OK);
    assert!(ct.starts_with("application/vnd.openxmlformats"), "{ct}");
    assert_eq!(
        sheet_names(&x),
        [
            "检查结果",
            "按街道覆盖",
            "按风险等级覆盖",
            "红黑榜",
            "整改",
            "复查"
        ]
    );
    let results = sheet(&x, "检查结果");
    assert_eq!(results[0][..2], ["项目", "数量"]);
    assert_eq!(
        results[0][3..5],
        ["统计期间".to_string(), format!("{from} 至 {to}")]
    );
    let rows: Vec<(&str, &str)> = results[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("提交检查数", "7"),
            ("待审核", "1"),
            ("审核通过", "4"),
            ("退回", "1"),
            ("驳回", "1"),
            ("审核通过：符合", "1"),
            ("审核通过：基本符合", "2"),
            ("审核通过：不符合", "1"),
        ]
    );
    let towns = sheet(&x, "按街道覆盖");
    assert_eq!(towns[0], ["街道/乡镇", "户数"]);
    let mut want: Vec<Vec<String>> = by_town
        .iter()
        .map(|t| vec![t["key"].as_str().unwrap().into(), t["count"].to_string()])
        .collect();
    want.push(vec!["合计".into(), "6".into()]);
    assert_eq!(towns[1..], want[..]);
    assert_eq!(
        sheet(&x, "按风险等级覆盖"),
        [["风险等级", "户数"], ["C", "6"], ["合计", "6"]]
    );
    assert_eq!(
        sheet(&x, "红黑榜"),
        [["榜单", "条目数"], ["红榜", "1"], ["黑榜", "2"]]
    );
    assert_eq!(
        sheet(&x, "整改"),
        [
            ["项目", "数量"],
            ["责令整改", "3"],
            ["整改完成", "2"],
            ["按期整改完成", "1"],
            ["复查不合格移交", "1"]
        ]
    );
    assert_eq!(
        sheet(&x, "复查"),
        [["项目", "数量"], ["复查任务", "3"], ["已复查", "3"]]
    );
}

async fn bad_ranges_are_422(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    for (q, field_code) in [
        ("from=2024-03-01&to=2024-02-29", "reversed_range"),
        ("from=2024-3-1&to=2024-03-02", "invalid_date"),
        ("from=2024-02-30&to=2024-03-02", "invalid_date"),
        ("from=2024-01-01&to=2025-02-04", "range_too_long"),
    ] {
        for path in ["/api/v1/stats", "/api/v1/stats.xlsx"] {
            let (s, b) = app.get(&format!("{path}?{q}"), &admin).await;
            assert_error(s, &b, 422, "validation_failed");
            assert_eq!(b["error"]["details"][0]["code"], field_code, "{q}: {b}");
        }
    }
    // 400 days exactly is allowed; a missing parameter is a malformed request.
    let (s, b) = app
        .get("/api/v1/stats?from=2024-01-01&to=2025-02-03", &admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.get("/api/v1/stats?from=2024-01-01", &admin).await;
    assert_error(s, &b, 400, "bad_request");
}

/// A campaign over the scene's days and two units: prefill, fill, total, export.
async fn campaign_forms_are_filled_prefilled_summed_and_exported(app: TestApp) {
    let w = world(app).await;
    let (from, to) = around_today();
    let (st, c) =
        w.s.app
            .post(
                "/api/v1/campaigns",
                &w.s.admin,
                json!({"name": "3·15 国际消费者权益日", "period_start": from, "period_end": to}),
            )
            .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let mut units = Vec::new();
    for (name, kind) in [
        ("食品经营安全监督管理科", "section"),
        ("=周良市场监管所", "station"),
    ] {
        let (st, u) =
            w.s.app
                .post(
                    "/api/v1/reporting-units",
                    &w.s.admin,
                    json!({"name": name, "kind": kind}),
                )
                .await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        units.push(u["id"].as_str().unwrap().to_string());
    }
    let (_, listed) = w.s.app.get("/api/v1/reporting-units", &w.s.reviewer).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert_eq!(listed["items"][1]["kind_label"], "科室");

    // Prefill: 6 establishments inspected (not the rejected one), 2 black entries published.
    let (st, p) =
        w.s.app
            .get(
                &format!("/api/v1/campaigns/{cid}/reports/{}/prefill", units[0]),
                &w.s.reviewer,
            )
            .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(
        p["values"],
        json!({"business_participants": 6, "typical_cases": 2})
    );

    // Before any save: every row 0, no contact.
    let report = format!("/api/v1/campaigns/{cid}/reports/{}", units[0]);
    let (st, empty) = w.s.app.get(&report, &w.s.reviewer).await;
    assert_eq!(st, StatusCode::OK, "{empty}");
    assert_eq!(empty["values"].as_object().unwrap().len(), 15);
    assert!(empty["values"]
        .as_object()
        .unwrap()
        .values()
        .all(|v| v == 0));
    assert_eq!(empty["updated_at"], Value::Null);

    let (st, saved) = w
        .s
        .app
        .put(
            &report,
            &w.s.reviewer,
            json!({"contact_name": "张科长", "contact_phone": "022-29241234",
                   "values": {"theme_activities": 3, "theme_publicity_activities": 2, "consumer_participants": 1200,
                              "business_participants": 6, "typical_cases": 2, "readership": 35000}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{saved}");
    assert_eq!(saved["values"]["theme_activities"], 3);
    assert_eq!(saved["values"]["press_conferences"], 0);
    let (_, got) = w.s.app.get(&report, &w.s.admin).await;
    assert_eq!(got["contact_phone"], "022-29241234");
    assert_eq!(got["values"], saved["values"]);
    let report2 = format!("/api/v1/campaigns/{cid}/reports/{}", units[1]);
    let (st, b) = w
        .s
        .app
        .put(
            &report2,
            &w.s.admin,
            json!({"contact_name": "李所长", "values": {"theme_activities": 1, "consumer_participants": 300,
                   "public_service_ads": 4, "anniversary_events": 1}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // Replacing a form replaces every row.
    let (st, b) = w
        .s
        .app
        .put(
            &report2,
            &w.s.admin,
            json!({"contact_name": "李所长", "values": {"theme_activities": 2, "consumer_participants": 300,
                   "public_service_ads": 4, "anniversary_events": 1}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");

    let (st, total) =
        w.s.app
            .get(&format!("/api/v1/campaigns/{cid}/total"), &w.s.reviewer)
            .await;
    assert_eq!(st, StatusCode::OK, "{total}");
    assert_eq!(total["units_reported"], 2);
    let t = &total["values"];
    assert_eq!(t["theme_activities"], 5);
    assert_eq!(t["theme_publicity_activities"], 2);
    assert_eq!(t["consumer_participants"], 1500);
    assert_eq!(t["business_participants"], 6);
    assert_eq!(t["public_service_ads"], 4);
    assert_eq!(t["readership"], 35000);
    assert_eq!(t["press_conferences"], 0);

    // The unit's form as XLSX: header fields filled, figures in the 数量 column.
    let (st, x, _) = bytes(&w.s.app, &format!("{report}/form.xlsx"), &w.s.reviewer).await;
    assert_eq!(st, StatusCode::OK);
    let cells = sheet(&x, "3·15活动统计表");
    assert_eq!(cells[1][..2], ["填报单位", "食品经营安全监督管理科"]);
    assert_eq!(cells[2][..2], ["联系人", "张科长"]);
    assert_eq!(cells[3][..2], ["电话", "022-29241234"]);
    let col: Vec<&str> = cells[5..].iter().map(|r| r[3].as_str()).collect();
    assert_eq!(
        col,
        ["3", "2", "1200", "6", "0", "0", "0", "0", "0", "0", "35000", "0", "2", "0", "0"]
    );
    // A unit name typed as a formula is written as text.
    let (_, x2, _) = bytes(&w.s.app, &format!("{report2}/form.xlsx"), &w.s.admin).await;
    assert_eq!(sheet(&x2, "3·15活动统计表")[1][1], "'=周良市场监管所");
    // The total: 合计, no contact, the sums.
    let (st, xt, _) = bytes(
        &w.s.app,
        &format!("/api/v1/campaigns/{cid}/total/form.xlsx"),
        &w.s.admin,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let cells = sheet(&xt, "3·15活动统计表");
    assert_eq!(cells[1][..2], ["填报单位", "合计"]);
    assert_eq!(cells[2][1], "");
    let col: Vec<&str> = cells[5..].iter().map(|r| r[3].as_str()).collect();
    assert_eq!(
        col,
        ["5", "2", "1500", "6", "0", "0", "0", "0", "0", "0", "35000", "0", "2", "4", "1"]
    );

    // Every write is audited.
    for (kind, id, action) in [
        ("campaign", cid.clone(), "campaign_created"),
        ("reporting_unit", units[0].clone(), "reporting_unit_created"),
        (
            "campaign_report",
            format!("{cid}/{}", units[1]),
            "campaign_report_saved",
        ),
    ] {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE record_type = $1 AND record_id = $2 AND action = $3",
        )
        .bind(kind)
        .bind(&id)
        .bind(action)
        .fetch_one(w.s.app.db().pool())
        .await
        .unwrap();
        let want = if kind == "campaign_report" { 2 } else { 1 };
        assert_eq!(n, want, "{kind} {id} {action}");
    }
}

async fn the_form_layout_is_the_bureaus(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let (s, f) = app.get("/api/v1/campaign-form", &admin).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["title"], "3·15 活动统计表");
    assert_eq!(f["header_fields"], json!(["填报单位", "联系人", "电话"]));
    let want: [(&str, &str, &str); 15] = [
        ("1", "开展主题活动数量", "次"),
        ("", "其中：主题宣传活动", "次"),
        ("2", "消费者参与数", "人次"),
        ("3", "经营者或企业参与数", "户次"),
        ("4", "召开新闻发布会", "次"),
        ("5", "印发宣传资料", "册、份"),
        ("6", "开展消费教育引导活动", "次"),
        ("7", "报刊杂志发表专题文章或新闻报道总数", "篇"),
        ("8", "广播、电视播放专题节目或报道", "次"),
        ("9", "新媒体报道总数", "篇"),
        ("10", "阅读量", "次"),
        ("11", "宣传视频", "个"),
        ("12", "发布典型案例", "个"),
        ("13", "制作、播放各类公益广告", "条/天"),
        ("14", "纪念消费者权益保护法施行30周年纪念活动", "场"),
    ];
    let rows = f["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 15);
    for (r, (no, label, unit)) in rows.iter().zip(want) {
        let number = r["number"]
            .as_u64()
            .map(|n| n.to_string())
            .unwrap_or_default();
        assert_eq!(
            (
                number.as_str(),
                r["printed_label"].as_str().unwrap(),
                r["unit"].as_str().unwrap()
            ),
            (no, label, unit)
        );
    }
    assert_eq!(rows[1]["parent"], rows[0]["code"]);

    // The XLSX of an empty form, row by row.
    let (_, c) = app
        .post(
            "/api/v1/campaigns",
            &admin,
            json!({"name": "c", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
        )
        .await;
    let (_, u) = app
        .post(
            "/api/v1/reporting-units",
            &admin,
            json!({"name": "信息中心", "kind": "centre"}),
        )
        .await;
    let (s, x, _) = bytes(
        &app,
        &format!(
            "/api/v1/campaigns/{}/reports/{}/form.xlsx",
            c["id"].as_str().unwrap(),
            u["id"].as_str().unwrap()
        ),
        &admin,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let cells = sheet(&x, "3·15活动统计表");
    assert_eq!(cells.len(), 20);
    assert_eq!(cells[0][0], "3·15 活动统计表");
    assert_eq!(cells[1][..2], ["填报单位", "信息中心"]);
    assert_eq!(cells[2][..2], ["联系人", ""]);
    assert_eq!(cells[3][..2], ["电话", ""]);
    assert_eq!(cells[4], ["序号", "统计项目", "单位", "数量"]);
    for (row, (no, label, unit)) in cells[5..].iter().zip(want) {
        assert_eq!(row, &[no, label, unit, "0"]);
    }
}

async fn bad_forms_change_nothing(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let (_, c) = app
        .post(
            "/api/v1/campaigns",
            &admin,
            json!({"name": "c", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
        )
        .await;
    let cid = c["id"].as_str().unwrap().to_string();
    let (_, u) = app
        .post(
            "/api/v1/reporting-units",
            &admin,
            json!({"name": "所", "kind": "station"}),
        )
        .await;
    let report = format!(
        "/api/v1/campaigns/{cid}/reports/{}",
        u["id"].as_str().unwrap()
    );
    let (s, b) = app
        .put(
            &report,
            &admin,
            json!({"contact_name": "王", "values": {"theme_activities": 2}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let audit_count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_events")
            .fetch_one(app.db().pool())
            .await
            .unwrap()
    };
    let audit_before = audit_count().await;
    for (body, code) in [
        (json!({"values": {"no_such_row": 1}}), "unknown_row"),
        (json!({"values": {"readership": -1}}), "invalid_value"),
        (json!({"values": {"readership": 1.5}}), "invalid_value"),
        (json!({"values": {"readership": "12"}}), "invalid_value"),
        (
            json!({"values": {"readership": 10_000_000_000_000i64}}),
            "invalid_value",
        ),
        (
            json!({"values": {"theme_activities": 1, "theme_publicity_activities": 2}}),
            "sub_row_exceeds_parent",
        ),
        (
            json!({"contact_phone": "call me", "values": {}}),
            "invalid_phone",
        ),
    ] {
        let (s, b) = app.put(&report, &admin, body.clone()).await;
        assert_error(s, &b, 422, "validation_failed");
        assert_eq!(b["error"]["details"][0]["code"], code, "{body}: {b}");
    }
    let (s, b) = app
        .put(&report, &admin, json!({"values": {}, "extra": 1}))
        .await;
    assert_error(s, &b, 422, "invalid_body");
    // Unknown campaign or unit: 404.
    let ghost = Uuid::new_v4();
    let (s, b) = app
        .put(
            &format!(
                "/api/v1/campaigns/{ghost}/reports/{}",
                u["id"].as_str().unwrap()
            ),
            &admin,
            json!({"values": {}}),
        )
        .await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = app
        .get(&format!("/api/v1/campaigns/{cid}/reports/{ghost}"), &admin)
        .await;
    assert_error(s, &b, 404, "not_found");
    let (_, got) = app.get(&report, &admin).await;
    assert_eq!(got["contact_name"], "王");
    assert_eq!(got["values"]["theme_activities"], 2);
    assert_eq!(
        audit_count().await,
        audit_before,
        "a refused write audits nothing"
    );

    // Campaigns and units: bad input, duplicates.
    for body in [
        json!({"name": " ", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
        json!({"name": "d", "period_start": "2026-03-31", "period_end": "2026-03-01"}),
        json!({"name": "d", "period_start": "2026-03-01", "period_end": "2028-03-01"}),
        json!({"name": "d", "period_start": "2026-13-01", "period_end": "2026-03-01"}),
    ] {
        let (s, b) = app.post("/api/v1/campaigns", &admin, body).await;
        assert_error(s, &b, 422, "validation_failed");
    }
    let (s, b) = app
        .post(
            "/api/v1/campaigns",
            &admin,
            json!({"name": "c", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
        )
        .await;
    assert_error(s, &b, 409, "duplicate");
    let (s, b) = app
        .post(
            "/api/v1/reporting-units",
            &admin,
            json!({"name": "x", "kind": "bureau"}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_body");
    let (_, list) = app.get("/api/v1/campaigns", &admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(audit_count().await, audit_before);
}

async fn stats_endpoints_check_roles(app: TestApp) {
    let admin = app.token_for("admin", Role::Admin).await;
    let reviewer = app.token_for("rev", Role::Reviewer).await;
    let inspector = app.token_for("insp", Role::Inspector).await;
    let lab = app.token_for("lab", Role::Lab).await;
    let (_, c) = app
        .post(
            "/api/v1/campaigns",
            &admin,
            json!({"name": "c", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
        )
        .await;
    let (_, u) = app
        .post(
            "/api/v1/reporting-units",
            &admin,
            json!({"name": "科", "kind": "section"}),
        )
        .await;
    let report = format!(
        "/api/v1/campaigns/{}/reports/{}",
        c["id"].as_str().unwrap(),
        u["id"].as_str().unwrap()
    );
    for t in [&inspector, &lab] {
        for path in [
            "/api/v1/stats?from=2026-03-01&to=2026-03-31",
            "/api/v1/campaigns",
            "/api/v1/reporting-units",
            "/api/v1/campaign-form",
            report.as_str(),
        ] {
            let (s, b) = app.get(path, t).await;
            assert_error(s, &b, 403, "forbidden");
        }
        let (s, b) = app.put(&report, t, json!({"values": {}})).await;
        assert_error(s, &b, 403, "forbidden");
    }
    // Reviewers fill forms but do not create campaigns or units.
    let (s, b) = app
        .post(
            "/api/v1/campaigns",
            &reviewer,
            json!({"name": "r", "period_start": "2026-03-01", "period_end": "2026-03-31"}),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app
        .post(
            "/api/v1/reporting-units",
            &reviewer,
            json!({"name": "r", "kind": "section"}),
        )
        .await;
    assert_error(s, &b, 403, "forbidden");
    let (s, b) = app.put(&report, &reviewer, json!({"values": {}})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = app.call(Method::GET, "/api/v1/campaigns", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
