//! One pass over a payload that accepts exactly what parsing it into `serde_json` values
//! accepts (the same parser: syntax, nesting limit, numbers out of range, escapes, lone
//! surrogates), building nothing: of each event, only whether it has its own id and whether
//! its text can go to `export` as it is.
//!
//! Duplicate keys are why this visits every object: a `serde_json::Map` keeps the last of
//! two equal keys, so ingest used to send one, while `export`'s derived `Envelope` refuses
//! an event with a duplicate field. An event with one anywhere is rewritten as before.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// What ingest needs to know of one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Its `id` is a non-empty string: the event keeps it.
    pub own_id: bool,
    /// It has an `id` member at all, of any value (`""`, `null`, a number…).
    pub id_key: bool,
    /// Some object in it has a key twice.
    pub duplicate_key: bool,
}

impl Scan {
    /// Its text can be passed on as it is (with a derived id put in front when it has no
    /// `id` member): no duplicate to resolve, no `id` value to replace.
    pub fn verbatim(&self) -> bool {
        !self.duplicate_key && (self.own_id || !self.id_key)
    }
}

/// The scans of a payload's events, in order; `Err` exactly when the payload is not a JSON
/// array of objects.
pub fn scan(json: &[u8]) -> serde_json::Result<Vec<Scan>> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let scans = de.deserialize_seq(Events)?;
    de.end()?;
    Ok(scans)
}

/// The payload: a sequence of events.
struct Events;

impl<'de> Visitor<'de> for Events {
    type Value = Vec<Scan>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Scan>, A::Error> {
        let mut scans = Vec::new();
        while let Some(scan) = seq.next_element_seed(Event)? {
            scans.push(scan);
        }
        Ok(scans)
    }
}

/// One event: an object, whose top-level `id` is looked at.
struct Event;

impl<'de> DeserializeSeed<'de> for Event {
    type Value = Scan;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scan, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Event {
    type Value = Scan;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
        let mut scan = Scan::default();
        let mut keys = Keys::default();
        while let Some(Key(key)) = map.next_key()? {
            let is_id = key == "id";
            scan.duplicate_key |= keys.insert(key);
            let value: Checked = map.next_value()?;
            scan.duplicate_key |= value.duplicate_key;
            if is_id {
                scan.id_key = true;
                scan.own_id = value.non_empty_string;
            }
        }
        Ok(scan)
    }
}

/// An object key, borrowed from the payload unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// The keys of one object so far: a few inline, a set beyond (so that an object of many
/// keys costs linear time, not quadratic).
#[derive(Default)]
struct Keys<'de> {
    few: [Cow<'de, str>; 8],
    len: usize,
    many: HashSet<Cow<'de, str>>,
}

impl<'de> Keys<'de> {
    /// Adds a key; whether it was there already.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if self.len < self.few.len() {
            let seen = self.few[..self.len].contains(&key);
            self.few[self.len] = key;
            self.len += 1;
            return seen;
        }
        if self.many.is_empty() {
            self.many.extend(self.few.iter_mut().map(std::mem::take));
        }
        !self.many.insert(key)
    }
}

/// Any JSON value, checked as `serde_json::Value` would parse it.
#[derive(Default)]
struct Checked {
    duplicate_key: bool,
    non_empty_string: bool,
}

impl<'de> de::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked::default())
    }

    fn visit_str<E>(self, v: &str) -> Result<Checked, E> {
        Ok(Checked {
            duplicate_key: false,
            non_empty_string: !v.is_empty(),
        })
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut duplicate_key = false;
        while let Some(item) = seq.next_element::<Checked>()? {
            duplicate_key |= item.duplicate_key;
        }
        Ok(Checked {
            duplicate_key,
            non_empty_string: false,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut duplicate_key = false;
        let mut keys = Keys::default();
        while let Some(Key(key)) = map.next_key()? {
            duplicate_key |= keys.insert(key);
            duplicate_key |= map.next_value::<Checked>()?.duplicate_key;
        }
        Ok(Checked {
            duplicate_key,
            non_empty_string: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Scan {
        let scans = scan(json.as_bytes()).unwrap();
        assert_eq!(scans.len(), 1);
        scans[0]
    }

    #[test]
    fn ids_and_duplicates() {
        assert_eq!(one(r#"[{"kind":"custom"}]"#), Scan::default());
        assert!(one(r#"[{"id":"a"}]"#).own_id);
        for id in [r#""""#, "null", "7", "[]"] {
            let s = one(&format!(r#"[{{"id":{id}}}]"#));
            assert!(s.id_key && !s.own_id && !s.verbatim(), "{id}");
        }
        // An escaped key is the same key.
        assert!(one(r#"[{"\u0069d":"a"}]"#).own_id);
        assert!(one(r#"[{"a":1,"a":2}]"#).duplicate_key);
        assert!(one(r#"[{"a":[{"b":{"c":1,"\u0063":2}}]}]"#).duplicate_key);
        let many: Vec<String> = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect();
        assert!(!one(&format!("[{{{}}}]", many.join(","))).duplicate_key);
        assert!(one(&format!(r#"[{{{},"k99":0}}]"#, many.join(","))).duplicate_key);
        assert!(one(&format!(r#"[{{"k3":0,{}}}]"#, many.join(","))).duplicate_key);
    }

    #[test]
    fn refuses_what_serde_json_values_refuse() {
        for bad in [
            "{}",
            "[1]",
            "[{},]",
            r#"[{"a":1e400}]"#,
            r#"[{"a":"\ud800"}]"#,
            r#"[{"a":"\x"}]"#,
            "[{}] x",
        ] {
            assert!(scan(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(bad).is_err(),
                "{bad}"
            );
        }
        assert_eq!(scan(b" [ ] ").unwrap(), []);
    }
}
