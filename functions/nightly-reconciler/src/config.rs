//! The reconciler's settings: they live in the library, where
//! `hubwarp reconcile --local` reads the same ones.

pub use hubwarp::reconcile::config::Config;
