//! The Kubernetes executor: each unit runs as one Pod.

pub mod podplan;
pub mod protocol;
pub mod runner;
