//! Secrets in free text and JSON: what the audit log and the logs must never
//! keep from a conversation (API keys, tokens, passwords, private keys).
//!
//! Every rule runs on the original text and names the byte ranges that are
//! secret; overlapping or touching ranges are merged and each becomes one
//! [`REDACTED`]. Running the rules side by side, rather than one after the
//! other on rewritten text, keeps a rule from being hidden or shifted by
//! another's replacement, and makes a second pass change nothing.
//!
//! The rules lean towards redacting: a value after `password:` goes even when
//! it is prose. What they must not touch is text without such markers: paths,
//! SQL, UUIDs, git SHAs, shell commands, the word "password" on its own.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

/// What stands in for a removed secret.
pub const REDACTED: &str = "[REDACTED]";

/// One kind of secret. Capture groups whose names start with `s` are the
/// secret; a rule without such groups redacts its whole match. Groups that
/// match nothing (`password=""`) redact nothing.
struct Rule {
    pattern: &'static str,
    /// What a regex cannot say about a match; `None` accepts every match.
    accept: Option<fn(&Captures<'_>) -> bool>,
}

/// A quoted or bare value after `key=` / `key: `. The bare form stops at
/// characters that end values in query strings, connection strings and
/// escaped JSON, so `password=x&user=y` keeps `user=y`; a password holding
/// one of them loses only its tail. An unclosed quote runs to the end of the
/// line: a value cut off by truncation is still a value.
macro_rules! value {
    () => {
        r#"(?:\\"(?P<s1>(?:[^"\\\n]|\\[^"\n])*)(?:\\")?|"(?P<s2>(?:[^"\\\n]|\\.)*)"?|'(?P<s3>[^'\n]*)'?|(?P<s4>[^\s"'&;,<>`\\]+))"#
    };
}

/// The value of a command-line option (`--password x`, `-p x`): like
/// [`value!`], but not the next option, and shell separators end it.
macro_rules! arg {
    () => {
        r#"(?:"(?P<s1>[^"\n]*)"|'(?P<s2>[^'\n]*)'|(?P<s3>[^\s"'&;|<>`\\-][^\s"'&;|<>`\\]*))"#
    };
}

/// Ways to say "this is a secret" in a key name, as the end of the name:
/// `DB_PASSWORD`, `x-api-key` and `accessToken` are secret; `max_tokens`,
/// `token_type` and `password_hash` are not.
macro_rules! secret_key {
    () => {
        r"passw(?:or)?d|passphrase|pwd|secret|token|(?:api|access|secret|private|auth|session|signing|encryption|master)[_.\-]?key|credentials?"
    };
}

const RULES: &[Rule] = &[
    // PEM private keys, the whole block. A block cut off before its END line
    // is still a key: it runs to the end of the text.
    Rule {
        pattern: r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)",
        accept: None,
    },
    // Anthropic (`sk-ant-api03-…`, `sk-ant-admin01-…`) and OpenAI (`sk-…`,
    // `sk-proj-…`, `sk-svcacct-…`) API keys.
    Rule {
        pattern: r"(?-u:\b)sk-[A-Za-z0-9_\-]{20,}",
        accept: None,
    },
    // Provider tokens with unmistakable prefixes: GitHub (classic, OAuth,
    // user-to-server, server-to-server, refresh; fine-grained PAT), Slack,
    // GitLab, Stripe secret and restricted keys, Google API keys.
    Rule {
        pattern: r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abeoprs]-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,}|glpat-[A-Za-z0-9_\-]{20,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|AIza[A-Za-z0-9_\-]{35})",
        accept: None,
    },
    // AWS access key ids: long-term (AKIA) and temporary (ASIA). Other AWS
    // id prefixes (AROA, AIDA, …) name roles and users and are not secret.
    Rule {
        pattern: r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
        accept: None,
    },
    // JSON Web Tokens: base64url header and payload (both JSON objects, so
    // `eyJ…`), and a signature that may be empty (`alg: none`).
    Rule {
        pattern: r"(?-u:\b)eyJ[A-Za-z0-9_\-]{2,}\.eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*",
        accept: None,
    },
    // `key=value`, `key: value`, `"key": "value"`, `key => value`, also inside
    // escaped JSON. The key must start a word, but not after `/`: the
    // `passwd:` of `/etc/passwd:12:` is a file, not a key. A bare `pass` is a
    // key (redis, wget), `bypass` is not.
    Rule {
        pattern: concat!(
            r#"(?i)(?:^|[^a-z0-9_.\-/])(?P<k>[a-z0-9_.\-]*?(?:"#,
            secret_key!(),
            r#")|pass)(?:\\?["'])?[ \t]*(?:=>|:=|[:=])[ \t]*"#,
            value!()
        ),
        accept: Some(not_working_directory),
    },
    // `Authorization: Bearer x`, `-H "Authorization: token x"`: everything up
    // to the end of the header, since schemes differ in what follows them
    // (Okta's `SSWS x`, Digest's parameters). A known scheme stays readable.
    Rule {
        pattern: r#"(?i)(?-u:\b)(?:proxy-)?authorization(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?(?:(?:bearer|basic|token|digest|negotiate|ntlm)[ \t]+)?(?P<s>[^"'\r\n\\]*[^"'\r\n\\\s])"#,
        accept: None,
    },
    // Session cookies are bearer credentials too.
    Rule {
        pattern: r#"(?i)(?:^|[^a-z0-9_\-])(?:set-)?cookie(?:\\?["'])?[ \t]*:[ \t]*(?:\\?["'])?(?P<s>[^"'\r\n\\]*[^"'\r\n\\\s])"#,
        accept: None,
    },
    // A bearer token outside a header (`use Bearer abc…`). Prose says
    // "bearer" too, so only a long value with a digit counts.
    Rule {
        pattern: r"(?i)(?-u:\b)bearer[ \t]+(?P<s>[a-z0-9\-._~+/]{16,}=*)",
        accept: Some(has_digit),
    },
    // Credentials in URLs (`postgres://user:pw@host`): the password only, so
    // the user and host stay readable. The password runs to the last `@`
    // before the path, which keeps an unencoded `@` in it secret.
    Rule {
        pattern: r#"(?i)(?-u:\b)[a-z][a-z0-9+.\-]*://[^\s:/@"'<>]*:(?P<s>[^\s/"'<>]*)@"#,
        accept: None,
    },
    // Command-line options: `--password x`, `--api-key=x`, `-passphrase x`.
    Rule {
        pattern: concat!(
            r#"(?i)(?:^|[\s"'])--?(?P<k>(?:[a-z0-9]+-)*(?:"#,
            secret_key!(),
            r#"|pass))(?:[ \t]+|=)"#,
            arg!()
        ),
        accept: Some(not_negated_option),
    },
    // `curl -u user:pw`, `curl --user "user:pw"`, proxy credentials; the user
    // stays. Only curl: `docker run -u 1000:1000` is a uid and gid.
    Rule {
        pattern: r#"(?-u:\b)curl[ \t](?:[^\n|;&]*?[ \t])??(?:-u[ \t]*|-U[ \t]*|--user(?:[ \t]+|=)|--proxy-user(?:[ \t]+|=))(?:"[^":\n]*:(?P<s1>[^"\n]*)"|'[^':\n]*:(?P<s2>[^'\n]*)'|[^\s:"']*:(?P<s3>[^\s"']+))"#,
        accept: None,
    },
    // Clients whose short password option is unambiguous: mysql's
    // `-p<pw>` (glued; `-p` alone prompts, `-P` is the port; `-p,` is prose
    // punctuation), sshpass' `-p`,
    // redis-cli's `-a`, openssl's `-passin pass:<pw>`.
    Rule {
        pattern: r#"(?-u:\b)(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mysqlpump|mysqlsh|mariadb|mariadb-dump|mariadb-admin)[ \t](?:[^\n|;&]*?[ \t])??-p(?P<s>"[^"\n]*"|'[^'\n]*'|[^\s"'|;&<>,.()=][^\s"'|;&<>]*)"#,
        accept: None,
    },
    Rule {
        pattern: concat!(
            r#"(?-u:\b)(?:sshpass[ \t](?:[^\n|;&]*?[ \t])??-p[ \t]*|redis-cli[ \t](?:[^\n|;&]*?[ \t])??-a[ \t]+)"#,
            arg!()
        ),
        accept: None,
    },
    Rule {
        pattern: r"(?:^|\s)-pass(?:in|out)?[ \t]+pass:(?P<s>\S+)",
        accept: None,
    },
];

