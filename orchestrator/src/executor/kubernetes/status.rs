//! Reading a pod's status: where each container is, and the failures a user must understand, in
//! plain words.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Where one container of a pod is.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    /// No status yet (the pod is not scheduled, or the kubelet has not reported it).
    Unknown,
    Waiting {
        reason: String,
        message: String,
    },
    Running,
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
    },
}

impl ContainerState {
    /// Whether the container has started (its log can be read).
    pub fn started(&self) -> bool {
        matches!(self, Self::Running | Self::Terminated { .. })
    }
}

/// The state of the container named `name` (init or regular).
pub fn container_state(pod: &Pod, name: &str) -> ContainerState {
    let Some(status) = pod.status.as_ref() else {
        return ContainerState::Unknown;
    };
    let found = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find(|container| container.name == name);
    match found {
        Some(container) => state_of(container),
        None => ContainerState::Unknown,
    }
}

fn state_of(container: &ContainerStatus) -> ContainerState {
    let Some(state) = container.state.as_ref() else {
        return ContainerState::Unknown;
    };
    if let Some(terminated) = &state.terminated {
        return ContainerState::Terminated {
            exit_code: terminated.exit_code,
            reason: terminated.reason.clone().unwrap_or_default(),
            message: terminated.message.clone().unwrap_or_default(),
        };
    }
    if state.running.is_some() {
        return ContainerState::Running;
    }
    match &state.waiting {
        Some(waiting) => ContainerState::Waiting {
            reason: waiting.reason.clone().unwrap_or_default(),
            message: waiting.message.clone().unwrap_or_default(),
        },
        None => ContainerState::Unknown,
    }
}

/// Waiting reasons that will not resolve by waiting longer: the kubelet keeps retrying, but a
/// user has to change something first.
pub fn stuck_reason(pod: &Pod, container: &str, image: &str) -> Option<String> {
    let ContainerState::Waiting { reason, message } = container_state(pod, container) else {
        return None;
    };
    let detail = |text: &str| {
        if message.is_empty() {
            text.to_owned()
        } else {
            format!("{text}: {message}")
        }
    };
    match reason.as_str() {
        "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" => Some(detail(&format!(
            "image pull failed: cannot pull image \"{image}\""
        ))),
        "InvalidImageName" => Some(detail(&format!(
            "image pull failed: \"{image}\" is not a valid image name"
        ))),
        "CreateContainerConfigError" => Some(detail("container configuration error")),
        "CreateContainerError" | "RunContainerError" | "StartError" => {
            Some(detail("the container could not be created"))
        }
        _ => None,
    }
}

/// The scheduler's reason, while the pod cannot be placed on a node.
pub fn unschedulable(pod: &Pod) -> Option<String> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|condition| condition.type_ == "PodScheduled")?;
    (condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable")).then(
        || {
            format!(
                "unschedulable: {}",
                condition
                    .message
                    .as_deref()
                    .unwrap_or("no node can run the pod")
            )
        },
    )
}

/// How a pod ended, once its phase is terminal.
#[derive(Debug, Clone, PartialEq)]
pub enum PodEnd {
    Succeeded,
    Failed {
        /// `Evicted`, `DeadlineExceeded`, or empty when a container failed.
        reason: String,
        message: String,
    },
}

pub fn pod_end(pod: &Pod) -> Option<PodEnd> {
    let status = pod.status.as_ref()?;
    match status.phase.as_deref()? {
        "Succeeded" => Some(PodEnd::Succeeded),
        "Failed" => Some(PodEnd::Failed {
            reason: status.reason.clone().unwrap_or_default(),
            message: status.message.clone().unwrap_or_default(),
        }),
        _ => None,
    }
}

/// Why a container stopped before its runner finished, in plain words. `memory_limit` is the
/// container's limit, for the OOM message.
pub fn killed_reason(
    pod: &Pod,
    container: &str,
    memory_limit: Option<&str>,
    deadline_seconds: Option<i64>,
) -> String {
    if let Some(PodEnd::Failed { reason, message }) = pod_end(pod) {
        match reason.as_str() {
            "Evicted" => {
                return if message.is_empty() {
                    "evicted: the node reclaimed the pod's resources".to_owned()
                } else {
                    format!("evicted: {message}")
                };
            }
            "DeadlineExceeded" => {
                return match deadline_seconds {
                    Some(seconds) => format!(
                        "deadline exceeded: the pod ran longer than job.activeDeadlineSeconds ({seconds}s)"
                    ),
                    None => "deadline exceeded: the pod ran longer than its deadline".to_owned(),
                };
            }
            _ => {}
        }
    }
    match container_state(pod, container) {
        ContainerState::Terminated {
            reason, exit_code, ..
        } if reason == "OOMKilled" => match memory_limit {
            Some(limit) => {
                format!(
                    "OOMKilled: the container ran out of memory (limit {limit}); exit code {exit_code}"
                )
            }
            None => format!("OOMKilled: the container ran out of memory; exit code {exit_code}"),
        },
        ContainerState::Terminated {
            exit_code,
            reason,
            message,
        } => {
            let mut text = format!("the container stopped (exit code {exit_code}");
            if !reason.is_empty() {
                text.push_str(&format!(", {reason}"));
            }
            text.push(')');
            if !message.is_empty() {
                text.push_str(&format!(": {message}"));
            }
            text
        }
        _ => "the container stopped before its steps finished".to_owned(),
    }
}

/// Whether the pod is `DeadlineExceeded`.
pub fn deadline_exceeded(pod: &Pod) -> bool {
    matches!(pod_end(pod), Some(PodEnd::Failed { reason, .. }) if reason == "DeadlineExceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "step-1"}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn image_pull_failures_name_the_image_and_keep_the_kubelets_words() {
        let pod = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "step-1", "image": "nope:1", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope:1\""}}}],
        }));
        assert_eq!(
            stuck_reason(&pod, "step-1", "nope:1").unwrap(),
            "image pull failed: cannot pull image \"nope:1\": Back-off pulling image \"nope:1\""
        );
        assert_eq!(stuck_reason(&pod, "other", "nope:1"), None);
    }

    #[test]
    fn a_container_waiting_to_start_is_not_stuck() {
        let pod = pod(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "step-1", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}],
        }));
        assert_eq!(stuck_reason(&pod, "step-1", "x"), None);
        assert!(!container_state(&pod, "step-1").started());
    }

    #[test]
    fn unschedulable_carries_the_schedulers_reason() {
        let pod = pod(serde_json::json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu."}],
        }));
        assert_eq!(
            unschedulable(&pod).unwrap(),
            "unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
        );
    }

    #[test]
    fn killed_containers_are_explained() {
        let oom = pod(serde_json::json!({
            "phase": "Failed",
            "containerStatuses": [{"name": "step-1", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
        }));
        assert_eq!(
            killed_reason(&oom, "step-1", Some("64Mi"), None),
            "OOMKilled: the container ran out of memory (limit 64Mi); exit code 137"
        );
        let evicted = pod(serde_json::json!({
            "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory.",
        }));
        assert_eq!(
            killed_reason(&evicted, "step-1", None, None),
            "evicted: The node was low on resource: memory."
        );
        let late = pod(serde_json::json!({"phase": "Failed", "reason": "DeadlineExceeded"}));
        assert!(deadline_exceeded(&late));
        assert_eq!(
            killed_reason(&late, "step-1", None, Some(30)),
            "deadline exceeded: the pod ran longer than job.activeDeadlineSeconds (30s)"
        );
    }
}
