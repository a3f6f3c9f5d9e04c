//! Secret values at rest (plugins' secret config fields, tenants' credentials:
//! whatever csp-store keeps as sealed secrets of an owner): Fernet tokens under
//! a key from configuration, readable and writable by Python's
//! `cryptography.fernet` with the same key.
//!
//! Owns: parsing a Fernet key ([`SecretKey`]), the key version that is stored
//! beside every token, and the [`Keyring`] that seals under the current key
//! and still opens what older keys sealed, so a key can be rotated; keys
//! derived from the configured ones for other purposes ([`DerivedKey`]: the
//! signing key of technicians' feedback links), one per key of the ring.
//!
//! Must never: print a key or a plaintext (keys show only their version;
//! errors never quote their input), store anything (csp-store keeps the
//! tokens), or decide which values are secret (plugin manifests and the
//! owners' own code do).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac as _};
use secrecy::zeroize::{Zeroize as _, Zeroizing};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::fmt::Write as _;

/// Raw bytes in a Fernet key: a 16-byte signing key, then a 16-byte
/// encryption key.
const KEY_BYTES: usize = 32;

/// Hex characters of SHA-256 that make a key version: 64 bits tell keys
/// apart and give nothing useful about the key away.
const VERSION_HEX: usize = 16;

/// Url-safe base64 with or without the trailing `=`: Python's
/// `Fernet.generate_key()` prints it padded, and a key copied without the
/// `=` is still unambiguous.
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret could not be sealed or opened. No message carries a
/// plaintext, a token or key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key text is not a Fernet key; the message says what is wrong with
    /// it without quoting it.
    #[error("invalid secret key: {0}")]
    BadKey(String),
    /// The token names a key version that is neither the current key nor a
    /// previous one: the key that sealed it is no longer configured.
    #[error(
        "secret is sealed under key version {0}, which is neither the current key \
         nor a previous key"
    )]
    UnknownKeyVersion(String),
    /// The token does not verify under the key its version names (altered,
    /// truncated, or not a Fernet token), or its plaintext is not UTF-8.
    #[error("secret token is invalid: it does not verify under its key")]
    Invalid,
}

/// A Fernet key: url-safe base64 of 32 random bytes, as Python's
/// `Fernet.generate_key()` makes. Its `Debug` shows only its version and
/// it has no `Display`, so it cannot end up in a log by accident.
#[derive(Clone)]
pub struct SecretKey {
    /// Zeroes its key bytes on drop.
    fernet: fernet::Fernet,
    /// The raw key, for [`SecretKey::derive`] only (the fernet crate does
    /// not hand its bytes back); zeroed on drop.
    raw: Zeroizing<[u8; KEY_BYTES]>,
    version: String,
}

