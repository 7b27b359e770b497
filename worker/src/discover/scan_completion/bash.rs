//! bash completion files (bash-completion's `completions/cmd`). They are
//! programs; what they offer is read from their word lists:
//! - `compgen -W 'words'` and `complete -W 'words'`, with the variables they
//!   name expanded (`$OPTS`, `${VERBS[*]}`), and variables assigned words
//!   (`opts='…'`, `local COMMANDS=(…)`, `local -A VERBS=([KEY]='…')`);
//! - `case` statements: in `case $prev in -o|--output) …` the labelled
//!   options take a value, whose choices are the plain words the arm offers
//!   (util-linux's lone `number` says it is a number); in
//!   `case $command in sub1|sub2) …` the labels are subcommands, and the
//!   options the arm offers are theirs.
//!
//! Option words (`-x`, `--long`) are options; plain words are subcommands
//! only where the file says so: a variable named like `COMMANDS`, `cmds`,
//! `VERBS`; a list offered at the first word (`COMP_CWORD -eq 1`,
//! `cword == 1`); `complete -W`. Anything computed by running a program
//! (`$(…)`) is left out.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::super::command::{CommandSpec, OptionSpec, ValueKind};
use super::is_name;

static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;])(?:local\s+|declare\s+|typeset\s+|readonly\s+)?(?:-[aAr]+\s+)*([A-Za-z_][A-Za-z0-9_]*)\+?=")
        .expect("assignment pattern")
});
static WORDLIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(compgen|complete)\s+(?:-[A-Za-z]+\s+(?:[A-Za-z_]\S*\s+)?)*?-W\s*")
        .expect("word list pattern")
});
static CASE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*case\s+(\S+)\s+in\b").expect("case pattern"));
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*\(?\s*((?:'[^']*'|"[^"]*"|[A-Za-z0-9_.*+-])+(?:\s*\|\s*(?:'[^']*'|"[^"]*"|[A-Za-z0-9_.*+-])+)*)\s*\)"#)
        .expect("label pattern")
});
static FIRST_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:COMP_CWORD|cword)\s*(?:-eq|==)\s*1\b").expect("first word pattern")
});
static COMMAND_VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|_)(?:commands?|cmds|verbs|subcommands?|actions)$")
        .expect("command variable pattern")
});
static FUNCTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:function\s+)?([A-Za-z0-9_:.-]+)\s*\(\)|^\s*function\s+([A-Za-z0-9_:.-]+)")
        .expect("function pattern")
});
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?:\[([A-Za-z0-9_*@]+)\])?\}?")
        .expect("reference pattern")
});

/// Where a piece of the file is: which `case` arm.
#[derive(Debug, Clone, Default, PartialEq)]
enum Context {
    #[default]
    Top,
    /// An arm of `case $prev in`: these options take a value.
    AfterOption(Vec<String>),
    /// An arm of `case $command in`: these subcommands.
    Subcommand(Vec<String>),
}

/// One word list of the file.
struct WordList {
    /// The variable it is assigned to, and the key in an associative array.
    variable: Option<(String, Option<String>)>,
    /// Its words, variables expanded.
    words: Vec<String>,
    /// `complete -W`, or offered at the first word.
    first_word: bool,
    context: Context,
}

/// A shell word starting at `text[0]` (quotes joined, over lines), and
/// where it ends.
fn shell_word(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut paren = 0;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => {
                paren += 1;
                out.push(c);
            }
            (None, ')') if paren > 0 => {
                paren -= 1;
                out.push(c);
            }
            (None, c) if c.is_whitespace() || c == ';' || c == ')' => return (out, i),
            (_, c) => out.push(c),
        }
    }
    (out, text.len())
}

/// An array's body `( … )` from `text[0]`, and where it ends.
fn array_body(text: &str) -> (String, usize) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, ')') => return (text[1..i].to_owned(), i + 1),
            _ => {}
        }
    }
    (text[1..].to_owned(), text.len())
}

/// The words of a list, references to known variables expanded, anything
/// computed left out.
fn words(text: &str, variables: &HashMap<String, Vec<(Option<String>, String)>>) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split_whitespace() {
        if raw.contains("$(") || raw.contains('`') {
            continue;
        }
        if raw.contains('$') {
            for c in REFERENCE.captures_iter(raw) {
                let Some(values) = variables.get(&c[1]) else {
                    continue;
                };
                let key = c.get(2).map(|k| k.as_str());
                for (value_key, value) in values {
                    let wanted = match key {
                        None | Some("*" | "@") => true,
                        Some(k) => value_key.as_deref() == Some(k),
                    };
                    if wanted {
                        out.extend(
                            value
                                .split_whitespace()
                                .filter(|w| !w.contains('$'))
                                .map(str::to_owned),
                        );
                    }
                }
            }
            continue;
        }
        out.push(raw.trim_matches(['\'', '"']).to_owned());
    }
    out
}

