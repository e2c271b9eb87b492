//! The Kubernetes executor: each unit runs as one Pod.

pub mod podplan;
