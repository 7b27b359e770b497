//! The one port: plain HTTP paths and gRPC on a single listener.
//!
//! [`router`] builds the HTTP router (`/mcp`, `/metrics`, the web board at
//! `/`) and `app` adds the gRPC services to it one by one through tonic's
//! `Routes` (an axum router underneath), so each path has one handler and
//! there is exactly one fallback, set here: the routers merged into this one
//! (`/mcp`'s, `/metrics`', the board's) have none.
//! [`serve`] runs the accept loop (HTTP/1.1 and HTTP/2 on every
//! connection), [`tls`] terminates TLS, [`metrics`] answers Prometheus,
//! [`web`] serves the board's embedded bundle.

pub mod metrics;
pub mod serve;
pub mod tls;
pub mod web;

use axum::{Router, body::Body, response::IntoResponse};
use http::{Request, StatusCode, header::CONTENT_TYPE};

use crate::{auth::Tokens, dispatch::Engine};

/// The HTTP router, before the gRPC services are added to it: `/mcp` (its
/// own router, with its token check on its route alone) and `/metrics`
/// (behind the client token of `tokens`) and the web board (`/`,
/// `/assets/...`: open, as it holds no data; its calls take the token).
pub fn router(mcp: Router, engine: &Engine, tokens: &Tokens) -> Router {
    Router::new()
        .merge(mcp)
        .merge(metrics::router(engine.clone(), tokens))
        .merge(web::router())
        .fallback(fallback)
}

/// Whether a request is gRPC (or gRPC-web): by its content type.
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// No route: a gRPC client gets UNIMPLEMENTED (what tonic answered for an
/// unknown service), anyone else 404.
async fn fallback(request: Request<Body>) -> axum::response::Response {
    if is_grpc(request.headers()) {
        let status = tonic::Status::unimplemented(format!("no such RPC: {}", request.uri().path()));
        let (parts, ()) = status.into_http::<()>().into_parts();
        axum::response::Response::from_parts(parts, Body::empty())
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
