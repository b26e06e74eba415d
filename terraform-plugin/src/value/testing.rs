//! Test-only proptest strategies shared by the codec tests: arbitrary types, values that
//! conform to them, and byte mutations for robustness tests.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::Union;

use super::number::Number;
use super::tree::Value;
use super::types::Type;

/// An arbitrary type, at most three containers deep.
pub(crate) fn arb_type() -> impl Strategy<Value = Type> {
    arb_type_of_depth(3)
}

/// An arbitrary type, at most `depth` containers deep.
fn arb_type_of_depth(depth: u32) -> BoxedStrategy<Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
    .boxed()
}

/// What values to generate.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Sprinkle in unknowns (msgpack) or not (JSON).
    unknowns: bool,
    /// Sometimes leave object attributes out (they decode as null).
    omit_attributes: bool,
    /// How many more dynamic values may nest inside this one.
    dynamic_budget: u32,
}

/// An arbitrary type with a value of that type: nulls everywhere, unknowns if `unknowns`
/// (so `false` gives values JSON can hold: no unknowns and no infinities).
pub(crate) fn arb_type_and_value(unknowns: bool) -> impl Strategy<Value = (Type, Value)> {
    let options = Options {
        unknowns,
        omit_attributes: true,
        dynamic_budget: 2,
    };
    // Mostly objects with several attributes, shaped like a resource schema; sometimes any type.
    let schema_like = btree_map("[a-z_]{1,6}", arb_type(), 1..6).prop_map(Type::Object);
    prop_oneof![3 => schema_like, 1 => arb_type()].prop_flat_map(move |ty| {
        let value = arb_value(&ty, options);
        (Just(ty), value)
    })
}

/// A value conforming to `ty`.
fn arb_value(ty: &Type, options: Options) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number(options.unknowns).prop_map(Value::Number).boxed(),
        Type::String => "\\PC{0,12}".prop_map(Value::String).boxed(),
        Type::List(element) => vec(arb_value(element, options), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(element) => vec(arb_value(element, options), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(element) => btree_map("\\PC{0,6}", arb_value(element, options), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attributes) => {
            let omit = options.omit_attributes;
            let parts: Vec<_> = attributes
                .iter()
                .map(|(name, attribute_type)| {
                    let value = arb_value(attribute_type, options);
                    let present = if omit {
                        proptest::bool::weighted(0.8).boxed()
                    } else {
                        Just(true).boxed()
                    };
                    (Just(name.clone()), present, value)
                })
                .collect();
            parts
                .prop_map(|parts| {
                    Value::Object(
                        parts
                            .into_iter()
                            .filter(|(_, present, _)| *present)
                            .map(|(name, _, value)| (name, value))
                            .collect(),
                    )
                })
                .boxed()
        }
        Type::Tuple(elements) => elements
            .iter()
            .map(|element| arb_value(element, options))
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Dynamic => arb_dynamic(options),
    };
    let mut choices = vec![(12, known), (1, Just(Value::Null).boxed())];
    if options.unknowns {
        choices.push((1, Just(Value::Unknown).boxed()));
    }
    Union::new_weighted(choices).boxed()
}

/// A known value under a `dynamic` type: either wrapped with an explicit concrete type, or a
/// plain value whose type the encoder has to infer.
fn arb_dynamic(options: Options) -> BoxedStrategy<Value> {
    let Some(budget) = options.dynamic_budget.checked_sub(1) else {
        return Just(Value::dynamic(Type::String, Value::string("leaf"))).boxed();
    };
    let inner = Options {
        dynamic_budget: budget,
        ..options
    };
    let wrapped = arb_type_of_depth(2).prop_flat_map(move |ty| {
        arb_value(&ty, inner).prop_map(move |value| Value::dynamic(ty.clone(), value))
    });
    // Inference needs every element of a collection to show the same shape, so plain values
    // come from dynamic-free types with complete objects.
    let plain_options = Options {
        omit_attributes: false,
        ..inner
    };
    let plain = arb_type_of_depth(2)
        .prop_filter("plain values need a dynamic-free type", |ty| {
            !contains_dynamic(ty)
        })
        .prop_flat_map(move |ty| arb_value(&ty, plain_options))
        .prop_filter("a plain null is just null", |v| !v.is_null());
    prop_oneof![wrapped, plain].boxed()
}

/// Whether `dynamic` appears anywhere in `ty`.
fn contains_dynamic(ty: &Type) -> bool {
    match ty {
        Type::Bool | Type::Number | Type::String => false,
        Type::Dynamic => true,
        Type::List(t) | Type::Set(t) | Type::Map(t) => contains_dynamic(t),
        Type::Object(attributes) => attributes.values().any(contains_dynamic),
        Type::Tuple(elements) => elements.iter().any(contains_dynamic),
    }
}

/// Numbers from every source: i64, u64, f64 (with infinities unless for JSON), long decimals.
fn arb_number(infinities: bool) -> BoxedStrategy<Number> {
    let decimal = "-?[0-9]{1,40}(\\.[0-9]{1,40})?(e-?[0-9]{1,3})?"
        .prop_filter_map("parses", |text| Number::parse(&text).ok());
    prop_oneof![
        any::<i64>().prop_map(Number::from_i64),
        any::<u64>().prop_map(Number::from_u64),
        any::<f64>()
            .prop_filter("JSON has no infinity", move |f| infinities || f.is_finite())
            .prop_filter_map("not NaN", Number::from_f64),
        decimal,
    ]
    .boxed()
}

/// Applies `edits` to `bytes`: each `(position, byte, op)` overwrites (0), inserts (1) or
/// deletes (2) at `position` modulo the length.
pub(crate) fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(position, byte, op) in edits {
        let len = bytes.len();
        match op {
            1 => bytes.insert(position % (len + 1), byte),
            _ if len == 0 => bytes.push(byte),
            0 => {
                if let Some(b) = bytes.get_mut(position % len) {
                    *b = byte;
                }
            }
            _ => {
                bytes.remove(position % len);
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_dynamic_looks_into_every_container() {
        let cases = [
            (Type::object([("a", Type::list(Type::String))]), false),
            (Type::object([("a", Type::list(Type::Dynamic))]), true),
            (Type::tuple([Type::String, Type::Dynamic]), true),
        ];
        for (ty, want) in cases {
            assert_eq!(contains_dynamic(&ty), want, "{ty}");
        }
    }

    #[test]
    fn mutate_applies_each_edit() {
        assert_eq!(mutate(vec![1, 2, 3], &[(1, 9, 0)]), vec![1, 9, 3]);
        assert_eq!(mutate(vec![1, 2, 3], &[(3, 9, 1)]), vec![1, 2, 3, 9]);
        assert_eq!(mutate(vec![1, 2, 3], &[(4, 9, 2)]), vec![1, 3]);
        assert_eq!(mutate(vec![], &[(4, 9, 2)]), vec![9]);
    }

    proptest! {
        #[test]
        fn generated_values_are_wholly_known_without_unknowns((_, value) in arb_type_and_value(false)) {
            prop_assert!(value.is_wholly_known());
        }
    }
}
