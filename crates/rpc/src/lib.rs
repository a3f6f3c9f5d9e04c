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
    let mut s = tonic::Status::new(tonic::Code::from_i32(code.grpc_code()), detail.into());
    if let Ok(v) = code.as_str().parse() {
        s.metadata_mut().insert(CODE_KEY, v);
    }
    s
}

/// Like [`status`], with a text for users that says more than the
/// catalogue can ("Monthly budget exceeded ($100.00/$100.00). ...").
pub fn status_with_message(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    let message = message.into();
    let mut s = status(code, message.clone());
    s.metadata_mut().insert_bin(
        MESSAGE_KEY,
        tonic::metadata::MetadataValue::from_bytes(message.as_bytes()),
    );
    s
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
        tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
        tonic::Code::PermissionDenied => ErrorCode::Forbidden,
        tonic::Code::NotFound => ErrorCode::SessionNotFound,
        tonic::Code::ResourceExhausted => ErrorCode::AtCapacity,
        tonic::Code::InvalidArgument => ErrorCode::BadFrame,
        _ => ErrorCode::Internal,
    }
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
}
