//! Why a function could not start: every variant names the setting or the
//! dependency at fault, and `main` logs it and fails the cold start.

use crate::secrets::SecretError;
use crate::settings::SettingError;

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
