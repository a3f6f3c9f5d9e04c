//! Technicians' feedback on a note: "Was this helpful? 👍 Yes · 👎 No" at its end, two links to
//! the gateway's public `/feedback/<job_id>/<vote>?sig=<hex>`, which need no login and record
//! the vote on the job.
//!
//! A link is signed, so that only csp can make one: the signature is the lower-case hex
//! HMAC-SHA256 of `<job_id>:<vote>` (the job id hyphenated and lower-case, the vote
//! `helpful` or `not_helpful`) under a key derived from `CSP_SECRET_KEY` for this purpose
//! alone ([`KEY_PURPOSE`]). The workers sign with the current key; the tickets service accepts
//! the current and the previous key (`CSP_SECRET_KEY_PREVIOUS`), so a rotation does not break
//! the links of notes already posted while the previous key is configured. Signatures are
//! compared in constant time.
//!
//! The links follow the note's words (they are not the model's output: not counted against the
//! word limit, not in the job's `llm_output`), and the connector's job marker follows them.

use crate::render::{NoteFormat, render_note};
use csp_domain::FeedbackVote;
use csp_secrets::{DerivedKey, Keyring};
use uuid::Uuid;

/// What the feedback key is derived for ([`csp_secrets::Keyring::derive`]): changing it
/// invalidates every link already posted.
pub const KEY_PURPOSE: &str = "csp feedback links v1";

/// The gateway's path of a vote: `/feedback/<job_id>/<vote>`.
pub const FEEDBACK_PATH: &str = "/feedback";

/// The keys that sign and check feedback links.
#[derive(Clone)]
pub struct FeedbackKey {
    /// The current key's first: it signs; all of them verify.
    keys: Vec<DerivedKey>,
}

