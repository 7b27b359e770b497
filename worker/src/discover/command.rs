//! What every source finds, in one shape ([`CommandSpec`]: a command or
//! subcommand, its options and positional arguments), and how that becomes
//! a capability proposal: a template over the tool's arguments, typed by an
//! args schema, with a danger level.
//!
//! The template model runs one argv entry per token and never drops one
//! (an empty rendering is an empty argument), so a capability can only
//! carry arguments that are always passed:
//! - required positionals become `{{name}}` placeholders, typed `integer`
//!   (a numeric metavar: `N`, `NUM`, `COUNT`…), an `enum` (choices such as
//!   `{a,b,c}`), else `string`;
//! - options with choices and a documented default become
//!   `--opt={{ opt | default("…") }}` (an enum, not required): passing the
//!   default is the same as leaving the option out;
//! - boolean flags, and optional positionals, cannot be left out of such a
//!   template, so they are not placeholders: the description lists the
//!   flags, and a person adds the variants they need.

use serde_json::{Map, Value, json};

use amon_proto::v1::{CapabilityProposal, CapabilitySource, InteractionMode};

/// The kind of value an argument takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ValueKind {
    /// Free text (a path, a pattern, a name).
    #[default]
    String,
    /// A whole number.
    Integer,
    /// One of these words.
    Choice(Vec<String>),
}

/// An option of a command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionSpec {
    /// `--long`, without the dashes.
    pub long: Option<String>,
    /// `-s`, without the dash.
    pub short: Option<char>,
    /// What its value is; `None` for a flag.
    pub value: Option<ValueKind>,
    /// The value used when the option is not given, if documented.
    pub default: Option<String>,
    /// One line of description.
    pub description: String,
}

/// A positional argument.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Positional {
    /// Its name, as the help text calls it (`PATH`, `<pattern>`).
    pub name: String,
    /// Whether the command needs it.
    pub required: bool,
    /// Whether it may be repeated (`FILE...`).
    pub repeated: bool,
    /// What it takes.
    pub value: ValueKind,
}

/// A command or subcommand as a source describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSpec {
    /// The subcommand chain below the binary (empty: the binary itself).
    pub path: Vec<String>,
    /// One line of description.
    pub description: String,
    /// Its options.
    pub options: Vec<OptionSpec>,
    /// Its positionals, in order.
    pub positionals: Vec<Positional>,
    /// Subcommands listed under it (name, description), not yet described.
    pub subcommands: Vec<(String, String)>,
}

/// Most placeholders one capability takes: enough for any real invocation,
/// few enough that the proposal stays readable.
const MAX_PLACEHOLDERS: usize = 8;

/// A placeholder's name from a metavar: `<pattern>` → `pattern`,
/// `FILE...` → `file`, `[path]` → `path`; a valid identifier, never empty.
pub fn placeholder_name(raw: &str) -> String {
    let mut name: String = raw
        .trim_matches(|c: char| "<>[]{}.".contains(c))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    name = name.trim_matches('_').to_owned();
    if name.is_empty() {
        name = "arg".into();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "arg_");
    }
    name
}

/// What a metavar says its value is.
pub fn value_kind(metavar: &str) -> ValueKind {
    let inner = metavar.trim_matches(|c: char| "<>[].".contains(c));
    if let Some(choices) = inner.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        let words: Vec<String> = choices
            .split([',', '|'])
            .map(|s| s.trim().to_owned())
            .collect();
        if words.len() > 1 && words.iter().all(|w| is_word(w)) {
            return ValueKind::Choice(words);
        }
    }
    if inner.contains('|') {
        let words: Vec<String> = inner.split('|').map(|s| s.trim().to_owned()).collect();
        if words.len() > 1 && words.iter().all(|w| is_word(w)) {
            return ValueKind::Choice(words);
        }
    }
    let upper = inner.to_ascii_uppercase();
    let numeric = [
        "N", "NUM", "NUMBER", "COUNT", "INT", "INTEGER", "LINES", "JOBS", "DEPTH", "SECONDS",
        "SECS", "BYTES", "SIZE", "PORT", "LEVEL", "MAX", "MIN", "SECS",
    ];
    if numeric.contains(&upper.as_str()) || upper.ends_with("_NUM") || upper.ends_with("-NUM") {
        return ValueKind::Integer;
    }
    ValueKind::String
}

fn is_word(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 32
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
}

fn schema_of(value: &ValueKind, description: &str) -> Value {
    let mut schema = match value {
        ValueKind::String => json!({"type": "string"}),
        ValueKind::Integer => json!({"type": "integer"}),
        ValueKind::Choice(words) => json!({"type": "string", "enum": words}),
    };
    if !description.is_empty() {
        schema["description"] = Value::from(description);
    }
    schema
}

/// A capability key from a subcommand chain: lowercase letters, digits, '-',
/// '_' and '.', starting with a letter or digit; `run` for the binary itself.
pub fn capability_key(path: &[String]) -> Option<String> {
    if path.is_empty() {
        return Some("run".into());
    }
    let key: String = path
        .join("-")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let key = key.trim_start_matches(['-', '_', '.']).to_owned();
    (!key.is_empty() && key.len() <= 63).then_some(key)
}

