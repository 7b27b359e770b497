//! A fuzz test over every RPC of the four `agentmonitor.v1` services, with requests
//! generated from the descriptor set (`amon_proto::FILE_DESCRIPTOR_SET`), not written per
//! RPC, sent on a real server on SQLite and on PostgreSQL (issue 10).
//!
//! **Generator.** For each method the input message is walked with `prost-reflect`:
//! an empty message; a *baseline* (every field the name alone says how to fill: `*_id`
//! fields get the id of a real row of this batch's fixtures, `slug`/`key` a fresh slug,
//! `name`/`title`/`label` a fresh name, `binary_path` `/bin/echo`...); then, for every field
//! in turn (recursing into nested messages, bounded), the baseline with that field replaced
//! by each hostile value of its kind: strings (empty, 1 MiB, NUL, control characters,
//! foreign and wrong-table ids, garbage, page-token shapes with extreme numbers, and a few
//! known hostile strings: deep template chains, 20k nested brackets...), bytes, integers at
//! their limits, unknown enum numbers, absent/empty messages, `Struct` nested past prost's
//! recursion limit and hostile JSON Schemas, `FieldMask`s with unknown/duplicate/empty
//! paths, `Timestamp`/`Duration` out of range, huge lists and maps. When a request has a
//! `FieldMask`, a change to a field of the masked message names that field in the mask.
//! Last, raw bodies that do not decode: invalid UTF-8 on the wire in every `string` field,
//! groups nested 150 deep, truncated and malformed bodies.
//!
//! **Sending.** Bodies go through a raw `tonic::client::Grpc` with a pass-through codec.
//! Server-streaming calls read a few messages for a short while, then drop. `Connect`
//! (client-streaming) sends the handshake (the first member of the request's oneof:
//! `register`) generated the same way, alone when it is the hostile part, or a baseline one
//! (the batch's worker, reclaiming its running execution with the real attempt token)
//! followed by one hostile message of another kind; then it half-closes and reads until the
//! server ends the stream.
//!
//! **Verdict.** No answer may be `INTERNAL` or `UNKNOWN`; `UNAVAILABLE`/`CANCELLED`
//! (the server died, or a handler panicked and its stream was reset), an answer the client
//! cannot read (`h2 protocol error`, whatever code tonic makes of it: the case is then sent
//! again on a channel allowing 16 MiB of headers, and what the server really said is shown)
//! and no answer within [`CALL_TIMEOUT`] fail too. After any such answer and after each
//! method's batch the server must be alive and answer `grpc.health.v1.Health/Check`; a dead
//! server is reported (with its exit status) and restarted on the same database, and
//! fuzzing goes on. Every violation of every RPC is collected and the test fails once, at
//! the end, with a summary and a table (method, case, code, message).
//!
//! The servers log at `error` unless `RUST_LOG` says otherwise (they log refused inputs
//! whole); `AMON_FUZZ_VERBOSE=1` prints every case's answer and time, and
//! `AMON_FUZZ_REPORT_DIR=dir` also writes each backend's table to `dir/fuzz-<backend>.txt`.
//!
//! A second, smaller test runs a handful of RPCs on both backends side by side and checks
//! that they answer every generated input with the same code.

