//! Protobuf enums on the command line and in JSON output.
//!
//! Every enum is shown and accepted by its *short name*: the protobuf value
//! name without the type prefix, lowercased (`TASK_STATUS_IN_PROGRESS` →
//! `in_progress`). Input is lenient: case is ignored, `-` and spaces count as
//! `_`, and the full protobuf name is accepted too (`in-progress`,
//! `IN_PROGRESS`, `TASK_STATUS_IN_PROGRESS`). `*_UNSPECIFIED` is never
//! accepted: it means "not set", which the CLI expresses by omitting a flag.

use std::{ffi::OsStr, marker::PhantomData};

use amon_proto::v1::{
    ActorType, AgentKind, BidirectionalProtocol, CapabilitySource, DiscoveryMethod,
    ExecutionStatus, InteractionMode, SessionIdSource, TaskStatus,
};
use clap::builder::{PossibleValue, TypedValueParser};

/// A prost-generated enum with short names.
pub trait ProtoEnum: Copy + PartialEq + Send + Sync + 'static {
    /// What the values are, for messages ("task status").
    const WHAT: &'static str;
    /// The prefix of the protobuf value names ("TASK_STATUS_").
    const PREFIX: &'static str;
    /// Every value except `UNSPECIFIED`, with its short name.
    const VALUES: &'static [(Self, &'static str)];

    /// The wire number of the value.
    fn number(self) -> i32;
}

macro_rules! proto_enum {
    ($ty:ident, $what:literal, $prefix:literal, [$($variant:ident => $short:literal),+ $(,)?]) => {
        impl ProtoEnum for $ty {
            const WHAT: &'static str = $what;
            const PREFIX: &'static str = $prefix;
            const VALUES: &'static [(Self, &'static str)] = &[$(($ty::$variant, $short)),+];

            fn number(self) -> i32 {
                self as i32
            }
        }
    };
}

proto_enum!(TaskStatus, "task status", "TASK_STATUS_", [
    Todo => "todo",
    InProgress => "in_progress",
    Blocked => "blocked",
    Done => "done",
    Cancelled => "cancelled",
]);
proto_enum!(ExecutionStatus, "execution status", "EXECUTION_STATUS_", [
    Queued => "queued",
    Running => "running",
    Cancelling => "cancelling",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    TimedOut => "timed_out",
]);
proto_enum!(InteractionMode, "interaction mode", "INTERACTION_MODE_", [
    Template => "template",
    Prompt => "prompt",
]);
proto_enum!(AgentKind, "agent kind", "AGENT_KIND_", [
    Builtin => "builtin",
    Custom => "custom",
]);
proto_enum!(CapabilitySource, "capability source", "CAPABILITY_SOURCE_", [
    Manual => "manual",
    Builtin => "builtin",
    Preset => "preset",
    ScanHelp => "scan_help",
    ScanCompletion => "scan_completion",
    ScanFig => "scan_fig",
    ScanMcp => "scan_mcp",
    ScanMan => "scan_man",
    LlmGenerated => "llm_generated",
]);
proto_enum!(DiscoveryMethod, "discovery method", "DISCOVERY_METHOD_", [
    Preset => "preset",
    PathScan => "path_scan",
    Manual => "manual",
]);
proto_enum!(ActorType, "actor type", "ACTOR_TYPE_", [
    User => "user",
    Agent => "agent",
    System => "system",
]);
proto_enum!(SessionIdSource, "session id source", "SESSION_ID_SOURCE_", [
    JsonField => "json_field",
    Filesystem => "filesystem",
    ListCommand => "list_command",
    None => "none",
]);
proto_enum!(BidirectionalProtocol, "protocol", "BIDIRECTIONAL_PROTOCOL_", [
    StreamJson => "stream_json",
    AppServer => "app_server",
    Tmux => "tmux",
]);

/// The short name of a wire number: `None` for 0 (`UNSPECIFIED`, "not
/// set") and for numbers this client does not know (a newer server).
pub fn name_of<E: ProtoEnum>(number: i32) -> Option<&'static str> {
    E::VALUES
        .iter()
        .find(|(v, _)| v.number() == number)
        .map(|(_, name)| *name)
}

