//! Shell completion files: fish's `complete -c CMD …` lines, which say in
//! one line each what a command takes. Subcommands are the words of `-a`
//! offered while no subcommand is given yet (`-n __fish_use_subcommand`, or
//! `not __fish_seen_subcommand_from …`); options (`-s`, `-l`, `-o`) belong
//! to the subcommand named in `__fish_seen_subcommand_from X`, else to the
//! command; `-r`/`-x` make an option take a value, whose choices are its
//! `-a` words.
//!
//! zsh `_cmd` and bash completion files are programs rather than tables and
//! are not read.

use std::path::{Path, PathBuf};

use super::command::{CommandSpec, OptionSpec, ValueKind};

/// Where fish looks for completions, for a user whose home is `home` and
/// whose `XDG_DATA_DIRS` is `data_dirs`.
pub fn fish_dirs(home: Option<&Path>, data_dirs: Option<&str>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = home {
        dirs.push(home.join(".config/fish/completions"));
        dirs.push(home.join(".local/share/fish/vendor_completions.d"));
    }
    let data = data_dirs
        .filter(|d| !d.is_empty())
        .unwrap_or("/usr/local/share:/usr/share");
    for dir in data.split(':').filter(|d| d.starts_with('/')) {
        dirs.push(Path::new(dir).join("fish/vendor_completions.d"));
        dirs.push(Path::new(dir).join("fish/completions"));
    }
    dirs
}

/// The completion file of `name` in `dirs`, first found.
pub fn find(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(format!("{name}.fish")))
        .find(|p| p.is_file())
}

/// The command and its subcommands as a fish completion file describes them
/// (`result[0]` is the command itself).
pub fn parse_fish(name: &str, text: &str) -> Vec<CommandSpec> {
    let mut root = CommandSpec::default();
    let mut subs: Vec<CommandSpec> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with("complete ") {
            continue;
        }
        let Some(words) = shlex::split(line) else {
            continue;
        };
        let mut command = None;
        let mut short = None;
        let mut long = None;
        let mut args = None;
        let mut description = String::new();
        let mut condition = String::new();
        let mut takes_value = false;
        let mut i = 1;
        while i < words.len() {
            let word = words[i].as_str();
            let mut value = || {
                i += 1;
                words.get(i).cloned().unwrap_or_default()
            };
            match word {
                "-c" | "--command" => command = Some(value()),
                "-s" | "--short-option" => short = value().chars().next(),
                "-l" | "--long-option" | "-o" | "--old-option" => long = Some(value()),
                "-a" | "--arguments" => args = Some(value()),
                "-d" | "--description" => description = value(),
                "-n" | "--condition" => condition = value(),
                "-r" | "--require-parameter" | "-x" | "--exclusive" => takes_value = true,
                _ => {}
            }
            i += 1;
        }
        if command.as_deref() != Some(name) {
            continue;
        }
        let seen_from = condition
            .split("__fish_seen_subcommand_from")
            .nth(1)
            .filter(|_| !condition.contains("not __fish_seen_subcommand_from"))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        if short.is_none() && long.is_none() {
            let offers_subcommands = condition.contains("__fish_use_subcommand")
                || condition.contains("not __fish_seen_subcommand_from");
            if let (true, Some(args)) = (offers_subcommands, args) {
                for word in args.split_whitespace() {
                    if is_name(word) && !subs.iter().any(|s| s.path[0] == word) {
                        subs.push(CommandSpec {
                            path: vec![word.to_owned()],
                            description: description.clone(),
                            ..CommandSpec::default()
                        });
                    }
                }
            }
            continue;
        }
        let choices: Vec<String> = args
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .filter(|w| is_name(w))
            .map(str::to_owned)
            .collect();
        let option = OptionSpec {
            long,
            short,
            value: takes_value.then_some({
                if choices.len() > 1 {
                    ValueKind::Choice(choices)
                } else {
                    ValueKind::String
                }
            }),
            default: None,
            description,
        };
        let target = match seen_from {
            Some(sub) => match subs.iter_mut().find(|s| s.path[0] == sub) {
                Some(spec) => spec,
                None => {
                    subs.push(CommandSpec {
                        path: vec![sub],
                        ..CommandSpec::default()
                    });
                    subs.last_mut().expect("just pushed")
                }
            },
            None => &mut root,
        };
        target.options.push(option);
    }
    root.subcommands = subs
        .iter()
        .map(|s| (s.path[0].clone(), s.description.clone()))
        .collect();
    let mut all = vec![root];
    all.extend(subs);
    all
}

fn is_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphanumeric())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fish_lines_become_subcommands_and_options() {
        let text = r#"
# widget completions
complete -c widget -f
complete -c widget -n '__fish_use_subcommand' -a list -d 'List the widgets'
complete -c widget -n '__fish_use_subcommand' -a 'delete' -d 'Delete a widget'
complete -c widget -s v -l verbose -d 'Say more'
complete -c widget -l color -x -a 'auto always never' -d 'When to colour'
complete -c widget -n '__fish_seen_subcommand_from delete' -l force -d 'Do not ask'
complete -c other -a nope
"#;
        let specs = parse_fish("widget", text);
        assert_eq!(
            specs[0].subcommands,
            vec![
                ("list".to_owned(), "List the widgets".to_owned()),
                ("delete".to_owned(), "Delete a widget".to_owned())
            ]
        );
        assert_eq!(specs[0].options.len(), 2);
        assert_eq!(specs[0].options[0].short, Some('v'));
        assert_eq!(
            specs[0].options[1].value,
            Some(ValueKind::Choice(vec![
                "auto".into(),
                "always".into(),
                "never".into()
            ]))
        );
        let delete = specs.iter().find(|s| s.path == ["delete"]).unwrap();
        assert_eq!(delete.options[0].long.as_deref(), Some("force"));
        assert_eq!(specs.len(), 3);
    }
}