/// `PWD=/home/me` and `OLDPWD=…` in an environment dump are directories.
fn not_working_directory(caps: &Captures<'_>) -> bool {
    let is_pwd = caps
        .name("k")
        .is_some_and(|k| k.as_str().to_ascii_lowercase().ends_with("pwd"));
    let value = ["s1", "s2", "s3", "s4"]
        .iter()
        .find_map(|g| caps.name(g))
        .map_or("", |m| m.as_str());
    !(is_pwd && value.starts_with('/'))
}

/// `--no-password db` says not to ask for one; `db` is a database.
fn not_negated_option(caps: &Captures<'_>) -> bool {
    !caps
        .name("k")
        .is_some_and(|k| k.as_str().to_ascii_lowercase().starts_with("no-"))
}

fn has_digit(caps: &Captures<'_>) -> bool {
    caps.name("s")
        .is_some_and(|s| s.as_str().bytes().any(|b| b.is_ascii_digit()))
}

struct Compiled {
    /// One pass over the text says which rules can match at all; ordinary
    /// text costs that pass and nothing else.
    set: RegexSet,
    rules: Vec<(Regex, Vec<usize>)>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let patterns = RULES.iter().map(|r| r.pattern);
    let set = RegexSet::new(patterns).expect("secret rules are valid regexes");
    let rules = RULES
        .iter()
        .map(|rule| {
            let re = Regex::new(rule.pattern).expect("secret rule is a valid regex");
            let secret_groups = re
                .capture_names()
                .enumerate()
                .filter(|(_, name)| name.is_some_and(|n| n.starts_with('s')))
                .map(|(i, _)| i)
                .collect();
            (re, secret_groups)
        })
        .collect();
    Compiled { set, rules }
});

