//! What a unit becomes in Kubernetes: its Pod and its ConfigMap, as k8s-openapi objects (see
//! [`super::podplan`] for the layout).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, Pod,
    PodSecurityContext, PodSpec, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::podplan::{
    ContainerPlan, INIT_CONTAINER, PLAN_DIR, PLAN_KEY, POD_DIR, PodPlan, RUNNER_PATH, file_key,
};
use crate::executor::{ContainerSettings, PlannedStep, Unit, WORKSPACE_MOUNT};

/// The label every object testloop creates carries (the shared watch selects on it).
pub const MANAGED_BY_LABEL: &str = "testloop.dev/managed-by";
pub const MANAGED_BY_VALUE: &str = "testloop";
pub const EXECUTION_LABEL: &str = "testloop.dev/execution";
pub const WORKFLOW_LABEL: &str = "testloop.dev/workflow";
pub const UNIT_LABEL: &str = "testloop.dev/unit";
/// Which steps each container runs, for a reader of the pod.
pub const STEPS_ANNOTATION: &str = "testloop.dev/steps";
/// Kubernetes refuses a ConfigMap whose data exceeds 1 MiB.
pub const MAX_CONFIG_MAP_BYTES: usize = 1 << 20;
/// The user and group test pods run as by default (the restricted profile needs a non-root user;
/// 65532 is the conventional "nonroot" of distroless images).
pub const DEFAULT_RUN_AS: i64 = 65532;
const VOLUME_DATA: &str = "data";
const VOLUME_TESTLOOP: &str = "testloop";
const VOLUME_PLAN: &str = "plan";

/// How test pods are built.
#[derive(Debug, Clone)]
pub struct PodOptions {
    /// Where test pods run.
    pub namespace: String,
    /// The image holding the static `testloop` binary that the init container copies in.
    pub toolkit_image: String,
    /// Where that binary is in the toolkit image. Against the API double, whose kubelet runs
    /// commands on the host, the host path of the binary.
    pub runner_source: String,
    /// The image of steps that name none.
    pub default_image: String,
    /// The ServiceAccount of test pods whose workflow names none.
    pub service_account: Option<String>,
}

impl Default for PodOptions {
    fn default() -> Self {
        Self {
            namespace: "default".to_owned(),
            toolkit_image: format!("ghcr.io/testloop/testloop:{}", env!("CARGO_PKG_VERSION")),
            runner_source: "/testloop".to_owned(),
            default_image: "busybox:1.37".to_owned(),
            service_account: None,
        }
    }
}

/// A unit's objects, ready to create.
#[derive(Debug, Clone)]
pub struct UnitObjects {
    pub config_map: ConfigMap,
    pub pod: Pod,
    pub plan: PodPlan,
}

/// Why a unit cannot become a pod.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "step {path} ({field}): on Kubernetes, a step with `{field}` must run in one container, \
         but its steps use {images}; give them one image or move `{field}` to each step"
    )]
    SplitControl {
        path: String,
        field: &'static str,
        images: String,
    },
    #[error(
        "the unit's ConfigMap would hold {bytes} bytes, over Kubernetes' limit of {MAX_CONFIG_MAP_BYTES}; \
         the largest content files: {largest}"
    )]
    TooBig { bytes: usize, largest: String },
    #[error("cannot encode the unit's plan: {0}")]
    Encode(String),
    /// A setting does not fit the Kubernetes type it is for.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

/// `value` as the Kubernetes type `T`, or an error naming the workflow field.
fn typed<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    field: &str,
) -> Result<T, ManifestError> {
    serde_json::from_value(value.clone()).map_err(|error| ManifestError::Field {
        field: field.to_owned(),
        message: format!("not a valid Kubernetes value: {error}"),
    })
}

