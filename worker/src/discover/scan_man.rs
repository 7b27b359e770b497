//! Man pages: `man -w NAME` says where the page is (with the worker's
//! `MANPATH`); the roff source (gzip-compressed or not) is turned into the
//! plain text a `--help` would print (the NAME line as description, the
//! SYNOPSIS as a usage line, each `.TP`/`.IP` entry as an indented option
//! line) and read by [`super::scan_help`]. BSD-style mdoc(7) pages (`.Sh`,
//! `.Nm`, `.Nd`, `.Op Fl x Ar file`, `.Bl -tag` / `.It Fl x Ar file`) are
//! rendered the same way by [`mdoc_to_help`] (ssh, tmux, file, dash on this
//! machine).

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

/// Whether a page is written in mdoc(7): its first macros are `.Dd` or
/// `.Sh` rather than man(7)'s `.TH` and `.SH`.
pub fn is_mdoc(roff: &str) -> bool {
    roff.lines()
        .filter(|l| l.starts_with('.') && !l.starts_with(".\\\""))
        .take(5)
        .any(|l| l.starts_with(".Dd") || l.starts_with(".Sh ") || l.starts_with(".Dt"))
}

/// mdoc macros that may be called within a line (mdoc(7), "MACRO SYNTAX").
const CALLABLE: &[&str] = &[
    "Ad", "An", "Ao", "Ac", "Aq", "Ar", "Bo", "Bc", "Bq", "Bro", "Brc", "Brq", "Cm", "Dl", "Do",
    "Dc", "Dq", "Dv", "Em", "Er", "Ev", "Fa", "Fl", "Fn", "Ic", "Li", "Lk", "Ms", "Mt", "Nm", "No",
    "Ns", "Oo", "Oc", "Op", "Pa", "Po", "Pc", "Pq", "Ql", "Qo", "Qc", "Qq", "So", "Sc", "Sq", "Sx",
    "Sy", "Tn", "Ux", "Va", "Vt", "Xr", "St", "Ev",
];

/// One mdoc line's words (after the macro) as text; `name` is what `.Nm`
/// alone stands for.
fn mdoc_words(words: &[String], name: &str) -> String {
    let mut out = String::new();
    // No space before the next word (`Ns`, after `(`, between `Fl Fl`).
    let mut glue = true;
    let push = |out: &mut String, text: &str, glue: &mut bool| {
        let closing = matches!(text, "," | "." | ";" | ":" | ")" | "]" | "?" | "!");
        if !*glue && !closing && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(text);
        *glue = matches!(text, "(" | "[");
    };
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        i += 1;
        // The plain arguments of a macro: up to the next callable macro.
        let args = |i: &mut usize| {
            let start = *i;
            while *i < words.len() && !CALLABLE.contains(&words[*i].as_str()) {
                *i += 1;
            }
            words[start..*i].to_vec()
        };
        let enclosing = |open: &str, close: &str, rest: &[String]| {
            format!("{open}{}{close}", mdoc_words(rest, name))
        };
        match word {
            "Op" => {
                push(&mut out, &enclosing("[", "]", &words[i..]), &mut glue);
                break;
            }
            "Dq" | "Qq" => {
                push(&mut out, &enclosing("\"", "\"", &words[i..]), &mut glue);
                break;
            }
            "Sq" | "Ql" => {
                push(&mut out, &enclosing("'", "'", &words[i..]), &mut glue);
                break;
            }
            "Pq" => {
                push(&mut out, &enclosing("(", ")", &words[i..]), &mut glue);
                break;
            }
            "Bq" => {
                push(&mut out, &enclosing("[", "]", &words[i..]), &mut glue);
                break;
            }
            "Brq" => {
                push(&mut out, &enclosing("{", "}", &words[i..]), &mut glue);
                break;
            }
            "Aq" => {
                push(&mut out, &enclosing("<", ">", &words[i..]), &mut glue);
                break;
            }
            "Oo" | "Bo" => {
                push(&mut out, "[", &mut glue);
            }
            "Oc" | "Bc" => push(&mut out, "]", &mut glue),
            "Po" => push(&mut out, "(", &mut glue),
            "Pc" => push(&mut out, ")", &mut glue),
            "Do" | "Dc" | "Qo" | "Qc" => push(&mut out, "\"", &mut glue),
            "Ns" => glue = true,
            "Fl" => {
                let args = args(&mut i);
                let (flags, trailing): (Vec<&String>, Vec<&String>) = args
                    .iter()
                    .partition(|a| !a.chars().all(|c| ",.;:|)]".contains(c)));
                if flags.is_empty() {
                    push(&mut out, "-", &mut glue);
                    // `Fl Fl name`: one option, `--name`.
                    glue = true;
                } else {
                    for flag in flags {
                        push(&mut out, &format!("-{flag}"), &mut glue);
                    }
                }
                for t in trailing {
                    push(&mut out, t, &mut glue);
                }
            }
            "Ar" => {
                let args = args(&mut i);
                if args.is_empty() {
                    push(&mut out, "<file>...", &mut glue);
                }
                for arg in args {
                    if arg.chars().all(|c| ",.;:|)]".contains(c)) || arg == "..." {
                        push(&mut out, &arg, &mut glue);
                    } else {
                        push(&mut out, &format!("<{arg}>"), &mut glue);
                    }
                }
            }
            "Nm" => {
                let args = args(&mut i);
                if args.is_empty() {
                    push(&mut out, name, &mut glue);
                }
                for arg in args {
                    push(&mut out, &arg, &mut glue);
                }
            }
            "Xr" => {
                let args = args(&mut i);
                match args.as_slice() {
                    [page, section, rest @ ..] => {
                        push(&mut out, &format!("{page}({section})"), &mut glue);
                        for r in rest {
                            push(&mut out, r, &mut glue);
                        }
                    }
                    other => {
                        for r in other {
                            push(&mut out, r, &mut glue);
                        }
                    }
                }
            }
            w if CALLABLE.contains(&w) => {
                for arg in args(&mut i) {
                    push(&mut out, &arg, &mut glue);
                }
            }
            other => push(&mut out, other, &mut glue),
        }
    }
    out
}

