//! `CONNECT` tunnels for agents, to declared hosts only. Inside the sandbox
//! `HTTPS_PROXY` points here with the lease token as the proxy password;
//! the tunnel opens only when the token is live and its grant names the
//! host (and port). Only `CONNECT` is spoken: plain-HTTP requests are
//! refused, so every allowed exchange is TLS end to end.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::listener::Stream;
use crate::metrics as m;
use crate::{Leases, Listener};

const MAX_HEAD: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One `permissions.network` entry: a host, and a port when one is given
/// (without one, 443 and 80).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    host: String,
    port: Option<u16>,
}

impl HostRule {
    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(entry: &str) -> Option<Self> {
        let (host, port) = split_host_port(entry.trim())?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return None;
        }
        Some(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.host.eq_ignore_ascii_case(host)
            && match self.port {
                Some(p) => p == port,
                None => port == 443 || port == 80,
            }
    }

    /// A name (not an address or `localhost`) must not resolve to this
    /// machine or its link: that would be DNS pointing into the platform.
    fn is_name(&self) -> bool {
        self.host.parse::<IpAddr>().is_err() && self.host != "localhost"
    }
}

/// `host[:port]` or `[v6][:port]`; `None` on a malformed port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_unspecified() || v4.is_link_local() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_local(IpAddr::V4(v4)))
        }
    }
}

/// The tunnel proxy; cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectProxy {
    leases: Leases,
}

impl ConnectProxy {
    pub fn new(leases: Leases) -> Self {
        crate::metrics::describe();
        Self { leases }
    }

    /// Serves `listener` until `stop`. Open tunnels end with `stop` too.
    pub async fn serve(self, listener: Listener, stop: CancellationToken) {
        let tunnels = stop.clone();
        listener
            .serve_each("egress proxy", stop, |stream| {
                let (proxy, stop) = (self.clone(), tunnels.clone());
                async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = proxy.tunnel(stream) => {}
                    }
                }
            })
            .await;
    }

    async fn tunnel(&self, mut client: Box<dyn Stream>) {
        let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
            Ok(Ok(head)) => head,
            _ => {
                let _ = reply(&mut client, "400 Bad Request", "").await;
                return;
            }
        };
        let (head_text, early) = head;
        match self.decide(&head_text).await {
            Err((status, extra, why)) => {
                metrics::counter!(m::EGRESS_TUNNELS, "outcome" => "denied").increment(1);
                tracing::info!(why, "egress proxy: tunnel refused");
                let _ = reply(&mut client, status, extra).await;
            }
            Ok((target, addrs, session)) => {
                let mut upstream = None;
                for addr in addrs {
                    if let Ok(Ok(s)) =
                        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
                    {
                        upstream = Some(s);
                        break;
                    }
                }
                let Some(mut upstream) = upstream else {
                    metrics::counter!(m::EGRESS_TUNNELS, "outcome" => "failed").increment(1);
                    let _ = reply(&mut client, "502 Bad Gateway", "").await;
                    return;
                };
                metrics::counter!(m::EGRESS_TUNNELS, "outcome" => "opened").increment(1);
                tracing::debug!(session.id = %session, target = %target.escape_debug(), "egress proxy: tunnel opened");
                if reply(&mut client, "200 Connection Established", "")
                    .await
                    .is_err()
                {
                    return;
                }
                if !early.is_empty() && upstream.write_all(&early).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        }
    }

    /// Where the tunnel may go, or the refusal.
    #[allow(clippy::type_complexity)]
    async fn decide(
        &self,
        head: &str,
    ) -> Result<
        (String, Vec<std::net::SocketAddr>, uuid::Uuid),
        (&'static str, &'static str, &'static str),
    > {
        const AUTH: &str = "Proxy-Authenticate: Basic realm=\"csp\"\r\n";
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut words = request_line.split(' ');
        let (Some(method), Some(target)) = (words.next(), words.next()) else {
            return Err(("400 Bad Request", "", "malformed request line"));
        };
        if method != "CONNECT" {
            return Err(("405 Method Not Allowed", "", "not CONNECT"));
        }
        let token = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
            .and_then(|(_, value)| basic_password(value.trim()));
        let Some(grant) = token.as_deref().and_then(|t| self.leases.check(t)) else {
            return Err(("407 Proxy Authentication Required", AUTH, "no valid token"));
        };
        let Some((host, Some(port))) = split_host_port(target) else {
            return Err(("400 Bad Request", "", "target is not host:port"));
        };
        let Some(rule) = grant.hosts.iter().find(|r| r.allows(host, port)) else {
            return Err(("403 Forbidden", "", "host not declared by an active plugin"));
        };
        let addrs: Vec<_> = match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => return Err(("502 Bad Gateway", "", "host does not resolve")),
        };
        if rule.is_name() && addrs.iter().any(|a| is_local(a.ip())) {
            return Err((
                "403 Forbidden",
                "",
                "a declared name resolves to a local address",
            ));
        }
        Ok((target.to_owned(), addrs, grant.session))
    }
}

/// The password of `Basic base64(user:password)`.
fn basic_password(value: &str) -> Option<String> {
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':')?.1.to_owned())
}

