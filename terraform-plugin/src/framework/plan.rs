//! Planning rules every resource shares, driven by its schema.
//!
//! Terraform proposes a new state (configuration merged with prior state) and enforces what a
//! provider may change in it (`reference/tfplugin5-notes.md` §3.5). The rules here keep plans right
//! and quiet:
//! - a computed attribute the configuration leaves unset gets its default, or stays at its prior
//!   value on update, or is unknown on create (the server will decide);
//! - a change to an attribute marked `requires_replace` replaces the resource, and a replacement
//!   is planned like a create.

use std::collections::BTreeMap;

use super::schema::{Block, Nesting};
use crate::value::{AttributePath, Value};

/// A state of `schema` with `id` set and everything else null: what an import by id starts
/// from.
pub fn with_id(id: &str, schema: &super::Schema) -> Value {
    let mut object = null_object(&schema.block);
    if let Value::Object(fields) = &mut object {
        fields.insert("id".to_string(), Value::string(id));
    }
    object
}

/// A value of `block`'s type with every attribute and nested block null.
pub fn null_object(block: &Block) -> Value {
    let mut fields = BTreeMap::new();
    for attribute in &block.attributes {
        fields.insert(attribute.name.clone(), Value::Null);
    }
    for nested in &block.blocks {
        let empty = match nested.nesting {
            Nesting::Single => Value::Null,
            Nesting::Set => Value::Set(Vec::new()),
        };
        fields.insert(nested.name.clone(), empty);
    }
    Value::Object(fields)
}

/// Sets every write-only attribute of `value` (a value of `block`'s type) to null, in nested
/// blocks too: Terraform requires them null in every plan and state a provider returns.
pub(crate) fn clear_write_only(block: &Block, value: &mut Value) {
    let Value::Object(fields) = value else {
        return;
    };
    for attribute in block.attributes.iter().filter(|a| a.write_only) {
        fields.insert(attribute.name.clone(), Value::Null);
    }
    for nested in &block.blocks {
        match (nested.nesting, fields.get_mut(&nested.name)) {
            (Nesting::Single, Some(inner)) => clear_write_only(&nested.block, inner),
            (Nesting::Set, Some(Value::Set(items))) => {
                for item in items {
                    clear_write_only(&nested.block, item);
                }
            }
            _ => {}
        }
    }
}

/// `target` (a plan) with each write-only attribute taken from `config`, where Terraform sends
/// their values: what a create or update is given to work with. Only `Single` nested blocks
/// are looked into (the schema allows write-only attributes nowhere else).
pub fn with_write_only(block: &Block, target: &Value, config: &Value) -> Value {
    let (Value::Object(fields), Value::Object(configured)) = (target, config) else {
        return target.clone();
    };
    let mut fields = fields.clone();
    for attribute in block.attributes.iter().filter(|a| a.write_only) {
        let value = configured
            .get(&attribute.name)
            .cloned()
            .unwrap_or(Value::Null);
        fields.insert(attribute.name.clone(), value);
    }
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        if let (Some(inner), Some(inner_config)) =
            (fields.get(&nested.name), configured.get(&nested.name))
        {
            let merged = with_write_only(&nested.block, inner, inner_config);
            fields.insert(nested.name.clone(), merged);
        }
    }
    Value::Object(fields)
}

/// The paths of the write-only attributes `config` sets (known or not).
pub(crate) fn write_only_set(
    block: &Block,
    config: &Value,
    at: &AttributePath,
) -> Vec<AttributePath> {
    let Value::Object(fields) = config else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for attribute in block.attributes.iter().filter(|a| a.write_only) {
        if fields.get(&attribute.name).is_some_and(|v| !v.is_null()) {
            found.push(at.attribute(attribute.name.clone()));
        }
    }
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        if let Some(inner) = fields.get(&nested.name) {
            found.extend(write_only_set(
                &nested.block,
                inner,
                &at.attribute(nested.name.clone()),
            ));
        }
    }
    found
}