/// An mdoc(7) page as the help text it would be: the `.Nd` line as
/// description, each synopsis (`.Nm …`) as a usage line, each `.It` of a
/// tag list as an option line with its text indented below.
pub fn mdoc_to_help(roff: &str) -> String {
    let mut out = String::new();
    let mut section = String::new();
    let mut name = String::new();
    let mut usages: Vec<String> = Vec::new();
    let mut lists = 0usize;
    let flush_usages = |usages: &mut Vec<String>, out: &mut String| {
        for (n, usage) in usages.drain(..).enumerate() {
            let head = if n == 0 { "Usage:" } else { "   or:" };
            out.push_str(&format!("{head} {}\n", usage.trim()));
        }
    };
    for line in roff.lines() {
        if line.starts_with(".\\\"") || line.starts_with("'\\\"") {
            continue;
        }
        let (mac, rest) = match line.strip_prefix('.') {
            Some(rest) => {
                let mut parts = rest.trim_start().splitn(2, char::is_whitespace);
                (
                    parts.next().unwrap_or("").to_owned(),
                    parts.next().unwrap_or("").to_owned(),
                )
            }
            None => (String::new(), line.to_owned()),
        };
        let words = || {
            shlex::split(&plain(&rest))
                .unwrap_or_else(|| plain(&rest).split_whitespace().map(str::to_owned).collect())
        };
        match mac.as_str() {
            "Sh" | "Ss" => {
                flush_usages(&mut usages, &mut out);
                section = plain(&rest).trim().trim_matches('"').to_ascii_uppercase();
                out.push_str(&format!("\n{section}:\n"));
                continue;
            }
            "Dd" | "Dt" | "Os" | "Bk" | "Ek" | "Bd" | "Ed" | "Ud" | "Rs" | "Re" | "%A" | "%T"
            | "%B" | "%D" | "%J" | "%N" | "%O" | "%P" | "%Q" | "%R" | "%U" | "%V" => continue,
            "Bl" => {
                lists += 1;
                continue;
            }
            "El" => {
                lists = lists.saturating_sub(1);
                continue;
            }
            "Pp" | "Lp" | "sp" | "br" => {
                out.push('\n');
                continue;
            }
            _ => {}
        }
        if section == "NAME" {
            match mac.as_str() {
                "Nm" => {
                    if name.is_empty() {
                        name = words().into_iter().find(|w| w != ",").unwrap_or_default();
                    }
                }
                "Nd" => out.push_str(&format!("{}\n", mdoc_words(&words(), &name).trim())),
                _ => {}
            }
            continue;
        }
        if section == "SYNOPSIS" {
            if mac == "Nm" {
                usages.push(String::new());
            }
            let Some(usage) = usages.last_mut() else {
                continue;
            };
            let text = if mac.is_empty() {
                plain(&rest)
            } else {
                let mut all = vec![mac.clone()];
                all.extend(words());
                mdoc_words(&all, &name)
            };
            usage.push(' ');
            usage.push_str(text.trim());
            continue;
        }
        let text = if mac.is_empty() {
            plain(&rest)
        } else if mac == "It" {
            let tag = mdoc_words(&words(), &name);
            // A tag list's item: an option line when it names an option,
            // else the text of the item above (a list of values).
            if lists <= 1 && tag.trim_start().starts_with('-') {
                out.push_str(&format!("  {}\n", tag.trim()));
                continue;
            }
            tag
        } else if CALLABLE.contains(&mac.as_str()) {
            let mut all = vec![mac.clone()];
            all.extend(words());
            mdoc_words(&all, &name)
        } else {
            continue;
        };
        if !text.trim().is_empty() {
            out.push_str(&format!("        {}\n", text.trim()));
        }
    }
    flush_usages(&mut usages, &mut out);
    out
}

