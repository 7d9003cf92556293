//! The 抽样单 (sampling form) as a typed value, and the check that it may be submitted.
//!
//! ## Not applicable is not missing
//! The paper form never leaves a cell blank: a field that does not apply is written "/". So
//! every field is an [`Entry`]: a value, [`Entry::NotApplicable`] ("/"), or
//! [`Entry::Missing`] (not filled in yet). A draft may have missing fields; a submission may
//! not (see [`validate_for_submission`]), and only the fields the paper form allows to be "/"
//! may be not applicable ([`FIELDS`] lists each field's [`Need`]).
//!
//! ## Wire form (one flat object, one WatermelonDB column per field)
//! - A **text column** (`type: 'string', isOptional: true`) holds the value, or `"/"` (also the
//!   full-width `"／"`, as a Chinese IME types it) for not applicable, or `null`/absent for
//!   missing. A blank or all-space string is missing too (a cleared input).
//! - A **number column** (`type: 'number', isOptional: true`) holds the number, or `null`/absent
//!   for missing. A number column cannot hold "/", so every field that may be not applicable
//!   is a text column: the price is a decimal in text (`"12.50"`, or `"/"`). The quantities,
//!   the time and the GPS point are never not applicable, so they are numbers.
//! - A **boolean column** (`sample_imported`) holds `true`/`false`, `null` for missing.
//! - Enums are their snake_case code (`supervision`, …); the Chinese label (`监督抽检`) is
//!   accepted on input too. Dates are `YYYY-MM-DD` text; `sampled_at` is Unix milliseconds.
//!
//! Wrong JSON types (a number in a text column, an unknown enum code) fail deserialisation,
//! as every other body does; values of the right type but the wrong shape (an SC licence of
//! 13 digits) are kept in a draft and refused by [`validate_for_submission`], field named.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::establishment::codes::{LicenseNo, Uscc};
use crate::establishment::{FieldError, Warning};
use crate::geo::{Crs, Location};

/// How the paper form writes "not applicable".
pub const NOT_APPLICABLE: &str = "/";

/// One field of the form: a value, "/" (not applicable), or not filled in.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Entry<T> {
    Value(T),
    /// "/" on the paper form: the field does not apply to this sample.
    NotApplicable,
    /// Not filled in (yet).
    #[default]
    Missing,
}

impl<T> Entry<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Entry::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Entry::Missing)
    }

    pub fn is_not_applicable(&self) -> bool {
        matches!(self, Entry::NotApplicable)
    }
}

/// `"/"` or the full-width `"／"`, spaces around ignored.
pub fn is_not_applicable_text(s: &str) -> bool {
    matches!(s.trim(), "/" | "／")
}

impl<T: Serialize> Serialize for Entry<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Value(v) => v.serialize(s),
            Entry::NotApplicable => s.serialize_str(NOT_APPLICABLE),
            Entry::Missing => s.serialize_none(),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Entry<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value as J;
        match Option::<J>::deserialize(d)? {
            None | Some(J::Null) => Ok(Entry::Missing),
            Some(J::String(s)) if is_not_applicable_text(&s) => Ok(Entry::NotApplicable),
            Some(J::String(s)) if s.trim().is_empty() => Ok(Entry::Missing),
            Some(v) => T::deserialize(v)
                .map(Entry::Value)
                .map_err(serde::de::Error::custom),
        }
    }
}

coded_enum! {
    /// 检验目的.
    Purpose {
        /// 监督抽检: results are judged and published; failures are followed up.
        Supervision = "supervision", "监督抽检";
        /// 风险监测: data for risk assessment.
        RiskMonitoring = "risk_monitoring", "风险监测";
    }
}

coded_enum! {
    /// 抽样环节.
    Stage {
        Production = "production", "生产";
        Circulation = "circulation", "流通";
        Catering = "catering", "餐饮";
    }
}

coded_enum! {
    /// 抽样方式.
    SamplingMethod {
        /// 无菌抽样 (for microbiological testing).
        Aseptic = "aseptic", "无菌抽样";
        /// 非无菌抽样.
        NonAseptic = "non_aseptic", "非无菌抽样";
    }
}

coded_enum! {
    /// The sampled business's opinion on the procedure and the seal.
    Opinion {
        NoObjection = "no_objection", "无异议";
        /// 有异议: the objection's text is required.
        Objection = "objection", "有异议";
    }
}

/// 食品生产许可证编号: `SC` + 14 digits (3-digit food category, 6-digit region, 4-digit serial,
/// check digit). Only the shape is checked: the check-digit algorithm is not published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScLicence(String);

