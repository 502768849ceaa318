//! Tokens and their scopes, and which scopes each operation needs: read
//! once, at first use, from the `security` of the vendored OpenAPI documents
//! (tests/contracts/hubspot/), not from a table kept here. Each operation
//! lists `oauth2` entries of one scope each, and any one of them is enough
//! (OpenAPI: alternatives). A path no document describes (token info, an
//! unknown route) needs no scope.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::Method;
use serde_json::Value;

const COMPANIES: &str = include_str!("../../contracts/hubspot/companies.v3.json");
const PROPERTIES: &str = include_str!("../../contracts/hubspot/properties.v3.json");

/// Every scope the bridge needs: companies read and written, their
/// property definitions read and created (`hubwarp setup`).
pub const BRIDGE_SCOPES: [&str; 4] = [
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
];

/// The portal every sandbox token belongs to (token info's `hubId`).
pub const HUBSPOT_SANDBOX_HUB_ID: u64 = 24_681_357;
const USER_ID: u64 = 5_150_001;
/// Private apps are numbered per token here; HubSpot gives each its own.
const FIRST_APP_ID: u64 = 3_030_001;

/// What a token the sandbox issued may do, and who it says it is.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub scopes: Vec<String>,
    pub app_id: u64,
}

/// The tokens the sandbox accepts: [`super::HUBSPOT_SANDBOX_TOKEN`] with
/// [`BRIDGE_SCOPES`], and any a test adds.
pub(super) struct Tokens(BTreeMap<String, Grant>);

impl Default for Tokens {
    fn default() -> Self {
        let mut tokens = Self(BTreeMap::new());
        tokens.add(super::HUBSPOT_SANDBOX_TOKEN, &BRIDGE_SCOPES);
        tokens
    }
}

impl Tokens {
    /// Issues `token` with `scopes`, replacing any earlier grant of it.
    pub(super) fn add(&mut self, token: &str, scopes: &[&str]) {
        let app_id = self
            .0
            .get(token)
            .map(|g| g.app_id)
            .unwrap_or(FIRST_APP_ID + self.0.len() as u64);
        self.0.insert(
            token.to_string(),
            Grant {
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                app_id,
            },
        );
    }

    pub(super) fn get(&self, token: &str) -> Option<&Grant> {
        self.0.get(token)
    }
}

/// HubSpot's private-app token info (`POST /oauth/v2/private-apps/get/
/// access-token-info`): `userId`, `hubId`, `appId`, `scopes`.
pub(super) fn token_info(grant: &Grant) -> Value {
    serde_json::json!({
        "userId": USER_ID,
        "hubId": HUBSPOT_SANDBOX_HUB_ID,
        "appId": grant.app_id,
        "scopes": grant.scopes,
    })
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param,
}

/// One operation of a document: its method, path template and scopes.
#[derive(Debug)]
pub(super) struct Operation {
    method: Method,
    template: Vec<Segment>,
    scopes: Vec<String>,
}

static OPERATIONS: LazyLock<Vec<Operation>> = LazyLock::new(|| {
    let mut all = operations("companies.v3.json", COMPANIES);
    all.extend(operations("properties.v3.json", PROPERTIES));
    all
});

fn operations(file: &str, text: &str) -> Vec<Operation> {
    let doc: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("tests/contracts/hubspot/{file} is not JSON: {e}"));
    let Some(paths) = doc["paths"].as_object() else {
        panic!("tests/contracts/hubspot/{file} has no paths");
    };
    let mut out = Vec::new();
    for (path, ops) in paths {
        let Some(ops) = ops.as_object() else { continue };
        for (method, op) in ops {
            let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                continue; // `parameters` shared by the path's operations
            };
            let scopes = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| entry["oauth2"].as_array())
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
            out.push(Operation {
                method,
                template: segments(path)
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Param
                        } else {
                            Segment::Literal(s.to_string())
                        }
                    })
                    .collect(),
                scopes,
            });
        }
    }
    out
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl Operation {
    /// Literal segments matched: the most specific template wins
    /// (`.../{objectType}/groups` over `.../{objectType}/{propertyName}`).
    fn matches(&self, method: &Method, path: &[&str]) -> Option<usize> {
        if self.method != method || self.template.len() != path.len() {
            return None;
        }
        let mut literal = 0;
        for (segment, part) in self.template.iter().zip(path) {
            match segment {
                Segment::Literal(l) if l == part => literal += 1,
                Segment::Literal(_) => return None,
                Segment::Param => {}
            }
        }
        Some(literal)
    }

    /// Whether `granted` holds one of the scopes (an operation listing
    /// none needs none).
    pub(super) fn allows(&self, granted: &[String]) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| granted.contains(s))
    }

    /// The scopes a 403 names for `path`: those of the operation that name
    /// its object type (`crm.schemas.companies.write` for
    /// `/crm/v3/properties/companies`, not the 25 other object types'
    /// alternatives a generic `{objectType}` operation lists), or all of
    /// them when none does.
    pub(super) fn named_for(&self, path: &str) -> Vec<String> {
        let parts: Vec<&str> = segments(path).collect();
        let object = parts
            .iter()
            .position(|p| *p == "objects" || *p == "properties")
            .and_then(|i| parts.get(i + 1));
        let own: Vec<String> = match object {
            Some(object) => {
                let needle = format!(".{object}.");
                self.scopes
                    .iter()
                    .filter(|s| s.contains(&needle))
                    .cloned()
                    .collect()
            }
            None => Vec::new(),
        };
        if own.is_empty() {
            self.scopes.clone()
        } else {
            own
        }
    }
}

/// The documented operation `method path` is, if any.
pub(super) fn operation(method: &Method, path: &str) -> Option<&'static Operation> {
    let parts: Vec<&str> = segments(path).collect();
    OPERATIONS
        .iter()
        .filter_map(|op| op.matches(method, &parts).map(|n| (n, op)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, op)| op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_both_documents_lists_scopes() {
        assert!(OPERATIONS.len() > 20, "{}", OPERATIONS.len());
        assert!(OPERATIONS.iter().all(|op| !op.scopes.is_empty()));
    }

    #[test]
    fn scopes_come_from_the_documents() {
        let read = operation(&Method::GET, "/crm/v3/objects/companies/42").unwrap();
        assert_eq!(read.scopes, ["crm.objects.companies.read"]);
        let create = operation(&Method::POST, "/crm/v3/properties/companies").unwrap();
        assert!(create.allows(&["crm.schemas.companies.write".into()]));
        assert!(!create.allows(&["crm.objects.companies.write".into()]));
        assert_eq!(
            create.named_for("/crm/v3/properties/companies"),
            ["crm.schemas.companies.write"]
        );
        let groups = operation(&Method::GET, "/crm/v3/properties/companies/groups").unwrap();
        assert!(groups.allows(&["crm.objects.companies.read".into()]));
        // The groups template wins over `{propertyName}`: both read.
        assert!(
            groups
                .template
                .iter()
                .any(|s| matches!(s, Segment::Literal(l) if l == "groups"))
        );
        assert!(
            operation(
                &Method::POST,
                "/oauth/v2/private-apps/get/access-token-info"
            )
            .is_none()
        );
    }
}
