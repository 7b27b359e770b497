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

use std::{convert::Infallible, future::Future, pin::pin, time::Duration};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower_service::Service;

use super::tls::Tls;

/// HTTP/2 pings on every connection: a worker frozen (SIGSTOP) or cut off
/// keeps its TCP stream looking open; the pings find out within ~30 s and
/// end it.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept (typically out of file descriptors), so the
/// loop waits for connections to close instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `service` on `listener` until `shutdown` completes, then lets
/// open connections finish.
pub async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<Tls>,
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
            let stream = tokio::select! {
                accepted = tls.accept(stream) => match accepted {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                _ = stopping.changed() => return,
            };
            http(stream, service, builder, stopping).await;
        }
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
