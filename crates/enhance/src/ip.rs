//! IP addresses in ticket text (seed story 2.7), found by the standard library's parsers rather
//! than a loose regex.
//!
//! The text is cut into candidate tokens at every character that cannot be part of an address
//! as tickets write them (anything but ASCII letters and digits, `.`, `:`, `%`, `_`; brackets
//! too, so `[2001:db8::1]:443` leaves the address and a `:443` that is none).
//! Letters stay in tokens on purpose: `v10.0.0.1` or `host10.0.0.1` is one token that is no
//! address, rather than an address with a prefix. Each token is then tried as a whole, so
//! `1.2.3` and the version string `10.0.0.1.5` are never addresses, and only these decorations
//! are taken off: trailing sentence punctuation (`10.0.0.1.`, `10.0.0.1:`), a port
//! (`10.0.0.1:8080`), an IPv6 zone
//! (`fe80::1%eth0`, dropped), and a `label:` in front (`IP:10.0.0.1`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// At most this many addresses are taken from one ticket.
pub const MAX_IPS: usize = 20;

/// The distinct IPv4 and IPv6 addresses in `text`, in order of first appearance, at most
/// [`MAX_IPS`]. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are reported as IPv4, the
/// form an inventory keeps.
pub fn extract_ips(text: &str) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    for token in text.split(|c: char| !is_token_char(c)) {
        if found.len() == MAX_IPS {
            break;
        }
        if let Some(ip) = parse_token(token).map(|ip| ip.to_canonical())
            && !found.contains(&ip)
        {
            found.push(ip);
        }
    }
    found
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '%' | '_')
}

fn parse_token(token: &str) -> Option<IpAddr> {
    if token.is_empty() {
        return None;
    }
    parse_undecorated(token).or_else(|| {
        // `IP:10.0.0.1`, `host:fe80::1`: a label of letters, then the address.
        let (label, rest) = token.split_once(':')?;
        let is_label = label.starts_with(|c: char| c.is_ascii_alphabetic())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_label {
            parse_undecorated(rest)
        } else {
            None
        }
    })
}

/// A token that is an address, possibly with a port, a zone or punctuation after it.
fn parse_undecorated(token: &str) -> Option<IpAddr> {
    if let Some(ip) = parse_bare(token) {
        return Some(ip);
    }
    // Sentence punctuation: "down since 10.0.0.1." or "10.0.0.1: unreachable".
    let trimmed = token.trim_end_matches(['.', ':']);
    if trimmed.len() < token.len()
        && let Some(ip) = parse_bare(trimmed)
    {
        return Some(ip);
    }
    // An IPv4 address with a port. (An IPv6 address with a port needs brackets: without them
    // the port is just another group.)
    let (host, port) = trimmed.rsplit_once(':')?;
    if is_port(port) {
        host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        None
    }
}

