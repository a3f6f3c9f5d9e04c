//! Tokens and keys cross between this crate and Python's
//! `cryptography.fernet` both ways. Keys and tokens go to Python on stdin,
//! never in argv, where any process on the machine could read them.

use csp_secrets::{Keyring, Sealed, SecretKey};
use secrecy::ExposeSecret as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

const SETUP_HINT: &str = "run `scripts/setup.sh python` to install it";

/// Runs `python3 -c script` with `stdin` and returns its stdout. Fails (never
/// skips) when python3 or the cryptography package is missing: an
/// interoperability test that quietly does nothing proves nothing.
fn python(script: &str, stdin: &str) -> String {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {SETUP_HINT}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("write to python3");
    let output = child.wait_with_output().expect("wait for python3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'cryptography'") {
        panic!("python3 lacks the cryptography package; {SETUP_HINT}");
    }
    assert!(
        output.status.success(),
        "python3 failed ({}): {stderr}",
        output.status
    );
    String::from_utf8(output.stdout).expect("python3 printed UTF-8")
}

const PLAINTEXT: &str = "xoxb-ünïcödé 🔑 token with spaces";

#[test]
fn python_opens_what_rust_seals() {
    let (key, key_text) = SecretKey::generate();
    let sealed = Keyring::new(key, vec![]).seal(PLAINTEXT);
    let script = "\
import sys
from cryptography.fernet import Fernet
key, token = sys.stdin.read().split()
sys.stdout.buffer.write(Fernet(key.encode()).decrypt(token.encode()))
";
    let stdin = format!("{}\n{}\n", key_text.expose_secret(), sealed.token);
    assert_eq!(python(script, &stdin), PLAINTEXT);
}

#[test]
fn rust_opens_what_python_seals_and_agrees_on_the_key_version() {
    let script = "\
import base64, hashlib, sys
from cryptography.fernet import Fernet
key = Fernet.generate_key()
print(key.decode())
print(hashlib.sha256(base64.urlsafe_b64decode(key)).hexdigest()[:16])
print(Fernet(key).encrypt(sys.stdin.buffer.read()).decode())
";
    let output = python(script, PLAINTEXT);
    let [key_text, python_version, token] = output.lines().collect::<Vec<_>>()[..] else {
        panic!("expected key, version and token lines, got {output:?}");
    };
    let key = SecretKey::parse(key_text).unwrap();
    assert_eq!(key.version(), python_version);
    let sealed = Sealed {
        token: token.to_owned(),
        key_version: key.version().to_owned(),
    };
    let opened = Keyring::new(key, vec![]).open(&sealed).unwrap();
    assert_eq!(opened.expose_secret(), PLAINTEXT);
}
