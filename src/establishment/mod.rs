//! Food businesses (establishments): the registry's domain types and validation rules.
//! Pure logic, no I/O.

pub mod codes;
pub mod import;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::geo::{Crs, Location};

/// 业态: the kind of food business. Codes are stable English identifiers; every code has the
/// Chinese label used on forms, and both are accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 大型餐馆
    LargeRestaurant,
    /// 中型餐馆
    MediumRestaurant,
    /// 小型餐馆
    SmallRestaurant,
    /// 快餐店
    FastFood,
    /// 小吃店
    SnackBar,
    /// 饮品店
    BeverageShop,
    /// 食堂
    Canteen,
    /// 集体用餐配送单位
    GroupMealDistributor,
    /// 中央厨房
    CentralKitchen,
    /// 食品销售
    FoodSales,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::LargeRestaurant,
        Category::MediumRestaurant,
        Category::SmallRestaurant,
        Category::FastFood,
        Category::SnackBar,
        Category::BeverageShop,
        Category::Canteen,
        Category::GroupMealDistributor,
        Category::CentralKitchen,
        Category::FoodSales,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Category::LargeRestaurant => "large_restaurant",
            Category::MediumRestaurant => "medium_restaurant",
            Category::SmallRestaurant => "small_restaurant",
            Category::FastFood => "fast_food",
            Category::SnackBar => "snack_bar",
            Category::BeverageShop => "beverage_shop",
            Category::Canteen => "canteen",
            Category::GroupMealDistributor => "group_meal_distributor",
            Category::CentralKitchen => "central_kitchen",
            Category::FoodSales => "food_sales",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Category::LargeRestaurant => "大型餐馆",
            Category::MediumRestaurant => "中型餐馆",
            Category::SmallRestaurant => "小型餐馆",
            Category::FastFood => "快餐店",
            Category::SnackBar => "小吃店",
            Category::BeverageShop => "饮品店",
            Category::Canteen => "食堂",
            Category::GroupMealDistributor => "集体用餐配送单位",
            Category::CentralKitchen => "中央厨房",
            Category::FoodSales => "食品销售",
        }
    }

    /// Accepts the English code or the Chinese label (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Option<Category> {
        let s = s.trim();
        Category::ALL
            .into_iter()
            .find(|c| c.code() == s || c.label_zh() == s)
    }
}

/// 风险分级: A (lowest risk) to D (highest risk).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum RiskGrade {
    A,
    B,
    C,
    D,
}

impl RiskGrade {
    pub const ALL: [RiskGrade; 4] = [RiskGrade::A, RiskGrade::B, RiskGrade::C, RiskGrade::D];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskGrade::A => "A",
            RiskGrade::B => "B",
            RiskGrade::C => "C",
            RiskGrade::D => "D",
        }
    }

    /// Accepts `A`–`D` in either case, also written `A级`.
    pub fn parse(s: &str) -> Option<RiskGrade> {
        let s = s.trim().trim_end_matches('级');
        RiskGrade::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
    }
}

/// 量化等级 (annual dynamic rating): A, B or C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum QuantGrade {
    A,
    B,
    C,
}

impl QuantGrade {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantGrade::A => "A",
            QuantGrade::B => "B",
            QuantGrade::C => "C",
        }
    }

    pub fn parse(s: &str) -> Option<QuantGrade> {
        match s.trim().trim_end_matches('级') {
            "A" | "a" => Some(QuantGrade::A),
            "B" | "b" => Some(QuantGrade::B),
            "C" | "c" => Some(QuantGrade::C),
            _ => None,
        }
    }
}

/// Whether the business is trading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EstablishmentStatus {
    Open,
    Suspended,
    Closed,
}

impl EstablishmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EstablishmentStatus::Open => "open",
            EstablishmentStatus::Suspended => "suspended",
            EstablishmentStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<EstablishmentStatus> {
        match s.trim() {
            "open" | "营业" | "在营" => Some(EstablishmentStatus::Open),
            "suspended" | "停业" => Some(EstablishmentStatus::Suspended),
            "closed" | "注销" | "关闭" => Some(EstablishmentStatus::Closed),
            _ => None,
        }
    }
}

/// A validated establishment as it is written to the registry (create, update, import row).
#[derive(Debug, Clone, PartialEq)]
pub struct EstablishmentInput {
    pub sign_name: String,
    pub licensed_name: String,
    pub uscc: Option<codes::Uscc>,
    pub license_no: Option<codes::LicenseNo>,
    pub category: Category,
    pub address: String,
    pub town: String,
    pub risk_grade: RiskGrade,
    pub quant_grade: Option<QuantGrade>,
    pub status: EstablishmentStatus,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub location: Option<Location>,
}