/// Applies defaults and computed-value rules to Terraform's proposed new state.
///
/// `creating` is true for a create or a replacement: computed attributes without a default are
/// then unknown, because the old object's values no longer apply.
pub(crate) fn plan_block(
    block: &Block,
    prior: &Value,
    config: &Value,
    proposed: &Value,
    creating: bool,
) -> Value {
    if proposed.is_null() || proposed.is_unknown() {
        return proposed.clone();
    }
    let mut fields = BTreeMap::new();
    for attribute in &block.attributes {
        let name = attribute.name.as_str();
        let configured = config.get(name);
        let value = if attribute.is_computed() && configured.is_null() {
            match &attribute.default {
                Some(default) => default.clone(),
                None if creating || prior.is_null() => Value::Unknown,
                None => prior.get(name).clone(),
            }
        } else {
            proposed.get(name).clone()
        };
        fields.insert(attribute.name.clone(), value);
    }
    for nested in &block.blocks {
        let name = nested.name.as_str();
        let proposed_value = proposed.get(name);
        let value = match (nested.nesting, proposed_value) {
            (Nesting::Single, v) => plan_block(
                &nested.block,
                prior.get(name),
                config.get(name),
                v,
                creating || prior.get(name).is_null(),
            ),
            (Nesting::Set, Value::Set(items)) => Value::Set(
                items
                    .iter()
                    .map(|item| plan_block(&nested.block, &Value::Null, item, item, true))
                    .collect(),
            ),
            (_, other) => other.clone(),
        };
        fields.insert(nested.name.clone(), value);
    }
    Value::Object(fields)
}

/// The top-level attributes marked `requires_replace` whose planned value differs from the prior.
pub(crate) fn replacement_paths(
    block: &Block,
    prior: &Value,
    planned: &Value,
) -> Vec<AttributePath> {
    if prior.is_null() || planned.is_null() {
        return Vec::new();
    }
    block
        .attributes
        .iter()
        .filter(|a| a.requires_replace)
        .filter(|a| {
            let (before, after) = (prior.get(&a.name), planned.get(&a.name));
            after.is_unknown() || !before.semantically_equal(after)
        })
        .map(|a| AttributePath::root().attribute(a.name.clone()))
        .collect()
}

