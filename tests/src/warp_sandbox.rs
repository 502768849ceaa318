//! WARP sandbox (being written).
