//! PATH: which executables there are, what version each says it is, which
//! Debian package installed it, and what kind of tool it is.
//!
//! A directory of PATH is read once; a file counts when it is a regular
//! file (after symlinks) with an execute bit. The first of a name on PATH
//! wins (as in a shell). Names resolving to one file are told apart later,
//! by their versions (see `super::scan`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::probe::{self, Limits, Probe};

/// A binary found on PATH (or named by the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The name it is called by (the file name on PATH).
    pub name: String,
    /// Where PATH has it.
    pub path: PathBuf,
    /// The file it resolves to (symlinks followed).
    pub resolved: PathBuf,
}

fn executable(path: &Path) -> Option<PathBuf> {
    let resolved = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&resolved).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(resolved)
}

/// The executables of `path_var`, or of `names` (names looked up on it,
/// absolute paths as they are). Names not found are returned apart.
pub fn candidates(path_var: Option<&OsString>, names: &[String]) -> (Vec<Candidate>, Vec<String>) {
    let dirs: Vec<PathBuf> = path_var
        .map(|p| {
            std::env::split_paths(p)
                .filter(|d| d.is_absolute())
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut seen_names = HashSet::new();
    let mut keep = |name: String, path: PathBuf, resolved: PathBuf, found: &mut Vec<Candidate>| {
        if seen_names.insert(name.clone()) {
            found.push(Candidate {
                name,
                path,
                resolved,
            });
        }
    };
    if names.is_empty() {
        for dir in &dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<(String, PathBuf)> = entries
                .flatten()
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
                .collect();
            files.sort();
            for (name, path) in files {
                if let Some(resolved) = executable(&path) {
                    keep(name, path, resolved, &mut found);
                }
            }
        }
    } else {
        for name in names {
            let hit = if name.starts_with('/') {
                let path = PathBuf::from(name);
                executable(&path).map(|r| (path, r))
            } else {
                dirs.iter()
                    .map(|d| d.join(name))
                    .find_map(|p| executable(&p).map(|r| (p, r)))
            };
            match hit {
                Some((path, resolved)) => {
                    let file_name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| name.clone());
                    keep(file_name, path, resolved, &mut found)
                }
                None => missing.push(name.clone()),
            }
        }
    }
    (found, missing)
}

/// What a version probe learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionProbe {
    /// A version line.
    Found(String),
    /// It answered, but with nothing that looks like a version.
    None,
    /// It misbehaved: the probe and what happened.
    Failed(&'static str, Probe),
}

/// A dotted number standing alone (`2.39.5`, `v1.2`, `(1.0)`), not part of
/// a time (`21:29:53.524`) or a longer token.
static VERSION_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(v/_-])\d+\.\d+(?:\.\d+)*(?:[\s),;:+~_-]|$)").expect("version pattern")
});
/// Lines that are complaints, not versions.
static NOT_A_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)error|warning|unknown|invalid|usage|fail|cannot|can't|not found|\d+:\d+:\d+")
        .expect("complaint pattern")
});

/// The version line of an output: the first of its first lines with a
/// dotted number that is not an error message or a log line.
pub fn version_line(output: &str) -> Option<String> {
    output
        .lines()
        .take(5)
        .map(str::trim)
        .find(|l| l.len() <= 200 && VERSION_NUMBER.is_match(l) && !NOT_A_VERSION.is_match(l))
        .map(str::to_owned)
}

/// `--version`, then `-V`, stopping at the first that prints a version; a
/// probe that hangs, floods or crashes ends the trying (the binary is
/// recorded as such, and nothing more is asked of it). A bare `version`
/// is asked only of tools whose help lists it as a subcommand (see
/// `super::examine`): to a tool that takes a command to run
/// (`pg_virtualenv`, `amqp-consume`), `version` is that command.
pub async fn version(
    binary: &Path,
    path_var: Option<&OsString>,
    cwd: &Path,
    limits: Limits,
) -> VersionProbe {
    for args in [["--version"], ["-V"]] {
        match probe::run(binary, &args, path_var, cwd, limits).await {
            Probe::Exited { output, .. } => {
                if let Some(line) = version_line(&output) {
                    return VersionProbe::Found(line);
                }
            }
            Probe::Unstartable(e) => {
                return VersionProbe::Failed(args[0], Probe::Unstartable(e));
            }
            other => return VersionProbe::Failed(args[0], other),
        }
    }
    VersionProbe::None
}

