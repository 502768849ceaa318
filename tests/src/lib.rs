//! Test support for the workspace: a moto server on loopback, the AWS
//! resources the functions use (same names and keys as the SAM template),
//! and request fixtures. Never shipped.

pub mod fixtures;
pub mod hubspot_sandbox;
pub mod hubspot_setup;
pub mod local;
pub mod model;
pub mod moto;
pub mod resources;
pub mod runtime_api;
pub mod seed;
pub mod slow_stores;
pub mod warp_sandbox;

/// Serves `app` on `addr` on a task of the current runtime; the sandboxes'
/// shared start. Returns the base URL (`http://127.0.0.1:PORT`) and the task.
pub async fn serve(
    addr: std::net::SocketAddr,
    app: axum::Router,
    name: &'static str,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, sandbox = name, "sandbox stopped");
        }
    });
    Ok((base_url, server))
}

/// The workspace root, for finding `.venv`, `events/` and `infra/`.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}
