//! One test binary: the shared cache suite run against every adapter, plus
//! each adapter's own behaviour (key layout, connecting, errors).

mod helpers;
#[macro_use]
mod suite;
mod memory;
mod redis;
