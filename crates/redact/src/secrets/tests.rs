use std::borrow::Cow;

use csp_testkit::proptest_config;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Each `(input, expected)` pair, with the failing input in the message.
fn check(cases: &[(&str, &str)]) {
    for (input, expected) in cases {
        assert_eq!(redact_text(input), *expected, "input: {input:?}");
    }
}

#[test]
fn api_keys() {
    check(&[
        (
            "export ANTHROPIC_API_KEY=sk-ant-api03-Xy9_kLmN0pQrStUvWxYz012345-abcdefGHIJKLmnopQRST-uvwx_AA now",
            "export ANTHROPIC_API_KEY=[REDACTED] now",
        ),
        (
            "key sk-ant-admin01-abcdefghijklmnopqrstuvwxyz0123456789 leaked",
            "key [REDACTED] leaked",
        ),
        (
            "OpenAI: sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz0123456789ABCD.",
            "OpenAI: [REDACTED].",
        ),
        (
            "client = OpenAI(api_key=\"sk-proj-AbCdEf0123456789_ghIJkl-MNopqrSTUV\")",
            "client = OpenAI(api_key=\"[REDACTED]\")",
        ),
        ("(sk-svcacct-0123456789abcdefghijABCD)", "([REDACTED])"),
        (
            "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc and AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "stripe [REDACTED] and [REDACTED]",
        ),
        ("glpat-xxxxXXXXxxxx1234yyyy", "[REDACTED]"),
    ]);
}

#[test]
fn github_and_slack_tokens() {
    check(&[
        (
            "GH token ghp_aBcDeF0123456789aBcDeF0123456789aBcD in env",
            "GH token [REDACTED] in env",
        ),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "[REDACTED]"),
        (
            "git clone https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r.git",
            "git clone https://x-access-token:[REDACTED]@github.com/o/r.git",
        ),
        (
            "github_pat_11ABCDEFG0123456789abc_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW",
            "[REDACTED]",
        ),
        (
            "SLACK_BOT=xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "SLACK_BOT=[REDACTED]",
        ),
        (
            "tokens xoxp-1234567890-0987654321-abcdef and xoxa-2-abcdef1234567890",
            "tokens [REDACTED] and [REDACTED]",
        ),
    ]);
}

#[test]
fn aws_keys() {
    check(&[
        (
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "aws_access_key_id = [REDACTED]",
        ),
        ("temp ASIAY34FZKBOKMUTVV7A,", "temp [REDACTED],"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = eu-west-1",
            "aws_secret_access_key = [REDACTED]\nregion = eu-west-1",
        ),
        (
            "export AWS_SECRET_ACCESS_KEY=\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"",
            "export AWS_SECRET_ACCESS_KEY=\"[REDACTED]\"",
        ),
        (
            r#"{"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SessionToken": "IQoJb3JpZ2luX2VjEHgaCXVzLWVhc3QtMSJHMEUCIQ"}"#,
            r#"{"AccessKeyId": "[REDACTED]", "SecretAccessKey": "[REDACTED]", "SessionToken": "[REDACTED]"}"#,
        ),
    ]);
}

#[test]
fn authorization_headers_and_bearer_tokens() {
    check(&[
        (
            "GET / HTTP/1.1\nAuthorization: Bearer abc.def-ghi\nAccept: */*",
            "GET / HTTP/1.1\nAuthorization: Bearer [REDACTED]\nAccept: */*",
        ),
        (
            r#"curl -H "Authorization: token ghx_notaprefix" https://api.github.com/user"#,
            r#"curl -H "Authorization: token [REDACTED]" https://api.github.com/user"#,
        ),
        (
            "authorization: Basic dXNlcjpodW50ZXIy",
            "authorization: Basic [REDACTED]",
        ),
        // An unknown scheme is no excuse to keep what follows it.
        (
            "Authorization: SSWS 00QCjAl4MlV-WPXM",
            "Authorization: [REDACTED]",
        ),
        (
            r#"{"headers": {"Authorization": "Bearer t0k3n"}}"#,
            r#"{"headers": {"Authorization": "Bearer [REDACTED]"}}"#,
        ),
        (
            r#"{\"Proxy-Authorization\":\"Basic Zm9vOmJhcg==\"}"#,
            r#"{\"Proxy-Authorization\":\"Basic [REDACTED]\"}"#,
        ),
        (
            "then send Bearer 9f8e7d6c5b4a39281706 to the API",
            "then send Bearer [REDACTED] to the API",
        ),
        ("X-Api-Key: 1f2e3d4c5b6a", "X-Api-Key: [REDACTED]"),
        ("Cookie: session=abc123; theme=dark", "Cookie: [REDACTED]"),
    ]);
}

