//! `--help` output parsed into a [`CommandSpec`]: the usage line's
//! positionals, the options (GNU `-a, --all`, clap `-e, --regexp
//! <PATTERN>`, descriptions on the same line or indented below, defaults
//! and possible values), and the subcommands listed under a heading that
//! names commands (`Commands:`, git's "These are common Git commands").
//!
//! Help texts have no grammar; this reads the shapes most tools print and
//! leaves out what it cannot place (a line is an option only when it starts
//! with a dash after indentation; a subcommand only inside a commands
//! section, as an indented word followed by two spaces and a description).

use std::sync::LazyLock;

use regex::Regex;

use super::command::{CommandSpec, OptionSpec, Positional, ValueKind, value_kind};

/// Most subcommands read from one help text.
pub const MAX_SUBCOMMANDS: usize = 200;

static USAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*usage:\s*(.*)$").expect("usage pattern"));
static OPTION_LINE: LazyLock<Regex> = LazyLock::new(|| {
    // Parts of the spec are one space (or ", ") apart; the description
    // starts after two or more.
    Regex::new(r"^(\s{1,12})(-[^\s,]+(?:(?:,\s*| )(?:-[^\s,]+|<[^>]+>(?:\.\.\.)?|[A-Z][A-Z0-9_-]*\b(?:\.\.\.)?|\[[^\]]+\]))*)(?:\s{2,}|\t)?(.*)$")
        .expect("option pattern")
});
static SUBCOMMAND_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s{1,12}([a-z][a-z0-9_-]*(?:[a-z0-9]))(?:,\s*[a-z][\w-]*)*(?:\s{2,}|\t+)(\S.*)$")
        .expect("subcommand pattern")
});
static DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)[\[(]default(?: value)?(?:s to)?[:=]?\s*['"]?([^'"\])\s,]+)['"]?[\])]"#)
        .expect("default pattern")
});
static POSSIBLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[possible values:\s*([^\]]+)\]").expect("possible values pattern")
});

/// Parses one help text. `path` is the subcommand chain it describes.
pub fn parse(text: &str, path: &[String]) -> CommandSpec {
    let text = strip_escapes(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut spec = CommandSpec {
        path: path.to_vec(),
        ..CommandSpec::default()
    };
    spec.positionals = usage_positionals(&lines, path);
    spec.description = description(&lines);
    let mut in_commands = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        let is_heading = !line.starts_with([' ', '\t']) && !trimmed.is_empty();
        if is_heading {
            let lower = trimmed.to_ascii_lowercase();
            if lower.contains("option") || lower.contains("flag") || lower.starts_with("usage") {
                in_commands = false;
            } else if lower.contains("command") {
                in_commands = true;
            } else if lower.ends_with(':') && !lower.contains("command") {
                // A heading of its own kind (Arguments:, Examples:).
                in_commands = false;
            }
            i += 1;
            continue;
        }
        if let Some(captures) = OPTION_LINE.captures(line) {
            let indent = captures[1].len();
            let mut description = captures[3].trim().to_owned();
            // clap's long help and others put the description below,
            // indented deeper.
            let mut j = i + 1;
            while j < lines.len() {
                let next = lines[j];
                let next_indent = next.len() - next.trim_start().len();
                if next.trim().is_empty()
                    || next_indent <= indent
                    || next.trim_start().starts_with('-')
                {
                    break;
                }
                if description.is_empty() || description.len() < 400 {
                    if !description.is_empty() {
                        description.push(' ');
                    }
                    description.push_str(next.trim());
                }
                j += 1;
            }
            if let Some(option) = parse_option(&captures[2], &description)
                && !spec
                    .options
                    .iter()
                    .any(|o| o.long.is_some() && o.long == option.long)
            {
                spec.options.push(option);
            }
            i = j;
            continue;
        }
        if in_commands
            && spec.subcommands.len() < MAX_SUBCOMMANDS
            && let Some(captures) = SUBCOMMAND_LINE.captures(line)
        {
            let name = captures[1].to_owned();
            if name != "help" && !spec.subcommands.iter().any(|(n, _)| *n == name) {
                spec.subcommands
                    .push((name, first_sentence(captures[2].trim())));
            }
        }
        i += 1;
    }
    spec
}

