//! `/public/v1/entries` and `/public/v1/lists/{id}/entries` against an independent reckoning:
//! for every combination of list type, town, category and period, across issues and within
//! each, the totals (stored counts or per-issue counts) and every page, in order, are exactly
//! the entries the filter names. Issues: a revised one (superseded: only by its id), its
//! revision, a later one, and a draft (never).

use std::cmp::Reverse;

use serde_json::Value;

use crate::common::TestApp;
use crate::list_fill as fill;

both_backends!(entry_filters_agree_with_the_entries);

const TOWNS: [&str; 3] = ["钰华街道", "海滨街道", "周良街道"];
const CATEGORIES: [&str; 2] = ["餐饮服务/小型餐馆", "餐饮服务/小吃店"];
const PAGE: usize = 7;

#[derive(Clone)]
struct Listed {
    id: String,
    issue: String,
    published_at: i64,
    black: bool,
    position: i64,
    town: &'static str,
    category: &'static str,
    period: (&'static str, &'static str),
}

fn query_of(
    list_type: Option<&str>,
    town: Option<&str>,
    category: Option<&str>,
    period: Option<(&str, &str)>,
) -> String {
    let mut q = vec![format!("page_size={PAGE}")];
    if let Some(t) = list_type {
        q.push(format!("list_type={t}"));
    }
    if let Some(t) = town {
        q.push(format!("town={}", urlencoding(t)));
    }
    if let Some(c) = category {
        q.push(format!("category={}", urlencoding(c)));
    }
    if let Some((from, to)) = period {
        q.push(format!("from={from}&to={to}"));
    }
    q.join("&")
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn entry_filters_agree_with_the_entries(app: TestApp) {
    let by = app
        .user("filter-reviewer", foodcheck::auth::Role::Reviewer)
        .await;
    let now = chrono::Utc::now().timestamp_millis();
    let issues = [
        ("第1期", ("2026-09-01", "2026-09-30"), Some(now)),
        ("第1期", ("2026-09-01", "2026-09-30"), Some(now + 1000)),
        ("第2期", ("2026-11-01", "2026-11-30"), Some(now + 2000)),
        ("第3期", ("2026-12-01", "2026-12-31"), None),
    ];
    let mut listed = Vec::new();
    let mut ids = Vec::new();
    let mut tx = app.db().begin_write().await.unwrap();
    for (k, (no, period, published_at)) in issues.iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        // The revision is inserted under a stand-in number, then renumbered below.
        let no_now = if k == 1 {
            format!("{no}-r")
        } else {
            no.to_string()
        };
        fill::issue(tx.conn(), &id, &no_now, *period, &by, now).await;
        if k == 1 {
            // The revision of the first issue: same 期号, revision 2.
            sqlx::query(
                "UPDATE list_issues SET issue_no = $1, revision = 2, revises_id = $2 WHERE id = $3",
            )
            .bind(no)
            .bind(&ids[0])
            .bind(&id)
            .execute(tx.conn())
            .await
            .unwrap();
        }
        for i in 0..25usize {
            let town = TOWNS[i % 3];
            let category = CATEGORIES[(i / 3) % 2];
            let black = i % 4 == 0;
            // Repeated positions: the id breaks the tie.
            let position = (i / 3) as i64;
            let name = format!("第{k}期第{i}号店");
            let f = fill::Fill {
                issue: &id,
                black,
                position,
                sign_name: &name,
                town,
                category,
            };
            let entry = fill::entry(tx.conn(), &f, &by, now).await;
            if let Some(at) = published_at {
                listed.push(Listed {
                    id: entry,
                    issue: id.clone(),
                    published_at: *at,
                    black,
                    position,
                    town,
                    category,
                    period: *period,
                });
            }
        }
        if let Some(at) = published_at {
            assert!(
                foodcheck::store::lists::publish(tx.conn(), &id, &by, None, *at)
                    .await
                    .unwrap()
            );
        }
        ids.push(id);
    }
    assert!(
        foodcheck::store::lists::supersede(tx.conn(), &ids[0], &ids[1], now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    listed.sort_by_key(|e| {
        (
            Reverse(e.published_at),
            e.issue.clone(),
            !e.black,
            e.position,
            e.id.clone(),
        )
    });

    let mut scopes: Vec<(String, Option<&str>)> = vec![("/public/v1/entries".into(), None)];
    for id in &ids[..3] {
        scopes.push((format!("/public/v1/lists/{id}/entries"), Some(id.as_str())));
    }
    let mut cases = 0;
    for (path, scope) in &scopes {
        for list_type in [None, Some("red"), Some("black")] {
            for town in [None, Some(TOWNS[0]), Some(TOWNS[2]), Some("无此街道")] {
                for category in [None, Some(CATEGORIES[1])] {
                    for period in [None, Some(("2026-10-15", "2026-12-31"))] {
                        let want: Vec<&str> = listed
                            .iter()
                            .filter(|e| match scope {
                                Some(id) => e.issue == *id,
                                None => e.issue != ids[0],
                            })
                            .filter(|e| list_type.is_none_or(|t| (t == "black") == e.black))
                            .filter(|e| town.is_none_or(|t| t == e.town))
                            .filter(|e| category.is_none_or(|c| c == e.category))
                            .filter(|e| {
                                period
                                    .is_none_or(|(from, to)| e.period.1 >= from && e.period.0 <= to)
                            })
                            .map(|e| e.id.as_str())
                            .collect();
                        let q = query_of(list_type, town, category, period);
                        let mut got: Vec<String> = Vec::new();
                        let mut page = 1;
                        loop {
                            let url = format!("{path}?{q}&page={page}");
                            let (status, _, body) = crate::public_data::get(&app, &url).await;
                            assert_eq!(status, 200, "{url}: {body}");
                            let v: Value = serde_json::from_str(&body).unwrap();
                            assert_eq!(
                                v["meta"]["total_count"].as_u64().unwrap() as usize,
                                want.len(),
                                "{url}"
                            );
                            assert_eq!(
                                v["meta"]["total_pages"].as_u64().unwrap() as usize,
                                want.len().div_ceil(PAGE),
                                "{url}"
                            );
                            let items = v["items"].as_array().unwrap();
                            got.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
                            if items.len() < PAGE {
                                break;
                            }
                            page += 1;
                        }
                        assert_eq!(got, want, "{path}?{q}");
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 3 * 4 * 2 * 2);
    // The draft's entries are nowhere; the draft itself is 404.
    let (status, _, _) =
        crate::public_data::get(&app, &format!("/public/v1/lists/{}/entries", ids[3])).await;
    assert_eq!(status, 404);
}
