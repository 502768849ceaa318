use aws_lambda_events::event::sqs::SqsEvent;
use hubwarp::metrics::Metrics;
use hubwarp::settings::Env;
use hubwarp::sync::backoff::Backoff;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sync_consumer::{AwsConsumer, Config, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let (consumer, retry, sqs, metrics) = match start().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "sync-consumer cannot start");
            return Err(e.into());
        }
    };
    let (consumer, retry, sqs, metrics) = (&consumer, &retry, &sqs, &metrics);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        let receipts = sync_consumer::Receipt::of(&event.payload);
        let handled = sync_consumer::handle_batch(consumer, retry, event).await;
        sync_consumer::hide(sqs, &receipts, &handled.hide).await;
        metrics.flush();
        Ok::<_, Error>(handled.response)
    }))
    .await
}

async fn start() -> Result<(AwsConsumer, Backoff, aws_sdk_sqs::Client, Metrics), StartupError> {
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
    Ok((consumer, config.retry, hubwarp::aws::sqs(&aws), metrics))
}