use std::{
    cell::Cell,
    collections::{BTreeMap, HashMap},
    str::FromStr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use amon_proto::v1::{AddDependencyRequest, CancelExecutionRequest, ExecutionStatus, Register};
use amon_tests::{
    api::Api,
    both_backends,
    db::{Backend, TestDb},
    fake_worker::FakeWorker,
    server::TestServer,
};
use anyhow::{Context, Result, bail, ensure};
use prost::{
    Message as _,
    bytes::{Buf, BufMut, Bytes},
    encoding::{WireType, encode_key, encode_varint},
};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    MethodDescriptor, Value,
};
use serde_json::json;
use tonic::{
    Code, Request, Status,
    client::Grpc,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Longest a call may take before it counts as a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server stream is read (at most [`STREAM_MESSAGES`] messages) before it is dropped.
const STREAM_WINDOW: Duration = Duration::from_millis(150);
/// Messages read from a server stream.
const STREAM_MESSAGES: usize = 3;
/// How long a half-closed `Connect` stream may take to end.
const CONNECT_WINDOW: Duration = Duration::from_secs(2);
/// Nested message levels the generator descends into.
const MAX_DEPTH: usize = 3;
/// Characters of a status message kept in the report.
const MESSAGE_CHARS: usize = 200;
const MIB: usize = 1 << 20;
const PACKAGE: &str = "agentmonitor.v1";

// ---------------------------------------------------------------------------------------
// Raw transport: a codec that passes encoded bodies through.
// ---------------------------------------------------------------------------------------

/// A tonic codec of already-encoded protobuf bodies: what is sent is exactly the bytes
/// given, whatever the method, and answers are kept as bytes.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut body = vec![0; src.remaining()];
        src.copy_to_slice(&mut body);
        Ok(Some(body))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

// ---------------------------------------------------------------------------------------
// Real rows to aim at.
// ---------------------------------------------------------------------------------------

/// Real rows made fresh for each method's batch, so that ids in the generated requests
/// hit real rows whatever the previous batch deleted or changed.
struct Fixtures {
    agent: String,
    capability: String,
    /// Has executions, and depends on `other_task`.
    task: String,
    other_task: String,
    /// Succeeded, with output.
    done: String,
    /// Running on `worker_id`, with output.
    running: String,
    /// Queued (waits for `task`'s dependency).
    queued: String,
    cancelled: String,
    worker_id: String,
    /// Attempt token of `running`.
    attempt_token: String,
    /// Holds `running` (until a generated `Connect` takes its place).
    _worker: FakeWorker,
}

async fn fixtures(channel: Channel, batch: usize) -> Result<Fixtures> {
    const WAIT: Duration = Duration::from_secs(20);
    let mut api = Api::new(channel.clone());
    let slug = format!("fixture-{batch}");
    let agent = api.tool(&slug, "/bin/echo", &[]).await;
    let capability = api.command(&agent, "say", &["hi"]).await;
    let task = api.titled(&format!("fixture task {batch}")).await;
    let other_task = api.titled(&format!("fixture prerequisite {batch}")).await;

    // A worker for this batch's agent only, so it is never handed older queued runs.
    let worker_id = format!("fixture-worker-{batch}");
    let mut worker = FakeWorker::connect(
        channel.clone(),
        Register {
            agent_slugs: vec![slug],
            ..FakeWorker::register(&worker_id, 2)
        },
    )
    .await
    .context("fixture worker")?;

    let done = api.run(&task, &capability, json!({}), 0).await;
    worker.grant(1).await;
    let first = worker.next_assign().await;
    ensure!(
        first.execution_id == done.id,
        "fixture worker got {first:?}"
    );
    let output = b"hello from the fuzz fixture\n";
    worker.started(&first, 4242).await;
    worker.output(&first, first.log_offset, output).await;
    worker
        .finished(
            &first,
            ExecutionStatus::Succeeded as i32,
            Some(0),
            first.log_offset + output.len() as i64,
        )
        .await;
    api.wait_for(&done.id, ExecutionStatus::Succeeded, WAIT)
        .await;

    let running = api.run(&task, &capability, json!({}), 0).await;
    worker.grant(1).await;
    let second = worker.next_assign().await;
    ensure!(
        second.execution_id == running.id,
        "fixture worker got {second:?}"
    );
    worker.started(&second, 4243).await;
    worker
        .output(&second, second.log_offset, b"partial output\n")
        .await;
    let deadline = Instant::now() + WAIT;
    while api.execution(&running.id).await.log_byte_size == 0 {
        ensure!(Instant::now() < deadline, "fixture output never stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let queued = api.run(&task, &capability, json!({}), 0).await;
    let cancelled = api.run(&task, &capability, json!({}), 0).await;
    api.executions
        .cancel_execution(CancelExecutionRequest {
            id: cancelled.id.clone(),
            reason: "fixture".into(),
        })
        .await
        .context("cancelling the fixture execution")?;
    api.tasks
        .add_dependency(AddDependencyRequest {
            task_id: task.id.clone(),
            depends_on_task_id: other_task.id.clone(),
        })
        .await
        .context("fixture dependency")?;

    Ok(Fixtures {
        agent: agent.id,
        capability: capability.id,
        task: task.id,
        other_task: other_task.id,
        done: done.id,
        running: running.id,
        queued: queued.id,
        cancelled: cancelled.id,
        worker_id,
        attempt_token: second.attempt_token,
        _worker: worker,
    })
}

// ---------------------------------------------------------------------------------------
// Hostile values.
// ---------------------------------------------------------------------------------------

/// URL-safe base64 without padding (the server's page-token alphabet).
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Hostile strings that do not depend on the batch's rows.
fn constant_strings() -> &'static [(String, String)] {
    static STRINGS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    STRINGS.get_or_init(|| {
        const DEEP: usize = 20_000;
        let mut strings: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            ("1 MiB", "a".repeat(MIB)),
            ("NUL inside", "fuzz\0nul".into()),
            ("only NUL", "\0".into()),
            (
                "control characters",
                "\u{1}\u{7}\u{8}\u{1b}[31m\u{7f}\tx".into(),
            ),
            ("newlines", "line one\nline two\r\n".into()),
            ("blank", "   ".into()),
            (
                "unicode tricks",
                "\u{202e}\u{1f980}\u{feff}\u{c5}\u{200b}".into(),
            ),
            ("random UUID", "5f1c8a4e-3b2d-4c6f-9a8b-7d6e5f4a3b2c".into()),
            ("nil UUID", "00000000-0000-0000-0000-000000000000".into()),
            ("max UUID", "ffffffff-ffff-ffff-ffff-ffffffffffff".into()),
            ("not a UUID", "not-a-uuid".into()),
            ("SQL quote", "' OR '1'='1' --".into()),
            ("format specifiers", "%s%n%x%d{}{0}".into()),
            ("path traversal", "../../../../etc/passwd".into()),
            ("-1", "-1".into()),
            ("2^64", "18446744073709551616".into()),
        ];
        // The server's page tokens are base64url("o:<offset>") and base64url("a:<id>"):
        // the same shapes with extreme numbers.
        for token in [
            "o:18446744073709551615",
            "o:9223372036854775807",
            "o:-1",
            "o:99999999999999999999999",
            "a:9223372036854775807",
            "a:-9223372036854775808",
        ] {
            strings.push(("page-token shape", token.into()));
            let last = strings.len() - 1;
            strings[last].1 = base64url(token.as_bytes());
            strings[last].0 = Box::leak(format!("page token {token}").into_boxed_str());
        }
        // Known hostile strings: templates, regular expressions, globs, JSON.
        strings.extend([
            (
                "template: 20000-operator chain",
                format!("{{{{ 1{} }}}}", " + 1".repeat(DEEP)),
            ),
            (
                "template: 20000-attribute chain",
                format!("{{{{ x{} }}}}", ".a".repeat(DEEP)),
            ),
            (
                "template: 20000 nested parentheses",
                format!("{{{{ {}1{} }}}}", "(".repeat(DEEP), ")".repeat(DEEP)),
            ),
            (
                "template: 20000 nested lists",
                format!("{{{{ {}1{} }}}}", "[".repeat(DEEP), "]".repeat(DEEP)),
            ),
            (
                "template: 2000 nested ifs",
                format!(
                    "{}x{}",
                    "{% if true %}".repeat(2000),
                    "{% endif %}".repeat(2000)
                ),
            ),
            (
                "template: huge range",
                "{{ range(1000000000)|list|length }}".into(),
            ),
            ("template: unclosed", "{{ x".into()),
            ("template: 10000 openers", "{{".repeat(10_000)),
            ("template: unknown filter", "{{ x|no_such_filter }}".into()),
            ("template: include", "{% include 'x' %}".into()),
            ("regex: 20000 open groups", "(".repeat(DEEP)),
            ("regex: catastrophic", "(a+)+$".into()),
            ("regex: huge repetition", "a{1000}{1000}{1000}".into()),
            ("regex/glob: open class", "[".into()),
            ("glob: 5000 **", "**/".repeat(5000)),
            ("JSON: 20000 open brackets", "[".repeat(DEEP)),
        ]);
        strings
            .into_iter()
            .map(|(label, value)| (label.to_owned(), value))
            .collect()
    })
}

/// Label prefix of the rewritten forms of a real id.
const DERIVED_ID: &str = "task id, ";

/// Every hostile string for this batch: the constant ones and ids of real rows, of the
/// right table or not.
fn hostile_strings(fx: &Fixtures) -> Vec<(String, String)> {
    let mut strings = constant_strings().to_vec();
    for (label, id) in [
        ("agent id", &fx.agent),
        ("capability id", &fx.capability),
        ("task id", &fx.task),
        ("other task id", &fx.other_task),
        ("succeeded execution id", &fx.done),
        ("running execution id", &fx.running),
        ("queued execution id", &fx.queued),
        ("cancelled execution id", &fx.cancelled),
        ("attempt token", &fx.attempt_token),
        ("fixture worker id", &fx.worker_id),
    ] {
        strings.push((label.to_owned(), id.clone()));
    }
    for (form, id) in [
        ("braced", format!("{{{}}}", fx.task)),
        ("without hyphens", fx.task.replace('-', "")),
        ("urn", format!("urn:uuid:{}", fx.task)),
        ("uppercase", fx.task.to_uppercase()),
        ("padded", format!(" {} ", fx.task)),
    ] {
        strings.push((format!("{DERIVED_ID}{form}"), id));
    }
    strings
}

/// A JSON value for `google.protobuf.Struct`/`Value`, including what JSON cannot say.
#[derive(Clone)]
enum J {
    Null,
    Num(f64),
    Str(String),
    List(Vec<J>),
    Obj(Vec<(String, J)>),
    /// A `Value` with no kind set.
    NoKind,
}

fn obj(fields: &[(&str, J)]) -> J {
    J::Obj(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn s(value: &str) -> J {
    J::Str(value.into())
}

/// `{"a": {"a": ... 1}}`, `depth` objects deep.
fn deep_object(depth: usize) -> J {
    (0..depth).fold(J::Num(1.0), |inner, _| J::Obj(vec![("a".into(), inner)]))
}

/// `{"a": [[[ ... 1]]]}`, `depth` lists deep.
fn deep_list(depth: usize) -> J {
    let list = (0..depth).fold(J::Num(1.0), |inner, _| J::List(vec![inner]));
    J::Obj(vec![("a".into(), list)])
}

/// Hostile `Struct`s (JSON objects).
fn hostile_structs() -> &'static [(String, J)] {
    static STRUCTS: OnceLock<Vec<(String, J)>> = OnceLock::new();
    STRUCTS.get_or_init(|| {
        let mut structs = vec![
            ("{}".to_owned(), obj(&[])),
            ("null member".into(), obj(&[("k", J::Null)])),
            ("empty key".into(), obj(&[("", J::Num(1.0))])),
            ("NUL in key and value".into(), obj(&[("a\0b", s("x\0y"))])),
            ("NaN".into(), obj(&[("n", J::Num(f64::NAN))])),
            ("+infinity".into(), obj(&[("n", J::Num(f64::INFINITY))])),
            ("-infinity".into(), obj(&[("n", J::Num(f64::NEG_INFINITY))])),
            ("1e308".into(), obj(&[("n", J::Num(1e308))])),
            ("value with no kind".into(), obj(&[("k", J::NoKind)])),
            (
                "1 MiB string member".into(),
                obj(&[("s", J::Str("a".repeat(MIB)))]),
            ),
            (
                "10000 members".into(),
                J::Obj(
                    (0..10_000)
                        .map(|i| (format!("k{i}"), J::Num(i as f64)))
                        .collect(),
                ),
            ),
            (
                "100000-element list".into(),
                obj(&[("l", J::List(vec![J::Num(0.0); 100_000]))]),
            ),
            // JSON Schemas that are hard to compile or to apply.
            ("schema: $ref to itself".into(), obj(&[("$ref", s("#"))])),
            (
                "schema: property $ref loop".into(),
                obj(&[
                    ("type", s("object")),
                    (
                        "properties",
                        obj(&[("a", obj(&[("$ref", s("#/properties/a"))]))]),
                    ),
                ]),
            ),
            (
                "schema: $defs loop".into(),
                obj(&[
                    ("$defs", obj(&[("a", obj(&[("$ref", s("#/$defs/a"))]))])),
                    ("$ref", s("#/$defs/a")),
                ]),
            ),
            (
                "schema: remote $ref".into(),
                obj(&[("$ref", s("http://example.invalid/schema.json"))]),
            ),
            (
                "schema: file $ref".into(),
                obj(&[("$ref", s("file:///etc/passwd"))]),
            ),
            ("schema: type 5".into(), obj(&[("type", J::Num(5.0))])),
            (
                "schema: invalid pattern".into(),
                obj(&[
                    ("type", s("object")),
                    ("properties", obj(&[("a", obj(&[("pattern", s("(("))]))])),
                ]),
            ),
            (
                "schema: catastrophic pattern".into(),
                obj(&[("patternProperties", obj(&[("(a+)+$", obj(&[]))]))]),
            ),
            (
                "schema: multipleOf 0".into(),
                obj(&[("multipleOf", J::Num(0.0))]),
            ),
            (
                "schema: multipleOf 1e-300".into(),
                obj(&[("multipleOf", J::Num(1e-300))]),
            ),
            (
                "schema: minLength 1e300".into(),
                obj(&[("minLength", J::Num(1e300))]),
            ),
            (
                "schema: additionalProperties true".into(),
                obj(&[("additionalProperties", J::Null)]),
            ),
            (
                "schema: required twice".into(),
                obj(&[("required", J::List(vec![s("a"), s("a")]))]),
            ),
        ];
        // Around prost's recursion limit (100 messages; a JSON object level is three:
        // Struct, map entry, Value; a list level two) and beyond.
        for depth in [10, 16, 24, 31, 32, 33, 48, 50, 90, 120] {
            structs.push((format!("{depth} nested objects"), deep_object(depth)));
            structs.push((format!("{depth} nested lists"), deep_list(depth)));
        }
        structs
    })
}

/// Where a generated request points its ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Agent,
    Capability,
    Task,
    Execution,
    Other,
}

/// The entity a method is about, from its name.
fn entity_of_method(name: &str) -> Entity {
    if name.contains("Capability") {
        Entity::Capability
    } else if name.contains("Agent") {
        Entity::Agent
    } else if name.contains("Task") || name.contains("Dependency") || name.contains("Board") {
        Entity::Task
    } else if name.contains("Execution") || name.contains("Logs") {
        Entity::Execution
    } else {
        Entity::Other
    }
}

/// The entity a message describes (its `id` field), or the enclosing one.
fn entity_of_message(name: &str, outer: Entity) -> Entity {
    match name {
        "Agent" => Entity::Agent,
        "Capability" => Entity::Capability,
        "Task" => Entity::Task,
        "Execution" => Entity::Execution,
        _ => outer,
    }
}

/// Well-known types that get values of their own instead of field-by-field recursion.
fn is_special(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Struct"
            | "google.protobuf.Value"
            | "google.protobuf.ListValue"
            | "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
    )
}

