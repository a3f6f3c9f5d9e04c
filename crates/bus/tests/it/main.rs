//! Integration tests of `csp-bus`: one suite (`suite.rs`) run against every
//! adapter, directly and through `FanoutBus`, plus each adapter's own
//! behaviour.

mod fanout;
mod helpers;
mod inprocess;
mod nats;
mod suite;
