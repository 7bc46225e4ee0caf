//! Reading a request: the key from the path, the query parameters, the session headers and the body. Each
//! refuses bad input with a 400 (or 413, 408) that says what was wrong, before anything is proposed.
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use keel_kv::{ClientId, NO_SESSION, Seq};

use crate::api_error::{ApiError, code};
use crate::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// The route prefix of single-key requests; the key is the rest of the path.
pub const KEY_PATH_PREFIX: &str = "/v1/kv/";

/// Header carrying the client's id (a decimal u64, not 0). With `KEEL_SEQ_HEADER`, asks for exactly-once.
pub const KEEL_CLIENT_ID_HEADER: &str = "keel-client-id";
/// Header carrying the request's sequence number (a decimal u64, at least 1).
pub const KEEL_SEQ_HEADER: &str = "keel-seq";
/// Response header of `GET /v1/kv/{key}`: the key's last-modified index.
pub const KEEL_INDEX_HEADER: &str = "keel-index";
/// Response header of every `/v1/kv` request: the id of the node that answered.
pub const KEEL_NODE_HEADER: &str = "keel-node";
/// Response header of every `/v1/kv` request, when the answering node knows one: the id of the leader. A client
/// that learns which of its endpoints is the leader sends there and saves the hop a follower's forwarding costs.
pub const KEEL_LEADER_HEADER: &str = "keel-leader";

/// The key of `/v1/kv/{key}`: the rest of the path, percent-decoded (`/` may appear raw or as `%2F`).
pub fn key_from_path(path: &str) -> Result<String, ApiError> {
    let encoded = path.strip_prefix(KEY_PATH_PREFIX).unwrap_or_default();
    let key = percent_decode(encoded, false).map_err(|problem| {
        ApiError::bad_request(code::BAD_KEY, format!("the key in the path is not valid: {problem}"))
    })?;
    check_key("key", &key)?;
    Ok(key)
}

/// Keys (and list prefixes and cursors) are at most `KEY_BYTES_MAX` bytes; a key is also non-empty.
fn check_key(what: &str, key: &str) -> Result<(), ApiError> {
    if what == "key" && key.is_empty() {
        return Err(ApiError::bad_request(code::BAD_KEY, "the key is empty: use /v1/kv/{key}"));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::KEY_TOO_LARGE,
            format!("the {what} is {} bytes long; the limit is {KEY_BYTES_MAX} bytes", key.len()),
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes (and `+` as a space in query strings) and checks the result is UTF-8.
pub fn percent_decode(encoded: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let escape = bytes
                    .get(at + 1..at + 3)
                    .ok_or_else(|| format!("'%' at byte {at} is not followed by two hex digits"))?;
                let value = std::str::from_utf8(escape)
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| format!("'%' at byte {at} is not followed by two hex digits"))?;
                decoded.push(value);
                at += 3;
            }
            b'+' if plus_is_space => {
                decoded.push(b' ');
                at += 1;
            }
            byte => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(decoded)
        .map_err(|e| format!("it is not UTF-8 once percent-decoded (byte {})", e.utf8_error().valid_up_to()))
}

