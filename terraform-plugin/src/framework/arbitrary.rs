//! Test support (the `testing` feature): every value a schema admits, as Terraform sends it, for property tests of the
//! typed models (`super::model`).
//!
//! A resource's model must take any value Terraform may hand the provider for its schema: a
//! configuration, a proposed or planned state, a prior state, or the state an import starts
//! from. [`arb_block_value`] generates those values from the schema itself, so a new attribute
//! is covered the moment it is declared, and a model that cannot hold one of its values fails
//! a test instead of a user's plan.
//!
//! What the generator covers, position by position (a position is an attribute, a nested
//! block, an element of a list or set, a value of a map, or an attribute of an object type):
//!
//! | position | [`Situation::Config`] | [`Situation::Plan`] | [`Situation::State`] | [`Situation::Import`] |
//! |---|---|---|---|---|
//! | required attribute | known, unknown | known, unknown | known | known, null |
//! | optional (and optional+computed) attribute | null, unknown, known | null, unknown, known | null, known | null, known |
//! | computed-only attribute | null | null, unknown, known | null, known | null, known |
//! | write-only attribute | null, unknown, known | null | null | null |
//! | inside a value (element, map value, object attribute) | null, unknown, known | null, unknown, known | null, known | null, known |
//! | `Single` nested block (required or not) | null, unknown, an object | null, unknown, an object | null, an object | null, an object |
//! | `Set` nested block | null, unknown, 0–3 objects | null, unknown, 0–3 objects | null, 0–3 objects | null, 0–3 objects |
//!
//! Known values: strings (empty, plain, with spaces, dots, slashes and `${…}`), both bools,
//! integers and decimals, collections of 0–3 elements, maps with arbitrary keys (the empty key
//! included). Required single blocks may be null everywhere: Terraform checks block counts,
//! but an import starts from nothing, and a model that reads null there costs nothing.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::Union;

use super::schema::{Attribute, Block, Nesting, Source};
use crate::value::{Type, Value};

/// Which request the value comes in, which decides where nulls and unknowns may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Situation {
    /// A configuration (validate, and the `config` of plan and apply): unknowns anywhere the
    /// user may write a value, computed-only attributes null.
    Config,
    /// A proposed or planned state: unknowns anywhere, required attributes included; write-only
    /// attributes null.
    Plan,
    /// A prior or refreshed state: wholly known; required attributes set.
    State,
    /// The state an import starts from: wholly known, and any attribute may be null, the
    /// required ones included.
    Import,
}

impl Situation {
    /// Whether unknown values appear.
    fn unknowns(self) -> bool {
        matches!(self, Self::Config | Self::Plan)
    }
}

/// One of `choices`, equally likely.
fn one_of(choices: Vec<BoxedStrategy<Value>>) -> BoxedStrategy<Value> {
    Union::new(choices).boxed()
}

/// Values of one attribute of a block, by its source, in a situation.
fn arb_attribute(attribute: &Attribute, situation: Situation) -> BoxedStrategy<Value> {
    let known = arb_known(&attribute.ty, situation);
    let null = || Just(Value::Null).boxed();
    let unknown = || Just(Value::Unknown).boxed();
    if attribute.write_only {
        return match situation {
            Situation::Config => one_of(vec![null(), unknown(), known]),
            _ => null(),
        };
    }
    match (attribute.source, situation) {
        (Source::Required, Situation::Config | Situation::Plan) => one_of(vec![known, unknown()]),
        (Source::Required, Situation::State) => known,
        (Source::Computed, Situation::Config) => null(),
        (_, Situation::Config | Situation::Plan) => one_of(vec![null(), unknown(), known]),
        (_, Situation::State | Situation::Import) => one_of(vec![null(), known]),
    }
}

/// A value inside another one (an element, a map value, an object type's attribute).
fn arb_inner(ty: &Type, situation: Situation) -> BoxedStrategy<Value> {
    let mut choices = vec![
        (4, arb_known(ty, situation)),
        (1, Just(Value::Null).boxed()),
    ];
    if situation.unknowns() {
        choices.push((1, Just(Value::Unknown).boxed()));
    }
    Union::new_weighted(choices).boxed()
}

