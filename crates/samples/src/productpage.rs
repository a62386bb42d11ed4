//! productpage: the Bookinfo front end (the original is Python Flask).
//!
//! It calls details, then reviews, with the original's timeouts and its deliberate two back-to-back
//! reviews attempts (Istio's fault-injection task relies on the resulting ~6 s), forwards the
//! tracing headers and `end-user` of the signed-in user, and renders the page whatever the
//! backends do.

mod page;
mod session;

use crate::client::{self, Target, Timeouts};
use crate::env::{Env, Upstream};
use crate::headers;
use crate::json::{self, Value};
use crate::server::{Handler, Req, Resp, add_header, respond, set_header};
use http::{HeaderName, HeaderValue, Method};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const HTML: &str = "text/html; charset=utf-8";
const JSON_TYPE: &str = "application/json";
const TIMEOUT: Duration = Duration::from_secs(3);
const TITLE: &str = "The Comedy of Errors";
const DESCRIPTION: &str = "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: \
    The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most \
    farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to \
    puns and word play.";
const TAILWIND_CSS: &str = "/* Bookinfo (Strait build): a stand-in for the Tailwind bundle. */\n\
    body{font-family:ui-sans-serif,system-ui,sans-serif;margin:0}.text-red-500{color:#ef4444}\
    .text-black-500{color:#000}.bg-gray-800{background:#1f2937}.container{max-width:80rem;margin:auto}\n";
/// A 1x1 transparent PNG standing in for the avatar.
const IZZY_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00,
    0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
    0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// One of the services productpage calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    Details,
    Reviews,
    Ratings,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Details => "details",
            Backend::Reviews => "reviews",
            Backend::Ratings => "ratings",
        }
    }

    fn attempts(self) -> usize {
        // Istio: "Bug introduced explicitly for illustration in fault injection task".
        if self == Backend::Reviews { 2 } else { 1 }
    }

    fn unavailable(self) -> Value {
        let text = format!(
            "Sorry, product {} are currently unavailable for this book.",
            self.name()
        );
        Value::Object(vec![("error".to_string(), Value::Str(text))])
    }
}

/// The result of calling a backend, as productpage sees it.
enum Outcome {
    /// A 200 reply and its JSON.
    Ok(Value),
    /// The status to report (the upstream's, or 500 without a reply) and the error body.
    Failed(u16, Value),
    /// A 200 reply whose body is not JSON: the original crashes the request with a 500.
    Garbled,
}

/// The productpage service.
pub(crate) struct Productpage {
    env: Env,
    /// `request_result_total{destination_app,response_code}`.
    results: Mutex<BTreeMap<(Backend, u16), u64>>,
}

impl Productpage {
    pub(crate) fn new(env: Env) -> Self {
        Productpage {
            env,
            results: Mutex::new(BTreeMap::new()),
        }
    }

    fn upstream(&self, backend: Backend) -> &Upstream {
        match backend {
            Backend::Details => &self.env.details,
            Backend::Reviews => &self.env.reviews,
            Backend::Ratings => &self.env.ratings,
        }
    }

    fn service_url(&self, backend: Backend) -> String {
        let up = self.upstream(backend);
        format!("http://{}:{}", self.env.host_of(up), up.port)
    }

    fn count(&self, backend: Backend, code: u16) {
        if let Ok(mut results) = self.results.lock() {
            *results.entry((backend, code)).or_default() += 1;
        }
    }

    /// Calls `/<backend>/<id>` with the original's attempts and timeouts.
    async fn call(
        &self,
        backend: Backend,
        product_id: &str,
        forward: &[(HeaderName, HeaderValue)],
    ) -> Outcome {
        let up = self.upstream(backend);
        let target = Target {
            host: self.env.host_of(up),
            port: up.port.clone(),
            path: format!("/{}/{}", backend.name(), product_id),
        };
        let limits = Timeouts {
            connect: TIMEOUT,
            read: TIMEOUT,
        };
        let mut status = 500;
        for _ in 0..backend.attempts() {
            match client::get(self.env.http_proxy.as_deref(), &target, forward, limits).await {
                Ok(reply) if reply.status == 200 => {
                    self.count(backend, 200);
                    return match Value::parse(&reply.body) {
                        Ok(value) => Outcome::Ok(value),
                        Err(err) => {
                            tracing::warn!(url = %target.url(), %err, "a 200 reply that is not JSON");
                            Outcome::Garbled
                        }
                    };
                }
                Ok(reply) => {
                    tracing::info!(url = %target.url(), status = reply.status, "backend answered with an error");
                    status = reply.status;
                }
                Err(err) => {
                    tracing::info!(url = %target.url(), %err, "backend call failed");
                    status = 500;
                }
            }
            self.count(backend, status);
        }
        Outcome::Failed(status, backend.unavailable())
    }