// ---------------------------------------------------------------------------------------
// The generator.
// ---------------------------------------------------------------------------------------

/// One generated call: a label and the bodies to send (one, or a `Connect` sequence).
struct Case {
    label: String,
    messages: Vec<Vec<u8>>,
}

/// A request with one field (at `path`) replaced.
struct Mutant {
    path: Vec<String>,
    value: String,
    message: DynamicMessage,
}

/// Generates a batch's requests from the descriptors.
struct Generator<'a> {
    pool: &'a DescriptorPool,
    fx: &'a Fixtures,
    strings: Vec<(String, String)>,
    /// Makes slugs, keys and names unique per generated request.
    counter: Cell<u64>,
}

impl<'a> Generator<'a> {
    fn new(pool: &'a DescriptorPool, fx: &'a Fixtures) -> Self {
        Self {
            pool,
            fx,
            strings: hostile_strings(fx),
            counter: Cell::new(0),
        }
    }

    fn message(&self, name: &str) -> MessageDescriptor {
        self.pool
            .get_message_by_name(name)
            .unwrap_or_else(|| panic!("{name} in the descriptor set"))
    }

    fn next(&self) -> u64 {
        let n = self.counter.get();
        self.counter.set(n + 1);
        n
    }

    /// What a field's name alone says it should hold.
    fn plausible_string(&self, name: &str, entity: Entity) -> Option<String> {
        let fx = self.fx;
        Some(match name {
            "id" => match entity {
                Entity::Agent => fx.agent.clone(),
                Entity::Capability => fx.capability.clone(),
                Entity::Task => fx.task.clone(),
                Entity::Execution => fx.done.clone(),
                Entity::Other => return None,
            },
            "agent_id" | "assignee_agent_id" => fx.agent.clone(),
            "capability_id" => fx.capability.clone(),
            "task_id" => fx.task.clone(),
            "depends_on_task_id" | "parent_task_id" | "after_task_id" | "before_task_id" => {
                fx.other_task.clone()
            }
            "execution_id" => fx.running.clone(),
            "worker_id" => fx.worker_id.clone(),
            "attempt_token" => fx.attempt_token.clone(),
            "slug" | "key" => format!("fuzz-{}", self.next()),
            "name" | "title" | "label" | "display_name" | "hostname" => {
                format!("Fuzz {}", self.next())
            }
            "binary_path" => "/bin/echo".into(),
            "preset" => "claude".into(),
            "version" => "1.0".into(),
            "prompt" | "reason" | "session_ref" => "fuzz".into(),
            _ => return None,
        })
    }