/// The state to record after an apply: `planned`, with each unknown replaced by what the
/// server says (`actual`).
///
/// Why not `actual` as a whole: Terraform rejects an applied state that differs from a known
/// planned value, and the server may write a value in another, equivalent form. Differences
/// the next refresh finds are drift, shown then.
pub fn resolve_unknowns(planned: &Value, actual: &Value) -> Value {
    match (planned, actual) {
        (Value::Unknown, _) => actual.clone(),
        (Value::Object(fields), Value::Object(actual_fields)) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| {
                    let other = actual_fields.get(name).unwrap_or(&Value::Null);
                    (name.clone(), resolve_unknowns(value, other))
                })
                .collect(),
        ),
        // Collections cannot be matched element by element (sets have no order); a partly unknown
        // one is taken from the server whole.
        (Value::List(_) | Value::Set(_) | Value::Map(_), _) if !planned.is_wholly_known() => {
            actual.clone()
        }
        _ => planned.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};

    fn block() -> Block {
        Block::new("test")
            .attribute(Attribute::string("id").required().requires_replace())
            .attribute(Attribute::string("name").optional_computed())
            .attribute(Attribute::string("server_id").computed())
            .attribute(Attribute::bool("flag").default(Value::Bool(false)))
            .block(NestedBlock::new(
                "criteria",
                Nesting::Set,
                Block::new("c")
                    .attribute(Attribute::string("env_type"))
                    .attribute(Attribute::string("class").default(Value::string("default"))),
            ))
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        let mut value = null_object(&block());
        if let Value::Object(fields) = &mut value {
            for (k, v) in pairs {
                fields.insert((*k).to_string(), v.clone());
            }
        }
        value
    }

    fn criterion(env_type: &str, class: Value) -> Value {
        Value::Object(BTreeMap::from([
            ("env_type".to_string(), Value::string(env_type)),
            ("class".to_string(), class),
        ]))
    }

    #[test]
    fn create_plans_defaults_and_unknowns() {
        let config = obj(&[
            ("id", Value::string("a")),
            ("criteria", Value::Set(vec![criterion("dev", Value::Null)])),
        ]);
        let planned = plan_block(&block(), &Value::Null, &config, &config, true);
        assert_eq!(planned.get("name"), &Value::Unknown);
        assert_eq!(planned.get("server_id"), &Value::Unknown);
        assert_eq!(planned.get("flag"), &Value::Bool(false));
        assert_eq!(
            planned.get("criteria"),
            &Value::Set(vec![criterion("dev", Value::string("default"))])
        );
    }

    #[test]
    fn update_keeps_prior_computed_values_but_applies_defaults() {
        let prior = obj(&[
            ("id", Value::string("a")),
            ("name", Value::string("A")),
            ("server_id", Value::string("s-1")),
            ("flag", Value::Bool(true)),
        ]);
        let config = obj(&[("id", Value::string("a"))]);
        let proposed = obj(&[
            ("id", Value::string("a")),
            ("name", Value::string("A")),
            ("server_id", Value::string("s-1")),
            ("flag", Value::Bool(true)),
        ]);
        let planned = plan_block(&block(), &prior, &config, &proposed, false);
        assert_eq!(planned.get("server_id"), &Value::string("s-1"));
        assert_eq!(planned.get("name"), &Value::string("A"));
        assert_eq!(
            planned.get("flag"),
            &Value::Bool(false),
            "default when unset"
        );
        assert!(replacement_paths(&block(), &prior, &planned).is_empty());
    }

    #[test]
    fn changed_replace_attribute_is_reported() {
        let prior = obj(&[("id", Value::string("a"))]);
        let planned = obj(&[("id", Value::string("b"))]);
        let paths = replacement_paths(&block(), &prior, &planned);
        assert_eq!(paths, vec![AttributePath::root().attribute("id")]);
        let unknown = obj(&[("id", Value::Unknown)]);
        assert_eq!(replacement_paths(&block(), &prior, &unknown).len(), 1);
        assert!(replacement_paths(&block(), &Value::Null, &planned).is_empty());
    }

    fn secret_block() -> Block {
        Block::new("t")
            .attribute(Attribute::string("id").required())
            .attribute(Attribute::string("token_wo").write_only())
            .attribute(Attribute::string("token_wo_version"))
            .block(NestedBlock::new(
                "source",
                Nesting::Single,
                Block::new("s")
                    .attribute(Attribute::string("url"))
                    .attribute(Attribute::string("password_wo").write_only()),
            ))
    }

    #[test]
    fn write_only_values_come_from_the_configuration_and_never_stay() {
        let block = secret_block();
        let config = Value::object([
            ("id", Value::string("a")),
            ("token_wo", Value::string("t0k3n")),
            ("token_wo_version", Value::string("1")),
            (
                "source",
                Value::object([
                    ("url", Value::string("https://x")),
                    ("password_wo", Value::Unknown),
                ]),
            ),
        ]);
        let mut planned = config.clone();
        clear_write_only(&block, &mut planned);
        assert!(planned.get("token_wo").is_null());
        assert!(planned.get("source").get("password_wo").is_null());
        assert_eq!(planned.get("token_wo_version"), &Value::string("1"));
        assert_eq!(
            write_only_set(&block, &config, &AttributePath::root())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["token_wo", "source.password_wo"]
        );
        assert!(write_only_set(&block, &planned, &AttributePath::root()).is_empty());
        let given = with_write_only(&block, &planned, &config);
        assert_eq!(given, config);
        let no_source = Value::object([("id", Value::string("a")), ("source", Value::Null)]);
        let given = with_write_only(&block, &no_source, &config);
        assert!(
            given.get("source").is_null(),
            "a block the plan has not stays absent"
        );
    }

    #[test]
    fn unknowns_are_resolved_from_the_server_and_the_rest_kept() {
        let planned = obj(&[
            ("id", Value::string("a")),
            ("name", Value::string("as planned")),
            ("server_id", Value::Unknown),
        ]);
        let actual = obj(&[
            ("id", Value::string("a")),
            ("name", Value::string("As Planned")),
            ("server_id", Value::string("s-9")),
        ]);
        let state = resolve_unknowns(&planned, &actual);
        assert_eq!(state.get("server_id"), &Value::string("s-9"));
        assert_eq!(state.get("name"), &Value::string("as planned"));
    }
}
