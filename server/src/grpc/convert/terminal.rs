//! Attached terminals: sizes, ends and the viewer's events, wire <-> engine.

use amon_proto::v1 as pb;
use uuid::Uuid;

use crate::{
    dispatch::{
        messages::{MAX_TERMINAL_CELLS, TerminalEnd, TerminalEndReason, TerminalSize},
        terminal::{MAX_INPUT_BYTES, TerminalEvent},
    },
    store::{StoreError, StoreResult},
};

/// A terminal size from a viewer: unset is the default (24x80); each side
/// 1 to [`MAX_TERMINAL_CELLS`].
pub fn size_from_proto(field: &str, size: Option<pb::TerminalSize>) -> StoreResult<TerminalSize> {
    let Some(pb::TerminalSize { rows, cols }) = size else {
        return Ok(TerminalSize::default());
    };
    let side = |name: &str, value: i32| {
        u16::try_from(value)
            .ok()
            .filter(|v| (1..=MAX_TERMINAL_CELLS).contains(v))
            .ok_or_else(|| {
                StoreError::invalid(
                    format!("{field}.{name}"),
                    format!("{value} is not between 1 and {MAX_TERMINAL_CELLS}"),
                )
            })
    };
    Ok(TerminalSize {
        rows: side("rows", rows)?,
        cols: side("cols", cols)?,
    })
}

/// A terminal size on the wire.
pub fn size_to_proto(size: TerminalSize) -> pb::TerminalSize {
    let TerminalSize { rows, cols } = size;
    pb::TerminalSize {
        rows: i32::from(rows),
        cols: i32::from(cols),
    }
}

/// What to attach to: the execution, read-only, the size.
pub fn open_from_proto(
    field: &str,
    open: Option<pb::AttachTerminalOpen>,
) -> StoreResult<(Uuid, bool, TerminalSize)> {
    let pb::AttachTerminalOpen {
        execution_id,
        read_only,
        size,
    } = open.ok_or_else(|| StoreError::invalid(field, "is required"))?;
    Ok((
        super::parse_id(&format!("{field}.execution_id"), &execution_id)?,
        read_only,
        size_from_proto(&format!("{field}.size"), size)?,
    ))
}

/// Keys from a viewer: at most [`MAX_INPUT_BYTES`].
pub fn check_input(field: &str, data: &[u8]) -> StoreResult<()> {
    if data.len() > MAX_INPUT_BYTES {
        return Err(StoreError::invalid(
            field,
            format!(
                "{} bytes is more than {MAX_INPUT_BYTES} in one message",
                data.len()
            ),
        ));
    }
    Ok(())
}

/// An end reason on the wire.
pub fn reason_to_proto(reason: TerminalEndReason) -> pb::TerminalEndReason {
    match reason {
        TerminalEndReason::RunEnded => pb::TerminalEndReason::RunEnded,
        TerminalEndReason::Detached => pb::TerminalEndReason::Detached,
        TerminalEndReason::WorkerDisconnected => pb::TerminalEndReason::WorkerDisconnected,
        TerminalEndReason::Error => pb::TerminalEndReason::Error,
    }
}

/// An end reason from a worker (an unknown or unset one is an error end).
pub fn reason_from_proto(value: i32) -> TerminalEndReason {
    match pb::TerminalEndReason::try_from(value) {
        Ok(pb::TerminalEndReason::RunEnded) => TerminalEndReason::RunEnded,
        Ok(pb::TerminalEndReason::Detached) => TerminalEndReason::Detached,
        Ok(pb::TerminalEndReason::WorkerDisconnected) => TerminalEndReason::WorkerDisconnected,
        Ok(pb::TerminalEndReason::Error | pb::TerminalEndReason::Unspecified) | Err(_) => {
            TerminalEndReason::Error
        }
    }
}

/// An end on the wire.
pub fn end_to_proto(end: TerminalEnd) -> pb::TerminalEnded {
    let TerminalEnd { reason, message } = end;
    pb::TerminalEnded {
        reason: reason_to_proto(reason) as i32,
        message,
    }
}

/// The `opened` answer of an attach.
pub fn opened_to_proto(attached: &crate::dispatch::terminal::Attached) -> pb::AttachTerminalOpened {
    pb::AttachTerminalOpened {
        attach_id: attached.attach_id.to_string(),
        worker_id: attached.worker_id.clone(),
        tmux_session_name: attached.tmux_session_name.clone(),
        read_only: attached.read_only,
    }
}

/// A viewer's event as AttachTerminal's answer.
pub fn event_to_proto(event: TerminalEvent) -> pb::attach_terminal_response::Message {
    use pb::attach_terminal_response::Message;
    match event {
        TerminalEvent::Output(data) => Message::Output(data),
        TerminalEvent::Ended(end) => Message::Ended(end_to_proto(end)),
    }
}

/// A viewer's event as AttachTerminalOutput's answer.
pub fn output_event_to_proto(event: TerminalEvent) -> pb::attach_terminal_output_response::Message {
    use pb::attach_terminal_output_response::Message;
    match event {
        TerminalEvent::Output(data) => Message::Output(data),
        TerminalEvent::Ended(end) => Message::Ended(end_to_proto(end)),
    }
}
