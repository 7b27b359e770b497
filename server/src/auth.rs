//! Bearer tokens: workers and clients each have their own.
//!
//! One tower layer in front of every service decides by the request path:
//! `WorkerService/Connect` needs the worker token, every other
//! `agentmonitor.v1` RPC the client token, and health and reflection stay
//! open so probes and grpcurl work. A class with no token configured is open
//! (the server refuses to listen beyond loopback that way unless told
//! `--insecure`, see `config`).

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::future::{BoxFuture, FutureExt};
use http::{Request, Response};
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

/// The path of the only RPC that takes the worker token.
const WORKER_PATH: &str = "/agentmonitor.v1.WorkerService/Connect";
/// Paths under this prefix take the client token.
const API_PREFIX: &str = "/agentmonitor.v1.";

/// The tokens in force.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Token workers present.
    pub worker: Option<String>,
    /// Token clients (people, scripts, the CLI) present.
    pub client: Option<String>,
}

impl Tokens {
    /// Whether both classes of caller need a token.
    pub fn all_required(&self) -> bool {
        self.worker.is_some() && self.client.is_some()
    }

    /// Decides whether a call to `path` with `authorization` may proceed.
    pub fn check(&self, path: &str, authorization: Option<&str>) -> Result<(), Status> {
        let (expected, other, role, other_role) = if path == WORKER_PATH {
            (&self.worker, &self.client, "worker", "client")
        } else if path.starts_with(API_PREFIX) {
            (&self.client, &self.worker, "client", "worker")
        } else {
            return Ok(()); // health and reflection
        };
        let Some(expected) = expected else {
            return Ok(());
        };
        let presented = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            None => Err(Status::unauthenticated(format!(
                "this call needs the {role} token: send `authorization: Bearer <token>`"
            ))),
            Some(token) if constant_time_eq(token, expected) => Ok(()),
            Some(token) if other.as_deref().is_some_and(|o| constant_time_eq(token, o)) => Err(
                Status::permission_denied(format!("a {other_role} token cannot make {role} calls")),
            ),
            Some(_) => Err(Status::unauthenticated(format!(
                "the {role} token is wrong"
            ))),
        }
    }
}

/// Compares without stopping at the first difference, so timing reveals
/// nothing about how much of a guess was right.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The layer that checks tokens in front of every service.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<Tokens>,
}

impl AuthLayer {
    /// A layer enforcing `tokens`.
    pub fn new(tokens: Tokens) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// A service behind the token check.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Arc<Tokens>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        match self.tokens.check(request.uri().path(), authorization) {
            Ok(()) => self.inner.call(request).boxed(),
            Err(status) => {
                let mut response = status.into_http::<ResBody>();
                // A trailers-only refusal is valid gRPC-web too, but only
                // under a gRPC-web content type: the browser's client
                // rejects `application/grpc` as an unknown reply and would
                // hide the refusal's message from the person at the page.
                if let Some(web) = grpc_web_content_type(request.headers()) {
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_TYPE, web);
                }
                std::future::ready(Ok(response)).boxed()
            }
        }
    }
}

/// The request's content type when it is a gRPC-web call (the reply
/// answers in kind).
fn grpc_web_content_type(headers: &http::HeaderMap) -> Option<http::HeaderValue> {
    headers
        .get(http::header::CONTENT_TYPE)
        .filter(|value| value.as_bytes().starts_with(b"application/grpc-web"))
        .cloned()
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn each_token_opens_only_its_own_calls() {
        let tokens = Tokens {
            worker: Some("w-secret".into()),
            client: Some("c-secret".into()),
        };
        let task = "/agentmonitor.v1.TaskService/GetBoard";
        assert!(tokens.check(WORKER_PATH, Some("Bearer w-secret")).is_ok());
        assert!(tokens.check(task, Some("Bearer c-secret")).is_ok());
        let code = |path, header| tokens.check(path, header).unwrap_err().code();
        assert_eq!(code(task, Some("Bearer w-secret")), Code::PermissionDenied);
        assert_eq!(
            code(WORKER_PATH, Some("Bearer c-secret")),
            Code::PermissionDenied
        );
        assert_eq!(code(task, None), Code::Unauthenticated);
        assert_eq!(code(task, Some("Bearer nope")), Code::Unauthenticated);
        assert_eq!(
            code(task, Some("c-secret")),
            Code::Unauthenticated,
            "scheme required"
        );
        assert!(tokens.check("/grpc.health.v1.Health/Check", None).is_ok());
        assert!(
            tokens
                .check(
                    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                    None
                )
                .is_ok()
        );
    }

    #[test]
    fn no_token_configured_means_open() {
        let tokens = Tokens::default();
        assert!(tokens.check(WORKER_PATH, None).is_ok());
        assert!(
            tokens
                .check("/agentmonitor.v1.TaskService/GetBoard", None)
                .is_ok()
        );
    }
}
