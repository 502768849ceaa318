//! Property tests of every parser of outside input, at scale: the webhook
//! body, its signature headers, the whole receiver request, the queue
//! message, the mapping file, and HubSpot's and WARP's answers through the
//! real clients (a loopback server answers whatever status, headers and
//! body the case says). For each: no panic on any input, and a clear error
//! for each bad one (or, for the webhook, every event accounted for).
//!
//! Cases per property: proptest's default (256), or `PROPTEST_CASES`;
//! `make props CASES=1000000` runs them long, in release.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::{CompanyUpdate, HubspotClient};
use hubwarp::hubspot::signature::{
    ClientSecret, SignatureHeaders, SignatureVersion, SignedRequest, Verifier, sign_v3,
};
use hubwarp::hubspot::webhook::read_delivery;
use hubwarp::intake::{Intake, IntakeSettings};
use hubwarp::mapping::MappingSet;
use hubwarp::mapping::config::DEFAULT_MAPPING;
use hubwarp::queue::{MemoryQueue, SyncMessage};
use hubwarp::store::MemoryEventLog;
use hubwarp::warp::WarpClient;
use integration_tests::fixtures::{self, LOCAL_SECRET, Signing};
use proptest::prelude::*;
use serde_json::{Value, json};
use webhook_receiver::Receiver;

const EVENT: &str = r#"{"eventId":100,"subscriptionId":2951763,"portalId":62515,"appId":1160452,"occurredAt":1763740800000,"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":18476215990,"changeSource":"CRM_UI","propertyName":"warp_credit_limit","propertyValue":"5000.00"}"#;