#[test]
fn passwords() {
    check(&[
        ("password=hunter2", "password=[REDACTED]"),
        (
            "passwd: hunter2\nuser: bob",
            "passwd: [REDACTED]\nuser: bob",
        ),
        ("Pwd=hunter2;Uid=sa", "Pwd=[REDACTED];Uid=sa"),
        (
            "Server=db;User Id=sa;Password=S3cr3t!;Database=app",
            "Server=db;User Id=sa;Password=[REDACTED];Database=app",
        ),
        (
            "psql --password hunter2 -h db",
            "psql --password [REDACTED] -h db",
        ),
        (
            "app --db-password='a b c'",
            "app --db-password='[REDACTED]'",
        ),
        (
            "tool --password=hunter2 --verbose",
            "tool --password=[REDACTED] --verbose",
        ),
        (
            r#"{"user": "bob", "password": "hunter2", "port": 5432}"#,
            r#"{"user": "bob", "password": "[REDACTED]", "port": 5432}"#,
        ),
        (
            r#"{\"password\":\"hunter2\",\"user\":\"bob\"}"#,
            r#"{\"password\":\"[REDACTED]\",\"user\":\"bob\"}"#,
        ),
        (
            r#""password": "with \"quote\" inside""#,
            r#""password": "[REDACTED]""#,
        ),
        (
            "PGPASSWORD=hunter2 psql -h db",
            "PGPASSWORD=[REDACTED] psql -h db",
        ),
        (
            "spring.datasource.password=hunter2",
            "spring.datasource.password=[REDACTED]",
        ),
        ("'password' => 'hunter2',", "'password' => '[REDACTED]',"),
        (
            "redis://cache?pass=hunter2&db=1",
            "redis://cache?pass=[REDACTED]&db=1",
        ),
        // Truncated in the middle of the value.
        (r#"{"password": "hunt"#, r#"{"password": "[REDACTED]"#),
        (
            "mysql -u root -phunter2 app",
            "mysql -u root -p[REDACTED] app",
        ),
        (
            "mysqldump -h db -p'hunter 2' app",
            "mysqldump -h db -p[REDACTED] app",
        ),
        (
            "sshpass -p hunter2 ssh deploy@host",
            "sshpass -p [REDACTED] ssh deploy@host",
        ),
        (
            "redis-cli -h cache -a hunter2 ping",
            "redis-cli -h cache -a [REDACTED] ping",
        ),
        (
            "openssl pkcs12 -in a.p12 -passin pass:hunter2 -nodes",
            "openssl pkcs12 -in a.p12 -passin pass:[REDACTED] -nodes",
        ),
    ]);
}

#[test]
fn connection_strings_keep_user_and_host() {
    check(&[
        (
            "DATABASE_URL=postgres://csp:hunter2@db.internal:5432/csp",
            "DATABASE_URL=postgres://csp:[REDACTED]@db.internal:5432/csp",
        ),
        (
            "mysql://root:p@ss:w0rd@127.0.0.1/app",
            "mysql://root:[REDACTED]@127.0.0.1/app",
        ),
        (
            "mongodb+srv://admin:hunter2@cluster0.ab1cd.mongodb.net/?retryWrites=true",
            "mongodb+srv://admin:[REDACTED]@cluster0.ab1cd.mongodb.net/?retryWrites=true",
        ),
        (
            "redis://:hunter2@cache:6379/0",
            "redis://:[REDACTED]@cache:6379/0",
        ),
        (
            "amqp://guest:guest@rabbit:5672/ and https://bob:hunter2@example.com/x",
            "amqp://guest:[REDACTED]@rabbit:5672/ and https://bob:[REDACTED]@example.com/x",
        ),
        (
            "jdbc:postgresql://app:hunter2@db/app",
            "jdbc:postgresql://app:[REDACTED]@db/app",
        ),
    ]);
}

#[test]
fn curl_user_password() {
    check(&[
        (
            "curl -u bob:hunter2 https://example.com",
            "curl -u bob:[REDACTED] https://example.com",
        ),
        (
            r#"curl -sS --user "bob:hunter 2" https://example.com"#,
            r#"curl -sS --user "bob:[REDACTED]" https://example.com"#,
        ),
        (
            "curl -ubob:hunter2 https://x",
            "curl -ubob:[REDACTED] https://x",
        ),
        (
            "curl --proxy-user=bob:hunter2 https://x",
            "curl --proxy-user=bob:[REDACTED] https://x",
        ),
        // The first `-u` after curl is curl's, not a later command's.
        (
            "curl -ubob:hunter2 https://x\tdocker run -u 1000:1000",
            "curl -ubob:[REDACTED] https://x\tdocker run -u 1000:1000",
        ),
    ]);
}

#[test]
fn private_keys_whole_block() {
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naFDrBz9vFqU4yYYH2Nm6gqbBXlzsRqhmKLxQ3k4CnpsbODM2adN+lf5ZNFqDVYe\n-----END RSA PRIVATE KEY-----";
    check(&[
        (&format!("key:\n{pem}\ndone"), "key:\n[REDACTED]\ndone"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
            "[REDACTED]",
        ),
        (
            r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n", "private_key_id": "abc"}"#,
            r#"{"private_key": "[REDACTED]", "private_key_id": "abc"}"#,
        ),
        // Cut off before its END line: still a key, to the end.
        (
            "cat id_ed25519\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0w",
            "cat id_ed25519\n[REDACTED]",
        ),
        // Public keys and certificates are not secret.
        (
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ\n-----END PUBLIC KEY-----",
        ),
    ]);
}

#[test]
fn jwts_and_generic_keys() {
    check(&[
        (
            "cookie jar: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok",
            "cookie jar: [REDACTED] ok",
        ),
        (
            "unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. end",
            "unsigned [REDACTED] end",
        ),
        ("api_key=abc123&page=2", "api_key=[REDACTED]&page=2"),
        ("apikey: abc123", "apikey: [REDACTED]"),
        (
            "https://api.example.com/v1?token=abc123",
            "https://api.example.com/v1?token=[REDACTED]",
        ),
        ("JWT_SECRET=abc123", "JWT_SECRET=[REDACTED]"),
        ("client_secret: abc123", "client_secret: [REDACTED]"),
        ("accessToken=abc123", "accessToken=[REDACTED]"),
        ("secret=", "secret="),
        (r#"password="""#, r#"password="""#),
    ]);
}

#[test]
fn ordinary_text_is_borrowed_unchanged() {
    for text in [
        "",
        "Please read the password reset instructions before you continue.",
        "Forgot your password? We sent a reset link.",
        "ls -la /etc/passwd /home/me/.ssh",
        "grep -n root /etc/passwd:1:root:x:0:0:root:/root:/bin/bash",
        "SELECT id, name FROM users WHERE email = 'a@b.com' ORDER BY id LIMIT 10;",
        "UPDATE sessions SET status = 'idle' WHERE id = $1",
        "id 5281c074-aa1f-491b-89ef-42e01d6bc68b at commit 7677a35c0f1e4b6f1d2e3a4b5c6d7e8f9a0b1c2d",
        r#"{"usage": {"input_tokens": 12, "output_tokens": 340}, "max_tokens": 4096}"#,
        "max_tokens=1024 token_count: 3 tokens: 17",
        "PWD=/work/main\nOLDPWD=/work",
        "docker run -u 1000:1000 -p 8080:80 image",
        "mysql -u root -p app",
        "psql --no-password app",
        "docker login -u bob --password-stdin < pw.txt",
        "ssh git@github.com; git clone git@github.com:o/r.git",
        "postgres://postgres@127.0.0.1:5432/postgres and http://[::1]:8080/x",
        "The bearer of this letter is the authorization holder.",
        "C:\\Users\\me\\Documents\\notes.txt",
        "see https://example.com/docs?page=2#top",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "sk-learn, task-runner, desk-123",
        "cargo test -p csp-redact -- --nocapture",
        "[REDACTED] stays [REDACTED]",
    ] {
        let out = redact_text(text);
        assert!(
            matches!(out, Cow::Borrowed(t) if t == text),
            "changed {text:?} to {out:?}"
        );
    }
}

#[test]
fn json_keys_that_name_secrets_lose_the_whole_value() {
    let input = json!({
        "user": "bob",
        "password": "hunter2",
        "DB_PASSWORD": 1234,
        "x-api-key": "plain",
        "clientSecret": {"nested": "anything"},
        "Authorization": ["Bearer", "abc"],
        "credentials": null,
        "max_tokens": 4096,
        "token_type": "bearer",
        "PWD": "/work",
        "note": "use postgres://bob:hunter2@db/app",
        "list": [{"api_key": "k"}, "ghp_aBcDeF0123456789aBcDeF0123456789aBcD"],
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz": true,
    });
    let expected = json!({
        "user": "bob",
        "password": REDACTED,
        "DB_PASSWORD": REDACTED,
        "x-api-key": REDACTED,
        "clientSecret": REDACTED,
        "Authorization": REDACTED,
        "credentials": REDACTED,
        "max_tokens": 4096,
        "token_type": "bearer",
        "PWD": "/work",
        "note": "use postgres://bob:[REDACTED]@db/app",
        "list": [{"api_key": REDACTED}, REDACTED],
        REDACTED: true,
    });
    assert_eq!(redact_json(&input), expected);
}

// ---- properties ----

/// Words that cannot make ordinary text look like a secret marker.
const MARKERS: &[&str] = &[
    "pass", "pwd", "secret", "token", "key", "cred", "auth", "cookie", "bearer",
];

fn unmarked(pattern: &'static str) -> impl Strategy<Value = String> {
    pattern.prop_filter("no secret marker", |w| {
        let w = w.to_ascii_lowercase();
        !MARKERS.iter().any(|m| w.contains(m))
    })
}

fn word() -> impl Strategy<Value = String> {
    unmarked("[a-zA-Z]{1,12}")
}

/// Pieces of ordinary text: words, numbers, paths, ids, commands and prose a
/// naive redactor gets wrong.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => word(),
        1 => "[0-9]{1,12}(\\.[0-9]{1,4})?",
        1 => "(/[a-z0-9_.]{1,8}){1,5}",
        1 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        1 => "[0-9a-f]{40}",
        1 => prop::sample::select(vec![
            "ls -la",
            "/etc/passwd",
            "password reset instructions",
            "max_tokens",
            "SELECT id, name FROM users WHERE id = 42;",
            "cargo test -p csp-redact",
            "docker run -u 1000:1000 -p 8080:80",
            "git log --oneline",
            "C:\\Users\\me",
            "https://example.com/docs?page=2",
            "user@example.com",
            "git@github.com:o/r.git",
            "Authorization required",
            "mysql -u root -p app",
        ])
        .prop_map(str::to_owned),
    ]
}

