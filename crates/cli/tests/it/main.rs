//! Integration tests of the `csp` binary's offline tools.

mod helpers;
mod tickets_import;
