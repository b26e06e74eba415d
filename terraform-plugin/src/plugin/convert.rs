//! Conversions between protobuf messages and framework types.
//!
//! Each RPC handler in `grpc.rs` uses these to turn a request into framework values and the
//! framework's answer back into a response; nothing else in the crate touches protobuf.

use super::proto::tfplugin5 as pb;
use crate::framework::{Block, Diagnostics, NestedBlock, Nesting, Schema, Severity};
use crate::value::{self, AttributePath, PathStep, Type, Value};

/// `StringKind.MARKDOWN`: every description this provider writes is markdown.
const MARKDOWN: i32 = 1;

/// Decodes a `DynamicValue` (msgpack preferred, JSON accepted, empty = null) of type `ty`.
pub(crate) fn decode(
    dynamic: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostics> {
    let result = match dynamic {
        Some(d) if !d.msgpack.is_empty() => {
            value::msgpack::decode(&d.msgpack, ty).map_err(|e| e.to_string())
        }
        Some(d) if !d.json.is_empty() => {
            value::json::decode(&d.json, ty).map_err(|e| e.to_string())
        }
        _ => Ok(Value::Null),
    };
    result.map_err(|reason| {
        let mut diags = Diagnostics::new();
        diags.error(
            format!("Could not decode the {what}"),
            format!("Terraform sent a value this provider could not read: {reason}. This is a bug in the provider or in Terraform; please report it."),
        );
        diags
    })
}

/// Encodes a value of type `ty` as a msgpack `DynamicValue`.
pub(crate) fn encode(
    value: &Value,
    ty: &Type,
    what: &str,
) -> Result<pb::DynamicValue, Diagnostics> {
    value::msgpack::encode(value, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| {
            let mut diags = Diagnostics::new();
            diags.error(
                format!("Could not encode the {what}"),
                format!("The provider produced a value that does not fit its own schema: {e}. This is a bug in the provider; please report it."),
            );
            diags
        })
}

/// Converts diagnostics for a response.
pub(crate) fn diagnostics(diags: Diagnostics) -> Vec<pb::Diagnostic> {
    diags
        .into_iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error as i32,
                Severity::Warning => pb::diagnostic::Severity::Warning as i32,
            },
            summary: d.summary,
            detail: d.detail,
            attribute: d.attribute.as_ref().filter(|p| !p.is_root()).map(path),
        })
        .collect()
}

/// Converts an attribute path.
pub(crate) fn path(path: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::{Step, step::Selector};
    let steps = path
        .steps()
        .iter()
        .map(|step| Step {
            selector: Some(match step {
                PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                PathStep::ElementKeyString(key) => Selector::ElementKeyString(key.clone()),
                PathStep::ElementKeyInt(index) => Selector::ElementKeyInt(*index),
            }),
        })
        .collect();
    pb::AttributePath { steps }
}

/// Converts a schema.
pub(crate) fn schema(schema: &Schema) -> pb::Schema {
    pb::Schema {
        version: schema.version,
        block: Some(block(&schema.block)),
    }
}

fn block(block: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: block
            .attributes
            .iter()
            .map(|a| {
                let source = a.source;
                use crate::framework::Source;
                pb::schema::Attribute {
                    name: a.name.clone(),
                    r#type: a.ty.to_json().to_string().into_bytes(),
                    description: a.description.clone(),
                    required: source == Source::Required,
                    optional: matches!(source, Source::Optional | Source::OptionalComputed),
                    computed: matches!(source, Source::Computed | Source::OptionalComputed),
                    sensitive: a.sensitive,
                    description_kind: MARKDOWN,
                    deprecated: false,
                    write_only: a.write_only,
                    deprecation_message: String::new(),
                }
            })
            .collect(),
        block_types: block.blocks.iter().map(nested_block).collect(),
        description: block.description.clone(),
        description_kind: MARKDOWN,
        deprecated: false,
        deprecation_message: String::new(),
    }
}

fn nested_block(nested: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    let nesting = match nested.nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::Set => NestingMode::Set,
    };
    pb::schema::NestedBlock {
        type_name: nested.name.clone(),
        block: Some(block(&nested.block)),
        nesting: nesting as i32,
        min_items: nested.min_items,
        max_items: nested.max_items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Attribute;

    #[test]
    fn schema_flags_follow_the_source() {
        let s = Schema::new(
            Block::new("d")
                .attribute(Attribute::string("a").required())
                .attribute(Attribute::string("b"))
                .attribute(Attribute::string("c").computed())
                .attribute(Attribute::string("d").optional_computed().sensitive())
                .attribute(Attribute::string("e_wo").write_only()),
        );
        let pb = schema(&s);
        let attrs = pb.block.unwrap().attributes;
        let flags: Vec<(bool, bool, bool, bool)> = attrs
            .iter()
            .map(|a| (a.required, a.optional, a.computed, a.sensitive))
            .collect();
        assert_eq!(
            flags,
            vec![
                (true, false, false, false),
                (false, true, false, false),
                (false, false, true, false),
                (false, true, true, true),
                (false, true, false, true)
            ]
        );
        let write_only: Vec<bool> = attrs.iter().map(|a| a.write_only).collect();
        assert_eq!(write_only, [false, false, false, false, true]);
        assert_eq!(attrs[0].r#type, b"\"string\"");
    }

    #[test]
    fn paths_and_severities_convert() {
        let mut diags = Diagnostics::new();
        diags.error_at(
            AttributePath::root().attribute("files").key("a.txt"),
            "s",
            "d",
        );
        diags.warning("w", "d");
        let pb = diagnostics(diags);
        assert_eq!(pb[0].severity, pb::diagnostic::Severity::Error as i32);
        assert_eq!(pb[0].attribute.as_ref().unwrap().steps.len(), 2);
        assert_eq!(pb[1].severity, pb::diagnostic::Severity::Warning as i32);
        assert!(pb[1].attribute.is_none());
    }

    #[test]
    fn empty_dynamic_value_is_null_and_garbage_is_a_diagnostic() {
        assert_eq!(decode(None, &Type::String, "config"), Ok(Value::Null));
        let garbage = pb::DynamicValue {
            msgpack: vec![0xc1],
            json: vec![],
        };
        let err = decode(Some(&garbage), &Type::String, "config").unwrap_err();
        assert!(err.has_errors());
    }
}
