//! Who may call which RPC. Every csp gRPC server runs behind a [`Guard`]:
//! it reads the bearer JWT from the `authorization` metadata, verifies it,
//! looks the method up in the service's access table and refuses the call
//! before any handler runs when the caller falls short. Methods missing from
//! the table are refused too, so a new RPC is closed until someone decides.
//!
//! Handlers read the verified caller with [`caller`] for ownership checks.

use csp_auth::{Access, Caller, Tokens};
use csp_domain::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The metadata key carrying `Bearer <jwt>`.
pub const AUTHORIZATION: &str = "authorization";

/// A service's access table: the full gRPC path (`/csp.v1.Policy/Login`) to
/// what it requires; `None` for a path the service does not know.
pub type AccessTable = fn(&str) -> Option<Access>;

/// Health and reflection answer anyone: probes and `grpcurl` carry no token.
pub(crate) fn infrastructure(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// Verifies callers against a service's access table (a tower layer).
#[derive(Clone)]
pub struct Guard {
    tokens: Tokens,
    table: AccessTable,
}

impl Guard {
    pub fn new(tokens: Tokens, table: AccessTable) -> Self {
        Self { tokens, table }
    }

    /// The service's access table (also what bounds the method label of
    /// the request metrics).
    pub fn table(&self) -> AccessTable {
        self.table
    }

    /// The caller of `path`, or the status that refuses the call.
    pub fn admit(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Caller>, tonic::Status> {
        if infrastructure(path) {
            return Ok(None);
        }
        let Some(access) = (self.table)(path) else {
            return Err(crate::status(
                ErrorCode::PermissionDenied,
                format!("{path} has no access rule"),
            ));
        };
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let caller = match token {
            Some(token) => match self.tokens.verify(token) {
                Ok(claims) => Some(claims.caller()),
                Err(e) => {
                    tracing::debug!(error = %e, path, "gRPC token rejected");
                    return Err(crate::status(ErrorCode::Unauthenticated, "invalid token"));
                }
            },
            None => None,
        };
        match (access, caller) {
            (Access::Public, caller) => Ok(caller),
            (_, None) => Err(crate::status(ErrorCode::Unauthenticated, "no token")),
            (access, Some(caller)) => match caller.check(access) {
                Ok(()) => Ok(Some(caller)),
                Err(denied) => Err(crate::status_with_message(
                    ErrorCode::PermissionDenied,
                    denied.message(),
                )),
            },
        }
    }
}

impl<S> tower::Layer<S> for Guard {
    type Service = Guarded<S>;
    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            guard: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: Guard,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.guard.admit(req.uri().path(), req.headers()) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    req.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(req))
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

/// The verified caller of a request that passed a [`Guard`]. Fails closed:
/// a handler of a non-public method always has one.
pub fn caller<T>(req: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| crate::status(ErrorCode::Unauthenticated, "no verified caller"))
}

/// `msg` as a request carrying `token`.
pub fn bearer<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert(AUTHORIZATION, v);
    }
    with_trace(req.metadata_mut());
    req
}

/// Adds the current span's trace context, so the server's spans join the
/// caller's trace.
fn with_trace(md: &mut tonic::metadata::MetadataMap) {
    for (key, value) in csp_telemetry::current_context() {
        if let Ok(v) = value.parse() {
            md.insert(key, v);
        }
    }
}

/// Service tokens, re-signed before they expire; also a client interceptor
/// that adds one to every call without a token of its own.
#[derive(Clone)]
pub struct ServiceToken {
    tokens: Tokens,
    name: &'static str,
    cached: Arc<Mutex<Option<(String, Instant)>>>,
}

const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(600);

impl ServiceToken {
    pub fn new(tokens: Tokens, name: &'static str) -> Self {
        Self {
            tokens,
            name,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// A token for this service valid for at least five more minutes.
    pub fn token(&self) -> String {
        let mut cached = self.cached.lock().expect("service token lock");
        if let Some((token, issued)) = cached.as_ref()
            && issued.elapsed() < SERVICE_TOKEN_TTL / 2
        {
            return token.clone();
        }
        let token = self
            .tokens
            .issue_service(self.name, SERVICE_TOKEN_TTL)
            .expect("HS256 signing of fixed claims does not fail");
        *cached = Some((token.clone(), Instant::now()));
        token
    }

    /// `msg` as a request carrying this service's token.
    pub fn request<T>(&self, msg: T) -> tonic::Request<T> {
        bearer(msg, &self.token())
    }
}

impl tonic::service::Interceptor for ServiceToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if !req.metadata().contains_key(AUTHORIZATION)
            && let Ok(v) = format!("Bearer {}", self.token()).parse()
        {
            req.metadata_mut().insert(AUTHORIZATION, v);
        }
        if !req.metadata().contains_key("traceparent") {
            with_trace(req.metadata_mut());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csp_domain::{Role, UserId};
    use secrecy::SecretString;

    fn tokens() -> Tokens {
        Tokens::new(&SecretString::from("k".repeat(32)), Duration::from_secs(60)).unwrap()
    }

    fn table(path: &str) -> Option<Access> {
        match path {
            "/t.S/Open" => Some(Access::Public),
            "/t.S/Admin" => Some(Access::Role(Role::Admin)),
            "/t.S/Internal" => Some(Access::Service),
            _ => None,
        }
    }

    fn headers(token: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(t) = token {
            h.insert(AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        }
        h
    }

    #[test]
    fn table_decides_and_unknown_methods_are_closed() {
        let t = tokens();
        let guard = Guard::new(t.clone(), table);
        let (user, _) = t.issue(UserId::new(), "u", Role::User).unwrap();
        let (admin, _) = t.issue(UserId::new(), "a", Role::Admin).unwrap();
        let svc = ServiceToken::new(t.clone(), "gateway").token();
        let code = |path: &str, tok: Option<&str>| {
            guard
                .admit(path, &headers(tok))
                .map(|_| ())
                .map_err(|s| crate::error_code(&s))
        };
        assert_eq!(code("/t.S/Open", None), Ok(()));
        assert_eq!(code("/grpc.health.v1.Health/Check", None), Ok(()));
        assert_eq!(code("/t.S/Admin", None), Err(ErrorCode::Unauthenticated));
        assert_eq!(
            code("/t.S/Admin", Some("junk")),
            Err(ErrorCode::Unauthenticated)
        );
        assert_eq!(
            code("/t.S/Admin", Some(&user)),
            Err(ErrorCode::PermissionDenied)
        );
        assert_eq!(code("/t.S/Admin", Some(&admin)), Ok(()));
        assert_eq!(
            code("/t.S/Internal", Some(&admin)),
            Err(ErrorCode::PermissionDenied)
        );
        assert_eq!(code("/t.S/Internal", Some(&svc)), Ok(()));
        assert_eq!(
            code("/t.S/Unlisted", Some(&svc)),
            Err(ErrorCode::PermissionDenied)
        );
        let denied = guard
            .admit("/t.S/Admin", &headers(Some(&user)))
            .unwrap_err();
        assert_eq!(
            crate::user_message(&denied).as_deref(),
            Some("Insufficient permissions. Required role: admin.")
        );
    }
}
