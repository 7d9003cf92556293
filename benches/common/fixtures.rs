//! Fixtures shared by the sync and ingest benchmarks: accounts, a registry, a drawn plan and
//! pushes of whole inspections.

use foodcheck::audit::Ctx;
use foodcheck::auth::Role;
use foodcheck::checklist::rule::ResultRule;
use foodcheck::checklist::{Item, Section, TemplateContent};
use foodcheck::store::Db;
use serde_json::{json, Value};
use uuid::Uuid;

/// A 40-item local table (the domain guide mentions 40-item editions): 8 key, 32 general.
pub fn template_40() -> TemplateContent {
    let sections = (1..=8)
        .map(|s| Section {
            code: s.to_string(),
            title: format!("第{s}部分"),
            items: (1..=5)
                .map(|i| Item {
                    code: format!("{s}.{i}"),
                    text: format!("检查要点 {s}.{i}"),
                    key: i == 1,
                    na_allowed: true,
                    photo_required_on_fail: false,
                })
                .collect(),
        })
        .collect();
    TemplateContent {
        title: "40项地方检查表".into(),
        sections,
        rule: ResultRule::default_2016(),
    }
}

pub async fn inspector(db: &Db, name: &str) -> anyhow::Result<String> {
    // Benchmark accounts share one real hash (hashing 200 times would only measure argon2).
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| {
        foodcheck::auth::password::hash_password_blocking("bench-password-1").unwrap()
    });
    let new = foodcheck::auth::NewUser::parse(
        name,
        Role::Inspector,
        name,
        Some(&format!("B-{name}")),
        None,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(
        foodcheck::ops::accounts::create_user_with_hash(db, &Ctx::system(), &new, hash)
            .await?
            .id,
    )
}

pub async fn registry(db: &Db, n: usize, town: &str, seed: u64) -> anyhow::Result<()> {
    let mut rows = foodcheck::demo::establishments(n, seed)?;
    for (r, _) in rows.iter_mut() {
        r.town = town.into();
        r.status = foodcheck::establishment::EstablishmentStatus::Open;
        r.uscc = None;
        r.license_no = Some(
            foodcheck::establishment::codes::LicenseNo::parse(&format!(
                "JY2{}",
                &format!("{:013}", rand_suffix())
            ))
            .unwrap(),
        );
    }
    foodcheck::ops::demo::add_establishments(db, &Ctx::system(), &rows, seed, 0).await?;
    Ok(())
}

pub fn rand_suffix() -> u64 {
    u64::from_le_bytes(Uuid::new_v4().as_bytes()[..8].try_into().unwrap()) % 10_000_000_000_000
}

pub async fn plan_and_draw(
    db: &Db,
    template: &str,
    town: &str,
    inspectors: &[String],
    total: u32,
) -> anyhow::Result<()> {
    let raw: foodcheck::plan::RawPlan = serde_json::from_value(json!({
        "name": "bench", "round_title": "bench", "theme": "bench",
        "period_start": "2024-03-01", "period_end": "2024-03-31", "due_date": "2099-03-31",
        "template_id": template, "template_version": 1,
        "filter": {"towns": [town]},
        "quotas": {"weighted": {"total": total, "weights": {"A": 1, "B": 1, "C": 1, "D": 1}}},
        "inspector_ids": inspectors,
        "team_size": 2,
    }))?;
    let id = foodcheck::ops::plans::create_plan(db, &Ctx::system(), raw)
        .await?
        .id;
    foodcheck::ops::draw_plan(db, &Ctx::system(), &id, "bench", None)
        .await
        .map_err(|e| anyhow::anyhow!("draw: {e}"))?;
    Ok(())
}

pub fn inspection_push(tasks: &[(String, String)], items: &[String], per: usize) -> Value {
    let mut inspections = Vec::new();
    let mut answers = Vec::new();
    for (task, est) in tasks {
        let id = Uuid::new_v4().to_string();
        inspections.push(json!({"id": id, "task_id": task, "establishment_id": est, "started_at": 1_710_000_000_000i64, "finished_at": null,
            "lng": 117.29, "lat": 39.71, "gps_accuracy_m": 10.0, "crs": "gcj02",
            "team": "[{\"name\":\"a\",\"badge_no\":\"1\"},{\"name\":\"b\",\"badge_no\":\"2\"}]", "representative_name": "王",
            "representative_signed": true, "representative_refused": false, "business_opinion": null, "other_findings": null,
            "declared_result": null, "submitted": false}));
        for code in items.iter().take(per) {
            answers.push(json!({"id": Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("{id}:{code}").as_bytes()), "inspection_id": id,
                "item_code": code, "status": "pass", "note": null}));
        }
    }
    json!({"changes": {"inspections": {"created": inspections, "updated": [], "deleted": []}, "answers": {"created": answers, "updated": [], "deleted": []}}})
}

pub async fn tasks_of(db: &Db, user: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(sqlx::query_as("SELECT t.id, t.establishment_id FROM tasks t JOIN task_members m ON m.task_id = t.id WHERE m.inspector_id = $1 ORDER BY t.id")
        .bind(user)
        .fetch_all(db.pool())
        .await?)
}

/// [`template_40`] created as `code` and published (version 1): its id and item codes.
pub async fn published_template_40(db: &Db, code: &str) -> anyhow::Result<(String, Vec<String>)> {
    let template = template_40();
    let (t, _) =
        foodcheck::ops::checklists::create_template(db, &Ctx::system(), code, code, &template)
            .await?;
    foodcheck::ops::checklists::publish(db, &Ctx::system(), &t.id, 1).await?;
    Ok((t.id, template.items().map(|i| i.code.clone()).collect()))
}
