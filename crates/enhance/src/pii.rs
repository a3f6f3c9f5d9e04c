//! What ticket text loses before it leaves for the model: secrets always (`csp-redact`), and,
//! when the tenant asks for `mask_pii`, e-mail addresses and phone numbers.
//!
//! Phone numbers are the hard part: tickets are full of digit groups that are not phones. A
//! candidate is masked only when it has 7 to 15 digits and looks dialled — a leading `+`, an
//! area code in parentheses, three or more groups, or two groups joined by `-` — and it neither
//! touches a word (`TKT-5551234`, `#5551234`) nor overlaps an IPv4 address, a date or a time.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

pub const EMAIL_MASK: &str = "[EMAIL]";
pub const PHONE_MASK: &str = "[PHONE]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}")
        .expect("the e-mail pattern is valid")
});

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?\d{1,14}(?:[ .\-]\d{1,14}){0,5}")
        .expect("the phone pattern is valid")
});

/// Digit groups that are something else and must survive: IPv4 addresses, dates, times.
static NOT_PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\d{1,3}(?:\.\d{1,3}){3}|\d{4}[\-./]\d{1,2}[\-./]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4}|\d{1,2}:\d{2}",
    )
    .expect("the exclusion pattern is valid")
});

/// `text` as it may be sent to the model: secrets replaced by `[REDACTED]`, and with
/// `mask_pii` e-mail addresses by [`EMAIL_MASK`] and phone numbers by [`PHONE_MASK`].
pub fn prepare_text(text: &str, mask_pii: bool) -> String {
    let redacted = csp_redact::redact_text(text);
    if !mask_pii {
        return redacted.into_owned();
    }
    mask_phones(&mask_emails(&redacted)).into_owned()
}

/// E-mail addresses replaced by [`EMAIL_MASK`].
pub fn mask_emails(text: &str) -> Cow<'_, str> {
    EMAIL.replace_all(text, EMAIL_MASK)
}

/// Phone numbers replaced by [`PHONE_MASK`].
pub fn mask_phones(text: &str) -> Cow<'_, str> {
    let protected: Vec<Range<usize>> = NOT_PHONE.find_iter(text).map(|m| m.range()).collect();
    let mut spans: Vec<Range<usize>> = Vec::new();
    for m in PHONE.find_iter(text) {
        let candidate = m.as_str();
        // Separators the pattern swallowed at the end belong to the sentence.
        let end = m.start() + candidate.trim_end_matches([' ', '.', '-']).len();
        let span = m.start()..end;
        if looks_dialled(&text[span.clone()])
            && standalone(text, &span)
            && !protected
                .iter()
                .any(|p| p.start < span.end && span.start < p.end)
        {
            spans.push(span);
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for span in spans {
        out.push_str(&text[done..span.start]);
        out.push_str(PHONE_MASK);
        done = span.end;
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

fn looks_dialled(candidate: &str) -> bool {
    let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return false;
    }
    if candidate.starts_with('+') || candidate.contains('(') {
        return true;
    }
    let groups: Vec<&str> = candidate
        .split([' ', '.', '-'])
        .filter(|g| !g.is_empty())
        .collect();
    match groups.len() {
        0 | 1 => false,
        // `555-1234` dials; `1000 2000` is two numbers.
        2 => candidate.contains('-') && !candidate.contains(' '),
        _ => {
            // `1.2.3.4.5` is a version, `555.123.4567` a phone.
            let dotted = candidate.contains('.') && !candidate.contains([' ', '-']);
            !dotted || groups.iter().any(|g| g.len() >= 4)
        }
    }
}

/// Not glued to a word, a ticket marker or a longer number: `TKT-5551234567`, `#5551234`,
/// `x5551234567`, `1.5551234567`.
fn standalone(text: &str, span: &Range<usize>) -> bool {
    let before = text[..span.start].chars().next_back();
    let after = text[span.end..].chars().next();
    let glued_before = before.is_some_and(|c| {
        c.is_alphanumeric() || matches!(c, '#' | '-' | '_' | '/' | '.' | ':' | '@')
    });
    let glued_after = after
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '@' | ':'))
        || text[span.end..].starts_with(['.', '-'])
            && text[span.end..]
                .chars()
                .nth(1)
                .is_some_and(|c| c.is_ascii_digit());
    !glued_before && !glued_after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_always_redacted() {
        let text = "VPN fails, my password: Hunter2Hunter2 and mail bob@example.com";
        let plain = prepare_text(text, false);
        assert!(!plain.contains("Hunter2Hunter2"), "{plain}");
        assert!(plain.contains("bob@example.com"), "{plain}");
        let masked = prepare_text(text, true);
        assert!(!masked.contains("Hunter2Hunter2"), "{masked}");
        assert!(masked.contains("mail [EMAIL]"), "{masked}");
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(
            mask_emails("From: Jane.Doe+it@mail.acme-corp.co.uk, cc j_d@x.io."),
            "From: [EMAIL], cc [EMAIL]."
        );
        assert_eq!(
            mask_emails("an @ sign and user@localhost"),
            "an @ sign and user@localhost"
        );
    }

    #[test]
    fn phone_numbers_are_masked() {
        for (text, want) in [
            ("call +44 20 7946 0958 now", "call [PHONE] now"),
            ("call (555) 123-4567.", "call [PHONE]."),
            ("call 555-123-4567, or", "call [PHONE], or"),
            ("call 555.123.4567", "call [PHONE]"),
            ("call +15551234567", "call [PHONE]"),
            ("desk 555-1234 please", "desk [PHONE] please"),
            ("Tel: 030 1234 5678", "Tel: [PHONE]"),
            ("+49 (0)30 123456", "[PHONE]"),
        ] {
            assert_eq!(mask_phones(text), want, "{text}");
        }
    }

    #[test]
    fn addresses_dates_ids_and_numbers_are_not_phones() {
        for text in [
            "server 192.168.100.200 down",
            "gateway 10.0.0.1 and 10.10.10.10",
            "since 2026-01-15 10:30",
            "since 2026-01-15T10:30:00Z",
            "on 15.01.2026 at 10:30:45",
            "on 01/15/2026",
            "ticket TKT-5551234567",
            "ticket #5551234",
            "INC-555-123-4567",
            "order 12345678",
            "between 1000 2000 users",
            "version 10.20.30.40.50",
            "port 8080 and error 0x80070005",
            "fe80::1 and 2001:db8::1234:5678",
            "KB4012345678",
            "uuid 123e4567-e89b-12d3-a456-426614174000",
        ] {
            assert_eq!(mask_phones(text), text, "{text}");
        }
    }

    #[test]
    fn masking_is_idempotent() {
        let text = "bob@example.com 555-123-4567 on 10.0.0.1";
        let once = prepare_text(text, true);
        assert_eq!(once, "[EMAIL] [PHONE] on 10.0.0.1");
        assert_eq!(prepare_text(&once, true), once);
    }
}