/// A known value of `ty` (its parts may still be null or unknown, as the situation allows).
fn arb_known(ty: &Type, situation: Situation) -> BoxedStrategy<Value> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => prop_oneof![
            any::<i32>().prop_map(Value::number),
            "-?[0-9]{1,6}\\.[0-9]{1,4}".prop_filter_map("a decimal", |text| {
                crate::value::json::decode_json(&serde_json::from_str(&text).ok()?, &Type::Number)
                    .ok()
            }),
        ]
        .boxed(),
        Type::String | Type::Dynamic => arb_string().prop_map(Value::String).boxed(),
        Type::List(element) => vec(arb_inner(element, situation), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(element) => vec(arb_inner(element, situation), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(element) => btree_map(arb_key(), arb_inner(element, situation), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attributes) => attributes
            .iter()
            .map(|(name, inner)| (Just(name.clone()), arb_inner(inner, situation)))
            .collect::<Vec<_>>()
            .prop_map(|fields| Value::Object(fields.into_iter().collect()))
            .boxed(),
        Type::Tuple(elements) => elements
            .iter()
            .map(|element| arb_inner(element, situation))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
    }
}

/// Strings users write: empty, plain, and with the characters that paths, URLs and template
/// placeholders hold.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9-]{1,10}",
        "[ -~]{0,16}",
        Just("${a.b}".to_string()),
    ]
}

/// Map keys: names, paths, and the empty key.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z_][A-Za-z0-9_]{0,6}",
        "/?[a-z./]{1,12}"
    ]
}

/// A value of `block`'s object type as Terraform sends it in `situation`: every attribute and
/// nested block present, each null, unknown or known as the table in the module docs says.
pub fn arb_block_value(block: &Block, situation: Situation) -> BoxedStrategy<Value> {
    let mut parts: Vec<(Just<String>, BoxedStrategy<Value>)> = block
        .attributes
        .iter()
        .map(|attribute| {
            (
                Just(attribute.name.clone()),
                arb_attribute(attribute, situation),
            )
        })
        .collect();
    for nested in &block.blocks {
        let object = arb_block_value(&nested.block, situation);
        let present = match nested.nesting {
            Nesting::Single => object,
            Nesting::Set => vec(object, 0..4).prop_map(Value::Set).boxed(),
        };
        let mut choices = vec![(4, present), (1, Just(Value::Null).boxed())];
        if situation.unknowns() {
            choices.push((1, Just(Value::Unknown).boxed()));
        }
        parts.push((
            Just(nested.name.clone()),
            Union::new_weighted(choices).boxed(),
        ));
    }
    parts
        .prop_map(|fields| Value::Object(fields.into_iter().collect()))
        .boxed()
}

/// Fails unless every value `schema` admits, in every situation, converts to model `M` and back
/// (`super::model::round_trip`): the property test each resource runs on its model.
pub fn assert_every_value_fits<M>(schema: &super::Schema)
where
    M: serde::Serialize + serde::de::DeserializeOwned,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let ty = schema.implied_type();
    let mut runner = TestRunner::new(Config {
        cases: 2048,
        ..Config::default()
    });
    let checked = runner.run(&arb_any_situation(&schema.block), |(situation, value)| {
        super::model::round_trip::<M>(&value, &ty)
            .map_err(|reason| TestCaseError::fail(format!("{situation:?}: {reason}")))
    });
    if let Err(failure) = checked {
        panic!("{failure}");
    }
}

/// Any of the four situations with a value for it.
pub fn arb_any_situation(block: &Block) -> BoxedStrategy<(Situation, Value)> {
    let situations = [
        Situation::Config,
        Situation::Plan,
        Situation::State,
        Situation::Import,
    ];
    Union::new(situations.map(|situation| {
        arb_block_value(block, situation)
            .prop_map(move |value| (situation, value))
            .boxed()
    }))
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::NestedBlock;

    fn block() -> Block {
        Block::new("t")
            .attribute(Attribute::string("id").required())
            .attribute(Attribute::string("server").computed())
            .attribute(Attribute::string_map("tags"))
            .block(NestedBlock::new(
                "inner",
                Nesting::Single,
                Block::new("i").attribute(Attribute::string("a")),
            ))
    }

    proptest! {
        #[test]
        fn states_are_wholly_known_and_keep_required_attributes(value in arb_block_value(&block(), Situation::State)) {
            prop_assert!(value.is_wholly_known());
            prop_assert!(!value.get("id").is_null());
        }

        #[test]
        fn configurations_leave_computed_attributes_null(value in arb_block_value(&block(), Situation::Config)) {
            prop_assert!(value.get("server").is_null());
            prop_assert!(!value.get("id").is_null());
        }

        #[test]
        fn values_fit_the_schema_type(value in arb_block_value(&block(), Situation::Plan)) {
            let ty = block().implied_type();
            prop_assert!(crate::value::msgpack::encode(&value, &ty).is_ok());
        }
    }
}