impl ScLicence {
    /// Trimmed, upper-cased and folded from full width first, like the registry's codes.
    pub fn parse(s: &str) -> Result<ScLicence, String> {
        let code = crate::establishment::codes::normalise_code(s);
        let shape = "a food production licence number (食品生产许可证) is SC followed by 14 digits";
        let Some(digits) = code.strip_prefix("SC") else {
            if code.starts_with("JY") || code.starts_with("YB") {
                return Err(format!(
                    "{code} is a food business licence or filing (JY/YB), not a production licence; {shape}"
                ));
            }
            return Err(format!(
                "{code:?} is not a production licence number; {shape}"
            ));
        };
        if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{code:?} is not a production licence number; {shape}"
            ));
        }
        Ok(ScLicence(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price in yuan as written (`"12.5"`, `"12.50元"`, `"¥3"`): its value in fen (分), or `None`
/// when it is not a non-negative amount with at most two decimals below 100,000,000 yuan.
pub fn parse_price_fen(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t
        .strip_prefix('¥')
        .or_else(|| t.strip_prefix('￥'))
        .unwrap_or(t);
    let t = t.strip_suffix('元').unwrap_or(t).trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 8 || frac.len() > 2 || !digits(whole) || !digits(frac) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

/// The 抽样单. Field names are the wire (and column) names; see the module doc for the wire
/// conventions and [`FIELDS`] for which fields may be "/".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "snake_case")]
pub struct Form {
    /// 抽样单编号: a national-system number (`^[A-Z]{2}\d{17}$`), or absent: the server then
    /// generates one (see `sampling::number`).
    pub sampling_no: Option<String>,
    /// 任务来源 (e.g. the plan that ordered the sampling).
    #[schema(value_type = Option<String>)]
    pub task_source: Entry<String>,
    /// 检验目的.
    #[schema(value_type = Option<Purpose>)]
    pub purpose: Entry<Purpose>,
    /// 抽样环节.
    #[schema(value_type = Option<Stage>)]
    pub stage: Entry<Stage>,
    /// Food category, level 1 (食品大类) as in the 实施细则.
    #[schema(value_type = Option<String>)]
    pub food_category_1: Entry<String>,
    /// Level 2 (食品亚类).
    #[schema(value_type = Option<String>)]
    pub food_category_2: Entry<String>,
    /// Level 3 (食品品种).
    #[schema(value_type = Option<String>)]
    pub food_category_3: Entry<String>,
    /// Level 4 (食品细类); "/" where the 细则 has no fourth level.
    #[schema(value_type = Option<String>)]
    pub food_category_4: Entry<String>,
    /// Sampled premises (被抽样单位) at sampling time: name.
    #[schema(value_type = Option<String>)]
    pub premises_name: Entry<String>,
    #[schema(value_type = Option<String>)]
    pub premises_address: Entry<String>,
    /// 统一社会信用代码 (shape-checked; a failed check character is a warning only).
    #[schema(value_type = Option<String>)]
    pub premises_credit_code: Entry<String>,
    /// 许可证编号: JY/YB (business licence or filing) or SC (production licence).
    #[schema(value_type = Option<String>)]
    pub premises_licence_no: Entry<String>,
    /// 法定代表人 (负责人).
    #[schema(value_type = Option<String>)]
    pub premises_legal_representative: Entry<String>,
    /// 联系电话.
    #[schema(value_type = Option<String>)]
    pub premises_contact: Entry<String>,
    /// 标称生产者: "/" for bulk food without a producer on it.
    #[schema(value_type = Option<String>)]
    pub producer_name: Entry<String>,
    #[schema(value_type = Option<String>)]
    pub producer_address: Entry<String>,
    /// 食品生产许可证编号, `SC` + 14 digits; "/" for imported food or food without one.
    #[schema(value_type = Option<String>)]
    pub producer_sc_licence: Entry<String>,
    /// 样品名称.
    #[schema(value_type = Option<String>)]
    pub sample_name: Entry<String>,
    /// 商标.
    #[schema(value_type = Option<String>)]
    pub sample_brand: Entry<String>,
    /// 规格型号.
    #[schema(value_type = Option<String>)]
    pub sample_specification: Entry<String>,
    /// 生产（加工/购进）日期, `YYYY-MM-DD`.
    #[schema(value_type = Option<String>, format = Date)]
    pub sample_production_date: Entry<NaiveDate>,
    /// 批号.
    #[schema(value_type = Option<String>)]
    pub sample_batch: Entry<String>,
    /// 保质期, as printed (`12个月`).
    #[schema(value_type = Option<String>)]
    pub sample_shelf_life: Entry<String>,
    /// 执行标准/技术文件 (e.g. `GB 19295`).
    #[schema(value_type = Option<String>)]
    pub sample_standard: Entry<String>,
    /// 单价 in yuan, as decimal text (`"12.50"`), or "/".
    #[schema(value_type = Option<String>)]
    pub sample_price: Entry<String>,
    /// 是否进口.
    #[schema(value_type = Option<bool>)]
    pub sample_imported: Entry<bool>,
    /// 贮存条件 (常温, 冷藏, 冷冻, 避光, …).
    #[schema(value_type = Option<String>)]
    pub sample_storage: Entry<String>,
    /// 抽样方式.
    #[schema(value_type = Option<SamplingMethod>)]
    pub sampling_method: Entry<SamplingMethod>,
    /// 抽样基数 (the quantity sampled from), > 0.
    #[schema(value_type = Option<f64>)]
    pub sampling_base: Entry<f64>,
    #[schema(value_type = Option<String>)]
    pub sampling_base_unit: Entry<String>,
    /// 抽样数量 (taken for testing), > 0.
    #[schema(value_type = Option<f64>)]
    pub sample_quantity: Entry<f64>,
    #[schema(value_type = Option<String>)]
    pub sample_quantity_unit: Entry<String>,
    /// 备样数量 (kept for a 复检), ≥ 0.
    #[schema(value_type = Option<f64>)]
    pub backup_quantity: Entry<f64>,
    #[schema(value_type = Option<String>)]
    pub backup_quantity_unit: Entry<String>,
    /// 抽样时间, Unix milliseconds.
    #[schema(value_type = Option<i64>)]
    pub sampled_at: Entry<i64>,
    /// GPS point of the sampling, in `crs`.
    #[schema(value_type = Option<f64>)]
    pub lng: Entry<f64>,
    #[schema(value_type = Option<f64>)]
    pub lat: Entry<f64>,
    #[schema(value_type = Option<Crs>)]
    pub crs: Entry<Crs>,
    /// Accuracy the device reported, metres (informational).
    pub gps_accuracy_m: Option<f64>,
    /// The two samplers (user ids of the drawn team).
    #[schema(value_type = Option<String>)]
    pub sampler_1: Entry<String>,
    #[schema(value_type = Option<String>)]
    pub sampler_2: Entry<String>,
    /// 被抽样单位意见: 无异议 / 有异议.
    #[schema(value_type = Option<Opinion>)]
    pub premises_opinion: Entry<Opinion>,
    /// The objection as written; required with 有异议.
    #[schema(value_type = Option<String>)]
    pub premises_opinion_text: Entry<String>,
}

/// What a submission needs of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A value; "/" is refused.
    Value,
    /// A value or "/"; never missing (the paper form is never blank).
    ValueOrNotApplicable,
    /// A value when the premises object (有异议); anything otherwise.
    ValueIfObjection,
    /// Never required (`sampling_no`: generated when absent; `gps_accuracy_m`).
    Optional,
}

/// Every field of the form with what a submission needs of it, in form order.
pub const FIELDS: &[(&str, Need)] = &[
    ("sampling_no", Need::Optional),
    ("task_source", Need::Value),
    ("purpose", Need::Value),
    ("stage", Need::Value),
    ("food_category_1", Need::Value),
    ("food_category_2", Need::Value),
    ("food_category_3", Need::Value),
    ("food_category_4", Need::ValueOrNotApplicable),
    ("premises_name", Need::Value),
    ("premises_address", Need::Value),
    ("premises_credit_code", Need::ValueOrNotApplicable),
    ("premises_licence_no", Need::ValueOrNotApplicable),
    ("premises_legal_representative", Need::ValueOrNotApplicable),
    ("premises_contact", Need::ValueOrNotApplicable),
    ("producer_name", Need::ValueOrNotApplicable),
    ("producer_address", Need::ValueOrNotApplicable),
    ("producer_sc_licence", Need::ValueOrNotApplicable),
    ("sample_name", Need::Value),
    ("sample_brand", Need::ValueOrNotApplicable),
    ("sample_specification", Need::ValueOrNotApplicable),
    ("sample_production_date", Need::ValueOrNotApplicable),
    ("sample_batch", Need::ValueOrNotApplicable),
    ("sample_shelf_life", Need::ValueOrNotApplicable),
    ("sample_standard", Need::ValueOrNotApplicable),
    ("sample_price", Need::ValueOrNotApplicable),
    ("sample_imported", Need::Value),
    ("sample_storage", Need::Value),
    ("sampling_method", Need::Value),
    ("sampling_base", Need::Value),
    ("sampling_base_unit", Need::Value),
    ("sample_quantity", Need::Value),
    ("sample_quantity_unit", Need::Value),
    ("backup_quantity", Need::Value),
    ("backup_quantity_unit", Need::Value),
    ("sampled_at", Need::Value),
    ("lng", Need::Value),
    ("lat", Need::Value),
    ("crs", Need::Value),
    ("gps_accuracy_m", Need::Optional),
    ("sampler_1", Need::Value),
    ("sampler_2", Need::Value),
    ("premises_opinion", Need::Value),
    ("premises_opinion_text", Need::ValueIfObjection),
];

/// Longest text field, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest objection text and task source, in characters.
pub const MAX_LONG_TEXT_CHARS: usize = 2000;
/// Longest unit (`袋`, `kg`, `瓶`), in characters.
pub const MAX_UNIT_CHARS: usize = 20;

fn need(field: &str) -> Need {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(Need::Value, |(_, n)| *n)
}

/// Collects every problem (not just the first), like `RawEstablishment::validate`.
struct Check(Vec<FieldError>);

impl Check {
    fn push(&mut self, field: &str, code: &str, message: String) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// The value, if the field has one; a missing field (and "/" where [`FIELDS`] says a value
    /// is needed) is recorded.
    fn entry<'a, T>(&mut self, field: &str, e: &'a Entry<T>) -> Option<&'a T> {
        match (e, need(field)) {
            (Entry::Value(v), _) => Some(v),
            (Entry::Missing, Need::Value | Need::ValueOrNotApplicable) => {
                let hint = if need(field) == Need::ValueOrNotApplicable {
                    "; write \"/\" if it does not apply"
                } else {
                    ""
                };
                self.push(field, "required", format!("{field} is required{hint}"));
                None
            }
            (Entry::NotApplicable, Need::Value) => {
                self.push(
                    field,
                    "not_applicable_not_allowed",
                    format!("{field} cannot be \"/\" (not applicable): it needs a value"),
                );
                None
            }
            _ => None,
        }
    }

    /// A text value, trimmed, checked for length and control characters.
    fn text<'a>(&mut self, field: &str, e: &'a Entry<String>, max: usize) -> Option<&'a str> {
        let v = self.entry(field, e)?.trim();
        if v.chars().count() > max {
            self.push(
                field,
                "too_long",
                format!("{field} is longer than {max} characters"),
            );
        } else if let Some(c) = crate::text::find_forbidden(v) {
            self.push(
                field,
                "forbidden_character",
                format!(
                    "{field} contains the control character {}",
                    crate::text::describe(c)
                ),
            );
        }
        Some(v)
    }

    fn amount(&mut self, field: &str, e: &Entry<f64>, zero_ok: bool) -> Option<f64> {
        let v = *self.entry(field, e)?;
        let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0));
        if !ok {
            let want = if zero_ok { "0 or more" } else { "more than 0" };
            self.push(
                field,
                "invalid_quantity",
                format!("{field} must be a number {want}"),
            );
            return None;
        }
        Some(v)
    }
}

