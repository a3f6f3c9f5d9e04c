//! What every csp gRPC server and client shares: binding with health and
//! reflection, connecting, following a server stream across outages, and
//! carrying catalogued errors across the wire.
//!
//! Owns: the mapping between `csp_domain::ErrorCode` and `tonic::Status` (the
//! code travels in the `csp-error-code` metadata entry so the far side can
//! show the catalogue's text, never a raw error). Must never contain service
//! logic.

pub mod auth;
mod follow;
pub mod metered;

pub use auth::{Guard, ServiceToken, bearer, caller};
use csp_domain::ErrorCode;
pub use follow::follow_stream;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};

const CODE_KEY: &str = "csp-error-code";
/// A user-facing text that replaces the catalogue's (budget figures, the
/// role a denial requires). Binary metadata, so any UTF-8 survives.
const MESSAGE_KEY: &str = "csp-error-message-bin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid gRPC address '{0}': expected http://host:port")]
    BadAddress(String),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A `tonic::Status` for a catalogued failure. `detail` is for logs on the far
/// side only; users see the catalogue text of `code`.
pub fn status(code: ErrorCode, detail: impl Into<String>) -> tonic::Status {
    let mut s = tonic::Status::new(
        tonic::Code::from_i32(code.grpc_code()),
        bounded(detail.into()),
    );
    if let Ok(v) = code.as_str().parse() {
        s.metadata_mut().insert(CODE_KEY, v);
    }
    s
}

/// Like [`status`], with a text for users that says more than the
/// catalogue can ("Monthly budget exceeded ($100.00/$100.00). ...").
pub fn status_with_message(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    let message = bounded(message.into());
    let mut s = status(code, message.clone());
    s.metadata_mut().insert_bin(
        MESSAGE_KEY,
        tonic::metadata::MetadataValue::from_bytes(message.as_bytes()),
    );
    s
}

/// The most bytes of a status's text sent (in `grpc-message`, and again in
/// the user message's metadata). Texts quote what a caller sent (a plugin
/// name, a user id); unbounded, an 8 KiB path parameter made the trailers
/// exceed HTTP/2's header-list limit and the call fail as an h2 protocol
/// error (a 500 at the gateway) instead of answering the catalogued code.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `text` cut to [`MAX_MESSAGE_BYTES`] at a character boundary, marked with
/// an ellipsis when cut.
fn bounded(mut text: String) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

/// The user-facing text a status carries, if its sender set one.
pub fn user_message(status: &tonic::Status) -> Option<String> {
    let v = status.metadata().get_bin(MESSAGE_KEY)?;
    let bytes = v.to_bytes().ok()?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The catalogued code a status carries; statuses from elsewhere map by
/// their gRPC code (a dead peer is `Unavailable`, not `Internal`).
pub fn error_code(status: &tonic::Status) -> ErrorCode {
    if let Some(code) = status
        .metadata()
        .get(CODE_KEY)
        .and_then(|v| v.to_str().ok())
    {
        return ErrorCode::from_str_lossy(code);
    }
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            ErrorCode::Unavailable
        }
        // A call its connection broke under (the replica was killed, the
        // network cut): tonic says `Unknown` "transport error".
        tonic::Code::Unknown | tonic::Code::Internal if cut_by_transport(status) => {
            ErrorCode::Unavailable
        }
        tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
        tonic::Code::PermissionDenied => ErrorCode::Forbidden,
        tonic::Code::NotFound => ErrorCode::SessionNotFound,
        tonic::Code::ResourceExhausted => ErrorCode::AtCapacity,
        tonic::Code::InvalidArgument => ErrorCode::BadFrame,
        _ => ErrorCode::Internal,
    }
}

