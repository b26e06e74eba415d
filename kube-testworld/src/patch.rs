//! The patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
//! patch for the common cases (lists merged by the schema's `x-kubernetes-patch-merge-key`,
//! `$patch: delete|replace`, `$deleteFromPrimitiveList/…`, `$setElementOrder/…` accepted and
//! ignored, `$retainKeys` accepted and ignored).

use serde_json::{Map, Value};

use crate::schema::Schemas;

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PatchError {
    /// The patch document itself is malformed (a 400).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but does not apply to this object (a 422).
    #[error("{0}")]
    DoesNotApply(String),
}

/// Applies an RFC 7386 merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies an RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`).
pub(crate) fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchError::Malformed("json patch must be an array of operations".into()))?;
    for op in ops {
        let name = op["op"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed("operation has no \"op\"".into()))?;
        let path = op["path"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed(format!("operation {name} has no \"path\"")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Malformed(format!("operation {name} has no \"value\"")))
        };
        let from = || {
            op["from"]
                .as_str()
                .ok_or_else(|| PatchError::Malformed(format!("operation {name} has no \"from\"")))
        };
        match name {
            "add" => add(target, path, value()?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value()?)?;
            }
            "move" => {
                let v = remove(target, from()?)?;
                add(target, path, v)?;
            }
            "copy" => {
                let v = target
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| missing(from().unwrap_or_default()))?;
                add(target, path, v)?;
            }
            "test" => {
                let expected = value()?;
                if target.pointer(path) != Some(&expected) {
                    return Err(PatchError::DoesNotApply(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(PatchError::Malformed(format!("Unexpected kind: {other}")));
            }
        }
    }
    Ok(())
}

fn missing(path: &str) -> PatchError {
    PatchError::DoesNotApply(format!("doc is missing path: \"{path}\": missing value"))
}

/// Splits a JSON pointer into its parent pointer and its unescaped last token.
fn split_pointer(path: &str) -> Result<(&str, String), PatchError> {
    if path.is_empty() {
        return Err(PatchError::DoesNotApply(
            "cannot patch the document root".into(),
        ));
    }
    let idx = path
        .rfind('/')
        .ok_or_else(|| PatchError::Malformed(format!("invalid JSON pointer {path:?}")))?;
    let token = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..idx], token))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let (parent, token) = split_pointer(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(token, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let idx = if token == "-" {
                items.len()
            } else {
                token
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| missing(path))?
            };
            items.insert(idx, value);
            Ok(())
        }
        _ => Err(missing(path)),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, PatchError> {
    let (parent, token) = split_pointer(path)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&token).ok_or_else(|| missing(path)),
        Some(Value::Array(items)) => {
            let idx = token
                .parse::<usize>()
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(|| missing(path))?;
            Ok(items.remove(idx))
        }
        _ => Err(missing(path)),
    }
}

