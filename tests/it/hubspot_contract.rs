//! The HubSpot sandbox's answers, and the client's requests, against
//! HubSpot's own OpenAPI documents (tests/contracts/hubspot/companies.v3.json
//! and properties.v3.json): every answer matches the schema of its
//! operation and status (`default`, the `Error` schema, for every error),
//! and every request body the client sends matches the operation's
//! `requestBody` schema. So the client tests, which run against the
//! sandbox, hold against HubSpot as HubSpot documents itself.
//!
//! OpenAPI 3.0 schemas are read as JSON Schema 2020-12: `nullable: true`
//! allows null, `$ref`s point into the same file, formats (`uuid`,
//! `date-time`) are checked. Two documented relaxations, each with a test
//! that fails when HubSpot's file changes so it is no longer needed (see
//! tests/contracts/hubspot/SOURCES.md).

use std::time::Duration;

use hubwarp::http::{RetryPolicy, Token};
use hubwarp::hubspot::crm::{
    CompanyUpdate, Filter, FilterGroup, HubspotClient, Operator, SearchRequest, Sort,
};
use hubwarp::mapping::MappingSet;
use hubwarp::operate::properties::{Finding, group_needed, held_values, survey};
use integration_tests::hubspot_sandbox::{HUBSPOT_SANDBOX_TOKEN, HubspotSandbox, Route, Throttle};
use integration_tests::hubspot_setup::install_bridge_properties;
use integration_tests::warp_sandbox::demo_customer;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

const CURRENT: (&str, &str) = (
    "companies.v3.json",
    "2b5afcbb2def04de0ebd728c512b1c40db7f9a1afbac555b5e88bf196872663e",
);
const NULLABLE: (&str, &str) = (
    "companies.v3.2026-04-03-nullable.json",
    "1c290018a564a10f2d0f8234aa9ab3be220ae20b6539074cf2167d83a3c0cdcf",
);
const PROPERTIES_DOC: (&str, &str) = (
    "properties.v3.json",
    "11328261780f117f3ed5d5e2bd054c9bbbb7e95bbc5abcba1c1e0b8cea3b39c4",
);
const OBJECT_SCHEMAS: [&str; 2] = ["SimplePublicObject", "SimplePublicObjectWithAssociations"];

const LIST: &str = "/crm/v3/objects/companies";
const BY_ID: &str = "/crm/v3/objects/companies/{companyId}";
const BATCH_READ: &str = "/crm/v3/objects/companies/batch/read";
const BATCH_UPDATE: &str = "/crm/v3/objects/companies/batch/update";
const SEARCH: &str = "/crm/v3/objects/companies/search";
const MERGE: &str = "/crm/v3/objects/companies/merge";

const PROPS: &str = "/crm/v3/properties/{objectType}";
const PROP: &str = "/crm/v3/properties/{objectType}/{propertyName}";
const PROP_BATCH: &str = "/crm/v3/properties/{objectType}/batch/create";
const GROUPS: &str = "/crm/v3/properties/{objectType}/groups";
const GROUP: &str = "/crm/v3/properties/{objectType}/groups/{groupName}";
const COMPANY_PROPS: &str = "/crm/v3/properties/companies";

/// A vendored file, checked to be the one SOURCES.md describes.
fn load((name, sha256): (&str, &str)) -> Value {
    let path = integration_tests::workspace_root()
        .join("tests/contracts/hubspot")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        hex(&Sha256::digest(&bytes)),
        sha256,
        "{name} is no longer the file SOURCES.md describes"
    );
    serde_json::from_slice(&bytes).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// OpenAPI 3.0 schema -> JSON Schema 2020-12: `nullable` into the type,
