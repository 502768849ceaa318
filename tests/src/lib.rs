//! Test support for the workspace: a moto server on loopback, the AWS
//! resources the functions use (same names and keys as the SAM template),
//! and request fixtures. Never shipped.

pub mod fixtures;
pub mod hubspot_sandbox;
pub mod local;
pub mod moto;
pub mod resources;
pub mod warp_sandbox;

/// The workspace root, for finding `.venv`, `events/` and `infra/`.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}
