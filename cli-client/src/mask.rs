//! `google.protobuf.FieldMask` for update commands: the mask names exactly
//! the fields whose flags were given, in the order the handler sets them,
//! each once.

use prost_types::FieldMask;

/// Collects the paths of an update while its message is filled in.
#[derive(Debug, Default)]
pub struct MaskBuilder {
    paths: Vec<String>,
}

impl MaskBuilder {
    /// An empty mask.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `path` (once).
    pub fn add(&mut self, path: &str) {
        if !self.paths.iter().any(|p| p == path) {
            self.paths.push(path.to_string());
        }
    }

    /// When `value` is given: stores it with `set` and adds `path`.
    pub fn set<T>(&mut self, path: &str, value: Option<T>, set: impl FnOnce(T)) {
        if let Some(value) = value {
            set(value);
            self.add(path);
        }
    }

    /// Whether no path was added.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether `path` was added.
    pub fn has(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }

    /// The finished mask.
    pub fn build(self) -> FieldMask {
        FieldMask { paths: self.paths }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_exactly_the_given_fields_once() {
        let mut name = String::new();
        let mut count = 0;
        let mut mask = MaskBuilder::new();
        assert!(mask.is_empty());
        mask.set("name", Some("x".to_string()), |v| name = v);
        mask.set("max_concurrent", None::<i32>, |v| count = v);
        mask.add("is_active");
        mask.add("name");
        assert_eq!(name, "x");
        assert_eq!(count, 0);
        assert_eq!(mask.build().paths, vec!["name", "is_active"]);
    }
}
