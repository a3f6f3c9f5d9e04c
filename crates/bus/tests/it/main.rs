//! Integration tests of `csp-bus`: one suite (`suite.rs`) run against every
//! adapter, directly and through `FanoutBus`, plus each adapter's own
//! behaviour; and the same for the work queue (`queue_suite.rs`) and its worker loop
//! (`worker_suite.rs`).

mod fanout;
mod helpers;
mod inprocess;
mod nats;
mod queue_inprocess;
mod queue_nats;
mod queue_suite;
mod suite;
mod worker_suite;
