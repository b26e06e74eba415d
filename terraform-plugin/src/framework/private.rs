//! Private state: provider-only data Terraform stores opaquely beside a resource's state.
//!
//! It is a JSON object, serialized to bytes on the wire. It is for bookkeeping such as version
//! tokens, never for secrets (Terraform writes it to the state file in plain text).

use serde_json::{Map, Value as Json};

/// A resource's private state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Private(Map<String, Json>);

impl Private {
    /// Parses the bytes Terraform sent; empty or unreadable bytes give an empty private state.
    ///
    /// Why lenient: private state written by another provider version must never block a plan.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            return Self::default();
        }
        match serde_json::from_slice::<Json>(bytes) {
            Ok(Json::Object(map)) => Self(map),
            _ => {
                log::warn!("ignoring unreadable private state ({} bytes)", bytes.len());
                Self::default()
            }
        }
    }

    /// Serializes for the wire; an empty private state is no bytes at all.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            return Vec::new();
        }
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    /// Takes an entry out.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        self.0.remove(key)
    }

    /// A stored entry.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.get(key)
    }

    /// Stores an entry.
    pub fn set(&mut self, key: impl Into<String>, value: Json) {
        self.0.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        assert_eq!(Private::from_bytes(b""), Private::default());
        assert!(Private::default().to_bytes().is_empty());
        assert_eq!(Private::from_bytes(b"not json"), Private::default());
        assert_eq!(Private::from_bytes(b"[1]"), Private::default());
        let mut private = Private::default();
        private.set("version", serde_json::json!("3"));
        let again = Private::from_bytes(&private.to_bytes());
        assert_eq!(again.get("version"), Some(&serde_json::json!("3")));
    }
}
