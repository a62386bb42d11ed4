//! httpbin in the go-httpbin flavour that Istio's `samples/httpbin` deploys: the endpoints Istio's
//! tasks call, with the same JSON shape (pretty, map-of-arrays headers, Go-canonical keys).

mod body;
mod duration;

use crate::json::{Value, go_pretty};
use crate::server::{Req, Resp, add_header, respond, set_header};
use http::Method;
use std::time::Duration;

const JSON_TYPE: &str = "application/json; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";
/// `/delay` refuses anything longer (go-httpbin's default `-max-duration`).
const MAX_DELAY_NANOS: i64 = 10_000_000_000;

/// The httpbin service.
pub(crate) struct Httpbin;

impl crate::server::Handler for Httpbin {
    async fn handle(&self, req: Req) -> Option<Resp> {
        let mut resp = if req.method == Method::OPTIONS {
            preflight(&req)
        } else {
            route(&req).await
        };
        // go-httpbin's CORS middleware wraps every handler, 404s included.
        let origin = req.header("origin").unwrap_or_else(|| "*".to_string());
        set_header(&mut resp, "access-control-allow-origin", &origin);
        set_header(&mut resp, "access-control-allow-credentials", "true");
        Some(resp)
    }

    fn body_too_large(&self) -> Resp {
        let mut resp = error(
            400,
            Some("error parsing request body: http: request body too large"),
        );
        set_header(&mut resp, "access-control-allow-origin", "*");
        set_header(&mut resp, "access-control-allow-credentials", "true");
        resp
    }
}

fn preflight(req: &Req) -> Resp {
    let mut resp = respond(200, "", "");
    set_header(
        &mut resp,
        "access-control-allow-methods",
        "GET, POST, HEAD, PUT, DELETE, PATCH, OPTIONS",
    );
    set_header(&mut resp, "access-control-max-age", "3600");
    if let Some(wanted) = req
        .header("access-control-request-headers")
        .filter(|h| !h.is_empty())
    {
        set_header(&mut resp, "access-control-allow-headers", &wanted);
    }
    resp
}

async fn route(req: &Req) -> Resp {
    let path = req.path();
    let m = &req.method;
    let get_like = *m == Method::GET || *m == Method::HEAD;
    // Routes wrapped in go-httpbin's `methods(...)` middleware (GET implies HEAD).
    let only = |allowed: bool, allow: &str, f: &dyn Fn() -> Resp| {
        if allowed {
            f()
        } else {
            plain_error(405, "Method Not Allowed", Some(allow))
        }
    };
    match path {
        "/" => only(get_like, "GET, HEAD", &|| {
            respond(200, "text/html; charset=utf-8", INDEX_HTML)
        }),
        "/get" => only(get_like, "GET, HEAD", &|| json(200, &no_body_response(req))),
        "/head" => only(*m == Method::HEAD, "HEAD", &|| json(200, &no_body_response(req))),
        "/headers" => json(200, &obj(vec![("headers", request_headers(req))])),
        "/ip" => json(200, &obj(vec![("origin", Value::str(client_ip(req)))])),
        "/user-agent" => json(
            200,
            &obj(vec![(
                "user-agent",
                Value::str(req.header("user-agent").unwrap_or_default()),
            )]),
        ),
        "/hostname" => json(200, &obj(vec![("hostname", Value::str("go-httpbin"))])),
        "/response-headers" => response_headers(req),
        "/post" => only(*m == Method::POST, "POST", &|| body_response(req)),
        "/put" => only(*m == Method::PUT, "PUT", &|| body_response(req)),
        "/patch" => only(*m == Method::PATCH, "PATCH", &|| body_response(req)),
        "/delete" => only(*m == Method::DELETE, "DELETE", &|| body_response(req)),
        "/anything" => anything(req),
        _ => {
            if path.starts_with("/anything/") {
                anything(req)
            } else if let Some(code) = path.strip_prefix("/status/").filter(|c| !c.contains('/')) {
                status(code)
            } else if let Some(raw) = path.strip_prefix("/delay/").filter(|c| !c.contains('/')) {
                delay(req, raw).await
            } else {
                plain_error(404, "404 page not found", None)
            }
        }
    }
}

