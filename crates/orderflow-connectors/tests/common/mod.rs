//! What the platform test files share: fixture loading, JSON editing, and the strategies of
//! their fuzz properties (arbitrary bytes, fixtures with mutated bytes, fixtures with an odd
//! value in any field).

// Each test file is a crate of its own and uses only some of these.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// The text of a file under `tests/fixtures/`, embedded at compile time (`.as_bytes()` for
/// a body).
#[allow(
    unused_macros,
    reason = "the custom platform has no outside sample and leaves it unused"
)]
macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
    };
}

#[allow(
    unused_imports,
    reason = "the custom platform has no outside sample and leaves it unused"
)]
pub(crate) use fixture;

/// A JSON fixture as a document, for editing.
pub fn json(fixture: &[u8]) -> Value {
    serde_json::from_slice(fixture).expect("the fixture is JSON")
}

/// A document as a body to parse.
pub fn body(document: &Value) -> Vec<u8> {
    serde_json::to_vec(document).expect("a Value serialises")
}

/// `document` with `edit` applied, as a body to parse: for the cases the fixtures do not show.
pub fn edited(mut document: Value, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    edit(&mut document);
    body(&document)
}

pub fn rfc3339(instant: time::OffsetDateTime) -> String {
    instant
        .format(&time::format_description::well_known::Rfc3339)
        .expect("an instant formats")
}

// ---- fuzz properties ----

/// The fuzz properties every JSON parser's test file states, as `#[test]`s of the file that
/// invokes it: `exercise` (a `Fn(&[u8])` that calls the parser) must not panic on arbitrary
/// bytes, on one of `fixtures` (bodies) with a few bytes flipped, inserted or deleted, nor on
/// one of `documents` (JSON values) with an odd value in any field.
// PrestaShop's XML has properties of its own and leaves it unused.
#[allow(unused_macros)]
macro_rules! never_panics {
    (
        cases: $cases:expr,
        exercise: $exercise:expr,
        fixtures: $fixtures:expr,
        documents: $documents:expr $(,)?
    ) => {
        proptest::proptest! {
            #![proptest_config(proptest::prelude::ProptestConfig::with_cases($cases))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in $crate::common::arbitrary_bytes()) {
                ($exercise)(&bytes);
            }

            #[test]
            fn fixtures_with_mutated_bytes_never_panic(
                fixture in proptest::prelude::any::<proptest::sample::Index>(),
                edits in $crate::common::edits(),
            ) {
                let fixtures: &[&[u8]] = &$fixtures;
                let fixture = *fixture.get(fixtures);
                ($exercise)(&$crate::common::mutate(fixture, &edits));
            }

            #[test]
            fn fixtures_with_an_odd_value_anywhere_never_panic(
                document in proptest::prelude::any::<proptest::sample::Index>(),
                at in proptest::prelude::any::<proptest::sample::Index>(),
                value in $crate::common::odd_value(),
            ) {
                let documents: Vec<serde_json::Value> = $documents;
                ($exercise)(&$crate::common::with_odd_value(document.get(&documents), at, &value));
            }
        }
    };
}

#[allow(unused_imports)]
pub(crate) use never_panics;

// ---- fuzz strategies ----

/// Any bytes at all, as a forged or garbled delivery may carry.
pub fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// One byte edit; positions are [`Index`]es, so that they fit whatever length the bytes have
/// by then.
#[derive(Debug, Clone)]
pub enum Edit {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

/// One to seven byte edits: a fixture damaged a little, so that the parser gets past its
/// first checks before it meets the damage.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<Index>(), 1..=u8::MAX).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<Index>().prop_map(Edit::Delete),
    ];
    proptest::collection::vec(edit, 1..8)
}

/// `fixture` with `edits` applied in turn.
pub fn mutate(fixture: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = fixture.to_vec();
    for edit in edits {
        let len = bytes.len();
        match edit {
            Edit::Flip(at, mask) if len > 0 => {
                if let Some(byte) = bytes.get_mut(at.index(len)) {
                    *byte ^= mask;
                }
            }
            Edit::Insert(at, byte) => bytes.insert(at.index(len + 1), *byte),
            Edit::Delete(at) if len > 0 => {
                bytes.remove(at.index(len));
            }
            _ => {}
        }
    }
    bytes
}

/// A value to put into a field of a well-formed document.
#[derive(Debug, Clone)]
pub enum OddValue {
    Json(Value),
    /// Number text that no `Value` can hold or keep as written (beyond u64, an exponent, many
    /// fraction digits), spliced into the serialised document.
    RawNumber(String),
}

/// Values of the kinds that trip parsers: huge, negative and fractional numbers, exponents,
/// numeric, blank, zero-date and arbitrary strings, and the wrong shapes.
pub fn odd_value() -> impl Strategy<Value = OddValue> {
    let json = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(-0.0)),
        Just(json!(1e300)),
        "-?[0-9]{0,30}(\\.[0-9]{0,8})?".prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from("-1")),
        Just(Value::from("0000-00-00 00:00:00")),
        Just(Value::from("99999999999999999999.99")),
        Just(json!([])),
        Just(json!({})),
    ];
    prop_oneof![
        8 => json.prop_map(OddValue::Json),
        1 => "-?[0-9]{1,40}(\\.[0-9]{1,10})?([eE][+-]?[0-9]{1,4})?".prop_map(OddValue::RawNumber),
    ]
}

/// Stands in for raw number text until the document is serialised.
const RAW: &str = "__raw_number__";

/// `document` with its `at`-th node (depth first, the root included) replaced by `value`, as
/// a body to parse.
pub fn with_odd_value(document: &Value, at: Index, value: &OddValue) -> Vec<u8> {
    let mut document = document.clone();
    let mut pick = at.index(count_nodes(&document));
    let replacement = match value {
        OddValue::Json(json) => json.clone(),
        OddValue::RawNumber(_) => json!(RAW),
    };
    replace_nth(&mut document, &mut pick, &replacement);
    let text = serde_json::to_string(&document).expect("a Value serialises");
    match value {
        OddValue::Json(_) => text.into_bytes(),
        OddValue::RawNumber(raw) => text.replace(&format!("\"{RAW}\""), raw).into_bytes(),
    }
}

/// Replaces the `pick`-th node (depth first) of a JSON document with `value`.
fn replace_nth(node: &mut Value, pick: &mut usize, value: &Value) -> bool {
    if *pick == 0 {
        *node = value.clone();
        return true;
    }
    *pick -= 1;
    match node {
        Value::Array(items) => items.iter_mut().any(|n| replace_nth(n, pick, value)),
        Value::Object(fields) => fields.values_mut().any(|n| replace_nth(n, pick, value)),
        _ => false,
    }
}

fn count_nodes(node: &Value) -> usize {
    1 + match node {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(fields) => fields.values().map(count_nodes).sum(),
        _ => 0,
    }
}
