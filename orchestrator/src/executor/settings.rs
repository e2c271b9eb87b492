//! The Kubernetes settings of a unit's pod and of a step's container, carried through the plan
//! for backends that have pods. The local executor ignores them.
//!
//! Values Kubernetes defines a schema for (security contexts, affinity, tolerations) are kept as
//! the workflow wrote them and checked against the Kubernetes API types when the pod is built
//! (see [`super::kubernetes::manifest`]), so that an error names the workflow field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::model::{PodConfig, Resources};

/// `spec.pod` and `spec.job` of a workflow, and its name (a label of its pods).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSettings {
    pub workflow: String,
    /// `spec.pod` as written, labels and annotations of `spec.job` merged in (the pod's win).
    pub pod: PodConfig,
}

/// A step's container settings beyond its command, working directory and plain environment,
/// inherited from `spec.container` through enclosing steps to `run`, the nearest winning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSettings {
    pub image_pull_policy: Option<String>,
    pub resources: Option<Resources>,
    pub security_context: Option<Value>,
    /// `env` entries with `valueFrom` (Secrets, ConfigMaps, field references), as written: the
    /// kubelet resolves them, so a secret never passes through testloop.
    pub env_value_from: Vec<(String, Value)>,
    /// `envFrom` entries, as written.
    pub env_from: Vec<Value>,
}
