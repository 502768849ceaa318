//! Vectors: the one in shared/hubspot-facts.md, and ones produced with
//! HubSpot's official Python SDK (`hubspot-api-client` 12.0.0,
//! `hubspot.utils.signature.Signature.get_signature`). The SDK skips the v3
//! URI decoding, so the decoded vector was produced by handing the SDK the
//! already-decoded URI. `tests/it/sdk_crosscheck.rs` re-runs the SDK live.

use super::*;

const FACTS_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const SECRET: &str = "4d1c5d8a-1f0e-4c1b-9a57-2f3c8e0b7a61";
const OLD_SECRET: &str = "0a0a0a0a-old-secret";
const UNICODE_BODY: &str = r#"[{"eventId":100,"subscriptionId":200,"portalId":300,"occurredAt":1700000000000,"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":987654,"propertyName":"name","propertyValue":"Yllä Öy – ☎","changeSource":"CRM_UI"}]"#;
const UNICODE_URI: &str = "https://hooks.example.com/webhooks/hubspot?portal=300&x=a%20b";
const SIMPLE_BODY: &str = r#"[{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":1700000000000,"subscriptionType":"company.creation","objectId":42}]"#;

fn verifier(min: SignatureVersion) -> Verifier {
    Verifier::new(vec![ClientSecret::new(SECRET)], min)
}

fn v3_request<'a>(uri: &'a str, body: &'a str, sig: &'a str, ts: &'a str) -> SignedRequest<'a> {
    SignedRequest {
        method: "POST",
        uri,
        body: body.as_bytes(),
        headers: SignatureHeaders {
            signature_v3: Some(sig),
            timestamp: Some(ts),
            ..Default::default()
        },
    }
}

fn legacy_request<'a>(
    version: &'a str,
    uri: &'a str,
    body: &'a str,
    sig: &'a str,
) -> SignedRequest<'a> {
    SignedRequest {
        method: "POST",
        uri,
        body: body.as_bytes(),
        headers: SignatureHeaders {
            signature: Some(sig),
            version: Some(version),
            ..Default::default()
        },
    }
}

#[test]
fn facts_vector_v3() {
    let secret = ClientSecret::new(FACTS_SECRET);
    let sig = sign_v3(
        &secret,
        "POST",
        "https://www.example.com/webhook_uri",
        br#"{"example_field":"example_value"}"#,
        "1693657560000",
    );
    assert_eq!(sig, "oaA3M5dEtt6kFsseJD/Hv/x+JNl1vsoxFj4oxmwP6Go=");

    let v = Verifier::new(vec![secret], SignatureVersion::V1);
    let req = v3_request(
        "https://www.example.com/webhook_uri",
        r#"{"example_field":"example_value"}"#,
        "oaA3M5dEtt6kFsseJD/Hv/x+JNl1vsoxFj4oxmwP6Go=",
        "1693657560000",
    );
    assert_eq!(
        v.verify(&req, 1_693_657_560_000 + 1_000),
        Ok(SignatureVersion::V3)
    );
}

#[test]
fn sdk_vectors_with_non_ascii_body() {
    let secret = ClientSecret::new(SECRET);
    let body = UNICODE_BODY.as_bytes();
    assert_eq!(
        sign_v1(&secret, body),
        "9305f655b56b9cfa832e76c15ed72a9ffa3bfcfe26d820af38291c51a6812104"
    );
    assert_eq!(
        sign_v2(&secret, "POST", UNICODE_URI, body),
        "7ade734a7e241b43f7645257d4f6b9bfe919f0f887ce6a9d7a88d4b1e198c281"
    );
    assert_eq!(
        sign_v3(&secret, "POST", UNICODE_URI, body, "1700000000123"),
        "AeBUpLx2sda4WAJmapVY8vhPyne+Fn+fOHPTnfdkySU="
    );

    let v = verifier(SignatureVersion::V1);
    let now = 1_700_000_000_123 + 10;
    let v1 = legacy_request(
        "v1",
        UNICODE_URI,
        UNICODE_BODY,
        "9305f655b56b9cfa832e76c15ed72a9ffa3bfcfe26d820af38291c51a6812104",
    );
    assert_eq!(v.verify(&v1, now), Ok(SignatureVersion::V1));
    let v2 = legacy_request(
        "v2",
        UNICODE_URI,
        UNICODE_BODY,
        "7ade734a7e241b43f7645257d4f6b9bfe919f0f887ce6a9d7a88d4b1e198c281",
    );
    assert_eq!(v.verify(&v2, now), Ok(SignatureVersion::V2));
    let v3 = v3_request(
        UNICODE_URI,
        UNICODE_BODY,
        "AeBUpLx2sda4WAJmapVY8vhPyne+Fn+fOHPTnfdkySU=",
        "1700000000123",
    );
    assert_eq!(v.verify(&v3, now), Ok(SignatureVersion::V3));
}

