use hubwarp::settings::Env;
use lambda_runtime::{Error, service_fn};
use nightly_reconciler::{Config, Function, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let function = match start().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "nightly-reconciler cannot start");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(|event| {
        nightly_reconciler::handle(&function, event)
    }))
    .await
}

async fn start() -> Result<Function, StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    let aws = hubwarp::aws::load(&env, std::time::Duration::from_secs(10)).await;
    nightly_reconciler::build(&config, &aws).await
}
