//! The connection to the server: channel, bearer-token interceptor, typed
//! service clients, paging, and how errors become messages and exit codes.
//!
//! Exit codes:
//! - `0`: success;
//! - `1`: the server or the connection failed (cannot connect, `UNAVAILABLE`,
//!   `INTERNAL`, `UNIMPLEMENTED`, `UNKNOWN`, `DEADLINE_EXCEEDED`,
//!   `RESOURCE_EXHAUSTED`, `ABORTED`, …), or a local I/O error;
//! - `2`: the request was refused because of what the caller sent or who
//!   they are: usage errors (clap's own exit code is 2 too),
//!   `INVALID_ARGUMENT`, `NOT_FOUND`, `ALREADY_EXISTS`,
//!   `FAILED_PRECONDITION`, `OUT_OF_RANGE`, `UNAUTHENTICATED`,
//!   `PERMISSION_DENIED`, and references the CLI cannot resolve (an unknown
//!   slug, an ambiguous id prefix);
//! - `amon run` / `amon continue` exit with the run's own result instead
//!   (see `commands::run`).

use std::{fmt, future::Future, time::Duration};

use amon_proto::client::ClientTls;
use amon_proto::v1::{
    agent_service_client::AgentServiceClient, execution_service_client::ExecutionServiceClient,
    task_service_client::TaskServiceClient, worker_service_client::WorkerServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Default server address.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// The transport every client uses: the channel with the auth interceptor.
pub type Transport = InterceptedService<Channel, Auth>;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl Auth {
    /// The interceptor for `token` (none: calls go out without credentials).
    pub fn new(token: Option<&str>) -> Result<Self, UsageError> {
        let header = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| {
                        UsageError("the token holds characters not allowed in a header".into())
                    })?,
            ),
        };
        Ok(Self { header })
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// What every command gets: the connection and the output mode.
#[derive(Clone)]
pub struct Ctx {
    /// `--json`: machine output.
    pub json: bool,
    channel: Channel,
    auth: Auth,
}

impl Ctx {
    /// Connects to `addr` (`https://`, `http://`, or none meaning http)
    /// with `tls` for an `https://` address.
    pub async fn connect(
        addr: &str,
        token: Option<&str>,
        tls: &ClientTls,
        json: bool,
    ) -> anyhow::Result<Self> {
        let auth = Auth::new(token)?;
        let addr = normalize_addr(addr)?;
        let endpoint = amon_proto::client::endpoint(&addr, tls)
            .map_err(|e| UsageError(e.0))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        let channel = endpoint.connect().await.map_err(|e| ConnectError {
            addr: addr.clone(),
            cause: amon_proto::client::explain(&e),
            tls: amon_proto::client::tls_failure(&e).is_some(),
        })?;
        Ok(Self {
            json,
            channel,
            auth,
        })
    }

    fn transport(&self) -> Transport {
        InterceptedService::new(self.channel.clone(), self.auth.clone())
    }

    /// An `AgentService` client.
    pub fn agents(&self) -> AgentServiceClient<Transport> {
        AgentServiceClient::new(self.transport())
    }

    /// A `TaskService` client.
    pub fn tasks(&self) -> TaskServiceClient<Transport> {
        TaskServiceClient::new(self.transport())
    }

    /// An `ExecutionService` client.
    pub fn executions(&self) -> ExecutionServiceClient<Transport> {
        ExecutionServiceClient::new(self.transport())
    }

    /// A `WorkerService` client.
    pub fn workers(&self) -> WorkerServiceClient<Transport> {
        WorkerServiceClient::new(self.transport())
    }
}

/// `host:port` → `http://host:port`; `http://` and `https://` addresses
/// are kept, other schemes refused.
pub fn normalize_addr(addr: &str) -> Result<String, UsageError> {
    amon_proto::client::server_url(addr).map_err(|e| UsageError(e.0))
}

/// Fetches every page of a list RPC: `fetch(page_token)` returns one page's
/// items and the next token (empty on the last page). Stops too if the
/// server repeats a token, rather than looping forever.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, Status>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = fetch(token.clone()).await?;
        items.extend(page);
        if next.is_empty() || next == token {
            return Ok(items);
        }
        token = next;
    }
}

/// Page size asked of list RPCs (the server's maximum).
pub const PAGE_SIZE: i32 = 500;

// ---------------------------------------------------------------------------
// Errors

