//! Why a function could not start: every variant names the setting or the
//! dependency at fault, and `main` logs it and fails the cold start.

use std::time::Duration;

use crate::hubspot::crm::HubspotClient;
use crate::secrets::{SecretError, SecretSource};
use crate::settings::{Env, SettingError};
use crate::warp::WarpClient;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("metrics: {0}")]
    Metrics(String),
}

/// Where WARP and HubSpot are, how to authenticate, and how long one call
/// may take: read the same way by the consumer, the reconciler and
/// `hubwarp`, and the clients built from them once per cold start.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `WARP_API_URL` (https unless loopback: the token travels with it).
    pub warp_url: String,
    /// `WARP_API_TOKEN`, or `WARP_API_TOKEN_ARN`.
    pub warp_token: SecretSource,
    /// `HUBSPOT_API_URL`, default https://api.hubapi.com.
    pub hubspot_url: String,
    /// `HUBSPOT_ACCESS_TOKEN`, or `HUBSPOT_ACCESS_TOKEN_ARN`.
    pub hubspot_token: SecretSource,
    /// `HTTP_TIMEOUT_MS`: one call's budget, retries included.
    pub timeout: Duration,
}

pub const HUBSPOT_API_URL: &str = "https://api.hubapi.com";

impl ApiSettings {
    /// Both APIs' settings; `default_timeout_ms` is the function's own.
    pub fn from_env(env: &Env, default_timeout_ms: u64) -> Result<Self, SettingError> {
        let (warp_url, warp_token) = Self::warp_from_env(env)?;
        let (hubspot_url, hubspot_token) = Self::hubspot_from_env(env)?;
        Ok(Self {
            warp_url,
            warp_token,
            hubspot_url,
            hubspot_token,
            timeout: Self::timeout_from_env(env, default_timeout_ms)?,
        })
    }

    /// WARP's URL and token alone (a command that needs only WARP).
    pub fn warp_from_env(env: &Env) -> Result<(String, SecretSource), SettingError> {
        Ok((
            env.required_api_url("WARP_API_URL")?,
            SecretSource::from_env(env, "WARP_API_TOKEN")?,
        ))
    }

    /// HubSpot's URL and token alone.
    pub fn hubspot_from_env(env: &Env) -> Result<(String, SecretSource), SettingError> {
        Ok((
            env.optional_api_url("HUBSPOT_API_URL")?
                .unwrap_or_else(|| HUBSPOT_API_URL.into()),
            SecretSource::from_env(env, "HUBSPOT_ACCESS_TOKEN")?,
        ))
    }

    pub fn timeout_from_env(env: &Env, default_ms: u64) -> Result<Duration, SettingError> {
        Ok(Duration::from_millis(env.parse_in_range(
            "HTTP_TIMEOUT_MS",
            default_ms,
            100..=60_000,
        )?))
    }

    /// WARP's client, its token read from where the settings say.
    pub async fn warp_client(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Result<WarpClient, StartupError> {
        warp_client(aws, &self.warp_url, &self.warp_token, self.timeout).await
    }

    /// HubSpot's client, as [`ApiSettings::warp_client`] builds WARP's.
    pub async fn hubspot_client(
        &self,
        aws: &aws_config::SdkConfig,
    ) -> Result<HubspotClient, StartupError> {
        hubspot_client(aws, &self.hubspot_url, &self.hubspot_token, self.timeout).await
    }
}

/// WARP's client, its token read from where the settings say (once per
/// cold start): the consumer, the reconciler and `hubwarp` build it alike.
pub async fn warp_client(
    aws: &aws_config::SdkConfig,
    url: &str,
    token: &crate::secrets::SecretSource,
    timeout: std::time::Duration,
) -> Result<crate::warp::WarpClient, StartupError> {
    let token = crate::http::Token::new(token.resolve(aws).await?);
    crate::warp::WarpClient::new(url, token, timeout, crate::http::RetryPolicy::default())
        .map_err(|e| StartupError::Http(e.to_string()))
}

/// HubSpot's client, as [`warp_client`] builds WARP's.
pub async fn hubspot_client(
    aws: &aws_config::SdkConfig,
    url: &str,
    token: &crate::secrets::SecretSource,
    timeout: std::time::Duration,
) -> Result<crate::hubspot::crm::HubspotClient, StartupError> {
    let token = crate::http::Token::new(token.resolve(aws).await?);
    crate::hubspot::crm::HubspotClient::new(
        url,
        token,
        timeout,
        crate::http::RetryPolicy::default(),
    )
    .map_err(|e| StartupError::Http(e.to_string()))
}
