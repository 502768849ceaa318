//! Domain and adapters of the HubSpot <-> WARP bridge.
//!
//! Pure domain code (signatures, payloads, intake rules) sits apart from the
//! adapters that talk to AWS; the functions under `functions/` only wire
//! these together.

pub mod aws;
pub mod error;
pub mod http;
pub mod hubspot;
pub mod intake;
pub mod mapping;
pub mod metrics;
pub mod operate;
pub mod queue;
pub mod reconcile;
pub mod review;
pub mod secrets;
pub mod settings;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod time;
pub mod warp;
