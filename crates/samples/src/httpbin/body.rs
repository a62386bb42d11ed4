//! How go-httpbin reads a request body into `data`, `files`, `form` and `json`.

use crate::form;
use crate::json::Value;
use base64::Engine;

/// The body-derived members of a reply.
#[derive(Debug, PartialEq)]
pub(crate) struct ParsedBody {
    pub(crate) data: String,
    pub(crate) files: Vec<(String, Vec<String>)>,
    pub(crate) form: Vec<(String, Vec<String>)>,
    pub(crate) json: Value,
}

/// Parses `body` by its content type; an error is the `detail` of the 400 reply.
pub(crate) fn parse(content_type: Option<&str>, body: &[u8]) -> Result<ParsedBody, String> {
    let mut parsed = ParsedBody {
        data: String::new(),
        files: Vec::new(),
        form: Vec::new(),
        json: Value::Null,
    };
    if body.is_empty() {
        return Ok(parsed);
    }
    parsed.data = String::from_utf8_lossy(body).into_owned();
    let full_type = content_type.unwrap_or("");
    let media = full_type.split(';').next().unwrap_or("");
    match media {
        "text/html" | "text/plain" => {}
        "application/x-www-form-urlencoded" => parsed.form = form::go_values(&parsed.data),
        "multipart/form-data" => {
            let boundary = boundary(full_type)
                .ok_or("error parsing request body: no multipart boundary param in Content-Type")?;
            let (fields, files) = multipart(body, &boundary)
                .ok_or_else(|| "error parsing request body: multipart: NextPart: EOF".to_string())?;
            parsed.form = fields;
            parsed.files = files;
        }
        "application/json" => {
            // Go's json.Decoder reads the first value and ignores what follows it.
            let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
            parsed.json = match stream.next() {
                Some(Ok(value)) => value.sorted(),
                Some(Err(err)) => return Err(format!("error parsing request body: {err}")),
                None => return Err("error parsing request body: EOF".to_string()),
            };
        }
        other => {
            let media = if other.is_empty() {
                "application/octet-stream"
            } else {
                other
            };
            parsed.data = format!(
                "data:{media};base64,{}",
                base64::engine::general_purpose::URL_SAFE.encode(body)
            );
        }
    }
    Ok(parsed)
}

/// The `boundary` parameter of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

type Values = Vec<(String, Vec<String>)>;

fn push(values: &mut Values, key: String, value: String) {
    match values.iter_mut().find(|(k, _)| *k == key) {
        Some((_, list)) => list.push(value),
        None => values.push((key, vec![value])),
    }
}

/// Splits a multipart body into plain fields and files (file contents as text), keys sorted.
fn multipart(body: &[u8], boundary: &str) -> Option<(Values, Values)> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut files = Vec::new();
    let mut pos = find(body, &delimiter, 0)? + delimiter.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            break;
        }
        let headers_start = find(body, b"\r\n", pos)? + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start.saturating_sub(2))?;
        let headers = String::from_utf8_lossy(body.get(headers_start.min(headers_end)..headers_end)?);
        let content_start = headers_end + 4;
        let mut next_delimiter = b"\r\n".to_vec();
        next_delimiter.extend_from_slice(&delimiter);
        let content_end = find(body, &next_delimiter, content_start)?;
        let content = String::from_utf8_lossy(&body[content_start..content_end]).into_owned();
        let disposition = headers
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| value.to_string())
            })
            .unwrap_or_default();
        let param = |wanted: &str| {
            disposition.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == wanted).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if let Some(name) = param("name") {
            if param("filename").is_some() {
                push(&mut files, name, content);
            } else {
                push(&mut fields, name, content);
            }
        }
        pos = content_end + next_delimiter.len();
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Some((fields, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_all_empty() {
        let p = parse(Some("application/json"), b"").unwrap();
        assert_eq!(p.data, "");
        assert_eq!(p.json, Value::Null);
    }

    #[test]
    fn json_and_form_and_binary() {
        let p = parse(Some("application/json"), br#"{"b":1,"a":[true]} trailing"#).unwrap();
        assert_eq!(
            crate::json::go_pretty(&p.json),
            "{\n  \"a\": [\n    true\n  ],\n  \"b\": 1\n}\n"
        );
        let p = parse(Some("application/x-www-form-urlencoded"), b"x=1&x=2&a=b").unwrap();
        assert_eq!(
            p.form,
            vec![
                ("a".into(), vec!["b".into()]),
                ("x".into(), vec!["1".into(), "2".into()])
            ]
        );
        let p = parse(None, b"\x00\x01").unwrap();
        assert_eq!(p.data, "data:application/octet-stream;base64,AAE=");
        assert!(parse(Some("application/json"), b"{nope").is_err());
    }

    #[test]
    fn multipart_fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--XX--\r\n";
        let p = parse(Some("multipart/form-data; boundary=XX"), body).unwrap();
        assert_eq!(p.form, vec![("a".into(), vec!["hello".into()])]);
        assert_eq!(p.files, vec![("f".into(), vec!["file body".into()])]);
    }

    proptest::proptest! {
        #[test]
        fn multipart_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(Some("multipart/form-data; boundary=XX"), &body);
        }
    }
}
