//! The secrets quirk of the Resource Definitions API.
//!
//! Values sent in `driver_inputs.secrets` (any nesting) and `secret_refs` leaves of the form
//! `{"value": x}` go to the org's primary secret store and are never returned. Responses carry
//! `driver_inputs.secret_refs` with, at the same path,
//! `{"store": <primary>, "ref": "orgs--<org>--resources--defs--<defId>--driver_secrets--<a>--<b>", "version": "<n>"}`,
//! where `n` goes up each time a write carries that secret. User references `{store, ref[, version]}` are
//! kept, with `version` defaulting to `"1"`.
//!
//! Requests are parsed into a tree of [`Node`]s first (all checks happen there, so a rejected request
//! writes nothing), then [`apply`] writes the store and builds the `secret_refs` answer.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::model::StoredSecret;

/// One entry of a parsed `secrets` / `secret_refs` request tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// A nested object.
    Branch(BTreeMap<String, Node>),
    /// A plaintext value for the primary store.
    Store(Value),
    /// A reference to a secret in a registered store.
    Ref {
        /// Store id.
        store: String,
        /// Key in the store's format.
        reference: String,
        /// Version, if given.
        version: Option<String>,
    },
    /// PATCH only: remove whatever is at this path.
    Remove,
}

/// The keys a `SecretReference` may have.
const REFERENCE_KEYS: [&str; 4] = ["store", "ref", "version", "value"];

/// Whether an object has the shape of a `SecretReference` leaf: non-empty, only reference keys, and
/// only string or null values. Anything else is a nested branch.
///
/// Why values matter: a nested group may legitimately be called `store` or `value`, e.g.
/// `{"value": {"password": {...}}}`; its value is an object, so it is a branch, not a leaf.
pub(crate) fn is_reference_leaf(map: &Map<String, Value>) -> bool {
    !map.is_empty()
        && map.iter().all(|(key, value)| {
            REFERENCE_KEYS.contains(&key.as_str()) && (value.is_string() || value.is_null())
        })
}

/// Joins a key onto a dotted path, for messages.
fn join(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// Parses `driver_inputs.secrets`. Objects are branches, every other value is a secret. A `null` is
/// skipped, or in PATCH mode removes the path.
pub(crate) fn parse_secrets(map: &Map<String, Value>, patch: bool) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let node = match value {
            Value::Null if patch => Node::Remove,
            Value::Null => continue,
            Value::Object(children) => Node::Branch(parse_secrets(children, patch)),
            other => Node::Store(other.clone()),
        };
        out.insert(key.clone(), node);
    }
    out
}

/// Parses `driver_inputs.secret_refs` (`path` is where `map` sits, for messages).
pub(crate) fn parse_secret_refs(
    map: &Map<String, Value>,
    patch: bool,
    path: &str,
) -> Result<BTreeMap<String, Node>, ApiError> {
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let at = join(path, key);
        let node = match value {
            Value::Null if patch => Node::Remove,
            // Why: `SecretReference` is `nullable` in the spec; a null leaf sets nothing.
            Value::Null => continue,
            Value::Object(children) if is_reference_leaf(children) => {
                match parse_reference(children, &at)? {
                    Some(node) => node,
                    None if patch => Node::Remove,
                    None => continue,
                }
            }
            Value::Object(children) => Node::Branch(parse_secret_refs(children, patch, &at)?),
            other => {
                return Err(ApiError::bad_request_at(
                    &at,
                    format!(
                        "`{at}` must be a SecretReference object ({{\"value\"}} or {{\"store\", \"ref\"}}) \
                         or an object nesting them, not {}.",
                        crate::schema::kind(other)
                    ),
                ));
            }
        };
        out.insert(key.clone(), node);
    }
    Ok(out)
}

/// Parses one `SecretReference` leaf (the caller checked its shape). `None` when every field is null.
fn parse_reference(map: &Map<String, Value>, at: &str) -> Result<Option<Node>, ApiError> {
    let field = |key: &str| map.get(key).and_then(Value::as_str);
    let bad = |message: String| Err(ApiError::bad_request_at(at, message));
    match (
        field("value"),
        field("ref"),
        field("store"),
        field("version"),
    ) {
        (None, None, None, None) => Ok(None),
        (Some(value), None, None, None) => Ok(Some(Node::Store(Value::String(value.to_owned())))),
        (Some(_), ..) => bad(format!(
            "`{at}`: `value` can't be used together with `ref`, `store` or `version`."
        )),
        (None, Some(_), None, _) => bad(format!("`{at}`: `store` is required when `ref` is set.")),
        (None, None, Some(_), _) => bad(format!("`{at}`: `ref` is required when `store` is set.")),
        (None, None, None, Some(_)) => bad(format!(
            "`{at}`: `version` is only valid together with `ref`."
        )),
        (None, Some(reference), Some(store), version) => {
            if store == "humanitec" {
                return bad(format!("`{at}`: the store can't be `humanitec`."));
            }
            if store.is_empty() || reference.is_empty() {
                return bad(format!("`{at}`: `store` and `ref` must not be empty."));
            }
            Ok(Some(Node::Ref {
                store: store.to_owned(),
                reference: reference.to_owned(),
                version: version.map(str::to_owned),
            }))
        }
    }
}

