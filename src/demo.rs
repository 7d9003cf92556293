//! `foodcheck demo-data`: a realistic demo district (宝坻区, Tianjin) in an empty database, so a
//! newcomer sees a working system at once. Deterministic for a given seed.

use anyhow::bail;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::auth::{password, Role};
use crate::establishment::codes::Uscc;
use crate::establishment::{EstablishmentInput, RawEstablishment, Warning};
use crate::store::{self, establishments::Upsert, Db};

const TOWNS: [&str; 14] = [
    "宝平街道",
    "钰华街道",
    "海滨街道",
    "大白街道",
    "周良街道",
    "口东街道",
    "朝霞街道",
    "潮阳街道",
    "牛道口镇",
    "史各庄镇",
    "大口屯镇",
    "方家庄镇",
    "林亭口镇",
    "八门城镇",
];
const STREETS: [&str; 10] = [
    "南关大街",
    "北关大街",
    "广阳路",
    "建设路",
    "开元路",
    "钰华街",
    "宝平路",
    "城关街",
    "津围公路",
    "九园公路",
];
const OWNERS: [&str; 16] = [
    "老王",
    "张记",
    "刘家",
    "福满",
    "鑫源",
    "聚贤",
    "和顺",
    "小李",
    "金豪",
    "东来",
    "宏达",
    "百味",
    "好运来",
    "德胜",
    "一品",
    "惠民",
];
/// 业态 with the dishes typical of it and a relative frequency.
const KINDS: [(&str, &[&str], u32); 10] = [
    (
        "small_restaurant",
        &["家常菜", "饺子馆", "炒菜馆", "面馆"],
        30,
    ),
    ("snack_bar", &["包子铺", "煎饼果子", "馄饨", "麻辣烫"], 20),
    ("fast_food", &["快餐", "盒饭", "米线"], 12),
    ("medium_restaurant", &["酒家", "海鲜楼", "饭庄"], 8),
    ("large_restaurant", &["大酒店", "宴会厅"], 2),
    ("beverage_shop", &["奶茶", "茶饮", "咖啡"], 10),
    ("canteen", &["职工食堂", "学校食堂"], 6),
    ("food_sales", &["超市", "便利店", "副食店"], 10),
    ("central_kitchen", &["中央厨房"], 1),
    ("group_meal_distributor", &["配餐中心"], 1),
];
/// Risk grades A–D with their share of the district.
const GRADES: [(&str, u32); 4] = [("A", 20), ("B", 45), ("C", 28), ("D", 7)];
const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

pub struct DemoAccount {
    pub username: String,
    pub role: Role,
    pub password: String,
}

fn weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn random_uscc(rng: &mut ChaCha8Rng) -> String {
    // 92 = 个体工商户, 120115 = 宝坻区, then a 9-character organisation code.
    let mut s = String::from("92120115");
    for _ in 0..9 {
        s.push(USCC_ALPHABET[rng.gen_range(0..USCC_ALPHABET.len())] as char);
    }
    let check = Uscc::check_char(&s).unwrap_or('0');
    s.push(check);
    s
}

fn random_password(rng: &mut ChaCha8Rng) -> String {
    const CHARS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..14)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Builds `n` validated establishments (pure, deterministic).
