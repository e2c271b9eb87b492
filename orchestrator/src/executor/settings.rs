//! The Kubernetes settings of a unit's pod and of a step's container, carried through the plan
//! for backends that have pods. The local executor ignores them.
//!
//! Values Kubernetes defines a schema for (security contexts, affinity, tolerations) are kept as
//! the workflow wrote them and checked against the Kubernetes API types when a pod is built, so
//! that an error names the workflow field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `spec.pod` and `spec.job` of a workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSettings {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A step's container settings beyond its command, working directory and plain environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// `env` entries with `valueFrom` (Secrets, ConfigMaps, field references), as written.
    pub env_value_from: Vec<(String, Value)>,
}