/// component `$ref`s into `$defs`.
fn convert(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get("type").cloned() {
                    Some(Value::String(t)) => {
                        map.insert("type".into(), json!([t, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/components/schemas/")
            {
                *r = format!("#/$defs/{name}");
            }
            map.values_mut().for_each(convert);
        }
        Value::Array(items) => items.iter_mut().for_each(convert),
        _ => {}
    }
}

/// The property map of an object schema.
fn property_values(doc: &Value, object: &str) -> Value {
    doc["components"]["schemas"][object]["properties"]["properties"]["additionalProperties"].clone()
}

struct Contract {
    doc: Value,
    defs: Value,
}

impl Contract {
    fn load() -> Self {
        Self::from_document(load(CURRENT), true)
    }

    /// The properties document, as it is: no relaxation needed.
    fn properties() -> Self {
        Self::from_document(load(PROPERTIES_DOC), false)
    }

    fn from_document(doc: Value, relaxed: bool) -> Self {
        let mut schemas = doc["components"]["schemas"].clone();
        if relaxed {
            // 1. HubSpot answers null for asked-for properties without a
            //    value; the nullable copy declared it (asserted below).
            for object in OBJECT_SCHEMAS {
                schemas[object]["properties"]["properties"]["additionalProperties"]["nullable"] =
                    json!(true);
            }
            // 2. Sorts are objects; HubSpot ignores strings.
            schemas["PublicObjectSearchRequest"]["properties"]["sorts"]["items"] = json!({
                "type": "object",
                "required": ["propertyName"],
                "additionalProperties": false,
                "properties": {
                    "propertyName": {"type": "string"},
                    "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]},
                },
            });
        }
        convert(&mut schemas);
        Self { doc, defs: schemas }
    }

    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut schema = schema.clone();
        convert(&mut schema);
        let mut root = Map::new();
        root.insert("$defs".into(), self.defs.clone());
        if let Value::Object(s) = schema {
            root.extend(s);
        }
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap()
    }

    /// Follows `#/components/...` references of the document itself.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let pointer = r.trim_start_matches('#');
            node = self.doc.pointer(pointer).unwrap_or_else(|| panic!("{r}"));
        }
        node
    }

    fn operation(&self, method: &str, path: &str) -> &Value {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        op
    }

    /// The schema of `status` for the operation: its own entry, else
    /// `default` for errors (a success must be listed).
    fn response_schema(&self, method: &str, path: &str, status: u16) -> Value {
        let responses = &self.operation(method, path)["responses"];
        let response = match responses.get(status.to_string()) {
            Some(r) => r,
            None if status >= 400 => &responses["default"],
            None => panic!("{method} {path} does not document {status}"),
        };
        let response = self.resolve(response);
        let content = response["content"].as_object().unwrap();
        let (_, media) = content.iter().next().unwrap();
        media["schema"].clone()
    }

    fn request_schema(&self, method: &str, path: &str) -> Value {
        self.resolve(&self.operation(method, path)["requestBody"])["content"]["application/json"]
            ["schema"]
            .clone()
    }

    fn errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        self.validator(schema)
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    fn check_answer(&self, method: &str, path: &str, answer: &Answer) {
        let schema = self.response_schema(method, path, answer.status.as_u16());
        let errors = self.errors(&schema, &answer.body);
        assert!(
            errors.is_empty(),
            "{method} {path} answered {} off-contract: {errors:#?}\n{}",
            answer.status,
            answer.body
        );
    }

    fn check_request(&self, method: &str, path: &str, body: &Value) {
        let errors = self.errors(&self.request_schema(method, path), body);
        assert!(
            errors.is_empty(),
            "the client sent {method} {path} off-contract: {errors:#?}\n{body}"
        );
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

struct Peer {
    hubspot: HubspotSandbox,
    http: reqwest::Client,
}

/// The WARP customers whose values the bridge's enumerations offer.
fn book() -> Vec<Value> {
    (0..8).map(demo_customer).collect()
}

impl Peer {
    /// A new portal: HubSpot's standard properties, none of the bridge's,
    /// no company.
    async fn bare() -> Self {
        Self {
            hubspot: HubspotSandbox::start().await,
            http: reqwest::Client::new(),
        }
    }

    async fn start() -> Self {
        let hubspot = HubspotSandbox::start().await;
        install_bridge_properties(&hubspot, &book());
        for n in 1..=5u64 {
            let mut props = Map::new();
            props.insert("name".into(), json!(format!("Company {n}")));
            if n % 2 == 0 {
                props.insert("warp_tier".into(), json!("GOLD"));
            }
            hubspot.upsert_company(&n.to_string(), props);
        }
        Self {
            hubspot,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.hubspot.base_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, HUBSPOT_SANDBOX_TOKEN)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body),
            HUBSPOT_SANDBOX_TOKEN,
        )
        .await
    }

    fn client(&self) -> HubspotClient {
        HubspotClient::new(
            &self.hubspot.base_url,
            Token::new(HUBSPOT_SANDBOX_TOKEN),
            Duration::from_secs(5),
            RetryPolicy::none(),
        )
        .unwrap()
    }
}