pub fn establishments(
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<(EstablishmentInput, Vec<Warning>)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let kinds: Vec<((&str, &[&str]), u32)> = KINDS.iter().map(|(c, d, w)| ((*c, *d), *w)).collect();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let &(category, dishes) = weighted(&mut rng, &kinds);
        let owner = OWNERS.choose(&mut rng).copied().unwrap_or("老王");
        let dish = dishes.choose(&mut rng).copied().unwrap_or("饭店");
        let town = TOWNS[rng.gen_range(0..TOWNS.len())];
        let street = STREETS.choose(&mut rng).copied().unwrap_or("南关大街");
        // Around Baodi's centre, given in GCJ-02 as AMap-based tools record it.
        let lng = 117.2949 + rng.gen_range(-0.12..0.12);
        let lat = 39.7185 + rng.gen_range(-0.09..0.09);
        let kind_digit = if category == "food_sales" {
            1
        } else if category == "canteen" {
            3
        } else {
            2
        };
        let license_no = if category == "food_sales" && rng.gen_bool(0.4) {
            format!("YB1120115{:07}", i)
        } else {
            format!("JY{kind_digit}120115{:07}", i)
        };
        let raw = RawEstablishment {
            sign_name: Some(format!("{owner}{dish}")),
            licensed_name: Some(format!(
                "天津市宝坻区{owner}{dish}{}",
                if i % 3 == 0 { "有限公司" } else { "店" }
            )),
            uscc: rng.gen_bool(0.85).then(|| random_uscc(&mut rng)),
            license_no: Some(license_no),
            category: Some(category.to_string()),
            address: Some(format!(
                "天津市宝坻区{town}{street}{}号",
                rng.gen_range(1..400)
            )),
            town: Some(town.to_string()),
            risk_grade: Some(weighted(&mut rng, &GRADES).to_string()),
            quant_grade: rng
                .gen_bool(0.6)
                .then(|| ["A", "B", "C"][rng.gen_range(0..3)].to_string()),
            status: Some(
                if rng.gen_bool(0.95) {
                    "open"
                } else {
                    "suspended"
                }
                .to_string(),
            ),
            contact_name: Some(format!(
                "{}先生",
                &owner.chars().take(1).collect::<String>()
            )),
            contact_phone: Some(format!(
                "13{}{:08}",
                rng.gen_range(0..10),
                rng.gen_range(0..100_000_000u32)
            )),
            lng: Some(lng),
            lat: Some(lat),
            crs: Some("gcj02".into()),
        };
        match raw.validate() {
            Ok(v) => out.push(v),
            Err(e) => bail!("demo establishment {i} is invalid: {e:?}"),
        }
    }
    Ok(out)
}

/// Fills an empty database; refuses when it already holds users or establishments.
pub async fn fill(db: &Db, n_establishments: usize, seed: u64) -> anyhow::Result<Vec<DemoAccount>> {
    if !store::users::list(db).await?.is_empty() || store::establishments::count(db).await? > 0 {
        bail!("the database is not empty; demo-data only fills a new database");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut accounts = vec![
        ("admin", Role::Admin, "管理员", None),
        ("reviewer", Role::Reviewer, "餐饮监管科 审核员", None),
        ("lab", Role::Lab, "天津市宝坻区食品检验所", None),
    ];
    const SURNAMES: [&str; 12] = [
        "张", "王", "李", "赵", "刘", "陈", "杨", "黄", "周", "吴", "徐", "孙",
    ];
    let inspectors: Vec<(String, String, String)> = (1..=12)
        .map(|i| {
            (
                format!("inspector{i:02}"),
                format!("{}执法{i}", SURNAMES[i - 1]),
                format!("12011520{i:04}"),
            )
        })
        .collect();
    for (u, name, badge) in &inspectors {
        accounts.push((
            u.as_str(),
            Role::Inspector,
            name.as_str(),
            Some(badge.as_str()),
        ));
    }
    let mut out = Vec::new();
    for (username, role, name, badge) in accounts {
        let pw = random_password(&mut rng);
        let hash = password::hash_password(pw.clone()).await?;
        let new = crate::auth::NewUser::parse(username, role, name, badge, None)
            .map_err(anyhow::Error::msg)?;
        crate::ops::accounts::create_user_with_hash(db, &crate::audit::Ctx::system(), &new, &hash)
            .await?;
        out.push(DemoAccount {
            username: username.to_string(),
            role,
            password: pw,
        });
    }
    let rows =
        tokio::task::spawn_blocking(move || establishments(n_establishments, seed)).await??;
    let ids: Vec<String> = (0..rows.len())
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let upserts: Vec<Upsert> = rows
        .iter()
        .zip(&ids)
        .map(|((input, warnings), id)| Upsert {
            id,
            input,
            warnings,
        })
        .collect();
    let mut tx = db.begin_write().await?;
    store::establishments::upsert_many(tx.conn(), &upserts, store::now_ms()).await?;
    store::audit(tx.conn(), None, "demo.fill", "establishments", "-", None).await?;
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_establishments_are_valid_and_deterministic() {
        let a = establishments(500, 7).unwrap();
        let b = establishments(500, 7).unwrap();
        assert_eq!(a, b);
        assert!(
            a.iter().all(|(_, w)| w.is_empty()),
            "generated USCCs must pass their check"
        );
        let d = a
            .iter()
            .filter(|(e, _)| e.risk_grade == crate::establishment::RiskGrade::D)
            .count();
        let bb = a
            .iter()
            .filter(|(e, _)| e.risk_grade == crate::establishment::RiskGrade::B)
            .count();
        assert!(d > 0 && bb > d);
    }
}