impl SecretKey {
    /// Parses the key text, ignoring surrounding whitespace (a trailing
    /// newline from a file or `echo`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::BadKey(
                "it is empty; a Fernet key is url-safe base64 of 32 bytes (44 characters)".into(),
            ));
        }
        let bytes = URL_SAFE_ANY_PADDING
            .decode(text)
            .map(Zeroizing::new)
            .map_err(|_| {
                let hint = if text.contains(['+', '/']) {
                    " (it contains '+' or '/': standard base64, where url-safe uses '-' and '_')"
                } else {
                    ""
                };
                Error::BadKey(format!(
                    "it is not url-safe base64 of 32 bytes (44 characters){hint}"
                ))
            })?;
        if bytes.len() != KEY_BYTES {
            return Err(Error::BadKey(format!(
                "it decodes to {} bytes; a Fernet key is 32 bytes (44 characters of \
                 url-safe base64)",
                bytes.len()
            )));
        }
        // Re-encoded in the one form the fernet crate is sure to accept.
        let canonical = Zeroizing::new(base64::engine::general_purpose::URL_SAFE.encode(&*bytes));
        let fernet = fernet::Fernet::new(&canonical)
            .ok_or_else(|| Error::BadKey("the Fernet implementation refused it".into()))?;
        let mut raw = Zeroizing::new([0u8; KEY_BYTES]);
        raw.copy_from_slice(&bytes);
        Ok(Self {
            fernet,
            raw,
            version: version_of(&bytes),
        })
    }

    /// A key for `purpose`, independent of this one and of every other
    /// purpose's: HMAC-SHA256 under the 32 raw key bytes of the purpose's
    /// name. Knowing it reveals nothing of the key (or of what it seals).
    pub fn derive(&self, purpose: &str) -> DerivedKey {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.raw)
            .expect("HMAC accepts keys of any length");
        mac.update(purpose.as_bytes());
        DerivedKey(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    /// A new random key and its text (what `CSP_SECRET_KEY` should hold).
    pub fn generate() -> (Self, SecretString) {
        let text = Zeroizing::new(fernet::Fernet::generate_key());
        let key = Self::parse(&text).expect("the fernet crate generates valid keys");
        (key, SecretString::from(text.as_str()))
    }

    /// First 16 hex characters of SHA-256 of the 32 raw key bytes; stored
    /// beside every token so that opening picks the right key and rotation
    /// finds what is not under the current one.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn version_of(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    let mut hex = String::with_capacity(VERSION_HEX);
    for byte in &digest[..VERSION_HEX / 2] {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

/// A key derived from a [`SecretKey`] for one purpose ([`SecretKey::derive`],
/// [`Keyring::derive`]). Zeroed on drop; its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct DerivedKey(Zeroizing<[u8; 32]>);

impl DerivedKey {
    /// The key bytes, for the one MAC they key.
    pub fn expose(&self) -> &[u8] {
        &self.0[..]
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey([REDACTED])")
    }
}

/// A secret as stored: its Fernet token and the version of the key that
/// sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub token: String,
    pub key_version: String,
}

/// The current key, which seals, and the previous keys, which are only
/// accepted for opening while a rotation re-seals what they sealed.
#[derive(Clone)]
pub struct Keyring {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl Keyring {
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        Self { current, previous }
    }

    pub fn current_version(&self) -> &str {
        self.current.version()
    }

    /// Encrypts under the current key.
    pub fn seal(&self, plaintext: &str) -> Sealed {
        Sealed {
            token: self.current.fernet.encrypt(plaintext.as_bytes()),
            key_version: self.current.version.clone(),
        }
    }

    /// Decrypts with the key that `sealed.key_version` names: one HMAC check
    /// instead of trying every key, and a clear error when that key is gone.
    pub fn open(&self, sealed: &Sealed) -> Result<SecretString, Error> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.version == sealed.key_version)
            .ok_or_else(|| Error::UnknownKeyVersion(sealed.key_version.clone()))?;
        let bytes = key
            .fernet
            .decrypt(&sealed.token)
            .map_err(|_| Error::Invalid)?;
        match String::from_utf8(bytes) {
            // Copied into an exactly sized box: converting the String itself
            // could reallocate and free a copy of the plaintext unzeroed.
            Ok(text) => Ok(SecretString::from(Zeroizing::new(text).as_str())),
            Err(not_utf8) => {
                not_utf8.into_bytes().zeroize();
                Err(Error::Invalid)
            }
        }
    }

    /// The keys for `purpose` derived from every key of the ring, the
    /// current key's first: sign with the first, accept any (so what was
    /// signed before a rotation still verifies while the previous key is
    /// configured).
    pub fn derive(&self, purpose: &str) -> Vec<DerivedKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| key.derive(purpose))
            .collect()
    }

    /// `sealed` sealed again under the current key, or `None` when it is
    /// under the current key already (so a rotation that is run twice
    /// rewrites nothing the second time).
    pub fn reseal(&self, sealed: &Sealed) -> Result<Option<Sealed>, Error> {
        if sealed.key_version == self.current.version {
            return Ok(None);
        }
        let plaintext = self.open(sealed)?;
        Ok(Some(self.seal(plaintext.expose_secret())))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(SecretKey::version).collect();
        f.debug_struct("Keyring")
            .field("current", &self.current.version)
            .field("previous", &previous)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE;

    fn key() -> SecretKey {
        SecretKey::generate().0
    }

    fn ring(current: &SecretKey, previous: &[&SecretKey]) -> Keyring {
        Keyring::new(
            current.clone(),
            previous.iter().map(|key| (*key).clone()).collect(),
        )
    }

    #[test]
    fn seal_and_open_round_trip() {
        let ring = ring(&key(), &[]);
        for plaintext in [
            "",
            "xoxb-1234-token",
            "pässwörd 🔑 with spaces\nand a newline",
        ] {
            let sealed = ring.seal(plaintext);
            assert_eq!(sealed.key_version, ring.current_version());
            assert!(!sealed.token.contains(plaintext) || plaintext.is_empty());
            assert_eq!(ring.open(&sealed).unwrap().expose_secret(), plaintext);
        }
    }

    #[test]
    fn sealing_twice_gives_different_tokens() {
        let ring = ring(&key(), &[]);
        assert_ne!(ring.seal("same").token, ring.seal("same").token);
    }

    #[test]
    fn an_altered_token_is_invalid() {
        let ring = ring(&key(), &[]);
        let sealed = ring.seal("xoxb-1234-token");
        let mut bytes = URL_SAFE.decode(&sealed.token).unwrap();
        // Header (1), timestamp (8), IV (16), then ciphertext.
        bytes[30] ^= 0x01;
        let altered = Sealed {
            token: URL_SAFE.encode(&bytes),
            ..sealed.clone()
        };
        assert!(matches!(ring.open(&altered), Err(Error::Invalid)));
        let truncated = Sealed {
            token: sealed.token[..sealed.token.len() - 8].to_owned(),
            ..sealed.clone()
        };
        assert!(matches!(ring.open(&truncated), Err(Error::Invalid)));
        let garbage = Sealed {
            token: "not a token".to_owned(),
            ..sealed
        };
        assert!(matches!(ring.open(&garbage), Err(Error::Invalid)));
    }

    #[test]
    fn a_token_of_another_key_with_a_forged_version_is_invalid() {
        let (a, b) = (key(), key());
        let mut sealed = ring(&a, &[]).seal("secret");
        sealed.key_version = b.version().to_owned();
        assert!(matches!(ring(&b, &[]).open(&sealed), Err(Error::Invalid)));
    }

    #[test]
    fn an_unknown_key_version_is_named() {
        let (a, b) = (key(), key());
        let sealed = ring(&a, &[]).seal("secret");
        match ring(&b, &[]).open(&sealed) {
            Err(Error::UnknownKeyVersion(version)) => assert_eq!(version, a.version()),
            other => panic!("expected UnknownKeyVersion, got {other:?}"),
        }
    }

    #[test]
    fn previous_keys_open_and_reseal_moves_to_the_current_key() {
        let (a, b) = (key(), key());
        let old = ring(&a, &[]).seal("secret");
        let rotated = ring(&b, &[&a]);
        assert_eq!(rotated.open(&old).unwrap().expose_secret(), "secret");

        let new = rotated.reseal(&old).unwrap().expect("under a previous key");
        assert_eq!(new.key_version, b.version());
        assert_eq!(ring(&b, &[]).open(&new).unwrap().expose_secret(), "secret");
        assert_eq!(rotated.reseal(&new).unwrap(), None);

        let forgotten = ring(&b, &[]);
        assert!(matches!(
            forgotten.reseal(&old),
            Err(Error::UnknownKeyVersion(_))
        ));
    }

    #[test]
    fn version_is_sha256_prefix_of_the_raw_key() {
        // 32 zero bytes; sha256 = 66687aad f862bd77 6c8fc18b ...
        let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(
            SecretKey::parse(zeros).unwrap().version(),
            "66687aadf862bd77"
        );
    }

    #[test]
    fn parse_trims_and_accepts_missing_padding() {
        let (key, text) = SecretKey::generate();
        let text = text.expose_secret();
        assert_eq!(text.len(), 44);
        let padded = format!("  {text}\n");
        let unpadded = text.trim_end_matches('=');
        for variant in [text, padded.as_str(), unpadded] {
            assert_eq!(SecretKey::parse(variant).unwrap().version(), key.version());
        }
    }

    #[test]
    fn bad_keys_are_explained_without_quoting_them() {
        let sixteen_bytes = URL_SAFE.encode([7u8; 16]);
        let standard_base64 = "+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/8=";
        let cases = [
            ("", "empty"),
            ("   \n", "empty"),
            ("correct horse battery staple", "not url-safe base64"),
            (sixteen_bytes.as_str(), "decodes to 16 bytes"),
            (standard_base64, "'+' or '/'"),
        ];
        for (text, expected) in cases {
            let err = SecretKey::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, Error::BadKey(_)), "{text:?}: {err:?}");
            assert!(message.contains(expected), "{text:?}: {message}");
            if !text.trim().is_empty() {
                assert!(!message.contains(text.trim()), "{message}");
                assert!(!format!("{err:?}").contains(text.trim()), "{err:?}");
            }
        }
    }

    #[test]
    fn derived_keys_are_hmac_of_the_purpose_per_key() {
        // HMAC-SHA256(raw key, purpose), as Python's hmac computes it.
        let known = SecretKey::parse("9Ovzd5TFSI0cLzNvDKm1EiBDkbaoY9aQJk4ziRe0J4c=").unwrap();
        let hex: String = known
            .derive("csp feedback links v1")
            .expose()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "a259035dfeee70534f2dd0bc9c1a79b61dff904cfed8467fc5257cdd5bd58a2b"
        );
        let (a, b) = (key(), key());
        assert_eq!(a.derive("x").expose(), a.derive("x").expose());
        assert_ne!(a.derive("x").expose(), a.derive("y").expose());
        assert_ne!(a.derive("x").expose(), b.derive("x").expose());
        // The ring: the current key's first, then the previous ones'.
        let derived = ring(&b, &[&a]).derive("x");
        assert_eq!(derived.len(), 2);
        assert_eq!(derived[0].expose(), b.derive("x").expose());
        assert_eq!(derived[1].expose(), a.derive("x").expose());
        assert_eq!(format!("{:?}", derived[0]), "DerivedKey([REDACTED])");
    }

    #[test]
    fn debug_shows_versions_only() {
        let (a, a_text) = SecretKey::generate();
        let b = key();
        let ring = ring(&b, &[&a]);
        assert_eq!(
            format!("{a:?}"),
            format!("SecretKey {{ version: {:?}, .. }}", a.version())
        );
        assert_eq!(
            format!("{ring:?}"),
            format!(
                "Keyring {{ current: {:?}, previous: [{:?}] }}",
                b.version(),
                a.version()
            )
        );
        let text = a_text.expose_secret().trim_end_matches('=');
        assert!(!format!("{ring:#?}").contains(text));
    }
}
