//! details: the book's metadata (the original is Ruby on WEBrick).

mod external;

use crate::env::Env;
use crate::server::{Handler, Req, Resp, respond, set_header};
use http::Method;

/// The details service: v1 has the same book for every id, v2 asks Google Books.
pub(crate) struct Details {
    external: Option<external::GoogleBooks>,
}

impl Details {
    pub(crate) fn new(env: &Env) -> Self {
        Details {
            external: env.external_book_service.then(|| external::GoogleBooks::new(env)),
        }
    }
}

const JSON: &str = "application/json";

impl Handler for Details {
    async fn handle(&self, req: Req) -> Option<Resp> {
        let path = percent_decode(req.path());
        // WEBrick mounts match whole path segments: `/details` and `/details/...`.
        let mount = ["/health", "/details"]
            .into_iter()
            .find(|m| path == *m || path.strip_prefix(m).is_some_and(|rest| rest.starts_with('/')));
        let Some(mount) = mount else {
            return Some(webrick_error(404, "Not Found", &format!("`{path}' not found.")));
        };
        match req.method {
            Method::GET | Method::HEAD | Method::POST => {}
            Method::OPTIONS => {
                let mut resp = respond(200, "", "");
                set_header(&mut resp, "allow", "GET,HEAD,POST,OPTIONS");
                return Some(resp);
            }
            ref other => {
                return Some(webrick_error(
                    405,
                    "Method Not Allowed",
                    &format!("unsupported method `{other}'."),
                ));
            }
        }
        if mount == "/health" {
            return Some(respond(200, JSON, r#"{"status":"Details is healthy"}"#));
        }
        // Ruby's `path.split('/')` drops trailing empty segments; the id is the last one left.
        let last = path.split('/').rfind(|s| !s.is_empty()).unwrap_or("");
        let Some(id) = ruby_integer(last) else {
            return Some(respond(
                400,
                JSON,
                r#"{"error":"please provide numeric product id"}"#,
            ));
        };
        Some(match &self.external {
            None => respond(200, JSON, book(id)),
            Some(google) => match google.fetch(id, &req.headers).await {
                Ok(body) => respond(200, JSON, body),
                Err(message) => {
                    let error =
                        crate::json::Value::Object(vec![("error".into(), crate::json::Value::Str(message))]);
                    respond(400, JSON, crate::json::js_compact(&error))
                }
            },
        })
    }
}

/// The book every id maps to, in the original's key order.
fn book(id: i128) -> String {
    format!(
        r#"{{"id":{id},"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}}"#
    )
}

fn webrick_error(status: u16, reason: &str, detail: &str) -> Resp {
    let body = format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.0//EN\">\n<HTML>\n  <HEAD><TITLE>{reason}</TITLE></HEAD>\n  \
         <BODY>\n    <H1>{reason}</H1>\n    {}\n    <HR>\n    <ADDRESS>\n     WEBrick\n    </ADDRESS>\n  \
         </BODY>\n</HTML>\n",
        html_escape(detail)
    );
    respond(status, "text/html; charset=ISO-8859-1", body)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// WEBrick unescapes the path before handlers see it.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Ruby's `Integer(string)`: optional sign, `0x`/`0b`/`0o`/`0d` prefixes, a leading `0` meaning
/// octal, single underscores between digits, surrounding whitespace.
pub(crate) fn ruby_integer(s: &str) -> Option<i128> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = s.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0d") {
        (10, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (
            8,
            lower.strip_prefix('0').unwrap_or(&lower).trim_start_matches('_'),
        )
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let value = i128::from_str_radix(&clean, radix).ok()?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_integer_cases() {
        let cases = [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("0x1a", Some(26)),
            ("017", Some(15)),
            ("1_000", Some(1000)),
            (" 7 ", Some(7)),
            ("0b101", Some(5)),
            ("abc", None),
            ("", None),
            ("1__0", None),
            ("12a", None),
            ("details", None),
        ];
        for (input, want) in cases {
            assert_eq!(ruby_integer(input), want, "{input:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decimal_ids_round_trip(n in proptest::num::i64::ANY) {
            let s = n.to_string();
            // A leading zero would mean octal, but i64 Display never writes one except for "0".
            proptest::prop_assert_eq!(ruby_integer(&s), Some(i128::from(n)));
        }

        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = ruby_integer(&s);
            let _ = percent_decode(&s);
        }
    }
}
