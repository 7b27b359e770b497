//! Writing to standard output. Every write goes through here so a closed
//! pipe (`amon events -f | head`) ends the program quietly instead of
//! panicking like `println!` would.

use std::io::{self, IsTerminal, Write};

use serde_json::Value;

/// Writes `text` and a newline.
pub fn line(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes `text` as it is, adding a newline only when it lacks one (for
/// rendered tables and detail views). Nothing for an empty text.
pub fn block(text: &str) -> io::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A JSON document, pretty-printed.
pub fn json(value: &Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    line(&text)
}

/// A JSON document on one line (NDJSON streams).
pub fn json_line(value: &Value) -> io::Result<()> {
    line(&value.to_string())
}

/// Raw bytes, exactly, flushed at once (log output).
pub fn raw(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// A note for people on standard error (never mixed into data on stdout).
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Width available for tables and the board: the terminal's when standard
/// output is one, else `$COLUMNS`, else `None` (no limit: pipes get whole
/// lines).
pub fn terminal_width() -> Option<usize> {
    if io::stdout().is_terminal()
        && let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size()
    {
        return Some(usize::from(w));
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&w: &usize| w > 0)
}
