//! The contexts of an event, in any of the forms LaunchDarkly sends them: a `context`
//! object (single or multi-kind), `contextKeys`, or the legacy `userKey` / `user`.

use super::{Event, EventError};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// One context of an event: its kind, key and whether it is anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContextPart<'a> {
    #[serde(borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(default)]
    pub anonymous: bool,
}

/// A full `context` object, single-kind or multi-kind, reduced to what the export needs.
#[derive(Debug, Default)]
pub struct ContextObject<'a> {
    kind: Option<Cow<'a, str>>,
    key: Option<Cow<'a, str>>,
    anonymous: bool,
    /// Object-valued attributes: the kinds of a multi-kind context, or plain attributes.
    nested: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ContextObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ContextVisitor;
        impl<'de> Visitor<'de> for ContextVisitor {
            type Value = ContextObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a context object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut ctx = ContextObject::default();
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    match &*name {
                        "kind" => ctx.kind = Some(map.next_value()?),
                        "key" => ctx.key = Some(map.next_value()?),
                        "anonymous" => ctx.anonymous = map.next_value::<Option<bool>>()?.unwrap_or(false),
                        _ => {
                            let raw: &'de RawValue = map.next_value()?;
                            if raw.get().starts_with('{') {
                                ctx.nested.push((name, raw));
                            }
                        }
                    }
                }
                Ok(ctx)
            }
        }
        d.deserialize_map(ContextVisitor)
    }
}

/// The contexts of one event, sorted by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contexts<'a> {
    parts: Vec<Context<'a>>,
    multi: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context<'a> {
    pub kind: Cow<'a, str>,
    pub key: Cow<'a, str>,
    pub anonymous: bool,
}

