//! One module per command group. Each defines its clap arguments and an
//! async `run(ctx, args)`; rendering lives in `json`, `table` and `board`.

pub mod agents;
pub mod attach;
pub mod board;
pub mod caps;
pub mod deps;
pub mod diff;
pub mod discover;
pub mod events;
pub mod exec;
pub mod logs;
pub mod mcp;
pub mod run;
pub mod tasks;
pub mod workers;

use prost_types::FieldMask;
use serde_json::Value;

use crate::{
    client::{Ctx, UsageError},
    mask::MaskBuilder,
    output,
};

/// Prints one resource: its JSON with `--json`, else the human view.
pub fn show(
    ctx: &Ctx,
    json: impl FnOnce() -> Value,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if ctx.json {
        output::json(&json())?;
    } else {
        output::block(&human())?;
    }
    Ok(())
}

/// Prints a list: a JSON array with `--json`, else the table (or, when the
/// list is empty, a note on standard error).
pub fn show_list(
    ctx: &Ctx,
    items: Vec<Value>,
    what: &str,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if ctx.json {
        output::json(&Value::Array(items))?;
    } else if items.is_empty() {
        output::note(&format!("no {what}"));
    } else {
        output::block(&human())?;
    }
    Ok(())
}

/// Prints the outcome of a call that returns nothing (a delete): `{}` with
/// `--json`, else `message`.
pub fn done(ctx: &Ctx, message: &str) -> anyhow::Result<()> {
    if ctx.json {
        output::json(&Value::Object(Default::default()))?;
    } else {
        output::line(message)?;
    }
    Ok(())
}

/// The error for a response that lacks the resource it should carry.
pub fn missing(what: &str) -> anyhow::Error {
    anyhow::anyhow!("the server's answer carries no {what}")
}

/// How [`until_ctrl_c`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followed {
    /// The user pressed Ctrl-C.
    Interrupted,
    /// The server ended the stream.
    Closed,
}

/// Passes each message of a live server stream to `each` until Ctrl-C or
/// the end of the stream, and says which; a failed stream or a failed
/// `each` (an output error) is an error.
pub async fn until_ctrl_c<T>(
    mut stream: tonic::Streaming<T>,
    mut each: impl FnMut(T) -> std::io::Result<()>,
) -> anyhow::Result<Followed> {
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(Followed::Interrupted),
            message = stream.message() => match message? {
                Some(message) => each(message)?,
                None => return Ok(Followed::Closed),
            },
        }
    }
}

/// The FieldMask path of a `--clear` name, from the command's table.
fn clear_path(table: &[(&str, &'static str)], name: &str) -> Result<&'static str, UsageError> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, path)| *path)
        .ok_or_else(|| UsageError(format!("cannot clear '{name}'")))
}

/// The `--clear` flags of an update command, in the order given: each
/// name's FieldMask path is looked up in `table`; a name whose field also
/// gets a new value is refused (`given(name, path, mask)`, usually
/// [`in_mask`]), else `clear(name, path, mask)` resets the field.
pub fn apply_clears(
    table: &[(&str, &'static str)],
    names: &[String],
    mask: &mut MaskBuilder,
    mut given: impl FnMut(&str, &str, &MaskBuilder) -> bool,
    mut clear: impl FnMut(&str, &'static str, &mut MaskBuilder),
) -> Result<(), UsageError> {
    for name in names {
        let path = clear_path(table, name)?;
        if given(name, path, mask) {
            return Err(clear_contradicts(name));
        }
        clear(name, path, mask);
    }
    Ok(())
}

/// Whether the update already sets the field at `path` (the usual test of
/// [`apply_clears`]).
pub fn in_mask(_name: &str, path: &str, mask: &MaskBuilder) -> bool {
    mask.has(path)
}

/// The error for `--clear NAME` given with a new value for that field.
pub fn clear_contradicts(name: &str) -> UsageError {
    UsageError(format!(
        "--clear {name} contradicts the new value given for it"
    ))
}

/// The mask an update command sends; one that names no field is refused.
pub fn finish_update(mask: MaskBuilder) -> Result<FieldMask, UsageError> {
    if mask.is_empty() {
        return Err(UsageError(
            "nothing to update: give at least one field flag (see --help)".into(),
        ));
    }
    Ok(mask.build())
}

/// Parses `args` as a subcommand `C` of the command `name`: the command
/// line of one command group, for its tests.
#[cfg(test)]
pub fn parse_subcommand<C: clap::Subcommand>(name: &str, args: &[&str]) -> Result<C, clap::Error> {
    #[derive(clap::Parser)]
    struct Cli<C: clap::Subcommand> {
        #[command(subcommand)]
        cmd: C,
    }
    <Cli<C> as clap::Parser>::try_parse_from(std::iter::once(name).chain(args.iter().copied()))
        .map(|cli| cli.cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [(&str, &str); 2] = [("timeout", "timeout_sec"), ("env", "input_context")];

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn clears_are_checked_then_applied_in_order() {
        let mut mask = MaskBuilder::new();
        let mut cleared = Vec::new();
        apply_clears(
            &TABLE,
            &names(&["env", "timeout"]),
            &mut mask,
            in_mask,
            |name, path, mask| {
                cleared.push(name.to_string());
                mask.add(path);
            },
        )
        .unwrap();
        assert_eq!(cleared, ["env", "timeout"]);
        assert_eq!(
            finish_update(mask).unwrap().paths,
            ["input_context", "timeout_sec"]
        );

        // A field set by a flag, or cleared twice, is already in the mask.
        let mut mask = MaskBuilder::new();
        mask.add("timeout_sec");
        let err = apply_clears(
            &TABLE,
            &names(&["timeout"]),
            &mut mask,
            in_mask,
            |_, _, _| {},
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            "--clear timeout contradicts the new value given for it"
        );
        let mut mask = MaskBuilder::new();
        let err = apply_clears(
            &TABLE,
            &names(&["timeout", "timeout"]),
            &mut mask,
            in_mask,
            |_, path, mask| mask.add(path),
        )
        .unwrap_err();
        assert!(
            err.0.starts_with("--clear timeout contradicts"),
            "{}",
            err.0
        );

        let mut mask = MaskBuilder::new();
        let err =
            apply_clears(&TABLE, &names(&["title"]), &mut mask, in_mask, |_, _, _| {}).unwrap_err();
        assert_eq!(err.0, "cannot clear 'title'");
    }

    #[test]
    fn an_update_must_name_a_field() {
        let err = finish_update(MaskBuilder::new()).unwrap_err();
        assert_eq!(
            err.0,
            "nothing to update: give at least one field flag (see --help)"
        );
    }
}
