//! Integration tests of `csp-bus`: one suite (`suite.rs`) run against every
//! adapter, plus each adapter's own behaviour.

mod helpers;
mod inprocess;
mod nats;
mod suite;
