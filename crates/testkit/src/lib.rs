//! What every crate's tests share; a dev-dependency only, never linked
//! into the `csp` binary.
//!
//! Owns: the settings of property tests, so that all of them are
//! repeatable in CI the same way.

use proptest::test_runner::{Config, RngSeed};

/// The seed every property test starts from (unless `PROPTEST_RNG_SEED`
/// says otherwise).
pub const SEED: u64 = 0x00c5_9017;

/// Property tests' settings: `cases` cases from a fixed seed (unless
/// `PROPTEST_CASES` or `PROPTEST_RNG_SEED` say otherwise, to explore
/// further), no regression files: a failure found becomes a named unit
/// test beside the code, so CI runs the same cases every time.
pub fn proptest_config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config.failure_persistence = None;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_seed_and_no_regression_files() {
        let config = proptest_config(7);
        if std::env::var_os("PROPTEST_CASES").is_none() {
            assert_eq!(config.cases, 7);
        }
        if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
            assert_eq!(config.rng_seed, RngSeed::Fixed(SEED));
        }
        assert!(config.failure_persistence.is_none());
    }
}
