//! Every endpoint and every status code of the API, over an in-process server and a fake backend.
mod support;

use keel_kv_http::{Fault, HttpLimits, VALUE_BYTES_MAX, code};
use support::{TestServer, quick_limits};

async fn server() -> TestServer {
    TestServer::start(HttpLimits::default()).await
}

#[tokio::test]
async fn put_then_get_round_trips_the_value_and_its_index() {
    let server = server().await;
    let put = server.request("PUT", "/v1/kv/greeting", &[], "héllo wörld".as_bytes()).await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json(), serde_json::json!({"index": 1}));
    let get = server.request("GET", "/v1/kv/greeting", &[], b"").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.text(), "héllo wörld");
    assert_eq!(get.header("keel-index"), Some("1"));
    assert_eq!(get.header("content-type"), Some("text/plain; charset=utf-8"));
    server.stop().await;
}

#[tokio::test]
async fn get_of_a_missing_key_is_404() {
    let server = server().await;
    let get = server.request("GET", "/v1/kv/nothing", &[], b"").await;
    assert_eq!(get.status, 404);
    assert_eq!(get.code(), code::KEY_NOT_FOUND);
    assert!(get.json()["error"].as_str().is_some_and(|sentence| !sentence.is_empty()));
}

#[tokio::test]
async fn put_with_if_index_is_compare_and_set() {
    let server = server().await;
    let created = server.request("PUT", "/v1/kv/lock?if-index=0", &[], b"mine").await;
    assert_eq!(created.status, 200, "if-index=0 creates an absent key: {}", created.text());
    let index = created.json()["index"].as_u64().unwrap();
    let again = server.request("PUT", "/v1/kv/lock?if-index=0", &[], b"yours").await;
    assert_eq!(again.status, 412);
    assert_eq!(again.code(), code::INDEX_MISMATCH);
    assert_eq!(again.json()["index"], index, "412 carries the current index");
    let stale = server.request("PUT", &format!("/v1/kv/lock?if-index={}", index + 7), &[], b"yours").await;
    assert_eq!(stale.status, 412);
    let swapped = server.request("PUT", &format!("/v1/kv/lock?if-index={index}"), &[], b"yours").await;
    assert_eq!(swapped.status, 200);
    assert_eq!(server.backend.value("lock").map(|(value, _)| value), Some("yours".to_string()));
    let absent = server.request("PUT", "/v1/kv/other?if-index=3", &[], b"x").await;
    assert_eq!((absent.status, absent.json()["index"].as_u64()), (412, Some(0)), "absent key: current index 0");
    let bad = server.request("PUT", "/v1/kv/lock?if-index=seven", &[], b"x").await;
    assert_eq!((bad.status, bad.code()), (400, code::BAD_QUERY.to_string()));
}

#[tokio::test]
async fn post_append_appends() {
    let server = server().await;
    for part in ["a", "b", "c"] {
        let answer = server.request("POST", "/v1/kv/log?append", &[], part.as_bytes()).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(server.request("GET", "/v1/kv/log", &[], b"").await.text(), "abc");
    let no_flag = server.request("POST", "/v1/kv/log", &[], b"d").await;
    assert_eq!((no_flag.status, no_flag.code()), (400, code::BAD_QUERY.to_string()));
    assert_eq!(server.backend.value("log").map(|(value, _)| value), Some("abc".to_string()), "nothing appended");
}

#[tokio::test]
async fn delete_says_whether_the_key_existed() {
    let server = server().await;
    server.request("PUT", "/v1/kv/k", &[], b"v").await;
    let deleted = server.request("DELETE", "/v1/kv/k", &[], b"").await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json(), serde_json::json!({"index": 2, "deleted": true}));
    let again = server.request("DELETE", "/v1/kv/k", &[], b"").await;
    assert_eq!(again.json(), serde_json::json!({"index": 3, "deleted": false}));
    assert_eq!(server.request("GET", "/v1/kv/k", &[], b"").await.status, 404);
}

