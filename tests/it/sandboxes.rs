//! Sandbox contract tests (being written).