fn joiner() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        " ", " ", " ", "\n", "\t", ", ", ". ", ": ", "=", "; ", "(", ")", "\"", "'",
    ])
}

fn ordinary_text() -> impl Strategy<Value = String> {
    prop::collection::vec((piece(), joiner()), 0..12)
        .prop_map(|parts| parts.into_iter().map(|(p, j)| p + j).collect())
}

/// A secret in its usual surroundings: the text, what redaction must make of
/// it, and the secret strings that must not survive.
#[derive(Debug, Clone)]
struct Planted {
    text: String,
    expected: String,
    secrets: Vec<String>,
    /// The redaction runs to the end of the line, so what follows must start
    /// on the next one.
    to_eol: bool,
}

/// `form` with `{}` standing for `secret`.
fn plant(form: &str, secret: String) -> Planted {
    Planted {
        text: form.replace("{}", &secret),
        expected: form.replace("{}", REDACTED),
        secrets: vec![secret],
        to_eol: false,
    }
}

fn plant_in(
    forms: &'static [&'static str],
    secret: impl Strategy<Value = String>,
) -> impl Strategy<Value = Planted> {
    (prop::sample::select(forms), secret).prop_map(|(form, s)| plant(form, s))
}

/// A password as people choose them: no whitespace, quotes or backslashes.
const PASSWORD: &str = "[A-Za-z0-9][A-Za-z0-9!@#$%^*()_+=.~-]{7,23}";

