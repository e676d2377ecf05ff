//! Ids in request bodies as people write them. The API answers with `number: "INC-42"`,
//! chat and paths take `INC-42`, `#42` and `42`; a body that links incident `"INC-42"` to
//! a problem should too, rather than demand the bare number. Each function here is a
//! `deserialize_with` for one kind of field; a plain JSON number is read as before.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Deserialize, SeqAccess, Visitor};

use super::incident::parse_prefixed_id;

/// Reads one id: a non-negative JSON number, or a string `parse_prefixed_id` takes with
/// this prefix.
struct RefVisitor(&'static str);

impl<'de> Visitor<'de> for RefVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an id: a number, \"{}<n>\" or \"#<n>\"", self.0)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        parse_prefixed_id(s, self.0).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
    }
}

/// One id of the kind `prefix` names, as a value of its own so that `Option` and `Vec`
/// of it deserialize through serde's own impls.
struct Ref<const KIND: u8>(u64);

/// `Ref` kinds: the prefix each reads.
const INCIDENT: u8 = 0;
const PROBLEM: u8 = 1;

const fn prefix(kind: u8) -> &'static str {
    match kind {
        PROBLEM => "PRB-",
        _ => "INC-",
    }
}

impl<'de, const KIND: u8> Deserialize<'de> for Ref<KIND> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RefVisitor(prefix(KIND))).map(Ref)
    }
}

/// An incident id: `42`, `"42"`, `"INC-42"` (any case) or `"#42"`.
pub fn incident<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ref::<INCIDENT>::deserialize(d).map(|r| r.0)
}

/// An optional incident id (absent or null: none).
pub fn incident_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<Ref<INCIDENT>>::deserialize(d).map(|r| r.map(|r| r.0))
}

/// A list of incident ids.
pub fn incidents<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    /// Collects the list without an intermediate `Vec<Ref>`.
    struct Ids;
    impl<'de> Visitor<'de> for Ids {
        type Value = Vec<u64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of incident ids")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u64>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(r) = seq.next_element::<Ref<INCIDENT>>()? {
                out.push(r.0);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Ids)
}

/// An optional problem id: `7`, `"PRB-7"` or `"#7"`.
pub fn problem_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<Ref<PROBLEM>>::deserialize(d).map(|r| r.map(|r| r.0))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::incident")]
        incident: u64,
        #[serde(default, deserialize_with = "super::incident_opt")]
        maybe: Option<u64>,
        #[serde(default, deserialize_with = "super::incidents")]
        many: Vec<u64>,
        #[serde(default, deserialize_with = "super::problem_opt")]
        problem: Option<u64>,
    }

    fn read(v: serde_json::Value) -> Result<Body, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_and_the_references_people_write() {
        for written in [
            json!(42),
            json!("42"),
            json!("INC-42"),
            json!("inc-42"),
            json!("#42"),
        ] {
            let b = read(json!({"incident": written})).expect("read");
            assert_eq!(b.incident, 42, "{written}");
            assert_eq!((b.maybe, b.many.len(), b.problem), (None, 0, None));
        }
        let b = read(json!({"incident": 1, "maybe": "INC-3", "many": [4, "INC-5", "#6"], "problem": "PRB-7"}))
            .expect("read");
        assert_eq!(
            (b.maybe, b.many, b.problem),
            (Some(3), vec![4, 5, 6], Some(7))
        );
        let b = read(json!({"incident": 1, "maybe": null, "problem": null})).expect("read");
        assert_eq!((b.maybe, b.problem), (None, None));
    }

    #[test]
    fn anything_else_is_refused_with_what_was_expected() {
        for wrong in [
            json!({"incident": "PRB-1"}),
            json!({"incident": "INC-"}),
            json!({"incident": "INC-0"}),
            json!({"incident": -1}),
            json!({"incident": 1.5}),
            json!({"incident": true}),
            json!({"incident": 1, "problem": "INC-2"}),
            json!({"incident": 1, "many": "INC-2"}),
            json!({"incident": 1, "many": ["x"]}),
        ] {
            let e = read(wrong.clone()).expect_err("refused");
            assert!(e.contains("id") || e.contains("list"), "{wrong}: {e}");
        }
    }
}
