//! reviews: two reviews per book, with stars from ratings in v2/v3 (the original is JAX-RS on
//! OpenLiberty).

use crate::client::{self, Target, Timeouts};
use crate::env::Env;
use crate::headers;
use crate::json::Value;
use crate::server::{Handler, Req, Resp, respond};
use http::{HeaderName, HeaderValue, Method};
use std::time::Duration;

const JSON_TYPE: &str = "application/json";
const REVIEW1: &str = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!";
const REVIEW2: &str = "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.";

/// The reviews service; the version follows from `ENABLE_RATINGS` and `STAR_COLOR`.
pub(crate) struct Reviews {
    env: Env,
}

impl Reviews {
    pub(crate) fn new(env: Env) -> Self {
        Reviews { env }
    }

    /// Connect and receive timeouts of the ratings call: 10 s for black stars (v2), 2.5 s otherwise
    /// (v3). Istio's fault-injection task depends on v2's long timeout.
    fn ratings_timeout(&self) -> Duration {
        if self.env.star_color == "black" {
            Duration::from_secs(10)
        } else {
            Duration::from_millis(2500)
        }
    }

    /// The two ratings, `None` for a reviewer whose rating could not be had.
    async fn ratings(&self, product_id: i32, inbound: &http::HeaderMap) -> [Option<i64>; 2] {
        let target = Target {
            host: self.env.host_of(&self.env.ratings),
            port: self.env.ratings.port.clone(),
            path: format!("/ratings/{product_id}"),
        };
        let mut forward = headers::propagated(inbound);
        forward.push((
            HeaderName::from_static("accept"),
            HeaderValue::from_static("application/json"),
        ));
        let limit = self.ratings_timeout();
        let limits = Timeouts {
            connect: limit,
            read: limit,
        };
        let reply = match client::get(self.env.http_proxy.as_deref(), &target, &forward, limits).await {
            Ok(reply) if reply.status == 200 => reply,
            Ok(reply) => {
                tracing::info!(url = %target.url(), status = reply.status, "ratings answered with an error");
                return [None, None];
            }
            Err(err) => {
                tracing::info!(url = %target.url(), %err, "ratings unreachable");
                return [None, None];
            }
        };
        let Ok(doc) = Value::parse(&reply.body) else {
            tracing::info!(url = %target.url(), "ratings sent a body that is not JSON");
            return [None, None];
        };
        let Some(ratings) = doc.get("ratings") else {
            return [None, None];
        };
        let stars = |name: &str| match ratings.get(name) {
            Some(Value::Int(n)) => Some(*n),
            Some(Value::UInt(n)) => i64::try_from(*n).ok(),
            // JSON-P's `getInt` truncates a decimal number.
            Some(Value::Float(f)) if f.is_finite() => Some(f.trunc() as i64),
            _ => None,
        };
        // The original uses -1 as "unknown", so a rating of -1 shows as unavailable too.
        [stars("Reviewer1"), stars("Reviewer2")].map(|s| s.map(|n| n as i32 as i64).filter(|n| *n != -1))
    }

    /// The body, built with exactly the original's string concatenation (and its spacing).
    fn body(&self, product_id: i32, ratings: Option<[Option<i64>; 2]>) -> String {
        let podname = self.env.hostname.as_deref().unwrap_or("null");
        let clustername = self.env.cluster_name.as_deref().unwrap_or("null");
        let rating = |stars: Option<i64>| match (ratings.is_some(), stars) {
            (false, _) => String::new(),
            (true, Some(n)) => format!(
                ", \"rating\": {{\"stars\": {n}, \"color\": \"{}\"}}",
                self.env.star_color
            ),
            (true, None) => {
                ", \"rating\": {\"error\": \"Ratings service is currently unavailable\"}".to_string()
            }
        };
        let [r1, r2] = ratings.unwrap_or([None, None]);
        format!(
            "{{\"id\": \"{product_id}\",\"podname\": \"{podname}\",\"clustername\": \"{clustername}\",\"reviews\": [\
             {{  \"reviewer\": \"Reviewer1\",  \"text\": \"{REVIEW1}\"{}}},\
             {{  \"reviewer\": \"Reviewer2\",  \"text\": \"{REVIEW2}\"{}}}]}}",
            rating(r1),
            rating(r2)
        )
    }
}

/// Java's `Integer.valueOf` for a path parameter: optional sign, decimal digits, 32-bit range.
fn java_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Handler for Reviews {
    async fn handle(&self, req: Req) -> Option<Resp> {
        let path = req.path();
        let product = path.strip_prefix("/reviews/").filter(|rest| !rest.contains('/'));
        if path != "/health" && product.is_none() {
            return Some(respond(404, "", ""));
        }
        if req.method != Method::GET && req.method != Method::HEAD {
            return Some(respond(405, "", ""));
        }
        let Some(product) = product else {
            return Some(respond(200, JSON_TYPE, r#"{"status": "Reviews is healthy"}"#));
        };
        // JAX-RS answers 404 when an `int` path parameter does not convert.
        let Some(product_id) = java_int(product) else {
            return Some(respond(404, "", ""));
        };
        let ratings = if self.env.enable_ratings {
            Some(self.ratings(product_id, &req.headers).await)
        } else {
            None
        };
        Some(respond(200, JSON_TYPE, self.body(product_id, ratings)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_body_matches_the_original_byte_for_byte() {
        let env = Env::from_pairs(&[
            ("ENABLE_RATINGS", "true"),
            ("HOSTNAME", "reviews-v2-5b667bcbf8-abcde"),
        ]);
        let body = Reviews::new(env).body(0, Some([Some(5), Some(4)]));
        assert_eq!(
            body,
            r#"{"id": "0","podname": "reviews-v2-5b667bcbf8-abcde","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"stars": 5, "color": "black"}},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"stars": 4, "color": "black"}}]}"#
        );
    }

    #[test]
    fn v1_body_has_no_rating_and_unset_pod_is_null() {
        let body = Reviews::new(Env::from_pairs(&[])).body(7, None);
        assert!(body.starts_with(r#"{"id": "7","podname": "null","clustername": "null","#));
        assert!(!body.contains("rating"));
    }

    #[test]
    fn java_int_cases() {
        assert_eq!(java_int("+5"), Some(5));
        assert_eq!(java_int("-1"), Some(-1));
        assert_eq!(java_int("007"), Some(7));
        assert_eq!(java_int("2147483648"), None);
        assert_eq!(java_int("1a"), None);
        assert_eq!(java_int(""), None);
    }

    #[test]
    fn timeouts_follow_star_color() {
        let black = Reviews::new(Env::from_pairs(&[("STAR_COLOR", "black")]));
        let red = Reviews::new(Env::from_pairs(&[("STAR_COLOR", "red")]));
        assert_eq!(black.ratings_timeout(), Duration::from_secs(10));
        assert_eq!(red.ratings_timeout(), Duration::from_millis(2500));
    }
}
