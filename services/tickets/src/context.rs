//! Checks on the context data admins upload: knowledge-base articles and
//! the system inventory. Each message names the row and the field
//! (`articles[3].url must be an http or https URL`).

use csp_proto::v1 as pb;
use csp_store::{KbArticleRecord, SystemRecord};
use std::net::IpAddr;

/// Rows per call: a bigger upload is split by the caller, so one call is
/// one bounded transaction.
pub(crate) const MAX_ROWS: usize = 10_000;
pub(crate) const MAX_TITLE_CHARS: usize = 500;
pub(crate) const MAX_SUMMARY_CHARS: usize = 2_000;
pub(crate) const MAX_BODY_CHARS: usize = 100_000;
pub(crate) const MAX_HOSTNAME_CHARS: usize = 255;
pub(crate) const MAX_LABEL_CHARS: usize = 200;

pub(crate) fn check_articles(articles: &[pb::KbArticle]) -> Result<Vec<KbArticleRecord>, String> {
    check_count("articles", articles.len())?;
    articles
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let at = |field: &str| format!("articles[{i}].{field}");
            let url = crate::tenants::check_url(&at("url"), &a.url)?;
            Ok(KbArticleRecord {
                title: text(&at("title"), &a.title, MAX_TITLE_CHARS, true)?,
                summary: text(&at("summary"), &a.summary, MAX_SUMMARY_CHARS, false)?,
                url,
                body: text(&at("body"), &a.body, MAX_BODY_CHARS, false)?,
            })
        })
        .collect()
}

pub(crate) fn check_systems(systems: &[pb::SystemInfo]) -> Result<Vec<SystemRecord>, String> {
    check_count("systems", systems.len())?;
    systems
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = |field: &str| format!("systems[{i}].{field}");
            let ip =
                s.ip.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{} must be an IPv4 or IPv6 address", at("ip")))?;
            Ok(SystemRecord {
                ip,
                hostname: text(&at("hostname"), &s.hostname, MAX_HOSTNAME_CHARS, true)?,
                role: text(&at("role"), &s.role, MAX_LABEL_CHARS, false)?,
                client: text(&at("client"), &s.client, MAX_LABEL_CHARS, false)?,
                location: text(&at("location"), &s.location, MAX_LABEL_CHARS, false)?,
            })
        })
        .collect()
}

fn check_count(field: &str, n: usize) -> Result<(), String> {
    if n > MAX_ROWS {
        return Err(format!(
            "{field} has {n} entries; at most {MAX_ROWS} per call"
        ));
    }
    Ok(())
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(format!("{field} is required"));
    }
    if v.chars().count() > max {
        return Err(format!("{field} exceeds {max} characters"));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article() -> pb::KbArticle {
        pb::KbArticle {
            title: "Reset VPN".into(),
            summary: "How to".into(),
            url: "https://kb.example/vpn".into(),
            body: "Steps".into(),
        }
    }

    fn system() -> pb::SystemInfo {
        pb::SystemInfo {
            ip: "10.0.0.5".into(),
            hostname: "db01".into(),
            role: "database".into(),
            client: "Acme".into(),
            location: "DC1".into(),
        }
    }

    #[test]
    fn good_rows_pass() {
        let a = check_articles(&[article()]).unwrap();
        assert_eq!(a[0].url, "https://kb.example/vpn");
        let mut v6 = system();
        v6.ip = " 2001:db8::1 ".into();
        let s = check_systems(&[system(), v6]).unwrap();
        assert_eq!(s[1].ip, "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_rows_are_named_by_index_and_field() {
        let mut a = article();
        a.url = "kb/vpn".into();
        assert_eq!(
            check_articles(&[article(), a]).unwrap_err(),
            "articles[1].url must be an http or https URL"
        );
        let mut a = article();
        a.title = "".into();
        assert_eq!(
            check_articles(&[a]).unwrap_err(),
            "articles[0].title is required"
        );
        let mut a = article();
        a.summary = "s".repeat(2001);
        assert_eq!(
            check_articles(&[a]).unwrap_err(),
            "articles[0].summary exceeds 2000 characters"
        );
        let mut s = system();
        s.ip = "10.0.0.256".into();
        assert_eq!(
            check_systems(&[s]).unwrap_err(),
            "systems[0].ip must be an IPv4 or IPv6 address"
        );
        let mut s = system();
        s.hostname = "h".repeat(256);
        assert_eq!(
            check_systems(&[s]).unwrap_err(),
            "systems[0].hostname exceeds 255 characters"
        );
    }

    #[test]
    fn more_than_ten_thousand_rows_are_refused() {
        let many = vec![system(); MAX_ROWS + 1];
        assert_eq!(
            check_systems(&many).unwrap_err(),
            "systems has 10001 entries; at most 10000 per call"
        );
        assert_eq!(check_systems(&many[..MAX_ROWS]).unwrap().len(), MAX_ROWS);
    }
}