fn anthropic_key() -> impl Strategy<Value = Planted> {
    plant_in(
        &["{}", "ANTHROPIC_API_KEY={}", "x-api-key: {}", "\"{}\""],
        "sk-ant-(api03|admin01)-[A-Za-z0-9_-]{80,93}AA",
    )
}

fn openai_key() -> impl Strategy<Value = Planted> {
    plant_in(
        &["{}", "OPENAI_API_KEY={}", "openai.api_key = '{}'"],
        "sk-([A-Za-z0-9]{48}|(proj|svcacct|admin)-[A-Za-z0-9_-]{40,156})",
    )
}

fn github_token() -> impl Strategy<Value = Planted> {
    plant_in(
        &[
            "{}",
            "GITHUB_TOKEN={}",
            "https://x-access-token:{}@github.com/o/r.git",
            "gh auth login with {}",
        ],
        "gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
    )
}

fn slack_token() -> impl Strategy<Value = Planted> {
    plant_in(
        &["{}", "SLACK_TOKEN={}"],
        "xox[abprs]-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,32}",
    )
}

fn aws_key_id() -> impl Strategy<Value = Planted> {
    plant_in(
        &["{}", "aws_access_key_id = {}", "\"AccessKeyId\": \"{}\""],
        "(AKIA|ASIA)[A-Z0-9]{16}",
    )
}

