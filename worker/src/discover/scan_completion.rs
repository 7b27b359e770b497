//! Shell completion files: fish's `complete -c CMD …` lines, which say in
//! one line each what a command takes. Subcommands are the words of `-a`
//! offered while no subcommand is given yet (`-n __fish_use_subcommand`, or
//! `not __fish_seen_subcommand_from …`); options (`-s`, `-l`, `-o`) belong
//! to the subcommand named in `__fish_seen_subcommand_from X`, else to the
//! command; `-r`/`-x` make an option take a value, whose choices are its
//! `-a` words.
//!
//! zsh `_cmd` files ([`zsh`]) and bash completion files ([`bash`]) are
//! programs rather than tables: what they state plainly is read (see each).
//!
//! Where each shell looks: fish in `~/.config/fish/completions`,
//! `~/.local/share/fish/vendor_completions.d` and `<data>/fish/…`; zsh in
//! `<data>/zsh/vendor-completions`, `<data>/zsh/site-functions` and
//! `<data>/zsh/functions/Completion/*`; bash in
//! `~/.local/share/bash-completion/completions` and
//! `<data>/bash-completion/completions` (bash-completion's own lookup), and
//! `/etc/bash_completion.d`; `<data>` is each directory of `XDG_DATA_DIRS`
//! (default `/usr/local/share:/usr/share`). A worker given its own
//! `XDG_DATA_DIRS` (a test) sees only those, and no `/etc`.

pub mod bash;
pub mod zsh;

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

/// The shared-data directories: `XDG_DATA_DIRS`, or its default.
fn data_dirs(data_dirs: Option<&str>) -> impl Iterator<Item = &Path> {
    data_dirs
        .filter(|d| !d.is_empty())
        .unwrap_or("/usr/local/share:/usr/share")
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(Path::new)
}

/// Where zsh completion functions are, for `XDG_DATA_DIRS` `data`.
pub fn zsh_dirs(data: Option<&str>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in data_dirs(data) {
        dirs.push(dir.join("zsh/vendor-completions"));
        dirs.push(dir.join("zsh/site-functions"));
        // zsh's own: Completion/Unix, Completion/Linux, Completion/Zsh…
        if let Ok(entries) = std::fs::read_dir(dir.join("zsh/functions/Completion")) {
            let mut subdirs: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            subdirs.sort();
            dirs.extend(subdirs);
        }
    }
    dirs
}

/// Where bash-completion looks, for a user whose home is `home` and whose
/// `XDG_DATA_DIRS` is `data`.
pub fn bash_dirs(home: Option<&Path>, data: Option<&str>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = home {
        dirs.push(home.join(".local/share/bash-completion/completions"));
    }
    dirs.extend(data_dirs(data).map(|d| d.join("bash-completion/completions")));
    if data.is_none_or(str::is_empty) {
        dirs.push(PathBuf::from("/etc/bash_completion.d"));
    }
    dirs
}

/// The completion file of `name` in `dirs`, first found.
pub fn find(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(format!("{name}.fish")))
        .find(|p| p.is_file())
}

/// The zsh completion function of `name` in `dirs` (`_name`, whose
/// `#compdef` line names it), first found, with its text.
pub fn find_zsh(name: &str, dirs: &[PathBuf]) -> Option<(PathBuf, std::io::Result<String>)> {
    dirs.iter()
        .map(|d| d.join(format!("_{name}")))
        .filter(|p| p.is_file())
        .map(|p| {
            let text = read_text(&p);
            (p, text)
        })
        .find(|(_, text)| match text {
            Ok(text) => zsh::completes(name, text),
            Err(_) => true,
        })
}

/// The bash completion file of `name` in `dirs` (`name`, `name.bash`,
/// `_name`), first found.
pub fn find_bash(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .flat_map(|d| {
            [
                d.join(name),
                d.join(format!("{name}.bash")),
                d.join(format!("_{name}")),
            ]
        })
        .find(|p| p.is_file())
}

/// Largest completion file read: git's bash completion, the largest on
/// this machine, is 80 KB.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A completion file's text, at most [`MAX_FILE_BYTES`].
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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

