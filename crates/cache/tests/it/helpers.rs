use csp_cache::Cache;

/// A cache under test and whatever it needs until the test ends.
pub(crate) trait Fixture {
    fn cache(&self) -> &dyn Cache;
}
