//! Checks shared by every entity's rules: text the backends can store,
//! identifiers, environment variable names, times, and unique-key conflicts.
//! Each takes the request field path it reports errors under.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, FixedOffset};
use regex::Regex;
use sea_orm::{DbErr, SqlErr};
use serde_json::Value;

use super::{StoreError, StoreResult};

/// Longest slug (and capability key): a DNS label's length.
pub const MAX_SLUG_LEN: usize = 63;

static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("env name pattern"));

/// Whether `name` is a portable environment variable name
/// (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_env_var_name(name: &str) -> bool {
    ENV_NAME.is_match(name)
}

/// Longest part of a caller's value an error message repeats.
const QUOTED_CHARS: usize = 64;

/// A caller's value for an error message: debug-quoted (so a newline cannot
/// forge a log line) and cut to its first [`QUOTED_CHARS`] characters (so a
/// 1 MB bad id does not make the reply too big to deliver).
pub fn quoted(value: &str) -> String {
    quoted_up_to(value, QUOTED_CHARS)
}

/// [`quoted`], cut to `max_chars`.
pub fn quoted_up_to(value: &str, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// `text` cut to at most `max_bytes` on a character boundary, marked with
/// ` …` after the cut: a message bounded for where it travels.
pub fn cut_to_bytes(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" …");
    }
    text
}

/// Why a task may not set variable `name` for its runs, if it may not: the
/// variables that change which code a child runs whatever its command
/// (`LD_*`, `DYLD_*`, `PATH`, `IFS`, `BASH_ENV`, `ENV`). Every other name is
/// the task's to set.
pub fn protected_variable(name: &str) -> Option<&'static str> {
    if name.starts_with("LD_") || name.starts_with("DYLD_") {
        Some("the dynamic loader reads it (it could load any code into the run)")
    } else if matches!(name, "PATH" | "IFS" | "BASH_ENV" | "ENV") {
        Some("it changes which program or shell code runs")
    } else {
        None
    }
}

/// A short name shown in lists and logs (a worker id, a host name, a
/// label): at most `max_chars` characters and no control characters, so it
/// can neither forge a log line nor break a table.
pub fn check_printable(field: &str, value: &str, max_chars: usize) -> StoreResult<()> {
    if value.chars().count() > max_chars {
        return Err(StoreError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            format!("{} must not contain control characters", quoted(value)),
        ));
    }
    Ok(())
}

/// Text from a worker, made storable: NUL (which PostgreSQL cannot store)
/// becomes U+FFFD. A worker's error message or session id is not refused
/// for it: the report matters more than one character.
pub fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// A JSON document from a worker made storable (see [`storable`]), keys
/// included.
pub fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (storable(key), storable_json(value)))
                .collect(),
        ),
        other => other,
    }
}

/// A caller's name for a field path: at most [`QUOTED_CHARS`] characters.
fn cut(name: &str) -> &str {
    name.char_indices()
        .nth(QUOTED_CHARS)
        .map_or(name, |(end, _)| &name[..end])
}

/// Longest text of any one field (a description, a prompt, an argument),
/// and most bytes of a list of strings or of a JSON document: large enough
/// for any real use, small enough that lists of records fit a reply and an
/// assignment fits a worker's stream (rows of 1 MB made `GetBoard` and
/// `ListTasks` fail with OUT_OF_RANGE).
pub const MAX_FIELD_BYTES: usize = 256 * 1024;
/// Most items of a list of strings (base args, tokens, an allowlist).
pub const MAX_LIST_ITEMS: usize = 1000;

fn too_large(field: &str, bytes: usize) -> StoreError {
    StoreError::invalid(
        field,
        format!("is {bytes} bytes; at most {MAX_FIELD_BYTES} are allowed"),
    )
}

