//! The WARP and HubSpot sandboxes honour their contracts (warp-api.md and
//! HubSpot's CRM v3 shapes) over real HTTP, so client tests against them
//! test the client and not the sandbox.

use std::time::{Duration, Instant};

use integration_tests::hubspot_sandbox::{HUBSPOT_SANDBOX_TOKEN, HubspotSandbox, Route, Throttle};
use integration_tests::warp_sandbox::{Calls, Fault, SANDBOX_TOKEN, WarpSandbox, demo_customer};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Map, Value, json};

/// One HTTP answer, body parsed as JSON.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `error.code` of a WARP error envelope.
    fn code(&self) -> &str {
        assert_eq!(self.body["success"], false, "{}", self.body);
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `data` of a WARP success envelope.
    fn data(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["success"], true, "{}", self.body);
        &self.body["data"]
    }
}

async fn send(request: RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {bytes:?}"));
    Answer {
        status,
        headers,
        body,
    }
}

/// A WARP sandbox and an authenticated way to call it.
struct Warp {
    sandbox: WarpSandbox,
    http: reqwest::Client,
}

impl Warp {
    async fn start() -> Self {
        Self {
            sandbox: WarpSandbox::start().await,
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.sandbox.base_url))
            .bearer_auth(SANDBOX_TOKEN)
    }

    async fn get(&self, path: &str) -> Answer {
        send(self.request(Method::GET, path)).await
    }

    async fn put(&self, id: &str, body: Value) -> Answer {
        send(
            self.request(Method::PUT, &format!("/v1/customers/{id}"))
                .json(&body),
        )
        .await
    }

    /// Seeds demo customer `n` and returns its id.
    fn seed(&self, n: usize) -> String {
        let customer = self.sandbox.insert(demo_customer(n));
        customer["id"].as_str().unwrap().to_string()
    }
}

// ---------------------------------------------------------------------------
// WARP

