//! The platform's own secrets in what agents say and tools print.
//!
//! [`redact_text`](crate::redact_text) recognises secrets by their shape; an
//! agent can still print csp's JWT secret or a database password that looks
//! like nothing in particular (`env`, `cat /proc/1/environ`, a config file).
//! [`KnownSecrets`] is the other half: the exact values csp holds, replaced
//! wherever they occur. The composition root fills it; the session-pool
//! applies it to every event before it is stored or published.

use crate::REDACTED;
use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Shorter values are not searched for: a 4-character password would turn
/// every occurrence of an ordinary word into `[REDACTED]`, and a value that
/// short is not kept secret by hiding it from output anyway.
pub const MIN_SECRET_LEN: usize = 8;

/// A set of exact secret values (plus their URL-encoded forms), replaced by
/// [`REDACTED`] wherever they appear. Cheap to clone. `Debug` shows how
/// many there are, never what.
#[derive(Clone, Default)]
pub struct KnownSecrets {
    matcher: Option<AhoCorasick>,
    secrets: Vec<String>,
}

impl fmt::Debug for KnownSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KnownSecrets")
            .field("count", &self.secrets.len())
            .finish()
    }
}

impl KnownSecrets {
    /// The set of `secrets`, leaving out values shorter than
    /// [`MIN_SECRET_LEN`] and duplicates. Surrounding whitespace is not part
    /// of a secret (keys read from files end in a newline).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut values: Vec<String> = Vec::new();
        for s in secrets {
            let s = s.as_ref().trim();
            if s.chars().count() < MIN_SECRET_LEN {
                continue;
            }
            // A secret that travels in a URL may be printed encoded too.
            let encoded = url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let encoded_space = encoded.replace('+', "%20");
            for v in [s.to_owned(), encoded, encoded_space] {
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
        if values.is_empty() {
            return Self::default();
        }
        // Longest first among overlapping candidates: a secret that contains
        // another is replaced whole, not in part.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&values)
            .expect("a few literal patterns always build");
        Self {
            matcher: Some(matcher),
            secrets: values,
        }
    }

    /// How many values are searched for (encoded forms included).
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every known secret replaced by [`REDACTED`]; borrowed when
    /// nothing was found.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                Cow::Owned(m.replace_all(text, &vec![REDACTED; self.secrets.len()]))
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Redacts every string of `value` in place, object keys included;
    /// true when something was replaced.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        if self.matcher.is_none() {
            return false;
        }
        match value {
            Value::String(s) => self.redact_string(s),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.redact_value(v) | changed),
            Value::Object(map) => {
                let mut changed = false;
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    changed |= self.redact_value(&mut v);
                    let key = match self.redact(&key) {
                        Cow::Borrowed(_) => key,
                        Cow::Owned(k) => {
                            changed = true;
                            k
                        }
                    };
                    map.insert(key, v);
                }
                changed
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }

    /// Redacts `s` in place; true when something was replaced.
    pub fn redact_string(&self, s: &mut String) -> bool {
        match self.redact(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(r) => {
                *s = r;
                true
            }
        }
    }

    /// Length in bytes of the longest end of `text` that is the start of a
    /// known secret (but not all of it): text streamed in pieces holds that
    /// much back until the next piece shows whether a secret follows.
    pub fn partial_suffix(&self, text: &str) -> usize {
        let t = text.as_bytes();
        let mut longest = 0;
        for secret in &self.secrets {
            let s = secret.as_bytes();
            // Proper prefixes only (a whole secret is `redact`'s), longest
            // first; only where the secret's first byte is can one begin.
            let window = (s.len() - 1).min(t.len());
            for start in t.len() - window..t.len() {
                if t.len() - start <= longest {
                    break;
                }
                if t[start] == s[0] && text.is_char_boundary(start) && s.starts_with(&t[start..]) {
                    longest = t.len() - start;
                    break;
                }
            }
        }
        longest
    }
}

/// The secret parts of a connection URL (or comma-separated server list):
/// passwords, bare tokens and secret query parameters, as written and
/// percent-decoded, for [`KnownSecrets::new`].
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for server in url.split(',') {
        let Ok(parsed) = url::Url::parse(server.trim()) else {
            continue;
        };
        let mut push = |v: &str| {
            if !v.is_empty() {
                out.push(v.to_owned());
                if let Ok(decoded) = percent_decode(v)
                    && decoded != v
                {
                    out.push(decoded);
                }
            }
        };
        if let Some(p) = parsed.password() {
            push(p);
        } else if crate::token_scheme(parsed.scheme()) {
            push(parsed.username());
        }
        for (k, v) in parsed.query_pairs() {
            if crate::is_secret_param(&k) {
                push(&v);
            }
        }
    }
    out
}

