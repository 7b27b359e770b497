//! zsh completion functions (`_cmd` files starting `#compdef cmd`). They are
//! programs, but most state what a command takes in two shapes read here:
//! - `_arguments` specs: `'(-a --all)'{-a,--all}'[description]'`,
//!   `--opt='[description]:message:action'`, `'1:message:action'`; an action
//!   `(a b c)` or `((a\:desc b\:desc))` lists the choices. Specs at the top
//!   level or in the function `_cmd` describe the command; in `_cmd_sub` or
//!   `_cmd-sub`, the subcommand `sub`.
//! - subcommand arrays: `cmds=( "sub:description" … )`, given to
//!   `_describe`, or named like `…commands`/`…cmds`.
//!
//! What needs running zsh (computed arrays, `_values` of a state machine) is
//! left out.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::super::command::{CommandSpec, OptionSpec, Positional, ValueKind, value_kind};
use super::is_name;

static FUNCTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\(\([^)]*\)\)\s*\|\|\s*)?(?:function\s+)?([A-Za-z0-9_][A-Za-z0-9_:.+-]*)\s*\(\)\s*(?:\{.*)?$|^\s*function\s+([A-Za-z0-9_][A-Za-z0-9_:.+-]*)\s*\{")
        .expect("function pattern")
});
static ARRAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[\s;])(?:local\s+(?:-[aU]+\s+)*|typeset\s+-a\s+)?([A-Za-z_][A-Za-z0-9_]*)\+?=\(",
    )
    .expect("array pattern")
});
static DESCRIBE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"_describe\s+((?:-[tVJxoOM12]\s+\S+\s+)*)(?:'[^']*'|"[^"]*"|\S+)\s+\$?\{?([A-Za-z_][A-Za-z0-9_]*)"#)
        .expect("describe pattern")
});
static COMMAND_ARRAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(commands|cmds|subcommands)$").expect("command array pattern")
});

/// Whether `text` is a zsh completion for `name` (its `#compdef` line names it).
pub fn completes(name: &str, text: &str) -> bool {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("#compdef"))
        .is_some_and(|rest| rest.split_whitespace().any(|w| w == name))
}

/// Lines with `\`-continuations joined and comment lines dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if current.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        lines.push(std::mem::take(&mut current));
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// The text from `start` (just after an opening parenthesis) to its match,
/// over several lines if need be, skipping quoted text.
fn until_close(lines: &[String], index: usize, start: usize) -> String {
    let mut out = String::new();
    let mut depth = 1;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (n, line) in lines.iter().enumerate().skip(index) {
        let text = if n == index { &line[start..] } else { line };
        // A comment line inside an array (`# Unit Commands`).
        if n != index && quote.is_none() && text.trim_start().starts_with('#') {
            continue;
        }
        for c in text.chars() {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match (quote, c) {
                (_, '\\') if quote != Some('\'') => escaped = true,
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '(') => depth += 1,
                (None, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        return out;
                    }
                }
                _ => {}
            }
            out.push(c);
        }
        out.push('\n');
    }
    out
}

