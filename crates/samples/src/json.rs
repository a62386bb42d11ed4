//! An order-preserving JSON value and the three dialects the original services print.
//!
//! The originals are written in Python (productpage), Node (ratings) and Go (httpbin), and each
//! language's JSON printer has its own spacing, escaping and number format. Clients of the samples
//! (and Istio's doc tests) compare bodies byte for byte, so we keep key order as received and print
//! with the matching dialect instead of relying on `serde_json`'s (sorted, compact) output.

mod number;
mod write;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

pub(crate) use write::{go_pretty, js_compact, python};

/// A JSON value whose objects keep their keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// Parses a JSON document; a repeated key keeps its first position and its last value, as
    /// Python's and JavaScript's parsers do.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The member `key` of an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A string value.
    pub(crate) fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// Python truthiness, which the Jinja template of productpage uses in its `{% if %}`s.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::UInt(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }

    /// The value as an integer the way Python's `range()` would accept it (floats are refused).
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::UInt(u) => i64::try_from(*u).ok(),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// Python's `str()` of the value, which is what Jinja prints for `{{ value }}`.
    pub(crate) fn python_str(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.python_repr(),
        }
    }

    fn python_repr(&self) -> String {
        match self {
            Value::Null => "None".to_string(),
            Value::Bool(true) => "True".to_string(),
            Value::Bool(false) => "False".to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(f) => number::python_float(*f),
            Value::Str(s) => {
                let quote = if s.contains('\'') && !s.contains('"') {
                    '"'
                } else {
                    '\''
                };
                let mut out = String::with_capacity(s.len() + 2);
                out.push(quote);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c == quote => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                }
                out.push(quote);
                out
            }
            Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(Value::python_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::Object(members) => {
                let inner: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Value::Str(k.clone()).python_repr(), v.python_repr()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    /// Sorts object keys recursively, as Go's encoder does for maps.
    pub(crate) fn sorted(self) -> Value {
        match self {
            Value::Object(mut members) => {
                members.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(members.into_iter().map(|(k, v)| (k, v.sorted())).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(Value::sorted).collect()),
            other => other,
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members: Vec<(String, Value)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_last_duplicate() {
        let v = Value::parse(br#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(python(&v), r#"{"b": 3, "a": 2}"#);
    }

    #[test]
    fn python_str_matches_jinja_output() {
        let v = Value::parse(br#"{"n":200,"f":1.5,"s":"x","z":null,"l":["a",1],"t":true}"#).unwrap();
        let got: Vec<String> = ["n", "f", "s", "z", "l", "t"]
            .iter()
            .map(|k| v.get(k).unwrap().python_str())
            .collect();
        assert_eq!(got, ["200", "1.5", "x", "None", "['a', 1]", "True"]);
    }

    #[test]
    fn truthiness_follows_python() {
        for (doc, want) in [
            ("0", false),
            ("5", true),
            ("\"\"", false),
            ("{}", false),
            ("[1]", true),
        ] {
            assert_eq!(Value::parse(doc.as_bytes()).unwrap().truthy(), want, "{doc}");
        }
    }
}
