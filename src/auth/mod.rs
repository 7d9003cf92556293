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
    fn roles_round_trip() {
        for r in [Role::Admin, Role::Reviewer, Role::Inspector, Role::Lab] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