/// The command and its subcommands as a zsh completion function describes
/// them (`result[0]` is the command itself).
pub fn parse(name: &str, text: &str) -> Vec<CommandSpec> {
    let lines = logical_lines(text);
    let mut arrays: HashMap<String, Vec<String>> = HashMap::new();
    let mut described: Vec<String> = Vec::new();
    // (function the call is in, the words after `_arguments`)
    let mut calls: Vec<(Option<String>, String)> = Vec::new();
    // The function a line is in: from its definition to the brace that
    // closes its body (systemd's files indent that brace).
    let mut function: Option<String> = None;
    let mut depth = 0i32;
    let mut body: Option<(i32, bool)> = None; // (depth at the definition, body opened)
    for (index, line) in lines.iter().enumerate() {
        if let Some(c) = FUNCTION.captures(line) {
            function = c.get(1).or_else(|| c.get(2)).map(|m| m.as_str().to_owned());
            body = Some((depth, false));
        }
        let in_function = function.clone();
        depth += braces(line);
        if let Some((start, opened)) = &mut body {
            if depth > *start {
                *opened = true;
            } else if *opened {
                body = None;
                function = None;
            }
        }
        let function = &in_function;
        for c in ARRAY.captures_iter(line) {
            let whole = c.get(0).expect("match");
            let body = until_close(&lines, index, whole.end());
            let words = shlex::split(&body)
                .unwrap_or_else(|| body.split_whitespace().map(str::to_owned).collect());
            arrays
                .entry(c[1].to_owned())
                .or_default()
                .extend(words.into_iter().filter(|w| !w.starts_with('$')));
        }
        for c in DESCRIBE.captures_iter(line) {
            let commands = c[1].contains("command");
            let array = c[2].to_owned();
            if commands || COMMAND_ARRAY.is_match(&array) {
                described.push(array);
            }
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("_arguments ")
            .or_else(|| trimmed.split_once(" _arguments ").map(|(_, r)| r))
        {
            calls.push((function.clone(), rest.to_owned()));
        }
    }
    let mut root = CommandSpec::default();
    let mut subs: Vec<CommandSpec> = Vec::new();
    let mut names: Vec<&String> = arrays
        .keys()
        .filter(|a| described.contains(a) || COMMAND_ARRAY.is_match(a))
        .collect();
    names.sort();
    for array in names {
        for word in &arrays[array] {
            let (sub, description) = split_unescaped(word, ':');
            let sub = sub.replace('\\', "");
            if is_name(&sub)
                && sub != "help"
                && !subs.iter().any(|s| s.path[0] == sub)
                && subs.len() < crate::discover::scan_help::MAX_SUBCOMMANDS
            {
                subs.push(CommandSpec {
                    path: vec![sub],
                    description: description.unwrap_or_default().replace('\\', ""),
                    ..CommandSpec::default()
                });
            }
        }
    }
    for (function, words) in calls {
        let target = match function.as_deref() {
            None => &mut root,
            Some(f) if f == format!("_{name}") => &mut root,
            Some(f) => {
                let Some(sub) = f
                    .strip_prefix(&format!("_{name}"))
                    .and_then(|s| s.strip_prefix(['_', '-']))
                else {
                    continue;
                };
                match subs.iter_mut().find(|s| s.path[0] == sub) {
                    Some(spec) => spec,
                    None => continue,
                }
            }
        };
        let words = shlex::split(&words)
            .unwrap_or_else(|| words.split_whitespace().map(str::to_owned).collect());
        let mut specs = Vec::new();
        let mut leading = true;
        for word in words {
            // `_arguments`' own flags come before the specs.
            if leading
                && matches!(
                    word.as_str(),
                    "-s" | "-S" | "-C" | "-A" | "-w" | "-W" | "-n" | ":"
                )
            {
                continue;
            }
            leading = false;
            if let Some(array) = word
                .strip_prefix('$')
                .map(|w| w.trim_matches(|c| "{}@()".contains(c)))
                && let Some(elements) = arrays.get(array)
            {
                specs.extend(elements.iter().cloned());
                continue;
            }
            specs.push(word);
        }
        for spec in specs {
            read_spec(&spec, target);
        }
    }
    root.subcommands = subs
        .iter()
        .map(|s| (s.path[0].clone(), s.description.clone()))
        .collect();
    let mut all = vec![root];
    all.extend(subs);
    all
}

/// Opening minus closing braces of a line, outside single quotes and
/// escapes.
pub(super) fn braces(line: &str) -> i32 {
    let mut count = 0;
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !quoted => escaped = true,
            '\'' => quoted = !quoted,
            '{' if !quoted => count += 1,
            '}' if !quoted => count -= 1,
            _ => {}
        }
    }
    count
}

/// `text` split at the first `sep` not escaped by a backslash.
fn split_unescaped(text: &str, sep: char) -> (String, Option<String>) {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            return (text[..i].to_owned(), Some(text[i + 1..].to_owned()));
        }
    }
    (text.to_owned(), None)
}

