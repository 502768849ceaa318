//! The WARP client against the sandbox: every route, ETags, and the line
//! between transient and permanent failures.

use std::time::{Duration, Instant};

use hubwarp::http::{RetryPolicy, Token};
use hubwarp::warp::{WarpClient, WarpError};
use integration_tests::warp_sandbox::{Fault, SANDBOX_TOKEN, WarpSandbox, demo_customer};
use serde_json::{Map, json};

fn client(sandbox: &WarpSandbox, token: &str) -> WarpClient {
    WarpClient::new(
        &sandbox.base_url,
        Token::new(token),
        Duration::from_secs(2),
        RetryPolicy::default(),
    )
    .unwrap()
}

/// A BAN is whatever a HubSpot user typed into `warp_ban`: `..` would turn
/// `/v1/customers/by-ban/..` into `/v1/customers/`, so it never leaves.
#[tokio::test]
async fn a_dots_only_id_or_ban_is_refused_without_asking_warp() {
    let sandbox = WarpSandbox::start().await;
    sandbox.insert(demo_customer(0));
    let c = client(&sandbox, SANDBOX_TOKEN);
    for bad in ["..", ".", ""] {
        assert!(
            matches!(c.by_ban(bad).await, Err(WarpError::NotAnId(_))),
            "{bad:?}"
        );
        assert!(matches!(c.get(bad).await, Err(WarpError::NotAnId(_))));
        assert!(matches!(
            c.update(bad, &Map::new(), None).await,
            Err(WarpError::NotAnId(_))
        ));
    }
    let calls = sandbox.calls();
    assert_eq!(
        (calls.list, calls.get, calls.get_by_ban, calls.put),
        (0, 0, 0, 0)
    );
}

#[tokio::test]
async fn routes_pagination_and_etags() {
    let sandbox = WarpSandbox::start().await;
    for n in 0..250 {
        sandbox.insert(demo_customer(n));
    }
    let c = client(&sandbox, SANDBOX_TOKEN);
    let mut seen = 0;
    let mut page = 1;
    loop {
        let p = c.list_page(page, 100).await.unwrap();
        seen += p.items.len();
        assert_eq!(p.total, 250);
        if page >= p.total_pages {
            break;
        }
        page += 1;
    }
    assert_eq!((seen, page), (250, 3));

    let one = c.by_ban("ZT-487390007").await.unwrap();
    assert_eq!(c.get(&one.id).await.unwrap(), one);
    assert_eq!(c.by_ban("ZT-000").await, Err(WarpError::NotFound));

    let mut body = Map::new();
    body.insert("address".into(), json!({"city": "Boulder"}));
    let updated = c.update(&one.id, &body, Some(&one.etag)).await.unwrap();
    assert_eq!(updated.raw["address"]["city"], "Boulder");
    assert_eq!(
        updated.raw["address"]["line1"], one.raw["address"]["line1"],
        "partial update"
    );
    assert_ne!(updated.etag, one.etag);
    // The old etag no longer matches.
    assert_eq!(
        c.update(&one.id, &body, Some(&one.etag)).await,
        Err(WarpError::PreconditionFailed)
    );
    let mut bad = Map::new();
    bad.insert("ban".into(), json!("ZT-X"));
    assert!(matches!(
        c.update(&one.id, &bad, None).await,
        Err(WarpError::Rejected { status: 422, .. })
    ));
    assert!(matches!(
        client(&sandbox, "wrong").get(&one.id).await,
        Err(WarpError::Rejected { status: 401, .. })
    ));
}

#[tokio::test]
async fn transient_failures_are_retried_within_bounds() {
    let sandbox = WarpSandbox::start().await;
    let id = sandbox.insert(demo_customer(1))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = client(&sandbox, SANDBOX_TOKEN);

    // Two 500s, then success: within the 3 attempts.
    sandbox.set_fault(Fault::ServerError { times: 2 });
    sandbox.reset_calls();
    assert!(c.get(&id).await.is_ok());
    assert_eq!(sandbox.calls().get, 3);

    // A 429 with Retry-After: 1 is waited out.
    sandbox.set_fault(Fault::RateLimited {
        retry_after_s: 1,
        times: 1,
    });
    let t = Instant::now();
    assert!(c.get(&id).await.is_ok());
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );

    // Longer than the client waits: handed back as transient at once.
    sandbox.set_fault(Fault::RateLimited {
        retry_after_s: 60,
        times: 1,
    });
    let e = c.get(&id).await.unwrap_err();
    assert!(e.is_transient(), "{e}");

    // An outage longer than the retries: transient, bounded.
    sandbox.set_fault(Fault::ServerError { times: 10 });
    sandbox.reset_calls();
    assert!(c.get(&id).await.unwrap_err().is_transient());
    assert_eq!(sandbox.calls().get, 3);
    sandbox.set_fault(Fault::None);

    // A slow WARP times out and is transient.
    let impatient = WarpClient::new(
        &sandbox.base_url,
        Token::new(SANDBOX_TOKEN),
        Duration::from_millis(200),
        RetryPolicy::none(),
    )
    .unwrap();
    sandbox.set_fault(Fault::Slow {
        delay_ms: 1_000,
        times: 1,
    });
    assert_eq!(
        impatient.get(&id).await,
        Err(WarpError::Transient("timed out".into()))
    );
}
