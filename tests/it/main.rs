//! Integration tests: the real aws-sdk clients against a moto server on
//! loopback. One binary, one shared moto server, a resource prefix per test.

mod binary;
mod consumer;
mod day_one;
mod email;
mod emf;
mod fixtures_in_events;
mod hubspot_client;
mod hubspot_contract;
mod operate;
mod receiver;
mod reconciler;
mod review;
mod sandboxes;
mod sdk_crosscheck;
mod secrets;
mod sync_store;
mod template;
mod utils;
mod warp_client;