#[test]
fn the_relaxations_are_still_needed_and_still_justified() {
    let current = load(CURRENT);
    let nullable = load(NULLABLE);
    for object in OBJECT_SCHEMAS {
        assert_eq!(
            property_values(&current, object).get("nullable"),
            None,
            "{object}"
        );
        assert_eq!(
            property_values(&nullable, object),
            json!({"type": "string", "nullable": true, "example": null}),
            "{object}"
        );
    }
    assert_eq!(
        current["components"]["schemas"]["PublicObjectSearchRequest"]["properties"]["sorts"]["items"]
            ["type"],
        "string"
    );
}

#[test]
fn the_validator_catches_what_the_contract_forbids() {
    let strict = Contract::from_document(load(CURRENT), false);
    let relaxed = Contract::load();
    let object = json!({
        "id": "1", "archived": false,
        "createdAt": "2025-10-14T09:00:00.000Z", "updatedAt": "2025-10-14T09:00:00.000Z",
        "properties": {"name": "A", "city": null},
    });
    let schema = json!({"$ref": "#/components/schemas/SimplePublicObject"});
    assert!(
        !strict.errors(&schema, &object).is_empty(),
        "null is off the current file"
    );
    assert_eq!(relaxed.errors(&schema, &object), Vec::<String>::new());
    let mut bad_date = object.clone();
    bad_date["updatedAt"] = json!("yesterday");
    assert!(!relaxed.errors(&schema, &bad_date).is_empty());
    // The nullable copy, read as it is, takes the null without relaxing.
    let nullable = Contract::from_document(load(NULLABLE), false);
    assert_eq!(nullable.errors(&schema, &object), Vec::<String>::new());

    let error = json!({"$ref": "#/components/schemas/Error"});
    let ok =
        json!({"category": "X", "message": "m", "correlationId": uuid::Uuid::new_v4().to_string()});
    assert_eq!(relaxed.errors(&error, &ok), Vec::<String>::new());
    assert!(
        !relaxed
            .errors(&error, &json!({"category": "X", "message": "m"}))
            .is_empty()
    );
    let mut not_uuid = ok.clone();
    not_uuid["correlationId"] = json!("not-a-uuid");
    assert!(!relaxed.errors(&error, &not_uuid).is_empty());

    let search = relaxed.request_schema("post", SEARCH);
    let mut body = json!({"filterGroups": [], "sorts": ["hs_object_id"], "properties": [], "limit": 1, "after": "0"});
    assert!(
        !relaxed.errors(&search, &body).is_empty(),
        "string sorts are ignored by HubSpot"
    );
    body["sorts"] = json!([{"propertyName": "hs_object_id", "direction": "ASCENDING"}]);
    assert_eq!(relaxed.errors(&search, &body), Vec::<String>::new());
    body.as_object_mut().unwrap().remove("after");
    assert!(
        !relaxed.errors(&search, &body).is_empty(),
        "after is required"
    );
}