/// The name of a wire number for people: the short name, `-` when not set,
/// `?N` when unknown.
pub fn display<E: ProtoEnum>(number: i32) -> String {
    match name_of::<E>(number) {
        Some(name) => name.to_string(),
        None if number == 0 => "-".to_string(),
        None => format!("?{number}"),
    }
}

/// Parses a short or full name, leniently (see the module doc).
pub fn parse<E: ProtoEnum>(input: &str) -> Result<E, String> {
    let normalized: String = input
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let prefix = E::PREFIX.to_ascii_lowercase();
    let short = normalized.strip_prefix(&prefix).unwrap_or(&normalized);
    E::VALUES
        .iter()
        .find(|(_, name)| *name == short)
        .map(|(value, _)| *value)
        .ok_or_else(|| {
            format!(
                "unknown {} '{}' (expected one of: {})",
                E::WHAT,
                input,
                E::VALUES
                    .iter()
                    .map(|(_, name)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A clap value parser for a protobuf enum: lenient parsing, short names
/// listed in `--help`.
#[derive(Clone, Copy, Debug)]
pub struct EnumParser<E>(PhantomData<E>);

/// The clap value parser of `E`.
pub fn parser<E: ProtoEnum>() -> EnumParser<E> {
    EnumParser(PhantomData)
}

impl<E: ProtoEnum> TypedValueParser for EnumParser<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<E, clap::Error> {
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidUtf8,
                "value is not valid UTF-8\n",
            )
            .with_cmd(cmd)
        })?;
        parse::<E>(text).map_err(|message| {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n"))
                .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::VALUES.iter().map(|(_, name)| PossibleValue::new(*name)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_full_names_leniently() {
        for input in [
            "in_progress",
            "in-progress",
            "IN_PROGRESS",
            "In Progress",
            "TASK_STATUS_IN_PROGRESS",
            "task-status-in-progress",
        ] {
            assert_eq!(
                parse::<TaskStatus>(input),
                Ok(TaskStatus::InProgress),
                "{input}"
            );
        }
        assert_eq!(
            parse::<ExecutionStatus>("timed-out"),
            Ok(ExecutionStatus::TimedOut)
        );
        assert_eq!(parse::<AgentKind>("builtin"), Ok(AgentKind::Builtin));
    }

    #[test]
    fn refuses_unspecified_and_unknown_names() {
        assert!(parse::<TaskStatus>("unspecified").is_err());
        assert!(parse::<TaskStatus>("TASK_STATUS_UNSPECIFIED").is_err());
        let err = parse::<TaskStatus>("doing").unwrap_err();
        assert!(err.contains("unknown task status 'doing'"), "{err}");
        assert!(
            err.contains("todo, in_progress, blocked, done, cancelled"),
            "{err}"
        );
    }

    #[test]
    fn names_numbers() {
        assert_eq!(name_of::<TaskStatus>(2), Some("in_progress"));
        assert_eq!(name_of::<TaskStatus>(0), None);
        assert_eq!(name_of::<TaskStatus>(42), None);
        assert_eq!(display::<TaskStatus>(0), "-");
        assert_eq!(display::<TaskStatus>(42), "?42");
        assert_eq!(name_of::<ExecutionStatus>(7), Some("timed_out"));
    }

    #[test]
    fn short_names_match_the_protobuf_names() {
        // Every short name spells its protobuf name, and every protobuf value
        // but UNSPECIFIED has a short name.
        fn check<E: ProtoEnum + TryFrom<i32>>(as_str_name: impl Fn(E) -> &'static str) {
            for (value, short) in E::VALUES {
                let full = as_str_name(*value);
                assert_eq!(full, format!("{}{}", E::PREFIX, short.to_uppercase()));
            }
            for number in 1..64 {
                if E::try_from(number).is_ok() {
                    assert!(name_of::<E>(number).is_some(), "{} {number}", E::WHAT);
                }
            }
        }
        check::<TaskStatus>(|v| v.as_str_name());
        check::<ExecutionStatus>(|v| v.as_str_name());
        check::<InteractionMode>(|v| v.as_str_name());
        check::<AgentKind>(|v| v.as_str_name());
        check::<CapabilitySource>(|v| v.as_str_name());
        check::<DiscoveryMethod>(|v| v.as_str_name());
        check::<ActorType>(|v| v.as_str_name());
        check::<SessionIdSource>(|v| v.as_str_name());
        check::<BidirectionalProtocol>(|v| v.as_str_name());
    }
}