/// A caller mistake found by the CLI itself (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The server could not be reached (exit code 1).
#[derive(Debug)]
pub struct ConnectError {
    addr: String,
    cause: String,
    /// The server answered, but TLS failed: the cause says what to fix,
    /// and asking whether the server runs would mislead.
    tls: bool,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot connect to the server at {}: {}",
            self.addr, self.cause
        )?;
        if !self.tls {
            f.write_str(" (is amon-server running? set --server or AMON_SERVER)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectError {}

/// Ends the program with this exit code, printing nothing more (the
/// command has already said what it had to).
#[derive(Debug)]
pub struct Exit(pub u8);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The canonical gRPC name of a code (`NOT_FOUND`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The exit code of a gRPC error (see the module doc).
pub fn exit_code_for(code: Code) -> u8 {
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::PermissionDenied
        | Code::Unauthenticated => 2,
        _ => 1,
    }
}

/// The message and exit code of an error that ended a command; `None` as
/// the message when nothing is to be printed. `addr` (the server's) is
/// named when the server became unreachable.
pub fn describe(error: &anyhow::Error, addr: &str) -> (Option<String>, u8) {
    if let Some(Exit(code)) = error.downcast_ref::<Exit>() {
        return (None, *code);
    }
    if let Some(status) = error.downcast_ref::<Status>() {
        let mut message = status.message().to_string();
        if message.is_empty() {
            message = "(no message)".to_string();
        }
        if let Some(source) = std::error::Error::source(status) {
            // A TLS failure says what to fix; tonic's "transport error" around it does not.
            if let Some(tls) = amon_proto::client::tls_failure(source) {
                message = tls;
            } else {
                let detail = amon_proto::client::explain(source);
                if !message.contains(&detail) {
                    message = format!("{message}: {detail}");
                }
            }
        }
        if status.code() == Code::Unavailable {
            message = format!("{message} (server at {addr})");
        }
        return (
            Some(format!("{}: {message}", code_name(status.code()))),
            exit_code_for(status.code()),
        );
    }
    if let Some(usage) = error.downcast_ref::<UsageError>() {
        return (Some(usage.0.clone()), 2);
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        // The reader went away (`amon events | head`): not an error.
        return (None, 0);
    }
    (Some(format!("{error:#}")), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_a_scheme() {
        assert_eq!(
            normalize_addr("127.0.0.1:50051").unwrap(),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            normalize_addr("localhost:7000/").unwrap(),
            "http://localhost:7000"
        );
        assert_eq!(normalize_addr("[::1]:50051").unwrap(), "http://[::1]:50051");
        assert_eq!(normalize_addr(DEFAULT_ADDR).unwrap(), DEFAULT_ADDR);
        assert_eq!(
            normalize_addr("https://example.invalid:443").unwrap(),
            "https://example.invalid:443"
        );
        assert!(normalize_addr("ftp://x").is_err());
        assert!(normalize_addr("  ").is_err());
    }

    #[test]
    fn auth_adds_a_bearer_header_only_with_a_token() {
        let mut auth = Auth::new(Some("s3cret")).unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let mut none = Auth::new(None).unwrap();
        let request = none.call(Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
        let mut blank = Auth::new(Some("  ")).unwrap();
        assert!(blank.call(Request::new(())).unwrap().metadata().is_empty());
        assert!(Auth::new(Some("bad\ntoken")).is_err());
    }

    fn describe_(error: &anyhow::Error) -> (Option<String>, u8) {
        describe(error, "http://h:1")
    }

    #[test]
    fn grpc_errors_map_to_exit_codes() {
        let (message, code) = describe_(&Status::not_found("task t1 not found").into());
        assert_eq!(message.as_deref(), Some("NOT_FOUND: task t1 not found"));
        assert_eq!(code, 2);
        let (message, code) = describe_(&Status::unimplemented("not built yet").into());
        assert_eq!(message.as_deref(), Some("UNIMPLEMENTED: not built yet"));
        assert_eq!(code, 1);
        let (message, code) = describe_(&Status::unavailable("connection reset").into());
        assert_eq!(
            message.as_deref(),
            Some("UNAVAILABLE: connection reset (server at http://h:1)")
        );
        assert_eq!(code, 1);
        assert_eq!(exit_code_for(Code::FailedPrecondition), 2);
        assert_eq!(exit_code_for(Code::Unauthenticated), 2);
        assert_eq!(exit_code_for(Code::Unavailable), 1);
        assert_eq!(exit_code_for(Code::Internal), 1);
    }

    #[test]
    fn other_errors_map_to_exit_codes() {
        assert_eq!(describe_(&usage("no such agent 'x'")).1, 2);
        assert_eq!(describe_(&Exit(124).into()), (None, 124));
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(describe_(&pipe.into()), (None, 0));
        let (message, code) = describe_(&anyhow::anyhow!("disk full"));
        assert_eq!((message.as_deref(), code), (Some("disk full"), 1));
    }

    #[tokio::test]
    async fn all_pages_follows_tokens() {
        let pages = [
            (vec![1, 2], "a".to_string()),
            (vec![3], "b".to_string()),
            (vec![], String::new()),
        ];
        let mut seen = Vec::new();
        let items = all_pages(|token| {
            seen.push(token.clone());
            let index = match token.as_str() {
                "" => 0,
                "a" => 1,
                _ => 2,
            };
            let page = pages[index].clone();
            async move { Ok(page) }
        })
        .await
        .unwrap();
        assert_eq!(items, vec![1, 2, 3]);
        assert_eq!(seen, vec!["", "a", "b"]);

        // A server repeating its token does not loop forever.
        let items = all_pages(|_| async { Ok((vec![7], "same".to_string())) })
            .await
            .unwrap();
        assert_eq!(items, vec![7, 7]);
    }
}