#[tokio::test]
async fn list_pages_through_a_prefix() {
    let server = server().await;
    for key in ["app/1", "app/2", "app/3", "apple", "b"] {
        server.request("PUT", &format!("/v1/kv/{key}"), &[], b"v").await;
    }
    let first = server.request("GET", "/v1/kv?prefix=app%2F&limit=2", &[], b"").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.json(),
        serde_json::json!({
            "keys": [{"key": "app/1", "index": 1, "size": 1}, {"key": "app/2", "index": 2, "size": 1}],
            "more": true
        })
    );
    let next = server.request("GET", "/v1/kv?prefix=app/&limit=2&after=app%2F2", &[], b"").await;
    assert_eq!(next.json(), serde_json::json!({"keys": [{"key": "app/3", "index": 3, "size": 1}], "more": false}));
    let everything = server.request("GET", "/v1/kv", &[], b"").await;
    assert_eq!(everything.json()["keys"].as_array().map(Vec::len), Some(5));
    let zero = server.request("GET", "/v1/kv?limit=0", &[], b"").await;
    assert_eq!((zero.status, zero.code()), (400, code::BAD_QUERY.to_string()));
    let typo = server.request("GET", "/v1/kv?prefx=a", &[], b"").await;
    assert_eq!((typo.status, typo.code()), (400, code::BAD_QUERY.to_string()));
    assert!(typo.json()["error"].as_str().unwrap().contains("prefx"));
}

#[tokio::test]
async fn keys_may_hold_slashes_and_percent_escapes() {
    let server = server().await;
    let put = server.request("PUT", "/v1/kv/dir/sub%2Fname%20with%20spaces%3F", &[], b"v1").await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(server.backend.value("dir/sub/name with spaces?").map(|(value, _)| value), Some("v1".to_string()));
    let same_key = server.request("GET", "/v1/kv/dir%2Fsub/name%20with%20spaces%3f", &[], b"").await;
    assert_eq!((same_key.status, same_key.text()), (200, "v1".to_string()));
    let unicode = server.request("PUT", "/v1/kv/caf%C3%A9", &[], b"v2").await;
    assert_eq!(unicode.status, 200);
    assert!(server.backend.value("café").is_some());
    for bad in ["/v1/kv/%zz", "/v1/kv/%4", "/v1/kv/%FF%FE", "/v1/kv/"] {
        let answer = server.request("GET", bad, &[], b"").await;
        assert_eq!((answer.status, answer.code()), (400, code::BAD_KEY.to_string()), "{bad}");
    }
}