/// The Debian package and section of each file, from `dpkg -S` (one call
/// for all files) and `dpkg-query` (one for all packages). Empty where
/// there is no dpkg.
pub async fn packages(
    files: &[PathBuf],
    cwd: &Path,
    path_var: Option<&OsString>,
) -> HashMap<PathBuf, (String, Option<String>)> {
    let mut out = HashMap::new();
    let Some(dpkg) = which("dpkg", path_var) else {
        return out;
    };
    let limits = Limits {
        timeout: std::time::Duration::from_secs(20),
        max_output: 16 * 1024 * 1024,
    };
    let mut owner: HashMap<PathBuf, String> = HashMap::new();
    for chunk in files.chunks(500) {
        let mut args = vec!["-S"];
        let names: Vec<String> = chunk
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        args.extend(names.iter().map(String::as_str));
        if let Probe::Exited { output, .. } = probe::run(&dpkg, &args, path_var, cwd, limits).await
        {
            for line in output.lines() {
                // "coreutils: /usr/bin/ls"; diversions read "diversion by …".
                let Some((packages, file)) = line.split_once(": ") else {
                    continue;
                };
                if packages.starts_with("diversion") {
                    continue;
                }
                let package = packages.split(", ").next().unwrap_or(packages);
                let package = package.split(':').next().unwrap_or(package);
                owner.insert(PathBuf::from(file.trim()), package.to_owned());
            }
        }
    }
    // dpkg records /usr/bin while a merged /usr may resolve through /bin,
    // and the reverse: try both spellings.
    let lookup = |file: &Path| -> Option<String> {
        owner.get(file).cloned().or_else(|| {
            let s = file.to_string_lossy();
            let other = s
                .strip_prefix("/usr")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("/usr{s}"));
            owner.get(Path::new(&other)).cloned()
        })
    };
    let mut sections: HashMap<String, Option<String>> = HashMap::new();
    let mut wanted: Vec<String> = owner.values().cloned().collect();
    wanted.sort();
    wanted.dedup();
    if let (false, Some(query)) = (wanted.is_empty(), which("dpkg-query", path_var)) {
        for chunk in wanted.chunks(500) {
            let mut args = vec!["-W", "-f", "${Package}\\t${Section}\\n"];
            args.extend(chunk.iter().map(String::as_str));
            if let Probe::Exited { output, .. } =
                probe::run(&query, &args, path_var, cwd, limits).await
            {
                for line in output.lines() {
                    if let Some((package, section)) = line.split_once('\t') {
                        let section = section.trim();
                        // "universe/net" → "net": the section, not the archive area.
                        let section = section.rsplit('/').next().unwrap_or(section);
                        sections.insert(
                            package.to_owned(),
                            Some(section.to_owned()).filter(|s| !s.is_empty()),
                        );
                    }
                }
            }
        }
    }
    for file in files {
        if let Some(package) = lookup(file) {
            let section = sections.get(&package).cloned().flatten();
            out.insert(file.clone(), (package, section));
        }
    }
    out
}

/// `name` on `path_var`.
pub fn which(name: &str, path_var: Option<&OsString>) -> Option<PathBuf> {
    path_var.and_then(|p| {
        std::env::split_paths(p)
            .map(|d| d.join(name))
            .find(|p| executable(p).is_some())
    })
}

/// The AI coding agent CLIs the worker knows by name.
pub const AI_AGENTS: &[&str] = &[
    "claude",
    "codex",
    "gemini",
    "aider",
    "cursor-agent",
    "opencode",
    "amp",
    "goose",
];

/// Classifies a tool: `ai-agent` (a known AI CLI), `daemon` (a server
/// program: its name ends in `d` and it lives in an `sbin`, or its package
/// section says so), `shell-util` (coreutils and the like: the shell's own
/// toolbox), else `cli-tool`.
pub fn tool_type(
    name: &str,
    path: &Path,
    package: Option<&str>,
    section: Option<&str>,
) -> &'static str {
    if AI_AGENTS.contains(&name) {
        return "ai-agent";
    }
    const SHELL_PACKAGES: &[&str] = &[
        "coreutils",
        "findutils",
        "grep",
        "sed",
        "gawk",
        "mawk",
        "diffutils",
        "util-linux",
        "bsdutils",
        "bsdextrautils",
        "procps",
        "bash",
        "dash",
        "debianutils",
        "ncurses-bin",
        "gzip",
        "tar",
        "less",
        "sysvinit-utils",
        "login",
        "passwd",
        "hostname",
        "psmisc",
        "busybox",
    ];
    if package.is_some_and(|p| SHELL_PACKAGES.contains(&p)) {
        return "shell-util";
    }
    let in_sbin = path
        .parent()
        .and_then(|d| d.file_name())
        .is_some_and(|d| d == "sbin");
    let daemon_name = name.len() > 2 && name.ends_with('d') && !name.ends_with("ed");
    if daemon_name && (in_sbin || matches!(section, Some("daemons" | "net"))) {
        return "daemon";
    }
    "cli-tool"
}