/// Reads up to the blank line; returns the head and any bytes after it.
async fn read_head(client: &mut Box<dyn Stream>) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let early = buf.split_off(end + 4);
            let head = String::from_utf8(buf).map_err(|_| std::io::ErrorKind::InvalidData)?;
            return Ok((head, early));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

async fn reply(client: &mut Box<dyn Stream>, status: &str, extra: &str) -> std::io::Result<()> {
    let text = format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\n\r\n");
    client.write_all(text.as_bytes()).await?;
    client.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_parse_and_match() {
        let r = HostRule::parse("API.Slack.com").unwrap();
        assert!(r.allows("api.slack.com", 443) && r.allows("api.slack.com", 80));
        assert!(!r.allows("api.slack.com", 8443) && !r.allows("slack.com", 443));
        let r = HostRule::parse("127.0.0.1:9000").unwrap();
        assert!(r.allows("127.0.0.1", 9000) && !r.allows("127.0.0.1", 443));
        assert!(!r.is_name());
        let r = HostRule::parse("[::1]:8080").unwrap();
        assert!(r.allows("::1", 8080));
        assert!(HostRule::parse("a b").is_none());
        assert!(HostRule::parse("host:99999").is_none());
        assert!(HostRule::parse("").is_none());
    }

    #[test]
    fn local_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.1.1",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_local(ip.parse().unwrap()), "{ip}");
        }
        assert!(!is_local("93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn basic_auth_yields_the_password() {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("csp:csp-agent-abc")
        );
        assert_eq!(basic_password(&v).as_deref(), Some("csp-agent-abc"));
        assert_eq!(basic_password("Bearer x"), None);
    }

    /// The agent writes the request head: whatever it sends is refused with
    /// a status (or tunnels where its grant allows), never a panic.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Where the one lease of these tests may go: an address, so that
        /// deciding never asks DNS.
        const GRANTED: &str = "127.0.0.1:9";

        fn head() -> impl Strategy<Value = String> {
            let method = prop_oneof![Just("CONNECT".to_owned()), "[A-Z]{0,8}", "\\PC{0,8}"];
            let target = prop_oneof![
                Just(GRANTED.to_owned()),
                "[a-z0-9.:\\[\\]-]{0,24}",
                "\\PC{0,24}",
                ("[a-z.]{1,12}", any::<u16>()).prop_map(|(h, p)| format!("{h}:{p}")),
            ];
            let auth = prop_oneof![
                Just(None),
                Just(Some("Basic".to_owned())),
                "\\PC{0,40}".prop_map(Some),
                "\\PC{0,20}".prop_map(|t| Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("csp:{t}"))
                ))),
            ];
            (method, target, "\\PC{0,12}", auth, prop::bool::ANY).prop_map(
                |(method, target, version, auth, real_token)| {
                    let mut head = format!("{method} {target} {version}\r\n");
                    // Marks where the test puts the live token; first, as
                    // the first Proxy-Authorization is the one read.
                    if real_token {
                        head.push_str("Proxy-Authorization: LIVE\r\n");
                    }
                    if let Some(value) = auth {
                        head.push_str(&format!("Proxy-Authorization: {value}\r\n"));
                    }
                    head
                },
            )
        }

        proptest! {
            // A fixed seed, nothing written to disk: every run checks the
            // same cases (PROPTEST_RNG_SEED explores others).
            #![proptest_config(csp_testkit::proptest_config(256))]

            #[test]
            fn any_head_is_a_refusal_or_the_granted_tunnel(head in head(), noise in "\\PC{0,200}") {
                let leases = Leases::new();
                let lease = leases.issue(uuid::Uuid::nil(), &[GRANTED.to_owned()]);
                let live = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("csp:{}", lease.token()))
                );
                let proxy = ConnectProxy::new(leases);
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                for head in [head.replace("LIVE", &live), noise] {
                    match runtime.block_on(proxy.decide(&head)) {
                        Ok((target, _, _)) => {
                            prop_assert!(head.contains(&live), "tunnelled without the token: {:?}", head);
                            prop_assert_eq!(split_host_port(&target), Some(("127.0.0.1", Some(9))));
                        }
                        Err((status, _, reason)) => {
                            prop_assert!(
                                ["400", "403", "405", "407", "502"].contains(&&status[..3]),
                                "{} for {:?}", status, head
                            );
                            prop_assert!(!reason.is_empty());
                        }
                    }
                }
            }

            #[test]
            fn host_and_port_split_and_read_back(host in "[a-z0-9.-]{1,20}", v6 in any::<[u16; 8]>(), port in any::<u16>()) {
                let plain = format!("{host}:{port}");
                prop_assert_eq!(split_host_port(&plain), Some((host.as_str(), Some(port))));
                let ip = std::net::Ipv6Addr::from(v6).to_string();
                let bracketed = format!("[{ip}]:{port}");
                prop_assert_eq!(split_host_port(&bracketed), Some((ip.as_str(), Some(port))));
            }

            #[test]
            fn any_proxy_authorization_yields_a_password_or_none(value in "\\PC{0,60}", password in "\\PC{0,30}") {
                let _ = basic_password(&value);
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("csp:{password}"));
                prop_assert_eq!(basic_password(&format!("Basic {encoded}")), Some(password));
            }
        }
    }
}
