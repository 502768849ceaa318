//! Everything HubSpot: webhook signatures and webhook payloads (the CRM
//! client joins them with the consumer and the reconciler).

pub mod crm;
pub mod rate;
pub mod signature;
pub mod webhook;
