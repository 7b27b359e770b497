//! The accept loop of the one listener: every connection, plaintext or TLS,
//! is served by hyper-util's automatic HTTP/1.1 + HTTP/2 connection, so
//! gRPC (HTTP/2) and MCP clients (HTTP/1.1 or HTTP/2) share the port.
//!
//! This replaces `tonic::transport::Server`, which refuses HTTP/1.1 unless
//! told otherwise and, with TLS, offers only `h2` in ALPN. What it did for
//! us is kept: TCP_NODELAY on accepted sockets, a timer on both protocols
//! (hyper enforces its HTTP/1 header read timeout only with one), and a
//! graceful stop: stop accepting, ask every connection to finish (HTTP/2
//! GOAWAY, HTTP/1.1 close after the response in flight), wait for them.

use std::{
    convert::Infallible,
    future::{Future, Ready, ready},
    pin::pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, DuplexStream},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tower_service::Service;

use super::tls::{Accepted, Tls};

/// HTTP/2 pings on every connection: a worker frozen (SIGSTOP) or cut off
/// keeps its TCP stream looking open; the pings find out within ~30 s and
/// end it.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept (typically out of file descriptors), so the
/// loop waits for connections to close instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `service` on `listener`, and on the in-process connections that
/// arrive on `in_process` (the local worker's; never TLS), until `shutdown`
/// completes, then lets open connections finish.
pub async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<Tls>,
    mut in_process: Option<mpsc::UnboundedReceiver<DuplexStream>>,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);

    // Every connection holds a receiver; the send asks them to finish, and
    // `closed` resolves once the last one has.
    let (stop, stopping) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            pipe = next_pipe(&mut in_process) => {
                match pipe {
                    Some(pipe) => {
                        tokio::spawn(http(pipe, service.clone(), builder.clone(), stopping.clone()));
                    }
                    // Nobody can open one any more.
                    None => in_process = None,
                }
                continue;
            }
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "accepting a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Without it every small streamed message (an assignment, a watch
        // event, a log line) waited up to 40 ms for the peer's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        tokio::spawn(connection(
            stream,
            tls.clone(),
            service.clone(),
            builder.clone(),
            stopping.clone(),
        ));
    }
    // Close the socket now: new clients are refused at once rather than
    // left hanging while the open connections finish.
    drop(listener);
    let _ = stop.send(());
    drop(stopping);
    stop.closed().await;
}

/// One connection: the TLS handshake if any, then HTTP until the peer
/// leaves or the server stops.
async fn connection<S, B>(
    stream: TcpStream,
    tls: Option<Tls>,
    service: S,
    builder: Builder<TokioExecutor>,
    mut stopping: watch::Receiver<()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tls {
        None => http(stream, service, builder, stopping).await,
        Some(tls) => {
            let accepted = tokio::select! {
                accepted = tls.accept(stream) => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                _ = stopping.changed() => return,
            };
            match accepted {
                Accepted::Tls(stream) => http(stream, service, builder, stopping).await,
                Accepted::Plaintext(stream) => {
                    tracing::debug!("a plaintext client on the TLS port: told to use https://");
                    http(stream, Refusal::plaintext(), builder, stopping).await;
                }
                Accepted::Unauthenticated(stream, why) => {
                    tracing::debug!(reason = %why, "a TLS client without an acceptable certificate");
                    http(stream, Refusal::unauthenticated(why), builder, stopping).await;
                }
            }
        }
    }
}

/// The next in-process connection; pending forever without a receiver.
async fn next_pipe(
    in_process: &mut Option<mpsc::UnboundedReceiver<DuplexStream>>,
) -> Option<DuplexStream> {
    match in_process {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// What a client that may not be served gets for every request: a gRPC
/// client the status with the reason, any other client the HTTP status
/// with the same reason, as web servers do ("plain HTTP request sent to an
/// HTTPS port", "no required SSL certificate was sent"). Nothing it sent is
/// read or acted upon.
#[derive(Clone)]
struct Refusal {
    code: tonic::Code,
    http: http::StatusCode,
    why: Arc<str>,
}

impl Refusal {
    /// A plaintext client on the TLS port.
    fn plaintext() -> Self {
        Self {
            code: tonic::Code::Unavailable,
            http: http::StatusCode::BAD_REQUEST,
            why: "this port serves TLS: connect with https:// (and --ca-cert for a private CA)"
                .into(),
        }
    }

    /// A TLS client without an acceptable client certificate.
    fn unauthenticated(why: String) -> Self {
        Self {
            code: tonic::Code::Unauthenticated,
            http: http::StatusCode::FORBIDDEN,
            why: why.into(),
        }
    }
}

impl Service<Request<Incoming>> for Refusal {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let response = if super::is_grpc(request.headers()) {
            tonic::Status::new(self.code, self.why.to_string()).into_http()
        } else {
            let mut response = Response::new(format!("{}\n", self.why));
            *response.status_mut() = self.http;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        };
        ready(Ok(response))
    }
}

async fn http<I, S, B>(
    io: I,
    service: S,
    builder: Builder<TokioExecutor>,
    mut stopping: watch::Receiver<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = pin!(connection);
    let mut asked_to_stop = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "serving a connection");
                }
                return;
            }
            _ = stopping.changed(), if !asked_to_stop => {
                asked_to_stop = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