/// `text` with every secret replaced by [`REDACTED`]; ordinary text comes back
/// unchanged (`Cow::Borrowed`). Redacting twice gives the same as once.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let compiled = &*COMPILED;
    let mut spans: Vec<Range<usize>> = Vec::new();
    for index in compiled.set.matches(text).iter() {
        let (re, secret_groups) = &compiled.rules[index];
        let accept = RULES[index].accept;
        for caps in re.captures_iter(text) {
            if accept.is_some_and(|accept| !accept(&caps)) {
                continue;
            }
            if secret_groups.is_empty() {
                spans.extend(caps.get(0).map(|m| m.range()));
            } else {
                spans.extend(
                    secret_groups
                        .iter()
                        .filter_map(|&g| caps.get(g))
                        .map(|m| m.range()),
                );
            }
        }
    }
    spans.retain(|s| !s.is_empty());
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable_by_key(|s| s.start);
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut spans = spans.into_iter().peekable();
    while let Some(mut span) = spans.next() {
        // Touching spans become one marker too: `[REDACTED][REDACTED]` would
        // read as one value to a key rule on the next pass.
        while let Some(next) = spans.next_if(|next| next.start <= span.end) {
            span.end = span.end.max(next.end);
        }
        out.push_str(&text[done..span.start]);
        out.push_str(REDACTED);
        done = span.end;
    }
    out.push_str(&text[done..]);
    // A span that already was the marker changes nothing.
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// A JSON value with secrets replaced: every string (object keys included)
/// goes through [`redact_text`], and the whole value of any object key that
/// names a secret (`password`, `api_key`, `Authorization`, `clientSecret`, …)
/// becomes [`REDACTED`].
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = if names_secret(key, value) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact_json(value)
                    };
                    (redact_text(key).into_owned(), value)
                })
                .collect(),
        ),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

/// Ends of normalised key names (lower case, letters and digits only) that
/// name a secret. As in text, the secret word ends the name: `max_tokens`
/// and `password_reset_url` are not secret.
const SECRET_KEY_ENDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "authkey",
    "sessionkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "authorization",
    "credential",
    "credentials",
    "cookie",
];

fn names_secret(key: &str, value: &Value) -> bool {
    let key: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if key.ends_with("pwd") && value.as_str().is_some_and(|v| v.starts_with('/')) {
        // `{"PWD": "/home/me"}`: a directory, as in text.
        return false;
    }
    key == "pass" || SECRET_KEY_ENDS.iter().any(|end| key.ends_with(end))
}

#[cfg(test)]
mod tests;
