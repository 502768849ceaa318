//! The review link's page (`hubwarp::review::page`) over DynamoDB on moto
//! and both sandboxes: a nightly run raises a MANUAL conflict, a link
//! signed for a recipient shows it as it is now, its POST resolves it
//! through `conflicts::resolve`, and the used, superseded, expired and
//! altered links change nothing.

use std::collections::HashMap;

use hubwarp::aws::Caller;
use hubwarp::mapping::ValueType;
use hubwarp::operate::{conflicts, explain};
use hubwarp::review::{Claims, Take, sign};
use hubwarp::settings::Env;
use hubwarp::store::sync::{ConflictQueue, ConflictRecord};
use integration_tests::warp_sandbox::demo_customer;
use lambda_http::http::{self, Method};
use lambda_http::{Body, RequestExt};
use review_page::ReviewPage;
use serde_json::{Map, json};

use crate::consumer::company_id;

const RECIPIENT: &str = "ana@finance.example";

fn customer_id(n: usize) -> String {
    demo_customer(n)["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_review_link_shows_the_conflict_as_it_is_now_resolves_on_post_only_and_is_then_used() {
    // Customers 1 and 2 disagree on their MANUAL credit limit (HubSpot
    // holds 100001 and 100002): the night raises two conflicts.
    let night = crate::email::Night::new("review_page", 2).await;
    let (h, warp, hubspot, mappings) = (&night.h, &night.warp, &night.hubspot, &night.mappings);
    night.run(None).await;
    let ops = hubwarp::reconcile::aws::build(&night.config(), &h.aws_as(Caller::Operator))
        .await
        .unwrap();
    let set_limit = |n: usize, value: &str| {
        let mut p = Map::new();
        p.insert("warp_credit_limit".into(), json!(value));
        hubspot.upsert_company(&company_id(n), p);
    };
    let store = ops.store.clone();
    let open = conflicts::list(&store).await.unwrap();
    assert_eq!(open.len(), 2, "{open:?}");
    let of = |n: usize| {
        open.iter()
            .find(|c| c.customer_id == customer_id(n))
            .unwrap()
            .id
            .clone()
    };
    let (one, two) = (of(1), of(2));
    // HubSpot's value moves on after the night: the page shows today's.
    set_limit(1, "777000");

    // The function as deployed: its settings, its key from Secrets Manager.
    let config = review_page::Config::from_env(&Env::from_pairs([
        ("LINKS_TABLE", h.res.names.sync_tables().links.as_str()),
        (
            "FIELD_STATE_TABLE",
            h.res.names.sync_tables().field_state.as_str(),
        ),
        (
            "SYNC_LOG_TABLE",
            h.res.names.sync_tables().sync_log.as_str(),
        ),
        (
            "CONFLICTS_TABLE",
            h.res.names.sync_tables().conflicts.as_str(),
        ),
        ("WARP_API_URL", warp.base_url.as_str()),
        ("WARP_API_TOKEN", "warp-sandbox-token"),
        ("HUBSPOT_API_URL", hubspot.base_url.as_str()),
        ("HUBSPOT_ACCESS_TOKEN", "pat-sandbox-token"),
        ("REVIEW_LINK_KEY_ARN", h.res.review_key_arn.as_str()),
    ]))
    .unwrap();
    let mut config = config;
    config.mappings = mappings.clone();
    let f = ReviewPage::build(&config, &h.aws_as(Caller::ReviewPage))
        .await
        .unwrap();
    let key = f.key.clone();
    let now = chrono::Utc::now().timestamp();
    let link = |id: &str, expires_at: i64| {
        sign(
            &key,
            &Claims::new(id, Take::Hubspot, RECIPIENT, expires_at).unwrap(),
        )
    };
    let token = link(&one, now + 72 * 3600);
    let writes = || (warp.calls().put, hubspot.call_counts().batch_update);
    warp.reset_calls();
    hubspot.reset_calls();

    let shown = visit(&f, Method::GET, &token).await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    assert!(shown.html.contains("777000"), "{}", shown.html);
    assert!(!shown.html.contains("100001"), "not the night's value");
    assert!(shown.html.contains(RECIPIENT));
    assert!(shown.html.contains("<form method=\"post\">"));
    assert_eq!(writes(), (0, 0), "a GET writes nothing");
    assert_eq!(conflicts::list(&store).await.unwrap().len(), 2);

    // Refused links, both methods: nothing written, the conflict open.
    let expired = link(&one, now);
    let mut altered = token.clone().into_bytes();
    altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (bad, status) in [(&expired, 410), (&altered, 400)] {
        for answer in [
            visit(&f, Method::GET, bad).await,
            visit(&f, Method::POST, bad).await,
        ] {
            assert_eq!(answer.status, status, "{}", answer.html);
            assert_headers(&answer);
        }
    }
    assert_eq!(writes(), (0, 0));
    assert_eq!(conflicts::list(&store).await.unwrap().len(), 2);

    let done = visit(&f, Method::POST, &token).await;
    assert_eq!(done.status, 200, "{}", done.html);
    assert_headers(&done);
    assert_eq!(writes(), (1, 0), "WARP written once");
    assert_eq!(
        ValueType::Decimal
            .warp_to_hubspot(&warp.customer(&customer_id(1)).unwrap()["credit_limit"])
            .unwrap(),
        "777000"
    );
    let x = explain::explain(
        &ops.warp,
        &ops.hubspot,
        &ops.store,
        mappings,
        &customer_id(1),
        Some("credit_limit"),
        explain::DEFAULT_LIMIT,
    )
    .await
    .unwrap();
    assert_eq!(x.history[0].outcome, "resolved-take-hubspot");
    assert!(
        x.history[0]
            .reason
            .contains("resolved by ana@finance.example via e-mail link"),
        "{}",
        x.history[0].reason
    );
    assert!(x.now[0].agree);

    // The used link: who and when, 409, nothing written.
    for again in [
        visit(&f, Method::GET, &token).await,
        visit(&f, Method::POST, &token).await,
    ] {
        assert_eq!(again.status, 409, "{}", again.html);
        assert!(
            again
                .html
                .contains(&format!("Resolved by <strong>{RECIPIENT}</strong> at ")),
            "{}",
            again.html
        );
    }
    assert_eq!(writes(), (1, 0));

    // A newer disagreement of customer 2's field supersedes the one the
    // link names: 409, nothing written, the newer one stays open.
    let old = store
        .open_conflicts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id() == two)
        .unwrap();
    let newer = ConflictRecord {
        hubspot_occurred_at: old.hubspot_occurred_at + 86_400_000,
        hubspot_value: "654322".into(),
        ..old
    };
    store.put_conflict(&newer).await.unwrap();
    let stale = link(&two, now + 3600);
    for answer in [
        visit(&f, Method::GET, &stale).await,
        visit(&f, Method::POST, &stale).await,
    ] {
        assert_eq!(answer.status, 409, "{}", answer.html);
        assert!(answer.html.contains("replaced"), "{}", answer.html);
    }
    assert_eq!(writes(), (1, 0));
    let left: Vec<String> = conflicts::list(&store)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, [newer.id()]);
}

/// What the function answered: status, headers, page.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    html: String,
}

/// The link opened (`GET`) or its form sent (`POST`) through the HTTP
/// API's route, `{token}` a path parameter, as API Gateway gives it.
async fn visit(f: &ReviewPage, method: Method, token: &str) -> Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("https://bridge.example.com/review/{token}"))
        .body(Body::Empty)
        .unwrap()
        .with_path_parameters(HashMap::from([("token".to_string(), token.to_string())]));
    let answer = f.handle(request).await;
    let headers = answer
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let html = match answer.body() {
        Body::Text(t) => t.clone(),
        other => panic!("not a text body: {other:?}"),
    };
    Answer {
        status: answer.status().as_u16(),
        headers,
        html,
    }
}

fn assert_headers(answer: &Answer) {
    let headers = &answer.headers;
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers["content-security-policy"].starts_with("default-src 'none'"));
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}