impl std::fmt::Debug for FeedbackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackKey")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl FeedbackKey {
    /// The feedback keys of every key of the ring.
    pub fn from_keyring(keyring: &Keyring) -> Self {
        Self {
            keys: keyring.derive(KEY_PURPOSE),
        }
    }

    /// The signature of a link: lower-case hex.
    pub fn sign(&self, job_id: Uuid, vote: FeedbackVote) -> String {
        let key = self.keys.first().expect("a keyring has a current key");
        let mac = csp_auth::hmac_sha256(key.expose(), message(job_id, vote).as_bytes());
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` signs this job's vote under any of the keys. Every key is tried, and
    /// each comparison takes the same time wherever the signature first differs.
    pub fn verify(&self, job_id: Uuid, vote: FeedbackVote, signature: &str) -> bool {
        let message = message(job_id, vote);
        self.keys.iter().fold(false, |ok, key| {
            csp_auth::verify_hmac_sha256_hex(key.expose(), message.as_bytes(), signature) | ok
        })
    }
}

/// What is signed: `<job_id>:<vote>`.
fn message(job_id: Uuid, vote: FeedbackVote) -> String {
    format!("{}:{}", job_id.hyphenated(), vote.as_str())
}

/// Why a public URL cannot start feedback links.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the public URL must be an absolute http(s) URL without spaces, quotes, angle brackets, a query or a fragment (such as https://csp.example)"
)]
pub struct InvalidPublicUrl;

/// Makes the links of notes: where they lead and how they are signed.
#[derive(Debug, Clone)]
pub struct FeedbackLinks {
    /// `CSP_PUBLIC_URL` without its trailing `/`.
    base: String,
    key: FeedbackKey,
}

impl FeedbackLinks {
    /// Links under `public_url`, the gateway as technicians reach it (`CSP_PUBLIC_URL`).
    pub fn new(public_url: &str, key: FeedbackKey) -> Result<Self, InvalidPublicUrl> {
        Ok(Self {
            base: Self::base(public_url)?,
            key,
        })
    }

    /// Whether `public_url` can start links (checked when a worker is configured).
    pub fn check_public_url(public_url: &str) -> Result<(), InvalidPublicUrl> {
        Self::base(public_url).map(drop)
    }

    /// `public_url` without surrounding space and its trailing `/`, if it can start links.
    fn base(public_url: &str) -> Result<String, InvalidPublicUrl> {
        let base = public_url.trim().trim_end_matches('/');
        let lower = base
            .get(..8)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let scheme = if lower.starts_with("https://") {
            8
        } else if lower.starts_with("http://") {
            7
        } else {
            return Err(InvalidPublicUrl);
        };
        let clean = !base.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '?' | '#')
        });
        if !clean || base.len() == scheme {
            return Err(InvalidPublicUrl);
        }
        Ok(base.to_owned())
    }

    /// `<public URL>/feedback/<job_id>/<vote>?sig=<hex>`.
    pub fn url(&self, job_id: Uuid, vote: FeedbackVote) -> String {
        format!(
            "{}{FEEDBACK_PATH}/{}/{}?sig={}",
            self.base,
            job_id.hyphenated(),
            vote.as_str(),
            self.key.sign(job_id, vote)
        )
    }

    /// The line that ends a note, in the note's format: an HTML paragraph with the two links, or
    /// a Markdown line with them.
    pub fn footer(&self, job_id: Uuid, format: NoteFormat) -> String {
        let markdown = format!(
            "Was this helpful? [👍 Yes](<{}>) · [👎 No](<{}>)",
            self.url(job_id, FeedbackVote::Helpful),
            self.url(job_id, FeedbackVote::NotHelpful)
        );
        render_note(&markdown, format)
    }

    /// `body` (a note in `format`, as [`crate::compose_note`] made it) with the footer.
    pub fn append(&self, body: &str, job_id: Uuid, format: NoteFormat) -> String {
        let separator = match format {
            NoteFormat::Html => "\n",
            NoteFormat::Markdown => "\n\n",
        };
        format!(
            "{}{separator}{}",
            body.trim_end(),
            self.footer(job_id, format)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NoteOptions, SkipReason, compose_note};
    use csp_secrets::SecretKey;

    const KEY: &str = "9Ovzd5TFSI0cLzNvDKm1EiBDkbaoY9aQJk4ziRe0J4c=";

    fn ring(current: &str, previous: &[&str]) -> Keyring {
        Keyring::new(
            SecretKey::parse(current).unwrap(),
            previous
                .iter()
                .map(|k| SecretKey::parse(k).unwrap())
                .collect(),
        )
    }

    fn key() -> FeedbackKey {
        FeedbackKey::from_keyring(&ring(KEY, &[]))
    }

    fn job() -> Uuid {
        "6f0e6b1c-2d3a-4b5c-8d9e-0f1a2b3c4d5e".parse().unwrap()
    }

    /// The link's job, vote and signature, parsed back as the gateway does.
    fn parts(url: &str) -> (Uuid, FeedbackVote, String) {
        let rest = url
            .strip_prefix("https://csp.example/feedback/")
            .unwrap_or_else(|| panic!("{url}"));
        let (path, sig) = rest.split_once("?sig=").unwrap();
        let (job, vote) = path.split_once('/').unwrap();
        (job.parse().unwrap(), vote.parse().unwrap(), sig.to_owned())
    }

    #[test]
    fn the_signature_is_hex_hmac_of_job_and_vote_under_the_derived_key() {
        // Python: hmac.new(hmac.new(raw_key, b"csp feedback links v1", sha256).digest(),
        //   b"6f0e6b1c-2d3a-4b5c-8d9e-0f1a2b3c4d5e:helpful", sha256).hexdigest()
        let sig = key().sign(job(), FeedbackVote::Helpful);
        assert_eq!(sig, EXPECTED_HELPFUL);
        assert!(key().verify(job(), FeedbackVote::Helpful, &sig));
        // Upper case is the same signature.
        assert!(key().verify(job(), FeedbackVote::Helpful, &sig.to_ascii_uppercase()));
    }

    const EXPECTED_HELPFUL: &str =
        "e44a4ea685ef4e3fb2a56815a12d77236a0aa56b2a40a4348df959f5c27588d2";

    #[test]
    fn a_signature_is_for_its_job_and_vote_only() {
        let k = key();
        let sig = k.sign(job(), FeedbackVote::Helpful);
        let mut tampered = sig.clone();
        tampered.replace_range(63.., if sig.ends_with('0') { "1" } else { "0" });
        for (job_id, vote, sig) in [
            (job(), FeedbackVote::NotHelpful, sig.clone()),
            (Uuid::new_v4(), FeedbackVote::Helpful, sig.clone()),
            (job(), FeedbackVote::Helpful, tampered),
            (job(), FeedbackVote::Helpful, sig[..62].to_owned()),
            (job(), FeedbackVote::Helpful, String::new()),
        ] {
            assert!(!k.verify(job_id, vote, &sig), "{job_id} {vote} {sig}");
        }
        // Another CSP_SECRET_KEY signs differently.
        let other = FeedbackKey::from_keyring(&ring(&fresh_key(), &[]));
        assert!(!other.verify(job(), FeedbackVote::Helpful, &sig));
    }

    fn fresh_key() -> String {
        use secrecy::ExposeSecret;
        SecretKey::generate().1.expose_secret().to_owned()
    }

    #[test]
    fn links_of_the_previous_key_verify_after_a_rotation() {
        let new = fresh_key();
        let old_sig = key().sign(job(), FeedbackVote::NotHelpful);
        let rotated = FeedbackKey::from_keyring(&ring(&new, &[KEY]));
        assert!(rotated.verify(job(), FeedbackVote::NotHelpful, &old_sig));
        // New links are signed with the new key.
        let new_sig = rotated.sign(job(), FeedbackVote::NotHelpful);
        assert_ne!(new_sig, old_sig);
        assert!(!key().verify(job(), FeedbackVote::NotHelpful, &new_sig));
    }

    #[test]
    fn public_urls_are_absolute_http_and_plain() {
        for ok in [
            "https://csp.example",
            "https://csp.example/",
            " http://127.0.0.1:8080 ",
            "https://msp.example/csp",
        ] {
            let links = FeedbackLinks::new(ok, key()).unwrap();
            let url = links.url(job(), FeedbackVote::Helpful);
            assert!(
                url.contains("/feedback/6f0e6b1c-2d3a-4b5c-8d9e-0f1a2b3c4d5e/helpful?sig="),
                "{url}"
            );
            assert!(!url.contains("//feedback"), "{url}");
        }
        for bad in [
            "",
            "csp.example",
            "ftp://csp.example",
            "https://",
            "javascript:alert(1)",
            "https://csp.example/\"><script>",
            "https://csp example",
            "https://csp.example/?a=b",
            "https://csp.example/#x",
        ] {
            assert_eq!(
                FeedbackLinks::new(bad, key()).unwrap_err(),
                InvalidPublicUrl,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_posted_note_ends_with_both_links_and_their_signatures_verify() {
        let links = FeedbackLinks::new("https://csp.example/", key()).unwrap();
        for format in [NoteFormat::Html, NoteFormat::Markdown] {
            let note = compose_note(
                Err(SkipReason::NoModel),
                &Default::default(),
                NoteOptions {
                    max_words: 500,
                    format,
                },
            );
            let body = links.append(&note.body, job(), format);
            assert!(body.starts_with(&note.body), "{body}");
            // The words stay the model's (or the fallback's); the links are not among them.
            assert!(!note.markdown.contains("Was this helpful?"));
            let tail = body.lines().last().unwrap();
            let urls: Vec<String> = match format {
                NoteFormat::Html => {
                    assert!(
                        tail.starts_with("<p>Was this helpful? <a href=\""),
                        "{tail}"
                    );
                    assert!(tail.ends_with(">👎 No</a></p>"), "{tail}");
                    tail.split("href=\"")
                        .skip(1)
                        .map(|s| s.split('"').next().unwrap().to_owned())
                        .collect()
                }
                NoteFormat::Markdown => {
                    assert!(tail.starts_with("Was this helpful? [👍 Yes](<"), "{tail}");
                    assert!(body.contains("\n\nWas this helpful?"), "{body}");
                    tail.split("](<")
                        .skip(1)
                        .map(|s| s.split(">)").next().unwrap().to_owned())
                        .collect()
                }
            };
            let parsed: Vec<(Uuid, FeedbackVote, String)> = urls.iter().map(|u| parts(u)).collect();
            assert_eq!(parsed.len(), 2, "{tail}");
            assert_eq!(
                parsed.iter().map(|(j, v, _)| (*j, *v)).collect::<Vec<_>>(),
                [
                    (job(), FeedbackVote::Helpful),
                    (job(), FeedbackVote::NotHelpful)
                ]
            );
            for (job_id, vote, sig) in &parsed {
                assert!(key().verify(*job_id, *vote, sig), "{format:?}: {sig}");
            }
        }
    }
}

/// A link's signature comes from whoever opens the URL: the right one for
/// the job and vote always passes, under the current or previous key; any
/// other (one byte changed, another job or vote, anything at all) never does.
#[cfg(test)]
mod properties {
    use super::*;
    use csp_secrets::SecretKey;
    use csp_testkit::proptest_config;
    use proptest::prelude::*;
    use proptest::sample::Index;

    const CURRENT: &str = "9Ovzd5TFSI0cLzNvDKm1EiBDkbaoY9aQJk4ziRe0J4c=";
    const PREVIOUS: &str = "q3m0yQ0hV3b8GkzqSx2fJ8V6cYlq1dR2bq8nA0c9xkE=";

    fn key(current: &str, previous: &[&str]) -> FeedbackKey {
        FeedbackKey::from_keyring(&Keyring::new(
            SecretKey::parse(current).unwrap(),
            previous
                .iter()
                .map(|k| SecretKey::parse(k).unwrap())
                .collect(),
        ))
    }

    fn vote() -> impl Strategy<Value = FeedbackVote> {
        prop::sample::select(FeedbackVote::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn the_right_signature_verifies_through_a_rotation(job in any::<u128>(), vote in vote()) {
            let job = Uuid::from_u128(job);
            let old = key(PREVIOUS, &[]);
            let rotated = key(CURRENT, &[PREVIOUS]);
            let sig = old.sign(job, vote);
            prop_assert!(old.verify(job, vote, &sig));
            prop_assert!(rotated.verify(job, vote, &sig));
            prop_assert!(rotated.verify(job, vote, &rotated.sign(job, vote)));
            prop_assert!(!key(CURRENT, &[]).verify(job, vote, &sig));
        }

        #[test]
        fn a_changed_byte_job_or_vote_never_verifies(
            job in any::<u128>(),
            other in any::<u128>(),
            vote in vote(),
            i in any::<Index>(),
            b in any::<u8>(),
        ) {
            let (job, other) = (Uuid::from_u128(job), Uuid::from_u128(other));
            let k = key(CURRENT, &[PREVIOUS]);
            let sig = k.sign(job, vote);
            if other != job {
                prop_assert!(!k.verify(other, vote, &sig));
            }
            for v in FeedbackVote::ALL.iter().filter(|v| **v != vote) {
                prop_assert!(!k.verify(job, *v, &sig));
            }
            let mut bytes = sig.clone().into_bytes();
            let at = i.index(bytes.len());
            if !bytes[at].eq_ignore_ascii_case(&b)
                && let Ok(changed) = String::from_utf8({ bytes[at] = b; bytes })
            {
                prop_assert!(!k.verify(job, vote, &changed));
            }
        }

        #[test]
        fn arbitrary_signatures_never_verify(
            job in any::<u128>(),
            vote in vote(),
            sig in prop_oneof!["\\PC{0,80}", "[0-9a-f]{64}", "[0-9a-fA-F]{63,65}"],
        ) {
            prop_assert!(!key(CURRENT, &[PREVIOUS]).verify(Uuid::from_u128(job), vote, &sig));
        }
    }
}
