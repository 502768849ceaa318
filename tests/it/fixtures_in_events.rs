//! The payloads in `events/` that `cargo lambda invoke --data-file` sends
//! are real: they parse as Lambda events and get the answers they claim.

use integration_tests::fixtures::{LOCAL_SECRET, Signing, sign_event};
use integration_tests::workspace_root;
use lambda_http::http::StatusCode;
use serde_json::Value;

use crate::utils::Harness;

fn load(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn committed_fixtures_get_the_expected_answers() {
    let h = Harness::new("fixtures").await;
    let (status, body) = Harness::deliver_with(&h.receiver, &load("webhook-v1.json")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["new"], 3);

    let (status, body) =
        Harness::deliver_with(&h.receiver, &load("webhook-bad-signature.json")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // The committed v3 fixture was signed long ago: stale, until re-signed.
    let mut v3 = load("webhook-v3.json");
    let (status, body) = Harness::deliver_with(&h.receiver, &v3).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("old"),
        "{body}"
    );
    sign_event(
        &mut v3,
        LOCAL_SECRET,
        Signing::V3(hubwarp::time::now_ms()),
        None,
    );
    let (status, body) = Harness::deliver_with(&h.receiver, &v3).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // REST API (payload 1.0) with a stage in the path, base64 body.
    let mut rest = load("webhook-rest-api-v3.json");
    sign_event(
        &mut rest,
        LOCAL_SECRET,
        Signing::V3(hubwarp::time::now_ms()),
        None,
    );
    let (status, body) = Harness::deliver_with(&h.receiver, &rest).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
