//! Man pages: `man -w NAME` says where the page is (with the worker's
//! `MANPATH`); the roff source (gzip-compressed or not) is turned into the
//! plain text a `--help` would print (the NAME line as description, the
//! SYNOPSIS as a usage line, each `.TP`/`.IP` entry as an indented option
//! line) and read by [`super::scan_help`]. Only man(7) pages are read;
//! mdoc(7) pages (`.Sh`, `.Fl`) are left out.

use std::io::Read;
use std::path::Path;

use super::command::CommandSpec;

/// Largest page read (compressed pages are cut at this much text).
const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a man page file, decompressing `.gz`.
pub fn read_page(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file)
            .take(MAX_PAGE_BYTES)
            .read_to_end(&mut bytes)?;
    } else {
        file.take(MAX_PAGE_BYTES).read_to_end(&mut bytes)?;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Roff inline escapes removed or replaced by their character.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('-') => out.push('-'),
            Some('e') | Some('\\') => out.push('\\'),
            Some(' ') | Some('~') => out.push(' '),
            Some('&') | Some('|') | Some('^') | Some(',') | Some('/') | Some(':') => {}
            Some('f') => {
                // \fB, \fI, \fR, \fP, \f(CW, \f[B]
                match chars.next() {
                    Some('(') => {
                        chars.next();
                        chars.next();
                    }
                    Some('[') => {
                        for c in chars.by_ref() {
                            if c == ']' {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some('(') => {
                let a = chars.next();
                let b = chars.next();
                match (a, b) {
                    (Some('e'), Some('m')) | (Some('e'), Some('n')) => out.push('-'),
                    (Some('a'), Some('q')) => out.push('\''),
                    (Some('d'), Some('q')) => out.push('"'),
                    _ => {}
                }
            }
            Some('*') => {
                // \*(xx or \*x or \*[name]: strings we do not define.
                match chars.next() {
                    Some('(') => {
                        chars.next();
                        chars.next();
                    }
                    Some('[') => {
                        for c in chars.by_ref() {
                            if c == ']' {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some('"') => {
                // A comment to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The arguments of a macro line (`.BR foo (1)` → "foo(1)"), quotes removed.
fn macro_text(args: &str) -> String {
    let words = shlex::split(args).unwrap_or_else(|| vec![args.to_owned()]);
    plain(&words.join(" "))
}

static ITALIC: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\\fI([^\\]+)\\f[RP]").expect("italic pattern"));

/// `.I name other` in a synopsis: each word an argument.
fn marked_words(words: &str) -> String {
    shlex::split(words)
        .unwrap_or_default()
        .iter()
        .map(|w| format!("<{w}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A man page as the help text it would be.
pub fn to_help(roff: &str) -> String {
    let mut out = String::new();
    let mut section = String::new();
    let mut synopsis = String::new();
    // After .TP, the next text line is the option's tag.
    let mut tag_next = false;
    for line in roff.lines() {
        // In a synopsis, italics mark the arguments: kept as <metavars>.
        let marked;
        let line = if section == "SYNOPSIS" {
            marked = ITALIC.replace_all(line, "<$1>").into_owned();
            if let Some(words) = marked.strip_prefix(".I ") {
                marked_words(words)
            } else {
                marked
            }
        } else {
            line.to_owned()
        };
        let line = line.as_str();
        let (name, args) =
            if let Some(rest) = line.strip_prefix('.').or_else(|| line.strip_prefix('\'')) {
                let mut parts = rest.trim_start().splitn(2, char::is_whitespace);
                (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                )
            } else {
                (String::new(), line.to_owned())
            };
        let text = match name.as_str() {
            "" => plain(&args),
            "SH" | "SS" => {
                if section == "SYNOPSIS" && !synopsis.is_empty() {
                    out.push_str(&format!("Usage: {}\n", synopsis.trim()));
                }
                section = macro_text(&args).to_ascii_uppercase();
                out.push_str(&format!("\n{}:\n", section));
                tag_next = false;
                continue;
            }
            "TP" => {
                tag_next = true;
                continue;
            }
            "IP" => {
                let tag = macro_text(&args);
                if tag.trim_start().starts_with('-') {
                    out.push_str(&format!("  {}\n", tag.trim()));
                }
                continue;
            }
            "PP" | "LP" | "P" | "sp" | "br" => {
                out.push('\n');
                continue;
            }
            "B" | "I" | "BR" | "BI" | "IR" | "RB" | "RI" | "IB" => {
                let words = shlex::split(&args).unwrap_or_default();
                // Alternating fonts join without spaces (".BR ls (1)").
                let joined = if name.len() == 2 {
                    words.concat()
                } else {
                    words.join(" ")
                };
                plain(&joined)
            }
            _ => continue,
        };
        if section == "SYNOPSIS" {
            synopsis.push(' ');
            synopsis.push_str(text.trim());
            continue;
        }
        if tag_next {
            tag_next = false;
            out.push_str(&format!("  {}\n", text.trim()));
            continue;
        }
        if section == "NAME" {
            // "git \- the stupid content tracker"
            let summary = text.split_once(" - ").map_or(text.as_str(), |(_, s)| s);
            out.push_str(&format!("{}\n", summary.trim()));
            continue;
        }
        out.push_str(&format!("        {}\n", text.trim()));
    }
    if section == "SYNOPSIS" && !synopsis.is_empty() {
        out.push_str(&format!("Usage: {}\n", synopsis.trim()));
    }
    out
}

/// A man page's synopsis, description and options.
pub fn parse(roff: &str) -> CommandSpec {
    let help = to_help(roff);
    let mut spec = super::scan_help::parse(&help, &[]);
    // NAME's summary is the description; the help parser may have taken a
    // heading's prose first.
    if let Some(summary) = help
        .split("\nNAME:\n")
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| !l.trim().is_empty()))
    {
        spec.description = summary.trim().to_owned();
    }
    // A man page lists no subcommands the way help does (its sections are
    // prose), so none are read.
    spec.subcommands.clear();
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_man_page_reads_like_a_help_text() {
        let roff = r#".TH WIDGET 1
.SH NAME
widget \- manage the widgets
.SH SYNOPSIS
.B widget
[\fIOPTIONS\fR]
\fIname\fR
.SH OPTIONS
.TP
\fB\-v\fR, \fB\-\-verbose\fR
Say more.
.TP
.BR \-\-color =\fIWHEN\fR
When to colour (default: auto).
.SH SEE ALSO
.BR ls (1)
"#;
        let spec = parse(roff);
        assert_eq!(spec.description, "manage the widgets");
        assert_eq!(spec.positionals.len(), 1, "{:?}", spec.positionals);
        assert_eq!(spec.positionals[0].name, "name");
        let longs: Vec<_> = spec
            .options
            .iter()
            .filter_map(|o| o.long.as_deref())
            .collect();
        assert_eq!(longs, vec!["verbose", "color"]);
        assert_eq!(spec.options[1].default.as_deref(), Some("auto"));
    }
}
