//! One test binary: the shared store suite run against every adapter, plus
//! each adapter's own behaviour (connecting, files, errors), and secrets
//! sealed by csp-secrets as csp stores them.

mod helpers;
#[macro_use]
mod suite;
mod postgres;
mod sealed;
mod sqlite;