/// Help texts of some tools carry terminal escapes and backspace
/// overstrikes (bold as `X\bX`).
fn strip_escapes(text: &str) -> String {
    static ESCAPE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\x1b\[[0-9;]*[A-Za-z]|.\x08").expect("escape pattern"));
    ESCAPE.replace_all(text, "").into_owned()
}

fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let cut = text.find(". ").map_or(text.len(), |i| i + 1);
    text[..cut].chars().take(200).collect()
}

/// A tool that does not know `--help` says so: that is no description.
static COMPLAINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)unknown option|invalid option|unrecognized option|illegal option|\berror\b")
        .expect("complaint pattern")
});

/// The first line of prose: a line that is not usage, not a heading, not an
/// option (tools print their one-line summary first or just after usage).
fn description(lines: &[&str]) -> String {
    for line in lines.iter().take(12) {
        let t = line.trim();
        if t.is_empty()
            || USAGE.is_match(line)
            || t.starts_with('-')
            || t.ends_with(':')
            || t.starts_with('[')
            || t.starts_with("or:")
            || t.split_whitespace().count() < 3
            || COMPLAINT.is_match(t)
        {
            continue;
        }
        return first_sentence(t);
    }
    String::new()
}

/// Positionals of the usage line: `<x>`, `[<x>]`, `UPPER`, `[UPPER]...`,
/// leaving out options, `[OPTIONS]`, `<command>` and the program's own
/// name and subcommand chain.
fn usage_positionals(lines: &[&str], path: &[String]) -> Vec<Positional> {
    let Some((index, first)) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| USAGE.captures(l).map(|c| (i, c[1].to_owned())))
    else {
        return Vec::new();
    };
    let mut usage = first;
    // "Usage:" alone, with the usage on the next line.
    if usage.trim().is_empty() {
        usage = lines
            .get(index + 1)
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
    }
    let mut words = tokenize_usage(&usage);
    // The program name, then the subcommand chain.
    if !words.is_empty() {
        words.remove(0);
    }
    for sub in path {
        if words.first().is_some_and(|(w, _)| w == sub) {
            words.remove(0);
        }
    }
    let mut positionals = Vec::new();
    // `PATH | URL | -`: alternatives are one argument, named by the first.
    let mut alternative = false;
    for (word, optional) in words {
        if word == "|" {
            alternative = true;
            continue;
        }
        if std::mem::take(&mut alternative) {
            continue;
        }
        let repeated = word.ends_with("...");
        let bare = word.trim_end_matches("...").trim_end_matches(']');
        let inner = bare
            .trim_start_matches('[')
            .trim_matches(|c| c == '<' || c == '>');
        if inner.is_empty()
            || inner.starts_with('-')
            || inner.starts_with('+')
            || inner.contains('=')
            || inner.contains('|') && inner.split('|').all(|w| w.trim().starts_with('-'))
        {
            continue;
        }
        let upper = inner.to_ascii_uppercase();
        if matches!(
            upper.as_str(),
            "OPTIONS"
                | "OPTION"
                | "FLAGS"
                | "COMMAND"
                | "COMMANDS"
                | "SUBCOMMAND"
                | "ARGS"
                | "ARGUMENTS"
                | "OPTS"
                | "GLOBAL OPTIONS"
        ) {
            continue;
        }
        let looks_like_argument =
            bare.contains('<') || inner == upper && inner.chars().any(|c| c.is_ascii_alphabetic());
        if !looks_like_argument {
            continue;
        }
        positionals.push(Positional {
            name: inner.to_owned(),
            required: !optional,
            repeated,
            value: value_kind(inner),
        });
    }
    positionals
}

