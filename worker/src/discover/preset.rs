//! AI coding agent CLIs that Agent Monitor has presets for: found on PATH
//! under their usual names, they are proposed as agents of that preset
//! (`discovery_method` preset). The worker says only which preset; the
//! server fills the preset's protocol flags, session handling, environment
//! and `prompt` capability from the presets it has (`CreatePresetAgent`'s),
//! so there is one definition of each.

/// (command name, preset name, display name).
const PRESETS: &[(&str, &str, &str)] = &[
    ("claude", "claude", "Claude Code"),
    ("codex", "codex", "Codex"),
    ("gemini", "gemini", "Gemini CLI"),
];

/// The preset and display name for a binary called `name`.
pub fn preset_for(name: &str) -> Option<(&'static str, &'static str)> {
    PRESETS
        .iter()
        .find(|(command, _, _)| *command == name)
        .map(|(_, preset, display)| (*preset, *display))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_three_clis_are_known() {
        assert_eq!(super::preset_for("claude"), Some(("claude", "Claude Code")));
        assert_eq!(super::preset_for("gemini").map(|p| p.0), Some("gemini"));
        assert_eq!(super::preset_for("git"), None);
    }
}