/// Checks that `form` may be submitted and names every field at fault: a missing field (every
/// field needs a value or "/"), "/" where the paper form needs a value, bad shapes (SC licence,
/// credit code, licence number, national 抽样单编号, price, quantities, GPS point), the same
/// person as both samplers, 有异议 without its text, and a 抽样基数 smaller than what was taken
/// from it (when the units are the same). See [`warnings`] for what is stored but flagged.
pub fn validate_for_submission(form: &Form) -> Result<(), Vec<FieldError>> {
    let mut c = Check(Vec::new());

    if let Some(no) = form
        .sampling_no
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if super::number::classify(no).is_none() {
            c.push(
                "sampling_no",
                "invalid_sampling_no",
                format!(
                    "抽样单编号 {no:?} is neither a national-system number (2 letters and 17 digits) nor one this system generated"
                ),
            );
        }
    }
    c.text("task_source", &form.task_source, MAX_LONG_TEXT_CHARS);
    c.entry("purpose", &form.purpose);
    c.entry("stage", &form.stage);
    for (field, e) in [
        ("food_category_1", &form.food_category_1),
        ("food_category_2", &form.food_category_2),
        ("food_category_3", &form.food_category_3),
        ("food_category_4", &form.food_category_4),
        ("premises_name", &form.premises_name),
        ("premises_address", &form.premises_address),
        (
            "premises_legal_representative",
            &form.premises_legal_representative,
        ),
        ("producer_name", &form.producer_name),
        ("producer_address", &form.producer_address),
        ("sample_name", &form.sample_name),
        ("sample_brand", &form.sample_brand),
        ("sample_specification", &form.sample_specification),
        ("sample_batch", &form.sample_batch),
        ("sample_shelf_life", &form.sample_shelf_life),
        ("sample_standard", &form.sample_standard),
        ("sample_storage", &form.sample_storage),
    ] {
        c.text(field, e, MAX_TEXT_CHARS);
    }

    if let Some(code) = c.text(
        "premises_credit_code",
        &form.premises_credit_code,
        MAX_TEXT_CHARS,
    ) {
        if let Err(m) = Uscc::parse(code) {
            c.push("premises_credit_code", "invalid_uscc", m);
        }
    }
    if let Some(no) = c.text(
        "premises_licence_no",
        &form.premises_licence_no,
        MAX_TEXT_CHARS,
    ) {
        // Production premises hold an SC licence; sellers and caterers a JY licence or YB filing.
        let sc = crate::establishment::codes::normalise_code(no).starts_with("SC");
        let checked = if sc {
            ScLicence::parse(no).map(|_| ())
        } else {
            LicenseNo::parse(no).map(|_| ())
        };
        if let Err(m) = checked {
            c.push("premises_licence_no", "invalid_licence_no", m);
        }
    }
    if let Some(p) = c.text("premises_contact", &form.premises_contact, MAX_TEXT_CHARS) {
        if !crate::establishment::codes::is_plausible_phone(p) {
            c.push(
                "premises_contact",
                "invalid_phone",
                format!("{p:?} is not a phone number"),
            );
        }
    }
    if let Some(sc) = c.text(
        "producer_sc_licence",
        &form.producer_sc_licence,
        MAX_TEXT_CHARS,
    ) {
        if let Err(m) = ScLicence::parse(sc) {
            c.push("producer_sc_licence", "invalid_sc_licence", m);
        }
    }
    c.entry("sample_production_date", &form.sample_production_date);
    if let Some(p) = c.text("sample_price", &form.sample_price, MAX_TEXT_CHARS) {
        if parse_price_fen(p).is_none() {
            c.push(
                "sample_price",
                "invalid_price",
                format!("price {p:?} is not an amount in yuan with at most two decimals"),
            );
        }
    }
    c.entry("sample_imported", &form.sample_imported);
    c.entry("sampling_method", &form.sampling_method);

    let base = c.amount("sampling_base", &form.sampling_base, false);
    let taken = c.amount("sample_quantity", &form.sample_quantity, false);
    let backup = c.amount("backup_quantity", &form.backup_quantity, true);
    let units = [
        c.text(
            "sampling_base_unit",
            &form.sampling_base_unit,
            MAX_UNIT_CHARS,
        ),
        c.text(
            "sample_quantity_unit",
            &form.sample_quantity_unit,
            MAX_UNIT_CHARS,
        ),
        c.text(
            "backup_quantity_unit",
            &form.backup_quantity_unit,
            MAX_UNIT_CHARS,
        ),
    ];
    if let ([Some(b), Some(t), Some(k)], Some(base), Some(taken), Some(backup)) =
        (units, base, taken, backup)
    {
        if b == t && t == k && base < taken + backup {
            c.push(
                "sampling_base",
                "sampling_base_too_small",
                format!(
                    "抽样基数 {base} {b} is less than the {taken} {t} taken plus the {backup} {k} kept as backup"
                ),
            );
        }
    }

    if let Some(at) = c.entry("sampled_at", &form.sampled_at) {
        if *at <= 0 {
            c.push(
                "sampled_at",
                "invalid_time",
                "sampled_at must be a time (Unix milliseconds)".to_string(),
            );
        }
    }
    let lng = c.entry("lng", &form.lng);
    let lat = c.entry("lat", &form.lat);
    let crs = c.entry("crs", &form.crs);
    if let (Some(lng), Some(lat), Some(crs)) = (lng, lat, crs) {
        if let Err(e) = Location::new(*lng, *lat, *crs) {
            c.push("lng", "invalid_coordinates", e.to_string());
        }
    }
    if let Some(a) = form.gps_accuracy_m {
        if !a.is_finite() || a < 0.0 {
            c.push(
                "gps_accuracy_m",
                "invalid_accuracy",
                "gps_accuracy_m must be 0 or more metres".to_string(),
            );
        }
    }

    let s1 = c.text("sampler_1", &form.sampler_1, MAX_TEXT_CHARS);
    let s2 = c.text("sampler_2", &form.sampler_2, MAX_TEXT_CHARS);
    if let (Some(a), Some(b)) = (s1, s2) {
        if a == b {
            c.push(
                "sampler_2",
                "samplers_not_distinct",
                "sampling needs two different samplers".to_string(),
            );
        }
    }

    let objection =
        c.entry("premises_opinion", &form.premises_opinion) == Some(&Opinion::Objection);
    if objection && form.premises_opinion_text.value().is_none() {
        c.push(
            "premises_opinion_text",
            "objection_text_required",
            "有异议 needs the objection's text".to_string(),
        );
    } else if form.premises_opinion_text.value().is_some() {
        c.text(
            "premises_opinion_text",
            &form.premises_opinion_text,
            MAX_LONG_TEXT_CHARS,
        );
    }

    if c.0.is_empty() {
        Ok(())
    } else {
        Err(c.0)
    }
}