#[test]
fn reserialised_json_breaks_the_hash() {
    // The same text with the ä written as \u00e4: equal JSON, other bytes.
    let reserialised = UNICODE_BODY.replace('ä', "\\u00e4");
    let v = verifier(SignatureVersion::V1);
    let req = legacy_request(
        "v1",
        UNICODE_URI,
        &reserialised,
        "9305f655b56b9cfa832e76c15ed72a9ffa3bfcfe26d820af38291c51a6812104",
    );
    assert_eq!(
        v.verify(&req, 0),
        Err(SignatureError::Mismatch(SignatureVersion::V1))
    );
}

#[test]
fn hex_signature_case_is_ignored() {
    let v = verifier(SignatureVersion::V1);
    let upper = "9305F655B56B9CFA832E76C15ED72A9FFA3BFCFE26D820AF38291C51A6812104";
    let req = legacy_request("V1", UNICODE_URI, UNICODE_BODY, upper);
    assert_eq!(v.verify(&req, 0), Ok(SignatureVersion::V1));
}

#[test]
fn v3_uri_is_decoded_before_signing() {
    // Signed by the SDK over the decoded form; HubSpot calls the encoded one.
    let called = "https://hooks.example.com/webhooks/hubspot?next=https%3A%2f%2Fx.example%2Fa%20b&t=%281%29%2A%21";
    let v = verifier(SignatureVersion::V3);
    let req = v3_request(
        called,
        SIMPLE_BODY,
        "kwGH8G29y+yejwNdrVWpnHC3Gk2TX4L7T8tzSMbNQXM=",
        "1700000000000",
    );
    assert_eq!(v.verify(&req, 1_700_000_000_000), Ok(SignatureVersion::V3));
}

#[test]
fn decoding_touches_exactly_the_listed_escapes() {
    assert_eq!(
        decode_v3_uri("%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B"),
        ":/?@!$'()*,;"
    );
    assert_eq!(
        decode_v3_uri("%3a%2f%3f%2a%2c%3b"),
        ":/?*,;",
        "hex case does not matter"
    );
    // Not on the list: space, percent, ampersand, equals, plus, hash, unicode.
    let untouched = "/a%20b%25c%26d%3De%2Bf%23g%C3%A4";
    assert_eq!(decode_v3_uri(untouched), untouched);
    assert!(matches!(decode_v3_uri("/plain/path"), Cow::Borrowed(_)));
    // Truncated escapes at the end are left alone, never a panic.
    assert_eq!(decode_v3_uri("/x%3"), "/x%3");
    assert_eq!(decode_v3_uri("/x%"), "/x%");
    assert_eq!(decode_v3_uri("%3A"), ":");
    // A decoded '%' is never decoded again.
    assert_eq!(decode_v3_uri("%253A"), "%253A");
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let secret = ClientSecret::new(SECRET);
    let v = verifier(SignatureVersion::V1);
    let ts = 1_700_000_000_000i64;
    let ts_s = ts.to_string();
    let sig = sign_v3(&secret, "POST", UNICODE_URI, SIMPLE_BODY.as_bytes(), &ts_s);
    let req = v3_request(UNICODE_URI, SIMPLE_BODY, &sig, &ts_s);

    assert!(
        v.verify(&req, ts + MAX_TIMESTAMP_SKEW_MS).is_ok(),
        "exactly 5 min old"
    );
    assert_eq!(
        v.verify(&req, ts + MAX_TIMESTAMP_SKEW_MS + 1),
        Err(SignatureError::Stale {
            age_ms: MAX_TIMESTAMP_SKEW_MS + 1
        })
    );
    assert!(v.verify(&req, ts - MAX_TIMESTAMP_SKEW_MS).is_ok());
    assert_eq!(
        v.verify(&req, ts - MAX_TIMESTAMP_SKEW_MS - 1),
        Err(SignatureError::FromFuture {
            ahead_ms: MAX_TIMESTAMP_SKEW_MS + 1
        })
    );
}