pub(crate) fn is_name(word: &str) -> bool {
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

#[cfg(test)]
mod real_files {
    //! Completion files as Debian ships them, captured from this machine
    //! into `tests/fixtures/completion` (curl, systemd, apt, bsdextrautils,
    //! redis-tools).
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/completion")
                .join(name),
        )
        .unwrap()
    }

    fn subcommands(specs: &[CommandSpec]) -> Vec<&str> {
        specs[0]
            .subcommands
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    fn option<'a>(spec: &'a CommandSpec, long: &str) -> &'a OptionSpec {
        spec.options
            .iter()
            .find(|o| o.long.as_deref() == Some(long))
            .unwrap_or_else(|| panic!("no --{long} in {:?}", spec.options))
    }

    #[test]
    fn zsh_arguments_of_curl() {
        let text = fixture("zsh/_curl");
        assert!(zsh::completes("curl", &text));
        assert!(!zsh::completes("wget", &text));
        let specs = zsh::parse("curl", &text);
        assert_eq!(specs.len(), 1, "curl has no subcommands");
        let curl = &specs[0];
        assert!(curl.options.len() > 200, "{}", curl.options.len());
        let request = option(curl, "request");
        assert_eq!(request.short, Some('X'));
        assert_eq!(request.description, "Specify request method to use");
        assert_eq!(
            request.value,
            Some(ValueKind::Choice(
                ["DELETE", "GET", "HEAD", "POST", "PUT"]
                    .map(String::from)
                    .to_vec()
            ))
        );
        assert_eq!(option(curl, "silent").value, None);
        assert_eq!(option(curl, "silent").short, Some('s'));
        // `*:URL:_urls`: any number of URLs, none required.
        assert_eq!(curl.positionals.len(), 1, "{:?}", curl.positionals);
        assert!(!curl.positionals[0].required);
    }

    #[test]
    fn zsh_describe_arrays_of_systemd() {
        let specs = zsh::parse("hostnamectl", &fixture("zsh/_hostnamectl"));
        assert_eq!(
            subcommands(&specs),
            vec![
                "status",
                "hostname",
                "icon-name",
                "chassis",
                "deployment",
                "location"
            ]
        );
        assert_eq!(specs[0].subcommands[0].1, "Show current hostname settings");
        let host = option(&specs[0], "host");
        assert_eq!((host.short, host.value.is_some()), (Some('H'), true));
        assert_eq!(option(&specs[0], "static").value, None);
        // The subcommand dispatch (`*::hostnamectl commands:…`) is no argument.
        assert!(
            specs[0].positionals.is_empty(),
            "{:?}",
            specs[0].positionals
        );

        // systemctl's commands are in several arrays (`unit_commands`…).
        let specs = zsh::parse("systemctl", &fixture("zsh/_systemctl"));
        let subs = subcommands(&specs);
        for expected in [
            "start",
            "stop",
            "list-units",
            "enable",
            "daemon-reload",
            "poweroff",
        ] {
            assert!(subs.contains(&expected), "{expected} missing from {subs:?}");
        }
        assert!(subs.len() > 60 && subs.len() < 120, "{}", subs.len());
        assert_eq!(
            option(&specs[0], "kill-whom").value,
            Some(ValueKind::Choice(
                ["main", "control", "all"].map(String::from).to_vec()
            ))
        );
        let specs = zsh::parse("timedatectl", &fixture("zsh/_timedatectl"));
        assert!(
            subcommands(&specs).contains(&"set-timezone"),
            "{:?}",
            subcommands(&specs)
        );
    }

    #[test]
    fn bash_word_lists_of_apt() {
        let specs = bash::parse("apt", &fixture("bash/apt"));
        let subs = subcommands(&specs);
        for expected in [
            "list",
            "search",
            "install",
            "remove",
            "purge",
            "full-upgrade",
            "policy",
        ] {
            assert!(subs.contains(&expected), "{expected} missing from {subs:?}");
        }
        assert!(!subs.contains(&"help"));
        // Options offered inside `case $command in install|…)` are theirs.
        let install = specs.iter().find(|s| s.path == ["install"]).unwrap();
        for expected in ["fix-broken", "no-install-recommends", "download-only"] {
            assert!(
                install
                    .options
                    .iter()
                    .any(|o| o.long.as_deref() == Some(expected)),
                "--{expected} missing from install: {:?}",
                install.options
            );
        }
        let list = specs.iter().find(|s| s.path == ["list"]).unwrap();
        assert!(
            list.options
                .iter()
                .any(|o| o.long.as_deref() == Some("upgradable"))
        );
        // `case $prev in -t|--target-release)`: takes a value.
        let target = specs[0]
            .options
            .iter()
            .chain(install.options.iter())
            .find(|o| o.long.as_deref() == Some("target-release"))
            .unwrap();
        assert!(target.value.is_some());
    }

    #[test]
    fn bash_verbs_and_options_of_systemd() {
        let specs = bash::parse("hostnamectl", &fixture("bash/hostnamectl"));
        let mut subs = subcommands(&specs);
        subs.sort();
        assert_eq!(
            subs,
            vec![
                "chassis",
                "deployment",
                "hostname",
                "icon-name",
                "location",
                "status"
            ]
        );
        // [ARG]='-H --host …': options with a value; the chassis types are
        // arguments of a subcommand, not subcommands.
        assert!(option(&specs[0], "host").value.is_some());
        assert!(option(&specs[0], "json").value.is_some());
        assert_eq!(option(&specs[0], "static").value, None);
        let specs = bash::parse("systemctl", &fixture("bash/systemctl"));
        let subs = subcommands(&specs);
        for expected in ["start", "stop", "daemon-reload", "list-units", "isolate"] {
            assert!(subs.contains(&expected), "{expected} missing from {subs:?}");
        }
        assert!(!subs.contains(&"desktop"));
    }

    #[test]
    fn bash_lists_of_a_subcommand_function_stay_its_own() {
        // git's completion computes its commands by running git; the word
        // lists it states belong to subcommands (`_git_bisect`'s "start bad
        // good…"), and were taken for git's own before.
        let specs = bash::parse("git", &fixture("bash/git"));
        let subs = subcommands(&specs);
        for bisect in ["start", "bad", "good", "visualize"] {
            assert!(!subs.contains(&bisect), "{bisect} in {subs:?}");
        }
    }

    #[test]
    fn bash_first_word_lists_and_util_linux_values() {
        // redis-cli offers its commands at the first word (COMP_CWORD -eq 1).
        let specs = bash::parse("redis-cli", &fixture("bash/redis-cli"));
        let subs = subcommands(&specs);
        assert_eq!(subs.len(), 72, "{subs:?}");
        assert!(subs.contains(&"get") && subs.contains(&"zrange"));
        // column has no subcommands; `compgen -W "number"` after an option
        // says its value is a number.
        let specs = bash::parse("column", &fixture("bash/column"));
        assert_eq!(subcommands(&specs), Vec::<&str>::new());
        assert_eq!(
            option(&specs[0], "output-width").value,
            Some(ValueKind::Integer)
        );
        assert_eq!(
            option(&specs[0], "separator").value,
            Some(ValueKind::String)
        );
        assert_eq!(option(&specs[0], "json").value, None);
        assert!(specs[0].options.len() > 20, "{:?}", specs[0].options);
    }

    #[test]
    fn files_are_found_where_each_shell_looks() {
        let data = tempfile::tempdir().unwrap();
        let root = data.path();
        std::fs::create_dir_all(root.join("zsh/functions/Completion/Unix")).unwrap();
        std::fs::create_dir_all(root.join("bash-completion/completions")).unwrap();
        std::fs::write(
            root.join("zsh/functions/Completion/Unix/_tool"),
            "#compdef tool other\n_arguments '-v[verbose]'\n",
        )
        .unwrap();
        // A helper whose name is a command's is not that command's completion.
        std::fs::write(
            root.join("zsh/functions/Completion/Unix/_helper"),
            "_helper() {}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("bash-completion/completions/tool"),
            "complete -W 'a b' tool\n",
        )
        .unwrap();
        let data = root.display().to_string();
        let zsh = zsh_dirs(Some(&data));
        let (path, text) = find_zsh("tool", &zsh).unwrap();
        assert!(path.ends_with("Unix/_tool") && text.is_ok());
        assert!(find_zsh("helper", &zsh).is_none());
        let bash = bash_dirs(None, Some(&data));
        assert!(!bash.iter().any(|d| d.starts_with("/etc")), "{bash:?}");
        let found = find_bash("tool", &bash).unwrap();
        let specs = bash::parse("tool", &read_text(&found).unwrap());
        assert_eq!(subcommands(&specs), vec!["a", "b"]);
    }
}
