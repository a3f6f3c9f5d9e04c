//! Loopback TCP or a Unix socket, accepted the same way.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Where a proxy listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for ListenerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

impl Listener {
    /// Loopback TCP on an ephemeral port.
    pub async fn loopback() -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::Listen {
                what: "127.0.0.1:0".into(),
                source,
            })?;
        Ok(Self::Tcp(listener))
    }

    /// A Unix socket at `path` (a stale one is replaced), owner-only.
    pub fn unix(path: &Path) -> Result<Self, Error> {
        let listen_error = |source| Error::Listen {
            what: path.display().to_string(),
            source,
        };
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(listen_error(e)),
        }
        let listener = UnixListener::bind(path).map_err(listen_error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(listen_error)?;
        Ok(Self::Unix(listener, path.to_owned()))
    }

    pub fn local_addr(&self) -> ListenerAddr {
        match self {
            Self::Tcp(l) => ListenerAddr::Tcp(
                l.local_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
            ),
            Self::Unix(_, path) => ListenerAddr::Unix(path.clone()),
        }
    }

    /// Accepts until `stop`, handing each connection to `serve` in a task
    /// of its own. A failed accept (out of descriptors) is logged and
    /// retried shortly, never the end of the proxy.
    pub(crate) async fn serve_each<F, Fut>(
        self,
        what: &'static str,
        stop: CancellationToken,
        serve: F,
    ) where
        F: Fn(Box<dyn Stream>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = self.accept() => match accepted {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "{what}: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            tokio::spawn(serve(stream));
        }
    }

    /// Serves HTTP/1.1 until `stop`: every request of every connection
    /// goes to `handle`. The model proxy and the session-pool's tool door
    /// answer this way.
    pub async fn serve_http<H, Fut, B>(self, what: &'static str, stop: CancellationToken, handle: H)
    where
        H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Response<B>> + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.serve_each(what, stop, move |stream| {
            let handle = handle.clone();
            async move {
                let service = hyper::service::service_fn(move |req| {
                    let handle = handle.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(req).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "{what}: connection ended with an error");
                }
            }
        })
        .await
    }

    async fn accept(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(match self {
            Self::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Box::new(stream)
            }
            Self::Unix(l, _) => Box::new(l.accept().await?.0),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}
