//! The new pipeline against the previous one ([`super::before`]): the envelopes `export`
//! reads are the same JSON, the errors are the same words, the messages keep SQS's limit.

use super::before;
use super::payload::{self, PayloadError, event_id};
use super::queue::MAX_MESSAGE_BYTES;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Every envelope of every message, parsed, in order.
fn parsed(messages: &[String]) -> Vec<Value> {
    assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
    messages
        .iter()
        .flat_map(|m| match serde_json::from_str::<Value>(m).unwrap() {
            Value::Array(envelopes) => envelopes,
            other => panic!("not an array: {other}"),
        })
        .collect()
}

/// Equal JSON, floats within a few ulps: the previous pipeline parsed a float, printed it
/// and `export` parsed it again, and serde_json's parsing (without `float_roundtrip`) can be
/// an ulp off, so its floats could differ from the SDK's text in the last bits; now
/// `export` parses the SDK's text itself.
fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// The same outcome: equal errors, or close envelopes.
fn alike(new: &Result<Vec<Value>, PayloadError>, old: &Result<Vec<Value>, PayloadError>) -> bool {
    match (new, old) {
        (Ok(new), Ok(old)) => close(&Value::from(new.clone()), &Value::from(old.clone())),
        _ => new == old,
    }
}

fn new(json: &str) -> Result<Vec<Value>, PayloadError> {
    payload::messages(json.as_bytes(), "proj", "env\u{e9}", "pid").map(|p| parsed(&p.messages))
}

fn old(json: &str) -> Result<Vec<Value>, PayloadError> {
    before::messages(json.as_bytes(), false, "proj", "env\u{e9}", "pid").map(|m| parsed(&m))
}

fn same(json: &str) -> Vec<Value> {
    let (new, old) = (new(json), old(json));
    assert!(alike(&new, &old), "{json}\n{new:?}\n{old:?}");
    new.unwrap()
}

#[test]
fn ids_as_before() {
    let events = same(
        r#"[{"kind":"custom"}, {}, {"id":""}, {"id":null,"k":1}, {"id":"own"}, {"id":7},
            {"id":"a","id":""}, {"\u0069d":"escaped"}]"#,
    );
    let ids: Vec<&Value> = events.iter().map(|e| &e["event"]["id"]).collect();
    let derived = |i| json!(event_id("pid", i));
    assert_eq!(
        ids,
        [
            &derived(0),
            &derived(1),
            &derived(2),
            &derived(3),
            &json!("own"),
            &derived(5),
            &derived(6),
            &json!("escaped")
        ]
    );
    assert_eq!(events[1]["event"], json!({"id": event_id("pid", 1)}));
    assert_eq!(events[0]["project"], "proj");
    assert_eq!(events[0]["environment"], "env\u{e9}");
    assert_eq!(events[0]["version"], 1);
}