impl<'a> Contexts<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &Context<'a>> {
        self.parts.iter()
    }

    /// Whether some context has a non-empty key: something Segment can take for an identity.
    pub fn has_identity(&self) -> bool {
        self.parts.iter().any(|c| !c.key.is_empty())
    }

    pub fn get(&self, kind: &str) -> Option<&Context<'a>> {
        self.parts.iter().find(|c| c.kind == kind)
    }

    /// LaunchDarkly's fully-qualified key: the key alone for a single `user` context,
    /// otherwise `kind:key` pairs (key percent-escaped) in kind order, joined by `:`.
    /// Contexts with an empty key are left out.
    pub fn fully_qualified_key(&self) -> Cow<'a, str> {
        match self.parts.as_slice() {
            [only] if !self.multi && only.kind == "user" => only.key.clone(),
            parts => {
                let mut out = String::new();
                for (i, c) in parts.iter().filter(|c| !c.key.is_empty()).enumerate() {
                    if i > 0 {
                        out.push(':');
                    }
                    out.push_str(&c.kind);
                    out.push(':');
                    for ch in c.key.chars() {
                        match ch {
                            '%' => out.push_str("%25"),
                            ':' => out.push_str("%3A"),
                            _ => out.push(ch),
                        }
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    fn single(kind: Cow<'a, str>, key: Cow<'a, str>, anonymous: bool) -> Self {
        Self {
            parts: vec![Context { kind, key, anonymous }],
            multi: false,
        }
    }
}

impl<'a> Event<'a> {
    /// The event's contexts: `context` wins over `contextKeys`, which wins over the
    /// legacy `userKey` / `user` (anonymous when `contextKind` is `anonymousUser`).
    pub fn contexts(&self) -> Result<Contexts<'a>, EventError> {
        if let Some(ctx) = &self.context {
            return ctx.contexts();
        }
        if let Some(keys) = self.context_keys.as_ref().filter(|k| !k.is_empty()) {
            let mut parts: Vec<Context<'a>> = keys
                .iter()
                .map(|(kind, key)| Context {
                    kind: kind.clone(),
                    key: key.clone(),
                    anonymous: false,
                })
                .collect();
            parts.sort_by(|a, b| a.kind.cmp(&b.kind));
            return Ok(Contexts {
                multi: parts.len() > 1,
                parts,
            });
        }
        let legacy_anonymous = self.context_kind.as_deref() == Some("anonymousUser");
        if let Some(key) = &self.user_key {
            return Ok(Contexts::single("user".into(), key.clone(), legacy_anonymous));
        }
        if let Some(user) = &self.user {
            let anonymous = user.anonymous || legacy_anonymous;
            return Ok(Contexts::single("user".into(), user.key.clone(), anonymous));
        }
        Err(EventError::NoContext)
    }
}

impl<'a> ContextObject<'a> {
    fn contexts(&self) -> Result<Contexts<'a>, EventError> {
        let kind = self.kind.clone().unwrap_or(Cow::Borrowed("user"));
        if kind != "multi" {
            let key = self
                .key
                .clone()
                .ok_or_else(|| EventError::ContextWithoutKey(kind.to_string()))?;
            return Ok(Contexts::single(kind, key, self.anonymous));
        }
        let mut parts = Vec::with_capacity(self.nested.len());
        for (kind, raw) in &self.nested {
            let part: ContextPart<'a> = serde_json::from_str(raw.get())
                .map_err(|_| EventError::ContextWithoutKey(kind.to_string()))?;
            parts.push(Context {
                kind: kind.clone(),
                key: part.key,
                anonymous: part.anonymous,
            });
        }
        if parts.is_empty() {
            return Err(EventError::NoContext);
        }
        parts.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(Contexts { parts, multi: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event<'_> {
        serde_json::from_str(json).unwrap()
    }

    fn keys(c: &Contexts) -> Vec<(String, String, bool)> {
        c.iter()
            .map(|c| (c.kind.to_string(), c.key.to_string(), c.anonymous))
            .collect()
    }

    #[test]
    fn context_keys_form() {
        let e = event(r#"{"kind":"custom","contextKeys":{"user":"u1","org":"o1"}}"#);
        let c = e.contexts().unwrap();
        assert_eq!(
            keys(&c),
            [
                ("org".into(), "o1".into(), false),
                ("user".into(), "u1".into(), false)
            ]
        );
    }

    #[test]
    fn single_context_object_with_attributes() {
        let e = event(
            r#"{"kind":"custom","context":{"kind":"device","key":"d1","anonymous":true,
                "address":{"key":"not-a-kind"},"name":"x"}}"#,
        );
        let c = e.contexts().unwrap();
        assert_eq!(keys(&c), [("device".into(), "d1".into(), true)]);
    }

    #[test]
    fn context_without_kind_is_a_user() {
        let e = event(r#"{"kind":"custom","context":{"key":"u1"}}"#);
        assert_eq!(
            keys(&e.contexts().unwrap()),
            [("user".into(), "u1".into(), false)]
        );
    }

    #[test]
    fn multi_context_sorted_by_kind() {
        let e = event(
            r#"{"kind":"custom","context":{"user":{"key":"u1","anonymous":true},"kind":"multi",
                "org":{"key":"o1","name":"Org"}}}"#,
        );
        assert_eq!(
            keys(&e.contexts().unwrap()),
            [
                ("org".into(), "o1".into(), false),
                ("user".into(), "u1".into(), true)
            ]
        );
    }

    #[test]
    fn context_wins_over_context_keys() {
        let e = event(
            r#"{"kind":"custom","contextKeys":{"user":"from-keys"},"context":{"kind":"user","key":"from-context"}}"#,
        );
        assert_eq!(keys(&e.contexts().unwrap())[0].1, "from-context");
    }

    #[test]
    fn legacy_user_key_and_anonymous_user() {
        let e = event(r#"{"kind":"custom","userKey":"u1"}"#);
        assert_eq!(
            keys(&e.contexts().unwrap()),
            [("user".into(), "u1".into(), false)]
        );
        let e = event(r#"{"kind":"custom","userKey":"a1","contextKind":"anonymousUser"}"#);
        assert_eq!(keys(&e.contexts().unwrap()), [("user".into(), "a1".into(), true)]);
        let e = event(r#"{"kind":"custom","user":{"key":"u2","anonymous":true,"name":"n"}}"#);
        assert_eq!(keys(&e.contexts().unwrap()), [("user".into(), "u2".into(), true)]);
    }

    #[test]
    fn no_context_is_an_error() {
        assert_eq!(
            event(r#"{"kind":"custom"}"#).contexts(),
            Err(EventError::NoContext)
        );
        assert_eq!(
            event(r#"{"kind":"custom","contextKeys":{}}"#).contexts(),
            Err(EventError::NoContext)
        );
        assert_eq!(
            event(r#"{"kind":"custom","context":{"kind":"org"}}"#).contexts(),
            Err(EventError::ContextWithoutKey("org".into()))
        );
    }

    #[test]
    fn fully_qualified_keys() {
        let fq = |json: &str| event(json).contexts().unwrap().fully_qualified_key().into_owned();
        assert_eq!(fq(r#"{"kind":"x","context":{"kind":"user","key":"a:b"}}"#), "a:b");
        assert_eq!(
            fq(r#"{"kind":"x","context":{"kind":"org","key":"a:b%c"}}"#),
            "org:a%3Ab%25c"
        );
        assert_eq!(
            fq(r#"{"kind":"x","context":{"kind":"multi","user":{"key":"u:1"},"org":{"key":"o"}}}"#),
            "org:o:user:u%3A1"
        );
        assert_eq!(
            fq(r#"{"kind":"x","contextKeys":{"user":"u","org":"o"}}"#),
            "org:o:user:u"
        );
    }
}
