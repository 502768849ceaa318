//! Webhook requests as Lambda receives them, signed the way HubSpot signs.

use base64::Engine as _;
use hubwarp::hubspot::signature::{
    self, ClientSecret, HEADER_SIGNATURE, HEADER_SIGNATURE_V3, HEADER_SIGNATURE_VERSION,
    HEADER_TIMESTAMP,
};
use serde_json::{Value, json};

/// The client secret of local runs, tests and the committed fixtures. Never
/// a real app's.
pub const LOCAL_SECRET: &str = "local-dev-client-secret";

/// How to sign a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    V1,
    V2,
    /// v3 with the given timestamp (epoch ms).
    V3(i64),
    /// v3 headers with a signature made with another secret.
    Wrong(i64),
    Unsigned,
}

/// A Lambda Function URL event (payload format 2.0) for a POST.
pub fn function_url_event(host: &str, raw_path: &str, raw_query: &str, body: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {
            "content-type": "application/json",
            "host": host,
            "user-agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split('.').next().unwrap_or("local"),
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": "POST",
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon",
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:20:00:00 +0000",
            "timeEpoch": 1_700_000_000_000i64,
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

/// The body of an event as the function sees it (base64-decoded if so).
pub fn event_body(event: &Value) -> Vec<u8> {
    let raw = event
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_default()
    } else {
        raw.as_bytes().to_vec()
    }
}

/// Signs `event` in place for the URI the receiver will rebuild from it.
pub fn sign_event(event: &mut Value, secret: &str, signing: Signing, public_url: Option<&str>) {
    let request = request(event);
    let uri = webhook_receiver::signed_uri::signed_uri(&request, public_url);
    let method = request.method().as_str().to_string();
    let body = event_body(event);
    let secret = ClientSecret::new(secret);
    let mut set: Vec<(&str, String)> = Vec::new();
    match signing {
        Signing::V1 => {
            set.push((HEADER_SIGNATURE, signature::sign_v1(&secret, &body)));
            set.push((HEADER_SIGNATURE_VERSION, "v1".into()));
        }
        Signing::V2 => {
            set.push((
                HEADER_SIGNATURE,
                signature::sign_v2(&secret, &method, &uri, &body),
            ));
            set.push((HEADER_SIGNATURE_VERSION, "v2".into()));
        }
        Signing::V3(ts) | Signing::Wrong(ts) => {
            let key = if matches!(signing, Signing::Wrong(_)) {
                ClientSecret::new("not-the-secret")
            } else {
                secret
            };
            let ts = ts.to_string();
            set.push((
                HEADER_SIGNATURE_V3,
                signature::sign_v3(&key, &method, &uri, &body, &ts),
            ));
            set.push((HEADER_TIMESTAMP, ts));
        }
        Signing::Unsigned => {}
    }
    for key in ["headers", "multiValueHeaders"] {
        if let Some(h) = event.get_mut(key).and_then(Value::as_object_mut) {
            h.retain(|k, _| !k.to_ascii_lowercase().starts_with("x-hubspot-"));
        }
    }
    if let Some(h) = event.get_mut("headers").and_then(Value::as_object_mut) {
        for (k, v) in set {
            h.insert(k.to_string(), Value::String(v));
        }
    }
}

/// The request lambda_http hands the handler for this event.
pub fn request(event: &Value) -> lambda_http::Request {
    match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => panic!("fixture is not a Lambda HTTP event: {e}"),
    }
}

/// A delivery body of `n` company property changes, `offset` shifting ids.
pub fn property_changes(n: usize, offset: usize) -> String {
    let events: Vec<String> = (offset..offset + n)
        .map(|i| {
            format!(
                r#"{{"eventId":{},"subscriptionId":4001,"portalId":62515,"appId":1160452,"occurredAt":{},"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":{},"changeSource":"CRM_UI","propertyName":"warp_credit_limit","propertyValue":"{}.00"}}"#,
                100_000 + i,
                1_763_700_000_000u64 + i as u64 * 1000,
                5_000_000 + i,
                1000 + i
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}
