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
