//! JSON Schema pieces that the manifest check (`validate.rs`, which checks
//! a `config_schema`) and the config check (`config.rs`, which checks a
//! config against it) share: compiling a schema, and naming the field an
//! error is about. Both depend on this module, never on each other.

use serde_json::Value;

/// A validator for a config schema. No remote `$ref`s: the crate is built
/// without jsonschema's HTTP and file retrievers, so a schema cannot make
/// csp fetch anything.
pub(crate) fn compile(
    schema: &Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
}

/// A jsonschema instance location as a field path suffix: `.a[0].b`.
pub(crate) fn dotted(location: &jsonschema::paths::Location) -> String {
    use jsonschema::paths::LocationSegment;
    location
        .iter()
        .map(|seg| match seg {
            LocationSegment::Property(p) => format!(".{p}"),
            LocationSegment::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// `key` under `parent` as a dotted field path (`parent.key`, or `key` at
/// the top).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}