#[tokio::test]
async fn oversized_keys_and_values_are_413_before_anything_is_proposed() {
    let server = server().await;
    let long_key = format!("/v1/kv/{}", "k".repeat(keel_kv_http::KEY_BYTES_MAX + 1));
    let answer = server.request("GET", &long_key, &[], b"").await;
    assert_eq!((answer.status, answer.code()), (413, code::KEY_TOO_LARGE.to_string()));
    let big = vec![b'v'; VALUE_BYTES_MAX + 1];
    let answer = server.request("PUT", "/v1/kv/big", &[], &big).await;
    assert_eq!((answer.status, answer.code()), (413, code::VALUE_TOO_LARGE.to_string()));
    let long_prefix = format!("/v1/kv?prefix={}", "p".repeat(keel_kv_http::KEY_BYTES_MAX + 1));
    assert_eq!(server.request("GET", &long_prefix, &[], b"").await.status, 413);
    assert_eq!(server.backend.calls(), 0, "nothing reached the backend");
    // The largest value fits.
    let largest = vec![b'v'; VALUE_BYTES_MAX];
    assert_eq!(server.request("PUT", "/v1/kv/big", &[], &largest).await.status, 200);
    // An append that would grow the value past the limit is the service's refusal, mapped to 413 too.
    let grow = server.request("POST", "/v1/kv/big?append", &[], b"!").await;
    assert_eq!((grow.status, grow.code()), (413, code::VALUE_TOO_LARGE.to_string()));
    assert_eq!(server.backend.value("big").map(|(value, _)| value.len()), Some(VALUE_BYTES_MAX));
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_400() {
    let server = server().await;
    let answer = server.request("PUT", "/v1/kv/bin", &[], &[0x66, 0x6f, 0xff, 0x00]).await;
    assert_eq!((answer.status, answer.code()), (400, code::BAD_BODY.to_string()));
    assert!(answer.json()["error"].as_str().unwrap().contains("not UTF-8"), "{}", answer.text());
    assert_eq!(server.backend.calls(), 0);
}

fn session(client: &str, seq: &str) -> [(&'static str, String); 2] {
    [("Keel-Client-Id", client.to_string()), ("Keel-Seq", seq.to_string())]
}

async fn with_session(
    server: &TestServer,
    method: &str,
    target: &str,
    client: &str,
    seq: &str,
    body: &[u8],
) -> support::Answer {
    let headers = session(client, seq);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    server.request(method, target, &headers, body).await
}

#[tokio::test]
async fn a_retried_request_applies_once() {
    let server = server().await;
    let first = with_session(&server, "POST", "/v1/kv/counter?append", "77", "1", b"x").await;
    let retry = with_session(&server, "POST", "/v1/kv/counter?append", "77", "1", b"x").await;
    assert_eq!(first.status, 200);
    assert_eq!(retry.json(), first.json(), "the retry gets the original reply");
    assert_eq!(server.backend.value("counter").map(|(value, _)| value), Some("x".to_string()), "appended once");
    let next = with_session(&server, "POST", "/v1/kv/counter?append", "77", "2", b"x").await;
    assert_eq!(next.status, 200);
    assert_eq!(server.backend.value("counter").map(|(value, _)| value), Some("xx".to_string()));
    // Without the headers, every request executes.
    server.request("POST", "/v1/kv/counter?append", &[], b"y").await;
    server.request("POST", "/v1/kv/counter?append", &[], b"y").await;
    assert_eq!(server.backend.value("counter").map(|(value, _)| value), Some("xxyy".to_string()));
}

#[tokio::test]
async fn session_contract_violations_are_409_and_bad_headers_400() {
    let server = server().await;
    with_session(&server, "PUT", "/v1/kv/k", "5", "1", b"a").await;
    with_session(&server, "PUT", "/v1/kv/k", "5", "2", b"b").await;
    let stale = with_session(&server, "PUT", "/v1/kv/k", "5", "1", b"c").await;
    assert_eq!((stale.status, stale.code()), (409, code::STALE_SEQUENCE.to_string()));
    assert!(stale.json()["error"].as_str().unwrap().contains("use 3 or more"), "{}", stale.text());
    let reused = with_session(&server, "GET", "/v1/kv/k", "5", "2", b"").await;
    assert_eq!((reused.status, reused.code()), (409, code::SEQUENCE_REUSED.to_string()));
    let expired = with_session(&server, "PUT", "/v1/kv/k", "6", "9", b"d").await;
    assert_eq!((expired.status, expired.code()), (409, code::SESSION_EXPIRED.to_string()));
    assert_eq!(server.backend.value("k").map(|(value, _)| value), Some("b".to_string()), "none of these wrote");

    for (headers, what) in [
        (vec![("Keel-Client-Id", "5"), ("Keel-Seq", "abc")], "a seq that is not a number"),
        (vec![("Keel-Client-Id", "-1"), ("Keel-Seq", "1")], "a negative client id"),
        (vec![("Keel-Client-Id", "5")], "a client id without a seq"),
        (vec![("Keel-Seq", "5")], "a seq without a client id"),
        (vec![("Keel-Client-Id", "0"), ("Keel-Seq", "1")], "client id 0"),
        (vec![("Keel-Client-Id", "5"), ("Keel-Seq", "0")], "seq 0"),
        (vec![("Keel-Client-Id", "5"), ("Keel-Seq", "99999999999999999999")], "a seq over u64"),
    ] {
        let answer = server.request("PUT", "/v1/kv/k", &headers, b"e").await;
        assert_eq!((answer.status, answer.code()), (400, code::BAD_HEADER.to_string()), "{what}");
    }
    assert_eq!(server.backend.value("k").map(|(value, _)| value), Some("b".to_string()));
}

#[tokio::test]
async fn backend_failures_map_to_503_and_504() {
    let server = TestServer::start(quick_limits()).await;
    let cases = [
        (Fault::NoLeader, 503, code::NO_LEADER, true),
        (Fault::Overloaded, 503, code::OVERLOADED, true),
        (Fault::Stopped, 503, code::NODE_STOPPED, false),
        (Fault::TimedOutBeforeApplying, 504, code::TIMED_OUT, false),
        (Fault::UnknownAfterApplying, 504, code::OUTCOME_UNKNOWN, false),
        (Fault::Hang, 504, code::TIMED_OUT, false),
    ];
    for (fault, status, expected_code, retry_after) in cases {
        server.backend.inject(fault);
        let answer = server.request("PUT", "/v1/kv/k", &[], b"v").await;
        assert_eq!((answer.status, answer.code()), (status, expected_code.to_string()), "{fault:?}");
        assert_eq!(answer.header("retry-after").is_some(), retry_after, "{fault:?}: Retry-After");
    }
    // And the node serves normally afterwards.
    assert_eq!(server.request("GET", "/v1/kv/k", &[], b"").await.status, 200);
}

#[tokio::test]
async fn requests_over_the_in_flight_bound_get_503() {
    let limits = HttpLimits { requests_in_flight_max: 1, request_timeout_ms: 3_000, ..HttpLimits::default() };
    let server = TestServer::start(limits).await;
    server.backend.inject(Fault::Hang);
    let addr = server.addr;
    let stuck = tokio::spawn(async move { support::request(addr, "GET", "/v1/kv/a", &[], b"").await });
    let waited = std::time::Instant::now();
    while server.backend.calls() == 0 {
        assert!(waited.elapsed() < support::PATIENCE, "the first request never reached the backend");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let refused = server.request("GET", "/v1/kv/b", &[], b"").await;
    assert_eq!((refused.status, refused.code()), (503, code::OVERLOADED.to_string()));
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(server.backend.calls(), 1, "the refused request was not proposed");
    assert_eq!(stuck.await.expect("first request").status, 504);
    assert_eq!(server.request("GET", "/v1/kv/b", &[], b"").await.status, 404, "served again once the first ended");
}

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_routes_404() {
    let server = server().await;
    for (method, target) in [("PATCH", "/v1/kv/a"), ("POST", "/v1/status"), ("DELETE", "/v1/kv"), ("PUT", "/metrics")] {
        let answer = server.request(method, target, &[], b"").await;
        assert_eq!((answer.status, answer.code()), (405, code::METHOD_NOT_ALLOWED.to_string()), "{method} {target}");
        assert!(answer.header("allow").is_some_and(|allow| allow.contains("GET")), "{method} {target}: Allow");
    }
    let nowhere = server.request("GET", "/v2/kv/a", &[], b"").await;
    assert_eq!((nowhere.status, nowhere.code()), (404, code::NO_ROUTE.to_string()));
}

#[tokio::test]
async fn status_is_the_nodes_json() {
    let server = server().await;
    server.request("PUT", "/v1/kv/a", &[], b"1").await;
    let status = server.request("GET", "/v1/status", &[], b"").await;
    assert_eq!(status.status, 200);
    assert_eq!(
        status.json(),
        serde_json::json!({
            "id": 1, "role": "leader", "term": 1, "leader": 1, "commit_index": 1, "applied_index": 1, "members": [1]
        })
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = server().await;
    server.request("PUT", "/v1/kv/a", &[], b"1").await;
    server.request("PUT", "/v1/kv/b", &[], b"1").await;
    server.request("GET", "/v1/kv/missing", &[], b"").await;
    let metrics = server.request("GET", "/metrics", &[], b"").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains(r#"keel_http_requests_total{route="kv_put",status="200"} 2"#), "{text}");
    assert!(text.contains(r#"keel_http_requests_total{route="kv_get",status="404"} 1"#), "{text}");
    assert!(text.contains(r#"keel_http_request_duration_seconds_count{route="kv_put"} 2"#), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}
