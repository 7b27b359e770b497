//! One module per command group. Each defines its clap arguments and an
//! async `run(ctx, args)`; rendering lives in `json`, `table` and `board`.

pub mod agents;
pub mod board;
pub mod caps;
pub mod deps;
pub mod events;
pub mod exec;
pub mod logs;
pub mod run;
pub mod tasks;
pub mod workers;

use serde_json::Value;

use crate::{client::Ctx, output};

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

/// The FieldMask path of a `--clear` name, from the command's table.
pub fn clear_path(
    table: &[(&str, &'static str)],
    name: &str,
) -> Result<&'static str, crate::client::UsageError> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, path)| *path)
        .ok_or_else(|| crate::client::UsageError(format!("cannot clear '{name}'")))
}
