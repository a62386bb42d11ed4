//! productpage's signed session cookie, in Flask's shape: `<b64url JSON>.<b64url timestamp>.<sig>`.
//!
//! The signature is HMAC-SHA256 under a fixed key (the original also uses a key baked into the
//! image). A cookie whose signature does not verify is ignored, so the caller is logged out.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fixed signing key: every productpage replica must accept the others' cookies.
const KEY: &[u8] = b"strait-bookinfo-productpage/session-signing-key/v1";

/// Name of the cookie.
pub(crate) const COOKIE: &str = "session";

fn key() -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, KEY)
}

/// The state kept in the cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Session {
    /// Whether the session holds a `user` key at all (Flask's `'user' in session`).
    pub(crate) has_user: bool,
    /// The user name, `None` when the key holds null (a login without `username`).
    pub(crate) user: Option<String>,
}

/// The signed cookie value for a session holding `user`.
pub(crate) fn encode(user: Option<&str>) -> String {
    let payload = serde_json::json!({ "user": user }).to_string();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // itsdangerous writes the timestamp as big-endian bytes without leading zeros.
    let ts_bytes = secs.to_be_bytes();
    let first = ts_bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(ts_bytes.len() - 1);
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(&ts_bytes[first..])
    );
    let tag = hmac::sign(&key(), signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Reads the session from the request's `Cookie` headers; anything missing, malformed or badly
/// signed is an empty session.
pub(crate) fn decode<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>) -> Session {
    for header in cookie_headers {
        let text = String::from_utf8_lossy(header);
        for pair in text.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if name.trim() == COOKIE {
                return verify(value.trim().trim_matches('"')).unwrap_or_default();
            }
        }
    }
    Session::default()
}

fn verify(value: &str) -> Option<Session> {
    let (signed, sig) = value.rsplit_once('.')?;
    let (payload, _ts) = signed.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    hmac::verify(&key(), signed.as_bytes(), &sig).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let object = json.as_object()?;
    Some(match object.get("user") {
        None => Session::default(),
        Some(user) => Session {
            has_user: true,
            user: user.as_str().map(str::to_string),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> Session {
        let header = format!("other=1; {COOKIE}={value}");
        decode(std::iter::once(header.as_bytes()))
    }

    #[test]
    fn round_trips_and_has_flask_payload() {
        let value = encode(Some("jason"));
        assert!(value.starts_with("eyJ1c2VyIjoiamFzb24ifQ."), "{value}");
        assert_eq!(
            cookie(&value),
            Session {
                has_user: true,
                user: Some("jason".into())
            }
        );
    }

    #[test]
    fn tampered_or_garbage_cookies_are_logged_out() {
        let value = encode(Some("jason"));
        let forged = value.replacen(
            "eyJ1c2VyIjoiamFzb24ifQ",
            &URL_SAFE_NO_PAD.encode(r#"{"user":"admin"}"#),
            1,
        );
        assert_eq!(cookie(&forged), Session::default());
        assert_eq!(cookie("nonsense"), Session::default());
        assert_eq!(cookie(""), Session::default());
    }

    #[test]
    fn null_user_is_present_but_nameless() {
        assert_eq!(
            cookie(&encode(None)),
            Session {
                has_user: true,
                user: None
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,80}") {
            let _ = cookie(&s);
        }
    }
}