fn aws_secret_key() -> impl Strategy<Value = Planted> {
    plant_in(
        &[
            "aws_secret_access_key = {}",
            "AWS_SECRET_ACCESS_KEY={}",
            "export AWS_SECRET_ACCESS_KEY=\"{}\"",
            "\"SecretAccessKey\": \"{}\"",
        ],
        "[A-Za-z0-9/+]{40}",
    )
}

fn bearer_token() -> impl Strategy<Value = Planted> {
    let token = "[A-Za-z0-9._~+/-]{8,60}";
    prop_oneof![
        plant_in(
            &[
                "-H \"Authorization: Bearer {}\"",
                "-H 'Authorization: token {}'",
                "{\"Authorization\": \"Bearer {}\"}",
            ],
            token
        ),
        plant_in(&["Authorization: Bearer {}", "authorization: {}"], token)
            .prop_map(|p| { Planted { to_eol: true, ..p } }),
        plant_in(
            &["Bearer {}"],
            "[A-Za-z0-9._~+/-]{12,60}[0-9][A-Za-z0-9]{3}"
        ),
    ]
}

fn password() -> impl Strategy<Value = Planted> {
    plant_in(
        &[
            "password={}",
            "passwd: {}",
            "pwd={}",
            "--password {}",
            "--password={}",
            "\"password\": \"{}\"",
            "DB_PASSWORD={}",
            "PGPASSWORD={} psql -h db",
            "mysql -u root -p{} app",
            "sshpass -p {} ssh deploy@host",
            "redis-cli -h cache -a {} ping",
        ],
        PASSWORD,
    )
}

