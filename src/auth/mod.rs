//! Accounts, roles, passwords and tokens: the pure parts (no database access).

pub mod password;
pub mod session;
pub mod token;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do. One role per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, establishments, checklists and plans.
    Admin,
    /// Food-safety section (餐饮监管科): reviews findings and publishes lists.
    Reviewer,
    /// Field officer (执法人员) with a badge number.
    Inspector,
    /// Testing institution (检验机构): receives samples and reports results.
    Lab,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Inspector => "inspector",
            Role::Lab => "lab",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "reviewer" => Ok(Role::Reviewer),
            "inspector" => Ok(Role::Inspector),
            "lab" => Ok(Role::Lab),
            other => Err(format!(
                "unknown role {other:?}; expected admin, reviewer, inspector or lab"
            )),
        }
    }
}

/// A username: 3–64 characters of ASCII letters, digits, `.`, `_`, `-`. Stored lower-case so
/// `Zhang.San` and `zhang.san` cannot both exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, String> {
        let s = s.trim();
        if !(3..=64).contains(&s.len()) {
            return Err("username must be 3 to 64 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("username may contain only ASCII letters, digits, '.', '_' and '-'".into());
        }
        Ok(Username(s.to_ascii_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device identifier as sent by a client at login (the app's installation id). Refresh
/// tokens are bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(s: &str) -> Result<DeviceId, String> {
        let s = s.trim();
        if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
            return Err("device_id must be 1 to 128 printable characters".into());
        }
        Ok(DeviceId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account as the rest of the program sees it. The password hash is not part of it: only
/// login reads it (`store::users::credentials`), so no view, log line or audit event can carry
/// it by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    pub badge_no: Option<String>,
    pub phone: Option<String>,
    pub disabled: bool,
    /// Access tokens issued before this (Unix ms) are refused. Bookkeeping, not a field
    /// anyone edits, so it stays out of audit diffs.
    #[serde(skip)]
    pub tokens_not_before: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// A new account's fields, checked: the same rules for the API, the CLI and seed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: Username,
    pub name: String,
    pub role: Role,
    pub badge_no: Option<String>,
    pub phone: Option<String>,
}

/// Longest full name, badge number and phone number, in characters.
const MAX_NAME_CHARS: usize = 100;
const MAX_BADGE_CHARS: usize = 64;
const MAX_PHONE_CHARS: usize = 32;

impl NewUser {
    /// Trims every field; an empty badge number or phone counts as none. Inspectors need a
    /// badge number (执法证号).
    pub fn parse(
        username: &str,
        role: Role,
        name: &str,
        badge_no: Option<&str>,
        phone: Option<&str>,
    ) -> Result<NewUser, String> {
        let username = Username::parse(username)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("name must be 1 to {MAX_NAME_CHARS} characters"));
        }
        let optional = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let badge_no = optional(badge_no);
        let phone = optional(phone);
        if badge_no
            .as_ref()
            .is_some_and(|b| b.chars().count() > MAX_BADGE_CHARS)
        {
            return Err(format!(
                "badge_no must be at most {MAX_BADGE_CHARS} characters"
            ));
        }
        if phone
            .as_ref()
            .is_some_and(|p| p.chars().count() > MAX_PHONE_CHARS)
        {
            return Err(format!(
                "phone must be at most {MAX_PHONE_CHARS} characters"
            ));
        }
        if role == Role::Inspector && badge_no.is_none() {
            return Err("inspectors need a badge_no (执法证号)".into());
        }
        Ok(NewUser {
            username,
            name: name.to_owned(),
            role,
            badge_no,
            phone,
        })
    }
}

/// Passwords: at least 10 characters, at most 256 (argon2 input stays bounded).
pub fn check_password_policy(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if n < 10 {
        return Err("password must be at least 10 characters".into());
    }
    if n > 256 {
        return Err("password must be at most 256 characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            Username::parse(" Zhang.San ").unwrap().as_str(),
            "zhang.san"
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("张三").is_err());
        assert!(Username::parse("a b c").is_err());
    }

    #[test]
    fn new_users_are_trimmed_and_checked() {
        let u = NewUser::parse(
            " Li.Si ",
            Role::Inspector,
            " 李四 ",
            Some(" 1201 "),
            Some(" "),
        )
        .unwrap();
        assert_eq!(u.username.as_str(), "li.si");
        assert_eq!(u.name, "李四");
        assert_eq!(u.badge_no.as_deref(), Some("1201"));
        assert_eq!(u.phone, None);
        assert!(NewUser::parse("li.si", Role::Inspector, "李四", Some("  "), None).is_err());
        assert!(NewUser::parse("li.si", Role::Lab, " ", None, None).is_err());
        assert!(NewUser::parse("li.si", Role::Lab, &"名".repeat(101), None, None).is_err());
        assert!(NewUser::parse("li.si", Role::Lab, "x", None, Some(&"1".repeat(33))).is_err());
        assert!(NewUser::parse("li.si", Role::Lab, "检验所", None, None).is_ok());
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Admin, Role::Reviewer, Role::Inspector, Role::Lab] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