/// The name of a unit's pod and ConfigMap: DNS-1123, at most 63 characters, the same every time.
pub fn object_name(execution_id: &str, unit_path: &str) -> String {
    let unit = if unit_path.is_empty() {
        "main".to_owned()
    } else {
        dns_label(unit_path)
    };
    let mut name = format!("tl-{}-{unit}", execution_id.to_ascii_lowercase());
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// `text` as a DNS label fragment: lowercase alphanumerics and `-`.
fn dns_label(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

/// `text` as a label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
pub fn label_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    value.truncate(63);
    value
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// An action step as the splitter sees it: where it is, and what its container must be.
struct ActionRef<'u> {
    path: &'u str,
    image: String,
    settings: &'u ContainerSettings,
}

fn actions<'u>(steps: &'u [PlannedStep], default_image: &str, into: &mut Vec<ActionRef<'u>>) {
    for step in steps {
        if let Some(action) = &step.action {
            into.push(ActionRef {
                path: &step.path,
                image: action
                    .image
                    .clone()
                    .unwrap_or_else(|| default_image.to_owned()),
                settings: &action.container,
            });
        }
        actions(&step.children, default_image, into);
    }
}

/// Consecutive actions with the same image and settings share a container.
fn split(unit: &Unit, default_image: &str) -> Vec<(ContainerPlan, String, ContainerSettings)> {
    let mut refs = Vec::new();
    actions(&unit.steps, default_image, &mut refs);
    let mut containers: Vec<(ContainerPlan, String, ContainerSettings)> = Vec::new();
    for action in refs {
        match containers.last_mut() {
            Some((plan, image, settings))
                if *image == action.image && settings == action.settings =>
            {
                plan.steps.push(action.path.to_owned());
            }
            _ => {
                let index = containers.len() + 1;
                containers.push((
                    ContainerPlan {
                        name: format!("step-{index}"),
                        steps: vec![action.path.to_owned()],
                    },
                    action.image.clone(),
                    action.settings.clone(),
                ));
            }
        }
    }
    containers
}

/// A step with `retry` or `timeout` whose actions span containers cannot be honoured.
fn check_controls(
    steps: &[PlannedStep],
    containers: &[(ContainerPlan, String, ContainerSettings)],
) -> Result<(), ManifestError> {
    for step in steps {
        let field = if step.retry.is_some() {
            Some("retry")
        } else if step.timeout.is_some() {
            Some("timeout")
        } else {
            None
        };
        if let Some(field) = field {
            let mut paths = Vec::new();
            collect_action_paths(std::slice::from_ref(step), &mut paths);
            let used: Vec<&(ContainerPlan, String, ContainerSettings)> = containers
                .iter()
                .filter(|(plan, _, _)| plan.steps.iter().any(|path| paths.contains(path)))
                .collect();
            if used.len() > 1 {
                let mut images: Vec<&str> =
                    used.iter().map(|(_, image, _)| image.as_str()).collect();
                images.dedup();
                return Err(ManifestError::SplitControl {
                    path: step.path.clone(),
                    field,
                    images: images.join(", "),
                });
            }
        }
        check_controls(&step.children, containers)?;
    }
    Ok(())
}

fn collect_action_paths(steps: &[PlannedStep], into: &mut Vec<String>) {
    for step in steps {
        if step.action.is_some() {
            into.push(step.path.clone());
        }
        collect_action_paths(&step.children, into);
    }
}

fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn restricted_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(DEFAULT_RUN_AS),
        run_as_group: Some(DEFAULT_RUN_AS),
        fs_group: Some(DEFAULT_RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// Builds a unit's ConfigMap and Pod. `nonce` marks the runner's control lines.
pub fn build(unit: &Unit, options: &PodOptions, nonce: &str) -> Result<UnitObjects, ManifestError> {
    let name = object_name(&unit.execution_id, &unit.path);
    let containers = split(unit, &options.default_image);
    check_controls(&unit.steps, &containers)?;

    let mut labels: BTreeMap<String, String> = unit.pod.pod.labels.clone();
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned());
    labels.insert(
        EXECUTION_LABEL.to_owned(),
        label_value(&unit.execution_id.to_ascii_lowercase()),
    );
    labels.insert(
        UNIT_LABEL.to_owned(),
        if unit.path.is_empty() {
            "main".to_owned()
        } else {
            label_value(&unit.path)
        },
    );
    if !unit.pod.workflow.is_empty() {
        labels.insert(WORKFLOW_LABEL.to_owned(), label_value(&unit.pod.workflow));
    }

    // The plan travels without file contents: those are ConfigMap keys of their own.
    let mut pod_unit = unit.clone();
    pod_unit.workspace = WORKSPACE_MOUNT.into();
    pod_unit.artifacts_dir = format!("{POD_DIR}/artifacts").into();
    let mut data = BTreeMap::new();
    for (index, file) in pod_unit.files.iter_mut().enumerate() {
        data.insert(file_key(index), std::mem::take(&mut file.content));
    }
    let plan = PodPlan {
        nonce: nonce.to_owned(),
        unit: pod_unit,
        containers: containers.iter().map(|(plan, _, _)| plan.clone()).collect(),
    };
    let plan_json = serde_json::to_string_pretty(&plan)
        .map_err(|error| ManifestError::Encode(error.to_string()))?;
    data.insert(PLAN_KEY.to_owned(), plan_json);
    let bytes: usize = data
        .iter()
        .map(|(key, value)| key.len() + value.len())
        .sum();
    if bytes > MAX_CONFIG_MAP_BYTES {
        let mut sizes: Vec<(usize, &str)> = unit
            .files
            .iter()
            .map(|file| (file.content.len(), file.path.as_str()))
            .collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let largest = sizes
            .iter()
            .take(3)
            .map(|(size, path)| format!("{path} ({size} bytes)"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ManifestError::TooBig { bytes, largest });
    }

    let metadata = |annotations: BTreeMap<String, String>| ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(options.namespace.clone()),
        labels: Some(labels.clone()),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    };
    let config_map = ConfigMap {
        metadata: metadata(BTreeMap::new()),
        data: Some(data),
        ..ConfigMap::default()
    };

    let init = Container {
        name: INIT_CONTAINER.to_owned(),
        image: Some(options.toolkit_image.clone()),
        command: Some(vec![options.runner_source.clone(), "pod-init".to_owned()]),
        volume_mounts: Some(vec![
            mount(VOLUME_DATA, WORKSPACE_MOUNT, false),
            mount(VOLUME_TESTLOOP, POD_DIR, false),
            mount(VOLUME_PLAN, PLAN_DIR, true),
        ]),
        security_context: Some(restricted_container_security()),
        ..Container::default()
    };
    let mut step_containers: Vec<Container> = containers
        .iter()
        .enumerate()
        .map(|(index, (plan, image, settings))| {
            let field = format!("the container of steps {}", plan.steps.join(", "));
            Ok(Container {
                name: plan.name.clone(),
                image: Some(image.clone()),
                image_pull_policy: settings.image_pull_policy.clone(),
                command: Some(vec![
                    RUNNER_PATH.to_owned(),
                    "pod-run".to_owned(),
                    "--container".to_owned(),
                    index.to_string(),
                ]),
                working_dir: Some(WORKSPACE_MOUNT.to_owned()),
                env: env_value_from(settings, &field)?,
                env_from: settings
                    .env_from
                    .iter()
                    .map(|source| typed(source, &format!("{field}: envFrom")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|sources| (!sources.is_empty()).then_some(sources))?,
                resources: settings
                    .resources
                    .as_ref()
                    .map(|resources| {
                        typed(
                            &serde_json::json!({
                                "requests": resources.requests,
                                "limits": resources.limits,
                            }),
                            &format!("{field}: resources"),
                        )
                    })
                    .transpose()?,
                volume_mounts: Some(vec![
                    mount(VOLUME_DATA, WORKSPACE_MOUNT, false),
                    mount(VOLUME_TESTLOOP, POD_DIR, false),
                ]),
                security_context: match &settings.security_context {
                    Some(context) => Some(typed(context, &format!("{field}: securityContext"))?),
                    None => Some(restricted_container_security()),
                },
                ..Container::default()
            })
        })
        .collect::<Result<_, ManifestError>>()?;
    // A pod needs a regular container: the last group is it. A unit without any action (only
    // artifact rules, say) still needs one to walk its steps.
    let main = match step_containers.pop() {
        Some(container) => container,
        None => Container {
            name: "step-1".to_owned(),
            image: Some(options.default_image.clone()),
            command: Some(vec![
                RUNNER_PATH.to_owned(),
                "pod-run".to_owned(),
                "--container".to_owned(),
                "0".to_owned(),
            ]),
            working_dir: Some(WORKSPACE_MOUNT.to_owned()),
            volume_mounts: Some(vec![
                mount(VOLUME_DATA, WORKSPACE_MOUNT, false),
                mount(VOLUME_TESTLOOP, POD_DIR, false),
            ]),
            security_context: Some(restricted_container_security()),
            ..Container::default()
        },
    };
    let mut init_containers = vec![init];
    init_containers.extend(step_containers);

    let mut annotations = unit.pod.pod.annotations.clone();
    annotations.insert(
        STEPS_ANNOTATION.to_owned(),
        containers
            .iter()
            .map(|(plan, _, _)| format!("{}={}", plan.name, plan.steps.join(",")))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let mut spec = PodSpec {
        restart_policy: Some("Never".to_owned()),
        active_deadline_seconds: unit
            .deadline
            .map(|deadline| i64::try_from(deadline.as_secs().max(1)).unwrap_or(i64::MAX)),
        automount_service_account_token: Some(false),
        service_account_name: options.service_account.clone(),
        enable_service_links: Some(false),
        security_context: Some(restricted_pod_security()),
        init_containers: Some(init_containers),
        containers: vec![main],
        volumes: Some(vec![
            Volume {
                name: VOLUME_DATA.to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
            Volume {
                name: VOLUME_TESTLOOP.to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
            Volume {
                name: VOLUME_PLAN.to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    };
    apply_pod_settings(&mut spec, &unit.pod.pod)?;
    let pod = Pod {
        metadata: metadata(annotations),
        spec: Some(spec),
        ..Pod::default()
    };
    Ok(UnitObjects {
        config_map,
        pod,
        plan,
    })
}

/// The `valueFrom` entries of a container's steps: references the kubelet resolves, so that
/// secrets never pass through testloop.
fn env_value_from(
    settings: &ContainerSettings,
    field: &str,
) -> Result<Option<Vec<EnvVar>>, ManifestError> {
    let vars = settings
        .env_value_from
        .iter()
        .map(|(name, source)| {
            Ok(EnvVar {
                name: name.clone(),
                value_from: Some(typed(source, &format!("{field}: env {name}: valueFrom"))?),
                ..EnvVar::default()
            })
        })
        .collect::<Result<Vec<_>, ManifestError>>()?;
    Ok((!vars.is_empty()).then_some(vars))
}

/// Each of `values` as the Kubernetes type `T`; `None` for none.
fn typed_list<T: serde::de::DeserializeOwned>(
    values: &[serde_json::Value],
    field: &str,
) -> Result<Option<Vec<T>>, ManifestError> {
    let items = values
        .iter()
        .enumerate()
        .map(|(index, value)| typed(value, &format!("spec.pod.{field}[{index}]")))
        .collect::<Result<Vec<T>, _>>()?;
    Ok((!items.is_empty()).then_some(items))
}

/// `spec.pod` applied to the pod's spec, each value checked against its Kubernetes type.
fn apply_pod_settings(
    spec: &mut PodSpec,
    pod: &crate::spec::model::PodConfig,
) -> Result<(), ManifestError> {
    if !pod.volumes.is_empty() {
        return Err(ManifestError::Field {
            field: "spec.pod.volumes".to_owned(),
            message: "not supported by the kubernetes executor yet (each unit has /data)"
                .to_owned(),
        });
    }
    if let Some(account) = &pod.service_account_name {
        spec.service_account_name = Some(account.clone());
    }
    if !pod.node_selector.is_empty() {
        spec.node_selector = Some(pod.node_selector.clone());
    }
    spec.tolerations = typed_list(&pod.tolerations, "tolerations")?;
    spec.image_pull_secrets = typed_list(&pod.image_pull_secrets, "imagePullSecrets")?;
    spec.host_aliases = typed_list(&pod.host_aliases, "hostAliases")?;
    spec.topology_spread_constraints = typed_list(
        &pod.topology_spread_constraints,
        "topologySpreadConstraints",
    )?;
    if let Some(affinity) = &pod.affinity {
        spec.affinity = Some(typed(affinity, "spec.pod.affinity")?);
    }
    if let Some(context) = &pod.security_context {
        spec.security_context = Some(typed(context, "spec.pod.securityContext")?);
    }
    spec.priority_class_name = pod.priority_class_name.clone();
    spec.runtime_class_name = pod.runtime_class_name.clone();
    spec.dns_policy = pod.dns_policy.clone();
    spec.host_network = pod.host_network;
    Ok(())
}