fn percent_decode(v: &str) -> Result<String, std::string::FromUtf8Error> {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JWT: &str = "0123456789abcdef0123456789abcdef-jwt";

    #[test]
    fn replaces_every_occurrence_and_leaves_other_text_alone() {
        let k = KnownSecrets::new([JWT, "hunter2-long"]);
        assert_eq!(
            k.redact(&format!(
                "CSP_JWT_SECRET={JWT}\nalso {JWT}; pw hunter2-long."
            )),
            "CSP_JWT_SECRET=[REDACTED]\nalso [REDACTED]; pw [REDACTED]."
        );
        assert!(matches!(k.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_values_and_blanks_are_ignored() {
        let k = KnownSecrets::new(["admin", "", "   ", "1234567"]);
        assert!(k.is_empty());
        assert_eq!(k.redact("admin 1234567"), "admin 1234567");
        assert_eq!(format!("{k:?}"), "KnownSecrets { count: 0 }");
    }

    #[test]
    fn debug_never_shows_a_value() {
        let k = KnownSecrets::new([JWT]);
        let d = format!("{k:?}");
        assert!(!d.contains(JWT) && d.contains("count"), "{d}");
    }

    #[test]
    fn the_longer_of_overlapping_secrets_wins() {
        let k = KnownSecrets::new(["abcdefgh", "abcdefghijkl"]);
        assert_eq!(k.redact("xabcdefghijkly"), "x[REDACTED]y");
    }

    #[test]
    fn url_encoded_forms_are_found_too() {
        let k = KnownSecrets::new(["p@ss w0rd/x"]);
        assert_eq!(
            k.redact("p%40ss+w0rd%2Fx and p@ss w0rd/x"),
            "[REDACTED] and [REDACTED]"
        );
    }

    #[test]
    fn json_strings_and_keys_are_redacted_in_place() {
        let k = KnownSecrets::new([JWT]);
        let mut v = json!({"command": format!("echo {JWT}"), JWT: [1, JWT, {"n": null}]});
        assert!(k.redact_value(&mut v));
        assert_eq!(
            v,
            json!({"command": "echo [REDACTED]", "[REDACTED]": [1, "[REDACTED]", {"n": null}]})
        );
        assert!(!k.redact_value(&mut v), "a second pass changes nothing");
    }

    #[test]
    fn partial_suffix_finds_the_start_of_a_secret() {
        let k = KnownSecrets::new(["secret-value-1"]);
        assert_eq!(k.partial_suffix("the value is secr"), 4);
        assert_eq!(k.partial_suffix("the value is s"), 1);
        assert_eq!(k.partial_suffix("nothing"), 0);
        assert_eq!(
            k.partial_suffix("secret-value-1"),
            0,
            "a whole secret is redact's"
        );
        assert_eq!(k.partial_suffix("é"), 0);
        assert_eq!(KnownSecrets::default().partial_suffix("secr"), 0);
    }

    #[test]
    fn url_secrets_are_passwords_tokens_and_secret_parameters() {
        assert_eq!(
            url_secrets("postgres://csp:s3cr%40t-pass@db:5432/csp"),
            ["s3cr%40t-pass", "s3cr@t-pass"]
        );
        assert_eq!(
            url_secrets("redis://:hunter2hunter2@cache:6379/0"),
            ["hunter2hunter2"]
        );
        assert_eq!(
            url_secrets("tls://tok3n-abcdefgh@a:4222,nats://b:4222"),
            ["tok3n-abcdefgh"]
        );
        assert_eq!(
            url_secrets("postgres://db/csp?user=csp&password=pw123456"),
            ["pw123456"]
        );
        assert!(url_secrets("postgres://postgres@127.0.0.1:5432/csp").is_empty());
        assert!(url_secrets("not a url").is_empty());
    }

    proptest::proptest! {
        #![proptest_config(csp_testkit::proptest_config(256))]

        #[test]
        fn partial_suffix_is_the_longest_proper_prefix_at_the_end(
            text in "[ab]{0,12}",
            secrets in proptest::collection::vec("[ab]{8,10}", 1..3),
        ) {
            let k = KnownSecrets::new(&secrets);
            let naive = (0..=text.len())
                .filter(|&n| {
                    k.secrets
                        .iter()
                        .any(|s| n < s.len() && s.starts_with(&text[text.len() - n..]))
                })
                .max()
                .unwrap_or(0);
            proptest::prop_assert_eq!(k.partial_suffix(&text), naive);
        }

        #[test]
        fn no_secret_survives_redaction(
            prefix in ".{0,40}",
            suffix in ".{0,40}",
            secret in "[a-zA-Z0-9+/=_-]{8,40}",
        ) {
            let k = KnownSecrets::new([&secret]);
            let text = format!("{prefix}{secret}{suffix}");
            let out = k.redact(&text);
            proptest::prop_assert!(!out.contains(&secret));
            proptest::prop_assert_eq!(k.redact(&out), out.clone());
        }
    }
}
