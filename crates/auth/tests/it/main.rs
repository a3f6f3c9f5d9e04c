//! Integration tests of csp-auth: what it is handed from outside (tokens,
//! signatures) checked with property tests.

mod properties;
