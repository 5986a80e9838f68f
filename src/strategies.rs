//! Strategies shared by the property tests of the modules that read outside input (test
//! builds only): JSON documents shaped like the answers servers send.

use proptest::prelude::*;
use serde_json::Value;

/// A JSON document whose object keys are mostly `keys` (the fields a reader looks for),
/// with values of every type, nested a few levels: right shapes with wrong types, missing
/// fields, extra fields and junk.
pub fn json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0, 1, u64::MAX, i64::MAX as u64]).prop_map(Value::from),
        Just(Value::from(i64::MIN)),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[0-9]{1,25}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        4 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    leaf.prop_recursive(3, 32, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
