//! The HubSpot client against the HubSpot sandbox: paging, batches, search
//! past the 10,000 cap, and the rate limits (a 429 storm, the daily cap,
//! the rolling window it must never trip).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::{
    CompanyUpdate, Direction, Filter, FilterGroup, HubspotClient, HubspotError, SearchRequest, Sort,
};
use hubwarp::hubspot::rate::RateLimiter;
use integration_tests::hubspot_sandbox::{HUBSPOT_SANDBOX_TOKEN, HubspotSandbox, Route, Throttle};
use serde_json::{Map, Value, json};

fn client(hubspot: &HubspotSandbox) -> HubspotClient {
    HubspotClient::new(
        &hubspot.base_url,
        Token::new(HUBSPOT_SANDBOX_TOKEN),
        Duration::from_secs(10),
        RetryPolicy::default(),
    )
    .unwrap()
}

/// Companies `first..first+n`, named `Company <id>`, `warp_tier` GOLD on
/// even ids.
fn seed(hubspot: &HubspotSandbox, first: u64, n: u64) -> Vec<String> {
    // The bridge's properties, as `hubwarp setup` creates them (the first
    // eight demo customers hold every tier and payment term); a second call
    // finds them there and creates nothing.
    integration_tests::hubspot_setup::install_bridge_properties(
        hubspot,
        &(0..8)
            .map(integration_tests::warp_sandbox::demo_customer)
            .collect::<Vec<_>>(),
    );
    (first..first + n)
        .map(|id| {
            let mut props = Map::new();
            props.insert("name".into(), json!(format!("Company {id}")));
            if id % 2 == 0 {
                props.insert("warp_tier".into(), json!("GOLD"));
            }
            hubspot.upsert_company(&id.to_string(), props);
            id.to_string()
        })
        .collect()
}

fn ids_of(companies: &[hubwarp::hubspot::crm::Company]) -> Vec<String> {
    companies.iter().map(|c| c.id.clone()).collect()
}