/// A stored location: the point as given, and normalised to WGS-84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StoredLocation {
    pub lng: f64,
    pub lat: f64,
    pub crs: Crs,
    pub wgs84_lng: f64,
    pub wgs84_lat: f64,
}

/// A registry entry as stored: the one shape every view (API, draw, public page, audit event)
/// is derived from. Serialises the record's own fields (what audit events diff), not its id
/// or timestamps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Establishment {
    #[serde(skip)]
    pub id: String,
    pub sign_name: String,
    pub licensed_name: String,
    pub uscc: Option<String>,
    pub license_no: Option<String>,
    pub category: Category,
    pub address: String,
    pub town: String,
    pub risk_grade: RiskGrade,
    pub quant_grade: Option<QuantGrade>,
    pub status: EstablishmentStatus,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub location: Option<StoredLocation>,
    pub warnings: Vec<Warning>,
    /// Unix milliseconds.
    #[serde(skip)]
    pub created_at: i64,
    #[serde(skip)]
    pub updated_at: i64,
}

/// A non-fatal finding about an input (stored anyway), e.g. a USCC whose check character fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    /// The input field the warning is about, e.g. `uscc`.
    pub field: String,
    /// Stable machine-readable code, e.g. `uscc_check_failed`.
    pub code: String,
    pub message: String,
}

/// A reason an input is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The input field at fault, e.g. `license_no`.
    pub field: String,
    /// Stable machine-readable code, e.g. `invalid_license_no`.
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Raw, unvalidated fields as they arrive from JSON or a spreadsheet row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEstablishment {
    pub sign_name: Option<String>,
    pub licensed_name: Option<String>,
    pub uscc: Option<String>,
    pub license_no: Option<String>,
    pub category: Option<String>,
    pub address: Option<String>,
    pub town: Option<String>,
    pub risk_grade: Option<String>,
    pub quant_grade: Option<String>,
    pub status: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub lng: Option<f64>,
    pub lat: Option<f64>,
    pub crs: Option<String>,
}

const MAX_TEXT: usize = 200;

fn required(field: &str, v: &Option<String>, errors: &mut Vec<FieldError>) -> String {
    let v = v.as_deref().map(str::trim).unwrap_or("");
    if v.is_empty() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    } else if v.chars().count() > MAX_TEXT {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("{field} is longer than {MAX_TEXT} characters"),
        ));
    }
    v.to_string()
}

fn optional(field: &str, v: &Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    if v.chars().count() > MAX_TEXT {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("{field} is longer than {MAX_TEXT} characters"),
        ));
    }
    Some(v.to_string())
}

impl RawEstablishment {
    /// Validates every field and reports every problem at once (not just the first), so an
    /// import can list them all per row.
    pub fn validate(&self) -> Result<(EstablishmentInput, Vec<Warning>), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        let sign_name = required("sign_name", &self.sign_name, &mut errors);
        let licensed_name = required("licensed_name", &self.licensed_name, &mut errors);
        let address = required("address", &self.address, &mut errors);
        let town = required("town", &self.town, &mut errors);