/// Names never run, even for `--version`, in a whole-PATH scan: programs
/// that act before (or instead of) reading their arguments, or that a stray
/// argument could make act on the machine (`killall5 --version` could be
/// read as a signal to every process; an old `halt` ignores its arguments).
/// Named explicitly, they are probed like any other.
const NEVER_PROBED: &[&str] = &[
    "reboot",
    "shutdown",
    "halt",
    "poweroff",
    "init",
    "telinit",
    "runlevel",
    "systemctl",
    "kexec",
    "sulogin",
    "agetty",
    "getty",
    "login",
    "su",
    "sudo",
    "doas",
    "pkexec",
    "passwd",
    "chsh",
    "chfn",
    "newgrp",
    "sg",
    "vipw",
    "vigr",
    "yes",
    "xdg-open",
    "sensible-browser",
    "x-www-browser",
    "startx",
    "xinit",
    "amon-worker",
    "amon-server",
    "killall5",
    "wipefs",
    "sfdisk",
    "fdisk",
    "cfdisk",
    "parted",
    "blkdiscard",
    "hdparm",
    "losetup",
    "start-stop-daemon",
    "update-rc.d",
    "invoke-rc.d",
    "service",
    "nologin",
    "reset",
    "clear",
    "tset",
];
/// Name prefixes never run in a whole-PATH scan (families of the above).
const NEVER_PROBED_PREFIXES: &[&str] = &[
    "mkfs",
    "fsck",
    "e2fsck",
    "mke2fs",
    "mkswap",
    "swapon",
    "swapoff",
    "tune2fs",
    "resize2fs",
    "debugfs",
    "dumpe2fs",
    "e2label",
    "badblocks",
    "mkdosfs",
    "mkfs.",
    "shutdown",
    "reboot",
];

/// Whether a whole-PATH scan leaves `name` alone (see [`NEVER_PROBED`]).
pub fn never_probed(name: &str) -> bool {
    NEVER_PROBED.contains(&name) || NEVER_PROBED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_name_and_the_first_file_win() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let tool = |d: &Path, n: &str, mode: u32| {
            let p = d.join(n);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        tool(&a, "one", 0o755);
        tool(&b, "one", 0o755);
        tool(&a, "data", 0o644);
        std::os::unix::fs::symlink(a.join("one"), a.join("uno")).unwrap();
        tool(&b, "two", 0o755);
        let path = std::env::join_paths([&a, &b]).unwrap();
        let (found, _) = candidates(Some(&path), &[]);
        let names: Vec<(&str, &Path)> = found
            .iter()
            .map(|c| (c.name.as_str(), c.path.parent().unwrap()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("one", a.as_path()),
                ("uno", a.as_path()),
                ("two", b.as_path())
            ]
        );
        assert_eq!(found[0].resolved, found[1].resolved);
        let (found, missing) = candidates(
            Some(&path),
            &[
                "two".into(),
                "nope".into(),
                a.join("uno").to_string_lossy().into_owned(),
            ],
        );
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[1].resolved,
            std::fs::canonicalize(a.join("one")).unwrap()
        );
        assert_eq!(missing, vec!["nope"]);
    }

    #[test]
    fn versions_and_types() {
        assert_eq!(
            version_line("git version 2.39.5\n").as_deref(),
            Some("git version 2.39.5")
        );
        assert_eq!(version_line("usage: foo\n"), None);
        assert_eq!(version_line("tool v1.2\n").as_deref(), Some("tool v1.2"));
        assert_eq!(
            version_line("1.0.3 (Claude Code)\n").as_deref(),
            Some("1.0.3 (Claude Code)")
        );
        // Found on this machine: a log line and a warning are no versions.
        assert_eq!(
            version_line("21:31:10.523 [error] rabbit_env: Failed to setup\n"),
            None
        );
        assert_eq!(
            version_line("** (x:2067): WARNING **: 21:31:27.975: Couldn't parse\n"),
            None
        );
        assert_eq!(
            tool_type("claude", Path::new("/usr/bin/claude"), None, None),
            "ai-agent"
        );
        assert_eq!(
            tool_type(
                "ls",
                Path::new("/usr/bin/ls"),
                Some("coreutils"),
                Some("utils")
            ),
            "shell-util"
        );
        assert_eq!(
            tool_type(
                "sshd",
                Path::new("/usr/sbin/sshd"),
                Some("openssh-server"),
                Some("net")
            ),
            "daemon"
        );
        assert_eq!(
            tool_type("git", Path::new("/usr/bin/git"), Some("git"), Some("vcs")),
            "cli-tool"
        );
    }
}