#[tokio::test]
async fn list_pages_through_250_companies_and_the_last_page_has_no_cursor() {
    let hubspot = HubspotSandbox::start().await;
    let seeded = seed(&hubspot, 18_476_215_001, 250);
    let c = client(&hubspot);
    let (mut listed, mut sizes, mut after) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = c
            .list_page(&["name", "warp_tier"], after.as_deref(), 100)
            .await
            .unwrap();
        sizes.push(page.results.len());
        listed.extend(page.results);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(ids_of(&listed), seeded);
    let odd = &listed[0];
    assert_eq!(odd.property("name"), Some("Company 18476215001"));
    assert_eq!(
        odd.properties.get("warp_tier"),
        Some(&None),
        "asked, no value: null"
    );
    assert!(odd.updated_at.as_deref().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(listed[1].property("warp_tier"), Some("GOLD"));
    assert_eq!(c.calls().list, 3);
    // The limit is clamped and always sent.
    let clamped = c.list_page(&[], None, 1_000).await.unwrap();
    assert_eq!(clamped.results.len(), 100);
    let queries: Vec<String> = hubspot
        .received(Route::List)
        .into_iter()
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert!(
        queries.iter().all(|q| q.contains("limit=100")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn batch_read_returns_the_found_and_names_the_missing() {
    let hubspot = HubspotSandbox::start().await;
    seed(&hubspot, 1, 5);
    let c = client(&hubspot);
    let ids: Vec<String> = ["1", "2", "99", "3", "100"].map(String::from).to_vec();
    let read = c.batch_read(&ids, &["name", "warp_tier"]).await.unwrap();
    let mut found = ids_of(&read.found);
    found.sort();
    assert_eq!(found, ["1", "2", "3"]);
    assert_eq!(read.missing, ["99", "100"]);
    assert_eq!(c.calls().batch_read, 1, "one call");

    let all = c.batch_read(&ids[..2], &["name"]).await.unwrap();
    assert!(all.missing.is_empty());
    assert_eq!(all.found.len(), 2);
    // Nothing to read sends nothing.
    assert_eq!(c.batch_read(&[], &["name"]).await.unwrap().found, []);
    assert_eq!(hubspot.call_counts().batch_read, 2);
}

#[tokio::test]
async fn batch_update_applies_what_exists_and_reports_the_rest() {
    let hubspot = HubspotSandbox::start().await;
    seed(&hubspot, 1, 3);
    let c = client(&hubspot);
    let update = |id: &str, pairs: &[(&str, &str)]| CompanyUpdate {
        id: id.to_string(),
        properties: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    let result = c
        .batch_update(&[
            update("1", &[("city", "Lyon"), ("warp_credit_limit", "5000.00")]),
            update("2", &[("warp_tier", "")]),
            update("404", &[("city", "Nowhere")]),
        ])
        .await
        .unwrap();
    let mut updated = ids_of(&result.updated);
    updated.sort();
    assert_eq!(updated, ["1", "2"]);
    assert_eq!(result.failed.len(), 1);
    assert_eq!(result.failed[0].ids, ["404"]);
    assert_eq!(result.failed[0].category, "OBJECT_NOT_FOUND");
    assert!(!result.failed[0].message.is_empty());
    let one = result.updated.iter().find(|c| c.id == "1").unwrap();
    assert_eq!(one.property("city"), Some("Lyon"));

    assert_eq!(
        hubspot.company("1").unwrap()["warp_credit_limit"],
        "5000.00"
    );
    assert_eq!(hubspot.company("2").unwrap()["warp_tier"], Value::Null);
    let read = c.company("2", &["warp_tier"]).await.unwrap().unwrap();
    assert_eq!(read.properties.get("warp_tier"), Some(&None));

    // A property the portal does not have refuses the whole batch.
    let refused = c
        .batch_update(&[update("3", &[("no_such_property", "x")])])
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, HubspotError::Rejected { status: 400, category } if category == "VALIDATION_ERROR"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn more_than_100_inputs_or_duplicates_are_refused_before_any_call() {
    let hubspot = HubspotSandbox::start().await;
    let c = client(&hubspot);
    let ids: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    let e = c.batch_read(&ids, &["name"]).await.unwrap_err();
    assert!(
        matches!(e, HubspotError::Rejected { status: 400, .. }),
        "{e:?}"
    );
    let updates: Vec<CompanyUpdate> = ids
        .iter()
        .map(|id| CompanyUpdate {
            id: id.clone(),
            properties: BTreeMap::new(),
        })
        .collect();
    assert!(c.batch_update(&updates).await.is_err());
    let twice = [updates[0].clone(), updates[0].clone()];
    assert!(c.batch_update(&twice).await.is_err());
    let not_numeric = ["1 OR 2".to_string()];
    assert!(c.batch_read(&not_numeric, &[]).await.is_err());
    // Exactly 100 is fine.
    assert!(c.batch_read(&ids[..100], &["name"]).await.is_ok());
    assert_eq!(hubspot.calls(), 1);
    assert_eq!(c.calls().requests(), 1);
}

#[tokio::test]
async fn search_page_filters_sorts_and_pages() {
    let hubspot = HubspotSandbox::start().await;
    seed(&hubspot, 1, 40);
    let c = client(&hubspot);
    let mut req = SearchRequest {
        filter_groups: vec![FilterGroup {
            filters: vec![
                Filter::eq("warp_tier", "GOLD"),
                Filter::gt("hs_object_id", "9"),
            ],
        }],
        sorts: vec![Sort {
            property_name: "hs_object_id".into(),
            direction: Direction::Descending,
        }],
        properties: vec!["name".into(), "warp_tier".into()],
        limit: 7,
        ..SearchRequest::default()
    };
    let first = c.search_page(&req).await.unwrap();
    assert_eq!(first.total, 16);
    assert_eq!(
        ids_of(&first.results),
        ["40", "38", "36", "34", "32", "30", "28"]
    );
    req.after = first.next_after.clone();
    assert_eq!(req.after.as_deref(), Some("7"));
    let second = c.search_page(&req).await.unwrap();
    assert_eq!(second.results.len(), 7);
    req.after = second.next_after;
    let last = c.search_page(&req).await.unwrap();
    assert_eq!(ids_of(&last.results), ["12", "10"]);
    assert_eq!(last.next_after, None);
    // What HubSpot would refuse with a 400 is refused before the call.
    req.after = Some("9900".into());
    req.limit = 200;
    assert!(c.search_page(&req).await.is_err());
    assert_eq!(hubspot.call_counts().search, 3);
}

#[tokio::test]
async fn search_all_walks_past_the_10000_result_cap_without_loss_or_repeat() {
    let hubspot = HubspotSandbox::start().await;
    let seeded = seed(&hubspot, 30_000_000_001, 10_500);
    let c = client(&hubspot);
    let mut cursor = c.search_all(vec![Filter::has_property("name")], vec!["name".into()]);
    let (mut found, mut pages) = (Vec::new(), 0);
    while let Some(page) = cursor.next_page(&c).await.unwrap() {
        assert!(page.len() <= 200);
        pages += 1;
        found.extend(ids_of(&page));
    }
    assert!(cursor.next_page(&c).await.unwrap().is_none(), "stays done");
    assert_eq!(found.len(), 10_500);
    assert_eq!(found, seeded, "every company once, by ascending id");
    // 50 pages reach the cap; a new query above the last id takes the rest.
    assert_eq!(pages, 53);
    let bodies = hubspot.request_bodies(Route::Search);
    assert_eq!(bodies.len(), 53);
    let restart = &bodies[50];
    assert_eq!(restart["after"], "0");
    assert_eq!(
        restart["filterGroups"][0]["filters"][1],
        json!({"propertyName": "hs_object_id", "operator": "GT", "value": "30000010000"})
    );
    assert!(bodies.iter().all(|b| b["limit"] == 200));
    assert_eq!(hubspot.call_counts().rate_limited, 0);
    let distinct: HashSet<&String> = found.iter().collect();
    assert_eq!(distinct.len(), found.len());
}

#[tokio::test]
async fn a_429_storm_slows_a_run_but_loses_no_call() {
    let hubspot = HubspotSandbox::start().await;
    let ids = seed(&hubspot, 1, 10);
    let limiter = Arc::new(RateLimiter::new(100, 4));
    let c = client(&hubspot).with_limiter(limiter);
    hubspot.throttle_next(Throttle::TenSecondly, 30);
    let started = Instant::now();
    let reads = join_all(ids.iter().map(|id| {
        let c = c.clone();
        async move { c.company(id, &["name"]).await }
    }))
    .await;
    let took = started.elapsed();
    for (id, read) in ids.iter().zip(reads) {
        assert_eq!(read.unwrap().unwrap().id, *id);
    }
    let calls = c.calls();
    assert_eq!(calls.rate_limited_429s, 30);
    assert_eq!(calls.get, 40, "each 429 retried once more, nothing dropped");
    assert!(calls.rate_limit_waits >= 10, "{calls:?}");
    assert!(calls.waited_ms >= 1_000, "{calls:?}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(hubspot.call_counts().rate_limited, 30);
}

#[tokio::test]
async fn without_a_limiter_429s_are_transient_under_the_retry_policy() {
    // The consumer's way: the queue redelivers later.
    let hubspot = HubspotSandbox::start().await;
    seed(&hubspot, 1, 1);
    let c = HubspotClient::new(
        &hubspot.base_url,
        Token::new(HUBSPOT_SANDBOX_TOKEN),
        Duration::from_secs(5),
        RetryPolicy::none(),
    )
    .unwrap();
    hubspot.throttle_next(Throttle::TenSecondly, 1);
    let e = c.company("1", &["name"]).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(c.company("1", &["name"]).await.unwrap().is_some());
}

#[tokio::test]
async fn server_errors_are_retried_under_the_retry_policy() {
    let hubspot = HubspotSandbox::start().await;
    seed(&hubspot, 1, 1);
    let c = client(&hubspot);
    hubspot.fail_next(503, 2);
    assert!(c.company("1", &[]).await.unwrap().is_some());
    assert_eq!(c.calls().get, 3);
    hubspot.fail_next(500, 3);
    let e = c.company("1", &[]).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(c.calls().get, 6);
}

#[tokio::test]
async fn the_daily_cap_stops_at_once_and_later_calls_fail_fast_without_reaching_hubspot() {
    let hubspot = HubspotSandbox::start().await;
    seed(&hubspot, 1, 3);
    let limiter = Arc::new(RateLimiter::new(100, 4));
    let c = client(&hubspot).with_limiter(limiter);
    let clone = c.clone();
    hubspot.throttle_next(Throttle::Daily, 1);
    let e = c.company("1", &["name"]).await.unwrap_err();
    let HubspotError::DailyLimit { retry_at_ms } = e else {
        panic!("{e:?}");
    };
    assert!(e.is_daily_limit() && !e.is_transient());
    let now = hubwarp::time::now_ms();
    let midnight = (now / 86_400_000 + 1) * 86_400_000;
    assert_eq!(
        retry_at_ms, midnight,
        "no Retry-After: the next midnight UTC"
    );
    assert_eq!(hubspot.calls(), 1);

    // Every later call of this client, clones included, fails fast.
    let ids = vec!["1".to_string()];
    assert!(
        clone
            .batch_read(&ids, &[])
            .await
            .unwrap_err()
            .is_daily_limit()
    );
    assert!(
        clone
            .list_page(&[], None, 10)
            .await
            .unwrap_err()
            .is_daily_limit()
    );
    let search = clone.search_page(&SearchRequest::default()).await;
    assert_eq!(
        search.unwrap_err(),
        HubspotError::DailyLimit { retry_at_ms }
    );
    assert_eq!(hubspot.calls(), 1, "nothing more reached HubSpot");
    assert_eq!(c.calls().requests(), 1);

    // A Retry-After, when HubSpot gives one, sets the time instead.
    let other = client(&hubspot);
    hubspot.throttle_next_with_retry_after(Throttle::Daily, 1, Some(3_600));
    let e = other.company("2", &[]).await.unwrap_err();
    let HubspotError::DailyLimit { retry_at_ms } = e else {
        panic!("{e:?}");
    };
    let expected = hubwarp::time::now_ms() + 3_600_000;
    assert!(
        (retry_at_ms - expected).abs() < 5_000,
        "{retry_at_ms} vs {expected}"
    );
}

#[tokio::test]
async fn a_client_at_the_sandboxs_budget_never_trips_its_rolling_window() {
    let hubspot = HubspotSandbox::start().await;
    let ids = seed(&hubspot, 1, 20);
    hubspot.set_ten_secondly_limit(Some(8));
    // HubSpot's five searches a second; the client paces three.
    hubspot.set_search_per_second(Some(5));
    let c = client(&hubspot).with_limiter(Arc::new(RateLimiter::new(8, 3)));
    let started = Instant::now();
    // Six workers share 20 general calls of three kinds, and 9 searches.
    let general = join_all((0..6).map(|w| {
        let c = c.clone();
        let ids = ids.clone();
        async move {
            for n in (w..20).step_by(6) {
                match n % 3 {
                    0 => drop(c.company(&ids[n], &["name"]).await.unwrap()),
                    1 => drop(c.list_page(&["name"], None, 5).await.unwrap()),
                    _ => drop(c.batch_read(&ids[n..n + 1], &["name"]).await.unwrap()),
                }
            }
        }
    }));
    let searches = join_all((0..3).map(|_| {
        let c = c.clone();
        async move {
            for _ in 0..3 {
                c.search_page(&SearchRequest {
                    limit: 5,
                    ..SearchRequest::default()
                })
                .await
                .unwrap();
            }
        }
    }));
    tokio::join!(general, searches);
    let took = started.elapsed();
    let calls = c.calls();
    assert_eq!(calls.requests(), 29);
    assert_eq!(calls.rate_limited_429s, 0, "{calls:?}");
    assert_eq!(hubspot.call_counts().rate_limited, 0);
    assert!(calls.rate_limit_waits > 0, "{calls:?}");
    // 20 general calls at 8 per rolling 10 s: two windows rolled over.
    assert!(took >= Duration::from_secs(20), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_not_retried() {
    let hubspot = HubspotSandbox::start().await;
    let c = HubspotClient::new(
        &hubspot.base_url,
        Token::new("pat-na1-wrong"),
        Duration::from_secs(5),
        RetryPolicy::default(),
    )
    .unwrap();
    let e = c.list_page(&[], None, 10).await.unwrap_err();
    assert_eq!(e, HubspotError::Unauthorized(401));
    assert_eq!(hubspot.calls(), 1);
}
