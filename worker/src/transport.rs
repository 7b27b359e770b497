//! Opening the `Connect` stream: the channel, the bearer token, the backoff
//! between attempts, the sending side of a stream.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use amon_proto::client::{self, ClientTls};
use amon_proto::v1::worker_service_client::WorkerServiceClient;
use amon_proto::v1::{ConnectRequest, ConnectResponse, connect_request};
use anyhow::Context;
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

/// Longest wait for the server to accept the stream (TCP + HTTP/2 + headers).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The sending side of a `Connect` stream: what is queued here is the
/// request stream.
pub(crate) type Outbound = mpsc::UnboundedSender<ConnectRequest>;

/// `message` as a request of the stream.
pub(crate) fn request(message: connect_request::Message) -> ConnectRequest {
    ConnectRequest {
        message: Some(message),
    }
}

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Debug)]
pub(crate) struct BearerAuth(Option<MetadataValue<Ascii>>);

impl BearerAuth {
    /// Validates the token (it must be printable ASCII).
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        token
            .map(|t| {
                MetadataValue::try_from(format!("Bearer {t}"))
                    .context("the worker token must be printable ASCII")
            })
            .transpose()
            .map(Self)
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// How the worker reaches the server: the endpoint (URL, TLS, timeouts),
/// and for the server's own local worker the in-process pipe it dials
/// instead of the network.
#[derive(Clone, Debug)]
pub(crate) struct Dial {
    endpoint: Endpoint,
    in_process: Option<InProcess>,
}

impl Dial {
    /// Checks that `server` and `tls` make a usable endpoint.
    pub fn new(
        server: &str,
        tls: &ClientTls,
        in_process: Option<InProcess>,
    ) -> anyhow::Result<Self> {
        let endpoint = client::endpoint(server, tls)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            // Notice a dead peer (network gone, server host down) within ~30 s.
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        Ok(Self {
            endpoint,
            in_process,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &http::Uri {
        self.endpoint.uri()
    }

    async fn connect(&self) -> Result<Channel, tonic::transport::Error> {
        match &self.in_process {
            Some(pipe) => self.endpoint.connect_with_connector(pipe.clone()).await,
            None => self.endpoint.connect().await,
        }
    }
}

/// The client end of an in-process connection to a server in the same
/// process: each connection is a pipe in memory whose other end is handed
/// to the server through the channel the server gave with
/// [`InProcess::pair`]. The server's own local worker uses it, so it needs
/// neither a network address nor the server's TLS certificate (a worker in
/// the server's own process has nothing to prove or hide from it).
#[derive(Clone, Debug)]
pub struct InProcess {
    to_server: mpsc::UnboundedSender<DuplexStream>,
}

/// Bytes buffered each way in an in-process pipe: enough for a full log
/// chunk and its framing, so a writer rarely waits for the reader.
const PIPE_BUFFER: usize = 256 * 1024;

impl InProcess {
    /// A connector and the server's side: the receiver yields the server's
    /// end of each new connection.
    pub fn pair() -> (Self, mpsc::UnboundedReceiver<DuplexStream>) {
        let (to_server, accepted) = mpsc::unbounded_channel();
        (Self { to_server }, accepted)
    }
}

impl tower_service::Service<http::Uri> for InProcess {
    type Response = TokioIo<DuplexStream>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        std::future::ready(match self.to_server.send(theirs) {
            Ok(()) => Ok(TokioIo::new(ours)),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the server is no longer accepting in-process connections",
            )),
        })
    }
}

/// Opens `Connect`: what the worker queues on `outbound` is the request
/// stream (the caller queues `Register` first); the answer is the server's
/// stream.
pub(crate) async fn open(
    dial: Dial,
    auth: BearerAuth,
    outbound: mpsc::UnboundedReceiver<ConnectRequest>,
) -> anyhow::Result<Streaming<ConnectResponse>> {
    let uri = dial.endpoint.uri().clone();
    let attempt = async move {
        let channel = dial
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("connecting to {uri}: {}", client::explain(&e)))?;
        let mut client = WorkerServiceClient::with_interceptor(channel, auth);
        let response = client
            .connect(UnboundedReceiverStream::new(outbound))
            .await
            .map_err(|status| {
                anyhow::anyhow!("opening WorkerService.Connect: {}", explain_status(&status))
            })?;
        anyhow::Ok(response.into_inner())
    };
    tokio::time::timeout(OPEN_TIMEOUT, attempt)
        .await
        .context("the server did not accept the stream in time")?
}

/// A failed call in words: its code and message, and what went wrong
/// with TLS or the connection when that is why.
pub(crate) fn explain_status(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        let cause = client::explain(source);
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Delays between connection attempts: 100 ms doubling to 5 s, each drawn
/// uniformly from [d/2, d] (jitter, so a fleet does not reconnect in step).
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(5);

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = Self::INITIAL
            .saturating_mul(1u32 << self.failures.min(16))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let random = RandomState::new().build_hasher().finish();
        half + half.mul_f64((random % 10_001) as f64 / 10_000.0)
    }

    /// A connection worked: start again from the shortest delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::default();
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let d = b.next_delay();
            ceilings.push(d);
        }
        let expected = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000];
        for (d, ceiling) in ceilings.iter().zip(expected) {
            let ceiling = Duration::from_millis(ceiling);
            assert!(*d >= ceiling / 2 && *d <= ceiling, "{d:?} vs {ceiling:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Backoff::INITIAL);
    }

    #[test]
    fn bearer_token() {
        let mut auth = BearerAuth::new(Some("s3cret")).unwrap();
        let req = auth.call(Request::new(())).unwrap();
        assert_eq!(
            req.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let mut none = BearerAuth::new(None).unwrap();
        assert!(none.call(Request::new(())).unwrap().metadata().is_empty());
        assert!(BearerAuth::new(Some("bad\ntoken")).is_err());
    }
}