    /// The baseline of `desc`: plausible values where the name says what they are, the
    /// direct message fields of a request filled in, one element in a message list near
    /// the top; oneofs and everything else left unset.
    fn baseline(&self, desc: &MessageDescriptor, depth: usize, entity: Entity) -> DynamicMessage {
        let mut message = DynamicMessage::new(desc.clone());
        for field in desc.fields() {
            if field
                .containing_oneof()
                .is_some_and(|oneof| !oneof.is_synthetic())
                || field.is_map()
            {
                continue;
            }
            let value = match field.kind() {
                Kind::String if !field.is_list() => self
                    .plausible_string(field.name(), entity)
                    .map(Value::String),
                Kind::Int32 if !field.is_list() => match field.name() {
                    "max_concurrent" => Some(Value::I32(1)),
                    "priority" => Some(Value::I32(3)),
                    _ => None,
                },
                Kind::Message(sub) if !is_special(&sub) => {
                    let inner = entity_of_message(sub.name(), entity);
                    if field.is_list() && depth <= 1 {
                        Some(Value::List(vec![Value::Message(self.baseline(
                            &sub,
                            depth + 1,
                            inner,
                        ))]))
                    } else if !field.is_list() && depth == 0 {
                        Some(Value::Message(self.baseline(&sub, depth + 1, inner)))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(value) = value {
                message.set_field(&field, value);
            }
        }
        message
    }

    /// Hostile values of a scalar kind.
    fn scalars(&self, kind: &Kind) -> Vec<(String, Value)> {
        fn labelled<T: Copy + std::fmt::Debug>(
            values: &[T],
            wrap: fn(T) -> Value,
        ) -> Vec<(String, Value)> {
            values
                .iter()
                .map(|v| (format!("{v:?}"), wrap(*v)))
                .collect()
        }
        match kind {
            Kind::String => self
                .strings
                .iter()
                .map(|(label, value)| (label.clone(), Value::String(value.clone())))
                .collect(),
            Kind::Bytes => vec![
                ("empty bytes".into(), Value::Bytes(Bytes::new())),
                (
                    "invalid UTF-8".into(),
                    Value::Bytes(Bytes::from_static(b"\xff\xfe\xc3\x28\x80 bad")),
                ),
                ("NULs".into(), Value::Bytes(Bytes::from(vec![0u8; 64]))),
                (
                    "1 MiB of every byte".into(),
                    Value::Bytes((0..MIB).map(|i| i as u8).collect::<Vec<u8>>().into()),
                ),
                (
                    "5 MiB (over the message limit)".into(),
                    Value::Bytes(Bytes::from(vec![b'x'; 5 * MIB])),
                ),
            ],
            Kind::Bool => labelled(&[true, false], Value::Bool),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => labelled(
                &[0, 1, -1, i32::MIN, i32::MAX, 1_000_000_000, 2_000_000_000],
                Value::I32,
            ),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => labelled(
                &[
                    0,
                    1,
                    -1,
                    i64::MIN,
                    i64::MAX,
                    1 << 44,
                    (1 << 53) + 1,
                    10i64.pow(18),
                ],
                Value::I64,
            ),
            Kind::Uint32 | Kind::Fixed32 => labelled(&[0, 1, u32::MAX], Value::U32),
            Kind::Uint64 | Kind::Fixed64 => labelled(&[0, 1, u64::MAX, 1 << 63], Value::U64),
            Kind::Float => labelled(
                &[
                    0.0,
                    -0.0,
                    f32::NAN,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    f32::MAX,
                ],
                Value::F32,
            ),
            Kind::Double => labelled(
                &[
                    0.0,
                    -0.0,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::MAX,
                ],
                Value::F64,
            ),
            Kind::Enum(e) => {
                let mut values: Vec<(String, Value)> = e
                    .values()
                    .map(|v| (v.name().to_owned(), Value::EnumNumber(v.number())))
                    .collect();
                for n in [99, -1, i32::MAX, i32::MIN] {
                    values.push((format!("unknown enum {n}"), Value::EnumNumber(n)));
                }
                values
            }
            Kind::Message(_) => Vec::new(),
        }
    }

    fn struct_message(&self, fields: &[(String, J)]) -> DynamicMessage {
        let mut message = DynamicMessage::new(self.message("google.protobuf.Struct"));
        let map: HashMap<MapKey, Value> = fields
            .iter()
            .map(|(k, v)| {
                (
                    MapKey::String(k.clone()),
                    Value::Message(self.value_message(v)),
                )
            })
            .collect();
        message.set_field_by_name("fields", Value::Map(map));
        message
    }

    fn list_message(&self, items: &[J]) -> DynamicMessage {
        let mut message = DynamicMessage::new(self.message("google.protobuf.ListValue"));
        let values = items
            .iter()
            .map(|item| Value::Message(self.value_message(item)))
            .collect();
        message.set_field_by_name("values", Value::List(values));
        message
    }

    fn value_message(&self, json: &J) -> DynamicMessage {
        let mut message = DynamicMessage::new(self.message("google.protobuf.Value"));
        match json {
            J::Null => message.set_field_by_name("null_value", Value::EnumNumber(0)),
            J::Num(n) => message.set_field_by_name("number_value", Value::F64(*n)),
            J::Str(text) => message.set_field_by_name("string_value", Value::String(text.clone())),
            J::List(items) => {
                message.set_field_by_name("list_value", Value::Message(self.list_message(items)))
            }
            J::Obj(fields) => message
                .set_field_by_name("struct_value", Value::Message(self.struct_message(fields))),
            J::NoKind => {}
        }
        message
    }

    /// `{seconds, nanos}` of a Timestamp or Duration.
    fn seconds_nanos(&self, desc: &MessageDescriptor, seconds: i64, nanos: i32) -> DynamicMessage {
        let mut message = DynamicMessage::new(desc.clone());
        message.set_field_by_name("seconds", Value::I64(seconds));
        message.set_field_by_name("nanos", Value::I32(nanos));
        message
    }

    fn field_mask(&self, paths: &[String]) -> DynamicMessage {
        let mut message = DynamicMessage::new(self.message("google.protobuf.FieldMask"));
        message.set_field_by_name(
            "paths",
            Value::List(paths.iter().cloned().map(Value::String).collect()),
        );
        message
    }

    /// The message a request's `FieldMask` applies to: its other singular message field.
    fn mask_target(parent: &MessageDescriptor) -> Option<FieldDescriptor> {
        parent.fields().find(|f| {
            !f.is_list() && !f.is_map() && matches!(f.kind(), Kind::Message(m) if !is_special(&m))
        })
    }

    /// Hostile values of a well-known message type; `None` leaves the field unset.
    fn specials(
        &self,
        desc: &MessageDescriptor,
        parent: &MessageDescriptor,
    ) -> Vec<(String, Option<Value>)> {
        let message = |m: DynamicMessage| Some(Value::Message(m));
        let mut values = vec![("absent".to_owned(), None)];
        match desc.full_name() {
            "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
                values.push(("{}".into(), message(DynamicMessage::new(desc.clone()))));
                for (label, seconds, nanos) in [
                    ("seconds -1", -1, 0),
                    ("nanos -1", 0, -1),
                    ("nanos 2e9", 0, 2_000_000_000),
                    ("nanos i32::MAX", 0, i32::MAX),
                    ("seconds i64::MAX", i64::MAX, 0),
                    ("seconds i64::MIN", i64::MIN, 0),
                    ("seconds i64::MAX nanos 999999999", i64::MAX, 999_999_999),
                    ("seconds 2^44", 1 << 44, 0),
                    ("year 10000", 253_402_300_800, 0),
                    ("before year 1", -62_135_596_801, 0),
                    ("mixed signs", -1, 1),
                    ("1 ns", 0, 1),
                ] {
                    values.push((
                        label.into(),
                        message(self.seconds_nanos(desc, seconds, nanos)),
                    ));
                }
            }
            "google.protobuf.FieldMask" => {
                let sibling: Vec<String> = Self::mask_target(parent)
                    .and_then(|f| match f.kind() {
                        Kind::Message(m) => Some(m.fields().map(|f| f.name().to_owned()).collect()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let first = sibling.first().cloned().unwrap_or_else(|| "id".into());
                let mut masks: Vec<(String, Vec<String>)> = vec![
                    ("no paths".into(), vec![]),
                    ("unknown path".into(), vec!["no_such_field".into()]),
                    (
                        format!("duplicate {first}"),
                        vec![first.clone(), first.clone()],
                    ),
                    ("empty path".into(), vec![String::new()]),
                    ("wildcard".into(), vec!["*".into()]),
                    ("nested unknown".into(), vec!["a.b.c".into()]),
                    ("uppercase".into(), vec![first.to_uppercase()]),
                    ("NUL in path".into(), vec![format!("{first}\0")]),
                    ("1 MiB path".into(), vec!["a".repeat(MIB)]),
                    (
                        "10000 unknown paths".into(),
                        (0..10_000).map(|i| format!("x{i}")).collect(),
                    ),
                    ("every field".into(), sibling.clone()),
                ];
                for name in &sibling {
                    masks.push((format!("[{name}]"), vec![name.clone()]));
                    masks.push((format!("[{name}.x]"), vec![format!("{name}.x")]));
                }
                for (label, paths) in masks {
                    values.push((label, message(self.field_mask(&paths))));
                }
            }
            "google.protobuf.Struct" => {
                for (label, json) in hostile_structs() {
                    let J::Obj(fields) = json else { continue };
                    values.push((label.clone(), message(self.struct_message(fields))));
                }
            }
            "google.protobuf.Value" => {
                for (label, json) in hostile_structs() {
                    values.push((label.clone(), message(self.value_message(json))));
                }
            }
            "google.protobuf.ListValue" => {
                values.push(("[]".into(), message(self.list_message(&[]))));
                values.push((
                    "100000 nulls".into(),
                    message(self.list_message(&vec![J::Null; 100_000])),
                ));
            }
            other => unreachable!("{other} is not special"),
        }
        values
    }

    /// Hostile values of one field; `None` leaves it unset.
    fn values_for(
        &self,
        field: &FieldDescriptor,
        parent: &MessageDescriptor,
    ) -> Vec<(String, Option<Value>)> {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("a map's entry is a message")
            };
            let (key_field, value_field) =
                (entry.map_entry_key_field(), entry.map_entry_value_field());
            let key_of = |v: Value| match v {
                Value::String(s) => MapKey::String(s),
                Value::I32(n) => MapKey::I32(n),
                Value::I64(n) => MapKey::I64(n),
                Value::U32(n) => MapKey::U32(n),
                Value::U64(n) => MapKey::U64(n),
                Value::Bool(b) => MapKey::Bool(b),
                other => unreachable!("{other:?} is not a map key"),
            };
            let keys = self.scalars(&key_field.kind());
            let values = match value_field.kind() {
                Kind::Message(m) if is_special(&m) => self
                    .specials(&m, &entry)
                    .into_iter()
                    .filter_map(|(l, v)| v.map(|v| (l, v)))
                    .collect(),
                Kind::Message(m) => vec![("{}".into(), Value::Message(DynamicMessage::new(m)))],
                kind => self.scalars(&kind),
            };
            let (Some((_, plain_key)), Some((_, plain_value))) = (keys.last(), values.first())
            else {
                return Vec::new();
            };
            let map = |pairs: Vec<(MapKey, Value)>| Some(Value::Map(pairs.into_iter().collect()));
            let mut cases = Vec::new();
            if matches!(key_field.kind(), Kind::String) {
                cases.push((
                    "10000 entries".into(),
                    map((0..10_000)
                        .map(|i| (MapKey::String(format!("k{i}")), plain_value.clone()))
                        .collect()),
                ));
            }
            for (label, key) in &keys {
                cases.push((
                    format!("key {label}"),
                    map(vec![(key_of(key.clone()), plain_value.clone())]),
                ));
            }
            for (label, value) in &values {
                cases.push((
                    format!("value {label}"),
                    map(vec![(key_of(plain_key.clone()), value.clone())]),
                ));
            }
            cases.push(("{}".to_owned(), map(vec![])));
            return cases;
        }
        let kind = field.kind();
        if field.is_list() {
            // Large values first: the last value set stays in the batch's rows, and every
            // later update would read and write it again.
            let list = |items: Vec<Value>| Some(Value::List(items));
            let mut cases = Vec::new();
            match &kind {
                Kind::Message(m) if is_special(m) => {
                    for (label, value) in self.specials(m, parent) {
                        if let Some(value) = value {
                            cases.push((format!("[{label}]"), list(vec![value])));
                        }
                    }
                }
                Kind::Message(m) => {
                    let empty = Value::Message(DynamicMessage::new(m.clone()));
                    cases.push(("10000 × {}".into(), list(vec![empty.clone(); 10_000])));
                    cases.push(("[{}]".into(), list(vec![empty])));
                }
                _ => {
                    let scalars = self.scalars(&kind);
                    if matches!(kind, Kind::String) {
                        cases.push((
                            "1000 × 1 KiB".into(),
                            list(vec![Value::String("k".repeat(1024)); 1000]),
                        ));
                        cases.push((
                            "50000 × \"x\"".into(),
                            list(vec![Value::String("x".into()); 50_000]),
                        ));
                    } else if let Some((label, value)) = scalars.first() {
                        cases.push((
                            format!("50000 × {label}"),
                            list(vec![value.clone(); 50_000]),
                        ));
                    }
                    if let Some((label, value)) = scalars.last() {
                        cases.push((format!("[{label}] × 2"), list(vec![value.clone(); 2])));
                    }
                    for (label, value) in &scalars {
                        cases.push((format!("[{label}]"), list(vec![value.clone()])));
                    }
                }
            }
            cases.push(("[]".to_owned(), list(vec![])));
            return cases;
        }
        match &kind {
            Kind::Message(m) if is_special(m) => self.specials(m, parent),
            Kind::Message(m) => vec![
                ("absent".into(), None),
                (
                    "{}".into(),
                    Some(Value::Message(DynamicMessage::new(m.clone()))),
                ),
            ],
            _ => self
                .scalars(&kind)
                .into_iter()
                .map(|(label, value)| (label, Some(value)))
                .collect(),
        }
    }

    /// Every one-field change of the baseline of `desc`, nested fields included.
    fn mutants(&self, desc: &MessageDescriptor, depth: usize, entity: Entity) -> Vec<Mutant> {
        let mut out = Vec::new();
        for field in desc.fields() {
            for (value_label, value) in self.values_for(&field, desc) {
                let mut message = self.baseline(desc, depth, entity);
                match value {
                    Some(value) => message.set_field(&field, value),
                    None => message.clear_field(&field),
                }
                out.push(Mutant {
                    path: vec![field.name().to_owned()],
                    value: value_label,
                    message,
                });
            }
            let Kind::Message(sub) = field.kind() else {
                continue;
            };
            if field.is_map() || is_special(&sub) || depth >= MAX_DEPTH {
                continue;
            }
            let inner_entity = entity_of_message(sub.name(), entity);
            for inner in self.mutants(&sub, depth + 1, inner_entity) {
                let mut message = self.baseline(desc, depth, entity);
                let value = Value::Message(inner.message);
                let (name, value) = if field.is_list() {
                    (format!("{}[0]", field.name()), Value::List(vec![value]))
                } else {
                    (field.name().to_owned(), value)
                };
                message.set_field(&field, value);
                let mut path = vec![name];
                path.extend(inner.path);
                out.push(Mutant {
                    path,
                    value: inner.value,
                    message,
                });
            }
        }
        out
    }

    /// Paths (as field lists) to every `string` field, map keys and values included.
    fn string_paths(
        &self,
        desc: &MessageDescriptor,
        depth: usize,
        prefix: &mut Vec<FieldDescriptor>,
        out: &mut Vec<Vec<FieldDescriptor>>,
    ) {
        for field in desc.fields() {
            prefix.push(field.clone());
            match field.kind() {
                Kind::String => out.push(prefix.clone()),
                Kind::Message(sub) if !is_special(&sub) && depth < MAX_DEPTH => {
                    self.string_paths(&sub, depth + 1, prefix, out)
                }
                _ => {}
            }
            prefix.pop();
        }
    }

    /// Bodies that must not decode, appended to (or instead of) the baseline's encoding.
    fn raw_bodies(&self, desc: &MessageDescriptor, baseline: &[u8]) -> Vec<(Vec<String>, Vec<u8>)> {
        fn nested(path: &[FieldDescriptor], leaf: &[u8]) -> Vec<u8> {
            let mut inner = leaf.to_vec();
            for field in path.iter().rev() {
                let mut outer = Vec::new();
                encode_key(field.number(), WireType::LengthDelimited, &mut outer);
                encode_varint(inner.len() as u64, &mut outer);
                outer.extend(inner);
                inner = outer;
            }
            inner
        }
        let with = |tail: &[u8]| [baseline, tail].concat();
        let mut bodies = Vec::new();
        let mut paths = Vec::new();
        self.string_paths(desc, 0, &mut Vec::new(), &mut paths);
        for path in paths {
            let names: Vec<String> = path.iter().map(|f| f.name().to_owned()).collect();
            let label = format!("raw: invalid UTF-8 on the wire in {}", names.join("."));
            bodies.push((names, label, with(&nested(&path, b"f\xff\xfe\xc3\x28"))));
        }
        let mut groups = Vec::new();
        for _ in 0..150 {
            encode_key(1999, WireType::StartGroup, &mut groups);
        }
        for _ in 0..150 {
            encode_key(1999, WireType::EndGroup, &mut groups);
        }
        let mut huge_length = Vec::new();
        encode_key(1, WireType::LengthDelimited, &mut huge_length);
        encode_varint(1 << 62, &mut huge_length);
        for (label, body) in [
            ("raw: unknown field, groups nested 150 deep", with(&groups)),
            ("raw: truncated (a tag and no value)", with(&[0x0a])),
            ("raw: length past the end", with(&[0x0a, 0x7f, 0x01])),
            ("raw: length 2^62", with(&huge_length)),
            ("raw: wire type 7", with(&[0x0f, 0x00])),
            ("raw: field number 0", with(&[0x00, 0x01])),
            (
                "raw: 11-byte varint",
                with(&[[0x08].as_slice(), &[0xff; 10], &[0x01]].concat()),
            ),
            ("raw: 64 bytes of 0xff", vec![0xff; 64]),
        ] {
            bodies.push((Vec::new(), label.to_owned(), body));
        }
        bodies
            .into_iter()
            .map(|(path, label, body)| {
                let mut path = path;
                path.insert(0, label);
                (path, body)
            })
            .collect()
    }

    /// Every case of `method`.
    fn cases(&self, method: &MethodDescriptor) -> Vec<Case> {
        let input = method.input();
        let entity = entity_of_method(method.name());
        let empty = DynamicMessage::new(input.clone()).encode_to_vec();
        if method.is_client_streaming() {
            return self.stream_cases(&input, entity, empty);
        }
        let baseline = self.baseline(&input, 0, entity).encode_to_vec();
        let mut cases = vec![
            Case {
                label: "empty message".into(),
                messages: vec![empty],
            },
            Case {
                label: "baseline".into(),
                messages: vec![baseline.clone()],
            },
        ];
        for mutant in self.request_mutants(&input, entity) {
            cases.push(Case {
                label: format!("{} = {}", mutant.path.join("."), mutant.value),
                messages: vec![mutant.message.encode_to_vec()],
            });
        }
        for (mut label_and_path, body) in self.raw_bodies(&input, &baseline) {
            cases.push(Case {
                label: label_and_path.remove(0),
                messages: vec![body],
            });
        }
        cases
    }

    /// Mutants of a request; a change below the message a `FieldMask` applies to names
    /// the changed field in the mask.
    fn request_mutants(&self, input: &MessageDescriptor, entity: Entity) -> Vec<Mutant> {
        let mask = input.fields().find(|f| {
            !f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
        });
        let target = Self::mask_target(input);
        let mut mutants = self.mutants(input, 0, entity);
        if let (Some(mask), Some(target)) = (mask, target) {
            for mutant in &mut mutants {
                if mutant.path.len() >= 2 && mutant.path[0] == target.name() {
                    let field = mutant.path[1].trim_end_matches("[0]").to_owned();
                    mutant
                        .message
                        .set_field(&mask, Value::Message(self.field_mask(&[field])));
                }
            }
        }
        mutants
    }

    /// Cases of a client-streaming method (`Connect`): the first member of the request's
    /// oneof is the handshake; a change inside it is sent first and alone, any other
    /// message follows a baseline handshake.
    fn stream_cases(&self, input: &MessageDescriptor, entity: Entity, empty: Vec<u8>) -> Vec<Case> {
        let handshake = input
            .oneofs()
            .find(|o| !o.is_synthetic())
            .and_then(|o| o.fields().next())
            .expect("a streaming request is a oneof of messages");
        let Kind::Message(handshake_desc) = handshake.kind() else {
            panic!("the handshake is a message")
        };
        let mut first = DynamicMessage::new(input.clone());
        first.set_field(
            &handshake,
            Value::Message(self.baseline(&handshake_desc, 1, entity)),
        );
        let first = first.encode_to_vec();
        let after_first = |body: Vec<u8>| vec![first.clone(), body];
        let mut cases = vec![
            Case {
                label: "empty message".into(),
                messages: vec![empty.clone()],
            },
            Case {
                label: "baseline".into(),
                messages: vec![first.clone()],
            },
            Case {
                label: "baseline, then an empty message".into(),
                messages: after_first(empty),
            },
            Case {
                label: "baseline, then the handshake again".into(),
                messages: after_first(first.clone()),
            },
        ];
        for mutant in self.request_mutants(input, entity) {
            let body = mutant.message.encode_to_vec();
            let in_handshake = mutant.path[0] == handshake.name();
            cases.push(Case {
                label: format!(
                    "{}{} = {}",
                    if in_handshake { "" } else { "then " },
                    mutant.path.join("."),
                    mutant.value
                ),
                messages: if in_handshake {
                    vec![body]
                } else {
                    after_first(body)
                },
            });
        }
        for (mut label_and_path, body) in self.raw_bodies(input, &[]) {
            let label = label_and_path.remove(0);
            let in_handshake = label_and_path.first().map(String::as_str) == Some(handshake.name());
            if in_handshake {
                cases.push(Case {
                    label,
                    messages: vec![body],
                });
            } else if label_and_path.is_empty() {
                cases.push(Case {
                    label: format!("{label} (first message)"),
                    messages: vec![body.clone()],
                });
                cases.push(Case {
                    label: format!("then {label}"),
                    messages: after_first(body),
                });
            } else {
                cases.push(Case {
                    label: format!("then {label}"),
                    messages: after_first(body),
                });
            }
        }
        cases
    }
}

// ---------------------------------------------------------------------------------------
// Running cases against a server.
// ---------------------------------------------------------------------------------------

/// What a call came to.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Status(Code, String),
    NoAnswer,
}

impl Outcome {
    fn from_status(status: &Status) -> Self {
        Outcome::Status(status.code(), status.message().to_owned())
    }

    /// Whether this answer alone breaks the contract, or may mean the server died.
    fn is_bad(&self) -> bool {
        self.is_unreadable()
            || matches!(
                self,
                Outcome::NoAnswer
                    | Outcome::Status(
                        Code::Internal | Code::Unknown | Code::Unavailable | Code::Cancelled,
                        _
                    )
            )
    }

    /// An HTTP/2 failure seen by the client: the server's answer (or its absence) could
    /// not be read, whatever code tonic made of it.
    fn is_unreadable(&self) -> bool {
        matches!(self, Outcome::Status(_, message) if message.starts_with("h2 protocol error"))
    }

    fn code(&self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::NoAnswer => "NO ANSWER",
            Outcome::Status(code, _) => code_name(*code),
        }
    }

    fn message(&self) -> String {
        match self {
            Outcome::Ok => String::new(),
            Outcome::NoAnswer => format!("no answer within {CALL_TIMEOUT:?}"),
            Outcome::Status(_, message) => message.clone(),
        }
    }
}

fn code_name(code: Code) -> &'static str {
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

/// One server under fuzz, restarted on the same database when it dies.
struct Harness {
    backend: Backend,
    server: TestServer,
    /// A client as every tonic client is by default (16 KiB of response headers).
    channel: Channel,
    /// The same with room for 16 MiB of response headers, to read what the server said
    /// when its answer did not fit the default.
    wide: Channel,
    restarts: usize,
}

/// The result of one case.
struct Ran {
    label: String,
    outcome: Outcome,
    /// Set when the server was found dead or deaf after this case (then restarted).
    server_down: Option<String>,
    /// For an unreadable answer: what the server said, read with room for large headers.
    wide_answer: Option<Outcome>,
}

impl Harness {
    async fn start(db: &TestDb) -> Self {
        // The server logs refused inputs whole (megabytes here): errors only, unless the
        // caller asks for more.
        let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
        let server = TestServer::start_with_env(
            Some(db.url()),
            &["--no-local-worker"],
            &[("RUST_LOG", &log)],
        )
        .await;
        let (channel, wide) = Self::channels(&server).await;
        Self {
            backend: db.backend(),
            server,
            channel,
            wide,
            restarts: 0,
        }
    }