/// Findings stored with a submitted form but not refused: a credit code whose check character
/// fails (some early pilot codes do, as in the registry).
pub fn warnings(form: &Form) -> Vec<Warning> {
    form.premises_credit_code
        .value()
        .and_then(|c| Uscc::parse(c).ok())
        .and_then(|(_, w)| w)
        .map(|message| Warning {
            field: "premises_credit_code".into(),
            code: "uscc_check_failed".into(),
            message,
        })
        .into_iter()
        .collect()
}

/// The fields at fault, each once, in form order (for messages: "missing: a, b").
pub fn fields_at_fault(errors: &[FieldError]) -> Vec<&str> {
    let at_fault: HashSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    FIELDS
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| at_fault.contains(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &str) -> Entry<String> {
        Entry::Value(v.to_string())
    }

    /// A complete form as a sampler in a supermarket fills it in.
    pub(crate) fn complete() -> Form {
        Form {
            sampling_no: Some("DC26110000123456789".into()),
            task_source: s("2026年XX区食品安全监督抽检计划"),
            purpose: Entry::Value(Purpose::Supervision),
            stage: Entry::Value(Stage::Circulation),
            food_category_1: s("蔬菜"),
            food_category_2: s("新鲜蔬菜"),
            food_category_3: s("叶菜类蔬菜"),
            food_category_4: s("普通白菜"),
            premises_name: s("某某超市"),
            premises_address: s("XX区XX路1号"),
            premises_credit_code: s("91350100M000100Y43"),
            premises_licence_no: s("JY13501000000011"),
            premises_legal_representative: s("张三"),
            premises_contact: s("13800138000"),
            producer_name: Entry::NotApplicable,
            producer_address: Entry::NotApplicable,
            producer_sc_licence: Entry::NotApplicable,
            sample_name: s("小白菜"),
            sample_brand: Entry::NotApplicable,
            sample_specification: Entry::NotApplicable,
            sample_production_date: Entry::Value(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
            sample_batch: Entry::NotApplicable,
            sample_shelf_life: Entry::NotApplicable,
            sample_standard: Entry::NotApplicable,
            sample_price: s("6.80"),
            sample_imported: Entry::Value(false),
            sample_storage: s("常温"),
            sampling_method: Entry::Value(SamplingMethod::NonAseptic),
            sampling_base: Entry::Value(20.0),
            sampling_base_unit: s("kg"),
            sample_quantity: Entry::Value(1.5),
            sample_quantity_unit: s("kg"),
            backup_quantity: Entry::Value(1.5),
            backup_quantity_unit: s("kg"),
            sampled_at: Entry::Value(1_772_500_000_000),
            lng: Entry::Value(119.3),
            lat: Entry::Value(26.08),
            crs: Entry::Value(Crs::Gcj02),
            gps_accuracy_m: Some(8.0),
            sampler_1: s("u-1"),
            sampler_2: s("u-2"),
            premises_opinion: Entry::Value(Opinion::NoObjection),
            premises_opinion_text: Entry::Missing,
        }
    }

    fn codes(form: &Form) -> Vec<(String, String)> {
        validate_for_submission(form)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    fn pair(f: &str, c: &str) -> (String, String) {
        (f.to_string(), c.to_string())
    }

    #[test]
    fn a_complete_form_is_accepted() {
        assert_eq!(validate_for_submission(&complete()), Ok(()));
        assert!(warnings(&complete()).is_empty());
    }

    #[test]
    fn wire_form_keeps_slash_apart_from_missing() {
        let json = serde_json::to_value(complete()).unwrap();
        assert_eq!(json["producer_name"], "/");
        assert_eq!(json["premises_opinion_text"], serde_json::Value::Null);
        assert_eq!(json["purpose"], "supervision");
        assert_eq!(json["sample_production_date"], "2026-03-01");
        assert_eq!(json["sampling_base"], 20.0);
        assert_eq!(json["sample_price"], "6.80");
        let back: Form = serde_json::from_value(json).unwrap();
        assert_eq!(back, complete());

        let f: Form = serde_json::from_str(
            r#"{"sample_brand": "／", "sample_batch": "  ", "sample_name": " 小白菜 ",
                "purpose": "风险监测", "stage": "餐饮", "sampling_method": "无菌抽样",
                "premises_opinion": "有异议", "sample_imported": true}"#,
        )
        .unwrap();
        assert_eq!(f.sample_brand, Entry::NotApplicable);
        assert_eq!(f.sample_batch, Entry::Missing);
        assert_eq!(f.sample_specification, Entry::Missing);
        assert_eq!(f.purpose, Entry::Value(Purpose::RiskMonitoring));
        assert_eq!(f.stage, Entry::Value(Stage::Catering));
        assert_eq!(f.sampling_method, Entry::Value(SamplingMethod::Aseptic));
        assert_eq!(f.premises_opinion, Entry::Value(Opinion::Objection));
        assert_eq!(f.sample_imported, Entry::Value(true));
        // Wrong JSON types and unknown codes are refused while parsing.
        assert!(serde_json::from_str::<Form>(r#"{"purpose": "audit"}"#).is_err());
        assert!(serde_json::from_str::<Form>(r#"{"sample_quantity": "two"}"#).is_err());
        assert!(serde_json::from_str::<Form>(r#"{"sample_production_date": "1/3"}"#).is_err());
        // "/" in a number column is not applicable, which a quantity may not be.
        let f: Form = serde_json::from_str(r#"{"sample_quantity": "/"}"#).unwrap();
        assert_eq!(f.sample_quantity, Entry::NotApplicable);
    }

    #[test]
    fn fields_table_names_every_wire_field_once() {
        let json = serde_json::to_value(Form::default()).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        let table: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
        assert_eq!(keys.len(), table.len());
        for k in keys {
            assert!(table.contains(&k.as_str()), "{k} not in FIELDS");
        }
    }

    #[test]
    fn an_empty_form_names_every_required_field() {
        let errors = validate_for_submission(&Form::default()).unwrap_err();
        let named = fields_at_fault(&errors);
        for (field, need) in FIELDS {
            let expected = matches!(need, Need::Value | Need::ValueOrNotApplicable);
            assert_eq!(named.contains(field), expected, "{field}");
        }
        assert!(errors.iter().all(|e| e.code == "required"));
    }

    #[test]
    fn slash_only_where_the_paper_form_allows_it() {
        // Every field that needs a value refuses "/"; every other one accepts it.
        for (field, need) in FIELDS {
            if matches!(need, Need::Optional) {
                continue;
            }
            let mut json = serde_json::to_value(complete()).unwrap();
            json[*field] = "/".into();
            let Ok(form) = serde_json::from_value::<Form>(json) else {
                panic!("{field}: \"/\" did not parse");
            };
            let got = codes(&form);
            match need {
                Need::Value => {
                    assert_eq!(got, [pair(field, "not_applicable_not_allowed")], "{field}")
                }
                _ => assert!(got.is_empty(), "{field}: {got:?}"),
            }
        }
    }

    #[test]
    fn missing_is_refused_even_where_slash_is_allowed() {
        let mut f = complete();
        f.sample_brand = Entry::Missing;
        f.producer_sc_licence = Entry::Missing;
        let errors = validate_for_submission(&f).unwrap_err();
        assert_eq!(
            fields_at_fault(&errors),
            ["producer_sc_licence", "sample_brand"]
        );
        assert!(errors[0].message.contains("\"/\""));
    }

    #[test]
    fn shapes_are_checked() {
        let mut f = complete();
        f.producer_name = s("某某食品有限公司");
        f.producer_sc_licence = s("SC1063501000012");
        f.premises_licence_no = s("JY1350100000001");
        f.premises_credit_code = s("91350100M000100Y4O");
        f.sample_price = s("6.805");
        f.sampling_no = Some("DC2611".into());
        f.premises_contact = s("abc");
        assert_eq!(
            codes(&f),
            [
                pair("sampling_no", "invalid_sampling_no"),
                pair("premises_credit_code", "invalid_uscc"),
                pair("premises_licence_no", "invalid_licence_no"),
                pair("premises_contact", "invalid_phone"),
                pair("producer_sc_licence", "invalid_sc_licence"),
                pair("sample_price", "invalid_price"),
            ]
        );
        // Full-width and lower-case codes are folded; a producer's SC licence is also a
        // production premises' licence number.
        f = complete();
        f.producer_sc_licence = s("ｓｃ10635010000123");
        f.premises_licence_no = s("SC10635010000123");
        f.sampling_no = None;
        assert_eq!(codes(&f), []);
        assert!(ScLicence::parse("JY10635010000123")
            .unwrap_err()
            .contains("not a production licence"));
        // A failed check character is stored with a warning.
        f.premises_credit_code = s("91350100M000100Y44");
        assert_eq!(codes(&f), []);
        assert_eq!(warnings(&f)[0].code, "uscc_check_failed");
    }

    #[test]
    fn quantities_gps_samplers_and_objection() {
        let mut f = complete();
        f.sample_quantity = Entry::Value(0.0);
        f.backup_quantity = Entry::Value(-1.0);
        f.lat = Entry::Value(119.3);
        f.sampler_2 = s(" u-1 ");
        f.premises_opinion = Entry::Value(Opinion::Objection);
        assert_eq!(
            codes(&f),
            [
                pair("sample_quantity", "invalid_quantity"),
                pair("backup_quantity", "invalid_quantity"),
                pair("lng", "invalid_coordinates"),
                pair("sampler_2", "samplers_not_distinct"),
                pair("premises_opinion_text", "objection_text_required"),
            ]
        );
        let mut f = complete();
        f.sampling_base = Entry::Value(2.0);
        assert_eq!(
            codes(&f),
            [pair("sampling_base", "sampling_base_too_small")]
        );
        // Different units cannot be compared: not refused.
        f.sampling_base_unit = s("箱");
        assert_eq!(codes(&f), []);
        f.premises_opinion = Entry::Value(Opinion::Objection);
        f.premises_opinion_text = Entry::NotApplicable;
        assert_eq!(
            codes(&f),
            [pair("premises_opinion_text", "objection_text_required")]
        );
        f.premises_opinion_text = s("封样时未拍照");
        assert_eq!(codes(&f), []);
    }

    #[test]
    fn text_limits_and_control_characters() {
        let mut f = complete();
        f.sample_name = s(&"菜".repeat(MAX_TEXT_CHARS + 1));
        f.sample_storage = s("常温\u{0}");
        assert_eq!(
            codes(&f),
            [
                pair("sample_name", "too_long"),
                pair("sample_storage", "forbidden_character"),
            ]
        );
    }

    #[test]
    fn prices() {
        assert_eq!(parse_price_fen("6.8"), Some(680));
        assert_eq!(parse_price_fen("¥12.50元"), Some(1250));
        assert_eq!(parse_price_fen("0"), Some(0));
        for bad in ["", "-1", "1.234", "1e3", ".5", "12,5", "123456789"] {
            assert_eq!(parse_price_fen(bad), None, "{bad}");
        }
    }

    #[test]
    fn enums_round_trip() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::parse(p.code()), Some(*p));
            assert_eq!(Purpose::parse(p.label_zh()), Some(*p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.code());
        }
        for v in Stage::ALL {
            assert_eq!(Stage::parse(v.label_zh()), Some(*v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.code());
        }
        for v in SamplingMethod::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), v.code());
        }
        for v in Opinion::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), v.code());
        }
    }

    proptest! {
        /// Any text survives the wire as the same entry: "/" as not applicable, blank as
        /// missing, anything else as itself.
        #[test]
        fn text_entries_round_trip(t in "\\PC{0,12}") {
            let e: Entry<String> = serde_json::from_value(serde_json::Value::String(t.clone())).unwrap();
            let want = if is_not_applicable_text(&t) {
                Entry::NotApplicable
            } else if t.trim().is_empty() {
                Entry::Missing
            } else {
                Entry::Value(t.clone())
            };
            prop_assert_eq!(&e, &want);
            let again: Entry<String> = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
            prop_assert_eq!(again, want);
        }

        /// Clearing any one required field of a complete form refuses it naming that field,
        /// and only that field.
        #[test]
        fn clearing_one_field_names_it(i in 0usize..FIELDS.len()) {
            let (field, need) = FIELDS[i];
            prop_assume!(matches!(need, Need::Value | Need::ValueOrNotApplicable));
            let mut json = serde_json::to_value(complete()).unwrap();
            json[field] = serde_json::Value::Null;
            let form: Form = serde_json::from_value(json).unwrap();
            let errors = validate_for_submission(&form).unwrap_err();
            prop_assert_eq!(fields_at_fault(&errors), vec![field]);
        }

        /// SC + 14 digits always parses; anything with another length never does.
        #[test]
        fn sc_licence_shape(digits in "[0-9]{0,20}") {
            let ok = ScLicence::parse(&format!("SC{digits}")).is_ok();
            prop_assert_eq!(ok, digits.len() == 14);
        }

        /// Prices with two decimals round-trip to fen.
        #[test]
        fn prices_in_fen(fen in 0i64..10_000_000_000) {
            let text = format!("{}.{:02}", fen / 100, fen % 100);
            prop_assert_eq!(parse_price_fen(&text), Some(fen));
        }
    }
}
