//! The Kubernetes executor: each unit runs as one Pod.

pub mod cluster;
pub mod executor;
pub mod manifest;
pub mod podplan;
pub mod pods;
pub mod protocol;
pub mod runner;
pub mod status;