/// Merges the trees parsed from `secrets` and `secret_refs`; both setting the same path (or one setting
/// a path inside the other's leaf) is a 400.
pub(crate) fn combine(
    mut left: BTreeMap<String, Node>,
    right: BTreeMap<String, Node>,
    path: &str,
) -> Result<BTreeMap<String, Node>, ApiError> {
    for (key, node) in right {
        let at = join(path, &key);
        let merged = match (left.remove(&key), node) {
            (None, node) => node,
            (Some(Node::Branch(a)), Node::Branch(b)) => Node::Branch(combine(a, b, &at)?),
            (Some(_), _) => {
                return Err(ApiError::bad_request_at(
                    &at,
                    format!(
                        "`secrets` and `secret_refs` both set `{}`; a secret path can be set in only one of them.",
                        at.trim_start_matches('.')
                    ),
                ));
            }
        };
        left.insert(key, merged);
    }
    Ok(left)
}

/// Writes secrets into one org's primary store.
pub(crate) struct Sink<'a> {
    /// The org's store.
    pub(crate) store: &'a mut BTreeMap<String, StoredSecret>,
    /// The primary store id put into refs.
    pub(crate) store_id: &'a str,
    /// The org id.
    pub(crate) org_id: &'a str,
    /// The definition id.
    pub(crate) def_id: &'a str,
}

impl Sink<'_> {
    /// Stores `value` under the ref for `path` and answers the `SecretReference` for it.
    fn write(&mut self, path: &[String], value: Value) -> Value {
        let reference = secret_ref(self.org_id, self.def_id, path);
        let entry = self.store.entry(reference.clone()).or_insert(StoredSecret {
            value: Value::Null,
            version: 0,
        });
        entry.value = value;
        entry.version += 1;
        json!({ "store": self.store_id, "ref": reference, "version": entry.version.to_string() })
    }
}

/// The primary-store ref of a definition secret.
pub(crate) fn secret_ref(org_id: &str, def_id: &str, path: &[String]) -> String {
    format!(
        "orgs--{org_id}--resources--defs--{def_id}--driver_secrets--{}",
        path.join("--")
    )
}

/// The prefix of all primary-store refs of a definition.
pub(crate) fn definition_prefix(org_id: &str, def_id: &str) -> String {
    format!("orgs--{org_id}--resources--defs--{def_id}--driver_secrets--")
}

/// Applies a parsed tree onto `base` (a `secret_refs` answer tree), writing store values as it goes.
pub(crate) fn apply(
    base: &mut Map<String, Value>,
    nodes: BTreeMap<String, Node>,
    path: &mut Vec<String>,
    sink: &mut Sink<'_>,
) {
    for (key, node) in nodes {
        path.push(key.clone());
        match node {
            Node::Remove => {
                base.remove(&key);
            }
            Node::Store(value) => {
                let reference = sink.write(path, value);
                base.insert(key, reference);
            }
            Node::Ref {
                store,
                reference,
                version,
            } => {
                let version = version.unwrap_or_else(|| "1".to_owned());
                base.insert(
                    key,
                    json!({ "store": store, "ref": reference, "version": version }),
                );
            }
            Node::Branch(children) => {
                let entry = base.entry(key).or_insert_with(|| Value::Object(Map::new()));
                // Why: a branch replaces a reference leaf that used to sit at this path.
                let is_branch = matches!(&*entry, Value::Object(map) if !is_reference_leaf(map));
                if !is_branch {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(map) = entry {
                    apply(map, children, path, sink);
                }
            }
        }
        path.pop();
    }
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` removes a key, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn leaves_and_branches() {
        assert!(is_reference_leaf(&obj(json!({"value": "x"}))));
        assert!(is_reference_leaf(&obj(
            json!({"store": "s", "ref": "r", "version": null})
        )));
        assert!(!is_reference_leaf(&obj(
            json!({"value": {"a": {"value": "x"}}})
        )));
        assert!(!is_reference_leaf(&obj(json!({}))));
        assert!(!is_reference_leaf(&obj(
            json!({"password": {"value": "x"}})
        )));
    }

    #[test]
    fn reference_rules() {
        let parse = |v: Value| parse_secret_refs(&obj(json!({ "k": v })), false, "secret_refs");
        assert!(parse(json!({"value": "x", "ref": "r"})).is_err());
        assert!(parse(json!({"ref": "r"})).is_err());
        assert!(parse(json!({"store": "s"})).is_err());
        assert!(parse(json!({"version": "1"})).is_err());
        assert!(parse(json!({"store": "humanitec", "ref": "r"})).is_err());
        assert!(parse(json!("plain")).is_err());
        assert!(parse(json!({"value": 5})).is_err());
        assert_eq!(
            parse(json!({"value": null})).ok(),
            Some(BTreeMap::new()),
            "all-null reference sets nothing"
        );
    }

    #[test]
    fn conflicts() {
        let secrets = parse_secrets(&obj(json!({"a": {"b": "x"}, "c": "y"})), false);
        let refs = parse_secret_refs(&obj(json!({"a": {"d": {"value": "z"}}})), false, "")
            .expect("valid refs");
        assert!(combine(secrets.clone(), refs, "").is_ok());
        let clash = parse_secret_refs(&obj(json!({"a": {"b": {"value": "z"}}})), false, "")
            .expect("valid refs");
        assert!(combine(secrets.clone(), clash, "").is_err());
        let prefix = parse_secret_refs(&obj(json!({"c": {"e": {"value": "z"}}})), false, "")
            .expect("valid refs");
        assert!(combine(secrets, prefix, "").is_err());
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": "x"});
        merge_patch(
            &mut target,
            &json!({"a": {"b": null, "z": 3}, "d": [2], "e": null}),
        );
        assert_eq!(target, json!({"a": {"c": 2, "z": 3}, "d": [2]}));
    }
}
