//! Role checks inside use cases, so the CLI, benches and every future edge get the same rules
//! as HTTP (whose extractors check first, for the documented 403s).

use super::{Ctx, Error, Result};
use crate::auth::Role;

/// 403 unless the actor is the system itself (CLI, background jobs) or a user with one of
/// `roles`.
pub fn require(ctx: &Ctx, roles: &[Role]) -> Result<()> {
    match (ctx.actor.user_id.as_deref(), ctx.actor.role) {
        (None, _) => Ok(()),
        (Some(_), Some(role)) if roles.contains(&role) => Ok(()),
        _ => Err(Error::forbidden("your role does not allow this operation")),
    }
}

/// The id recorded as the author of a row (`created_by`, `drawn_by`): the user, or `system`.
pub fn author(ctx: &Ctx) -> &str {
    ctx.user_id().unwrap_or("system")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;

    #[test]
    fn system_passes_and_users_need_a_listed_role() {
        assert!(require(&Ctx::system(), &[Role::Admin]).is_ok());
        let inspector = Ctx::new(Actor::user("u1", Role::Inspector, None), None);
        assert!(require(&inspector, &[Role::Inspector]).is_ok());
        assert!(matches!(
            require(&inspector, &[Role::Admin]),
            Err(Error::Forbidden(_))
        ));
        let roleless = Ctx::new(
            Actor {
                user_id: Some("u2".into()),
                ..Actor::default()
            },
            None,
        );
        assert!(require(&roleless, &[Role::Admin]).is_err());
        assert_eq!(author(&Ctx::system()), "system");
        assert_eq!(author(&inspector), "u1");
    }
}
