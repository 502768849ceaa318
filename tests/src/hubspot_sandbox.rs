//! HubSpot sandbox (being written).
