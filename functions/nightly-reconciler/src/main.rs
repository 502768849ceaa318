use hubwarp::metrics::Metrics;
use hubwarp::settings::Env;
use lambda_runtime::{Error, service_fn};
use nightly_reconciler::{Config, Function, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let (function, metrics) = match start().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "nightly-reconciler cannot start");
            return Err(e.into());
        }
    };
    let (function, metrics) = (&function, &metrics);
    lambda_runtime::run(service_fn(|event| async move {
        let answer = nightly_reconciler::handle(function, event).await;
        metrics.flush();
        answer
    }))
    .await
}

async fn start() -> Result<(Function, Metrics), StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    let aws = hubwarp::aws::load(
        &env,
        std::time::Duration::from_secs(10),
        hubwarp::aws::Caller::NightlyReconciler,
    )
    .await;
    let function = nightly_reconciler::build(&config, &aws).await?;
    let metrics = Metrics::install(&config.metrics_namespace, "nightly-reconciler")
        .map_err(StartupError::Metrics)?;
    Ok((function, metrics))
}