#[test]
fn raw_text_as_the_sdk_wrote_it() {
    same("[]");
    same(" [ \n ] ");
    same(
        "[\n  {\n    \"kind\" : \"custom\" ,\r\n\t\"data\": {\"s\": \"a\\\"b\\\\c\\/d\\u00e9\\n\\ud83d\\ude00\", \"\u{e9}\": [1.0e2, -0, 1E5, 18446744073709551615, -9223372036854775808, 0.1]},\n    \"contextKeys\": {\"user\": \"u \\t1\"}\n  }\n, { }, {\"id\" : \"x\" } ]",
    );
    // Duplicates anywhere resolve as serde_json resolves them: the last one.
    let e = same(r#"[{"kind":"custom","kind":"feature","data":{"a":1,"a":2}}]"#);
    assert_eq!(e[0]["event"]["kind"], "feature");
    assert_eq!(e[0]["event"]["data"], json!({"a": 2}));
}

#[test]
fn errors_as_before() {
    for bad in [
        "{}",
        "[1]",
        r#"[{}, "x"]"#,
        "[[]]",
        "[null]",
        "[{]",
        "[{}",
        "[{}] [",
        r#"[{"a":1e999}]"#,
        r#"[{"a":"\ud800"}]"#,
        "",
        "[{\"a\": \"\u{1}\"}]",
    ] {
        let new = new(bad);
        assert!(matches!(new, Err(PayloadError::NotEvents(_))), "{bad}: {new:?}");
        assert_eq!(new, old(bad), "{bad}");
    }
    let not_utf8 = b"[{\"a\": \"\xff\"}]";
    assert_eq!(
        payload::messages(not_utf8, "p", "e", "x").err(),
        before::messages(not_utf8, false, "p", "e", "x").err()
    );
}

#[test]
fn envelopes_at_the_sqs_boundary() {
    // Two events whose message is exactly the limit, then one byte over it.
    let with_pad = |n: usize| format!(r#"{{"id":"i","pad":"{}"}}"#, "x".repeat(n));
    let envelope_len =
        |n| payload::envelopes(format!("[{}]", with_pad(n)).as_bytes(), "p", "e", "x").unwrap()[0].len();
    let fixed = envelope_len(0);
    let half = (MAX_MESSAGE_BYTES - 3) / 2 - fixed;
    let (a, b) = (half, MAX_MESSAGE_BYTES - 3 - 2 * fixed - half);
    let exact = format!("[{},{}]", with_pad(a), with_pad(b));
    let packed = payload::messages(exact.as_bytes(), "p", "e", "x").unwrap();
    assert_eq!(packed.messages.len(), 1);
    assert_eq!(packed.messages[0].len(), MAX_MESSAGE_BYTES);
    let over = format!("[{},{}]", with_pad(a), with_pad(b + 1));
    let packed = payload::messages(over.as_bytes(), "p", "e", "x").unwrap();
    assert_eq!(packed.messages.len(), 2);
    assert_eq!(packed.events, 2);
    assert_eq!(packed.messages[1].len(), 1 + fixed + b + 1 + 1);
    assert_eq!(
        parsed(&packed.messages),
        parsed(&before::messages(over.as_bytes(), false, "p", "e", "x").unwrap())
    );
}

#[test]
fn gzip_inflates_into_one_bounded_buffer() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let gzip = |bytes: &[u8]| {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    };
    let at_limit = vec![b' '; payload::MAX_PAYLOAD_BYTES];
    let body = gzip(&at_limit);
    let decoded = payload::decode(&body, true).unwrap();
    assert_eq!(decoded.len(), payload::MAX_PAYLOAD_BYTES);
    assert!(decoded.into_owned().capacity() <= payload::MAX_PAYLOAD_BYTES + 1);
    let over = gzip(&vec![b' '; payload::MAX_PAYLOAD_BYTES + 1]);
    assert_eq!(payload::decode(&over, true), Err(PayloadError::TooLarge));
    // A trailer that lies about the size changes nothing but the first allocation.
    let mut lying = gzip(b"[{}]");
    let n = lying.len();
    lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(payload::decode(&lying, true), Err(PayloadError::BadGzip));
    assert!(matches!(
        payload::decode(b"[]", false),
        Ok(std::borrow::Cow::Borrowed(_))
    ));
}

/// JSON values with strings that need escapes, and objects that may repeat keys.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-c\"\\\\/\u{e9}\u{1f600}\n\t ]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("(id|kind|[a-c]{1,2})", inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Events: objects mostly, sometimes not.
fn event() -> impl Strategy<Value = Value> {
    let object = prop::collection::vec(("(id|kind|[a-c]{1,2})", value()), 0..5)
        .prop_map(|members| Value::Object(members.into_iter().collect()));
    prop_oneof![9 => object, 1 => value()]
}

proptest! {
    #[test]
    fn any_payload_as_before(events in prop::collection::vec(event(), 0..6), pretty in any::<bool>()) {
        let json = if pretty { serde_json::to_string_pretty(&events) } else { serde_json::to_string(&events) }.unwrap();
        let (new, old) = (new(&json), old(&json));
        prop_assert!(alike(&new, &old), "{}\n{:?}\n{:?}", json, new, old);
    }
}
