//! The phases of a run, one file each, in the order a run takes them.

mod companies;
mod customers;
mod feeds;
mod finish;
mod index;
mod sweep;

pub(super) use feeds::{Feeds, IndexPages};
pub(super) use sweep::sweep_step;
