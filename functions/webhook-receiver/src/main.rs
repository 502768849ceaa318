use hubwarp::settings::Env;
use lambda_http::{Error, service_fn};
use webhook_receiver::{AwsReceiver, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let receiver = match start().await {
        Ok(r) => r,
        Err(e) => {
            // Fail the cold start at once, naming the setting at fault.
            tracing::error!(error = %e, "webhook-receiver cannot start");
            return Err(e.into());
        }
    };
    lambda_http::run(service_fn(|req| receiver.handle(req))).await
}

async fn start() -> Result<AwsReceiver, webhook_receiver::StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    // HubSpot waits 5 s for an answer: no single AWS call may take most of it.
    let aws = hubwarp::aws::load(&env, std::time::Duration::from_millis(2_000)).await;
    AwsReceiver::from_config(&config, &aws).await
}
