//! Schemas: what a provider or resource accepts, described once and used everywhere.
//!
//! A schema drives the wire codec (its implied type), validation (required attributes, attribute
//! validators), planning (computed attributes, defaults, replacement) and the generated docs
//! (markdown descriptions). Resources build theirs with the small builder API here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::Diagnostics;
use crate::value::{AttributePath, Type, Value};

/// A check on one attribute's value; called only for known, non-null values.
pub type Validator = Arc<dyn Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync>;

/// A versioned schema for a provider configuration or a resource.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Bumped when the state layout changes; Terraform passes it back in `UpgradeResourceState`.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A version-0 schema with the given top-level block.
    pub fn new(block: Block) -> Self {
        Self { version: 0, block }
    }

    /// The type of a value conforming to this schema.
    pub fn implied_type(&self) -> Type {
        self.block.implied_type()
    }
}

/// A block: attributes and nested blocks.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// The attributes, in documentation order.
    pub attributes: Vec<Attribute>,
    /// The nested blocks, in documentation order.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description of the block.
    pub description: String,
}

impl Block {
    /// An empty block with a markdown description.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            ..Self::default()
        }
    }

    /// Adds an attribute.
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// Adds a nested block.
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }

    /// Write-only attributes the framework cannot serve, with the reason: one that is not
    /// optional (Terraform must be able to plan it null), or one inside a `Set` block (its
    /// configuration value could not be matched with the plan's element).
    #[cfg(any(test, feature = "testing"))]
    pub fn write_only_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.collect_write_only_problems("", false, &mut problems);
        problems
    }

    #[cfg(any(test, feature = "testing"))]
    fn collect_write_only_problems(&self, at: &str, in_set: bool, out: &mut Vec<String>) {
        for attribute in self.attributes.iter().filter(|a| a.write_only) {
            let name = format!("{at}{}", attribute.name);
            if attribute.source != Source::Optional {
                out.push(format!("{name} is write-only but not optional"));
            }
            if in_set {
                out.push(format!("{name} is write-only inside a set block"));
            }
        }
        for nested in &self.blocks {
            let inner_at = format!("{at}{}.", nested.name);
            let in_set = in_set || nested.nesting == Nesting::Set;
            nested
                .block
                .collect_write_only_problems(&inner_at, in_set, out);
        }
    }

    /// The object type of a value of this block.
    pub fn implied_type(&self) -> Type {
        let mut fields = BTreeMap::new();
        for attribute in &self.attributes {
            fields.insert(attribute.name.clone(), attribute.ty.clone());
        }
        for block in &self.blocks {
            fields.insert(block.name.clone(), block.implied_type());
        }
        Type::Object(fields)
    }
}

/// How Terraform gets an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The user must set it.
    Required,
    /// The user may set it; null when unset.
    Optional,
    /// The provider sets it; the user cannot.
    Computed,
    /// The user may set it; otherwise the provider does (a default or a server value).
    OptionalComputed,
}

/// One attribute of a block.
#[derive(Clone)]
pub struct Attribute {
    /// The attribute's name in HCL.
    pub name: String,
    /// Its value type.
    pub ty: Type,
    /// Markdown description, used by Terraform and by the generated docs.
    pub description: String,
    /// Who sets the value.
    pub source: Source,
    /// Hidden in plans and output.
    pub sensitive: bool,
    /// Only in configuration: never in a plan or a state (Terraform ≥ 1.11, OpenTofu ≥ 1.11).
    pub write_only: bool,
    /// A change of value replaces the resource.
    pub requires_replace: bool,
    /// The value planned when the configuration leaves the attribute unset.
    pub default: Option<Value>,
    /// Checks on known values.
    pub validators: Vec<Validator>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("source", &self.source)
            .field("sensitive", &self.sensitive)
            .field("write_only", &self.write_only)
            .field("requires_replace", &self.requires_replace)
            .finish_non_exhaustive()
    }
}