/// A man page's synopsis, description and options.
pub fn parse(roff: &str) -> CommandSpec {
    let help = if is_mdoc(roff) {
        mdoc_to_help(roff)
    } else {
        to_help(roff)
    };
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

#[cfg(test)]
mod mdoc {
    //! mdoc(7) pages as Debian ships them (file 5.44, OpenSSH's
    //! ssh-keyscan), captured from this machine into `tests/fixtures/man`.
    use super::*;
    use crate::discover::command::ValueKind;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/man")
                .join(name),
        )
        .unwrap()
    }

    fn long<'a>(spec: &'a CommandSpec, name: &str) -> &'a crate::discover::command::OptionSpec {
        spec.options
            .iter()
            .find(|o| o.long.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no --{name} in {:?}", spec.options))
    }

    #[test]
    fn file() {
        let roff = fixture("file.1");
        assert!(is_mdoc(&roff));
        let spec = parse(&roff);
        assert_eq!(spec.description, "determine file type");
        let brief = long(&spec, "brief");
        assert_eq!((brief.short, brief.value.is_none()), (Some('b'), true));
        assert!(
            brief.description.starts_with("Do not prepend filenames"),
            "{brief:?}"
        );
        let exclude = long(&spec, "exclude");
        assert_eq!(
            (exclude.short, exclude.value.clone()),
            (Some('e'), Some(ValueKind::String))
        );
        // The values listed under --exclude are no options.
        assert!(
            spec.options
                .iter()
                .all(|o| o.long.as_deref() != Some("apptype"))
        );
        assert!(spec.options.len() > 20, "{:?}", spec.options);
        let names: Vec<&str> = spec.positionals.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["file"], "{:?}", spec.positionals);
        assert!(spec.positionals[0].required && spec.positionals[0].repeated);
    }

    #[test]
    fn ssh_keyscan() {
        let spec = parse(&fixture("ssh-keyscan.1"));
        assert_eq!(spec.description, "gather SSH public keys from servers");
        let shorts: Vec<char> = spec.options.iter().filter_map(|o| o.short).collect();
        for c in ['4', '6', 'c', 'D', 'f', 'p', 'T', 't', 'v'] {
            assert!(shorts.contains(&c), "-{c} missing from {shorts:?}");
        }
        let port = spec.options.iter().find(|o| o.short == Some('p')).unwrap();
        assert_eq!(port.value, Some(ValueKind::Integer));
        // [host | addrlist namelist]: optional, so no required argument.
        assert!(
            spec.positionals.iter().all(|p| !p.required),
            "{:?}",
            spec.positionals
        );
    }

    #[test]
    fn a_man_7_page_is_not_mdoc() {
        assert!(!is_mdoc(".TH WIDGET 1\n.SH NAME\nwidget \\- w\n"));
        assert!(is_mdoc(".\\\" comment\n.Dd May 1, 2020\n.Dt X 1\n"));
    }
}
