//! The three JSON printers.

use super::Value;
use super::number::{go_float, js_number, python_float};
use std::fmt::Write;

/// Python's `json.dumps(value)`: separators `", "` and `": "`, `ensure_ascii=True`.
pub(crate) fn python(value: &Value) -> String {
    let mut out = String::new();
    write_python(value, &mut out);
    out
}

fn write_python(value: &Value, out: &mut String) {
    match value {
        Value::Float(f) => out.push_str(&python_float(*f)),
        Value::Str(s) => python_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(k, out);
                out.push_str(": ");
                write_python(v, out);
            }
            out.push('}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::UInt(u) => out.push_str(&u.to_string()),
        _ => {}
    }
}

/// Escapes shared by all three dialects; returns false for characters the caller must handle.
fn common_escape(c: char, out: &mut String) -> bool {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => return false,
    }
    true
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if common_escape(c, out) {
            continue;
        }
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JavaScript's `JSON.stringify(value)`: compact, non-ASCII left as is.
pub(crate) fn js_compact(value: &Value) -> String {
    let mut out = String::new();
    write_js(value, &mut out);
    out
}

fn write_js(value: &Value, out: &mut String) {
    match value {
        Value::Float(f) => out.push_str(&js_number(*f)),
        Value::Int(i) => out.push_str(&js_number(*i as f64)),
        Value::UInt(u) => out.push_str(&js_number(*u as f64)),
        Value::Str(s) => js_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                js_string(k, out);
                out.push(':');
                write_js(v, out);
            }
            out.push('}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn js_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if common_escape(c, out) {
            continue;
        }
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `json.Encoder` with `SetIndent("", "  ")`: HTML-safe escaping and a trailing newline.
/// Numbers are float64, as Go decodes them into `interface{}`.
pub(crate) fn go_pretty(value: &Value) -> String {
    let mut out = String::new();
    write_go(value, 0, &mut out);
    out.push('\n');
    out
}

fn indent(depth: usize, out: &mut String) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_go(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Float(f) => out.push_str(&go_float(*f)),
        Value::Int(i) => out.push_str(&go_float(*i as f64)),
        Value::UInt(u) => out.push_str(&go_float(*u as f64)),
        Value::Str(s) => go_string(s, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(depth + 1, out);
                write_go(item, depth + 1, out);
            }
            indent(depth, out);
            out.push(']');
        }
        Value::Object(members) if members.is_empty() => out.push_str("{}"),
        Value::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(depth + 1, out);
                go_string(k, out);
                out.push_str(": ");
                write_go(v, depth + 1, out);
            }
            indent(depth, out);
            out.push('}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if common_escape(c, out) {
            continue;
        }
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_escapes_non_ascii_and_keeps_slash() {
        let v = Value::Array(vec![Value::str("é/\u{1F600}\"")]);
        assert_eq!(python(&v), r#"["\u00e9/\ud83d\ude00\""]"#);
    }

    #[test]
    fn js_is_compact() {
        let v = Value::parse(br#"{"id": 1, "ratings": {"a": 5.0, "b": "\u00e9"}}"#).unwrap();
        assert_eq!(js_compact(&v), r#"{"id":1,"ratings":{"a":5,"b":"é"}}"#);
    }

    #[test]
    fn go_indents_and_escapes_html() {
        let v = Value::Object(vec![
            ("a".into(), Value::Array(vec![Value::str("<x>&")])),
            ("b".into(), Value::Object(vec![])),
            ("c".into(), Value::Int(3)),
        ]);
        assert_eq!(
            go_pretty(&v),
            "{\n  \"a\": [\n    \"\\u003cx\\u003e\\u0026\"\n  ],\n  \"b\": {},\n  \"c\": 3\n}\n"
        );
    }
}
