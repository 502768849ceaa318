//! CRM properties v3 for companies (tests/contracts/hubspot/
//! properties.v3.json): the portal's property definitions and groups, read
//! and created by `hubwarp setup` and checked by `hubwarp doctor`, and what
//! HubSpot says of the token itself (its scopes).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::transport::Kind;
use super::{HubspotClient, HubspotError};

const PROPERTIES: &str = "/crm/v3/properties/companies";
const GROUPS: &str = "/crm/v3/properties/companies/groups";
/// Private-app tokens describe themselves here (HubSpot's private apps
/// guide); OAuth access tokens at `/oauth/v1/access-tokens/{token}`.
const PRIVATE_APP_TOKEN_INFO: &str = "/oauth/v2/private-apps/get/access-token-info";

/// A property definition: `Property` when read, `PropertyCreate` when sent
/// (the read-only fields are left out of what is sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    /// `string`, `number`, `bool`, `date`, `datetime`, `enumeration`, ...
    #[serde(rename = "type")]
    pub value_type: String,
    /// `text`, `number`, `booleancheckbox`, `date`, `select`, `checkbox`, ...
    pub field_type: String,
    pub group_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    /// HubSpot's own properties (`name`, `city`, ...); never sent.
    #[serde(default, skip_serializing)]
    pub hubspot_defined: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub display_order: i32,
    #[serde(default)]
    pub hidden: bool,
}

impl PropertyOption {
    /// An option whose label is its value (WARP's codes read well as they are).
    pub fn plain(value: &str, display_order: i32) -> Self {
        Self {
            label: value.to_string(),
            value: value.to_string(),
            display_order,
            hidden: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyGroup {
    pub name: String,
    pub label: String,
    #[serde(default)]
    pub display_order: i32,
}

/// What HubSpot says of the token: the portal it belongs to and its scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenInfo {
    pub hub_id: Option<u64>,
    pub scopes: Vec<String>,
}

#[derive(Deserialize)]
struct Results<T> {
    results: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrivateAppToken {
    #[serde(default)]
    hub_id: Option<u64>,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
struct OauthToken {
    #[serde(default)]
    hub_id: Option<u64>,
    #[serde(default)]
    scopes: Vec<String>,
}

impl HubspotClient {
    /// `GET /crm/v3/properties/companies`: every company property the
    /// portal defines (HubSpot's and custom; archived ones left out).
    pub async fn company_properties(&self) -> Result<Vec<PropertyDef>, HubspotError> {
        self.schema_list(PROPERTIES).await
    }

    /// `GET /crm/v3/properties/companies/groups`.
    pub async fn company_property_groups(&self) -> Result<Vec<PropertyGroup>, HubspotError> {
        self.schema_list(GROUPS).await
    }

    /// A properties-API collection (`{"results": [...]}`, no paging).
    async fn schema_list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, HubspotError> {
        let url = self.url(path)?;
        let answer = self
            .send(Kind::Schema, || self.http.get(url.clone()))
            .await?;
        if answer.status.as_u16() != 200 {
            return Err(answer.rejected());
        }
        Ok(answer.json::<Results<T>>()?.results)
    }

    /// One definition created (`201`): a group or a property.
    async fn schema_create<B: Serialize>(&self, path: &str, body: &B) -> Result<(), HubspotError> {
        let url = self.url(path)?;
        let answer = self
            .send(Kind::Schema, || self.http.post(url.clone()).json(body))
            .await?;
        match answer.status.as_u16() {
            200 | 201 => Ok(()),
            _ => Err(answer.rejected()),
        }
    }

    /// `POST /crm/v3/properties/companies/groups` (201).
    pub async fn create_property_group(&self, group: &PropertyGroup) -> Result<(), HubspotError> {
        self.schema_create(GROUPS, group).await
    }

    /// `POST /crm/v3/properties/companies` (201): one property. Setup
    /// creates a handful, one call each, so a refusal names its property.
    pub async fn create_property(&self, property: &PropertyDef) -> Result<(), HubspotError> {
        self.schema_create(PROPERTIES, property).await
    }

    /// The token's scopes: a private app's token describes itself at
    /// `POST /oauth/v2/private-apps/get/access-token-info`; any other
    /// token (OAuth) at `GET /oauth/v1/access-tokens/{token}`.
    pub async fn token_info(&self) -> Result<TokenInfo, HubspotError> {
        let secret = self.token.expose().to_string();
        let url = self.url(PRIVATE_APP_TOKEN_INFO)?;
        let body = json!({ "tokenKey": secret });
        // A token that is not a private app's is refused here (401, 400 or
        // 404 as HubSpot sees fit); only both refusals mean a bad token.
        let refused_as_private_app = match self
            .send(Kind::TokenInfo, || self.http.post(url.clone()).json(&body))
            .await
        {
            Ok(answer) if answer.status.as_u16() == 200 => {
                let info: PrivateAppToken = answer.json()?;
                return Ok(TokenInfo {
                    hub_id: info.hub_id,
                    scopes: info.scopes,
                });
            }
            Ok(_) | Err(HubspotError::Unauthorized(_)) => true,
            Err(e) => return Err(e),
        };
        let mut url = self.url("/oauth/v1/access-tokens")?;
        url.path_segments_mut()
            .map_err(|()| HubspotError::Malformed("base URL cannot take a path".into()))?
            .push(&secret);
        let answer = match self
            .send(Kind::TokenInfo, || self.http.get(url.clone()))
            .await
        {
            Err(HubspotError::Unauthorized(_)) if refused_as_private_app => {
                return Err(HubspotError::Unauthorized(401));
            }
            other => other?,
        };
        match answer.status.as_u16() {
            200 => {
                let info: OauthToken = answer.json()?;
                Ok(TokenInfo {
                    hub_id: info.hub_id,
                    scopes: info.scopes,
                })
            }
            // Neither kind of token HubSpot knows.
            400 | 404 => Err(HubspotError::Unauthorized(401)),
            _ => Err(answer.rejected()),
        }
    }
}