#[tokio::test]
async fn list_get_and_errors_of_reads_match_the_document() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    let middle = peer
        .get(&format!("{LIST}?limit=2&properties=name,warp_tier"))
        .await;
    assert!(middle.body["paging"]["next"]["after"].is_string());
    contract.check_answer("get", LIST, &middle);
    let last = peer
        .get(&format!(
            "{LIST}?limit=2&after=5&propertiesWithHistory=name"
        ))
        .await;
    assert_eq!(last.body.get("paging"), None);
    contract.check_answer("get", LIST, &last);
    let one = peer
        .get(&format!(
            "{LIST}/2?properties=name,warp_tier,city&propertiesWithHistory=warp_tier"
        ))
        .await;
    assert_eq!(one.body["properties"]["city"], Value::Null);
    contract.check_answer("get", BY_ID, &one);

    for (path, template, status) in [
        (format!("{LIST}?limit=0"), LIST, 400),
        (format!("{LIST}?after=nope"), LIST, 400),
        (format!("{LIST}/404404"), BY_ID, 404),
        (
            "/crm/v3/objects/companies/1/nothing/here".to_string(),
            BY_ID,
            404,
        ),
    ] {
        let answer = peer.get(&path).await;
        assert_eq!(answer.status.as_u16(), status, "{path}");
        contract.check_answer("get", template, &answer);
    }
    let unauthorized = peer
        .send(
            reqwest::Method::GET,
            &format!("{LIST}/1"),
            None,
            "pat-na1-wrong",
        )
        .await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    contract.check_answer("get", BY_ID, &unauthorized);
    let wrong_method = peer
        .send(
            reqwest::Method::PUT,
            &format!("{LIST}/1"),
            None,
            HUBSPOT_SANDBOX_TOKEN,
        )
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    contract.check_answer("get", BY_ID, &wrong_method);
}

