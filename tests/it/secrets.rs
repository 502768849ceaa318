//! In AWS the client secret comes from Secrets Manager, read once at cold
//! start; a rotation holds "new,old" and either signature verifies.

use hubwarp::aws::Caller;
use hubwarp::hubspot::signature::SignatureVersion;
use hubwarp::secrets::SecretSource;
use integration_tests::fixtures::{self, LOCAL_SECRET, Signing};
use integration_tests::moto::MotoServer;
use integration_tests::resources::{self, Names};
use lambda_http::http::StatusCode;
use webhook_receiver::{AwsReceiver, Config};

use crate::utils::{HOST, Harness};

#[tokio::test]
async fn the_client_secret_is_read_from_secrets_manager_and_rotation_accepts_both() {
    let aws = MotoServer::shared().sdk_config().await;
    let names = Names::unique("secret");
    let res = resources::ensure(&aws, &names).await.unwrap();
    let arn = aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        // The template's name (HubSpotClientSecret): the receiver's role may
        // read only that secret, which `make iam-check` holds these calls to.
        .name(format!("{}/hubspot-client-secret", names.prefix))
        .secret_string(format!("brand-new-secret, {LOCAL_SECRET}"))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let config = Config {
        metrics_namespace: hubwarp::metrics::DEFAULT_NAMESPACE.into(),
        events_table: names.events_table(),
        sync_queue_url: res.sync_queue_url.clone(),
        client_secret: SecretSource::SecretsManager {
            setting: "HUBSPOT_CLIENT_SECRET_ARN".into(),
            arn,
        },
        min_signature_version: SignatureVersion::V1,
        public_url: None,
        max_body_bytes: 1024 * 1024,
        event_retention_days: 30,
    };
    let receiver = AwsReceiver::from_config(&config, &Caller::WebhookReceiver.tag(&aws))
        .await
        .unwrap();

    for (i, secret) in ["brand-new-secret", LOCAL_SECRET].into_iter().enumerate() {
        let body = fixtures::property_changes(1, i);
        let mut event = fixtures::function_url_event(HOST, "/", "", &body);
        fixtures::sign_event(
            &mut event,
            secret,
            Signing::V3(hubwarp::time::now_ms()),
            None,
        );
        let (status, answer) = Harness::deliver_with(&receiver, &event).await;
        assert_eq!(status, StatusCode::OK, "{secret}: {answer}");
    }
    let mut event = fixtures::function_url_event(HOST, "/", "", &fixtures::property_changes(1, 9));
    fixtures::sign_event(&mut event, "retired-secret", Signing::V1, None);
    assert_eq!(
        Harness::deliver_with(&receiver, &event).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_missing_secret_fails_the_start_naming_the_setting() {
    let aws = MotoServer::shared().sdk_config().await;
    let names = Names::unique("nosecret");
    let config = Config {
        metrics_namespace: hubwarp::metrics::DEFAULT_NAMESPACE.into(),
        events_table: names.events_table(),
        sync_queue_url: "http://127.0.0.1:1/123/q".into(),
        client_secret: SecretSource::SecretsManager {
            setting: "HUBSPOT_CLIENT_SECRET_ARN".into(),
            // Absent, under the name the receiver's role may read: with any
            // other name IAM would refuse the call before it found nothing.
            arn: format!(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}/hubspot-client-secret-AbCdEf",
                names.prefix
            ),
        },
        min_signature_version: SignatureVersion::V1,
        public_url: None,
        max_body_bytes: 1024,
        event_retention_days: 30,
    };
    let err = AwsReceiver::from_config(&config, &Caller::WebhookReceiver.tag(&aws))
        .await
        .err()
        .expect("start fails");
    assert!(
        err.to_string().contains("HUBSPOT_CLIENT_SECRET_ARN"),
        "{err}"
    );
}