/// Whether a status comes from the client's transport (a tonic transport
/// error in its sources), not from any server.
fn cut_by_transport(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A bound, not yet serving, gRPC listener. Binding first lets callers (and
/// tests with port 0) learn the address before the server runs.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Listener {
    pub async fn bind(addr: SocketAddr) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `routes` plus gRPC reflection until `shutdown`. Callers add
    /// their services and the `tonic-health` service to `routes` and keep
    /// the health reporter to publish their state.
    pub async fn serve(
        self,
        routes: tonic::service::Routes,
        guard: Guard,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(csp_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("csp descriptor set is valid");
        tracing::info!(addr = %self.addr, "gRPC server listening");
        metered::describe();
        tonic::transport::Server::builder()
            // Outside the guard: refused calls are counted too.
            .layer(metered::Metered::new(guard.table()))
            .layer(guard)
            .add_routes(routes.add_service(reflection))
            .serve_with_incoming_shutdown(
                // No Nagle on accepted connections (the channels set it on
                // theirs): an answer written in several frames would
                // otherwise wait for the peer's delayed ACK, 40 ms on Linux.
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                shutdown.cancelled_owned(),
            )
            .await
            .map_err(Error::from)
    }
}

/// Sets the gRPC health of `service` (and of the server as a whole, `""`)
/// to match readiness.
async fn set_health(health: &tonic_health::server::HealthReporter, service: &str, ready: bool) {
    let status = if ready {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    health.set_service_status(service, status).await;
    health.set_service_status("", status).await;
}

/// A service's gRPC health, kept equal to its readiness probe.
pub struct Health {
    reporter: tonic_health::server::HealthReporter,
    service: &'static str,
    follower: tokio::task::JoinHandle<()>,
}

impl Health {
    /// Sets health from `ready()` now (so it is known before the server
    /// answers anything), then re-checks every 2 s until [`Health::stop`]
    /// or drop. Returns the routes to add the service itself to; they
    /// already hold the `grpc.health.v1` service.
    pub async fn follow<F, Fut>(service: &'static str, ready: F) -> (Self, tonic::service::Routes)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let mut last = ready().await;
        set_health(&reporter, service, last).await;
        let r = reporter.clone();
        let follower = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                let now = ready().await;
                if now != last {
                    set_health(&r, service, now).await;
                    last = now;
                }
            }
        });
        let health = Self {
            reporter,
            service,
            follower,
        };
        (health, tonic::service::Routes::new(health_service))
    }

    /// Stops following readiness and reports NOT_SERVING from now on (a
    /// draining service).
    pub async fn stop(&self) {
        self.follower.abort();
        set_health(&self.reporter, self.service, false).await;
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// A lazily connecting channel to `addr` (`http://host:port`): the service
/// may start after its callers, and a restart of the peer is survived.
pub fn channel(addr: &str) -> Result<Channel, Error> {
    let endpoint = Endpoint::from_shared(addr.to_owned())
        .map_err(|_| Error::BadAddress(addr.to_owned()))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(30));
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (security suite): a plugin name of 8 KiB quoted in a
    /// `PluginNotFound` text broke the call with an h2 protocol error.
    #[test]
    fn texts_quoting_a_caller_are_bounded() {
        let name = "é".repeat(8 * 1024);
        let s = status_with_message(
            ErrorCode::PluginNotFound,
            format!("There is no plugin named '{name}'."),
        );
        assert!(
            s.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            s.message().len()
        );
        assert!(s.message().ends_with('…'));
        let shown = user_message(&s).unwrap();
        assert!(
            shown.len() <= MAX_MESSAGE_BYTES && shown.starts_with("There is no plugin named 'é")
        );
        assert_eq!(error_code(&s), ErrorCode::PluginNotFound);
        // Short texts pass untouched.
        let s = status_with_message(ErrorCode::PluginNotFound, "short");
        assert_eq!(
            (s.message(), user_message(&s).as_deref()),
            ("short", Some("short"))
        );
    }

    #[test]
    fn codes_cross_the_wire() {
        for code in [
            ErrorCode::AtCapacity,
            ErrorCode::SessionNotFound,
            ErrorCode::BadCredentials,
        ] {
            assert_eq!(error_code(&status(code, "detail")), code);
        }
        assert_eq!(
            error_code(&tonic::Status::unavailable("conn refused")),
            ErrorCode::Unavailable
        );
    }

    /// Regression (scale-out, issue 17): the first call after the replica
    /// behind a channel's connection was killed (its connection cut, no
    /// GOAWAY) came back as tonic's `Unknown` "transport error", which the
    /// gateway answered as `500 internal` instead of `503 unavailable`.
    #[tokio::test]
    async fn the_first_call_after_the_peer_was_killed_is_unavailable() {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = listener.local_addr().unwrap();
        let (_, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        // A Service in front of replicas: connections are forwarded, and
        // killing the replica cuts the ones it had (no GOAWAY) while new
        // ones still reach a live replica.
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = front.accept().await {
                let mut cut_rx = cut_rx.clone();
                let first = !*cut_rx.borrow();
                tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(server_addr).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.wait_for(|c| *c), if first => {}
                    }
                });
            }
        });
        let mut client = HealthClient::new(channel(&format!("http://{addr}")).unwrap());
        client
            .check(HealthCheckRequest::default())
            .await
            .expect("the peer answers while it lives");
        cut.send_replace(true);
        let status = client
            .check(HealthCheckRequest::default())
            .await
            .expect_err("the peer is gone");
        assert_eq!(error_code(&status), ErrorCode::Unavailable, "{status:?}");
    }
}