    async fn product_page(&self, req: &Req, sess: &session::Session) -> Resp {
        let forward = self.forward_headers(req, sess);
        let (details_status, details) = match self.call(Backend::Details, "0", &forward).await {
            Outcome::Ok(v) => (200, v),
            Outcome::Failed(status, v) => (status, v),
            Outcome::Garbled => return internal_error(),
        };
        for _ in 0..self.env.flood_factor {
            let _ = self.call(Backend::Reviews, "0", &forward).await;
        }
        let (reviews_status, reviews) = match self.call(Backend::Reviews, "0", &forward).await {
            Outcome::Ok(v) => (200, v),
            Outcome::Failed(status, v) => (status, v),
            Outcome::Garbled => return internal_error(),
        };
        let user = if sess.has_user {
            sess.user.as_deref().unwrap_or("")
        } else {
            ""
        };
        let html = page::product_page(&page::PageData {
            user,
            product_title: TITLE,
            product_description_html: DESCRIPTION,
            details_status,
            details: &details,
            reviews_status,
            reviews: &reviews,
        });
        vary_cookie(respond(200, HTML, html))
    }

    /// `/api/v1/products/<id>[/reviews|/ratings]`: the backend's JSON re-printed by Python.
    async fn api(&self, req: &Req, sess: &session::Session, backend: Backend, product_id: &str) -> Resp {
        let forward = self.forward_headers(req, sess);
        let (status, body) = match self.call(backend, product_id, &forward).await {
            Outcome::Ok(v) => (200, v),
            Outcome::Failed(status, v) => (status, v),
            Outcome::Garbled => return internal_error(),
        };
        vary_cookie(respond(status, JSON_TYPE, json::python(&body)))
    }

    fn forward_headers(&self, req: &Req, sess: &session::Session) -> Vec<(HeaderName, HeaderValue)> {
        // python-requests drops a header whose value is None, so a null user sends no end-user.
        let user = if sess.has_user { sess.user.as_deref() } else { None };
        headers::productpage_forward(&req.headers, user)
    }

    fn login(&self, req: &Req) -> Resp {
        // Flask's `request.values`: the query string first, then the form.
        let is_form = req.header("content-type").is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        let user = crate::form::first(req.query(), "username").or_else(|| {
            is_form
                .then(|| crate::form::first(&String::from_utf8_lossy(&req.body), "username"))
                .flatten()
        });
        let mut resp = redirect_to_referer(req);
        let cookie = format!(
            "{}={}; HttpOnly; Path=/",
            session::COOKIE,
            session::encode(user.as_deref())
        );
        set_header(&mut resp, "set-cookie", &cookie);
        resp
    }

    fn logout(&self, req: &Req) -> Resp {
        let mut resp = redirect_to_referer(req);
        let cookie = format!(
            "{}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/",
            session::COOKIE
        );
        set_header(&mut resp, "set-cookie", &cookie);
        resp
    }

    fn metrics(&self) -> Resp {
        let mut out = String::from(
            "# HELP request_result_total Request results of calls from productpage to its backends\n\
             # TYPE request_result_total counter\n",
        );
        if let Ok(results) = self.results.lock() {
            for ((backend, code), n) in results.iter() {
                let _ = writeln!(
                    out,
                    "request_result_total{{destination_app=\"{}\",response_code=\"{code}\"}} {n}.0",
                    backend.name()
                );
            }
        }
        respond(200, "text/plain; version=0.0.4; charset=utf-8", out)
    }
}

fn vary_cookie(mut resp: Resp) -> Resp {
    add_header(&mut resp, "vary", "Cookie");
    resp
}

fn internal_error() -> Resp {
    respond(500, HTML, page::werkzeug_error(500))
}

fn redirect_to_referer(req: &Req) -> Resp {
    // Flask's `redirect(request.referrer)` with no Referer redirects to the text "None".
    let location = req.header("referer").unwrap_or_else(|| "None".to_string());
    let mut resp = respond(302, HTML, page::redirect(&location));
    set_header(&mut resp, "location", &location);
    vary_cookie(resp)
}

