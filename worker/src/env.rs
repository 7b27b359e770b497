//! The child's environment and the resolution of its binary.
//!
//! A child starts from an EMPTY environment: only the variables named in the
//! assignment's `env_allowlist` are copied from the worker's own environment
//! (when the worker has them), then the assignment's `env` overrides are set
//! on top. Nothing else leaks, not even `PATH` or `HOME`: allowlist them when
//! the tool needs them.
//!
//! `argv[0]` is nevertheless resolved with the WORKER's `PATH` (the child's
//! environment may have none), before spawning, so a missing binary is a
//! clear `binary not found: …` error rather than a failed `exec`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The child's environment: `allowlist` names looked up with `lookup` (the
/// worker's environment in production), then `overrides` on top. Names that
/// are empty or contain `=` or NUL are skipped (they cannot be set).
pub fn build_env(
    allowlist: &[String],
    overrides: &HashMap<String, String>,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> BTreeMap<OsString, OsString> {
    let settable = |name: &str| !name.is_empty() && !name.contains(['=', '\0']);
    let mut env = BTreeMap::new();
    for name in allowlist.iter().filter(|n| settable(n)) {
        if let Some(value) = lookup(name) {
            env.insert(OsString::from(name), value);
        }
    }
    for (name, value) in overrides
        .iter()
        .filter(|(n, v)| settable(n) && !v.contains('\0'))
    {
        env.insert(OsString::from(name), OsString::from(value));
    }
    env
}

/// The file to execute for `argv0`.
///
/// - With a `/`: that path, relative to `cwd` (the child's working directory)
///   when it is relative.
/// - Without: the first executable regular file named `argv0` in the
///   directories of `path_var` (the worker's `PATH`; empty entries are
///   skipped).
///
/// The error is the one-line message reported in `RunFinished.error`.
pub fn resolve_binary(
    argv0: &str,
    path_var: Option<&OsStr>,
    cwd: &Path,
) -> Result<PathBuf, String> {
    if argv0.is_empty() {
        return Err("binary not found: argv[0] is empty".to_string());
    }
    if argv0.contains('/') {
        let path = cwd.join(argv0);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "binary not found: {argv0} (no executable file there)"
            ))
        };
    }
    path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(argv0))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("binary not found: {argv0} (not in the worker's PATH)"))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<OsString> {
        match name {
            "HOME" => Some("/home/w".into()),
            "SECRET" => Some("s3cr3t".into()),
            "KEEP" => Some("worker".into()),
            _ => None,
        }
    }

    #[test]
    fn only_allowlisted_and_overrides() {
        let allow = vec![
            "HOME".to_string(),
            "MISSING".to_string(),
            "KEEP".to_string(),
        ];
        let overrides = HashMap::from([
            ("KEEP".to_string(), "override".to_string()),
            ("NEW".to_string(), "1".to_string()),
        ]);
        let env = build_env(&allow, &overrides, lookup);
        let got: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("HOME".into(), "/home/w".into()),
                ("KEEP".into(), "override".into()),
                ("NEW".into(), "1".into()),
            ]
        );
    }

    #[test]
    fn nothing_allowlisted_means_empty() {
        assert!(build_env(&[], &HashMap::new(), lookup).is_empty());
        // Even PATH is not copied unless allowlisted.
        let env = build_env(&[], &HashMap::new(), |_| Some("x".into()));
        assert!(env.is_empty());
    }

    #[test]
    fn unsettable_names_are_skipped() {
        let allow = vec!["".to_string(), "A=B".to_string()];
        let overrides = HashMap::from([("X=Y".to_string(), "1".to_string())]);
        assert!(build_env(&allow, &overrides, |_| Some("v".into())).is_empty());
    }

    fn write_file(path: &Path, mode: u32) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn resolves_through_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write_file(&a.path().join("tool"), 0o644); // not executable: skipped
        write_file(&b.path().join("tool"), 0o755);
        std::fs::create_dir(a.path().join("dir")).unwrap(); // a directory: skipped
        let path = std::env::join_paths([a.path(), b.path()]).unwrap();
        let cwd = Path::new("/");
        assert_eq!(
            resolve_binary("tool", Some(&path), cwd).unwrap(),
            b.path().join("tool")
        );
        let err = resolve_binary("dir", Some(&path), cwd).unwrap_err();
        assert!(err.starts_with("binary not found: dir"), "{err}");
        let err = resolve_binary("nope", Some(&path), cwd).unwrap_err();
        assert!(err.starts_with("binary not found: nope"), "{err}");
        assert!(resolve_binary("tool", None, cwd).is_err());
        assert!(resolve_binary("", Some(&path), cwd).is_err());
    }

    #[test]
    fn paths_with_a_slash_are_not_searched() {
        let a = tempfile::tempdir().unwrap();
        write_file(&a.path().join("run.sh"), 0o755);
        let path = std::env::join_paths([a.path()]).unwrap();
        // Relative to the child's cwd, not looked up in PATH.
        assert_eq!(
            resolve_binary("./run.sh", Some(&path), a.path()).unwrap(),
            a.path().join("./run.sh")
        );
        assert!(resolve_binary("./run.sh", Some(&path), Path::new("/")).is_err());
        let abs = a.path().join("run.sh");
        assert_eq!(
            resolve_binary(abs.to_str().unwrap(), None, Path::new("/")).unwrap(),
            abs
        );
        assert!(resolve_binary("/definitely/not/here", None, Path::new("/")).is_err());
    }
}