/// The proposal for one command of `binary`, from `source`.
pub fn to_capability(
    binary: &str,
    command: &CommandSpec,
    source: CapabilitySource,
) -> Option<CapabilityProposal> {
    let key = capability_key(&command.path)?;
    let mut tokens: Vec<String> = command.path.clone();
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut used = std::collections::HashSet::new();
    for positional in command.positionals.iter().filter(|p| p.required) {
        if properties.len() >= MAX_PLACEHOLDERS {
            break;
        }
        let mut name = placeholder_name(&positional.name);
        while !used.insert(name.clone()) {
            name.push('_');
        }
        tokens.push(format!("{{{{{name}}}}}"));
        properties.insert(name.clone(), schema_of(&positional.value, ""));
        required.push(Value::from(name));
    }
    for option in &command.options {
        // Only a choice with a documented default: passing the default
        // explicitly is then the same as leaving the option out. A free
        // value's "default" is too often something else (the value a bare
        // flag takes, a computed value).
        let (Some(value @ ValueKind::Choice(_)), Some(default), Some(long)) =
            (&option.value, &option.default, &option.long)
        else {
            continue;
        };
        if properties.len() >= MAX_PLACEHOLDERS {
            break;
        }
        if !matches!(value, ValueKind::Choice(words) if words.contains(default)) {
            continue;
        }
        let mut name = placeholder_name(long);
        while !used.insert(name.clone()) {
            name.push('_');
        }
        let quoted = serde_json::to_string(default).ok()?;
        tokens.push(format!("--{long}={{{{ {name} | default({quoted}) }}}}"));
        let mut schema = schema_of(value, &option.description);
        schema["default"] = Value::from(default.as_str());
        properties.insert(name, schema);
    }
    let flags: Vec<String> = command
        .options
        .iter()
        .filter(|o| o.value.is_none())
        .take(12)
        .map(|o| match (&o.long, o.short) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => String::new(),
        })
        .filter(|f| !f.is_empty())
        .collect();
    let mut description = command.description.trim().to_owned();
    if !flags.is_empty() {
        if !description.is_empty() {
            description.push_str(". ");
        }
        description.push_str(&format!("Flags: {}", flags.join(" ")));
    }
    let label = if command.path.is_empty() {
        binary.to_owned()
    } else {
        format!("{binary} {}", command.path.join(" "))
    };
    let danger = danger(binary, &command.path, &command.description);
    let mut schema =
        json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        schema["required"] = Value::from(required);
    }
    Some(CapabilityProposal {
        key,
        label,
        description: Some(description).filter(|d| !d.is_empty()),
        source: source as i32,
        interaction_mode: InteractionMode::Template as i32,
        command_tokens: tokens,
        prompt_template: None,
        args_schema: Some(super::json_to_struct(&schema)),
        danger_level: danger.level,
        requires_approval: danger.level >= 2,
        danger_reason: danger.reason,
    })
}

/// What the danger heuristic decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Danger {
    /// 0 safe, 1 caution, 2 dangerous, 3 destructive.
    pub level: i32,
    /// Why (empty when safe).
    pub reason: String,
}

/// Binaries whose every use can destroy data or stop the machine.
const DESTRUCTIVE_BINARIES: &[&str] = &[
    "rm", "rmdir", "dd", "shred", "wipefs", "fdisk", "sfdisk", "cfdisk", "parted", "mkswap",
    "shutdown", "reboot", "halt", "poweroff", "kill", "killall", "pkill", "truncate", "unlink",
];
/// Binaries that run other commands with more privilege.
const PRIVILEGE_BINARIES: &[&str] = &["sudo", "su", "doas", "pkexec", "runuser", "setpriv"];
/// Subcommand words that delete, overwrite or rewrite history.
const DESTRUCTIVE_WORDS: &[&str] = &[
    "delete",
    "del",
    "remove",
    "rm",
    "purge",
    "prune",
    "drop",
    "destroy",
    "wipe",
    "erase",
    "format",
    "reset",
    "clean",
    "uninstall",
    "kill",
    "rmi",
    "truncate",
    "nuke",
    // Servers' own commands that empty or stop them (redis-cli's flushall,
    // flushdb and shutdown were proposed as harmless on this machine).
    "flushall",
    "flushdb",
    "shutdown",
    "reboot",
    "poweroff",
    "halt",
    "unlink",
];
/// Subcommand words that change things beyond the working directory.
const CAUTION_WORDS: &[&str] = &[
    "push", "publish", "deploy", "install", "upgrade", "update", "apply", "release", "upload",
    "send", "commit", "merge", "rebase", "mv", "move", "rename", "restore", "revert", "stop",
    "restart", "login", "logout", "set", "write", "edit", "checkout", "switch", "init",
];