/// A 405 with the methods the route does allow, or the 200 Flask gives to OPTIONS.
fn wrong_method(method: &Method, allow: &str) -> Resp {
    let mut resp = if method == Method::OPTIONS {
        respond(200, HTML, "")
    } else {
        respond(405, HTML, page::werkzeug_error(405))
    };
    set_header(&mut resp, "allow", allow);
    resp
}

/// The routes of the Flask app.
enum Route<'a> {
    Index,
    Health,
    Login,
    Logout,
    ProductPage,
    Products,
    Api(Backend, &'a str),
    Metrics,
    Static(&'static str, &'static [u8]),
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    match path {
        "/" | "/index.html" => Route::Index,
        "/health" => Route::Health,
        "/login" => Route::Login,
        "/logout" => Route::Logout,
        "/productpage" => Route::ProductPage,
        "/api/v1/products" => Route::Products,
        "/metrics" => Route::Metrics,
        "/static/tailwind/tailwind.css" => Route::Static("text/css; charset=utf-8", TAILWIND_CSS.as_bytes()),
        "/static/img/izzy.png" => Route::Static("image/png", IZZY_PNG),
        _ => {
            let Some(rest) = path.strip_prefix("/api/v1/products/") else {
                return Route::NotFound;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                [id] if !id.is_empty() => Route::Api(Backend::Details, id),
                [id, "reviews"] if !id.is_empty() => Route::Api(Backend::Reviews, id),
                [id, "ratings"] if !id.is_empty() => Route::Api(Backend::Ratings, id),
                _ => Route::NotFound,
            }
        }
    }
}

impl Handler for Productpage {
    async fn handle(&self, req: Req) -> Option<Resp> {
        let route = route(req.path());
        if matches!(route, Route::NotFound) {
            return Some(respond(404, HTML, page::werkzeug_error(404)));
        }
        if matches!(route, Route::Login) {
            return Some(if req.method == Method::POST {
                self.login(&req)
            } else {
                wrong_method(&req.method, "OPTIONS, POST")
            });
        }
        if req.method != Method::GET && req.method != Method::HEAD {
            return Some(wrong_method(&req.method, "GET, HEAD, OPTIONS"));
        }
        let sess = session::decode(
            req.headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes()),
        );
        Some(match route {
            Route::Index => respond(
                200,
                HTML,
                page::index(
                    &self.service_url(Backend::Details),
                    &self.service_url(Backend::Reviews),
                    &self.service_url(Backend::Ratings),
                ),
            ),
            Route::Health => respond(200, HTML, "Product page is healthy"),
            Route::Logout => self.logout(&req),
            Route::ProductPage => self.product_page(&req, &sess).await,
            Route::Products => {
                let products = Value::Array(vec![Value::Object(vec![
                    ("id".to_string(), Value::Int(0)),
                    ("title".to_string(), Value::str(TITLE)),
                    ("descriptionHtml".to_string(), Value::str(DESCRIPTION)),
                ])]);
                respond(200, JSON_TYPE, json::python(&products))
            }
            Route::Api(backend, id) => self.api(&req, &sess, backend, id).await,
            Route::Metrics => self.metrics(),
            Route::Static(content_type, bytes) => respond(200, content_type, bytes),
            Route::Login | Route::NotFound => respond(404, HTML, page::werkzeug_error(404)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_json_matches_the_original() {
        let products = Value::Array(vec![Value::Object(vec![
            ("id".to_string(), Value::Int(0)),
            ("title".to_string(), Value::str(TITLE)),
            ("descriptionHtml".to_string(), Value::str(DESCRIPTION)),
        ])]);
        assert_eq!(
            json::python(&products),
            r#"[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play."}]"#
        );
    }

    #[test]
    fn routes() {
        assert!(matches!(
            route("/api/v1/products/0"),
            Route::Api(Backend::Details, "0")
        ));
        assert!(matches!(
            route("/api/v1/products/x/reviews"),
            Route::Api(Backend::Reviews, "x")
        ));
        assert!(matches!(
            route("/api/v1/products/0/ratings"),
            Route::Api(Backend::Ratings, "0")
        ));
        assert!(matches!(route("/api/v1/products/"), Route::NotFound));
        assert!(matches!(route("/productpage/"), Route::NotFound));
        assert!(matches!(route("/index.html"), Route::Index));
    }

    #[test]
    fn unavailable_texts() {
        assert_eq!(
            json::python(&Backend::Details.unavailable()),
            r#"{"error": "Sorry, product details are currently unavailable for this book."}"#
        );
        assert_eq!(
            json::python(&Backend::Reviews.unavailable()),
            r#"{"error": "Sorry, product reviews are currently unavailable for this book."}"#
        );
    }
}