#[test]
fn timestamp_is_milliseconds_not_seconds() {
    // A sender that signs epoch seconds looks 53 years stale, not fresh.
    let secret = ClientSecret::new(SECRET);
    let v = verifier(SignatureVersion::V3);
    let now_ms = 1_700_000_000_000i64;
    let seconds = (now_ms / 1000).to_string();
    let sig = sign_v3(
        &secret,
        "POST",
        UNICODE_URI,
        SIMPLE_BODY.as_bytes(),
        &seconds,
    );
    let req = v3_request(UNICODE_URI, SIMPLE_BODY, &sig, &seconds);
    assert!(matches!(
        v.verify(&req, now_ms),
        Err(SignatureError::Stale { .. })
    ));
}

#[test]
fn timestamp_is_signed_as_received() {
    let secret = ClientSecret::new(SECRET);
    let v = verifier(SignatureVersion::V3);
    let sig = sign_v3(
        &secret,
        "POST",
        UNICODE_URI,
        SIMPLE_BODY.as_bytes(),
        "1700000000000",
    );
    // The same instant written as a float is not the signed text.
    let req = v3_request(UNICODE_URI, SIMPLE_BODY, &sig, "1700000000000.0");
    assert_eq!(
        v.verify(&req, 1_700_000_000_000),
        Err(SignatureError::MalformedTimestamp)
    );
    for bad in ["", "-5", "17e11", " 1700000000000", "99999999999999999999"] {
        let req = v3_request(UNICODE_URI, SIMPLE_BODY, &sig, bad);
        assert_eq!(
            v.verify(&req, 1_700_000_000_000),
            Err(SignatureError::MalformedTimestamp),
            "{bad:?}"
        );
    }
}

#[test]
fn minimum_version_refuses_older_schemes() {
    let v = verifier(SignatureVersion::V3);
    let v1 = legacy_request(
        "v1",
        UNICODE_URI,
        UNICODE_BODY,
        "9305f655b56b9cfa832e76c15ed72a9ffa3bfcfe26d820af38291c51a6812104",
    );
    assert_eq!(
        v.verify(&v1, 0),
        Err(SignatureError::BelowMinimum {
            got: SignatureVersion::V1,
            min: SignatureVersion::V3
        })
    );
    let v2_min = verifier(SignatureVersion::V2);
    assert!(matches!(
        v2_min.verify(&v1, 0),
        Err(SignatureError::BelowMinimum { .. })
    ));
}

#[test]
fn v3_is_preferred_and_its_failure_is_reported() {
    let v = verifier(SignatureVersion::V1);
    let mut req = legacy_request(
        "v1",
        UNICODE_URI,
        UNICODE_BODY,
        "9305f655b56b9cfa832e76c15ed72a9ffa3bfcfe26d820af38291c51a6812104",
    );
    req.headers.signature_v3 = Some("AeBUpLx2sda4WAJmapVY8vhPyne+Fn+fOHPTnfdkySU=");
    req.headers.timestamp = Some("1700000000123");
    assert_eq!(v.verify(&req, 1_700_000_000_200), Ok(SignatureVersion::V3));

    // A stale v3 next to a valid v1 passes only because v1 is allowed.
    assert_eq!(v.verify(&req, 1_800_000_000_000), Ok(SignatureVersion::V1));
    let strict = verifier(SignatureVersion::V3);
    assert!(matches!(
        strict.verify(&req, 1_800_000_000_000),
        Err(SignatureError::Stale { .. })
    ));
}

#[test]
fn either_secret_verifies_during_rotation() {
    let secrets = ClientSecret::parse_list(&format!("{SECRET}, {OLD_SECRET}")).unwrap();
    let v = Verifier::new(secrets, SignatureVersion::V3);
    let uri = "https://hooks.example.com/prod/webhooks/hubspot";
    let old_sig = "fiGSIUVRtyDAXxCYd9sssxQKjkKIeejcQqK4KWfKbbw=";
    let req = v3_request(uri, SIMPLE_BODY, old_sig, "1700000000000");
    assert_eq!(v.verify(&req, 1_700_000_000_000), Ok(SignatureVersion::V3));

    let only_new = verifier(SignatureVersion::V3);
    assert_eq!(
        only_new.verify(&req, 1_700_000_000_000),
        Err(SignatureError::Mismatch(SignatureVersion::V3))
    );
}