/// The danger heuristic: a binary that destroys or escalates by nature, a
/// subcommand that deletes or rewrites, force-pushing, `rm -rf` shapes, or a
/// description that says so.
pub fn danger(binary: &str, path: &[String], description: &str) -> Danger {
    let name = binary.rsplit('/').next().unwrap_or(binary);
    if name.starts_with("mkfs") || DESTRUCTIVE_BINARIES.contains(&name) {
        return Danger {
            level: 3,
            reason: format!("{name} deletes data, formats disks or stops processes by design"),
        };
    }
    if PRIVILEGE_BINARIES.contains(&name) {
        return Danger {
            level: 3,
            reason: format!("{name} runs commands with another user's privileges"),
        };
    }
    let words: Vec<String> = path.iter().map(|w| w.to_ascii_lowercase()).collect();
    if let Some(word) = words
        .iter()
        .find(|w| DESTRUCTIVE_WORDS.contains(&w.as_str()))
    {
        return Danger {
            level: 2,
            reason: format!("the subcommand {word:?} deletes, resets or rewrites"),
        };
    }
    let text = description.to_ascii_lowercase();
    for (needle, why) in [
        ("force-push", "force-pushes"),
        ("--force", "forces"),
        ("permanently", "acts permanently"),
        ("irreversib", "is irreversible"),
        ("overwrite", "overwrites"),
        ("delete", "deletes"),
        ("remove", "removes"),
        ("destroy", "destroys"),
    ] {
        if text.contains(needle) {
            return Danger {
                level: 2,
                reason: format!("its description says it {why}"),
            };
        }
    }
    if let Some(word) = words.iter().find(|w| CAUTION_WORDS.contains(&w.as_str())) {
        return Danger {
            level: 1,
            reason: format!("the subcommand {word:?} changes state beyond reading"),
        };
    }
    Danger {
        level: 0,
        reason: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metavars_become_typed_placeholders() {
        assert_eq!(placeholder_name("<pattern>"), "pattern");
        assert_eq!(placeholder_name("FILE..."), "file");
        assert_eq!(placeholder_name("[PATH]"), "path");
        assert_eq!(placeholder_name("2nd"), "arg_2nd");
        assert_eq!(value_kind("NUM"), ValueKind::Integer);
        assert_eq!(
            value_kind("{always,never,auto}"),
            ValueKind::Choice(vec!["always".into(), "never".into(), "auto".into()])
        );
        assert_eq!(value_kind("<when>"), ValueKind::String);
    }

    #[test]
    fn a_subcommand_becomes_a_runnable_template() {
        let command = CommandSpec {
            path: vec!["grep".into()],
            description: "Print lines matching a pattern".into(),
            options: vec![
                OptionSpec {
                    long: Some("color".into()),
                    value: Some(ValueKind::Choice(vec!["always".into(), "never".into()])),
                    default: Some("never".into()),
                    ..Default::default()
                },
                OptionSpec {
                    long: Some("count".into()),
                    short: Some('c'),
                    ..Default::default()
                },
            ],
            positionals: vec![
                Positional {
                    name: "<pattern>".into(),
                    required: true,
                    ..Default::default()
                },
                Positional {
                    name: "[<path>...]".into(),
                    required: false,
                    repeated: true,
                    ..Default::default()
                },
            ],
            subcommands: vec![],
        };
        let cap = to_capability("git", &command, CapabilitySource::ScanHelp).unwrap();
        assert_eq!(cap.key, "grep");
        assert_eq!(cap.label, "git grep");
        assert_eq!(
            cap.command_tokens,
            vec![
                "grep",
                "{{pattern}}",
                "--color={{ color | default(\"never\") }}"
            ]
        );
        let schema = super::super::struct_to_json(cap.args_schema.as_ref().unwrap());
        assert_eq!(schema["required"], json!(["pattern"]));
        assert_eq!(
            schema["properties"]["color"]["enum"],
            json!(["always", "never"])
        );
        assert_eq!(
            cap.description.as_deref(),
            Some("Print lines matching a pattern. Flags: --count")
        );
        assert_eq!(cap.danger_level, 0);
    }

    #[test]
    fn the_danger_heuristic_says_why() {
        assert_eq!(danger("/usr/bin/rm", &[], "").level, 3);
        assert_eq!(danger("sudo", &[], "").level, 3);
        assert_eq!(danger("mkfs.ext4", &[], "").level, 3);
        let d = danger("docker", &["rmi".into()], "Remove one or more images");
        assert_eq!((d.level, d.reason.contains("rmi")), (2, true));
        assert_eq!(
            danger("git", &["push".into()], "Update remote refs").level,
            1
        );
        assert_eq!(
            danger(
                "git",
                &["branch".into()],
                "List, create, or delete branches"
            )
            .level,
            2
        );
        assert_eq!(danger("git", &["log".into()], "Show commit logs").level, 0);
        // A server's client whose subcommands empty or stop the server.
        for word in ["flushall", "FLUSHDB", "shutdown"] {
            let d = danger("redis-cli", &[word.into()], "");
            assert_eq!(d.level, 2, "{word}: {d:?}");
        }
        assert_eq!(danger("redis-cli", &["get".into()], "").level, 0);
    }
}
