//! ratings: star ratings per product (the original is Node with httpdispatcher).

use crate::json::{self, Value};
use crate::server::{Handler, Req, Resp, respond};
use http::Method;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const JSON_TYPE: &str = "application/json";

/// The failure modes `SERVICE_VERSION` selects, used to demonstrate Istio's resilience features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Half of the requests get 503.
    Faulty,
    /// Half of the requests are answered after 7 s.
    Delayed,
    /// Alternates every 60 s between 503s and normal answers.
    Unavailable,
    /// Every 15 min switches between healthy and (503s + failing health).
    Unhealthy,
}

/// The ratings service (v1: in-memory ratings).
pub(crate) struct Ratings {
    mode: Mode,
    started: Instant,
    /// Ratings POSTed per product id, stored as the JSON text the original would return.
    posted: Mutex<HashMap<String, String>>,
    /// v2 is database-backed in the original and refuses POSTs.
    database_backed: bool,
}

impl Ratings {
    pub(crate) fn new(service_version: &str) -> Self {
        let mode = match service_version {
            "v-faulty" => Mode::Faulty,
            "v-delayed" => Mode::Delayed,
            "v-unavailable" => Mode::Unavailable,
            "v-unhealthy" => Mode::Unhealthy,
            "v1" => Mode::Normal,
            other => {
                tracing::warn!(
                    version = other,
                    "SERVICE_VERSION {other:?} needs a database this build does not have; serving v1"
                );
                Mode::Normal
            }
        };
        Ratings {
            mode,
            started: Instant::now(),
            posted: Mutex::new(HashMap::new()),
            database_backed: service_version == "v2",
        }
    }

    /// Whether the periodic modes are in their failing half right now.
    fn failing_phase(&self) -> bool {
        let period = match self.mode {
            Mode::Unavailable => 60,
            Mode::Unhealthy => 900,
            _ => return false,
        };
        (self.started.elapsed().as_secs() / period) % 2 == 1
    }

    fn stored(&self, id: &str) -> Option<String> {
        self.posted.lock().ok().and_then(|m| m.get(id).cloned())
    }

    fn success(&self, id: &NodeInt) -> Resp {
        let body = self.stored(&id.key()).unwrap_or_else(|| {
            format!(
                r#"{{"id":{},"ratings":{{"Reviewer1":5,"Reviewer2":4}}}}"#,
                id.json()
            )
        });
        respond(200, JSON_TYPE, body)
    }

    async fn get_rating(&self, id: NodeInt) -> Resp {
        let unavailable = || respond(503, JSON_TYPE, r#"{"error":"Service unavailable"}"#);
        match self.mode {
            Mode::Normal => self.success(&id),
            Mode::Faulty => {
                if rand::random::<f64>() <= 0.5 {
                    unavailable()
                } else {
                    self.success(&id)
                }
            }
            Mode::Delayed => {
                if rand::random::<f64>() <= 0.5 {
                    tokio::time::sleep(Duration::from_secs(7)).await;
                }
                self.success(&id)
            }
            Mode::Unavailable | Mode::Unhealthy => {
                if self.failing_phase() {
                    unavailable()
                } else {
                    self.success(&id)
                }
            }
        }
    }

    fn post_rating(&self, id: NodeInt, body: &[u8]) -> Resp {
        let Ok(ratings) = Value::parse(body) else {
            return respond(400, JSON_TYPE, r#"{"error":"please provide valid ratings JSON"}"#);
        };
        if self.database_backed {
            return respond(
                501,
                JSON_TYPE,
                r#"{"error":"Post not implemented for database backed ratings"}"#,
            );
        }
        let stored = Value::Object(vec![
            ("id".to_string(), id.value()),
            ("ratings".to_string(), ratings),
        ]);
        let text = json::js_compact(&stored);
        if let Ok(mut map) = self.posted.lock() {
            map.insert(id.key(), text.clone());
        }
        respond(200, JSON_TYPE, text)
    }
}

impl Handler for Ratings {
    async fn handle(&self, req: Req) -> Option<Resp> {
        let path = req.path();
        let raw = req.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or(path);
        let is_ratings = path.starts_with("/ratings/");
        match req.method {
            Method::GET if path == "/health" => {
                Some(if self.mode == Mode::Unhealthy && self.failing_phase() {
                    respond(500, JSON_TYPE, r#"{"status":"Ratings is not healthy"}"#)
                } else {
                    respond(200, JSON_TYPE, r#"{"status":"Ratings is healthy"}"#)
                })
            }
            Method::GET | Method::POST if is_ratings => {
                // The original splits the raw URL (query included) and `parseInt`s the last piece.
                let last = raw.rsplit('/').next().unwrap_or("");
                let Some(id) = NodeInt::parse(last) else {
                    return Some(respond(
                        400,
                        JSON_TYPE,
                        r#"{"error":"please provide numeric product ID"}"#,
                    ));
                };
                if req.method == Method::GET {
                    Some(self.get_rating(id).await)
                } else {
                    Some(self.post_rating(id, &req.body))
                }
            }
            Method::GET | Method::POST => Some(respond(404, "", "")),
            // httpdispatcher throws for other methods and the request is never answered.
            _ => None,
        }
    }
}

/// The result of JavaScript's `parseInt(s)` (radix 10, or 16 after `0x`), kept as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NodeInt(f64);

impl NodeInt {
    fn parse(s: &str) -> Option<NodeInt> {
        let s = s.trim_start_matches(|c: char| c.is_whitespace());
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (radix, s) = match s.get(..2) {
            Some("0x" | "0X") => (16, &s[2..]),
            _ => (10, s),
        };
        let digits: Vec<u32> = s.chars().map_while(|c| c.to_digit(radix)).collect();
        if digits.is_empty() {
            return None;
        }
        let magnitude = digits
            .iter()
            .fold(0f64, |acc, d| acc * f64::from(radix) + f64::from(*d));
        Some(NodeInt(if negative { -magnitude } else { magnitude }))
    }

    /// The id as `JSON.stringify` prints it.
    fn json(&self) -> String {
        json::js_compact(&self.value())
    }

    fn value(&self) -> Value {
        Value::Float(self.0)
    }

    /// The key of the in-memory store (JavaScript object keys are the number's string form).
    fn key(&self) -> String {
        self.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_like_node() {
        let cases = [
            ("0", Some("0")),
            ("12abc", Some("12")),
            ("0?x=1", Some("0")),
            ("-3", Some("-3")),
        ];
        for (input, want) in cases {
            assert_eq!(
                NodeInt::parse(input).map(|n| n.json()).as_deref(),
                want,
                "{input}"
            );
        }
        assert_eq!(NodeInt::parse("0x1A").map(|n| n.json()).as_deref(), Some("26"));
        assert!(NodeInt::parse("abc").is_none());
        assert!(NodeInt::parse("").is_none());
    }

    #[test]
    fn modes_from_service_version() {
        assert_eq!(Ratings::new("v-faulty").mode, Mode::Faulty);
        assert_eq!(Ratings::new("v2").mode, Mode::Normal);
        assert!(!Ratings::new("v-unavailable").failing_phase());
    }

    proptest::proptest! {
        #[test]
        fn parse_int_never_panics(s in ".{0,24}") {
            let _ = NodeInt::parse(&s);
        }
    }
}