/// Usage words with whether each sits inside brackets (optional).
fn tokenize_usage(usage: &str) -> Vec<(String, bool)> {
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    let mut current_optional = false;
    let flush = |current: &mut String, optional: bool, words: &mut Vec<(String, bool)>| {
        let word = current.trim().to_owned();
        if !word.is_empty() {
            words.push((word, optional));
        }
        current.clear();
    };
    let mut chars = usage.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                if depth == 0 {
                    flush(&mut current, current_optional, &mut words);
                    current_optional = true;
                }
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                current.push(c);
                if depth == 0 {
                    // A trailing "..." belongs to the group.
                    while chars.peek() == Some(&'.') {
                        current.push(chars.next().unwrap_or('.'));
                    }
                    // A group holding only an option or several words is
                    // read as one word; options are dropped by the caller.
                    let group = current.clone();
                    let inner = group.trim_start_matches('[');
                    let inner = inner.trim_end_matches('.').trim_end_matches(']');
                    if inner.split_whitespace().count() > 1 {
                        // Keep the first argument-looking word of a group
                        // such as "[<path>...]" or "[FILE]..."; drop
                        // "[--foo BAR]" (an option and its value).
                        if inner.trim_start().starts_with('-') {
                            current.clear();
                        } else {
                            current = format!(
                                "[{}]{}",
                                inner.split_whitespace().next().unwrap_or(""),
                                if group.ends_with("...") { "..." } else { "" }
                            );
                        }
                    }
                    flush(&mut current, true, &mut words);
                    current_optional = false;
                }
            }
            c if c.is_whitespace() && depth == 0 => {
                flush(&mut current, current_optional, &mut words);
                current_optional = false;
            }
            c => current.push(c),
        }
    }
    flush(&mut current, current_optional, &mut words);
    words
}

