//! JSON log lines for CloudWatch, one object per line.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. The level comes from `RUST_LOG`, else from
/// Lambda's own `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .and_then(|f| EnvFilter::try_new(f.to_ascii_lowercase()).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
