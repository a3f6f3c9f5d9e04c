//! The worked signing example in docs/ticket-enhancement.md is what
//! `webhook::sign` computes and `verify_signature` accepts, so the docs
//! cannot drift from the code.

use csp_ticketing::webhook::{sign, verify_signature};
use std::time::{Duration, UNIX_EPOCH};

/// The value after `label` on its line of the doc, up to the closing backtick.
fn value_after<'d>(doc: &'d str, label: &str) -> &'d str {
    let start = doc
        .find(label)
        .unwrap_or_else(|| panic!("docs/ticket-enhancement.md lost {label:?}"))
        + label.len();
    let rest = &doc[start..];
    &rest[..rest.find('`').expect("closing backtick")]
}

#[test]
fn the_worked_signing_example_in_the_docs_is_right() {
    let doc = include_str!("../../../../docs/ticket-enhancement.md");
    let example = &doc[doc.find("### Worked example").expect("the worked example")..];
    let secret = value_after(example, "- webhook secret: `");
    let timestamp = value_after(example, "- `X-ServiceDesk-Timestamp: ");
    let body = value_after(example, "- body (exactly these bytes):\n  `");
    let signature = value_after(example, "- `X-ServiceDesk-Signature: ");

    let ts: i64 = timestamp.parse().expect("a unix timestamp");
    assert_eq!(sign(secret.as_bytes(), ts, body.as_bytes()), signature);
    let at = UNIX_EPOCH + Duration::from_secs(ts.unsigned_abs());
    verify_signature(
        &[secret.as_bytes()],
        Some(timestamp),
        Some(signature),
        body.as_bytes(),
        at,
    )
    .expect("the example verifies");
    // The shell snippet signs the same body with the same secret.
    assert!(example.contains(&format!("secret={secret}\n")));
    assert!(example.contains(&format!("body='{body}'\n")));
}