/// Go's `http.Error`: a text line, `nosniff`, and for 405 the allowed methods.
fn plain_error(status: u16, text: &str, allow: Option<&str>) -> Resp {
    let mut resp = respond(status, TEXT_TYPE, format!("{text}\n"));
    set_header(&mut resp, "x-content-type-options", "nosniff");
    if let Some(allow) = allow {
        set_header(&mut resp, "allow", allow);
    }
    resp
}

fn obj(members: Vec<(&str, Value)>) -> Value {
    Value::Object(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn json(status: u16, value: &Value) -> Resp {
    respond(status, JSON_TYPE, go_pretty(value))
}

/// go-httpbin's error body: `{"status_code", "error", "detail"?}`.
fn error(status: u16, detail: Option<&str>) -> Resp {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut members = vec![
        ("status_code", Value::Int(i64::from(status))),
        ("error", Value::str(reason)),
    ];
    if let Some(detail) = detail {
        members.push(("detail", Value::str(detail)));
    }
    json(status, &obj(members))
}

fn values(v: Vec<(String, Vec<String>)>) -> Value {
    Value::Object(
        v.into_iter()
            .map(|(k, vs)| (k, Value::Array(vs.into_iter().map(Value::Str).collect())))
            .collect(),
    )
}

/// Go's `textproto.CanonicalMIMEHeaderKey`.
fn canonical_key(name: &str) -> String {
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

fn host(req: &Req) -> String {
    req.header("host")
        .or_else(|| req.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// The request headers as Go's `http.Header` with `Host` set, keys sorted.
fn request_headers(req: &Req) -> Value {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in &req.headers {
        if name == http::header::HOST || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        let key = canonical_key(name.as_str());
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(value),
            None => grouped.push((key, vec![value])),
        }
    }
    grouped.push(("Host".to_string(), vec![host(req)]));
    grouped.sort_by(|a, b| a.0.cmp(&b.0));
    values(grouped)
}

/// The first `X-Forwarded-For` entry, else the peer address.
fn client_ip(req: &Req) -> String {
    match req.header("x-forwarded-for").filter(|v| !v.is_empty()) {
        Some(xff) => xff.split(',').next().unwrap_or("").trim().to_string(),
        None => req.peer.to_string(),
    }
}

fn request_url(req: &Req) -> String {
    let scheme = match req.header("x-forwarded-proto") {
        Some(proto) if !proto.is_empty() => proto,
        _ if req.header("x-forwarded-ssl").as_deref() == Some("on") => "https".to_string(),
        _ => "http".to_string(),
    };
    let path_and_query = req.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    format!("{scheme}://{}{path_and_query}", host(req))
}

fn no_body_response(req: &Req) -> Value {
    obj(vec![
        ("args", values(crate::form::go_values(req.query()))),
        ("headers", request_headers(req)),
        ("method", Value::str(req.method.as_str())),
        ("origin", Value::str(client_ip(req))),
        ("url", Value::str(request_url(req))),
    ])
}

fn body_response(req: &Req) -> Resp {
    let parsed = match body::parse(req.header("content-type").as_deref(), &req.body) {
        Ok(parsed) => parsed,
        Err(detail) => return error(400, Some(&detail)),
    };
    let Value::Object(mut members) = no_body_response(req) else {
        return error(500, None);
    };
    members.push(("data".to_string(), Value::Str(parsed.data)));
    members.push(("files".to_string(), values(parsed.files)));
    members.push(("form".to_string(), values(parsed.form)));
    members.push(("json".to_string(), parsed.json));
    json(200, &Value::Object(members))
}

fn anything(req: &Req) -> Resp {
    if req.method == Method::HEAD {
        json(200, &no_body_response(req))
    } else {
        body_response(req)
    }
}

fn response_headers(req: &Req) -> Resp {
    let mut args = crate::form::go_values(req.query());
    let content_type = match args
        .iter()
        .find(|(k, _)| k == "Content-Type")
        .and_then(|(_, v)| v.first())
    {
        Some(ct) if !ct.is_empty() => ct.clone(),
        _ => {
            args.retain(|(k, _)| k != "Content-Type");
            args.push(("Content-Type".to_string(), vec![JSON_TYPE.to_string()]));
            args.sort_by(|a, b| a.0.cmp(&b.0));
            JSON_TYPE.to_string()
        }
    };
    let mut resp = respond(200, "", go_pretty(&Value::Null));
    for (k, vs) in &args {
        for v in vs {
            add_header(&mut resp, &canonical_key(k), v);
        }
    }
    // A content type a browser might render as HTML gets an escaped body (go-httpbin's XSS guard).
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        media.as_str(),
        "text/plain" | "application/json" | "application/octet-string"
    ) {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('\'', "&#39;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
        };
        args = args
            .into_iter()
            .map(|(k, vs)| (esc(&k), vs.iter().map(|v| esc(v)).collect()))
            .collect();
        args.sort_by(|a, b| a.0.cmp(&b.0));
    }
    *resp.body_mut() = http_body_util::Full::new(go_pretty(&values(args)).into());
    resp
}

/// Go's `strconv.Atoi` with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

fn status(raw: &str) -> Resp {
    let code = if !raw.contains(',') {
        match atoi(raw) {
            Err(err) => return error(400, Some(&format!("invalid status code: {raw:?}: {err}"))),
            Ok(code) if !(100..=599).contains(&code) => {
                return error(
                    400,
                    Some(&format!("invalid status code: {code} not in range [100, 599]")),
                );
            }
            Ok(code) => code,
        }
    } else {
        let mut choices = Vec::new();
        for pair in raw.split(',') {
            let (choice, weight) = match pair.split_once(':') {
                Some((c, w)) => match w.parse::<f64>() {
                    Ok(w) => (c, w),
                    Err(_) => return error(400, Some(&format!("invalid weight value: {w:?}"))),
                },
                None => (pair, 1.0),
            };
            match atoi(choice) {
                Ok(code) => choices.push((code, weight)),
                Err(_) => return error(400, Some(&format!("invalid choice value: {choice:?}"))),
            }
        }
        weighted_choice(&choices, rand::random::<f64>())
    };
    do_status(code)
}

/// Picks the choice whose cumulative weight first exceeds `r × total`.
fn weighted_choice(choices: &[(i64, f64)], r: f64) -> i64 {
    let total: f64 = choices.iter().map(|(_, w)| w).sum();
    let target = r * total;
    let mut acc = 0.0;
    for (choice, weight) in choices {
        acc += weight;
        if target < acc {
            return *choice;
        }
    }
    choices.last().map(|(c, _)| *c).unwrap_or(200)
}

fn do_status(code: i64) -> Resp {
    // A final 1xx cannot be sent; Go's server then answers 200 after the informational reply.
    let code = match u16::try_from(code) {
        Ok(c) if (200..=999).contains(&c) => c,
        Ok(c) if (100..200).contains(&c) => 200,
        _ => return error(400, Some(&format!("invalid status code: {code}"))),
    };
    let redirect = |resp: &mut Resp, to: &str| set_header(resp, "location", to);
    let mut resp = respond(code, TEXT_TYPE, "");
    match code {
        300 => {
            resp = respond(code, TEXT_TYPE, STATUS_300_BODY);
            redirect(&mut resp, "/image/jpeg");
        }
        301 | 302 | 303 | 305 | 307 => redirect(&mut resp, "/redirect/1"),
        308 => {
            resp = respond(code, TEXT_TYPE, STATUS_308_BODY);
            redirect(&mut resp, "/image/jpeg");
        }
        401 => set_header(&mut resp, "www-authenticate", "Basic realm=\"Fake Realm\""),
        402 => {
            resp = respond(code, TEXT_TYPE, "Fuck you, pay me!");
            set_header(&mut resp, "x-more-info", "http://vimeo.com/22053820");
        }
        406 => resp = respond(code, JSON_TYPE, STATUS_406_BODY),
        407 => set_header(&mut resp, "proxy-authenticate", "Basic realm=\"Fake Realm\""),
        418 => {
            resp = respond(code, TEXT_TYPE, "I'm a teapot!");
            set_header(&mut resp, "x-more-info", "http://tools.ietf.org/html/rfc2324");
        }
        _ => {}
    }
    resp
}

async fn delay(req: &Req, raw: &str) -> Resp {
    let nanos = match duration::parse_go(raw) {
        Some(n) => n,
        None => match duration::parse_seconds(raw) {
            // Go: time.Duration(n*1000) * time.Millisecond.
            Some(secs) if (secs * 1000.0).abs() < 9.2e15 => (secs * 1000.0) as i64 * 1_000_000,
            _ => {
                let detail = format!("invalid duration: strconv.ParseFloat: parsing {raw:?}: invalid syntax");
                return error(400, Some(&detail));
            }
        },
    };
    if nanos > MAX_DELAY_NANOS {
        let detail = format!(
            "invalid duration: duration {} longer than {}",
            duration::format_go(nanos),
            duration::format_go(MAX_DELAY_NANOS)
        );
        return error(400, Some(&detail));
    }
    if nanos < 0 {
        let detail = format!(
            "invalid duration: duration {} shorter than 0s",
            duration::format_go(nanos)
        );
        return error(400, Some(&detail));
    }
    tokio::time::sleep(Duration::from_nanos(nanos.unsigned_abs())).await;
    let mut resp = body_response(req);
    let timing = format!(
        "initial_delay;dur={:.2};desc=\"initial delay\"",
        nanos as f64 / 1e6
    );
    set_header(&mut resp, "server-timing", &timing);
    resp
}

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>go-httpbin</title></head>\n\
<body>\n<h1>go-httpbin (Strait build)</h1>\n<p>A reimplementation of the endpoints Istio's tasks use: /get, \
/headers, /ip, /user-agent, /hostname, /status/:code, /delay/:n, /anything, /post, /put, /patch, /delete, \
/response-headers.</p>\n</body>\n</html>\n";

const STATUS_300_BODY: &str = "<!doctype html>\n<head>\n<title>Multiple Choices</title>\n</head>\n<body>\n<ul>\n\
<li><a href=\"/image/jpeg\">/image/jpeg</a></li>\n<li><a href=\"/image/png\">/image/png</a></li>\n\
<li><a href=\"/image/svg\">/image/svg</a></li>\n</body>\n</html>";

const STATUS_308_BODY: &str = "<!doctype html>\n<head>\n<title>Permanent Redirect</title>\n</head>\n\
<body>Permanently redirected to <a href=\"/image/jpeg\">/image/jpeg</a>\n</body>\n</html>";

const STATUS_406_BODY: &str = "{\n  \"message\": \"Client did not request a supported media type\",\n  \"accept\": [\n    \
\"image/webp\",\n    \"image/svg+xml\",\n    \"image/jpeg\",\n    \"image/png\",\n    \"image/\"\n  ]\n}\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys_follow_go() {
        assert_eq!(canonical_key("x-b3-traceid"), "X-B3-Traceid");
        assert_eq!(
            canonical_key("x-forwarded-client-cert"),
            "X-Forwarded-Client-Cert"
        );
        assert_eq!(canonical_key("USER-AGENT"), "User-Agent");
        assert_eq!(canonical_key("bad key"), "bad key");
    }

    #[test]
    fn weighted_choice_walks_cumulative_weights() {
        let choices = [(200, 0.9), (500, 0.1)];
        assert_eq!(weighted_choice(&choices, 0.0), 200);
        assert_eq!(weighted_choice(&choices, 0.89), 200);
        assert_eq!(weighted_choice(&choices, 0.95), 500);
    }

    #[test]
    fn atoi_errors_read_like_go() {
        assert_eq!(
            atoi("abc").unwrap_err(),
            "strconv.Atoi: parsing \"abc\": invalid syntax"
        );
        assert_eq!(atoi("+200"), Ok(200));
    }
}