const MESSAGE: &str = r#"{"v":1,"dedupKey":"k","receivedAt":1,"event":{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":1700000000000,"subscriptionType":"company.propertyChange","objectId":42,"propertyName":"name","propertyValue":"Acme"}}"#;

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid JSON object with one field removed, replaced by any value, or
/// one added: structured input that is almost right.
fn mutated(valid: &'static str) -> impl Strategy<Value = Value> {
    let keys: Vec<String> = serde_json::from_str::<Value>(valid)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default();
    (0..keys.len().max(1), 0..3u8, json_value(), ".{0,8}").prop_map(move |(i, how, v, extra)| {
        let mut obj: Value = serde_json::from_str(valid).unwrap_or(Value::Null);
        if let (Some(o), Some(key)) = (obj.as_object_mut(), keys.get(i)) {
            match how {
                0 => {
                    o.remove(key);
                }
                1 => {
                    o.insert(key.clone(), v);
                }
                _ => {
                    o.insert(extra, v);
                }
            }
        }
        obj
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

proptest! {
    /// Bytes or almost-right events: a precise error, or every event of the
    /// array either acted on or recorded with its reason (nothing dropped).
    #[test]
    fn webhook_bodies(bytes in prop::collection::vec(any::<u8>(), 0..300),
                      events in prop::collection::vec(mutated(EVENT), 0..5)) {
        if let Err(e) = read_delivery(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
        let body = Value::Array(events.clone()).to_string();
        match read_delivery(body.as_bytes()) {
            Ok(d) => prop_assert_eq!(d.events.len() + d.unhandled.len(), events.len()),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.starts_with("event ") || text.contains("array"), "{}", text);
            }
        }
    }

    /// Any signature headers: refused with a reason unless they are the
    /// real signature; a changed byte of a real v3 signature never passes.
    #[test]
    fn signature_headers(sig in prop::option::of(".{0,80}"), version in prop::option::of(".{0,6}"),
                         v3 in prop::option::of(".{0,60}"), ts in prop::option::of(".{0,16}"),
                         body in prop::collection::vec(any::<u8>(), 0..64), flip in 0..44usize) {
        let verifier = Verifier::new(vec![ClientSecret::new(LOCAL_SECRET)], SignatureVersion::V1);
        let now = 1_763_740_800_000i64;
        let request = |headers| SignedRequest { method: "POST", uri: "https://h.example/", body: &body, headers };
        let headers = SignatureHeaders {
            signature: sig.as_deref(), version: version.as_deref(),
            signature_v3: v3.as_deref(), timestamp: ts.as_deref(),
        };
        if let Err(e) = verifier.verify(&request(headers), now) {
            prop_assert!(!e.to_string().is_empty());
        }
        let ts = now.to_string();
        let good = sign_v3(&ClientSecret::new(LOCAL_SECRET), "POST", "https://h.example/", &body, &ts);
        let mut bad = good.clone().into_bytes();
        let i = flip % bad.len().max(1);
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8_lossy(&bad).to_string();
        for (s, ok) in [(good.as_str(), true), (bad.as_str(), false)] {
            let headers = SignatureHeaders { signature: None, version: None, signature_v3: Some(s), timestamp: Some(&ts) };
            prop_assert_eq!(verifier.verify(&request(headers), now).is_ok(), ok);
        }
    }

    /// A whole request to the receiver: any method, body and signature;
    /// always an answer from the documented set, errors as {code, detail}.
    #[test]
    fn receiver_requests(method in prop::sample::select(vec!["POST", "GET", "PUT", "DELETE"]),
                         body in prop_oneof![".{0,200}", prop::collection::vec(mutated(EVENT), 0..4).prop_map(|v| Value::Array(v).to_string())],
                         signing in prop::sample::select(vec![Signing::V1, Signing::V2, Signing::Unsigned, Signing::Wrong(0), Signing::V3(0)])) {
        let receiver = Receiver {
            verifier: Verifier::new(vec![ClientSecret::new(LOCAL_SECRET)], SignatureVersion::V1),
            public_url: None,
            max_body_bytes: 150,
            intake: Intake::new(MemoryEventLog::new(), MemoryQueue::new(), IntakeSettings::default()),
        };
        let mut event = fixtures::function_url_event("h.example", "/", "", &body);
        event["requestContext"]["http"]["method"] = json!(method);
        let signing = match signing {
            Signing::V3(_) => Signing::V3(hubwarp::time::now_ms()),
            Signing::Wrong(_) => Signing::Wrong(hubwarp::time::now_ms()),
            s => s,
        };
        fixtures::sign_event(&mut event, LOCAL_SECRET, signing, None);
        let answer = runtime().block_on(receiver.handle(fixtures::request(&event)));
        let answer = answer.map_err(|e| TestCaseError::fail(format!("handler error: {e}")))?;
        let status = answer.status().as_u16();
        prop_assert!([200, 400, 401, 405, 413, 503].contains(&status), "{}", status);
        if status != 200 && status != 405 {
            let err: Value = serde_json::from_slice(answer.body().as_ref()).unwrap_or(Value::Null);
            prop_assert!(err["code"].is_string() && err["detail"].is_string(), "{}", err);
        }
    }

    /// Queue bodies: readable, or refused with a reason that never quotes
    /// the body's values.
    #[test]
    fn queue_messages(text in ".{0,200}", message in mutated(MESSAGE)) {
        if let Err(e) = SyncMessage::read(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
        let body = message.to_string();
        if let Err(e) = SyncMessage::read(&body) {
            let reason = e.to_string();
            prop_assert!(!reason.is_empty());
            prop_assert!(!reason.contains("Acme"), "{}", reason);
        }
    }

    /// Mapping files: any text, or the default file with a line changed;
    /// valid, or refused with `mapping file line N: ...`.
    #[test]
    fn mapping_files(text in ".{0,300}", line in 0..200usize, replacement in ".{0,40}") {
        for candidate in [text.clone(), {
            let mut lines: Vec<&str> = DEFAULT_MAPPING.lines().collect();
            let i = line % lines.len().max(1);
            lines[i] = &replacement;
            lines.join("\n")
        }] {
            if let Err(e) = MappingSet::parse(&candidate) {
                let text = e.to_string();
                prop_assert!(text.starts_with("mapping file line "), "{}", text);
                prop_assert!(e.line >= 1, "{}", text);
            }
        }
    }

    /// HubSpot's answers, any status, headers and body, through the real
    /// client: an answer or a classified error, never a panic.
    #[test]
    fn hubspot_answers(status in prop::sample::select(vec![200u16, 207, 400, 401, 403, 404, 409, 429, 500, 502, 503]),
                       body in prop_oneof![".{0,120}".prop_map(Value::String), json_value(),
                                           json_value().prop_map(|v| json!({"results": [{"id": "1", "properties": v}], "paging": {"next": {"after": v}}})),
                                           json_value().prop_map(|v| json!({"category": v, "policyName": v, "message": v}))],
                       retry_after in prop::option::of(".{0,6}"), call in 0..4u8) {
        let server = canned();
        server.set(status, retry_after, body);
        let client = HubspotClient::new(&server.url, Token::new("t"), Duration::from_secs(5), RetryPolicy::none())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let result = runtime().block_on(async {
            match call {
                0 => client.company("1", &["name"]).await.map(|_| ()),
                1 => client.list_page(&["name"], None, 10).await.map(|_| ()),
                2 => client.batch_read(&["1".to_string()], &["name"]).await.map(|_| ()),
                _ => client.batch_update(&[CompanyUpdate { id: "1".into(), properties: Default::default() }]).await.map(|_| ()),
            }
        });
        if let Err(e) = result {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// WARP's answers, the same way.
    #[test]
    fn warp_answers(status in prop::sample::select(vec![200u16, 400, 401, 404, 409, 412, 422, 429, 500, 503]),
                    body in prop_oneof![".{0,120}".prop_map(Value::String), json_value(),
                                        json_value().prop_map(|v| json!({"success": true, "data": v})),
                                        mutated(r#"{"id":"c1","ban":"ZT-1","etag":"\"1\"","updated_at":"2026-11-24T00:00:00Z"}"#).prop_map(|c| json!({"success": true, "data": c})),
                                        json_value().prop_map(|v| json!({"success": true, "data": {"items": [v], "pagination": v}})),
                                        json_value().prop_map(|v| json!({"success": false, "error": v}))],
                    retry_after in prop::option::of(".{0,6}"), call in 0..3u8) {
        let server = canned();
        server.set(status, retry_after, body);
        let client = WarpClient::new(&server.url, Token::new("t"), Duration::from_secs(5), RetryPolicy::none())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let result = runtime().block_on(async {
            match call {
                0 => client.get("c1").await.map(|_| ()),
                1 => client.list_page(1, 10).await.map(|_| ()),
                _ => client.update("c1", &Default::default(), Some("\"1\"")).await.map(|_| ()),
            }
        });
        if let Err(e) = result {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

/// A loopback server that answers every request with the canned answer.
struct Canned {
    url: String,
    answer: Arc<Mutex<(u16, Option<String>, Value)>>,
}

impl Canned {
    fn set(&self, status: u16, retry_after: Option<String>, body: Value) {
        *self.answer.lock().unwrap_or_else(|p| p.into_inner()) = (status, retry_after, body);
    }
}

fn canned() -> &'static Canned {
    static SERVER: OnceLock<Canned> = OnceLock::new();
    SERVER.get_or_init(|| {
        let answer: Arc<Mutex<(u16, Option<String>, Value)>> =
            Arc::new(Mutex::new((200, None, Value::Null)));
        let shared = answer.clone();
        let app = axum::Router::new().fallback(move |_body: Bytes| {
            let shared = shared.clone();
            async move {
                let (status, retry_after, body) =
                    shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let mut headers = HeaderMap::new();
                if let Some(r) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
                    headers.insert("retry-after", r);
                }
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                let text = match body {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                    headers,
                    text,
                )
                    .into_response()
            }
        });
        let url = runtime().block_on(async {
            let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
            match integration_tests::serve(addr, app, "canned").await {
                Ok((url, _task)) => url,
                Err(e) => panic!("canned server: {e}"),
            }
        });
        Canned { url, answer }
    })
}
