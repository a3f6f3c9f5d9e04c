//! One test binary: the shared store suite run against every adapter, plus
//! each adapter's own behaviour (connecting, files, errors).

mod helpers;
#[macro_use]
mod suite;
mod postgres;
mod sqlite;
