//! Field ownership (`metadata.managedFields`, `FieldsV1`) and server-side apply: every write
//! records which fields its manager set; an apply that would change a field another manager owns
//! is a `409 Conflict` unless forced (then ownership moves), and fields a manager applied before
//! but no longer applies are removed when nobody else owns them.
//!
//! Simplification: lists are atomic (owned as a whole), as if every list were
//! `x-kubernetes-list-type: atomic`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::clock;

/// A field path: object keys from the root.
pub(crate) type Path = Vec<String>;

/// The metadata fields the server owns; they are never part of a manager's set.
const SERVER_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Every leaf of an object (scalars, lists, empty objects) with its value.
pub(crate) fn leaves(object: &Value) -> BTreeMap<Path, Value> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeMap<Path, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    if path.len() == 1
                        && path[0] == "metadata"
                        && SERVER_FIELDS.contains(&k.as_str())
                    {
                        continue;
                    }
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            other => {
                out.insert(path.clone(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Value::Object(m) = object {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            let mut path = vec![k.clone()];
            walk(v, &mut path, &mut out);
        }
    }
    out.retain(|p, _| !(p.len() == 1 && p[0] == "metadata"));
    out
}

/// One managedFields entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
    fields: BTreeSet<Path>,
}

fn to_fields_v1(fields: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut node = &mut root;
        for seg in path {
            let entry = node.entry(format!("f:{seg}")).or_insert_with(|| json!({}));
            node = match entry {
                Value::Object(m) => m,
                _ => unreachable!("every node is an object"),
            };
        }
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("f:"))
            .collect();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, child) in children {
            path.push(k[2..].to_string());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn read(object: &Value) -> Vec<Entry> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or("").to_string(),
            operation: e["operation"].as_str().unwrap_or("").to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
            subresource: e["subresource"].as_str().unwrap_or("").to_string(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

fn write(object: &mut Value, entries: Vec<Entry>) {
    let now = clock::now_rfc3339();
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation,
                "apiVersion": e.api_version, "time": now, "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields)});
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        object["metadata"]["managedFields"] = json!(list);
    }
}

/// Records a non-apply write: the manager takes the fields the write changed from everyone.
pub(crate) fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
) {
    let mut entries = old.map(read).unwrap_or_default();
    let before = old.map(leaves).unwrap_or_default();
    let after = leaves(new);
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    for e in &mut entries {
        e.fields.retain(|p| after.contains_key(p));
        if !(e.manager == manager && e.operation == "Update" && e.subresource == subresource) {
            e.fields.retain(|p| !changed.contains(p));
        }
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        }) {
            Some(e) => e.fields.extend(changed),
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    write(new, entries);
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conflict {
    /// The other manager.
    pub(crate) manager: String,
    /// Its apiVersion.
    pub(crate) api_version: String,
    /// The field, as `.data.k`.
    pub(crate) field: String,
}

/// Server-side apply of `config` by `manager` onto `live` (`None` when creating): the merged
/// object with its managedFields, or the conflicts.
pub(crate) fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
    merge: impl FnOnce(&mut Value, &Value) -> Result<(), String>,
) -> Result<Result<Value, Vec<Conflict>>, String> {
    let mut entries = live.map(read).unwrap_or_default();
    let applied = leaves(config);
    let current = live.map(leaves).unwrap_or_default();
    let mut conflicts = Vec::new();
    for e in &entries {
        if e.manager == manager {
            continue;
        }
        for (path, value) in &applied {
            if e.fields.contains(path) && current.get(path) != Some(value) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    field: format!(".{}", path.join(".")),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Ok(Err(conflicts));
    }
    let applied_paths: BTreeSet<Path> = applied.keys().cloned().collect();
    let previous: BTreeSet<Path> = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    for path in previous.difference(&applied_paths) {
        let owned_elsewhere = entries
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.fields.contains(path));
        if !owned_elsewhere {
            remove_path(&mut result, path);
        }
    }
    merge(&mut result, config)?;
    if force {
        // Why: a forced apply takes the conflicting fields; fields applied with the value they
        // already have stay shared, as without force.
        for e in entries.iter_mut().filter(|e| e.manager != manager) {
            e.fields
                .retain(|p| !(applied.contains_key(p) && current.get(p) != applied.get(p)));
        }
    }
    entries.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version.to_string(),
        subresource: String::new(),
        fields: applied_paths,
    });
    write(&mut result, entries);
    Ok(Ok(result))
}

fn remove_path(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for seg in parents {
        match node.get_mut(seg.as_str()) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(m) = node.as_object_mut() {
        m.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(target: &mut Value, patch: &Value) -> Result<(), String> {
        crate::patch::merge_patch(target, patch);
        Ok(())
    }

    #[test]
    fn fields_v1_round_trips() {
        let o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x",
            "labels": {"a": "b"}}, "data": {"k": "v", "l": "w"}});
        let set: BTreeSet<Path> = leaves(&o).into_keys().collect();
        assert!(set.contains(&vec!["data".to_string(), "k".to_string()]));
        assert!(!set.iter().any(|p| p.last().is_some_and(|l| l == "name")));
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    #[test]
    fn apply_conflicts_forces_and_removes_fields_no_longer_applied() {
        let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data});
        let created = apply(
            None,
            &cm(json!({"a": "1", "b": "2"})),
            "one",
            "v1",
            false,
            merge,
        )
        .expect("apply")
        .expect("no conflict");
        // Another manager setting the same value is no conflict; a different value is.
        let same = apply(
            Some(&created),
            &cm(json!({"a": "1"})),
            "two",
            "v1",
            false,
            merge,
        )
        .expect("apply");
        assert!(same.is_ok());
        let conflicts = apply(
            Some(&created),
            &cm(json!({"a": "9"})),
            "two",
            "v1",
            false,
            merge,
        )
        .expect("apply")
        .expect_err("conflict");
        assert_eq!(
            conflicts,
            vec![Conflict {
                manager: "one".into(),
                api_version: "v1".into(),
                field: ".data.a".into()
            }]
        );
        let forced = apply(
            Some(&created),
            &cm(json!({"a": "9"})),
            "two",
            "v1",
            true,
            merge,
        )
        .expect("apply")
        .expect("forced");
        assert_eq!(forced["data"]["a"], "9");
        // "one" no longer applies b: it goes.
        let shrunk = apply(Some(&forced), &cm(json!({})), "one", "v1", false, merge)
            .expect("apply")
            .expect("no conflict");
        assert!(shrunk["data"].get("b").is_none(), "{shrunk}");
        assert_eq!(shrunk["data"]["a"], "9");
    }

    #[test]
    fn updates_take_the_fields_they_change() {
        let old = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        let mut created = old.clone();
        record_update(None, &mut created, "kubectl", "v1", "");
        let mut changed = created.clone();
        changed["data"]["b"] = json!("2");
        record_update(Some(&created), &mut changed, "other", "v1", "");
        let entries = read(&changed);
        assert_eq!(entries.len(), 2);
        assert!(
            entries[1]
                .fields
                .contains(&vec!["data".to_string(), "b".to_string()])
        );
        assert!(
            !entries[0]
                .fields
                .contains(&vec!["data".to_string(), "b".to_string()])
        );
    }
}
