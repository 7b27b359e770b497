//! How an assignment becomes a process: one adapter per interaction mode.
//!
//! Template mode runs `Assign.argv` exactly (no shell). Prompt mode (Claude
//! stream-json, Codex app-server, Gemini through tmux) will add adapters here;
//! until then a prompt-mode assignment fails with a clear error.

use std::path::PathBuf;
use std::time::Duration;

use amon_proto::v1::{Assign, InteractionMode};

use super::ProcessSpec;
use crate::env::build_env;

/// Turns an assignment into the process to run.
pub(crate) trait Adapter: Send + Sync {
    /// The process for `assign`, or the one-line error the run fails with.
    fn prepare(&self, assign: &Assign) -> Result<ProcessSpec, String>;
}

/// Error of a prompt-mode assignment (no adapter yet).
pub(crate) const PROMPT_MODE_UNSUPPORTED: &str =
    "prompt mode is not supported by this worker version";

/// The adapter of the assignment's mode (unspecified means template).
pub(crate) fn adapter_for(assign: &Assign) -> Result<&'static dyn Adapter, String> {
    match InteractionMode::try_from(assign.mode) {
        Ok(InteractionMode::Template | InteractionMode::Unspecified) => Ok(&TemplateAdapter),
        Ok(InteractionMode::Prompt) => Err(PROMPT_MODE_UNSUPPORTED.to_string()),
        Err(_) => Err(format!(
            "interaction mode {} is not supported by this worker version",
            assign.mode
        )),
    }
}

/// Template mode: `argv` as given, the env of the allowlist plus overrides.
pub(crate) struct TemplateAdapter;

impl Adapter for TemplateAdapter {
    fn prepare(&self, assign: &Assign) -> Result<ProcessSpec, String> {
        if assign.argv.is_empty() {
            return Err("the assignment has an empty argv".to_string());
        }
        Ok(ProcessSpec {
            argv: assign.argv.clone(),
            working_dir: (!assign.working_dir.is_empty())
                .then(|| PathBuf::from(&assign.working_dir)),
            env: build_env(&assign.env_allowlist, &assign.env, |name| {
                std::env::var_os(name)
            }),
            timeout: assign
                .timeout
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let mut assign = Assign {
            argv: vec!["true".into()],
            ..Default::default()
        };
        assert!(adapter_for(&assign).is_ok());
        assign.mode = InteractionMode::Template as i32;
        let spec = adapter_for(&assign).unwrap().prepare(&assign).unwrap();
        assert_eq!(spec.argv, vec!["true".to_string()]);
        assert_eq!(spec.working_dir, None);
        assert_eq!(spec.timeout, None);
        assign.mode = InteractionMode::Prompt as i32;
        assert_eq!(
            adapter_for(&assign).err().as_deref(),
            Some(PROMPT_MODE_UNSUPPORTED)
        );
        assign.mode = 99;
        assert!(adapter_for(&assign).is_err());
    }

    #[test]
    fn template_fields() {
        let assign = Assign {
            argv: vec![],
            ..Default::default()
        };
        assert!(TemplateAdapter.prepare(&assign).is_err());
        let assign = Assign {
            argv: vec!["ls".into(), "-l".into()],
            working_dir: "/tmp".into(),
            timeout: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
            ..Default::default()
        };
        let spec = TemplateAdapter.prepare(&assign).unwrap();
        assert_eq!(spec.working_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(spec.timeout, Some(Duration::from_secs(2)));
        assert!(spec.env.is_empty());
    }
}