#[tokio::test]
async fn batch_answers_200_207_and_400_match_the_document() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    let read = |ids: &[&str]| {
        json!({
            "inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "properties": ["name", "warp_tier"], "propertiesWithHistory": [],
        })
    };
    let all = peer.post(BATCH_READ, read(&["1", "2"])).await;
    assert_eq!(all.status, StatusCode::OK);
    contract.check_answer("post", BATCH_READ, &all);
    let some = peer.post(BATCH_READ, read(&["1", "77", "78"])).await;
    assert_eq!(some.status, StatusCode::MULTI_STATUS);
    contract.check_answer("post", BATCH_READ, &some);
    let ids: Vec<String> = (0..101).map(|n| n.to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let too_many = peer.post(BATCH_READ, read(&refs)).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    contract.check_answer("post", BATCH_READ, &too_many);

    let update = |id: &str, props: Value| json!({"inputs": [{"id": id, "properties": props}]});
    let updated = peer
        .post(
            BATCH_UPDATE,
            update("3", json!({"city": "Lyon", "warp_tier": ""})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    contract.check_answer("post", BATCH_UPDATE, &updated);
    let partly = peer
        .post(
            BATCH_UPDATE,
            json!({"inputs": [
                {"id": "4", "properties": {"city": "Oslo"}},
                {"id": "999", "properties": {"city": "Nowhere"}},
            ]}),
        )
        .await;
    assert_eq!(partly.status, StatusCode::MULTI_STATUS);
    contract.check_answer("post", BATCH_UPDATE, &partly);
    for body in [
        update("1", json!({"not_a_property": "x"})),
        update("1", json!({"createdate": "x"})),
        json!({"inputs": "nope"}),
    ] {
        let refused = peer.post(BATCH_UPDATE, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        contract.check_answer("post", BATCH_UPDATE, &refused);
    }
}

/// Create and merge are what a person does in HubSpot (the demo's
/// duplicate company and its merge); both honour the document too.
#[tokio::test]
async fn create_and_merge_match_the_document() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    let request =
        json!({"properties": {"name": "Acme (duplicate)", "city": "Lyon"}, "associations": []});
    contract.check_request("post", LIST, &request);
    let created = peer.post(LIST, request).await;
    assert_eq!(created.status, StatusCode::CREATED);
    contract.check_answer("post", LIST, &created);
    let new_id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(new_id, "6", "the next id after the seeded 1-5");
    let refused = peer
        .post(
            LIST,
            json!({"properties": {"nope": "x"}, "associations": []}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    contract.check_answer("post", LIST, &refused);

    // Company 2 (GOLD tier) merged into the new one: the primary keeps its
    // name and city and takes the tier it lacked; 2 is gone.
    let request = json!({"primaryObjectId": new_id, "objectIdToMerge": "2"});
    contract.check_request("post", MERGE, &request);
    let merged = peer.post(MERGE, request).await;
    assert_eq!(merged.status, StatusCode::OK, "{:?}", merged.body);
    contract.check_answer("post", MERGE, &merged);
    let props = &merged.body["properties"];
    assert_eq!(props["name"], "Acme (duplicate)");
    assert_eq!(props["warp_tier"], "GOLD");
    assert!(peer.hubspot.company("2").is_none());
    let gone = peer
        .post(
            MERGE,
            json!({"primaryObjectId": new_id, "objectIdToMerge": "2"}),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    contract.check_answer("post", MERGE, &gone);
}

#[tokio::test]
async fn search_answers_and_its_400s_match_the_document() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    let paged = peer
        .post(
            SEARCH,
            json!({"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "1"}]}],
                   "sorts": [{"propertyName": "name", "direction": "DESCENDING"}],
                   "properties": ["name", "warp_tier"], "limit": 2, "after": "0"}),
        )
        .await;
    assert_eq!(paged.body["total"], 4);
    assert!(paged.body["paging"]["next"]["after"].is_string());
    contract.check_answer("post", SEARCH, &paged);
    let whole = peer.post(SEARCH, json!({"limit": 200})).await;
    assert_eq!(whole.body.get("paging"), None);
    contract.check_answer("post", SEARCH, &whole);
    for body in [
        json!({"limit": 100, "after": "9950"}),
        json!({"limit": 201}),
        json!({"filterGroups": [{"filters": [{"propertyName": "x", "operator": "SOUNDS_LIKE", "value": "y"}]}]}),
    ] {
        let refused = peer.post(SEARCH, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        contract.check_answer("post", SEARCH, &refused);
    }
}

#[tokio::test]
async fn every_429_and_5xx_is_in_the_error_shape() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    for kind in [Throttle::TenSecondly, Throttle::Secondly, Throttle::Daily] {
        peer.hubspot.throttle_next(kind, 1);
        let answer = peer.get(&format!("{LIST}/1")).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        contract.check_answer("get", BY_ID, &answer);
    }
    // The enforced limits too.
    peer.hubspot.set_ten_secondly_limit(Some(1));
    assert_eq!(peer.get(LIST).await.status, StatusCode::OK);
    let window = peer.get(LIST).await;
    assert_eq!(window.status, StatusCode::TOO_MANY_REQUESTS);
    contract.check_answer("get", LIST, &window);
    peer.hubspot.set_search_per_second(Some(1));
    assert_eq!(peer.post(SEARCH, json!({})).await.status, StatusCode::OK);
    let secondly = peer.post(SEARCH, json!({})).await;
    assert_eq!(secondly.status, StatusCode::TOO_MANY_REQUESTS);
    contract.check_answer("post", SEARCH, &secondly);

    peer.hubspot.fail_next(502, 1);
    let failed = peer.post(BATCH_READ, json!({"inputs": []})).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    contract.check_answer("post", BATCH_READ, &failed);
}

#[tokio::test]
async fn the_clients_request_bodies_match_the_document() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    let c = peer.client();
    let ids: Vec<String> = ["1", "2", "404"].map(String::from).to_vec();
    c.batch_read(&ids, &["name", "warp_tier"]).await.unwrap();
    c.batch_read(&ids[..1], &[]).await.unwrap();
    c.batch_update(&[
        CompanyUpdate {
            id: "1".into(),
            properties: [
                ("city".to_string(), "Lyon".to_string()),
                ("warp_tier".to_string(), String::new()),
            ]
            .into(),
        },
        CompanyUpdate {
            id: "404".into(),
            properties: [("city".to_string(), "X".to_string())].into(),
        },
    ])
    .await
    .unwrap();
    c.search_page(&SearchRequest {
        filter_groups: vec![
            FilterGroup {
                filters: vec![
                    Filter::eq("warp_tier", "GOLD"),
                    Filter::between("hs_object_id", "1", "10"),
                    Filter::is_in("name", vec!["Company 2".into(), "Company 4".into()]),
                ],
            },
            FilterGroup {
                filters: vec![
                    Filter::not_has_property("warp_tier"),
                    Filter::compare("name", Operator::ContainsToken, "*pany*"),
                ],
            },
        ],
        sorts: vec![Sort::ascending("name")],
        properties: vec!["name".into()],
        limit: 3,
        after: None,
        query: Some("Company".into()),
    })
    .await
    .unwrap();
    c.search_page(&SearchRequest::default()).await.unwrap();
    let mut cursor = c.search_all(vec![Filter::has_property("name")], vec!["name".into()]);
    while cursor.next_page(&c).await.unwrap().is_some() {}

    for (route, template) in [
        (Route::BatchRead, BATCH_READ),
        (Route::BatchUpdate, BATCH_UPDATE),
        (Route::Search, SEARCH),
    ] {
        let bodies = peer.hubspot.request_bodies(route);
        assert!(!bodies.is_empty(), "{template}");
        for body in bodies {
            contract.check_request("post", template, &body);
        }
    }
    assert_eq!(peer.hubspot.request_bodies(Route::Search).len(), 3);
}

#[tokio::test]
async fn the_client_always_passes_limit_on_list() {
    // HubSpot's default page is 10: a missing limit costs ten times the calls.
    let peer = Peer::start().await;
    let c = peer.client();
    for limit in [0, 1, 50, 100, 1_000] {
        c.list_page(&["name"], None, limit).await.unwrap();
    }
    c.list_page(&[], Some("3"), 2).await.unwrap();
    let limits: Vec<String> = peer
        .hubspot
        .received(Route::List)
        .into_iter()
        .map(|r| {
            let query = r.query.unwrap_or_default();
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("limit="))
                .unwrap_or("(none)")
                .to_string()
        })
        .collect();
    assert_eq!(limits, ["1", "1", "50", "100", "100", "2"]);
}

// ---------------------------------------------------------------------------
// CRM properties v3 (properties.v3.json) and scopes

#[test]
fn the_properties_document_says_what_the_sandbox_relies_on() {
    let doc = load(PROPERTIES_DOC);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["PropertyCreate"]["required"],
        json!(["fieldType", "groupName", "label", "name", "type"])
    );
    assert_eq!(
        schemas["PropertyCreate"]["properties"]["type"]["enum"],
        json!([
            "bool",
            "date",
            "datetime",
            "enumeration",
            "number",
            "phone_number",
            "string"
        ])
    );
    let security = |method: &str, path: &str| -> Vec<String> {
        doc["paths"][path][method]["security"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["oauth2"].as_array().unwrap().clone())
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let create = security("post", PROPS);
    assert!(create.contains(&"crm.schemas.companies.write".to_string()));
    assert!(!create.contains(&"crm.objects.companies.write".to_string()));
    assert!(security("get", PROPS).contains(&"crm.objects.companies.read".to_string()));
    // 201 for a single create, 201 or 207 for a batch.
    let responses = |method: &str, path: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(responses("post", PROPS), ["201", "default"]);
    assert_eq!(responses("post", PROP_BATCH), ["201", "207", "default"]);
    assert_eq!(responses("post", GROUPS), ["201", "default"]);
}

#[tokio::test]
async fn property_and_group_reads_match_the_properties_document() {
    let contract = Contract::properties();
    for peer in [Peer::bare().await, Peer::start().await] {
        let listed = peer.get(COMPANY_PROPS).await;
        assert_eq!(listed.status, StatusCode::OK);
        contract.check_answer("get", PROPS, &listed);
        let groups = peer.get(&format!("{COMPANY_PROPS}/groups")).await;
        assert_eq!(groups.status, StatusCode::OK);
        contract.check_answer("get", GROUPS, &groups);
    }
    let peer = Peer::start().await;
    for name in [
        "name",
        "hs_object_id",
        "industry",
        "warp_status",
        "warp_services",
    ] {
        let one = peer.get(&format!("{COMPANY_PROPS}/{name}")).await;
        assert_eq!(one.status, StatusCode::OK, "{name}");
        contract.check_answer("get", PROP, &one);
    }
    let group = peer.get(&format!("{COMPANY_PROPS}/groups/warp")).await;
    assert_eq!(group.status, StatusCode::OK);
    contract.check_answer("get", GROUP, &group);
    for (path, template, status) in [
        (format!("{COMPANY_PROPS}/no_such_property"), PROP, 404),
        (format!("{COMPANY_PROPS}/groups/no_such_group"), GROUP, 404),
        ("/crm/v3/properties/widgets".to_string(), PROPS, 400),
        ("/crm/v3/properties/contacts".to_string(), PROPS, 404),
        (format!("{COMPANY_PROPS}?archived=maybe"), PROPS, 400),
    ] {
        let answer = peer.get(&path).await;
        assert_eq!(answer.status.as_u16(), status, "{path}");
        contract.check_answer("get", template, &answer);
    }
}

#[tokio::test]
async fn property_creation_answers_201_409_400_and_207_as_documented() {
    let contract = Contract::properties();
    let peer = Peer::bare().await;
    let def = |name: &str| {
        json!({"name": name, "label": "WARP tier", "type": "enumeration", "fieldType": "select",
               "groupName": "companyinformation", "description": "the tier",
               "options": [{"label": "Gold", "value": "GOLD", "displayOrder": 0, "hidden": false}]})
    };
    contract.check_request("post", PROPS, &def("warp_tier"));
    let created = peer.post(COMPANY_PROPS, def("warp_tier")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    contract.check_answer("post", PROPS, &created);
    assert!(created.headers.contains_key("location"));
    let taken = peer.post(COMPANY_PROPS, def("warp_tier")).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.body["category"], "OBJECT_ALREADY_EXISTS");
    contract.check_answer("post", PROPS, &taken);
    let without = |key: &str| {
        let mut d = def("warp_other");
        d.as_object_mut().unwrap().remove(key);
        d
    };
    let mut number_as_text = def("warp_limit");
    number_as_text["type"] = json!("number");
    number_as_text["fieldType"] = json!("text");
    number_as_text["options"] = json!([]);
    let mut no_options = def("warp_terms");
    no_options["options"] = json!([]);
    let mut nowhere = def("warp_nowhere");
    nowhere["groupName"] = json!("no_such_group");
    for refused in [
        without("label"),
        number_as_text,
        no_options,
        nowhere,
        json!([]),
    ] {
        let answer = peer.post(COMPANY_PROPS, refused.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(answer.body["category"], "VALIDATION_ERROR");
        contract.check_answer("post", PROPS, &answer);
    }

    let group = json!({"name": "warp", "label": "WARP", "displayOrder": -1});
    contract.check_request("post", GROUPS, &group);
    let made = peer
        .post(&format!("{COMPANY_PROPS}/groups"), group.clone())
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    contract.check_answer("post", GROUPS, &made);
    let again = peer.post(&format!("{COMPANY_PROPS}/groups"), group).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    contract.check_answer("post", GROUPS, &again);

    let batch = json!({"inputs": [def("warp_a"), def("warp_b")]});
    contract.check_request("post", PROP_BATCH, &batch);
    let all = peer
        .post(&format!("{COMPANY_PROPS}/batch/create"), batch)
        .await;
    assert_eq!(all.status, StatusCode::CREATED, "{}", all.body);
    contract.check_answer("post", PROP_BATCH, &all);
    let some = peer
        .post(
            &format!("{COMPANY_PROPS}/batch/create"),
            json!({"inputs": [def("warp_a"), def("warp_c")]}),
        )
        .await;
    assert_eq!(some.status, StatusCode::MULTI_STATUS, "{}", some.body);
    contract.check_answer("post", PROP_BATCH, &some);
    assert_eq!(
        some.body["errors"][0]["context"]["propertyName"],
        json!(["warp_a"])
    );
    assert!(peer.hubspot.property("warp_c").is_some());
    let counts = peer.hubspot.call_counts();
    assert_eq!(
        (
            counts.property_create,
            counts.group_create,
            counts.property_batch_create
        ),
        (7, 2, 2)
    );
}

#[tokio::test]
async fn a_token_without_the_operations_scope_gets_403_missing_scopes_as_documented() {
    let properties = Contract::properties();
    let companies = Contract::load();
    let peer = Peer::start().await;
    peer.hubspot.add_token(
        "pat-read-only",
        &["crm.objects.companies.read", "crm.schemas.companies.read"],
    );
    let read_only = "pat-read-only";
    let read = peer
        .send(reqwest::Method::GET, &format!("{LIST}/1"), None, read_only)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let definition = json!({"name": "x", "label": "x", "type": "string", "fieldType": "text",
                            "groupName": "companyinformation"});
    let create = peer
        .send(
            reqwest::Method::POST,
            COMPANY_PROPS,
            Some(definition),
            read_only,
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    assert_eq!(create.body["category"], "MISSING_SCOPES");
    properties.check_answer("post", PROPS, &create);
    let update = peer
        .send(
            reqwest::Method::POST,
            BATCH_UPDATE,
            Some(json!({"inputs": [{"id": "1", "properties": {"city": "Lyon"}}]})),
            read_only,
        )
        .await;
    assert_eq!(update.status, StatusCode::FORBIDDEN);
    assert_eq!(
        update.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.objects.companies.write"])
    );
    companies.check_answer("post", BATCH_UPDATE, &update);
    // The client names the scope in its error.
    let client = HubspotClient::new(
        &peer.hubspot.base_url,
        Token::new("pat-read-only"),
        Duration::from_secs(5),
        RetryPolicy::none(),
    )
    .unwrap();
    let refused = client
        .create_property_group(&hubwarp::hubspot::crm::PropertyGroup {
            name: "x".into(),
            label: "X".into(),
            display_order: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        hubwarp::hubspot::crm::HubspotError::MissingScopes("crm.schemas.companies.write".into())
    );
}

#[tokio::test]
async fn writes_of_values_the_definitions_refuse_are_400s_as_documented() {
    let contract = Contract::load();
    let peer = Peer::start().await;
    let update = |props: Value| json!({"inputs": [{"id": "1", "properties": props}]});
    for (props, code) in [
        (json!({"warp_nope": "x"}), "PROPERTY_DOESNT_EXIST"),
        (json!({"warp_tier": "DIAMOND"}), "INVALID_OPTION"),
        (json!({"warp_services": "voice;fax"}), "INVALID_OPTION"),
        (json!({"warp_credit_limit": "lots"}), "INVALID_INTEGER"),
    ] {
        let refused = peer.post(BATCH_UPDATE, update(props.clone())).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{props}");
        assert_eq!(refused.body["errors"][0]["code"], code, "{props}");
        contract.check_answer("post", BATCH_UPDATE, &refused);
        let created = peer
            .post(LIST, json!({"properties": props, "associations": []}))
            .await;
        assert_eq!(created.status, StatusCode::BAD_REQUEST);
        contract.check_answer("post", LIST, &created);
    }
}

/// What `hubwarp setup` sends (the library's plan, through the client)
/// matches `PropertyCreate` and `PropertyGroupCreate`, and the client
/// reads the sandbox's `Property` and `PropertyGroup` answers.
#[tokio::test]
async fn the_clients_property_requests_match_the_properties_document() {
    let contract = Contract::properties();
    let peer = Peer::bare().await;
    let c = peer.client();
    let mapping = MappingSet::default_mapping().unwrap();
    let existing = c.company_properties().await.unwrap();
    assert!(
        existing
            .iter()
            .any(|p| p.name == "name" && p.hubspot_defined)
    );
    let groups = c.company_property_groups().await.unwrap();
    let held = held_values(&mapping, &book());
    let findings = survey(&mapping, &existing, &held);
    let group = group_needed(&findings, &groups).expect("a new portal lacks the warp group");
    c.create_property_group(&group).await.unwrap();
    let mut created = 0;
    for finding in &findings {
        if let Finding::Missing { create } = finding {
            c.create_property(create).await.unwrap();
            created += 1;
        }
    }
    assert_eq!(created, 8, "{findings:#?}");
    let bodies = peer.hubspot.request_bodies(Route::PropertyCreate);
    assert_eq!(bodies.len(), created);
    for body in &bodies {
        contract.check_request("post", PROPS, body);
    }
    let groups = peer.hubspot.request_bodies(Route::GroupCreate);
    assert_eq!(groups.len(), 1);
    contract.check_request("post", GROUPS, &groups[0]);

    let now = c.company_properties().await.unwrap();
    let again = survey(&mapping, &now, &held);
    assert!(again.iter().all(Finding::is_ready), "{again:#?}");
    let info = c.token_info().await.unwrap();
    assert_eq!(info.scopes.len(), 4);
}
