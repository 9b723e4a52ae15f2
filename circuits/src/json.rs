//! Strict reading of JSON that comes from outside: an object that names a key twice is
//! refused.
//!
//! RFC 8259 (§4) only says that names *should* be unique, and parsers differ on what a
//! duplicate means: `serde_json::Value` keeps the last value, derived structs refuse some
//! duplicates and not others (an internally tagged enum buffers its fields first), and a
//! JavaScript wallet or a Go verifier may keep the first. Two readers of the same bytes
//! could then see two different transactions, so Pulse refuses the ambiguity instead of
//! picking a winner. Every decoder of outside JSON (transactions, protocol messages, proof
//! artifacts, key files, record envelopes) runs [`check_unique_keys`] before its typed
//! parse.
//!
//! The check walks the text once with serde_json's streaming deserializer, keeping only the
//! set of keys of each object on the current path (no `Value` is built). Nesting is bounded
//! by serde_json's recursion limit (128), so hostile input cannot exhaust the stack.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The longest key quoted in an error; longer keys are cut, so that an error never echoes a
/// large part of the input.
const MAX_KEY_SHOWN: usize = 64;

/// An object that names a key twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JSON object at {path} has the key {key:?} twice; send each field once")]
pub struct DuplicateKey {
    /// Where the object is, as a JSONPath (`$`, `$.signature`, `$.slots[2]`).
    pub path: String,
    /// The repeated key (cut to 64 characters).
    pub key: String,
}

/// Checks that no object in `json` names a key twice, at any depth.
///
/// Text that is not JSON passes: the caller's typed parse reports syntax errors in its own
/// words, so this check only ever adds the one error serde does not give.
///
/// # Errors
/// [`DuplicateKey`] naming the first repeated key and the path of its object.
pub fn check_unique_keys(json: &[u8]) -> Result<(), DuplicateKey> {
    let mut walk = Walk::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    // The walk aborts with a placeholder error at the first duplicate; what counts is what
    // it recorded. Any other error is a syntax error, left to the typed parse.
    let _ = Step { walk: &mut walk }.deserialize(&mut de);
    match walk.duplicate {
        Some(d) => Err(d),
        None => Ok(()),
    }
}

/// [`check_unique_keys`] for text.
///
/// # Errors
/// As [`check_unique_keys`].
pub fn check_unique_keys_str(json: &str) -> Result<(), DuplicateKey> {
    check_unique_keys(json.as_bytes())
}

enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct Walk {
    path: Vec<Segment>,
    duplicate: Option<DuplicateKey>,
}

impl Walk {
    fn path_text(&self) -> String {
        let mut out = String::from("$");
        for s in &self.path {
            match s {
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                Segment::Key(k)
                    if !k.is_empty()
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    out.push('.');
                    out.push_str(&shown(k));
                }
                Segment::Key(k) => out.push_str(&format!("[{:?}]", shown(k))),
            }
        }
        out
    }
}

fn shown(key: &str) -> String {
    match key.char_indices().nth(MAX_KEY_SHOWN) {
        Some((end, _)) => format!("{}…", &key[..end]),
        None => key.to_owned(),
    }
}

/// One value of the walk, at the path the walk holds.
struct Step<'w> {
    walk: &'w mut Walk,
}

impl<'de> DeserializeSeed<'de> for Step<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.walk.path.push(Segment::Index(i));
            let more = seq.next_element_seed(Step {
                walk: &mut *self.walk,
            })?;
            self.walk.path.pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                self.walk.duplicate = Some(DuplicateKey {
                    path: self.walk.path_text(),
                    key: shown(&key),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            self.walk.path.push(Segment::Key(key));
            map.next_value_seed(Step {
                walk: &mut *self.walk,
            })?;
            self.walk.path.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(json: &str) -> Option<DuplicateKey> {
        check_unique_keys_str(json).err()
    }

    #[test]
    fn unique_keys_pass_at_every_depth() {
        for ok in [
            r#"{"a":1,"b":{"a":2,"b":[{"a":3},{"a":4}]},"c":"a"}"#,
            "[]",
            "{}",
            r#"[{"x":1},{"x":1}]"#,
            "42",
            r#""text""#,
            r#"{"a":null,"A":true,"a\u0000":1.5e10,"b":-7}"#,
        ] {
            assert_eq!(dup(ok), None, "{ok}");
        }
    }

    #[test]
    fn a_duplicate_is_named_with_its_path() {
        let d = dup(r#"{"version":1,"type":"register","role":"doctor","role":"registrar"}"#)
            .expect("duplicate role");
        assert_eq!(d.path, "$");
        assert_eq!(d.key, "role");
        assert_eq!(
            d.to_string(),
            "the JSON object at $ has the key \"role\" twice; send each field once"
        );

        let d = dup(r#"{"signature":{"r8":["1","2"],"s":"3","s":"4"}}"#).expect("nested");
        assert_eq!(
            d.to_string(),
            "the JSON object at $.signature has the key \"s\" twice; send each field once"
        );

        let d = dup(r#"{"slots":[{"a":1},{"b":{"c":1,"c":2}}]}"#).expect("in an array");
        assert_eq!(d.path, "$.slots[1].b");

        let d = dup(r#"{"odd key":{"k":1,"k":1}}"#).expect("quoted path");
        assert_eq!(d.path, "$[\"odd key\"]");
    }

    #[test]
    fn escapes_are_compared_after_decoding() {
        // "r\u0038" is "r8": the same key written two ways.
        let d = dup(r#"{"r8":1,"r\u0038":2}"#).expect("escaped duplicate");
        assert_eq!(d.key, "r8");
    }

    #[test]
    fn syntax_errors_are_left_to_the_typed_parse() {
        for bad in ["", "{", r#"{"a":1,}"#, "not json", r#"{"a":1}{"#] {
            assert_eq!(dup(bad), None, "{bad}");
        }
        // A duplicate before the syntax error is still found.
        assert!(dup(r#"{"a":1,"a":2,"#).is_some());
    }

    #[test]
    fn long_keys_are_cut_and_deep_nesting_does_not_overflow() {
        let long = "k".repeat(500);
        let d = dup(&format!(r#"{{"{long}":1,"{long}":2}}"#)).expect("long key");
        assert!(d.key.chars().count() <= MAX_KEY_SHOWN + 1, "{}", d.key);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(dup(&deep), None);
    }
}
