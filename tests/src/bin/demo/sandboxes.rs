//! The WARP and HubSpot sandboxes over HTTP, as the demo reads and edits
//! them behind the functions' backs, and how it shows what they hold.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::hubspot_sandbox::HUBSPOT_SANDBOX_TOKEN;
use integration_tests::local::Result;
use integration_tests::warp_sandbox::SANDBOX_TOKEN as WARP_SANDBOX_TOKEN;
use serde_json::{Map, Value, json};

/// The WARP and HubSpot sandboxes over their HTTP APIs, as the functions
/// see them.
pub(super) struct Sandboxes {
    http: reqwest::Client,
    warp: String,
    hubspot: String,
}

impl Sandboxes {
    pub(super) fn from_env() -> Result<Self> {
        let url = |name: &str, default: &str| {
            let url = std::env::var(name).unwrap_or_else(|_| default.into());
            if url.starts_with("http://127.0.0.1") {
                Ok(url)
            } else {
                Err(format!("the demo only talks to loopback, not {name}={url}"))
            }
        };
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
            warp: url("WARP_API_URL", "http://127.0.0.1:9100")?,
            hubspot: url("HUBSPOT_API_URL", "http://127.0.0.1:9101")?,
        })
    }

    async fn call(what: &str, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{what}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{what}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{what}: {e}: {text}"))
    }

    pub(super) async fn customer(&self, ban: &str) -> Result<Value> {
        let url = format!("{}/v1/customers/by-ban/{ban}", self.warp);
        let v = Self::call(
            &format!("WARP GET {ban}"),
            self.http.get(url).bearer_auth(WARP_SANDBOX_TOKEN),
        )
        .await?;
        Ok(v["data"].clone())
    }

    /// A partial PUT, as someone editing in WARP's own screens would make.
    pub(super) async fn edit_customer(&self, id: &str, patch: Value) -> Result<Value> {
        let url = format!("{}/v1/customers/{id}", self.warp);
        let v = Self::call(
            &format!("WARP PUT {id}"),
            self.http
                .put(url)
                .bearer_auth(WARP_SANDBOX_TOKEN)
                .json(&patch),
        )
        .await?;
        Ok(v["data"].clone())
    }

    pub(super) async fn company(
        &self,
        id: &str,
        properties: &[&str],
    ) -> Result<Map<String, Value>> {
        let url = format!(
            "{}/crm/v3/objects/companies/{id}?properties={}",
            self.hubspot,
            properties.join(",")
        );
        let v = Self::call(
            &format!("HubSpot GET company {id}"),
            self.http.get(url).bearer_auth(HUBSPOT_SANDBOX_TOKEN),
        )
        .await?;
        Ok(v["properties"].as_object().cloned().unwrap_or_default())
    }

    /// A new company, as a person adds one in HubSpot; returns its id.
    pub(super) async fn create_company(&self, name: &str) -> Result<String> {
        let url = format!("{}/crm/v3/objects/companies", self.hubspot);
        let v = Self::call(
            "HubSpot create company",
            self.http
                .post(url)
                .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
                .json(&json!({"properties": {"name": name}, "associations": []})),
        )
        .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("HubSpot create company answered {v}"))
    }

    /// HubSpot's merge: `other` into `primary`.
    pub(super) async fn merge_companies(&self, primary: &str, other: &str) -> Result<()> {
        let url = format!("{}/crm/v3/objects/companies/merge", self.hubspot);
        Self::call(
            "HubSpot merge",
            self.http
                .post(url)
                .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
                .json(&json!({"primaryObjectId": primary, "objectIdToMerge": other})),
        )
        .await
        .map(|_| ())
    }

    /// HubSpot's batch update (at most 100 companies a call).
    pub(super) async fn update_companies(
        &self,
        companies: &BTreeMap<String, Map<String, Value>>,
    ) -> Result<()> {
        let inputs: Vec<Value> = companies
            .iter()
            .map(|(id, properties)| json!({ "id": id, "properties": properties }))
            .collect();
        for chunk in inputs.chunks(100) {
            let url = format!("{}/crm/v3/objects/companies/batch/update", self.hubspot);
            let answer = Self::call(
                "HubSpot batch update",
                self.http
                    .post(url)
                    .bearer_auth(HUBSPOT_SANDBOX_TOKEN)
                    .json(&json!({ "inputs": chunk })),
            )
            .await?;
            // A 207 is a success status with some inputs refused.
            if answer
                .get("errors")
                .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()))
            {
                return Err(format!(
                    "HubSpot batch update refused some companies: {}",
                    answer["errors"]
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn company_id(customer: &Value) -> Result<String> {
    customer
        .pointer("/external_ids/hubspot_company_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("customer {} names no HubSpot company", customer["ban"]))
}

pub(super) fn text(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "null".into())
}