fn option_word(word: &str) -> Option<(Option<String>, Option<char>)> {
    let word = word.trim_end_matches('=');
    if let Some(long) = word.strip_prefix("--") {
        return (long.starts_with(|c: char| c.is_ascii_alphanumeric())
            && long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then(|| (Some(long.to_owned()), None));
    }
    let short = word.strip_prefix('-')?;
    let mut chars = short.chars();
    match (chars.next(), chars.as_str()) {
        (Some(c), "") if c.is_ascii_alphanumeric() => Some((None, Some(c))),
        _ => None,
    }
}

/// The command and its subcommands as a bash completion file offers them
/// (`result[0]` is the command itself).
pub fn parse(name: &str, text: &str) -> Vec<CommandSpec> {
    // Pass 1: every variable's words (for expanding references), and every
    // word list with where it sits.
    let mut variables: HashMap<String, Vec<(Option<String>, String)>> = HashMap::new();
    // (offset, variable, raw text)
    let mut raw_lists: Vec<(usize, Option<(String, Option<String>)>, String, bool)> = Vec::new();
    // Byte ranges of multi-line words: their lines are no `case` labels.
    let mut quoted: Vec<(usize, usize)> = Vec::new();
    for c in ASSIGNMENT.captures_iter(text) {
        let whole = c.get(0).expect("match");
        let name = c[1].to_owned();
        let rest = &text[whole.end()..];
        // What the file computes or hands back is no list of its own.
        if matches!(
            name.as_str(),
            "COMPREPLY" | "cur" | "prev" | "words" | "cword" | "i"
        ) || rest.starts_with("$(")
            || rest.starts_with("( $(")
            || rest.starts_with("($(")
        {
            continue;
        }
        if rest.starts_with('(') {
            let (body, end) = array_body(rest);
            quoted.push((whole.end(), whole.end() + end));
            // `[KEY]='words'` entries of an associative array, else words.
            let entries: Vec<(Option<String>, String)> = if body.trim_start().starts_with('[') {
                body.split('[')
                    .filter_map(|e| e.split_once("]="))
                    .map(|(k, v)| (Some(k.to_owned()), shell_word(v.trim()).0))
                    .collect()
            } else {
                vec![(None, body.replace(['\'', '"'], " "))]
            };
            for (key, value) in entries {
                variables
                    .entry(name.clone())
                    .or_default()
                    .push((key.clone(), value.clone()));
                raw_lists.push((whole.start(), Some((name.clone(), key)), value, false));
            }
        } else {
            let (value, end) = shell_word(rest);
            quoted.push((whole.end(), whole.end() + end));
            variables
                .entry(name.clone())
                .or_default()
                .push((None, value.clone()));
            raw_lists.push((whole.start(), Some((name, None)), value, false));
        }
    }
    for c in WORDLIST.captures_iter(text) {
        let whole = c.get(0).expect("match");
        let (value, end) = shell_word(&text[whole.end()..]);
        quoted.push((whole.end(), whole.end() + end));
        // Offered at the first word: a test of the word index just before.
        let before = &text[whole.start().saturating_sub(300)..whole.start()];
        let before: Vec<&str> = before.lines().rev().take(3).collect();
        let first_word = &c[1] == "complete" || before.iter().any(|l| FIRST_WORD.is_match(l));
        raw_lists.push((whole.start(), None, value, first_word));
    }
    // Pass 2: the case arm each offset is in.
    let mut arms: Vec<(usize, Context)> = vec![(0, Context::Top)];
    let mut stack: Vec<(bool, bool, Context)> = Vec::new(); // (is prev, is command, arm)
    // The function each offset is in (git's `_git_bisect` offers bisect's
    // words, not git's).
    let mut functions: Vec<(usize, Option<String>)> = vec![(0, None)];
    let mut function: Option<(String, i32, bool)> = None; // (name, depth at it, body opened)
    let mut depth = 0i32;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let inside_word = quoted.iter().any(|(a, b)| *a < start && start < *b);
        let code = line.trim_start();
        if inside_word || code.starts_with('#') {
            continue;
        }
        if let Some(c) = FUNCTION.captures(line)
            && !line.contains("=(")
        {
            let found = c.get(1).or_else(|| c.get(2)).map(|m| m.as_str().to_owned());
            if let Some(found) = found {
                functions.push((start, Some(found.clone())));
                function = Some((found, depth, false));
            }
        }
        depth += super::zsh::braces(line);
        if let Some((_, at, opened)) = &mut function {
            if depth > *at {
                *opened = true;
            } else if *opened {
                function = None;
                functions.push((offset, None));
            }
        }
        if let Some(c) = CASE.captures(line) {
            let subject = c[1].to_ascii_lowercase();
            let is_prev = subject.contains("prev");
            let is_command = !is_prev
                && [
                    "command",
                    "cmd",
                    "verb",
                    "subcommand",
                    "words[1]",
                    "comp_words[1]",
                ]
                .iter()
                .any(|w| subject.contains(w));
            stack.push((is_prev, is_command, Context::Top));
            continue;
        }
        if code.starts_with("esac") {
            stack.pop();
            arms.push((start, current(&stack)));
            continue;
        }
        if let Some((is_prev, is_command, arm)) = stack.last_mut()
            && let Some(c) = LABEL.captures(line)
            && !line.contains("=(")
            && !line.contains("$(")
        {
            let labels: Vec<String> = c[1]
                .split('|')
                .map(|l| l.trim().trim_matches(['\'', '"']).to_owned())
                .collect();
            *arm = if *is_prev {
                Context::AfterOption(
                    labels
                        .into_iter()
                        .filter(|l| option_word(l).is_some())
                        .collect(),
                )
            } else if *is_command {
                Context::Subcommand(labels.into_iter().filter(|l| is_name(l)).collect())
            } else {
                Context::Top
            };
            arms.push((start, current(&stack)));
        }
    }
    let context_at = |offset: usize| {
        arms.iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    // Lists of a subcommand's own function (`_git_bisect`, `__git_remote_…`)
    // are that subcommand's business; util-linux names its main function
    // `_cmd_module`.
    let helper = |offset: usize| {
        let function = functions
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .and_then(|(_, f)| f.as_deref());
        function.is_some_and(|f| {
            let f = f.trim_start_matches('_');
            f.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['_', '-']) && rest != "_module")
        })
    };
    let lists: Vec<WordList> = raw_lists
        .into_iter()
        .filter(|(offset, ..)| !helper(*offset))
        .map(|(offset, variable, raw, first_word)| WordList {
            words: words(&raw, &variables),
            variable,
            first_word,
            context: context_at(offset),
        })
        .collect();
    // Pass 3: what the lists say.
    let mut root = CommandSpec::default();
    let mut subs: Vec<CommandSpec> = Vec::new();
    let add_sub = |subs: &mut Vec<CommandSpec>, name: &str| {
        if is_name(name)
            && name != "help"
            && !subs.iter().any(|s| s.path[0] == name)
            && subs.len() < crate::discover::scan_help::MAX_SUBCOMMANDS
        {
            subs.push(CommandSpec {
                path: vec![name.to_owned()],
                ..CommandSpec::default()
            });
        }
    };
    let mut value_options: Vec<(String, ValueKind)> = Vec::new();
    for list in &lists {
        let commands = list.first_word
            || list
                .variable
                .as_ref()
                .is_some_and(|(name, _)| COMMAND_VARIABLE.is_match(name));
        let takes_value = list.variable.as_ref().is_some_and(|(name, key)| {
            key.as_deref()
                .unwrap_or(name)
                .to_ascii_uppercase()
                .contains("ARG")
        });
        let plain: Vec<&String> = list.words.iter().filter(|w| is_name(w)).collect();
        match &list.context {
            Context::AfterOption(options) => {
                let value = match plain.as_slice() {
                    [one] if *one == "number" => ValueKind::Integer,
                    words if words.len() > 1 => {
                        ValueKind::Choice(words.iter().map(|w| (*w).clone()).collect())
                    }
                    _ => ValueKind::String,
                };
                for option in options {
                    value_options.push((option.clone(), value.clone()));
                }
            }
            Context::Subcommand(names) => {
                for name in names {
                    add_sub(&mut subs, name);
                    let spec = subs
                        .iter_mut()
                        .find(|s| s.path[0] == *name)
                        .expect("just added");
                    for word in &list.words {
                        add_option(spec, word, false);
                    }
                }
            }
            Context::Top => {
                for word in &list.words {
                    if option_word(word).is_some() {
                        add_option(&mut root, word, takes_value);
                    } else if commands {
                        add_sub(&mut subs, word);
                    }
                }
            }
        }
    }
    for (option, value) in value_options {
        let Some((long, short)) = option_word(&option) else {
            continue;
        };
        let mut found = false;
        for spec in std::iter::once(&mut root).chain(subs.iter_mut()) {
            for o in &mut spec.options {
                if (long.is_some() && o.long == long) || (short.is_some() && o.short == short) {
                    o.value = Some(value.clone());
                    found = true;
                }
            }
        }
        if !found {
            root.options.push(OptionSpec {
                long,
                short,
                value: Some(value),
                ..OptionSpec::default()
            });
        }
    }
    root.subcommands = subs
        .iter()
        .map(|s| (s.path[0].clone(), String::new()))
        .collect();
    let mut all = vec![root];
    all.extend(subs);
    all
}

fn current(stack: &[(bool, bool, Context)]) -> Context {
    stack
        .iter()
        .rev()
        .map(|(_, _, arm)| arm)
        .find(|arm| **arm != Context::Top)
        .cloned()
        .unwrap_or_default()
}

fn add_option(spec: &mut CommandSpec, word: &str, takes_value: bool) {
    let Some((long, short)) = option_word(word) else {
        return;
    };
    if spec
        .options
        .iter()
        .any(|o| (long.is_some() && o.long == long) || (long.is_none() && o.short == short))
    {
        return;
    }
    spec.options.push(OptionSpec {
        long,
        short,
        value: (takes_value || word.ends_with('=')).then_some(ValueKind::String),
        ..OptionSpec::default()
    });
}
