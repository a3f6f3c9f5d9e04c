//! Property tests of the two checks csp-auth runs on what a caller presents:
//! HMAC-SHA256 signatures ([`verify_hmac_sha256_hex`], [`constant_time_eq`])
//! and HS256 tokens ([`Tokens::verify`]). A correct one always passes; any
//! one byte changed, another key, or anything else never does, and a refused
//! token says why in a word without quoting it.
//!
//! Deterministic: a fixed seed (unless `PROPTEST_RNG_SEED` is set) and a
//! fixed number of cases (unless `PROPTEST_CASES` is); no regression files —
//! a failure found here becomes a named unit test beside the code it fixes.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use csp_auth::{Error, Tokens, constant_time_eq, hmac_sha256, verify_hmac_sha256_hex};
use csp_domain::{Role, UserId};
use proptest::prelude::*;
use proptest::sample::Index;
use secrecy::SecretString;
use serde_json::json;

// `cases` cases from a fixed seed, nothing written to disk.
use csp_testkit::proptest_config as config;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text` with byte `i` (modulo its length) replaced by `b`, if that is
/// still text and another value than before (hex is read in either case).
fn replace_byte(text: &str, i: Index, b: u8) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    let i = i.index(bytes.len());
    let old = bytes[i];
    if old == b || old.eq_ignore_ascii_case(&b) && old.is_ascii_hexdigit() && b.is_ascii_hexdigit()
    {
        return None;
    }
    bytes[i] = b;
    String::from_utf8(bytes).ok()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_correct_hmac_verifies_in_either_case(
        key in prop::collection::vec(any::<u8>(), 0..200),
        msg in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let sig = hex(&hmac_sha256(&key, &msg));
        prop_assert!(verify_hmac_sha256_hex(&key, &msg, &sig));
        prop_assert!(verify_hmac_sha256_hex(&key, &msg, &sig.to_ascii_uppercase()));
    }

    #[test]
    fn a_changed_message_key_or_signature_byte_never_verifies(
        key in prop::collection::vec(any::<u8>(), 1..200),
        msg in prop::collection::vec(any::<u8>(), 1..600),
        i in any::<Index>(),
        flip in 1u8..=255,
        b in any::<u8>(),
    ) {
        let sig = hex(&hmac_sha256(&key, &msg));
        let mut other_msg = msg.clone();
        other_msg[i.index(msg.len())] ^= flip;
        prop_assert!(!verify_hmac_sha256_hex(&key, &other_msg, &sig));
        let mut other_key = key.clone();
        other_key[i.index(key.len())] ^= flip;
        prop_assert!(!verify_hmac_sha256_hex(&other_key, &msg, &sig));
        if let Some(other_sig) = replace_byte(&sig, i, b) {
            prop_assert!(!verify_hmac_sha256_hex(&key, &msg, &other_sig));
        }
    }

    #[test]
    fn arbitrary_signatures_never_verify(
        key in prop::collection::vec(any::<u8>(), 0..64),
        msg in prop::collection::vec(any::<u8>(), 0..64),
        sig in prop_oneof!["\\PC{0,80}", "[0-9a-fA-F]{62,66}", "[^0-9a-f]{64}"],
    ) {
        prop_assert!(!verify_hmac_sha256_hex(&key, &msg, &sig));
    }

    #[test]
    fn constant_time_eq_is_equality(
        a in prop::collection::vec(any::<u8>(), 0..40),
        b in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        prop_assert!(constant_time_eq(&a, &a));
        prop_assert_eq!(constant_time_eq(&a, &b), a == b);
    }
}

// ------------------------------------------------------------------ tokens

fn secret() -> impl Strategy<Value = String> {
    "[!-~]{32,80}"
}

fn tokens(secret: &str) -> Tokens {
    Tokens::new(
        &SecretString::from(secret.to_owned()),
        Duration::from_secs(3600),
    )
    .unwrap()
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![Role::Admin, Role::Operator, Role::User])
}

/// A refused token: `invalid token: <why>`, the reason one short phrase
/// that never quotes the token.
fn check_refused(
    result: Result<csp_auth::Claims, Error>,
    token: &str,
) -> Result<String, TestCaseError> {
    match result {
        Err(Error::InvalidToken(why)) => {
            prop_assert!(!why.trim().is_empty());
            prop_assert!(why.len() <= 40, "{why}");
            let message = Error::InvalidToken(why.clone()).to_string();
            prop_assert!(message.starts_with("invalid token: "));
            if token.len() >= 8 {
                prop_assert!(!message.contains(token), "{message}");
            }
            Ok(why)
        }
        other => Err(TestCaseError::fail(format!("{token:?} gave {other:?}"))),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn an_issued_token_verifies_and_round_trips(
        secret in secret(),
        user in any::<u128>(),
        name in "\\PC{0,60}",
        role in role(),
    ) {
        let tokens = tokens(&secret);
        let (token, claims) =
            tokens.issue(UserId(uuid::Uuid::from_u128(user)), &name, role).unwrap();
        prop_assert_eq!(tokens.verify(&token).unwrap(), claims);
    }

    #[test]
    fn any_changed_token_byte_is_refused(
        secret in secret(),
        name in "[a-z]{1,20}",
        i in any::<Index>(),
        b in any::<u8>(),
    ) {
        let tokens = tokens(&secret);
        let (token, _) = tokens.issue(UserId::new(), &name, Role::Admin).unwrap();
        let mut bytes = token.clone().into_bytes();
        let at = i.index(bytes.len());
        if bytes[at] == b {
            return Ok(());
        }
        bytes[at] = b;
        let Ok(changed) = String::from_utf8(bytes) else {
            return Ok(());
        };
        check_refused(tokens.verify(&changed), &changed)?;
    }

    #[test]
    fn a_token_of_another_secret_is_refused(a in secret(), b in secret()) {
        prop_assume!(a != b);
        let (token, _) = tokens(&a).issue(UserId::new(), "eve", Role::Admin).unwrap();
        let why = check_refused(tokens(&b).verify(&token), &token)?;
        prop_assert_eq!(why, "bad signature");
    }

    #[test]
    fn arbitrary_text_is_refused(token in prop_oneof![
        "\\PC{0,200}",
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
        "[A-Za-z0-9_.=+/-]{0,120}",
    ]) {
        check_refused(tokens(&"k".repeat(32)).verify(&token), &token)?;
    }

    #[test]
    fn forged_headers_and_claims_are_refused(
        alg in prop::sample::select(vec!["none", "None", "HS384", "HS512", "RS256", "ES256", "", "hs256"]),
        claims in prop_oneof![
            Just(json!({"sub": "00000000-0000-0000-0000-000000000000", "name": "x",
                        "role": "admin", "iat": 0, "exp": 99_999_999_999i64})),
            Just(json!({"sub": 1, "role": ["admin"], "exp": "never"})),
            Just(json!([])),
            Just(json!("admin")),
        ],
        sig in "[A-Za-z0-9_-]{0,50}",
    ) {
        let secret = "k".repeat(32);
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        // Unsigned, randomly signed, and signed right under another algorithm's name.
        let right = URL_SAFE_NO_PAD.encode(hmac_sha256(
            secret.as_bytes(),
            format!("{header}.{payload}").as_bytes(),
        ));
        for s in ["", sig.as_str(), right.as_str()] {
            let token = format!("{header}.{payload}.{s}");
            check_refused(tokens(&secret).verify(&token), &token)?;
        }
    }
}
