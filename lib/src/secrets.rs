//! Secrets given either directly in a setting (local runs) or as a Secrets
//! Manager ARN (AWS), read once per cold start.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::settings::{Env, SettingError};

/// Where a secret comes from.
#[derive(Clone)]
pub enum SecretSource {
    Inline { setting: String, value: String },
    SecretsManager { setting: String, arn: String },
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline { setting, .. } => write!(f, "Inline({setting}=[redacted])"),
            Self::SecretsManager { setting, arn } => write!(f, "SecretsManager({setting}={arn})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the secret named by {setting} from Secrets Manager failed: {message}")]
    Fetch { setting: String, message: String },
    #[error("the secret named by {setting} has no SecretString")]
    Empty { setting: String },
}

impl SecretSource {
    /// Reads `<name>` or `<name>_ARN`: exactly one must be set.
    pub fn from_env(env: &Env, name: &str) -> Result<Self, SettingError> {
        let arn_name = format!("{name}_ARN");
        match (env.optional(name), env.optional(&arn_name)) {
            (Some(_), Some(_)) => Err(SettingError::Conflict {
                first: name.to_string(),
                second: arn_name,
            }),
            (Some(value), None) => Ok(Self::Inline {
                setting: name.to_string(),
                value: value.to_string(),
            }),
            (None, Some(arn)) => {
                if !arn.starts_with("arn:") {
                    return Err(SettingError::malformed(
                        &arn_name,
                        "must be a Secrets Manager ARN",
                    ));
                }
                Ok(Self::SecretsManager {
                    setting: arn_name,
                    arn: arn.to_string(),
                })
            }
            (None, None) => Err(SettingError::Missing {
                name: format!("{name} (or {arn_name})"),
            }),
        }
    }

    pub fn setting(&self) -> &str {
        match self {
            Self::Inline { setting, .. } | Self::SecretsManager { setting, .. } => setting,
        }
    }

    pub async fn resolve(&self, config: &SdkConfig) -> Result<String, SecretError> {
        match self {
            Self::Inline { value, .. } => Ok(value.clone()),
            Self::SecretsManager { setting, arn } => {
                let client = aws_sdk_secretsmanager::Client::new(config);
                let out = client
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await
                    .map_err(|e| SecretError::Fetch {
                        setting: setting.clone(),
                        message: DisplayErrorContext(&e).to_string(),
                    })?;
                out.secret_string
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| SecretError::Empty {
                        setting: setting.clone(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source() {
        let both = Env::from_pairs([("S", "x"), ("S_ARN", "arn:aws:secretsmanager:r:1:secret:s")]);
        assert!(matches!(
            SecretSource::from_env(&both, "S"),
            Err(SettingError::Conflict { .. })
        ));
        let none = Env::from_pairs([]);
        let e = SecretSource::from_env(&none, "S").unwrap_err().to_string();
        assert_eq!(e, "setting S (or S_ARN) is required but not set");
        let bad = Env::from_pairs([("S_ARN", "not-an-arn")]);
        assert!(
            SecretSource::from_env(&bad, "S")
                .unwrap_err()
                .to_string()
                .contains("S_ARN")
        );
        let inline = SecretSource::from_env(&Env::from_pairs([("S", "hunter2")]), "S").unwrap();
        assert!(!format!("{inline:?}").contains("hunter2"));
    }
}