impl Attribute {
    /// An optional attribute of any type; refine it with the builder methods.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Self {
            name: name.into(),
            ty,
            description: String::new(),
            source: Source::Optional,
            sensitive: false,
            write_only: false,
            requires_replace: false,
            default: None,
            validators: Vec::new(),
        }
    }

    /// An optional string attribute.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, Type::String)
    }

    /// An optional bool attribute.
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, Type::Bool)
    }

    /// An optional list-of-strings attribute.
    pub fn string_list(name: impl Into<String>) -> Self {
        Self::new(name, Type::List(Box::new(Type::String)))
    }

    /// An optional map-of-strings attribute.
    pub fn string_map(name: impl Into<String>) -> Self {
        Self::new(name, Type::Map(Box::new(Type::String)))
    }

    /// Sets the markdown description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// The user must set it.
    pub fn required(mut self) -> Self {
        self.source = Source::Required;
        self
    }

    /// Only the provider sets it.
    pub fn computed(mut self) -> Self {
        self.source = Source::Computed;
        self
    }

    /// The user may set it; otherwise `default` is planned.
    pub fn default(mut self, value: Value) -> Self {
        self.source = Source::OptionalComputed;
        self.default = Some(value);
        self
    }

    /// The user may set it; otherwise the provider decides (see `Resource::modify_plan`).
    pub fn optional_computed(mut self) -> Self {
        self.source = Source::OptionalComputed;
        self
    }

    /// Hidden in plans and output.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Write-only: Terraform sends the value in the configuration only, and it is never part
    /// of a plan or a state (the framework keeps it null there). Sensitive too, so that the
    /// configuration display hides it. Only for optional attributes outside `Set` blocks:
    /// Terraform cannot address a set element to match a value with its configuration.
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self.sensitive = true;
        self
    }

    /// Changing it replaces the resource.
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }

    /// Adds a validator, run on known non-null values only.
    pub fn validate(
        mut self,
        check: impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static,
    ) -> Self {
        self.validators.push(Arc::new(check));
        self
    }

    /// Whether the provider may plan a value for it.
    pub fn is_computed(&self) -> bool {
        matches!(self.source, Source::Computed | Source::OptionalComputed)
    }
}

/// How many of a nested block may appear, and how they are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; null when absent.
    Single,
    /// An unordered set.
    Set,
}

/// A nested block of a block.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// The block type name in HCL.
    pub name: String,
    /// How instances are collected.
    pub nesting: Nesting,
    /// The contents of one instance.
    pub block: Block,
    /// The fewest instances allowed (0 = no minimum).
    pub min_items: i64,
    /// The most instances allowed (0 = no maximum).
    pub max_items: i64,
}

impl NestedBlock {
    /// A nested block of the given nesting.
    pub fn new(name: impl Into<String>, nesting: Nesting, block: Block) -> Self {
        Self {
            name: name.into(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }

    /// Requires exactly one instance of a `Single` block.
    pub fn required(mut self) -> Self {
        self.min_items = 1;
        self.max_items = 1;
        self
    }

    /// The type of this nested block's value.
    pub fn implied_type(&self) -> Type {
        let element = self.block.implied_type();
        match self.nesting {
            Nesting::Single => element,
            Nesting::Set => Type::Set(Box::new(element)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_type_covers_attributes_and_blocks() {
        let block = Block::new("test")
            .attribute(Attribute::string("id").required())
            .attribute(Attribute::string_map("variables"))
            .block(NestedBlock::new(
                "criteria",
                Nesting::Set,
                Block::new("c").attribute(Attribute::string("env_type")),
            ))
            .block(NestedBlock::new(
                "cluster",
                Nesting::Single,
                Block::new("k").attribute(Attribute::bool("insecure")),
            ));
        let ty = block.implied_type();
        assert_eq!(
            ty.to_json(),
            serde_json::json!(["object", {
                "id": "string",
                "variables": ["map", "string"],
                "criteria": ["set", ["object", {"env_type": "string"}]],
                "cluster": ["object", {"insecure": "bool"}],
            }])
        );
    }

    #[test]
    fn write_only_attributes_must_be_optional_and_outside_sets() {
        let block = Block::new("t")
            .attribute(Attribute::string("a_wo").write_only())
            .attribute(Attribute::string("b_wo").required().write_only())
            .block(NestedBlock::new(
                "s",
                Nesting::Set,
                Block::new("s").attribute(Attribute::string("c_wo").write_only()),
            ));
        assert_eq!(
            block.write_only_problems(),
            [
                "b_wo is write-only but not optional",
                "s.c_wo is write-only inside a set block"
            ]
        );
        assert!(Attribute::string("a").write_only().sensitive);
    }

    #[test]
    fn builders_set_sources() {
        assert_eq!(Attribute::string("a").source, Source::Optional);
        assert_eq!(Attribute::string("a").required().source, Source::Required);
        assert!(Attribute::string("a").computed().is_computed());
        let with_default = Attribute::bool("b").default(Value::Bool(false));
        assert_eq!(with_default.source, Source::OptionalComputed);
        assert_eq!(with_default.default, Some(Value::Bool(false)));
    }
}
