//! Wire enums <-> stored enums. `*_UNSPECIFIED` maps to `None`: "not set" on
//! create, "any" in a filter; an unknown number is an invalid argument.

use amon_proto::v1 as pb;

use crate::{
    entity::enums as db,
    store::{StoreError, StoreResult, columns, worktrees},
};

/// A stored enum and its wire twin.
pub trait WireEnum: Sized + Copy {
    /// The wire enum.
    type Proto: TryFrom<i32> + Copy;
    /// To the wire, as the number prost fields carry.
    fn to_proto(self) -> i32;
    /// From the wire; `None` for `*_UNSPECIFIED`.
    fn from_proto(field: &str, value: i32) -> StoreResult<Option<Self>>;
}

macro_rules! wire_enum {
    ($db:ty, $pb:ty, $unspecified:path, { $($db_variant:path => $pb_variant:path),+ $(,)? }) => {
        impl WireEnum for $db {
            type Proto = $pb;

            fn to_proto(self) -> i32 {
                match self {
                    $($db_variant => $pb_variant as i32,)+
                }
            }

            fn from_proto(field: &str, value: i32) -> StoreResult<Option<Self>> {
                match <$pb>::try_from(value) {
                    Ok($unspecified) => Ok(None),
                    $(Ok($pb_variant) => Ok(Some($db_variant)),)+
                    Err(_) => Err(StoreError::invalid(
                        field,
                        format!("{value} is not a valid {}", stringify!($pb)),
                    )),
                }
            }
        }
    };
}

wire_enum!(db::TaskStatus, pb::TaskStatus, pb::TaskStatus::Unspecified, {
    db::TaskStatus::Todo => pb::TaskStatus::Todo,
    db::TaskStatus::InProgress => pb::TaskStatus::InProgress,
    db::TaskStatus::Blocked => pb::TaskStatus::Blocked,
    db::TaskStatus::Done => pb::TaskStatus::Done,
    db::TaskStatus::Cancelled => pb::TaskStatus::Cancelled,
});

wire_enum!(db::ExecutionStatus, pb::ExecutionStatus, pb::ExecutionStatus::Unspecified, {
    db::ExecutionStatus::Queued => pb::ExecutionStatus::Queued,
    db::ExecutionStatus::Running => pb::ExecutionStatus::Running,
    db::ExecutionStatus::Cancelling => pb::ExecutionStatus::Cancelling,
    db::ExecutionStatus::Succeeded => pb::ExecutionStatus::Succeeded,
    db::ExecutionStatus::Failed => pb::ExecutionStatus::Failed,
    db::ExecutionStatus::Cancelled => pb::ExecutionStatus::Cancelled,
    db::ExecutionStatus::TimedOut => pb::ExecutionStatus::TimedOut,
});

wire_enum!(db::InteractionMode, pb::InteractionMode, pb::InteractionMode::Unspecified, {
    db::InteractionMode::Template => pb::InteractionMode::Template,
    db::InteractionMode::Prompt => pb::InteractionMode::Prompt,
});

wire_enum!(db::AgentKind, pb::AgentKind, pb::AgentKind::Unspecified, {
    db::AgentKind::Builtin => pb::AgentKind::Builtin,
    db::AgentKind::Custom => pb::AgentKind::Custom,
});

wire_enum!(db::CapabilitySource, pb::CapabilitySource, pb::CapabilitySource::Unspecified, {
    db::CapabilitySource::Manual => pb::CapabilitySource::Manual,
    db::CapabilitySource::Builtin => pb::CapabilitySource::Builtin,
    db::CapabilitySource::Preset => pb::CapabilitySource::Preset,
    db::CapabilitySource::ScanHelp => pb::CapabilitySource::ScanHelp,
    db::CapabilitySource::ScanCompletion => pb::CapabilitySource::ScanCompletion,
    db::CapabilitySource::ScanFig => pb::CapabilitySource::ScanFig,
    db::CapabilitySource::ScanMcp => pb::CapabilitySource::ScanMcp,
    db::CapabilitySource::ScanMan => pb::CapabilitySource::ScanMan,
    db::CapabilitySource::LlmGenerated => pb::CapabilitySource::LlmGenerated,
});

wire_enum!(db::DiscoveryMethod, pb::DiscoveryMethod, pb::DiscoveryMethod::Unspecified, {
    db::DiscoveryMethod::Preset => pb::DiscoveryMethod::Preset,
    db::DiscoveryMethod::PathScan => pb::DiscoveryMethod::PathScan,
    db::DiscoveryMethod::Manual => pb::DiscoveryMethod::Manual,
});

wire_enum!(db::ActorType, pb::ActorType, pb::ActorType::Unspecified, {
    db::ActorType::User => pb::ActorType::User,
    db::ActorType::Agent => pb::ActorType::Agent,
    db::ActorType::System => pb::ActorType::System,
});

wire_enum!(columns::SessionIdSource, pb::SessionIdSource, pb::SessionIdSource::Unspecified, {
    columns::SessionIdSource::JsonField => pb::SessionIdSource::JsonField,
    columns::SessionIdSource::Filesystem => pb::SessionIdSource::Filesystem,
    columns::SessionIdSource::ListCommand => pb::SessionIdSource::ListCommand,
    columns::SessionIdSource::None => pb::SessionIdSource::None,
});

wire_enum!(columns::BidirectionalProtocol, pb::BidirectionalProtocol, pb::BidirectionalProtocol::Unspecified, {
    columns::BidirectionalProtocol::StreamJson => pb::BidirectionalProtocol::StreamJson,
    columns::BidirectionalProtocol::AppServer => pb::BidirectionalProtocol::AppServer,
    columns::BidirectionalProtocol::Tmux => pb::BidirectionalProtocol::Tmux,
});

wire_enum!(worktrees::Isolation, pb::WorktreeIsolation, pb::WorktreeIsolation::Unspecified, {
    worktrees::Isolation::None => pb::WorktreeIsolation::None,
    worktrees::Isolation::Worktree => pb::WorktreeIsolation::Worktree,
});

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;

    fn round_trips<E: WireEnum + Iterable + PartialEq + std::fmt::Debug>() {
        for value in E::iter() {
            assert_eq!(E::from_proto("f", value.to_proto()).unwrap(), Some(value));
        }
        assert_eq!(E::from_proto("f", 0).unwrap(), None);
        assert!(E::from_proto("f", 999).is_err());
    }

    #[test]
    fn every_enum_round_trips() {
        round_trips::<db::TaskStatus>();
        round_trips::<db::ExecutionStatus>();
        round_trips::<db::InteractionMode>();
        round_trips::<db::AgentKind>();
        round_trips::<db::CapabilitySource>();
        round_trips::<db::DiscoveryMethod>();
        round_trips::<db::ActorType>();
    }
}