/// The text after a group opened at `text[0]` by `open`, and the group's
/// content (backslash escapes kept out of the count).
fn group(text: &str, open: char, close: char) -> Option<(String, &str)> {
    let mut depth = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Some((text[1..i].to_owned(), &text[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// The value an action offers: `(a b c)` and `((a\:x b\:y))` are choices.
fn action_value(message: &str, action: &str) -> ValueKind {
    let action = action.trim();
    if let Some(inner) = action.strip_prefix("((").and_then(|a| a.strip_suffix("))")) {
        let words: Vec<String> = shlex::split(inner)
            .unwrap_or_default()
            .iter()
            .map(|w| split_unescaped(w, ':').0.replace('\\', ""))
            .filter(|w| is_name(w))
            .collect();
        if words.len() > 1 {
            return ValueKind::Choice(words);
        }
    } else if let Some(inner) = action.strip_prefix('(').and_then(|a| a.strip_suffix(')')) {
        let words: Vec<String> = inner.split_whitespace().map(str::to_owned).collect();
        if words.len() > 1 && words.iter().all(|w| is_name(w)) {
            return ValueKind::Choice(words);
        }
    }
    value_kind(message.trim())
}

/// One `_arguments` spec into `target`.
fn read_spec(spec: &str, target: &mut CommandSpec) {
    let mut rest = spec.trim();
    // An exclusion list first: `(-a --all)`, `(- *)`.
    if rest.starts_with('(')
        && let Some((_, after)) = group(rest, '(', ')')
    {
        rest = after;
    }
    let rest_args = rest.starts_with('*');
    rest = rest.trim_start_matches(['*', '!']);
    if rest.starts_with('-') || rest.starts_with('{') {
        read_option(rest, target);
    } else if let Some(after) = rest.strip_prefix(|c: char| c.is_ascii_digit() || c == ':') {
        // `N:message:action`, `N::message:action` (optional), `:message:action`.
        let after = after.trim_start_matches(|c: char| c.is_ascii_digit());
        let optional = after.starts_with("::") || spec.starts_with("::");
        let after = after.trim_start_matches(':');
        let (message, action) = split_unescaped(after, ':');
        let action = action.unwrap_or_default();
        let message = message.trim();
        // The rest of the line to a subcommand's own completion is not an
        // argument.
        if message.is_empty()
            || message.contains("command")
            || action.contains("->")
            || action.contains("command")
        {
            return;
        }
        target.positionals.push(Positional {
            name: message.replace(' ', "_"),
            // `*:message` takes any number, none included.
            required: !optional && !rest_args,
            repeated: rest_args,
            value: action_value("", &action),
        });
    }
}

fn read_option(spec: &str, target: &mut CommandSpec) {
    let (names, rest): (Vec<String>, &str) = if spec.starts_with('{') {
        match group(spec, '{', '}') {
            Some((inner, rest)) => (inner.split(',').map(str::to_owned).collect(), rest),
            None => return,
        }
    } else {
        let end = spec.find(['[', ':']).unwrap_or(spec.len());
        (vec![spec[..end].to_owned()], &spec[end..])
    };
    let (description, rest) = if rest.starts_with('[') {
        match group(rest, '[', ']') {
            Some((d, r)) => (d.replace('\\', ""), r),
            None => (String::new(), rest),
        }
    } else {
        (String::new(), rest)
    };
    let mut takes_value = false;
    let mut option = OptionSpec {
        description: description.trim().to_owned(),
        ..OptionSpec::default()
    };
    for raw in names {
        // `--host=`, `-H+`, `--opt=-`: the option takes a value.
        let (name, suffix) = match raw.find(['=', '+']) {
            Some(i) => (&raw[..i], &raw[i..]),
            None => (raw.as_str(), ""),
        };
        let name = name.trim_end_matches('-');
        if !suffix.is_empty() && !suffix.starts_with("=")
            || suffix.starts_with("=-")
            || suffix == "="
        {
            takes_value = true;
        }
        if let Some(long) = name.strip_prefix("--") {
            if long.starts_with(|c: char| c.is_ascii_alphanumeric())
                && long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                option.long.get_or_insert_with(|| long.to_owned());
            }
        } else if let Some(short) = name.strip_prefix('-') {
            let mut chars = short.chars();
            if let (Some(c), "") = (chars.next(), chars.as_str())
                && c.is_ascii_alphanumeric()
            {
                option.short.get_or_insert(c);
            }
        }
    }
    if option.long.is_none() && option.short.is_none() {
        return;
    }
    if let Some(after) = rest.strip_prefix(':') {
        let (message, action) = split_unescaped(after, ':');
        option.value = Some(action_value(&message, &action.unwrap_or_default()));
    } else if takes_value {
        option.value = Some(ValueKind::String);
    }
    let known = target.options.iter().any(|o| {
        (o.long.is_some() && o.long == option.long) || (o.long.is_none() && o.short == option.short)
    });
    if !known {
        target.options.push(option);
    }
}