        let uscc = match self
            .uscc
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => match codes::Uscc::parse(s) {
                Ok((code, warning)) => {
                    if let Some(message) = warning {
                        warnings.push(Warning {
                            field: "uscc".into(),
                            code: "uscc_check_failed".into(),
                            message,
                        });
                    }
                    Some(code)
                }
                Err(message) => {
                    errors.push(FieldError::new("uscc", "invalid_uscc", message));
                    None
                }
            },
        };
        let license_no = match self
            .license_no
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => match codes::LicenseNo::parse(s) {
                Ok(code) => Some(code),
                Err(message) => {
                    errors.push(FieldError::new("license_no", "invalid_license_no", message));
                    None
                }
            },
        };
        if self.uscc.as_deref().map(str::trim).unwrap_or("").is_empty()
            && self
                .license_no
                .as_deref()
                .map(str::trim)
                .unwrap_or("")
                .is_empty()
        {
            errors.push(FieldError::new(
                "uscc",
                "identifier_required",
                "either uscc (统一社会信用代码) or license_no (许可证/备案编号) is required",
            ));
        }

        let category = match self
            .category
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => {
                errors.push(FieldError::new(
                    "category",
                    "required",
                    "category is required",
                ));
                None
            }
            Some(s) => {
                let c = Category::parse(s);
                if c.is_none() {
                    errors.push(FieldError::new(
                        "category",
                        "unknown_category",
                        format!("unknown category {s:?}; expected one of the codes or 业态 labels in the API spec"),
                    ));
                }
                c
            }
        };
        let risk_grade = match self
            .risk_grade
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => {
                errors.push(FieldError::new(
                    "risk_grade",
                    "required",
                    "risk_grade is required",
                ));
                None
            }
            Some(s) => {
                let g = RiskGrade::parse(s);
                if g.is_none() {
                    errors.push(FieldError::new(
                        "risk_grade",
                        "invalid_risk_grade",
                        format!("risk grade {s:?} is not one of A, B, C, D"),
                    ));
                }
                g
            }
        };
        let quant_grade = match self
            .quant_grade
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => {
                let g = QuantGrade::parse(s);
                if g.is_none() {
                    errors.push(FieldError::new(
                        "quant_grade",
                        "invalid_quant_grade",
                        format!("quantified grade {s:?} is not one of A, B, C"),
                    ));
                }
                g
            }
        };
        let status = match self
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Some(EstablishmentStatus::Open),
            Some(s) => {
                let st = EstablishmentStatus::parse(s);
                if st.is_none() {
                    errors.push(FieldError::new(
                        "status",
                        "invalid_status",
                        format!("status {s:?} is not one of open, suspended, closed"),
                    ));
                }
                st
            }
        };
        let contact_name = optional("contact_name", &self.contact_name, &mut errors);
        let contact_phone = optional("contact_phone", &self.contact_phone, &mut errors);
        if let Some(p) = &contact_phone {
            if !codes::is_plausible_phone(p) {
                errors.push(FieldError::new(
                    "contact_phone",
                    "invalid_phone",
                    format!("contact phone {p:?} is not a phone number"),
                ));
            }
        }

        let location = match (self.lng, self.lat) {
            (None, None) => None,
            (Some(lng), Some(lat)) => {
                let crs = match self.crs.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    // Without a stated system we cannot know the offset; refusing beats guessing.
                    None => {
                        errors.push(FieldError::new(
                            "crs",
                            "required",
                            "crs (wgs84, gcj02 or bd09) is required with a location",
                        ));
                        None
                    }
                    Some(s) => match s.parse::<Crs>() {
                        Ok(c) => Some(c),
                        Err(_) => {
                            errors.push(FieldError::new(
                                "crs",
                                "unknown_crs",
                                format!("coordinate system {s:?} is not one of wgs84, gcj02, bd09"),
                            ));
                            None
                        }
                    },
                };
                match crs.map(|crs| Location::new(lng, lat, crs)) {
                    Some(Ok(loc)) => Some(loc),
                    Some(Err(e)) => {
                        errors.push(FieldError::new(
                            "location",
                            "invalid_coordinates",
                            e.to_string(),
                        ));
                        None
                    }
                    None => None,
                }
            }
            _ => {
                errors.push(FieldError::new(
                    "location",
                    "incomplete_location",
                    "lng and lat must be given together",
                ));
                None
            }
        };

        if !errors.is_empty() {
            return Err(errors);
        }
        // Stored as given (it is what the shop's sign says), but every spreadsheet export
        // neutralises it (`export::cell`); the importer is told now.
        for (field, v) in [
            ("sign_name", Some(&sign_name)),
            ("licensed_name", Some(&licensed_name)),
            ("address", Some(&address)),
            ("town", Some(&town)),
            ("contact_name", contact_name.as_ref()),
            ("contact_phone", contact_phone.as_ref()),
        ] {
            if v.is_some_and(|v| crate::export::cell::is_formula_like(v)) {
                warnings.push(Warning {
                    field: field.into(),
                    code: "formula_like".into(),
                    message: format!(
                        "{field} begins with =, +, - or @: a spreadsheet could run it as a formula; exports write it as text"
                    ),
                });
            }
        }
        Ok((
            EstablishmentInput {
                sign_name,
                licensed_name,
                uscc,
                license_no,
                category: category.expect("checked above"),
                address,
                town,
                risk_grade: risk_grade.expect("checked above"),
                quant_grade,
                status: status.expect("checked above"),
                contact_name,
                contact_phone,
                location,
            },
            warnings,
        ))
    }
}