#[test]
fn secret_list_parsing() {
    assert_eq!(ClientSecret::parse_list("a").unwrap().len(), 1);
    assert_eq!(ClientSecret::parse_list(" a , b ").unwrap().len(), 2);
    assert!(ClientSecret::parse_list("").is_err());
    assert!(ClientSecret::parse_list("a,").is_err());
    assert!(ClientSecret::parse_list("a,b,c").is_err());
    let dbg = format!("{:?}", ClientSecret::new("super-secret"));
    assert!(!dbg.contains("super-secret"));
}

#[test]
fn malformed_signatures_are_mismatches_not_panics() {
    let v = verifier(SignatureVersion::V1);
    for sig in ["", "zz", "not base64 !!", "9305f655", "é"] {
        let req = v3_request(UNICODE_URI, SIMPLE_BODY, sig, "1700000000000");
        assert_eq!(
            v.verify(&req, 1_700_000_000_000),
            Err(SignatureError::Mismatch(SignatureVersion::V3))
        );
        let req = legacy_request("v1", UNICODE_URI, SIMPLE_BODY, sig);
        assert_eq!(
            v.verify(&req, 0),
            Err(SignatureError::Mismatch(SignatureVersion::V1))
        );
    }
    let req = legacy_request("v9", UNICODE_URI, SIMPLE_BODY, "00");
    assert_eq!(
        v.verify(&req, 0),
        Err(SignatureError::UnknownVersion("v9".into()))
    );
    let none = SignedRequest {
        method: "POST",
        uri: UNICODE_URI,
        body: b"[]",
        headers: SignatureHeaders::default(),
    };
    assert_eq!(v.verify(&none, 0), Err(SignatureError::Missing));
    let no_ts = SignedRequest {
        headers: SignatureHeaders {
            signature_v3: Some("x"),
            ..Default::default()
        },
        ..none
    };
    assert_eq!(v.verify(&no_ts, 0), Err(SignatureError::MissingTimestamp));
}

#[test]
fn method_and_uri_are_part_of_v2_and_v3() {
    let secret = ClientSecret::new(SECRET);
    let v = verifier(SignatureVersion::V1);
    let sig = sign_v3(
        &secret,
        "POST",
        UNICODE_URI,
        SIMPLE_BODY.as_bytes(),
        "1700000000000",
    );
    let other_uri = v3_request("https://evil.example/x", SIMPLE_BODY, &sig, "1700000000000");
    assert!(v.verify(&other_uri, 1_700_000_000_000).is_err());
    let mut put = v3_request(UNICODE_URI, SIMPLE_BODY, &sig, "1700000000000");
    put.method = "PUT";
    assert!(v.verify(&put, 1_700_000_000_000).is_err());

    let sig2 = sign_v2(&secret, "POST", UNICODE_URI, SIMPLE_BODY.as_bytes());
    let moved = legacy_request("v2", "https://evil.example/x", SIMPLE_BODY, &sig2);
    assert!(v.verify(&moved, 0).is_err());
}

proptest::proptest! {
    #[test]
    fn verification_never_panics(
        sig in "\\PC{0,64}",
        ts in "\\PC{0,24}",
        version in "\\PC{0,4}",
        uri in "\\PC{0,64}",
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
    ) {
        let v = verifier(SignatureVersion::V1);
        let req = SignedRequest {
            method: "POST",
            uri: &uri,
            body: &body,
            headers: SignatureHeaders {
                signature: Some(&sig),
                version: Some(&version),
                signature_v3: Some(&sig),
                timestamp: Some(&ts),
            },
        };
        proptest::prop_assert!(v.verify(&req, 1_700_000_000_000).is_err());
    }

    #[test]
    fn sign_then_verify_round_trips(body in "\\PC{0,200}", path in "[a-zA-Z0-9/%:?=&]{0,40}", skew in -300_000i64..=300_000) {
        let secret = ClientSecret::new(SECRET);
        let uri = format!("https://hooks.example.com/{path}");
        let ts = 1_700_000_000_000i64;
        let ts_s = ts.to_string();
        let sig = sign_v3(&secret, "POST", &uri, body.as_bytes(), &ts_s);
        let req = v3_request(&uri, &body, &sig, &ts_s);
        proptest::prop_assert_eq!(verifier(SignatureVersion::V3).verify(&req, ts + skew), Ok(SignatureVersion::V3));
    }
}