/// Applies a strategic merge patch, reading list strategies from the kind's schema.
pub(crate) fn strategic_merge(
    schemas: &Schemas,
    schema: Option<&Value>,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        if let Value::Object(m) = &mut replacement {
            m.remove("$patch");
        }
        *target = replacement;
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (key, value) in p {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) = (t.get_mut(field), value.as_array())
            {
                items.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if value.is_null() {
            t.remove(key);
            continue;
        }
        let child_schema = schema.and_then(|s| schemas.property(s, key));
        match value {
            Value::Array(patch_items) => {
                let strategy = child_schema.map(|s| schemas.resolve(s));
                let merges = strategy
                    .and_then(|s| s.get("x-kubernetes-patch-strategy"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.split(',').any(|x| x == "merge"));
                let merge_key = strategy
                    .and_then(|s| s.get("x-kubernetes-patch-merge-key"))
                    .and_then(Value::as_str);
                let entry = t.entry(key.clone()).or_insert(Value::Array(Vec::new()));
                if !merges {
                    *entry = Value::Array(
                        patch_items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect(),
                    );
                    continue;
                }
                let item_schema = child_schema.and_then(|s| schemas.items(s));
                merge_list(schemas, item_schema, entry, patch_items, merge_key)?;
            }
            Value::Object(_) => {
                let entry = t.entry(key.clone()).or_insert(Value::Object(Map::new()));
                strategic_merge(schemas, child_schema, entry, value)?;
            }
            other => {
                t.insert(key.clone(), other.clone());
            }
        }
    }
    Ok(())
}

/// Merges a patch list into a live list: by merge key for objects, as a union for primitives.
fn merge_list(
    schemas: &Schemas,
    item_schema: Option<&Value>,
    live: &mut Value,
    patch_items: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if !live.is_array() {
        *live = Value::Array(Vec::new());
    }
    let Value::Array(items) = live else {
        return Ok(());
    };
    for patch_item in patch_items {
        let Some(key) = merge_key else {
            if patch_item.get("$patch").and_then(Value::as_str) == Some("replace") {
                continue;
            }
            if !items.contains(patch_item) {
                items.push(patch_item.clone());
            }
            continue;
        };
        let Some(wanted) = patch_item.get(key) else {
            return Err(PatchError::DoesNotApply(format!(
                "map: {patch_item} does not contain declared merge key: {key}"
            )));
        };
        let pos = items.iter().position(|i| i.get(key) == Some(wanted));
        let directive = patch_item.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                items.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => strategic_merge(schemas, item_schema, &mut items[i], patch_item)?,
            (None, _) => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(schemas, item_schema, &mut fresh, patch_item)?;
                items.push(fresh);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schemas;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn json_patch_follows_rfc_6902() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2]});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "replace", "path": "/list/0", "value": 9},
                {"op": "add", "path": "/list/-", "value": 3},
                {"op": "test", "path": "/list/1", "value": 2},
                {"op": "move", "from": "/metadata/labels/a", "path": "/moved"},
                {"op": "copy", "from": "/moved", "path": "/copied"},
                {"op": "remove", "path": "/list/1"}
            ]),
        )
        .expect("patch");
        assert_eq!(
            t,
            json!({"metadata": {"labels": {"b/c": "2"}}, "list": [9, 3], "moved": "1", "copied": "1"})
        );
        let e =
            json_patch(&mut t, &json!([{"op": "remove", "path": "/nope"}])).expect_err("missing");
        assert!(matches!(e, PatchError::DoesNotApply(_)));
        let e = json_patch(
            &mut t,
            &json!([{"op": "test", "path": "/moved", "value": "2"}]),
        )
        .expect_err("test");
        assert!(matches!(e, PatchError::DoesNotApply(_)));
        assert!(matches!(
            json_patch(&mut t, &json!({})),
            Err(PatchError::Malformed(_))
        ));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let s = schemas();
        let root = s.root("v1", "Pod");
        let mut pod = json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "y"}]}});
        strategic_merge(
            s,
            root,
            &mut pod,
            &json!({
                "metadata": {"finalizers": ["b"]},
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "spec": {"containers": [
                    {"name": "a", "image": "x2", "env": [{"name": "F", "value": "2"}]},
                    {"name": "b", "$patch": "delete"},
                    {"name": "c", "image": "z"}]}
            }),
        )
        .expect("patch");
        assert_eq!(pod["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            pod["spec"]["containers"],
            json!([
            {"name": "a", "image": "x2", "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]},
            {"name": "c", "image": "z"}])
        );
        // A list without a merge strategy (args) is replaced.
        strategic_merge(
            s,
            root,
            &mut pod,
            &json!({"spec": {"containers": [{"name": "c", "args": ["1"]}]}}),
        )
        .expect("args");
        strategic_merge(
            s,
            root,
            &mut pod,
            &json!({"spec": {"containers": [{"name": "c", "args": ["2"]}]}}),
        )
        .expect("args");
        assert_eq!(pod["spec"]["containers"][1]["args"], json!(["2"]));
        strategic_merge(
            s,
            root,
            &mut pod,
            &json!({"$deleteFromPrimitiveList/finalizers": ["a"],
            "metadata": {}}),
        )
        .expect("delete from list");
    }
}