    async fn channels(server: &TestServer) -> (Channel, Channel) {
        let wide = Endpoint::from_shared(server.url())
            .expect("a valid endpoint")
            .http2_max_header_list_size(16 * MIB as u32)
            .connect()
            .await
            .expect("connecting to amon-server");
        (server.channel().await, wide)
    }

    /// Sends one case on `channel` and says what came of it.
    async fn call(
        &self,
        channel: &Channel,
        method: &MethodDescriptor,
        messages: &[Vec<u8>],
    ) -> Outcome {
        let path = PathAndQuery::from_str(&format!(
            "/{}/{}",
            method.parent_service().full_name(),
            method.name()
        ))
        .expect("a valid path");
        let mut grpc = Grpc::new(channel.clone()).max_decoding_message_size(64 * MIB);
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
            if method.is_client_streaming() {
                let requests = tokio_stream::iter(messages.to_vec());
                let mut stream = grpc
                    .streaming(Request::new(requests), path, RawCodec)
                    .await?
                    .into_inner();
                // The request stream is closed: the server ends its side once it has
                // handled every message.
                let deadline = tokio::time::Instant::now() + CONNECT_WINDOW;
                while let Ok(next) = tokio::time::timeout_at(deadline, stream.message()).await {
                    if next?.is_none() {
                        break;
                    }
                }
                Ok(())
            } else if method.is_server_streaming() {
                let mut stream = grpc
                    .server_streaming(Request::new(messages[0].clone()), path, RawCodec)
                    .await?
                    .into_inner();
                let deadline = tokio::time::Instant::now() + STREAM_WINDOW;
                for _ in 0..STREAM_MESSAGES {
                    match tokio::time::timeout_at(deadline, stream.message()).await {
                        Ok(next) => {
                            if next?.is_none() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                Ok(())
            } else {
                grpc.unary(Request::new(messages[0].clone()), path, RawCodec)
                    .await
                    .map(drop)
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err(status)) => Outcome::from_status(&status),
            Err(_) => Outcome::NoAnswer,
        }
    }

    /// `Ok` when the server process lives and answers health checks; otherwise why not.
    async fn check(&mut self) -> Result<(), String> {
        let mut health = HealthClient::new(self.channel.clone());
        let checked = tokio::time::timeout(
            Duration::from_secs(5),
            health.check(HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await;
        if matches!(checked, Ok(Ok(_))) {
            return Ok(());
        }
        // A crashing process may still be on its way out.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(status) = self.server.exited() {
            return Err(format!("server process exited: {status}"));
        }
        Err(match checked {
            Ok(Err(status)) => format!("server alive but health check failed: {status}"),
            _ => "server alive but health check timed out".into(),
        })
    }

    /// Restarts the server on the same database and address.
    async fn revive(&mut self) {
        self.server.restart().await;
        (self.channel, self.wide) = Self::channels(&self.server).await;
        self.restarts += 1;
    }

    /// Runs every case of `method` (with fresh fixtures), checking the server after each
    /// bad answer and after the batch.
    async fn run_method(
        &mut self,
        pool: &DescriptorPool,
        method: &MethodDescriptor,
        batch: usize,
    ) -> Result<(Vec<Ran>, Option<String>)> {
        let fx = fixtures(self.channel.clone(), batch)
            .await
            .with_context(|| format!("fixtures for {}", method.full_name()))?;
        let cases = Generator::new(pool, &fx).cases(method);
        let mut ran = Vec::with_capacity(cases.len());
        for case in cases {
            let case_started = Instant::now();
            let outcome = self.call(&self.channel, method, &case.messages).await;
            let took = case_started.elapsed();
            let (mut server_down, mut wide_answer) = (None, None);
            if outcome.is_bad() {
                match self.check().await {
                    Err(reason) => {
                        server_down = Some(reason);
                        self.revive().await;
                    }
                    Ok(()) if outcome.is_unreadable() => {
                        wide_answer = Some(self.call(&self.wide, method, &case.messages).await);
                    }
                    Ok(()) => {}
                }
            }
            if verbose() {
                eprintln!(
                    "  {:>6.1} ms | {} | {} | {} | {}",
                    took.as_secs_f64() * 1000.0,
                    short_method(method),
                    cell(&case.label, 90),
                    outcome.code(),
                    cell(&outcome.message(), 120)
                );
            }
            ran.push(Ran {
                label: case.label,
                outcome,
                server_down,
                wide_answer,
            });
        }
        drop(fx);
        let after = match self.check().await {
            Ok(()) => None,
            Err(reason) => {
                self.revive().await;
                Some(reason)
            }
        };
        Ok((ran, after))
    }
}

/// `AMON_FUZZ_VERBOSE=1` prints every case's answer.
fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("AMON_FUZZ_VERBOSE").is_some_and(|v| v != "0"))
}

/// Our services' methods, in descriptor order.
fn our_methods(pool: &DescriptorPool) -> Vec<MethodDescriptor> {
    pool.services()
        .filter(|s| s.package_name() == PACKAGE)
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect()
}

fn short_method(method: &MethodDescriptor) -> String {
    format!("{}/{}", method.parent_service().name(), method.name())
}

/// A message for a table cell: escaped, cut to [`MESSAGE_CHARS`].
fn cell(text: &str, chars: usize) -> String {
    let escaped: String = text.escape_debug().collect();
    if escaped.chars().count() <= chars {
        escaped
    } else {
        let cut: String = escaped.chars().take(chars).collect();
        format!("{cut}… ({} bytes)", text.len())
    }
}

/// One contract violation.
struct Violation {
    method: String,
    case: String,
    code: String,
    message: String,
}

/// `text` with runs of three or more digits as `#`, to group messages naming ids or sizes.
fn mask_numbers(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 3 {
            out.push('#');
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn table(title: &str, violations: &[Violation]) -> String {
    let mut out = format!("{title}\n");
    // A summary by method and code, then every violation.
    let mut by_cause: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for v in violations {
        let message: String = mask_numbers(&v.message).chars().take(60).collect();
        *by_cause
            .entry((v.method.clone(), v.code.clone(), message))
            .or_default() += 1;
    }
    out.push_str("\nsummary (method | code | message start | cases):\n");
    for ((method, code, message), count) in &by_cause {
        out.push_str(&format!(
            "  {method} | {code} | {} | {count}\n",
            cell(message, 60)
        ));
    }
    let method_width = violations.iter().map(|v| v.method.len()).max().unwrap_or(6);
    let case_width = violations
        .iter()
        .map(|v| v.case.chars().count().min(90))
        .max()
        .unwrap_or(4);
    out.push_str(&format!(
        "\n{:<method_width$} | {:<case_width$} | {:<19} | message\n",
        "method", "case", "code"
    ));
    for v in violations {
        out.push_str(&format!(
            "{:<method_width$} | {:<case_width$} | {:<19} | {}\n",
            v.method,
            cell(&v.case, 90),
            v.code,
            cell(&v.message, MESSAGE_CHARS),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// Every RPC of every service, every generated input: no INTERNAL, no UNKNOWN, no crash.
async fn fuzz_every_rpc(db: TestDb) -> Result<()> {
    let started = Instant::now();
    let pool = DescriptorPool::decode(amon_proto::FILE_DESCRIPTOR_SET)
        .context("decoding the descriptor set")?;
    let methods = our_methods(&pool);
    let services: Vec<String> = pool
        .services()
        .filter(|s| s.package_name() == PACKAGE)
        .map(|s| s.name().to_owned())
        .collect();
    ensure!(
        services.len() == 4,
        "four {PACKAGE} services in the descriptor set: {services:?}"
    );
    let mut harness = Harness::start(&db).await;
    let backend = harness.backend;
    let mut violations = Vec::new();
    let mut total = 0;
    for (batch, method) in methods.iter().enumerate() {
        let method_started = Instant::now();
        let name = short_method(method);
        let (ran, after) = harness.run_method(&pool, method, batch).await?;
        let count = ran.len();
        total += count;
        let before = violations.len();
        let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
        for case in &ran {
            *codes.entry(case.outcome.code()).or_default() += 1;
        }
        let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        for case in ran {
            if !case.outcome.is_bad() {
                continue;
            }
            let mut message = case.outcome.message();
            if let Some(down) = &case.server_down {
                message = format!("[{down}] {message}");
            }
            if let Some(wide) = &case.wide_answer {
                message = format!(
                    "{message} [read with a 16 MiB header limit: {}, {}-byte message {}]",
                    wide.code(),
                    wide.message().len(),
                    cell(&wide.message(), 40)
                );
            }
            violations.push(Violation {
                method: name.clone(),
                case: case.label,
                code: case.outcome.code().to_owned(),
                message,
            });
        }
        if let Some(reason) = after {
            violations.push(Violation {
                method: name.clone(),
                case: "health check after the batch".into(),
                code: "SERVER DOWN".into(),
                message: reason,
            });
        }
        eprintln!(
            "fuzz on {backend}: {name}: {count} cases in {:.1} s, {} violation(s) ({})",
            method_started.elapsed().as_secs_f64(),
            violations.len() - before,
            codes.join(", ")
        );
    }
    eprintln!(
        "fuzz on {backend}: {total} cases over {} methods in {:.1} s, {} server restart(s), {} violation(s)",
        methods.len(),
        started.elapsed().as_secs_f64(),
        harness.restarts,
        violations.len()
    );
    if violations.is_empty() {
        return Ok(());
    }
    let report = table(
        &format!(
            "{} contract violation(s) on {backend} ({total} cases, {} restart(s)):",
            violations.len(),
            harness.restarts
        ),
        &violations,
    );
    // AMON_FUZZ_REPORT_DIR=dir also writes the table to dir/fuzz-<backend>.txt.
    if let Some(dir) = std::env::var_os("AMON_FUZZ_REPORT_DIR") {
        let path = std::path::Path::new(&dir).join(format!("fuzz-{backend}.txt"));
        std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    bail!("{report}")
}

both_backends!(fuzz_every_rpc);

/// A handful of RPCs on both backends side by side: the same input gets the same code.
#[tokio::test]
async fn backends_agree_on_hostile_inputs() {
    const METHODS: [&str; 6] = [
        "agentmonitor.v1.TaskService.CreateTask",
        "agentmonitor.v1.TaskService.GetTask",
        "agentmonitor.v1.TaskService.AddDependency",
        "agentmonitor.v1.AgentService.UpdateAgent",
        "agentmonitor.v1.ExecutionService.ListExecutions",
        "agentmonitor.v1.ExecutionService.StreamLogs",
    ];
    let Some(sqlite_db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let Some(postgres_db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let pool = DescriptorPool::decode(amon_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let (mut sqlite, mut postgres) =
        tokio::join!(Harness::start(&sqlite_db), Harness::start(&postgres_db));
    let mut differences = Vec::new();
    let mut compared = 0;
    for (batch, name) in METHODS.iter().enumerate() {
        let method = our_methods(&pool)
            .into_iter()
            .find(|m| m.full_name() == *name)
            .unwrap_or_else(|| panic!("{name} in the descriptor set"));
        let (on_sqlite, on_postgres) = tokio::join!(
            sqlite.run_method(&pool, &method, batch),
            postgres.run_method(&pool, &method, batch)
        );
        let (on_sqlite, _) = on_sqlite.expect("running on SQLite");
        let (on_postgres, _) = on_postgres.expect("running on PostgreSQL");
        assert_eq!(on_sqlite.len(), on_postgres.len(), "same cases for {name}");
        for (a, b) in on_sqlite.iter().zip(&on_postgres) {
            assert_eq!(a.label, b.label, "cases in the same order");
            // A rewritten id (`task id, without hyphens`...) or an attempt token is a
            // different random string on each backend; as a plain string (an env var
            // name, a key) its validity depends on its characters, so it proves nothing
            // about the backends. Labels name it as `[attempt token]` in a value and as
            // `key attempt token` in a map key.
            if a.label.contains(DERIVED_ID) || a.label.contains("attempt token") {
                continue;
            }
            compared += 1;
            if a.outcome.code() != b.outcome.code() {
                differences.push(Violation {
                    method: short_method(&method),
                    case: a.label.clone(),
                    code: format!("{} vs {}", a.outcome.code(), b.outcome.code()),
                    message: format!(
                        "SQLite: {} / PostgreSQL: {}",
                        cell(&a.outcome.message(), 90),
                        cell(&b.outcome.message(), 90)
                    ),
                });
            }
        }
    }
    eprintln!(
        "backend parity: {compared} cases compared, {} difference(s)",
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "{}",
        table(
            &format!(
                "{} of {compared} hostile inputs got different codes on SQLite and PostgreSQL \
                 (code column: SQLite vs PostgreSQL):",
                differences.len()
            ),
            &differences
        )
    );
}
