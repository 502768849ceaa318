use hubwarp::settings::Env;
use lambda_runtime::{Error, service_fn};
use sync_consumer::{AwsConsumer, Config, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let (consumer, sqs) = match start().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "sync-consumer cannot start");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(|event| {
        sync_consumer::handle_holding(&consumer, Some(&sqs), event)
    }))
    .await
}

async fn start() -> Result<(AwsConsumer, aws_sdk_sqs::Client), StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    let aws = hubwarp::aws::load(&env, std::time::Duration::from_secs(5)).await;
    Ok((
        sync_consumer::build(&config, &aws).await?,
        hubwarp::aws::sqs(&aws),
    ))
}