#[tokio::test]
async fn warp_refuses_a_missing_or_wrong_token_with_401() {
    let warp = Warp::start().await;
    let id = warp.seed(1);
    let url = format!("{}/v1/customers/{id}", warp.sandbox.base_url);
    for request in [
        warp.http.get(&url),
        warp.http.get(&url).bearer_auth("not-the-token"),
        warp.http.get(&url).basic_auth("user", Some(SANDBOX_TOKEN)),
    ] {
        let answer = send(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.code(), "UNAUTHORIZED");
        assert!(answer.body["error"]["message"].is_string());
    }
    assert_eq!(
        warp.sandbox.calls(),
        Calls {
            get: 3,
            rejected: 3,
            ..Calls::default()
        }
    );
    assert_eq!(
        warp.get(&format!("/v1/customers/{id}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn warp_lists_pages_in_insertion_order_with_etags() {
    let warp = Warp::start().await;
    let ids: Vec<String> = (1..=250).map(|n| warp.seed(n)).collect();

    let mut listed = Vec::new();
    for (page, expected_len) in [(1, 100), (2, 100), (3, 50), (4, 0)] {
        let answer = warp
            .get(&format!("/v1/customers?page={page}&per_page=100"))
            .await;
        let data = answer.data();
        assert_eq!(
            data["pagination"],
            json!({"page": page, "per_page": 100, "total": 250, "total_pages": 3})
        );
        let items = data["items"].as_array().unwrap();
        assert_eq!(items.len(), expected_len, "page {page}");
        for item in items {
            assert_eq!(item["etag"], "\"1\"");
            listed.push(item["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(listed, ids);

    let default = warp.get("/v1/customers").await;
    let data = default.data();
    assert_eq!(data["items"].as_array().unwrap().len(), 20);
    assert_eq!(data["pagination"]["per_page"], 20);
    assert_eq!(data["pagination"]["total_pages"], 13);
    assert_eq!(data["items"][0]["id"], ids[0].as_str());
}

#[tokio::test]
async fn warp_refuses_bad_page_parameters_with_400() {
    let warp = Warp::start().await;
    warp.seed(1);
    for query in [
        "per_page=101",
        "per_page=0",
        "page=0",
        "page=-1",
        "page=abc",
        "per_page=2.5",
    ] {
        let answer = warp.get(&format!("/v1/customers?{query}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{query}");
    }
    let max = warp.get("/v1/customers?per_page=100").await;
    assert_eq!(max.data()["pagination"]["total_pages"], 1);
    assert_eq!(
        warp.sandbox.calls(),
        Calls {
            list: 7,
            rejected: 6,
            ..Calls::default()
        }
    );
}

#[tokio::test]
async fn warp_reads_one_customer_by_id_or_ban_with_its_etag_header() {
    let warp = Warp::start().await;
    let id = warp.seed(7);
    let stored = warp.sandbox.customer(&id).unwrap();
    assert_eq!(stored, {
        let mut expected = demo_customer(7);
        expected["etag"] = json!("\"1\"");
        expected
    });

    let by_id = warp.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(by_id.data(), &stored);
    assert_eq!(by_id.header("etag"), Some("\"1\""));

    let by_ban = warp.get("/v1/customers/by-ban/ZT-487390007").await;
    assert_eq!(by_ban.data(), &stored);
    assert_eq!(by_ban.header("etag"), stored["etag"].as_str());

    for path in [
        "/v1/customers/00000000-0000-4000-8000-000000000000",
        "/v1/customers/by-ban/ZT-000000000",
    ] {
        let answer = warp.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.code(), "NOT_FOUND");
    }
    assert_eq!(
        warp.sandbox.calls(),
        Calls {
            get: 2,
            get_by_ban: 2,
            rejected: 2,
            ..Calls::default()
        }
    );
    warp.sandbox.reset_calls();
    assert_eq!(warp.sandbox.calls(), Calls::default());
}

#[tokio::test]
async fn warp_insert_fills_what_a_seed_leaves_out() {
    let warp = Warp::start().await;
    let stored = warp
        .sandbox
        .insert(json!({"ban": "ZT-1", "company_name": "Bare", "address": {"city": "Denver"}}));
    let id = stored["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(stored["etag"], "\"1\"");
    assert_eq!(stored["created_at"], stored["updated_at"]);
    assert!(stored["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(stored["status"], Value::Null);
    assert_eq!(stored["address"]["city"], "Denver");
    assert_eq!(stored["address"]["country"], Value::Null);
    assert_eq!(
        stored["services"],
        json!({"voice": null, "messaging": null, "data": null})
    );
    assert_eq!(warp.sandbox.customers(), vec![stored.clone()]);

    // Seeding the same id again replaces it in place.
    let again = warp
        .sandbox
        .insert(json!({"id": id, "ban": "ZT-1", "etag": "\"9\""}));
    assert_eq!(again["etag"], "\"9\"");
    assert_eq!(warp.sandbox.customers(), vec![again]);
}

#[tokio::test]
async fn warp_put_changes_only_the_fields_present_and_merges_nested_objects() {
    let warp = Warp::start().await;
    let id = warp.seed(5);
    let before = warp.sandbox.customer(&id).unwrap();

    let answer = warp
        .put(
            &id,
            json!({
                "company_name": "Renamed Inc",
                "tier": null,
                "address": {"city": "Boulder", "line2": null},
                "services": {"messaging": false},
                "contact": {"phone": null},
                "external_ids": {"hubspot_company_id": "42"},
            }),
        )
        .await;
    let after = answer.data().clone();

    let mut expected = before.clone();
    expected["company_name"] = json!("Renamed Inc");
    expected["tier"] = Value::Null;
    expected["address"]["city"] = json!("Boulder");
    expected["address"]["line2"] = Value::Null;
    expected["services"]["messaging"] = json!(false);
    expected["contact"]["phone"] = Value::Null;
    expected["external_ids"]["hubspot_company_id"] = json!("42");
    expected["etag"] = json!("\"2\"");
    expected["updated_at"] = after["updated_at"].clone();
    assert_eq!(after, expected);
    assert_eq!(answer.header("etag"), Some("\"2\""));
    assert_eq!(warp.sandbox.customer(&id).unwrap(), after);

    let updated_at = after["updated_at"].as_str().unwrap();
    assert_eq!(updated_at.len(), "2025-10-14T09:00:00.000Z".len());
    assert!(updated_at.ends_with('Z') && updated_at.contains('.'));
    assert_ne!(updated_at, before["updated_at"].as_str().unwrap());

    // A whole nested object can be nulled, then rebuilt key by key.
    warp.put(&id, json!({"address": null})).await.data();
    let rebuilt = warp.put(&id, json!({"address": {"city": "Lyon"}})).await;
    assert_eq!(
        rebuilt.data()["address"],
        json!({"line1": null, "line2": null, "city": "Lyon", "state": null,
               "postal_code": null, "country": null})
    );
    assert_eq!(rebuilt.data()["etag"], "\"4\"");
}

#[tokio::test]
async fn warp_put_refuses_read_only_unknown_and_mistyped_fields() {
    let warp = Warp::start().await;
    let id = warp.seed(3);
    let before = warp.sandbox.customer(&id).unwrap();

    for field in ["id", "ban", "created_at", "updated_at", "etag"] {
        // Even sending the current value back is refused.
        let answer = warp.put(&id, json!({ field: before[field].clone() })).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(answer.code(), "IMMUTABLE_FIELD", "{field}");
    }
    for body in [
        json!({"nickname": "x"}),
        json!({"address": {"planet": "Mars"}}),
        json!({"company_name": "ok", "services": {"fax": true}}),
    ] {
        let answer = warp.put(&id, body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.code(), "UNKNOWN_FIELD", "{body}");
    }
    for body in [
        json!({"credit_limit": 5000.0}),
        json!({"credit_limit": "1e3"}),
        json!({"status": "DELETED"}),
        json!({"services": {"voice": "yes"}}),
        json!({"address": "1 Main St"}),
        json!({"company_name": 7}),
    ] {
        let answer = warp.put(&id, body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.code(), "VALIDATION_ERROR", "{body}");
    }
    for raw in ["[]", "\"x\"", "null", "{not json", ""] {
        let answer = send(
            warp.request(Method::PUT, &format!("/v1/customers/{id}"))
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(answer.code(), "INVALID_BODY", "{raw}");
    }
    assert_eq!(warp.sandbox.customer(&id).unwrap(), before);

    let absent = warp.put("no-such-id", json!({"company_name": "x"})).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_eq!(absent.code(), "NOT_FOUND");
    let calls = warp.sandbox.calls();
    assert_eq!((calls.put, calls.rejected), (20, 20));
}

#[tokio::test]
async fn warp_put_with_a_stale_if_match_is_412_and_the_fresh_etag_succeeds() {
    let warp = Warp::start().await;
    let id = warp.seed(2);
    let read = warp.get(&format!("/v1/customers/{id}")).await;
    let stale = read.header("etag").unwrap().to_string();

    // Someone changes the customer in WARP after our read.
    let edited = warp
        .sandbox
        .edit(&id, json!({"current_balance": "99.99"}))
        .unwrap();
    assert_eq!(edited["etag"], "\"2\"");

    let refused = send(
        warp.request(Method::PUT, &format!("/v1/customers/{id}"))
            .header("if-match", &stale)
            .json(&json!({"tier": "GOLD"})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(refused.code(), "PRECONDITION_FAILED");
    assert_eq!(warp.sandbox.customer(&id).unwrap(), edited);

    let fresh = warp.get(&format!("/v1/customers/{id}")).await;
    let etag = fresh.header("etag").unwrap().to_string();
    assert_eq!(etag, "\"2\"");
    let accepted = send(
        warp.request(Method::PUT, &format!("/v1/customers/{id}"))
            .header("if-match", &etag)
            .json(&json!({"tier": "GOLD"})),
    )
    .await;
    assert_eq!(accepted.data()["tier"], "GOLD");
    assert_eq!(accepted.data()["current_balance"], "99.99");
    assert_eq!(accepted.header("etag"), Some("\"3\""));

    let any = send(
        warp.request(Method::PUT, &format!("/v1/customers/{id}"))
            .header("if-match", "*")
            .json(&json!({})),
    )
    .await;
    assert_eq!(any.data()["etag"], "\"4\"");
}

#[tokio::test]
async fn warp_every_write_bumps_etag_and_a_strictly_later_updated_at() {
    let warp = Warp::start().await;
    let id = warp.seed(4);
    let mut last = warp.sandbox.customer(&id).unwrap()["updated_at"]
        .as_str()
        .unwrap()
        .to_string();
    // Back-to-back writes land in the same millisecond: still ordered.
    for n in 2..=12 {
        let answer = warp
            .put(&id, json!({"current_balance": format!("{n}.00")}))
            .await;
        let data = answer.data();
        assert_eq!(data["etag"], format!("\"{n}\""));
        let updated_at = data["updated_at"].as_str().unwrap().to_string();
        assert!(updated_at > last, "{updated_at} after {last}");
        last = updated_at;
    }
    let edited = warp
        .sandbox
        .edit(&id, json!({"contact": {"email": "new@example.com"}}))
        .unwrap();
    assert_eq!(edited["etag"], "\"13\"");
    assert!(edited["updated_at"].as_str().unwrap() > last.as_str());
    assert_eq!(edited["contact"]["email"], "new@example.com");
    assert!(edited["contact"]["name"].is_string());
    assert_eq!(warp.sandbox.edit("absent", json!({})), None);
}

#[tokio::test]
async fn warp_rate_limit_fault_answers_429_with_retry_after_then_clears() {
    let warp = Warp::start().await;
    let id = warp.seed(1);
    warp.sandbox.set_fault(Fault::RateLimited {
        retry_after_s: 7,
        times: 2,
    });
    // The fault spans routes: one list, one get.
    for path in ["/v1/customers".to_string(), format!("/v1/customers/{id}")] {
        let answer = warp.get(&path).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(answer.header("retry-after"), Some("7"));
        assert_eq!(answer.code(), "RATE_LIMITED");
    }
    let cleared = warp.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.header("retry-after"), None);
    assert_eq!(
        warp.sandbox.calls(),
        Calls {
            list: 1,
            get: 2,
            rejected: 2,
            ..Calls::default()
        }
    );
}

#[tokio::test]
async fn warp_server_error_fault_answers_500_then_clears() {
    let warp = Warp::start().await;
    let id = warp.seed(1);
    warp.sandbox.set_fault(Fault::ServerError { times: 2 });
    for _ in 0..2 {
        let answer = warp.put(&id, json!({"tier": "GOLD"})).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.code(), "INTERNAL_ERROR");
    }
    // The faulted writes did not happen.
    assert_eq!(warp.sandbox.customer(&id).unwrap()["etag"], "\"1\"");
    let answer = warp.put(&id, json!({"tier": "GOLD"})).await;
    assert_eq!(answer.data()["etag"], "\"2\"");
    let calls = warp.sandbox.calls();
    assert_eq!((calls.put, calls.rejected), (3, 2));
}

#[tokio::test]
async fn warp_slow_fault_delays_then_serves_normally() {
    let warp = Warp::start().await;
    let id = warp.seed(1);
    let delay = Duration::from_millis(300);
    warp.sandbox.set_fault(Fault::Slow {
        delay_ms: delay.as_millis() as u64,
        times: 1,
    });
    let path = format!("/v1/customers/{id}");
    let started = Instant::now();
    let slow = warp.get(&path).await;
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(slow.data()["id"], id.as_str());

    let started = Instant::now();
    assert_eq!(warp.get(&path).await.status, StatusCode::OK);
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
    assert_eq!(
        warp.sandbox.calls(),
        Calls {
            get: 2,
            ..Calls::default()
        }
    );
}

#[tokio::test]
async fn warp_faults_come_before_authentication_and_a_new_fault_replaces_the_old() {
    let warp = Warp::start().await;
    warp.sandbox.set_fault(Fault::ServerError { times: 5 });
    let unauthenticated = send(
        warp.http
            .get(format!("{}/v1/customers", warp.sandbox.base_url)),
    )
    .await;
    assert_eq!(unauthenticated.status, StatusCode::INTERNAL_SERVER_ERROR);
    warp.sandbox.set_fault(Fault::None);
    assert_eq!(warp.get("/v1/customers").await.status, StatusCode::OK);
    warp.sandbox.set_fault(Fault::RateLimited {
        retry_after_s: 1,
        times: 0,
    });
    assert_eq!(warp.get("/v1/customers").await.status, StatusCode::OK);
}

#[tokio::test]
async fn warp_unknown_routes_and_methods_answer_in_the_envelope() {
    let warp = Warp::start().await;
    let id = warp.seed(1);
    let unknown = warp.get("/v1/invoices").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "NOT_FOUND");
    let wrong_method = send(warp.request(Method::DELETE, &format!("/v1/customers/{id}"))).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(
        warp.sandbox.calls(),
        Calls {
            rejected: 2,
            ..Calls::default()
        }
    );
}

/// Kills the child process when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn warp_sandbox_binary_serves_seeded_demo_customers() {
    let free_port = || {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (port, hubspot_port) = (free_port(), free_port());
    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_warp-sandbox"))
            .args(["--port", &port.to_string(), "--customers=3"])
            .args(["--hubspot-port", &hubspot_port.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    // The line is printed once the port accepts connections.
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base_url = format!("http://127.0.0.1:{port}");
    assert_eq!(line.trim_end(), format!("WARP_API_URL={base_url}"));

    let http = reqwest::Client::new();
    let answer = send(
        http.get(format!("{base_url}/v1/customers/by-ban/ZT-487390003"))
            .bearer_auth(SANDBOX_TOKEN),
    )
    .await;
    assert_eq!(answer.data(), &{
        let mut expected = demo_customer(3);
        expected["etag"] = json!("\"1\"");
        expected
    });
    let list = send(
        http.get(format!("{base_url}/v1/customers"))
            .bearer_auth(SANDBOX_TOKEN),
    )
    .await;
    assert_eq!(list.data()["pagination"]["total"], 3);
}

// ---------------------------------------------------------------------------
// HubSpot

fn properties(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

async fn hubspot_get(hubspot: &HubspotSandbox, path_and_query: &str) -> Answer {
    send(
        reqwest::Client::new()
            .get(format!("{}{path_and_query}", hubspot.base_url))
            .bearer_auth(HUBSPOT_SANDBOX_TOKEN),
    )
    .await
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn hubspot_returns_only_the_asked_properties_that_exist_plus_system_ones() {
    let hubspot = HubspotSandbox::start().await;
    hubspot.upsert_company(
        "18476215991",
        properties(&[
            ("name", "Globex Corp"),
            ("domain", "globex.example"),
            ("warp_ban", "ZT-487390001"),
            ("city", "Austin"),
        ]),
    );
    let mut numeric = Map::new();
    numeric.insert("warp_credit_limit".into(), json!(5000));
    hubspot.upsert_company("18476215991", numeric);

    let answer = hubspot_get(
        &hubspot,
        "/crm/v3/objects/companies/18476215991?properties=name,warp_ban,warp_credit_limit,not_a_property",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = &answer.body;
    assert_eq!(
        keys(body),
        ["archived", "createdAt", "id", "properties", "updatedAt"]
    );
    assert_eq!(body["id"], "18476215991");
    assert_eq!(body["archived"], false);
    assert_eq!(
        keys(&body["properties"]),
        [
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name",
            "warp_ban",
            "warp_credit_limit"
        ]
    );
    let props = &body["properties"];
    assert_eq!(props["hs_object_id"], "18476215991");
    assert_eq!(props["warp_credit_limit"], "5000");
    assert!(props.as_object().unwrap().values().all(Value::is_string));
    assert_eq!(body["createdAt"], props["createdate"]);
    assert_eq!(body["updatedAt"], props["hs_lastmodifieddate"]);
    assert!(body["updatedAt"].as_str().unwrap().ends_with('Z'));

    let repeated = hubspot_get(
        &hubspot,
        "/crm/v3/objects/companies/18476215991?properties=city&properties=warp_ban",
    )
    .await;
    assert_eq!(repeated.body["properties"]["city"], "Austin");
    assert_eq!(repeated.body["properties"]["warp_ban"], "ZT-487390001");

    let default = hubspot_get(&hubspot, "/crm/v3/objects/companies/18476215991").await;
    assert_eq!(
        keys(&default.body["properties"]),
        [
            "createdate",
            "domain",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name"
        ]
    );
    let stored = hubspot.company("18476215991").unwrap();
    assert_eq!(stored["city"], "Austin");
    assert_eq!(hubspot.calls(), 3);
}

#[tokio::test]
async fn hubspot_upsert_keeps_given_timestamps() {
    let hubspot = HubspotSandbox::start().await;
    hubspot.upsert_company(
        "1",
        properties(&[("hs_lastmodifieddate", "2025-10-14T09:00:00.000Z")]),
    );
    let answer = hubspot_get(&hubspot, "/crm/v3/objects/companies/1").await;
    assert_eq!(answer.body["updatedAt"], "2025-10-14T09:00:00.000Z");
    assert_ne!(answer.body["createdAt"], Value::Null);
    assert_eq!(hubspot.company("2"), None);
}

#[tokio::test]
async fn hubspot_absent_company_is_404_with_hubspots_error_body() {
    let hubspot = HubspotSandbox::start().await;
    let answer = hubspot_get(&hubspot, "/crm/v3/objects/companies/404404?properties=name").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["status"], "error");
    assert_eq!(answer.body["message"], "resource not found");
    assert_eq!(answer.body["category"], "OBJECT_NOT_FOUND");
    let correlation = answer.body["correlationId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(correlation).is_ok(), "{correlation}");
}

#[tokio::test]
async fn hubspot_refuses_a_missing_or_wrong_token_with_401() {
    let hubspot = HubspotSandbox::start().await;
    hubspot.upsert_company("1", properties(&[("name", "A")]));
    let url = format!("{}/crm/v3/objects/companies/1", hubspot.base_url);
    let http = reqwest::Client::new();
    for request in [http.get(&url), http.get(&url).bearer_auth("pat-na1-wrong")] {
        let answer = send(request).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.body["status"], "error");
        assert_eq!(answer.body["category"], "INVALID_AUTHENTICATION");
        assert!(answer.body["correlationId"].is_string());
    }
    assert_eq!(hubspot.calls(), 2);
}

#[tokio::test]
async fn hubspot_rate_limit_answers_429_with_its_headers_then_clears() {
    let hubspot = HubspotSandbox::start().await;
    hubspot.upsert_company("1", properties(&[("name", "A")]));
    hubspot.set_rate_limited(2);
    for _ in 0..2 {
        let answer = hubspot_get(&hubspot, "/crm/v3/objects/companies/1").await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert_eq!(answer.header("x-hubspot-ratelimit-max"), Some("100"));
        assert_eq!(answer.header("x-hubspot-ratelimit-remaining"), Some("0"));
        assert_eq!(
            answer.header("x-hubspot-ratelimit-interval-milliseconds"),
            Some("10000")
        );
        assert_eq!(answer.body["status"], "error");
        assert_eq!(
            answer.body["message"],
            "You have reached your ten_secondly_rolling limit."
        );
        assert_eq!(answer.body["errorType"], "RATE_LIMIT");
        assert_eq!(answer.body["policyName"], "TEN_SECONDLY_ROLLING");
        assert!(answer.body["correlationId"].is_string());
    }
    let answer = hubspot_get(&hubspot, "/crm/v3/objects/companies/1").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(hubspot.calls(), 3);
    hubspot.reset_calls();
    assert_eq!(hubspot.calls(), 0);
}

async fn hubspot_post(hubspot: &HubspotSandbox, path: &str, body: Value) -> Answer {
    send(
        reqwest::Client::new()
            .post(format!("{}{path}", hubspot.base_url))
            .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
            .json(&body),
    )
    .await
}

/// Companies 1..=n, named `Company n`, `warp_tier` GOLD on even ones.
fn seed_numbered(hubspot: &HubspotSandbox, n: u64) {
    for i in 1..=n {
        let mut props = properties(&[("name", &format!("Company {i}"))]);
        if i % 2 == 0 {
            props.insert("warp_tier".into(), json!("GOLD"));
        }
        hubspot.upsert_company(&i.to_string(), props);
    }
}

fn ids(body: &Value) -> Vec<&str> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn hubspot_lists_by_id_ten_by_default_with_paging_only_before_the_last_page() {
    let hubspot = HubspotSandbox::start().await;
    // Inserted out of order; listed numerically (2 before 10).
    for i in [10u64, 2, 1, 25, 3, 11, 12, 13, 14, 15, 16, 17] {
        hubspot.upsert_company(&i.to_string(), properties(&[("name", "x")]));
    }
    let first = hubspot_get(&hubspot, "/crm/v3/objects/companies").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        ids(&first.body),
        ["1", "2", "3", "10", "11", "12", "13", "14", "15", "16"]
    );
    let after = first.body["paging"]["next"]["after"].as_str().unwrap();
    assert_eq!(after, "17");
    let link = first.body["paging"]["next"]["link"].as_str().unwrap();
    assert!(link.contains("after=17"), "{link}");

    let last = hubspot_get(
        &hubspot,
        &format!("/crm/v3/objects/companies?limit=10&after={after}"),
    )
    .await;
    assert_eq!(ids(&last.body), ["17", "25"]);
    assert_eq!(last.body.get("paging"), None, "no paging on the last page");

    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "after=abc",
        "archived=maybe",
    ] {
        let answer = hubspot_get(&hubspot, &format!("/crm/v3/objects/companies?{bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.body["category"], "VALIDATION_ERROR", "{bad}");
    }
    let exact = hubspot_get(&hubspot, "/crm/v3/objects/companies?limit=12").await;
    assert_eq!(ids(&exact.body).len(), 12);
    assert_eq!(exact.body.get("paging"), None);
    assert_eq!(hubspot.call_counts().list, 8);
}

#[tokio::test]
async fn hubspot_answers_null_for_asked_properties_the_company_lacks() {
    let hubspot = HubspotSandbox::start().await;
    hubspot.upsert_company("1", properties(&[("name", "A")]));
    hubspot.define_property("renewal_month");
    let answer = hubspot_get(
        &hubspot,
        "/crm/v3/objects/companies/1?properties=name,city,renewal_month,no_such_property",
    )
    .await;
    let props = &answer.body["properties"];
    assert_eq!(props["name"], "A");
    assert_eq!(props["city"], Value::Null);
    assert_eq!(props["renewal_month"], Value::Null);
    assert!(props.get("city").is_some() && props.get("no_such_property").is_none());

    let history = hubspot_get(
        &hubspot,
        "/crm/v3/objects/companies/1?properties=name&propertiesWithHistory=name",
    )
    .await;
    let entries = history.body["propertiesWithHistory"]["name"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["value"], "A");
    assert!(entries[0]["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn hubspot_batch_read_answers_207_naming_the_missing_ids() {
    let hubspot = HubspotSandbox::start().await;
    seed_numbered(&hubspot, 3);
    let all = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/read",
        json!({"inputs": [{"id": "1"}, {"id": "3"}], "properties": ["name", "warp_tier"], "propertiesWithHistory": []}),
    )
    .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["status"], "COMPLETE");
    assert_eq!(ids(&all.body), ["1", "3"]);
    assert_eq!(
        all.body["results"][0]["properties"]["warp_tier"],
        Value::Null
    );
    assert_eq!(all.body.get("errors"), None);

    let some = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/read",
        json!({"inputs": [{"id": "2"}, {"id": "404"}, {"id": "405"}], "properties": ["name"]}),
    )
    .await;
    assert_eq!(some.status, StatusCode::MULTI_STATUS);
    assert_eq!(ids(&some.body), ["2"]);
    assert_eq!(some.body["numErrors"], 1);
    let error = &some.body["errors"][0];
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(error["context"]["ids"], json!(["404", "405"]));

    let inputs = |n: usize| {
        (0..n)
            .map(|i| json!({"id": i.to_string()}))
            .collect::<Vec<_>>()
    };
    let too_many = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/read",
        json!({"inputs": inputs(101), "properties": []}),
    )
    .await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_many.body["category"], "VALIDATION_ERROR");
    let with_history = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/read",
        json!({"inputs": inputs(51), "properties": [], "propertiesWithHistory": ["name"]}),
    )
    .await;
    assert_eq!(with_history.status, StatusCode::BAD_REQUEST);
    let by_property = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/read",
        json!({"inputs": [{"id": "Company 2"}], "properties": ["name"], "idProperty": "name"}),
    )
    .await;
    assert_eq!(ids(&by_property.body), ["2"]);
    // Request bodies are kept for contract checks.
    assert_eq!(hubspot.request_bodies(Route::BatchRead).len(), 5);
}

#[tokio::test]
async fn hubspot_batch_update_sets_clears_and_dates_the_change() {
    let hubspot = HubspotSandbox::start().await;
    seed_numbered(&hubspot, 2);
    let before = hubspot.company("2").unwrap();
    let answer = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/update",
        json!({"inputs": [
            {"id": "2", "properties": {"city": "Lyon", "warp_tier": "", "name": null, "numberofemployees": 12}},
            {"id": "999", "properties": {"city": "Nowhere"}},
        ]}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::MULTI_STATUS);
    assert_eq!(answer.body["errors"][0]["context"]["ids"], json!(["999"]));
    let updated = &answer.body["results"][0];
    assert_eq!(updated["properties"]["city"], "Lyon");
    assert_eq!(updated["properties"]["warp_tier"], Value::Null);
    assert_eq!(updated["properties"]["numberofemployees"], "12");

    let after = hubspot.company("2").unwrap();
    assert_eq!(after["name"], "Company 2", "null changes nothing");
    assert_eq!(after["warp_tier"], Value::Null, "\"\" clears");
    assert!(after["hs_lastmodifieddate"].as_str() > before["hs_lastmodifieddate"].as_str());
    assert_eq!(updated["updatedAt"], after["hs_lastmodifieddate"]);
    let read = hubspot_get(
        &hubspot,
        "/crm/v3/objects/companies/2?properties=warp_tier,city",
    )
    .await;
    assert_eq!(read.body["properties"]["warp_tier"], Value::Null);

    // Invalid properties refuse the whole batch.
    for (props, code) in [
        (json!({"no_such_property": "x"}), "PROPERTY_DOESNT_EXIST"),
        (json!({"hs_object_id": "7"}), "READ_ONLY_VALUE"),
        (json!({"city": {"nested": true}}), "INVALID_PROPERTY_VALUE"),
    ] {
        let refused = hubspot_post(
            &hubspot,
            "/crm/v3/objects/companies/batch/update",
            json!({"inputs": [{"id": "1", "properties": {"city": "Kept out"}}, {"id": "2", "properties": props}]}),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{code}");
        assert_eq!(refused.body["errors"][0]["code"], code);
    }
    assert_eq!(hubspot.company("1").unwrap().get("city"), None);
    let duplicate = hubspot_post(
        &hubspot,
        "/crm/v3/objects/companies/batch/update",
        json!({"inputs": [{"id": "1", "properties": {}}, {"id": "1", "properties": {}}]}),
    )
    .await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn hubspot_search_filters_sorts_pages_and_stops_at_ten_thousand() {
    let hubspot = HubspotSandbox::start().await;
    seed_numbered(&hubspot, 30);
    let search = |body: Value| hubspot_post(&hubspot, "/crm/v3/objects/companies/search", body);

    let gold_above_20 = search(json!({
        "filterGroups": [{"filters": [
            {"propertyName": "warp_tier", "operator": "EQ", "value": "gold"},
            {"propertyName": "hs_object_id", "operator": "GT", "value": "20"},
        ]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
        "properties": ["name"], "limit": 3, "after": "0",
    }))
    .await;
    assert_eq!(gold_above_20.body["total"], 5);
    assert_eq!(ids(&gold_above_20.body), ["30", "28", "26"]);
    assert_eq!(gold_above_20.body["paging"]["next"]["after"], "3");
    let rest = search(json!({
        "filterGroups": [{"filters": [
            {"propertyName": "warp_tier", "operator": "EQ", "value": "gold"},
            {"propertyName": "hs_object_id", "operator": "GT", "value": "20"},
        ]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}],
        "limit": 3, "after": "3",
    }))
    .await;
    assert_eq!(ids(&rest.body), ["24", "22"]);
    assert_eq!(rest.body.get("paging"), None);

    // OR of groups, IN, NOT_HAS_PROPERTY, numeric LTE.
    let either = search(json!({
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": ["3", "5"]}]},
            {"filters": [
                {"propertyName": "warp_tier", "operator": "NOT_HAS_PROPERTY"},
                {"propertyName": "hs_object_id", "operator": "LTE", "value": "9"},
                {"propertyName": "hs_object_id", "operator": "GTE", "value": "8"},
            ]},
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "limit": 10,
    }))
    .await;
    assert_eq!(ids(&either.body), ["3", "5", "9"]);
    // Every group bounded below by id (the bridge's paging): the walk
    // starts at the lower of the bounds, GTE included, and ids come in
    // numeric order, not as text.
    let bounded = search(json!({
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "25"}]},
            {"filters": [
                {"propertyName": "hs_object_id", "operator": "GTE", "value": "9"},
                {"propertyName": "hs_object_id", "operator": "LTE", "value": "11"},
            ]},
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "limit": 10,
    }))
    .await;
    assert_eq!(bounded.body["total"], 8);
    assert_eq!(
        ids(&bounded.body),
        ["9", "10", "11", "26", "27", "28", "29", "30"]
    );
    let neq = search(json!({"filterGroups": [{"filters": [
        {"propertyName": "warp_tier", "operator": "HAS_PROPERTY"},
        {"propertyName": "hs_object_id", "operator": "LT", "value": "5"},
        {"propertyName": "name", "operator": "NEQ", "value": "Company 2"},
    ]}], "limit": 10}))
    .await;
    assert_eq!(ids(&neq.body), ["4"]);
    let by_date = search(json!({"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": "0"},
    ]}], "limit": 0}))
    .await;
    assert_eq!(by_date.body["total"], 30, "epoch ms against ISO dates");

    for (body, why) in [
        (json!({"limit": 201}), "limit over 200"),
        (json!({"limit": 200, "after": "9801"}), "past 10,000"),
        (json!({"limit": 1, "after": "10000"}), "past 10,000"),
        (
            json!({"filterGroups": [{"filters": [{"propertyName": "a", "operator": "LIKE", "value": "x"}]}]}),
            "operator",
        ),
        (
            json!({"filterGroups": [{"filters": [{"propertyName": "a", "operator": "EQ"}]}]}),
            "no value",
        ),
        (json!({"after": "abc"}), "cursor"),
    ] {
        let answer = search(body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(answer.body["category"], "VALIDATION_ERROR", "{why}");
    }
    let last_allowed = search(json!({"limit": 200, "after": "9800"})).await;
    assert_eq!(last_allowed.status, StatusCode::OK);
    assert_eq!(hubspot.call_counts().search, 13);
}

#[tokio::test]
async fn hubspot_enforces_a_rolling_ten_second_window_search_excluded() {
    let hubspot = HubspotSandbox::start().await;
    seed_numbered(&hubspot, 1);
    hubspot.set_ten_secondly_limit(Some(3));
    for remaining in ["2", "1", "0"] {
        let ok = hubspot_get(&hubspot, "/crm/v3/objects/companies/1").await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.header("x-hubspot-ratelimit-max"), Some("3"));
        assert_eq!(ok.header("x-hubspot-ratelimit-remaining"), Some(remaining));
        assert_eq!(
            ok.header("x-hubspot-ratelimit-interval-milliseconds"),
            Some("10000")
        );
        assert_eq!(ok.header("x-hubspot-ratelimit-daily"), Some("250000"));
        assert!(ok.header("x-hubspot-ratelimit-daily-remaining").is_some());
    }
    let refused = hubspot_get(&hubspot, "/crm/v3/objects/companies").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(refused.body["category"], "RATE_LIMITS");
    assert_eq!(refused.header("x-hubspot-ratelimit-remaining"), Some("0"));
    // Search is exempt from the window, and has no window headers; it has
    // its own secondly limit.
    hubspot.set_search_per_second(Some(1));
    let search = hubspot_post(&hubspot, "/crm/v3/objects/companies/search", json!({})).await;
    assert_eq!(search.status, StatusCode::OK);
    assert_eq!(search.header("x-hubspot-ratelimit-max"), None);
    let second = hubspot_post(&hubspot, "/crm/v3/objects/companies/search", json!({})).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        second.body["message"],
        "You have reached your secondly limit."
    );
    assert_eq!(second.body["policyName"], "SECONDLY");
    assert_eq!(hubspot.call_counts().rate_limited, 2);
}

#[tokio::test]
async fn hubspot_scripted_faults_run_in_order_across_routes() {
    let hubspot = HubspotSandbox::start().await;
    seed_numbered(&hubspot, 1);
    hubspot.throttle_next(Throttle::Secondly, 1);
    hubspot.throttle_next(Throttle::Daily, 1);
    hubspot.fail_next(503, 1);
    let secondly = hubspot_post(&hubspot, "/crm/v3/objects/companies/search", json!({})).await;
    assert_eq!(secondly.body["policyName"], "SECONDLY");
    assert_eq!(secondly.header("retry-after"), Some("1"));
    let daily = hubspot_get(&hubspot, "/crm/v3/objects/companies/1").await;
    assert_eq!(daily.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(daily.body["policyName"], "DAILY");
    assert_eq!(daily.body["message"], "You have reached your daily limit.");
    assert_eq!(daily.header("retry-after"), None);
    let unavailable = hubspot_get(&hubspot, "/crm/v3/objects/companies").await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(unavailable.body["correlationId"].is_string());
    assert_eq!(
        hubspot_get(&hubspot, "/crm/v3/objects/companies/1")
            .await
            .status,
        StatusCode::OK
    );
    let counts = hubspot.call_counts();
    assert_eq!(
        (
            counts.total,
            counts.get,
            counts.list,
            counts.search,
            counts.rate_limited,
            counts.server_errors
        ),
        (4, 2, 1, 1, 2, 1)
    );
    let wrong_method = send(
        reqwest::Client::new()
            .delete(format!(
                "{}/crm/v3/objects/companies/search",
                hubspot.base_url
            ))
            .bearer_auth(HUBSPOT_SANDBOX_TOKEN),
    )
    .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.body["category"].is_string());
    assert_eq!(hubspot.received(Route::Other).len(), 1);
}

// ---------------------------------------------------------------------------
// HubSpot: property definitions, values checked against them, scopes, token
// info.

/// The bridge's properties installed as `hubwarp setup` installs them.
fn install(hubspot: &HubspotSandbox) {
    integration_tests::hubspot_setup::install_bridge_properties(
        hubspot,
        &(0..8).map(demo_customer).collect::<Vec<_>>(),
    );
}

fn names_of(results: &Value) -> Vec<&str> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

async fn hubspot_as(hubspot: &HubspotSandbox, token: &str, method: Method, path: &str) -> Answer {
    let request = reqwest::Client::new()
        .request(method.clone(), format!("{}{path}", hubspot.base_url))
        .bearer_auth(token);
    let request = if method == Method::POST {
        request.json(&json!({"inputs": [{"id": "1", "properties": {"city": "Lyon"}}]}))
    } else {
        request
    };
    send(request).await
}

#[tokio::test]
async fn hubspot_a_new_portal_has_hubspots_standard_properties_and_none_of_the_bridges() {
    let hubspot = HubspotSandbox::start().await;
    let listed = hubspot_get(&hubspot, "/crm/v3/properties/companies").await;
    assert_eq!(listed.status, StatusCode::OK);
    let names = names_of(&listed.body);
    for standard in [
        "name",
        "domain",
        "website",
        "phone",
        "city",
        "state",
        "zip",
        "country",
        "industry",
        "numberofemployees",
        "annualrevenue",
        "lifecyclestage",
        "hubspot_owner_id",
        "type",
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
    ] {
        assert!(names.contains(&standard), "{standard} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("warp_")), "{names:?}");
    let by_name = |name: &str| {
        listed.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    let typed = |name: &str| {
        let p = by_name(name);
        (p["type"].clone(), p["fieldType"].clone())
    };
    assert_eq!(
        typed("numberofemployees"),
        (json!("number"), json!("number"))
    );
    assert_eq!(typed("industry"), (json!("enumeration"), json!("select")));
    assert_eq!(
        typed("lifecyclestage"),
        (json!("enumeration"), json!("radio"))
    );
    assert_eq!(typed("createdate"), (json!("datetime"), json!("date")));
    assert_eq!(
        by_name("hs_object_id")["modificationMetadata"]["readOnlyValue"],
        true
    );
    assert_eq!(by_name("name")["hubspotDefined"], true);

    let absent = hubspot_get(&hubspot, "/crm/v3/properties/companies/warp_ban").await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_eq!(absent.body["category"], "OBJECT_NOT_FOUND");
    let groups = hubspot_get(&hubspot, "/crm/v3/properties/companies/groups").await;
    assert!(names_of(&groups.body).contains(&"companyinformation"));
    assert!(!names_of(&groups.body).contains(&"warp"));
    // Other object types: HubSpot's 400 for a name it does not know; the
    // sandbox's portal holds companies only.
    let unknown = hubspot_get(&hubspot, "/crm/v3/properties/widgets").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.body["message"],
        "Unable to infer object type from: widgets"
    );
    let contacts = hubspot_get(&hubspot, "/crm/v3/properties/contacts").await;
    assert_eq!(contacts.status, StatusCode::NOT_FOUND);
    let counts = hubspot.call_counts();
    assert_eq!(
        (counts.property_list, counts.property_get, counts.group_list),
        (3, 1, 1)
    );
}

#[tokio::test]
async fn hubspot_refuses_a_write_of_a_property_the_portal_lacks_naming_it() {
    let hubspot = HubspotSandbox::start().await;
    hubspot.upsert_company("1", properties(&[("name", "A")]));
    for (path, body) in [
        (
            "/crm/v3/objects/companies/batch/update",
            json!({"inputs": [{"id": "1", "properties": {"city": "Lyon", "warp_ban": "ZT-1"}}]}),
        ),
        (
            "/crm/v3/objects/companies",
            json!({"properties": {"name": "B", "warp_ban": "ZT-2"}, "associations": []}),
        ),
    ] {
        let refused = hubspot_post(&hubspot, path, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(refused.body["category"], "VALIDATION_ERROR");
        let detail = &refused.body["errors"][0];
        assert_eq!(detail["code"], "PROPERTY_DOESNT_EXIST");
        assert_eq!(detail["message"], "Property \"warp_ban\" does not exist");
        assert_eq!(detail["context"]["propertyName"], json!(["warp_ban"]));
        // HubSpot's message: the per-property results as a JSON list.
        let message = refused.body["message"].as_str().unwrap();
        let list: Value = serde_json::from_str(
            message
                .strip_prefix("Property values were not valid: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(list[0]["name"], "warp_ban");
        assert_eq!(list[0]["error"], "PROPERTY_DOESNT_EXIST");
        assert_eq!(list[0]["isValid"], false);
    }
    assert_eq!(
        hubspot.company("1").unwrap().get("city"),
        None,
        "nothing written"
    );
    assert_eq!(hubspot.company("2"), None);
}

#[tokio::test]
async fn hubspot_checks_each_value_against_its_propertys_definition() {
    let hubspot = HubspotSandbox::start().await;
    install(&hubspot);
    hubspot.upsert_company("1", properties(&[("name", "A")]));
    hubspot
        .create_property(json!({
            "name": "warp_vip", "label": "VIP", "type": "bool",
            "fieldType": "booleancheckbox", "groupName": "warp",
        }))
        .unwrap();
    let update = |props: Value| {
        hubspot_post(
            &hubspot,
            "/crm/v3/objects/companies/batch/update",
            json!({"inputs": [{"id": "1", "properties": props}]}),
        )
    };
    for (props, code, named) in [
        (json!({"warp_tier": "DIAMOND"}), "INVALID_OPTION", "DIAMOND"),
        (json!({"warp_status": "active"}), "INVALID_OPTION", "active"),
        (
            json!({"warp_services": "voice;fax"}),
            "INVALID_OPTION",
            "fax",
        ),
        (
            json!({"warp_credit_limit": "lots"}),
            "INVALID_INTEGER",
            "lots",
        ),
        (
            json!({"warp_credit_limit": "1e3"}),
            "INVALID_INTEGER",
            "1e3",
        ),
        (
            json!({"numberofemployees": "twelve"}),
            "INVALID_INTEGER",
            "twelve",
        ),
        (json!({"warp_vip": "yes"}), "INVALID_OPTION", "yes"),
        (
            json!({"lifecyclestage": "prospect"}),
            "INVALID_OPTION",
            "prospect",
        ),
    ] {
        let refused = update(props.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{props}");
        let detail = &refused.body["errors"][0];
        assert_eq!(detail["code"], code, "{props}");
        let property = props.as_object().unwrap().keys().next().unwrap();
        assert_eq!(
            detail["context"]["propertyName"],
            json!([property]),
            "{props}"
        );
        let message = detail["message"].as_str().unwrap();
        assert!(message.starts_with(named), "{message}");
        assert!(refused.body["message"].as_str().unwrap().contains(property));
    }
    let taken = update(json!({
        "warp_tier": "GOLD", "warp_status": "ACTIVE", "warp_services": "voice;data",
        "warp_credit_limit": "5000.00", "warp_current_balance": "-12.5", "warp_vip": "true",
        "numberofemployees": 12, "lifecyclestage": "customer", "hubspot_owner_id": "77",
    }))
    .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    let stored = hubspot.company("1").unwrap();
    assert_eq!(stored["warp_services"], "voice;data");
    assert_eq!(stored["numberofemployees"], "12");
    // "" clears whatever the type.
    let cleared = update(json!({"warp_tier": "", "warp_credit_limit": ""})).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(hubspot.company("1").unwrap()["warp_tier"], Value::Null);

    // The in-process door (the model's) writes through the same check.
    use hubwarp::hubspot::crm::{CompanyUpdate, HubspotError};
    use hubwarp::reconcile::ports::HubspotCompanies;
    let write = |pairs: &[(&str, &str)]| CompanyUpdate {
        id: "1".into(),
        properties: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let refused = HubspotCompanies::batch_update(&hubspot, &[write(&[("warp_tier", "DIAMOND")])])
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        HubspotError::Rejected {
            status: 400,
            category: "VALIDATION_ERROR".into()
        }
    );
    let unknown = HubspotCompanies::batch_update(&hubspot, &[write(&[("warp_nope", "x")])]).await;
    assert!(unknown.is_err());
    let done = HubspotCompanies::batch_update(&hubspot, &[write(&[("warp_tier", "SILVER")])])
        .await
        .unwrap();
    assert_eq!(done.updated.len(), 1);
    assert_eq!(hubspot.company("1").unwrap()["warp_tier"], "SILVER");
}

#[tokio::test]
async fn hubspot_checks_a_new_property_definition_as_hubspot_does() {
    let hubspot = HubspotSandbox::start().await;
    let def = |name: &str, value_type: &str, field_type: &str| {
        json!({"name": name, "label": name, "type": value_type, "fieldType": field_type,
               "groupName": "companyinformation",
               "options": if matches!(value_type, "enumeration") {
                   json!([{"label": "A", "value": "a", "hidden": false}])
               } else { json!([]) }})
    };
    // The pairs HubSpot's properties guide lists take; others are refused.
    for (i, (t, f)) in [
        ("string", "text"),
        ("string", "textarea"),
        ("string", "phonenumber"),
        ("number", "number"),
        ("bool", "booleancheckbox"),
        ("date", "date"),
        ("datetime", "date"),
        ("enumeration", "select"),
        ("enumeration", "radio"),
        ("enumeration", "checkbox"),
        ("enumeration", "booleancheckbox"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("ok_{i}");
        assert_eq!(hubspot.create_property(def(&name, t, f)), Ok(()), "{t}/{f}");
        assert_eq!(hubspot.property(&name).unwrap()["type"], t);
    }
    let bool_options = &hubspot.property("ok_4").unwrap()["options"];
    assert_eq!(bool_options[0]["value"], "true");
    for (i, (t, f)) in [
        ("string", "number"),
        ("number", "text"),
        ("bool", "select"),
        ("date", "text"),
        ("enumeration", "text"),
        ("money", "number"),
    ]
    .into_iter()
    .enumerate()
    {
        let refused = hubspot.create_property(def(&format!("bad_{i}"), t, f));
        assert!(refused.is_err(), "{t}/{f}");
        assert!(hubspot.property(&format!("bad_{i}")).is_none());
    }
    let mut no_options = def("no_options", "enumeration", "select");
    no_options["options"] = json!([]);
    assert!(
        hubspot
            .create_property(no_options)
            .unwrap_err()
            .contains("option")
    );
    let mut nowhere = def("nowhere", "string", "text");
    nowhere["groupName"] = json!("no_such_group");
    assert!(
        hubspot
            .create_property(nowhere)
            .unwrap_err()
            .contains("no_such_group")
    );
    let shouting = def("Warp Ban", "string", "text");
    assert!(hubspot.create_property(shouting).is_err());
    let mut unlabelled = def("unlabelled", "string", "text");
    unlabelled.as_object_mut().unwrap().remove("label");
    assert!(
        hubspot
            .create_property(unlabelled)
            .unwrap_err()
            .contains("label")
    );
    // A name taken, HubSpot's own or a custom one: over HTTP a 409.
    assert!(
        hubspot
            .create_property(def("city", "string", "text"))
            .unwrap_err()
            .contains("already exists")
    );
    let again = hubspot_post(
        &hubspot,
        "/crm/v3/properties/companies",
        def("ok_0", "string", "text"),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["category"], "OBJECT_ALREADY_EXISTS");
    let created = hubspot_post(
        &hubspot,
        "/crm/v3/properties/companies",
        def("over_http", "number", "number"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(
        created
            .header("location")
            .unwrap()
            .ends_with("/crm/v3/properties/companies/over_http")
    );
    assert_eq!(created.body["hubspotDefined"], false);
    assert_eq!(created.body["modificationMetadata"]["archivable"], true);
    assert_eq!(hubspot.call_counts().property_create, 2);
}

#[tokio::test]
async fn hubspot_enforces_the_scopes_its_documents_list_per_operation() {
    let hubspot = HubspotSandbox::start().await;
    install(&hubspot);
    hubspot.upsert_company("1", properties(&[("name", "A")]));
    hubspot.add_token(
        "pat-read-only",
        &["crm.objects.companies.read", "crm.schemas.companies.read"],
    );
    hubspot.add_token("pat-contacts", &["crm.objects.contacts.read"]);
    hubspot.add_token("pat-objects-write", &["crm.objects.companies.write"]);
    let companies = "/crm/v3/objects/companies";
    let cases = [
        ("pat-read-only", Method::GET, format!("{companies}/1"), None),
        (
            "pat-read-only",
            Method::POST,
            format!("{companies}/batch/update"),
            Some("crm.objects.companies.write"),
        ),
        (
            "pat-read-only",
            Method::GET,
            "/crm/v3/properties/companies".into(),
            None,
        ),
        (
            "pat-contacts",
            Method::GET,
            format!("{companies}/1"),
            Some("crm.objects.companies.read"),
        ),
        // The properties document lists every object type's read scope
        // for its generic reads: any one of them is enough.
        (
            "pat-contacts",
            Method::GET,
            "/crm/v3/properties/companies".into(),
            None,
        ),
        (
            "pat-objects-write",
            Method::POST,
            format!("{companies}/batch/update"),
            None,
        ),
        (
            "pat-objects-write",
            Method::GET,
            "/crm/v3/properties/companies/groups".into(),
            None,
        ),
        (
            HUBSPOT_SANDBOX_TOKEN,
            Method::POST,
            format!("{companies}/batch/update"),
            None,
        ),
    ];
    for (token, method, path, missing) in cases {
        let answer = hubspot_as(&hubspot, token, method.clone(), &path).await;
        match missing {
            None => assert!(
                answer.status.is_success(),
                "{token} {method} {path}: {}",
                answer.body
            ),
            Some(scope) => {
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{token} {method} {path}"
                );
                let body = &answer.body;
                assert_eq!(body["category"], "MISSING_SCOPES");
                assert_eq!(body["status"], "error");
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("This app hasn't been granted all required scopes")
                );
                assert_eq!(
                    body["errors"][0]["message"],
                    "One or more of the following scopes are required."
                );
                assert_eq!(
                    body["errors"][0]["context"]["requiredGranularScopes"],
                    json!([scope])
                );
                assert_eq!(
                    body["links"]["scopes"],
                    "https://developers.hubspot.com/scopes"
                );
            }
        }
    }
    // Creating a definition takes crm.schemas.companies.write, which
    // crm.objects.companies.write is not; the 403 names the companies
    // scope, not the 25 other object types' alternatives.
    let create = send(
        reqwest::Client::new()
            .post(format!("{}/crm/v3/properties/companies", hubspot.base_url))
            .bearer_auth("pat-objects-write")
            .json(
                &json!({"name": "x", "label": "x", "type": "string", "fieldType": "text",
                          "groupName": "companyinformation"}),
            ),
    )
    .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    assert_eq!(
        create.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.schemas.companies.write"])
    );
    assert!(hubspot.property("x").is_none());
    // A token the sandbox never issued is still a 401.
    let stranger = hubspot_as(
        &hubspot,
        "pat-na1-stranger",
        Method::GET,
        "/crm/v3/objects/companies/1",
    )
    .await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        hubspot.company("1").unwrap()["city"],
        "Lyon",
        "the allowed writes landed"
    );
}

#[tokio::test]
async fn hubspot_token_info_describes_the_tokens_the_sandbox_issued() {
    use integration_tests::hubspot_sandbox::{BRIDGE_SCOPES, HUBSPOT_SANDBOX_HUB_ID};
    let hubspot = HubspotSandbox::start().await;
    hubspot.add_token("pat-read-only", &["crm.objects.companies.read"]);
    let info = |body: Value| {
        // The body names the token: no Authorization header.
        send(
            reqwest::Client::new()
                .post(format!(
                    "{}/oauth/v2/private-apps/get/access-token-info",
                    hubspot.base_url
                ))
                .json(&body),
        )
    };
    let own = info(json!({"tokenKey": HUBSPOT_SANDBOX_TOKEN})).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(keys(&own.body), ["appId", "hubId", "scopes", "userId"]);
    assert_eq!(own.body["hubId"], HUBSPOT_SANDBOX_HUB_ID);
    assert_eq!(own.body["scopes"], json!(BRIDGE_SCOPES));
    let other = info(json!({"tokenKey": "pat-read-only"})).await;
    assert_eq!(other.body["scopes"], json!(["crm.objects.companies.read"]));
    assert_ne!(other.body["appId"], own.body["appId"]);
    assert_eq!(other.body["hubId"], own.body["hubId"]);
    let stranger = info(json!({"tokenKey": "pat-na1-stranger"})).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    let malformed = info(json!({"token": HUBSPOT_SANDBOX_TOKEN})).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    // The sandbox issues no OAuth access tokens.
    let oauth = hubspot_get(
        &hubspot,
        &format!("/oauth/v1/access-tokens/{HUBSPOT_SANDBOX_TOKEN}"),
    )
    .await;
    assert_eq!(oauth.status, StatusCode::NOT_FOUND);
    assert_eq!(hubspot.call_counts().token_info, 5);

    // The client asks the same and reads it.
    let client = |token: &str| {
        hubwarp::hubspot::crm::HubspotClient::new(
            &hubspot.base_url,
            hubwarp::http::Token::new(token),
            Duration::from_secs(5),
            hubwarp::http::RetryPolicy::none(),
        )
        .unwrap()
    };
    let read = client(HUBSPOT_SANDBOX_TOKEN).token_info().await.unwrap();
    assert_eq!(read.hub_id, Some(HUBSPOT_SANDBOX_HUB_ID));
    assert_eq!(read.scopes, BRIDGE_SCOPES);
    let narrow = client("pat-read-only").token_info().await.unwrap();
    assert_eq!(narrow.scopes, ["crm.objects.companies.read"]);
    assert!(client("pat-na1-stranger").token_info().await.is_err());
}
