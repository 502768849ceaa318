use hubwarp::metrics::Metrics;
use hubwarp::settings::Env;
use lambda_runtime::{Error, service_fn};
use sync_consumer::{AwsConsumer, Config, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let (consumer, sqs, metrics) = match start().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "sync-consumer cannot start");
            return Err(e.into());
        }
    };
    let (consumer, sqs, metrics) = (&consumer, &sqs, &metrics);
    lambda_runtime::run(service_fn(|event| async move {
        let answer = sync_consumer::handle_holding(consumer, Some(sqs), event).await;
        metrics.flush();
        answer
    }))
    .await
}

async fn start() -> Result<(AwsConsumer, aws_sdk_sqs::Client, Metrics), StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    let aws = hubwarp::aws::load(
        &env,
        std::time::Duration::from_secs(5),
        hubwarp::aws::Caller::SyncConsumer,
    )
    .await;
    let consumer = sync_consumer::build(&config, &aws).await?;
    let metrics = Metrics::install(&config.metrics_namespace, "sync-consumer")
        .map_err(StartupError::Metrics)?;
    Ok((consumer, hubwarp::aws::sqs(&aws), metrics))
}
