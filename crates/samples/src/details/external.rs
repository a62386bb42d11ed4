//! details v2: the book comes from the Google Books API, which Istio's egress tasks use as the
//! external service an app calls.

use crate::client::{self, Target, Timeouts};
use crate::env::Env;
use crate::headers;
use crate::json::{self, Value};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// One edition of The Comedy of Errors with Shakespeare as the single author.
const ISBN: &str = "0486424618";
const HOST: &str = "www.googleapis.com";
/// Ruby's `Net::HTTP` defaults: 60 s to open, and the original sets a 5 s read timeout.
const LIMITS: Timeouts = Timeouts {
    connect: Duration::from_secs(60),
    read: Duration::from_secs(5),
};
/// What Ruby prints when a lookup hits a missing member.
const NIL_ERROR: &str = "undefined method `[]' for nil:NilClass";

/// The Google Books client of details v2.
pub(crate) struct GoogleBooks {
    proxy: Option<String>,
    plain_http: bool,
}

impl GoogleBooks {
    pub(crate) fn new(env: &Env) -> Self {
        GoogleBooks {
            proxy: env.http_proxy.clone(),
            plain_http: env.do_not_encrypt,
        }
    }

    /// The details JSON for `id`, or the message the original puts in `{"error": ...}`.
    pub(crate) async fn fetch(&self, id: i128, inbound: &HeaderMap) -> Result<String, String> {
        if !self.plain_http {
            return Err(format!(
                "this build calls {HOST} only over plain HTTP; set DO_NOT_ENCRYPT=true (as Istio's \
                 bookinfo-details-v2.yaml does) and let the sidecar originate TLS"
            ));
        }
        let target = Target {
            host: HOST.to_string(),
            port: "80".to_string(),
            path: format!("/books/v1/volumes?q=isbn:{ISBN}"),
        };
        let mut forward = headers::propagated(inbound);
        if !inbound.contains_key(http::header::USER_AGENT) {
            forward.push((http::header::USER_AGENT, HeaderValue::from_static("Ruby")));
        }
        forward.push((HeaderName::from_static("accept"), HeaderValue::from_static("*/*")));
        let reply = client::get(self.proxy.as_deref(), &target, &forward, LIMITS)
            .await
            .map_err(|e| e.to_string())?;
        let doc = Value::parse(&reply.body).map_err(|e| {
            format!(
                "unexpected token in the reply of {HOST} (status {}): {e}",
                reply.status
            )
        })?;
        book_from_volume(id, &doc)
    }
}

/// Maps `items[0].volumeInfo` to the details shape, in the original's key order.
fn book_from_volume(id: i128, doc: &Value) -> Result<String, String> {
    let nil = || NIL_ERROR.to_string();
    let first = |v: Option<&Value>| match v {
        Some(Value::Array(items)) => items.first().cloned(),
        _ => None,
    };
    let book = first(doc.get("items")).ok_or_else(nil)?;
    let book = book.get("volumeInfo").ok_or_else(nil)?;
    let member = |key: &str| book.get(key).cloned().unwrap_or(Value::Null);
    let isbn = |kind: &str| -> Result<Value, String> {
        let Some(Value::Array(ids)) = book.get("industryIdentifiers") else {
            return Err(nil());
        };
        let found = ids
            .iter()
            .find(|i| i.get("type") == Some(&Value::str(kind)))
            .ok_or_else(nil)?;
        Ok(found.get("identifier").cloned().unwrap_or(Value::Null))
    };
    let author = first(book.get("authors")).unwrap_or(Value::Null);
    let language = if book.get("language") == Some(&Value::str("en")) {
        "English"
    } else {
        "unknown"
    };
    let kind = if book.get("printType") == Some(&Value::str("BOOK")) {
        "paperback"
    } else {
        "unknown"
    };
    let id = i64::try_from(id)
        .map(Value::Int)
        .unwrap_or(Value::Float(id as f64));
    let details = Value::Object(vec![
        ("id".into(), id),
        ("author".into(), author),
        ("year".into(), member("publishedDate")),
        ("type".into(), Value::str(kind)),
        ("pages".into(), member("pageCount")),
        ("publisher".into(), member("publisher")),
        ("language".into(), Value::str(language)),
        ("ISBN-10".into(), isbn("ISBN_10")?),
        ("ISBN-13".into(), isbn("ISBN_13")?),
    ]);
    Ok(json::js_compact(&details))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOLUME: &str = r#"{"kind":"books#volumes","totalItems":1,"items":[{"volumeInfo":{"title":"The Comedy of Errors","authors":["William Shakespeare"],"publisher":"Courier Corporation","publishedDate":"2002-07-26","industryIdentifiers":[{"type":"ISBN_10","identifier":"0486424618"},{"type":"ISBN_13","identifier":"9780486424613"}],"pageCount":80,"printType":"BOOK","language":"en"}}]}"#;

    #[test]
    fn maps_the_volume_like_the_original() {
        let doc = Value::parse(VOLUME.as_bytes()).unwrap();
        assert_eq!(
            book_from_volume(0, &doc).unwrap(),
            r#"{"id":0,"author":"William Shakespeare","year":"2002-07-26","type":"paperback","pages":80,"publisher":"Courier Corporation","language":"English","ISBN-10":"0486424618","ISBN-13":"9780486424613"}"#
        );
    }

    #[test]
    fn missing_items_is_the_ruby_nil_error() {
        let doc = Value::parse(br#"{"totalItems":0}"#).unwrap();
        assert_eq!(book_from_volume(0, &doc).unwrap_err(), NIL_ERROR);
    }
}
