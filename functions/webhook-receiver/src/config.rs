//! The receiver's settings, read once per cold start.

use hubwarp::hubspot::signature::SignatureVersion;
use hubwarp::secrets::SecretSource;
use hubwarp::settings::{Env, SettingError};

/// Largest body Lambda can hand a function (6 MB synchronous payload).
const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB table that records every event (`WEBHOOK_EVENTS_TABLE`).
    pub events_table: String,
    /// SQS queue the consumer reads (`SYNC_QUEUE_URL`).
    pub sync_queue_url: String,
    /// HubSpot app client secret, or two separated by a comma during a
    /// rotation (`HUBSPOT_CLIENT_SECRET`, or `HUBSPOT_CLIENT_SECRET_ARN` for a
    /// Secrets Manager secret holding the same text).
    pub client_secret: SecretSource,
    /// Oldest signature scheme accepted (`HUBSPOT_SIGNATURE_MIN_VERSION`:
    /// v1, v2 or v3; default v3). v1 and v2 sign no time, so a captured
    /// delivery verifies for ever: they are an opt-in for apps that send no
    /// v3 (docs/design.md, "The receiver's contract", "Replays").
    pub min_signature_version: SignatureVersion,
    /// The URL configured in HubSpot, when the host or path HubSpot called
    /// differs from what the function sees (`WEBHOOK_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// Largest body accepted before answering 413 (`MAX_BODY_BYTES`,
    /// default 1 MiB).
    pub max_body_bytes: usize,
    /// Days an event record is kept for dedup (`EVENT_RETENTION_DAYS`,
    /// default 30; HubSpot retries for up to a day).
    pub event_retention_days: u64,
    /// CloudWatch namespace of the EMF metrics (`METRICS_NAMESPACE`,
    /// default HubSpotWarp/hubspot-warp).
    pub metrics_namespace: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        Ok(Self {
            events_table: env.required("WEBHOOK_EVENTS_TABLE")?.to_string(),
            sync_queue_url: {
                let url = env.required("SYNC_QUEUE_URL")?;
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(SettingError::malformed(
                        "SYNC_QUEUE_URL",
                        "must be an SQS queue URL",
                    ));
                }
                url.to_string()
            },
            client_secret: SecretSource::from_env(env, "HUBSPOT_CLIENT_SECRET")?,
            min_signature_version: env
                .parse_or("HUBSPOT_SIGNATURE_MIN_VERSION", SignatureVersion::V3)?,
            public_url: env.optional_url("WEBHOOK_PUBLIC_URL")?,
            max_body_bytes: env.parse_in_range(
                "MAX_BODY_BYTES",
                1024 * 1024,
                1024..=LAMBDA_PAYLOAD_LIMIT,
            )?,
            event_retention_days: env.parse_in_range("EVENT_RETENTION_DAYS", 30, 2..=365)?,
            metrics_namespace: hubwarp::metrics::namespace(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 3] = [
        ("WEBHOOK_EVENTS_TABLE", "events"),
        ("SYNC_QUEUE_URL", "http://127.0.0.1:5000/123456789012/sync"),
        ("HUBSPOT_CLIENT_SECRET", "s3cret"),
    ];

    fn with(extra: &[(&'static str, &'static str)], without: &str) -> Result<Config, SettingError> {
        Config::from_env(&Env::varied(&BASE, extra, without))
    }

    #[test]
    fn defaults() {
        let c = with(&[], "").unwrap();
        assert_eq!(c.min_signature_version, SignatureVersion::V3);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert_eq!(c.event_retention_days, 30);
        assert_eq!(c.public_url, None);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn each_error_names_its_setting() {
        for (missing, _) in BASE {
            let e = with(&[], missing).unwrap_err().to_string();
            assert!(e.contains(missing), "{e}");
        }
        for (name, bad) in [
            ("HUBSPOT_SIGNATURE_MIN_VERSION", "v4"),
            ("WEBHOOK_PUBLIC_URL", "ftp://x"),
            ("MAX_BODY_BYTES", "lots"),
            ("MAX_BODY_BYTES", "99999999999"),
            ("EVENT_RETENTION_DAYS", "0"),
            ("SYNC_QUEUE_URL", "sync"),
        ] {
            let e = with(
                &[(name, bad)],
                if name == "SYNC_QUEUE_URL" { name } else { "" },
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
        let e = with(
            &[(
                "HUBSPOT_CLIENT_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            )],
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("HUBSPOT_CLIENT_SECRET_ARN"), "{e}");
    }

    #[test]
    fn v3_only_unless_older_schemes_are_asked_for() {
        assert_eq!(
            with(&[], "").unwrap().min_signature_version,
            SignatureVersion::V3
        );
        let c = with(&[("HUBSPOT_SIGNATURE_MIN_VERSION", "V3")], "").unwrap();
        assert_eq!(c.min_signature_version, SignatureVersion::V3);
        let c = with(&[("HUBSPOT_SIGNATURE_MIN_VERSION", "v1")], "").unwrap();
        assert_eq!(c.min_signature_version, SignatureVersion::V1);
    }
}
