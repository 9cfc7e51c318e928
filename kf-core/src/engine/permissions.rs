//! Who may do what beyond their own conversations: the one check every admin and supervisor operation makes.

use super::RequestError;
use crate::auth::{Identity, Principal, Role};
use crate::model::AgentId;

/// Checks that `identity` is an agent of at least role `minimum` and returns its agent id; anything else is
/// [`RequestError::Forbidden`] (`forbidden` on the wire, 403 over HTTP). The tenant is the identity's own: an
/// operation looks its objects up in `identity.tenant` only, so another tenant's objects are not found.
///
/// ```
/// use kf_core::auth::{Identity, Role};
/// use kf_core::engine::require_role;
/// use kf_core::model::TenantId;
///
/// let shop = TenantId::new("shop").unwrap();
/// let boss = Identity::agent(shop.clone(), "boss".parse().unwrap()).with_role(Role::Admin);
/// assert!(require_role(&boss, Role::Supervisor).is_ok());
/// let alice = Identity::agent(shop, "alice".parse().unwrap());
/// assert!(require_role(&alice, Role::Supervisor).is_err());
/// ```
pub fn require_role(identity: &Identity, minimum: Role) -> Result<&AgentId, RequestError> {
    match &identity.principal {
        Principal::Agent(agent) if identity.role >= minimum => Ok(agent),
        Principal::Agent(_) => Err(RequestError::Forbidden(format!(
            "this needs the {minimum} role (you are {})",
            identity.role
        ))),
        Principal::Visitor(_) => Err(RequestError::Forbidden(format!(
            "this needs an agent of the {minimum} role"
        ))),
    }
}

/// Whether `identity` may read every conversation of its tenant (supervisors and admins).
pub(crate) fn reads_whole_tenant(identity: &Identity) -> bool {
    matches!(identity.principal, Principal::Agent(_)) && identity.role >= Role::Supervisor
}