fn url_credentials() -> impl Strategy<Value = Planted> {
    (
        prop::sample::select(vec![
            "postgres",
            "postgresql",
            "mysql",
            "mongodb",
            "mongodb+srv",
            "redis",
            "rediss",
            "amqp",
            "amqps",
            "https",
        ]),
        unmarked("[a-z][a-z0-9_]{2,10}"),
        "[A-Za-z0-9!$%*()_+=.~@:#?-]{8,24}",
        unmarked("[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}"),
    )
        .prop_map(|(scheme, user, pw, host)| {
            let form = format!("{scheme}://{user}:{{}}@{host}:5432/app");
            plant(&form, pw)
        })
}

fn curl_user() -> impl Strategy<Value = Planted> {
    (
        prop::sample::select(vec![
            "curl -u {u}:{} https://api.example.com",
            "curl -sS --user \"{u}:{}\" https://api.example.com",
            "curl -u{u}:{} https://api.example.com",
        ]),
        unmarked("[a-z][a-z0-9_]{2,10}"),
        PASSWORD,
    )
        .prop_map(|(form, user, pw)| plant(&form.replace("{u}", &user), pw))
}

fn private_key() -> impl Strategy<Value = Planted> {
    (
        prop::sample::select(vec![
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ]),
        prop::collection::vec("[A-Za-z0-9+/]{64}", 1..6),
        "[A-Za-z0-9+/]{16,62}={0,2}",
    )
        .prop_map(|(kind, mut lines, last)| {
            lines.push(last);
            let text = format!(
                "-----BEGIN {kind}-----\n{}\n-----END {kind}-----",
                lines.join("\n")
            );
            Planted {
                text,
                expected: REDACTED.to_owned(),
                secrets: lines,
                to_eol: false,
            }
        })
}

fn jwt() -> impl Strategy<Value = Planted> {
    plant_in(
        &["{}", "token: {}", "Cookie jar {}"],
        "eyJ[A-Za-z0-9_-]{10,40}\\.eyJ[A-Za-z0-9_-]{10,200}\\.[A-Za-z0-9_-]{43}",
    )
}

fn generic_key() -> impl Strategy<Value = Planted> {
    plant_in(
        &[
            "api_key={}",
            "apikey: {}",
            "token={}",
            "secret={}",
            "X-Api-Key: {}",
            "https://api.example.com/v1?api_key={}&page=2",
        ],
        "[A-Za-z0-9_-]{12,40}",
    )
}

fn planted() -> impl Strategy<Value = Planted> {
    prop_oneof![
        anthropic_key(),
        openai_key(),
        github_token(),
        slack_token(),
        aws_key_id(),
        aws_secret_key(),
        bearer_token(),
        password(),
        url_credentials(),
        curl_user(),
        private_key(),
        jwt(),
        generic_key(),
    ]
}

/// Ordinary text with secrets planted between its parts, and what the text
/// must become.
fn text_with_secrets() -> impl Strategy<Value = (String, String, Vec<String>)> {
    let part = (
        ordinary_text(),
        prop::sample::select(vec![" ", "\n", "\t", "\n\n"]),
        planted(),
        prop::sample::select(vec![" ", "\n", "\t", "\n\n"]),
    );
    (prop::collection::vec(part, 1..4), ordinary_text()).prop_map(|(parts, tail)| {
        let (mut text, mut expected, mut secrets) = (String::new(), String::new(), Vec::new());
        for (before, open, secret, close) in parts {
            let close = if secret.to_eol { "\n" } else { close };
            text += &format!("{before}{open}{}{close}", secret.text);
            expected += &format!("{before}{open}{}{close}", secret.expected);
            secrets.extend(secret.secrets);
        }
        text += &tail;
        expected += &tail;
        (text, expected, secrets)
    })
}