/// An address with nothing around it; an IPv6 zone (`%eth0`) is accepted and dropped.
fn parse_bare(s: &str) -> Option<IpAddr> {
    if let Ok(v4) = s.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    let (addr, zone) = match s.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (s, None),
    };
    if zone.is_some_and(|z| {
        z.is_empty()
            || !z
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    }) {
        return None;
    }
    // A bare `::` is more often C++ or Rust than the unspecified address.
    if addr == "::" {
        return None;
    }
    addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_testkit::proptest_config;
    use proptest::prelude::*;

    fn ips(text: &str) -> Vec<String> {
        extract_ips(text).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ipv4_in_prose() {
        assert_eq!(
            ips("Server 192.168.1.10 cannot reach 10.0.0.1, nor 172.16.0.254."),
            ["192.168.1.10", "10.0.0.1", "172.16.0.254"]
        );
        assert_eq!(
            ips("(10.0.0.1) '10.0.0.2' \"10.0.0.3\" <10.0.0.4>"),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        );
        assert_eq!(ips("ip=10.1.1.1;gw=10.1.1.254"), ["10.1.1.1", "10.1.1.254"]);
        assert_eq!(
            ips("10.0.0.1/24 and 10.0.0.1-10.0.0.9"),
            ["10.0.0.1", "10.0.0.9"]
        );
        assert_eq!(ips("since 10.0.0.1... odd"), ["10.0.0.1"]);
    }

    #[test]
    fn ports_labels_and_urls() {
        assert_eq!(ips("connect to 10.0.0.5:8080 failed"), ["10.0.0.5"]);
        assert_eq!(ips("10.0.0.5: unreachable"), ["10.0.0.5"]);
        assert_eq!(
            ips("IP:10.0.0.6 host_ip:10.0.0.7"),
            ["10.0.0.6", "10.0.0.7"]
        );
        assert_eq!(
            ips("see https://10.0.0.8:8443/admin and http://[2001:db8::8]:8080/x"),
            ["10.0.0.8", "2001:db8::8"]
        );
        assert_eq!(ips("10.0.0.5:99999 is no port"), Vec::<String>::new());
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(
            ips("link fe80::1%eth0 and [fe80::2%en0]:22 and 2001:db8:0:0:0:0:0:1."),
            ["fe80::1", "fe80::2", "2001:db8::1"]
        );
        assert_eq!(
            ips("loopback ::1, mapped ::ffff:10.0.0.9"),
            ["::1", "10.0.0.9"]
        );
        assert_eq!(ips("[2001:db8::5]"), ["2001:db8::5"]);
        assert_eq!(ips("2001:DB8::A"), ["2001:db8::a"]);
    }

    #[test]
    fn things_that_are_not_addresses() {
        for text in [
            "version 1.2.3",
            "build 10.0.0.1.5",
            "v10.0.0.1",
            "host10.0.0.1",
            "256.1.1.1",
            "1.2.3.4.",
            "at 10:30:45 today",
            "MAC 00:1a:2b:3c:4d:5e",
            "std::net::IpAddr and ::",
            "01.02.03.04",
            "1..2.3",
            "2026-01-15T10:00:00Z",
            "deadbeef",
            "fe80::1%",
        ] {
            let found = ips(text);
            let expected: &[&str] = if text == "1.2.3.4." {
                &["1.2.3.4"]
            } else {
                &[]
            };
            assert_eq!(found, expected, "{text}");
        }
    }

    #[test]
    fn duplicates_are_dropped_and_order_kept() {
        assert_eq!(
            ips("10.0.0.2 10.0.0.1 10.0.0.2 [10.0.0.1]:80 ::ffff:10.0.0.2"),
            ["10.0.0.2", "10.0.0.1"]
        );
    }

    #[test]
    fn at_most_max_ips() {
        let text: String = (0..50).map(|i| format!("10.0.1.{i} ")).collect();
        let found = extract_ips(&text);
        assert_eq!(found.len(), MAX_IPS);
        assert_eq!(found[19].to_string(), "10.0.1.19");
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn any_ipv4_between_words_is_found(a: u8, b: u8, c: u8, d: u8, before in "[ ,(\\[]{1,3}", after in "[,.:)\\]]{0,2}") {
            let ip = Ipv4Addr::new(a, b, c, d);
            let text = format!("server{before}{ip}{after} down");
            prop_assert_eq!(extract_ips(&text), vec![IpAddr::V4(ip)]);
        }

        #[test]
        fn any_ipv6_is_found(segments: [u16; 8], port in proptest::option::of(1u16..)) {
            prop_assume!(segments != [0; 8]);
            let ip = Ipv6Addr::from(segments);
            let text = match port {
                Some(p) => format!("at [{ip}]:{p} now"),
                None => format!("at {ip} now"),
            };
            prop_assert_eq!(extract_ips(&text), vec![IpAddr::V6(ip).to_canonical()]);
        }

        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let found = extract_ips(&text);
            prop_assert!(found.len() <= MAX_IPS);
        }
    }
}
