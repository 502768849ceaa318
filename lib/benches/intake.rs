//! The receiver's CPU work per delivery: verify the v3 signature, parse the
//! body, build dedup keys; beside a bare SHA-256 pass over the same bytes,
//! the floor any HMAC must pay.
//!
//! `cargo bench -p hubwarp --bench intake` (or `make bench`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hubwarp::hubspot::signature::{
    ClientSecret, SignatureHeaders, SignatureVersion, SignedRequest, Verifier, sign_v3,
};
use hubwarp::hubspot::webhook::read_delivery;
use sha2::{Digest, Sha256};

const URI: &str = "https://q7x3kd2lz5abcdefghijklmnop0qrstu.lambda-url.us-east-1.on.aws/";
const TS: &str = "1763740800000";
const NOW: i64 = 1_763_740_800_500;

/// A delivery like HubSpot's: property changes, about 280 bytes each.
fn body(n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventId":{},"subscriptionId":2951763,"portalId":62515,"appId":1160452,"occurredAt":{},"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":{},"changeSource":"CRM_UI","sourceId":"userId:48151623","propertyName":"warp_contact_email","propertyValue":"billing-{}@example-customer.com"}}"#,
                3_718_120_641u64 + i as u64,
                1_763_740_800_000u64 + i as u64,
                18_476_215_990u64 + i as u64,
                i
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

/// `body` with every other event in the generic format.
fn generic_half(body: &str) -> String {
    body.split(r#""subscriptionType":"company.propertyChange""#)
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else if i % 2 == 0 {
                format!(r#""subscriptionType":"object.propertyChange","objectTypeId":"0-2"{part}"#)
            } else {
                format!(r#""subscriptionType":"company.propertyChange"{part}"#)
            }
        })
        .collect()
}

fn signed<'a>(body: &'a str, sig: &'a str) -> SignedRequest<'a> {
    SignedRequest {
        method: "POST",
        uri: URI,
        body: body.as_bytes(),
        headers: SignatureHeaders {
            signature_v3: Some(sig),
            timestamp: Some(TS),
            ..Default::default()
        },
    }
}

fn intake(c: &mut Criterion) {
    let secret = ClientSecret::new("4d1c5d8a-1f0e-4c1b-9a57-2f3c8e0b7a61");
    let verifier = Verifier::new(vec![secret.clone()], SignatureVersion::V1);
    let mut group = c.benchmark_group("intake");
    for n in [1usize, 10, 100] {
        let body = body(n);
        let sig = sign_v3(&secret, "POST", URI, body.as_bytes(), TS);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("sha256_floor", n), &body, |b, body| {
            b.iter(|| black_box(Sha256::digest(black_box(body.as_bytes()))))
        });
        group.bench_with_input(
            BenchmarkId::new("verify_parse_keys", n),
            &body,
            |b, body| {
                b.iter(|| {
                    let version = verifier.verify(&signed(black_box(body), &sig), NOW);
                    assert!(version.is_ok());
                    let delivery = read_delivery(body.as_bytes()).map_err(|e| e.to_string());
                    let keys: Vec<String> = delivery
                        .iter()
                        .flat_map(|d| &d.events)
                        .map(|e| e.dedup_key())
                        .collect();
                    black_box(keys)
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("parse_only", n), &body, |b, body| {
            b.iter(|| black_box(read_delivery(black_box(body.as_bytes())).map(|d| d.len())))
        });
        // One association change (no objectId) in the body: the typed parse
        // of the array fails, and every event takes the per-object path.
        let mixed = body.replacen(
            r#""objectId":18476215990,"#,
            r#""fromObjectId":18476215990,"toObjectId":1,"associationType":"COMPANY_TO_CONTACT","#,
            1,
        );
        group.bench_with_input(BenchmarkId::new("parse_mixed", n), &mixed, |b, body| {
            b.iter(|| black_box(read_delivery(black_box(body.as_bytes())).map(|d| d.len())))
        });
        // Every other change in the generic format a developer-platform app
        // subscribes to (`object.propertyChange`, `objectTypeId` 0-2).
        let generic = generic_half(&body);
        assert_eq!(
            read_delivery(generic.as_bytes())
                .map(|d| d.events.len())
                .ok(),
            Some(n),
            "every generic change is read as a company change"
        );
        group.bench_with_input(BenchmarkId::new("parse_generic", n), &generic, |b, body| {
            b.iter(|| black_box(read_delivery(black_box(body.as_bytes())).map(|d| d.len())))
        });
        let events = read_delivery(body.as_bytes())
            .map(|d| d.events)
            .unwrap_or_default();
        group.bench_with_input(BenchmarkId::new("keys_only", n), &events, |b, events| {
            b.iter(|| black_box(events.iter().map(|e| e.dedup_key()).collect::<Vec<_>>()))
        });
        group.bench_with_input(BenchmarkId::new("hmac_only", n), &body, |b, body| {
            b.iter(|| black_box(verifier.verify(&signed(black_box(body), &sig), NOW)))
        });
    }
    group.finish();
}

criterion_group!(benches, intake);
criterion_main!(benches);
