//! A TCP proxy the tests and benches control: round-robin over several
//! upstreams (the stand-in for a Kubernetes Service or a load balancer in
//! front of two replicas), and a stall switch (the network partition that
//! neither refuses nor resets: bytes simply stop moving).
//!
//! Owns: accepting on one loopback port and copying bytes both ways. It
//! knows nothing of the protocols it carries.

use anyhow::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it closes the listener and every connection.
pub struct TcpProxy {
    addr: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstreams: Mutex<Vec<String>>,
    next: AtomicUsize,
    /// `true`: nothing is forwarded on any connection, new or old, and
    /// connections are accepted but left hanging.
    stalled: watch::Sender<bool>,
    /// Connections accepted so far, for a test to see the spread.
    accepted: AtomicUsize,
    /// An upstream that refused is skipped for the next connection, as a
    /// load balancer's health check would (after a short delay).
    skip_refused: AtomicBool,
}

impl TcpProxy {
    /// Listens on `127.0.0.1:0` and forwards each new connection to the
    /// next of `upstreams` (`host:port`), in turn.
    pub async fn start(upstreams: Vec<String>) -> Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (stalled, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstreams: Mutex::new(upstreams),
            next: AtomicUsize::new(0),
            stalled,
            accepted: AtomicUsize::new(0),
            skip_refused: AtomicBool::new(true),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            // Owned here so that aborting this task aborts every connection.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { break };
                        s.accepted.fetch_add(1, Ordering::Relaxed);
                        conns.spawn(serve(s.clone(), client));
                    }
                    // Reap finished connections so the set stays small.
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(TcpProxy { addr, shared, task })
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops (`true`) or resumes (`false`) forwarding on every connection.
    pub fn stall(&self, stalled: bool) {
        self.shared.stalled.send_replace(stalled);
    }

    /// Replaces the upstreams new connections go to (existing ones stay).
    pub fn set_upstreams(&self, upstreams: Vec<String>) {
        *self.shared.upstreams.lock().unwrap() = upstreams;
    }

    /// Whether a refused upstream is skipped for the next one (default
    /// `true`, as a load balancer does); `false` passes the refusal on.
    pub fn skip_refused(&self, skip: bool) {
        self.shared.skip_refused.store(skip, Ordering::Relaxed);
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(shared: Arc<Shared>, client: TcpStream) {
    let upstreams = shared.upstreams.lock().unwrap().clone();
    if upstreams.is_empty() {
        return;
    }
    let first = shared.next.fetch_add(1, Ordering::Relaxed);
    let tries = match shared.skip_refused.load(Ordering::Relaxed) {
        true => upstreams.len(),
        false => 1,
    };
    let mut server = None;
    for i in 0..tries {
        let upstream = &upstreams[(first + i) % upstreams.len()];
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(upstream)).await
        {
            server = Some(s);
            break;
        }
    }
    let Some(server) = server else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, shared.stalled.subscribe());
    let down = pump(sr, cw, shared.stalled.subscribe());
    // Either side closing ends the connection, as a proxy does.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies `from` → `to`, holding every byte while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Wait out a stall before reading, so nothing is read (and the
        // sender's window fills) while the "network" is down.
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server(tag: &'static str) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 {
                            break;
                        }
                        let mut out = tag.as_bytes().to_vec();
                        out.extend_from_slice(&b[..n]);
                        if s.write_all(&out).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn ask(addr: &str, msg: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(msg).await.unwrap();
        let mut b = [0u8; 64];
        let n = s.read(&mut b).await.unwrap();
        b[..n].to_vec()
    }

    #[tokio::test]
    async fn connections_alternate_and_a_refusing_upstream_is_skipped() {
        let a = echo_server("a:").await;
        let b = echo_server("b:").await;
        let proxy = TcpProxy::start(vec![a, b]).await.unwrap();
        assert_eq!(ask(proxy.addr(), b"1").await, b"a:1");
        assert_eq!(ask(proxy.addr(), b"2").await, b"b:2");
        assert_eq!(ask(proxy.addr(), b"3").await, b"a:3");

        // A port nothing listens on: skipped while skip_refused holds.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let c = echo_server("c:").await;
        proxy.set_upstreams(vec![dead_addr, c]);
        for _ in 0..3 {
            assert_eq!(ask(proxy.addr(), b"x").await, b"c:x");
        }
        assert_eq!(proxy.accepted(), 6);
    }

    #[tokio::test]
    async fn a_stall_holds_bytes_until_it_ends() {
        let a = echo_server("a:").await;
        let proxy = TcpProxy::start(vec![a]).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"1").await.unwrap();
        let mut b = [0u8; 16];
        let n = s.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"a:1");

        proxy.stall(true);
        s.write_all(b"2").await.unwrap();
        // Nothing comes back while stalled: the read is still pending
        // after the echo server had ample time to answer.
        let pending = tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await;
        assert!(pending.is_err(), "a byte crossed a stalled proxy");

        proxy.stall(false);
        let n = s.read(&mut b).await.unwrap();
        assert_eq!(&b[..n], b"a:2");
    }
}
