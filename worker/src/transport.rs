//! Opening the `Connect` stream: the channel, the bearer token, the backoff
//! between attempts, the sending side of a stream.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use amon_proto::v1::worker_service_client::WorkerServiceClient;
use amon_proto::v1::{ConnectRequest, ConnectResponse, connect_request};
use anyhow::Context;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Endpoint;
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

/// Checks that `server` is a usable endpoint URL.
pub(crate) fn endpoint(server: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(server.to_string())
        .with_context(|| format!("invalid server URL {server:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Notice a dead peer (network gone, server host down) within ~30 s.
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true))
}

/// Opens `Connect`: what the worker queues on `outbound` is the request
/// stream (the caller queues `Register` first); the answer is the server's
/// stream.
pub(crate) async fn open(
    endpoint: Endpoint,
    auth: BearerAuth,
    outbound: mpsc::UnboundedReceiver<ConnectRequest>,
) -> anyhow::Result<Streaming<ConnectResponse>> {
    let uri = endpoint.uri().clone();
    let attempt = async move {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {uri}"))?;
        let mut client = WorkerServiceClient::with_interceptor(channel, auth);
        let response = client
            .connect(UnboundedReceiverStream::new(outbound))
            .await
            .context("opening WorkerService.Connect")?;
        anyhow::Ok(response.into_inner())
    };
    tokio::time::timeout(OPEN_TIMEOUT, attempt)
        .await
        .context("the server did not accept the stream in time")?
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