/// Any JSON, with secrets planted in strings and under secret-naming keys,
/// and the secrets planted.
fn json_with_secrets() -> impl Strategy<Value = (Value, Vec<String>)> {
    let leaf = prop_oneof![
        ordinary_text().prop_map(|t| (Value::String(t), vec![])),
        text_with_secrets().prop_map(|(t, _, s)| (Value::String(t), s)),
        any::<i64>().prop_map(|n| (json!(n), vec![])),
        any::<bool>().prop_map(|b| (json!(b), vec![])),
        Just((Value::Null, vec![])),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let secret_key = prop::sample::select(vec![
            "password",
            "DB_PASSWORD",
            "passwd",
            "api-key",
            "apiKey",
            "X-Api-Key",
            "client_secret",
            "Authorization",
            "credentials",
            "accessToken",
            "private_key",
            "AWS_SECRET_ACCESS_KEY",
            "token",
        ]);
        // A value only the key says is secret: no rule for text knows it.
        let hidden = (secret_key.clone(), "[A-Za-z0-9]{12,30}")
            .prop_map(|(k, s)| (k.to_owned(), Value::String(s.clone()), vec![s]));
        let under_secret_key =
            (secret_key, inner.clone()).prop_map(|(k, (v, s))| (k.to_owned(), v, s));
        let ordinary = (word(), inner.clone()).prop_map(|(k, (v, s))| (k, v, s));
        prop_oneof![
            prop::collection::vec(inner, 0..5).prop_map(|items| {
                let (values, secrets): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                (Value::Array(values), secrets.concat())
            }),
            prop::collection::vec(
                prop_oneof![3 => ordinary, 1 => hidden, 1 => under_secret_key],
                0..5
            )
            .prop_map(|entries| {
                let mut secrets = Vec::new();
                let map = entries
                    .into_iter()
                    .map(|(k, v, s)| {
                        secrets.extend(s);
                        (k, v)
                    })
                    .collect();
                (Value::Object(map), secrets)
            }),
        ]
    })
}

fn ordinary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ordinary_text().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn planted_secrets_never_survive((text, expected, secrets) in text_with_secrets()) {
        let out = redact_text(&text);
        for secret in &secrets {
            prop_assert!(!out.contains(secret.as_str()), "{secret:?} survived in {out:?}");
        }
        prop_assert!(out.contains(REDACTED));
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn ordinary_text_is_unchanged(text in ordinary_text()) {
        let out = redact_text(&text);
        prop_assert!(matches!(out, Cow::Borrowed(t) if t == text), "changed {text:?} to {out:?}");
    }

    #[test]
    fn json_keeps_no_secret_at_any_depth((value, secrets) in json_with_secrets()) {
        let out = redact_json(&value);
        let printed = out.to_string();
        for secret in &secrets {
            prop_assert!(!printed.contains(secret.as_str()), "{secret:?} survived in {printed}");
        }
        prop_assert_eq!(redact_json(&out), out);
    }

    #[test]
    fn ordinary_json_is_unchanged(value in ordinary_json()) {
        prop_assert_eq!(redact_json(&value), value);
    }

    #[test]
    fn redacting_twice_is_redacting_once(
        (text, _, _) in text_with_secrets(),
        noise in "[ -~\n]{0,80}",
        at in any::<prop::sample::Index>(),
    ) {
        // Secrets in well-formed surroundings and in printable junk around them.
        let cut = at.index(text.len() + 1);
        let cut = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let text = format!("{}{noise}{}", &text[..cut], &text[cut..]);
        let once = redact_text(&text).into_owned();
        let twice = redact_text(&once);
        prop_assert!(matches!(twice, Cow::Borrowed(_)), "second pass changed {once:?} to {twice:?}");
    }

    #[test]
    fn any_text_redacts_without_panicking_and_stays_put(text in "\\PC{0,200}") {
        let once = redact_text(&text).into_owned();
        prop_assert_eq!(redact_text(&once), once.as_str());
    }
}
