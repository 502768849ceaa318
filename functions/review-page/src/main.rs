use hubwarp::metrics::Metrics;
use hubwarp::settings::Env;
use lambda_http::{Error, service_fn};
use review_page::{Config, ReviewPage, StartupError};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hubwarp::telemetry::init();
    let (page, metrics) = match start().await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "review-page cannot start");
            return Err(e.into());
        }
    };
    let (page, metrics) = (&page, &metrics);
    lambda_http::run(service_fn(|req| async move {
        let answer = page.handle(req).await;
        metrics.flush();
        Ok::<_, Error>(answer)
    }))
    .await
}

async fn start() -> Result<(ReviewPage, Metrics), StartupError> {
    let env = Env::from_process()?;
    let config = Config::from_env(&env)?;
    // A person waits for the page: no AWS call may take long.
    let aws = hubwarp::aws::load(
        &env,
        std::time::Duration::from_secs(3),
        hubwarp::aws::Caller::ReviewPage,
    )
    .await;
    let page = ReviewPage::build(&config, &aws).await?;
    let metrics = Metrics::install(&config.metrics_namespace, "review-page")
        .map_err(StartupError::Metrics)?;
    Ok((page, metrics))
}
