//! The phases of a run, one file each, in the order a run takes them.

mod companies;
mod customers;
mod finish;
mod index;
mod sweep;

pub(super) use index::IndexPages;
pub(super) use sweep::sweep_step;
