use hubwarp::metrics::Metrics;
use hubwarp::settings::Env;
use lambda_http::{Error, service_fn};
use webhook_receiver::{AwsReceiver, Config, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let (receiver, metrics) = match start().await {
        Ok(r) => r,
        Err(e) => {
            // Fail the cold start at once, naming the setting at fault.
            tracing::error!(error = %e, "webhook-receiver cannot start");
            return Err(e.into());
        }
    };
    let (receiver, metrics) = (&receiver, &metrics);
    lambda_http::run(service_fn(|req| async move {
        let answer = receiver.handle(req).await;
        metrics.flush();
        answer
    }))
    .await
}

async fn start() -> Result<(AwsReceiver, Metrics), StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    // HubSpot waits 5 s for an answer: no single AWS call may take most of it.
    let aws = hubwarp::aws::load(
        &env,
        std::time::Duration::from_millis(2_000),
        hubwarp::aws::Caller::WebhookReceiver,
    )
    .await;
    let receiver = AwsReceiver::from_config(&config, &aws).await?;
    let metrics = Metrics::install(&config.metrics_namespace, "webhook-receiver")
        .map_err(StartupError::Metrics)?;
    Ok((receiver, metrics))
}