/// The query parameters of one request, decoded. Each name may appear once; the route says which names it takes.
#[derive(Debug, Default)]
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b&c=x%2Fy`. Refuses repeated names and bad escapes.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name =
                percent_decode(name, true).map_err(|problem| bad_query(format!("a parameter name: {problem}")))?;
            let value =
                percent_decode(value, true).map_err(|problem| bad_query(format!("parameter '{name}': {problem}")))?;
            if !allowed.contains(&name.as_str()) {
                let takes = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                return Err(bad_query(format!("unknown parameter '{name}' (this request takes: {takes})")));
            }
            if params.iter().any(|(seen, _)| *seen == name) {
                return Err(bad_query(format!("parameter '{name}' is given twice")));
            }
            params.push((name, value));
        }
        Ok(Query { params })
    }

    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(seen, _)| seen == name)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(seen, _)| seen == name).map(|(_, value)| value.as_str())
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|text| {
                text.parse::<u64>()
                    .map_err(|_| bad_query(format!("parameter '{name}' must be a decimal integer, not '{text}'")))
            })
            .transpose()
    }

    /// A list prefix or cursor: at most `KEY_BYTES_MAX` bytes.
    pub fn key_like(&self, name: &str) -> Result<Option<String>, ApiError> {
        let value = self.text(name).map(str::to_owned);
        if let Some(value) = &value {
            check_key(&format!("'{name}' parameter"), value)?;
        }
        Ok(value)
    }
}

fn bad_query(message: String) -> ApiError {
    ApiError::bad_request(code::BAD_QUERY, format!("bad query string: {message}"))
}

/// The (client, seq) of a request: from `Keel-Client-Id` and `Keel-Seq` (both or neither), else `NO_SESSION`.
pub fn session(headers: &HeaderMap) -> Result<(ClientId, Seq), ApiError> {
    let client_id = header_u64(headers, KEEL_CLIENT_ID_HEADER)?;
    let seq = header_u64(headers, KEEL_SEQ_HEADER)?;
    match (client_id, seq) {
        (None, None) => Ok((NO_SESSION, 0)),
        (Some(NO_SESSION), Some(_)) => Err(bad_header(
            "Keel-Client-Id 0 is reserved for requests without a session: pick a random nonzero id, or send neither \
             header"
                .to_string(),
        )),
        (Some(_), Some(0)) => {
            Err(bad_header("Keel-Seq starts at 1: number a client's requests 1, 2, 3...".to_string()))
        }
        (Some(client_id), Some(seq)) => Ok((client_id, seq)),
        (Some(_), None) | (None, Some(_)) => Err(bad_header(
            "send both Keel-Client-Id and Keel-Seq (exactly-once), or neither (no retry protection)".to_string(),
        )),
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(bad_header(format!("header {name} is given more than once")));
    }
    let parsed = value.to_str().ok().and_then(|text| text.trim().parse::<u64>().ok());
    match parsed {
        Some(number) => Ok(Some(number)),
        None => Err(bad_header(format!(
            "header {name} must be a decimal integer (0 to 18446744073709551615), not {:?}",
            String::from_utf8_lossy(value.as_bytes())
        ))),
    }
}

fn bad_header(message: String) -> ApiError {
    ApiError::bad_request(code::BAD_HEADER, message)
}

/// Reads a value from the body: at most `VALUE_BYTES_MAX` bytes (refused from `Content-Length` before reading
/// when it says more), within `timeout`, and UTF-8.
pub async fn read_value(headers: &HeaderMap, body: Body, timeout: Duration) -> Result<String, ApiError> {
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length = length.to_str().ok().and_then(|text| text.parse::<u64>().ok());
        match length {
            Some(length) if length > VALUE_BYTES_MAX as u64 => return Err(value_too_large(&format!("{length} bytes"))),
            Some(_) => {}
            None => return Err(bad_header("Content-Length must be a decimal integer".to_string())),
        }
    }
    let collected = tokio::time::timeout(timeout, Limited::new(body, VALUE_BYTES_MAX).collect()).await;
    let bytes = match collected {
        Err(_elapsed) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                code::BODY_TIMEOUT,
                format!("the body did not arrive within {} ms: send it whole, promptly", timeout.as_millis()),
            ));
        }
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(value_too_large("more bytes"));
        }
        Ok(Err(error)) => {
            return Err(ApiError::bad_request(code::BAD_BODY, format!("could not read the request body: {error}")));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    String::from_utf8(bytes.to_vec()).map_err(|error| {
        ApiError::bad_request(
            code::BAD_BODY,
            format!(
                "the value is not UTF-8 (invalid byte at offset {}): keel kv stores text; encode binary data \
                 (base64, say) first",
                error.utf8_error().valid_up_to()
            ),
        )
    })
}

fn value_too_large(size: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code::VALUE_TOO_LARGE,
        format!("the body has {size}; a value is at most {VALUE_BYTES_MAX} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys() {
        assert_eq!(key_from_path("/v1/kv/a/b%2Fc%20d"), Ok("a/b/c d".to_string()));
        assert_eq!(key_from_path("/v1/kv/caf%C3%A9+"), Ok("café+".to_string()), "'+' is literal in a path");
        assert_eq!(key_from_path("/v1/kv/").map_err(|e| e.code), Err(code::BAD_KEY));
        assert_eq!(key_from_path("/v1/kv/%zz").map_err(|e| e.code), Err(code::BAD_KEY));
        assert_eq!(key_from_path("/v1/kv/%4").map_err(|e| e.code), Err(code::BAD_KEY));
        assert_eq!(key_from_path("/v1/kv/%FF").map_err(|e| e.code), Err(code::BAD_KEY));
        let long = format!("/v1/kv/{}", "k".repeat(KEY_BYTES_MAX + 1));
        assert_eq!(key_from_path(&long).map_err(|e| e.status), Err(StatusCode::PAYLOAD_TOO_LARGE));
    }

    #[test]
    fn parses_queries() {
        let query = Query::parse(Some("prefix=a%2Fb+c&limit=3&after"), &["prefix", "limit", "after"]).unwrap();
        assert_eq!(query.text("prefix"), Some("a/b c"));
        assert_eq!(query.u64("limit").unwrap(), Some(3));
        assert!(query.has("after"));
        assert!(Query::parse(Some("limit=1&limit=2"), &["limit"]).is_err());
        assert!(Query::parse(Some("if_index=1"), &["if-index"]).is_err());
        assert!(Query::parse(Some("limit=x"), &["limit"]).unwrap().u64("limit").is_err());
    }
}
