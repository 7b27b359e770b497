//! Fig completion specs (the `@withfig/autocomplete` format) as JSON files,
//! `<name>.json`, in the directory the worker was given
//! (`amon-worker --fig-specs DIR`): a spec names its subcommands (each with
//! its own options, args and subcommands), options (`name` a string or a
//! list, `args` when it takes a value) and args (`isOptional`,
//! `isVariadic`, `suggestions` as choices). Fig's specs are TypeScript
//! upstream; export them to JSON to use them here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::command::{
    CommandSpec, OptionSpec, Positional, ValueKind, placeholder_name, value_kind,
};

/// Deepest subcommand chain read.
const MAX_DEPTH: usize = 3;
/// Most commands read from one spec.
const MAX_COMMANDS: usize = 300;

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Subcommand {
    name: Names,
    description: Option<String>,
    subcommands: Vec<Subcommand>,
    options: Vec<FigOption>,
    args: Args,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct FigOption {
    name: Names,
    description: Option<String>,
    args: Args,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Arg {
    name: Option<String>,
    is_optional: bool,
    is_variadic: bool,
    suggestions: Vec<Suggestion>,
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Suggestion {
    Name(String),
    Object { name: Names },
}

#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum Names {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn all(&self) -> Vec<&str> {
        match self {
            Names::None => Vec::new(),
            Names::One(n) => vec![n.as_str()],
            Names::Many(ns) => ns.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
enum Args {
    #[default]
    None,
    One(Arg),
    Many(Vec<Arg>),
}

impl Args {
    fn all(&self) -> Vec<&Arg> {
        match self {
            Args::None => Vec::new(),
            Args::One(a) => vec![a],
            Args::Many(v) => v.iter().collect(),
        }
    }
}

/// The spec file of `name` in `dir`.
pub fn find(name: &str, dir: &Path) -> Option<PathBuf> {
    let path = dir.join(format!("{name}.json"));
    path.is_file().then_some(path)
}

fn kind_of(arg: &Arg) -> ValueKind {
    let choices: Vec<String> = arg
        .suggestions
        .iter()
        .flat_map(|s| match s {
            Suggestion::Name(n) => vec![n.clone()],
            Suggestion::Object { name } => name
                .all()
                .first()
                .map(|n| vec![n.to_string()])
                .unwrap_or_default(),
        })
        .collect();
    if choices.len() > 1 {
        ValueKind::Choice(choices)
    } else {
        value_kind(arg.name.as_deref().unwrap_or(""))
    }
}

/// The commands a spec describes (`result[0]` is the command itself).
pub fn parse(text: &str) -> Result<Vec<CommandSpec>, String> {
    let root: Subcommand =
        serde_json::from_str(text).map_err(|e| format!("not a Fig spec: {e}"))?;
    let mut out = Vec::new();
    walk(&root, Vec::new(), &mut out);
    Ok(out)
}

fn walk(command: &Subcommand, path: Vec<String>, out: &mut Vec<CommandSpec>) {
    if out.len() >= MAX_COMMANDS {
        return;
    }
    let mut spec = CommandSpec {
        path: path.clone(),
        description: command.description.clone().unwrap_or_default(),
        ..CommandSpec::default()
    };
    for option in &command.options {
        let names = option.name.all();
        let long = names
            .iter()
            .find_map(|n| n.strip_prefix("--"))
            .map(str::to_owned);
        let short = names
            .iter()
            .find_map(|n| {
                n.strip_prefix('-')
                    .filter(|s| s.len() == 1 && !s.starts_with('-'))
            })
            .and_then(|s| s.chars().next());
        let arg = option.args.all().into_iter().next();
        spec.options.push(OptionSpec {
            long,
            short,
            value: arg.map(kind_of),
            default: arg.and_then(|a| a.default.clone()),
            description: option.description.clone().unwrap_or_default(),
        });
    }
    for arg in command.args.all() {
        spec.positionals.push(Positional {
            name: placeholder_name(arg.name.as_deref().unwrap_or("arg")),
            required: !arg.is_optional,
            repeated: arg.is_variadic,
            value: kind_of(arg),
        });
    }
    spec.subcommands = command
        .subcommands
        .iter()
        .filter_map(|s| {
            Some((
                s.name.all().first()?.to_string(),
                s.description.clone().unwrap_or_default(),
            ))
        })
        .collect();
    out.push(spec);
    if path.len() < MAX_DEPTH {
        for sub in &command.subcommands {
            if let Some(name) = sub.name.all().first() {
                let mut chain = path.clone();
                chain.push(name.to_string());
                walk(sub, chain, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fig_spec_becomes_commands() {
        let text = r#"{
          "name": "widget",
          "description": "Manage widgets",
          "subcommands": [
            {"name": ["list", "ls"], "description": "List widgets",
             "options": [{"name": ["-f", "--format"], "description": "Output format",
                          "args": {"name": "format", "suggestions": ["json", "table"], "default": "table"}}]},
            {"name": "delete", "description": "Delete a widget",
             "args": {"name": "id"},
             "subcommands": [{"name": "all", "description": "Delete every widget"}]}
          ],
          "options": [{"name": "--verbose", "description": "Say more"}]
        }"#;
        let specs = parse(text).unwrap();
        let paths: Vec<String> = specs.iter().map(|s| s.path.join(" ")).collect();
        assert_eq!(paths, vec!["", "list", "delete", "delete all"]);
        let format = &specs[1].options[0];
        assert_eq!(
            (format.long.as_deref(), format.short),
            (Some("format"), Some('f'))
        );
        assert_eq!(
            format.value,
            Some(ValueKind::Choice(vec!["json".into(), "table".into()]))
        );
        assert_eq!(format.default.as_deref(), Some("table"));
        assert_eq!(specs[2].positionals[0].name, "id");
        assert!(specs[2].positionals[0].required);
        assert!(parse("[1, 2]").is_err());
    }
}