/// One option from its spec (`-e, --regexp <PATTERN>`) and description.
fn parse_option(spec: &str, description: &str) -> Option<OptionSpec> {
    let mut option = OptionSpec {
        description: first_sentence(description),
        ..OptionSpec::default()
    };
    let mut metavar: Option<String> = None;
    let mut optional_value = false;
    for part in spec
        .split([',', ' '])
        .map(|p| p.trim().trim_end_matches("..."))
        .filter(|p| !p.is_empty())
    {
        if let Some(long) = part.strip_prefix("--") {
            let (name, value) = match long.find(['=', '[', '<']) {
                Some(i) => (&long[..i], Some(&long[i..])),
                None => (long, None),
            };
            let name = name.trim_start_matches("[no-]");
            if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return None;
            }
            option.long.get_or_insert_with(|| name.to_owned());
            if let Some(value) = value {
                optional_value |= value.starts_with('[');
                metavar = Some(
                    value
                        .trim_start_matches(['[', '='])
                        .trim_end_matches(']')
                        .trim_start_matches('=')
                        .to_owned(),
                );
            }
        } else if let Some(short) = part.strip_prefix('-') {
            let mut chars = short.chars();
            if let (Some(c), rest) = (chars.next(), chars.as_str())
                && c.is_ascii_alphanumeric()
            {
                if rest.starts_with(['<', '[']) {
                    // -k<n>: a value glued to the flag.
                    option.short.get_or_insert(c);
                    metavar.get_or_insert_with(|| rest.to_owned());
                } else if rest.is_empty() {
                    option.short.get_or_insert(c);
                } else {
                    // `-chdir=DIR` (terraform, go): a long option with one
                    // dash, which `--{name}` would misspell: left out.
                    return None;
                }
            }
        } else if part.starts_with('<')
            || part.starts_with('[')
            || part
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c == '-' || c == '.')
        {
            metavar.get_or_insert_with(|| part.to_owned());
        }
    }
    if option.long.is_none() && option.short.is_none() {
        return None;
    }
    if let Some(metavar) = metavar.filter(|m| !m.is_empty()) {
        let mut kind = value_kind(&metavar);
        if let Some(possible) = POSSIBLE.captures(description) {
            let words: Vec<String> = possible[1]
                .split(',')
                .map(|w| w.trim().to_owned())
                .collect();
            if words.len() > 1 {
                kind = ValueKind::Choice(words);
            }
        }
        option.value = Some(kind);
        // "--checkpoint[=N] ... (default 10)" is the value taken when the
        // option is given bare, not what happens without it: no default.
        option.default = (!optional_value)
            .then(|| DEFAULT.captures(description))
            .flatten()
            .map(|c| c[1].trim_end_matches('.').to_owned());
    }
    Some(option)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/help")
                .join(name),
        )
        .unwrap()
    }

    fn names(spec: &CommandSpec) -> Vec<&str> {
        spec.subcommands.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn option<'a>(spec: &'a CommandSpec, long: &str) -> &'a OptionSpec {
        spec.options
            .iter()
            .find(|o| o.long.as_deref() == Some(long))
            .unwrap_or_else(|| panic!("no --{long} in {:?}", spec.options))
    }

    #[test]
    fn git() {
        let spec = parse(&fixture("git.txt"), &[]);
        let subs = names(&spec);
        for expected in [
            "clone", "init", "add", "commit", "push", "log", "status", "rebase",
        ] {
            assert!(subs.contains(&expected), "{expected} missing from {subs:?}");
        }
        assert!(subs.len() >= 20 && subs.len() <= 40, "{subs:?}");
        let clone = &spec
            .subcommands
            .iter()
            .find(|(n, _)| n == "clone")
            .unwrap()
            .1;
        assert_eq!(clone, "Clone a repository into a new directory");
    }

    #[test]
    fn cargo() {
        let spec = parse(&fixture("cargo.txt"), &[]);
        let subs = names(&spec);
        for expected in [
            "build", "check", "clean", "doc", "new", "run", "test", "publish",
        ] {
            assert!(subs.contains(&expected), "{expected} missing from {subs:?}");
        }
        assert!(
            !subs.contains(&"b"),
            "aliases are not subcommands: {subs:?}"
        );
        let color = option(&spec, "color");
        assert_eq!(
            color.value,
            Some(ValueKind::Choice(vec![
                "auto".into(),
                "always".into(),
                "never".into()
            ]))
        );
        assert_eq!(option(&spec, "verbose").short, Some('v'));
        assert_eq!(option(&spec, "verbose").value, None);
    }

    #[test]
    fn tar() {
        let spec = parse(&fixture("tar.txt"), &[]);
        assert!(spec.subcommands.is_empty(), "{:?}", spec.subcommands);
        let file = option(&spec, "file");
        assert_eq!((file.short, file.value.is_some()), (Some('f'), true));
        assert_eq!(option(&spec, "create").short, Some('c'));
        assert_eq!(option(&spec, "create").value, None);
        assert!(spec.options.len() > 100, "{}", spec.options.len());
        assert!(spec.description.contains("tar"), "{}", spec.description);
    }

    #[test]
    fn alternatives_are_one_argument_and_one_dash_long_options_are_left_out() {
        let spec = parse(
            "Usage:  docker buildx build [OPTIONS] PATH | URL | -\n\nOptions:\n  \
             -chdir=DIR    Switch to a different working directory\n  \
             -t, --tag <TAG>  Name and tag\n",
            &["build".into()],
        );
        let names: Vec<&str> = spec.positionals.iter().map(|p| p.name.as_str()).collect();
        // "buildx" is the real subcommand chain's first word (left for the
        // caller's path), PATH | URL | - is one argument.
        assert_eq!(names, vec!["PATH"], "{:?}", spec.positionals);
        let longs: Vec<Option<&str>> = spec.options.iter().map(|o| o.long.as_deref()).collect();
        assert_eq!(longs, vec![Some("tag")]);
    }

    #[test]
    fn a_fixture_tool() {
        let text = "usage: widget [-v] <command> [<args>]\n\nA widget manager for tests.\n\n\
                    Commands:\n  list      List the widgets\n  delete    Delete a widget\n\n\
                    Options:\n  -v, --verbose          Say more\n  \
                    --color <WHEN>     When to colour [default: auto] [possible values: auto, always, never]\n  \
                    -n, --count NUM        How many\n";
        let spec = parse(text, &[]);
        assert_eq!(names(&spec), vec!["list", "delete"]);
        assert_eq!(spec.description, "A widget manager for tests.");
        let color = option(&spec, "color");
        assert_eq!(
            color.value,
            Some(ValueKind::Choice(vec![
                "auto".into(),
                "always".into(),
                "never".into()
            ]))
        );
        assert_eq!(color.default.as_deref(), Some("auto"));
        assert_eq!(option(&spec, "count").value, Some(ValueKind::Integer));
        let sub = parse(
            "Usage: widget delete [OPTIONS] <name> [COUNT]\n",
            &["delete".into()],
        );
        assert_eq!(
            sub.positionals,
            vec![
                Positional {
                    name: "name".into(),
                    required: true,
                    repeated: false,
                    value: ValueKind::String
                },
                Positional {
                    name: "COUNT".into(),
                    required: false,
                    repeated: false,
                    value: ValueKind::Integer
                }
            ]
        );
    }
}