/// Refuses text PostgreSQL cannot store, and text past [`MAX_FIELD_BYTES`].
pub(super) fn check_no_nul(field: &str, value: &str) -> StoreResult<()> {
    if value.len() > MAX_FIELD_BYTES {
        return Err(too_large(field, value.len()));
    }
    if value.contains('\0') {
        return Err(StoreError::invalid(
            field,
            "must not contain NUL characters",
        ));
    }
    Ok(())
}

/// A required text field: present, not blank, no NUL.
pub(super) fn check_required_text(field: &str, value: &str) -> StoreResult<()> {
    if value.trim().is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    check_no_nul(field, value)
}

/// An optional text field: when present, not blank and no NUL.
pub(super) fn check_optional_text(field: &str, value: &Option<String>) -> StoreResult<()> {
    match value {
        Some(text) if text.trim().is_empty() => Err(StoreError::invalid(
            field,
            "must not be blank when present (omit it instead)",
        )),
        Some(text) => check_no_nul(field, text),
        None => Ok(()),
    }
}

/// A list of strings: at most [`MAX_LIST_ITEMS`] of them, [`MAX_FIELD_BYTES`]
/// in all, no NUL.
pub(super) fn check_strings(field: &str, values: &[String]) -> StoreResult<()> {
    if values.len() > MAX_LIST_ITEMS {
        return Err(StoreError::invalid(
            field,
            format!(
                "has {} items; at most {MAX_LIST_ITEMS} are allowed",
                values.len()
            ),
        ));
    }
    let total: usize = values.iter().map(String::len).sum();
    if total > MAX_FIELD_BYTES {
        return Err(too_large(field, total));
    }
    for (index, value) in values.iter().enumerate() {
        check_no_nul(&format!("{field}[{index}]"), value)?;
    }
    Ok(())
}

/// A JSON document: at most [`MAX_FIELD_BYTES`] as stored, and no NUL in
/// any key or string (PostgreSQL's `jsonb` refuses `\u0000`).
pub(super) fn check_json_text(field: &str, value: &Value) -> StoreResult<()> {
    let bytes = value.to_string().len();
    if bytes > MAX_FIELD_BYTES {
        return Err(too_large(field, bytes));
    }
    check_json_strings(field, value)
}

fn check_json_strings(field: &str, value: &Value) -> StoreResult<()> {
    match value {
        Value::String(text) => check_no_nul(field, text),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| check_json_strings(&format!("{field}/{index}"), item)),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(StoreError::invalid(
                    field,
                    "keys must not contain NUL characters",
                ));
            }
            check_json_strings(&format!("{field}/{}", cut(key)), item)
        }),
        _ => Ok(()),
    }
}

/// A slug-like identifier: not empty, starting with a lowercase letter or
/// digit, then `rest`, at most [`MAX_SLUG_LEN`] characters.
pub(super) fn check_identifier(
    field: &str,
    value: &str,
    pattern: &Regex,
    allowed: &str,
) -> StoreResult<()> {
    if value.is_empty() {
        return Err(StoreError::invalid(field, "is required"));
    }
    if value.len() > MAX_SLUG_LEN {
        return Err(StoreError::invalid(
            field,
            format!("must be at most {MAX_SLUG_LEN} characters"),
        ));
    }
    if !pattern.is_match(value) {
        return Err(StoreError::invalid(
            field,
            format!(
                "{} must start with a lowercase letter or digit and contain only {allowed}",
                quoted(value)
            ),
        ));
    }
    Ok(())
}

/// Refuses times the backends cannot both store and order (years 1–9999).
pub(super) fn check_time(field: &str, value: &DateTime<FixedOffset>) -> StoreResult<()> {
    if !(1..=9999).contains(&value.year()) {
        return Err(StoreError::invalid(
            field,
            "must be within the years 1 to 9999",
        ));
    }
    Ok(())
}

/// Maps a unique violation of an insert or update to `message`; other
/// errors as usual.
pub(super) fn conflict(err: DbErr, message: impl FnOnce() -> String) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::AlreadyExists(message()),
        _ => err.into(),
    }
}
