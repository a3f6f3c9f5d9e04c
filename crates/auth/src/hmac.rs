//! HMAC-SHA256 signing and verification, and comparing secrets in constant
//! time: how long a check takes never depends on where a presented value
//! first differs from the real one (only on lengths, which are not secret).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA256 of `msg` under `key` (any length; RFC 2104 hashes a key longer
/// than the block).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Whether `sig_hex` is the HMAC-SHA256 of `msg` under `key`, as hex
/// (either case). Anything else, malformed or of another length included,
/// is `false`; the comparison does not stop at the first differing byte.
pub fn verify_hmac_sha256_hex(key: &[u8], msg: &[u8], sig_hex: &str) -> bool {
    let expected = to_hex(&hmac_sha256(key, msg));
    // Lowercasing looks at each byte alone, so it leaks nothing about how
    // much of the signature is right.
    constant_time_eq(expected.as_bytes(), sig_hex.to_ascii_lowercase().as_bytes())
}

/// `a == b` in time that depends on the lengths only, never on the content.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `subtle` returns false for different lengths without reading either.
    a.ct_eq(b).into()
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 § 4.2 and § 4.3.
    const CASE_1_KEY: [u8; 20] = [0x0b; 20];
    const CASE_1_MSG: &[u8] = b"Hi There";
    const CASE_1_MAC: &str = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    const CASE_2_KEY: &[u8] = b"Jefe";
    const CASE_2_MSG: &[u8] = b"what do ya want for nothing?";
    const CASE_2_MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn rfc_4231_test_vectors() {
        assert_eq!(to_hex(&hmac_sha256(&CASE_1_KEY, CASE_1_MSG)), CASE_1_MAC);
        assert_eq!(to_hex(&hmac_sha256(CASE_2_KEY, CASE_2_MSG)), CASE_2_MAC);
        assert!(verify_hmac_sha256_hex(&CASE_1_KEY, CASE_1_MSG, CASE_1_MAC));
        assert!(verify_hmac_sha256_hex(CASE_2_KEY, CASE_2_MSG, CASE_2_MAC));
        assert!(verify_hmac_sha256_hex(
            CASE_2_KEY,
            CASE_2_MSG,
            &CASE_2_MAC.to_ascii_uppercase()
        ));
    }

    // RFC 4231 § 4.7: a key longer than SHA-256's block is hashed first.
    #[test]
    fn a_key_longer_than_the_block_works() {
        let key = [0xaa; 131];
        let msg = b"This is a test using a larger than block-size key and a larger than \
                    block-size data. The key needs to be hashed before being used by the HMAC \
                    algorithm.";
        assert_eq!(
            to_hex(&hmac_sha256(&key, msg)),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        );
    }

    #[test]
    fn wrong_signatures_are_refused() {
        let mut last_wrong = CASE_2_MAC.to_owned();
        last_wrong.replace_range(63.., "4");
        let mut first_wrong = CASE_2_MAC.to_owned();
        first_wrong.replace_range(..1, "6");
        for sig in [
            last_wrong.as_str(),
            first_wrong.as_str(),
            CASE_1_MAC,                 // another message's
            &CASE_2_MAC[..62],          // shorter
            &format!("{CASE_2_MAC}00"), // longer
            "",
            &"zz".repeat(32), // not hex
        ] {
            assert!(
                !verify_hmac_sha256_hex(CASE_2_KEY, CASE_2_MSG, sig),
                "{sig}"
            );
        }
        // The right signature under another key or for another message.
        assert!(!verify_hmac_sha256_hex(b"Jeff", CASE_2_MSG, CASE_2_MAC));
        assert!(!verify_hmac_sha256_hex(
            CASE_2_KEY,
            b"what do ya want for nothing!",
            CASE_2_MAC
        ));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
        assert!(!constant_time_eq(b"token", b"token2"));
        assert!(!constant_time_eq(b"token", b""));
    }
}
