//! Who a request is from, once [`crate::auth`] has established it: the
//! user with their current role, and how their token arrived. A module of
//! its own so that the handlers' state (`state.rs`, which speaks for a
//! user towards other services) and the access check (`auth.rs`, which
//! reads that state) both depend on it rather than on each other.

use csp_domain::{Role, UserId};

/// How the token arrived. Cookies ride along on cross-site requests, so a
/// cookie-authenticated WebSocket must also pass the Origin check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Cookie,
    Bearer,
}

/// The authenticated user of a request, with their current role.
#[derive(Debug, Clone)]
pub(crate) struct AuthUser {
    pub(crate) id: UserId,
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) via: Via,
}
