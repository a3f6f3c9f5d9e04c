//! The proxies over real sockets: a scripted upstream records what reaches
//! it, and a client plays the agent.

use std::time::Duration;

use csp_egress::{ConnectProxy, Credential, Leases, Listener, ListenerAddr, ModelProxy, Upstream};
use futures::StreamExt;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const REAL_KEY: &str = "sk-ant-real-key-never-in-an-agent";

/// An upstream that answers each request with two SSE chunks, the second
/// only once `release` fires, and reports each request head it got.
async fn upstream() -> (
    String,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedSender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads_tx, heads) = mpsc::unbounded_channel();
    let (release, mut released) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            heads_tx
                .send(String::from_utf8_lossy(&buf).into_owned())
                .unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            let first = b"event: message_start\ndata: {}\n\n";
            stream
                .write_all(format!("{:x}\r\n", first.len()).as_bytes())
                .await
                .unwrap();
            stream.write_all(first).await.unwrap();
            stream.write_all(b"\r\n").await.unwrap();
            stream.flush().await.unwrap();
            released.recv().await;
            let second = b"event: message_stop\ndata: {}\n\n";
            stream
                .write_all(format!("{:x}\r\n", second.len()).as_bytes())
                .await
                .unwrap();
            stream.write_all(second).await.unwrap();
            stream.write_all(b"\r\n0\r\n\r\n").await.unwrap();
            stream.flush().await.unwrap();
        }
    });
    (format!("http://{addr}/gateway"), heads, release)
}

async fn model_proxy(base: &str, leases: &Leases) -> (String, CancellationToken) {
    let upstream = Upstream::new(
        Some(base),
        Credential::ApiKey(SecretString::from(REAL_KEY.to_owned())),
    )
    .unwrap();
    let proxy = ModelProxy::new(upstream, leases.clone()).unwrap();
    let listener = Listener::loopback().await.unwrap();
    let ListenerAddr::Tcp(addr) = listener.local_addr() else {
        unreachable!()
    };
    let stop = CancellationToken::new();
    tokio::spawn(proxy.serve(listener, stop.clone()));
    (format!("http://{addr}"), stop)
}

#[tokio::test]
async fn the_model_proxy_swaps_the_token_for_the_key_and_streams_unbuffered() {
    let (base, mut heads, release) = upstream().await;
    let leases = Leases::new();
    let (proxy, stop) = model_proxy(&base, &leases).await;
    let lease = leases.issue(Uuid::new_v4(), &[]);

    let response = reqwest::Client::new()
        .post(format!("{proxy}/v1/messages?beta=true"))
        .header("x-api-key", lease.token())
        .header("anthropic-version", "2023-06-01")
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with("POST /gateway/v1/messages?beta=true HTTP/1.1"),
        "{head}"
    );
    assert!(head.contains(&format!("x-api-key: {REAL_KEY}")), "{head}");
    assert!(
        !head.contains(lease.token()),
        "the lease token went upstream: {head}"
    );
    assert!(head.contains("anthropic-version: 2023-06-01"), "{head}");

    // The first event arrives while the upstream still holds the second.
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first event is passed on before the stream ends")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    release.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("message_stop"));

    // Bearer works too.
    let response = reqwest::Client::new()
        .get(format!("{proxy}/v1/models"))
        .bearer_auth(lease.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(heads.recv().await.unwrap().contains(REAL_KEY));
    release.send(()).unwrap();
    stop.cancel();
}

#[tokio::test]
async fn the_model_proxy_refuses_missing_unknown_and_revoked_tokens() {
    let (base, mut heads, _release) = upstream().await;
    let leases = Leases::new();
    let (proxy, stop) = model_proxy(&base, &leases).await;
    let lease = leases.issue(Uuid::new_v4(), &[]);
    let token = lease.token().to_owned();
    drop(lease);
    let client = reqwest::Client::new();
    for key in [
        None,
        Some("csp-agent-made-up"),
        Some(REAL_KEY),
        Some(token.as_str()),
    ] {
        let mut request = client.post(format!("{proxy}/v1/messages")).body("{}");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{key:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    assert!(heads.try_recv().is_err(), "nothing reached the upstream");
    stop.cancel();
}

/// A TCP echo server.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn connect(socket: &std::path::Path, head: &str) -> (String, UnixStream) {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    (String::from_utf8(buf).unwrap(), stream)
}

fn basic(token: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("csp:{token}"))
}

#[tokio::test]
async fn tunnels_open_only_to_declared_hosts_for_live_tokens() {
    let allowed = echo().await;
    let other = echo().await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("egress.sock");
    let leases = Leases::new();
    let stop = CancellationToken::new();
    tokio::spawn(
        ConnectProxy::new(leases.clone()).serve(Listener::unix(&socket).unwrap(), stop.clone()),
    );
    let lease = leases.issue(Uuid::new_v4(), &[allowed.to_string()]);
    let auth = basic(lease.token());

    let (status, mut tunnel) = connect(
        &socket,
        &format!("CONNECT {allowed} HTTP/1.1\r\nHost: {allowed}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    tunnel.write_all(b"ping").await.unwrap();
    let mut pong = [0u8; 4];
    tunnel.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"ping");

    let (status, _) = connect(
        &socket,
        &format!("CONNECT {other} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n"),
    )
    .await;
    assert!(
        status.starts_with("HTTP/1.1 403"),
        "undeclared host: {status}"
    );

    let (status, _) = connect(&socket, &format!("CONNECT {allowed} HTTP/1.1\r\n\r\n")).await;
    assert!(status.starts_with("HTTP/1.1 407"), "no token: {status}");

    let (status, _) = connect(
        &socket,
        &format!("GET http://{allowed}/ HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n"),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 405"), "plain HTTP: {status}");

    drop(lease);
    let (status, _) = connect(
        &socket,
        &format!("CONNECT {allowed} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n"),
    )
    .await;
    assert!(
        status.starts_with("HTTP/1.1 407"),
        "revoked token: {status}"
    );
    stop.cancel();
}
